//! The registry API over HTTP on every configured backend: create, read, update with
//! ETag/If-Match, history and as-of, scoping, search, validation, pagination, memberships and
//! forms.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{TimeZone, Utc};
use common::{add_user, token};
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, NationalId, PersonInput, RegistryNumber, Sex,
};
use inkingi_store::audit::AuditQuery;
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_testkit::{databases, TestApp};
use reqwest::{Method, Response};
use serde_json::{json, Value};

const VILLAGE: &str = "11010102"; // Nyarugenge district (11)

fn answers() -> Value {
    json!({
        "tenure": "owner", "wall": "mud_bricks", "roof": "iron_sheets", "floor": "earth",
        "rooms": 2, "water_source": "public_tap", "toilet": "pit_latrine_slab",
        "lighting": "solar", "cooking_fuel": "firewood", "owns_land": false,
        "owns_livestock": false, "income_sources": ["farming"], "meals_per_day": 2
    })
}

fn head(given: &str, family: &str) -> Value {
    json!({"given_name": given, "family_name": family, "sex": "F", "birth_date": "1990-02-01",
           "national_id": "1199070012345012", "phones": ["0788123456"], "role": "head"})
}

fn household(members: Vec<Value>) -> Value {
    json!({"village": VILLAGE, "address": "near the market", "answers": answers(),
           "members": members, "reason": "first registration"})
}

struct Client<'a> {
    app: &'a TestApp,
    token: String,
}

impl Client<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Response {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
            .header("x-purpose-of-use", "registration");
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(v) = if_match {
            req = req.header("if-match", v);
        }
        req.send().await.unwrap()
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
        status: u16,
    ) -> (Value, Option<String>) {
        let res = self.send(method.clone(), path, body, if_match).await;
        let got = res.status().as_u16();
        let tag = res
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        let text = res.text().await.unwrap();
        assert_eq!(
            got,
            status,
            "[{}] {method} {path} -> {got}: {text}",
            self.app.kind.as_str()
        );
        (serde_json::from_str(&text).unwrap_or(Value::Null), tag)
    }
}

async fn officer<'a>(app: &'a TestApp, name: &str, role: Role, scope: &str) -> Client<'a> {
    add_user(app, name, role, scope).await;
    Client {
        app,
        token: token(app, name, &["read", "write", "purpose:registration"]).await,
    }
}

