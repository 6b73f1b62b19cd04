//! Helpers for the identity tests: users, tokens and sessions made through the real code.
#![allow(clippy::unwrap_used, dead_code)]

use inkingi_domain::areas::AreaCode;
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::{AreaScope, Role, TokenScope, Username};
use inkingi_server::auth::service::{self, Actor};
use inkingi_server::auth::{Argon2Settings, Passwords};
use inkingi_testkit::TestApp;
use secrecy::{ExposeSecret, SecretString};

pub mod children;
pub mod programmes;

pub const PASSWORD: &str = "a long enough password";

pub fn passwords() -> Passwords {
    Passwords::new(Argon2Settings::default()).unwrap()
}

pub async fn add_user(app: &TestApp, name: &str, role: Role, scope: &str) {
    service::create_user(
        &app.store,
        &passwords(),
        &Actor::cli(),
        Username::parse(name).unwrap(),
        role,
        AreaScope::parse(scope).unwrap(),
        Some(SecretString::from(PASSWORD)),
    )
    .await
    .unwrap();
}

pub async fn token(app: &TestApp, user: &str, scopes: &[&str]) -> String {
    token_with(app, user, scopes, None).await
}

pub async fn token_with(
    app: &TestApp,
    user: &str,
    scopes: &[&str],
    expires_in: Option<chrono::Duration>,
) -> String {
    let scopes: Vec<TokenScope> = scopes.iter().map(|s| s.parse().unwrap()).collect();
    let (_, t) = service::create_token(
        &app.store,
        &Actor::cli(),
        &Username::parse(user).unwrap(),
        scopes,
        None,
        expires_in,
    )
    .await
    .unwrap();
    t.expose_secret().to_string()
}

/// Entries about a person in `area`, as a registry read would write them.
pub async fn seed_reads(app: &TestApp, area: &str, subject: &str, n: usize) {
    let records = (0..n)
        .map(|_| {
            let mut r = AuditRecord::new("someone", "person.read", "person");
            r.subject_id = Some(subject.to_string());
            r.area = Some(AreaCode::parse(area).unwrap());
            r.purpose = Some("registration".into());
            r
        })
        .collect();
    app.store.audit().append(records).await.unwrap();
}

/// `name=value` of the Set-Cookie headers named `name`.
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.to_string())
}

pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

pub struct LoginForm {
    pub cookie: String,
    pub csrf: String,
}

pub const LOGIN_COOKIE: &str = "__Host-inkingi_login";
pub const SESSION_COOKIE: &str = "__Host-inkingi_session";

pub async fn login_form(app: &TestApp) -> LoginForm {
    let res = app.get("/login").await;
    assert_eq!(res.status(), 200);
    let cookie = cookie_pair(&set_cookie(&res, LOGIN_COOKIE).unwrap());
    let html = res.text().await.unwrap();
    LoginForm {
        cookie,
        csrf: hidden(&html, "csrf_token"),
    }
}

pub async fn post_login(
    app: &TestApp,
    user: &str,
    password: &str,
    next: &str,
) -> reqwest::Response {
    let f = login_form(app).await;
    app.client
        .post(app.url("/login"))
        .header("cookie", &f.cookie)
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf_token", &f.csrf),
            ("next", next),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in and returns the `Cookie` header value of the session.
pub async fn session(app: &TestApp, user: &str) -> String {
    let res = post_login(app, user, PASSWORD, "/audit").await;
    assert_eq!(
        res.status(),
        303,
        "{}",
        res.text().await.unwrap_or_default()
    );
    cookie_pair(&set_cookie(&res, SESSION_COOKIE).unwrap())
}

pub async fn get_with(app: &TestApp, path: &str, header: (&str, &str)) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header(header.0, header.1)
        .send()
        .await
        .unwrap()
}

pub async fn bearer(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    get_with(app, path, ("authorization", &format!("Bearer {token}"))).await
}

/// Asserts a problem+json response with this status; returns the body.
pub async fn problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    let got = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert!(ct.starts_with("application/problem+json"), "{ct}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// An API caller with a bearer token, reading personal data for `registration`.
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl Client<'_> {
    /// Sends a request and asserts its status; the body as JSON (`Null` when it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        status: u16,
    ) -> serde_json::Value {
        let mut req = self
            .app
            .client
            .request(method.clone(), self.app.url(path))
            .bearer_auth(&self.token)
            .header("x-purpose-of-use", "registration");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(
            got,
            status,
            "[{}] {method} {path} -> {got}: {text}",
            self.app.kind.as_str()
        );
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    pub async fn get(&self, path: &str, status: u16) -> serde_json::Value {
        self.call(reqwest::Method::GET, path, None, status).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
        status: u16,
    ) -> serde_json::Value {
        self.call(reqwest::Method::POST, path, Some(body), status)
            .await
    }

    /// Decides a change request (`approve` or `reject`).
    pub async fn decide(&self, id: &str, decision: &str, status: u16) -> serde_json::Value {
        let path = format!("/api/v1/change-requests/{id}/decision");
        let body = serde_json::json!({ "decision": decision });
        self.call(reqwest::Method::POST, &path, Some(body), status)
            .await
    }
}
