//! Civil registration over real HTTP on every backend: Inkingi subscribes to the CRVS simulator
//! (through a downtime window), the simulator notifies births and deaths of registry people —
//! some by exact national ID, some by noisy names, some unknown — with duplicate and
//! out-of-order deliveries; each event is stored and processed once, in each person's order,
//! into `record_birth` / `record_death` change requests or linkage reviews; approved deaths
//! exit the person's programme enrolments; a lost subscription comes back.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use common::*;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::jobs::RetryPolicy;
use inkingi_domain::programmes::EnrolmentStatus;
use inkingi_domain::registry::change::{ChangeKind, ChangeStatus};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, NationalId, PersonInput, RegistryNumber, Sex,
};
use inkingi_interop::breaker::{BreakerSettings, Breakers};
use inkingi_interop::crvs::{run_subscriber, CrvsConnector, CrvsSubscribeHandler};
use inkingi_interop::simulate::crvs::{CrvsPlan, CrvsRegistry, Emitted};
use inkingi_interop::simulate::faults::FaultPlan;
use inkingi_interop::simulate::national_id::IdPerson;
use inkingi_interop::worker::{run_with, Registry, WorkerSettings};
use inkingi_server::crvs::{CrvsSettings, ProcessHandler};
use inkingi_store::changes::ChangeQuery;
use inkingi_store::crvs::{CrvsEvent, EventStatus};
use inkingi_store::linkage::ReviewQuery;
use inkingi_store::programmes::{EnrolmentQuery, NewEnrolment};
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_store::Store;
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const VILLAGE: &str = "11010102";
const MOTHERS: &[(&str, &str)] = &[
    ("Aline", "Mukamana"),
    ("Claudine", "Ingabire"),
    ("Divine", "Nyiraneza"),
    ("Esther", "Umutoni"),
    ("Josiane", "Uwera"),
    ("Solange", "Kayitesi"),
];

/// A registry person as the test knows them.
#[derive(Debug, Clone)]
struct Known {
    person_id: Uuid,
    household_id: Uuid,
    held: IdPerson,
}

fn input(given: &str, family: &str, sex: Sex, born: &str, nid: &str) -> PersonInput {
    PersonInput {
        given_name: Name::parse(given).unwrap(),
        family_name: Name::parse(family).unwrap(),
        sex,
        birth_date: Some(BirthDate::parse(born).unwrap()),
        national_id: Some(NationalId::parse(nid).unwrap()),
        birth_registration: None,
        refugee_id: None,
        passport: None,
        phones: Vec::new(),
        answers: Default::default(),
    }
}

