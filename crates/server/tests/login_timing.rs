//! An unknown username costs as much as a wrong password: both verify one argon2 hash of the
//! same cost. Alone in its file so no other test competes for the CPU while it measures; the
//! bound is loose (a factor of two) because it guards against a skipped hash (a factor of
//! tens), not against noise.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use inkingi_domain::identity::Role;
use inkingi_testkit::{databases, TestApp};

async fn median_attempt(app: &TestApp, user: &str) -> Duration {
    let mut times = Vec::new();
    for _ in 0..7 {
        let f = login_form(app).await;
        let started = Instant::now();
        let res = app
            .client
            .post(app.url("/login"))
            .header("cookie", &f.cookie)
            .form(&[
                ("username", user),
                ("password", "not the password"),
                ("csrf_token", &f.csrf),
            ])
            .send()
            .await
            .unwrap();
        times.push(started.elapsed());
        assert_eq!(res.status(), 401);
    }
    times.sort();
    times[3]
}

#[tokio::test]
async fn unknown_users_take_as_long_as_wrong_passwords() {
    for db in databases().await {
        let mut settings = inkingi_server::ServerSettings::default();
        settings.auth.lockout_threshold = 1000;
        settings.auth.login_rate = inkingi_server::auth::RateLimit {
            per_minute: 1000,
            burst: 1000,
        };
        let app = TestApp::start_with(&db, settings).await;
        add_user(&app, "gus.officer", Role::DistrictOfficer, "11").await;
        // Warm up connections and caches.
        median_attempt(&app, "gus.officer").await;
        let wrong = median_attempt(&app, "gus.officer").await;
        let unknown = median_attempt(&app, "nobody.known").await;
        let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "[{db:?}] unknown user {unknown:?} vs wrong password {wrong:?}"
        );
        app.stop().await;
    }
}
