//! DCI event subscriptions over real HTTP on every backend: subscribe, notifications of
//! registry events delivered by the worker to a live subscriber within the subscriber's area
//! scope and audited, subscription status, unsubscribe, and refusals with the spec's codes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

/// The two tests run one after the other. On PostgreSQL the dispatcher reads events only below
/// the oldest transaction still running in the whole cluster, so one test's busy worker holds
/// back the other's notifications (in another database) and their waits would time out.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use chrono::{NaiveDate, Utc};
use common::*;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::jobs::RetryPolicy;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, PersonInput, RegistryNumber, Sex,
};
use inkingi_interop::dci::notify::{dispatch_once, DispatchSettings};
use inkingi_interop::simulate::subscriber::{FaultPlan, Subscriber};
use inkingi_interop::worker::{run_with, Registry, WorkerSettings};
use inkingi_store::audit::AuditQuery;
use inkingi_store::registry::{EventMeta, HouseholdChange, NewHousehold, NewMember};
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn person(given: &str, sex: Sex, born: &str) -> PersonInput {
    PersonInput {
        given_name: Name::parse(given).unwrap(),
        family_name: Name::parse("Mukamana").unwrap(),
        sex,
        birth_date: Some(BirthDate::parse(born).unwrap()),
        national_id: None,
        birth_registration: None,
        refugee_id: None,
        passport: None,
        phones: Vec::new(),
        answers: Default::default(),
    }
}

fn member(p: PersonInput, role: MemberRole, since: NaiveDate) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: p,
        role,
        since,
        mother_id: None,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

fn meta() -> EventMeta {
    EventMeta {
        actor: "test".into(),
        channel: Channel::Api,
        reason: None,
        change_request_id: None,
        at: Utc::now(),
    }
}

async fn household(app: &TestApp, village: &str) -> Uuid {
    let form = app.store.registry().latest_form("default").await.unwrap();
    let (form_id, form_version) = form
        .map(|f| (f.schema.id.clone(), f.schema.version))
        .unwrap_or(("default".into(), 1));
    let new = NewHousehold {
        id: Uuid::now_v7(),
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input: HouseholdInput {
            village: AreaCode::parse(village).unwrap(),
            address: Some("KG 7 Ave".into()),
            gps: None,
            answers: Default::default(),
        },
        form_id,
        form_version,
        source_key: None,
        members: vec![member(
            person("Alice", Sex::Female, "1990-04-02"),
            MemberRole::Head,
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        )],
    };
    let mut uow = app.store.begin().await.unwrap();
    app.store
        .registry()
        .register_household(&mut uow, &new, &meta())
        .await
        .unwrap();
    uow.commit().await.unwrap();
    new.id
}

