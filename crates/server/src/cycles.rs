//! Payment cycles: `/api/v1/programmes/{code}/cycles`, `/api/v1/cycles/...`, and the cycle
//! list and approval page `/programmes/{code}/cycles`.
//!
//! A cycle is created as a draft for a period, then frozen (the snapshot of enrolled
//! beneficiaries and their amounts), verified and approved, each step by a different user with
//! national scope: the list covers the whole programme, so only someone who can see all of it
//! may vouch for it. Programme staff (`manage_programmes`) open, freeze and verify; only finance
//! (`approve_payments`) approves. Both see cycles and payment lists (`manage_payments`). The payment list of an approved cycle is exported as CSV within the
//! caller's area scope; payment statuses come back one by one or as a CSV file, all or nothing.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{may, Permission, Purpose};
use inkingi_domain::programmes::cycle::{
    check_step, parse_payment_reference, CycleStatus, CycleStep, LinearBenefit, PaymentUpdate,
    Period, StepActors, StepError,
};
use inkingi_store::cycles::{Cycle, Entitlement};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::{PagePrincipal, Principal};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{page_limit, Query};
use crate::programmes::programme_or_404;
use crate::registry::{etag, input::parse_body};
use crate::web::page::{render, PageCtx, Section};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(list_cycles, create_cycle, get_cycle, take_step, list_entitlements, export_payments,
        record_status, upload_statuses, cycles_page, create_cycle_page, step_page),
    components(schemas(NewCycleRequest, StepRequest, StatusRequest, RowError)),
    tags((name = "cycles", description = "Payment cycles: frozen entitlements, approval, payment lists and statuses"))
)]
struct CyclesApi;

pub fn api() -> utoipa::openapi::OpenApi {
    CyclesApi::openapi()
}

/// Entitlements read per page of the export and of `GET …/entitlements`.
const PAGE: u32 = 5000;

fn field_error(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError {
        field: field.into(),
        reason: reason.into(),
    }])
}

/// Cycle steps act on the whole programme: national scope only.
fn require_national(principal: &Principal) -> ApiResult<()> {
    if principal.scope.is_national() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "cycles cover a whole programme: creating, freezing, verifying and approving them needs \
         national scope",
    ))
}

async fn cycle_or_404(state: &AppState, id: Uuid) -> ApiResult<Cycle> {
    state
        .store
        .cycles()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no cycle {id}")))
}

/// The cycles of a programme, latest period first, with who did each step and when.
#[utoipa::path(get, path = "/api/v1/programmes/{code}/cycles", tag = "cycles", operation_id = "cycles_list",
    params(("code" = String, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Cycles", body = Vec<Object>),
        (status = 404, description = "No such programme")))]
pub async fn list_cycles(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> ApiResult<Json<Vec<Cycle>>> {
    principal.require(Permission::ManagePayments)?;
    programme_or_404(&state, &code).await?;
    Ok(Json(state.store.cycles().list(&code).await?))
}

/// A period to pay for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCycleRequest {
    /// First day, `YYYY-MM-DD`.
    pub period_start: String,
    /// Last day, on or after the first.
    pub period_end: String,
}

fn parse_period(start: &str, end: &str) -> ApiResult<Period> {
    let date = |field: &str, v: &str| {
        NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
            .map_err(|_| field_error(field, format!("'{v}' is not a date (YYYY-MM-DD)")))
    };
    let (s, e) = (date("period_start", start)?, date("period_end", end)?);
    Period::new(s, e).map_err(|r| field_error("period_end", r))
}

async fn create(
    state: &AppState,
    principal: &Principal,
    code: &str,
    period: Period,
) -> ApiResult<Cycle> {
    principal.require(Permission::ManageProgrammes)?;
    require_national(principal)?;
    programme_or_404(state, code).await?;
    let cycle = state
        .store
        .cycles()
        .create(code, period, principal.username.as_str())
        .await?;
    let mut audit = principal.audit_record("cycle.create", "cycle");
    audit.subject_id = Some(cycle.id.to_string());
    audit.fields = vec![format!("programme={code}"), format!("code={}", cycle.code)];
    state.audit.append(vec![audit]).await?;
    Ok(cycle)
}

