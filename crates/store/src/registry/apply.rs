//! Applying an approved change request to the registry, inside the approver's unit of work:
//! every change either happens whole, with its events, or not at all.

use chrono::NaiveDate;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::change::{ChangeKind, ChangeRequest};
use inkingi_domain::registry::{
    Household, HouseholdInput, HouseholdStatus, MemberRole, PersonInput, RegistryNumber,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::logic::{
    add_member, change_roles, end_membership, event_household, not_found, one_household,
    one_person, register, update_household, write_member, PeopleFilter, RegistryBackend,
    RegistryConn,
};
use super::{EventMeta, HouseholdChange, NewHousehold, NewMember, PersonRecord};
use crate::{StoreError, StoreResult, UnitOfWork};

/// Person fields an `update_identity` request may set.
const IDENTITY_FIELDS: &[&str] = &[
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "national_id",
    "birth_registration",
    "refugee_id",
    "passport",
    "phones",
    "answers",
];
/// Household fields a `correct_data` request may set.
const HOUSEHOLD_FIELDS: &[&str] = &["address", "gps", "answers"];

#[async_trait::async_trait]
pub trait ChangeApplier: Send + Sync {
    /// Applies `cr` (approved) on `today`, writing registry events that name the request.
    /// Fails without writing anything the caller keeps when the registry no longer allows the
    /// change (a member already gone, a second head…): roll the unit of work back.
    async fn apply_change(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        cr: &ChangeRequest,
        today: NaiveDate,
        meta: &EventMeta,
    ) -> StoreResult<()>;
}

#[async_trait::async_trait]
impl<T: RegistryBackend> ChangeApplier for T {
    async fn apply_change(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        cr: &ChangeRequest,
        today: NaiveDate,
        meta: &EventMeta,
    ) -> StoreResult<()> {
        let mut meta = meta.clone();
        meta.change_request_id = Some(cr.id);
        if meta.reason.is_none() {
            meta.reason = cr.reason.clone();
        }
        // Merges keep their own record next to the registry's tables, written with the
        // unit of work itself.
        match &cr.change {
            ChangeKind::MergePeople {
                survivor_id,
                duplicate_id,
            } => {
                let pair = (*survivor_id, *duplicate_id);
                return super::merge::merge(self, uow, scope, pair, today, &meta).await;
            }
            ChangeKind::UnmergePeople {
                survivor_id,
                duplicate_id,
            } => {
                let pair = (*survivor_id, *duplicate_id);
                return super::merge::unmerge(self, uow, scope, pair, &meta).await;
            }
            _ => {}
        }
        let c = self.tx_conn(uow)?;
        apply(c, scope, &cr.change, today, &meta).await
    }
}

async fn apply<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    change: &ChangeKind,
    today: NaiveDate,
    meta: &EventMeta,
) -> StoreResult<()> {
    match change {
        ChangeKind::AddMember {
            household_id,
            person,
            role,
            mother_id,
            father_id,
        } => {
            let m = new_member(person, *role, today, *mother_id, *father_id);
            add_member(c, scope, *household_id, &m, meta)
                .await
                .map(drop)
        }
        ChangeKind::RecordBirth {
            household_id,
            mother_id,
            child,
        } => {
            if let Some(mother) = mother_id {
                member_of(c, scope, *mother, *household_id).await?;
            }
            let since = child.birth_date.map_or(today, |b| b.earliest());
            let m = new_member(child, MemberRole::Child, since, *mother_id, None);
            add_member(c, scope, *household_id, &m, meta)
                .await
                .map(drop)
        }
        ChangeKind::RemoveMember {
            household_id,
            person_id,
        } => {
            member_of(c, scope, *person_id, *household_id).await?;
            let reason = meta.reason.as_deref().unwrap_or("removed");
            end_membership(c, scope, *person_id, today, reason, meta).await
        }
        ChangeKind::MoveHousehold {
            household_id,
            village,
            address,
        } => {
            let h = one_household(c, scope, *household_id).await?;
            let mut input = input_of(&h);
            input.village = village.clone();
            // A new place makes the old position wrong.
            input.gps = None;
            input.address = address.clone().or(input.address);
            let change = HouseholdChange {
                input,
                form_version: h.form_version,
            };
            update_household(c, scope, h.id, h.version, &change, meta)
                .await
                .map(drop)
        }
        ChangeKind::ChangeHead {
            household_id,
            new_head_id,
            previous_head_role,
        } => {
            change_head(
                c,
                scope,
                *household_id,
                *new_head_id,
                *previous_head_role,
                meta,
            )
            .await
        }
        ChangeKind::SplitHousehold {
            household_id,
            person_ids,
            new_head_id,
            village,
        } => {
            split(
                c,
                scope,
                *household_id,
                person_ids,
                *new_head_id,
                village,
                today,
                meta,
            )
            .await
        }
        ChangeKind::MergeHouseholds {
            into_household_id,
            from_household_id,
        } => {
            merge(
                c,
                scope,
                *into_household_id,
                *from_household_id,
                today,
                meta,
            )
            .await
        }
        ChangeKind::UpdateIdentity { person_id, fields } => {
            let p = one_person(c, scope, *person_id).await?;
            let input: PersonInput = overlay(&p.person.data, fields, IDENTITY_FIELDS)?;
            let household_id = event_household(c, &p).await?;
            let mut next = p.clone();
            next.person.data = input;
            write_member(c, household_id, &p, next, "member.updated", meta)
                .await
                .map(drop)
        }
        ChangeKind::CorrectData {
            household_id,
            fields,
        } => {
            let h = one_household(c, scope, *household_id).await?;
            let current = EditableHousehold::of(&h);
            let next: EditableHousehold = overlay(&current, fields, HOUSEHOLD_FIELDS)?;
            let mut input = input_of(&h);
            input.address = next.address;
            input.gps = next.gps;
            input.answers = next.answers;
            let change = HouseholdChange {
                input,
                form_version: h.form_version,
            };
            update_household(c, scope, h.id, h.version, &change, meta)
                .await
                .map(drop)
        }
        ChangeKind::RecordDeath {
            person_id,
            died_on,
            new_head_id,
        } => record_death(c, scope, *person_id, *died_on, *new_head_id, meta).await,
        ChangeKind::MergePeople { .. } | ChangeKind::UnmergePeople { .. } => Err(
            StoreError::Invalid("merges are applied with their unit of work".into()),
        ),
    }
}