async fn update_address(app: &TestApp, id: Uuid, address: &str) {
    let reg = app.store.registry();
    let h = reg
        .household(&AreaScope::national(), id)
        .await
        .unwrap()
        .unwrap();
    let change = HouseholdChange {
        input: HouseholdInput {
            village: h.village.clone(),
            address: Some(address.into()),
            gps: None,
            answers: h.answers.clone(),
        },
        form_version: h.form_version,
    };
    let mut uow = app.store.begin().await.unwrap();
    reg.update_household(
        &mut uow,
        &AreaScope::national(),
        id,
        h.version,
        &change,
        &meta(),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
}

async fn birth(app: &TestApp, household: Uuid) -> Uuid {
    let born = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
    let m = member(
        person("Keza", Sex::Female, "2026-02-03"),
        MemberRole::Child,
        born,
    );
    let mut uow = app.store.begin().await.unwrap();
    app.store
        .registry()
        .add_member(&mut uow, &AreaScope::national(), household, &m, &meta())
        .await
        .unwrap();
    uow.commit().await.unwrap();
    m.id
}

fn envelope(action: &str, count: usize, sender_uri: &str, message: Value) -> Value {
    json!({
        "signature": "",
        "header": {
            "version": "1.0.0",
            "message_id": Uuid::now_v7().to_string(),
            "message_ts": Utc::now().to_rfc3339(),
            "action": action,
            "sender_id": "sp-mis",
            "sender_uri": sender_uri,
            "receiver_id": "inkingi",
            "total_count": count.to_string(),
            "is_msg_encrypted": false,
            "meta": ""
        },
        "message": message
    })
}

fn subscribe_request(reference: &str, types: Value, filter: Value) -> Value {
    json!({
        "reference_id": reference,
        "timestamp": Utc::now().to_rfc3339(),
        "subscribe_criteria": {
            "version": "1.0.0",
            "reg_type": "ns:org:RegistryType:Social",
            "reg_event_type": types,
            "filter_type": "predicate",
            "filter": filter,
            "notify_record_type": "Group"
        },
        "locale": "eng"
    })
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(v) = check() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn start_worker(
    app: &TestApp,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    // A run of failures may open the circuit: keep it open for a moment, not the default
    // half-minute, so the test waits out an open circuit like production does, only faster.
    inkingi_interop::breaker::Breakers::global().configure(
        inkingi_interop::breaker::BreakerSettings {
            failure_threshold: 5,
            open_for: Duration::from_millis(200),
        },
    );
    let stop = CancellationToken::new();
    let settings = WorkerSettings {
        concurrency: 4,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        },
        retain_succeeded: None,
    };
    let handle = tokio::spawn(run_with(
        app.store.clone(),
        settings,
        Registry::with_builtins(),
        stop.clone(),
    ));
    (stop, handle)
}

#[tokio::test]
async fn subscribers_get_their_areas_events_in_order_and_can_unsubscribe() {
    let _serial = SERIAL.lock().await;
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "mis.sub", Role::DistrictOfficer, "11").await;
        let token = token(&app, "mis.sub", &["read", "purpose:registration"]).await;
        let sim = Subscriber::start("127.0.0.1:0".parse().unwrap(), FaultPlan::default())
            .await
            .unwrap();
        let (stop, worker) = start_worker(&app);
        let dispatch = DispatchSettings::default();

        // One subscription that takes, another refused for an unknown event type, a third for
        // an area outside the subscriber's scope.
        let area = |code: &str| {
            json!([{"seq_num": 1, "expression1": {"attribute_name": "village", "operator": "eq",
                    "attribute_value": code}}])
        };
        let all = json!([
            "household_registered",
            "household_updated",
            "member_added",
            "spdci-common:RegistryEventType:LiveBirth",
            "member_removed"
        ]);
        let message = json!({"transaction_id": "T-9", "subscribe_request": [
            subscribe_request("s1", all, area("11")),
            subscribe_request("s2", json!("marriage"), json!({})),
            subscribe_request("s3", json!("death"), area("12")),
        ]});
        let env = envelope("subscribe", 3, &sim.sender_uri(), message);
        let (status, ack) = post(&app, "/dci/registry/subscribe", &token, &env).await;
        assert_eq!(status, 202, "[{db:?}] {ack}");
        assert_eq!(ack["message"]["ack_status"], "ACK");
        let answer = wait_for("on-subscribe", || sim.callbacks().first().cloned()).await;
        assert_eq!(answer["header"]["action"], "on-subscribe", "{answer}");
        let items = answer["message"]["subscribe_response"].as_array().unwrap();
        assert_eq!(items[0]["status"], "succ", "{answer}");
        assert_eq!(items[1]["status_reason_code"], "rjct.notify_types.invalid");
        assert_eq!(
            items[2]["status_reason_code"],
            "rjct.notify_details.invalid"
        );
        let code = items[0]["subscriptions"][0]["code"]
            .as_str()
            .unwrap()
            .to_string();
        // A replayed subscribe message is refused and stores nothing.
        let (status, nack) = post(&app, "/dci/registry/subscribe", &token, &env).await;
        assert_eq!(status, 422, "{nack}");
        assert!(nack["message"]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("rjct.message_id.duplicate"));

        // Events: in scope (district 11) and out of scope (district 12).
        let mine = household(&app, "11010102").await;
        let theirs = household(&app, "12010101").await;
        update_address(&app, mine, "KG 8 Ave").await;
        update_address(&app, theirs, "KK 1 Rd").await;
        birth(&app, mine).await;
        update_address(&app, mine, "KG 9 Ave").await;
        while dispatch_once(&app.store, &dispatch).await.unwrap() > 0 {}
        for _ in 0..200 {
            if sim.stats().effects >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let stats = sim.stats();
        if stats.effects < 4 {
            let jobs = app.store.jobs().list(&Default::default()).await.unwrap();
            for j in jobs {
                eprintln!(
                    "JOB {} {} {} att {} err {:?} run_at {}",
                    j.kind, j.status, j.queue, j.attempts, j.last_error, j.run_at
                );
            }
            eprintln!(
                "COUNTS {:?}",
                app.store.dci_notify().notification_counts().await.unwrap()
            );
        }
        assert_eq!(
            (stats.effects, stats.duplicates, stats.out_of_order),
            (4, 0, 0),
            "[{db:?}] {stats:?}"
        );
        // Exactly the subscriber's household, in the order of its events.
        let store = app.store.dci_notify();
        let mut counts = Vec::new();
        for _ in 0..200 {
            // The worker records a delivery just after the subscriber answers.
            counts = store.notification_counts().await.unwrap();
            if counts.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(counts.len(), 1, "[{db:?}] {counts:?}");
        assert_eq!(counts[0].1, 4);
        let events = app
            .store
            .registry()
            .events(&AreaScope::national(), mine, None)
            .await
            .unwrap();
        let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(sim.taken(), ids[..4].to_vec(), "[{db:?}]");

        // The disclosure is audited as the subscriber's read, with its purpose.
        let audit = app
            .store
            .audit()
            .query(
                &AreaScope::national(),
                &AuditQuery {
                    actor: Some("mis.sub".into()),
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let reads: Vec<_> = audit
            .iter()
            .filter(|e| e.record.action == "household.read")
            .collect();
        assert_eq!(reads.len(), 4, "[{db:?}]");
        assert!(reads
            .iter()
            .all(|e| e.record.purpose.as_deref() == Some("registration")
                && e.record.subject_id.as_deref() == Some(mine.to_string().as_str())));

        // Subscription info through txn/status.
        let status_msg = json!({"transaction_id": "T-10", "txnstatus_request": {
            "reference_id": "q1", "txn_type": "subscribe",
            "attribute_type": "subscription_code_list", "attribute_value": [code]}});
        let (status, info) = post(
            &app,
            "/dci/registry/sync/txn/status",
            &token,
            &envelope("txn-status", 1, "", status_msg),
        )
        .await;
        assert_eq!(status, 200, "{info}");
        let sub = &info["message"]["txnstatus_response"]["txn_status"]["subscribe_response"][0]
            ["subscriptions"][0];
        assert_eq!(sub["code"], code.as_str(), "{info}");
        assert_eq!(sub["status"], "subscribe");

        // Unsubscribe; an unknown code is refused alongside.
        let un = json!({"transaction_id": "T-11", "timestamp": Utc::now().to_rfc3339(),
                        "subscription_codes": [code, "nope"]});
        let (status, ack) = post(
            &app,
            "/dci/registry/unsubscribe",
            &token,
            &envelope("unsubscribe", 1, &sim.sender_uri(), un),
        )
        .await;
        assert_eq!(status, 202, "{ack}");
        let answer = wait_for("on-unsubscribe", || {
            sim.callbacks()
                .into_iter()
                .find(|c| c["header"]["action"] == "on-unsubscribe")
        })
        .await;
        let m = &answer["message"];
        assert_eq!(m["status"], "succ", "{answer}");
        assert_eq!(m["subscription_status"][0]["status"], "unsubscribe");
        assert_eq!(m["status_reason_code"], "rjct.subscription_code.invalid");
        update_address(&app, mine, "KG 10 Ave").await;
        while dispatch_once(&app.store, &dispatch).await.unwrap() > 0 {}
        let counts = store.notification_counts().await.unwrap();
        assert_eq!(counts[0].1, 4, "no notification after unsubscribing");

        stop.cancel();
        worker.await.unwrap().unwrap();
        sim.stop();
        app.stop().await;
    }
}

#[tokio::test]
async fn a_failing_subscriber_gets_each_household_in_order_and_nothing_twice_in_effect() {
    let _serial = SERIAL.lock().await;
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "mis.sub", Role::DistrictOfficer, "11").await;
        let token = token(&app, "mis.sub", &["read", "purpose:registration"]).await;
        let plan = FaultPlan {
            seed: 7,
            fail_share: 0.3,
            lost_ack_share: 0.1,
            ..FaultPlan::default()
        };
        let sim = Subscriber::start("127.0.0.1:0".parse().unwrap(), plan)
            .await
            .unwrap();
        let (stop, worker) = start_worker(&app);
        let message = json!({"transaction_id": "T-1", "subscribe_request": [
            subscribe_request("s1", json!(["household_registered", "household_updated"]), json!({}))]});
        let env = envelope("subscribe", 1, &sim.sender_uri(), message);
        let (status, _) = post(&app, "/dci/registry/subscribe", &token, &env).await;
        assert_eq!(status, 202);
        wait_for("on-subscribe", || sim.callbacks().first().cloned()).await;

        let mut households = Vec::new();
        for _ in 0..5 {
            households.push(household(&app, "11010102").await);
        }
        for round in 0..3 {
            for h in &households {
                update_address(&app, *h, &format!("round {round}")).await;
            }
        }
        let dispatch = DispatchSettings {
            batch: 7,
            ..DispatchSettings::default()
        };
        while dispatch_once(&app.store, &dispatch).await.unwrap() > 0 {}
        let stats = wait_for("20 events in effect", || {
            // Waiting notifications are released as their predecessors finish.
            let s = sim.stats();
            (s.effects >= 20).then_some(s)
        })
        .await;
        assert_eq!(
            (stats.effects, stats.out_of_order),
            (20, 0),
            "[{db:?}] {stats:?}"
        );
        assert!(
            stats.injected_failures > 0,
            "the faults were injected: {stats:?}"
        );
        stop.cancel();
        worker.await.unwrap().unwrap();
        sim.stop();
        app.stop().await;
    }
}

/// What a partner's webhook endpoint received: event header, timestamp, signature, body.
type Delivery = (String, String, String, Vec<u8>);

/// A partner's webhook endpoint that refuses its first delivery (503), then keeps everything.
#[derive(Clone, Default)]
struct Hook {
    got: std::sync::Arc<std::sync::Mutex<Vec<Delivery>>>,
    refused_first: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn receive(
    axum::extract::State(h): axum::extract::State<Hook>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    use std::sync::atomic::Ordering;
    if !h.refused_first.swap(true, Ordering::SeqCst) {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    let get = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    h.got.lock().unwrap().push((
        get("x-inkingi-event"),
        get("x-inkingi-timestamp"),
        get("x-inkingi-signature"),
        body.to_vec(),
    ));
    axum::http::StatusCode::NO_CONTENT
}

async fn start_hook() -> (String, Hook) {
    let hook = Hook::default();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, hook)
}

#[tokio::test]
async fn partner_webhooks_get_signed_events_of_their_area_until_deleted() {
    use inkingi_interop::dci::webhook;
    let _serial = SERIAL.lock().await;
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "partner", Role::DistrictOfficer, "11").await;
        let token = token(&app, "partner", &["read", "purpose:registration"]).await;
        let (url, hook) = start_hook().await;

        // Refusals name the field and store nothing.
        let hh = json!(["household_registered"]);
        for (body, field) in [
            (
                json!({"url": "http://partner.example/h", "event_types": hh}),
                "url",
            ),
            (
                json!({"url": url, "event_types": ["marriage"]}),
                "event_types[0]",
            ),
            (
                json!({"url": url, "event_types": hh, "areas": ["12"]}),
                "areas[0]",
            ),
            (
                json!({"url": url, "event_types": hh, "secret": "mine"}),
                "secret",
            ),
        ] {
            let (s, b) = post(&app, "/api/v1/webhooks", &token, &body).await;
            assert_eq!(s, 422, "[{db:?}] {b}");
            assert!(b.to_string().contains(field), "[{db:?}] {field}: {b}");
        }
        let list: Value = bearer(&app, "/api/v1/webhooks", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list, json!([]), "[{db:?}]");

        let body = json!({"url": url, "event_types": ["household_registered", "household_updated"],
                          "areas": ["11"]});
        let (s, created) = post(&app, "/api/v1/webhooks", &token, &body).await;
        assert_eq!(s, 201, "[{db:?}] {created}");
        let secret = created["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        let id = created["id"].as_str().unwrap().to_string();
        let list: Value = bearer(&app, "/api/v1/webhooks", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list[0]["id"], id.as_str(), "[{db:?}] {list}");
        assert!(!list.to_string().contains(&secret), "secret listed: {list}");

        // Two events in district 11 reach the hook, signed and in order (the first attempt
        // is refused and retried); district 12's do not.
        let (stop, worker) = start_worker(&app);
        let dispatch = DispatchSettings::default();
        let mine = household(&app, "11010102").await;
        let theirs = household(&app, "12010101").await;
        update_address(&app, mine, "KG 8 Ave").await;
        update_address(&app, theirs, "KK 1 Rd").await;
        while dispatch_once(&app.store, &dispatch).await.unwrap() > 0 {}
        let got = wait_for("two webhook deliveries", || {
            let g = hook.got.lock().unwrap();
            (g.len() >= 2).then(|| g.clone())
        })
        .await;
        let mut types = Vec::new();
        for (event, ts, sig, body) in &got {
            webhook::verify(&secret, ts, sig, body, Utc::now(), 300).unwrap();
            assert!(webhook::verify("whsec_forged", ts, sig, body, Utc::now(), 300).is_err());
            let v: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["id"].as_str(), Some(event.as_str()), "{v}");
            assert_eq!(v["subject_id"], mine.to_string(), "[{db:?}] {v}");
            assert_eq!(v["webhook"], id.as_str());
            assert!(v["records"][0].is_object(), "{v}");
            types.push(v["type"].as_str().unwrap().to_string());
        }
        assert_eq!(
            types,
            ["household_registered", "household_updated"],
            "[{db:?}]"
        );

        // Deleted: later events are not sent; another user cannot delete it.
        add_user(&app, "other", Role::DistrictOfficer, "11").await;
        let other = common::token(&app, "other", &["read"]).await;
        let path = app.url(&format!("/api/v1/webhooks/{id}"));
        let res = app
            .client
            .delete(&path)
            .bearer_auth(&other)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 404, "[{db:?}]");
        let res = app
            .client
            .delete(&path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204, "[{db:?}]");
        update_address(&app, mine, "KG 9 Ave").await;
        while dispatch_once(&app.store, &dispatch).await.unwrap() > 0 {}
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hook.got.lock().unwrap().len(), 2, "[{db:?}]");
        stop.cancel();
        worker.await.unwrap().unwrap();
        app.stop().await;
    }
}

