//! Web sign-in: cookies, CSRF, failures that all look alike, lockout, throttling, expiry, logout.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use inkingi_domain::identity::{Role, Username};
use inkingi_server::auth::{AuthSettings, RateLimit};
use inkingi_server::ServerSettings;
use inkingi_testkit::{databases, TestApp};

/// The error paragraph of the login page.
fn error_text(html: &str) -> String {
    let start = html
        .find("class=\"error\"")
        .unwrap_or_else(|| panic!("no error in {html}"));
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    rest[open..rest.find("</p>").unwrap()].to_string()
}

#[tokio::test]
async fn sign_in_sets_a_hardened_session_cookie_and_the_session_works() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "ada.auditor", Role::Auditor, "national").await;

        let res = app.get("/login").await;
        let login_cookie = set_cookie(&res, LOGIN_COOKIE).unwrap();
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(login_cookie.contains(attr), "{login_cookie}");
        }
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"));

        let res = post_login(&app, "ADA.Auditor", PASSWORD, "/audit").await;
        assert_eq!(res.status(), 303, "[{db:?}]");
        assert_eq!(res.headers()["location"], "/audit");
        let session_cookie = set_cookie(&res, SESSION_COOKIE).unwrap();
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age="] {
            assert!(session_cookie.contains(attr), "{session_cookie}");
        }
        let cookie = cookie_pair(&session_cookie);
        let res = get_with(&app, "/audit", ("cookie", &cookie)).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(
            html.contains("ada.auditor") && html.contains("auth.login"),
            "{html}"
        );

        // The same session works on the API (a safe method needs no CSRF header).
        let res = get_with(&app, "/api/v1/audit?actor=ada.auditor", ("cookie", &cookie)).await;
        assert_eq!(res.status(), 200);

        // Sign-in is in the audit log, without the password.
        let page = app
            .store
            .audit()
            .query(
                &inkingi_domain::identity::AreaScope::national(),
                &inkingi_store::audit::AuditQuery {
                    actor: Some("ada.auditor".into()),
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page
            .iter()
            .any(|e| e.record.action == "auth.login" && e.record.outcome == "ok"));
        let all =
            serde_json::to_string(&page.iter().map(|e| &e.record).collect::<Vec<_>>()).unwrap();
        assert!(!all.contains(PASSWORD));
        app.stop().await;
    }
}