/// Six households: a mother born 1990 (head), her husband and her mother-in-law, each with a
/// national ID, each enrolled in an individual programme. Returns them by national ID, in
/// order: the simulator draws from the list it is given with its seed, so a stable order makes
/// its events the same on every run.
async fn registry(store: &Store) -> BTreeMap<String, Known> {
    let catalogue = inkingi_domain::programmes::Catalogue::rw_illustrative().unwrap();
    inkingi_store::programmes::load_catalogue(store, &catalogue, "test")
        .await
        .unwrap();
    let meta = EventMeta {
        actor: "test".into(),
        channel: Channel::Api,
        reason: None,
        change_request_id: None,
        at: Utc::now(),
    };
    let mut out = BTreeMap::new();
    for (k, (given, family)) in MOTHERS.iter().enumerate() {
        let people = [
            (
                *given,
                Sex::Female,
                format!("1990-0{}-1{k}", k + 1),
                format!("119907{k:010}"),
                MemberRole::Head,
            ),
            (
                "Jean",
                Sex::Male,
                "1985-03-03".to_string(),
                format!("119858{k:010}"),
                MemberRole::Spouse,
            ),
            (
                "Marthe",
                Sex::Female,
                "1950-07-07".to_string(),
                format!("119507{k:010}"),
                MemberRole::OtherRelative,
            ),
        ];
        let household_id = Uuid::now_v7();
        let members: Vec<NewMember> = people
            .iter()
            .map(|(g, sex, born, nid, role)| NewMember {
                id: Uuid::now_v7(),
                person: input(g, family, *sex, born, nid),
                role: *role,
                since: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                mother_id: None,
                father_id: None,
                guardian_id: None,
                source_key: None,
            })
            .collect();
        let new = NewHousehold {
            id: household_id,
            registry_number: RegistryNumber::generate(&mut rand::rng()),
            input: HouseholdInput {
                village: AreaCode::parse(VILLAGE).unwrap(),
                address: None,
                gps: None,
                answers: Default::default(),
            },
            form_id: "default".into(),
            form_version: 1,
            source_key: None,
            members: members.clone(),
        };
        let mut uow = store.begin().await.unwrap();
        store
            .registry()
            .register_household(&mut uow, &new, &meta)
            .await
            .unwrap();
        for (m, (g, sex, born, nid, _)) in members.iter().zip(&people) {
            let enrolment = NewEnrolment {
                household_id,
                person_id: Some(m.id),
                village: VILLAGE.into(),
                score: None,
                amount: 7500,
                decision: "test".into(),
                actor: "test".into(),
                reason: None,
            };
            store
                .programmes()
                .enrol(&mut uow, "vup_nsds", &enrolment)
                .await
                .unwrap();
            let held = IdPerson {
                national_id: nid.clone(),
                given_name: g.to_string(),
                family_name: family.to_string(),
                sex: if *sex == Sex::Female {
                    "female"
                } else {
                    "male"
                }
                .into(),
                birth_date: born.clone(),
            };
            out.insert(
                nid.clone(),
                Known {
                    person_id: m.id,
                    household_id,
                    held,
                },
            );
        }
        uow.commit().await.unwrap();
    }
    out
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events(store: &Store) -> Vec<CrvsEvent> {
    store
        .crvs()
        .list(&AreaScope::national(), None, 1000)
        .await
        .unwrap()
}

/// Waits until every emitted event was delivered (with its duplicates) and processed.
async fn settle(store: &Store, sim: &CrvsRegistry, emitted: usize) {
    wait_for("every event delivered and processed", async || {
        let s = sim.stats();
        let evs = events(store).await;
        s.delivered >= s.events + s.duplicates_sent
            && evs.len() == emitted
            && evs.iter().all(|e| e.status != EventStatus::Received)
    })
    .await;
}

fn by_event(evs: &[CrvsEvent]) -> HashMap<String, CrvsEvent> {
    evs.iter()
        .map(|e| (e.event_id.clone(), e.clone()))
        .collect()
}

async fn approve(app: &TestApp, token: &str, id: &str) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/change-requests/{id}/decision")))
        .bearer_auth(token)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert_eq!(status, 200, "{}", res.text().await.unwrap());
}

async fn list(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(&format!("/api/v1/crvs/events{query}")))
        .bearer_auth(token)
        .header("x-purpose-of-use", "registration")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// Checks each processed event against what the simulator emitted; returns the death requests
/// (change request id, person id).
async fn check_outcomes(
    store: &Store,
    known: &BTreeMap<String, Known>,
    emitted: &[Emitted],
    db: &str,
) -> Vec<(String, Uuid)> {
    let evs = by_event(&events(store).await);
    let national = AreaScope::national();
    let mut deaths = Vec::new();
    for e in emitted {
        let ev = &evs[&e.event_id];
        let out = ev.outcome.clone().unwrap_or(Value::Null);
        match (e.variant.as_str(), ev.status) {
            ("exact", EventStatus::Processed) => {}
            ("noisy", EventStatus::Processed | EventStatus::Review) => {}
            ("unknown", EventStatus::Review) => {}
            (v, s) => panic!("[{db}] {} ({v}) ended {s:?}: {out}", e.event_id),
        }
        if ev.status == EventStatus::Review {
            let id: Uuid = out["review_id"].as_str().unwrap().parse().unwrap();
            let r = store
                .linkage()
                .review(&national, id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.review.kind, format!("crvs_{}", e.event_type), "[{db}]");
            assert_eq!(r.review.source_id, e.event_id, "[{db}]");
            if e.variant == "unknown" {
                assert!(ev.area_code.is_none() || r.review.candidate_person_id.is_some());
            }
            continue;
        }
        // Processed: the request names the person the simulator drew.
        let person = &known[e.national_id.as_ref().unwrap()];
        let cr_id: Uuid = out["change_request_id"].as_str().unwrap().parse().unwrap();
        let cr = store
            .changes()
            .change(&national, cr_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cr.status, ChangeStatus::Submitted, "[{db}]");
        assert_eq!(cr.channel, Channel::Crvs, "[{db}]");
        assert_eq!(cr.area.as_str(), VILLAGE, "[{db}]");
        match (&cr.change, e.event_type.as_str()) {
            (
                ChangeKind::RecordBirth {
                    household_id,
                    mother_id,
                    child,
                },
                "live_birth",
            ) => {
                assert_eq!(*household_id, person.household_id, "[{db}] her household");
                assert_eq!(*mother_id, Some(person.person_id), "[{db}] linked to her");
                assert_eq!(child.family_name.as_str(), person.held.family_name);
                assert!(child.birth_registration.is_some(), "[{db}] BRN kept");
            }
            (
                ChangeKind::RecordDeath {
                    person_id,
                    new_head_id,
                    ..
                },
                "death",
            ) => {
                assert_eq!(*person_id, person.person_id, "[{db}]");
                if e.national_id.as_deref().unwrap().starts_with("119907") {
                    assert!(
                        new_head_id.is_some(),
                        "[{db}] a head's death names a new head"
                    );
                }
                deaths.push((cr_id.to_string(), *person_id));
            }
            (other, kind) => panic!("[{db}] {kind} became {other:?}"),
        }
    }
    deaths
}