fn new_member(
    person: &PersonInput,
    role: MemberRole,
    since: NaiveDate,
    mother_id: Option<Uuid>,
    father_id: Option<Uuid>,
) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: person.clone(),
        role,
        since,
        mother_id,
        father_id,
        guardian_id: None,
        source_key: None,
    }
}

fn input_of(h: &Household) -> HouseholdInput {
    HouseholdInput {
        village: h.village.clone(),
        address: h.address.clone(),
        gps: h.gps,
        answers: h.answers.clone(),
    }
}

/// The household fields a correction may touch, as one serde value to overlay.
#[derive(serde::Serialize, serde::Deserialize)]
struct EditableHousehold {
    address: Option<String>,
    gps: Option<inkingi_domain::registry::Gps>,
    answers: Map<String, Value>,
}

impl EditableHousehold {
    fn of(h: &Household) -> Self {
        EditableHousehold {
            address: h.address.clone(),
            gps: h.gps,
            answers: h.answers.clone(),
        }
    }
}

/// `current` with `fields` set, parsed back through its type's validation. Unknown or
/// forbidden fields are refused by name.
fn overlay<T>(current: &T, fields: &Map<String, Value>, allowed: &[&str]) -> StoreResult<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    if let Some(bad) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(StoreError::Invalid(format!(
            "fields.{bad}: cannot be changed by this request; allowed: {}",
            allowed.join(", ")
        )));
    }
    let mut doc = match serde_json::to_value(current) {
        Ok(Value::Object(m)) => m,
        _ => return Err(StoreError::Invalid("record is not an object".into())),
    };
    for (k, v) in fields {
        doc.insert(k.clone(), v.clone());
    }
    serde_json::from_value(Value::Object(doc))
        .map_err(|e| StoreError::Invalid(format!("fields: {e}")))
}

