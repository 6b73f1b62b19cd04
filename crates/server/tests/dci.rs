//! The DCI registry API over real HTTP on every backend: searches by ID, predicate and
//! expression within the caller's area scope, pagination, refusals with the spec's codes, and an
//! asynchronous search answered through the job queue to a live callback server.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{NaiveDate, Utc};
use common::*;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::Role;
use inkingi_domain::jobs::RetryPolicy;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, NationalId, PersonInput, PhoneNumber,
    RegistryNumber, Sex,
};
use inkingi_interop::worker::{run_with, Registry, WorkerSettings};
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SYNC: &str = "/dci/registry/sync/search";
const ASYNC: &str = "/dci/registry/search";
const STATUS: &str = "/dci/registry/sync/txn/status";

struct Seeded {
    /// National ID of the head of the first household.
    nid: String,
    hh_number: String,
}

fn person(
    given: &str,
    sex: Sex,
    born: &str,
    nid: Option<NationalId>,
    phone: Option<&str>,
) -> PersonInput {
    PersonInput {
        given_name: Name::parse(given).unwrap(),
        family_name: Name::parse("Uwimana").unwrap(),
        sex,
        birth_date: Some(BirthDate::parse(born).unwrap()),
        national_id: nid,
        birth_registration: None,
        refugee_id: None,
        passport: None,
        phones: phone
            .map(|p| PhoneNumber::parse(p).unwrap())
            .into_iter()
            .collect(),
        answers: Default::default(),
    }
}

fn member(p: PersonInput, role: MemberRole) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: p,
        role,
        since: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        mother_id: None,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

async fn household(app: &TestApp, village: &str, number: &str, members: Vec<NewMember>) {
    let form = app.store.registry().latest_form("default").await.unwrap();
    let form = form
        .map(|f| (f.schema.id.clone(), f.schema.version))
        .unwrap_or(("default".into(), 1));
    let new = NewHousehold {
        id: Uuid::now_v7(),
        registry_number: RegistryNumber::parse(number).unwrap(),
        input: HouseholdInput {
            village: AreaCode::parse(village).unwrap(),
            address: Some("KN 5 Rd".into()),
            gps: None,
            answers: Default::default(),
        },
        form_id: form.0,
        form_version: form.1,
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
    let mut uow = app.store.begin().await.unwrap();
    app.store
        .registry()
        .register_household(&mut uow, &new, &meta)
        .await
        .unwrap();
    uow.commit().await.unwrap();
}

/// Three households: two in district 11 (four people), one in district 12 (out of scope).
async fn seed(app: &TestApp) -> Seeded {
    let mut rng = rand::rng();
    let numbers: Vec<String> = (0..3)
        .map(|_| RegistryNumber::generate(&mut rng).as_str().to_string())
        .collect();
    let nid = NationalId::compose(1, 1985, Sex::Female, 1234, 0, 11);
    household(
        app,
        "11010102",
        &numbers[0],
        vec![
            member(
                person(
                    "Aline",
                    Sex::Female,
                    "1985-05-20",
                    Some(nid.clone()),
                    Some("0788123456"),
                ),
                MemberRole::Head,
            ),
            member(
                person("Eric", Sex::Male, "2021-03-01", None, None),
                MemberRole::Child,
            ),
        ],
    )
    .await;
    household(
        app,
        "11010103",
        &numbers[1],
        vec![
            member(
                person(
                    "Jean",
                    Sex::Male,
                    "1970",
                    Some(NationalId::compose(1, 1970, Sex::Male, 55, 0, 7)),
                    None,
                ),
                MemberRole::Head,
            ),
            member(
                person("Claudine", Sex::Female, "1975-02", None, None),
                MemberRole::Spouse,
            ),
        ],
    )
    .await;
    household(
        app,
        "12010101",
        &numbers[2],
        vec![member(
            person("Grace", Sex::Female, "1990-01-01", None, None),
            MemberRole::Head,
        )],
    )
    .await;
    Seeded {
        nid: nid.as_str().to_string(),
        hh_number: numbers[0].clone(),
    }
}

/// A district-11 DCI client token.
async fn client(app: &TestApp) -> String {
    add_user(app, "dci.client", Role::DistrictOfficer, "11").await;
    token(app, "dci.client", &["read", "purpose:registration"]).await
}

fn envelope(action: &str, requests: Vec<Value>, sender_uri: &str) -> Value {
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
            // As the published samples send it.
            "total_count": requests.len().to_string(),
            "is_msg_encrypted": false,
            "meta": ""
        },
        "message": {"transaction_id": "T-1", "search_request": requests}
    })
}

