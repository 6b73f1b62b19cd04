//! Inkingi's HTTP server: the axum router with REST API, web pages, health and metrics.
//!
//! The server is stateless: everything it knows is in the database, so any number of nodes can
//! run behind a load balancer.

pub mod areas;
pub mod audit;
pub mod audit_writer;
pub mod auth;
pub mod children;
pub mod crvs;
pub mod cycles;
pub mod dci;
pub mod dci_auth;
pub mod dci_events;
pub mod dci_ibr;
pub mod dci_journal;
pub mod error;
pub mod extract;
pub mod health;
mod jobs_metrics;
pub mod linkage;
pub mod lookup;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod programmes;
pub mod recertifications;
pub mod registry;
pub mod request_id;
pub mod routes;
pub mod targeting;
pub mod web;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use inkingi_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::problem_response;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest request body accepted; larger ones get 413.
    pub body_limit: usize,
    /// A request still running after this gets 408 and is dropped.
    pub request_timeout: Duration,
    /// Sign-in, sessions, tokens, purposes of use.
    pub auth: auth::AuthSettings,
    /// Approval tiers per kind of change request (`move_household = 2`…).
    pub approval_tiers: std::collections::BTreeMap<String, u32>,
    /// The DCI registry API.
    pub dci: dci::DciSettings,
    /// The registration-time lookup index.
    pub lookup: lookup::LookupSettings,
    /// The child record: keys of its sealed fields.
    pub children: children::ChildrenSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            body_limit: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            auth: auth::AuthSettings::default(),
            approval_tiers: registry::changes::default_tiers(),
            dci: dci::DciSettings::default(),
            lookup: lookup::LookupSettings::default(),
            children: children::ChildrenSettings::default(),
        }
    }
}

/// Shared by every handler through axum's `State`.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: PrometheusHandle,
    pub settings: Arc<ServerSettings>,
    pub auth: Arc<auth::AuthState>,
    /// Appends audit entries with group commit; use it from request handlers.
    pub audit: audit_writer::AuditWriter,
    /// Writes synchronous DCI requests' message ids and transactions with group commit.
    pub dci_journal: dci_journal::Journal,
    /// This node's in-memory index of registry people for registration-time lookups; built
    /// when `serve` starts it or on first use.
    pub lookup: lookup::LookupService,
}

impl AppState {
    /// Fails when the configured password-hashing parameters are refused: serving with other
    /// parameters than the operator chose would be a silent surprise.
    pub fn new(
        store: Store,
        settings: ServerSettings,
    ) -> Result<Self, auth::password::PasswordError> {
        let auth = auth::AuthState::new(settings.auth.clone())?;
        Ok(AppState {
            audit: audit_writer::AuditWriter::start(store.clone()),
            dci_journal: dci_journal::Journal::start(store.clone()),
            lookup: lookup::LookupService::new(settings.lookup.clone()),
            store,
            metrics: crate::metrics::handle(),
            settings: Arc::new(settings),
            auth: Arc::new(auth),
        })
    }
}

/// The whole application: routes plus the middleware every request goes through.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    // Every route comes from the registry in `routes`, which the route-table test walks.
    let api = Router::new()
        .merge(routes::router())
        .route_layer(middleware::from_fn(crate::metrics::track))
        .fallback(unknown_route)
        .with_state(state);

    let x_request_id = HeaderName::from_static(request_id::HEADER);
    api.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(request_id::sanitize))
            .layer(SetRequestIdLayer::new(
                x_request_id.clone(),
                request_id::MakeId,
            ))
            .layer(
                TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(request_id::HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %id)
                }),
            )
            .layer(PropagateRequestIdLayer::new(x_request_id))
            .layer(middleware::from_fn(request_id::scope))
            .layer(middleware::from_fn(problem_for_bare_errors))
            .layer(CatchPanicLayer::custom(|_| {
                tracing::error!("handler panicked");
                problem_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an unexpected error occurred; quote the request id when reporting it",
                    None,
                )
            }))
            .layer(header_layer(header::CONTENT_SECURITY_POLICY, CSP))
            .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
            .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                settings.request_timeout,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(settings.body_limit)),
    )
}

/// Pages load only their own vendored scripts and styles: no inline script, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

async fn unknown_route(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    // A person following a broken link gets a page; API clients get a problem document.
    if web::wants_html(&headers) {
        return web::not_found_page(&uri, &headers);
    }
    problem_response(StatusCode::NOT_FOUND, "not-found", "no such route", None)
}

/// Errors made by the framework rather than a handler (wrong method, body too large, timeout,
/// malformed JSON) come as plain text; rewrite them as problem documents so every error a client
/// sees has one shape.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    // Only bodies a client cannot act on (plain text or empty) are rewritten; a handler's JSON
    // (e.g. the readiness report on 503) or an HTML page is left alone.
    let rewritable = match res.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.as_bytes().starts_with(b"text/plain"),
    };
    if !rewritable {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_string();
    let detail = if detail.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        detail
    };
    let mut out = problem_response(status, "http", &detail, None);
    // Keep headers such as `Allow` on 405.
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out.into_response()
}

/// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight requests finish
/// and commits the audit entries still queued.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let audit = state.audit.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    // Reads of the last requests may still be queued: commit them before the process ends.
    if audit.flush().await.is_err() {
        tracing::error!("the audit log could not be flushed at shutdown");
    }
    served
}
