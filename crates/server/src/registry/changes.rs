//! `/api/v1/change-requests` and the approval queue page: typed requests to change the
//! registry, submitted within the submitter's area, decided by approvers of the household's
//! area tier by tier, and applied atomically (registry events naming the request, the request's
//! new state and the audit entry commit together) on the final approval.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_domain::identity::{AreaScope, Permission};
use inkingi_domain::registry::change::{Approval, ChangeKind, ChangeRequest, ChangeStatus};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{MemberRole, PersonInput};
use inkingi_store::changes::ChangeQuery;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::input::{self, Errors, MemberFields};
use super::{audit_change, current_form, event_meta, not_visible, reader};
use crate::auth::{PagePrincipal, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{page_limit, Query};
use crate::web::page::{render, PageCtx, Section};
use crate::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// Approval tiers per kind of request unless configured otherwise: changes that create,
/// remove or merge households, or end a life, need a second, district-level decision.
pub fn default_tiers() -> BTreeMap<String, u32> {
    [
        ("add_member", 1),
        ("remove_member", 1),
        ("move_household", 2),
        ("change_head", 1),
        ("split_household", 2),
        ("merge_households", 2),
        ("update_identity", 1),
        ("correct_data", 1),
        ("record_birth", 1),
        ("record_death", 2),
        // A merge is already a second look: the reviewer confirmed the pair, another approver
        // decides the request.
        ("merge_people", 1),
        ("unmerge_people", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The body of a new change request: its kind and that kind's fields. People are given as
/// plain fields and validated like a registration (every error with its path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeBody {
    AddMember {
        household_id: Uuid,
        person: MemberFields,
        mother_id: Option<Uuid>,
        father_id: Option<Uuid>,
        #[serde(flatten)]
        common: Common,
    },
    RemoveMember {
        household_id: Uuid,
        person_id: Uuid,
        #[serde(flatten)]
        common: Common,
    },
    MoveHousehold {
        household_id: Uuid,
        village: String,
        address: Option<String>,
        #[serde(flatten)]
        common: Common,
    },
    ChangeHead {
        household_id: Uuid,
        new_head_id: Uuid,
        previous_head_role: Option<String>,
        #[serde(flatten)]
        common: Common,
    },
    SplitHousehold {
        household_id: Uuid,
        person_ids: Vec<Uuid>,
        new_head_id: Uuid,
        village: String,
        #[serde(flatten)]
        common: Common,
    },
    MergeHouseholds {
        into_household_id: Uuid,
        from_household_id: Uuid,
        #[serde(flatten)]
        common: Common,
    },
    UpdateIdentity {
        person_id: Uuid,
        #[schema(value_type = Object)]
        fields: Map<String, Value>,
        #[serde(flatten)]
        common: Common,
    },
    CorrectData {
        household_id: Uuid,
        #[schema(value_type = Object)]
        fields: Map<String, Value>,
        #[serde(flatten)]
        common: Common,
    },
    RecordBirth {
        household_id: Uuid,
        mother_id: Option<Uuid>,
        child: MemberFields,
        #[serde(flatten)]
        common: Common,
    },
    RecordDeath {
        person_id: Uuid,
        /// `YYYY-MM-DD`.
        died_on: String,
        new_head_id: Option<Uuid>,
        #[serde(flatten)]
        common: Common,
    },
    /// Usually submitted by confirming a linkage review.
    MergePeople {
        survivor_id: Uuid,
        duplicate_id: Uuid,
        #[serde(flatten)]
        common: Common,
    },
    /// Restores a merged duplicate exactly as it was.
    UnmergePeople {
        survivor_id: Uuid,
        duplicate_id: Uuid,
        #[serde(flatten)]
        common: Common,
    },
}

/// Fields every request may carry.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Common {
    /// Why the change is asked for; shown to approvers and kept in the history.
    pub reason: Option<String>,
    /// Submit at once (default) or keep as a draft.
    pub submit: Option<bool>,
}

impl ChangeBody {
    fn common(&self) -> &Common {
        match self {
            ChangeBody::AddMember { common, .. }
            | ChangeBody::RemoveMember { common, .. }
            | ChangeBody::MoveHousehold { common, .. }
            | ChangeBody::ChangeHead { common, .. }
            | ChangeBody::SplitHousehold { common, .. }
            | ChangeBody::MergeHouseholds { common, .. }
            | ChangeBody::UpdateIdentity { common, .. }
            | ChangeBody::CorrectData { common, .. }
            | ChangeBody::RecordBirth { common, .. }
            | ChangeBody::RecordDeath { common, .. }
            | ChangeBody::MergePeople { common, .. }
            | ChangeBody::UnmergePeople { common, .. } => common,
        }
    }
}

fn village(field: &str, raw: &str, e: &mut Errors) -> Option<AreaCode> {
    match AreaCode::parse(raw) {
        Ok(c) if c.level() == AreaLevel::Village => Some(c),
        Ok(c) => {
            e.add("", field, format!("{c} is a {}, not a village", c.level()));
            None
        }
        Err(err) => {
            e.add("", field, err.to_string());
            None
        }
    }
}

fn person(
    prefix: &str,
    m: &MemberFields,
    form: &inkingi_domain::registry::form::FormSchema,
    e: &mut Errors,
) -> Option<PersonInput> {
    input::person(prefix, m, form, e)
}

/// Validates the body into the domain's typed change.
async fn to_change(state: &AppState, body: ChangeBody) -> ApiResult<ChangeKind> {
    let form = current_form(state).await?;
    let mut e = Errors::default();
    let change = match body {
        ChangeBody::AddMember {
            household_id,
            person: p,
            mother_id,
            father_id,
            ..
        } => {
            let role = input::membership("person", &p, &mut e).map(|(r, _)| r);
            person("person", &p, &form, &mut e)
                .zip(role)
                .map(|(person, role)| ChangeKind::AddMember {
                    household_id,
                    person,
                    role,
                    mother_id,
                    father_id,
                })
        }
        ChangeBody::RemoveMember {
            household_id,
            person_id,
            ..
        } => Some(ChangeKind::RemoveMember {
            household_id,
            person_id,
        }),
        ChangeBody::MoveHousehold {
            household_id,
            village: v,
            address,
            ..
        } => village("village", &v, &mut e).map(|village| ChangeKind::MoveHousehold {
            household_id,
            village,
            address,
        }),
        ChangeBody::ChangeHead {
            household_id,
            new_head_id,
            previous_head_role,
            ..
        } => {
            let role = match previous_head_role.as_deref().map(str::parse::<MemberRole>) {
                None => Some(None),
                Some(Ok(MemberRole::Head)) => {
                    e.add(
                        "",
                        "previous_head_role",
                        "the outgoing head cannot stay head",
                    );
                    None
                }
                Some(Ok(r)) => Some(Some(r)),
                Some(Err(err)) => {
                    e.add("", "previous_head_role", err.to_string());
                    None
                }
            };
            role.map(|previous_head_role| ChangeKind::ChangeHead {
                household_id,
                new_head_id,
                previous_head_role,
            })
        }
        ChangeBody::SplitHousehold {
            household_id,
            person_ids,
            new_head_id,
            village: v,
            ..
        } => {
            if person_ids.is_empty() {
                e.add("", "person_ids", "name at least one member who leaves");
            }
            village("village", &v, &mut e).map(|village| ChangeKind::SplitHousehold {
                household_id,
                person_ids,
                new_head_id,
                village,
            })
        }
        ChangeBody::MergeHouseholds {
            into_household_id,
            from_household_id,
            ..
        } => Some(ChangeKind::MergeHouseholds {
            into_household_id,
            from_household_id,
        }),
        ChangeBody::UpdateIdentity {
            person_id, fields, ..
        } => {
            if fields.is_empty() {
                e.add("", "fields", "name at least one field to change");
            }
            Some(ChangeKind::UpdateIdentity { person_id, fields })
        }
        ChangeBody::CorrectData {
            household_id,
            fields,
            ..
        } => {
            if let Some(Value::Object(answers)) = fields.get("answers") {
                for err in
                    form.validate(inkingi_domain::registry::form::Section::Household, answers)
                {
                    e.add("fields.answers", &err.field, err.reason);
                }
            }
            Some(ChangeKind::CorrectData {
                household_id,
                fields,
            })
        }
        ChangeBody::RecordBirth {
            household_id,
            mother_id,
            child,
            ..
        } => person("child", &child, &form, &mut e).map(|child| ChangeKind::RecordBirth {
            household_id,
            mother_id,
            child,
        }),
        ChangeBody::RecordDeath {
            person_id,
            died_on,
            new_head_id,
            ..
        } => match NaiveDate::parse_from_str(died_on.trim(), "%Y-%m-%d") {
            Ok(d) if d <= Utc::now().date_naive() => Some(ChangeKind::RecordDeath {
                person_id,
                died_on: d,
                new_head_id,
            }),
            Ok(_) => {
                e.add("", "died_on", "is in the future");
                None
            }
            Err(_) => {
                e.add(
                    "",
                    "died_on",
                    format!("'{died_on}' is not a date (YYYY-MM-DD)"),
                );
                None
            }
        },
        ChangeBody::MergePeople {
            survivor_id,
            duplicate_id,
            ..
        } => Some(ChangeKind::MergePeople {
            survivor_id,
            duplicate_id,
        }),
        ChangeBody::UnmergePeople {
            survivor_id,
            duplicate_id,
            ..
        } => Some(ChangeKind::UnmergePeople {
            survivor_id,
            duplicate_id,
        }),
    };
    e.into_result()?;
    change.ok_or_else(|| ApiError::internal("validated change missing"))
}

/// The village whose officers decide: the household's, or the person's household's. Every
/// record the change names must be visible to the submitter (404 otherwise).
async fn decide_area(
    state: &AppState,
    principal: &Principal,
    change: &ChangeKind,
) -> ApiResult<AreaCode> {
    let reg = state.store.registry();
    let mut area = None;
    for id in change.touches() {
        let found = match reg.household(&principal.scope, id).await? {
            Some(h) => Some(Some(h.village)),
            None => reg
                .person(&principal.scope, id)
                .await?
                .map(|p| p.person.village),
        };
        match found {
            None => return Err(not_visible(state, principal, "record", id).await),
            Some(v) => area = area.or(v),
        }
    }
    area.ok_or_else(|| ApiError::conflict("the person named is not a member of any household"))
}

/// A change request as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub request: ChangeRequest,
    /// The tier the next approval decides, while submitted.
    pub next_tier: Option<u32>,
}

fn view(cr: ChangeRequest) -> ChangeView {
    let next_tier = (cr.status == ChangeStatus::Submitted).then_some(cr.approvals + 1);
    ChangeView {
        request: cr,
        next_tier,
    }
}

/// Submit a change request.
#[utoipa::path(post, path = "/api/v1/change-requests", operation_id = "create_change_request", tag = "registry",
    request_body = Object,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, description = "The request, submitted (or a draft)", body = ChangeView),
        (status = 404, description = "A record named is not in your area scope"),
        (status = 409, description = "Another open request touches the same record"),
        (status = 422, description = "Field errors", body = crate::error::ProblemBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ChangeView>)> {
    principal.require(Permission::SubmitChangeRequests)?;
    let body: ChangeBody = input::parse_body(&body)?;
    let reason = body
        .common()
        .reason
        .clone()
        .filter(|r| !r.trim().is_empty());
    let submit = body.common().submit.unwrap_or(true);
    let change = to_change(&state, body).await?;
    let area = decide_area(&state, &principal, &change).await?;
    let tiers = state
        .settings
        .approval_tiers
        .get(change.name())
        .copied()
        .unwrap_or(1)
        .max(1);
    let now = Utc::now();
    let mut cr = ChangeRequest {
        id: Uuid::now_v7(),
        change,
        status: ChangeStatus::Draft,
        area: area.clone(),
        tiers,
        approvals: 0,
        reason,
        submitted_by: principal.username.as_str().to_string(),
        channel: Channel::Api,
        steps: Vec::new(),
        version: 1,
        created_at: now,
    };
    if submit {
        cr.submit(principal.username.as_str(), now)
            .map_err(|e| ApiError::conflict(e.to_string()))?;
    }
    let mut uow = state.store.begin().await?;
    let conflicts = state
        .store
        .changes()
        .open_conflicts(&mut uow, &cr.change.touches(), None)
        .await?;
    if !conflicts.is_empty() {
        let ids: Vec<String> = conflicts.iter().map(Uuid::to_string).collect();
        return Err(ApiError::conflict(format!(
            "open change request(s) {} already touch the same record; decide or withdraw them first",
            ids.join(", ")
        )));
    }
    state.store.changes().insert_change(&mut uow, &cr).await?;
    audit_change(
        &state,
        &mut uow,
        &principal,
        "change_request.create",
        ("change_request", cr.id),
        Some(area),
        vec![cr.change.name().to_string()],
    )
    .await?;
    uow.commit().await?;
    Ok((StatusCode::CREATED, Json(view(cr))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// draft, submitted, approved, rejected, applied or withdrawn.
    status: Option<String>,
    /// An area code: requests of villages inside it.
    area: Option<String>,
    kind: Option<String>,
    /// The previous page's `next_before`.
    before: Option<Uuid>,
    /// 1 to 200, default 50.
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    pub requests: Vec<ChangeView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

fn to_query(p: &ListParams) -> ApiResult<ChangeQuery> {
    let limit = page_limit(p.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(ChangeStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                format!("query parameter 'status': unknown status '{s}'"),
            )
        })?),
    };
    let area = match p.area.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(a) => Some(
            AreaCode::parse(a)
                .map_err(|e| {
                    ApiError::invalid_field("area", format!("query parameter 'area': {e}"))
                })?
                .to_string(),
        ),
    };
    Ok(ChangeQuery {
        status,
        area,
        kind: p.kind.clone().filter(|s| !s.is_empty()),
        submitted_by: None,
        before: p.before,
        limit,
    })
}

