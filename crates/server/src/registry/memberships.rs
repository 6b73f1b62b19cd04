//! Memberships: add a member to a household, end a membership, change roles (always keeping
//! exactly one head).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{NaiveDate, Utc};
use inkingi_domain::identity::Permission;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::MemberRole;
use inkingi_store::registry::{NewMember, PersonRecord};
use inkingi_store::StoreError;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::input::{self, Errors, MemberFields, PersonRef};
use super::{audit_change, current_form, event_meta, not_visible, reason};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::AppState;

/// A store refusal of the form `field: reason` becomes a 422 naming the field.
pub fn rule_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(m) => match m.split_once(": ") {
            Some((field, reason)) if !field.contains(' ') => {
                ApiError::validation(vec![FieldError {
                    field: field.to_string(),
                    reason: reason.to_string(),
                }])
            }
            _ => ApiError::validation(vec![FieldError {
                field: "body".into(),
                reason: m,
            }]),
        },
        other => other.into(),
    }
}

/// Resolves a member's mother, father and guardian to person ids. `at` is the member's position
/// and the ids of every member when a household is registered (a relative may then be another
/// member, `{"member": n}`); `None` when adding to an existing household. A registered relative
/// must be visible to the caller; the store checks sex and age.
pub async fn relative_ids(
    state: &AppState,
    principal: &Principal,
    m: &MemberFields,
    at: Option<(usize, &[Uuid])>,
    e: &mut Errors,
) -> ApiResult<[Option<Uuid>; 3]> {
    let prefix = at.map_or(String::new(), |(i, _)| format!("members[{i}]"));
    let mut ids = [None; 3];
    let refs = [
        ("mother", m.mother),
        ("father", m.father),
        ("guardian", m.guardian),
    ];
    for (slot, (name, r)) in ids.iter_mut().zip(refs) {
        *slot = match (r, at) {
            (None, _) => None,
            (Some(PersonRef::Member(j)), Some((i, _))) if j == i => {
                e.add(&prefix, name, "a person cannot be their own relative");
                None
            }
            (Some(PersonRef::Member(j)), Some((_, all))) => {
                let id = all.get(j).copied();
                if id.is_none() {
                    e.add(&prefix, name, format!("there is no member at position {j}"));
                }
                id
            }
            (Some(PersonRef::Member(_)), None) => {
                e.add(&prefix, name, "name a registered person: {\"id\": \"…\"}");
                None
            }
            (Some(PersonRef::Id(id)), _) => {
                let seen = state
                    .store
                    .registry()
                    .person(&principal.scope, id)
                    .await?
                    .is_some();
                if !seen {
                    e.add(&prefix, name, format!("no person {id} in your area scope"));
                }
                seen.then_some(id)
            }
        };
    }
    Ok(ids)
}

/// Add a new person to a household.
#[utoipa::path(post, path = "/api/v1/households/{id}/members", tag = "registry", operation_id = "memberships_add",
    params(("id" = Uuid, Path)), request_body = MemberFields,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, description = "The new member", body = Object),
        (status = 404, description = "No such household in your area scope"),
        (status = 422, description = "Field errors", body = crate::error::ProblemBody)))]
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    Path(household_id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PersonRecord>)> {
    principal.require(Permission::WritePersonalData)?;
    let Some(h) = state
        .store
        .registry()
        .household(&principal.scope, household_id)
        .await?
    else {
        return Err(not_visible(&state, &principal, "household", household_id).await);
    };
    let m: MemberFields = input::parse_body(&body)?;
    let form = current_form(&state).await?;
    let mut e = Errors::default();
    let person = input::person("", &m, &form, &mut e);
    let role = input::membership("", &m, &mut e);
    let [mother_id, father_id, guardian_id] =
        relative_ids(&state, &principal, &m, None, &mut e).await?;
    e.into_result()?;
    let (Some(person), Some((role, since))) = (person, role) else {
        return Err(ApiError::internal("validated member missing"));
    };
    let new = NewMember {
        id: Uuid::now_v7(),
        person,
        role,
        since,
        mother_id,
        father_id,
        guardian_id,
        source_key: None,
    };
    let meta = event_meta(&principal, Channel::Api, reason(m.reason.clone(), &headers));
    let mut uow = state.store.begin().await?;
    let rec = state
        .store
        .registry()
        .add_member(&mut uow, &principal.scope, household_id, &new, &meta)
        .await
        .map_err(rule_error)?;
    audit_change(
        &state,
        &mut uow,
        &principal,
        "member.add",
        ("household", household_id),
        Some(h.village),
        vec![rec.person.id.to_string()],
    )
    .await?;
    uow.commit().await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndMembership {
    /// `YYYY-MM-DD`; default today.
    pub end_date: Option<NaiveDate>,
    /// Why (moved out, died, married into another household…). Required.
    pub reason: Option<String>,
}

/// End a person's current membership of their household.
#[utoipa::path(post, path = "/api/v1/memberships/{person_id}/end", tag = "registry", operation_id = "memberships_end",
    params(("person_id" = Uuid, Path)), request_body = EndMembership,
    security(("bearer" = []), ("session" = [])),
    responses((status = 204, description = "Ended"),
        (status = 404, description = "No such person in your area scope"),
        (status = 422, description = "No reason, or the head cannot leave yet", body = crate::error::ProblemBody)))]
