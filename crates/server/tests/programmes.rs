//! Targeting and programmes over HTTP on every configured backend: versioned models and rule
//! sets (refusals name the field and position and save nothing), scores recomputed by the
//! `targeting.rescore` job and in batch, programmes, the enrolment lifecycle with its waiting
//! list, concurrent enrolment against capacity, and the consolidated beneficiary registry.

#![allow(clippy::unwrap_used)]

mod common;

use common::programmes::{drain_jobs, Client};
use common::{add_user, token};
use inkingi_domain::identity::Role;
use inkingi_domain::targeting::ScoringModel;
use inkingi_store::jobs::JobFilter;
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};

async fn manager(app: &TestApp) -> Client<'_> {
    add_user(app, "prog.manager", Role::ProgrammeManager, "national").await;
    add_user(app, "district.officer", Role::DistrictOfficer, "11").await;
    Client {
        app,
        token: token(app, "prog.manager", &["read", "write"]).await,
        purpose: "programme-administration",
    }
}

/// Registers a household of `members` adults in the test village, as the district officer.
async fn household(app: &TestApp, members: usize, rooms: u32) -> (String, Vec<String>) {
    common::programmes::household(app, "district.officer", members, rooms).await
}

#[tokio::test]
async fn models_and_rule_sets_are_versioned_and_bad_ones_are_refused() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let pm = manager(&app).await;
        let (s, list) = pm.get("/api/v1/targeting/models").await;
        assert_eq!(s, 200);
        assert_eq!(
            list.as_array().unwrap().len(),
            1,
            "the shipped model is saved: {list}"
        );

        let mut model: Value =
            serde_json::from_str(inkingi_domain::targeting::scoring::DEFAULT_MODEL_JSON).unwrap();
        model["version"] = 2.into();
        model["weighting"] = "heavy".into();
        let (s, p) = pm.post("/api/v1/targeting/models", model.clone()).await;
        assert_eq!(s, 422, "[{db:?}] {p}");
        assert!(
            p["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("weighting"),
            "{p}"
        );

        model.as_object_mut().unwrap().remove("weighting");
        model["categories"][0]["colour"] = "red".into();
        let (s, p) = pm.post("/api/v1/targeting/models", model.clone()).await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "categories[0].colour", "{p}");

        model["categories"][0]
            .as_object_mut()
            .unwrap()
            .remove("colour");
        model["intercept"] = json!(model["intercept"].as_f64().unwrap() - 5.0);
        let (s, p) = pm.post("/api/v1/targeting/models", model.clone()).await;
        assert_eq!(s, 201, "{p}");
        let (s, _) = pm.post("/api/v1/targeting/models", model.clone()).await;
        assert_eq!(s, 409, "the same version twice");
        let (s, got) = pm
            .get("/api/v1/targeting/models/pmt-default/versions/2")
            .await;
        assert_eq!(s, 200);
        assert_eq!(got["model"]["intercept"], model["intercept"]);

        // A rule that does not parse, or does not type-check, is refused and never saved.
        let (s, p) = pm
            .post(
                "/api/v1/targeting/rule-sets",
                json!({"id": "ds", "version": 1, "rule": "score < 40 and"}),
            )
            .await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "rule");
        assert!(
            p["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("line 1, column 15"),
            "{p}"
        );
        let (s, p) = pm
            .post(
                "/api/v1/targeting/rule-sets",
                json!({"id": "ds", "version": 1, "rule": "size == \"large\""}),
            )
            .await;
        assert_eq!(s, 422, "{p}");
        let (_, list) = pm.get("/api/v1/targeting/rule-sets").await;
        assert_eq!(list, json!([]));

        let rule = "category in [\"1\", \"2\"] and labour_capacity == 0";
        let (s, p) = pm
            .post(
                "/api/v1/targeting/rule-sets",
                json!({"id": "ds", "version": 1, "rule": rule, "description": "DS"}),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        let (_, list) = pm.get("/api/v1/targeting/rule-sets").await;
        assert_eq!(list[0]["rule"], rule);
        let (s, check) = pm
            .post("/api/v1/targeting/rule-check", json!({"rule": "score <"}))
            .await;
        assert_eq!(s, 200);
        assert_eq!(check["valid"], false);
        assert_eq!(check["error"]["column"], 8, "{check}");
        app.stop().await;
    }
}