/// Open a draft cycle for a period (one per programme and start date).
#[utoipa::path(post, path = "/api/v1/programmes/{code}/cycles", tag = "cycles", operation_id = "cycles_create",
    params(("code" = String, Path)),
    request_body = NewCycleRequest,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, description = "The draft cycle", body = Object),
        (status = 403, description = "Not national scope"),
        (status = 404, description = "No such programme"),
        (status = 409, description = "A cycle with this start date exists"),
        (status = 422, description = "Invalid period, field named", body = crate::error::ProblemBody)))]
pub async fn create_cycle(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let req: NewCycleRequest = parse_body(&body)?;
    let period = parse_period(&req.period_start, &req.period_end)?;
    let cycle = create(&state, &principal, &code, period).await?;
    Ok((StatusCode::CREATED, [etag(cycle.version)], Json(cycle)).into_response())
}

/// One cycle: its period, status, totals and steps.
#[utoipa::path(get, path = "/api/v1/cycles/{id}", tag = "cycles", operation_id = "cycles_get",
    params(("id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The cycle", body = Object),
        (status = 404, description = "No such cycle")))]
pub async fn get_cycle(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    principal.require(Permission::ManagePayments)?;
    let c = cycle_or_404(&state, id).await?;
    Ok(([etag(c.version)], Json(c)).into_response())
}

/// An approval step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    /// `freeze` (draft → prepared: takes the snapshot), `verify` (→ verified) or `approve`
    /// (→ approved).
    pub step: String,
}

async fn step(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    step: CycleStep,
) -> ApiResult<Cycle> {
    principal.require(step.permission())?;
    require_national(principal)?;
    let cycle = cycle_or_404(state, id).await?;
    let done = StepActors {
        prepared_by: cycle.prepared_by.as_deref(),
        verified_by: cycle.verified_by.as_deref(),
    };
    match check_step(cycle.status, step, principal.username.as_str(), &done) {
        Ok(()) => {}
        Err(e @ StepError::WrongStatus { .. }) => {
            return Err(ApiError {
                field: Some("step".into()),
                ..ApiError::conflict(e.to_string())
            })
        }
        Err(e @ StepError::SameUser { .. }) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "separation-of-duties",
                e.to_string(),
            ))
        }
    }
    let p = programme_or_404(state, &cycle.programme).await?;
    let cycle = state
        .store
        .cycles()
        .take_step(
            id,
            step,
            principal.username.as_str(),
            LinearBenefit::of(&p.programme.benefit),
            Utc::now().date_naive(),
        )
        .await?;
    let mut audit = principal.audit_record(&format!("cycle.{}", step.as_str()), "cycle");
    audit.subject_id = Some(id.to_string());
    audit.fields = vec![
        format!("status={}", cycle.status),
        format!("beneficiaries={}", cycle.beneficiaries),
        format!("total_amount={}", cycle.total_amount),
    ];
    state.audit.append(vec![audit]).await?;
    Ok(cycle)
}

/// Take the next approval step: freeze (the snapshot of enrolled beneficiaries and amounts),
/// verify, approve — each by a user who did no earlier step of the cycle. A step out of order,
/// or taken twice (a cycle approved twice), is 409; two concurrent approvals: one wins.
#[utoipa::path(post, path = "/api/v1/cycles/{id}/steps", tag = "cycles", operation_id = "cycles_step",
    params(("id" = Uuid, Path)),
    request_body = StepRequest,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The cycle after the step", body = Object),
        (status = 403, description = "Not national scope, or the same user as an earlier step"),
        (status = 404, description = "No such cycle"),
        (status = 409, description = "The cycle is not at this step (e.g. approved already)"),
        (status = 422, description = "Unknown step", body = crate::error::ProblemBody)))]
