//! `/api/v1/linkage/reviews` and the review pages: the queue of record pairs the linkage engine
//! could not decide alone (registry duplicates from `inkingi match run`, records from health
//! systems that may be registry people), shown side by side with each field's part in the
//! match weight, and decided once.
//!
//! Confirming a registry duplicate does not merge: it submits a `merge_people` change request,
//! which an approver decides like any other change (the merge is applied, with its registry
//! events, on the final approval; `unmerge_people` undoes it). Confirming a record from another
//! source links it to the registry person at once (its facts follow), and `unlink` undoes that.

pub mod pages;
pub mod view;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use chrono::Utc;
use inkingi_domain::identity::Permission;
use inkingi_domain::registry::change::{ChangeKind, ChangeRequest, ChangeStatus};
use inkingi_domain::registry::history::Channel;
use inkingi_store::linkage::{Review, ReviewDecision, ReviewQuery, REGISTRY_DUPLICATE};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{page_limit, Query};
use crate::registry::{audit_change, input, reader};
use crate::AppState;

pub use view::{side_by_side, SideBySide};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
const STATUSES: [&str; 3] = ["open", "confirmed", "dismissed"];

#[derive(OpenApi)]
#[openapi(
    paths(list, get_one, confirm, dismiss, unlink, pages::queue_page, pages::review_page,
        pages::confirm_page, pages::dismiss_page),
    components(schemas(ReviewPage, ConfirmBody, DismissBody, Decided)),
    tags((name = "linkage", description = "The record-linkage review queue: pairs shown side by side, confirmed or dismissed"))
)]
struct LinkageApi;

pub fn api() -> utoipa::openapi::OpenApi {
    LinkageApi::openapi()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// open (default), confirmed, dismissed or all.
    status: Option<String>,
    /// registry_duplicate, fhir_patient, fhir_related_person.
    kind: Option<String>,
    /// An area code: reviews inside it.
    area: Option<String>,
    /// 1 to 200, default 50.
    limit: Option<u32>,
    offset: Option<u64>,
}

/// A page of reviews.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPage {
    #[schema(value_type = Vec<Object>)]
    pub reviews: Vec<Review>,
    /// Reviews matching the filters in your area scope.
    pub total: u64,
    /// Pass as `offset` for the next page; absent on the last page.
    pub next_offset: Option<u64>,
}

pub(crate) fn to_query(p: &ListParams) -> ApiResult<ReviewQuery> {
    let status = match p.status.as_deref() {
        None => Some("open".to_string()),
        Some("all") => None,
        Some(s) if STATUSES.contains(&s) => Some(s.to_string()),
        Some(s) => {
            return Err(ApiError::invalid_field(
                "status",
                format!("'{s}': expected open, confirmed, dismissed or all"),
            ))
        }
    };
    let area = p
        .area
        .as_deref()
        .map(inkingi_domain::areas::AreaCode::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("area", e.to_string()))?;
    let limit = page_limit(p.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    Ok(ReviewQuery {
        status,
        kind: p.kind.clone().filter(|k| !k.is_empty()),
        area,
        limit,
        offset: p.offset.unwrap_or(0),
    })
}

/// Reviews in scope, each read audited.
pub(crate) async fn find(
    state: &AppState,
    principal: &Principal,
    purpose: inkingi_domain::identity::Purpose,
    q: &ReviewQuery,
) -> ApiResult<(Vec<Review>, u64)> {
    let (reviews, total) = state.store.linkage().reviews(&principal.scope, q).await?;
    for r in &reviews {
        record_read(
            state,
            principal,
            purpose,
            ("linkage_review", &r.review.id.to_string()),
            area_of(r),
            &["candidate", "weight", "explanation"],
        )
        .await?;
    }
    Ok((reviews, total))
}

fn area_of(r: &Review) -> Option<inkingi_domain::areas::AreaCode> {
    r.review
        .area_code
        .as_deref()
        .and_then(|a| inkingi_domain::areas::AreaCode::parse(a).ok())
}

/// List reviews in your area scope, oldest first.
#[utoipa::path(get, path = "/api/v1/linkage/reviews", operation_id = "linkage_reviews_list", tag = "linkage",
    params(ListParams, ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "A page of reviews", body = ReviewPage),
        (status = 400, description = "A malformed filter, named in the problem")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<ReviewPage>> {
    let purpose = reader(&state, &principal)?;
    let q = to_query(&p)?;
    let (reviews, total) = find(&state, &principal, purpose, &q).await?;
    let seen = q.offset + reviews.len() as u64;
    Ok(Json(ReviewPage {
        reviews,
        total,
        next_offset: (seen < total).then_some(seen),
    }))
}

/// The review in scope, or a 404 that does not say whether it exists elsewhere.
pub(crate) async fn visible(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<Review> {
    state
        .store
        .linkage()
        .review(&principal.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no linkage review {id} in your area scope")))
}

/// One review: both records side by side, each field's values and its part in the weight.
#[utoipa::path(get, path = "/api/v1/linkage/reviews/{id}", operation_id = "linkage_review_get", tag = "linkage",
    params(("id" = Uuid, Path), ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The review and both records", body = Object),
        (status = 404, description = "No such review in your area scope")))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SideBySide>> {
    let purpose = reader(&state, &principal)?;
    let review = visible(&state, &principal, id).await?;
    Ok(Json(
        side_by_side(&state, &principal, purpose, review).await?,
    ))
}

/// Confirming: for a registry pair, which record survives (default: the one registered
/// first); for a record from another source, the registry person it is (default: the
/// candidate).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    pub survivor_id: Option<Uuid>,
    pub person_id: Option<Uuid>,
    /// Kept with the decision and on the merge request.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DismissBody {
    /// Why the records are not the same person (required).
    pub reason: String,
}

/// A decision and what it caused.
#[derive(Debug, Serialize, ToSchema)]
pub struct Decided {
    #[schema(value_type = Object)]
    pub review: Review,
    /// The `merge_people` request a registry pair's confirmation submitted.
    #[schema(value_type = Object)]
    pub change_request: Option<ChangeRequest>,
}

fn body_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    input::parse_body(body)
}

