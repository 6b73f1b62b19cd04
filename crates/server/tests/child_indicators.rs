//! Materialised services due, child indicators and the DHIS2 aggregate push, on every backend,
//! over real HTTP: facts sent as FHIR queue `children.services` jobs that the worker runs; the
//! stored statuses equal what the evaluator says on the fly; the worklist reads them; the batch
//! recompute writes the same; indicators count the children as the definitions say, the
//! drill-down names what each child lacks; the push sends them to the DHIS2 simulator through
//! the job queue and keeps the conflicts it answers.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{Days, Months, NaiveDate, Utc};
use common::children::register;
use common::programmes::{drain_jobs, drain_jobs_with};
use common::{add_user, bearer, session, token};
use inkingi_domain::children::indicators::RefMonth;
use inkingi_domain::children::schedule::{Schedules, ServiceStatus};
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::registry::{BirthDate, MemberRole, Name, PersonInput, Sex};
use inkingi_interop::dhis2::{Dhis2Connector, Mapping};
use inkingi_interop::simulate::dhis2::{Dhis2Plan, Dhis2Sim, ROOT_ORG_UNIT};
use inkingi_interop::simulate::faults::FaultPlan;
use inkingi_interop::worker::Registry;
use inkingi_server::children::dhis2::Dhis2Sync;
use inkingi_server::children::push::{enqueue_month, push_sector, PushHandler};
use inkingi_server::children::status::{follow_step, recompute_all, stored_occurrence};
use inkingi_store::child_status::{Evaluated, StatusRow};
use inkingi_store::registry::NewMember;
use inkingi_store::Store;
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const VILLAGE: &str = "11010102";
const TOKEN: &str = "d2pat_indicatortoken00000000000000001";

/// Vaccine, CVX code, dose, age in days when given (on its recommended day).
const EPI: &[(&str, &str, u32, u64)] = &[
    ("bcg", "19", 1, 0),
    ("opv-0", "02", 0, 0),
    ("opv-1", "02", 1, 42),
    ("opv-2", "02", 2, 70),
    ("opv-3", "02", 3, 98),
    ("penta-1", "102", 1, 42),
    ("penta-2", "102", 2, 70),
    ("penta-3", "102", 3, 98),
    ("pcv-1", "133", 1, 42),
    ("pcv-2", "133", 2, 70),
    ("pcv-3", "133", 3, 98),
    ("rota-1", "116", 1, 42),
    ("rota-2", "116", 2, 70),
    ("rota-3", "116", 3, 98),
    ("ipv-1", "10", 1, 98),
];

struct Kids {
    /// Turned one on the 1st of this month, every dose given: fully immunised.
    full: Uuid,
    /// Same age, measles-rubella 1 never given, never weighed.
    gap: Uuid,
    /// About 200 days old, far too short for the age: severely stunted.
    short: Uuid,
    born: NaiveDate,
}

fn child(given: &str, sex: Sex, born: NaiveDate, brn: Option<&str>) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: PersonInput {
            given_name: Name::parse(given).unwrap(),
            family_name: Name::parse("Mugabo").unwrap(),
            sex,
            birth_date: Some(BirthDate::exact(born)),
            national_id: None,
            birth_registration: brn.map(str::to_string),
            refugee_id: None,
            passport: None,
            phones: vec![],
            answers: Default::default(),
        },
        role: MemberRole::Child,
        since: born,
        mother_id: None,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

async fn household(store: &Store, today: NaiveDate) -> Kids {
    let born = RefMonth::of(today).minus(12).first_day();
    let mut head = child(
        "Jean",
        Sex::Male,
        NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        None,
    );
    head.role = MemberRole::Head;
    let full = child("Full", Sex::Female, born, Some("BR-2025-000777"));
    let gap = child("Gap", Sex::Male, born, None);
    let short = child("Short", Sex::Female, today - Days::new(200), None);
    let kids = Kids {
        full: full.id,
        gap: gap.id,
        short: short.id,
        born,
    };
    register(store, VILLAGE, vec![head, full, gap, short]).await;
    kids
}

fn resource(r: Value) -> Value {
    json!({"fullUrl": format!("urn:uuid:{}", Uuid::now_v7()), "resource": r,
        "request": {"method": "POST", "url": r["resourceType"]}})
}