pub async fn take_step(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManagePayments)?;
    require_national(&principal)?;
    cycle_or_404(&state, id).await?;
    let req: StepRequest = parse_body(&body)?;
    let s = CycleStep::parse(&req.step).ok_or_else(|| {
        field_error(
            "step",
            format!("'{}' is not one of freeze, verify, approve", req.step),
        )
    })?;
    let c = step(&state, &principal, id, s).await?;
    Ok(([etag(c.version)], Json(c)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntitlementParams {
    /// Entitlements numbered after this one (paging); default 0.
    after: Option<i64>,
    /// 1 to 5000, default 500.
    limit: Option<u32>,
}

/// The read purpose of programme data, declared or implied.
fn purpose(state: &AppState, principal: &Principal) -> ApiResult<Purpose> {
    principal.require(Permission::ManagePayments)?;
    principal.purpose_or(
        Purpose::ProgrammeAdministration,
        &state.auth.settings.purposes,
    )
}

async fn audit_rows(
    state: &AppState,
    principal: &Principal,
    purpose: Purpose,
    cycle: &Cycle,
    rows: &[Entitlement],
) -> ApiResult<()> {
    if !state.auth.settings.audit_reads || rows.is_empty() {
        return Ok(());
    }
    let records = rows
        .iter()
        .map(|e| {
            let mut r = principal.audit_record("entitlement.read", "household");
            r.subject_id = Some(e.household_id.to_string());
            r.area = AreaCode::parse(&e.village).ok();
            r.fields = vec![
                format!("cycle={}", cycle.code),
                "amount".into(),
                "name".into(),
            ];
            r.purpose = Some(purpose.to_string());
            r
        })
        .collect();
    state.audit.append(records).await?;
    Ok(())
}

/// The frozen entitlements of a cycle within the caller's area scope, by number.
#[utoipa::path(get, path = "/api/v1/cycles/{id}/entitlements", tag = "cycles", operation_id = "cycles_entitlements",
    params(("id" = Uuid, Path), EntitlementParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Entitlements with their payment status", body = Vec<Object>),
        (status = 404, description = "No such cycle")))]
pub async fn list_entitlements(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(params): Query<EntitlementParams>,
) -> ApiResult<Json<Vec<Entitlement>>> {
    let purpose = purpose(&state, &principal)?;
    let limit = page_limit(params.limit, 500, PAGE)?;
    let cycle = cycle_or_404(&state, id).await?;
    let rows = state
        .store
        .cycles()
        .entitlements(&principal.scope, &cycle, params.after.unwrap_or(0), limit)
        .await?;
    audit_rows(&state, &principal, purpose, &cycle, &rows).await?;
    Ok(Json(rows))
}

