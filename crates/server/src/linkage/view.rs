//! A review's two records side by side: for each compared field, both values and the part it
//! played in the match weight (as the linkage engine explained it when the pair was scored).

use inkingi_domain::identity::Purpose;
use inkingi_store::children::SourcePerson;
use inkingi_store::linkage::{Review, REGISTRY_DUPLICATE};
use inkingi_store::registry::PersonRecord;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::audit::record_read;
use crate::auth::Principal;
use crate::children::fhir::parse::{SID_BIRTH_REGISTRATION, SID_NATIONAL_ID};
use crate::error::ApiResult;
use crate::AppState;

/// The fields shown for every record, in this order (compared ones carry a contribution).
const FIELDS: [&str; 8] = [
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "national_id",
    "birth_registration",
    "phone",
    "village",
];

/// The fields of a person read by a review page, as the audit entry records them.
const READ_FIELDS: &[&str] = &[
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "national_id",
    "birth_registration",
    "phones",
    "membership",
];

/// One side of a review.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// `registry_person` or `source_person`.
    pub kind: &'static str,
    pub id: Uuid,
    /// Where it came from (`registry`, or the sending system).
    pub source: String,
    pub household_id: Option<Uuid>,
    /// The survivor this record is merged into, if merged.
    pub linked_to: Option<Uuid>,
}

/// One field compared.
#[derive(Debug, Clone, Serialize)]
pub struct FieldRow {
    pub field: String,
    pub left: Option<String>,
    pub right: Option<String>,
    /// The comparison level (`exact`, `jw>=0.95`, `different`, …) when the field was compared.
    pub level: Option<String>,
    /// Its contribution to the match weight (log2 of m/u), when compared.
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideBySide {
    pub review: Review,
    pub left: Option<Side>,
    /// The candidate registry person (absent when the engine found none).
    pub right: Option<Side>,
    pub fields: Vec<FieldRow>,
    /// Why the engine queued it, as it said.
    pub reason: Option<String>,
}

fn registry_values(p: &PersonRecord) -> Vec<Option<String>> {
    let d = &p.person.data;
    vec![
        Some(d.given_name.as_str().to_string()),
        Some(d.family_name.as_str().to_string()),
        Some(d.sex.to_string()),
        d.birth_date.map(|b| b.to_string()),
        d.national_id.as_ref().map(|n| n.as_str().to_string()),
        d.birth_registration.clone(),
        d.phones.first().map(|p| p.as_str().to_string()),
        p.person.village.as_ref().map(|v| v.as_str().to_string()),
    ]
}

fn identifier(sp: &SourcePerson, wanted: &str) -> Option<String> {
    sp.identifiers.as_array()?.iter().find_map(|i| {
        let system = i.get("system")?.as_str()?;
        (system == wanted)
            .then(|| i.get("value")?.as_str().map(str::to_string))
            .flatten()
    })
}

fn source_values(sp: &SourcePerson) -> Vec<Option<String>> {
    vec![
        sp.given_name.clone(),
        sp.family_name.clone(),
        sp.sex.clone(),
        sp.birth_date.clone(),
        identifier(sp, SID_NATIONAL_ID),
        identifier(sp, SID_BIRTH_REGISTRATION),
        None,
        sp.area_code.clone(),
    ]
}

fn registry_side(p: &PersonRecord, merged_into: Option<Uuid>) -> Side {
    Side {
        kind: "registry_person",
        id: p.person.id,
        source: "registry".into(),
        household_id: p.person.household_id,
        linked_to: merged_into,
    }
}

/// The engine's per-field contributions (`explanation.fields`, or the explanation itself when
/// it is a list): field name → (level, weight).
fn contributions(explanation: &Value) -> Vec<(String, String, f64)> {
    let list = explanation
        .get("fields")
        .and_then(Value::as_array)
        .or_else(|| explanation.as_array());
    list.into_iter()
        .flatten()
        .filter_map(|f| {
            Some((
                f.get("field")?.as_str()?.to_string(),
                f.get("level")?.as_str().unwrap_or_default().to_string(),
                f.get("weight")?.as_f64()?,
            ))
        })
        .collect()
}

fn rows(left: &[Option<String>], right: &[Option<String>], explanation: &Value) -> Vec<FieldRow> {
    let explained = contributions(explanation);
    let mut out: Vec<FieldRow> = FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let c = explained.iter().find(|(name, _, _)| name == f);
            FieldRow {
                field: (*f).to_string(),
                left: left.get(i).cloned().flatten(),
                right: right.get(i).cloned().flatten(),
                level: c.map(|c| c.1.clone()),
                weight: c.map(|c| c.2),
            }
        })
        .filter(|r| r.left.is_some() || r.right.is_some() || r.weight.is_some())
        .collect();
    // Compared fields the table above does not name (a configuration's own) still show.
    for (name, level, weight) in explained {
        if !FIELDS.contains(&name.as_str()) {
            out.push(FieldRow {
                field: name,
                left: None,
                right: None,
                level: Some(level),
                weight: Some(weight),
            });
        }
    }
    out
}

