//! The registry's write rules and read paths, written once over [`RegistryConn`]: each backend
//! implements only the SQL primitives, so both enforce the same invariants (one head, versions,
//! an event for every change in the same transaction).

use std::collections::HashMap;
use std::ops::DerefMut;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::form::FormSchema;
use inkingi_domain::registry::history::{diff, Entity, RegistryEvent};
use inkingi_domain::registry::model::check_one_head;
use inkingi_domain::registry::{
    Household, HouseholdStatus, MemberRole, Membership, Person, PersonInput, RegistryNumber, Sex,
};
use serde_json::Value;
use uuid::Uuid;

use super::names::{self, NameCandidate, NameKey};
use super::{
    household_fields, member_fields, new_event, stale, EventMeta, FormRecord, HouseholdChange,
    HouseholdQuery, NewHousehold, NewMember, PeoplePage, PeopleQuery, PersonChange, PersonFilter,
    PersonHit, PersonRecord, PersonSearch, RegistryStore, Relatives,
};
use crate::{StoreError, StoreResult, UnitOfWork};

/// Which households a primitive read selects (always within a scope).
pub(crate) enum HouseholdFilter<'a> {
    Id(Uuid),
    Number(&'a str),
    List(&'a HouseholdQuery),
}

/// Which people a primitive read selects (always within a scope).
pub(crate) enum PeopleFilter<'a> {
    Id(Uuid),
    Household(Uuid),
    /// The current members of the household with this registry number.
    RegistryNumber(&'a str),
    NationalId(&'a str),
    /// Any of the person's phones (the first, or one of the others).
    Phone(&'a str),
    /// These people, in no particular order.
    Ids(&'a [Uuid]),
}

/// The SQL primitives of one backend, on a connection (a pooled one for reads, the unit of
/// work's for writes).
#[async_trait::async_trait]
pub(crate) trait RegistryConn: Send {
    async fn households(
        &mut self,
        scope: &AreaScope,
        f: HouseholdFilter<'_>,
    ) -> StoreResult<Vec<Household>>;
    async fn people(
        &mut self,
        scope: &AreaScope,
        f: PeopleFilter<'_>,
    ) -> StoreResult<Vec<PersonRecord>>;
    /// Serialises structural changes to one household's members (a no-op on SQLite, whose
    /// single writer already does).
    /// Name candidates under each key, at most `per_key` per key and scope area (see
    /// [`super::names`]).
    async fn name_candidates(
        &mut self,
        scope: &AreaScope,
        keys: &[NameKey],
        per_key: u32,
    ) -> StoreResult<Vec<NameCandidate>>;
    async fn lock_household(&mut self, id: Uuid) -> StoreResult<()>;
    async fn insert_household(&mut self, h: &Household) -> StoreResult<()>;
    /// Writes `h` if the stored version is `expected`; false otherwise.
    async fn update_household(&mut self, h: &Household, expected: i64) -> StoreResult<bool>;
    async fn set_members_village(&mut self, household_id: Uuid, village: &str) -> StoreResult<()>;
    async fn insert_person(&mut self, p: &PersonRecord) -> StoreResult<()>;
    async fn update_person(&mut self, p: &PersonRecord, expected: i64) -> StoreResult<bool>;
    async fn insert_past_membership(&mut self, m: &Membership) -> StoreResult<()>;
    /// The household of the person's most recently ended membership.
    async fn last_household(&mut self, person_id: Uuid) -> StoreResult<Option<Uuid>>;
    async fn insert_event(&mut self, e: &RegistryEvent) -> StoreResult<()>;
    async fn events(
        &mut self,
        household_id: Uuid,
        after: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<RegistryEvent>>;
    async fn locate(&mut self, id: Uuid) -> StoreResult<Option<String>>;
    async fn find_people(
        &mut self,
        scope: &AreaScope,
        q: &PeopleQuery,
    ) -> StoreResult<PeoplePage<PersonRecord>>;
    async fn find_households(
        &mut self,
        scope: &AreaScope,
        filter: &PersonFilter,
        limit: u32,
        offset: u64,
        max_candidates: u64,
    ) -> StoreResult<PeoplePage<Uuid>>;
    async fn insert_form(&mut self, f: &FormRecord) -> StoreResult<()>;
    /// The given version, or the latest when `version` is `None`.
    async fn form(
        &mut self,
        form_id: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<FormRecord>>;
}

/// What an adapter provides so that [`RegistryStore`] is implemented for it.
#[async_trait::async_trait]
pub(crate) trait RegistryBackend: Send + Sync {
    type Conn: RegistryConn;
    type Pooled: DerefMut<Target = Self::Conn> + Send;
    async fn read_conn(&self) -> StoreResult<Self::Pooled>;
    fn tx_conn<'a>(&self, uow: &'a mut UnitOfWork) -> StoreResult<&'a mut Self::Conn>;
    async fn begin_write(&self) -> StoreResult<UnitOfWork>;
}

pub(super) fn not_found(what: &str, id: impl std::fmt::Display) -> StoreError {
    StoreError::NotFound(format!("{what} {id}"))
}

pub(super) async fn one_household<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    id: Uuid,
) -> StoreResult<Household> {
    c.households(scope, HouseholdFilter::Id(id))
        .await?
        .pop()
        .ok_or_else(|| not_found("household", id))
}

pub(super) async fn one_person<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    id: Uuid,
) -> StoreResult<PersonRecord> {
    c.people(scope, PeopleFilter::Id(id))
        .await?
        .pop()
        .ok_or_else(|| not_found("person", id))
}

fn person_record(m: &NewMember, household: &Household, at: DateTime<Utc>) -> PersonRecord {
    PersonRecord {
        person: Person {
            id: m.id,
            data: m.person.clone(),
            died_on: None,
            household_id: Some(household.id),
            village: Some(household.village.clone()),
            version: 1,
            created_at: at,
            updated_at: at,
        },
        role: Some(m.role),
        member_since: Some(m.since),
        mother_id: m.mother_id,
        father_id: m.father_id,
        guardian_id: m.guardian_id,
        source_key: m.source_key.clone(),
    }
}

fn with_id(p: &PersonRecord) -> Value {
    let mut f = member_fields(p);
    f.insert("id".into(), Value::String(p.person.id.to_string()));
    Value::Object(f)
}

pub(super) async fn register<C: RegistryConn + ?Sized>(
    c: &mut C,
    new: &NewHousehold,
    meta: &EventMeta,
) -> StoreResult<Household> {
    let h = Household {
        id: new.id,
        registry_number: new.registry_number.clone(),
        village: new.input.village.clone(),
        address: new.input.address.clone(),
        gps: new.input.gps,
        form_id: new.form_id.clone(),
        form_version: new.form_version,
        answers: new.input.answers.clone(),
        status: HouseholdStatus::Active,
        source_key: new.source_key.clone(),
        version: 1,
        created_at: meta.at,
        updated_at: meta.at,
    };
    // The caller has checked that relatives outside the new household are within its scope.
    for (i, m) in new.members.iter().enumerate() {
        let path = format!("members[{i}].");
        let scope = AreaScope::national();
        check_relatives(
            c,
            &scope,
            m.id,
            &m.person,
            m.relatives(),
            &new.members,
            &path,
        )
        .await?;
    }
    c.insert_household(&h).await?;
    let mut members = Vec::with_capacity(new.members.len());
    for m in &new.members {
        let rec = person_record(m, &h, meta.at);
        c.insert_person(&rec).await?;
        members.push(with_id(&rec));
    }
    let mut after = household_fields(&h);
    after.insert("members".into(), Value::Array(members));
    let e = new_event(
        meta,
        h.id,
        Entity::Household,
        h.id,
        "household.registered",
        None,
        Some(after),
    );
    c.insert_event(&e).await?;
    Ok(h)
}

pub(super) async fn update_household<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    id: Uuid,
    expected: i64,
    change: &HouseholdChange,
    meta: &EventMeta,
) -> StoreResult<Household> {
    let current = one_household(c, scope, id).await?;
    if current.version != expected {
        return Err(stale("household", expected, current.version));
    }
    let mut next = current.clone();
    next.village = change.input.village.clone();
    next.address = change.input.address.clone();
    next.gps = change.input.gps;
    next.answers = change.input.answers.clone();
    next.form_version = change.form_version;
    let Some((before, after)) = diff(&household_fields(&current), &household_fields(&next)) else {
        return Ok(current);
    };
    next.version = current.version + 1;
    next.updated_at = meta.at;
    if !c.update_household(&next, expected).await? {
        return Err(stale("household", expected, expected + 1));
    }
    if next.village != current.village {
        c.set_members_village(id, next.village.as_str()).await?;
    }
    let e = new_event(
        meta,
        id,
        Entity::Household,
        id,
        "household.updated",
        Some(before),
        Some(after),
    );
    c.insert_event(&e).await?;
    Ok(next)
}

/// Writes `next` over `current` (a member of `household_id`) with an event of `kind` holding
/// only what changed; returns `current` untouched when nothing did.
pub(super) async fn write_member<C: RegistryConn + ?Sized>(
    c: &mut C,
    household_id: Uuid,
    current: &PersonRecord,
    mut next: PersonRecord,
    kind: &str,
    meta: &EventMeta,
) -> StoreResult<PersonRecord> {
    let Some((before, after)) = diff(&member_fields(current), &member_fields(&next)) else {
        return Ok(current.clone());
    };
    next.person.version = current.person.version + 1;
    next.person.updated_at = meta.at;
    if !c.update_person(&next, current.person.version).await? {
        return Err(stale(
            "person",
            current.person.version,
            current.person.version + 1,
        ));
    }
    let e = new_event(
        meta,
        household_id,
        Entity::Member,
        next.person.id,
        kind,
        Some(before),
        Some(after),
    );
    c.insert_event(&e).await?;
    Ok(next)
}

/// The household a person's events belong to: the current one, else the last one they left
/// (a person who died or moved out keeps their history under that household).
pub(super) async fn event_household<C: RegistryConn + ?Sized>(
    c: &mut C,
    p: &PersonRecord,
) -> StoreResult<Uuid> {
    if let Some(h) = p.person.household_id {
        return Ok(h);
    }
    c.last_household(p.person.id).await?.ok_or_else(|| {
        StoreError::Conflict(format!(
            "person {} has never been a member of a household",
            p.person.id
        ))
    })
}

/// A parent must be born at least this long before the child (a plausibility floor, not a
/// statement about families: it catches a parent and child swapped at entry).
const MIN_PARENT_AGE_YEARS: i32 = 10;

/// Checks `m`'s mother, father and guardian: each exists (among `joining`, the people being
/// registered with it, or within `scope`), is not `m`, a mother is female and a father male,
/// and a parent was born well before the child when both birth dates are known. Refusals name
/// the field under `path` (`members[1].mother`).
pub(super) async fn check_relatives<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    person_id: Uuid,
    person: &PersonInput,
    relatives: Relatives,
    joining: &[NewMember],
    path: &str,
) -> StoreResult<()> {
    let links = [
        ("mother", relatives.mother, Some(Sex::Female)),
        ("father", relatives.father, Some(Sex::Male)),
        ("guardian", relatives.guardian, None),
    ];
    for (name, id, sex) in links {
        let Some(id) = id else { continue };
        let field = format!("{path}{name}");
        if id == person_id {
            return Err(StoreError::Invalid(format!(
                "{field}: a person cannot be their own relative"
            )));
        }
        let relative = match joining.iter().find(|j| j.id == id) {
            Some(j) => j.person.clone(),
            None => match c.people(scope, PeopleFilter::Id(id)).await?.pop() {
                Some(p) => p.person.data,
                None => {
                    return Err(StoreError::Invalid(format!(
                        "{field}: no person {id} in your area scope"
                    )))
                }
            },
        };
        if let Some(sex) = sex.filter(|s| *s != relative.sex) {
            return Err(StoreError::Invalid(format!(
                "{field}: person {id} is recorded as {}; a {name} must be {}",
                sex_word(relative.sex),
                sex_word(sex)
            )));
        }
        if sex.is_some() {
            check_parent_age(&field, &relative, person)?;
        }
    }
    Ok(())
}

fn sex_word(s: Sex) -> &'static str {
    match s {
        Sex::Female => "female",
        Sex::Male => "male",
    }
}