fn decided_already(r: &Review) -> ApiError {
    ApiError::conflict(format!(
        "linkage review {} is already {}{}",
        r.review.id,
        r.review.status,
        r.review
            .decided_by
            .as_deref()
            .map(|b| format!(" (by {b})"))
            .unwrap_or_default()
    ))
}

/// A refused field of the request body (422, naming the field).
fn body_field(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::validation(vec![crate::error::FieldError {
        field: field.into(),
        reason: reason.into(),
    }])
}

fn person_id_of(raw: &str, field: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::internal(format!(
            "review {field} '{raw}' is not a registry person id"
        ))
    })
}

/// Confirms a review (see the module documentation for what that does per kind).
pub(crate) async fn do_confirm(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    body: ConfirmBody,
) -> ApiResult<Decided> {
    principal.require(Permission::ApproveChanges)?;
    let review = visible(state, principal, id).await?;
    if review.review.status != "open" {
        return Err(decided_already(&review));
    }
    let reason = body.reason.clone().filter(|r| !r.trim().is_empty());
    if review.review.kind == REGISTRY_DUPLICATE {
        confirm_pair(state, principal, review, body.survivor_id, reason).await
    } else if review.review.kind.starts_with(crate::crvs::REVIEW_PREFIX) {
        crate::crvs::confirm_review(state, principal, review, body.person_id, reason).await
    } else {
        confirm_source(state, principal, review, body.person_id, reason).await
    }
}

pub(crate) async fn decide(
    state: &AppState,
    uow: &mut inkingi_store::UnitOfWork,
    principal: &Principal,
    review: &Review,
    d: ReviewDecision<'_>,
) -> ApiResult<()> {
    if !state
        .store
        .linkage()
        .decide_review(uow, review.review.id, &d)
        .await?
    {
        // Decided by someone else between our read and this write.
        let now = visible(state, principal, review.review.id).await?;
        return Err(decided_already(&now));
    }
    audit_change(
        state,
        uow,
        principal,
        &format!(
            "linkage_review.{}",
            if d.status == "confirmed" {
                "confirm"
            } else {
                "dismiss"
            }
        ),
        ("linkage_review", review.review.id),
        area_of(review),
        vec![d.status.to_string()],
    )
    .await
}

