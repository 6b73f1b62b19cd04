//! The children store on every configured backend: facts with provenance, idempotent by
//! (source system, source id), unknown vaccine codes kept, scope on reads, the review queue.

#![allow(clippy::unwrap_used)]

use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, PersonInput, RegistryNumber, Sex,
};
use inkingi_store::children::{
    Encounter, Immunization, LinkageReview, Measurement, MeasurementKind, Pregnancy, Provenance,
    SourcePerson, Subject, Written,
};
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_store::Store;
use inkingi_testkit::databases;
use serde_json::json;
use uuid::Uuid;

const VILLAGE: &str = "11010102";

fn member(given: &str, sex: Sex, born: &str, role: MemberRole, mother: Option<Uuid>) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: PersonInput {
            given_name: Name::parse(given).unwrap(),
            family_name: Name::parse("Uwase").unwrap(),
            sex,
            birth_date: Some(BirthDate::parse(born).unwrap()),
            national_id: None,
            birth_registration: None,
            refugee_id: None,
            passport: None,
            phones: vec![],
            answers: Default::default(),
        },
        role,
        since: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        mother_id: mother,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

/// A mother and her child in VILLAGE; returns (mother, child).
async fn family(store: &Store) -> (Uuid, Uuid) {
    let mother = member("Aline", Sex::Female, "1995-03-02", MemberRole::Head, None);
    let child = member(
        "Keza",
        Sex::Female,
        "2025-06-01",
        MemberRole::Child,
        Some(mother.id),
    );
    let ids = (mother.id, child.id);
    let new = NewHousehold {
        id: Uuid::now_v7(),
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input: HouseholdInput {
            village: AreaCode::parse(VILLAGE).unwrap(),
            address: None,
            gps: None,
            answers: json!({"tenure": "owner", "wall": "mud_bricks", "roof": "iron_sheets",
                "floor": "earth", "rooms": 2, "water_source": "public_tap",
                "toilet": "pit_latrine_slab", "lighting": "solar", "cooking_fuel": "firewood",
                "owns_land": false, "owns_livestock": false, "income_sources": ["farming"],
                "meals_per_day": 2})
            .as_object()
            .unwrap()
            .clone(),
        },
        form_id: "rw-socioeconomic".into(),
        form_version: 1,
        source_key: None,
        members: vec![mother, child],
    };
    let meta = EventMeta {
        actor: "seed".into(),
        channel: Channel::System,
        reason: None,
        change_request_id: None,
        at: Utc::now(),
    };
    let mut uow = store.begin().await.unwrap();
    store
        .registry()
        .register_household(&mut uow, &new, &meta)
        .await
        .unwrap();
    uow.commit().await.unwrap();
    ids
}

