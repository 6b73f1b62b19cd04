//! Authenticated read throughput with read auditing on and off: concurrent clients call
//! `GET /api/v1/audit?limit=1` with an API token over loopback for a fixed time. With auditing
//! on, every call also appends one hash-chained entry.
//!
//! `cargo bench -p inkingi-server --bench audit_throughput` (set INKINGI_TEST_DATABASE_URL to
//! include PostgreSQL; INKINGI_BENCH_SECONDS and INKINGI_BENCH_CLIENTS change the run).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inkingi_domain::identity::{AreaScope, Role, TokenScope, Username};
use inkingi_server::auth::service::{self, Actor};
use inkingi_server::auth::{Argon2Settings, Passwords};
use inkingi_server::ServerSettings;
use inkingi_testkit::{databases, TestApp, TestDb};
use secrecy::{ExposeSecret, SecretString};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(db: &TestDb, audit_reads: bool, clients: u64, secs: u64) -> f64 {
    let mut settings = ServerSettings::default();
    settings.auth.audit_reads = audit_reads;
    let app = TestApp::start_with(db, settings).await;
    let name = Username::parse("bench.auditor").unwrap();
    if app
        .store
        .identity()
        .user_by_name(&name)
        .await
        .unwrap()
        .is_none()
    {
        service::create_user(
            &app.store,
            &Passwords::new(Argon2Settings::default()).unwrap(),
            &Actor::cli(),
            name.clone(),
            Role::Auditor,
            AreaScope::national(),
            Some(SecretString::from("a long enough password")),
        )
        .await
        .unwrap();
    }
    let (_, token) = service::create_token(
        &app.store,
        &Actor::cli(),
        &name,
        vec![TokenScope::Audit],
        None,
        None,
    )
    .await
    .unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let url = app.url("/api/v1/audit?limit=1");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, auth, done) =
            (app.client.clone(), url.clone(), auth.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let res = client
                    .get(&url)
                    .header("authorization", &auth)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    app.stop().await;
    rate
}

fn main() {
    let secs = env_or("INKINGI_BENCH_SECONDS", 10);
    let clients = env_or("INKINGI_BENCH_CLIENTS", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for db in databases().await {
            let off = run(&db, false, clients, secs).await;
            let on = run(&db, true, clients, secs).await;
            println!(
                "{db:?}: {clients} clients, {secs} s each: audit off {off:.0} req/s, audit on {on:.0} req/s ({:.0}% of off)",
                on / off * 100.0
            );
        }
    });
}
