//! Stored records as FHIR R4 resources.

use inkingi_store::children::{
    Encounter, Immunization, Measurement, PersonFacts, Pregnancy, Provenance, SourcePerson, Subject,
};
use inkingi_store::registry::PersonRecord;
use serde_json::{json, Value};

use super::parse::{
    CONTACT_TYPE, LOINC, SID_BIRTH_REGISTRATION, SID_NATIONAL_ID, SID_PERSON, UCUM,
};

fn gender(code: Option<&str>) -> Value {
    match code {
        Some("F") => json!("female"),
        Some("M") => json!("male"),
        _ => json!("unknown"),
    }
}

/// A registry person as a Patient; its id is the registry person id.
pub fn patient_from_registry(p: &PersonRecord) -> Value {
    let d = &p.person.data;
    let mut ids = vec![json!({"system": SID_PERSON, "value": p.person.id})];
    if let Some(n) = &d.national_id {
        ids.push(json!({"system": SID_NATIONAL_ID, "value": n.as_str()}));
    }
    if let Some(b) = &d.birth_registration {
        ids.push(json!({"system": SID_BIRTH_REGISTRATION, "value": b}));
    }
    let mut r = json!({
        "resourceType": "Patient",
        "id": p.person.id,
        "identifier": ids,
        "name": [{"family": d.family_name.as_str(), "given": [d.given_name.as_str()]}],
        "gender": gender(Some(&d.sex.to_string())),
    });
    if let Some(b) = d.birth_date {
        r["birthDate"] = json!(b.to_string());
    }
    if let Some(died) = p.person.died_on {
        r["deceasedDateTime"] = json!(died.to_string());
    }
    r
}

/// A person received but not (yet) linked, as a Patient; its id is the source person id.
pub fn patient_from_source(s: &SourcePerson) -> Value {
    let mut r = json!({
        "resourceType": "Patient",
        "id": s.id,
        "meta": meta(&s.provenance),
        "identifier": s.identifiers,
        "gender": gender(s.sex.as_deref()),
    });
    if s.given_name.is_some() || s.family_name.is_some() {
        r["name"] =
            json!([{"family": s.family_name, "given": s.given_name.iter().collect::<Vec<_>>()}]);
    }
    if let Some(b) = &s.birth_date {
        r["birthDate"] = json!(b);
    }
    r
}

fn meta(p: &Provenance) -> Value {
    json!({
        "source": p.source_system,
        "lastUpdated": p.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "tag": [{"system": "urn:inkingi:source-id", "code": p.source_id}],
    })
}

fn patient_ref(s: &Subject) -> Value {
    let id = s
        .person_id
        .or(s.source_person_id)
        .map(|u| u.to_string())
        .unwrap_or_default();
    json!({"reference": format!("Patient/{id}")})
}

pub fn immunization(f: &Immunization) -> Value {
    let mut r = json!({
        "resourceType": "Immunization",
        "id": f.id,
        "meta": meta(&f.provenance),
        "status": "completed",
        "vaccineCode": {"coding": [{"system": f.vaccine_system, "code": f.vaccine_code}]},
        "patient": patient_ref(&f.subject),
        "occurrenceDateTime": f.occurred_on.to_string(),
    });
    if let Some(v) = &f.vaccine {
        r["vaccineCode"]["text"] = json!(v);
    }
    if let Some(d) = f.dose_number {
        r["protocolApplied"] = if d == 0 {
            json!([{"doseNumberString": "0"}])
        } else {
            json!([{"doseNumberPositiveInt": d}])
        };
    }
    r
}

pub fn measurement(f: &Measurement) -> Value {
    json!({
        "resourceType": "Observation",
        "id": f.id,
        "meta": meta(&f.provenance),
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": f.loinc}]},
        "subject": patient_ref(&f.subject),
        "effectiveDateTime": f.measured_on.to_string(),
        "valueQuantity": {"value": f.value, "unit": f.unit, "system": UCUM, "code": f.unit},
    })
}

/// A pregnancy as the Observation(s) it came from: LMP (8665-2) and/or EDD (11778-8).
pub fn pregnancy(f: &Pregnancy) -> Vec<Value> {
    let one = |code: &str, suffix: &str, date: chrono::NaiveDate| {
        json!({
            "resourceType": "Observation",
            "id": format!("{}{suffix}", f.id),
            "meta": meta(&f.provenance),
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": patient_ref(&f.subject),
            "effectiveDateTime": f.provenance.received_at.date_naive().to_string(),
            "valueDateTime": date.to_string(),
        })
    };
    let mut out = Vec::new();
    if let Some(d) = f.lmp {
        out.push(one("8665-2", "-lmp", d));
    }
    if let Some(d) = f.edd {
        out.push(one("11778-8", "-edd", d));
    }
    out
}

pub fn encounter(f: &Encounter) -> Value {
    json!({
        "resourceType": "Encounter",
        "id": f.id,
        "meta": meta(&f.provenance),
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": CONTACT_TYPE, "code": f.kind}]}],
        "subject": patient_ref(&f.subject),
        "period": {"start": f.occurred_on.to_string()},
    })
}

/// A searchset Bundle of `resources`.
pub fn searchset(resources: Vec<Value>) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": resources.len(),
        "entry": resources.into_iter().map(|r| json!({
            "fullUrl": format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or("")),
            "resource": r,
            "search": {"mode": "match"},
        })).collect::<Vec<_>>(),
    })
}

/// The resources of one kind among a person's facts.
pub fn of_kind(facts: &PersonFacts, resource_type: &str) -> Vec<Value> {
    match resource_type {
        "Immunization" => facts.immunizations.iter().map(immunization).collect(),
        "Observation" => facts
            .measurements
            .iter()
            .map(measurement)
            .chain(facts.pregnancies.iter().flat_map(pregnancy))
            .collect(),
        _ => facts.encounters.iter().map(encounter).collect(),
    }
}