#[tokio::test]
async fn scores_are_recomputed_by_a_job_and_in_batch() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let pm = manager(&app).await;
        let (hh, _) = household(&app, 3, 1).await;
        let jobs = app.store.jobs().list(&JobFilter::default()).await.unwrap();
        assert!(
            jobs.iter()
                .any(|j| j.kind == "targeting.rescore" && j.payload["household_id"] == hh.as_str()),
            "[{db:?}] registering enqueues a rescore: {jobs:?}"
        );
        let (s, _) = pm.get(&format!("/api/v1/households/{hh}/score")).await;
        assert_eq!(s, 404, "not scored before the job runs");
        drain_jobs(&app).await;
        let (s, score) = pm.get(&format!("/api/v1/households/{hh}/score")).await;
        assert_eq!(s, 200, "{score}");
        assert_eq!(score["model_id"], "pmt-default");
        assert_eq!(score["model_version"], 1);
        let e = &score["explanation"];
        let sum: f64 = e["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contribution"].as_f64().unwrap())
            .sum::<f64>()
            + e["intercept"].as_f64().unwrap();
        assert!((sum - e["raw"].as_f64().unwrap()).abs() < 1e-9, "{score}");
        let expected = ScoringModel::default_model();
        let value = score["score"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&value));
        let band = expected
            .categories
            .iter()
            .find(|c| c.below.is_none_or(|b| value < b))
            .unwrap();
        assert_eq!(score["category"], band.name.as_str());

        // Batch: a second household (no job run) and a new model version score everyone.
        let (hh2, _) = household(&app, 6, 1).await;
        let mut model = ScoringModel::default_model();
        model.version = 2;
        model.intercept -= 3.0;
        app.store
            .targeting()
            .save_model(&model, "test")
            .await
            .unwrap();
        let run = app
            .store
            .targeting()
            .score_all(&model, |_| {})
            .await
            .unwrap();
        assert_eq!(run.households, 2);
        for id in [&hh, &hh2] {
            let (s, sc) = pm.get(&format!("/api/v1/households/{id}/score")).await;
            assert_eq!(s, 200);
            assert_eq!(sc["model_version"], 2, "{sc}");
        }
        let (_, again) = pm.get(&format!("/api/v1/households/{hh}/score")).await;
        assert!(
            again["score"].as_f64().unwrap() <= value,
            "a lower intercept lowers the score"
        );

        // Someone scoped to another district does not see the score.
        add_user(&app, "far.officer", Role::DistrictOfficer, "12").await;
        let far = Client {
            app: &app,
            token: token(&app, "far.officer", &["read"]).await,
            purpose: "registration",
        };
        let (s, _) = far.get(&format!("/api/v1/households/{hh}/score")).await;
        assert_eq!(s, 404);
        app.stop().await;
    }
}

fn programme(code: &str, rule: &str, capacity: Option<u32>, overlaps: &[&str]) -> Value {
    let mut p = json!({
        "code": code, "name": format!("Programme {code}"), "agency": "loda",
        "target": "household", "eligibility": rule,
        "benefit": {"type": "per_member", "base": 1000, "per_member": 500, "cap": 3000},
        "frequency": "monthly", "overlaps_with": overlaps
    });
    if let Some(c) = capacity {
        p["capacity"] = c.into();
    }
    p
}