/// A cell that a spreadsheet would run as a formula is written as text.
fn safe_cell(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

const EXPORT_HEADER: &str = "payment_reference,beneficiary,registry_number,village,amount\n";

fn csv_rows(rows: &[Entitlement]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(rows.len() * 80));
    for e in rows {
        let (name, amount) = (safe_cell(&e.beneficiary), e.amount.to_string());
        w.write_record([
            e.payment_reference.as_str(),
            name.as_ref(),
            e.registry_number.as_str(),
            e.village.as_str(),
            amount.as_str(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The payment list of an approved cycle as CSV (`payment_reference, beneficiary,
/// registry_number, village, amount`), within the caller's area scope, streamed page by page.
/// It carries names: the export is audited.
#[utoipa::path(get, path = "/api/v1/cycles/{id}/payments.csv", tag = "cycles", operation_id = "cycles_export",
    params(("id" = Uuid, Path),
        ("X-Purpose-Of-Use" = Option<String>, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The payment list", content_type = "text/csv"),
        (status = 404, description = "No such cycle"),
        (status = 409, description = "The cycle is not approved")))]
pub async fn export_payments(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let purpose = purpose(&state, &principal)?;
    let cycle = cycle_or_404(&state, id).await?;
    if cycle.status != CycleStatus::Approved {
        return Err(ApiError::conflict(format!(
            "cycle {} is {}: only an approved cycle's payment list may be exported",
            cycle.code, cycle.status
        )));
    }
    let mut audit = principal.audit_record("payment_list.export", "cycle");
    audit.subject_id = Some(cycle.id.to_string());
    audit.fields = vec![
        format!("scope={}", principal.scope.to_stored()),
        "name".into(),
        "registry_number".into(),
        "amount".into(),
    ];
    audit.purpose = Some(purpose.to_string());
    state.audit.append(vec![audit]).await?;
    let filename = format!("attachment; filename=\"{}-payments.csv\"", cycle.code);
    let store = state.store.clone();
    let scope = principal.scope.clone();
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let (store, scope, cycle) = (store.clone(), scope.clone(), cycle.clone());
        async move {
            let after = after?;
            let page = store
                .cycles()
                .entitlements(&scope, &cycle, after, PAGE)
                .await;
            match page {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = rows.last().map(|e| e.seq);
                    let chunk = csv_rows(&rows)
                        .map(Bytes::from)
                        .map_err(std::io::Error::other);
                    Some((chunk, next))
                }
                // The status line is sent: the list ends short and the client sees a broken
                // transfer rather than a silently truncated file.
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let header = Ok::<_, std::io::Error>(Bytes::from_static(EXPORT_HEADER.as_bytes()));
    let body = futures::stream::once(async { header }).chain(pages);
    let mut res = Body::from_stream(body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&filename) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// A payment status reported by the payment provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// `paid`, `failed` or `returned`.
    pub status: String,
    /// The provider's reference; required for paid and returned.
    pub reference: Option<String>,
    /// `YYYY-MM-DD`, not in the future.
    pub date: String,
    pub note: Option<String>,
}

/// One refused row of a status file: its line (the header is line 1), field and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    pub row: usize,
    pub field: String,
    pub reason: String,
}

/// What recording statuses did.
#[derive(Debug, Serialize)]
struct Recorded {
    recorded: usize,
    /// Rows that repeated the status already recorded (e.g. a file sent twice).
    unchanged: usize,
}

/// A 422 problem listing every refused row.
fn row_errors(errors: Vec<RowError>) -> Response {
    let body = serde_json::json!({
        "type": "urn:inkingi:problem:validation",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": format!("{} row error(s); nothing was recorded", errors.len()),
        "errors": errors,
        "request_id": crate::request_id::current(),
    });
    let mut res = (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::error::PROBLEM_JSON),
    );
    res
}

/// A status line to record: its row, entitlement number and update.
struct Line {
    row: usize,
    seq: i64,
    update: PaymentUpdate,
}

/// Checks every line against the entitlements' current statuses (within the caller's scope)
/// and records them all in one transaction, or returns every row error and records nothing.
async fn apply_lines(
    state: &AppState,
    principal: &Principal,
    cycle: &Cycle,
    lines: Vec<Line>,
    mut errors: Vec<RowError>,
) -> ApiResult<Result<Recorded, Vec<RowError>>> {
    let seqs: Vec<i64> = lines.iter().map(|l| l.seq).collect();
    let states = state
        .store
        .cycles()
        .payment_states(&principal.scope, cycle.id, &seqs)
        .await?;
    let mut seen = std::collections::HashMap::new();
    let mut updates = Vec::new();
    let mut unchanged = 0;
    for l in lines {
        if let Some(first) = seen.insert(l.seq, l.row) {
            errors.push(RowError {
                row: l.row,
                field: "payment_reference".into(),
                reason: format!("the same payment as row {first}"),
            });
            continue;
        }
        let Some(now) = states.get(&l.seq) else {
            errors.push(RowError {
                row: l.row,
                field: "payment_reference".into(),
                reason: format!("no payment of cycle {} in your area scope", cycle.code),
            });
            continue;
        };
        if l.update.repeats(now.status, now.reference.as_deref()) {
            unchanged += 1;
        } else if !now.status.may_move_to(l.update.status) {
            errors.push(RowError {
                row: l.row,
                field: "status".into(),
                reason: format!(
                    "a payment cannot go from {} to {}",
                    now.status, l.update.status
                ),
            });
        } else {
            updates.push((l.seq, now.status, l.update, now.village.clone()));
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.row);
        return Ok(Err(errors));
    }
    let rows: Vec<_> = updates
        .iter()
        .map(|(s, f, u, _)| (*s, *f, u.clone()))
        .collect();
    state
        .store
        .cycles()
        .record_payments(cycle, &rows, principal.username.as_str())
        .await?;
    let records = updates
        .iter()
        .map(|(seq, _, u, village)| {
            let mut r = principal.audit_record("payment.status", "cycle");
            r.subject_id = Some(cycle.id.to_string());
            r.area = AreaCode::parse(village).ok();
            r.fields = vec![format!("seq={seq}"), format!("status={}", u.status)];
            r
        })
        .collect::<Vec<_>>();
    if !records.is_empty() {
        state.audit.append(records).await?;
    }
    Ok(Ok(Recorded {
        recorded: updates.len(),
        unchanged,
    }))
}

async fn approved_cycle(state: &AppState, id: Uuid) -> ApiResult<Cycle> {
    let cycle = cycle_or_404(state, id).await?;
    if cycle.status != CycleStatus::Approved {
        return Err(ApiError::conflict(format!(
            "cycle {} is {}: payment statuses are recorded on approved cycles only",
            cycle.code, cycle.status
        )));
    }
    Ok(cycle)
}

/// Record one payment's status (paid, failed, returned) with the provider's reference and
/// date. Repeating the recorded status changes nothing.
#[utoipa::path(post, path = "/api/v1/cycles/{id}/payments/{reference}/status", tag = "cycles", operation_id = "cycles_payment_status",
    params(("id" = Uuid, Path), ("reference" = String, Path, description = "The payment reference")),
    request_body = StatusRequest,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Recorded", body = Object),
        (status = 404, description = "No such cycle"),
        (status = 409, description = "The cycle is not approved"),
        (status = 422, description = "A field, or the move, refused; named", body = crate::error::ProblemBody)))]
