//! `/api/v1/audit` and the `/audit` page: auditors (and system administrators) query the audit
//! log by subject, actor and period, within their area scope. Each query is itself recorded.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::audit::AuditEntry;
use inkingi_domain::identity::{Permission, Purpose};
use inkingi_store::audit::AuditQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::auth::{PagePrincipal, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{page_limit, Query};
use crate::web::page::{render, Chrome, PageCtx, Section};
use crate::AppState;

pub const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 100;

#[derive(OpenApi)]
#[openapi(paths(list), components(schemas(AuditPage, AuditEntryView)))]
struct AuditApi;

pub fn api() -> utoipa::openapi::OpenApi {
    AuditApi::openapi()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// e.g. `person`, `household`, `user`, `token`.
    subject_type: Option<String>,
    subject_id: Option<String>,
    /// The accountable user's name (or `cli:…`, `anonymous`).
    actor: Option<String>,
    /// RFC 3339; inclusive.
    from: Option<DateTime<Utc>>,
    /// RFC 3339; exclusive.
    to: Option<DateTime<Utc>>,
    /// Only entries after this sequence number (the previous page's `next_after`).
    after: Option<i64>,
    /// 1 to 500, default 100.
    limit: Option<u32>,
}

/// One audit entry with its place in the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub via: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub outcome: String,
    pub subject_type: String,
    pub subject_id: Option<String>,
    pub area: Option<String>,
    pub fields: Vec<String>,
    pub purpose: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    /// `X-Road-Client` of a request relayed by an X-Road security server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xroad_client: Option<String>,
    /// `X-Road-Id` of that request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xroad_id: Option<String>,
    /// Hex SHA-256 of the previous entry.
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this entry's canonical content.
    pub hash: String,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        let r = e.record;
        AuditEntryView {
            seq: e.seq,
            occurred_at: r.occurred_at(),
            actor: r.actor,
            via: r.via,
            role: r.role,
            action: r.action,
            outcome: r.outcome,
            subject_type: r.subject_type,
            subject_id: r.subject_id,
            area: r.area.map(|a| a.to_string()),
            fields: r.fields,
            purpose: r.purpose,
            request_id: r.request_id,
            client_addr: r.client_addr,
            xroad_client: r.xroad_client,
            xroad_id: r.xroad_id,
            prev_hash: e.prev_hash.to_hex(),
            hash: e.hash.to_hex(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

fn to_query(p: &AuditParams) -> ApiResult<AuditQuery> {
    let limit = page_limit(p.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    if let (Some(f), Some(t)) = (p.from, p.to) {
        if t <= f {
            return Err(ApiError::invalid_field(
                "to",
                "query parameter 'to': must be after 'from'",
            ));
        }
    }
    Ok(AuditQuery {
        subject_type: p.subject_type.clone().filter(|s| !s.is_empty()),
        subject_id: p.subject_id.clone().filter(|s| !s.is_empty()),
        actor: p.actor.clone().filter(|s| !s.is_empty()),
        from: p.from,
        to: p.to,
        after: p.after,
        limit,
    })
}

/// Records that `principal` read `fields` of a subject (a person, a household…) lying in
/// `area`, for `purpose` (from [`Principal::purpose`]). Handlers that return personal data call
/// this before answering. The entry is queued, not waited for (see [`crate::audit_writer`]);
/// while the log cannot be written the read fails with 503.
pub async fn record_read(
    state: &AppState,
    principal: &Principal,
    purpose: Purpose,
    subject: (&str, &str),
    area: Option<inkingi_domain::areas::AreaCode>,
    fields: &[&str],
) -> ApiResult<()> {
    if !state.auth.settings.audit_reads {
        return Ok(());
    }
    let mut rec = principal.audit_record(&format!("{}.read", subject.0), subject.0);
    rec.subject_id = Some(subject.1.to_string());
    rec.area = area;
    rec.fields = fields.iter().map(|f| f.to_string()).collect();
    rec.purpose = Some(purpose.to_string());
    state.audit.record_reads(vec![rec]).await
}

/// Runs the query within the principal's scope and records that it was run.
async fn run(
    state: &AppState,
    principal: &Principal,
    q: &AuditQuery,
) -> ApiResult<Vec<AuditEntry>> {
    principal.require(Permission::ReadAudit)?;
    let purpose = principal.purpose_or(Purpose::Audit, &state.auth.settings.purposes)?;
    // Reads queued by earlier requests are part of what an auditor must see.
    state.audit.flush().await?;
    let entries = state.store.audit().query(&principal.scope, q).await?;
    let mut rec = principal.audit_record("audit.read", "audit_log");
    rec.purpose = Some(purpose.to_string());
    rec.fields = describe(q);
    if state.auth.settings.audit_reads {
        state.audit.record_reads(vec![rec]).await?;
    }
    Ok(entries)
}

/// The filters of a query, as the audit entry of that query records them.
fn describe(q: &AuditQuery) -> Vec<String> {
    let mut f = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            f.push(format!("{k}={v}"));
        }
    };
    add("subject_type", q.subject_type.clone());
    add("subject_id", q.subject_id.clone());
    add("actor", q.actor.clone());
    add("from", q.from.map(|t| t.to_rfc3339()));
    add("to", q.to.map(|t| t.to_rfc3339()));
    add("after", q.after.map(|a| a.to_string()));
    f
}

/// Query the audit log within the caller's area scope.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Entries in sequence order", body = AuditPage),
        (status = 400, description = "A malformed parameter, named in the problem"),
        (status = 401, description = "Not authenticated, or a malformed, expired or revoked token"),
        (status = 403, description = "The role may not read the audit log, or the declared purpose is not allowed")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let q = to_query(&params)?;
    let entries = run(&state, &principal, &q).await?;
    let next_after = (entries.len() == q.limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

/// The page's filters as typed into its form (empty fields allowed, dates as `YYYY-MM-DD`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageFilters {
    #[serde(default)]
    subject_type: String,
    #[serde(default)]
    subject_id: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    after: Option<i64>,
}

fn parse_day(field: &str, s: &str) -> ApiResult<Option<DateTime<Utc>>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Some(d.and_utc()))
        .ok_or_else(|| {
            ApiError::invalid_field(field, format!("'{field}': expected a date YYYY-MM-DD"))
        })
}