fn request(reference: &str, query_type: &str, query: Value, extra: Value) -> Value {
    let mut criteria =
        json!({"version": "1.0.0", "reg_type": "SOCIAL", "query_type": query_type, "query": query});
    for (k, v) in extra.as_object().unwrap() {
        criteria[k] = v.clone();
    }
    json!({
        "reference_id": reference,
        "timestamp": Utc::now().to_rfc3339(),
        "search_criteria": criteria,
        "locale": "eng"
    })
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

/// Searches once; returns the first request's response.
async fn search_one(app: &TestApp, token: &str, req: Value) -> Value {
    let (status, body) = post(app, SYNC, token, &envelope("search", vec![req], "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["header"]["action"], "on-search", "{body}");
    body["message"]["search_response"][0].clone()
}

fn given_names(item: &Value) -> Vec<String> {
    item["data"]["reg_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["demographic_info"]["name"]["given_name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// How many `person.read` entries the DCI client left in the audit log (after a flush).
async fn person_reads(app: &TestApp) -> usize {
    app.audit.flush().await.unwrap();
    let entries = app
        .store
        .audit()
        .query(
            &inkingi_domain::identity::AreaScope::national(),
            &inkingi_store::audit::AuditQuery {
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    entries
        .iter()
        .filter(|e| e.record.action == "person.read" && e.record.actor == "dci.client")
        .count()
}

#[tokio::test]
async fn sync_search_by_id_predicate_and_expression_within_scope() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let s = seed(&app).await;
        let token = client(&app).await;

        let item = search_one(
            &app,
            &token,
            request(
                "r1",
                "idtype-value",
                json!({"type": "UIN", "value": s.nid}),
                json!({}),
            ),
        )
        .await;
        assert_eq!(item["status"], "succ", "[{db:?}] {item}");
        let rec = &item["data"]["reg_records"][0];
        let p = &rec["demographic_info"];
        assert_eq!(p["name"]["given_name"], "Aline");
        assert_eq!(p["sex"], "female");
        assert_eq!(p["birth_date"], "1985-05-20");
        assert_eq!(
            p["identifier"][0],
            json!({"@type": "Identifier", "identifier_type": "UIN", "identifier_value": s.nid})
        );
        assert_eq!(p["address"]["village_code"], "11010102");
        assert_eq!(p["phone_number"], "+250788123456");
        assert_eq!(rec["group_identifier"][0]["identifier_value"], s.hh_number);
        assert_eq!(item["pagination"]["total_count"], 1);
        assert!(rec.get("poverty_score").is_none());

        // Women born before 2000: Aline and Claudine; Grace is in district 12, out of scope.
        let pred = json!([{
            "seq_num": 1,
            "expression1": {"attribute_name": "sex", "operator": "eq", "attribute_value": "female"},
            "condition": "and",
            "expression2": {"attribute_name": "birth_date", "operator": "lt", "attribute_value": "2000-01-01"}
        }]);
        let item = search_one(
            &app,
            &token,
            request(
                "r2",
                "predicate",
                pred,
                json!({"sort": [{"attribute_name": "birth_date", "sort_order": "asc"}]}),
            ),
        )
        .await;
        assert_eq!(given_names(&item), ["Claudine", "Aline"], "[{db:?}] {item}");

        // Year of birth with `in`, and the age of a child.
        let pred = json!({"expression1": {"attribute_name": "YOB", "operator": "in", "attribute_value": [1970, 1985]}});
        let item = search_one(
            &app,
            &token,
            request(
                "r3",
                "predicate",
                pred,
                json!({"sort": [{"attribute_name": "given_name"}]}),
            ),
        )
        .await;
        assert_eq!(given_names(&item), ["Aline", "Jean"], "[{db:?}] {item}");
        let pred = json!({"expression1": {"attribute_name": "age", "operator": "lt", "attribute_value": "6"}});
        let item = search_one(&app, &token, request("r4", "predicate", pred, json!({}))).await;
        assert_eq!(given_names(&item), ["Eric"], "[{db:?}] {item}");

        // A document expression over a village, answered as groups.
        let expr = json!({"type": "ns:org:QueryType:NoSql", "value": {"expression": {"collection": "Group",
            "query": {"$and": [{"village": {"$eq": "11010103"}}]}}}});
        let item = search_one(
            &app,
            &token,
            request(
                "r5",
                "expression",
                expr,
                json!({"response_entity": "Group"}),
            ),
        )
        .await;
        let groups = item["data"]["reg_records"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "[{db:?}] {item}");
        assert_eq!(groups[0]["group_size"], 2);
        assert_eq!(
            groups[0]["group_head_info"]["demographic_info"]["name"]["given_name"],
            "Jean"
        );

        // Outside the scope: nothing, not even a count.
        let expr = json!({"type": "x", "value": {"expression": {"query": {"village": "12"}}}});
        let item = search_one(&app, &token, request("r6", "expression", expr, json!({}))).await;
        assert_eq!(item["pagination"]["total_count"], 0, "[{db:?}] {item}");

        // Every person returned was audited with the purpose.
        let reads = person_reads(&app).await;
        // r1: 1, r2: 2, r3: 2, r4: 1, r5: 2 members.
        assert_eq!(reads, 8, "[{db:?}]");
        app.stop().await;
    }
}

#[tokio::test]
async fn pages_are_stable_and_bounded() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        seed(&app).await;
        let token = client(&app).await;
        let everyone = json!({"expression1": {"attribute_name": "sex", "operator": "in", "attribute_value": ["female", "male"]}});
        let mut seen = Vec::new();
        for page in 1..=3 {
            let extra = json!({"pagination": {"page_size": 3, "page_number": page},
                "sort": [{"attribute_name": "birth_date", "sort_order": "desc"}]});
            let item = search_one(
                &app,
                &token,
                request("p", "predicate", everyone.clone(), extra),
            )
            .await;
            assert_eq!(item["pagination"]["total_count"], 4, "[{db:?}] {item}");
            assert_eq!(item["pagination"]["page_number"], page);
            seen.extend(given_names(&item));
        }
        assert_eq!(seen, ["Eric", "Aline", "Claudine", "Jean"], "[{db:?}]");

        let extra = json!({"pagination": {"page_size": 1000}});
        let item = search_one(&app, &token, request("p", "predicate", everyone, extra)).await;
        assert_eq!(item["status"], "rjct");
        assert_eq!(
            item["status_reason_code"], "rjct.pagination.invalid",
            "{item}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_messages_get_the_spec_codes_and_store_nothing() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let s = seed(&app).await;
        let token = client(&app).await;
        let by_id = request(
            "r",
            "idtype-value",
            json!({"type": "UIN", "value": s.nid}),
            json!({}),
        );

        // Not JSON / not an envelope: ERR.
        let res = app
            .client
            .post(app.url(SYNC))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["message"]["ack_status"], "ERR", "{body}");
        assert_eq!(body["message"]["error"]["code"], "err.request.bad");
        let mut env = envelope("search", vec![by_id.clone()], "");
        env["header"].as_object_mut().unwrap().remove("message_id");
        let (status, body) = post(&app, SYNC, &token, &env).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("message_id"),
            "{body}"
        );

        // Replayed message id: refused the second time, whatever the endpoint.
        let env = envelope("search", vec![by_id.clone()], "");
        assert_eq!(post(&app, SYNC, &token, &env).await.0, 200);
        let (status, body) = post(&app, SYNC, &token, &env).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["header"]["status"], "rjct");
        assert_eq!(
            body["header"]["status_reason_code"], "rjct.message_id.duplicate",
            "{body}"
        );
        let mut env2 = env.clone();
        env2["header"]["sender_uri"] = json!("http://127.0.0.1:9/cb");
        let (status, body) = post(&app, ASYNC, &token, &env2).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["message"]["ack_status"], "NACK");
        assert!(
            body["message"]["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("rjct.message_id.duplicate"),
            "{body}"
        );

        // Stale timestamp, wrong count, wrong action.
        let mut stale = envelope("search", vec![by_id.clone()], "");
        stale["header"]["message_ts"] =
            json!((Utc::now() - chrono::Duration::minutes(30)).to_rfc3339());
        let (status, body) = post(&app, SYNC, &token, &stale).await;
        assert_eq!(
            (status, body["header"]["status_reason_code"].clone()),
            (422, json!("rjct.message_ts.invalid")),
            "{body}"
        );
        let mut count = envelope("search", vec![by_id.clone()], "");
        count["header"]["total_count"] = json!(2);
        let (_, body) = post(&app, SYNC, &token, &count).await;
        assert_eq!(
            body["header"]["status_reason_code"], "rjct.total_count.invalid",
            "{body}"
        );
        let (_, body) = post(
            &app,
            SYNC,
            &token,
            &envelope("subscribe", vec![by_id.clone()], ""),
        )
        .await;
        assert_eq!(
            body["header"]["status_reason_code"], "rjct.action.invalid",
            "{body}"
        );
        // A refused message's id was not consumed: the same id with a good header is served.
        stale["header"]["message_ts"] = json!(Utc::now().to_rfc3339());
        assert_eq!(post(&app, SYNC, &token, &stale).await.0, 200);

        // Per request: unknown field, bad operator, duplicate reference, bad query type.
        let unknown = request(
            "a",
            "predicate",
            json!({"expression1": {"attribute_name": "favourite_colour", "operator": "eq", "attribute_value": "red"}}),
            json!({}),
        );
        let poverty = request(
            "b",
            "predicate",
            json!({"expression1": {"attribute_name": "poverty_score", "operator": "lt", "attribute_value": 5}}),
            json!({}),
        );
        let bad_op = request(
            "c",
            "predicate",
            json!({"expression1": {"attribute_name": "sex", "operator": "lt", "attribute_value": "m"}}),
            json!({}),
        );
        let dup = request(
            "c",
            "idtype-value",
            json!({"type": "UIN", "value": s.nid}),
            json!({}),
        );
        let qtype = request("d", "graphql", json!({}), json!({}));
        let (status, body) = post(
            &app,
            SYNC,
            &token,
            &envelope(
                "search",
                vec![unknown, poverty, bad_op, dup, qtype, by_id],
                "",
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let codes: Vec<Value> = body["message"]["search_response"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status_reason_code"].clone())
            .collect();
        assert_eq!(
            codes,
            [
                json!("rjct.filter.invalid"),
                json!("rjct.filter.invalid"),
                json!("rjct.filter.invalid"),
                json!("rjct.reference_id.duplicate"),
                json!("rjct.search_criteria.invalid"),
                Value::Null
            ],
            "{body}"
        );
        assert!(
            body["message"]["search_response"][0]["status_reason_message"]
                .as_str()
                .unwrap()
                .contains("favourite_colour")
        );
        assert!(
            body["message"]["search_response"][1]["status_reason_message"]
                .as_str()
                .unwrap()
                .contains("targeting")
        );
        assert_eq!(body["message"]["search_response"][5]["status"], "succ");

        // Async without a usable sender_uri: ERR, and nothing queued.
        let (status, body) = post(
            &app,
            ASYNC,
            &token,
            &envelope(
                "search",
                vec![request(
                    "z",
                    "idtype-value",
                    json!({"type": "UIN", "value": s.nid}),
                    json!({}),
                )],
                "ftp://x",
            ),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["message"]["error"]["code"], "err.sender_uri.invalid");
        let jobs = app.store.jobs().stats().await.unwrap();
        assert!(jobs.counts.iter().all(|c| c.queue != "dci"), "{jobs:?}");

        // No purpose of use: refused before anything is read.
        add_user(&app, "no.purpose", Role::DistrictOfficer, "11").await;
        let t = common::token(&app, "no.purpose", &["read"]).await;
        let (status, body) = post(
            &app,
            SYNC,
            &t,
            &envelope(
                "search",
                vec![request(
                    "q",
                    "idtype-value",
                    json!({"type": "UIN", "value": s.nid}),
                    json!({}),
                )],
                "",
            ),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["field"], "X-Purpose-Of-Use", "{body}");
        app.stop().await;
    }
}

/// The caller's callback endpoint: fails the first delivery with 503, then records bodies.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<u32>>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn on_search(State(r): State<Receiver>, axum::Json(body): axum::Json<Value>) -> StatusCode {
    let n = {
        let mut c = r.calls.lock().unwrap();
        *c += 1;
        *c
    };
    if n == 1 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    r.bodies.lock().unwrap().push(body);
    StatusCode::OK
}

#[tokio::test]
async fn async_search_is_acknowledged_then_delivered_by_the_worker_with_retries() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let s = seed(&app).await;
        let token = client(&app).await;

        let recv = Receiver::default();
        let router = axum::Router::new()
            .route("/dci/on-search", axum::routing::post(on_search))
            .with_state(recv.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router).await });

        let env = envelope(
            "search",
            vec![request(
                "r1",
                "idtype-value",
                json!({"type": "UIN", "value": s.nid}),
                json!({}),
            )],
            &format!("http://{addr}/dci"),
        );
        let (status, ack) = post(&app, ASYNC, &token, &env).await;
        assert_eq!(status, 202, "[{db:?}] {ack}");
        assert_eq!(ack["message"]["ack_status"], "ACK");
        let cid = ack["message"]["correlation_id"]
            .as_str()
            .unwrap()
            .to_string();

        // Pending until delivered.
        let status_req = |id: &str| {
            json!({
                "header": {"message_id": Uuid::now_v7().to_string(), "message_ts": Utc::now().to_rfc3339(),
                    "action": "txn-status", "sender_id": "sp-mis", "total_count": 1},
                "message": {"transaction_id": "T-1", "txnstatus_request": {"reference_id": "s1", "txn_type": "search",
                    "attribute_type": "correlation_id", "attribute_value": id}}
            })
        };
        let (_, st) = post(&app, STATUS, &token, &status_req(&cid)).await;
        assert_eq!(
            st["message"]["txnstatus_response"]["txn_status"]["search_response"][0]["status"],
            "pdng",
            "{st}"
        );

        let shutdown = CancellationToken::new();
        let settings = WorkerSettings {
            concurrency: 2,
            poll_interval: Duration::from_millis(20),
            lease: Duration::from_secs(30),
            retry: RetryPolicy {
                max_attempts: 10,
                base: Duration::from_millis(20),
                cap: Duration::from_millis(100),
            },
            retain_succeeded: None,
        };
        let worker = tokio::spawn(run_with(
            app.store.clone(),
            settings,
            Registry::with_builtins(),
            shutdown.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while recv.bodies.lock().unwrap().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "[{db:?}] no callback within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let body = recv.bodies.lock().unwrap()[0].clone();
        assert_eq!(
            *recv.calls.lock().unwrap(),
            2,
            "one failed delivery, one retry"
        );
        assert_eq!(body["header"]["action"], "on-search");
        assert_eq!(body["header"]["receiver_id"], "sp-mis");
        assert_eq!(body["message"]["correlation_id"], cid.as_str());
        let rec = &body["message"]["search_response"][0]["data"]["reg_records"][0];
        assert_eq!(
            rec["demographic_info"]["name"]["given_name"], "Aline",
            "{body}"
        );

        // Delivered: the transaction is now a success.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, st) = post(&app, STATUS, &token, &status_req(&cid)).await;
            let item = &st["message"]["txnstatus_response"]["txn_status"]["search_response"][0];
            if item["status"] == "succ" {
                assert_eq!(item["reference_id"], "r1");
                assert_eq!(item["record_count"], 1);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "[{db:?}] still {st}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        worker.await.unwrap().unwrap();
        server.abort();
        app.stop().await;
    }
}

/// Many copies of one message at once (a client retrying aggressively, or a replay racing its
/// original): exactly one is answered, every other is refused as a replay, and only the answered
/// one discloses anything (one audited read) or leaves a transaction behind.
#[tokio::test]
async fn concurrent_copies_of_one_message_id_are_answered_once() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let s = seed(&app).await;
        let token = client(&app).await;
        let req = request(
            "c1",
            "idtype-value",
            json!({"type": "UIN", "value": s.nid}),
            json!({}),
        );
        let body = envelope("search", vec![req], "");
        let copies = (0..24).map(|_| post(&app, SYNC, &token, &body));
        let answers = futures::future::join_all(copies).await;
        let ok: Vec<&Value> = answers
            .iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(ok.len(), 1, "[{db:?}] {answers:?}");
        assert_eq!(
            ok[0]["message"]["search_response"][0]["status"], "succ",
            "[{db:?}]"
        );
        for (status, b) in answers.iter().filter(|(status, _)| *status != 200) {
            assert_eq!(*status, 422, "[{db:?}] {b}");
            assert_eq!(b["header"]["status"], "rjct", "[{db:?}] {b}");
            assert_eq!(
                b["header"]["status_reason_code"], "rjct.message_id.duplicate",
                "[{db:?}] {b}"
            );
            assert!(b["message"].get("search_response").is_none(), "{b}");
        }
        // Sent again later, after the commit: the unique key refuses it too.
        let (status, b) = post(&app, SYNC, &token, &body).await;
        assert_eq!(status, 422, "[{db:?}] {b}");
        assert_eq!(
            b["header"]["status_reason_code"],
            "rjct.message_id.duplicate"
        );

        let reads = person_reads(&app).await;
        assert_eq!(reads, 1, "[{db:?}]");
        let found = app
            .store
            .dci()
            .transactions(
                "dci.client",
                &inkingi_store::dci::TxnKey::TransactionId("T-1".into()),
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "[{db:?}] {found:?}");
        assert_eq!(found[0].status, "succ");
        assert_eq!(found[0].requests[0].record_count, 1);
        app.stop().await;
    }
}

