//! Server-rendered web pages (askama + htmx), with vendored assets.
//!
//! Pages are plain HTML that work without JavaScript; htmx enhances navigation and Chart.js draws
//! the charts. Everything a page loads is compiled into the binary and served from `/assets/`, so
//! the strict Content-Security-Policy (`script-src 'self'; style-src 'self'`) holds: no inline
//! scripts, no `style` attributes, chart data passed in `data-` attributes.

pub(crate) mod api_docs;
pub(crate) mod areas;
pub mod assets;
pub(crate) mod home;
pub mod i18n;
pub(crate) mod page;

use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use utoipa::OpenApi;

pub use page::wants_html;

#[derive(OpenApi)]
#[openapi(
    paths(home::page, areas::page, api_docs::page, assets::serve),
    tags((name = "web", description = "HTML pages for people, and their static assets"))
)]
struct WebApi;

pub fn api() -> utoipa::openapi::OpenApi {
    WebApi::openapi()
}

/// The 404 page for a browser, in the visitor's language.
pub fn not_found_page(uri: &Uri, headers: &HeaderMap) -> Response {
    page::not_found(&page::PageCtx::from_parts(uri.path(), uri.query(), headers))
}
