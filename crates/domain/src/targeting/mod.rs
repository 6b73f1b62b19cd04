//! Targeting: who a programme should reach. Household and person facts derived from the
//! registry, proxy-means-test scoring with explained contributions, and eligibility rules in a
//! small, safe expression language that is checked when saved and evaluated fast.

pub mod facts;
pub mod rules;
pub mod scoring;
pub mod simulation;

pub use facts::{HouseholdFacts, MemberRecord, OwnedMember, PersonFacts};
pub use scoring::{Contribution, InvalidModel, Score, ScoringModel};
