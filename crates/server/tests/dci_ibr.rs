//! The DCI Integrated Beneficiary Registry API over real HTTP on every backend: enrolments
//! reported by a programme's system (`enrollment/updates`) move the programmes' enrolments
//! through their lifecycle, item by item with reason codes; `enrolled` answers from those
//! enrolments within the caller's scope, audited; message ids are not replayable; the
//! asynchronous forms acknowledge and deliver their answers through the job queue.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{NaiveDate, Utc};
use common::programmes::drain_jobs;
use common::*;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, NationalId, PersonInput, RegistryNumber, Sex,
};
use inkingi_store::audit::AuditQuery;
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

fn adult(given: &str, nid: &NationalId) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: PersonInput {
            given_name: Name::parse(given).unwrap(),
            family_name: Name::parse("Uwase").unwrap(),
            sex: Sex::Female,
            birth_date: Some(BirthDate::parse("1990-03-04").unwrap()),
            national_id: Some(nid.clone()),
            birth_registration: None,
            refugee_id: None,
            passport: None,
            phones: Vec::new(),
            answers: Default::default(),
        },
        role: MemberRole::Head,
        since: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        mother_id: None,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

/// A one-person household in `village`; returns the person's national ID.
async fn household(app: &TestApp, village: &str, given: &str, serial: u32) -> String {
    let nid = NationalId::compose(1, 1990, Sex::Female, serial, 0, 11);
    let new = NewHousehold {
        id: Uuid::now_v7(),
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input: HouseholdInput {
            village: AreaCode::parse(village).unwrap(),
            address: None,
            gps: None,
            answers: Default::default(),
        },
        form_id: "default".into(),
        form_version: 1,
        source_key: None,
        members: vec![adult(given, &nid)],
    };
    let meta = EventMeta {
        actor: "test".into(),
        channel: Channel::Api,
        reason: None,
        change_request_id: None,
        at: Utc::now(),
    };
    let mut uow = app.store.begin().await.unwrap();
    app.store
        .registry()
        .register_household(&mut uow, &new, &meta)
        .await
        .unwrap();
    uow.commit().await.unwrap();
    nid.as_str().to_string()
}

fn envelope(action: &str, count: usize, sender_uri: &str, message: Value) -> Value {
    json!({
        "signature": "",
        "header": {
            "version": "1.0.0",
            "message_id": Uuid::now_v7().to_string(),
            "message_ts": Utc::now().to_rfc3339(),
            "action": action,
            "sender_id": "sp-mis",
            "sender_uri": sender_uri,
            "receiver_id": "inkingi",
            "total_count": count.to_string(),
            "is_msg_encrypted": false,
            "meta": ""
        },
        "message": message
    })
}

/// The sample's form of an `enrolled` query: a bare expression on `person_identifier`.
fn enrolled_query(nid: &str, sender_uri: &str) -> Value {
    envelope(
        "search",
        1,
        sender_uri,
        json!({"transaction_id": "T-E", "enrolled_criteria": {"query_type": "expression",
            "response_entity": "Beneficiary", "query": {"attribute_name": "person_identifier",
            "operator": "eq", "attribute_value": nid}}}),
    )
}

/// A reported enrolment, shaped as the spec's sample shapes it.
fn reported(nid: &str, programme: &str, status: &str) -> Value {
    json!({"@type": "Beneficiary", "member": {
        "member_identifier": [{"identifier_type": "NID", "identifier_value": nid}],
        "programme_identifier": {"programme": {"programme_identifier": programme},
            "enrolment_status": status, "status_reason": "reported by the programme's MIS"}}})
}