pub async fn end(
    State(state): State<AppState>,
    principal: Principal,
    Path(person_id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    principal.require(Permission::WritePersonalData)?;
    let Some(p) = state
        .store
        .registry()
        .person(&principal.scope, person_id)
        .await?
    else {
        return Err(not_visible(&state, &principal, "person", person_id).await);
    };
    let b: EndMembership = input::parse_body(&body)?;
    let Some(why) = reason(b.reason.clone(), &headers) else {
        return Err(ApiError::validation(vec![FieldError {
            field: "reason".into(),
            reason: "is required: say why the membership ends".into(),
        }]));
    };
    let end = b.end_date.unwrap_or_else(|| Utc::now().date_naive());
    let meta = event_meta(&principal, Channel::Api, Some(why.clone()));
    let mut uow = state.store.begin().await?;
    state
        .store
        .registry()
        .end_membership(&mut uow, &principal.scope, person_id, end, &why, &meta)
        .await
        .map_err(rule_error)?;
    audit_change(
        &state,
        &mut uow,
        &principal,
        "member.end",
        ("person", person_id),
        p.person.village,
        vec!["membership".into()],
    )
    .await?;
    uow.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// The member's new role.
    pub role: String,
    /// When making this member head: the current head's new role.
    pub previous_head_role: Option<String>,
    pub reason: Option<String>,
}

fn parse_role(field: &str, s: &str) -> ApiResult<MemberRole> {
    s.parse::<MemberRole>().map_err(|e| {
        ApiError::validation(vec![FieldError {
            field: field.into(),
            reason: e.to_string(),
        }])
    })
}

/// Change a member's role. Making a member head needs the current head's new role, so the
/// household always has exactly one head.
#[utoipa::path(patch, path = "/api/v1/memberships/{person_id}", tag = "registry", operation_id = "memberships_change_role",
    params(("person_id" = Uuid, Path)), request_body = ChangeRole,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The household's members after the change", body = Object),
        (status = 404, description = "No such person in your area scope"),
        (status = 422, description = "The change would not leave exactly one head", body = crate::error::ProblemBody)))]
pub async fn change_role(
    State(state): State<AppState>,
    principal: Principal,
    Path(person_id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Vec<PersonRecord>>> {
    principal.require(Permission::WritePersonalData)?;
    let Some(p) = state
        .store
        .registry()
        .person(&principal.scope, person_id)
        .await?
    else {
        return Err(not_visible(&state, &principal, "person", person_id).await);
    };
    let b: ChangeRole = input::parse_body(&body)?;
    let role = parse_role("role", &b.role)?;
    let Some(household_id) = p.person.household_id else {
        return Err(ApiError::conflict(format!(
            "person {person_id} is not a member of any household"
        )));
    };
    let mut roles = vec![(person_id, role)];
    if role == MemberRole::Head && p.role != Some(MemberRole::Head) {
        let Some(prev) = b.previous_head_role.as_deref() else {
            return Err(ApiError::validation(vec![FieldError {
                field: "previous_head_role".into(),
                reason: "is required when making a member head: the current head's new role".into(),
            }]));
        };
        let prev = parse_role("previous_head_role", prev)?;
        let members = state
            .store
            .registry()
            .members(&principal.scope, household_id)
            .await?;
        if let Some(head) = members.iter().find(|m| m.role == Some(MemberRole::Head)) {
            roles.push((head.person.id, prev));
        }
    }
    let meta = event_meta(&principal, Channel::Api, reason(b.reason.clone(), &headers));
    let mut uow = state.store.begin().await?;
    let members = state
        .store
        .registry()
        .change_roles(&mut uow, &principal.scope, household_id, &roles, &meta)
        .await
        .map_err(rule_error)?;
    audit_change(
        &state,
        &mut uow,
        &principal,
        "member.role",
        ("household", household_id),
        p.person.village,
        vec!["role".into()],
    )
    .await?;
    uow.commit().await?;
    Ok(Json(members))
}