fn dose(kid: Uuid, code: &str, n: u32, on: NaiveDate) -> Value {
    let dose = if n == 0 {
        json!({"doseNumberString": "0"})
    } else {
        json!({"doseNumberPositiveInt": n})
    };
    resource(
        json!({"resourceType": "Immunization", "id": format!("{kid}-{code}-{n}"),
        "status": "completed", "patient": {"reference": format!("Patient/{kid}")},
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": code}]},
        "occurrenceDateTime": on.to_string(), "protocolApplied": [dose]}),
    )
}

fn measure(kid: Uuid, loinc: &str, value: f64, unit: &str, on: NaiveDate) -> Value {
    resource(
        json!({"resourceType": "Observation", "id": format!("{kid}-{loinc}-{on}"),
        "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": format!("Patient/{kid}")}, "effectiveDateTime": on.to_string(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
            "code": unit}}),
    )
}

/// What the nurse sends: every dose of `full`, all but measles-rubella 1 of `gap`, growth
/// visits today for `full` and `short`.
fn bundle(k: &Kids, today: NaiveDate) -> Value {
    let mut entries = Vec::new();
    for kid in [k.full, k.gap] {
        for (_, code, n, age) in EPI {
            entries.push(dose(kid, code, *n, k.born + Days::new(*age)));
        }
    }
    let nine = k.born.checked_add_months(Months::new(9)).unwrap();
    entries.push(dose(k.full, "04", 1, nine));
    entries.push(measure(k.full, "29463-7", 9.2, "kg", today));
    entries.push(measure(k.full, "8306-3", 74.5, "cm", today));
    entries.push(measure(k.short, "29463-7", 6.0, "kg", today));
    entries.push(measure(k.short, "8306-3", 55.0, "cm", today));
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// (service, occurrence, status) of a services answer or of stored rows.
fn keyed(list: impl Iterator<Item = (String, u64, String)>) -> BTreeSet<(String, u64, String)> {
    list.collect()
}

async fn stored(store: &Store, id: Uuid) -> BTreeSet<(String, u64, String)> {
    let rows = store.child_status().rows_of(&[id]).await.unwrap();
    keyed(rows.into_iter().map(|r| {
        (
            r.service,
            u64::from(r.occurrence),
            r.status.as_str().to_string(),
        )
    }))
}

async fn json_of(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let res = bearer(app, path, token).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn services_are_materialised_counted_drilled_into_and_pushed() {
    let today = Utc::now().date_naive();
    let month = RefMonth::of(today);
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let store = app.store.clone();
        let k = household(&store, today).await;
        add_user(&app, "nurse", Role::HealthWorker, "11").await;
        let nurse = token(&app, "nurse", &["read", "write", "purpose:healthcare"]).await;
        let res = app
            .client
            .post(app.url("/fhir/R4"))
            .bearer_auth(&nurse)
            .header("content-type", "application/fhir+json")
            .json(&bundle(&k, today))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "[{db:?}] {}", res.text().await.unwrap());

        // Nothing materialised until the jobs queued with the facts have run.
        assert!(stored(&store, k.full).await.is_empty(), "[{db:?}]");
        drain_jobs(&app).await;
        let all = Schedules::embedded().unwrap();
        let short_born = today - Days::new(200);
        for (kid, born) in [(k.full, k.born), (k.gap, k.born), (k.short, short_born)] {
            let (status, svc) =
                json_of(&app, &format!("/api/v1/children/{kid}/services"), &nurse).await;
            assert_eq!(status, 200, "[{db:?}] {svc}");
            let live: Vec<ServiceStatus> = serde_json::from_value(svc["services"].clone()).unwrap();
            let kept = keyed(
                live.iter()
                    .filter(|s| stored_occurrence(all, s, Some(born), today))
                    .map(|s| {
                        (
                            s.service.clone(),
                            u64::from(s.occurrence),
                            s.status.as_str().to_string(),
                        )
                    }),
            );
            assert_eq!(
                stored(&store, kid).await,
                kept,
                "[{db:?}] stored = the evaluated occurrences a reader needs"
            );
        }
        // Full had every dose on its day: none of them is stored (history), and she still
        // counts as fully immunised below; Gap's missing dose is stored.
        let full_rows = stored(&store, k.full).await;
        assert!(
            !full_rows.iter().any(|(_, _, st)| st == "completed"),
            "[{db:?}] {full_rows:?}"
        );
        assert!(
            stored(&store, k.gap)
                .await
                .iter()
                .any(|(service, _, st)| service == "mr-1" && st != "completed"),
            "[{db:?}]"
        );

        // The worklist reads the stored statuses: Gap is overdue for measles-rubella 1.
        let (status, wl) = json_of(
            &app,
            &format!("/api/v1/worklists/overdue?area={VILLAGE}"),
            &nurse,
        )
        .await;
        assert_eq!(status, 200, "[{db:?}] {wl}");
        let listed: Vec<&Value> = wl["villages"][0]["children"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        let gap = listed
            .iter()
            .find(|c| c["person_id"] == k.gap.to_string())
            .unwrap();
        assert!(
            gap["overdue"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["service"] == "mr-1"),
            "[{db:?}] {gap}"
        );
        assert!(
            listed.iter().all(|c| c["person_id"] != k.full.to_string()
                || c["overdue"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|o| o["service"] != "mr-1")),
            "[{db:?}]"
        );
        assert_eq!(wl["children_checked"], 3, "[{db:?}]");

        // The batch recompute finds the same statuses, so it writes nothing; it removes the
        // rows of someone no longer in the registry.
        let before = stored(&store, k.gap).await;
        let gone = Uuid::now_v7();
        let mut stale = StatusRow {
            person_id: gone,
            ..store.child_status().rows_of(&[k.gap]).await.unwrap()[0].clone()
        };
        stale.evaluated_on = today - Days::new(1);
        let mut uow = store.begin().await.unwrap();
        let old = Evaluated {
            person_id: gone,
            rows: vec![stale],
            base: None,
        };
        store
            .child_status()
            .replace(&mut uow, &[old])
            .await
            .unwrap();
        uow.commit().await.unwrap();
        let sum = recompute_all(&store, today, 2, |_| {}).await.unwrap();
        assert_eq!(sum.children, 3, "[{db:?}] {sum:?}");
        assert_eq!((sum.written, sum.removed), (0, 1), "[{db:?}] {sum:?}");
        assert_eq!(stored(&store, k.gap).await, before, "[{db:?}]");
        assert!(stored(&store, gone).await.is_empty(), "[{db:?}]");

        // Indicators of the sector, by cell.
        let (status, t) = json_of(
            &app,
            &format!("/api/v1/children/indicators?area=1101&month={month}"),
            &nurse,
        )
        .await;
        assert_eq!(status, 200, "[{db:?}] {t}");
        let cell = |code: &str| t["total"]["indicators"][code].clone();
        let nd = |code: &str| {
            (
                cell(code)["numerator"].clone(),
                cell(code)["denominator"].clone(),
            )
        };
        assert_eq!(nd("fic12"), (json!(1), json!(2)), "[{db:?}] {t}");
        assert_eq!(
            nd("stunting"),
            (json!(1), json!(2)),
            "[{db:?}] Full and Short measured"
        );
        assert_eq!(cell("stunting")["severe"], 1, "[{db:?}]");
        assert_eq!(nd("wasting").1, json!(2), "[{db:?}]");
        assert_eq!(nd("growth_monitoring"), (json!(2), json!(3)), "[{db:?}]");
        assert_eq!(nd("birth_registration"), (json!(1), json!(3)), "[{db:?}]");
        assert_eq!(nd("preprimary_enrolment").1, json!(0), "[{db:?}]");
        assert_eq!(t["areas"][0]["area"], "110101", "[{db:?}] by cell");
        assert_eq!(t["areas"][0]["indicators"]["fic12"]["denominator"], 2);

        // Drill-down: who misses what.
        let (status, m) = json_of(
            &app,
            &format!("/api/v1/children/indicators/fic12/missing?area=1101&month={month}"),
            &nurse,
        )
        .await;
        assert_eq!(status, 200, "[{db:?}] {m}");
        assert_eq!(m["children"].as_array().unwrap().len(), 1, "[{db:?}] {m}");
        assert_eq!(m["children"][0]["person_id"], k.gap.to_string());
        assert_eq!(m["children"][0]["missing"], json!(["mr-1"]), "[{db:?}]");
        let (_, m) = json_of(
            &app,
            &format!("/api/v1/children/indicators/stunting/missing?area={VILLAGE}&month={month}"),
            &nurse,
        )
        .await;
        assert_eq!(
            m["children"][0]["person_id"],
            k.short.to_string(),
            "[{db:?}] {m}"
        );
        assert_eq!(m["children"][0]["missing"], json!(["severe"]), "[{db:?}]");
        let (status, _) = json_of(
            &app,
            "/api/v1/children/indicators/height/missing?area=1101",
            &nurse,
        )
        .await;
        assert_eq!(status, 404, "[{db:?}]");
        let (status, _) = json_of(
            &app,
            "/api/v1/children/indicators?area=1101&month=2026-13",
            &nurse,
        )
        .await;
        assert_eq!(status, 400, "[{db:?}]");

        // Out of scope: another district's nurse may not look, aggregate or not.
        add_user(&app, "far", Role::HealthWorker, "12").await;
        let far = token(&app, "far", &["read", "purpose:healthcare"]).await;
        for path in [
            "/api/v1/children/indicators?area=1101",
            "/api/v1/children/indicators/fic12/missing?area=1101",
        ] {
            let (status, _) = json_of(&app, path, &far).await;
            assert_eq!(status, 403, "[{db:?}] {path}");
        }
        // Their own district has nobody yet.
        let (_, t12) = json_of(&app, "/api/v1/children/indicators", &far).await;
        assert_eq!(t12["area"], "12", "[{db:?}] {t12}");
        assert_eq!(t12["total"]["indicators"]["fic12"]["denominator"], 0);

        // The page, with links down and to the drill-down.
        add_user(&app, "officer", Role::DistrictOfficer, "11").await;
        let cookie = session(&app, "officer").await;
        let res = app
            .client
            .get(app.url(&format!(
                "/children/indicators?area=1101&month={month}&lang=en"
            )))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "[{db:?}]");
        let html = res.text().await.unwrap();
        assert!(html.contains("Fully immunised at 12 months"), "[{db:?}]");
        assert!(
            html.contains(&format!(
                "/children/indicators/fic12/missing?area=110101&amp;month={month}"
            )),
            "[{db:?}]"
        );
        // The drill-down page behind a figure: health roles only, the child linked to her
        // record with what she lacks.
        let drill = format!("/children/indicators/fic12/missing?area=1101&month={month}&lang=en");
        let res = app
            .client
            .get(app.url(&drill))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            403,
            "[{db:?}] an officer reads no health data"
        );
        let nurse_cookie = session(&app, "nurse").await;
        let res = app
            .client
            .get(app.url(&drill))
            .header("cookie", &nurse_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "[{db:?}]");
        let html = res.text().await.unwrap();
        assert!(
            html.contains(&format!("href=\"/children/{}\"", k.gap)),
            "[{db:?}] {html}"
        );
        assert!(html.contains("mr-1"), "[{db:?}] {html}");
        assert!(
            !html.contains(&k.full.to_string()),
            "[{db:?}] only the child missing a dose"
        );

        // A child registered later (a registry event, no fact yet): the follower queues them.
        let pos = store.lookup_feed().start_position().await.unwrap();
        let mut head = child(
            "Anne",
            Sex::Female,
            NaiveDate::from_ymd_opt(1996, 5, 5).unwrap(),
            None,
        );
        head.role = MemberRole::Head;
        let newborn = child("Nshuti", Sex::Male, today - Days::new(3), None);
        let newborn_id = newborn.id;
        register(&store, VILLAGE, vec![head, newborn]).await;
        // PostgreSQL shows an event once every older transaction has ended: ask until it does.
        let mut queued = 0;
        for _ in 0..100 {
            queued = follow_step(&store, pos).await.unwrap().1;
            if queued > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(queued, 2, "[{db:?}] the household's members");
        drain_jobs(&app).await;
        assert!(
            stored(&store, newborn_id)
                .await
                .contains(&("bcg".to_string(), 1, "due".to_string())),
            "[{db:?}]"
        );

        push_to_dhis2(&app, month, &db).await;

        // Every read was audited: the aggregates as such, the drill-down with its purpose.
        let entries = store
            .audit()
            .query(
                &AreaScope::national(),
                &inkingi_store::audit::AuditQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e.record.action.as_str()).collect();
        for a in [
            "children.indicators.read",
            "children.indicator_missing.read",
        ] {
            assert!(actions.contains(&a), "[{db:?}] {a} not in {actions:?}");
        }
        app.stop().await;
    }
}

