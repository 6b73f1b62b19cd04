//! The child record's other feeds over real HTTP on every configured backend: pre-primary
//! enrolments from school data (CSV upload, text/csv, JSON) and child-protection cases, linked
//! to the registry or queued for review, idempotent, all-or-nothing with row/field/reason;
//! child-protection reads only for that purpose; HIV exposure sealed per field (no plaintext
//! in the database) and opened only for health workers; growth charts on the child page.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{Days, NaiveDate, Utc};
use common::children::{member, register};
use common::{add_user, session, token};
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::registry::{MemberRole, Sex};
use inkingi_server::children::sealed::FieldKeys;
use inkingi_server::children::ChildrenSettings;
use inkingi_server::ServerSettings;
use inkingi_store::BackendKind;
use inkingi_testkit::{databases, TestApp, TestDb};
use serde_json::{json, Value};
use sqlx::Connection;

const VILLAGE: &str = "11010102";
const KEYS: &str = "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const HEADER: &str = "school_code,school_name,village,given_name,family_name,sex,birth_date,\
                      national_id,birth_registration,mother_name,enrolled_on,school_year";

struct Caller<'a> {
    app: &'a TestApp,
    token: String,
}

impl Caller<'_> {
    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.bearer_auth(&self.token).send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn csv(&self, path: &str, body: String) -> (u16, Value) {
        let req = self.app.client.post(self.app.url(path));
        self.send(req.header("content-type", "text/csv").body(body))
            .await
    }

    async fn get(&self, path: &str, purpose: &str) -> (u16, Value) {
        let req = self.app.client.get(self.app.url(path));
        self.send(req.header("x-purpose-of-use", purpose)).await
    }
}

async fn caller<'a>(app: &'a TestApp, name: &str, role: Role, purpose: &str) -> Caller<'a> {
    // Community health workers serve a cell at most; the others, the district.
    let scope = if role == Role::CommunityHealthWorker {
        &VILLAGE[..6]
    } else {
        "11"
    };
    add_user(app, name, role, scope).await;
    let purpose = format!("purpose:{purpose}");
    Caller {
        app,
        token: token(app, name, &["read", "write", &purpose]).await,
    }
}

struct Pupil {
    child: uuid::Uuid,
    born: NaiveDate,
}

/// Keza Uwase, four, old enough for pre-primary school, with her mother in VILLAGE.
async fn pupil(app: &TestApp) -> Pupil {
    let born = Utc::now().date_naive() - Days::new(4 * 365 + 10);
    let mother_born = NaiveDate::from_ymd_opt(1995, 3, 2).unwrap();
    let mother = member("Aline", Sex::Female, mother_born, MemberRole::Head, None);
    let child = member(
        "Keza",
        Sex::Female,
        born,
        MemberRole::Child,
        Some(mother.id),
    );
    let pupil = Pupil {
        child: child.id,
        born,
    };
    register(&app.store, VILLAGE, vec![mother, child]).await;
    pupil
}

fn school_row(given: &str, born: NaiveDate, year: &str) -> String {
    let enrolled = Utc::now().date_naive() - Days::new(30);
    format!("ES-042,Ecole Maternelle Kacyiru,{VILLAGE},{given},Uwase,F,{born},,,Aline Uwase,{enrolled},{year}")
}

