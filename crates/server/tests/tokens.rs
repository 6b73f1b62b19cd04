//! API tokens: bad ones are 401 problem+json (never 500), scopes and purposes are enforced,
//! failures are rate limited, and reads are audited with their purpose.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use inkingi_domain::identity::{Role, Username};
use inkingi_server::auth::service::{self, Actor};
use inkingi_server::auth::RateLimit;
use inkingi_server::ServerSettings;
use inkingi_testkit::{databases, TestApp};

const AUDIT: &str = "/api/v1/audit";

#[tokio::test]
async fn malformed_expired_and_revoked_tokens_are_401_problems() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "ann.auditor", Role::Auditor, "national").await;
        let good = token(&app, "ann.auditor", &["audit"]).await;
        let res = bearer(&app, AUDIT, &good).await;
        assert_eq!(res.status(), 200, "[{db:?}] {}", res.text().await.unwrap());

        let unknown = format!("ink_{}", "A".repeat(48));
        // Change the last character to a different one (a fixed "x" would leave a token that
        // already ends in "x" untouched, one time in 62).
        let last = if good.ends_with('x') { 'y' } else { 'x' };
        let tampered = format!("{}{last}", &good[..good.len() - 1]);
        for header in [
            "Bearer".to_string(),
            "Bearer ".to_string(),
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l".to_string(),
            "Bearer not-a-token".to_string(),
            "Bearer ink_short".to_string(),
            format!("Bearer {unknown}"),
            format!("Bearer {tampered}"),
            format!("Bearer {good} extra"),
            "Bearer ink_\u{e4}".to_string(),
        ] {
            let res = app
                .client
                .get(app.url(AUDIT))
                .header("authorization", header.as_bytes())
                .send()
                .await
                .unwrap();
            let body = problem(res, 401).await;
            assert_eq!(
                body["type"], "urn:inkingi:problem:unauthorized",
                "{header}: {body}"
            );
        }

        let expired = token_with(
            &app,
            "ann.auditor",
            &["audit"],
            Some(chrono::Duration::seconds(-1)),
        )
        .await;
        let body = problem(bearer(&app, AUDIT, &expired).await, 401).await;
        assert!(
            body["detail"].as_str().unwrap().contains("expired"),
            "{body}"
        );

        let revoked = token(&app, "ann.auditor", &["audit"]).await;
        service::revoke_token(&app.store, &Actor::cli(), &revoked[..12])
            .await
            .unwrap();
        let body = problem(bearer(&app, AUDIT, &revoked).await, 401).await;
        assert!(
            body["detail"].as_str().unwrap().contains("revoked"),
            "{body}"
        );

        service::set_disabled(
            &app.store,
            &Actor::cli(),
            &Username::parse("ann.auditor").unwrap(),
            true,
        )
        .await
        .unwrap();
        problem(bearer(&app, AUDIT, &good).await, 401).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn token_scopes_never_exceed_and_can_narrow_the_role() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "bob.auditor", Role::Auditor, "national").await;
        // A read-only token of an auditor cannot read the audit log: it lacks the audit scope.
        let read_only = token(&app, "bob.auditor", &["read"]).await;
        let body = problem(bearer(&app, AUDIT, &read_only).await, 403).await;
        assert!(body["detail"].as_str().unwrap().contains("audit"), "{body}");
        // An admin-scoped token of a partner still cannot: the role decides first.
        add_user(&app, "pat.partner", Role::Partner, "national").await;
        let partner = token(&app, "pat.partner", &["audit", "admin"]).await;
        problem(bearer(&app, AUDIT, &partner).await, 403).await;

        // A token's areas may only narrow its user's.
        add_user(&app, "dis.officer", Role::DistrictOfficer, "11").await;
        let wider = service::create_token(
            &app.store,
            &Actor::cli(),
            &Username::parse("dis.officer").unwrap(),
            vec![],
            Some(inkingi_domain::identity::AreaScope::parse("12").unwrap()),
            None,
        )
        .await;
        assert!(wider.is_err());
        app.stop().await;
    }
}