fn check_parent_age(field: &str, parent: &PersonInput, child: &PersonInput) -> StoreResult<()> {
    let (Some(p), Some(ch)) = (parent.birth_date, child.birth_date) else {
        return Ok(());
    };
    let floor = ch
        .latest()
        .with_year(ch.latest().year() - MIN_PARENT_AGE_YEARS)
        .unwrap_or(ch.latest());
    if p.earliest() > floor {
        return Err(StoreError::Invalid(format!(
            "{field}: the parent's birth date ({}) is not at least {MIN_PARENT_AGE_YEARS} years \
             before the child's ({})",
            p.earliest(),
            ch.earliest()
        )));
    }
    Ok(())
}

fn current_household(p: &PersonRecord) -> StoreResult<Uuid> {
    p.person.household_id.ok_or_else(|| {
        StoreError::Conflict(format!(
            "person {} is not a member of any household",
            p.person.id
        ))
    })
}

async fn update_person<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    id: Uuid,
    expected: i64,
    change: &PersonChange,
    meta: &EventMeta,
) -> StoreResult<PersonRecord> {
    let current = one_person(c, scope, id).await?;
    if current.person.version != expected {
        return Err(stale("person", expected, current.person.version));
    }
    // Only new links are checked: a link already stored (an import's, say) stays editable.
    let was = current.relatives();
    let fresh = |now: Option<Uuid>, before: Option<Uuid>| now.filter(|_| now != before);
    let new_links = Relatives {
        mother: fresh(change.relatives.mother, was.mother),
        father: fresh(change.relatives.father, was.father),
        guardian: fresh(change.relatives.guardian, was.guardian),
    };
    check_relatives(c, scope, id, &change.input, new_links, &[], "").await?;
    let household_id = event_household(c, &current).await?;
    let mut next = current.clone();
    next.person.data = change.input.clone();
    next.mother_id = change.relatives.mother;
    next.father_id = change.relatives.father;
    next.guardian_id = change.relatives.guardian;
    write_member(c, household_id, &current, next, "member.updated", meta).await
}