#[tokio::test]
async fn failures_read_alike_and_csrf_is_required() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "bea.officer", Role::DistrictOfficer, "11").await;

        let res = post_login(&app, "bea.officer", "wrong password!!", "/").await;
        assert_eq!(res.status(), 401);
        let wrong = error_text(&res.text().await.unwrap());
        let res = post_login(&app, "nobody.here", "wrong password!!", "/").await;
        assert_eq!(res.status(), 401);
        let unknown = error_text(&res.text().await.unwrap());
        let res = post_login(&app, "not a username!", "x", "/").await;
        assert_eq!(res.status(), 401);
        let invalid = error_text(&res.text().await.unwrap());
        assert_eq!(wrong, unknown, "[{db:?}]");
        assert_eq!(wrong, invalid, "[{db:?}]");

        // No CSRF token, or one that does not match the cookie: 403.
        let f = login_form(&app).await;
        let res = app
            .client
            .post(app.url("/login"))
            .header("cookie", &f.cookie)
            .form(&[("username", "bea.officer"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let res = app
            .client
            .post(app.url("/login"))
            .form(&[
                ("username", "bea.officer"),
                ("password", PASSWORD),
                ("csrf_token", f.csrf.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "a token without its cookie is refused");

        // `next` cannot send people to another site.
        let res = post_login(&app, "bea.officer", PASSWORD, "//evil.example/x").await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/");
        app.stop().await;
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_while() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "cleo.officer", Role::SectorOfficer, "1101").await;
        let threshold = AuthSettings::default().lockout_threshold;
        for _ in 0..threshold {
            let res = post_login(&app, "cleo.officer", "not the password", "/").await;
            assert_eq!(res.status(), 401);
        }
        // Now even the right password is refused, with the same message.
        let res = post_login(&app, "cleo.officer", PASSWORD, "/").await;
        assert_eq!(res.status(), 401, "[{db:?}] locked account signed in");
        let user = app
            .store
            .identity()
            .user_by_name(&Username::parse("cleo.officer").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(user.locked_until.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(10));
        assert_eq!(user.failed_logins, threshold as i32);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_lock_runs_out_and_the_count_starts_afresh() {
    for db in databases().await {
        let mut settings = ServerSettings::default();
        settings.auth.lockout_threshold = 2;
        settings.auth.lockout_duration = Duration::from_secs(1);
        let app = TestApp::start_with(&db, settings).await;
        add_user(&app, "ida.officer", Role::SectorOfficer, "1101").await;
        for _ in 0..2 {
            post_login(&app, "ida.officer", "not the password", "/").await;
        }
        assert_eq!(
            post_login(&app, "ida.officer", PASSWORD, "/")
                .await
                .status(),
            401
        );
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // One typo after the lock ran out does not lock again…
        assert_eq!(
            post_login(&app, "ida.officer", "typo", "/").await.status(),
            401
        );
        // …so the right password works.
        let res = post_login(&app, "ida.officer", PASSWORD, "/").await;
        assert_eq!(res.status(), 303, "[{db:?}]");
        app.stop().await;
    }
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_client() {
    for db in databases().await {
        let mut settings = ServerSettings::default();
        settings.auth.login_rate = RateLimit {
            per_minute: 1,
            burst: 3,
        };
        let app = TestApp::start_with(&db, settings).await;
        for _ in 0..3 {
            let res = post_login(&app, "nobody.at.all", "guess guess", "/").await;
            assert_eq!(res.status(), 401);
        }
        let res = post_login(&app, "nobody.at.all", "guess guess", "/").await;
        assert_eq!(res.status(), 429, "[{db:?}]");
        app.stop().await;
    }
}

#[tokio::test]
async fn an_expired_session_goes_back_to_sign_in_asking_to_resubmit() {
    for db in databases().await {
        let mut settings = ServerSettings::default();
        settings.auth.session_idle = Duration::from_secs(1);
        let app = TestApp::start_with(&db, settings).await;
        add_user(&app, "dan.auditor", Role::Auditor, "national").await;
        let cookie = session(&app, "dan.auditor").await;
        tokio::time::sleep(Duration::from_millis(2100)).await;

        let res = get_with(&app, "/audit?actor=x", ("cookie", &cookie)).await;
        assert_eq!(res.status(), 303, "[{db:?}]");
        let to = res.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(to, "/login?next=%2Faudit%3Factor%3Dx&expired=1");
        // A form posted with the expired session is not silently dropped: the user is told.
        let res = app
            .client
            .post(app.url("/logout"))
            .header("cookie", &cookie)
            .form(&[("csrf_token", "whatever")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let to = res.headers()["location"].to_str().unwrap().to_string();
        assert!(to.ends_with("&expired=1"), "{to}");
        // The page speaks the browser's language (Kinyarwanda when it names none of ours).
        let html = get_with(&app, &to, ("accept-language", "en"))
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("resubmit"), "{html}");
        // And the API says 401, not a redirect.
        let res = get_with(&app, "/api/v1/audit", ("cookie", &cookie)).await;
        problem(res, 401).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn oversized_sign_in_bodies_are_refused() {
    for db in databases().await {
        let settings = ServerSettings {
            body_limit: 4096,
            ..Default::default()
        };
        let app = TestApp::start_with(&db, settings).await;
        let f = login_form(&app).await;
        let res = app
            .client
            .post(app.url("/login"))
            .header("cookie", &f.cookie)
            .form(&[
                ("username", "x".repeat(10_000)),
                ("password", "y".into()),
                ("csrf_token", f.csrf.clone()),
            ])
            .send()
            .await
            .unwrap();
        problem(res, 413).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "eve.admin", Role::SystemAdmin, "national").await;
        let cookie = session(&app, "eve.admin").await;
        let html = get_with(&app, "/audit", ("cookie", &cookie))
            .await
            .text()
            .await
            .unwrap();
        let csrf = hidden(&html, "csrf_token");

        let res = app
            .client
            .post(app.url("/logout"))
            .header("cookie", &cookie)
            .form(&[("csrf_token", "0".repeat(64))])
            .send()
            .await
            .unwrap();
        problem(res, 403).await;
        let res = app
            .client
            .post(app.url("/logout"))
            .header("cookie", &cookie)
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "[{db:?}]");
        assert_eq!(res.headers()["location"], "/login?signed_out=1");
        let res = get_with(&app, "/audit", ("cookie", &cookie)).await;
        assert_eq!(res.status(), 303, "the session survived logout");
        app.stop().await;
    }
}

#[tokio::test]
async fn disabled_users_and_machine_clients_cannot_sign_in() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "fay.partner", Role::Partner, "national").await;
        add_user(&app, "robot", Role::MachineClient, "national").await;
        let cookie = session(&app, "fay.partner").await;
        inkingi_server::auth::service::set_disabled(
            &app.store,
            &inkingi_server::auth::service::Actor::cli(),
            &Username::parse("fay.partner").unwrap(),
            true,
        )
        .await
        .unwrap();
        let res = post_login(&app, "fay.partner", PASSWORD, "/").await;
        assert_eq!(res.status(), 401, "[{db:?}]");
        let res = get_with(&app, "/audit", ("cookie", &cookie)).await;
        assert_eq!(res.status(), 303, "a disabled user's session must end");
        let res = post_login(&app, "robot", PASSWORD, "/").await;
        assert_eq!(res.status(), 401);
        app.stop().await;
    }
}