/// The child page as `user` sees it (signed in).
async fn page_html(app: &TestApp, user: &str, child: uuid::Uuid) -> String {
    let cookie = session(app, user).await;
    let res = app
        .client
        .get(app.url(&format!("/children/{child}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{user}");
    res.text().await.unwrap()
}

/// The whole audit log, after the queued reads are written.
async fn audit_log(app: &TestApp) -> Vec<inkingi_domain::audit::AuditEntry> {
    app.audit.flush().await.unwrap();
    let q = inkingi_store::audit::AuditQuery {
        limit: 1000,
        ..Default::default()
    };
    app.store
        .audit()
        .query(&AreaScope::national(), &q)
        .await
        .unwrap()
}

async fn open_reviews(app: &TestApp, kind: &str) -> usize {
    app.store
        .children()
        .open_reviews(&AreaScope::national(), kind, 100)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn school_feed_links_each_child_once_and_completes_enrolment() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let f = pupil(&app).await;
        let hw = caller(&app, "nurse", Role::HealthWorker, "healthcare").await;
        // Keza is in the registry (names and full birth date agree: linked); Mutoni is not.
        let stranger = Utc::now().date_naive() - Days::new(3 * 365 + 40);
        let file = format!(
            "{HEADER}\n{}\n{}\n",
            school_row("Keza", f.born, "2026"),
            school_row("Mutoni", stranger, "2026")
        );
        let form = reqwest::multipart::Form::new().text("source", "sdms").part(
            "file",
            reqwest::multipart::Part::bytes(file.clone().into_bytes()),
        );
        let url = app.url("/api/v1/children/feeds/school");
        let (status, s) = hw.send(app.client.post(&url).multipart(form)).await;
        assert_eq!(status, 200, "[{db:?}] {s}");
        assert_eq!(
            (&s["records"], &s["created"], &s["linked"], &s["in_review"]),
            (&json!(2), &json!(2), &json!(1), &json!(1)),
            "{s}"
        );
        assert_eq!(open_reviews(&app, "school_patient").await, 1);

        // The same file again (as text/csv, same source): nothing new, no second review.
        let (status, s) = hw
            .csv("/api/v1/children/feeds/school?source=sdms", file)
            .await;
        assert_eq!(
            (status, &s["created"], &s["existing"]),
            (200, &json!(0), &json!(2)),
            "{s}"
        );
        assert_eq!(open_reviews(&app, "school_patient").await, 1);

        // Next school year by JSON: the same child, one more enrolment, still one record.
        let row = |given: &str, born: NaiveDate| {
            let v: Vec<&str> = HEADER.split(',').collect();
            let line = school_row(given, born, "2027");
            let cells: Vec<String> = line.split(',').map(str::to_string).collect();
            Value::Object(
                v.iter()
                    .zip(cells)
                    .map(|(k, c)| (k.to_string(), json!(c)))
                    .collect(),
            )
        };
        let body = json!({"source": "sdms", "records": [row("Keza", f.born)]});
        let (status, s) = hw.send(app.client.post(&url).json(&body)).await;
        assert_eq!(
            (status, &s["created"], &s["linked"]),
            (200, &json!(1), &json!(1)),
            "{s}"
        );
        let facts = app
            .store
            .children()
            .facts_of_people(&AreaScope::national(), &[f.child])
            .await
            .unwrap();
        let enrolments = &facts[0].1.enrolments;
        assert_eq!(enrolments.len(), 2);
        assert!(enrolments
            .iter()
            .all(|e| e.subject.source_person_id == enrolments[0].subject.source_person_id));
        assert_eq!(enrolments[0].provenance.source_system, "sdms");

        // The schedule's pre-primary enrolment is completed by it.
        let (status, svc) = hw
            .get(
                &format!("/api/v1/children/{}/services", f.child),
                "healthcare",
            )
            .await;
        assert_eq!(status, 200, "{svc}");
        let pre = svc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["service"] == "preprimary-enrolment")
            .unwrap();
        assert_eq!(pre["status"], "completed", "{pre}");

        // On the child page's timeline, with the school and the source.
        let html = page_html(&app, "nurse", f.child).await;
        assert!(
            html.contains("pre-primary enrolment") && html.contains("Ecole Maternelle Kacyiru")
        );
        assert!(
            html.contains("sdms · enrolment/ES-042/2027"),
            "provenance on the timeline"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_bad_row_refuses_the_whole_file_naming_row_and_field() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let f = pupil(&app).await;
        let hw = caller(&app, "nurse", Role::HealthWorker, "healthcare").await;
        let bad = format!(
            "ES-042,Ecole,{VILLAGE},Mutoni,Uwase,X,2023-02-30,,,,{},2026",
            Utc::now().date_naive()
        );
        let file = format!("{HEADER}\n{}\n{bad}\n", school_row("Keza", f.born, "2026"));
        let (status, p) = hw.csv("/api/v1/children/feeds/school", file).await;
        assert_eq!(status, 422, "[{db:?}] {p}");
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["row[3].sex", "row[3].birth_date"], "{p}");
        // Nothing written: not even the good row.
        let facts = app
            .store
            .children()
            .facts_of_people(&AreaScope::national(), &[f.child])
            .await
            .unwrap();
        assert!(facts[0].1.enrolments.is_empty());
        assert_eq!(open_reviews(&app, "school_patient").await, 0);

        // A wrong header names the missing and unknown columns.
        let file = "school_code,shoe_size\nES-042,40\n".to_string();
        let (status, p) = hw.csv("/api/v1/children/feeds/school", file).await;
        assert_eq!(status, 422);
        let text = p["errors"].to_string();
        assert!(
            text.contains("header.shoe_size") && text.contains("header.school_year"),
            "{p}"
        );
        // A village outside the sender's scope.
        let file = format!(
            "{HEADER}\n{}\n",
            school_row("Keza", f.born, "2026").replace(VILLAGE, "21010101")
        );
        let (status, p) = hw.csv("/api/v1/children/feeds/school", file).await;
        assert_eq!(status, 422);
        assert_eq!(p["errors"][0]["field"], "row[2].village", "{p}");
        app.stop().await;
    }
}