fn updates(items: Vec<Value>, sender_uri: &str) -> Value {
    envelope(
        "notify",
        items.len(),
        sender_uri,
        json!({"transaction_id": "T-U", "enrolled_updates": {"reg_event_type": "enrollement",
            "beneficiaries": items}}),
    )
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const ENROLLED: &str = "/dci/registry/sync/enrolled";
const UPDATES: &str = "/dci/registry/sync/enrollment/updates";

async fn enrolled(app: &TestApp, token: &str, nid: &str) -> Value {
    let (s, body) = post(app, ENROLLED, token, &enrolled_query(nid, "")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["header"]["action"], "on-search", "{body}");
    body["message"]["enrolled_response"][0].clone()
}

fn statuses(item: &Value) -> Vec<(String, String)> {
    item["data"]["reg_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let p = &r["programme_identifier"];
            (
                p["programme"]["programme_identifier"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                p["enrolment_status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn programme(code: &str, capacity: Option<u32>) -> Value {
    let mut p = json!({
        "code": code, "name": format!("Programme {code}"), "agency": "loda",
        "target": "household", "eligibility": "size >= 1",
        "benefit": {"type": "per_member", "base": 1000, "per_member": 500, "cap": 3000},
        "frequency": "monthly", "overlaps_with": []
    });
    if let Some(c) = capacity {
        p["capacity"] = c.into();
    }
    p
}

#[tokio::test]
async fn reported_enrolments_move_the_lifecycle_and_enrolled_answers_from_them() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let catalogue = inkingi_domain::programmes::Catalogue::rw_illustrative().unwrap();
        inkingi_store::programmes::load_catalogue(&app.store, &catalogue, "test")
            .await
            .unwrap();
        add_user(&app, "sp.mis", Role::ProgrammeManager, "national").await;
        add_user(&app, "dci.client", Role::DistrictOfficer, "11").await;
        add_user(&app, "far.client", Role::DistrictOfficer, "12").await;
        let mis = token(
            &app,
            "sp.mis",
            &["read", "write", "purpose:programme_administration"],
        )
        .await;
        let reader = token(&app, "dci.client", &["read", "purpose:registration"]).await;
        let far = token(&app, "far.client", &["read", "purpose:registration"]).await;
        for (code, cap) in [("cash", None), ("small", Some(1))] {
            let res = app
                .client
                .post(app.url("/api/v1/programmes"))
                .bearer_auth(&mis)
                .json(&programme(code, cap))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        }
        let aline = household(&app, "11010102", "Aline", 11).await;
        let brigitte = household(&app, "11010102", "Brigitte", 12).await;
        let unknown = NationalId::compose(1, 1990, Sex::Female, 99, 0, 11);

        // Nothing yet: not enrolled, no records.
        let item = enrolled(&app, &reader, &aline).await;
        assert_eq!(
            (&item["status"], &item["enrolled_status"]),
            (&json!("succ"), &json!("no")),
            "[{db:?}] {item}"
        );
        assert_eq!(item["data"]["reg_records"], json!([]), "[{db:?}]");

        // A batch: two enrolled (the second waits: `small` has one place), two refused.
        let batch = updates(
            vec![
                reported(&aline, "small", "Active"),
                reported(&brigitte, "small", "Active"),
                reported(unknown.as_str(), "cash", "Active"),
                reported(&aline, "nope", "Active"),
            ],
            "",
        );
        let (s, body) = post(&app, UPDATES, &mis, &batch).await;
        assert_eq!(s, 200, "[{db:?}] {body}");
        assert_eq!(body["header"]["action"], "on-notify", "[{db:?}]");
        assert_eq!(body["header"]["completed_count"], 4, "[{db:?}]");
        let items = body["message"]["enrolled_response"].as_array().unwrap();
        let got: Vec<(&str, &str)> = items
            .iter()
            .map(|i| {
                (
                    i["status"].as_str().unwrap(),
                    i["status_reason_code"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("succ", ""),
                ("succ", ""),
                ("rjct", "rjct.member_identifier.not_found"),
                ("rjct", "rjct.programme.invalid"),
            ],
            "[{db:?}] {body}"
        );
        assert!(
            items[1]["status_reason_message"]
                .as_str()
                .unwrap()
                .starts_with("waiting"),
            "[{db:?}] {body}"
        );
        // The same message again: refused as a replay, nothing applied twice.
        let (s, again) = post(&app, UPDATES, &mis, &batch).await;
        assert_eq!(s, 422, "[{db:?}] {again}");
        assert_eq!(
            again["header"]["status_reason_code"], "rjct.message_id.duplicate",
            "[{db:?}]"
        );

        let item = enrolled(&app, &reader, &aline).await;
        assert_eq!(item["enrolled_status"], "yes", "[{db:?}] {item}");
        assert_eq!(
            statuses(&item),
            [("small".to_string(), "Active".to_string())],
            "[{db:?}]"
        );
        let rec = &item["data"]["reg_records"][0];
        assert_eq!(
            rec["member"]["demographic_info"]["name"]["given_name"],
            "Aline"
        );
        assert!(rec["programme_identifier"]["enrolment_date"].is_string());
        let item = enrolled(&app, &reader, &brigitte).await;
        assert_eq!(
            item["enrolled_status"], "no",
            "[{db:?}] waiting is not enrolled"
        );
        assert_eq!(
            statuses(&item),
            [("small".to_string(), "Waiting".to_string())]
        );

        // The schema's form with a programme condition: another programme → no.
        let by_programme = envelope(
            "search",
            1,
            "",
            json!({"transaction_id": "T-P", "enrolled_criteria": {"query_type": "expression",
                "query": {"person_identifier": {"eq": aline},
                "programme_identifier.program.programme_identifier": {"eq": "cash"}}}}),
        );
        let (_, body) = post(&app, ENROLLED, &reader, &by_programme).await;
        let item = &body["message"]["enrolled_response"][0];
        assert_eq!(item["enrolled_status"], "no", "[{db:?}] {body}");

        // Aline exits: her place goes to Brigitte, through the lifecycle.
        let (s, body) = post(
            &app,
            UPDATES,
            &mis,
            &updates(vec![reported(&aline, "small", "Exited")], ""),
        )
        .await;
        assert_eq!(s, 200, "[{db:?}] {body}");
        assert_eq!(
            body["message"]["enrolled_response"][0]["status"], "succ",
            "[{db:?}] {body}"
        );
        assert_eq!(
            statuses(&enrolled(&app, &reader, &aline).await),
            [("small".to_string(), "Exited".to_string())]
        );
        assert_eq!(
            enrolled(&app, &reader, &brigitte).await["enrolled_status"],
            "yes",
            "[{db:?}] promoted from the waiting list"
        );
        // A move the lifecycle forbids is refused for that item.
        let (_, body) = post(
            &app,
            UPDATES,
            &mis,
            &updates(vec![reported(&aline, "small", "Suspended")], ""),
        )
        .await;
        assert_eq!(
            body["message"]["enrolled_response"][0]["status_reason_code"],
            "rjct.enrolment.not_found",
            "[{db:?}] {body}"
        );

        // Another district sees nothing; a reader may not report enrolments.
        let item = enrolled(&app, &far, &brigitte).await;
        assert_eq!(
            (&item["enrolled_status"], &item["data"]["reg_records"]),
            (&json!("no"), &json!([])),
            "[{db:?}]"
        );
        let (s, _) = post(
            &app,
            UPDATES,
            &reader,
            &updates(vec![reported(&aline, "cash", "Active")], ""),
        )
        .await;
        assert_eq!(s, 403, "[{db:?}]");
        // A bad query is refused with the search's reason codes.
        let bad = envelope(
            "search",
            1,
            "",
            json!({"transaction_id": "T-B", "enrolled_criteria": {"query_type": "predicate",
                "query": [{"expression1": {"attribute_name": "programme", "operator": "eq",
                "attribute_value": "cash"}}]}}),
        );
        let (_, body) = post(&app, ENROLLED, &reader, &bad).await;
        assert_eq!(
            body["message"]["enrolled_response"][0]["status_reason_code"],
            "rjct.search_criteria.invalid",
            "[{db:?}] {body}"
        );

        // Every answer is audited: the people disclosed with their enrolments, the moves.
        app.audit.flush().await.unwrap();
        let entries = app
            .store
            .audit()
            .query(
                &AreaScope::national(),
                &AuditQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let count = |actor: &str, action: &str| {
            entries
                .iter()
                .filter(|e| e.record.actor == actor && e.record.action == action)
                .count()
        };
        assert!(count("dci.client", "person.read") >= 6, "[{db:?}]");
        assert_eq!(count("sp.mis", "enrolment.create"), 2, "[{db:?}]");
        assert_eq!(count("sp.mis", "enrolment.transition"), 1, "[{db:?}]");
        app.stop().await;
    }
}

/// Records what the caller's callback endpoints receive.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn on_enrolled(State(r): State<Receiver>, axum::Json(b): axum::Json<Value>) -> StatusCode {
    r.bodies.lock().unwrap().push(("enrolled".into(), b));
    StatusCode::OK
}

async fn on_updates(State(r): State<Receiver>, axum::Json(b): axum::Json<Value>) -> StatusCode {
    r.bodies.lock().unwrap().push(("updates".into(), b));
    StatusCode::OK
}

#[tokio::test]
async fn async_forms_acknowledge_and_deliver_through_the_job_queue() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let catalogue = inkingi_domain::programmes::Catalogue::rw_illustrative().unwrap();
        inkingi_store::programmes::load_catalogue(&app.store, &catalogue, "test")
            .await
            .unwrap();
        add_user(&app, "sp.mis", Role::ProgrammeManager, "national").await;
        let mis = token(
            &app,
            "sp.mis",
            &["read", "write", "purpose:programme_administration"],
        )
        .await;
        let res = app
            .client
            .post(app.url("/api/v1/programmes"))
            .bearer_auth(&mis)
            .json(&programme("cash", None))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let aline = household(&app, "11010102", "Aline", 21).await;

        let recv = Receiver::default();
        let router = axum::Router::new()
            .route("/ibr/on-enrolled", axum::routing::post(on_enrolled))
            .route(
                "/ibr/enrollment/on-updates",
                axum::routing::post(on_updates),
            )
            .with_state(recv.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/ibr", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, router).await });

        // No sender_uri: an ERR naming it, nothing recorded.
        let (s, ack) = post(
            &app,
            "/dci/registry/enrollment/updates",
            &mis,
            &updates(vec![reported(&aline, "cash", "Active")], ""),
        )
        .await;
        assert_eq!(s, 400, "[{db:?}] {ack}");
        assert_eq!(ack["message"]["error"]["code"], "err.sender_uri.invalid");

        let (s, ack) = post(
            &app,
            "/dci/registry/enrollment/updates",
            &mis,
            &updates(vec![reported(&aline, "cash", "Active")], &uri),
        )
        .await;
        assert_eq!(s, 202, "[{db:?}] {ack}");
        assert_eq!(ack["message"]["ack_status"], "ACK");
        let (s, ack2) = post(
            &app,
            "/dci/registry/enrolled",
            &mis,
            &enrolled_query(&aline, &uri),
        )
        .await;
        assert_eq!(s, 202, "[{db:?}] {ack2}");
        drain_jobs(&app).await;

        let got = recv.bodies.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "[{db:?}] {got:?}");
        let (_, upd) = got.iter().find(|(k, _)| k == "updates").unwrap();
        assert_eq!(
            upd["message"]["correlation_id"],
            ack["message"]["correlation_id"]
        );
        assert_eq!(
            upd["message"]["enrolled_response"][0]["status"], "succ",
            "{upd}"
        );
        let (_, enr) = got.iter().find(|(k, _)| k == "enrolled").unwrap();
        // Applied when acknowledged, so the later query sees the enrolment.
        assert_eq!(
            enr["message"]["enrolled_response"][0]["enrolled_status"], "yes",
            "[{db:?}] {enr}"
        );
        server.abort();
        app.stop().await;
    }
}