/// Change requests in your area scope, newest first (the approval queue is `status=submitted`).
#[utoipa::path(get, path = "/api/v1/change-requests", operation_id = "list_change_requests", tag = "registry",
    params(ListParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "One page of requests", body = ChangePage)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<ChangePage>> {
    let purpose = reader(&state, &principal)?;
    let q = to_query(&p)?;
    let found = state
        .store
        .changes()
        .list_changes(&principal.scope, &q)
        .await?;
    for cr in &found {
        crate::audit::record_read(
            &state,
            &principal,
            purpose,
            ("change_request", &cr.id.to_string()),
            Some(cr.area.clone()),
            &["change"],
        )
        .await?;
    }
    let next_before = (found.len() == q.limit as usize)
        .then(|| found.last().map(|c| c.id))
        .flatten();
    Ok(Json(ChangePage {
        requests: found.into_iter().map(view).collect(),
        next_before,
    }))
}

/// One change request with its trail of steps.
#[utoipa::path(get, path = "/api/v1/change-requests/{id}", operation_id = "get_change_request", tag = "registry",
    params(("id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The request", body = ChangeView),
        (status = 404, description = "No such request in your area scope")))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ChangeView>> {
    let purpose = reader(&state, &principal)?;
    let Some(cr) = state.store.changes().change(&principal.scope, id).await? else {
        return Err(ApiError::not_found(format!(
            "no change request {id} in your area scope"
        )));
    };
    crate::audit::record_read(
        &state,
        &principal,
        purpose,
        ("change_request", &id.to_string()),
        Some(cr.area.clone()),
        &["change", "steps"],
    )
    .await?;
    Ok(Json(view(cr)))
}