/// A backlog bigger than one dispatcher transaction may hold: the dispatcher writes at most
/// 1,000 notifications per round (ending at an event's boundary), and the worker, recording
/// outcomes in groups, drains every one of them in order, once in effect.
#[tokio::test]
async fn a_backlog_is_dispatched_in_bounded_rounds_and_drained_in_order() {
    use inkingi_interop::dci::notify::MAX_NOTIFICATIONS_PER_TXN;
    use inkingi_store::dci_notify::NotificationStatus;
    let _serial = SERIAL.lock().await;
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "mis.sub", Role::DistrictOfficer, "11").await;
        let token = token(&app, "mis.sub", &["read", "purpose:registration"]).await;
        let plan = FaultPlan {
            seed: 11,
            fail_share: 0.1,
            ..FaultPlan::default()
        };
        let sim = Subscriber::start("127.0.0.1:0".parse().unwrap(), plan)
            .await
            .unwrap();
        // Three subscriptions to the same events: three notifications per event.
        let types = json!(["household_registered", "household_updated"]);
        let message = json!({"transaction_id": "T-3", "subscribe_request": [
            subscribe_request("s1", types.clone(), json!({})),
            subscribe_request("s2", types.clone(), json!({})),
            subscribe_request("s3", types, json!({}))]});
        let env = envelope("subscribe", 3, &sim.sender_uri(), message);
        let (status, _) = post(&app, "/dci/registry/subscribe", &token, &env).await;
        assert_eq!(status, 202);
        // The on-subscribe callback goes through the worker.
        let (stop, worker) = start_worker(&app);
        wait_for("on-subscribe", || sim.callbacks().first().cloned()).await;
        stop.cancel();
        worker.await.unwrap().unwrap();

        // 30 households, then 12 updates of each: 390 events, 1,170 notifications.
        let mut households = Vec::new();
        for _ in 0..30 {
            households.push(household(&app, "11010102").await);
        }
        for round in 0..12 {
            for h in &households {
                update_address(&app, *h, &format!("round {round}")).await;
            }
        }
        let events = 30 + 30 * 12;
        let expected = 3 * events as u64;
        let dispatch = DispatchSettings::default();
        let store = app.store.dci_notify();
        let first = dispatch_once(&app.store, &dispatch).await.unwrap();
        let written: u64 = store
            .notification_counts()
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum();
        assert!(first < events, "[{db:?}] one round took {first} events");
        assert_eq!(written, 3 * first as u64, "[{db:?}]");
        assert!(
            written <= MAX_NOTIFICATIONS_PER_TXN as u64,
            "[{db:?}] {written}"
        );
        let mut rounds = 1;
        while dispatch_once(&app.store, &dispatch).await.unwrap() > 0 {
            rounds += 1;
        }
        assert!(rounds >= 2, "[{db:?}] {rounds}");

        let (stop, worker) = start_worker(&app);
        let mut stats = sim.stats();
        for _ in 0..2400 {
            stats = sim.stats();
            if stats.effects >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            (stats.effects, stats.out_of_order),
            (expected, 0),
            "[{db:?}] {stats:?}"
        );
        assert!(stats.injected_failures > 0, "{stats:?}");
        // Every outcome recorded: all delivered, none left open.
        let mut counts = Vec::new();
        for _ in 0..400 {
            counts = store.notification_counts().await.unwrap();
            if counts == vec![(NotificationStatus::Delivered, expected)] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            counts,
            vec![(NotificationStatus::Delivered, expected)],
            "[{db:?}]"
        );
        stop.cancel();
        worker.await.unwrap().unwrap();
        sim.stop();
        app.stop().await;
    }
}
