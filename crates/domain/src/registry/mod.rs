//! The social registry: households, people, memberships and relationships; the questionnaire
//! as data; the history of every change; and change requests.

pub mod change;
pub mod form;
pub mod history;
pub mod ids;
pub mod model;
pub mod person;
pub mod search;

pub use ids::{NationalId, PhoneNumber, RegistryNumber};
pub use model::{
    Gps, Household, HouseholdInput, HouseholdStatus, Membership, Person, PersonInput, Relationship,
};
pub use person::{BirthDate, DatePrecision, MemberRole, Name, RelationshipKind, Sex};
