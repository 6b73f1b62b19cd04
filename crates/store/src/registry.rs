//! Port of the `registry` context: households, people, memberships, relationships, form
//! versions and the event history (schema: migrations `0008_registry`).
//!
//! Shared write types live here: a household is always written together with its members and
//! its `household.registered` event, whether it comes from the API, a change request or a bulk
//! import, so there is one definition of what a new household is.

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::form::FormSchema;
use inkingi_domain::registry::history::{Channel, Entity, HouseholdDoc, RegistryEvent};
use inkingi_domain::registry::search::skeletons;
use inkingi_domain::registry::{
    BirthDate, Gps, Household, HouseholdInput, HouseholdStatus, MemberRole, Name, NationalId,
    Person, PersonInput, PhoneNumber, RegistryNumber, Sex,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::{StoreError, StoreResult, UnitOfWork};

mod apply;
mod logic;
mod merge;
pub mod names;
pub use apply::ChangeApplier;
pub mod query;
pub(crate) use logic::{
    ensure_default_form, HouseholdFilter, PeopleFilter, RegistryBackend, RegistryConn,
};
pub use query::{CmpOp, Condition, PeoplePage, PeopleQuery, PersonField, PersonFilter, PersonSort};

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

/// A person's mother, father and guardian, by person id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relatives {
    pub mother: Option<Uuid>,
    pub father: Option<Uuid>,
    pub guardian: Option<Uuid>,
}

/// A person's new identity fields, answers and relatives.
#[derive(Debug, Clone)]
pub struct PersonChange {
    pub input: PersonInput,
    pub relatives: Relatives,
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

impl NewMember {
    pub fn relatives(&self) -> Relatives {
        Relatives {
            mother: self.mother_id,
            father: self.father_id,
            guardian: self.guardian_id,
        }
    }
}

impl PersonRecord {
    pub fn relatives(&self) -> Relatives {
        Relatives {
            mother: self.mother_id,
            father: self.father_id,
            guardian: self.guardian_id,
        }
    }
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

/// Registry store errors callers distinguish: a write against an old version.
pub fn stale(what: &str, expected: i64, current: i64) -> StoreError {
    StoreError::Stale {
        what: what.to_string(),
        expected,
        current,
    }
}

/// A person as stored now, with their current membership and family links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonRecord {
    #[serde(flatten)]
    pub person: Person,
    pub role: Option<MemberRole>,
    pub member_since: Option<NaiveDate>,
    pub mother_id: Option<Uuid>,
    pub father_id: Option<Uuid>,
    pub guardian_id: Option<Uuid>,
    #[serde(skip)]
    pub source_key: Option<String>,
}

/// Where a household list page starts: after this (village, id) in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdCursor {
    pub village: String,
    pub id: Uuid,
}

