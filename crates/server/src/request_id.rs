//! Request ids: taken from a well-formed incoming `x-request-id` (so a gateway's id carries
//! through) or made fresh, echoed on the response, put on the tracing span and in problem bodies.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being served by this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(|id| id.clone()).ok()
}

/// Makes a UUIDv7 unless the incoming id is acceptable.
#[derive(Clone, Copy, Default)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _req: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// An incoming id is kept only when short and made of safe characters, so it cannot be used to
/// inject into logs.
pub fn acceptable(value: &HeaderValue) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Drops an unacceptable incoming id so that `SetRequestIdLayer` makes a fresh one.
pub async fn sanitize(mut req: Request, next: Next) -> Response {
    if let Some(v) = req.headers().get(HEADER) {
        if !acceptable(v) {
            req.headers_mut().remove(HEADER);
        }
    }
    next.run(req).await
}

/// Makes the id available to code that builds problem bodies, via a task-local.
pub async fn scope(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    CURRENT.scope(id, next.run(req)).await
}
