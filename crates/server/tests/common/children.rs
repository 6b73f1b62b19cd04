//! The child record's test households: a mother and her daughter in one village.
#![allow(clippy::unwrap_used)]

use chrono::{Days, NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{
    BirthDate, HouseholdInput, MemberRole, Name, PersonInput, RegistryNumber, Sex,
};
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_testkit::TestApp;
use serde_json::json;
use uuid::Uuid;

pub const VILLAGE: &str = "11010102";

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

pub struct Family {
    pub mother: Uuid,
    pub child: Uuid,
    pub born: NaiveDate,
}

/// A mother and her daughter Keza, born 120 days ago, in VILLAGE.
pub async fn family(app: &TestApp) -> Family {
    family_born(app, "Keza", Utc::now().date_naive() - Days::new(120)).await
}

/// A mother (Aline Uwase) and her daughter `given` Uwase born on `born`, in VILLAGE.
pub async fn family_born(app: &TestApp, given: &str, born: NaiveDate) -> Family {
    let mother = member(
        "Aline",
        Sex::Female,
        NaiveDate::from_ymd_opt(1995, 3, 2).unwrap(),
        MemberRole::Head,
        None,
    );
    let child = member(given, Sex::Female, born, MemberRole::Child, Some(mother.id));
    let f = Family {
        mother: mother.id,
        child: child.id,
        born,
    };
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
    let mut uow = app.store.begin().await.unwrap();
    app.store
        .registry()
        .register_household(&mut uow, &new, &meta)
        .await
        .unwrap();
    uow.commit().await.unwrap();
    f
}