impl HouseholdCursor {
    /// The opaque text form handed to API callers: `<village>.<uuid simple>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.village, self.id.simple())
    }

    pub fn decode(s: &str) -> Option<HouseholdCursor> {
        let (village, id) = s.split_once('.')?;
        if village.is_empty() || !village.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(HouseholdCursor {
            village: village.to_string(),
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Filters of [`RegistryStore::list_households`]; ordered by (village, id) so pages are stable.
#[derive(Debug, Clone, Default)]
pub struct HouseholdQuery {
    pub area: Option<AreaCode>,
    pub status: Option<HouseholdStatus>,
    pub after: Option<HouseholdCursor>,
    pub limit: u32,
}

/// A people search. Identifiers are matched exactly and combine as an intersection (people
/// matching every identifier given); the name is matched fuzzily. With identifiers and a name,
/// the result is the people matching the identifiers, ranked by the name.
#[derive(Debug, Clone, Default)]
pub struct PersonSearch {
    pub name: Option<String>,
    pub national_id: Option<NationalId>,
    pub phone: Option<PhoneNumber>,
    pub registry_number: Option<RegistryNumber>,
    pub limit: u32,
}

/// One search result with its score: Jaro–Winkler name similarity when a name was given, else 1
/// (an identifier match).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonHit {
    #[serde(flatten)]
    pub record: PersonRecord,
    pub score: f64,
}

/// Hits below this similarity are noise.
pub const MIN_NAME_SCORE: f64 = 0.8;

/// A published form version.
#[derive(Debug, Clone, PartialEq)]
pub struct FormRecord {
    pub schema: FormSchema,
    pub published_at: DateTime<Utc>,
    pub published_by: String,
}

#[async_trait::async_trait]
pub trait RegistryStore: Send + Sync {
    // --- writes: inside the caller's unit of work, each with its event ---

    /// Registers a household with its members and one `household.registered` event. A taken
    /// registry number, national ID or source key is a [`StoreError::Conflict`] naming it.
    async fn register_household(
        &self,
        uow: &mut UnitOfWork,
        new: &NewHousehold,
        meta: &EventMeta,
    ) -> StoreResult<Household>;

    /// Replaces the household's editable fields (village, address, GPS, answers and their form
    /// version) if its version is still `expected`; writes a `household.updated` event holding
    /// only what changed. Outside `scope` it does not exist.
    async fn update_household(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        id: Uuid,
        expected: i64,
        change: &HouseholdChange,
        meta: &EventMeta,
    ) -> StoreResult<Household>;

    /// Replaces a person's identity fields, member answers and relatives if their version is
    /// still `expected`; writes a `member.updated` event with only what changed (under their
    /// last household when they have left every household). Relatives are checked as at
    /// registration.
    async fn update_person(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        id: Uuid,
        expected: i64,
        change: &PersonChange,
        meta: &EventMeta,
    ) -> StoreResult<PersonRecord>;

    /// Adds a new person to a household (`member.added`). Adding a second head is refused.
    async fn add_member(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        household_id: Uuid,
        member: &NewMember,
        meta: &EventMeta,
    ) -> StoreResult<PersonRecord>;

    /// Ends a person's current membership (moved out, died…): the membership moves to the past
    /// memberships and a `member.removed` event keeps the member's full state. The head can
    /// leave only as the last member, which dissolves the household.
    async fn end_membership(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        person_id: Uuid,
        end: NaiveDate,
        reason: &str,
        meta: &EventMeta,
    ) -> StoreResult<()>;

    /// Changes the roles of members of one household together (a new head and the old head's
    /// new role); refused unless exactly one head remains. One `member.role_changed` event per
    /// changed member.
    async fn change_roles(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        household_id: Uuid,
        roles: &[(Uuid, MemberRole)],
        meta: &EventMeta,
    ) -> StoreResult<Vec<PersonRecord>>;

    // --- reads: every one that returns personal data takes the reader's scope ---

    async fn household(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<Household>>;
    async fn household_by_number(
        &self,
        scope: &AreaScope,
        number: &RegistryNumber,
    ) -> StoreResult<Option<Household>>;
    /// The village of a household or person whatever the scope (no personal data): lets the
    /// caller audit a refused look-up with its area.
    async fn locate(&self, id: Uuid) -> StoreResult<Option<AreaCode>>;
    async fn person(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<PersonRecord>>;
    /// Current members, head first, then by birth date.
    async fn members(
        &self,
        scope: &AreaScope,
        household_id: Uuid,
    ) -> StoreResult<Vec<PersonRecord>>;
    async fn list_households(
        &self,
        scope: &AreaScope,
        q: &HouseholdQuery,
    ) -> StoreResult<Vec<Household>>;
    /// Ranked people; at most `limit`.
    async fn search_people(
        &self,
        scope: &AreaScope,
        q: &PersonSearch,
    ) -> StoreResult<Vec<PersonHit>>;
    /// People matching a structured query, one page, with the total count.
    async fn find_people(
        &self,
        scope: &AreaScope,
        q: &PeopleQuery,
    ) -> StoreResult<PeoplePage<PersonRecord>>;
    /// The current households having at least one member matching `filter`, by id, one page,
    /// with the total count.
    async fn find_households(
        &self,
        scope: &AreaScope,
        filter: &PersonFilter,
        limit: u32,
        offset: u64,
        max_candidates: u64,
    ) -> StoreResult<PeoplePage<Uuid>>;
    /// Events of a household in time order, optionally only those after `after`.
    async fn events(
        &self,
        scope: &AreaScope,
        household_id: Uuid,
        after: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<RegistryEvent>>;

    // --- the questionnaire ---

    /// Publishes `schema` as the next version of its form: its version must be the latest + 1.
    async fn publish_form(&self, schema: &FormSchema, by: &str) -> StoreResult<FormRecord>;
    async fn latest_form(&self, form_id: &str) -> StoreResult<Option<FormRecord>>;
    async fn form(&self, form_id: &str, version: u32) -> StoreResult<Option<FormRecord>>;
}

/// The editable fields of a household.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdChange {
    pub input: HouseholdInput,
    pub form_version: u32,
}

/// The fields of a household as they appear in events and in [`HouseholdDoc`].
pub fn household_fields(h: &Household) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("registry_number".into(), json!(h.registry_number));
    m.insert("village".into(), json!(h.village));
    m.insert("address".into(), json!(h.address));
    m.insert("gps".into(), json!(h.gps));
    m.insert("form_id".into(), json!(h.form_id));
    m.insert("form_version".into(), json!(h.form_version));
    m.insert("answers".into(), Value::Object(h.answers.clone()));
    m.insert("status".into(), json!(h.status));
    m
}

/// The fields of a member (person and membership) as they appear in events and documents.
pub fn member_fields(p: &PersonRecord) -> Map<String, Value> {
    let d = &p.person.data;
    let mut m = Map::new();
    m.insert("given_name".into(), json!(d.given_name));
    m.insert("family_name".into(), json!(d.family_name));
    m.insert("sex".into(), json!(d.sex));
    m.insert("birth_date".into(), json!(d.birth_date));
    m.insert("national_id".into(), json!(d.national_id));
    m.insert("birth_registration".into(), json!(d.birth_registration));
    m.insert("refugee_id".into(), json!(d.refugee_id));
    m.insert("passport".into(), json!(d.passport));
    m.insert("phones".into(), json!(d.phones));
    m.insert("answers".into(), Value::Object(d.answers.clone()));
    m.insert("died_on".into(), json!(p.person.died_on));
    m.insert("role".into(), json!(p.role));
    m.insert("member_since".into(), json!(p.member_since));
    m.insert("mother_id".into(), json!(p.mother_id));
    m.insert("father_id".into(), json!(p.father_id));
    m.insert("guardian_id".into(), json!(p.guardian_id));
    m
}

/// The current household and members as one document (what `as_of` rewinds).
pub fn household_doc(h: &Household, members: &[PersonRecord]) -> HouseholdDoc {
    HouseholdDoc {
        household: household_fields(h),
        members: members
            .iter()
            .map(|m| (m.person.id, member_fields(m)))
            .collect(),
    }
}

pub(crate) fn new_event(
    meta: &EventMeta,
    household_id: Uuid,
    entity: Entity,
    entity_id: Uuid,
    kind: &str,
    before: Option<Map<String, Value>>,
    after: Option<Map<String, Value>>,
) -> RegistryEvent {
    RegistryEvent {
        id: Uuid::now_v7(),
        household_id,
        entity,
        entity_id,
        kind: kind.to_string(),
        at: meta.at,
        actor: meta.actor.clone(),
        channel: meta.channel,
        reason: meta.reason.clone(),
        change_request_id: meta.change_request_id,
        before,
        after,
    }
}

/// Appends `AND (<column> in one of the scope's area ranges)`; nothing for a national scope.
/// Keeps people merged into another out of lists and searches (their record stays readable by
/// id, for history and unmerge).
pub(crate) const MERGED_OUT: &str = " AND merged_into IS NULL";

pub(crate) fn push_scope<'a, DB>(qb: &mut QueryBuilder<'a, DB>, column: &str, scope: &AreaScope)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if scope.is_national() {
        return;
    }
    let codes = scope.codes();
    if codes.is_empty() {
        // Not national and no area: sees nothing.
        qb.push(" AND FALSE");
        return;
    }
    qb.push(" AND (");
    query::push_area_ranges(qb, column, codes.iter().map(|c| c.as_str()));
    qb.push(")");
}

/// Maps a unique violation of a registry index to a conflict that names the field.
pub(crate) fn name_conflict(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            let msg = db.message().to_string();
            let constraint = db.constraint().unwrap_or_default().to_string();
            let field = [
                ("registry_households_number", "registry_number"),
                ("registry_number", "registry_number"),
                ("registry_people_national_id", "national_id"),
                ("national_id", "national_id"),
                ("registry_households_source", "source_key"),
                ("registry_people_source", "source_key"),
                ("source_key", "source_key"),
            ]
            .into_iter()
            .find(|(needle, _)| constraint.contains(needle) || msg.contains(needle))
            .map(|(_, f)| f)
            .unwrap_or("a unique field");
            return StoreError::Conflict(format!("{field} is already registered"));
        }
    }
    StoreError::from(e)
}

