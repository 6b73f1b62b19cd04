//! The DHIS2 sync on every backend, over real HTTP: the worker runs `dhis2.sync` jobs against
//! the DHIS2 simulator (pages of 5, a fifth of requests failing, an outage after a few), each
//! tracked entity is linked to the registry or queued for review, every mapped data value is
//! stored once, and an incremental sync after new events takes only what is new.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use common::*;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::jobs::{JobStatus, RetryPolicy};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, NationalId, PersonInput, RegistryNumber, Sex,
};
use inkingi_interop::breaker::{BreakerSettings, Breakers};
use inkingi_interop::dhis2::{CallError, Dhis2Client, Dhis2Connector, Mapping};
use inkingi_interop::simulate::dhis2::{Dhis2Plan, Dhis2Sim, SimChild, SimMother, ROOT_ORG_UNIT};
use inkingi_interop::simulate::faults::FaultPlan;
use inkingi_interop::worker::{run_with, Registry, WorkerSettings};
use inkingi_server::children::dhis2::{Dhis2Sync, Dhis2SyncHandler, Dhis2SyncJob};
use inkingi_store::children::PersonFacts;
use inkingi_store::jobs::{JobFilter, JobRecord, NewJob};
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_store::Store;
use inkingi_testkit::{databases, TestApp};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ALICE: &str = "1199070000000101";
const BRN: &str = "BR-2025-000123";
const TOKEN: &str = "d2pat_testtoken0000000000000000000001";

/// Data elements of the shipped mapping, as the test reads them (not through the mapping).
const DOSES: &[&str] = &[
    "DeBCG0001aa",
    "DeOPV0001aa",
    "DeOPV1001aa",
    "DeOPV2001aa",
    "DeOPV3001aa",
    "DePenta1aaa",
    "DePenta2aaa",
    "DePenta3aaa",
    "DePCV1001aa",
    "DePCV2001aa",
    "DePCV3001aa",
    "DeRota1001a",
    "DeRota2001a",
    "DeIPV10001a",
    "DeMR100001a",
    "DeMR200001a",
];
const MEASURES: &[&str] = &[
    "DeBirthWtGr",
    "DeWeightKgA",
    "DeLengthCmA",
    "DeHeightCmA",
    "DeMuacMmAaA",
];
const CONTACT_STAGES: &[&str] = &["StAncVis1aE", "StPncVis1aF"];
const MOTHER_PROGRAM: &str = "MtPrgANC4vb";

