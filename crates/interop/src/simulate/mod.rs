//! Simulators of outside systems, speaking their protocols over HTTP with faults injected on
//! demand, so demos and tests run the real client code.

pub mod crvs;
pub mod dhis2;
pub mod faults;
pub mod national_id;
pub mod sms;
pub mod subscriber;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Binds `listen` (port 0 picks one) and serves `app` in the background until `stop` is
/// cancelled; returns the address bound. `name` says which simulator stopped on an error.
pub(crate) async fn serve(
    listen: SocketAddr,
    app: Router,
    stop: &CancellationToken,
    name: &'static str,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let s = stop.clone();
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "{name} stopped");
        }
    });
    Ok(addr)
}
