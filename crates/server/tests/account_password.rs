//! One-time passwords: a user given a generated password must choose their own before any
//! signed-in page opens; weak choices are refused field by field; bearer tokens are unaffected.
//! Also the page header: who is signed in, the sign-out form and the audit link.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use inkingi_domain::identity::{AreaScope, Role, Username};
use inkingi_server::auth::service::{self, Actor};
use inkingi_testkit::{databases, TestApp};
use secrecy::ExposeSecret;

const NEW_PASSWORD: &str = "my own better passphrase";

/// Creates a user the way `inkingi users add` does without `--password-stdin`.
async fn add_with_one_time_password(app: &TestApp, name: &str, role: Role) -> String {
    let (user, pw) = service::create_user(
        &app.store,
        &passwords(),
        &Actor::cli(),
        Username::parse(name).unwrap(),
        role,
        AreaScope::national(),
        None,
    )
    .await
    .unwrap();
    assert!(user.must_change_password);
    pw.unwrap().expose_secret().to_string()
}

async fn get_en(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("cookie", cookie)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

async fn post_change(
    app: &TestApp,
    cookie: &str,
    csrf: &str,
    current: &str,
    new: &str,
    again: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/account/password"))
        .header("cookie", cookie)
        .header("accept-language", "en")
        .form(&[
            ("csrf_token", csrf),
            ("next", "/audit"),
            ("current_password", current),
            ("new_password", new),
            ("new_password_again", again),
        ])
        .send()
        .await
        .unwrap()
}

/// The message shown next to `field`, if any.
fn field_error(html: &str, field: &str) -> Option<String> {
    let marker = format!("data-field-error=\"{field}\">");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split("</p>").next().unwrap().to_string())
}

async fn signed_in_cookie(app: &TestApp, user: &str, password: &str) -> (String, String) {
    let res = post_login(app, user, password, "/audit").await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    (cookie_pair(&set_cookie(&res, SESSION_COOKIE).unwrap()), to)
}

