//! Verification against the national ID registry on every backend, over real HTTP: the sweep
//! queues one job per person with a national ID, the worker asks the ID registry simulator
//! (failing 30 % of requests) and stores each outcome once; officers read a person's checks and
//! their area's worklist; a corrected record is checked again and leaves the worklist.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use common::*;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::jobs::{JobStatus, RetryPolicy};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, NationalId, PersonInput, RegistryNumber, Sex,
};
use inkingi_interop::breaker::{BreakerSettings, Breakers};
use inkingi_interop::national_id::{sweep_once, IdConnector, IdVerifyHandler};
use inkingi_interop::simulate::faults::FaultPlan;
use inkingi_interop::simulate::national_id::{IdPerson, IdPlan, IdRegistry};
use inkingi_interop::worker::{run_with, Registry, WorkerSettings};
use inkingi_store::audit::AuditQuery;
use inkingi_store::id_checks::CheckStatus;
use inkingi_store::jobs::{JobFilter, JobRecord};
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_store::Store;
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn person(given: &str, sex: Sex, born: &str, nid: Option<&str>) -> PersonInput {
    PersonInput {
        given_name: Name::parse(given).unwrap(),
        family_name: Name::parse("Mukamana").unwrap(),
        sex,
        birth_date: Some(BirthDate::parse(born).unwrap()),
        national_id: nid.map(|n| NationalId::parse(n).unwrap()),
        birth_registration: None,
        refugee_id: None,
        passport: None,
        phones: Vec::new(),
        answers: Default::default(),
    }
}

fn member(p: PersonInput, role: MemberRole) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: p,
        role,
        since: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        mother_id: None,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

const ALICE: &str = "1199070000000101";
const JAN: &str = "1198580000000202";
const CLAIRE: &str = "1199570000000303";

/// A household in district 11: Alice (held alike by the ID registry), Jan (held as "Jean"),
/// Claire (unknown to it) and a child without a national ID. Returns the members' ids.
async fn household(store: &Store) -> Vec<Uuid> {
    let members = vec![
        member(
            person("Alice", Sex::Female, "1990-04-02", Some(ALICE)),
            MemberRole::Head,
        ),
        member(
            person("Jan", Sex::Male, "1985", Some(JAN)),
            MemberRole::Spouse,
        ),
        member(
            person("Claire", Sex::Female, "1995-01-01", Some(CLAIRE)),
            MemberRole::OtherRelative,
        ),
        member(
            person("Keza", Sex::Female, "2020-05-05", None),
            MemberRole::Child,
        ),
    ];
    let ids = members.iter().map(|m| m.id).collect();
    let new = NewHousehold {
        id: Uuid::now_v7(),
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input: HouseholdInput {
            village: AreaCode::parse("11010102").unwrap(),
            address: None,
            gps: None,
            answers: Default::default(),
        },
        form_id: "default".into(),
        form_version: 1,
        source_key: None,
        members,
    };
    let meta = EventMeta {
        actor: "test".into(),
        channel: Channel::Api,
        reason: None,
        change_request_id: None,
        at: Utc::now(),
    };
    let mut uow = store.begin().await.unwrap();
    store
        .registry()
        .register_household(&mut uow, &new, &meta)
        .await
        .unwrap();
    uow.commit().await.unwrap();
    ids
}

fn held(nid: &str, given: &str, sex: &str, born: &str) -> IdPerson {
    IdPerson {
        national_id: nid.into(),
        given_name: given.into(),
        family_name: "Mukamana".into(),
        sex: sex.into(),
        birth_date: born.into(),
    }
}

async fn id_registry() -> IdRegistry {
    let plan = IdPlan {
        faults: FaultPlan {
            seed: 3,
            fail_share: 0.3,
            ..Default::default()
        },
        mismatch_share: 0.0,
    };
    let people = vec![
        held(ALICE, "ALICE", "female", "1990-04-02"),
        held(JAN, "Jean", "male", "1985-07-14"),
    ];
    IdRegistry::start("127.0.0.1:0".parse().unwrap(), plan, people)
        .await
        .unwrap()
}

