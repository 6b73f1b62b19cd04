//! People search on every configured backend: identifiers combine as an intersection, a phone
//! finds its person whichever of their phones it is, and name search stays ranked and scoped
//! while reading a bounded number of candidates.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    HouseholdInput, MemberRole, Name, NationalId, PersonInput, PhoneNumber, RegistryNumber, Sex,
};
use inkingi_store::registry::names::MIN_PER_KEY;
use inkingi_store::registry::{
    EventMeta, NewHousehold, NewMember, PersonChange, PersonHit, PersonSearch,
};
use inkingi_store::Store;
use inkingi_testkit::databases;
use uuid::Uuid;

const NYARUGENGE: &str = "11010102";
const NYANZA: &str = "21010101";

struct P<'a> {
    given: &'a str,
    family: &'a str,
    national_id: Option<&'a str>,
    phones: &'a [&'a str],
}

fn person(p: &P) -> PersonInput {
    PersonInput {
        given_name: Name::parse(p.given).unwrap(),
        family_name: Name::parse(p.family).unwrap(),
        sex: Sex::Female,
        birth_date: None,
        national_id: p.national_id.map(|n| NationalId::parse(n).unwrap()),
        birth_registration: None,
        refugee_id: None,
        passport: None,
        phones: p
            .phones
            .iter()
            .map(|s| PhoneNumber::parse(s).unwrap())
            .collect(),
        answers: Default::default(),
    }
}

fn meta() -> EventMeta {
    EventMeta {
        actor: "test".into(),
        channel: Channel::System,
        reason: None,
        change_request_id: None,
        at: Utc::now(),
    }
}