/// A search matching more people than a search may count and sort is refused, item by item,
/// with the spec's reason code and a message saying why; a narrower one is answered.
#[tokio::test]
async fn searches_matching_more_than_the_candidate_cap_are_refused_with_the_reason() {
    for db in databases().await {
        let mut settings = inkingi_server::ServerSettings::default();
        settings.dci.max_candidates = 2;
        let app = TestApp::start_with(&db, settings).await;
        seed(&app).await;
        let token = client(&app).await;
        // Four people of district 11 are in scope.
        let everyone = json!({"expression1": {"attribute_name": "sex", "operator": "in", "attribute_value": ["female", "male"]}});
        let sorted = json!({"sort": [{"attribute_name": "birth_date", "sort_order": "desc"}]});
        let item = search_one(
            &app,
            &token,
            request("s1", "predicate", everyone.clone(), sorted),
        )
        .await;
        assert_eq!(item["status"], "rjct", "[{db:?}] {item}");
        assert_eq!(item["status_reason_code"], "rjct.sort.invalid", "{item}");
        let why = item["status_reason_message"].as_str().unwrap();
        assert!(why.contains("more than 2 people"), "{why}");
        assert!(item.get("data").is_none(), "{item}");

        let item = search_one(
            &app,
            &token,
            request("s2", "predicate", everyone.clone(), json!({})),
        )
        .await;
        assert_eq!(
            item["status_reason_code"], "rjct.search_criteria.invalid",
            "[{db:?}] {item}"
        );
        let item = search_one(
            &app,
            &token,
            request(
                "s3",
                "predicate",
                everyone,
                json!({"response_entity": "Group"}),
            ),
        )
        .await;
        assert_eq!(item["status"], "rjct", "[{db:?}] {item}");

        // One village: two people, within the cap.
        let village = json!({"expression1": {"attribute_name": "village", "operator": "eq", "attribute_value": "11010103"}});
        let item = search_one(&app, &token, request("s4", "predicate", village, json!({}))).await;
        assert_eq!(item["status"], "succ", "[{db:?}] {item}");
        assert_eq!(item["pagination"]["total_count"], 2);

        // Nothing read for the refused ones: only the two people of s4 are audited.
        let reads = person_reads(&app).await;
        assert_eq!(reads, 2, "[{db:?}]");
        app.stop().await;
    }
}
