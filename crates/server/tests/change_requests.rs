//! Change requests over HTTP on every configured backend: submission within the submitter's
//! area, conflict detection, tiered approval by area, atomic application with history, and
//! refusal outside the approver's scope.

#![allow(clippy::unwrap_used)]

mod common;

use common::{add_user, token, Client};
use inkingi_domain::identity::Role;
use inkingi_testkit::{databases, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const VILLAGE: &str = "11010102"; // Nyarugenge district (11), Gitega sector (1101)

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

/// Registers a household of a mother (head) and her partner; returns (household, head, partner).
async fn household(c: &Client<'_>, id_serial: u32) -> (String, String, String) {
    let body = json!({"village": VILLAGE, "answers": answers(), "members": [
        {"given_name": "Aline", "family_name": "Uwase", "sex": "F", "birth_date": "1990-02-01",
         "national_id": format!("11990700{id_serial:05}012"), "role": "head"},
        {"given_name": "Eric", "family_name": "Habimana", "sex": "M", "birth_date": "1988",
         "role": "spouse"}
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
        id_of("Aline"),
        id_of("Eric"),
    )
}

#[tokio::test]
async fn a_birth_is_submitted_checked_for_conflicts_approved_and_applied() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let officer = user(&app, "district11", Role::DistrictOfficer, "11").await;
        let enumerator = user(&app, "enum110101", Role::Enumerator, "110101").await;
        let sector = user(&app, "sector1101", Role::SectorOfficer, "1101").await;
        let (hh, mother, _) = household(&officer, 1).await;

        let birth = json!({"kind": "record_birth", "household_id": hh, "mother_id": mother,
            "child": {"given_name": "Keza", "family_name": "Ishimwe", "sex": "F",
                      "birth_date": "2026-10-01"},
            "reason": "born at Muhima hospital"});
        let cr = enumerator
            .call(
                Method::POST,
                "/api/v1/change-requests",
                Some(birth.clone()),
                201,
            )
            .await;
        assert_eq!(
            (cr["status"].as_str(), cr["tiers"].as_u64()),
            (Some("submitted"), Some(1))
        );
        assert_eq!(cr["area"], VILLAGE);
        let id = cr["id"].as_str().unwrap().to_string();

        // A second open request on the same household conflicts.
        let again = enumerator
            .call(Method::POST, "/api/v1/change-requests", Some(birth), 409)
            .await;
        assert!(again["detail"].as_str().unwrap().contains(&id), "{again}");

        // Enumerators cannot approve; an approver of the sector can, and it is applied.
        enumerator.decide(&id, "approve", 403).await;
        let done = sector.decide(&id, "approve", 200).await;
        assert_eq!(done["status"], "applied");
        let statuses: Vec<&str> = done["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["submitted", "approved", "applied"]);

        let h = officer
            .call(Method::GET, &format!("/api/v1/households/{hh}"), None, 200)
            .await;
        let child = h["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["given_name"] == "Keza")
            .expect("the child is a member")
            .clone();
        assert_eq!(
            (child["role"].as_str(), child["mother_id"].as_str()),
            (Some("child"), Some(mother.as_str()))
        );
        let history = officer
            .call(
                Method::GET,
                &format!("/api/v1/households/{hh}/history"),
                None,
                200,
            )
            .await;
        let added = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "member.added")
            .expect("member.added event")
            .clone();
        assert_eq!(added["change_request_id"], id.as_str());
        assert_eq!(added["channel"], "change_request");

        // Decided: no longer open, so a new request on the household is accepted.
        let fix = json!({"kind": "correct_data", "household_id": hh,
                         "fields": {"address": "behind the church"}});
        enumerator
            .call(Method::POST, "/api/v1/change-requests", Some(fix), 201)
            .await;
        let bad = json!({"kind": "correct_data", "household_id": hh,
                         "fields": {"answers": {"rooms": 0}}});
        let problem = enumerator
            .call(Method::POST, "/api/v1/change-requests", Some(bad), 422)
            .await;
        assert!(
            problem.to_string().contains("fields.answers.rooms"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn a_death_needs_two_tiers_from_different_approvers_at_the_right_level() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let officer = user(&app, "district11", Role::DistrictOfficer, "11").await;
        let sector = user(&app, "sector1101", Role::SectorOfficer, "1101").await;
        let sector2 = user(&app, "sector1101b", Role::SectorOfficer, "1101").await;
        let foreign = user(&app, "district12", Role::DistrictOfficer, "12").await;
        let (hh, head, partner) = household(&officer, 2).await;

        // The head dies: the request must name the new head.
        let no_head = json!({"kind": "record_death", "person_id": head, "died_on": "2026-11-01"});
        let cr = sector
            .call(Method::POST, "/api/v1/change-requests", Some(no_head), 201)
            .await;
        let id = cr["id"].as_str().unwrap().to_string();
        sector.decide(&id, "withdraw", 200).await;

        let death = json!({"kind": "record_death", "person_id": head, "died_on": "2026-11-01",
                           "new_head_id": partner, "reason": "reported by the village leader"});
        let cr = sector
            .call(Method::POST, "/api/v1/change-requests", Some(death), 201)
            .await;
        assert_eq!(cr["tiers"], 2);
        let id = cr["id"].as_str().unwrap().to_string();

        // Outside the area: not even visible.
        foreign
            .call(
                Method::GET,
                &format!("/api/v1/change-requests/{id}"),
                None,
                404,
            )
            .await;
        foreign.decide(&id, "approve", 404).await;
        // The submitter may not approve their own request.
        sector.decide(&id, "approve", 409).await;
        let one = sector2.decide(&id, "approve", 200).await;
        assert_eq!(
            (one["status"].as_str(), one["next_tier"].as_u64()),
            (Some("submitted"), Some(2))
        );
        // Tier 2 needs a district-level approver.
        sector2.decide(&id, "approve", 403).await;
        let two = officer.decide(&id, "approve", 200).await;
        assert_eq!(two["status"], "applied");

        let h = officer
            .call(Method::GET, &format!("/api/v1/households/{hh}"), None, 200)
            .await;
        let members = h["members"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{h}");
        assert_eq!(
            (members[0]["id"].as_str(), members[0]["role"].as_str()),
            (Some(partner.as_str()), Some("head"))
        );
        let dead = officer
            .call(
                Method::GET,
                &format!("/api/v1/individuals/{head}"),
                None,
                200,
            )
            .await;
        assert_eq!(dead["died_on"], "2026-11-01");

        // The queue of the other district does not list it; this district's does, decided.
        let theirs = foreign
            .call(Method::GET, "/api/v1/change-requests", None, 200)
            .await;
        assert_eq!(theirs["requests"].as_array().unwrap().len(), 0);
        let ours = officer
            .call(
                Method::GET,
                "/api/v1/change-requests?status=applied",
                None,
                200,
            )
            .await;
        assert_eq!(ours["requests"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn merging_two_households_moves_everyone_and_marks_the_other_merged() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let officer = user(&app, "district11", Role::DistrictOfficer, "11").await;
        let sector = user(&app, "sector1101", Role::SectorOfficer, "1101").await;
        let (into, _, _) = household(&officer, 3).await;
        let (from, _, _) = household(&officer, 4).await;
        let merge = json!({"kind": "merge_households", "into_household_id": into,
                           "from_household_id": from, "reason": "registered twice"});
        let cr = sector
            .call(Method::POST, "/api/v1/change-requests", Some(merge), 201)
            .await;
        let id = cr["id"].as_str().unwrap().to_string();
        officer.decide(&id, "approve", 200).await;
        // Tier 2 by another district-level approver.
        let national = user(&app, "national", Role::NationalOfficer, "national").await;
        let done = national.decide(&id, "approve", 200).await;
        assert_eq!(done["status"], "applied");

        let target = officer
            .call(
                Method::GET,
                &format!("/api/v1/households/{into}"),
                None,
                200,
            )
            .await;
        let heads = target["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "head")
            .count();
        assert_eq!((target["members"].as_array().unwrap().len(), heads), (4, 1));
        let old = officer
            .call(
                Method::GET,
                &format!("/api/v1/households/{from}"),
                None,
                200,
            )
            .await;
        assert_eq!(old["status"], "merged");
        assert_eq!(old["members"].as_array().unwrap().len(), 0);
    }
}