#[tokio::test]
async fn purposes_are_checked_per_role_and_recorded() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "cat.auditor", Role::Auditor, "national").await;
        let t = token(&app, "cat.auditor", &["audit"]).await;
        let with = |purpose: &'static str| {
            app.client
                .get(app.url(AUDIT))
                .header("authorization", format!("Bearer {t}"))
                .header("x-purpose-of-use", purpose)
                .send()
        };
        let body = problem(with("gossip").await.unwrap(), 400).await;
        assert_eq!(body["field"], "X-Purpose-Of-Use", "{body}");
        let body = problem(with("registration").await.unwrap(), 403).await;
        assert!(body["detail"].as_str().unwrap().contains("audit"), "{body}");
        let res = with("audit").await.unwrap();
        assert_eq!(res.status(), 200);
        let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();

        // That read is itself an entry, with purpose, request id and client address.
        let page: serde_json::Value = bearer(&app, "/api/v1/audit?actor=cat.auditor", &t)
            .await
            .json()
            .await
            .unwrap();
        let entry = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["request_id"] == request_id.as_str())
            .unwrap_or_else(|| panic!("[{db:?}] the read was not audited: {page}"));
        assert_eq!(entry["action"], "audit.read");
        assert_eq!(entry["purpose"], "audit");
        assert_eq!(entry["client_addr"], "127.0.0.1");
        assert!(entry["via"].as_str().unwrap().starts_with("token:ink_"));
        assert_eq!(entry["hash"].as_str().unwrap().len(), 64);

        app.stop().await;

        // Configured purposes replace a role's defaults.
        let mut settings = ServerSettings::default();
        settings.auth.purposes.set(
            Role::Auditor,
            [inkingi_domain::identity::Purpose::Statistics],
        );
        // Same database, restarted with the new policy.
        let app = TestApp::start_with(&db, settings).await;
        let res = bearer(&app, AUDIT, &t).await;
        problem(res, 403).await;
        let res = app
            .client
            .get(app.url(AUDIT))
            .header("authorization", format!("Bearer {t}"))
            .header("x-purpose-of-use", "statistics")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "[{db:?}]");
        app.stop().await;
    }
}

#[tokio::test]
async fn failed_token_attempts_are_rate_limited_per_client() {
    for db in databases().await {
        let mut settings = ServerSettings::default();
        settings.auth.token_rate = RateLimit {
            per_minute: 1,
            burst: 2,
        };
        let app = TestApp::start_with(&db, settings).await;
        let bad = format!("ink_{}", "B".repeat(48));
        for _ in 0..2 {
            problem(bearer(&app, AUDIT, &bad).await, 401).await;
        }
        let res = bearer(&app, AUDIT, &bad).await;
        assert!(res.headers().contains_key("retry-after"));
        problem(res, 429).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn audit_query_filters_paginates_and_names_bad_parameters() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "dee.auditor", Role::Auditor, "national").await;
        let t = token(&app, "dee.auditor", &["audit"]).await;
        seed_reads(&app, "1101", "P-1", 5).await;
        seed_reads(&app, "2301", "P-2", 2).await;

        let page: serde_json::Value = bearer(&app, &format!("{AUDIT}?subject_id=P-1&limit=2"), &t)
            .await
            .json()
            .await
            .unwrap();
        let entries = page["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "[{db:?}] {page}");
        let next = page["next_after"].as_i64().unwrap();
        let page2: serde_json::Value = bearer(
            &app,
            &format!("{AUDIT}?subject_id=P-1&limit=10&after={next}"),
            &t,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(page2["entries"].as_array().unwrap().len(), 3, "{page2}");
        assert!(page2["next_after"].is_null());

        let future = "2999-01-01T00:00:00Z";
        let none: serde_json::Value = bearer(&app, &format!("{AUDIT}?from={future}"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(none["entries"].as_array().unwrap().len(), 0);

        for (q, field) in [
            ("limit=0", "limit"),
            ("limit=9999", "limit"),
            ("from=yesterday", "from"),
            ("after=x", "after"),
            ("colour=red", "colour"),
            ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ] {
            let body = problem(bearer(&app, &format!("{AUDIT}?{q}"), &t).await, 400).await;
            assert_eq!(body["field"], field, "{q}: {body}");
        }

        // A district auditor sees only its district's entries.
        add_user(&app, "sw.auditor", Role::Auditor, "23").await;
        let local = token(&app, "sw.auditor", &["audit"]).await;
        let page: serde_json::Value = bearer(&app, AUDIT, &local).await.json().await.unwrap();
        let entries = page["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{page}");
        assert!(entries.iter().all(|e| e["area"] == "2301"));
        app.stop().await;
    }
}