/// Registers one household per entry of `households` (first member head); returns them.
async fn register(store: &Store, village: &str, households: &[Vec<P<'_>>]) -> Vec<NewHousehold> {
    let mut uow = store.begin().await.unwrap();
    let mut out = Vec::new();
    for members in households {
        let new = NewHousehold {
            id: Uuid::now_v7(),
            registry_number: RegistryNumber::generate(&mut rand::rng()),
            input: HouseholdInput {
                village: AreaCode::parse(village).unwrap(),
                address: None,
                gps: None,
                answers: Default::default(),
            },
            form_id: "rw-socioeconomic".into(),
            form_version: 1,
            source_key: None,
            members: members
                .iter()
                .enumerate()
                .map(|(i, p)| NewMember {
                    id: Uuid::now_v7(),
                    person: person(p),
                    role: if i == 0 {
                        MemberRole::Head
                    } else {
                        MemberRole::Child
                    },
                    since: Utc::now().date_naive(),
                    mother_id: None,
                    father_id: None,
                    guardian_id: None,
                    source_key: None,
                })
                .collect(),
        };
        store
            .registry()
            .register_household(&mut uow, &new, &meta())
            .await
            .unwrap();
        out.push(new);
    }
    uow.commit().await.unwrap();
    out
}

async fn search(store: &Store, scope: &AreaScope, q: PersonSearch) -> Vec<PersonHit> {
    store.registry().search_people(scope, &q).await.unwrap()
}

fn names(hits: &[PersonHit]) -> Vec<String> {
    hits.iter()
        .map(|h| {
            let d = &h.record.person.data;
            format!("{} {}", d.given_name.as_str(), d.family_name.as_str())
        })
        .collect()
}

fn phone(s: &str) -> Option<PhoneNumber> {
    Some(PhoneNumber::parse(s).unwrap())
}

fn p<'a>(given: &'a str, family: &'a str) -> P<'a> {
    P {
        given,
        family,
        national_id: None,
        phones: &[],
    }
}

#[tokio::test]
async fn a_phone_finds_its_person_whichever_phone_it_is() {
    for db in databases().await {
        let store = db.store().await;
        let hh = register(
            &store,
            NYARUGENGE,
            &[vec![P {
                phones: &["0788000001", "0722000002", "0733000003"],
                ..p("Aline", "Uwase")
            }]],
        )
        .await;
        let national = AreaScope::national();
        for number in ["0788000001", "+250722000002", "0733000003"] {
            let hits = search(
                &store,
                &national,
                PersonSearch {
                    phone: phone(number),
                    limit: 20,
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(
                names(&hits),
                ["Aline Uwase"],
                "[{}] {number}",
                db.kind.as_str()
            );
        }

        // Changing the phones changes what finds the person (the index follows every write).
        let id = hh[0].members[0].id;
        let current = store
            .registry()
            .person(&national, id)
            .await
            .unwrap()
            .unwrap();
        let mut input = current.person.data.clone();
        input.phones = vec![
            PhoneNumber::parse("0788000001").unwrap(),
            PhoneNumber::parse("0788000009").unwrap(),
        ];
        let change = PersonChange {
            input,
            relatives: current.relatives(),
        };
        let mut uow = store.begin().await.unwrap();
        store
            .registry()
            .update_person(&mut uow, &national, id, 1, &change, &meta())
            .await
            .unwrap();
        uow.commit().await.unwrap();
        for (number, found) in [("0722000002", 0), ("0788000009", 1)] {
            let hits = search(
                &store,
                &national,
                PersonSearch {
                    phone: phone(number),
                    limit: 20,
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(hits.len(), found, "[{}] {number}", db.kind.as_str());
        }
        store.close().await;
    }
}

#[tokio::test]
async fn identifiers_and_a_name_intersect_ranked_by_the_name() {
    for db in databases().await {
        let store = db.store().await;
        let hh = register(
            &store,
            NYARUGENGE,
            &[
                vec![
                    P {
                        national_id: Some("1199070012345012"),
                        phones: &["0788000001"],
                        ..p("Aline", "Uwase")
                    },
                    P {
                        phones: &["0788000002"],
                        ..p("Claudine", "Uwimana")
                    },
                ],
                vec![P {
                    phones: &["0788000003", "0788000001"],
                    ..p("Claudine", "Uwimana")
                }],
            ],
        )
        .await;
        let national = AreaScope::national();
        let kind = db.kind.as_str();
        let number = Some(hh[0].registry_number.clone());

        // The household's members only (not the namesake elsewhere), the named one first.
        let hits = search(
            &store,
            &national,
            PersonSearch {
                registry_number: number.clone(),
                name: Some("Klaudine Uwimana".into()),
                limit: 20,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            names(&hits),
            ["Claudine Uwimana", "Aline Uwase"],
            "[{kind}]"
        );
        assert!(hits[0].score > hits[1].score, "[{kind}]");

        // A national ID and someone else's name: that ID's person, not the other name.
        let hits = search(
            &store,
            &national,
            PersonSearch {
                national_id: Some(NationalId::parse("1199070012345012").unwrap()),
                name: Some("Claudine Uwimana".into()),
                limit: 20,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(names(&hits), ["Aline Uwase"], "[{kind}]");

        // Two identifiers: people matching both. The phone is shared by two households.
        let hits = search(
            &store,
            &national,
            PersonSearch {
                phone: phone("0788000001"),
                limit: 20,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(hits.len(), 2, "[{kind}]");
        let hits = search(
            &store,
            &national,
            PersonSearch {
                phone: phone("0788000001"),
                registry_number: Some(hh[1].registry_number.clone()),
                limit: 20,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(hits.len(), 1, "[{kind}]");
        assert_eq!(hits[0].record.person.id, hh[1].members[0].id, "[{kind}]");
        assert_eq!(hits[0].score, 1.0, "[{kind}]");

        // Identifiers that match nobody together: nothing, whatever the name.
        let hits = search(
            &store,
            &national,
            PersonSearch {
                phone: phone("0788000003"),
                registry_number: number,
                name: Some("Claudine Uwimana".into()),
                limit: 20,
                ..Default::default()
            },
        )
        .await;
        assert!(hits.is_empty(), "[{kind}] {:?}", names(&hits));
        store.close().await;
    }
}

#[tokio::test]
async fn name_search_is_ranked_and_scoped_however_common_the_name() {
    for db in databases().await {
        let store = db.store().await;
        let kind = db.kind.as_str();
        // More namesakes in one district than one key reads, and a variant spelling.
        let common: Vec<Vec<P>> = (0..MIN_PER_KEY as usize + 30)
            .map(|_| vec![p("Claudine", "Uwimana")])
            .collect();
        register(&store, NYARUGENGE, &common).await;
        register(
            &store,
            NYANZA,
            &[
                vec![p("Klaudine", "Uwimanna")],
                vec![p("Uwimana", "Claudine")],
                vec![p("Eric", "Habimana")],
            ],
        )
        .await;

        // A Nyanza officer sees Nyanza's matches only, both spellings and both name orders,
        // although the Nyarugenge namesakes come first in the index.
        let nyanza = AreaScope::parse("21").unwrap();
        let hits = search(
            &store,
            &nyanza,
            PersonSearch {
                name: Some("claudine uwimana".into()),
                limit: 20,
                ..Default::default()
            },
        )
        .await;
        let mut got = names(&hits);
        got.sort();
        assert_eq!(got, ["Klaudine Uwimanna", "Uwimana Claudine"], "[{kind}]");
        assert!(hits[0].score >= hits[1].score, "[{kind}]");

        // Nationally: as many as asked for, best first, one per person.
        let hits = search(
            &store,
            &AreaScope::national(),
            PersonSearch {
                name: Some("Claudine Uwimana".into()),
                limit: 50,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(hits.len(), 50, "[{kind}]");
        assert!(
            hits.windows(2).all(|w| w[0].score >= w[1].score),
            "[{kind}]"
        );
        let distinct: std::collections::HashSet<Uuid> =
            hits.iter().map(|h| h.record.person.id).collect();
        assert_eq!(distinct.len(), 50, "[{kind}]");
        assert_eq!(hits[0].score, 1.0, "[{kind}]");

        // One word: a family name alone or a given name alone.
        let hits = search(
            &store,
            &nyanza,
            PersonSearch {
                name: Some("Habimana".into()),
                limit: 20,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(names(&hits), ["Eric Habimana"], "[{kind}]");
        let hits = search(
            &store,
            &nyanza,
            PersonSearch {
                name: Some("ERIC".into()),
                limit: 20,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(names(&hits), ["Eric Habimana"], "[{kind}]");
        store.close().await;
    }
}