/// The `id.verify` jobs ever queued.
async fn verify_jobs(store: &Store) -> Vec<JobRecord> {
    let filter = JobFilter {
        limit: 1000,
        ..Default::default()
    };
    let jobs = store.jobs().list(&filter).await.unwrap();
    jobs.into_iter().filter(|j| j.kind == "id.verify").collect()
}

/// Sweeps the whole registry; returns how many `id.verify` jobs were ever queued.
async fn sweep(store: &Store, connector: &IdConnector) -> usize {
    let mut after = Uuid::nil();
    while let Some(next) = sweep_once(store, connector, after).await.unwrap() {
        after = next;
    }
    verify_jobs(store).await.len()
}

/// Runs the worker until every `id.verify` job has finished (or 60 s have passed).
async fn verify(store: &Store, connector: &IdConnector) {
    let settings = WorkerSettings {
        concurrency: 2,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        },
        retain_succeeded: None,
    };
    let handlers = Registry::new().register(IdVerifyHandler::new(connector.clone()).unwrap());
    let stop = CancellationToken::new();
    let worker = tokio::spawn(run_with(store.clone(), settings, handlers, stop.clone()));
    let started = Instant::now();
    loop {
        let jobs = verify_jobs(store).await;
        let done = jobs
            .iter()
            .all(|j| matches!(j.status, JobStatus::Succeeded | JobStatus::Dead));
        if done || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    worker.await.unwrap().unwrap();
}

async fn count_checks(store: &Store) -> usize {
    let mut n = 0;
    for s in [
        CheckStatus::Verified,
        CheckStatus::Mismatch,
        CheckStatus::NotFound,
    ] {
        n += store
            .id_checks()
            .current_with_status(&AreaScope::national(), s, 1000)
            .await
            .unwrap()
            .len();
    }
    n
}

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .header("x-purpose-of-use", "registration")
        .send()
        .await
        .unwrap()
}