#[tokio::test]
async fn create_read_update_with_etags_and_history() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let c = officer(&app, "nyarugenge", Role::DistrictOfficer, "11").await;
        let (h, tag) = c
            .json(
                Method::POST,
                "/api/v1/households",
                Some(household(vec![head("Aline", "Uwase")])),
                None,
                201,
            )
            .await;
        assert_eq!(tag.as_deref(), Some("\"1\""));
        assert!(RegistryNumber::parse(h["registry_number"].as_str().unwrap()).is_ok());
        assert_eq!(h["members"][0]["given_name"], "Aline");
        let id = h["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/households/{id}");

        let (got, tag) = c.json(Method::GET, &path, None, None, 200).await;
        assert_eq!(
            (got["address"].as_str(), tag.as_deref()),
            (Some("near the market"), Some("\"1\""))
        );

        let change = json!({"address": "behind the church", "reason": "moved house"});
        c.json(Method::PATCH, &path, Some(change.clone()), None, 428)
            .await;
        let (updated, tag) = c
            .json(
                Method::PATCH,
                &path,
                Some(change.clone()),
                Some("\"1\""),
                200,
            )
            .await;
        assert_eq!(
            (updated["address"].as_str(), tag.as_deref()),
            (Some("behind the church"), Some("\"2\""))
        );
        let (stale, _) = c
            .json(Method::PATCH, &path, Some(change), Some("\"1\""), 412)
            .await;
        assert!(stale["detail"].as_str().unwrap().contains("version"));

        let (hist, _) = c
            .json(Method::GET, &format!("{path}/history"), None, None, 200)
            .await;
        let events = hist["events"].as_array().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["kind"], "household.registered");
        assert_eq!(events[1]["before"], json!({"address": "near the market"}));
        assert_eq!(events[1]["after"], json!({"address": "behind the church"}));
        assert_eq!(
            (events[1]["actor"].as_str(), events[1]["reason"].as_str()),
            (Some("nyarugenge"), Some("moved house"))
        );
        assert_eq!(events[1]["channel"], "api");

        // The person: identity fields with their own version.
        let pid = h["members"][0]["id"].as_str().unwrap().to_string();
        let ppath = format!("/api/v1/individuals/{pid}");
        let (_, ptag) = c.json(Method::GET, &ppath, None, None, 200).await;
        let (p, _) = c
            .json(
                Method::PATCH,
                &ppath,
                Some(json!({"given_name": "Alinne"})),
                ptag.as_deref(),
                200,
            )
            .await;
        assert_eq!(p["given_name"], "Alinne");
        c.json(
            Method::PATCH,
            &ppath,
            Some(json!({"given_name": "X1"})),
            ptag.as_deref(),
            412,
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn as_of_returns_the_past_state() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let c = officer(&app, "officer", Role::DistrictOfficer, "11").await;
        // Registered a year ago (straight through the store, which takes the event time).
        let at = Utc.with_ymd_and_hms(2025, 1, 10, 9, 0, 0).unwrap();
        let new = NewHousehold {
            id: uuid::Uuid::now_v7(),
            registry_number: RegistryNumber::generate(&mut rand::rng()),
            input: HouseholdInput {
                village: inkingi_domain::areas::AreaCode::parse(VILLAGE).unwrap(),
                address: Some("old address".into()),
                gps: None,
                answers: answers().as_object().unwrap().clone(),
            },
            form_id: "rw-socioeconomic".into(),
            form_version: 1,
            source_key: None,
            members: vec![NewMember {
                id: uuid::Uuid::now_v7(),
                person: PersonInput {
                    given_name: Name::parse("Eric").unwrap(),
                    family_name: Name::parse("Mugisha").unwrap(),
                    sex: Sex::Male,
                    birth_date: Some(BirthDate::parse("1985").unwrap()),
                    national_id: Some(NationalId::parse("1198580012345013").unwrap()),
                    birth_registration: None,
                    refugee_id: None,
                    passport: None,
                    phones: vec![],
                    answers: Default::default(),
                },
                role: MemberRole::Head,
                since: at.date_naive(),
                mother_id: None,
                father_id: None,
                guardian_id: None,
                source_key: None,
            }],
        };
        let meta = EventMeta {
            actor: "seed".into(),
            channel: Channel::System,
            reason: None,
            change_request_id: None,
            at,
        };
        let mut uow = app.store.begin().await.unwrap();
        app.store
            .registry()
            .register_household(&mut uow, &new, &meta)
            .await
            .unwrap();
        uow.commit().await.unwrap();
        let path = format!("/api/v1/households/{}", new.id);
        c.json(
            Method::PATCH,
            &path,
            Some(json!({"address": "new address"})),
            Some("1"),
            200,
        )
        .await;
        let child = json!({"given_name": "Keza", "family_name": "Mugisha", "sex": "F", "birth_date": "2024-03", "role": "child"});
        c.json(
            Method::POST,
            &format!("{path}/members"),
            Some(child),
            None,
            201,
        )
        .await;

        let (then, _) = c
            .json(
                Method::GET,
                &format!("{path}?as_of=2025-06-01"),
                None,
                None,
                200,
            )
            .await;
        assert_eq!(then["household"]["address"], "old address");
        assert_eq!(then["members"].as_array().unwrap().len(), 1);
        let (now, _) = c.json(Method::GET, &path, None, None, 200).await;
        assert_eq!(
            (
                now["address"].as_str(),
                now["members"].as_array().unwrap().len()
            ),
            (Some("new address"), 2)
        );
        c.json(
            Method::GET,
            &format!("{path}?as_of=2024-12-31"),
            None,
            None,
            404,
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn another_district_gets_404_and_the_attempt_is_audited() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let ours = officer(&app, "nyarugenge", Role::DistrictOfficer, "11").await;
        let theirs = officer(&app, "nyanza", Role::DistrictOfficer, "21").await;
        let (h, _) = ours
            .json(
                Method::POST,
                "/api/v1/households",
                Some(household(vec![head("Aline", "Uwase")])),
                None,
                201,
            )
            .await;
        let id = h["id"].as_str().unwrap();
        let pid = h["members"][0]["id"].as_str().unwrap();
        theirs
            .json(
                Method::GET,
                &format!("/api/v1/households/{id}"),
                None,
                None,
                404,
            )
            .await;
        theirs
            .json(
                Method::GET,
                &format!("/api/v1/individuals/{pid}"),
                None,
                None,
                404,
            )
            .await;
        theirs
            .json(
                Method::PATCH,
                &format!("/api/v1/households/{id}"),
                Some(json!({"address": "x"})),
                Some("1"),
                404,
            )
            .await;
        let (found, _) = theirs
            .json(
                Method::GET,
                "/api/v1/individuals/search?q=Aline%20Uwase",
                None,
                None,
                200,
            )
            .await;
        assert!(found["results"].as_array().unwrap().is_empty());
        let (list, _) = theirs
            .json(Method::GET, "/api/v1/households", None, None, 200)
            .await;
        assert!(list["households"].as_array().unwrap().is_empty());

        app.audit.flush().await.unwrap();
        let entries = app
            .store
            .audit()
            .query(
                &AreaScope::national(),
                &AuditQuery {
                    actor: Some("nyanza".into()),
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let denied: Vec<_> = entries
            .iter()
            .filter(|e| e.record.outcome == "denied")
            .collect();
        assert_eq!(denied.len(), 3, "{entries:?}");
        assert_eq!(denied[0].record.subject_id.as_deref(), Some(id));
        assert_eq!(
            denied[0].record.area.as_ref().map(|a| a.as_str()),
            Some(VILLAGE)
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn search_ranks_spelling_variants_first() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let c = officer(&app, "officer", Role::DistrictOfficer, "11").await;
        let mut second = head("Claudine", "Uwimana");
        second["national_id"] = Value::Null;
        second["phones"] = json!([]);
        let mut third = head("Claude", "Uwimanzi");
        third["national_id"] = Value::Null;
        third["phones"] = json!([]);
        let mut other = head("Jean", "Habyarimana");
        other["national_id"] = Value::Null;
        other["phones"] = json!(["0722000111"]);
        for m in [second, third, other, head("Aline", "Uwase")] {
            c.json(
                Method::POST,
                "/api/v1/households",
                Some(household(vec![m])),
                None,
                201,
            )
            .await;
        }
        let (r, _) = c
            .json(
                Method::GET,
                "/api/v1/individuals/search?q=UWIMANNA%20Klaudine",
                None,
                None,
                200,
            )
            .await;
        let results = r["results"].as_array().unwrap();
        assert_eq!(results[0]["given_name"], "Claudine", "{r}");
        assert!(results[0]["score"].as_f64().unwrap() > 0.9);
        assert!(results.iter().all(|x| x["family_name"] != "Habyarimana"));
        // Swapped name order and diacritics rank alike.
        let (r, _) = c
            .json(
                Method::GET,
                "/api/v1/individuals/search?q=Clâudine%20Uwimana",
                None,
                None,
                200,
            )
            .await;
        assert_eq!(r["results"][0]["family_name"], "Uwimana");
        // Identifiers: national ID, phone in any written form.
        let (r, _) = c
            .json(
                Method::GET,
                "/api/v1/individuals/search?q=1199070012345012",
                None,
                None,
                200,
            )
            .await;
        assert_eq!(
            (
                r["results"][0]["given_name"].as_str(),
                r["results"][0]["score"].as_f64()
            ),
            (Some("Aline"), Some(1.0))
        );
        let (r, _) = c
            .json(
                Method::GET,
                "/api/v1/individuals/search?phone=%2B250722000111",
                None,
                None,
                200,
            )
            .await;
        assert_eq!(r["results"][0]["given_name"], "Jean");
        c.json(
            Method::GET,
            "/api/v1/individuals/search?national_id=12",
            None,
            None,
            400,
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn validation_errors_name_every_field() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let c = officer(&app, "officer", Role::DistrictOfficer, "11").await;
        let mut body = household(vec![
            head("Aline", "Uwase"),
            json!({"given_name": "Eric", "family_name": "", "sex": "X", "national_id": "123", "role": "child"}),
            json!({"given_name": "Bob", "family_name": "Mugabo", "sex": "M", "birth_date": "2031", "role": "head"}),
        ]);
        body["answers"].as_object_mut().unwrap().remove("tenure");
        body["answers"]["rooms"] = json!("two");
        body["village"] = json!("21010101");
        let (p, _) = c
            .json(Method::POST, "/api/v1/households", Some(body), None, 422)
            .await;
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for f in [
            "village",
            "answers.tenure",
            "answers.rooms",
            "members[1].family_name",
            "members[1].sex",
            "members[1].national_id",
            "members[2].birth_date",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert_eq!(p["type"], "urn:inkingi:problem:validation");
        // Two heads.
        let two = household(vec![
            head("Aline", "Uwase"),
            json!({"given_name": "Bob", "family_name": "Mugabo", "sex": "M", "role": "head"}),
        ]);
        let (p, _) = c
            .json(Method::POST, "/api/v1/households", Some(two), None, 422)
            .await;
        assert_eq!(p["errors"][0]["field"], "members");
        // A taken national ID is a conflict naming the field.
        c.json(
            Method::POST,
            "/api/v1/households",
            Some(household(vec![head("Aline", "Uwase")])),
            None,
            201,
        )
        .await;
        let (p, _) = c
            .json(
                Method::POST,
                "/api/v1/households",
                Some(household(vec![head("Aline", "Uwase")])),
                None,
                409,
            )
            .await;
        assert_eq!(p["field"], "national_id");
        app.stop().await;
    }
}

#[tokio::test]
async fn pagination_is_stable_and_filters_by_area() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let c = officer(&app, "officer", Role::NationalOfficer, "national").await;
        for i in 0..5 {
            let mut m = head("Aline", "Uwase");
            m["national_id"] = Value::Null;
            let mut b = household(vec![m]);
            if i == 4 {
                b["village"] = json!("21010101");
            }
            c.json(Method::POST, "/api/v1/households", Some(b), None, 201)
                .await;
        }
        let (all, _) = c
            .json(Method::GET, "/api/v1/households?limit=10", None, None, 200)
            .await;
        let all: Vec<Value> = all["households"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].clone())
            .collect();
        assert_eq!(all.len(), 5);
        let mut paged = Vec::new();
        let mut cursor = String::new();
        loop {
            let (page, _) = c
                .json(
                    Method::GET,
                    &format!("/api/v1/households?limit=2{cursor}"),
                    None,
                    None,
                    200,
                )
                .await;
            paged.extend(
                page["households"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["id"].clone()),
            );
            match page["next_cursor"].as_str() {
                Some(n) => cursor = format!("&cursor={n}"),
                None => break,
            }
        }
        assert_eq!(paged, all);
        let (kigali, _) = c
            .json(
                Method::GET,
                "/api/v1/households?area=11&status=active",
                None,
                None,
                200,
            )
            .await;
        assert_eq!(kigali["households"].as_array().unwrap().len(), 4);
        c.json(
            Method::GET,
            "/api/v1/households?cursor=nonsense",
            None,
            None,
            400,
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn memberships_keep_exactly_one_head() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let c = officer(&app, "officer", Role::DistrictOfficer, "11").await;
        let spouse = json!({"given_name": "Eric", "family_name": "Mugisha", "sex": "M", "birth_date": "1985", "role": "spouse"});
        let (h, _) = c
            .json(
                Method::POST,
                "/api/v1/households",
                Some(household(vec![head("Aline", "Uwase"), spouse])),
                None,
                201,
            )
            .await;
        let id = h["id"].as_str().unwrap();
        let head_id = h["members"][0]["id"].as_str().unwrap();
        let spouse_id = h["members"][1]["id"].as_str().unwrap();
        let second_head =
            json!({"given_name": "Bob", "family_name": "Mugabo", "sex": "M", "role": "head"});
        let (p, _) = c
            .json(
                Method::POST,
                &format!("/api/v1/households/{id}/members"),
                Some(second_head),
                None,
                422,
            )
            .await;
        assert_eq!(p["errors"][0]["field"], "role");
        c.json(
            Method::PATCH,
            &format!("/api/v1/memberships/{spouse_id}"),
            Some(json!({"role": "head"})),
            None,
            422,
        )
        .await;
        let (members, _) = c
            .json(
                Method::PATCH,
                &format!("/api/v1/memberships/{spouse_id}"),
                Some(json!({"role": "head", "previous_head_role": "spouse"})),
                None,
                200,
            )
            .await;
        let roles: Vec<(&str, &str)> = members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_str().unwrap(), m["role"].as_str().unwrap()))
            .collect();
        assert!(
            roles.contains(&(spouse_id, "head")) && roles.contains(&(head_id, "spouse")),
            "{roles:?}"
        );
        c.json(
            Method::POST,
            &format!("/api/v1/memberships/{spouse_id}/end"),
            Some(json!({"reason": "moved"})),
            None,
            422,
        )
        .await;
        c.json(
            Method::POST,
            &format!("/api/v1/memberships/{head_id}/end"),
            Some(json!({})),
            None,
            422,
        )
        .await;
        let res = c
            .send(
                Method::POST,
                &format!("/api/v1/memberships/{head_id}/end"),
                Some(json!({"reason": "moved to Huye"})),
                None,
            )
            .await;
        assert_eq!(res.status().as_u16(), 204);
        let (now, _) = c
            .json(
                Method::GET,
                &format!("/api/v1/households/{id}"),
                None,
                None,
                200,
            )
            .await;
        assert_eq!(now["members"].as_array().unwrap().len(), 1);
        let (hist, _) = c
            .json(
                Method::GET,
                &format!("/api/v1/households/{id}/history"),
                None,
                None,
                200,
            )
            .await;
        let kinds: Vec<&str> = hist["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "household.registered",
                "member.role_changed",
                "member.role_changed",
                "member.removed"
            ]
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn forms_are_versioned_and_published_by_admins() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let officer = officer(&app, "officer", Role::DistrictOfficer, "11").await;
        let (form, tag) = officer
            .json(
                Method::GET,
                "/api/v1/forms/rw-socioeconomic",
                None,
                None,
                200,
            )
            .await;
        assert_eq!(tag.as_deref(), Some("\"1\""));
        let mut next = form.clone();
        next["version"] = json!(2);
        next["household"].as_array_mut().unwrap().push(
            json!({"key": "has_bank_account", "type": "boolean", "label": {"en": "Bank account?"}}),
        );
        officer
            .json(Method::POST, "/api/v1/forms", Some(next.clone()), None, 403)
            .await;
        add_user(&app, "admin", Role::SystemAdmin, "national").await;
        let admin = Client {
            app: &app,
            token: token(&app, "admin", &["admin"]).await,
        };
        let mut bad = next.clone();
        bad["household"][0]["type"] = json!("colour");
        admin
            .json(Method::POST, "/api/v1/forms", Some(bad), None, 422)
            .await;
        admin
            .json(Method::POST, "/api/v1/forms", Some(next.clone()), None, 201)
            .await;
        admin
            .json(Method::POST, "/api/v1/forms", Some(next), None, 409)
            .await;
        let (v1, _) = officer
            .json(
                Method::GET,
                "/api/v1/forms/rw-socioeconomic/versions/1",
                None,
                None,
                200,
            )
            .await;
        assert_eq!(v1, form);
        // New answers are validated against the new version.
        let mut b = household(vec![head("Aline", "Uwase")]);
        b["answers"]["has_bank_account"] = json!("yes");
        let (p, _) = officer
            .json(Method::POST, "/api/v1/households", Some(b), None, 422)
            .await;
        assert_eq!(p["errors"][0]["field"], "answers.has_bank_account");
        app.stop().await;
    }
}

#[tokio::test]
async fn mother_father_and_guardian_links_are_checked_when_created() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let c = officer(&app, "officer", Role::DistrictOfficer, "11").await;
        let far = officer(&app, "far.officer", Role::DistrictOfficer, "12").await;
        let spouse = json!({"given_name": "Eric", "family_name": "Mugisha", "sex": "M",
                            "birth_date": "1985", "role": "spouse"});
        let child = json!({"given_name": "Keza", "family_name": "Mugisha", "sex": "F",
                           "birth_date": "2020-05-01", "role": "child",
                           "mother": {"member": 0}, "father": {"member": 1}});
        let (h, _) = c
            .json(
                Method::POST,
                "/api/v1/households",
                Some(household(vec![head("Aline", "Uwase"), spouse, child])),
                None,
                201,
            )
            .await;
        let id = h["id"].as_str().unwrap();
        let (mother, father) = (&h["members"][0]["id"], &h["members"][1]["id"]);
        assert_eq!(h["members"][2]["mother_id"], *mother, "{h}");
        assert_eq!(h["members"][2]["father_id"], *father, "{h}");

        // Within one registration: a position that does not exist, a father who is female,
        // a mother younger than her child.
        let bad = json!({"given_name": "Ganza", "family_name": "Uwase", "sex": "M",
                         "birth_date": "2021", "role": "child",
                         "mother": {"member": 7}, "father": {"member": 0}});
        let (p, _) = c
            .json(
                Method::POST,
                "/api/v1/households",
                Some(household(vec![head("Alice", "Uwera"), bad])),
                None,
                422,
            )
            .await;
        assert_eq!(p["errors"][0]["field"], "members[1].mother", "{p}");
        let bad = json!({"given_name": "Ganza", "family_name": "Uwase", "sex": "M",
                         "birth_date": "2021", "role": "child", "father": {"member": 0}});
        let mut hh = household(vec![head("Alice", "Uwera"), bad]);
        hh["members"][0]
            .as_object_mut()
            .unwrap()
            .remove("national_id");
        let (p, _) = c
            .json(Method::POST, "/api/v1/households", Some(hh), None, 422)
            .await;
        assert_eq!(p["errors"][0]["field"], "members[1].father", "{p}");
        assert!(
            p["errors"][0]["reason"].as_str().unwrap().contains("male"),
            "{p}"
        );

        // Adding to an existing household: the mother must exist and be visible to the caller,
        // and a parent born after the child is refused.
        let path = format!("/api/v1/households/{id}/members");
        let baby = |mother: Value| {
            json!({"given_name": "Shema", "family_name": "Mugisha", "sex": "M",
                   "birth_date": "2024-01-10", "role": "child", "mother": mother})
        };
        let (p, _) = c
            .json(
                Method::POST,
                &path,
                Some(baby(json!({"member": 0}))),
                None,
                422,
            )
            .await;
        assert_eq!(p["errors"][0]["field"], "mother", "{p}");
        let (p, _) = c
            .json(
                Method::POST,
                &path,
                Some(baby(json!({"id": h["members"][2]["id"]}))),
                None,
                422,
            )
            .await;
        assert!(
            p["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("10 years"),
            "{p}"
        );
        let (m, _) = c
            .json(
                Method::POST,
                &path,
                Some(baby(json!({"id": mother}))),
                None,
                201,
            )
            .await;
        assert_eq!(m["mother_id"], *mother);

        // An officer of another district cannot name her, even knowing her id.
        far.json(
            Method::POST,
            "/api/v1/households",
            Some(
                json!({"village": "12010101", "answers": answers(), "members": [
                {"given_name": "Jean", "family_name": "Habimana", "sex": "M", "role": "head",
                 "birth_date": "1980"},
                {"given_name": "Ange", "family_name": "Habimana", "sex": "F", "role": "child",
                 "birth_date": "2015", "mother": {"id": mother}}]}),
            ),
            None,
            422,
        )
        .await;
        app.stop().await;
    }
}
