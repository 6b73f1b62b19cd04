//! Integrated Beneficiary Registry (DCI `ibr_api` v1.0.0) messages: `enrolled` queries (is
//! this person or household enrolled, in what, since when) translated into registry searches,
//! enrolments as `Beneficiary` records, and `enrollment/updates` items read into enrolment
//! moves. The spec is rough here (its samples and schemas disagree); what is accepted is
//! documented in `docs/DCI.md`.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::programmes::EnrolmentStatus;
use inkingi_domain::registry::NationalId;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::envelope::short;
use super::search::{prepare, PreparedSearch, Rejection, SearchReason};

/// The `message` of an `enrolled` query (`EnrolledRequest`).
#[derive(Debug, Clone, Deserialize)]
pub struct EnrolledMessage {
    #[serde(default)]
    pub transaction_id: String,
    /// Beyond the spec, which has none: the id the answer's item carries (default
    /// `transaction_id`, else `1`).
    #[serde(default)]
    pub reference_id: Option<String>,
    #[serde(default)]
    pub enrolled_criteria: Option<Value>,
}

impl EnrolledMessage {
    /// The id of the one answer item.
    pub fn reference(&self) -> String {
        self.reference_id
            .clone()
            .filter(|r| !r.trim().is_empty())
            .or_else(|| Some(self.transaction_id.clone()).filter(|t| !t.trim().is_empty()))
            .unwrap_or_else(|| "1".into())
    }
}

/// An `enrolled` query ready to run: whom to look up, and which programmes (none: all).
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolledQuery {
    pub search: PreparedSearch,
    pub programmes: Vec<String>,
}

/// Names under which a query asks for a programme.
fn is_programme_attr(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "programme"
            | "program"
            | "programme_code"
            | "programme_identifier"
            | "programme_identifier.programme.programme_identifier"
            | "programme_identifier.program.programme_identifier"
    )
}

/// The spec's examples name a person `person_identifier`; the registry calls it the UIN.
fn person_attr(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "person_identifier" | "member_identifier" | "beneficiary_identifier" => "UIN".into(),
        _ => name.to_string(),
    }
}

fn bad<T>(message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        reason: SearchReason::SearchCriteriaInvalid,
        message: message.into(),
    })
}

