//! Merging two registry records of one person (a confirmed duplicate) and undoing it.
//!
//! The duplicate is never deleted: it is marked `merged_into` the survivor, which takes it out
//! of every list and search, and its current membership ends ("merged into …"), so household
//! sizes, scores and programme lists stop counting it twice. The membership is ended rather
//! than moved to the survivor's household because the survivor already has the membership the
//! officers trust; moving the duplicate's role would invent a second one. What the merge
//! changed (the membership as it was, whether ending it dissolved the household) is kept in
//! `registry_person_merges`, so an unmerge puts both records back exactly as they were.
//!
//! Links that name the duplicate (a child's mother, facts from health systems) are left as they
//! are: they stay true of the duplicate's record, and leaving them keeps the unmerge exact.

use chrono::NaiveDate;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::history::Entity;
use inkingi_domain::registry::{HouseholdStatus, MemberRole};
use serde_json::{Map, Value};
use sqlx::Row;
use uuid::Uuid;

use super::logic::{
    end_membership, event_household, one_household, one_person, PeopleFilter, RegistryBackend,
    RegistryConn,
};
use super::{household_fields, member_fields, new_event, stale, EventMeta};
use crate::shared_sql::on_uow;
use crate::{StoreError, StoreResult, UnitOfWork};

/// A merge as recorded: what to restore.
struct MergeRecord {
    id: Uuid,
    survivor_id: Uuid,
    household_id: Option<Uuid>,
    role: Option<String>,
    member_since: Option<NaiveDate>,
    ended_on: Option<NaiveDate>,
    dissolved: bool,
}

/// The survivor a person is merged into, if any (read inside the unit of work).
async fn merged_into(uow: &mut UnitOfWork, id: Uuid) -> StoreResult<Option<Uuid>> {
    let q = "SELECT merged_into FROM registry_people WHERE id = $1";
    let row = on_uow!(uow, |c| sqlx::query(q)
        .bind(id)
        .fetch_optional(c)
        .await?
        .map(|r| r.try_get::<Option<Uuid>, _>("merged_into"))
        .transpose()?);
    Ok(row.flatten())
}

fn flag(merged: Option<Uuid>) -> Map<String, Value> {
    Map::from_iter([(
        "merged_into".to_string(),
        merged.map_or(Value::Null, |m| Value::from(m.to_string())),
    )])
}

/// Marks `duplicate` merged into `survivor`, ending its membership; one transaction with the
/// caller's change request.
pub(super) async fn merge<B: RegistryBackend + ?Sized>(
    b: &B,
    uow: &mut UnitOfWork,
    scope: &AreaScope,
    (survivor, duplicate): (Uuid, Uuid),
    today: NaiveDate,
    meta: &EventMeta,
) -> StoreResult<()> {
    if survivor == duplicate {
        return Err(StoreError::Invalid(
            "duplicate_id: a person cannot be merged into themself".into(),
        ));
    }
    for id in [survivor, duplicate] {
        if let Some(into) = merged_into(uow, id).await? {
            return Err(StoreError::Conflict(format!(
                "person {id} is already merged into {into}; unmerge it first"
            )));
        }
    }
    let c = b.tx_conn(uow)?;
    one_person(c, scope, survivor).await?;
    let dup = one_person(c, scope, duplicate).await?;
    let mut dissolved = false;
    let mut ended_on = None;
    if let Some(hh) = dup.person.household_id {
        let members = c.people(scope, PeopleFilter::Household(hh)).await?;
        if dup.role == Some(MemberRole::Head) && members.len() > 1 {
            // Which member heads the household instead is a decision about that household,
            // not about the duplicate: it is asked for, not guessed.
            return Err(StoreError::Conflict(format!(
                "duplicate_id: person {duplicate} heads a household with other members; make \
                 another member head first, then merge"
            )));
        }
        let end = dup.member_since.map_or(today, |s| today.max(s));
        end_membership(
            c,
            scope,
            duplicate,
            end,
            &format!("merged into {survivor}"),
            meta,
        )
        .await?;
        dissolved = one_household(c, scope, hh).await?.status == HouseholdStatus::Dissolved;
        ended_on = Some(end);
    }
    let now = one_person(c, scope, duplicate).await?;
    let hh = event_household(c, &now).await?;
    let e = new_event(
        meta,
        hh,
        Entity::Member,
        duplicate,
        "member.merged",
        Some(flag(None)),
        Some(flag(Some(survivor))),
    );
    c.insert_event(&e).await?;
    let marked = on_uow!(uow, |c| sqlx::query(
        "UPDATE registry_people SET merged_into = $1 WHERE id = $2 AND merged_into IS NULL"
    )
    .bind(survivor)
    .bind(duplicate)
    .execute(c)
    .await?
    .rows_affected());
    if marked != 1 {
        return Err(StoreError::Conflict(format!(
            "person {duplicate} was merged by someone else meanwhile"
        )));
    }
    let role = dup.role.map(|r| r.as_str().to_string());
    on_uow!(uow, |c| sqlx::query(
        "INSERT INTO registry_person_merges (id, survivor_id, duplicate_id, change_request_id, \
         household_id, role, member_since, ended_on, dissolved, unmerged_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)"
    )
    .bind(Uuid::now_v7())
    .bind(survivor)
    .bind(duplicate)
    .bind(meta.change_request_id)
    .bind(dup.person.household_id)
    .bind(role.clone())
    .bind(dup.member_since)
    .bind(ended_on)
    .bind(dissolved)
    .execute(c)
    .await
    .map(drop)?);
    Ok(())
}