/// Rows as both adapters read them, decoded here in one place.
pub(crate) struct HouseholdRow {
    pub id: Uuid,
    pub registry_number: String,
    pub village_code: String,
    pub address: Option<String>,
    pub gps_lat: Option<f64>,
    pub gps_lon: Option<f64>,
    pub form_id: String,
    pub form_version: i64,
    pub answers: Value,
    pub status: String,
    pub source_key: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn corrupt(table: &str, id: Uuid, what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{table} row {id}: {what}"))
}

impl HouseholdRow {
    pub(crate) fn decode(self) -> StoreResult<Household> {
        let bad = |w: String| corrupt("registry_households", self.id, w);
        let gps = match (self.gps_lat, self.gps_lon) {
            (Some(lat), Some(lon)) => Some(Gps { lat, lon }),
            _ => None,
        };
        Ok(Household {
            id: self.id,
            registry_number: RegistryNumber::parse(&self.registry_number)
                .map_err(|e| bad(e.to_string()))?,
            village: AreaCode::parse(&self.village_code).map_err(|e| bad(e.to_string()))?,
            address: self.address,
            gps,
            form_id: self.form_id,
            form_version: u32::try_from(self.form_version).map_err(|e| bad(e.to_string()))?,
            answers: match self.answers {
                Value::Object(m) => m,
                _ => return Err(bad("answers is not an object".into())),
            },
            status: HouseholdStatus::parse(&self.status)
                .ok_or_else(|| bad(format!("status '{}'", self.status)))?,
            source_key: self.source_key,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) struct PersonRow {
    pub id: Uuid,
    pub household_id: Option<Uuid>,
    pub village_code: Option<String>,
    pub role: Option<String>,
    pub member_since: Option<NaiveDate>,
    pub given_name: String,
    pub family_name: String,
    pub sex: String,
    pub birth_date: Option<String>,
    pub national_id: Option<String>,
    pub birth_registration: Option<String>,
    pub refugee_id: Option<String>,
    pub passport: Option<String>,
    pub phone: Option<String>,
    pub other_phones: Option<String>,
    pub mother_id: Option<Uuid>,
    pub father_id: Option<Uuid>,
    pub guardian_id: Option<Uuid>,
    pub answers: Value,
    pub died_on: Option<NaiveDate>,
    pub source_key: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PersonRow {
    pub(crate) fn decode(self) -> StoreResult<PersonRecord> {
        let id = self.id;
        let bad = |w: String| corrupt("registry_people", id, w);
        let mut phones = Vec::new();
        for p in self
            .phone
            .iter()
            .chain(self.other_phones.iter())
            .flat_map(|s| s.split(';'))
            .filter(|s| !s.is_empty())
        {
            phones.push(PhoneNumber::parse(p).map_err(|e| bad(e.to_string()))?);
        }
        let data = PersonInput {
            given_name: Name::parse(&self.given_name).map_err(|e| bad(e.to_string()))?,
            family_name: Name::parse(&self.family_name).map_err(|e| bad(e.to_string()))?,
            sex: self.sex.parse::<Sex>().map_err(|e| bad(e.to_string()))?,
            birth_date: self
                .birth_date
                .as_deref()
                .map(BirthDate::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            national_id: self
                .national_id
                .as_deref()
                .map(NationalId::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            birth_registration: self.birth_registration,
            refugee_id: self.refugee_id,
            passport: self.passport,
            phones,
            answers: match self.answers {
                Value::Object(m) => m,
                _ => return Err(bad("answers is not an object".into())),
            },
        };
        Ok(PersonRecord {
            person: Person {
                id,
                data,
                died_on: self.died_on,
                household_id: self.household_id,
                village: self
                    .village_code
                    .as_deref()
                    .map(AreaCode::parse)
                    .transpose()
                    .map_err(|e| bad(e.to_string()))?,
                version: self.version,
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            role: self
                .role
                .as_deref()
                .map(str::parse::<MemberRole>)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            member_since: self.member_since,
            mother_id: self.mother_id,
            father_id: self.father_id,
            guardian_id: self.guardian_id,
            source_key: self.source_key,
        })
    }
}

/// The first phone (indexed for search) and the others, `;`-separated.
pub(crate) fn split_phones(phones: &[PhoneNumber]) -> (Option<String>, Option<String>) {
    let first = phones.first().map(|p| p.as_str().to_string());
    let rest: Vec<&str> = phones.iter().skip(1).map(PhoneNumber::as_str).collect();
    (first, (!rest.is_empty()).then(|| rest.join(";")))
}

// One argument per column of an event row, decoded in one place for both adapters.
#[allow(clippy::too_many_arguments)]
pub(crate) fn event_row_decode(
    id: Uuid,
    household_id: Uuid,
    entity: &str,
    entity_id: Uuid,
    kind: String,
    at: DateTime<Utc>,
    actor: String,
    channel: &str,
    reason: Option<String>,
    change_request_id: Option<Uuid>,
    before: Option<Value>,
    after: Option<Value>,
) -> StoreResult<RegistryEvent> {
    let bad = |w: String| corrupt("registry_events", id, w);
    let obj = |v: Option<Value>| -> StoreResult<Option<Map<String, Value>>> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(bad("before/after is not an object".into())),
        }
    };
    Ok(RegistryEvent {
        id,
        household_id,
        entity: Entity::parse(entity).ok_or_else(|| bad(format!("entity '{entity}'")))?,
        entity_id,
        kind,
        at,
        actor,
        channel: channel.parse::<Channel>().map_err(bad)?,
        reason,
        change_request_id,
        before: obj(before)?,
        after: obj(after)?,
    })
}