fn prov(id: &str) -> Provenance {
    Provenance {
        source_system: "emr-kigali".into(),
        source_id: id.into(),
        received_at: Utc::now(),
        received_by: "emr".into(),
    }
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[tokio::test]
async fn facts_are_idempotent_scoped_and_keep_unknown_codes() {
    for db in databases().await {
        let store = db.store().await;
        let (mother, child) = family(&store).await;
        let of = |p: Uuid| Subject {
            person_id: Some(p),
            source_person_id: None,
        };
        let bcg = Immunization {
            id: Uuid::now_v7(),
            subject: of(child),
            vaccine_system: "http://hl7.org/fhir/sid/cvx".into(),
            vaccine_code: "19".into(),
            vaccine: Some("BCG".into()),
            needs_mapping: false,
            dose_number: Some(1),
            occurred_on: day("2025-06-01"),
            provenance: prov("imm-1"),
        };
        let unknown = Immunization {
            id: Uuid::now_v7(),
            vaccine_code: "ZZ-42".into(),
            vaccine: None,
            needs_mapping: true,
            dose_number: None,
            provenance: prov("imm-2"),
            ..bcg.clone()
        };
        let weight = Measurement {
            id: Uuid::now_v7(),
            subject: of(child),
            kind: MeasurementKind::Weight,
            loinc: "29463-7".into(),
            value: 7.4,
            unit: "kg".into(),
            measured_on: day("2025-12-01"),
            zscores: json!({"weight-for-age": -0.42}),
            provenance: prov("obs-1"),
        };
        let preg = Pregnancy {
            id: Uuid::now_v7(),
            subject: of(mother),
            lmp: Some(day("2024-08-25")),
            edd: Some(day("2025-06-01")),
            outcome: Some("live_birth".into()),
            outcome_on: Some(day("2025-06-01")),
            provenance: prov("preg-1"),
        };
        let anc = Encounter {
            id: Uuid::now_v7(),
            subject: of(mother),
            kind: "anc".into(),
            pregnancy_id: Some(preg.id),
            occurred_on: day("2024-10-20"),
            provenance: prov("enc-1"),
        };
        let c = store.children();
        let mut uow = store.begin().await.unwrap();
        assert_eq!(
            c.put_immunization(&mut uow, &bcg).await.unwrap(),
            Written::Created(bcg.id)
        );
        c.put_immunization(&mut uow, &unknown).await.unwrap();
        c.put_measurement(&mut uow, &weight).await.unwrap();
        c.put_pregnancy(&mut uow, &preg).await.unwrap();
        c.put_encounter(&mut uow, &anc).await.unwrap();
        uow.commit().await.unwrap();

        // The same source id again, with a new row id: nothing new, the stored id returned.
        let mut uow = store.begin().await.unwrap();
        let again = Immunization {
            id: Uuid::now_v7(),
            ..bcg.clone()
        };
        assert_eq!(
            c.put_immunization(&mut uow, &again).await.unwrap(),
            Written::Existing(bcg.id)
        );
        let w2 = Measurement {
            id: Uuid::now_v7(),
            ..weight.clone()
        };
        assert_eq!(
            c.put_measurement(&mut uow, &w2).await.unwrap(),
            Written::Existing(weight.id)
        );
        uow.commit().await.unwrap();

        let national = AreaScope::national();
        let got = c
            .facts_of_people(&national, &[child, mother])
            .await
            .unwrap();
        let (cid, cf) = &got[0];
        assert_eq!(*cid, child);
        assert_eq!(cf.immunizations.len(), 2, "[{}]", db.kind.as_str());
        let kept = cf.immunizations.iter().find(|i| i.needs_mapping).unwrap();
        assert_eq!(
            (kept.vaccine_code.as_str(), kept.vaccine.as_deref()),
            ("ZZ-42", None)
        );
        let m = &cf.measurements[0];
        assert_eq!(
            (
                m.id,
                m.kind,
                m.value,
                m.measured_on,
                m.provenance.source_id.as_str()
            ),
            (
                weight.id,
                MeasurementKind::Weight,
                7.4,
                day("2025-12-01"),
                "obs-1"
            )
        );
        assert_eq!(cf.measurements[0].zscores["weight-for-age"], -0.42);
        let (_, mf) = &got[1];
        assert_eq!((mf.pregnancies.len(), mf.encounters.len()), (1, 1));
        assert_eq!(mf.encounters[0].pregnancy_id, Some(preg.id));

        // Scoped elsewhere (Gasabo, 12): nothing.
        let other = AreaScope::parse("12").unwrap();
        assert!(c
            .facts_of_people(&other, &[child])
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn unlinked_source_people_and_reviews_are_scoped_by_area() {
    for db in databases().await {
        let store = db.store().await;
        let (_, child) = family(&store).await;
        let c = store.children();
        let sp = SourcePerson {
            id: Uuid::now_v7(),
            kind: "patient".into(),
            person_id: None,
            link_method: None,
            area_code: Some("1101".into()),
            given_name: Some("Keza".into()),
            family_name: Some("Uwase".into()),
            sex: Some("F".into()),
            birth_date: Some("2025-06-01".into()),
            identifiers: json!([{"system": "urn:emr", "value": "P-1"}]),
            related_to: None,
            relationship: None,
            provenance: prov("P-1"),
        };
        let review = LinkageReview {
            id: Uuid::now_v7(),
            kind: "fhir_patient".into(),
            source_system: "emr-kigali".into(),
            source_id: "P-1".into(),
            candidate_person_id: Some(child),
            weight: Some(6.5),
            explanation: json!({"given_name": {"agreement": "agree"}}),
            status: "open".into(),
            area_code: Some("1101".into()),
            created_at: Utc::now(),
            decided_at: None,
            decided_by: None,
        };
        let mut uow = store.begin().await.unwrap();
        assert_eq!(
            c.put_source_person(&mut uow, &sp).await.unwrap(),
            Written::Created(sp.id)
        );
        let dup = SourcePerson {
            id: Uuid::now_v7(),
            ..sp.clone()
        };
        assert_eq!(
            c.put_source_person(&mut uow, &dup).await.unwrap(),
            Written::Existing(sp.id)
        );
        let imm = Immunization {
            id: Uuid::now_v7(),
            subject: Subject {
                person_id: None,
                source_person_id: Some(sp.id),
            },
            vaccine_system: "http://www.whocc.no/atc".into(),
            vaccine_code: "J07AN01".into(),
            vaccine: Some("BCG".into()),
            needs_mapping: false,
            dose_number: None,
            occurred_on: day("2025-06-02"),
            provenance: prov("imm-9"),
        };
        c.put_immunization(&mut uow, &imm).await.unwrap();
        c.add_review(&mut uow, &review).await.unwrap();
        uow.commit().await.unwrap();

        let district = AreaScope::parse("11").unwrap();
        let got = c
            .source_person(&district, "emr-kigali", "P-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.id, got.person_id), (sp.id, None));
        assert_eq!(
            c.facts_of_source_person(&district, sp.id)
                .await
                .unwrap()
                .immunizations
                .len(),
            1
        );
        let reviews = c.open_reviews(&district, "fhir_patient", 10).await.unwrap();
        assert_eq!(reviews.len(), 1);
        assert_eq!(reviews[0].explanation["given_name"]["agreement"], "agree");
        let other = AreaScope::parse("12").unwrap();
        assert!(c
            .source_person(&other, "emr-kigali", "P-1")
            .await
            .unwrap()
            .is_none());
        assert!(c
            .facts_of_source_person(&other, sp.id)
            .await
            .unwrap()
            .immunizations
            .is_empty());
        assert!(c
            .open_reviews(&other, "fhir_patient", 10)
            .await
            .unwrap()
            .is_empty());
    }
}

/// The batch recompute's packed reads (one value per person and table) give what the
/// row-by-row read gives, value for value: unmapped and unnumbered doses, a measurement value
/// needing all 17 digits, dates; and status rows written packed as JSON read back unchanged.
#[tokio::test]
async fn packed_batch_reads_and_writes_match_the_row_by_row_ones() {
    use inkingi_domain::children::schedule::{Status, Window};
    use inkingi_store::child_status::{Evaluated, StatusRow};
    use inkingi_store::children::ChildFacts;
    for db in databases().await {
        let store = db.store().await;
        let (mother, child) = family(&store).await;
        let of = |p: Uuid| Subject {
            person_id: Some(p),
            source_person_id: None,
        };
        let dose = |id: &str, vaccine: Option<&str>, n: Option<u32>, on: &str| Immunization {
            id: Uuid::now_v7(),
            subject: of(child),
            vaccine_system: "http://hl7.org/fhir/sid/cvx".into(),
            vaccine_code: "x".into(),
            vaccine: vaccine.map(Into::into),
            needs_mapping: vaccine.is_none(),
            dose_number: n,
            occurred_on: day(on),
            provenance: prov(id),
        };
        let weigh = |id: &str, kind, value: f64, on: &str| Measurement {
            id: Uuid::now_v7(),
            subject: of(child),
            kind,
            loinc: "29463-7".into(),
            value,
            unit: "kg".into(),
            measured_on: day(on),
            zscores: json!({}),
            provenance: prov(id),
        };
        let c = store.children();
        let mut uow = store.begin().await.unwrap();
        for i in [
            dose("d1", Some("OPV"), Some(0), "2025-06-01"),
            dose("d2", None, None, "2025-06-01"),
            dose("d3", Some("OPV"), None, "2025-07-13"),
            dose("d4", Some("PENTA"), Some(1), "2025-07-13"),
        ] {
            c.put_immunization(&mut uow, &i).await.unwrap();
        }
        for m in [
            weigh(
                "m1",
                MeasurementKind::Weight,
                7.123_456_789_012_345,
                "2025-12-01",
            ),
            weigh("m2", MeasurementKind::Length, 0.1 + 0.2, "2025-12-01"),
            weigh("m3", MeasurementKind::Weight, 3.0, "2025-06-02"),
        ] {
            c.put_measurement(&mut uow, &m).await.unwrap();
        }
        uow.commit().await.unwrap();

        let national = AreaScope::national();
        let rows = c.facts_of_people(&national, &[child]).await.unwrap();
        let want = ChildFacts::from(&rows[0].1);
        let (lo, hi) = (mother.min(child), mother.max(child));
        let got = store.child_status().facts_between(lo, hi).await.unwrap();
        assert_eq!(got.get(&child), Some(&want), "[{}]", db.kind.as_str());
        assert_eq!((want.doses.len(), want.measurements.len()), (4, 3));
        assert!(!got.contains_key(&mother), "[{}]", db.kind.as_str());

        let row = |service: &str, village: Option<&str>, closes: Option<&str>| StatusRow {
            person_id: child,
            schedule: "rw-epi".into(),
            service: service.into(),
            occurrence: 2,
            schedule_version: "2024.1".into(),
            village_code: village.map(Into::into),
            status: Status::Overdue,
            window: Window {
                opens: day("2025-07-13"),
                due_by: day("2025-08-10"),
                closes: closes.map(day),
            },
            completed_on: None,
            evaluated_on: day("2026-11-23"),
        };
        let written = vec![
            row("a \"quoted\" service", Some(VILLAGE), Some("2026-06-01")),
            row("penta-1", None, None),
        ];
        let mut uow = store.begin().await.unwrap();
        store
            .child_status()
            .replace(
                &mut uow,
                &[Evaluated {
                    person_id: child,
                    rows: written.clone(),
                    base: None,
                }],
            )
            .await
            .unwrap();
        uow.commit().await.unwrap();
        let back = store.child_status().rows_of(&[child]).await.unwrap();
        assert_eq!(back, written, "[{}]", db.kind.as_str());
    }
}