pub(super) async fn add_member<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    household_id: Uuid,
    m: &NewMember,
    meta: &EventMeta,
) -> StoreResult<PersonRecord> {
    c.lock_household(household_id).await?;
    let h = one_household(c, scope, household_id).await?;
    if h.status != HouseholdStatus::Active {
        return Err(StoreError::Conflict(format!(
            "household {} is {}; members can be added only to an active household",
            h.registry_number,
            h.status.as_str()
        )));
    }
    if m.role == MemberRole::Head {
        let members = c
            .people(scope, PeopleFilter::Household(household_id))
            .await?;
        if members.iter().any(|p| p.role == Some(MemberRole::Head)) {
            return Err(StoreError::Invalid(
                "role: the household already has a head; add the member with another role, then \
                 change roles"
                    .into(),
            ));
        }
    }
    check_relatives(c, scope, m.id, &m.person, m.relatives(), &[], "").await?;
    let rec = person_record(m, &h, meta.at);
    c.insert_person(&rec).await?;
    let e = new_event(
        meta,
        household_id,
        Entity::Member,
        rec.person.id,
        "member.added",
        None,
        Some(member_fields(&rec)),
    );
    c.insert_event(&e).await?;
    Ok(rec)
}

pub(super) async fn end_membership<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    person_id: Uuid,
    end: NaiveDate,
    reason: &str,
    meta: &EventMeta,
) -> StoreResult<()> {
    let p = one_person(c, scope, person_id).await?;
    let household_id = current_household(&p)?;
    c.lock_household(household_id).await?;
    let members = c
        .people(scope, PeopleFilter::Household(household_id))
        .await?;
    let last = members.len() <= 1;
    if p.role == Some(MemberRole::Head) && !last {
        return Err(StoreError::Invalid(
            "role: the head cannot leave while other members remain; make another member head \
             first"
                .into(),
        ));
    }
    if p.member_since.is_some_and(|s| end < s) {
        return Err(StoreError::Invalid(format!(
            "end_date: {end} is before the membership started"
        )));
    }
    c.insert_past_membership(&Membership {
        household_id,
        person_id,
        role: p.role.unwrap_or(MemberRole::OtherRelative),
        start_date: p.member_since.unwrap_or(end),
        end_date: Some(end),
        end_reason: Some(reason.to_string()),
    })
    .await?;
    let mut next = p.clone();
    next.person.household_id = None;
    // The village stays: it is the person's last known area, which keeps them visible to
    // that area's officers (a person outside every scope would be visible to no one).
    next.role = None;
    next.member_since = None;
    next.person.version = p.person.version + 1;
    next.person.updated_at = meta.at;
    if !c.update_person(&next, p.person.version).await? {
        return Err(stale("person", p.person.version, p.person.version + 1));
    }
    let e = new_event(
        meta,
        household_id,
        Entity::Member,
        person_id,
        "member.removed",
        Some(member_fields(&p)),
        None,
    );
    c.insert_event(&e).await?;
    if last {
        dissolve(c, scope, household_id, meta).await?;
    }
    Ok(())
}

