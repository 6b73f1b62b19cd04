//! The operations endpoints alone (`/healthz`, `/readyz`, `/metrics`), for processes that serve
//! no API: `inkingi worker --listen`. The handlers are the server's own, so a worker is probed
//! and scraped exactly like a server node.

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{health, metrics, AppState};

/// `/healthz`, `/readyz` and `/metrics`; nothing else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .with_state(state)
}

/// Serves [`router`] until `shutdown` is cancelled, letting in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
