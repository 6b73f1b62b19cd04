//! The linkage review workflow over HTTP on every configured backend: the queue scoped to the
//! reviewer's area, both records side by side, confirm → merge request → approval → merged,
//! unmerge restoring both records, dismissal, decisions taken once (409), cross-source links
//! and their undoing, and the pages.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::Utc;
use common::{add_user, hidden, session, token, Client};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_store::children::LinkageReview;
use inkingi_store::linkage::{common_area, ReviewQuery, REGISTRY_DUPLICATE, REGISTRY_SOURCE};
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const VILLAGE: &str = "11010102";
const FOREIGN_VILLAGE: &str = "12010101";

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

/// Registers a household; returns the ids of its members in the order given.
async fn household(c: &Client<'_>, village: &str, members: Value) -> Vec<Uuid> {
    let body = json!({"village": village, "answers": answers(), "members": members});
    let h = c.post("/api/v1/households", body, 201).await;
    h["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Uuid::parse_str(m["id"].as_str().unwrap()).unwrap())
        .collect()
}

fn village_of(code: &str) -> AreaCode {
    AreaCode::parse(code).unwrap()
}

/// Queues a registry pair as `match run` does (same store call); true when queued.
async fn queue(app: &TestApp, a: Uuid, b: Uuid, villages: (&str, &str), weight: f64) -> bool {
    let (a, b) = if b < a { (b, a) } else { (a, b) };
    let r = LinkageReview {
        id: Uuid::now_v7(),
        kind: REGISTRY_DUPLICATE.into(),
        source_system: REGISTRY_SOURCE.into(),
        source_id: a.to_string(),
        candidate_person_id: Some(b),
        weight: Some(weight),
        explanation: json!({"fields": [
            {"field": "given_name", "level": "jw>=0.95", "weight": 3.25},
            {"field": "family_name", "level": "exact", "weight": 6.5},
            {"field": "birth_date", "level": "exact", "weight": 9.0},
        ], "reason": "between the review and auto-link thresholds"}),
        status: "open".into(),
        area_code: common_area(&village_of(villages.0), &village_of(villages.1))
            .map(|c| c.as_str().to_string()),
        created_at: Utc::now(),
        decided_at: None,
        decided_by: None,
    };
    let mut uow = app.store.begin().await.unwrap();
    let created = app
        .store
        .linkage()
        .queue_pair(&mut uow, &r, false)
        .await
        .unwrap();
    uow.commit().await.unwrap();
    created
}

async fn review_id(app: &TestApp, person: Uuid) -> String {
    let q = ReviewQuery {
        limit: 100,
        ..Default::default()
    };
    let (all, _) = app
        .store
        .linkage()
        .reviews(&AreaScope::national(), &q)
        .await
        .unwrap();
    all.iter()
        .find(|r| {
            r.review.source_id == person.to_string() || r.review.candidate_person_id == Some(person)
        })
        .unwrap()
        .review
        .id
        .to_string()
}

/// A person as the API returns it, without what every write changes (version, time).
async fn person_state(c: &Client<'_>, id: Uuid) -> Value {
    let mut p = c.get(&format!("/api/v1/individuals/{id}"), 200).await;
    let o = p.as_object_mut().unwrap();
    o.remove("version");
    o.remove("updated_at");
    p
}

fn ids_in(list: &Value) -> Vec<String> {
    list["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn registry_duplicates_are_reviewed_merged_and_unmerged() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let a = user(&app, "officer.a", Role::DistrictOfficer, "11").await;
        let b = user(&app, "officer.b", Role::DistrictOfficer, "11").await;
        let foreign = user(&app, "officer.c", Role::DistrictOfficer, "12").await;
        let h1 = household(
            &a,
            VILLAGE,
            json!([
                {"given_name": "Aline", "family_name": "Uwase", "sex": "F", "birth_date": "1990-02-01", "role": "head"},
                {"given_name": "Eric", "family_name": "Habimana", "sex": "M", "birth_date": "1988", "role": "spouse"}
            ]),
        )
        .await;
        let h2 = household(
            &a,
            VILLAGE,
            json!([
                {"given_name": "Jean", "family_name": "Mugisha", "sex": "M", "birth_date": "1985", "role": "head"},
                {"given_name": "Alin", "family_name": "Uwase", "sex": "F", "birth_date": "1990-02-01", "role": "other_relative"}
            ]),
        )
        .await;
        let theirs = household(
            &foreign,
            FOREIGN_VILLAGE,
            json!([
                {"given_name": "Marie", "family_name": "Ingabire", "sex": "F", "birth_date": "1979", "role": "head"},
                {"given_name": "Mari", "family_name": "Ingabire", "sex": "F", "birth_date": "1979", "role": "other_relative"}
            ]),
        )
        .await;
        let (aline, eric, jean, alin) = (h1[0], h1[1], h2[0], h2[1]);
        assert!(queue(&app, aline, alin, (VILLAGE, VILLAGE), 14.2).await);
        assert!(queue(&app, eric, jean, (VILLAGE, VILLAGE), 2.1).await);
        assert!(
            queue(
                &app,
                theirs[0],
                theirs[1],
                (FOREIGN_VILLAGE, FOREIGN_VILLAGE),
                9.0
            )
            .await
        );
        // The same pair again (either order): not queued twice.
        assert!(!queue(&app, alin, aline, (VILLAGE, VILLAGE), 14.2).await);

        // Each officer sees the reviews of their own area only.
        let mine = a.get("/api/v1/linkage/reviews", 200).await;
        assert_eq!(mine["total"], 2, "{mine}");
        let dup_review = review_id(&app, alin).await;
        let other_review = review_id(&app, eric).await;
        let foreign_review = review_id(&app, theirs[0]).await;
        assert!(ids_in(&mine).contains(&dup_review));
        assert!(!ids_in(&mine).contains(&foreign_review));
        let seen = foreign.get("/api/v1/linkage/reviews", 200).await;
        assert_eq!(ids_in(&seen), vec![foreign_review.clone()], "{seen}");
        // Filters and paging.
        let page = a.get("/api/v1/linkage/reviews?limit=1", 200).await;
        assert_eq!(
            (ids_in(&page).len(), page["next_offset"].as_u64()),
            (1, Some(1))
        );
        let none = a.get("/api/v1/linkage/reviews?status=dismissed", 200).await;
        assert_eq!(none["total"], 0);
        let bad = a.get("/api/v1/linkage/reviews?status=maybe", 400).await;
        assert!(bad.to_string().contains("status"), "{bad}");
        // Another area's review is not found, to read or to decide.
        foreign
            .get(&format!("/api/v1/linkage/reviews/{dup_review}"), 404)
            .await;
        foreign
            .post(
                &format!("/api/v1/linkage/reviews/{dup_review}/confirm"),
                json!({}),
                404,
            )
            .await;

        // Side by side: both records, each field's values and contribution.
        let v = a
            .get(&format!("/api/v1/linkage/reviews/{dup_review}"), 200)
            .await;
        let ids = [
            v["left"]["id"].as_str().unwrap(),
            v["right"]["id"].as_str().unwrap(),
        ];
        assert!(
            ids.contains(&aline.to_string().as_str()) && ids.contains(&alin.to_string().as_str()),
            "{v}"
        );
        let given = v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == "given_name")
            .unwrap();
        let names = [
            given["left"].as_str().unwrap(),
            given["right"].as_str().unwrap(),
        ];
        assert!(names.contains(&"Aline") && names.contains(&"Alin"), "{v}");
        assert_eq!(given["weight"], 3.25);
        let sex = v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == "sex")
            .unwrap();
        assert_eq!(
            (sex["left"].as_str(), sex["weight"].is_null()),
            (Some("F"), true)
        );

        let before_aline = person_state(&a, aline).await;
        let before_alin = person_state(&a, alin).await;
        let before_h2 = a
            .get(
                &format!("/api/v1/households/{}", h2_id(&a, jean).await),
                200,
            )
            .await;

        // Confirm: a merge request, not a merge.
        let done = a
            .post(
                &format!("/api/v1/linkage/reviews/{dup_review}/confirm"),
                json!({"survivor_id": aline, "reason": "same woman, registered twice"}),
                200,
            )
            .await;
        assert_eq!(done["review"]["status"], "confirmed");
        let cr = &done["change_request"];
        assert_eq!(
            (cr["change"]["kind"].as_str(), cr["status"].as_str()),
            (Some("merge_people"), Some("submitted"))
        );
        assert_eq!(cr["change"]["duplicate_id"], alin.to_string());
        assert_eq!(
            person_state(&a, alin).await,
            before_alin,
            "nothing merged before approval"
        );
        // Decided once: a second decision is a conflict.
        a.post(
            &format!("/api/v1/linkage/reviews/{dup_review}/confirm"),
            json!({}),
            409,
        )
        .await;
        b.post(
            &format!("/api/v1/linkage/reviews/{dup_review}/dismiss"),
            json!({"reason": "no"}),
            409,
        )
        .await;

        // Another approver approves: the duplicate is merged, its record kept.
        let cr_id = cr["id"].as_str().unwrap();
        let applied = b
            .post(
                &format!("/api/v1/change-requests/{cr_id}/decision"),
                json!({"decision": "approve"}),
                200,
            )
            .await;
        assert_eq!(applied["status"], "applied", "{applied}");
        let merged = a.get(&format!("/api/v1/individuals/{alin}"), 200).await;
        assert!(merged["household_id"].is_null(), "{merged}");
        let members = a
            .get(
                &format!("/api/v1/households/{}", before_h2["id"].as_str().unwrap()),
                200,
            )
            .await;
        let member_ids: Vec<&str> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert!(
            !member_ids.contains(&alin.to_string().as_str()),
            "{members}"
        );
        let found = a
            .get("/api/v1/individuals/search?q=Alin%20Uwase", 200)
            .await;
        assert!(
            !found.to_string().contains(&alin.to_string()),
            "merged people leave searches: {found}"
        );
        assert!(found.to_string().contains(&aline.to_string()), "{found}");
        // A second merge of the same person is refused.
        a.post(
            "/api/v1/change-requests",
            json!({"kind": "merge_people", "survivor_id": aline, "duplicate_id": alin}),
            201,
        )
        .await;
        let again = b.get("/api/v1/change-requests?status=submitted", 200).await;
        let again_id = again["requests"][0]["id"].as_str().unwrap().to_string();
        b.post(
            &format!("/api/v1/change-requests/{again_id}/decision"),
            json!({"decision": "approve"}),
            409,
        )
        .await;
        a.post(
            &format!("/api/v1/change-requests/{again_id}/decision"),
            json!({"decision": "withdraw"}),
            200,
        )
        .await;

        // Unmerge through the same approval flow restores both records exactly.
        let un = a
            .post("/api/v1/change-requests", json!({"kind": "unmerge_people", "survivor_id": aline, "duplicate_id": alin, "reason": "two sisters after all"}), 201)
            .await;
        let un_id = un["id"].as_str().unwrap();
        let applied = b
            .post(
                &format!("/api/v1/change-requests/{un_id}/decision"),
                json!({"decision": "approve"}),
                200,
            )
            .await;
        assert_eq!(applied["status"], "applied", "{applied}");
        assert_eq!(person_state(&a, alin).await, before_alin);
        assert_eq!(person_state(&a, aline).await, before_aline);
        let after_h2 = a
            .get(
                &format!("/api/v1/households/{}", before_h2["id"].as_str().unwrap()),
                200,
            )
            .await;
        assert_eq!(membership(&after_h2), membership(&before_h2));
        let found = a
            .get("/api/v1/individuals/search?q=Alin%20Uwase", 200)
            .await;
        assert!(found.to_string().contains(&alin.to_string()), "{found}");

        // Dismiss: a reason is required; the pair is not queued again.
        let no_reason = a
            .post(
                &format!("/api/v1/linkage/reviews/{other_review}/dismiss"),
                json!({"reason": " "}),
                422,
            )
            .await;
        assert!(no_reason.to_string().contains("reason"), "{no_reason}");
        let d = a
            .post(
                &format!("/api/v1/linkage/reviews/{other_review}/dismiss"),
                json!({"reason": "different men"}),
                200,
            )
            .await;
        assert_eq!(
            (
                d["review"]["status"].as_str(),
                d["review"]["decision_reason"].as_str()
            ),
            (Some("dismissed"), Some("different men"))
        );
        b.post(
            &format!("/api/v1/linkage/reviews/{other_review}/dismiss"),
            json!({"reason": "again"}),
            409,
        )
        .await;
        assert!(!queue(&app, eric, jean, (VILLAGE, VILLAGE), 2.1).await);
        let dismissed = a.get("/api/v1/linkage/reviews?status=dismissed", 200).await;
        assert_eq!(ids_in(&dismissed), vec![other_review.clone()]);
        let open = a.get("/api/v1/linkage/reviews", 200).await;
        assert_eq!(open["total"], 0, "{open}");
        app.stop().await;
    }
}