struct Row {
    seq: i64,
    at: String,
    actor: String,
    role: String,
    action: String,
    outcome: String,
    subject: String,
    area: String,
    fields: String,
    purpose: String,
    client: String,
}

#[derive(Template)]
#[template(path = "audit/index.html")]
struct AuditPageHtml<'a> {
    chrome: Chrome,
    role: &'a str,
    scope: String,
    head_seq: i64,
    head_hash: String,
    f: &'a PageFilters,
    entries: Vec<Row>,
    next_link: Option<String>,
}

#[utoipa::path(get, path = "/audit", tag = "audit",
    responses(
        (status = 200, description = "The audit log page (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Query(f): Query<PageFilters>,
) -> ApiResult<Response> {
    let to = parse_day("to", &f.to)?;
    let params = AuditParams {
        subject_type: Some(f.subject_type.clone()),
        subject_id: Some(f.subject_id.clone()),
        actor: Some(f.actor.clone()),
        from: parse_day("from", &f.from)?,
        // A day typed as "to" includes that day.
        to: to.map(|t| t + chrono::Duration::days(i64::from(f.to.trim().len() == 10))),
        after: f.after,
        limit: Some(DEFAULT_LIMIT),
    };
    let q = to_query(&params)?;
    let entries = run(&state, &principal, &q).await?;
    let head = state.store.audit().head().await?;
    let next_link = (entries.len() == q.limit as usize)
        .then(|| entries.last().map(|e| next_href(&f, e.seq)))
        .flatten();
    let html = AuditPageHtml {
        chrome: ctx.chrome(Section::Audit, &ctx.t().audit_title),
        role: principal.role.as_str(),
        scope: principal.scope.to_string(),
        head_seq: head.seq,
        head_hash: head.hash.to_hex(),
        f: &f,
        entries: entries.into_iter().map(row).collect(),
        next_link,
    };
    Ok(render(&ctx, StatusCode::OK, &html))
}

fn row(e: AuditEntry) -> Row {
    let r = e.record;
    Row {
        seq: e.seq,
        at: r.occurred_at().format("%Y-%m-%d %H:%M:%S").to_string(),
        actor: match r.via {
            Some(v) => format!("{} ({v})", r.actor),
            None => r.actor,
        },
        role: r.role.unwrap_or_default(),
        action: r.action,
        outcome: r.outcome,
        subject: match r.subject_id {
            Some(id) => format!("{} {id}", r.subject_type),
            None => r.subject_type,
        },
        area: r.area.map(|a| a.to_string()).unwrap_or_default(),
        fields: r.fields.join(", "),
        purpose: r.purpose.unwrap_or_default(),
        client: r.client_addr.unwrap_or_default(),
    }
}

fn next_href(f: &PageFilters, after: i64) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("subject_type", &f.subject_type)
        .append_pair("subject_id", &f.subject_id)
        .append_pair("actor", &f.actor)
        .append_pair("from", &f.from)
        .append_pair("to", &f.to)
        .append_pair("after", &after.to_string());
    format!("/audit?{}", s.finish())
}
