//! `/api/v1/areas`: Rwanda's administrative hierarchy.

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi()]
struct AreasApi;

pub fn api() -> utoipa::openapi::OpenApi {
    AreasApi::openapi()
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
