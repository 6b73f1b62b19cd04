//! Black-box tests of the platform layer, over real HTTP, on every configured backend.

#![allow(clippy::unwrap_used)]

use inkingi_testkit::{databases, TestApp};

#[tokio::test]
async fn healthz_and_readyz() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let h = app.get_json("/healthz", 200).await;
        assert_eq!(h["status"], "ok");
        assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
        let r = app.get_json("/readyz", 200).await;
        assert_eq!(r["status"], "ready", "{r}");
        assert_eq!(r["database"], db.kind.as_str());
        app.stop().await;
    }
}

#[tokio::test]
async fn readyz_reports_a_database_that_went_away() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        app.store.close().await;
        let r = app.get_json("/readyz", 503).await;
        assert_eq!(r["status"], "not_ready");
        assert_eq!(r["checks"][0]["name"], "database");
        assert_eq!(r["checks"][0]["ok"], false);
        app.stop().await;
    }
}

#[tokio::test]
async fn errors_are_problem_json_with_request_id() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let res = app.get("/no/such/route").await;
        assert_eq!(res.status(), 404);
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct, "application/problem+json");
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["status"], 404);
        assert_eq!(body["request_id"], id);
        assert!(body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:inkingi:problem:"));

        // A framework-made error (wrong method) is rewritten into the same shape.
        let res = app.client.post(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 405);
        assert!(res.headers().contains_key("allow"));
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn request_ids_are_propagated_or_replaced() {
    let db = inkingi_testkit::sqlite().await;
    let app = TestApp::start(&db).await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "gateway-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "gateway-abc.123");

    // An id that could inject into logs is replaced by a fresh one.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "evil id\" with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    app.stop().await;
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let db = inkingi_testkit::sqlite().await;
    let app = TestApp::start(&db).await;
    for path in ["/healthz", "/no/such/route"] {
        let res = app.get(path).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
    app.stop().await;
}

#[tokio::test]
async fn metrics_expose_requests_and_pool() {
    let db = inkingi_testkit::sqlite().await;
    let app = TestApp::start(&db).await;
    app.get_json("/healthz", 200).await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    assert!(
        text.contains("http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("db_pool_max_connections"));
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_is_served() {
    let db = inkingi_testkit::sqlite().await;
    let app = TestApp::start(&db).await;
    let doc = app.get_json("/api/v1/openapi.json", 200).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/healthz"]["get"].is_object());
    assert!(doc["paths"]["/readyz"]["get"].is_object());
    app.stop().await;
}