#[tokio::test]
async fn a_one_time_password_must_be_changed_before_anything_else() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let otp = add_with_one_time_password(&app, "olive.auditor", Role::Auditor).await;
        let token = token(&app, "olive.auditor", &["audit"]).await;

        // Sign-in works, but leads to the change page, remembering where the user was going.
        let (cookie, to) = signed_in_cookie(&app, "olive.auditor", &otp).await;
        assert_eq!(to, "/account/password?next=%2Faudit", "[{db:?}]");
        let (other_browser, _) = signed_in_cookie(&app, "olive.auditor", &otp).await;

        // Every other signed-in page sends the user back; the API refuses that session.
        let res = get_en(&app, "/audit?actor=x", &cookie).await;
        assert_eq!(res.status(), 303);
        assert_eq!(
            location(&res),
            "/account/password?next=%2Faudit%3Factor%3Dx"
        );
        let res = get_en(&app, "/api/v1/audit", &cookie).await;
        let body = problem(res, 403).await;
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("/account/password"));
        // Public pages open, saying what is pending.
        let html = get_en(&app, "/", &cookie).await.text().await.unwrap();
        assert!(html.contains("one-time password"), "{html}");
        // Bearer tokens are unaffected.
        assert_eq!(bearer(&app, "/api/v1/audit", &token).await.status(), 200);

        let res = get_en(&app, "/account/password?next=/audit", &cookie).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("You signed in with a one-time password"),
            "{html}"
        );
        let csrf = hidden(&html, "csrf_token");

        // Weak or inconsistent choices are refused, each next to its field.
        let cases = [
            (
                otp.as_str(),
                "short",
                "short",
                "new_password",
                "at least 12",
            ),
            (
                otp.as_str(),
                "OLIVE.auditor",
                "OLIVE.auditor",
                "new_password",
                "username",
            ),
            (
                otp.as_str(),
                otp.as_str(),
                otp.as_str(),
                "new_password",
                "different",
            ),
            (
                otp.as_str(),
                NEW_PASSWORD,
                "something else",
                "new_password_again",
                "differ",
            ),
            (
                "not my password",
                NEW_PASSWORD,
                NEW_PASSWORD,
                "current_password",
                "not your",
            ),
        ];
        for (current, new, again, field, says) in cases {
            let res = post_change(&app, &cookie, &csrf, current, new, again).await;
            assert_eq!(res.status(), 422, "[{db:?}] {field}");
            let html = res.text().await.unwrap();
            let msg = field_error(&html, field).unwrap_or_else(|| panic!("{field}: {html}"));
            assert!(msg.contains(says), "{field}: {msg}");
            assert!(
                !html.contains(new) || new == "OLIVE.auditor",
                "passwords are not echoed"
            );
        }
        // Without the session's CSRF token nothing changes.
        let res = post_change(&app, &cookie, "forged", &otp, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(res.status(), 403);
        assert_eq!(get_en(&app, "/audit", &cookie).await.status(), 303);

        // The change: on to where the user was going, with normal access from now on.
        let res = post_change(&app, &cookie, &csrf, &otp, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(res.status(), 303, "[{db:?}] {}", res.text().await.unwrap());
        assert_eq!(location(&res), "/audit");
        let res = get_en(&app, "/audit", &cookie).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(html.contains("user.password_change"), "{html}");
        assert!(!html.contains("one-time password"), "{html}");
        assert_eq!(get_en(&app, "/api/v1/audit", &cookie).await.status(), 200);
        // The other session ended with the old password.
        let res = get_en(&app, "/audit", &other_browser).await;
        assert!(location(&res).ends_with("&expired=1"), "{}", location(&res));
        let user = app
            .store
            .identity()
            .user_by_name(&Username::parse("olive.auditor").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!user.must_change_password);
        // The one-time password is spent; the new one signs in straight through.
        assert_eq!(
            post_login(&app, "olive.auditor", &otp, "/audit")
                .await
                .status(),
            401
        );
        let (_, to) = signed_in_cookie(&app, "olive.auditor", NEW_PASSWORD).await;
        assert_eq!(to, "/audit");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_reset_issues_a_new_one_time_password_and_ends_sessions() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "rex.officer", Role::DistrictOfficer, "11").await;
        let cookie = session(&app, "rex.officer").await;
        assert_eq!(
            get_en(&app, "/account/password", &cookie).await.status(),
            200
        );

        let name = Username::parse("rex.officer").unwrap();
        let otp = service::reset_password(&app.store, &passwords(), &Actor::cli(), &name)
            .await
            .unwrap();
        let res = get_en(&app, "/account/password", &cookie).await;
        assert_eq!(res.status(), 303, "[{db:?}] the session ended");
        assert_eq!(
            post_login(&app, "rex.officer", PASSWORD, "/")
                .await
                .status(),
            401
        );
        let (_, to) = signed_in_cookie(&app, "rex.officer", otp.expose_secret()).await;
        assert!(to.starts_with("/account/password?next="), "{to}");

        // Unknown users and machine clients are refused by name.
        let nobody = Username::parse("no.body").unwrap();
        let err = service::reset_password(&app.store, &passwords(), &Actor::cli(), &nobody)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no.body"), "{err}");
        add_user(&app, "sync.bot", Role::MachineClient, "national").await;
        let bot = Username::parse("sync.bot").unwrap();
        let err = service::reset_password(&app.store, &passwords(), &Actor::cli(), &bot)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("API tokens"), "{err}");
        app.stop().await;
    }
}

#[tokio::test]
async fn the_header_shows_who_is_signed_in_and_the_audit_link_by_role() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let anonymous = get_en(&app, "/areas", "").await.text().await.unwrap();
        assert!(
            anonymous.contains("href=\"/login?next=%2Fareas\""),
            "{anonymous}"
        );
        assert!(!anonymous.contains("action=\"/logout\""));
        assert!(!anonymous.contains("href=\"/audit\""));

        add_user(&app, "ada.auditor", Role::Auditor, "national").await;
        add_user(&app, "bea.officer", Role::DistrictOfficer, "11").await;
        let auditor = session(&app, "ada.auditor").await;
        let html = get_en(&app, "/", &auditor).await.text().await.unwrap();
        assert!(html.contains(">ada.auditor</a>"), "{html}");
        assert!(html.contains("action=\"/logout\""));
        assert!(html.contains("href=\"/audit\""));
        assert!(!html.contains("href=\"/login"));
        // The sign-out form carries the session's CSRF token, which logout accepts.
        let csrf = hidden(&html, "csrf_token");
        let res = app
            .client
            .post(app.url("/logout"))
            .header("cookie", &auditor)
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&res), "/login?signed_out=1");

        let officer = session(&app, "bea.officer").await;
        let html = get_en(&app, "/areas", &officer).await.text().await.unwrap();
        assert!(html.contains(">bea.officer</a>"), "{html}");
        assert!(
            !html.contains("href=\"/audit\""),
            "officers may not read the audit log"
        );

        // The sign-in page is in the shared layout, in the asked language.
        let html = get_en(&app, "/login?lang=fr", "")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("<html lang=\"fr\">") && html.contains("Connexion"));
        assert!(html.contains("class=\"site-header\""));
        app.stop().await;
    }
}
