//! Sign-in cost: argon2id hash and verify with the default parameters, and a whole sign-in
//! over HTTP (form, CSRF cookie, password check, session row, audit entry) on each backend.
//!
//! `cargo bench -p inkingi-server --bench login` (set INKINGI_TEST_DATABASE_URL to include
//! PostgreSQL). Prints one line per measurement; record them in docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use inkingi_domain::identity::{AreaScope, Role, Username};
use inkingi_server::auth::service::{self, Actor};
use inkingi_server::auth::{Argon2Settings, Passwords, RateLimit};
use inkingi_server::ServerSettings;
use inkingi_testkit::{databases, TestApp};
use secrecy::SecretString;

const ROUNDS: usize = 30;

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "{label}: median {:.1} ms, mean {:.1} ms, p90 {:.1} ms ({} runs)",
        times[times.len() / 2].as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        times[times.len() * 9 / 10].as_secs_f64() * 1e3,
        times.len()
    );
}

fn argon2() {
    let s = Argon2Settings::default();
    let p = Passwords::new(s).unwrap();
    let pw = SecretString::from("a long enough password");
    let hash = p.hash(&pw).unwrap();
    let mut hashing = Vec::new();
    let mut verifying = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        p.hash(&pw).unwrap();
        hashing.push(t.elapsed());
        let t = Instant::now();
        assert!(p.verify(&pw, &hash));
        verifying.push(t.elapsed());
    }
    let params = format!(
        "m={} KiB, t={}, p={}",
        s.memory_kib, s.iterations, s.parallelism
    );
    summary(&format!("argon2id hash ({params})"), hashing);
    summary(&format!("argon2id verify ({params})"), verifying);
}

async fn http_sign_in() {
    for db in databases().await {
        let mut settings = ServerSettings::default();
        settings.auth.login_rate = RateLimit {
            per_minute: 100_000,
            burst: 100_000,
        };
        let app = TestApp::start_with(&db, settings).await;
        service::create_user(
            &app.store,
            &Passwords::new(Argon2Settings::default()).unwrap(),
            &Actor::cli(),
            Username::parse("bench.user").unwrap(),
            Role::Auditor,
            AreaScope::national(),
            Some(SecretString::from("a long enough password")),
        )
        .await
        .unwrap();
        let mut times = Vec::new();
        for _ in 0..ROUNDS {
            let page = app.get("/login").await;
            let cookie = page.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            let html = page.text().await.unwrap();
            let marker = "name=\"csrf_token\" value=\"";
            let start = html.find(marker).unwrap() + marker.len();
            let csrf = html[start..].split('"').next().unwrap().to_string();
            let t = Instant::now();
            let res = app
                .client
                .post(app.url("/login"))
                .header("cookie", cookie)
                .form(&[
                    ("username", "bench.user"),
                    ("password", "a long enough password"),
                    ("csrf_token", &csrf),
                ])
                .send()
                .await
                .unwrap();
            times.push(t.elapsed());
            assert_eq!(res.status(), 303);
        }
        summary(&format!("HTTP sign-in, {:?}", db), times);
        app.stop().await;
    }
}

fn main() {
    argon2();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(http_sign_in());
}