#[tokio::test]
async fn enrolment_lifecycle_capacity_and_beneficiary_registry() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let pm = manager(&app).await;
        let catalogue = inkingi_domain::programmes::Catalogue::rw_illustrative().unwrap();
        let load = inkingi_store::programmes::load_catalogue(&app.store, &catalogue, "test")
            .await
            .unwrap();
        assert_eq!((load.agencies, load.programmes_created), (4, 9));
        let (_, list) = pm.get("/api/v1/programmes").await;
        assert_eq!(list.as_array().unwrap().len(), 9);

        // A programme whose rule does not compile is refused with the field and position.
        let (s, p) = pm
            .post(
                "/api/v1/programmes",
                programme("broken", "size >= ", Some(2), &[]),
            )
            .await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "eligibility");
        assert!(
            p["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("line 1, column"),
            "{p}"
        );
        let mut bad = programme("broken", "size >= 1", Some(2), &[]);
        bad["benefit"]["bonus"] = 1.into();
        let (s, p) = pm.post("/api/v1/programmes", bad).await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "benefit");

        let (s, p) = pm
            .post(
                "/api/v1/programmes",
                programme("small", "size >= 1", Some(2), &["works"]),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        pm.post(
            "/api/v1/programmes",
            programme("works", "size >= 1", None, &[]),
        )
        .await;
        pm.post(
            "/api/v1/programmes",
            programme("big_only", "size >= 10", None, &[]),
        )
        .await;

        let mut households = Vec::new();
        for i in 0..5 {
            // Larger households in fewer rooms score lower (poorer).
            households.push(household(&app, 1 + i, 1).await.0);
        }
        let model = app
            .store
            .targeting()
            .current_model()
            .await
            .unwrap()
            .unwrap();
        app.store
            .targeting()
            .score_all(&model, |_| {})
            .await
            .unwrap();

        // Not eligible: refused with the explanation.
        let (s, p) = pm
            .post(
                "/api/v1/programmes/big_only/enrolments",
                json!({"household": households[0]}),
            )
            .await;
        assert_eq!(s, 422, "{p}");
        assert!(
            p["detail"].as_str().unwrap().starts_with("not eligible"),
            "{p}"
        );

        // Five concurrent enrolments into two places: two enrolled, three waiting.
        let calls = households.iter().map(|h| {
            pm.post(
                "/api/v1/programmes/small/enrolments",
                json!({"household": h, "reason": "community validation"}),
            )
        });
        let results = futures::future::join_all(calls).await;
        let mut by_status = std::collections::BTreeMap::<String, Vec<Value>>::new();
        for (s, e) in results {
            assert_eq!(s, 201, "[{db:?}] {e}");
            by_status
                .entry(e["status"].as_str().unwrap().to_string())
                .or_default()
                .push(e);
        }
        assert_eq!(by_status["enrolled"].len(), 2, "[{db:?}] {by_status:?}");
        assert_eq!(by_status["waiting"].len(), 3);
        let (s, _) = pm
            .post(
                "/api/v1/programmes/small/enrolments",
                json!({"household": households[0]}),
            )
            .await;
        assert_eq!(s, 409, "one open enrolment per household");

        // The waiting list is ordered poorest score first.
        let (_, waiting) = pm
            .get("/api/v1/programmes/small/enrolments?status=waiting")
            .await;
        let scores: Vec<f64> = waiting
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["score"].as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), 3);
        assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");

        // Exiting needs a reason; the freed place goes to the first waiting.
        let first = &by_status["enrolled"][0];
        let id = first["id"].as_str().unwrap();
        let (s, p) = pm
            .post(
                &format!("/api/v1/enrolments/{id}/transition"),
                json!({"to": "exited"}),
            )
            .await;
        assert_eq!(s, 422, "{p}");
        let (s, p) = pm
            .post(
                &format!("/api/v1/enrolments/{id}/transition"),
                json!({"to": "graduated", "reason": "income above threshold"}),
            )
            .await;
        assert_eq!(s, 200, "{p}");
        assert_eq!(p["enrolment"]["status"], "graduated");
        assert_eq!(p["promoted"]["id"], waiting[0]["id"], "{p}");
        assert_eq!(p["promoted"]["status"], "enrolled");
        let (s, p) = pm
            .post(
                &format!("/api/v1/enrolments/{id}/transition"),
                json!({"to": "enrolled"}),
            )
            .await;
        assert_eq!(s, 422, "graduated is final: {p}");
        // Waiting → enrolled while full is refused.
        let w = waiting[1]["id"].as_str().unwrap();
        let (s, p) = pm
            .post(
                &format!("/api/v1/enrolments/{w}/transition"),
                json!({"to": "enrolled"}),
            )
            .await;
        assert_eq!(s, 409, "{p}");

        let (s, view) = pm.get(&format!("/api/v1/enrolments/{id}")).await;
        assert_eq!(s, 200);
        let moves: Vec<(Value, Value, Value)> = view["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["from"].clone(), e["to"].clone(), e["actor"].clone()))
            .collect();
        assert_eq!(
            moves,
            vec![
                (Value::Null, json!("eligible"), json!("prog.manager")),
                (json!("eligible"), json!("enrolled"), json!("prog.manager")),
                (json!("enrolled"), json!("graduated"), json!("prog.manager")),
            ]
        );

        // The beneficiary registry: enrolled anywhere, in what, since when; overlaps flagged.
        let promoted_hh = waiting[0]["household_id"].as_str().unwrap().to_string();
        let (s, e) = pm
            .post(
                "/api/v1/programmes/works/enrolments",
                json!({"household": promoted_hh}),
            )
            .await;
        assert_eq!(s, 201, "{e}");
        let (s, b) = pm
            .get(&format!("/api/v1/beneficiaries?household={promoted_hh}"))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["enrolled_anywhere"], true);
        let progs: Vec<&str> = b["enrolments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["programme"].as_str().unwrap())
            .collect();
        assert_eq!(progs.len(), 2, "{b}");
        assert!(progs.contains(&"small") && progs.contains(&"works"));
        assert!(b["enrolments"][0]["since"].is_string());
        assert_eq!(
            b["overlaps"][0]["programmes"],
            json!(["small", "works"]),
            "{b}"
        );
        let (s, _) = pm.get("/api/v1/beneficiaries").await;
        assert_eq!(s, 400);

        // A household in no programme; and the lookup by person.
        let (lonely, people) = household(&app, 2, 2).await;
        let (_, b) = pm
            .get(&format!("/api/v1/beneficiaries?household={lonely}"))
            .await;
        assert_eq!(b["enrolled_anywhere"], false);
        assert_eq!(b["enrolments"], json!([]));
        let (s, b) = pm
            .get(&format!("/api/v1/beneficiaries?person={}", people[1]))
            .await;
        assert_eq!(s, 200);
        assert_eq!(b["household_id"], lonely.as_str());

        // Scoped: an officer of another district sees nothing of it.
        add_user(&app, "far.officer", Role::DistrictOfficer, "12").await;
        let far = Client {
            app: &app,
            token: token(&app, "far.officer", &["read"]).await,
            purpose: "registration",
        };
        let (s, _) = far
            .get(&format!("/api/v1/beneficiaries?household={promoted_hh}"))
            .await;
        assert_eq!(s, 404);
        // Every enrolment and transition is audited with its actor.
        let audit = app
            .store
            .audit()
            .query(
                &inkingi_domain::identity::AreaScope::national(),
                &inkingi_store::audit::AuditQuery {
                    actor: Some("prog.manager".into()),
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let actions: Vec<&str> = audit.iter().map(|a| a.record.action.as_str()).collect();
        assert_eq!(
            actions.iter().filter(|a| **a == "enrolment.create").count(),
            6,
            "{actions:?}"
        );
        assert!(actions.contains(&"enrolment.transition"));
        app.stop().await;
    }
}

/// One household of the simulation test: its village, adults and children under five.
struct Home {
    village: &'static str,
    adults: usize,
    kids: usize,
}

/// Registers a household through the API as `officer`; returns its id and its children's ids.
async fn register(app: &TestApp, officer: &str, h: &Home) -> (String, Vec<String>) {
    use chrono::Datelike as _;
    let t = common::token(app, officer, &["write"]).await;
    let kid_born = format!("{}-01-01", chrono::Utc::now().year() - 2);
    let mut members = Vec::new();
    for i in 0..h.adults {
        members.push(
            json!({"given_name": format!("Adult{i}"), "family_name": "Mugabo",
            "sex": "M", "birth_date": "1980-03-01",
            "role": if i == 0 { "head" } else { "other_relative" }}),
        );
    }
    for i in 0..h.kids {
        members.push(
            json!({"given_name": format!("Kid{i}"), "family_name": "Mugabo",
            "sex": "F", "birth_date": kid_born, "role": "child"}),
        );
    }
    let body = json!({
        "village": h.village,
        "answers": {"tenure": "owner", "wall": "mud_bricks", "roof": "iron_sheets",
            "floor": "earth", "rooms": 2, "water_source": "public_tap",
            "toilet": "pit_latrine_slab", "lighting": "solar", "cooking_fuel": "firewood",
            "owns_land": false, "owns_livestock": false, "income_sources": ["farming"],
            "meals_per_day": 2},
        "members": members,
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
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    let kids = v["members"].as_array().unwrap()[h.adults..]
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    (v["id"].as_str().unwrap().to_string(), kids)
}

/// What the test expects of one programme in one area, worked out from the households.
#[derive(Debug, Default, PartialEq)]
struct Expect {
    households: u64,
    eligible: u64,
    beneficiaries: u64,
    cost: u64,
    enrolled: u64,
    eligible_enrolled: u64,
    eligible_not_enrolled: u64,
    enrolled_not_eligible: u64,
}

fn got(households: &Value, m: &Value) -> Expect {
    let n = |k: &str| m[k].as_u64().unwrap();
    Expect {
        households: households.as_u64().unwrap(),
        eligible: n("eligible"),
        beneficiaries: n("beneficiaries"),
        cost: n("cost"),
        enrolled: n("enrolled"),
        eligible_enrolled: n("eligible_enrolled"),
        eligible_not_enrolled: n("eligible_not_enrolled"),
        enrolled_not_eligible: n("enrolled_not_eligible"),
    }
}

#[tokio::test]
async fn simulation_counts_costs_errors_and_compares_without_enrolling() {
    let homes = [
        Home {
            village: "11010102",
            adults: 2,
            kids: 2,
        },
        Home {
            village: "11010102",
            adults: 1,
            kids: 0,
        },
        Home {
            village: "11010102",
            adults: 3,
            kids: 0,
        },
        Home {
            village: "21010101",
            adults: 1,
            kids: 1,
        },
        Home {
            village: "21010101",
            adults: 4,
            kids: 1,
        },
    ];
    // Enrolled in `sim_big` (households 0 and 2) and in `sim_kids` (the child of household 3).
    let big_enrolled = [true, false, true, false, false];
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let pm = manager(&app).await;
        add_user(&app, "officer.21", Role::DistrictOfficer, "21").await;
        add_user(&app, "pm.11", Role::ProgrammeManager, "11").await;
        let catalogue = inkingi_domain::programmes::Catalogue::rw_illustrative().unwrap();
        inkingi_store::programmes::load_catalogue(&app.store, &catalogue, "test")
            .await
            .unwrap();
        let (s, p) = pm
            .post(
                "/api/v1/programmes",
                programme("sim_big", "size >= 3", None, &[]),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        let kids_programme = json!({
            "code": "sim_kids", "name": "Kids", "agency": "ncda", "target": "individual",
            "eligibility": "age < 5", "benefit": {"type": "fixed", "amount": 700},
            "frequency": "monthly"
        });
        let (s, p) = pm.post("/api/v1/programmes", kids_programme).await;
        assert_eq!(s, 201, "{p}");
        let mut ids = Vec::new();
        for h in &homes {
            let officer = if h.village.starts_with("11") {
                "district.officer"
            } else {
                "officer.21"
            };
            ids.push(register(&app, officer, h).await);
        }
        for (i, (hh, _)) in ids.iter().enumerate() {
            if big_enrolled[i] {
                let (s, p) = pm
                    .post(
                        "/api/v1/programmes/sim_big/enrolments",
                        json!({"household": hh}),
                    )
                    .await;
                assert_eq!(s, 201, "{p}");
            }
        }
        let (s, p) = pm
            .post(
                "/api/v1/programmes/sim_kids/enrolments",
                json!({"household": ids[3].0, "person": ids[3].1[0]}),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        let (s, p) = pm
            .post(
                "/api/v1/targeting/rule-sets",
                json!({"id": "big4", "version": 1, "rule": "size >= 4"}),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        let enrolments_before = pm.get("/api/v1/programmes/sim_big/enrolments").await.1;

        // The expected figures, from the households: `sim_big` pays min(1000 + 500 × size,
        // 3000) to households of `min_size` or more; `sim_kids` pays 700 per child under five.
        let expect = |district: Option<&str>, programme: &str, min_size: usize| {
            let mut e = Expect::default();
            for (i, h) in homes.iter().enumerate() {
                if district.is_some_and(|d| !h.village.starts_with(d)) {
                    continue;
                }
                let size = h.adults + h.kids;
                let (beneficiaries, cost_each, enrolled) = if programme == "sim_big" {
                    let yes = size >= min_size;
                    (
                        u64::from(yes),
                        (1000 + 500 * size as u64).min(3000),
                        big_enrolled[i],
                    )
                } else {
                    (h.kids as u64, 700, i == 3)
                };
                let eligible = beneficiaries > 0;
                e.households += 1;
                e.eligible += u64::from(eligible);
                e.beneficiaries += beneficiaries;
                e.cost += beneficiaries * cost_each;
                e.enrolled += u64::from(enrolled);
                e.eligible_enrolled += u64::from(eligible && enrolled);
                e.eligible_not_enrolled += u64::from(eligible && !enrolled);
                e.enrolled_not_eligible += u64::from(!eligible && enrolled);
            }
            e
        };
        let overlap = |district: Option<&str>, min_size: usize| {
            homes
                .iter()
                .filter(|h| district.is_none_or(|d| h.village.starts_with(d)))
                .filter(|h| h.adults + h.kids >= min_size && h.kids > 0)
                .count() as u64
        };

        for compare in [
            json!({"rules": {"sim_big": {"rule": "size >= 4"}}}),
            json!({"rules": {"sim_big": {"rule_set": {"id": "big4", "version": 1}}}}),
        ] {
            let body = json!({"programmes": ["sim_big", "sim_kids"], "compare": compare});
            let (s, r) = pm.post("/api/v1/targeting/simulations", body).await;
            assert_eq!(s, 200, "[{db:?}] {r}");
            assert_eq!(r["by"], "district");
            let areas = r["areas"].as_array().unwrap();
            assert_eq!(areas.len(), 2, "{r}");
            assert_eq!(areas[0]["name"], "Nyarugenge");
            for (area, district) in [
                (&areas[0], Some("11")),
                (&areas[1], Some("21")),
                (&r["total"], None),
            ] {
                let big = &area["programmes"][0];
                let kids = &area["programmes"][1];
                assert_eq!(big["programme"], "sim_big");
                assert_eq!(
                    got(&area["households"], &big["scenarios"][0]),
                    expect(district, "sim_big", 3),
                    "{district:?} {r}"
                );
                assert_eq!(
                    got(&area["households"], &big["scenarios"][1]),
                    expect(district, "sim_big", 4),
                    "{district:?} {r}"
                );
                assert_eq!(
                    got(&area["households"], &kids["scenarios"][0]),
                    expect(district, "sim_kids", 0),
                    "{district:?} {r}"
                );
                let delta = expect(district, "sim_big", 4).eligible as i64
                    - expect(district, "sim_big", 3).eligible as i64;
                assert_eq!(big["delta"]["eligible"], delta);
                assert_eq!(
                    area["overlaps"][0]["programmes"],
                    json!(["sim_big", "sim_kids"])
                );
                assert_eq!(
                    area["overlaps"][0]["scenarios"],
                    json!([overlap(district, 3), overlap(district, 4)])
                );
            }
        }

        // CSV, asked for by query or by Accept; the same figures.
        let (s, csv) = pm
            .text(
                reqwest::Method::POST,
                "/api/v1/targeting/simulations?format=csv",
                None,
            )
            .await;
        assert_eq!(s, 200, "{csv}");
        let lines: Vec<&str> = csv.lines().collect();
        assert!(
            lines[0].starts_with("area_code,area_name,programme,households,eligible,"),
            "{csv}"
        );
        // Every programme (9 illustrative + 2) and every pair, for two districts and the total.
        assert_eq!(lines.len(), 1 + 3 * (11 + 11 * 10 / 2), "{csv}");
        let e = expect(Some("11"), "sim_big", 3);
        let row = format!(
            "11,Nyarugenge,sim_big,3,{},{},",
            e.eligible, e.beneficiaries
        );
        assert!(lines.iter().any(|l| l.starts_with(&row)), "{row} in {csv}");
        let res = app
            .client
            .post(app.url("/api/v1/targeting/simulations"))
            .bearer_auth(&pm.token)
            .header("accept", "text/csv")
            .json(&json!({"programmes": ["sim_big"]}))
            .send()
            .await
            .unwrap();
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        assert_eq!(res.text().await.unwrap().lines().count(), 1 + 3);

        // A manager of district 11 sees district 11 only.
        let local = Client {
            app: &app,
            token: token(&app, "pm.11", &["read", "write"]).await,
            purpose: "programme-administration",
        };
        let (s, r) = local
            .post(
                "/api/v1/targeting/simulations",
                json!({"programmes": ["sim_big"], "by": "sector"}),
            )
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["areas"].as_array().unwrap().len(), 1, "{r}");
        assert_eq!(r["areas"][0]["code"], "1101");
        assert_eq!(r["total"]["households"], 3);

        // Bad requests name the field (and for a rule, the position); nothing is stored.
        for (body, field, reason) in [
            (
                json!({"model": {"id": "pmt-default", "version": 9}}),
                "model",
                "no version 9",
            ),
            (
                json!({"programmes": ["nope"]}),
                "programmes[0]",
                "no programme",
            ),
            (
                json!({"programmes": ["sim_big"], "rules": {"sim_big": {"rule": "size >="}}}),
                "rules.sim_big.rule",
                "line 1, column",
            ),
            (
                json!({"programmes": ["sim_big"], "compare": {"rules": {"sim_big": {"rule_set": {"id": "big4", "version": 2}}}}}),
                "compare.rules.sim_big.rule_set",
                "no version 2",
            ),
            (
                json!({"programmes": ["sim_big"], "compare": {"model": {"id": "other"}}}),
                "compare.model",
                "no model",
            ),
            (json!({"by": "village"}), "by", "not province"),
            (
                json!({"programmes": ["sim_big"], "rules": {"sim_kids": {"rule": "age < 1"}}}),
                "rules.sim_kids",
                "not simulated",
            ),
        ] {
            let (s, p) = pm.post("/api/v1/targeting/simulations", body.clone()).await;
            assert_eq!(s, 422, "{body}: {p}");
            assert_eq!(p["errors"][0]["field"], field, "{p}");
            assert!(
                p["errors"][0]["reason"].as_str().unwrap().contains(reason),
                "{p}"
            );
        }
        let enrolments_after = pm.get("/api/v1/programmes/sim_big/enrolments").await.1;
        assert_eq!(enrolments_before, enrolments_after);

        // Audited as an aggregate read, with the caller's scope.
        let mut found = None;
        for _ in 0..100 {
            let entries = app.store.audit().entries_after(0, 10_000).await.unwrap();
            found = entries
                .into_iter()
                .flatten()
                .find(|e| e.record.action == "targeting.simulate" && e.record.actor == "pm.11");
            if found.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let entry = found.expect("the simulation is audited");
        assert!(
            entry.record.fields.contains(&"scope=11".to_string()),
            "{:?}",
            entry.record.fields
        );
        app.stop().await;
    }
}