async fn json_of(res: reqwest::Response) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn people_are_verified_once_and_mismatches_reach_the_area_worklist() {
    Breakers::global().configure(BreakerSettings {
        failure_threshold: 4,
        open_for: Duration::from_millis(200),
    });
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let store = app.store.clone();
        let ids = household(&store).await;
        let (alice, jan, claire, child) = (ids[0], ids[1], ids[2], ids[3]);
        let sim = id_registry().await;
        let connector = IdConnector::new(sim.url());

        // One job per person with a national ID, however often the sweep passes.
        assert_eq!(sweep(&store, &connector).await, 3, "[{db:?}]");
        assert_eq!(
            sweep(&store, &connector).await,
            3,
            "[{db:?}] a second pass adds none"
        );
        verify(&store, &connector).await;
        let stats = sim.stats();
        assert!(
            stats.injected_failures > 0,
            "[{db:?}] faults were injected: {stats:?}"
        );
        assert_eq!(
            count_checks(&store).await,
            3,
            "[{db:?}] each person checked once"
        );

        add_user(&app, "officer.11", Role::DistrictOfficer, "11").await;
        add_user(&app, "officer.12", Role::DistrictOfficer, "12").await;
        let mine = token(
            &app,
            "officer.11",
            &["read", "write", "purpose:registration"],
        )
        .await;
        let theirs = token(&app, "officer.12", &["read", "purpose:registration"]).await;

        let body =
            json_of(get(&app, &format!("/api/v1/individuals/{jan}/id-checks"), &mine).await).await;
        assert_eq!(body["checks"][0]["status"], "mismatch", "[{db:?}] {body}");
        assert_eq!(
            body["checks"][0]["discrepancies"],
            json!([{"field": "given_name", "registry": "Jan", "id_registry": "Jean"}]),
            "[{db:?}]"
        );
        assert_eq!(body["checks"][0]["system"], "id-registry-simulator");
        let body = json_of(
            get(
                &app,
                &format!("/api/v1/individuals/{alice}/id-checks"),
                &mine,
            )
            .await,
        )
        .await;
        assert_eq!(body["checks"][0]["status"], "verified", "[{db:?}] {body}");
        let body = json_of(
            get(
                &app,
                &format!("/api/v1/individuals/{child}/id-checks"),
                &mine,
            )
            .await,
        )
        .await;
        assert_eq!(body["checks"], json!([]), "[{db:?}] no number, no check");

        let worklist = json_of(get(&app, "/api/v1/id-checks", &mine).await).await;
        let people: Vec<&str> = worklist["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["person_id"].as_str().unwrap())
            .collect();
        assert_eq!(people, [jan.to_string()], "[{db:?}] {worklist}");
        let missing = json_of(get(&app, "/api/v1/id-checks?status=not_found", &mine).await).await;
        assert_eq!(
            missing["items"][0]["person_id"],
            claire.to_string(),
            "[{db:?}]"
        );
        let bad = get(&app, "/api/v1/id-checks?status=maybe", &mine).await;
        let p = problem(bad, 400).await;
        assert!(p.to_string().contains("status"), "[{db:?}] {p}");

        // Another district sees neither the person nor the worklist entry.
        let foreign = json_of(get(&app, "/api/v1/id-checks", &theirs).await).await;
        assert_eq!(foreign["items"], json!([]), "[{db:?}]");
        let res = get(
            &app,
            &format!("/api/v1/individuals/{jan}/id-checks"),
            &theirs,
        )
        .await;
        assert_eq!(res.status(), 404, "[{db:?}]");

        // The officer corrects Jan's name: the next sweep checks him again, and the new
        // check supersedes the mismatch.
        let res = get(&app, &format!("/api/v1/individuals/{jan}"), &mine).await;
        let etag = res.headers()["etag"].to_str().unwrap().to_string();
        let res = app
            .client
            .patch(app.url(&format!("/api/v1/individuals/{jan}")))
            .bearer_auth(&mine)
            .header("if-match", etag)
            .header("x-change-reason", "name as on the ID card")
            .json(&json!({"given_name": "Jean"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "[{db:?}] {}", res.text().await.unwrap());
        assert_eq!(
            sweep(&store, &connector).await,
            4,
            "[{db:?}] one more job, for Jan"
        );
        verify(&store, &connector).await;
        let checks = store
            .id_checks()
            .for_person(&AreaScope::national(), jan)
            .await
            .unwrap();
        let statuses: Vec<CheckStatus> = checks.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [CheckStatus::Verified, CheckStatus::Mismatch],
            "[{db:?}] newest first"
        );
        let worklist = json_of(get(&app, "/api/v1/id-checks", &mine).await).await;
        assert_eq!(worklist["items"], json!([]), "[{db:?}] {worklist}");

        // Each disclosure to the ID registry is in the audit log.
        let audited = store
            .audit()
            .query(
                &AreaScope::national(),
                &AuditQuery {
                    actor: Some("system".into()),
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.record.action == "person.id_verify")
            .count();
        assert_eq!(audited, 4, "[{db:?}]");
        sim.stop();
        app.stop().await;
    }
}

async fn verify_now(app: &TestApp, person: Uuid, token: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/individuals/{person}/id-checks")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let res = app
        .client
        .get(app.url(path))
        .header("cookie", cookie)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn verify_now_queues_one_job_until_it_ran_from_the_api_and_the_household_page() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let store = app.store.clone();
        let ids = household(&store).await;
        let (alice, jan, child) = (ids[0], ids[1], ids[3]);
        let sim = id_registry().await;
        let connector = IdConnector::new(sim.url());
        add_user(&app, "officer.11", Role::DistrictOfficer, "11").await;
        add_user(&app, "officer.12", Role::DistrictOfficer, "12").await;
        let mine = token(
            &app,
            "officer.11",
            &["read", "write", "purpose:registration"],
        )
        .await;
        let theirs = token(
            &app,
            "officer.12",
            &["read", "write", "purpose:registration"],
        )
        .await;

        // Asked twice before the worker ran: one job, ahead of the sweep's.
        let (s, first) = verify_now(&app, alice, &mine).await;
        assert_eq!(s, 202, "[{db:?}] {first}");
        assert_eq!(first["job_status"], "queued", "[{db:?}]");
        let (_, again) = verify_now(&app, alice, &mine).await;
        assert_eq!(
            again["job_id"], first["job_id"],
            "[{db:?}] idempotent while pending"
        );
        assert_eq!(verify_jobs(&store).await.len(), 1, "[{db:?}]");
        assert!(verify_jobs(&store).await[0].priority > 0, "[{db:?}]");

        // Out of scope: 404; no national ID: 422 naming the field.
        let (s, _) = verify_now(&app, alice, &theirs).await;
        assert_eq!(s, 404, "[{db:?}]");
        let (s, p) = verify_now(&app, child, &mine).await;
        assert_eq!(
            (s, p["field"].as_str()),
            (422, Some("national_id")),
            "[{db:?}] {p}"
        );

        verify(&store, &connector).await;
        let body = json_of(
            get(
                &app,
                &format!("/api/v1/individuals/{alice}/id-checks"),
                &mine,
            )
            .await,
        )
        .await;
        assert_eq!(body["checks"][0]["status"], "verified", "[{db:?}] {body}");
        // Done: asking again queues a new check.
        let (s, next) = verify_now(&app, alice, &mine).await;
        assert_eq!(s, 202, "[{db:?}] {next}");
        assert_ne!(next["job_id"], first["job_id"], "[{db:?}]");

        // The household page shows the latest result and a button doing the same, CSRF-checked.
        let cookie = session(&app, "officer.11").await;
        let hh = store
            .registry()
            .person(&AreaScope::national(), jan)
            .await
            .unwrap()
            .unwrap()
            .person
            .household_id
            .unwrap();
        let html = page(&app, &cookie, &format!("/registry/households/{hh}")).await;
        assert!(html.contains("verified · "), "[{db:?}] latest result shown");
        let action = format!("/registry/people/{jan}/id-checks");
        assert!(
            html.contains(&action),
            "[{db:?}] a button per member with an ID"
        );
        assert!(!html.contains(&format!("/registry/people/{child}/id-checks")));
        let csrf = hidden(&html, "csrf");
        let post = |form: Vec<(&'static str, String)>| {
            app.client
                .post(app.url(&action))
                .header("cookie", &cookie)
                .form(&form)
                .send()
        };
        let res = post(vec![("csrf", "forged".into())]).await.unwrap();
        assert_eq!(res.status(), 403, "[{db:?}] a forged CSRF token is refused");
        let res = post(vec![("csrf", csrf.clone())]).await.unwrap();
        assert_eq!(res.status(), 303, "[{db:?}]");
        let to = res.headers()["location"].to_str().unwrap().to_string();
        assert!(to.contains("verify=queued"), "[{db:?}] {to}");
        let html = page(&app, &cookie, to.split('#').next().unwrap()).await;
        assert!(html.contains("verify-queued"), "[{db:?}]");
        let jan_jobs = verify_jobs(&store)
            .await
            .into_iter()
            .filter(|j| j.payload["person_id"] == jan.to_string())
            .count();
        assert_eq!(jan_jobs, 1, "[{db:?}]");

        // Each request is in the audit log.
        let requested = store
            .audit()
            .query(
                &AreaScope::national(),
                &AuditQuery {
                    actor: Some("officer.11".into()),
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.record.action == "person.id_verify_request")
            .count();
        assert_eq!(requested, 4, "[{db:?}]");
        sim.stop();
        app.stop().await;
    }
}