pub async fn record_status(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, reference)): Path<(Uuid, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManagePayments)?;
    let cycle = approved_cycle(&state, id).await?;
    let req: StatusRequest = parse_body(&body)?;
    let seq = parse_payment_reference(&cycle.code, &reference).ok_or_else(|| {
        ApiError::not_found(format!("no payment {reference} in cycle {}", cycle.code))
    })?;
    let update = PaymentUpdate::parse(
        &req.status,
        req.reference.as_deref(),
        &req.date,
        req.note.as_deref(),
        Utc::now().date_naive(),
    )
    .map_err(|errs| {
        ApiError::validation(
            errs.into_iter()
                .map(|e| FieldError {
                    field: e.field.into(),
                    reason: e.reason,
                })
                .collect(),
        )
    })?;
    let line = Line {
        row: 1,
        seq,
        update,
    };
    match apply_lines(&state, &principal, &cycle, vec![line], Vec::new()).await? {
        Ok(done) => Ok(Json(done).into_response()),
        Err(errors) => {
            let e = &errors[0];
            if e.field == "payment_reference" {
                return Err(ApiError::not_found(format!(
                    "no payment {reference} in your area scope"
                )));
            }
            Err(field_error(&e.field, e.reason.clone()))
        }
    }
}

const STATUS_COLUMNS: [&str; 5] = ["payment_reference", "status", "reference", "date", "note"];

/// Parses a status file: its header must name the known columns (`payment_reference`,
/// `status`, `date` required; `reference`, `note` optional) and each row is checked alone.
fn parse_status_file(text: &str, cycle: &Cycle, today: NaiveDate) -> (Vec<Line>, Vec<RowError>) {
    let mut errors = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_string()).collect(),
        Err(e) => {
            errors.push(RowError {
                row: 1,
                field: "header".into(),
                reason: e.to_string(),
            });
            return (Vec::new(), errors);
        }
    };
    for c in header
        .iter()
        .filter(|c| !STATUS_COLUMNS.contains(&c.as_str()))
    {
        errors.push(RowError {
            row: 1,
            field: c.clone(),
            reason: format!("unknown column; expected {}", STATUS_COLUMNS.join(", ")),
        });
    }
    for need in ["payment_reference", "status", "date"] {
        if !header.iter().any(|c| c == need) {
            errors.push(RowError {
                row: 1,
                field: need.into(),
                reason: "missing column".into(),
            });
        }
    }
    if !errors.is_empty() {
        return (Vec::new(), errors);
    }
    let col = |name: &str| header.iter().position(|c| c == name);
    let (r_col, s_col, ref_col, d_col, n_col) = (
        col("payment_reference"),
        col("status"),
        col("reference"),
        col("date"),
        col("note"),
    );
    let mut lines = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    row,
                    field: "row".into(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c));
        let reference = get(r_col).unwrap_or_default();
        let seq = parse_payment_reference(&cycle.code, reference);
        if seq.is_none() {
            errors.push(RowError {
                row,
                field: "payment_reference".into(),
                reason: format!(
                    "'{reference}' is not a payment reference of cycle {}",
                    cycle.code
                ),
            });
        }
        let update = PaymentUpdate::parse(
            get(s_col).unwrap_or_default(),
            get(ref_col),
            get(d_col).unwrap_or_default(),
            get(n_col),
            today,
        );
        match (seq, update) {
            (Some(seq), Ok(update)) => lines.push(Line { row, seq, update }),
            (_, Err(errs)) => errors.extend(errs.into_iter().map(|e| RowError {
                row,
                field: e.field.into(),
                reason: e.reason,
            })),
            (None, Ok(_)) => {}
        }
    }
    (lines, errors)
}

