//! Reading incoming FHIR R4 resources into what Inkingi stores. Every refusal is an
//! OperationOutcome issue whose `expression` names the element (FHIRPath-like, from the
//! resource or the Bundle entry), so a sender can find the fault.

use chrono::NaiveDate;
use inkingi_domain::children::schedule::{VaccineCodes, ATC, CVX};
use inkingi_store::children::MeasurementKind;
use serde_json::{json, Value};

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
/// Identifier systems that link a Patient or RelatedPerson to a registry person.
pub const SID_PERSON: &str = "urn:inkingi:person-id";
pub const SID_NATIONAL_ID: &str = "urn:inkingi:national-id";
pub const SID_BIRTH_REGISTRATION: &str = "urn:inkingi:birth-registration";
/// Contact types of an Encounter (also accepted: SNOMED CT prenatal visit / postpartum care).
pub const CONTACT_TYPE: &str = "urn:inkingi:contact-type";
pub const SNOMED: &str = "http://snomed.info/sct";
/// v3 RoleCode, for RelatedPerson.relationship.
pub const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";

/// The observation codes accepted, with what they measure.
pub const OBSERVATION_CODES: &[(&str, ObservationCode)] = &[
    ("29463-7", ObservationCode::Measure(MeasurementKind::Weight)),
    ("8302-2", ObservationCode::Measure(MeasurementKind::Height)),
    ("8306-3", ObservationCode::Measure(MeasurementKind::Length)),
    (
        "9843-4",
        ObservationCode::Measure(MeasurementKind::HeadCircumference),
    ),
    ("56072-2", ObservationCode::Measure(MeasurementKind::Muac)),
    ("8665-2", ObservationCode::LastMenstrualPeriod),
    ("11778-8", ObservationCode::EstimatedDelivery),
];

/// Inkingi's observation codes: HIV exposure of a child (`hiv-exposure`), whose
/// valueCodeableConcept is coded in [`HIV_EXPOSURE_VALUES`].
pub const INKINGI_OBSERVATION: &str = "urn:inkingi:observation";
pub const HIV_EXPOSURE_VALUES: &str = "urn:inkingi:hiv-exposure";

/// A child's HIV exposure as the mother-to-child-HIV tracker states it. Sealed when stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HivExposure {
    Exposed,
    NotExposed,
    Unknown,
}

impl HivExposure {
    pub const ALL: [HivExposure; 3] = [
        HivExposure::Exposed,
        HivExposure::NotExposed,
        HivExposure::Unknown,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            HivExposure::Exposed => "exposed",
            HivExposure::NotExposed => "not-exposed",
            HivExposure::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<HivExposure> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationCode {
    Measure(MeasurementKind),
    /// `urn:inkingi:observation|hiv-exposure`, valueCodeableConcept: sealed, health roles only.
    HivExposure(HivExposure),
    /// LOINC 8665-2, valueDateTime: starts or dates a pregnancy.
    LastMenstrualPeriod,
    /// LOINC 11778-8, valueDateTime.
    EstimatedDelivery,
}

/// One refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// OperationOutcome issue code: `invalid`, `required`, `value`, `code-invalid`, `not-found`,
    /// `not-supported`, `processing`, `forbidden`.
    pub code: &'static str,
    pub expression: String,
    pub diagnostics: String,
}

impl Issue {
    pub fn new(code: &'static str, expression: impl Into<String>, why: impl Into<String>) -> Self {
        Issue {
            code,
            expression: expression.into(),
            diagnostics: why.into(),
        }
    }
}

/// An OperationOutcome of error issues.
pub fn outcome(issues: &[Issue]) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(|i| json!({
            "severity": "error",
            "code": i.code,
            "diagnostics": i.diagnostics,
            "expression": [i.expression],
        })).collect::<Vec<_>>(),
    })
}

