//! The review pages: the queue in the reviewer's area, and one review with both records side
//! by side and the confirm and dismiss forms (CSRF-checked, like every page form).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use inkingi_domain::identity::{Permission, Purpose};
use inkingi_store::linkage::{Review, REGISTRY_DUPLICATE};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    do_confirm, do_dismiss, find, side_by_side, to_query, visible, ConfirmBody, ListParams,
};
use crate::auth::PagePrincipal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::web::page::{not_found, render, Chrome, PageCtx, Section};
use crate::AppState;

fn page_reader(state: &AppState, principal: &PagePrincipal) -> ApiResult<Purpose> {
    principal.require(Permission::ApproveChanges)?;
    principal.require(Permission::ReadPersonalData)?;
    principal.purpose_or(Purpose::CaseManagement, &state.auth.settings.purposes)
}

struct QueueRow {
    id: String,
    kind: String,
    area: String,
    weight: String,
    created: String,
    status: String,
    auto_link: bool,
}

struct StatusOption {
    value: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "linkage/queue.html")]
struct QueuePage {
    chrome: Chrome,
    rows: Vec<QueueRow>,
    statuses: Vec<StatusOption>,
    total: u64,
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    status: Option<String>,
    kind: Option<String>,
    done: Option<String>,
}

fn weight_text(w: Option<f64>) -> String {
    w.map(|w| format!("{w:.2}")).unwrap_or_else(|| "–".into())
}

fn queue_row(r: &Review) -> QueueRow {
    QueueRow {
        id: r.review.id.to_string(),
        kind: r.review.kind.clone(),
        area: r.review.area_code.clone().unwrap_or_default(),
        weight: weight_text(r.review.weight),
        created: r.review.created_at.format("%Y-%m-%d %H:%M").to_string(),
        status: r.review.status.clone(),
        auto_link: r.auto_link,
    }
}

/// The review queue: open reviews in the reviewer's area, oldest first.
#[utoipa::path(get, path = "/linkage/reviews", operation_id = "linkage_review_queue_page", tag = "linkage",
    responses((status = 200, description = "The review queue (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn queue_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Query(p): Query<QueueParams>,
) -> ApiResult<Response> {
    let purpose = page_reader(&state, &principal)?;
    let params = ListParams {
        status: p.status.clone().filter(|s| !s.is_empty()),
        kind: p.kind.clone(),
        area: None,
        limit: Some(super::MAX_LIMIT),
        offset: None,
    };
    let q = to_query(&params)?;
    let (reviews, total) = find(&state, &principal, purpose, &q).await?;
    let page = QueuePage {
        chrome: ctx.chrome(Section::Linkage, &ctx.t().link_title),
        rows: reviews.iter().map(queue_row).collect(),
        statuses: ["open", "confirmed", "dismissed", "all"]
            .into_iter()
            .map(|value| StatusOption {
                value,
                selected: q.status.as_deref().unwrap_or("all") == value,
            })
            .collect(),
        total,
        notice: p.done.filter(|d| !d.is_empty()),
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

struct FieldLine {
    field: String,
    left: String,
    right: String,
    level: String,
    weight: String,
    /// `agree`, `disagree` or empty, for styling.
    tone: &'static str,
}

#[derive(Template)]
#[template(path = "linkage/review.html")]
struct ReviewPageT {
    chrome: Chrome,
    csrf: String,
    id: String,
    kind: String,
    status: String,
    weight: String,
    auto_link: bool,
    reason: String,
    decided: String,
    left_id: String,
    right_id: String,
    left_kind: String,
    pair: bool,
    open: bool,
    change_request: String,
    fields: Vec<FieldLine>,
}

/// One review: both records side by side, with the confirm and dismiss forms.
#[utoipa::path(get, path = "/linkage/reviews/{id}", operation_id = "linkage_review_page", tag = "linkage",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The review (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page"),
        (status = 404, description = "No such review in your area scope")))]
