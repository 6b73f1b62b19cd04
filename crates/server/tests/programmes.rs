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