/// Upload payment statuses as CSV (`payment_reference,status,reference,date,note`). Every row
/// is checked first; any error refuses the whole file with each error's row, field and reason,
/// and nothing is recorded. Rows repeating the recorded status are counted as unchanged.
#[utoipa::path(post, path = "/api/v1/cycles/{id}/payment-statuses", tag = "cycles", operation_id = "cycles_upload_statuses",
    params(("id" = Uuid, Path)),
    request_body(content = String, content_type = "text/csv"),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Recorded", body = Object),
        (status = 404, description = "No such cycle"),
        (status = 409, description = "The cycle is not approved"),
        (status = 422, description = "Row errors (row, field, reason); nothing recorded", body = Vec<RowError>)))]
pub async fn upload_statuses(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManagePayments)?;
    let cycle = approved_cycle(&state, id).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the file is not UTF-8 text"))?;
    let (lines, errors) = parse_status_file(text, &cycle, Utc::now().date_naive());
    if errors.iter().any(|e| e.row == 1) {
        return Ok(row_errors(errors));
    }
    if lines.is_empty() && errors.is_empty() {
        return Ok(row_errors(vec![RowError {
            row: 2,
            field: "row".into(),
            reason: "the file has no status rows".into(),
        }]));
    }
    match apply_lines(&state, &principal, &cycle, lines, errors).await? {
        Ok(done) => Ok(Json(done).into_response()),
        Err(errors) => Ok(row_errors(errors)),
    }
}

// ---- The cycle list and approval page ----

struct CycleRowView {
    id: String,
    code: String,
    period: String,
    status: String,
    beneficiaries: i64,
    total: i64,
    steps: Vec<String>,
    /// The next step this user may take, if any.
    next: Option<&'static str>,
    next_label: String,
    export: bool,
}

#[derive(Template)]
#[template(path = "programmes/cycles.html")]
struct CyclesPage {
    chrome: crate::web::page::Chrome,
    csrf: String,
    programme: String,
    programme_name: String,
    budget: Option<u64>,
    rows: Vec<CycleRowView>,
    /// National programme staff may open a cycle here.
    may_open: bool,
    notice: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    done: Option<String>,
}

fn step_line(
    label: &str,
    by: &Option<String>,
    at: &Option<chrono::DateTime<Utc>>,
) -> Option<String> {
    let (by, at) = (by.as_ref()?, at.as_ref()?);
    Some(format!("{label}: {by}, {}", at.format("%Y-%m-%d %H:%M")))
}

