//! Registration-time lookups (`POST /api/v1/individuals/match`) against the in-memory index, on
//! every configured backend: a person registered after the index was built is found once the
//! index has read the registry's events, under a new name after a rename, not at all once dead
//! or removed from their household; candidates outside the caller's area are only counted; bad
//! input is refused naming each field; every lookup is audited.
//!
//! Waiting is on the index's event position, never on a fixed sleep: after a write the test
//! reads the newest committed event position from the database and polls the index's status
//! until it has applied that far (bounded; on PostgreSQL an event becomes readable once every
//! older transaction of the cluster has ended).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{add_user, token, Client};
use inkingi_domain::identity::Role;
use inkingi_store::audit::AuditQuery;
use inkingi_testkit::{databases, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const VILLAGE: &str = "11010102"; // Nyarugenge district (11), Gitega sector (1101)
const WAIT: Duration = Duration::from_secs(60);

/// Lookups through the API.
impl Client<'_> {
    async fn lookup(&self, person: Value) -> Value {
        self.call(Method::POST, "/api/v1/individuals/match", Some(person), 200)
            .await
    }
}

async fn user<'a>(app: &'a TestApp, name: &str, role: Role, scope: &str) -> Client<'a> {
    add_user(app, name, role, scope).await;
    Client {
        app,
        token: token(app, name, &["read", "write", "purpose:registration"]).await,
    }
}

fn answers() -> Value {
    json!({
        "tenure": "owner", "wall": "mud_bricks", "roof": "iron_sheets", "floor": "earth",
        "rooms": 2, "water_source": "public_tap", "toilet": "pit_latrine_slab",
        "lighting": "solar", "cooking_fuel": "firewood", "owns_land": false,
        "owns_livestock": false, "income_sources": ["farming"], "meals_per_day": 2
    })
}