/// A decision on a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `approve`, `reject`, `submit` (a draft) or `withdraw`.
    pub decision: String,
    pub note: Option<String>,
}

/// The widest area level an approver of `tier` must cover: the first tier may be decided in
/// the village's sector or cell, the second needs the district, any further tier the nation.
fn tier_level(tier: u32) -> Option<AreaLevel> {
    match tier {
        0 | 1 => Some(AreaLevel::Village),
        2 => Some(AreaLevel::District),
        _ => None,
    }
}

fn may_decide_tier(scope: &AreaScope, area: &AreaCode, tier: u32) -> bool {
    if !scope.contains(area) {
        return false;
    }
    match tier_level(tier) {
        None => scope.is_national(),
        Some(level) => {
            scope.is_national()
                || scope
                    .codes()
                    .iter()
                    .any(|c| c.contains(area) && c.level() <= level)
        }
    }
}

/// Decides a request: the transition, and on a final approval the change itself, commit
/// together. Returns the request after the decision.
pub async fn decide(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    decision: &Decision,
) -> ApiResult<ChangeRequest> {
    let note = decision.note.clone().filter(|n| !n.trim().is_empty());
    let now = Utc::now();
    let mut uow = state.store.begin().await?;
    let Some(mut cr) = state
        .store
        .changes()
        .change_for_update(&mut uow, id)
        .await?
    else {
        return Err(ApiError::not_found(format!(
            "no change request {id} in your area scope"
        )));
    };
    if !principal.scope.contains(&cr.area) {
        return Err(ApiError::not_found(format!(
            "no change request {id} in your area scope"
        )));
    }
    let actor = principal.username.as_str();
    let conflict =
        |e: inkingi_domain::registry::change::TransitionError| ApiError::conflict(e.to_string());
    match decision.decision.as_str() {
        "approve" | "reject" => {
            principal.require(Permission::ApproveChanges)?;
            let tier = cr.approvals + 1;
            if !may_decide_tier(&principal.scope, &cr.area, tier) {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!(
                    "tier {tier} of this request must be decided by an approver whose area is {} or wider",
                    tier_level(tier).map_or("national".to_string(), |l| format!("a {l}"))
                )));
            }
            if decision.decision == "reject" {
                cr.reject(actor, now, note).map_err(conflict)?;
            } else if let Approval::Final { .. } = cr.approve(actor, now, note).map_err(conflict)? {
                let meta = event_meta(principal, Channel::ChangeRequest, cr.reason.clone());
                state
                    .store
                    .change_applier()
                    .apply_change(&mut uow, &principal.scope, &cr, now.date_naive(), &meta)
                    .await
                    .map_err(super::memberships::rule_error)?;
                if let ChangeKind::RecordDeath { person_id, .. } = &cr.change {
                    exit_enrolments(state, &mut uow, principal, *person_id).await?;
                }
                cr.mark_applied(actor, now).map_err(conflict)?;
            }
        }
        "submit" | "withdraw" => {
            if cr.submitted_by != actor {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "only the submitter may submit or withdraw a request",
                ));
            }
            if decision.decision == "submit" {
                cr.submit(actor, now).map_err(conflict)?;
            } else {
                cr.withdraw(actor, now).map_err(conflict)?;
            }
        }
        other => {
            return Err(ApiError::invalid_field(
                "decision",
                format!("'{other}': expected approve, reject, submit or withdraw"),
            ));
        }
    }
    cr.version += 1;
    state.store.changes().save_change(&mut uow, &cr).await?;
    let action = format!("change_request.{}", decision.decision);
    audit_change(
        state,
        &mut uow,
        principal,
        &action,
        ("change_request", cr.id),
        Some(cr.area.clone()),
        vec![cr.status.to_string()],
    )
    .await?;
    uow.commit().await?;
    Ok(cr)
}

