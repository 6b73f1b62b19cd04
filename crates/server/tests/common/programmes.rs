//! Helpers for the programme tests: an API client with a purpose, households registered
//! through the API, and a worker run until the queue is empty.
#![allow(clippy::unwrap_used, dead_code)]

use std::time::Duration;

use inkingi_domain::identity::Role;
use inkingi_domain::jobs::RetryPolicy;
use inkingi_interop::worker::{run_with, Registry, WorkerSettings};
use inkingi_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub const VILLAGE: &str = "11010102";

pub struct Client<'a> {
    pub app: &'a TestApp,
    pub token: String,
    pub purpose: &'static str,
}

impl Client<'_> {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
            .header("x-purpose-of-use", self.purpose);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    /// A raw request: status and body text.
    pub async fn text(&self, method: Method, path: &str, body: Option<String>) -> (u16, String) {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
            .header("x-purpose-of-use", self.purpose);
        if let Some(b) = body {
            req = req.header("content-type", "text/csv").body(b);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
}

/// Registers a household of `members` adults (the first the head) aged 30, with `rooms`, as
/// `officer` (a user who may write in [`VILLAGE`]).
pub async fn household(
    app: &TestApp,
    officer: &str,
    members: usize,
    rooms: u32,
) -> (String, Vec<String>) {
    let t = super::token(app, officer, &["write"]).await;
    let people: Vec<Value> = (0..members)
        .map(|i| {
            json!({"given_name": format!("Member{i}"), "family_name": "Uwase", "sex": "F",
                   "birth_date": "1995-01-01", "role": if i == 0 { "head" } else { "other_relative" }})
        })
        .collect();
    let body = json!({
        "village": VILLAGE,
        "answers": {"tenure": "owner", "wall": "mud_bricks", "roof": "grass_or_leaves",
            "floor": "earth", "rooms": rooms, "water_source": "public_tap",
            "toilet": "pit_latrine_slab", "lighting": "solar", "cooking_fuel": "firewood",
            "owns_land": false, "owns_livestock": false, "income_sources": ["farming"],
            "meals_per_day": 1},
        "members": people,
        "reason": "registration"
    });
    let res = app
        .client
        .post(app.url("/api/v1/households"))
        .bearer_auth(&t)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let h: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{h}");
    let ids = h["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    (h["id"].as_str().unwrap().to_string(), ids)
}

/// Adds an adult member to a household, as `officer`.
pub async fn add_member(app: &TestApp, officer: &str, household: &str, name: &str) {
    let t = super::token(app, officer, &["write"]).await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/households/{household}/members")))
        .bearer_auth(&t)
        .json(
            &json!({"given_name": name, "family_name": "Uwase", "sex": "M",
            "birth_date": "1990-05-01", "role": "other_relative"}),
        )
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_eq!(status, 201, "{}", res.text().await.unwrap());
}

/// Runs the worker until no job is queued or running.
pub async fn drain_jobs(app: &TestApp) {
    drain_jobs_with(app, Registry::with_builtins()).await
}

/// Runs the worker with `handlers` (and the child services one) until no job is queued or
/// running.
pub async fn drain_jobs_with(app: &TestApp, handlers: Registry) {
    let handlers = handlers.register(inkingi_server::children::status::ServicesHandler);
    let shutdown = CancellationToken::new();
    let settings = WorkerSettings {
        concurrency: 2,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        },
        retain_succeeded: None,
    };
    let worker = tokio::spawn(run_with(
        app.store.clone(),
        settings,
        handlers,
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats = app.store.jobs().stats().await.unwrap();
        let busy = stats
            .counts
            .iter()
            .any(|c| matches!(c.status.as_str(), "queued" | "running"));
        if !busy {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs still pending: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    shutdown.cancel();
    let _ = worker.await;
    let dead = app
        .store
        .jobs()
        .list(&inkingi_store::jobs::JobFilter {
            status: Some(inkingi_domain::jobs::JobStatus::Dead),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(dead.is_empty(), "dead jobs: {dead:?}");
}

pub async fn client<'a>(app: &'a TestApp, user: &str, role: Role, scope: &str) -> Client<'a> {
    super::add_user(app, user, role, scope).await;
    Client {
        app,
        token: super::token(app, user, &["read", "write"]).await,
        purpose: "programme-administration",
    }
}

/// A household programme paying `1000 + 500 × size`, at most 3000, to every household.
pub fn cash_programme(code: &str, rule: &str) -> Value {
    json!({
        "code": code, "name": format!("Programme {code}"), "agency": "loda",
        "target": "household", "eligibility": rule,
        "benefit": {"type": "per_member", "base": 1000, "per_member": 500, "cap": 3000},
        "frequency": "monthly"
    })
}

pub async fn setup_programme(app: &TestApp, pm: &Client<'_>, code: &str, rule: &str) {
    let catalogue = inkingi_domain::programmes::Catalogue::rw_illustrative().unwrap();
    inkingi_store::programmes::load_catalogue(&app.store, &catalogue, "test")
        .await
        .unwrap();
    let (s, p) = pm
        .post("/api/v1/programmes", cash_programme(code, rule))
        .await;
    assert_eq!(s, 201, "{p}");
}

pub async fn enrol(pm: &Client<'_>, code: &str, hh: &str) -> Value {
    let (s, e) = pm
        .post(
            &format!("/api/v1/programmes/{code}/enrolments"),
            json!({"household": hh}),
        )
        .await;
    assert_eq!(s, 201, "{e}");
    assert_eq!(e["status"], "enrolled", "{e}");
    e
}
