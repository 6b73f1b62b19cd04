//! Port of change requests (part of the `registry` context; schema `0009_change_requests`).
//!
//! A request is stored as its domain document ([`ChangeRequest`], JSON) with the columns that
//! queues filter on beside it. Saving checks the version read (optimistic concurrency), and
//! keeps `registry_change_touches` equal to the records of the requests still open, which is
//! what conflict detection asks.

use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::change::{ChangeRequest, ChangeStatus};
use uuid::Uuid;

use crate::{StoreResult, UnitOfWork};

/// Filters for [`ChangeRequestStore::list_changes`]; results newest first.
#[derive(Debug, Clone, Default)]
pub struct ChangeQuery {
    pub status: Option<ChangeStatus>,
    /// Only requests in this area (a code prefix).
    pub area: Option<String>,
    pub kind: Option<String>,
    pub submitted_by: Option<String>,
    /// Keyset pagination: only requests with an id below this one (ids are UUIDv7).
    pub before: Option<Uuid>,
    pub limit: u32,
}

#[async_trait::async_trait]
pub trait ChangeRequestStore: Send + Sync {
    /// Stores a new request (version 1) and, if it is open, the records it touches.
    async fn insert_change(&self, uow: &mut UnitOfWork, cr: &ChangeRequest) -> StoreResult<()>;
    /// A request within `scope` (its area must lie inside).
    async fn change(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<ChangeRequest>>;
    /// The request inside a unit of work, locked against concurrent deciders where the
    /// backend can (PostgreSQL `FOR UPDATE`; SQLite has one writer).
    async fn change_for_update(
        &self,
        uow: &mut UnitOfWork,
        id: Uuid,
    ) -> StoreResult<Option<ChangeRequest>>;
    /// Saves `cr` if its stored version is still `cr.version - 1` ([`crate::StoreError::Conflict`]
    /// otherwise); a request that is no longer open stops touching its records.
    async fn save_change(&self, uow: &mut UnitOfWork, cr: &ChangeRequest) -> StoreResult<()>;
    async fn list_changes(
        &self,
        scope: &AreaScope,
        q: &ChangeQuery,
    ) -> StoreResult<Vec<ChangeRequest>>;
    /// Open requests other than `except` that touch any of `records`.
    async fn open_conflicts(
        &self,
        uow: &mut UnitOfWork,
        records: &[Uuid],
        except: Option<Uuid>,
    ) -> StoreResult<Vec<Uuid>>;
}

/// Serialises a request for the `body` column.
pub(crate) fn to_body(cr: &ChangeRequest) -> StoreResult<String> {
    serde_json::to_string(cr)
        .map_err(|e| crate::StoreError::Invalid(format!("change request: {e}")))
}

pub(crate) fn from_body(body: &str) -> StoreResult<ChangeRequest> {
    serde_json::from_str(body)
        .map_err(|e| crate::StoreError::Invalid(format!("stored change request: {e}")))
}

/// The message of a lost optimistic-concurrency race.
pub(crate) fn stale(id: Uuid) -> crate::StoreError {
    crate::StoreError::Conflict(format!(
        "change request {id} was changed by someone else; reload it and decide again"
    ))
}
