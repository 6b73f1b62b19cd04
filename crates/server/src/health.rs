//! Liveness and readiness for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the check passed.
    pub status: &'static str,
    /// The version of this binary.
    pub version: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
    /// Each check by name: `ok` or the reason it failed.
    pub checks: Vec<Check>,
}

#[derive(Serialize, ToSchema)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Process is up. Never touches the database, so a slow database does not make an orchestrator
/// restart healthy processes.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Ready to serve: database reachable, every migration of this binary applied and none unknown
/// to it, reference data loaded.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to take traffic", body = Readiness),
        (status = 503, description = "Not ready; the checks say why", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let sys = state.store.system();
    let mut checks = Vec::new();
    let db = sys.ping().await;
    checks.push(check("database", db.as_ref().err().map(|e| e.to_string())));
    if db.is_ok() {
        let pending = match sys.pending_migrations().await {
            Ok(p) if p.is_empty() => None,
            Ok(p) => Some(format!("pending migrations {p:?}; run `inkingi migrate`")),
            Err(e) => Some(e.to_string()),
        };
        checks.push(check("migrations", pending));
        let unknown = match sys.unknown_migrations().await {
            Ok(u) if u.is_empty() => None,
            Ok(u) => Some(format!(
                "the database has migrations {u:?} that this binary does not know; upgrade it"
            )),
            Err(e) => Some(e.to_string()),
        };
        checks.push(check("schema_version", unknown));
        checks.push(reference_data(sys).await);
    }
    let ready = checks.iter().all(|c| c.ok);
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database: state.store.kind().as_str(),
        checks,
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Every embedded reference data set is loaded. Another version than this binary's passes: in a
/// rolling upgrade a newer node may have loaded its own, and both serve the same codes.
async fn reference_data(sys: &dyn inkingi_store::system::SystemStore) -> Check {
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    for (dataset, embedded) in inkingi_store::reference::embedded_versions() {
        match sys.reference_version(dataset).await {
            Ok(Some(v)) if v == embedded => {}
            Ok(Some(v)) => notes.push(format!("{dataset} {v} loaded; this binary has {embedded}")),
            Ok(None) => failures.push(format!("{dataset} not loaded; run `inkingi migrate`")),
            Err(e) => failures.push(format!("{dataset}: {e}")),
        }
    }
    let mut c = check(
        "reference_data",
        (!failures.is_empty()).then(|| failures.join("; ")),
    );
    if c.ok && !notes.is_empty() {
        c.detail = notes.join("; ");
    }
    c
}

/// A passed check when `failure` is `None`.
fn check(name: &'static str, failure: Option<String>) -> Check {
    Check {
        name,
        ok: failure.is_none(),
        detail: failure.unwrap_or_else(|| "ok".into()),
    }
}
