//! Port of the linkage review workflow (schema: `linkage_reviews` of migration 0014, decisions
//! of 0018): the queue shared by registry duplicates (`inkingi match run`) and records from
//! other sources (FHIR patients), listed within the reader's area scope and decided once.

use chrono::{DateTime, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use serde::Serialize;
use uuid::Uuid;

use crate::children::LinkageReview;
use crate::{StoreResult, UnitOfWork};

/// The review kind of a pair of registry people that may be one person.
pub const REGISTRY_DUPLICATE: &str = "registry_duplicate";
/// The `source_system` of registry duplicates: both records are the registry's.
pub const REGISTRY_SOURCE: &str = "registry";

/// A review with its decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    #[serde(flatten)]
    pub review: LinkageReview,
    /// Above the auto-link threshold: queued for a person's decision all the same.
    pub auto_link: bool,
    /// Why it was dismissed (or the confirmer's note).
    pub decision_reason: Option<String>,
    /// The merge request a confirmation created (registry duplicates).
    pub change_request_id: Option<Uuid>,
}

/// Which reviews to list.
#[derive(Debug, Clone, Default)]
pub struct ReviewQuery {
    /// `open`, `confirmed` or `dismissed`; any when `None`.
    pub status: Option<String>,
    pub kind: Option<String>,
    /// Reviews whose area lies inside this one.
    pub area: Option<AreaCode>,
    pub limit: u32,
    pub offset: u64,
}

/// A decision on an open review.
#[derive(Debug, Clone)]
pub struct ReviewDecision<'a> {
    /// `confirmed` or `dismissed`.
    pub status: &'a str,
    pub by: &'a str,
    pub at: DateTime<Utc>,
    pub reason: Option<&'a str>,
    pub change_request_id: Option<Uuid>,
}

#[async_trait::async_trait]
pub trait LinkageReviewStore: Send + Sync {
    /// Queues a pair review unless one for the same pair exists in any status (so a second run
    /// neither duplicates an open review nor reopens a decided one). True when queued.
    async fn queue_pair(
        &self,
        uow: &mut UnitOfWork,
        r: &LinkageReview,
        auto_link: bool,
    ) -> StoreResult<bool>;
    /// Reviews in scope matching `q`, oldest first, and how many match in all.
    async fn reviews(&self, scope: &AreaScope, q: &ReviewQuery) -> StoreResult<(Vec<Review>, u64)>;
    async fn review(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<Review>>;
    /// Decides an open review; false when it was no longer open (decided by someone else).
    async fn decide_review(
        &self,
        uow: &mut UnitOfWork,
        id: Uuid,
        d: &ReviewDecision<'_>,
    ) -> StoreResult<bool>;
    /// Reopens a confirmed review (after an unlink); false when it was not confirmed.
    async fn reopen_review(&self, uow: &mut UnitOfWork, id: Uuid) -> StoreResult<bool>;
    /// Links an unlinked source person to `person_id` and gives it its facts; false when the
    /// source person was linked meanwhile.
    async fn link_source_person(
        &self,
        uow: &mut UnitOfWork,
        source_person_id: Uuid,
        person_id: Uuid,
    ) -> StoreResult<bool>;
    /// Undoes [`LinkageReviewStore::link_source_person`]; false when not linked to `person_id`
    /// by a review.
    async fn unlink_source_person(
        &self,
        uow: &mut UnitOfWork,
        source_person_id: Uuid,
        person_id: Uuid,
    ) -> StoreResult<bool>;
}

/// The smallest area holding both villages (a pair's review belongs to the officers who can
/// see both records); `None` when they are in different provinces (national officers decide).
pub fn common_area(a: &AreaCode, b: &AreaCode) -> Option<AreaCode> {
    use inkingi_domain::areas::AreaLevel;
    let shared = a
        .as_str()
        .bytes()
        .zip(b.as_str().bytes())
        .take_while(|(x, y)| x == y)
        .count();
    AreaLevel::ALL
        .into_iter()
        .filter(|l| l.code_len() <= shared)
        .max_by_key(|l| l.code_len())
        .and_then(|l| AreaCode::parse(&a.as_str()[..l.code_len()]).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn common_area_is_the_deepest_shared_level() {
        let code = |s: &str| AreaCode::parse(s).unwrap();
        assert_eq!(
            common_area(&code("11010102"), &code("11010102")),
            Some(code("11010102"))
        );
        assert_eq!(
            common_area(&code("11010102"), &code("11010203")),
            Some(code("1101"))
        );
        assert_eq!(
            common_area(&code("11010102"), &code("12010102")),
            Some(code("1"))
        );
        assert_eq!(common_area(&code("11010102"), &code("21010102")), None);
    }
}