async fn dissolve<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    id: Uuid,
    meta: &EventMeta,
) -> StoreResult<()> {
    let current = one_household(c, scope, id).await?;
    let mut next = current.clone();
    next.status = HouseholdStatus::Dissolved;
    next.version = current.version + 1;
    next.updated_at = meta.at;
    if let Some((before, after)) = diff(&household_fields(&current), &household_fields(&next)) {
        if !c.update_household(&next, current.version).await? {
            return Err(stale("household", current.version, current.version + 1));
        }
        let e = new_event(
            meta,
            id,
            Entity::Household,
            id,
            "household.dissolved",
            Some(before),
            Some(after),
        );
        c.insert_event(&e).await?;
    }
    Ok(())
}

pub(super) async fn change_roles<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    household_id: Uuid,
    roles: &[(Uuid, MemberRole)],
    meta: &EventMeta,
) -> StoreResult<Vec<PersonRecord>> {
    c.lock_household(household_id).await?;
    one_household(c, scope, household_id).await?;
    let members = c
        .people(scope, PeopleFilter::Household(household_id))
        .await?;
    let wanted: HashMap<Uuid, MemberRole> = roles.iter().copied().collect();
    for id in wanted.keys() {
        if !members.iter().any(|m| m.person.id == *id) {
            return Err(not_found("member", id));
        }
    }
    let resulting: Vec<MemberRole> = members
        .iter()
        .filter_map(|m| wanted.get(&m.person.id).copied().or(m.role))
        .collect();
    check_one_head(&resulting).map_err(|e| StoreError::Invalid(format!("role: {e}")))?;
    let mut out = Vec::with_capacity(members.len());
    for m in &members {
        match wanted.get(&m.person.id) {
            Some(role) if Some(*role) != m.role => {
                let mut next = m.clone();
                next.role = Some(*role);
                out.push(
                    write_member(c, household_id, m, next, "member.role_changed", meta).await?,
                );
            }
            _ => out.push(m.clone()),
        }
    }
    Ok(out)
}