/// Programme codes of one condition: `eq` a code or `in` a list.
fn programme_codes(op: &str, value: &Value, at: &str) -> Result<Vec<String>, Rejection> {
    let codes: Vec<String> = match (op.trim_start_matches('$'), value) {
        ("eq", Value::String(s)) => vec![s.clone()],
        ("in", Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => {
            return Err(Rejection {
                reason: SearchReason::FilterInvalid,
                message: format!("{at}: a programme is asked with eq (a code) or in (codes)"),
            })
        }
    };
    Ok(codes)
}

/// A predicate item for one attribute condition.
fn item(seq: usize, name: &str, op: &str, value: &Value) -> Value {
    json!({"seq_num": seq, "expression1": {
        "attribute_name": person_attr(name),
        "operator": op.trim_start_matches('$'),
        "attribute_value": value,
    }})
}

/// Splits predicate items into the person conditions and the programmes asked for. A
/// programme condition must stand alone in its item (it is and-ed with the rest).
fn split_items(items: &[Value]) -> Result<(Vec<Value>, Vec<String>), Rejection> {
    let mut people = Vec::new();
    let mut programmes = Vec::new();
    for (i, it) in items.iter().enumerate() {
        // The sample sends a bare expression instead of an item.
        let e1 = it.get("expression1").unwrap_or(it);
        let name = e1
            .get("attribute_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if is_programme_attr(name) {
            if it.get("expression2").is_some_and(Value::is_object) {
                return bad(format!(
                    "enrolled_criteria.query[{i}]: a programme condition stands alone in its item"
                ));
            }
            let op = e1.get("operator").and_then(Value::as_str).unwrap_or("");
            let v = e1.get("attribute_value").unwrap_or(&Value::Null);
            programmes.extend(programme_codes(op, v, &format!("query[{i}]"))?);
            continue;
        }
        let mut it = if it.get("expression1").is_some() {
            it.clone()
        } else {
            json!({"seq_num": i, "expression1": it})
        };
        if let Some(Value::String(n)) = it.pointer("/expression1/attribute_name") {
            let mapped = person_attr(n);
            it["expression1"]["attribute_name"] = json!(mapped);
        }
        people.push(it);
    }
    Ok((people, programmes))
}

/// The forms of `query` the spec and its samples use, as predicate items: a list of items, one
/// item, a bare `{attribute_name, operator, attribute_value}`, or a map
/// `{"person_identifier": {"eq": "…"}, "programme_identifier…": {"eq": "…"}}`.
fn as_items(query: &Value) -> Result<Vec<Value>, Rejection> {
    match query {
        Value::Array(a) => Ok(a.clone()),
        Value::Object(m) if m.contains_key("expression1") || m.contains_key("attribute_name") => {
            Ok(vec![query.clone()])
        }
        Value::Object(m) => {
            let mut out = Vec::new();
            for (name, cond) in m {
                match cond {
                    Value::Object(ops) => {
                        for (op, v) in ops {
                            out.push(item(out.len() + 1, name, op, v));
                        }
                    }
                    scalar => out.push(item(out.len() + 1, name, "eq", scalar)),
                }
            }
            Ok(out)
        }
        _ => bad("enrolled_criteria.query: an object or a list of predicate items"),
    }
}

/// Translates `enrolled_criteria` (`today` anchors `age`).
pub fn prepare_enrolled(
    criteria: Option<&Value>,
    today: NaiveDate,
) -> Result<EnrolledQuery, Rejection> {
    let Some(Value::Object(c)) = criteria else {
        return bad("message.enrolled_criteria: required, an object");
    };
    let mut sc: Map<String, Value> = c.clone();
    // `Beneficiary` (the spec's example) is a person with their programmes.
    if sc.get("response_entity").and_then(Value::as_str) == Some("Beneficiary") {
        sc.insert("response_entity".into(), json!("Member"));
    }
    let query = c.get("query").cloned().unwrap_or(Value::Null);
    let query_type = c.get("query_type").and_then(Value::as_str).unwrap_or("");
    let mut programmes = Vec::new();
    match query_type {
        "idtype-value" => {
            if let Some(t) = query.get("type").and_then(Value::as_str) {
                sc.insert(
                    "query".into(),
                    json!({"type": person_attr(t), "value": query.get("value")}),
                );
            }
        }
        "expression" if query.pointer("/value/expression").is_some() => {}
        "expression" | "predicate" => {
            let (people, progs) = split_items(&as_items(&query)?)?;
            if people.is_empty() {
                return bad(
                    "enrolled_criteria.query: name the person or household (UIN, HHID, …), not \
                     only a programme",
                );
            }
            programmes = progs;
            sc.insert("query_type".into(), json!("predicate"));
            sc.insert("query".into(), Value::Array(people));
        }
        _ => {}
    }
    let search = prepare(Some(&Value::Object(sc)), today).map_err(|r| Rejection {
        reason: r.reason,
        message: r.message.replace("search_criteria", "enrolled_criteria"),
    })?;
    Ok(EnrolledQuery { search, programmes })
}

/// The spec's enrolment status words (code directory `cd.ibr.02`, not published with the
/// specs): `Active` for enrolled, the lifecycle's own names for the rest.
pub fn status_label(s: EnrolmentStatus) -> &'static str {
    match s {
        EnrolmentStatus::Eligible => "Eligible",
        EnrolmentStatus::Waiting => "Waiting",
        EnrolmentStatus::Enrolled => "Active",
        EnrolmentStatus::Suspended => "Suspended",
        EnrolmentStatus::Graduated => "Graduated",
        EnrolmentStatus::Exited => "Exited",
    }
}

/// Reads a reported enrolment status, in the spec's words or the lifecycle's.
pub fn parse_status(s: &str) -> Option<EnrolmentStatus> {
    match s.trim().to_ascii_lowercase().as_str() {
        "active" | "enrolled" | "enrollment" | "enrolment" | "enrollement" => {
            Some(EnrolmentStatus::Enrolled)
        }
        "inactive" | "exited" | "deregistered" | "deregister" | "closed" => {
            Some(EnrolmentStatus::Exited)
        }
        "suspended" | "on_hold" => Some(EnrolmentStatus::Suspended),
        "graduated" => Some(EnrolmentStatus::Graduated),
        "waiting" => Some(EnrolmentStatus::Waiting),
        "eligible" => Some(EnrolmentStatus::Eligible),
        _ => None,
    }
}

/// One enrolment, for [`beneficiary`].
pub struct EnrolmentFacts<'a> {
    pub programme: &'a str,
    pub programme_name: String,
    pub status: EnrolmentStatus,
    pub enrolled_since: Option<DateTime<Utc>>,
    pub changed_at: DateTime<Utc>,
    /// Benefit per cycle, in francs.
    pub amount: i64,
    pub frequency: String,
}