/// The push through the job queue to the simulator, one data element refused on demand and a
/// fifth of requests failing: values land once, the conflict is kept.
async fn push_to_dhis2(app: &TestApp, month: RefMonth, db: &impl std::fmt::Debug) {
    let plan = Dhis2Plan {
        faults: FaultPlan {
            seed: 5,
            fail_share: 0.2,
            ..Default::default()
        },
        token: TOKEN.into(),
        missed_share: 0.1,
        reject_data_elements: vec!["DeGmpNum001".into()],
    };
    let mapping = Mapping::embedded().unwrap();
    let sim = Dhis2Sim::start(
        "127.0.0.1:0".parse().unwrap(),
        plan,
        mapping.clone(),
        &[],
        Utc::now().date_naive(),
    )
    .await
    .unwrap();
    let mut connector = Dhis2Connector::new(sim.url(), TOKEN, ROOT_ORG_UNIT);
    connector.timeout = Duration::from_secs(5);
    let sync = Dhis2Sync::new(connector, mapping.clone()).unwrap();
    let agg = mapping.aggregate.clone().unwrap();
    let sectors = enqueue_month(&app.store, &agg, month).await.unwrap();
    assert_eq!(sectors, ["1101", "1201"], "[{db:?}]");
    // Queued again the same day: nothing new.
    enqueue_month(&app.store, &agg, month).await.unwrap();
    drain_jobs_with(
        app,
        Registry::new().register(PushHandler::new(sync.clone())),
    )
    .await;
    assert_eq!(sim.stats().data_value_sets, 2, "[{db:?}] one per sector");

    let period = month.dhis2_period();
    let value = |de: &str, coc: &str| {
        sim.data_values()
            .into_iter()
            .find(|v| v.0 == de && v.1 == coc && v.2 == "OuHcNyarugB" && v.3 == period)
            .map(|v| v.4)
    };
    assert_eq!(
        value("DeFic12Num1", "HllvX50cXC0").as_deref(),
        Some("1"),
        "[{db:?}]"
    );
    assert_eq!(
        value("DeFic12Den1", "HllvX50cXC0").as_deref(),
        Some("2"),
        "[{db:?}]"
    );
    assert_eq!(
        value("DeStuntCas1", "CocSevere01").as_deref(),
        Some("1"),
        "[{db:?}]"
    );
    assert_eq!(
        value("DeGmpNum001", "HllvX50cXC0"),
        None,
        "[{db:?}] refused"
    );

    let pushes = app
        .store
        .child_status()
        .pushes(&AreaScope::national(), &period)
        .await
        .unwrap();
    assert_eq!(pushes.len(), 2, "[{db:?}] {pushes:?}");
    let p = &pushes[0];
    assert_eq!(
        (p.sector_code.as_str(), p.status.as_str()),
        ("1101", "WARNING")
    );
    assert_eq!(p.conflicts[0]["object"], "DeGmpNum001", "[{db:?}] {p:?}");
    assert_eq!(p.imported + 1, p.values_sent, "[{db:?}] {p:?}");

    // Pushed again: DHIS2 updates the values, it does not add any.
    let before = sim.data_values().len();
    let again = loop {
        match push_sector(&sync, &app.store, "1101", month).await {
            Ok(r) => break r,
            // An injected failure: try again, as the job would.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!((again.imported, again.updated + 1), (0, again.values_sent));
    assert_eq!(sim.data_values().len(), before, "[{db:?}]");
    sim.stop();
}

#[tokio::test]
async fn the_daily_recompute_is_queued_once_a_day_and_fills_the_statuses() {
    use inkingi_server::children::status::{queue_daily_recompute, RecomputeHandler};
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let today = Utc::now().date_naive();
        // Registered straight in the store: no fact, so no per-event job has run for them.
        let kids = household(&app.store, today).await;
        assert!(stored(&app.store, kids.gap).await.is_empty(), "[{db:?}]");

        // Before the hour (00:30 in Kigali) nothing is queued; after it, one job however many
        // workers ask.
        let night = NaiveDate::from_ymd_opt(2026, 3, 9)
            .unwrap()
            .and_hms_opt(22, 30, 0)
            .unwrap()
            .and_utc();
        assert!(!queue_daily_recompute(&app.store, night).await.unwrap());
        let morning = night + chrono::Duration::hours(5);
        assert!(queue_daily_recompute(&app.store, morning).await.unwrap());
        assert!(queue_daily_recompute(&app.store, morning).await.unwrap());
        let queued = app.store.jobs().stats().await.unwrap();
        // Nothing else is queued in the children's queue: no fact was received.
        let recomputes: u64 = queued
            .counts
            .iter()
            .filter(|c| c.queue == "children")
            .map(|c| c.count)
            .sum();
        assert_eq!(recomputes, 1, "[{db:?}] one job for the day: {queued:?}");

        drain_jobs_with(&app, Registry::with_builtins().register(RecomputeHandler)).await;
        let rows = stored(&app.store, kids.gap).await;
        assert!(
            rows.iter().any(|(service, _, _)| service == "mr-1"),
            "[{db:?}] the child's measles-rubella dose is stored: {rows:?}"
        );
        app.stop().await;
    }
}
