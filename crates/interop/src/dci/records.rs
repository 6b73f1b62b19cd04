//! Registry records as DCI data objects: a person as `SRPerson` inside a `Member`, a household
//! as a `Group` with its members (social registry extension, v1).

use chrono::{DateTime, Utc};
use inkingi_domain::registry::{Household, Sex};
use inkingi_store::registry::PersonRecord;
use serde_json::{json, Map, Value};

/// Identifier type of Rwanda's national ID (a unique identification number).
pub const ID_NATIONAL: &str = "UIN";
/// Identifier type of a birth registration number.
pub const ID_BIRTH_REGISTRATION: &str = "BRN";
/// Identifier type of a household's registry number.
pub const ID_HOUSEHOLD: &str = "HHID";

fn identifier(kind: &str, value: &str) -> Value {
    json!({"@type": "Identifier", "identifier_type": kind, "identifier_value": value})
}

fn ts(t: DateTime<Utc>) -> String {
    super::envelope::timestamp(t)
}

/// A person's demographic info (`SRPerson`).
pub fn person(p: &PersonRecord, household: Option<&Household>) -> Value {
    let d = &p.person.data;
    let mut ids = Vec::new();
    if let Some(n) = &d.national_id {
        ids.push(identifier(ID_NATIONAL, n.as_str()));
    }
    if let Some(b) = &d.birth_registration {
        ids.push(identifier(ID_BIRTH_REGISTRATION, b));
    }
    if let Some(r) = &d.refugee_id {
        ids.push(identifier("RefugeeID", r));
    }
    if let Some(pp) = &d.passport {
        ids.push(identifier("Passport", pp));
    }
    let mut m = Map::new();
    m.insert("@type".into(), json!("SRPerson"));
    m.insert("identifier".into(), Value::Array(ids));
    m.insert(
        "name".into(),
        json!({"@type": "Name", "given_name": d.given_name.as_str(), "surname": d.family_name.as_str()}),
    );
    m.insert(
        "sex".into(),
        json!(match d.sex {
            Sex::Female => "female",
            Sex::Male => "male",
        }),
    );
    if let Some(b) = &d.birth_date {
        // As recorded: YYYY, YYYY-MM or YYYY-MM-DD (the registry keeps the known precision).
        m.insert("birth_date".into(), json!(b.to_string()));
    }
    if let Some(died) = p.person.died_on {
        m.insert("death_date".into(), json!(died.to_string()));
    }
    if let Some(phone) = d.phones.first() {
        m.insert("phone_number".into(), json!(phone.as_str()));
    }
    if let Some(addr) = address(p, household) {
        m.insert("address".into(), addr);
    }
    m.insert("registration_date".into(), json!(ts(p.person.created_at)));
    Value::Object(m)
}

fn address(p: &PersonRecord, household: Option<&Household>) -> Option<Value> {
    let village = p.person.village.as_ref()?;
    let mut a = Map::new();
    a.insert("@type".into(), json!("Address"));
    if let Some(street) = household.and_then(|h| h.address.as_deref()) {
        a.insert("street_address".into(), json!(street));
    }
    // NISR village code: its leading digits name the province, district, sector and cell.
    a.insert("village_code".into(), json!(village.as_str()));
    a.insert("country".into(), json!("RW"));
    Some(Value::Object(a))
}

/// A person as a household `Member`.
pub fn member(p: &PersonRecord, household: Option<&Household>) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), json!("spdci:Member"));
    m.insert(
        "@id".into(),
        json!(format!("urn:inkingi:person:{}", p.person.id)),
    );
    m.insert(
        "member_identifier".into(),
        json!([identifier("InkingiPersonId", &p.person.id.to_string())]),
    );
    m.insert("demographic_info".into(), person(p, household));
    if let Some(role) = p.role {
        m.insert("relationship_head".into(), json!(role.as_str()));
    }
    if let Some(h) = household {
        m.insert(
            "group_identifier".into(),
            json!([identifier(ID_HOUSEHOLD, h.registry_number.as_str())]),
        );
    }
    if let Some(since) = p.member_since {
        m.insert("registration_date".into(), json!(since.to_string()));
    }
    m.insert("last_updated".into(), json!(ts(p.person.updated_at)));
    Value::Object(m)
}

/// A household as a `Group` with its current members (head first). `poverty_score` is left
/// out until targeting stores scores.
pub fn group(h: &Household, members: &[PersonRecord]) -> Value {
    let mut place = Map::new();
    place.insert("@type".into(), json!("Place"));
    if let Some(a) = &h.address {
        place.insert("address".into(), json!(a));
    }
    place.insert("village_code".into(), json!(h.village.as_str()));
    if let Some(g) = h.gps {
        place.insert(
            "geo".into(),
            json!({"@type": "GeoCoordinates", "latitude": g.lat.to_string(), "longitude": g.lon.to_string()}),
        );
    }
    let list: Vec<Value> = members.iter().map(|p| member(p, Some(h))).collect();
    let head = members
        .iter()
        .find(|p| p.role == Some(inkingi_domain::registry::MemberRole::Head))
        .map(|p| member(p, Some(h)));
    let mut g = Map::new();
    g.insert("@type".into(), json!("spdci:Group"));
    g.insert(
        "@id".into(),
        json!(format!("urn:inkingi:household:{}", h.id)),
    );
    g.insert(
        "group_identifier".into(),
        json!([identifier(ID_HOUSEHOLD, h.registry_number.as_str())]),
    );
    g.insert("group_type".into(), json!("household"));
    g.insert("place".into(), Value::Object(place));
    g.insert("group_size".into(), json!(members.len()));
    if let Some(head) = head {
        g.insert("group_head_info".into(), head);
    }
    g.insert("member_list".into(), Value::Array(list));
    g.insert("registration_date".into(), json!(ts(h.created_at)));
    g.insert("last_updated".into(), json!(ts(h.updated_at)));
    g.insert("status".into(), json!(h.status.as_str()));
    Value::Object(g)
}
