//! Facts blocks against the registry tables, on every configured backend: after the first pack
//! and after edits (a household's answers changed, a member added, a household dissolved, a
//! household registered), the facts, the scores and the simulations computed from the blocks
//! are those computed from the tables read household by household.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::programmes::Catalogue;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, PersonInput, RegistryNumber, Sex,
};
use inkingi_domain::targeting::HouseholdFacts;
use inkingi_store::programmes::load_catalogue;
use inkingi_store::registry::{EventMeta, HouseholdChange, NewHousehold, NewMember};
use inkingi_store::simulation::{resolve, SimulationRequest};
use inkingi_store::targeting::Explanation;
use inkingi_store::targeting_facts::FactsRefresh;
use inkingi_store::Store;
use inkingi_testkit::databases;
use serde_json::json;
use uuid::Uuid;

const HOUSEHOLDS: i64 = 3_000;

fn meta() -> EventMeta {
    EventMeta {
        actor: "test".into(),
        channel: Channel::System,
        reason: None,
        change_request_id: None,
        at: Utc::now(),
    }
}

fn member(given: &str, sex: Sex, born: &str, role: MemberRole) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: PersonInput {
            given_name: Name::parse(given).unwrap(),
            family_name: Name::parse("Mukamana").unwrap(),
            sex,
            birth_date: Some(BirthDate::parse(born).unwrap()),
            national_id: None,
            birth_registration: None,
            refugee_id: None,
            passport: None,
            phones: vec![],
            answers: json!({"pregnant": sex == Sex::Female, "can_work": false})
                .as_object()
                .unwrap()
                .clone(),
        },
        role,
        since: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        mother_id: None,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

/// Registers a one-person household in `village`; returns its id and the head's.
async fn register(store: &Store, village: &str) -> (Uuid, Uuid) {
    let head = member("Aline", Sex::Female, "1961-04", MemberRole::Head);
    let ids = (Uuid::now_v7(), head.id);
    let new = NewHousehold {
        id: ids.0,
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input: HouseholdInput {
            village: AreaCode::parse(village).unwrap(),
            address: None,
            gps: None,
            answers: json!({"tenure": "owner", "wall": "mud_bricks", "roof": "thatch",
                "floor": "earth", "rooms": 1, "water_source": "surface_water",
                "toilet": "none", "lighting": "none", "cooking_fuel": "firewood",
                "owns_land": true, "land_area_ha": 0.15, "owns_livestock": true, "goats": 2,
                "income_sources": ["casual_labour"], "meals_per_day": 1})
            .as_object()
            .unwrap()
            .clone(),
        },
        form_id: "rw-socioeconomic".into(),
        form_version: 1,
        source_key: None,
        members: vec![head],
    };
    let mut uow = store.begin().await.unwrap();
    store
        .registry()
        .register_household(&mut uow, &new, &meta())
        .await
        .unwrap();
    uow.commit().await.unwrap();
    ids
}

/// Every active household's facts on `on`, read from the blocks or from the tables.
async fn all_facts(store: &Store, blocks: bool, on: NaiveDate) -> BTreeMap<Uuid, HouseholdFacts> {
    // The passes build facts from owned answers; the reference copies them, as before.
    let collect = move |acc: &mut BTreeMap<Uuid, HouseholdFacts>,
                        batch: Vec<inkingi_store::targeting::ScoringInput>| {
        for h in batch {
            let id = h.household_id;
            acc.insert(
                id,
                if blocks {
                    h.into_facts(on)
                } else {
                    h.facts(on)
                },
            );
        }
        Ok(())
    };
    let t = store.targeting();
    let national = AreaScope::national();
    if blocks {
        t.for_each_batch(&national, BTreeMap::new(), collect)
            .await
            .unwrap()
    } else {
        t.for_each_batch_direct(&national, BTreeMap::new(), collect)
            .await
            .unwrap()
    }
}