#[tokio::test]
async fn child_protection_is_read_only_with_that_purpose() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let f = pupil(&app).await;
        let hw = caller(&app, "nurse", Role::HealthWorker, "child-protection").await;
        let chw = caller(&app, "chw", Role::CommunityHealthWorker, "healthcare").await;
        let opened = Utc::now().date_naive() - Days::new(10);
        let file = format!(
            "case_id,kind,opened_on,closed_on,child_id,village,given_name,family_name,sex,birth_date\n\
             CL-7,child_labour,{opened},,C-1,{VILLAGE},Keza,Uwase,F,{}\n",
            f.born
        );
        // A role that may not declare child protection may not send it either.
        let (status, _) = chw
            .csv("/api/v1/children/feeds/protection", file.clone())
            .await;
        assert_eq!(status, 403, "[{db:?}]");
        let (status, s) = hw.csv("/api/v1/children/feeds/protection", file).await;
        assert_eq!((status, &s["linked"]), (200, &json!(1)), "{s}");

        let path = format!("/api/v1/children/{}/protection", f.child);
        let (status, cases) = hw.get(&path, "child-protection").await;
        assert_eq!(status, 200, "{cases}");
        assert_eq!(cases[0]["details"]["case_kind"], "child_labour");
        assert_eq!(cases[0]["source_id"], "case/CL-7");
        // Another purpose, or a role without it: refused.
        let (status, _) = hw.get(&path, "healthcare").await;
        assert_eq!(status, 403);
        let (status, _) = chw.get(&path, "healthcare").await;
        assert_eq!(status, 403);
        // Not in the general record either.
        let facts = app
            .store
            .children()
            .facts_of_people(&AreaScope::national(), &[f.child])
            .await
            .unwrap();
        assert!(facts[0].1.enrolments.is_empty());

        // The page shows the section to the nurse, not to the community health worker.
        assert!(page_html(&app, "nurse", f.child)
            .await
            .contains("case CL-7"));
        let html = page_html(&app, "chw", f.child).await;
        assert!(!html.contains("CL-7") && !html.contains("id=\"protection\""));

        // Reads were audited with the child-protection purpose.
        let entries = audit_log(&app).await;
        assert!(entries.iter().any(|e| e.record.action == "person.read"
            && e.record.purpose.as_deref() == Some("child-protection")
            && e.record.fields.iter().any(|x| x == "protection_cases")));
        assert!(entries
            .iter()
            .any(|e| e.record.action == "protection.case.create"));
        app.stop().await;
    }
}

fn with_keys() -> ServerSettings {
    ServerSettings {
        children: ChildrenSettings {
            field_keys: Some(Arc::new(FieldKeys::parse(KEYS).unwrap())),
        },
        ..Default::default()
    }
}

