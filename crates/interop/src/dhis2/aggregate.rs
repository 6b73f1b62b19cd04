//! DHIS2's aggregate data import, `POST /api/dataValueSets`, as Inkingi pushes child
//! indicators: one data value set per organisation unit and monthly period, and the import
//! summary DHIS2 answers (status, import count, conflicts).
//!
//! Payload (DHIS2 developer guide, "Data values" → "Sending data values"):
//! `{"dataSet", "completeDate", "period", "orgUnit", "dataValues": [{"dataElement",
//! "categoryOptionCombo", "value"}]}`. Answer: an `ImportSummary` — `{"status":
//! "SUCCESS"|"WARNING"|"ERROR", "description", "importCount": {"imported", "updated",
//! "ignored", "deleted"}, "conflicts": [{"object", "value"}]}` — at the top level (older
//! versions) or as the `response` of a web message (`{"httpStatus", "httpStatusCode", "status",
//! "message", "response": {"responseType": "ImportSummary", …}}`), which recent versions send
//! with HTTP 409 when the import had conflicts (dhis2-core pull requests #782, #8583). Both
//! shapes and both codes are read.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{is_uid, CallError, Dhis2Client};
use inkingi_domain::areas::AreaCode;

/// The part of an indicator a data element receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Numerator,
    Denominator,
    /// Prevalence indicators: moderate cases.
    Moderate,
    /// Prevalence indicators: severe cases.
    Severe,
}

/// One indicator part → one data element and category option combination.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElementMap {
    /// An indicator code (`fic12`, `stunting`, …; see docs/CHILDREN.md).
    pub indicator: String,
    pub part: Part,
    pub data_element: String,
    /// The category option combination; DHIS2's default one when omitted.
    pub category_option_combo: Option<String>,
}

/// `[aggregate]` of the mapping: where indicators go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateMapping {
    /// The data set the values belong to (optional for DHIS2).
    pub data_set: Option<String>,
    /// Sector code (4 digits) → organisation unit UID receiving its values.
    pub org_units: std::collections::BTreeMap<String, String>,
    pub data_elements: Vec<ElementMap>,
}

impl AggregateMapping {
    /// Checks UIDs and sector codes; `known` says whether an indicator code exists.
    pub fn check(&self, known: impl Fn(&str) -> bool) -> Result<(), (String, String)> {
        let uid = |at: String, v: &str| {
            if is_uid(v) {
                Ok(())
            } else {
                Err((at, format!("'{v}' is not a DHIS2 UID")))
            }
        };
        if let Some(ds) = &self.data_set {
            uid("aggregate.data_set".into(), ds)?;
        }
        for (sector, ou) in &self.org_units {
            let at = format!("aggregate.org_units.{sector}");
            let code = AreaCode::parse(sector).map_err(|e| (at.clone(), e.to_string()))?;
            if code.as_str().len() != 4 {
                return Err((at, format!("'{sector}' is not a sector code (4 digits)")));
            }
            uid(at, ou)?;
        }
        for (i, e) in self.data_elements.iter().enumerate() {
            let at = format!("aggregate.data_elements[{i}]");
            if !known(&e.indicator) {
                return Err((
                    format!("{at}.indicator"),
                    format!("'{}' is not an indicator", e.indicator),
                ));
            }
            uid(format!("{at}.data_element"), &e.data_element)?;
            if let Some(c) = &e.category_option_combo {
                uid(format!("{at}.category_option_combo"), c)?;
            }
        }
        Ok(())
    }
}

/// One value sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataValueOut {
    pub data_element: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_option_combo: Option<String>,
    pub value: String,
}

/// A data value set: one organisation unit, one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataValueSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_date: Option<String>,
    /// `YYYYMM`.
    pub period: String,
    pub org_unit: String,
    pub data_values: Vec<DataValueOut>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCount {
    #[serde(default)]
    pub imported: i64,
    #[serde(default)]
    pub updated: i64,
    #[serde(default)]
    pub ignored: i64,
    #[serde(default)]
    pub deleted: i64,
}