async fn active_merge(uow: &mut UnitOfWork, duplicate: Uuid) -> StoreResult<Option<MergeRecord>> {
    let q = "SELECT id, survivor_id, household_id, role, member_since, ended_on, dissolved \
             FROM registry_person_merges WHERE duplicate_id = $1 AND unmerged_by IS NULL";
    on_uow!(uow, |c| {
        let Some(r) = sqlx::query(q).bind(duplicate).fetch_optional(c).await? else {
            return Ok(None);
        };
        Ok(Some(MergeRecord {
            id: r.try_get("id")?,
            survivor_id: r.try_get("survivor_id")?,
            household_id: r.try_get("household_id")?,
            role: r.try_get("role")?,
            member_since: r.try_get("member_since")?,
            ended_on: r.try_get("ended_on")?,
            dissolved: r.try_get("dissolved")?,
        }))
    })
}

/// Undoes the merge of `duplicate` into `survivor`: the membership it had comes back (and the
/// household, if the merge dissolved it), and it returns to lists and searches.
pub(super) async fn unmerge<B: RegistryBackend + ?Sized>(
    b: &B,
    uow: &mut UnitOfWork,
    scope: &AreaScope,
    (survivor, duplicate): (Uuid, Uuid),
    meta: &EventMeta,
) -> StoreResult<()> {
    let rec = match active_merge(uow, duplicate).await? {
        Some(r) if r.survivor_id == survivor => r,
        _ => {
            return Err(StoreError::Conflict(format!(
                "person {duplicate} is not merged into {survivor}"
            )))
        }
    };
    let c = b.tx_conn(uow)?;
    one_person(c, scope, survivor).await?;
    let dup = one_person(c, scope, duplicate).await?;
    if let Some(hh) = rec.household_id {
        restore_membership(c, scope, &rec, hh, dup.clone(), meta).await?;
    }
    let now = one_person(c, scope, duplicate).await?;
    let hh = event_household(c, &now).await?;
    let e = new_event(
        meta,
        hh,
        Entity::Member,
        duplicate,
        "member.unmerged",
        Some(flag(Some(survivor))),
        Some(flag(None)),
    );
    c.insert_event(&e).await?;
    if let (Some(hh), Some(end)) = (rec.household_id, rec.ended_on) {
        // The ended membership was the merge's doing, not a period of the person's life.
        on_uow!(uow, |c| sqlx::query(
            "DELETE FROM registry_past_memberships WHERE person_id = $1 AND household_id = $2 \
             AND end_date = $3"
        )
        .bind(duplicate)
        .bind(hh)
        .bind(end)
        .execute(c)
        .await
        .map(drop)?);
    }
    on_uow!(uow, |c| sqlx::query(
        "UPDATE registry_people SET merged_into = NULL WHERE id = $1"
    )
    .bind(duplicate)
    .execute(c)
    .await
    .map(drop)?);
    let by = meta.change_request_id.unwrap_or_else(Uuid::now_v7);
    on_uow!(uow, |c| sqlx::query(
        "UPDATE registry_person_merges SET unmerged_by = $1 WHERE id = $2"
    )
    .bind(by)
    .bind(rec.id)
    .execute(c)
    .await
    .map(drop)?);
    Ok(())
}

/// Puts the duplicate back in the household it left, with the role and start date it had,
/// reopening the household when the merge dissolved it.
async fn restore_membership<C: RegistryConn + ?Sized>(
    c: &mut C,
    scope: &AreaScope,
    rec: &MergeRecord,
    hh: Uuid,
    dup: super::PersonRecord,
    meta: &EventMeta,
) -> StoreResult<()> {
    c.lock_household(hh).await?;
    let h = one_household(c, scope, hh).await?;
    match h.status {
        HouseholdStatus::Dissolved if rec.dissolved => {
            let mut next = h.clone();
            next.status = HouseholdStatus::Active;
            next.version = h.version + 1;
            next.updated_at = meta.at;
            if !c.update_household(&next, h.version).await? {
                return Err(stale("household", h.version, h.version + 1));
            }
            let before = household_fields(&h);
            let after = household_fields(&next);
            let e = new_event(
                meta,
                hh,
                Entity::Household,
                hh,
                "household.restored",
                Some(before),
                Some(after),
            );
            c.insert_event(&e).await?;
        }
        HouseholdStatus::Active => {}
        other => {
            return Err(StoreError::Conflict(format!(
                "household {} is {} since the merge; the membership cannot be restored",
                h.registry_number,
                other.as_str()
            )))
        }
    }
    let role = rec
        .role
        .as_deref()
        .map(str::parse::<MemberRole>)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("registry_person_merges.role: {e}")))?;
    if role == Some(MemberRole::Head) {
        let members = c.people(scope, PeopleFilter::Household(hh)).await?;
        if members.iter().any(|m| m.role == Some(MemberRole::Head)) {
            return Err(StoreError::Conflict(format!(
                "household {} has another head since the merge; change its head first",
                h.registry_number
            )));
        }
    }
    let mut next = dup.clone();
    next.person.household_id = Some(hh);
    next.person.village = Some(h.village.clone());
    next.role = role;
    next.member_since = rec.member_since;
    next.person.version = dup.person.version + 1;
    next.person.updated_at = meta.at;
    if !c.update_person(&next, dup.person.version).await? {
        return Err(stale("person", dup.person.version, dup.person.version + 1));
    }
    // Seen from the household, the member is back: no `before`, as for one who joins.
    let e = new_event(
        meta,
        hh,
        Entity::Member,
        dup.person.id,
        "member.restored",
        None,
        Some(member_fields(&next)),
    );
    c.insert_event(&e).await
}
