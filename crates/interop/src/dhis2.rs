//! The DHIS2 Web API (the HMIS) as Inkingi reads it: the tracker API of DHIS2 2.40 and later
//! (`/api/tracker/trackedEntities`, `/api/tracker/events`), paged and filtered by
//! `updatedAfter`, authenticated with a personal access token (`Authorization: ApiToken …`),
//! and the mapping from a DHIS2 configuration (attributes, programs, program stages, data
//! elements, organisation units) to Inkingi's facts.
//!
//! Storing what is read is the child record's business (`inkingi_server::children::dhis2`);
//! this module only speaks the protocol and checks the mapping.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::NaiveDateTime;
use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_domain::children::indicators::IndicatorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod aggregate;

/// The mapping shipped with Inkingi (that of the simulator's DHIS2).
pub const EMBEDDED_MAPPING: &str = include_str!("../../../data/dhis2/mapping.toml");

/// How DHIS2 writes a time (server time, no zone), as stored in cursors.
pub const STAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f";

/// Reads a DHIS2 time: `2024-03-01T10:15:30.123`, with or without fraction or zone (a zone is
/// ignored: DHIS2 compares with its own server time).
pub fn parse_stamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    // An offset such as +02:00 after the seconds (and fraction).
    let cut = s
        .char_indices()
        .skip(19)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i);
    let s = cut.map_or(s, |i| &s[..i]);
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
        })
        .ok()
}

pub fn format_stamp(t: NaiveDateTime) -> String {
    t.format(STAMP_FORMAT).to_string()
}

// ----------------------------------------------------------------------------------------------
// Mapping

/// What a program's tracked entities are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Child,
    Mother,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    pub uid: String,
    #[serde(default)]
    pub name: String,
    pub subject: Subject,
    /// `lmp`: the enrolment's incident date is the last menstrual period.
    #[serde(default)]
    pub enrollment_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmunizationMap {
    pub data_element: String,
    /// `cvx` or `atc`.
    pub system: String,
    pub code: String,
    pub dose: Option<u32>,
}