/// A person as received: Patient or RelatedPerson.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonIn {
    pub identifiers: Vec<(String, String)>,
    pub given: Option<String>,
    pub family: Option<String>,
    /// `M` or `F`.
    pub sex: Option<String>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// RelatedPerson only: the patient and the relationship (`mother`, `father`, `guardian`).
    pub patient: Option<String>,
    pub relationship: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImmunizationIn {
    pub patient: String,
    pub vaccine_system: String,
    pub vaccine_code: String,
    /// `None` when the code is well formed but not mapped yet (kept, flagged for mapping).
    pub vaccine: Option<String>,
    pub dose: Option<u32>,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservationIn {
    pub subject: String,
    pub code: ObservationCode,
    pub loinc: String,
    /// Measurements: the value in kg or cm; LMP/EDD: none.
    pub value: Option<f64>,
    pub unit: &'static str,
    /// The date measured, or for LMP/EDD the date the value states.
    pub date: NaiveDate,
    /// `Observation.valueQuantity.value` (or valueDateTime): where a value refusal points.
    pub value_path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EncounterIn {
    pub subject: String,
    /// `anc`, `pnc` or `other`.
    pub kind: String,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Patient(PersonIn),
    RelatedPerson(PersonIn),
    Immunization(ImmunizationIn),
    Observation(ObservationIn),
    Encounter(EncounterIn),
}

/// A parsed resource with what identifies it at its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub resource_type: &'static str,
    /// The source's id of the resource: `id`, else the first identifier (`system|value`),
    /// else the Bundle entry's fullUrl.
    pub source_id: String,
    /// `meta.source`, when the sender names its system.
    pub source_system: Option<String>,
    pub body: Body,
    /// Where this resource sits in the request (`Immunization`, `Bundle.entry[2].resource`).
    pub at: String,
}

/// The resource types accepted for create.
pub const SUPPORTED: &[&str] = &[
    "Patient",
    "RelatedPerson",
    "Immunization",
    "Observation",
    "Encounter",
];

/// Reads one resource at `at`; `full_url` is its Bundle entry's fullUrl; `today` bounds dates.
pub fn resource(
    r: &Value,
    at: &str,
    full_url: Option<&str>,
    vaccines: &VaccineCodes,
    today: NaiveDate,
) -> Result<Incoming, Vec<Issue>> {
    let mut issues = Vec::new();
    let Some(rt) = r.get("resourceType").and_then(Value::as_str) else {
        return Err(vec![Issue::new(
            "required",
            format!("{at}.resourceType"),
            "a resource needs resourceType",
        )]);
    };
    let Some(resource_type) = SUPPORTED.iter().copied().find(|s| *s == rt) else {
        return Err(vec![Issue::new(
            "not-supported",
            format!("{at}.resourceType"),
            format!("{rt} is not supported; supported: {}", SUPPORTED.join(", ")),
        )]);
    };
    let mut p = Path {
        at: at.to_string(),
        issues: &mut issues,
        today,
    };
    let body = match resource_type {
        "Patient" => person(&mut p, r, false).map(Body::Patient),
        "RelatedPerson" => person(&mut p, r, true).map(Body::RelatedPerson),
        "Immunization" => immunization(&mut p, r, vaccines).map(Body::Immunization),
        "Observation" => observation(&mut p, r).map(Body::Observation),
        _ => encounter(&mut p, r).map(Body::Encounter),
    };
    let source_id = source_id(r, full_url);
    if source_id.is_none() {
        issues.push(Issue::new(
            "required",
            format!("{at}.id"),
            "give the resource an id or an identifier (or a Bundle entry fullUrl): it is how \
             a resend is recognised and not stored twice",
        ));
    }
    let source_system = r
        .pointer("/meta/source")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect());
    match (body, source_id, issues.is_empty()) {
        (Some(body), Some(source_id), true) => Ok(Incoming {
            resource_type,
            source_id,
            source_system,
            body,
            at: at.to_string(),
        }),
        _ => Err(issues),
    }
}

fn source_id(r: &Value, full_url: Option<&str>) -> Option<String> {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    text(r.get("id"))
        .or_else(|| {
            let first = r.get("identifier")?.as_array()?.first()?;
            let value = text(first.get("value"))?;
            Some(match text(first.get("system")) {
                Some(s) => format!("{s}|{value}"),
                None => value,
            })
        })
        .or_else(|| full_url.map(str::to_string))
        .map(|s| s.chars().take(200).collect())
}

struct Path<'a> {
    at: String,
    issues: &'a mut Vec<Issue>,
    today: NaiveDate,
}