/// People matching every identifier given (registry number, national ID, phone); `None` when
/// no identifier was given.
async fn identifier_matches<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    q: &PersonSearch,
) -> StoreResult<Option<Vec<PersonRecord>>> {
    let mut found: Option<Vec<PersonRecord>> = None;
    let mut narrow = |set: Vec<PersonRecord>| {
        found = Some(match found.take() {
            None => set,
            Some(mut prev) => {
                prev.retain(|p| set.iter().any(|s| s.person.id == p.person.id));
                prev
            }
        });
    };
    if let Some(n) = &q.registry_number {
        narrow(
            c.people(scope, PeopleFilter::RegistryNumber(n.as_str()))
                .await?,
        );
    }
    if let Some(id) = &q.national_id {
        narrow(
            c.people(scope, PeopleFilter::NationalId(id.as_str()))
                .await?,
        );
    }
    if let Some(p) = &q.phone {
        narrow(c.people(scope, PeopleFilter::Phone(p.as_str())).await?);
    }
    Ok(found)
}

/// Ranked name matches, reading a bounded number of candidates (see [`names`]).
async fn name_search<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    name: &str,
    limit: usize,
) -> StoreResult<Vec<PersonHit>> {
    let q_tokens = names::tokens(name);
    let skels = names::key_skeletons(name);
    let per_key = names::per_key(limit);
    let mut candidates = Vec::new();
    let mut ranked = Vec::new();
    for keys in [names::pair_keys(&skels), names::single_keys(&skels)] {
        if keys.is_empty() {
            continue;
        }
        candidates.extend(c.name_candidates(scope, &keys, per_key).await?);
        ranked = names::rank(&q_tokens, &candidates);
        if ranked.len() >= limit {
            break;
        }
    }
    ranked.truncate(limit);
    let ids: Vec<Uuid> = ranked.iter().map(|(id, _)| *id).collect();
    let mut records: HashMap<Uuid, PersonRecord> = c
        .people(scope, PeopleFilter::Ids(&ids))
        .await?
        .into_iter()
        .map(|r| (r.person.id, r))
        .collect();
    // A person changed between the two reads (renamed, moved out of scope) is left out.
    Ok(ranked
        .into_iter()
        .filter_map(|(id, score)| {
            records
                .remove(&id)
                .map(|record| PersonHit { record, score })
        })
        .collect())
}