/// A recorded death ends the person's programme enrolments (reason `death`) in the same
/// transaction, each exit audited: nobody is paid for, or waits for a place for, the dead.
async fn exit_enrolments(
    state: &AppState,
    uow: &mut inkingi_store::UnitOfWork,
    principal: &Principal,
    person_id: Uuid,
) -> ApiResult<()> {
    let exited = state
        .store
        .programmes()
        .exit_on_death(uow, person_id, principal.username.as_str())
        .await?;
    for e in exited {
        let area = AreaCode::parse(&e.village).ok();
        audit_change(
            state,
            uow,
            principal,
            "enrolment.exit",
            ("enrolment", e.id),
            area,
            vec![format!("programme:{}", e.programme), "reason:death".into()],
        )
        .await?;
    }
    Ok(())
}

/// Approve, reject, submit or withdraw a request. The final approval applies the change.
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/decision", operation_id = "decide_change_request", tag = "registry",
    params(("id" = Uuid, Path)), request_body = Decision,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The request after the decision", body = ChangeView),
        (status = 403, description = "Not yours to decide at this tier"),
        (status = 409, description = "Not in a state for this decision, or the registry no longer allows the change")))]
pub async fn decide_api(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    _headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ChangeView>> {
    // Approvers decide, submitters submit or withdraw; anyone else is refused before the body
    // is even read.
    if principal.require(Permission::ApproveChanges).is_err() {
        principal.require(Permission::SubmitChangeRequests)?;
    }
    if state
        .store
        .changes()
        .change(&principal.scope, id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no change request {id} in your area scope"
        )));
    }
    let d: Decision = input::parse_body(&body)?;
    let cr = decide(&state, &principal, id, &d).await?;
    Ok(Json(view(cr)))
}