#[tokio::test]
async fn vital_events_are_processed_once_in_order_into_requests_and_reviews() {
    Breakers::global().configure(BreakerSettings {
        failure_threshold: 4,
        open_for: Duration::from_millis(200),
    });
    for db in databases().await {
        let db_name = format!("{db:?}");
        let app = TestApp::start(&db).await;
        let store = app.store.clone();
        let known = registry(&store).await;
        add_user(&app, "crvs.client", Role::NationalOfficer, "national").await;
        add_user(&app, "officer.a", Role::DistrictOfficer, "11").await;
        add_user(&app, "officer.b", Role::DistrictOfficer, "11").await;
        add_user(&app, "officer.12", Role::DistrictOfficer, "12").await;
        let crvs_token = token(&app, "crvs.client", &["write"]).await;

        let sim = CrvsRegistry::start(
            "127.0.0.1:0".parse().unwrap(),
            CrvsPlan {
                faults: FaultPlan {
                    seed: 11,
                    // The CRVS is down for a while from the first request (our subscribe).
                    outage_after: Some(0),
                    outage: Duration::from_millis(1500),
                    ..Default::default()
                },
                duplicate_share: 0.3,
                reorder_share: 0.3,
                noisy_share: 0.25,
                unknown_share: 0.2,
                token: Some(crvs_token.clone()),
                ..Default::default()
            },
            known.values().map(|k| k.held.clone()).collect(),
        )
        .await
        .unwrap();
        let mut connector = CrvsConnector::new(sim.url(), app.url("/dci/crvs"));
        connector.resubscribe = Duration::from_secs(1);
        let settings = WorkerSettings {
            concurrency: 3,
            poll_interval: Duration::from_millis(20),
            lease: Duration::from_secs(30),
            retry: RetryPolicy {
                max_attempts: 10,
                base: Duration::from_millis(20),
                cap: Duration::from_millis(200),
            },
            retain_succeeded: None,
        };
        let handlers = Registry::new()
            .register(CrvsSubscribeHandler::new(connector.clone()).unwrap())
            .register(ProcessHandler::new(CrvsSettings {
                order_hold: Duration::from_secs(60),
                order_recheck: Duration::from_millis(50),
                ..Default::default()
            }));
        let stop = CancellationToken::new();
        let worker = tokio::spawn(run_with(store.clone(), settings, handlers, stop.clone()));
        let subscriber = tokio::spawn(run_subscriber(store.clone(), connector, stop.clone()));

        wait_for("subscribed after the downtime", async || {
            sim.subscribers() == 1
        })
        .await;
        assert!(
            sim.stats().outage_refusals > 0,
            "[{db_name}] {:?}",
            sim.stats()
        );

        let emitted = sim.emit(8, 6);
        settle(&store, &sim, emitted.len()).await;
        let stats = sim.stats();
        assert!(
            stats.duplicates_sent > 0 && stats.reordered > 0,
            "[{db_name}] faults were injected: {stats:?}"
        );
        let variants: HashSet<&str> = emitted.iter().map(|e| e.variant.as_str()).collect();
        assert!(
            variants.contains("exact") && variants.contains("unknown"),
            "{variants:?}"
        );

        // Each event once, however often delivered.
        let evs = events(&store).await;
        let ids: HashSet<&str> = evs.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), emitted.len(), "[{db_name}]");
        let deaths = check_outcomes(&store, &known, &emitted, &db_name).await;
        assert!(!deaths.is_empty(), "[{db_name}] some deaths were certain");
        // Nothing was processed twice: one request per processed event, one review per review.
        let requests = store
            .changes()
            .list_changes(
                &AreaScope::national(),
                &ChangeQuery {
                    submitted_by: Some("crvs:crvs-simulator".into()),
                    limit: 200,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let with_request = evs
            .iter()
            .filter(|e| {
                e.outcome
                    .as_ref()
                    .is_some_and(|o| o["change_request_id"].is_string())
            })
            .count();
        assert_eq!(requests.len(), with_request, "[{db_name}]");
        let (reviews, _) = store
            .linkage()
            .reviews(
                &AreaScope::national(),
                &ReviewQuery {
                    limit: 200,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let in_review = evs
            .iter()
            .filter(|e| e.status == EventStatus::Review)
            .count();
        let crvs_reviews = reviews
            .iter()
            .filter(|r| r.review.kind.starts_with("crvs_"))
            .count();
        assert_eq!(crvs_reviews, in_review, "[{db_name}]");

        // An officer confirms who a reviewed event is about: the request it calls for is
        // submitted and the event processed.
        add_user(&app, "national.officer", Role::NationalOfficer, "national").await;
        let nat = token(&app, "national.officer", &["read", "write"]).await;
        let reviewed = evs
            .iter()
            .find(|e| e.status == EventStatus::Review)
            .unwrap();
        let dying: HashSet<Uuid> = deaths.iter().map(|d| d.1).collect();
        let who = known
            .values()
            .find(|k| {
                if reviewed.event_type == "live_birth" {
                    k.held.national_id.starts_with("119907")
                } else {
                    !dying.contains(&k.person_id)
                }
            })
            .unwrap();
        let review_id = reviewed.outcome.as_ref().unwrap()["review_id"]
            .as_str()
            .unwrap();
        let confirm = |token: String| {
            let app = &app;
            let url = app.url(&format!("/api/v1/linkage/reviews/{review_id}/confirm"));
            let person = who.person_id;
            async move {
                let res = app
                    .client
                    .post(url)
                    .bearer_auth(token)
                    .header("x-purpose-of-use", "registration")
                    .json(&json!({"person_id": person, "reason": "same mother"}))
                    .send()
                    .await
                    .unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }
        };
        let (s, body) = confirm(nat.clone()).await;
        assert_eq!(s, 200, "[{db_name}] {body}");
        let kind = if reviewed.event_type == "live_birth" {
            "record_birth"
        } else {
            "record_death"
        };
        assert_eq!(
            body["change_request"]["change"]["kind"], kind,
            "[{db_name}] {body}"
        );
        assert_eq!(body["review"]["status"], "confirmed", "[{db_name}]");
        let after = by_event(&events(&store).await);
        let resolved = &after[&reviewed.event_id];
        assert_eq!(resolved.status, EventStatus::Processed, "[{db_name}]");
        assert_eq!(
            resolved.outcome.as_ref().unwrap()["change_request_id"],
            body["change_request"]["id"]
        );
        let (s, _) = confirm(nat).await;
        assert_eq!(s, 409, "[{db_name}] decided once");

        // A person's events were processed in the CRVS's order.
        let by_id = by_event(&evs);
        let mut two = 0;
        for e in emitted.iter().filter(|e| e.seq > 1) {
            let earlier = emitted
                .iter()
                .find(|x| x.subject == e.subject && x.seq == e.seq - 1)
                .unwrap();
            let (a, b) = (&by_id[&earlier.event_id], &by_id[&e.event_id]);
            assert!(
                a.processed_at.unwrap() <= b.processed_at.unwrap(),
                "[{db_name}] {} before {}",
                a.event_id,
                b.event_id
            );
            two += 1;
        }
        assert!(two > 0, "[{db_name}] some person had two events");

        // Approving a death (two tiers) exits the person's enrolments.
        let a = token(&app, "officer.a", &["read", "write"]).await;
        let b = token(&app, "officer.b", &["read", "write"]).await;
        // One death per household (the first notified): a second would name as new head
        // someone who died, or leave a head to name (officers decide those in turn; here we
        // keep it simple). Which households the simulator's deaths fall in varies between
        // runs, so the first of each household is taken rather than single-death households
        // only, which some runs have none of.
        let household_of = |p: &Uuid| {
            known
                .values()
                .find(|k| k.person_id == *p)
                .unwrap()
                .household_id
        };
        let mut seen_households: HashSet<Uuid> = HashSet::new();
        let approved: Vec<&(String, Uuid)> = deaths
            .iter()
            .filter(|(_, p)| seen_households.insert(household_of(p)))
            .collect();
        assert!(!approved.is_empty(), "[{db_name}] some death to approve");
        for (cr, _) in &approved {
            approve(&app, &a, cr).await;
            approve(&app, &b, cr).await;
        }
        let exited = store
            .programmes()
            .enrolments(
                &AreaScope::national(),
                &EnrolmentQuery {
                    programme: Some("vup_nsds".into()),
                    status: Some(EnrolmentStatus::Exited),
                    household: None,
                    limit: 100,
                },
            )
            .await
            .unwrap();
        let exited_people: HashSet<Uuid> = exited.iter().filter_map(|e| e.person_id).collect();
        let dead: HashSet<Uuid> = approved.iter().map(|d| d.1).collect();
        assert_eq!(exited_people, dead, "[{db_name}]");
        assert!(exited.iter().all(|e| e.reason.as_deref() == Some("death")));

        // Listed by status within the officer's area; another district sees nothing.
        let officer = token(&app, "officer.a", &["read", "purpose:registration"]).await;
        let (s, body) = list(&app, &officer, "?status=processed").await;
        assert_eq!(s, 200, "{body}");
        let processed = events(&store)
            .await
            .iter()
            .filter(|e| e.status == EventStatus::Processed)
            .count();
        assert_eq!(
            body["items"].as_array().unwrap().len(),
            processed,
            "[{db_name}]"
        );
        let foreign = token(&app, "officer.12", &["read", "purpose:registration"]).await;
        let (_, body) = list(&app, &foreign, "").await;
        assert_eq!(body["items"], json!([]), "[{db_name}]");
        let (s, body) = list(&app, &officer, "?status=maybe").await;
        assert_eq!(s, 400, "{body}");

        // A CRVS that lost its subscribers has Inkingi back within a round, and delivers again.
        sim.forget();
        wait_for("subscribed again", async || sim.subscribers() == 1).await;
        let more = sim.emit(1, 1);
        settle(&store, &sim, emitted.len() + more.len()).await;

        stop.cancel();
        worker.await.unwrap().unwrap();
        subscriber.await.unwrap();
        sim.stop();
    }
}

#[tokio::test]
async fn notify_is_refused_to_callers_without_national_scope_and_bad_events_are_named() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "officer.11", Role::DistrictOfficer, "11").await;
        add_user(&app, "crvs.client", Role::NationalOfficer, "national").await;
        let district = token(&app, "officer.11", &["write"]).await;
        let national = token(&app, "crvs.client", &["write"]).await;
        let body = |item: Value| {
            json!({"header": {"version": "1.0.0", "message_id": Uuid::now_v7().to_string(),
                "message_ts": Utc::now().to_rfc3339(), "action": "notify",
                "sender_id": "crvs", "total_count": 1},
                "message": {"transaction_id": "t", "notify_event": [item]}})
        };
        let good = json!({"event_id": "E1", "subject_id": "S", "seq": 1,
            "data": {"reg_event_type": "death", "reg_records": [{"name": {"given_name": "X"}}]}});
        let post = |token: String, b: Value| {
            let app = &app;
            async move {
                let res = app
                    .client
                    .post(app.url("/dci/crvs/notify"))
                    .bearer_auth(token)
                    .json(&b)
                    .send()
                    .await
                    .unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }
        };
        let (s, _) = post(district, body(good.clone())).await;
        assert_eq!(s, 403, "[{db:?}]");
        let mut bad = good.clone();
        bad["data"]["reg_event_type"] = json!("marriage");
        let (s, b) = post(national.clone(), body(bad)).await;
        assert_eq!(s, 400, "[{db:?}] {b}");
        assert_eq!(b["message"]["ack_status"], "ERR");
        assert!(
            b["message"]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("notify_event[0].data.reg_event_type"),
            "[{db:?}] {b}"
        );
        let (s, b) = post(national.clone(), body(good.clone())).await;
        assert_eq!(
            (s, &b["message"]["ack_status"]),
            (202, &json!("ACK")),
            "[{db:?}] {b}"
        );
        // The same event under another message id is not stored twice.
        let (s, _) = post(national, body(good)).await;
        assert_eq!(s, 202);
        assert_eq!(events(&app.store).await.len(), 1, "[{db:?}]");
    }
}