/// A `Beneficiary`: the member (a DCI `Member`, when the enrolment is about a person) and one
/// programme enrolment, as the spec's example shapes it; `assistance_unit` is the household's
/// registry number.
pub fn beneficiary(assistance_unit: &str, member: Option<Value>, e: &EnrolmentFacts<'_>) -> Value {
    let ts = |t: DateTime<Utc>| super::envelope::timestamp(t);
    let mut b = json!({
        "@type": "Beneficiary",
        "assistance_unit": assistance_unit,
        "programme_identifier": {
            "programme": {"programme_identifier": e.programme, "programme_name": e.programme_name},
            "enrolment_date": e.enrolled_since.map(ts),
            "enrolment_status": status_label(e.status),
            "status_change_date": ts(e.changed_at),
            "benefits": {
                "benefit_type": "Cash",
                "benefit_value": format!("RWF {}", e.amount),
                "benefit_frequency": e.frequency,
            },
        },
    });
    if let Some(m) = member {
        b["member"] = m;
    }
    b
}

/// The `message` of `enrollment/updates`: the spec's `enrolled_updates` or the sample's
/// `receipt_information`, each holding `beneficiaries`.
#[derive(Debug, Clone, Deserialize)]
pub struct UpdatesMessage {
    #[serde(default)]
    pub transaction_id: String,
    #[serde(alias = "receipt_information")]
    pub enrolled_updates: UpdatesBody,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UpdatesBody {
    #[serde(default, alias = "receipt_type")]
    pub reg_event_type: Option<String>,
    #[serde(default)]
    pub beneficiaries: Vec<Value>,
}

/// Why one reported beneficiary is refused (the spec gives this message no code list; these
/// follow the `rjct.<what>.<why>` pattern of the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRejection {
    pub code: &'static str,
    pub message: String,
}

pub fn item_rejection(code: &'static str, message: impl Into<String>) -> ItemRejection {
    ItemRejection {
        code,
        message: message.into(),
    }
}

/// One reported enrolment, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub reference_id: String,
    pub national_id: NationalId,
    pub programme: String,
    pub status: EnrolmentStatus,
    pub reason: Option<String>,
}

/// A reported item with its id (its `reference_id`, else its position from 1).
pub struct CheckedUpdate {
    pub reference_id: String,
    pub outcome: Result<Update, ItemRejection>,
}

/// Reads every reported beneficiary; duplicate reference ids are refused.
pub fn check_updates(items: &[Value]) -> Vec<CheckedUpdate> {
    let mut seen = HashSet::new();
    items
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let reference_id = match b.get("reference_id") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => (i + 1).to_string(),
            };
            let outcome = if seen.insert(reference_id.clone()) {
                read_update(b, i, &reference_id)
            } else {
                Err(item_rejection(
                    "rjct.reference_id.duplicate",
                    format!(
                        "beneficiaries[{i}].reference_id '{}' appears twice",
                        short(&reference_id)
                    ),
                ))
            };
            CheckedUpdate {
                reference_id,
                outcome,
            }
        })
        .collect()
}

