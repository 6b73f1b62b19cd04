//! The OpenAPI document, snapshot-tested so every change to the API surface is reviewed.

#![allow(clippy::unwrap_used)]

#[test]
fn openapi_document_matches_snapshot() {
    let doc = serde_json::to_value(inkingi_server::openapi::document()).unwrap();
    insta::assert_json_snapshot!("openapi", doc);
}