/// Who is in a household, with which role since when.
fn membership(h: &Value) -> Vec<(String, String, String)> {
    h["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].to_string(),
                m["role"].to_string(),
                m["member_since"].to_string(),
            )
        })
        .collect()
}

/// The household a person belongs to.
async fn h2_id(c: &Client<'_>, person: Uuid) -> String {
    let p = c.get(&format!("/api/v1/individuals/{person}"), 200).await;
    p["household_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn merging_a_household_of_one_dissolves_it_and_unmerging_brings_it_back() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let a = user(&app, "officer.a", Role::DistrictOfficer, "11").await;
        let b = user(&app, "officer.b", Role::DistrictOfficer, "11").await;
        let first = household(&a, VILLAGE, json!([{"given_name": "Claude", "family_name": "Niyonzima", "sex": "M", "birth_date": "1970", "role": "head"}])).await;
        let second = household(&a, "11010103", json!([{"given_name": "Klod", "family_name": "Niyonzima", "sex": "M", "birth_date": "1970", "role": "head"}])).await;
        assert!(queue(&app, first[0], second[0], (VILLAGE, "11010103"), 12.0).await);
        let id = review_id(&app, first[0]).await;
        let hh = h2_id(&a, second[0]).await;
        let before = person_state(&a, second[0]).await;
        let done = a
            .post(
                &format!("/api/v1/linkage/reviews/{id}/confirm"),
                json!({"survivor_id": first[0]}),
                200,
            )
            .await;
        let cr = done["change_request"]["id"].as_str().unwrap();
        b.post(
            &format!("/api/v1/change-requests/{cr}/decision"),
            json!({"decision": "approve"}),
            200,
        )
        .await;
        let h = a.get(&format!("/api/v1/households/{hh}"), 200).await;
        assert_eq!(h["status"], "dissolved", "{h}");
        let un = a
            .post("/api/v1/change-requests", json!({"kind": "unmerge_people", "survivor_id": first[0], "duplicate_id": second[0]}), 201)
            .await;
        let un = un["id"].as_str().unwrap();
        b.post(
            &format!("/api/v1/change-requests/{un}/decision"),
            json!({"decision": "approve"}),
            200,
        )
        .await;
        let h = a.get(&format!("/api/v1/households/{hh}"), 200).await;
        assert_eq!(h["status"], "active", "{h}");
        assert_eq!(person_state(&a, second[0]).await, before);
        // Not merged any more: a second unmerge is refused when applied.
        let un = a
            .post("/api/v1/change-requests", json!({"kind": "unmerge_people", "survivor_id": first[0], "duplicate_id": second[0]}), 201)
            .await;
        let un = un["id"].as_str().unwrap();
        b.post(
            &format!("/api/v1/change-requests/{un}/decision"),
            json!({"decision": "approve"}),
            409,
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn a_record_from_a_health_system_is_linked_on_confirmation_and_unlinked() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let a = user(&app, "officer.a", Role::DistrictOfficer, "11").await;
        let born = (Utc::now().date_naive() - chrono::Days::new(200)).to_string();
        let family = household(
            &a,
            VILLAGE,
            json!([
                {"given_name": "Aline", "family_name": "Mukamana", "sex": "F", "birth_date": "1995-03-02", "role": "head"},
                {"given_name": "Keza", "family_name": "Uwase", "sex": "F", "birth_date": born, "role": "child"}
            ]),
        )
        .await;
        let child = family[1];
        add_user(&app, "nurse", Role::HealthWorker, "1101").await;
        let nurse = token(&app, "nurse", &["read", "write", "purpose:healthcare"]).await;
        let post = |body: Value, path: &'static str| {
            let req = app
                .client
                .post(app.url(path))
                .bearer_auth(&nurse)
                .header("content-type", "application/fhir+json")
                .json(&body);
            async move { req.send().await.unwrap().status().as_u16() }
        };
        // No birth date: queued for review with the child as candidate.
        let patient = json!({"resourceType": "Patient", "id": "P-8", "meta": {"source": "emr-kigali"},
            "name": [{"family": "Uwase", "given": ["Keza"]}], "gender": "female"});
        assert_eq!(post(patient, "/fhir/R4/Patient").await, 201);
        let imm = json!({"resourceType": "Immunization", "id": "I-2", "meta": {"source": "emr-kigali"},
            "status": "completed", "patient": {"reference": "Patient/P-8"},
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "10"}]},
            "occurrenceDateTime": born, "protocolApplied": [{"doseNumberPositiveInt": 1}]});
        assert_eq!(post(imm, "/fhir/R4/Immunization").await, 201);
        let facts = |store: inkingi_store::Store| async move {
            let f = store
                .children()
                .facts_of_people(&AreaScope::national(), &[child])
                .await
                .unwrap();
            f.first().map_or(0, |(_, f)| f.immunizations.len())
        };
        assert_eq!(facts(app.store.clone()).await, 0);
        let list = a
            .get("/api/v1/linkage/reviews?kind=fhir_patient", 200)
            .await;
        let id = ids_in(&list).pop().expect("a review");
        let v = a.get(&format!("/api/v1/linkage/reviews/{id}"), 200).await;
        assert_eq!(
            (v["left"]["kind"].as_str(), v["right"]["id"].as_str()),
            (Some("source_person"), Some(child.to_string().as_str())),
            "{v}"
        );
        let birth = v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == "birth_date")
            .unwrap();
        assert_eq!(
            (birth["left"].is_null(), birth["right"].as_str()),
            (true, Some(born.as_str())),
            "{v}"
        );

        // Confirm: the source person and its facts are the child's.
        let done = a
            .post(
                &format!("/api/v1/linkage/reviews/{id}/confirm"),
                json!({}),
                200,
            )
            .await;
        assert!(done["change_request"].is_null());
        assert_eq!(facts(app.store.clone()).await, 1);
        a.post(
            &format!("/api/v1/linkage/reviews/{id}/confirm"),
            json!({}),
            409,
        )
        .await;
        // Unlink restores: facts back on the source person, the review open again.
        let undone = a
            .post(
                &format!("/api/v1/linkage/reviews/{id}/unlink"),
                json!({}),
                200,
            )
            .await;
        assert_eq!(undone["review"]["status"], "open");
        assert_eq!(facts(app.store.clone()).await, 0);
        a.post(
            &format!("/api/v1/linkage/reviews/{id}/unlink"),
            json!({}),
            409,
        )
        .await;
        app.stop().await;
    }
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let res = app
        .client
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_review_pages_show_the_pair_and_take_a_decision() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let a = user(&app, "officer.a", Role::DistrictOfficer, "11").await;
        add_user(&app, "officer.c", Role::DistrictOfficer, "12").await;
        let h1 = household(&a, VILLAGE, json!([{"given_name": "Aline", "family_name": "Uwase", "sex": "F", "birth_date": "1990-02-01", "role": "head"}])).await;
        let h2 = household(&a, VILLAGE, json!([{"given_name": "Alin", "family_name": "Uwase", "sex": "F", "birth_date": "1990-02-01", "role": "head"}])).await;
        assert!(queue(&app, h1[0], h2[0], (VILLAGE, VILLAGE), 14.0).await);
        let id = review_id(&app, h1[0]).await;
        let cookie = session(&app, "officer.a").await;

        let (status, home) = page(&app, &cookie, "/").await;
        assert_eq!(status, 200);
        assert!(
            home.contains("href=\"/linkage/reviews\""),
            "the menu links the queue"
        );
        let (status, html) = page(&app, &cookie, "/linkage/reviews").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(&format!("/linkage/reviews/{id}")), "{html}");
        let (status, html) = page(&app, &cookie, &format!("/linkage/reviews/{id}")).await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains(">Aline<") && html.contains(">Alin<"),
            "{html}"
        );
        assert!(html.contains("+3.25"), "contributions shown: {html}");
        let csrf = hidden(&html, "csrf");

        // Another area's reviewer: not found.
        let theirs = session(&app, "officer.c").await;
        let (status, _) = page(&app, &theirs, &format!("/linkage/reviews/{id}")).await;
        assert_eq!(status, 404);

        // A form without the CSRF token is refused; with it, the decision is taken.
        let post = |form: Vec<(&'static str, String)>| {
            let req = app
                .client
                .post(app.url(&format!("/linkage/reviews/{id}/dismiss")))
                .header("cookie", &cookie)
                .form(&form);
            async move { req.send().await.unwrap() }
        };
        let res = post(vec![("csrf", "forged".into()), ("reason", "x".into())]).await;
        assert_eq!(res.status(), 403);
        let res = post(vec![
            ("csrf", csrf.clone()),
            ("reason", "two different women".into()),
        ])
        .await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let res = post(vec![("csrf", csrf.clone()), ("reason", "again".into())]).await;
        assert_eq!(res.status(), 409);
        let (_, html) = page(&app, &cookie, "/linkage/reviews?status=dismissed").await;
        assert!(html.contains(&format!("/linkage/reviews/{id}")), "{html}");
        app.stop().await;
    }
}