async fn member_of<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    person_id: Uuid,
    household_id: Uuid,
) -> StoreResult<PersonRecord> {
    let p = one_person(c, scope, person_id).await?;
    if p.person.household_id != Some(household_id) {
        return Err(StoreError::Conflict(format!(
            "person {person_id} is no longer a member of household {household_id}"
        )));
    }
    Ok(p)
}

async fn change_head<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    household_id: Uuid,
    new_head: Uuid,
    previous_role: Option<MemberRole>,
    meta: &EventMeta,
) -> StoreResult<()> {
    let members = c
        .people(scope, PeopleFilter::Household(household_id))
        .await?;
    let mut roles = vec![(new_head, MemberRole::Head)];
    for m in &members {
        if m.role == Some(MemberRole::Head) && m.person.id != new_head {
            roles.push((
                m.person.id,
                previous_role.unwrap_or(MemberRole::OtherRelative),
            ));
        }
    }
    change_roles(c, scope, household_id, &roles, meta)
        .await
        .map(drop)
}

/// Moves an existing person into another household with `role` (their current membership,
/// if any, ends first).
async fn join<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    person_id: Uuid,
    into: &Household,
    role: MemberRole,
    today: NaiveDate,
    meta: &EventMeta,
) -> StoreResult<()> {
    let p = one_person(c, scope, person_id).await?;
    if p.person.household_id.is_some() {
        end_membership(
            c,
            scope,
            person_id,
            today,
            "moved to another household",
            meta,
        )
        .await?;
    }
    let p = one_person(c, scope, person_id).await?;
    let mut next = p.clone();
    next.person.household_id = Some(into.id);
    next.person.village = Some(into.village.clone());
    next.role = Some(role);
    next.member_since = Some(today);
    next.person.version = p.person.version + 1;
    next.person.updated_at = meta.at;
    if !c.update_person(&next, p.person.version).await? {
        return Err(super::stale(
            "person",
            p.person.version,
            p.person.version + 1,
        ));
    }
    // Seen from the household joined, the member is new: no `before`, so rewinding the
    // household past this event drops them again.
    let e = super::new_event(
        meta,
        into.id,
        inkingi_domain::registry::history::Entity::Member,
        person_id,
        "member.joined",
        None,
        Some(super::member_fields(&next)),
    );
    c.insert_event(&e).await
}

#[allow(clippy::too_many_arguments)]
async fn split<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    household_id: Uuid,
    leaving: &[Uuid],
    new_head: Uuid,
    village: &inkingi_domain::areas::AreaCode,
    today: NaiveDate,
    meta: &EventMeta,
) -> StoreResult<()> {
    if !leaving.contains(&new_head) {
        return Err(StoreError::Invalid(
            "new_head_id: the new head must be one of the members leaving".into(),
        ));
    }
    let old = one_household(c, scope, household_id).await?;
    let mut movers = Vec::with_capacity(leaving.len());
    for id in leaving {
        let p = member_of(c, scope, *id, household_id).await?;
        if p.role == Some(MemberRole::Head) {
            return Err(StoreError::Invalid(format!(
                "person_ids: {id} heads the household and cannot leave it; change the head first"
            )));
        }
        movers.push(p);
    }
    let new = NewHousehold {
        id: Uuid::now_v7(),
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input: HouseholdInput {
            village: village.clone(),
            address: None,
            gps: None,
            // The new household starts from the answers of the one it left; an enumerator
            // updates them at the next visit.
            answers: old.answers.clone(),
        },
        form_id: old.form_id.clone(),
        form_version: old.form_version,
        source_key: None,
        members: Vec::new(),
    };
    let created = register(c, &new, meta).await?;
    for p in movers {
        let role = if p.person.id == new_head {
            MemberRole::Head
        } else {
            p.role.unwrap_or(MemberRole::OtherRelative)
        };
        join(c, scope, p.person.id, &created, role, today, meta).await?;
    }
    Ok(())
}

