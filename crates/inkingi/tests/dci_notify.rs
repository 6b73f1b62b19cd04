//! The bounded delivery test: 1,000 registry events notified to a simulated subscriber that
//! fails 30 % of deliveries, loses some acknowledgements and has a 10 s outage, while the real
//! `inkingi serve` process is killed (SIGKILL) midway and started again. Every event must be
//! taken exactly once in effect, each household's events in order.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{AreaScope, Role, TokenScope, Username};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, PersonInput, RegistryNumber, Sex,
};
use inkingi_interop::simulate::subscriber::{FaultPlan, Stats, Subscriber};
use inkingi_server::auth::service::{self, Actor};
use inkingi_server::auth::{Argon2Settings, Passwords};
use inkingi_store::dci_notify::NotificationStatus;
use inkingi_store::registry::{EventMeta, HouseholdChange, NewHousehold, NewMember};
use inkingi_store::{Store, StoreResult};
use inkingi_testkit::{databases, TestDb};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_inkingi");
const HOUSEHOLDS: usize = 100;
/// One registration and nine updates per household.
const EVENTS_EACH: usize = 10;

/// `inkingi serve` on `db` with short backoffs, a short lease (a killed worker's jobs come back
/// after 2 s) and a breaker that probes every second.
async fn serve(db: &TestDb, log: &Path) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("INKINGI_") {
            cmd.env_remove(key);
        }
    }
    cmd.args([
        "--database-url",
        &db.url,
        "serve",
        "--listen",
        "127.0.0.1:0",
    ])
    .env("INKINGI_LOG_LEVEL", "warn")
    .env("INKINGI_WORKER__CONCURRENCY", "8")
    .env("INKINGI_WORKER__POLL_INTERVAL_MS", "50")
    .env("INKINGI_WORKER__RETRY_BASE_MS", "50")
    .env("INKINGI_WORKER__RETRY_CAP_SECS", "1")
    .env("INKINGI_WORKER__LEASE_SECS", "2")
    .env("INKINGI_DCI__NOTIFY_POLL_MS", "100")
    .env("INKINGI_DCI__BREAKER_FAILURES", "5")
    .env("INKINGI_DCI__BREAKER_OPEN_MS", "1000")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(File::options().create(true).append(true).open(log).unwrap())
    .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    let url = match first {
        Ok(Ok(Some(line))) if line.starts_with("inkingi listening on ") => {
            line["inkingi listening on ".len()..].to_string()
        }
        other => panic!(
            "serve did not start: {other:?}\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        ),
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

async fn subscriber_token(store: &Store) -> String {
    let passwords = Passwords::new(Argon2Settings::default()).unwrap();
    let name = Username::parse("mis.subscriber").unwrap();
    service::create_user(
        store,
        &passwords,
        &Actor::cli(),
        name.clone(),
        Role::DistrictOfficer,
        AreaScope::parse("11").unwrap(),
        Some(SecretString::from("a long enough password")),
    )
    .await
    .unwrap();
    let scopes = vec![
        TokenScope::Read,
        "purpose:registration".parse::<TokenScope>().unwrap(),
    ];
    let (_, token) = service::create_token(store, &Actor::cli(), &name, scopes, None, None)
        .await
        .unwrap();
    token.expose_secret().to_string()
}

fn meta() -> EventMeta {
    EventMeta {
        actor: "registrar".into(),
        channel: Channel::Api,
        reason: None,
        change_request_id: None,
        at: Utc::now(),
    }
}

/// Retries a registry write the other process's writer held up (SQLite: one writer per file).
async fn retrying<F, Fut>(mut write: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<()>>,
{
    for attempt in 1..=50 {
        match write().await {
            Ok(()) => return,
            Err(e) if attempt < 50 => {
                eprintln!("write attempt {attempt} failed, again: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("registry write failed: {e}"),
        }
    }
}

async fn register(store: &Store, form: &(String, u32)) -> Uuid {
    let id = Uuid::now_v7();
    let head = NewMember {
        id: Uuid::now_v7(),
        person: PersonInput {
            given_name: Name::parse("Aline").unwrap(),
            family_name: Name::parse("Uwase").unwrap(),
            sex: Sex::Female,
            birth_date: Some(BirthDate::parse("1988-06-01").unwrap()),
            national_id: None,
            birth_registration: None,
            refugee_id: None,
            passport: None,
            phones: Vec::new(),
            answers: Default::default(),
        },
        role: MemberRole::Head,
        since: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        mother_id: None,
        father_id: None,
        guardian_id: None,
        source_key: None,
    };
    let new = NewHousehold {
        id,
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input: HouseholdInput {
            village: AreaCode::parse("11010102").unwrap(),
            address: Some("0".into()),
            gps: None,
            answers: Default::default(),
        },
        form_id: form.0.clone(),
        form_version: form.1,
        source_key: None,
        members: vec![head],
    };
    retrying(|| {
        let new = &new;
        async move {
            let mut uow = store.begin().await?;
            store
                .registry()
                .register_household(&mut uow, new, &meta())
                .await?;
            uow.commit().await
        }
    })
    .await;
    id
}

async fn update(store: &Store, id: Uuid, round: usize) {
    retrying(|| async move {
        let reg = store.registry();
        let scope = AreaScope::national();
        let h = reg.household(&scope, id).await?.unwrap();
        let change = HouseholdChange {
            input: HouseholdInput {
                village: h.village.clone(),
                address: Some(round.to_string()),
                gps: None,
                answers: h.answers.clone(),
            },
            form_version: h.form_version,
        };
        let mut uow = store.begin().await?;
        reg.update_household(&mut uow, &scope, id, h.version, &change, &meta())
            .await?;
        uow.commit().await
    })
    .await;
}

async fn subscribe(url: &str, token: &str, sim: &Subscriber) {
    let body = json!({
        "signature": "",
        "header": {"version": "1.0.0", "message_id": Uuid::now_v7().to_string(),
            "message_ts": Utc::now().to_rfc3339(), "action": "subscribe", "sender_id": "sp-mis",
            "sender_uri": sim.sender_uri(), "receiver_id": "inkingi", "total_count": 1,
            "is_msg_encrypted": false},
        "message": {"transaction_id": "T-1", "subscribe_request": [{
            "reference_id": "r1", "timestamp": Utc::now().to_rfc3339(),
            "subscribe_criteria": {"reg_event_type": ["household_registered", "household_updated"],
                "filter": {}, "notify_record_type": "Group"}}]}
    });
    let res = reqwest::Client::new()
        .post(format!("{url}/dci/registry/subscribe"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202, "{}", res.text().await.unwrap());
}

/// Waits until `done` holds for the simulator's counters, at most `limit`.
async fn until(sim: &Subscriber, limit: Duration, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + limit;
    loop {
        let s = sim.stats();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_thousand_events_survive_faults_an_outage_and_a_killed_server() {
    for db in databases().await {
        let started = Instant::now();
        let store = db.store().await;
        let token = subscriber_token(&store).await;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let total = (HOUSEHOLDS * EVENTS_EACH) as u64;
        let plan = FaultPlan {
            seed: 2026,
            fail_share: 0.3,
            outage_after: Some(150),
            outage: Duration::from_secs(10),
            latency: Duration::ZERO,
            lost_ack_share: 0.02,
        };
        let sim = Subscriber::start("127.0.0.1:0".parse().unwrap(), plan)
            .await
            .unwrap();
        let (mut server, url) = serve(&db, &log).await;
        subscribe(&url, &token, &sim).await;
        let on_subscribe = until(&sim, Duration::from_secs(20), |s| s.callbacks > 0).await;
        assert_eq!(on_subscribe.callbacks, 1, "no on-subscribe answer");

        // The registry changes: every household registered, then updated round by round.
        let form = store.registry().latest_form("default").await.unwrap();
        let form = form
            .map(|f| (f.schema.id.clone(), f.schema.version))
            .unwrap_or(("default".into(), 1));
        let mut ids = Vec::with_capacity(HOUSEHOLDS);
        for _ in 0..HOUSEHOLDS {
            ids.push(register(&store, &form).await);
        }
        for round in 1..EVENTS_EACH {
            for id in &ids {
                update(&store, *id, round).await;
            }
        }

        // Kill the server (no graceful stop) once a good part is delivered, start it again.
        let before_kill = until(&sim, Duration::from_secs(40), |s| s.effects >= total / 2).await;
        server.start_kill().unwrap();
        server.wait().await.unwrap();
        let (mut server, _url) = serve(&db, &log).await;

        let stats = until(&sim, Duration::from_secs(60), |s| s.effects >= total).await;
        let counts = store.dci_notify().notification_counts().await.unwrap();
        let delivered = counts
            .iter()
            .find(|(s, _)| *s == NotificationStatus::Delivered)
            .map_or(0, |(_, n)| *n);
        eprintln!(
            "[{db:?}] {:.1} s; before the kill: {before_kill:?}; at the end: {stats:?}; \
             notifications: {counts:?}",
            started.elapsed().as_secs_f64()
        );
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(before_kill.effects < total, "the kill came after the end");
        assert_eq!(stats.effects, total, "[{db:?}] lost events\n{}", log_text());
        assert_eq!(
            stats.out_of_order, 0,
            "[{db:?}] a household's events out of order"
        );
        assert!(
            stats.injected_failures > 0 && stats.outage_refusals > 0,
            "{stats:?}"
        );
        // Each event was recorded delivered once the worker learned so (a repeat delivered
        // after the kill is a duplicate the subscriber dropped, not a second effect).
        let settled = Instant::now() + Duration::from_secs(10);
        let mut delivered = delivered;
        while delivered < total && Instant::now() < settled {
            tokio::time::sleep(Duration::from_millis(100)).await;
            delivered = store
                .dci_notify()
                .notification_counts()
                .await
                .unwrap()
                .iter()
                .find(|(s, _)| *s == NotificationStatus::Delivered)
                .map_or(0, |(_, n)| *n);
        }
        assert_eq!(delivered, total, "[{db:?}]\n{}", log_text());
        server.start_kill().unwrap();
        server.wait().await.unwrap();
        sim.stop();
    }
}