/// A value DHIS2 did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// What was refused (a UID, a value).
    pub object: String,
    /// Why.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// `SUCCESS`, `WARNING` or `ERROR`.
    pub status: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub import_count: ImportCount,
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
}

/// Reads an import summary from either answer shape.
pub fn read_import_summary(body: &Value) -> Result<ImportSummary, String> {
    let inner = match body.get("response") {
        Some(r) if r.get("importCount").is_some() || r.get("status").is_some() => r,
        _ => body,
    };
    let s: ImportSummary =
        serde_json::from_value(inner.clone()).map_err(|e| format!("not an import summary: {e}"))?;
    if !matches!(s.status.as_str(), "SUCCESS" | "WARNING" | "ERROR" | "OK") {
        return Err(format!("import summary status '{}' is not known", s.status));
    }
    Ok(s)
}

impl Dhis2Client {
    /// Sends one data value set and returns DHIS2's import summary (also when it reports
    /// conflicts with HTTP 409).
    pub async fn push_data_values(&self, set: &DataValueSet) -> Result<ImportSummary, CallError> {
        let url = format!(
            "{}/api/dataValueSets",
            self.connector.url.trim_end_matches('/')
        );
        let res = self
            .client
            .post(&url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("ApiToken {}", self.connector.token.trim()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .json(set)
            .send()
            .await
            .map_err(|e| CallError::Transient(format!("POST {url}: {e}")))?;
        let status = res.status();
        let conflict = status == reqwest::StatusCode::CONFLICT;
        if !status.is_success() && !conflict {
            let msg = format!("POST {url}: HTTP {status}");
            let transient = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            return Err(if transient {
                CallError::Transient(msg)
            } else {
                CallError::Refused(msg)
            });
        }
        let body: Value = res
            .json()
            .await
            .map_err(|e| CallError::Transient(format!("POST {url}: answer: {e}")))?;
        read_import_summary(&body).map_err(|e| {
            let m = format!("POST {url}: {e}");
            // A 409 that is not an import summary is a refusal, not a summary to keep.
            if conflict {
                CallError::Refused(m)
            } else {
                CallError::Transient(m)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_answer_shapes_are_read() {
        let old = json!({"responseType": "ImportSummary", "status": "SUCCESS",
            "importCount": {"imported": 2, "updated": 1, "ignored": 0, "deleted": 0}});
        let s = read_import_summary(&old).expect("old shape");
        assert_eq!(s.import_count.imported, 2);
        let new = json!({"httpStatus": "Conflict", "httpStatusCode": 409, "status": "WARNING",
            "response": {"responseType": "ImportSummary", "status": "WARNING",
            "importCount": {"imported": 1, "updated": 0, "ignored": 1, "deleted": 0},
            "conflicts": [{"object": "DeFic12NumA", "value": "Data element not found"}]}});
        let s = read_import_summary(&new).expect("web message");
        assert_eq!(s.status, "WARNING");
        assert_eq!(s.conflicts[0].object, "DeFic12NumA");
        assert!(read_import_summary(&json!({"status": "MAYBE"})).is_err());
    }

    #[test]
    fn the_payload_is_camel_cased() {
        let set = DataValueSet {
            data_set: None,
            complete_date: None,
            period: "202603".into(),
            org_unit: "OuHcNyarugB".into(),
            data_values: vec![DataValueOut {
                data_element: "DeFic12NumA".into(),
                category_option_combo: None,
                value: "3".into(),
            }],
        };
        let v = serde_json::to_value(&set).expect("json");
        assert_eq!(v["orgUnit"], "OuHcNyarugB");
        assert_eq!(v["dataValues"][0]["dataElement"], "DeFic12NumA");
        assert!(v.get("dataSet").is_none());
    }
}