async fn confirm_pair(
    state: &AppState,
    principal: &Principal,
    review: Review,
    survivor: Option<Uuid>,
    reason: Option<String>,
) -> ApiResult<Decided> {
    let a = person_id_of(&review.review.source_id, "source_id")?;
    let b = review
        .review
        .candidate_person_id
        .ok_or_else(|| ApiError::internal("registry pair review without a candidate"))?;
    let reg = state.store.registry();
    let (Some(pa), Some(pb)) = (
        reg.person(&principal.scope, a).await?,
        reg.person(&principal.scope, b).await?,
    ) else {
        return Err(ApiError::not_found(format!(
            "the records of linkage review {} are not both in your area scope",
            review.review.id
        )));
    };
    // The record registered first is the one programmes and history already know.
    let first = if (pa.person.created_at, a) <= (pb.person.created_at, b) {
        a
    } else {
        b
    };
    let survivor_id = survivor.unwrap_or(first);
    if survivor_id != a && survivor_id != b {
        return Err(body_field(
            "survivor_id",
            format!("{survivor_id} is neither record of this review ({a}, {b})"),
        ));
    }
    let duplicate_id = if survivor_id == a { b } else { a };
    let area = [&pa, &pb]
        .into_iter()
        .find(|p| p.person.id == survivor_id)
        .and_then(|p| p.person.village.clone())
        .or_else(|| pa.person.village.clone().or(pb.person.village.clone()))
        .ok_or_else(|| ApiError::conflict("neither person has a village to decide in"))?;
    let now = Utc::now();
    let actor = principal.username.as_str();
    let change = ChangeKind::MergePeople {
        survivor_id,
        duplicate_id,
    };
    let mut cr = ChangeRequest {
        id: Uuid::now_v7(),
        tiers: tiers(state, change.name()),
        change,
        status: ChangeStatus::Draft,
        area: area.clone(),
        approvals: 0,
        reason: Some(reason.clone().unwrap_or_else(|| {
            format!("duplicate confirmed in linkage review {}", review.review.id)
        })),
        submitted_by: actor.to_string(),
        channel: Channel::Web,
        steps: Vec::new(),
        version: 1,
        created_at: now,
    };
    cr.submit(actor, now)
        .map_err(|e| ApiError::conflict(e.to_string()))?;
    let mut uow = state.store.begin().await?;
    let conflicts = state
        .store
        .changes()
        .open_conflicts(&mut uow, &cr.change.touches(), None)
        .await?;
    if !conflicts.is_empty() {
        let ids: Vec<String> = conflicts.iter().map(Uuid::to_string).collect();
        return Err(ApiError::conflict(format!(
            "open change request(s) {} already touch these people; decide or withdraw them first",
            ids.join(", ")
        )));
    }
    let d = ReviewDecision {
        status: "confirmed",
        by: actor,
        at: now,
        reason: reason.as_deref(),
        change_request_id: Some(cr.id),
    };
    decide(state, &mut uow, principal, &review, d).await?;
    state.store.changes().insert_change(&mut uow, &cr).await?;
    audit_change(
        state,
        &mut uow,
        principal,
        "change_request.create",
        ("change_request", cr.id),
        Some(area),
        vec![cr.change.name().to_string()],
    )
    .await?;
    uow.commit().await?;
    let review = visible(state, principal, review.review.id).await?;
    Ok(Decided {
        review,
        change_request: Some(cr),
    })
}

/// Approval tiers of a kind of change request, as configured.
fn tiers(state: &AppState, kind: &str) -> u32 {
    state
        .settings
        .approval_tiers
        .get(kind)
        .copied()
        .unwrap_or(1)
        .max(1)
}

async fn source_person_of(
    state: &AppState,
    principal: &Principal,
    review: &Review,
) -> ApiResult<inkingi_store::children::SourcePerson> {
    state
        .store
        .children()
        .source_person(
            &principal.scope,
            &review.review.source_system,
            &review.review.source_id,
        )
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "the source record of linkage review {} is not in your area scope",
                review.review.id
            ))
        })
}

async fn confirm_source(
    state: &AppState,
    principal: &Principal,
    review: Review,
    person: Option<Uuid>,
    reason: Option<String>,
) -> ApiResult<Decided> {
    let Some(person_id) = person.or(review.review.candidate_person_id) else {
        return Err(body_field(
            "person_id",
            "this review has no candidate: name the registry person the record is",
        ));
    };
    if state
        .store
        .registry()
        .person(&principal.scope, person_id)
        .await?
        .is_none()
    {
        return Err(body_field(
            "person_id",
            format!("no registry person {person_id} in your area scope"),
        ));
    }
    let sp = source_person_of(state, principal, &review).await?;
    let mut uow = state.store.begin().await?;
    let d = ReviewDecision {
        status: "confirmed",
        by: principal.username.as_str(),
        at: Utc::now(),
        reason: reason.as_deref(),
        change_request_id: None,
    };
    decide(state, &mut uow, principal, &review, d).await?;
    if !state
        .store
        .linkage()
        .link_source_person(&mut uow, sp.id, person_id)
        .await?
    {
        return Err(ApiError::conflict(format!(
            "source record {} was linked to a registry person meanwhile",
            sp.id
        )));
    }
    audit_change(
        state,
        &mut uow,
        principal,
        "source_person.link",
        ("source_person", sp.id),
        area_of(&review),
        vec![format!("person_id={person_id}")],
    )
    .await?;
    uow.commit().await?;
    let review = visible(state, principal, review.review.id).await?;
    Ok(Decided {
        review,
        change_request: None,
    })
}

