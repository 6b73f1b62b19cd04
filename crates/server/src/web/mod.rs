//! Server-rendered web pages (askama + htmx), with vendored assets.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
