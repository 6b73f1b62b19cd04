//! The OpenAPI document. Each context's module contributes its own `OpenApi` part, merged here,
//! so adding an endpoint touches only that context's file (and the snapshot).

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Inkingi API",
        description = "Social registry, beneficiary registry and integrated child record. \
            Errors are RFC 9457 `application/problem+json` documents carrying the request id.",
        license(name = "Apache-2.0"),
    ),
    paths(crate::health::healthz, crate::health::readyz, serve),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "areas", description = "Rwanda's administrative hierarchy (NISR codes)"),
        (name = "identity", description = "Sign-in and sessions (web). API clients send `Authorization: Bearer ink_…`"),
        (name = "dci", description = "DCI Social Registry API v1.0.0: sync and async search, transaction status, subscriptions; access tokens and JWKS"),
        (name = "webhooks", description = "Partner webhooks: registry events in the caller's area scope, signed with HMAC-SHA256"),
        (name = "audit", description = "The hash-chained audit log, queried within the caller's area scope"),
    )
)]
struct BaseApi;

/// The full document, built once per call (cheap: a few microseconds).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = BaseApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.merge(crate::areas::api());
    doc.merge(crate::web::api());
    doc.merge(crate::audit::api());
    doc.merge(crate::registry::api());
    doc.merge(crate::targeting::api());
    doc.merge(crate::programmes::api());
    doc.merge(crate::recertifications::api());
    doc.merge(crate::cycles::api());
    doc.merge(crate::dci::api());
    doc.merge(crate::dci_auth::api());
    doc.merge(crate::dci_ibr::api());
    doc.merge(crate::crvs::api());
    doc.merge(crate::webhooks::api());
    doc.merge(crate::children::api());
    doc.merge(crate::linkage::api());
    doc.merge(crate::auth::login::api());
    doc.merge(crate::auth::account::api());
    crate::auth::add_security_schemes(&mut doc);
    doc
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", operation_id = "openapi_document",
    responses((status = 200, description = "This document")))]
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