fn row_view(
    c: &Cycle,
    principal: &Principal,
    may_act: bool,
    t: &crate::web::i18n::Messages,
) -> CycleRowView {
    let user = principal.username.as_str();
    let next = CycleStep::ALL
        .into_iter()
        .find(|s| s.from() == c.status)
        .filter(|s| may(principal.role, s.permission()))
        .filter(|s| {
            let done = StepActors {
                prepared_by: c.prepared_by.as_deref(),
                verified_by: c.verified_by.as_deref(),
            };
            may_act && check_step(c.status, *s, user, &done).is_ok()
        });
    let next_label = match next {
        Some(CycleStep::Freeze) => t.cycles_freeze.clone(),
        Some(CycleStep::Verify) => t.cycles_verify.clone(),
        Some(CycleStep::Approve) => t.cycles_approve.clone(),
        None => String::new(),
    };
    CycleRowView {
        id: c.id.to_string(),
        code: c.code.clone(),
        period: format!("{} – {}", c.period_start, c.period_end),
        status: c.status.to_string(),
        beneficiaries: c.beneficiaries,
        total: c.total_amount,
        steps: [
            step_line(&t.cycles_prepared_by, &c.prepared_by, &c.prepared_at),
            step_line(&t.cycles_verified_by, &c.verified_by, &c.verified_at),
            step_line(&t.cycles_approved_by, &c.approved_by, &c.approved_at),
        ]
        .into_iter()
        .flatten()
        .collect(),
        next: next.map(CycleStep::as_str),
        next_label,
        export: c.status == CycleStatus::Approved,
    }
}

/// The cycles of a programme with their steps, a form to open one, and the next step's button
/// for users who may take it.
#[utoipa::path(get, path = "/programmes/{code}/cycles", operation_id = "cycles_page", tag = "cycles",
    params(("code" = String, Path), PageParams),
    responses((status = 200, description = "The cycle list and approval page (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn cycles_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(code): Path<String>,
    Query(p): Query<PageParams>,
) -> ApiResult<Response> {
    principal.require(Permission::ManagePayments)?;
    let prog = programme_or_404(&state, &code).await?;
    let cycles = state.store.cycles().list(&code).await?;
    let t = ctx.t();
    let may_act = principal.scope.is_national();
    let page = CyclesPage {
        chrome: ctx.chrome(
            Section::None,
            &format!("{} — {}", t.cycles_title, prog.programme.name),
        ),
        csrf: principal.csrf_token().to_string(),
        programme: code,
        programme_name: prog.programme.name.clone(),
        budget: prog.programme.budget,
        rows: cycles
            .iter()
            .map(|c| row_view(c, &principal, may_act, t))
            .collect(),
        may_open: may_act && may(principal.role, Permission::ManageProgrammes),
        notice: p.done.filter(|d| !d.is_empty()),
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCycleForm {
    csrf: String,
    period_start: String,
    period_end: String,
}

/// Opens a cycle from the page; back to the list with a notice.
#[utoipa::path(post, path = "/programmes/{code}/cycles", operation_id = "cycles_create_page", tag = "cycles",
    params(("code" = String, Path)),
    responses((status = 303, description = "Back to the list"),
        (status = 409, description = "A cycle with this start date exists")))]
pub async fn create_cycle_page(
    State(state): State<AppState>,
    principal: PagePrincipal,
    Path(code): Path<String>,
    Form(f): Form<NewCycleForm>,
) -> ApiResult<Response> {
    principal.check_csrf(Some(&f.csrf))?;
    let period = parse_period(&f.period_start, &f.period_end)?;
    let c = create(&state, &principal, &code, period).await?;
    Ok(Redirect::to(&format!("/programmes/{code}/cycles?done={}", c.code)).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepForm {
    csrf: String,
    step: String,
}

/// Takes a step from the page; back to the programme's cycles with a notice.
#[utoipa::path(post, path = "/cycles/{id}/steps", operation_id = "cycles_step_page", tag = "cycles",
    params(("id" = Uuid, Path)),
    responses((status = 303, description = "Back to the list"),
        (status = 403, description = "Same user as an earlier step, not national scope, or a bad CSRF token"),
        (status = 409, description = "The cycle is not at this step")))]
pub async fn step_page(
    State(state): State<AppState>,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
    Form(f): Form<StepForm>,
) -> ApiResult<Response> {
    principal.check_csrf(Some(&f.csrf))?;
    let s = CycleStep::parse(&f.step)
        .ok_or_else(|| field_error("step", format!("'{}' is not a step", f.step)))?;
    let c = step(&state, &principal, id, s).await?;
    Ok(Redirect::to(&format!(
        "/programmes/{}/cycles?done={}",
        c.programme, c.status
    ))
    .into_response())
}