async fn merge<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    into: Uuid,
    from: Uuid,
    today: NaiveDate,
    meta: &EventMeta,
) -> StoreResult<()> {
    if into == from {
        return Err(StoreError::Invalid(
            "from_household_id: a household cannot be merged into itself".into(),
        ));
    }
    let target = one_household(c, scope, into).await?;
    if target.status != HouseholdStatus::Active {
        return Err(StoreError::Conflict(format!(
            "household {} is {}; merge into an active household",
            target.registry_number,
            target.status.as_str()
        )));
    }
    let mut members = c.people(scope, PeopleFilter::Household(from)).await?;
    if members.is_empty() {
        return Err(not_found("members of household", from));
    }
    // The head leaves last: a head may leave only as the last member.
    members.sort_by_key(|m| m.role == Some(MemberRole::Head));
    for m in &members {
        let role = match m.role {
            Some(MemberRole::Head) | None => MemberRole::OtherRelative,
            Some(r) => r,
        };
        join(c, scope, m.person.id, &target, role, today, meta).await?;
    }
    mark_merged(c, scope, from, meta).await
}

/// The emptied household (dissolved when its last member left) is marked merged.
async fn mark_merged<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    id: Uuid,
    meta: &EventMeta,
) -> StoreResult<()> {
    let h = one_household(c, scope, id).await?;
    let mut next = h.clone();
    next.status = HouseholdStatus::Merged;
    next.version = h.version + 1;
    next.updated_at = meta.at;
    if !c.update_household(&next, h.version).await? {
        return Err(super::stale("household", h.version, h.version + 1));
    }
    let before = Map::from_iter([("status".to_string(), Value::from(h.status.as_str()))]);
    let after = Map::from_iter([("status".to_string(), Value::from("merged"))]);
    let e = super::new_event(
        meta,
        id,
        inkingi_domain::registry::history::Entity::Household,
        id,
        "household.merged",
        Some(before),
        Some(after),
    );
    c.insert_event(&e).await
}

async fn record_death<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    person_id: Uuid,
    died_on: NaiveDate,
    new_head: Option<Uuid>,
    meta: &EventMeta,
) -> StoreResult<()> {
    let p = one_person(c, scope, person_id).await?;
    if p.person.died_on.is_some() {
        return Err(StoreError::Conflict(format!(
            "the death of person {person_id} is already recorded"
        )));
    }
    let household_id = p.person.household_id;
    if let (Some(hh), Some(MemberRole::Head)) = (household_id, p.role) {
        let others = c.people(scope, PeopleFilter::Household(hh)).await?.len() > 1;
        match (others, new_head) {
            (true, None) => {
                return Err(StoreError::Invalid(
                    "new_head_id: the deceased headed a household with other members; name the \
                     new head"
                        .into(),
                ))
            }
            (true, Some(h)) => change_head(c, scope, hh, h, None, meta).await?,
            _ => {}
        }
    }
    let p = one_person(c, scope, person_id).await?;
    let mut next = p.clone();
    next.person.died_on = Some(died_on);
    let hh = event_household(c, &p).await?;
    write_member(c, hh, &p, next, "member.died", meta).await?;
    if household_id.is_some() {
        // A death reported late can predate the membership as recorded (registration day);
        // the membership then ends the day it started.
        let end = p.member_since.map_or(died_on, |since| died_on.max(since));
        end_membership(c, scope, person_id, end, "died", meta).await?;
    }
    Ok(())
}