async fn audited_person(
    state: &AppState,
    principal: &Principal,
    purpose: Purpose,
    id: Uuid,
) -> ApiResult<Option<PersonRecord>> {
    let p = state.store.registry().person(&principal.scope, id).await?;
    if let Some(p) = &p {
        record_read(
            state,
            principal,
            purpose,
            ("person", &id.to_string()),
            p.person.village.clone(),
            READ_FIELDS,
        )
        .await?;
    }
    Ok(p)
}

/// Builds the side-by-side view, auditing the read of the review and of each record shown.
pub async fn side_by_side(
    state: &AppState,
    principal: &Principal,
    purpose: Purpose,
    review: Review,
) -> ApiResult<SideBySide> {
    record_read(
        state,
        principal,
        purpose,
        ("linkage_review", &review.review.id.to_string()),
        review
            .review
            .area_code
            .as_deref()
            .and_then(|a| inkingi_domain::areas::AreaCode::parse(a).ok()),
        &["candidate", "weight", "explanation"],
    )
    .await?;
    let right = match review.review.candidate_person_id {
        Some(id) => audited_person(state, principal, purpose, id).await?,
        None => None,
    };
    let right_values = right.as_ref().map(registry_values).unwrap_or_default();
    let (left, left_values) = if review.review.kind == REGISTRY_DUPLICATE {
        let id = Uuid::parse_str(&review.review.source_id).ok();
        let p = match id {
            Some(id) => audited_person(state, principal, purpose, id).await?,
            None => None,
        };
        let merged = match (&p, review.change_request_id) {
            (Some(_), Some(_)) => merged_into(state, principal, &review).await?,
            _ => None,
        };
        let values = p.as_ref().map(registry_values).unwrap_or_default();
        (p.map(|p| registry_side(&p, merged)), values)
    } else {
        let sp = state
            .store
            .children()
            .source_person(
                &principal.scope,
                &review.review.source_system,
                &review.review.source_id,
            )
            .await?;
        if let Some(sp) = &sp {
            record_read(
                state,
                principal,
                purpose,
                ("source_person", &sp.id.to_string()),
                sp.area_code
                    .as_deref()
                    .and_then(|a| inkingi_domain::areas::AreaCode::parse(a).ok()),
                &["name", "gender", "birthDate", "identifier"],
            )
            .await?;
        }
        let values = sp.as_ref().map(source_values).unwrap_or_default();
        let side = sp.map(|sp| Side {
            kind: "source_person",
            id: sp.id,
            source: sp.provenance.source_system.clone(),
            household_id: None,
            linked_to: sp.person_id,
        });
        (side, values)
    };
    let fields = rows(&left_values, &right_values, &review.review.explanation);
    let reason = review
        .review
        .explanation
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(SideBySide {
        right: right.map(|p| registry_side(&p, None)),
        left,
        fields,
        reason,
        review,
    })
}

/// The survivor of the merge a confirmation asked for, once applied.
async fn merged_into(
    state: &AppState,
    principal: &Principal,
    review: &Review,
) -> ApiResult<Option<Uuid>> {
    let Some(cr_id) = review.change_request_id else {
        return Ok(None);
    };
    let cr = state
        .store
        .changes()
        .change(&principal.scope, cr_id)
        .await?;
    Ok(cr.and_then(|cr| match (cr.status, cr.change) {
        (
            inkingi_domain::registry::change::ChangeStatus::Applied,
            inkingi_domain::registry::change::ChangeKind::MergePeople { survivor_id, .. },
        ) => Some(survivor_id),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_pair_values_with_their_contributions() {
        let left = vec![Some("Keza".to_string()), Some("Uwase".to_string())];
        let right = vec![Some("Kesa".to_string()), Some("Uwase".to_string())];
        let e = json!({"fields": [
            {"field": "given_name", "level": "jw>=0.95", "weight": 2.5},
            {"field": "mother", "level": "missing", "weight": 0.0},
        ]});
        let r = rows(&left, &right, &e);
        assert_eq!(r[0].field, "given_name");
        assert_eq!(r[0].left.as_deref(), Some("Keza"));
        assert_eq!(r[0].right.as_deref(), Some("Kesa"));
        assert_eq!(r[0].weight, Some(2.5));
        assert_eq!(r[1].field, "family_name");
        assert_eq!(r[1].weight, None);
        // A compared field outside the standard set is listed last.
        assert_eq!(r.last().map(|x| x.field.as_str()), Some("mother"));
        assert_eq!(r.len(), 3);
    }
}