/// Registers Aline (head), Eric (spouse) and Keza (child); returns the household and the ids.
async fn household(c: &Client<'_>) -> (String, [String; 3]) {
    let body = json!({"village": VILLAGE, "answers": answers(), "members": [
        {"given_name": "Aline", "family_name": "Uwase", "sex": "F", "birth_date": "1990-02-01",
         "national_id": "1199070000001012", "phones": ["+250788123456"], "role": "head"},
        {"given_name": "Eric", "family_name": "Habimana", "sex": "M", "birth_date": "1988-07-14",
         "role": "spouse"},
        {"given_name": "Keza", "family_name": "Ishimwe", "sex": "F", "birth_date": "2015-03-09",
         "role": "child"}
    ]});
    let h = c
        .call(Method::POST, "/api/v1/households", Some(body), 201)
        .await;
    let members = h["members"].as_array().unwrap();
    let id_of = |given: &str| {
        members.iter().find(|m| m["given_name"] == given).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    (
        h["id"].as_str().unwrap().to_string(),
        [id_of("Aline"), id_of("Eric"), id_of("Keza")],
    )
}

/// Polls the index's status until `done` holds for it (bounded).
async fn wait_status(c: &Client<'_>, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let s = c
            .call(Method::GET, "/api/v1/individuals/match/status", None, 200)
            .await;
        assert_ne!(s["state"], "failed", "{s}");
        if done(&s) {
            return s;
        }
        assert!(
            started.elapsed() < WAIT,
            "[{}] the index did not become {what}: {s}",
            c.app.kind.as_str()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the index has applied every event committed so far.
async fn caught_up(c: &Client<'_>) {
    let (a, b) = c
        .app
        .store
        .lookup_feed()
        .latest_position()
        .await
        .unwrap()
        .parts();
    wait_status(c, "caught up", |s| {
        let at = (
            s["position"][0].as_i64().unwrap(),
            s["position"][1].as_i64().unwrap(),
        );
        s["state"] == "ready" && at >= (a, b)
    })
    .await;
}

fn ids(found: &Value) -> Vec<String> {
    found["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["person_id"].as_str().unwrap().to_string())
        .collect()
}

fn aline() -> Value {
    json!({"given_name": "Aline", "family_name": "Uwase", "sex": "F",
           "birth_date": "1990-02-01", "village": VILLAGE})
}

#[tokio::test]
async fn people_are_found_after_registration_and_renaming_and_not_once_dead_or_removed() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let officer = user(&app, "district11", Role::DistrictOfficer, "11").await;
        let sector = user(&app, "sector1101", Role::SectorOfficer, "1101").await;
        let sector2 = user(&app, "sector1101b", Role::SectorOfficer, "1101").await;
        // Built over an empty registry: everything below arrives as events.
        wait_status(&officer, "ready", |s| s["state"] == "ready").await;
        let (_, [aline_id, eric, keza]) = household(&officer).await;
        caught_up(&officer).await;

        let found = officer.lookup(aline()).await;
        assert_eq!(ids(&found), vec![aline_id.clone()], "{found}");
        let best = &found["candidates"][0];
        assert_eq!(best["band"], "auto_link", "{best}");
        assert_eq!(best["person"]["given_name"], "Aline");
        let fields = best["fields"].as_array().unwrap();
        let level = |f: &str| {
            fields.iter().find(|x| x["field"] == f).unwrap()["level"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(level("given_name"), "exact");
        assert_eq!(level("birth_date"), "exact");
        assert_eq!(level("village"), "same village");
        assert!(
            best["weight"].as_f64().unwrap() >= found["auto_link_weight"].as_f64().unwrap(),
            "{best}"
        );
        // Given name misspelt, birth known only to the year: still a candidate (the family
        // name, birth year and district block them together).
        let fuzzy = officer
            .lookup(json!({"given_name": "Alinne", "family_name": "Uwase",
                           "birth_date": "1990", "village": VILLAGE}))
            .await;
        assert!(ids(&fuzzy).contains(&aline_id), "{fuzzy}");
        // The national ID alone finds her wherever she is said to live.
        let by_id = officer
            .lookup(json!({"given_name": "A", "family_name": "U",
                           "national_id": "1199070000001012"}))
            .await;
        assert_eq!(ids(&by_id), vec![aline_id.clone()], "{by_id}");

        // Renamed: found under the new name, once.
        let person = officer
            .call(
                Method::GET,
                &format!("/api/v1/individuals/{eric}"),
                None,
                200,
            )
            .await;
        let res = app
            .client
            .patch(app.url(&format!("/api/v1/individuals/{eric}")))
            .bearer_auth(&officer.token)
            .header("if-match", format!("\"{}\"", person["version"]))
            .header("x-change-reason", "spelling corrected at the sector office")
            .json(&json!({"given_name": "Jean Eric"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        caught_up(&officer).await;
        let renamed = officer
            .lookup(
                json!({"given_name": "Jean Eric", "family_name": "Habimana", "sex": "M",
                           "birth_date": "1988-07-14", "village": VILLAGE}),
            )
            .await;
        assert_eq!(ids(&renamed), vec![eric.clone()], "{renamed}");
        assert_eq!(
            renamed["candidates"][0]["person"]["given_name"],
            "Jean Eric"
        );
        assert_eq!(renamed["candidates"][0]["band"], "auto_link");

        // Removed from the household: no longer found.
        let keza_q = json!({"given_name": "Keza", "family_name": "Ishimwe",
                            "birth_date": "2015-03-09", "village": VILLAGE});
        assert_eq!(
            ids(&officer.lookup(keza_q.clone()).await),
            vec![keza.clone()]
        );
        officer
            .call(
                Method::POST,
                &format!("/api/v1/memberships/{keza}/end"),
                Some(json!({"reason": "moved to her grandmother"})),
                204,
            )
            .await;
        caught_up(&officer).await;
        let gone = officer.lookup(keza_q).await;
        assert!(!ids(&gone).contains(&keza), "{gone}");
        assert_eq!(gone["outside_scope"]["auto_link"], 0, "{gone}");

        // Dead (a change request through both tiers): no longer found.
        let death = json!({"kind": "record_death", "person_id": aline_id, "died_on": "2026-11-01",
                           "new_head_id": eric, "reason": "reported by the village leader"});
        let cr = sector
            .call(Method::POST, "/api/v1/change-requests", Some(death), 201)
            .await;
        let id = cr["id"].as_str().unwrap().to_string();
        sector2.decide(&id, "approve", 200).await;
        officer.decide(&id, "approve", 200).await;
        caught_up(&officer).await;
        let dead = officer.lookup(aline()).await;
        assert!(!ids(&dead).contains(&aline_id), "{dead}");
        let status = wait_status(&officer, "ready", |s| s["state"] == "ready").await;
        assert_eq!(status["people"], 1, "only Jean Eric is findable: {status}");
        app.stop().await;
    }
}

#[tokio::test]
async fn people_outside_the_callers_area_are_counted_not_shown_and_lookups_are_audited() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let officer = user(&app, "district11", Role::DistrictOfficer, "11").await;
        // Registered before the index is built: found through the build, not events.
        let (_, [aline_id, _, _]) = household(&officer).await;
        let foreign = user(&app, "district12", Role::DistrictOfficer, "12").await;
        wait_status(&foreign, "ready", |s| s["state"] == "ready").await;
        caught_up(&foreign).await;

        let theirs = foreign.lookup(aline()).await;
        assert!(ids(&theirs).is_empty(), "{theirs}");
        assert_eq!(theirs["outside_scope"]["auto_link"], 1, "{theirs}");
        let text = theirs.to_string();
        assert!(
            !text.contains(&aline_id) && !text.contains("Uwase"),
            "{text}"
        );

        let ours = officer.lookup(aline()).await;
        assert_eq!(ids(&ours), vec![aline_id.clone()], "{ours}");
        assert_eq!(ours["outside_scope"]["auto_link"], 0);

        // The read of the candidate and the lookups themselves are in the audit log.
        app.audit.flush().await.unwrap();
        let q = AuditQuery {
            subject_id: Some(aline_id.clone()),
            limit: 100,
            ..Default::default()
        };
        let entries = app
            .store
            .audit()
            .query(&inkingi_domain::identity::AreaScope::national(), &q)
            .await
            .unwrap();
        let matched: Vec<_> = entries
            .iter()
            .filter(|e| e.record.action == "person.match")
            .collect();
        assert_eq!(matched.len(), 1, "only the local officer saw her");
        assert_eq!(matched[0].record.actor, "district11");
        assert_eq!(matched[0].record.purpose.as_deref(), Some("registration"));
        let q = AuditQuery {
            actor: Some("district12".into()),
            limit: 100,
            ..Default::default()
        };
        let theirs = app
            .store
            .audit()
            .query(&inkingi_domain::identity::AreaScope::national(), &q)
            .await
            .unwrap();
        let lookup = theirs
            .iter()
            .find(|e| e.record.action == "person.match")
            .expect("the foreign lookup is audited");
        assert_eq!(lookup.record.subject_id, None);
        assert!(lookup.record.fields.contains(&"given_name".to_string()));
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_lookups_are_refused_naming_each_field() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let officer = user(&app, "district11", Role::DistrictOfficer, "11").await;
        let problem = officer
            .call(
                Method::POST,
                "/api/v1/individuals/match",
                Some(json!({"given_name": " ", "family_name": "123", "sex": "x",
                            "birth_date": "2020-13", "national_id": "12",
                            "phone": "abc", "village": "999", "limit": 0})),
                422,
            )
            .await;
        let errors = problem["errors"].as_array().unwrap();
        let fields: Vec<&str> = errors
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for f in [
            "given_name",
            "family_name",
            "sex",
            "birth_date",
            "national_id",
            "phone",
            "village",
            "limit",
        ] {
            assert!(fields.contains(&f), "{f} not named: {problem}");
        }
        let future = officer
            .call(
                Method::POST,
                "/api/v1/individuals/match",
                Some(json!({"given_name": "Aline", "family_name": "Uwase",
                            "birth_date": "2999-01-01"})),
                422,
            )
            .await;
        assert!(future.to_string().contains("future"), "{future}");
        let unknown = officer
            .call(
                Method::POST,
                "/api/v1/individuals/match",
                Some(json!({"given_name": "Aline", "family_name": "Uwase", "nickname": "A"})),
                422,
            )
            .await;
        assert!(unknown.to_string().contains("nickname"), "{unknown}");
        let wrong_type = officer
            .call(
                Method::POST,
                "/api/v1/individuals/match",
                Some(json!({"given_name": 7, "family_name": "Uwase"})),
                422,
            )
            .await;
        assert_eq!(
            wrong_type["errors"][0]["field"], "given_name",
            "{wrong_type}"
        );
        // Without credentials: 401, not a hint about the registry.
        let res = app
            .client
            .post(app.url("/api/v1/individuals/match"))
            .json(&aline())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        app.stop().await;
    }
}

#[tokio::test]
async fn registering_someone_already_registered_warns_but_registers() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let officer = user(&app, "district11", Role::DistrictOfficer, "11").await;
        wait_status(&officer, "ready", |s| s["state"] == "ready").await;
        let first = officer
            .call(
                Method::POST,
                "/api/v1/households",
                Some(
                    json!({"village": VILLAGE, "answers": answers(), "members": [
                    {"given_name": "Aline", "family_name": "Uwase", "sex": "F",
                     "birth_date": "1990-02-01", "role": "head"}]}),
                ),
                201,
            )
            .await;
        assert!(first.get("possible_duplicates").is_none(), "{first}");
        let aline_id = first["members"][0]["id"].as_str().unwrap().to_string();
        caught_up(&officer).await;
        // The same woman registered again in another household of the village, with her
        // birth known only to the year, and a child nobody has seen.
        let again = officer
            .call(
                Method::POST,
                "/api/v1/households",
                Some(
                    json!({"village": VILLAGE, "answers": answers(), "members": [
                    {"given_name": "Kalisa", "family_name": "Mugabo", "sex": "M",
                     "birth_date": "1985-05-05", "role": "head"},
                    {"given_name": "Aline", "family_name": "Uwase", "sex": "F",
                     "birth_date": "1990", "role": "spouse"}]}),
                ),
                201,
            )
            .await;
        let warnings = again["possible_duplicates"].as_array().unwrap();
        assert_eq!(warnings.len(), 1, "{again}");
        assert_eq!(warnings[0]["member"], 1);
        assert_eq!(warnings[0]["candidates"][0]["person_id"], aline_id.as_str());
        assert_eq!(
            again["members"].as_array().unwrap().len(),
            2,
            "registered anyway"
        );
        app.stop().await;
    }
}
