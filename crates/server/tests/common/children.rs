//! Registry families for the child-record tests: members and a household registered directly
//! through the store.

use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, PersonInput, RegistryNumber, Sex,
};
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_store::Store;
use serde_json::json;
use uuid::Uuid;

/// A member of family Uwase born on `born`, with no identifiers.
pub fn member(
    given: &str,
    sex: Sex,
    born: NaiveDate,
    role: MemberRole,
    mother: Option<Uuid>,
) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        person: PersonInput {
            given_name: Name::parse(given).unwrap(),
            family_name: Name::parse("Uwase").unwrap(),
            sex,
            birth_date: Some(BirthDate::exact(born)),
            national_id: None,
            birth_registration: None,
            refugee_id: None,
            passport: None,
            phones: vec![],
            answers: Default::default(),
        },
        role,
        since: born,
        mother_id: mother,
        father_id: None,
        guardian_id: None,
        source_key: None,
    }
}

/// Registers a household of `members` in `village`; its id.
pub async fn register(store: &Store, village: &str, members: Vec<NewMember>) -> Uuid {
    let new = NewHousehold {
        id: Uuid::now_v7(),
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input: HouseholdInput {
            village: AreaCode::parse(village).unwrap(),
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
        members,
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
    new.id
}