fn hiv_observation(child: uuid::Uuid, on: NaiveDate) -> Value {
    json!({"resourceType": "Observation", "id": "HIV-1", "meta": {"source": "pmtct"},
        "status": "final",
        "code": {"coding": [{"system": "urn:inkingi:observation", "code": "hiv-exposure"}]},
        "subject": {"reference": format!("Patient/{child}")}, "effectiveDateTime": on.to_string(),
        "valueCodeableConcept": {"coding": [{"system": "urn:inkingi:hiv-exposure", "code": "exposed"}]}})
}

/// The sealed column and the clear details of every HIV exposure row, read with plain SQL.
async fn stored_hiv(db: &TestDb) -> Vec<(Vec<u8>, String)> {
    let q = "SELECT sealed, CAST(details AS TEXT) AS details FROM child_feed_facts \
             WHERE kind = 'hiv_exposure'";
    match db.kind {
        BackendKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(q).fetch_all(&mut c).await.unwrap()
        }
        BackendKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(q).fetch_all(&mut c).await.unwrap()
        }
    }
}

#[tokio::test]
async fn hiv_exposure_is_sealed_and_opened_only_for_health_workers() {
    for db in databases().await {
        // Without a key it is refused, never stored in clear.
        let app = TestApp::start(&db).await;
        let f = pupil(&app).await;
        let hw = caller(&app, "nurse", Role::HealthWorker, "healthcare").await;
        let obs = hiv_observation(f.child, f.born + Days::new(40));
        let url = app.url("/fhir/R4/Observation");
        let post = |c: &Caller<'_>| {
            app.client
                .post(&url)
                .header("content-type", "application/fhir+json")
                .bearer_auth(&c.token)
                .json(&obs)
        };
        let res = post(&hw).send().await.unwrap();
        assert_eq!(res.status(), 422, "[{db:?}]");
        assert!(res.text().await.unwrap().contains("field_key_file"));
        assert!(stored_hiv(&db).await.is_empty());
        let token = hw.token.clone();
        app.stop().await;

        let app = TestApp::start_with(&db, with_keys()).await;
        let url = app.url("/fhir/R4/Observation");
        let res = app
            .client
            .post(&url)
            .header("content-type", "application/fhir+json")
            .bearer_auth(&token)
            .json(&obs)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let rows = stored_hiv(&db).await;
        assert_eq!(rows.len(), 1);
        let (sealed, details) = &rows[0];
        assert!(!sealed.windows(7).any(|w| w == b"exposed"), "no plaintext");
        assert!(!details.contains("exposed"), "{details}");

        let hw = Caller { app: &app, token };
        let chw = caller(&app, "chw", Role::CommunityHealthWorker, "healthcare").await;
        let path = format!("/api/v1/children/{}/hiv-exposure", f.child);
        let (status, v) = hw.get(&path, "healthcare").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            (&v["restricted"], &v["records"][0]["value"]),
            (&json!(false), &json!("exposed"))
        );
        assert_eq!(v["records"][0]["source_system"], "pmtct");
        let (status, v) = chw.get(&path, "healthcare").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!((&v["restricted"], &v["count"]), (&json!(true), &json!(1)));
        assert!(v["records"].as_array().unwrap().is_empty());

        // On the page: the value for the nurse, only "restricted" for the community worker.
        for (user, shown) in [("nurse", true), ("chw", false)] {
            let html = page_html(&app, user, f.child).await;
            assert_eq!(
                html.contains("class=\"hiv-value\">exposed<"),
                shown,
                "{user}"
            );
            assert_eq!(html.contains("data-restricted=\"true\""), !shown, "{user}");
            // Growth charts are on the page, accessible.
            assert!(
                html.contains("id=\"chart-wfa\"")
                    && html.contains("aria-labelledby=\"chart-wfa-title")
            );
        }
        // Every read is audited, opened or not.
        let entries = audit_log(&app).await;
        let reads = |field: &str| {
            entries
                .iter()
                .filter(|e| e.record.fields.iter().any(|x| x == field))
                .count()
        };
        assert_eq!(reads("hiv_exposure"), 2, "nurse: API and page");
        assert_eq!(reads("hiv_exposure:restricted"), 2, "chw: API and page");
        app.stop().await;
    }
}