struct QueueRow {
    id: String,
    kind: String,
    area: String,
    submitted_by: String,
    created: String,
    reason: String,
    tier: String,
    summary: String,
}

#[derive(Template)]
#[template(path = "registry/changes.html")]
struct QueuePage {
    chrome: crate::web::page::Chrome,
    csrf: String,
    rows: Vec<QueueRow>,
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    done: Option<String>,
}

fn summary(c: &ChangeKind) -> String {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.remove("kind");
    }
    let s = v.to_string();
    if s.chars().count() > 240 {
        format!("{}…", s.chars().take(240).collect::<String>())
    } else {
        s
    }
}

/// The approval queue: submitted requests in the approver's area, oldest first.
#[utoipa::path(get, path = "/change-requests", operation_id = "change_request_queue_page", tag = "registry",
    responses((status = 200, description = "The approval queue (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn queue_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Query(p): Query<QueueParams>,
) -> ApiResult<Response> {
    principal.require(Permission::ApproveChanges)?;
    let purpose = principal.purpose_or(
        inkingi_domain::identity::Purpose::CaseManagement,
        &state.auth.settings.purposes,
    )?;
    let q = ChangeQuery {
        status: Some(ChangeStatus::Submitted),
        limit: MAX_LIMIT,
        ..Default::default()
    };
    let mut found = state
        .store
        .changes()
        .list_changes(&principal.scope, &q)
        .await?;
    found.reverse();
    for cr in &found {
        crate::audit::record_read(
            &state,
            &principal,
            purpose,
            ("change_request", &cr.id.to_string()),
            Some(cr.area.clone()),
            &["change"],
        )
        .await?;
    }
    let rows = found
        .into_iter()
        .map(|cr| QueueRow {
            id: cr.id.to_string(),
            kind: cr.change.name().to_string(),
            area: cr.area.to_string(),
            submitted_by: cr.submitted_by.clone(),
            created: cr.created_at.format("%Y-%m-%d %H:%M").to_string(),
            reason: cr.reason.clone().unwrap_or_default(),
            tier: format!("{}/{}", cr.approvals + 1, cr.tiers),
            summary: summary(&cr.change),
        })
        .collect();
    let page = QueuePage {
        chrome: ctx.chrome(Section::Changes, &ctx.t().changes_title),
        csrf: principal.csrf_token().to_string(),
        rows,
        notice: p.done.filter(|d| !d.is_empty()),
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    note: String,
}

/// A decision from the queue page; back to the queue with a notice.
#[utoipa::path(post, path = "/change-requests/{id}/decision", operation_id = "decide_change_request_page", tag = "registry",
    params(("id" = Uuid, Path)),
    responses((status = 303, description = "Back to the queue"),
        (status = 409, description = "The decision could not be applied")))]
pub async fn decide_page(
    State(state): State<AppState>,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
    Form(f): Form<DecisionForm>,
) -> ApiResult<Response> {
    principal.check_csrf(Some(&f.csrf))?;
    let d = Decision {
        decision: f.decision,
        note: Some(f.note),
    };
    let cr = decide(&state, &principal, id, &d).await?;
    Ok(Redirect::to(&format!("/change-requests?done={}", cr.status)).into_response())
}