impl Path<'_> {
    fn fail(&mut self, code: &'static str, element: &str, why: impl Into<String>) {
        self.issues
            .push(Issue::new(code, format!("{}.{element}", self.at), why));
    }

    fn str<'v>(&mut self, r: &'v Value, element: &str) -> Option<&'v str> {
        match r.get(element) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.fail("invalid", element, "expected a string");
                None
            }
        }
    }

    /// A required reference `element.reference` to a `Patient`.
    fn reference(&mut self, r: &Value, element: &str) -> Option<String> {
        let Some(reference) = r.get(element).and_then(|v| v.get("reference")) else {
            self.fail(
                "required",
                element,
                format!("{element} is required: the Patient this is about"),
            );
            return None;
        };
        match reference.as_str().map(str::trim) {
            Some(s) if s.starts_with("Patient/") || s.starts_with("urn:uuid:") => {
                Some(s.to_string())
            }
            Some(s) => {
                self.fail(
                    "invalid",
                    &format!("{element}.reference"),
                    format!("'{s}': expected Patient/<id> or urn:uuid:<id>"),
                );
                None
            }
            None => {
                self.fail(
                    "invalid",
                    &format!("{element}.reference"),
                    "expected a string",
                );
                None
            }
        }
    }

    /// A FHIR date or dateTime, as its date; not in the future.
    fn date(&mut self, v: Option<&Value>, element: &str) -> Option<NaiveDate> {
        let Some(raw) = v else {
            self.fail("required", element, format!("{element} is required"));
            return None;
        };
        let s = raw.as_str().unwrap_or_default();
        let d = s
            .get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        match d {
            Some(d) if d > self.today => {
                self.fail("value", element, format!("{s} is in the future"));
                None
            }
            Some(d) => Some(d),
            None => {
                self.fail(
                    "invalid",
                    element,
                    format!("'{s}': expected a full date, YYYY-MM-DD[Thh:mm:ss+zz:zz]"),
                );
                None
            }
        }
    }

    /// The `coding` entries of a CodeableConcept, as (index, system, code).
    fn codings<'v>(&mut self, r: &'v Value, element: &str) -> Vec<(usize, &'v str, &'v str)> {
        let Some(concept) = r.get(element) else {
            self.fail("required", element, format!("{element} is required"));
            return Vec::new();
        };
        let list = concept
            .get("coding")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        list.iter()
            .enumerate()
            .filter_map(|(i, c)| {
                Some((
                    i,
                    c.get("system")?.as_str()?.trim(),
                    c.get("code")?.as_str()?.trim(),
                ))
            })
            .collect()
    }
}