fn person(given: &str, family: &str, sex: Sex, born: NaiveDate) -> PersonInput {
    PersonInput {
        given_name: Name::parse(given).unwrap(),
        family_name: Name::parse(family).unwrap(),
        sex,
        birth_date: Some(BirthDate::parse(&born.to_string()).unwrap()),
        national_id: None,
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
        since: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        mother_id: None,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

struct Births {
    keza: NaiveDate,
    ganza: NaiveDate,
    ineza: NaiveDate,
    teta: NaiveDate,
}

fn births(today: NaiveDate) -> Births {
    let ago = |d: u64| today.checked_sub_days(Days::new(d)).unwrap();
    Births {
        keza: ago(200),
        ganza: ago(420),
        ineza: ago(900),
        teta: ago(100),
    }
}

/// A household in village 11010102: Alice (national ID), her daughter Keza, Ganza and Ineza
/// (birth registration number). Returns (alice, keza, ganza, ineza).
async fn household(store: &Store, b: &Births) -> (Uuid, Uuid, Uuid, Uuid) {
    let mut alice = person(
        "Alice",
        "Mukamana",
        Sex::Female,
        NaiveDate::from_ymd_opt(1990, 4, 2).unwrap(),
    );
    alice.national_id = Some(NationalId::parse(ALICE).unwrap());
    let mut ineza = person("Ineza", "Uwimana", Sex::Female, b.ineza);
    ineza.birth_registration = Some(BRN.into());
    let members = vec![
        member(alice, MemberRole::Head),
        member(
            person("Keza", "Uwase", Sex::Female, b.keza),
            MemberRole::Child,
        ),
        member(
            person("Ganza", "Habimana", Sex::Male, b.ganza),
            MemberRole::Child,
        ),
        member(ineza, MemberRole::Child),
    ];
    let ids = (members[0].id, members[1].id, members[2].id, members[3].id);
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

/// What the HMIS holds: Keza as registered (mother Alice by national ID), Ganza misspelt
/// "Gansa", Teta whom the registry does not know, Ineza by her birth registration number.
fn sim_children(b: &Births) -> Vec<SimChild> {
    let child = |given: &str, family: &str, sex: &str, born: NaiveDate, ou: &str| SimChild {
        given_name: given.into(),
        family_name: family.into(),
        sex: sex.into(),
        birth_date: born,
        birth_registration: None,
        org_unit: ou.into(),
        mother: None,
    };
    let mut keza = child("Keza", "Uwase", "F", b.keza, "OuKigali01a");
    keza.mother = Some(SimMother {
        given_name: "Alice".into(),
        family_name: "Mukamana".into(),
        national_id: Some(ALICE.into()),
        phone: Some("+250788000111".into()),
    });
    let mut ineza = child("Ineza", "Uwimana", "F", b.ineza, "OuHcNyarugB");
    ineza.birth_registration = Some(BRN.into());
    vec![
        keza,
        child("Gansa", "Habimana", "M", b.ganza, "OuKigali01a"),
        child("Teta", "Nshuti", "F", b.teta, "OuHcGasaboC"),
        ineza,
    ]
}

/// Facts the simulator's records should become, counted from its data values.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct Expected {
    immunizations: usize,
    measurements: usize,
    encounters: usize,
    pregnancies: usize,
}

fn expected(sim: &Dhis2Sim) -> Expected {
    let mut e = Expected::default();
    for ev in sim.events() {
        for dv in &ev.data_values {
            let v = dv.value.as_deref().unwrap_or("");
            if DOSES.contains(&dv.data_element.as_str()) && v == "true" {
                e.immunizations += 1;
            }
            if MEASURES.contains(&dv.data_element.as_str()) && !v.is_empty() {
                e.measurements += 1;
            }
        }
        if CONTACT_STAGES.contains(&ev.program_stage.as_str()) {
            e.encounters += 1;
        }
    }
    e.pregnancies = sim
        .tracked_entities()
        .iter()
        .flat_map(|t| &t.enrollments)
        .filter(|en| en.program == MOTHER_PROGRAM)
        .count();
    e
}

/// Facts stored from DHIS2, counted over the source persons of the simulator's tracked
/// entities.
async fn stored(store: &Store, sim: &Dhis2Sim) -> Expected {
    let mut e = Expected::default();
    for te in sim.tracked_entities() {
        let Some(sp) = store
            .children()
            .source_person(&AreaScope::national(), "dhis2", &te.tracked_entity)
            .await
            .unwrap()
        else {
            continue;
        };
        let f: PersonFacts = store
            .children()
            .facts_of_source_person(&AreaScope::national(), sp.id)
            .await
            .unwrap();
        e.immunizations += f.immunizations.len();
        e.measurements += f.measurements.len();
        e.encounters += f.encounters.len();
        e.pregnancies += f.pregnancies.len();
    }
    e
}

fn uid_of(sim: &Dhis2Sim, given: &str) -> String {
    sim.tracked_entities()
        .into_iter()
        .find(|t| {
            t.attributes
                .iter()
                .any(|a| a.attribute == "wKq3ChgvNmE" && a.value.as_deref() == Some(given))
        })
        .unwrap()
        .tracked_entity
}

fn connector(sim: &Dhis2Sim, token: &str) -> Dhis2Connector {
    let mut c = Dhis2Connector::new(sim.url(), token, ROOT_ORG_UNIT);
    c.page_size = 5;
    c.timeout = Duration::from_secs(5);
    c
}

async fn sync_jobs(store: &Store) -> Vec<JobRecord> {
    // The sync's queue: each fact stored also queues a `children.services` job elsewhere.
    let filter = JobFilter {
        queue: Some("connectors".into()),
        limit: 100,
        ..Default::default()
    };
    let jobs = store.jobs().list(&filter).await.unwrap();
    jobs.into_iter()
        .filter(|j| j.kind == "dhis2.sync")
        .collect()
}

/// Queues a sync in `slot` and runs the worker until every sync job has finished.
async fn sync_with_worker(store: &Store, sync: &Dhis2Sync, slot: i64) -> Vec<JobRecord> {
    let job = NewJob::of(&Dhis2SyncJob { slot: Some(slot) }).unwrap();
    store.jobs().enqueue_now(job).await.unwrap();
    let settings = WorkerSettings {
        concurrency: 1,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 25,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        },
        retain_succeeded: None,
    };
    let handlers = Registry::new().register(Dhis2SyncHandler::new(sync.clone()));
    let stop = CancellationToken::new();
    let worker = tokio::spawn(run_with(store.clone(), settings, handlers, stop.clone()));
    let started = Instant::now();
    loop {
        let jobs = sync_jobs(store).await;
        let done = jobs
            .iter()
            .all(|j| matches!(j.status, JobStatus::Succeeded | JobStatus::Dead));
        if done || started.elapsed() > Duration::from_secs(90) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    worker.await.unwrap().unwrap();
    sync_jobs(store).await
}

#[tokio::test]
async fn tracker_data_is_linked_stored_once_and_pulled_incrementally() {
    Breakers::global().configure(BreakerSettings {
        failure_threshold: 3,
        open_for: Duration::from_millis(100),
    });
    let today = Utc::now().date_naive();
    let b = births(today);
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let store = app.store.clone();
        let (alice, keza, ganza, ineza) = household(&store, &b).await;
        let plan = Dhis2Plan {
            faults: FaultPlan {
                seed: 11,
                fail_share: 0.15,
                outage_after: Some(8),
                outage: Duration::from_millis(800),
                ..Default::default()
            },
            token: TOKEN.into(),
            missed_share: 0.1,
            reject_data_elements: Vec::new(),
        };
        let sim = Dhis2Sim::start(
            "127.0.0.1:0".parse().unwrap(),
            plan,
            Mapping::embedded().unwrap(),
            &sim_children(&b),
            today,
        )
        .await
        .unwrap();

        // Without the right token DHIS2 answers 401, and the client does not retry that.
        let wrong = Dhis2Client::new(connector(&sim, "d2pat_wrong")).unwrap();
        match wrong.events("ChPrg7tK2mA", None, 1).await {
            Err(CallError::Refused(m)) => assert!(m.contains("401"), "[{db:?}] {m}"),
            other => panic!("[{db:?}] expected a refusal: {other:?}"),
        }

        let sync = Dhis2Sync::new(connector(&sim, TOKEN), Mapping::embedded().unwrap()).unwrap();
        let jobs = sync_with_worker(&store, &sync, 1).await;
        assert_eq!(jobs.len(), 1, "[{db:?}]");
        assert_eq!(
            jobs[0].status,
            JobStatus::Succeeded,
            "[{db:?}] {:?}",
            jobs[0].last_error
        );
        let stats = sim.stats();
        assert!(stats.outage_refusals > 0, "[{db:?}] an outage: {stats:?}");
        assert!(stats.injected_failures > 0, "[{db:?}] 5xx: {stats:?}");
        assert!(jobs[0].attempts > 1, "[{db:?}] retried: {:?}", jobs[0]);
        let want = expected(&sim);
        assert!(
            want.immunizations > 10 && want.measurements > 20,
            "{want:?}"
        );
        assert_eq!(want.encounters, 6, "[{db:?}] Keza's mother: 4 ANC, 2 PNC");
        assert_eq!(want.pregnancies, 1, "[{db:?}]");
        assert_eq!(stored(&store, &sim).await, want, "[{db:?}] each fact once");

        // Linkage: certain → linked; uncertain or unknown → unlinked and in the review queue.
        let sp = |uid: String| {
            let store = store.clone();
            async move {
                store
                    .children()
                    .source_person(&AreaScope::national(), "dhis2", &uid)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let k = sp(uid_of(&sim, "Keza")).await;
        assert_eq!(
            (k.person_id, k.link_method.as_deref()),
            (Some(keza), Some("linkage")),
            "[{db:?}]"
        );
        let i = sp(uid_of(&sim, "Ineza")).await;
        assert_eq!(
            (i.person_id, i.link_method.as_deref()),
            (Some(ineza), Some("birth_registration")),
            "[{db:?}]"
        );
        let mother = sp(format!("{}/mother", uid_of(&sim, "Keza"))).await;
        assert_eq!(mother.person_id, Some(alice), "[{db:?}] by national ID");
        let g = sp(uid_of(&sim, "Gansa")).await;
        assert_eq!(g.person_id, None, "[{db:?}] a near match is not guessed");
        let t = sp(uid_of(&sim, "Teta")).await;
        assert_eq!(t.person_id, None, "[{db:?}]");
        assert_eq!(
            t.area_code.as_deref(),
            Some("1201"),
            "[{db:?}] filed by org unit"
        );
        let reviews = store
            .children()
            .open_reviews(&AreaScope::national(), "dhis2_patient", 100)
            .await
            .unwrap();
        assert_eq!(reviews.len(), 2, "[{db:?}] {reviews:?}");
        let gansa_review = reviews
            .iter()
            .find(|r| r.source_id == g.provenance.source_id)
            .unwrap();
        assert_eq!(gansa_review.candidate_person_id, Some(ganza), "[{db:?}]");

        // The facts reach the child's services: BCG at birth is completed.
        add_user(&app, "nurse.11", Role::HealthWorker, "11").await;
        let nurse = token(&app, "nurse.11", &["read", "purpose:healthcare"]).await;
        let res = bearer(&app, &format!("/api/v1/children/{keza}/services"), &nurse).await;
        assert_eq!(res.status(), 200, "[{db:?}]");
        let svc: Value = res.json().await.unwrap();
        let bcg = svc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == "bcg")
            .unwrap()
            .clone();
        assert_eq!(bcg["status"], "completed", "[{db:?}] {bcg}");
        assert_eq!(bcg["completed_on"], b.keza.to_string(), "[{db:?}]");

        // New visits in DHIS2: the next sync takes them, and only what is new.
        let before = stored(&store, &sim).await;
        let added = sim.add_growth_visits(today);
        assert_eq!(added, 4, "[{db:?}] one per child under six");
        let pages_before = sim.stats().pages;
        let jobs = sync_with_worker(&store, &sync, 2).await;
        assert!(
            jobs.iter().all(|j| j.status == JobStatus::Succeeded),
            "[{db:?}] {jobs:?}"
        );
        let want = expected(&sim);
        assert!(want.measurements > before.measurements, "[{db:?}]");
        assert_eq!(stored(&store, &sim).await, want, "[{db:?}] new facts, once");
        // Each stream is asked from its mark: one or two pages each, not the whole history.
        let pages = sim.stats().pages - pages_before;
        assert!(pages <= 12, "[{db:?}] {pages} pages for 4 new events");

        // A sync with nothing new stores nothing, though it takes the records at the marks again.
        let again = sync.run(&store).await.unwrap();
        assert_eq!(again.created, 0, "[{db:?}] {again:?}");
        assert_eq!(again.refused, 0, "[{db:?}] {again:?}");
        assert!(again.existing > 0, "[{db:?}] {again:?}");
        assert_eq!(stored(&store, &sim).await, want, "[{db:?}]");

        // A refused token is not retried: the job is parked dead at once, with the reason.
        let refused = Dhis2Sync::new(
            connector(&sim, "d2pat_revoked"),
            Mapping::embedded().unwrap(),
        )
        .unwrap();
        let jobs = sync_with_worker(&store, &refused, 3).await;
        let dead = jobs.iter().find(|j| j.status == JobStatus::Dead).unwrap();
        assert_eq!(dead.attempts, 1, "[{db:?}] {dead:?}");
        assert!(
            dead.last_error.as_deref().unwrap_or("").contains("401"),
            "[{db:?}] {dead:?}"
        );
        sim.stop();
        app.stop().await;
    }
}
