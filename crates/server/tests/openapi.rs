//! The OpenAPI document, snapshot-tested so every change to the API surface is reviewed.

#![allow(clippy::unwrap_used)]

#[test]
fn openapi_document_matches_snapshot() {
    let doc = serde_json::to_value(inkingi_server::openapi::document()).unwrap();
    insta::assert_json_snapshot!("openapi", doc);
}

/// Client generators need every operation id to be unique.
#[test]
fn operation_ids_are_unique() {
    let doc = serde_json::to_value(inkingi_server::openapi::document()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if let Some(id) = op.get("operationId").and_then(|v| v.as_str()) {
                assert!(
                    seen.insert(id.to_string()),
                    "{method} {path}: duplicate operationId {id}"
                );
            }
        }
    }
}