fn person(p: &mut Path, r: &Value, related: bool) -> Option<PersonIn> {
    let mut identifiers = Vec::new();
    if let Some(list) = r.get("identifier").and_then(Value::as_array) {
        for (i, id) in list.iter().enumerate() {
            let system = id.get("system").and_then(Value::as_str).unwrap_or("");
            let value = id.get("value").and_then(Value::as_str).map(str::trim);
            match value {
                Some(v) if !v.is_empty() => identifiers.push((system.to_string(), v.to_string())),
                _ => p.fail(
                    "required",
                    &format!("identifier[{i}].value"),
                    "empty identifier",
                ),
            }
        }
    }
    let name = r.get("name").and_then(|n| n.get(0));
    let given = name
        .and_then(|n| n.get("given"))
        .and_then(|g| g.as_array())
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.trim().is_empty());
    let family = name
        .and_then(|n| n.get("family"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let sex = match p.str(r, "gender") {
        None => None,
        Some("male") => Some("M".to_string()),
        Some("female") => Some("F".to_string()),
        Some("other" | "unknown") => None,
        Some(g) => {
            p.fail(
                "code-invalid",
                "gender",
                format!("'{g}': expected male, female, other or unknown"),
            );
            None
        }
    };
    let birth_date = match p.str(r, "birthDate") {
        None => None,
        Some(b) => match inkingi_domain::registry::BirthDate::parse_on(b, p.today) {
            Ok(d) => Some(d.to_string()),
            Err(e) => {
                p.fail("value", "birthDate", e.to_string());
                None
            }
        },
    };
    let (patient, relationship) = if related {
        let patient = p.reference(r, "patient");
        let rel = relationship(r);
        (patient, rel)
    } else {
        (None, None)
    };
    if identifiers.is_empty() && (given.is_none() || family.is_none()) {
        p.fail(
            "required",
            "name",
            "a person needs an identifier or a name (given and family) to be linked",
        );
    }
    Some(PersonIn {
        identifiers,
        given,
        family,
        sex,
        birth_date,
        patient,
        relationship,
    })
}

/// The first v3 RoleCode coding of `relationship` that Inkingi knows: mother, father, guardian.
fn relationship(r: &Value) -> Option<String> {
    let concepts = r.get("relationship")?.as_array()?;
    concepts
        .iter()
        .flat_map(|c| {
            c.get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find_map(|c| {
            (c.get("system")?.as_str()? == ROLE_CODE).then_some(())?;
            match c.get("code")?.as_str()? {
                "MTH" | "NMTH" | "BIOMTH" => Some("mother".to_string()),
                "FTH" | "NFTH" | "BIOFTH" => Some("father".to_string()),
                "GUARD" => Some("guardian".to_string()),
                _ => None,
            }
        })
}

fn immunization(p: &mut Path, r: &Value, vaccines: &VaccineCodes) -> Option<ImmunizationIn> {
    match p.str(r, "status") {
        Some("completed") => {}
        Some(s) => p.fail(
            "value",
            "status",
            format!("'{s}': only completed immunizations are recorded"),
        ),
        None => p.fail("required", "status", "status is required (completed)"),
    }
    let patient = p.reference(r, "patient");
    let codings = p.codings(r, "vaccineCode");
    let known: Vec<_> = codings
        .iter()
        .filter(|(_, s, _)| VaccineCodes::known_system(s))
        .collect();
    let mut vaccine = None;
    if codings.is_empty() && r.get("vaccineCode").is_some() {
        p.fail(
            "required",
            "vaccineCode.coding",
            "no coding with a system and a code",
        );
    } else if !codings.is_empty() && known.is_empty() {
        p.fail(
            "code-invalid",
            "vaccineCode.coding",
            format!("a vaccine code needs the system {CVX} (CVX) or {ATC} (WHO ATC)"),
        );
    }
    // Prefer a coding that maps; else keep the first well-formed one, flagged for mapping.
    for (i, system, code) in &known {
        if !well_formed(system, code) {
            p.fail(
                "code-invalid",
                &format!("vaccineCode.coding[{i}].code"),
                format!("'{code}' is not a valid {} code", code_system_name(system)),
            );
            continue;
        }
        let mapped = vaccines.map(system, code).map(str::to_string);
        if vaccine.is_none() || (mapped.is_some() && matches!(vaccine, Some((_, _, None)))) {
            vaccine = Some((system.to_string(), code.to_string(), mapped));
        }
    }
    let dose = dose_number(p, r);
    let date = p.date(r.get("occurrenceDateTime"), "occurrenceDateTime");
    let (vaccine_system, vaccine_code, vaccine) = vaccine?;
    Some(ImmunizationIn {
        patient: patient?,
        vaccine_system,
        vaccine_code,
        vaccine,
        dose,
        date: date?,
    })
}

fn code_system_name(system: &str) -> &'static str {
    if system == CVX {
        "CVX"
    } else {
        "WHO ATC"
    }
}

/// CVX codes are 1–3 digits; ATC vaccine codes are J07 plus letters and digits (J07BF02).
fn well_formed(system: &str, code: &str) -> bool {
    if system == CVX {
        (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
    } else {
        let b = code.as_bytes();
        code.len() == 7
            && code.starts_with("J07")
            && b[3].is_ascii_uppercase()
            && b[4].is_ascii_uppercase()
            && b[5].is_ascii_digit()
            && b[6].is_ascii_digit()
    }
}

fn dose_number(p: &mut Path, r: &Value) -> Option<u32> {
    let applied = r.get("protocolApplied")?.get(0)?;
    if let Some(n) = applied.get("doseNumberPositiveInt") {
        return match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (1..=10).contains(&n) => Some(n),
            _ => {
                p.fail(
                    "value",
                    "protocolApplied[0].doseNumberPositiveInt",
                    format!("{n}: expected a dose number from 1 to 10"),
                );
                None
            }
        };
    }
    let s = applied.get("doseNumberString")?.as_str()?.trim();
    match s.parse::<u32>() {
        // "0" is how a birth dose (OPV 0) is numbered.
        Ok(n) if n <= 10 => Some(n),
        _ => {
            p.fail(
                "value",
                "protocolApplied[0].doseNumberString",
                format!("'{s}': expected a dose number from 0 to 10"),
            );
            None
        }
    }
}

fn observation(p: &mut Path, r: &Value) -> Option<ObservationIn> {
    match p.str(r, "status") {
        Some("final" | "amended" | "corrected" | "preliminary") => {}
        Some(s) => p.fail(
            "value",
            "status",
            format!("'{s}': expected final, amended, corrected or preliminary"),
        ),
        None => p.fail("required", "status", "status is required"),
    }
    let subject = p.reference(r, "subject");
    let codings = p.codings(r, "code");
    let hiv = codings
        .iter()
        .any(|(_, system, code)| *system == INKINGI_OBSERVATION && *code == "hiv-exposure");
    let code = if hiv {
        hiv_exposure(p, r).map(|v| ("hiv-exposure".to_string(), ObservationCode::HivExposure(v)))
    } else {
        codings.iter().find_map(|(_, system, code)| {
            (*system == LOINC).then_some(())?;
            OBSERVATION_CODES
                .iter()
                .find(|(c, _)| c == code)
                .map(|(c, k)| (c.to_string(), *k))
        })
    };
    if code.is_none() && !hiv && r.get("code").is_some() {
        let accepted: Vec<&str> = OBSERVATION_CODES.iter().map(|(c, _)| *c).collect();
        p.fail(
            "code-invalid",
            "code.coding",
            format!(
                "expected a LOINC ({LOINC}) code among {}, or {INKINGI_OBSERVATION} \
                 hiv-exposure",
                accepted.join(", ")
            ),
        );
    }
    let effective = p.date(r.get("effectiveDateTime"), "effectiveDateTime");
    let (loinc, code) = code?;
    let (value, unit, date, value_path) = match code {
        ObservationCode::HivExposure(_) => (
            None,
            "",
            effective?,
            format!("{}.valueCodeableConcept", p.at),
        ),
        ObservationCode::Measure(kind) => {
            let (v, unit) = quantity(p, r, kind)?;
            (
                Some(v),
                unit,
                effective?,
                format!("{}.valueQuantity.value", p.at),
            )
        }
        ObservationCode::LastMenstrualPeriod | ObservationCode::EstimatedDelivery => {
            // An expected delivery may lie ahead; an LMP may not.
            let raw = r.get("valueDateTime");
            let date = if code == ObservationCode::EstimatedDelivery {
                let mut future_ok = Path {
                    at: p.at.clone(),
                    issues: p.issues,
                    today: p.today + chrono::Days::new(366),
                };
                future_ok.date(raw, "valueDateTime")
            } else {
                p.date(raw, "valueDateTime")
            };
            effective?;
            (None, "", date?, format!("{}.valueDateTime", p.at))
        }
    };
    Some(ObservationIn {
        subject: subject?,
        code,
        loinc,
        value,
        unit,
        date,
        value_path,
    })
}

/// The HIV exposure coded in `valueCodeableConcept` ([`HIV_EXPOSURE_VALUES`]).
fn hiv_exposure(p: &mut Path, r: &Value) -> Option<HivExposure> {
    let codings = p.codings(r, "valueCodeableConcept");
    let found = codings
        .iter()
        .find(|(_, system, _)| *system == HIV_EXPOSURE_VALUES);
    match found.map(|(_, _, code)| (*code, HivExposure::parse(code))) {
        Some((_, Some(v))) => Some(v),
        other => {
            let what = other.map_or("no coding".to_string(), |(c, _)| format!("'{c}'"));
            p.fail(
                "code-invalid",
                "valueCodeableConcept.coding",
                format!("{what}: expected {HIV_EXPOSURE_VALUES} exposed, not-exposed or unknown"),
            );
            None
        }
    }
}

/// The value in kg (weight) or cm (lengths), converted from g, mm or m; must be positive.
fn quantity(p: &mut Path, r: &Value, kind: MeasurementKind) -> Option<(f64, &'static str)> {
    let Some(q) = r.get("valueQuantity") else {
        p.fail(
            "required",
            "valueQuantity",
            "a measurement needs valueQuantity",
        );
        return None;
    };
    let Some(v) = q.get("value").and_then(Value::as_f64) else {
        p.fail("required", "valueQuantity.value", "expected a number");
        return None;
    };
    let unit = q
        .get("code")
        .or_else(|| q.get("unit"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let weight = kind == MeasurementKind::Weight;
    let factor = match (weight, unit) {
        (true, "kg") | (false, "cm") => 1.0,
        (true, "g") | (false, "mm") => 0.001 * if weight { 1.0 } else { 100.0 },
        (false, "m") => 100.0,
        _ => {
            let want = if weight { "kg or g" } else { "cm, mm or m" };
            p.fail(
                "code-invalid",
                "valueQuantity.code",
                format!("unit '{unit}': expected UCUM {want}"),
            );
            return None;
        }
    };
    if !v.is_finite() || v <= 0.0 {
        p.fail(
            "value",
            "valueQuantity.value",
            format!(
                "{v} {unit}: a {} must be positive",
                kind.as_str().replace('_', " ")
            ),
        );
        return None;
    }
    Some((v * factor, if weight { "kg" } else { "cm" }))
}

fn encounter(p: &mut Path, r: &Value) -> Option<EncounterIn> {
    match p.str(r, "status") {
        Some("finished" | "in-progress" | "arrived") => {}
        Some(s) => p.fail(
            "value",
            "status",
            format!("'{s}': expected finished, in-progress or arrived"),
        ),
        None => p.fail("required", "status", "status is required"),
    }
    let subject = p.reference(r, "subject");
    let types = r
        .get("type")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut kind = None;
    for t in types {
        for c in t
            .get("coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let system = c.get("system").and_then(Value::as_str).unwrap_or("");
            let code = c.get("code").and_then(Value::as_str).unwrap_or("");
            kind = kind.or(match (system, code) {
                (CONTACT_TYPE, "anc") | (SNOMED, "424619006") => Some("anc"),
                (CONTACT_TYPE, "pnc") | (SNOMED, "133906008") => Some("pnc"),
                (CONTACT_TYPE, "other") => Some("other"),
                _ => None,
            });
        }
    }
    if kind.is_none() {
        p.fail(
            "code-invalid",
            "type",
            format!(
                "expected a type coding {CONTACT_TYPE} anc|pnc|other, or SNOMED CT 424619006 \
                 (prenatal visit) / 133906008 (postpartum care)"
            ),
        );
    }
    let date = p.date(r.pointer("/period/start"), "period.start");
    Some(EncounterIn {
        subject: subject?,
        kind: kind?.to_string(),
        date: date?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use inkingi_domain::children::schedule::Schedules;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
    }

    fn parse(r: Value) -> Result<Incoming, Vec<Issue>> {
        let v = &Schedules::embedded().unwrap().vaccines;
        resource(&r, "Bundle.entry[1].resource", None, v, today())
    }

    fn expressions(r: Value) -> Vec<String> {
        parse(r)
            .unwrap_err()
            .into_iter()
            .map(|i| i.expression)
            .collect()
    }

    fn imm(code: &str) -> Value {
        json!({"resourceType": "Immunization", "id": "i1", "status": "completed",
            "patient": {"reference": "Patient/p1"},
            "vaccineCode": {"coding": [{"system": CVX, "code": code}]},
            "occurrenceDateTime": "2026-01-15T09:00:00+02:00",
            "protocolApplied": [{"doseNumberPositiveInt": 1}]})
    }

    #[test]
    fn immunizations_map_keep_unknown_and_refuse_malformed_codes() {
        let Body::Immunization(i) = parse(imm("19")).unwrap().body else {
            panic!()
        };
        assert_eq!((i.vaccine.as_deref(), i.dose), (Some("BCG"), Some(1)));
        let Body::Immunization(i) = parse(imm("998")).unwrap().body else {
            panic!()
        };
        assert_eq!((i.vaccine_code.as_str(), i.vaccine), ("998", None));
        assert_eq!(
            expressions(imm("BCG")),
            ["Bundle.entry[1].resource.vaccineCode.coding[0].code"]
        );
        let mut no_subject = imm("19");
        no_subject.as_object_mut().unwrap().remove("patient");
        assert_eq!(
            expressions(no_subject),
            ["Bundle.entry[1].resource.patient"]
        );
    }

    #[test]
    fn measurements_convert_units_and_refuse_negative_values() {
        let obs = |v: f64, unit: &str| {
            json!({"resourceType": "Observation", "id": "o1", "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "8306-3"}]},
                "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-05-01",
                "valueQuantity": {"value": v, "system": UCUM, "code": unit}})
        };
        let Body::Observation(o) = parse(obs(655.0, "mm")).unwrap().body else {
            panic!()
        };
        assert!((o.value.unwrap() - 65.5).abs() < 1e-9);
        assert_eq!(
            expressions(obs(-3.0, "cm")),
            ["Bundle.entry[1].resource.valueQuantity.value"]
        );
        assert_eq!(
            expressions(obs(60.0, "lb")),
            ["Bundle.entry[1].resource.valueQuantity.code"]
        );
    }

    #[test]
    fn outcomes_are_fhir_operation_outcomes() {
        let o = outcome(&[Issue::new("required", "Immunization.patient", "missing")]);
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(o["issue"][0]["expression"][0], "Immunization.patient");
        assert_eq!(o["issue"][0]["severity"], "error");
    }
}