pub(crate) async fn do_dismiss(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    reason: &str,
) -> ApiResult<Decided> {
    principal.require(Permission::ApproveChanges)?;
    let review = visible(state, principal, id).await?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(body_field(
            "reason",
            "say why the records are not the same person",
        ));
    }
    if review.review.status != "open" {
        return Err(decided_already(&review));
    }
    let mut uow = state.store.begin().await?;
    let d = ReviewDecision {
        status: "dismissed",
        by: principal.username.as_str(),
        at: Utc::now(),
        reason: Some(reason),
        change_request_id: None,
    };
    decide(state, &mut uow, principal, &review, d).await?;
    uow.commit().await?;
    let review = visible(state, principal, id).await?;
    Ok(Decided {
        review,
        change_request: None,
    })
}

/// Confirm a review: a registry pair submits a `merge_people` change request; a record from
/// another source is linked to the registry person with its facts.
#[utoipa::path(post, path = "/api/v1/linkage/reviews/{id}/confirm", operation_id = "linkage_review_confirm", tag = "linkage",
    params(("id" = Uuid, Path)), request_body = ConfirmBody,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The review, confirmed, and the change request it submitted", body = Decided),
        (status = 404, description = "No such review in your area scope"),
        (status = 409, description = "Already decided, or another open request touches these people"),
        (status = 422, description = "Field errors", body = crate::error::ProblemBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> ApiResult<Json<Decided>> {
    principal.require(Permission::ApproveChanges)?;
    visible(&state, &principal, id).await?;
    let body: ConfirmBody = body_or_default(&body)?;
    Ok(Json(do_confirm(&state, &principal, id, body).await?))
}

/// Dismiss a review: the records are not the same person. The pair is not queued again.
#[utoipa::path(post, path = "/api/v1/linkage/reviews/{id}/dismiss", operation_id = "linkage_review_dismiss", tag = "linkage",
    params(("id" = Uuid, Path)), request_body = DismissBody,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The review, dismissed", body = Decided),
        (status = 404, description = "No such review in your area scope"),
        (status = 409, description = "Already decided"),
        (status = 422, description = "No reason given", body = crate::error::ProblemBody)))]
pub async fn dismiss(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> ApiResult<Json<Decided>> {
    principal.require(Permission::ApproveChanges)?;
    visible(&state, &principal, id).await?;
    let body: DismissBody = input::parse_body(&body)?;
    Ok(Json(
        do_dismiss(&state, &principal, id, &body.reason).await?,
    ))
}

/// Undo a confirmed cross-source link: the record and its facts are unlinked and the review
/// is open again. (A registry merge is undone by an `unmerge_people` change request.)
#[utoipa::path(post, path = "/api/v1/linkage/reviews/{id}/unlink", operation_id = "linkage_review_unlink", tag = "linkage",
    params(("id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The review, open again", body = Decided),
        (status = 404, description = "No such review in your area scope"),
        (status = 409, description = "Not a confirmed cross-source review")))]
pub async fn unlink(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Decided>> {
    principal.require(Permission::ApproveChanges)?;
    let review = visible(&state, &principal, id).await?;
    if review.review.kind == REGISTRY_DUPLICATE || review.review.status != "confirmed" {
        return Err(ApiError::conflict(format!(
            "linkage review {id} is a {} review, {}: only a confirmed link to another source \
             can be unlinked here (registry merges are undone by an unmerge_people change \
             request)",
            review.review.kind, review.review.status
        )));
    }
    let sp = source_person_of(&state, &principal, &review).await?;
    let person_id = sp
        .person_id
        .ok_or_else(|| ApiError::conflict(format!("source record {} is not linked", sp.id)))?;
    let mut uow = state.store.begin().await?;
    let linkage = state.store.linkage();
    if !linkage
        .unlink_source_person(&mut uow, sp.id, person_id)
        .await?
        || !linkage.reopen_review(&mut uow, id).await?
    {
        return Err(ApiError::conflict(format!(
            "source record {} was not linked by a review, or was changed meanwhile",
            sp.id
        )));
    }
    audit_change(
        &state,
        &mut uow,
        &principal,
        "source_person.unlink",
        ("source_person", sp.id),
        area_of(&review),
        vec![format!("person_id={person_id}")],
    )
    .await?;
    uow.commit().await?;
    let review = visible(&state, &principal, id).await?;
    Ok(Json(Decided {
        review,
        change_request: None,
    }))
}
