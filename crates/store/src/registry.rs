//! Port of the `registry` context: households, people, memberships, relationships, form
//! versions and the event history (schema: migrations `0008_registry`).
//!
//! Shared write types live here: a household is always written together with its members and
//! its `household.registered` event, whether it comes from the API, a change request or a bulk
//! import, so there is one definition of what a new household is.

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::search::skeletons;
use inkingi_domain::registry::{HouseholdInput, MemberRole, PersonInput, RegistryNumber};
use uuid::Uuid;

/// Who changes the registry, how and why: written on every event row.
#[derive(Debug, Clone)]
pub struct EventMeta {
    pub actor: String,
    pub channel: Channel,
    pub reason: Option<String>,
    pub change_request_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// A household to register, with its members (exactly one head; checked by the caller with
/// [`inkingi_domain::registry::model::check_one_head`]).
#[derive(Debug, Clone)]
pub struct NewHousehold {
    pub id: Uuid,
    pub registry_number: RegistryNumber,
    pub input: HouseholdInput,
    pub form_id: String,
    pub form_version: u32,
    /// `<source>:<key>` for imported rows; makes re-imports idempotent.
    pub source_key: Option<String>,
    pub members: Vec<NewMember>,
}

/// A person joining a household.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub id: Uuid,
    pub person: PersonInput,
    pub role: MemberRole,
    pub since: NaiveDate,
    pub mother_id: Option<Uuid>,
    pub father_id: Option<Uuid>,
    pub guardian_id: Option<Uuid>,
    pub source_key: Option<String>,
}

/// The indexed name keys of a person: the skeletons of the first given-name and first
/// family-name tokens (see [`inkingi_domain::registry::search`]).
pub fn name_skeletons(p: &PersonInput) -> (String, String) {
    let first = |s: &str| skeletons(s).into_iter().next().unwrap_or_default();
    (first(p.given_name.as_str()), first(p.family_name.as_str()))
}

/// The half-open text range `[code, code + ':')` of village codes inside an area: ':' sorts
/// right after '9', so the range holds exactly the codes starting with `code`, and both
/// backends answer it from an index on the code.
pub fn area_range(code: &str) -> (String, String) {
    (code.to_string(), format!("{code}:"))
}