async fn search<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    q: &PersonSearch,
) -> StoreResult<Vec<PersonHit>> {
    let limit = q.limit.clamp(1, 200) as usize;
    let name = q.name.as_deref().filter(|n| !n.trim().is_empty());
    let mut hits = match (identifier_matches(c, scope, q).await?, name) {
        (Some(people), None) => people
            .into_iter()
            .map(|record| PersonHit { record, score: 1.0 })
            .collect(),
        // Identifiers choose the people; the name only orders them.
        (Some(people), Some(name)) => {
            let q_tokens = names::tokens(name);
            people
                .into_iter()
                .map(|record| {
                    let d = &record.person.data;
                    let score =
                        names::name_score(&q_tokens, d.given_name.as_str(), d.family_name.as_str());
                    PersonHit { record, score }
                })
                .collect()
        }
        (None, Some(name)) => return name_search(c, scope, name, limit).await,
        (None, None) => Vec::new(),
    };
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.record.person.id.cmp(&b.record.person.id))
    });
    hits.truncate(limit);
    Ok(hits)
}

async fn publish<C: RegistryConn + ?Sized>(
    c: &mut C,
    schema: &FormSchema,
    by: &str,
) -> StoreResult<FormRecord> {
    schema
        .check()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let next = c
        .form(&schema.id, None)
        .await?
        .map_or(1, |f| f.schema.version + 1);
    if schema.version != next {
        return Err(StoreError::Conflict(format!(
            "version: form {} must be published as version {next}, not {}",
            schema.id, schema.version
        )));
    }
    let rec = FormRecord {
        schema: schema.clone(),
        published_at: Utc::now(),
        published_by: by.to_string(),
    };
    c.insert_form(&rec).await?;
    Ok(rec)
}

#[async_trait::async_trait]
impl<T: RegistryBackend> RegistryStore for T {
    async fn register_household(
        &self,
        uow: &mut UnitOfWork,
        new: &NewHousehold,
        meta: &EventMeta,
    ) -> StoreResult<Household> {
        register(self.tx_conn(uow)?, new, meta).await
    }

    async fn update_household(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        id: Uuid,
        expected: i64,
        change: &HouseholdChange,
        meta: &EventMeta,
    ) -> StoreResult<Household> {
        update_household(self.tx_conn(uow)?, scope, id, expected, change, meta).await
    }

    async fn update_person(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        id: Uuid,
        expected: i64,
        change: &PersonChange,
        meta: &EventMeta,
    ) -> StoreResult<PersonRecord> {
        update_person(self.tx_conn(uow)?, scope, id, expected, change, meta).await
    }

    async fn add_member(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        household_id: Uuid,
        member: &NewMember,
        meta: &EventMeta,
    ) -> StoreResult<PersonRecord> {
        add_member(self.tx_conn(uow)?, scope, household_id, member, meta).await
    }

