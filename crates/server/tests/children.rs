//! The child record over real HTTP on every configured backend: FHIR R4 ingestion (transaction
//! and batch Bundles, per-resource create), linkage to the registry and the review queue, bad
//! input refused with an OperationOutcome and nothing stored, reads as FHIR, services due, the
//! overdue worklist and the child page.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Days, NaiveDate, Utc};
use common::children::{member, register};
use common::{add_user, session, token};
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::registry::{MemberRole, Sex};
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const VILLAGE: &str = "11010102";
const CVX: &str = "http://hl7.org/fhir/sid/cvx";
const LOINC: &str = "http://loinc.org";

struct Family {
    mother: Uuid,
    child: Uuid,
    born: NaiveDate,
}

/// A mother and her daughter Keza, born 120 days ago, in VILLAGE.
async fn family(app: &TestApp) -> Family {
    let today = Utc::now().date_naive();
    let born = today - Days::new(120);
    let mother = member(
        "Aline",
        Sex::Female,
        NaiveDate::from_ymd_opt(1995, 3, 2).unwrap(),
        MemberRole::Head,
        None,
    );
    let child = member(
        "Keza",
        Sex::Female,
        born,
        MemberRole::Child,
        Some(mother.id),
    );
    let f = Family {
        mother: mother.id,
        child: child.id,
        born,
    };
    register(&app.store, VILLAGE, vec![mother, child]).await;
    f
}

struct Fhir<'a> {
    app: &'a TestApp,
    token: String,
}

impl Fhir<'_> {
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .json(body)
            .send()
            .await
            .unwrap();
        self.answer(res).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.token)
            .header("x-purpose-of-use", "healthcare")
            .send()
            .await
            .unwrap();
        self.answer(res).await
    }

    async fn answer(&self, res: reqwest::Response) -> (u16, Value) {
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = res.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if body.get("resourceType").is_some() {
            assert!(ct.starts_with("application/fhir+json"), "{ct}: {text}");
        }
        (status, body)
    }
}

async fn health_worker<'a>(app: &'a TestApp, name: &str, scope: &str) -> Fhir<'a> {
    add_user(app, name, Role::HealthWorker, scope).await;
    Fhir {
        app,
        token: token(app, name, &["read", "write", "purpose:healthcare"]).await,
    }
}

fn entry(full_url: &str, resource: Value) -> Value {
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}})
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn immunization(
    id: &str,
    patient: &str,
    system: &str,
    code: &str,
    dose: u32,
    date: NaiveDate,
) -> Value {
    json!({"resourceType": "Immunization", "id": id, "meta": {"source": "emr-kigali"}, "status": "completed",
        "patient": {"reference": patient},
        "vaccineCode": {"coding": [{"system": system, "code": code}]},
        "occurrenceDateTime": date.to_string(),
        "protocolApplied": [{"doseNumberPositiveInt": dose}]})
}