impl ImmunizationMap {
    /// The code system's URI as FHIR and the vaccine code table name it.
    pub fn system_uri(&self) -> &'static str {
        if self.system == "atc" {
            "http://www.whocc.no/atc"
        } else {
            "http://hl7.org/fhir/sid/cvx"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementMap {
    pub data_element: String,
    /// `weight`, `height`, `length`, `head_circumference` or `muac`.
    pub kind: String,
    /// `kg`, `g`, `cm` or `mm`.
    pub unit: String,
}

impl MeasurementMap {
    /// The value in kg (weights) or cm (lengths).
    pub fn normalise(&self, v: f64) -> f64 {
        match self.unit.as_str() {
            "g" => v / 1000.0,
            "mm" => v / 10.0,
            _ => v,
        }
    }

    /// The LOINC code of the measurement (as the FHIR path receives it).
    pub fn loinc(&self) -> &'static str {
        match self.kind.as_str() {
            "weight" => "29463-7",
            "height" => "8302-2",
            "length" => "8306-3",
            "head_circumference" => "9843-4",
            _ => "56072-2",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub uid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub immunizations: Vec<ImmunizationMap>,
    #[serde(default)]
    pub measurements: Vec<MeasurementMap>,
    /// `anc` or `pnc`: each event is one contact.
    #[serde(default)]
    pub contact: Option<String>,
}

/// Tracked entity attribute UIDs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
    pub national_id: Option<String>,
    pub birth_registration: Option<String>,
    pub mother_national_id: Option<String>,
    pub mother_phone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SexCodes {
    #[serde(default)]
    pub female: Vec<String>,
    #[serde(default)]
    pub male: Vec<String>,
}

/// A checked mapping: every UID well formed, every kind, unit and code system known, every
/// organisation unit mapped to a valid area code.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub version: String,
    pub provisional: bool,
    #[serde(default = "district")]
    pub link_within: AreaLevel,
    pub attributes: Attributes,
    #[serde(default)]
    pub sex: SexCodes,
    pub programs: Vec<Program>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub org_units: BTreeMap<String, String>,
    /// The aggregate push of child indicators (`/api/dataValueSets`); none: no push.
    #[serde(default)]
    pub aggregate: Option<aggregate::AggregateMapping>,
}

fn district() -> AreaLevel {
    AreaLevel::District
}

/// A mapping refused, naming where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DHIS2 mapping {file}: {at}: {reason}")]
pub struct MappingError {
    pub file: String,
    pub at: String,
    pub reason: String,
}

/// DHIS2 UIDs: 11 characters, a letter then letters or digits.
pub fn is_uid(s: &str) -> bool {
    s.len() == 11
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Mapping {
    pub fn embedded() -> Result<Mapping, MappingError> {
        Mapping::parse_toml("data/dhis2/mapping.toml", EMBEDDED_MAPPING)
    }

    pub fn parse_toml(file: &str, text: &str) -> Result<Mapping, MappingError> {
        let err = |at: String, reason: String| MappingError {
            file: file.to_string(),
            at,
            reason,
        };
        let m: Mapping =
            toml::from_str(text).map_err(|e| err("file".into(), e.message().to_string()))?;
        let uid = |at: String, v: &str| {
            if is_uid(v) {
                Ok(())
            } else {
                Err(err(
                    at,
                    format!("'{v}' is not a DHIS2 UID (11 letters or digits, a letter first)"),
                ))
            }
        };
        let a = &m.attributes;
        for (name, v) in [
            ("given_name", &a.given_name),
            ("family_name", &a.family_name),
            ("sex", &a.sex),
            ("birth_date", &a.birth_date),
            ("national_id", &a.national_id),
            ("birth_registration", &a.birth_registration),
            ("mother_national_id", &a.mother_national_id),
            ("mother_phone", &a.mother_phone),
        ] {
            if let Some(v) = v {
                uid(format!("attributes.{name}"), v)?;
            }
        }
        if m.programs.is_empty() {
            return Err(err("programs".into(), "name at least one program".into()));
        }
        for (i, p) in m.programs.iter().enumerate() {
            uid(format!("programs[{i}].uid"), &p.uid)?;
            if let Some(d) = p.enrollment_date.as_deref().filter(|d| *d != "lmp") {
                return Err(err(
                    format!("programs[{i}].enrollment_date"),
                    format!("'{d}': only \"lmp\" is understood"),
                ));
            }
        }
        for (i, s) in m.stages.iter().enumerate() {
            uid(format!("stages[{i}].uid"), &s.uid)?;
            for (j, im) in s.immunizations.iter().enumerate() {
                let at = format!("stages[{i}].immunizations[{j}]");
                uid(format!("{at}.data_element"), &im.data_element)?;
                if !matches!(im.system.as_str(), "cvx" | "atc") {
                    return Err(err(
                        format!("{at}.system"),
                        format!("'{}': expected cvx or atc", im.system),
                    ));
                }
                if im.code.trim().is_empty() {
                    return Err(err(format!("{at}.code"), "a vaccine code is needed".into()));
                }
            }
            for (j, ms) in s.measurements.iter().enumerate() {
                let at = format!("stages[{i}].measurements[{j}]");
                uid(format!("{at}.data_element"), &ms.data_element)?;
                let weight = ms.kind == "weight";
                let known = matches!(
                    ms.kind.as_str(),
                    "weight" | "height" | "length" | "head_circumference" | "muac"
                );
                if !known {
                    return Err(err(
                        format!("{at}.kind"),
                        format!(
                            "'{}': expected weight, height, length, head_circumference or muac",
                            ms.kind
                        ),
                    ));
                }
                let unit_ok = if weight {
                    matches!(ms.unit.as_str(), "kg" | "g")
                } else {
                    matches!(ms.unit.as_str(), "cm" | "mm")
                };
                if !unit_ok {
                    return Err(err(
                        format!("{at}.unit"),
                        format!(
                            "'{}' does not measure {}: expected {}",
                            ms.unit,
                            ms.kind,
                            if weight { "kg or g" } else { "cm or mm" }
                        ),
                    ));
                }
            }
            if let Some(c) = s
                .contact
                .as_deref()
                .filter(|c| !matches!(*c, "anc" | "pnc"))
            {
                return Err(err(
                    format!("stages[{i}].contact"),
                    format!("'{c}': expected anc or pnc"),
                ));
            }
        }
        for (ou, code) in &m.org_units {
            uid(format!("org_units.{ou}"), ou)?;
            AreaCode::parse(code).map_err(|e| err(format!("org_units.{ou}"), e.to_string()))?;
        }
        if let Some(a) = &m.aggregate {
            a.check(|c| IndicatorCode::parse(c).is_some())
                .map_err(|(at, reason)| err(at, reason))?;
        }
        Ok(m)
    }

    pub fn stage(&self, uid: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.uid == uid)
    }

    pub fn program(&self, uid: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.uid == uid)
    }

    /// The area an organisation unit stands for.
    pub fn area(&self, org_unit: &str) -> Option<AreaCode> {
        self.org_units
            .get(org_unit)
            .and_then(|c| AreaCode::parse(c).ok())
    }

    /// `M`/`F` for a sex option code.
    pub fn sex_of(&self, code: &str) -> Option<&'static str> {
        let code = code.trim();
        if self.sex.female.iter().any(|c| c == code) {
            Some("F")
        } else if self.sex.male.iter().any(|c| c == code) {
            Some("M")
        } else {
            None
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Protocol types

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeValue {
    pub attribute: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub enrollment: String,
    pub program: String,
    #[serde(default)]
    pub org_unit: Option<String>,
    #[serde(default)]
    pub enrolled_at: Option<String>,
    /// The incident date.
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedEntity {
    pub tracked_entity: String,
    #[serde(default)]
    pub org_unit: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub attributes: Vec<AttributeValue>,
    #[serde(default)]
    pub enrollments: Vec<Enrollment>,
}

impl TrackedEntity {
    /// The non-empty value of an attribute.
    pub fn attribute(&self, uid: Option<&str>) -> Option<&str> {
        let uid = uid?;
        self.attributes
            .iter()
            .find(|a| a.attribute == uid)
            .and_then(|a| a.value.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataValue {
    pub data_element: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event: String,
    #[serde(default)]
    pub status: Option<String>,
    pub program: String,
    pub program_stage: String,
    #[serde(default)]
    pub enrollment: Option<String>,
    #[serde(default)]
    pub tracked_entity: Option<String>,
    #[serde(default)]
    pub org_unit: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub data_values: Vec<DataValue>,
}

/// One page of a paged answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub page_size: u32,
}

/// Reads a paged answer: DHIS2 2.41 writes `{"pager": {"page", "pageSize", …}, "<key>": […]}`,
/// 2.40 `{"page", "pageSize", "instances": […]}`; both are read.
pub fn read_page<T: serde::de::DeserializeOwned>(
    body: &Value,
    key: &str,
) -> Result<Page<T>, String> {
    let items = body
        .get(key)
        .or_else(|| body.get("instances"))
        .ok_or_else(|| format!("the answer has neither '{key}' nor 'instances'"))?;
    let items: Vec<T> =
        serde_json::from_value(items.clone()).map_err(|e| format!("'{key}': {e}"))?;
    let num = |k: &str| {
        body.get("pager")
            .and_then(|p| p.get(k))
            .or_else(|| body.get(k))
            .and_then(Value::as_u64)
            .map(|n| n as u32)
    };
    Ok(Page {
        items,
        page: num("page").unwrap_or(1),
        page_size: num("pageSize").unwrap_or(0),
    })
}

// ----------------------------------------------------------------------------------------------
// Client

/// Where DHIS2 is and how to read it.
#[derive(Clone, PartialEq)]
pub struct Dhis2Connector {
    /// Base URL of the instance (`https://hmis.example.org`); `/api/tracker/…` is appended.
    pub url: String,
    /// A personal access token (`d2pat_…`), sent as `Authorization: ApiToken …`.
    pub token: String,
    /// The root organisation unit whose descendants are read.
    pub org_unit: String,
    pub page_size: u32,
    pub timeout: Duration,
}

/// Keeps the token out of logs.
impl fmt::Debug for Dhis2Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dhis2Connector")
            .field("url", &self.url)
            .field("token", &"[redacted]")
            .field("org_unit", &self.org_unit)
            .field("page_size", &self.page_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Dhis2Connector {
    pub fn new(url: impl Into<String>, token: impl Into<String>, org_unit: &str) -> Self {
        Dhis2Connector {
            url: url.into(),
            token: token.into(),
            org_unit: org_unit.into(),
            page_size: 100,
            timeout: Duration::from_secs(30),
        }
    }

    /// Refuses settings that cannot work, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            Ok(_) => {
                return Err(format!(
                    "url '{}': an http or https URL is needed",
                    self.url
                ))
            }
            Err(e) => return Err(format!("url '{}': {e}", self.url)),
        }
        if self.token.trim().is_empty() {
            return Err("token: a DHIS2 personal access token (d2pat_…) is needed".into());
        }
        if !is_uid(&self.org_unit) {
            return Err(format!(
                "org_unit '{}': the UID of the root organisation unit is needed",
                self.org_unit
            ));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(format!("page_size {}: expected 1 to 1000", self.page_size));
        }
        Ok(())
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Worth another attempt: network, timeout, 5xx, 429, an unreadable answer.
    Transient(String),
    /// Never worth another attempt as configured: 401/403 (token), 400/404/409.
    Refused(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Transient(m) | CallError::Refused(m) => f.write_str(m),
        }
    }
}

/// Fields asked of tracked entities (DHIS2 answers only what is asked).
const TE_FIELDS: &str = "trackedEntity,orgUnit,updatedAt,deleted,attributes[attribute,value],\
                         enrollments[enrollment,program,orgUnit,enrolledAt,occurredAt,deleted]";
const EVENT_FIELDS: &str = "event,status,program,programStage,enrollment,trackedEntity,orgUnit,\
                            occurredAt,updatedAt,deleted,dataValues[dataElement,value]";

#[derive(Debug, Clone)]
pub struct Dhis2Client {
    connector: Dhis2Connector,
    client: reqwest::Client,
}

impl Dhis2Client {
    pub fn new(connector: Dhis2Connector) -> Result<Dhis2Client, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(connector.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Dhis2Client { connector, client })
    }

    pub fn connector(&self) -> &Dhis2Connector {
        &self.connector
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/tracker/{path}",
            self.connector.url.trim_end_matches('/')
        )
    }

    /// GETs `path`; `None` when `one` record was asked for and DHIS2 does not know it.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        one: bool,
    ) -> Result<Option<Value>, CallError> {
        let url = self.url(path);
        let res = self
            .client
            .get(&url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("ApiToken {}", self.connector.token.trim()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .query(query)
            .send()
            .await
            .map_err(|e| CallError::Transient(format!("GET {url}: {e}")))?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND && one {
            return Ok(None);
        }
        if !status.is_success() {
            let msg = format!("GET {url}: HTTP {status}");
            let transient = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            return Err(if transient {
                CallError::Transient(msg)
            } else {
                CallError::Refused(msg)
            });
        }
        res.json::<Value>()
            .await
            .map(Some)
            .map_err(|e| CallError::Transient(format!("GET {url}: answer: {e}")))
    }

    fn paged(&self, program: &str, updated_after: Option<&str>, page: u32) -> Vec<(&str, String)> {
        let mut q = vec![
            ("program", program.to_string()),
            ("orgUnit", self.connector.org_unit.clone()),
            ("ouMode", "DESCENDANTS".to_string()),
            ("order", "updatedAt:asc".to_string()),
            ("page", page.to_string()),
            ("pageSize", self.connector.page_size.to_string()),
        ];
        if let Some(t) = updated_after {
            q.push(("updatedAfter", t.to_string()));
        }
        q
    }

    /// One page of a program's tracked entities updated at or after `updated_after`, oldest
    /// update first.
    pub async fn tracked_entities(
        &self,
        program: &str,
        updated_after: Option<&str>,
        page: u32,
    ) -> Result<Page<TrackedEntity>, CallError> {
        let mut q = self.paged(program, updated_after, page);
        q.push(("fields", TE_FIELDS.to_string()));
        let body = self
            .get("trackedEntities", &q, false)
            .await?
            .unwrap_or_default();
        read_page(&body, "trackedEntities").map_err(CallError::Transient)
    }

    /// One tracked entity with its enrolments in `program`; `None` when DHIS2 does not know it.
    pub async fn tracked_entity(
        &self,
        uid: &str,
        program: &str,
    ) -> Result<Option<TrackedEntity>, CallError> {
        if !is_uid(uid) {
            return Ok(None);
        }
        let q = [
            ("program", program.to_string()),
            ("fields", TE_FIELDS.to_string()),
        ];
        match self
            .get(&format!("trackedEntities/{uid}"), &q, true)
            .await?
        {
            Some(body) => serde_json::from_value(body)
                .map(Some)
                .map_err(|e| CallError::Transient(format!("tracked entity {uid}: {e}"))),
            None => Ok(None),
        }
    }

    /// One page of a program's events updated at or after `updated_after`, oldest first.
    pub async fn events(
        &self,
        program: &str,
        updated_after: Option<&str>,
        page: u32,
    ) -> Result<Page<Event>, CallError> {
        let mut q = self.paged(program, updated_after, page);
        q.push(("fields", EVENT_FIELDS.to_string()));
        let body = self.get("events", &q, false).await?.unwrap_or_default();
        read_page(&body, "events").map_err(CallError::Transient)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_shipped_mapping_is_valid() {
        let m = Mapping::embedded().unwrap();
        assert!(m.provisional);
        assert_eq!(m.programs.len(), 2);
        assert_eq!(m.area("OuHcNyarugB").unwrap().as_str(), "1101");
        assert_eq!(m.sex_of("Female"), Some("F"));
        assert_eq!(m.sex_of("other"), None);
    }

    #[test]
    fn a_bad_mapping_names_the_key() {
        let bad = EMBEDDED_MAPPING.replace(
            "kind = \"length\", unit = \"cm\"",
            "kind = \"length\", unit = \"kg\"",
        );
        let e = Mapping::parse_toml("m.toml", &bad).unwrap_err();
        assert_eq!(e.at, "stages[2].measurements[1].unit", "{e}");
        let bad = EMBEDDED_MAPPING.replace("OuHcGasaboC = \"1201\"", "OuHcGasaboC = \"12x\"");
        let e = Mapping::parse_toml("m.toml", &bad).unwrap_err();
        assert_eq!(e.at, "org_units.OuHcGasaboC", "{e}");
        let bad = EMBEDDED_MAPPING.replace("uid = \"StBirth01aB\"", "uid = \"short\"");
        let e = Mapping::parse_toml("m.toml", &bad).unwrap_err();
        assert_eq!(e.at, "stages[0].uid", "{e}");
    }

    #[test]
    fn pages_of_both_api_versions_are_read() {
        let v241 = json!({"pager": {"page": 2, "pageSize": 5},
            "trackedEntities": [{"trackedEntity": "AbCdEfGhIj1", "attributes": [
                {"attribute": "wKq3ChgvNmE", "value": " Keza "}]}]});
        let p: Page<TrackedEntity> = read_page(&v241, "trackedEntities").unwrap();
        assert_eq!((p.page, p.page_size, p.items.len()), (2, 5, 1));
        assert_eq!(p.items[0].attribute(Some("wKq3ChgvNmE")), Some("Keza"));
        let v240 = json!({"page": 1, "pageSize": 50, "instances": []});
        let p: Page<Event> = read_page(&v240, "events").unwrap();
        assert_eq!((p.page, p.page_size, p.items.len()), (1, 50, 0));
        assert!(read_page::<Event>(&json!({"x": 1}), "events").is_err());
    }

    #[test]
    fn stamps_are_read_in_dhis2_forms() {
        let t = parse_stamp("2024-03-01T10:15:30.1").unwrap();
        assert_eq!(format_stamp(t), "2024-03-01T10:15:30.100");
        assert_eq!(
            parse_stamp("2024-03-01T10:15:30Z")
                .map(format_stamp)
                .unwrap(),
            "2024-03-01T10:15:30.000"
        );
        assert_eq!(
            parse_stamp("2024-03-01T10:15:30.250+02:00")
                .map(format_stamp)
                .unwrap(),
            "2024-03-01T10:15:30.250"
        );
        assert!(parse_stamp("yesterday").is_none());
    }

    #[test]
    fn the_token_stays_out_of_logs() {
        let c = Dhis2Connector::new("http://h", "d2pat_secret", "OuRoot00001");
        assert!(!format!("{c:?}").contains("secret"));
        assert!(c.check().is_ok());
        let mut bad = c.clone();
        bad.org_unit = "x".into();
        assert!(bad.check().unwrap_err().starts_with("org_unit"));
    }
}