    async fn end_membership(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        person_id: Uuid,
        end: NaiveDate,
        reason: &str,
        meta: &EventMeta,
    ) -> StoreResult<()> {
        end_membership(self.tx_conn(uow)?, scope, person_id, end, reason, meta).await
    }

    async fn change_roles(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        household_id: Uuid,
        roles: &[(Uuid, MemberRole)],
        meta: &EventMeta,
    ) -> StoreResult<Vec<PersonRecord>> {
        change_roles(self.tx_conn(uow)?, scope, household_id, roles, meta).await
    }

    async fn household(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<Household>> {
        let mut c = self.read_conn().await?;
        Ok(c.households(scope, HouseholdFilter::Id(id)).await?.pop())
    }

    async fn household_by_number(
        &self,
        scope: &AreaScope,
        number: &RegistryNumber,
    ) -> StoreResult<Option<Household>> {
        let mut c = self.read_conn().await?;
        Ok(
            c.households(scope, HouseholdFilter::Number(number.as_str()))
                .await?
                .pop(),
        )
    }

    async fn locate(&self, id: Uuid) -> StoreResult<Option<AreaCode>> {
        let mut c = self.read_conn().await?;
        let code = c.locate(id).await?;
        code.map(|s| {
            AreaCode::parse(&s).map_err(|e| StoreError::Invalid(format!("village of {id}: {e}")))
        })
        .transpose()
    }

    async fn person(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<PersonRecord>> {
        let mut c = self.read_conn().await?;
        Ok(c.people(scope, PeopleFilter::Id(id)).await?.pop())
    }

    async fn members(
        &self,
        scope: &AreaScope,
        household_id: Uuid,
    ) -> StoreResult<Vec<PersonRecord>> {
        let mut c = self.read_conn().await?;
        c.people(scope, PeopleFilter::Household(household_id)).await
    }

    async fn list_households(
        &self,
        scope: &AreaScope,
        q: &HouseholdQuery,
    ) -> StoreResult<Vec<Household>> {
        let mut c = self.read_conn().await?;
        c.households(scope, HouseholdFilter::List(q)).await
    }

    async fn search_people(
        &self,
        scope: &AreaScope,
        q: &PersonSearch,
    ) -> StoreResult<Vec<PersonHit>> {
        let mut c = self.read_conn().await?;
        search(&mut *c, scope, q).await
    }

    async fn find_people(
        &self,
        scope: &AreaScope,
        q: &PeopleQuery,
    ) -> StoreResult<PeoplePage<PersonRecord>> {
        let mut c = self.read_conn().await?;
        c.find_people(scope, q).await
    }

    async fn find_households(
        &self,
        scope: &AreaScope,
        filter: &PersonFilter,
        limit: u32,
        offset: u64,
        max_candidates: u64,
    ) -> StoreResult<PeoplePage<Uuid>> {
        let mut c = self.read_conn().await?;
        c.find_households(scope, filter, limit, offset, max_candidates)
            .await
    }

    async fn events(
        &self,
        scope: &AreaScope,
        household_id: Uuid,
        after: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<RegistryEvent>> {
        let mut c = self.read_conn().await?;
        one_household(&mut *c, scope, household_id).await?;
        c.events(household_id, after).await
    }

    async fn publish_form(&self, schema: &FormSchema, by: &str) -> StoreResult<FormRecord> {
        let mut uow = self.begin_write().await?;
        let rec = publish(self.tx_conn(&mut uow)?, schema, by).await?;
        uow.commit().await?;
        Ok(rec)
    }

    async fn latest_form(&self, form_id: &str) -> StoreResult<Option<FormRecord>> {
        self.read_conn().await?.form(form_id, None).await
    }

    async fn form(&self, form_id: &str, version: u32) -> StoreResult<Option<FormRecord>> {
        self.read_conn().await?.form(form_id, Some(version)).await
    }
}

/// Publishes the shipped form as version 1 when the database has no version of it yet.
pub(crate) async fn ensure_default_form(store: &crate::Store) -> StoreResult<()> {
    let form = FormSchema::default_form();
    if store.registry().latest_form(&form.id).await?.is_some() {
        return Ok(());
    }
    match store.registry().publish_form(&form, "system").await {
        // Another node seeded it at the same moment.
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