fn observation(
    id: &str,
    patient: &str,
    loinc: &str,
    value: f64,
    unit: &str,
    date: NaiveDate,
) -> Value {
    json!({"resourceType": "Observation", "id": id, "meta": {"source": "emr-kigali"}, "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": patient}, "effectiveDateTime": date.to_string(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
}

fn patient_by_registry_id(id: Uuid) -> Value {
    json!({"resourceType": "Patient", "id": "P-100", "meta": {"source": "emr-kigali"},
        "identifier": [{"system": "urn:inkingi:person-id", "value": id}],
        "name": [{"family": "Uwase", "given": ["Keza"]}], "gender": "female"})
}

fn statuses(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["response"]["status"].as_str().unwrap().to_string(),
                e["response"]["location"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_transaction_links_stores_and_reads_back_idempotently() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let f = family(&app).await;
        let hw = health_worker(&app, "nurse", "11").await;
        let p = "urn:uuid:9f1c2a7e-0000-4000-8000-000000000001";
        let b = bundle(
            "transaction",
            vec![
                entry("urn:uuid:i-1", immunization("I-1", p, CVX, "19", 1, f.born)),
                entry(p, patient_by_registry_id(f.child)),
                // A code not mapped yet: kept, flagged for mapping.
                entry(
                    "urn:uuid:i-2",
                    immunization("I-2", p, CVX, "998", 1, f.born + Days::new(1)),
                ),
                entry(
                    "urn:uuid:o-1",
                    observation("O-1", p, "29463-7", 5.6, "kg", f.born + Days::new(90)),
                ),
                entry(
                    "urn:uuid:o-2",
                    observation("O-2", p, "8306-3", 600.0, "mm", f.born + Days::new(90)),
                ),
                entry(
                    "urn:uuid:m-1",
                    json!({"resourceType": "RelatedPerson", "id": "M-1", "meta": {"source": "emr-kigali"},
                "patient": {"reference": p},
                "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}],
                "name": [{"family": "Uwase", "given": ["Aline"]}], "gender": "female"}),
                ),
            ],
        );
        let (status, res) = hw.post("/fhir/R4", &b).await;
        assert_eq!(status, 200, "[{:?}] {res}", db);
        assert_eq!(res["type"], "transaction-response");
        let first = statuses(&res["entry"]);
        assert!(first.iter().all(|(s, _)| s == "201 Created"), "{first:?}");
        assert!(first[1].1.starts_with("Patient/"));

        // Read back as FHIR, by the registry person id.
        let (status, imms) = hw
            .get(&format!(
                "/fhir/R4/Immunization?patient=Patient/{}",
                f.child
            ))
            .await;
        assert_eq!((status, imms["total"].as_u64()), (200, Some(2)), "{imms}");
        let codes: Vec<&str> = imms["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["resource"]["vaccineCode"]["coding"][0]["code"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(codes, ["19", "998"]);
        assert_eq!(imms["entry"][0]["resource"]["meta"]["source"], "emr-kigali");
        let (_, obs) = hw
            .get(&format!("/fhir/R4/Observation?patient={}", f.child))
            .await;
        assert_eq!(obs["total"], 2);
        assert_eq!(
            obs["entry"][1]["resource"]["valueQuantity"]["value"], 60.0,
            "mm converted to cm"
        );
        let (status, pat) = hw.get(&format!("/fhir/R4/Patient/{}", f.child)).await;
        assert_eq!(
            (status, pat["name"][0]["given"][0].as_str()),
            (200, Some("Keza"))
        );

        // The mother was linked through the child's registry record: her facts land on her.
        let (_, mother) = hw.get(&format!("/fhir/R4/Patient/{}", f.mother)).await;
        assert_eq!(mother["gender"], "female");

        // Sent again: nothing new, each entry answered 200 with the same location.
        let (_, again) = hw.post("/fhir/R4", &b).await;
        let second = statuses(&again["entry"]);
        assert!(second.iter().all(|(s, _)| s == "200 OK"), "{second:?}");
        assert_eq!(
            first.iter().map(|x| &x.1).collect::<Vec<_>>(),
            second.iter().map(|x| &x.1).collect::<Vec<_>>()
        );
        let (_, imms) = hw
            .get(&format!("/fhir/R4/Immunization?patient={}", f.child))
            .await;
        assert_eq!(imms["total"], 2);

        // Services: BCG done at birth; OPV 1 (6 weeks, due by 8) is overdue at 120 days.
        let (status, svc) = hw
            .get(&format!("/api/v1/children/{}/services", f.child))
            .await;
        assert_eq!(status, 200, "{svc}");
        let of = |code: &str| {
            svc["services"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["service"] == code && s["occurrence"] == 1)
                .unwrap()
                .clone()
        };
        assert_eq!(of("bcg")["status"], "completed");
        assert_eq!(of("bcg")["completed_on"], f.born.to_string());
        assert_eq!(of("opv-1")["status"], "overdue");
        assert_eq!(of("opv-1")["provisional"], true);
        // Weighed at 90 days: that month's growth monitoring is done.
        assert!(svc["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["service"] == "growth-monthly" && s["status"] == "completed"));

        // The worklist of the village lists her with OPV 1 once her services are re-evaluated
        // (the `children.services` jobs each new fact queued).
        common::programmes::drain_jobs(&app).await;
        let (status, wl) = hw
            .get(&format!("/api/v1/worklists/overdue?area={VILLAGE}"))
            .await;
        assert_eq!(status, 200, "{wl}");
        let kid = &wl["villages"][0]["children"][0];
        assert_eq!(kid["person_id"], f.child.to_string());
        assert!(kid["overdue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["service"] == "opv-1"));
        assert!(!kid["overdue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["service"] == "bcg"));

        // Elsewhere: another district's health worker sees none of it.
        let far = health_worker(&app, "far.nurse", "12").await;
        let (status, oo) = far
            .get(&format!("/fhir/R4/Immunization?patient={}", f.child))
            .await;
        assert_eq!(
            (status, oo["resourceType"].as_str()),
            (404, Some("OperationOutcome"))
        );
        let (status, _) = far
            .get(&format!("/api/v1/worklists/overdue?area={VILLAGE}"))
            .await;
        assert_eq!(status, 403);

        // Every write and read was audited.
        let entries = app
            .store
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
            "fhir.immunization.create",
            "fhir.observation.create",
            "fhir.patient.create",
            "fhir.relatedperson.create",
            "person.read",
            "worklist.read",
        ] {
            assert!(actions.contains(&a), "{a} not in {actions:?}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_element_and_nothing_is_stored() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let f = family(&app).await;
        let hw = health_worker(&app, "nurse", "11").await;
        let child = format!("Patient/{}", f.child);
        let mut no_subject = immunization("I-9", &child, CVX, "19", 1, f.born);
        no_subject.as_object_mut().unwrap().remove("patient");
        let b = bundle(
            "transaction",
            vec![
                entry(
                    "urn:uuid:a",
                    immunization("I-8", &child, CVX, "10", 1, f.born + Days::new(98)),
                ),
                entry("urn:uuid:b", no_subject),
                entry(
                    "urn:uuid:c",
                    observation("O-9", &child, "8302-2", -70.0, "cm", f.born + Days::new(30)),
                ),
                entry(
                    "urn:uuid:d",
                    immunization("I-7", &child, CVX, "BCG", 1, f.born),
                ),
            ],
        );
        let (status, oo) = hw.post("/fhir/R4", &b).await;
        assert_eq!(status, 400, "{oo}");
        let exprs: Vec<&str> = oo["issue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["expression"][0].as_str().unwrap())
            .collect();
        assert_eq!(
            exprs,
            [
                "Bundle.entry[1].resource.patient",
                "Bundle.entry[2].resource.valueQuantity.value",
                "Bundle.entry[3].resource.vaccineCode.coding[0].code",
            ]
        );
        // A 40 kg infant: refused by the growth standards, the whole transaction with it.
        let b = bundle(
            "transaction",
            vec![
                entry(
                    "urn:uuid:a",
                    immunization("I-8", &child, CVX, "10", 1, f.born + Days::new(98)),
                ),
                entry(
                    "urn:uuid:e",
                    observation(
                        "O-10",
                        &child,
                        "29463-7",
                        40.0,
                        "kg",
                        f.born + Days::new(30),
                    ),
                ),
            ],
        );
        let (status, oo) = hw.post("/fhir/R4", &b).await;
        assert_eq!(status, 422, "{oo}");
        assert_eq!(
            oo["issue"][0]["expression"][0],
            "Bundle.entry[1].resource.valueQuantity.value"
        );
        assert!(
            oo["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("not plausible"),
            "{oo}"
        );
        let (_, imms) = hw
            .get(&format!("/fhir/R4/Immunization?patient={}", f.child))
            .await;
        assert_eq!(imms["total"], 0, "a refused transaction stores nothing");
        // An unknown subject.
        let (status, oo) = hw
            .post(
                "/fhir/R4/Immunization",
                &immunization("I-6", "Patient/nobody", CVX, "19", 1, f.born),
            )
            .await;
        assert_eq!(
            (status, oo["issue"][0]["expression"][0].as_str()),
            (422, Some("Immunization.patient.reference"))
        );
        // A batch stores the good entries and reports the bad one.
        let b = bundle(
            "batch",
            vec![
                entry(
                    "urn:uuid:a",
                    immunization("I-8", &child, CVX, "10", 1, f.born + Days::new(98)),
                ),
                entry(
                    "urn:uuid:e",
                    observation(
                        "O-10",
                        &child,
                        "29463-7",
                        40.0,
                        "kg",
                        f.born + Days::new(30),
                    ),
                ),
            ],
        );
        let (status, res) = hw.post("/fhir/R4", &b).await;
        assert_eq!(status, 200, "{res}");
        assert_eq!(res["entry"][0]["response"]["status"], "201 Created");
        assert_eq!(
            res["entry"][1]["response"]["status"],
            "422 Unprocessable Entity"
        );
        assert_eq!(
            res["entry"][1]["response"]["outcome"]["resourceType"],
            "OperationOutcome"
        );
        let (_, imms) = hw
            .get(&format!("/fhir/R4/Immunization?patient={}", f.child))
            .await;
        assert_eq!(imms["total"], 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn patients_without_identifiers_are_linked_or_queued_for_review() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let f = family(&app).await;
        let hw = health_worker(&app, "nurse", "1101").await;
        // Same names, same full birth date, same sex: linked by the linkage engine.
        let sure = json!({"resourceType": "Patient", "id": "P-7", "meta": {"source": "emr-kigali"}, "name": [{"family": "Uwase", "given": ["Keza"]}],
            "gender": "female", "birthDate": f.born.to_string()});
        let (status, _) = hw.post("/fhir/R4/Patient", &sure).await;
        assert_eq!(status, 201);
        let imm = immunization("I-1", "Patient/P-7", CVX, "19", 1, f.born);
        let (status, oo) = hw.post("/fhir/R4/Immunization", &imm).await;
        assert_eq!(status, 201, "{oo}");
        let (_, imms) = hw
            .get(&format!("/fhir/R4/Immunization?patient={}", f.child))
            .await;
        assert_eq!(
            imms["total"], 1,
            "linked: the fact is on the registry child"
        );

        // No birth date: not guessed. Stored unlinked, with a review row explaining why.
        let unsure = json!({"resourceType": "Patient", "id": "P-8", "meta": {"source": "emr-kigali"}, "name": [{"family": "Uwase", "given": ["Keza"]}],
            "gender": "female"});
        let res = hw
            .app
            .client
            .post(hw.app.url("/fhir/R4/Patient"))
            .bearer_auth(&hw.token)
            .json(&unsure)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let location = res.headers()["location"].to_str().unwrap().to_string();
        let source_id = location.trim_start_matches("Patient/");
        let (status, pat) = hw.get(&format!("/fhir/R4/Patient/{source_id}")).await;
        assert_eq!((status, pat["id"].as_str()), (200, Some(source_id)));
        let reviews = app
            .store
            .children()
            .open_reviews(&AreaScope::national(), "fhir_patient", 10)
            .await
            .unwrap();
        assert_eq!(reviews.len(), 1, "{reviews:?}");
        let r = &reviews[0];
        assert_eq!(
            (r.source_id.as_str(), r.candidate_person_id),
            ("P-8", Some(f.child))
        );
        assert!(r.explanation["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["field"] == "birth_date"));
        // Facts about the unlinked patient stay on it, not on the registry child.
        let (status, _) = hw
            .post(
                "/fhir/R4/Immunization",
                &immunization("I-2", "Patient/P-8", CVX, "10", 1, f.born + Days::new(100)),
            )
            .await;
        assert_eq!(status, 201);
        let (_, imms) = hw
            .get(&format!("/fhir/R4/Immunization?patient={}", f.child))
            .await;
        assert_eq!(imms["total"], 1);
        let (_, theirs) = hw
            .get(&format!("/fhir/R4/Immunization?patient={source_id}"))
            .await;
        assert_eq!(theirs["total"], 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn metadata_and_the_child_page() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let res = app.get("/fhir/R4/metadata").await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json"));
        let cs: Value = res.json().await.unwrap();
        assert_eq!(
            (cs["resourceType"].as_str(), cs["fhirVersion"].as_str()),
            (Some("CapabilityStatement"), Some("4.0.1"))
        );
        let types: Vec<&str> = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "Patient",
                "RelatedPerson",
                "Immunization",
                "Observation",
                "Encounter"
            ]
        );

        let f = family(&app).await;
        let hw = health_worker(&app, "nurse", "11").await;
        let (status, _) = hw
            .post(
                "/fhir/R4/Immunization",
                &immunization("I-1", &format!("Patient/{}", f.child), CVX, "19", 1, f.born),
            )
            .await;
        assert_eq!(status, 201);
        let cookie = session(&app, "nurse").await;
        let res = app
            .client
            .get(app.url(&format!("/children/{}?lang=en", f.child)))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(html.contains("Keza Uwase"), "{html}");
        assert!(html.contains("data-service=\"opv-1\""));
        assert!(
            html.contains("BCG dose 1") && html.contains("emr-kigali"),
            "{html}"
        );
        assert!(html.contains("not yet signed off"));
        app.stop().await;
    }
}