/// Blocks and tables agree on facts, on every stored score, and on simulations (national and
/// scoped to one district).
async fn agree(store: &Store) {
    let on = Utc::now().date_naive();
    let from_blocks = all_facts(store, true, on).await;
    let from_tables = all_facts(store, false, on).await;
    assert_eq!(from_blocks.len(), from_tables.len());
    assert!(from_blocks == from_tables, "facts differ");

    let t = store.targeting();
    let model = t.current_model().await.unwrap().unwrap();
    let run = t.score_all(&model, |_| {}).await.unwrap();
    assert_eq!(run.households, from_tables.len() as u64);
    for id in from_tables.keys() {
        let input = t.scoring_input(*id).await.unwrap().unwrap();
        let expected = model.score(&input.facts(on));
        let stored = t.score(&AreaScope::national(), *id).await.unwrap().unwrap();
        assert_eq!(
            (stored.score, stored.category.as_str(), stored.model_version),
            (expected.value, expected.category.as_str(), model.version),
            "score of {id}"
        );
        // The explanation is stored as JSON text, and serde_json's reader (without its
        // `float_roundtrip` feature) may miss a float's last digit: compare after the same
        // round trip, as a reader of the stored explanation sees it.
        let text = serde_json::to_string(&Explanation {
            intercept: expected.intercept,
            raw: expected.raw,
            contributions: expected.contributions.clone(),
        })
        .unwrap();
        let seen: Explanation = serde_json::from_str(&text).unwrap();
        assert_eq!(stored.explanation, seen, "explanation of {id}");
        // Simulations count with the score alone: the same number and band.
        let (value, category) = model.value(&input.facts(on));
        assert_eq!(
            (value, category),
            (expected.value, expected.category.as_str())
        );
    }

    let form = store
        .registry()
        .latest_form("rw-socioeconomic")
        .await
        .unwrap()
        .unwrap()
        .schema;
    for scope in [AreaScope::national(), AreaScope::parse("41").unwrap()] {
        let req = SimulationRequest {
            by: Some("district".into()),
            ..Default::default()
        };
        let a = resolve(store, &req, &form).await.unwrap().unwrap();
        let b = resolve(store, &req, &form).await.unwrap().unwrap();
        let via_blocks = t.simulate(&scope, a).await.unwrap();
        let via_tables = t.simulate_direct(&scope, b).await.unwrap();
        assert!(
            !via_tables.areas.is_empty(),
            "the simulation saw households"
        );
        assert_eq!(
            via_blocks,
            via_tables,
            "simulation in {}",
            scope.to_stored()
        );
    }
}

#[tokio::test]
async fn blocks_give_the_same_facts_scores_and_simulations_as_the_tables() {
    for db in databases().await {
        let store = db.store().await;
        let catalogue = Catalogue::rw_illustrative().unwrap();
        load_catalogue(&store, &catalogue, "test").await.unwrap();
        inkingi_store::synthetic::seed(&store, HOUSEHOLDS)
            .await
            .unwrap();
        let (gone, gone_head) = register(&store, "41010101").await;
        let (changed, _) = register(&store, "41010101").await;
        let (grown, _) = register(&store, "11010102").await;
        let t = store.targeting();

        let first = t.refresh_facts().await.unwrap();
        assert_eq!(
            first,
            FactsRefresh::Rebuilt {
                households: HOUSEHOLDS as u64 + 3,
                blocks: 5
            }
        );
        assert_eq!(t.refresh_facts().await.unwrap(), FactsRefresh::Fresh);
        agree(&store).await;

        // Edits after the first pack, each with its registry event.
        let on = Utc::now().date_naive();
        let facts = all_facts(&store, false, on).await;
        let national = AreaScope::national();
        let h = store
            .registry()
            .household(&national, changed)
            .await
            .unwrap()
            .unwrap();
        let mut answers = h.answers.clone();
        answers.insert("rooms".into(), json!(7));
        answers.insert("owns_land".into(), json!(false));
        let change = HouseholdChange {
            input: HouseholdInput {
                village: h.village.clone(),
                address: h.address.clone(),
                gps: h.gps,
                answers,
            },
            form_version: h.form_version,
        };
        let mut uow = store.begin().await.unwrap();
        let r = store.registry();
        r.update_household(&mut uow, &national, changed, h.version, &change, &meta())
            .await
            .unwrap();
        let baby = member("Keza", Sex::Female, "2025-11", MemberRole::Child);
        r.add_member(&mut uow, &national, grown, &baby, &meta())
            .await
            .unwrap();
        r.end_membership(&mut uow, &national, gone_head, on, "moved_out", &meta())
            .await
            .unwrap();
        uow.commit().await.unwrap();
        let (added, _) = register(&store, "11010102").await;

        let second = t.refresh_facts().await.unwrap();
        assert!(
            matches!(second, FactsRefresh::Updated { .. }),
            "only touched blocks are re-packed: {second:?}"
        );
        let after = all_facts(&store, true, on).await;
        assert!(
            !after.contains_key(&gone),
            "the dissolved household is gone"
        );
        assert!(after.contains_key(&added), "the new household is there");
        assert_eq!(
            after[&changed].persons_per_room * 7.0,
            f64::from(after[&changed].size)
        );
        assert_eq!(after[&grown].size, facts[&grown].size + 1);
        agree(&store).await;

        // A forced rebuild gives the same blocks' content.
        assert!(matches!(
            t.rebuild_facts().await.unwrap(),
            FactsRefresh::Rebuilt { .. }
        ));
        assert!(all_facts(&store, true, on).await == after);
    }
}