pub async fn review_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let purpose = page_reader(&state, &principal)?;
    let review = match visible(&state, &principal, id).await {
        Ok(r) => r,
        Err(_) => return Ok(not_found(&ctx)),
    };
    let v = side_by_side(&state, &principal, purpose, review).await?;
    let r = &v.review;
    let fields = v
        .fields
        .iter()
        .map(|f| FieldLine {
            field: f.field.clone(),
            left: f.left.clone().unwrap_or_default(),
            right: f.right.clone().unwrap_or_default(),
            level: f.level.clone().unwrap_or_default(),
            weight: f.weight.map(|w| format!("{w:+.2}")).unwrap_or_default(),
            tone: match f.weight {
                Some(w) if w > 0.0 => "agree",
                Some(w) if w < 0.0 => "disagree",
                _ => "",
            },
        })
        .collect();
    let page = ReviewPageT {
        chrome: ctx.chrome(Section::Linkage, &ctx.t().link_review_title),
        csrf: principal.csrf_token().to_string(),
        id: r.review.id.to_string(),
        kind: r.review.kind.clone(),
        status: r.review.status.clone(),
        weight: weight_text(r.review.weight),
        auto_link: r.auto_link,
        reason: v.reason.clone().unwrap_or_default(),
        decided: match (&r.review.decided_by, &r.review.decided_at) {
            (Some(by), Some(at)) => format!(
                "{by} · {}{}",
                at.format("%Y-%m-%d %H:%M"),
                r.decision_reason
                    .as_deref()
                    .map(|x| format!(" · {x}"))
                    .unwrap_or_default()
            ),
            _ => String::new(),
        },
        left_id: v
            .left
            .as_ref()
            .map(|s| s.id.to_string())
            .unwrap_or_default(),
        right_id: v
            .right
            .as_ref()
            .map(|s| s.id.to_string())
            .unwrap_or_default(),
        left_kind: v.left.as_ref().map(|s| s.kind).unwrap_or_default().into(),
        pair: r.review.kind == REGISTRY_DUPLICATE,
        open: r.review.status == "open",
        change_request: r
            .change_request_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
        fields,
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmForm {
    csrf: String,
    #[serde(default)]
    survivor_id: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DismissForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Confirm from the review page; back to the queue with a notice.
#[utoipa::path(post, path = "/linkage/reviews/{id}/confirm", operation_id = "linkage_review_confirm_page", tag = "linkage",
    params(("id" = Uuid, Path)),
    responses((status = 303, description = "Back to the queue"),
        (status = 409, description = "Already decided")))]
pub async fn confirm_page(
    State(state): State<AppState>,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
    Form(f): Form<ConfirmForm>,
) -> ApiResult<Response> {
    principal.check_csrf(Some(&f.csrf))?;
    let survivor_id = match f.survivor_id.trim() {
        "" => None,
        s => Some(
            Uuid::parse_str(s)
                .map_err(|_| ApiError::invalid_field("survivor_id", "not a person id"))?,
        ),
    };
    let body = ConfirmBody {
        survivor_id,
        person_id: None,
        reason: Some(f.reason),
    };
    do_confirm(&state, &principal, id, body).await?;
    Ok(Redirect::to("/linkage/reviews?done=confirmed").into_response())
}

/// Dismiss from the review page; back to the queue with a notice.
#[utoipa::path(post, path = "/linkage/reviews/{id}/dismiss", operation_id = "linkage_review_dismiss_page", tag = "linkage",
    params(("id" = Uuid, Path)),
    responses((status = 303, description = "Back to the queue"),
        (status = 409, description = "Already decided"),
        (status = 422, description = "No reason given")))]
pub async fn dismiss_page(
    State(state): State<AppState>,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
    Form(f): Form<DismissForm>,
) -> ApiResult<Response> {
    principal.check_csrf(Some(&f.csrf))?;
    do_dismiss(&state, &principal, id, &f.reason).await?;
    Ok(Redirect::to("/linkage/reviews?done=dismissed").into_response())
}