/// The first national ID among identifier lists (or a bare value) at the places the spec and
/// the sample put them.
fn national_id_of(b: &Value) -> Option<String> {
    let places = [
        "/member/member_identifier",
        "/member/demographic_info/person/identifier",
        "/member/demographic_info/identifier",
        "/member_identifier",
    ];
    for p in places {
        let Some(v) = b.pointer(p) else { continue };
        let list: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for id in list {
            match id {
                Value::String(s) => return Some(s.clone()),
                Value::Object(o) => {
                    let t = o
                        .get("identifier_type")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if matches!(
                        t.to_ascii_uppercase().as_str(),
                        "NID" | "UIN" | "NATIONAL_ID"
                    ) {
                        if let Some(v) = o.get("identifier_value").and_then(Value::as_str) {
                            return Some(v.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    None
}

fn read_update(b: &Value, i: usize, reference_id: &str) -> Result<Update, ItemRejection> {
    let at = |f: &str| format!("beneficiaries[{i}].{f}");
    let nid = national_id_of(b).ok_or_else(|| {
        item_rejection(
            "rjct.member_identifier.invalid",
            format!(
                "{}: a NID/UIN identifier is required",
                at("member.member_identifier")
            ),
        )
    })?;
    let national_id = NationalId::parse(&nid).map_err(|e| {
        item_rejection(
            "rjct.member_identifier.invalid",
            format!("{}: '{}': {e}", at("member.member_identifier"), short(&nid)),
        )
    })?;
    // The spec nests the enrolment in the member; the sample does too, at one level or other.
    let pi = b
        .pointer("/member/programme_identifier")
        .or_else(|| b.get("programme_identifier"))
        .ok_or_else(|| {
            item_rejection(
                "rjct.programme.invalid",
                format!("{}: required", at("member.programme_identifier")),
            )
        })?;
    let programme = pi
        .pointer("/programme/programme_identifier")
        .or_else(|| pi.pointer("/program/programme_identifier"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            item_rejection(
                "rjct.programme.invalid",
                format!(
                    "{}: required",
                    at("programme_identifier.programme.programme_identifier")
                ),
            )
        })?
        .to_string();
    let word = pi
        .get("enrolment_status")
        .and_then(Value::as_str)
        .unwrap_or("");
    let status = parse_status(word).ok_or_else(|| {
        item_rejection(
            "rjct.enrolment_status.invalid",
            format!(
                "{} '{}': expected Active, Suspended, Graduated, Exited (or Inactive), Waiting",
                at("programme_identifier.enrolment_status"),
                short(word)
            ),
        )
    })?;
    let reason = pi
        .get("status_reason")
        .or_else(|| b.get("status_reason"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.chars().take(200).collect());
    Ok(Update {
        reference_id: reference_id.to_string(),
        national_id,
        programme,
        status,
        reason,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use inkingi_domain::registry::Sex;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
    }

    #[test]
    fn the_spec_and_sample_query_forms_translate() {
        // The sample: a bare expression under query_type expression.
        let q = prepare_enrolled(
            Some(&json!({"query_type": "expression", "response_entity": "Beneficiary",
                "query": {"attribute_name": "person_identifier", "operator": "eq", "attribute_value": "1198570012340011"}})),
            today(),
        )
        .unwrap();
        assert!(q.programmes.is_empty());
        // The schema's example: a map with a programme condition.
        let q = prepare_enrolled(
            Some(&json!({"query_type": "expression", "query": {
                "person_identifier": {"eq": "1198570012340011"},
                "programme_identifier.program.programme_identifier": {"eq": "DCI001"}}})),
            today(),
        )
        .unwrap();
        assert_eq!(q.programmes, vec!["DCI001".to_string()]);
        // Only a programme: refused, naming why.
        let r = prepare_enrolled(
            Some(&json!({"query_type": "predicate", "query": [{"expression1":
                {"attribute_name": "programme", "operator": "in", "attribute_value": ["a"]}}]})),
            today(),
        )
        .unwrap_err();
        assert_eq!(r.reason, SearchReason::SearchCriteriaInvalid);
        assert!(r.message.contains("not only a programme"), "{}", r.message);
        // Unknown attributes keep the search's own refusal.
        let r = prepare_enrolled(
            Some(&json!({"query_type": "predicate", "query": {"expression1":
                {"attribute_name": "shoe_size", "operator": "eq", "attribute_value": 3}}})),
            today(),
        )
        .unwrap_err();
        assert_eq!(r.reason, SearchReason::FilterInvalid, "{r:?}");
        assert!(prepare_enrolled(None, today()).is_err());
    }

    #[test]
    fn reported_updates_are_read_or_refused_per_item() {
        let nid = NationalId::compose(1, 1985, Sex::Female, 1234, 0, 11);
        let good = json!({"member": {"member_identifier": [{"identifier_type": "NID", "identifier_value": nid.as_str()}],
            "programme_identifier": {"programme": {"programme_identifier": "vup_ds"}, "enrolment_status": "Active"}}});
        let no_status = json!({"member": {"member_identifier": nid.as_str(),
            "programme_identifier": {"programme": {"programme_identifier": "vup_ds"}, "enrolment_status": "Dancing"}}});
        let bad_nid = json!({"reference_id": "x", "member": {"member_identifier": [{"identifier_type": "NID", "identifier_value": "12"}]}});
        let dup = json!({"reference_id": "x"});
        let out = check_updates(&[good, no_status, bad_nid, dup]);
        let u = out[0].outcome.as_ref().unwrap();
        assert_eq!(
            (u.programme.as_str(), u.status),
            ("vup_ds", EnrolmentStatus::Enrolled)
        );
        assert_eq!(out[0].reference_id, "1");
        assert_eq!(
            out[1].outcome.as_ref().unwrap_err().code,
            "rjct.enrolment_status.invalid"
        );
        assert_eq!(
            out[2].outcome.as_ref().unwrap_err().code,
            "rjct.member_identifier.invalid"
        );
        assert_eq!(
            out[3].outcome.as_ref().unwrap_err().code,
            "rjct.reference_id.duplicate"
        );
    }
}
