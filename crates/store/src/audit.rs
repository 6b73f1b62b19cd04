//! Port of the `audit` context: the append-only, hash-chained log of reads and changes.
//!
//! Appends are serialised so every entry links to the one before: SQLite has a single writer
//! anyway; PostgreSQL locks the one-row `audit_head` table `FOR UPDATE` inside the appending
//! transaction. Several records appended together cost one transaction and one lock.

use chrono::{DateTime, Utc};
use inkingi_domain::audit::{AuditEntry, AuditRecord, ChainHash, ChainHead};
use inkingi_domain::identity::AreaScope;

use crate::{StoreError, StoreResult, UnitOfWork};

/// Filters for [`AuditStore::query`], combined with AND. Results are in sequence order.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub actor: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Keyset pagination: only entries after this sequence number.
    pub after: Option<i64>,
    pub limit: u32,
}

#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Seals and stores `records` in order, in one transaction; returns the new head.
    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<ChainHead>;
    /// The same inside a caller's unit of work, so a change and its audit entry commit
    /// together (the chain stays locked until the unit of work ends).
    async fn append_in(
        &self,
        uow: &mut UnitOfWork,
        records: Vec<AuditRecord>,
    ) -> StoreResult<ChainHead>;
    async fn head(&self) -> StoreResult<ChainHead>;
    /// Entries within `scope`: an entry with an area is visible when the scope contains that
    /// area; one without (sign-ins, administration) only to a national scope.
    async fn query(&self, scope: &AreaScope, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;
    /// Every entry after `after_seq` in sequence order, at most `limit`, as stored (for
    /// verification: nothing is filtered or repaired; a row that cannot be decoded comes back
    /// as [`MalformedEntry`] in its place).
    async fn entries_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Result<AuditEntry, MalformedEntry>>>;
}

/// A stored row that does not even decode (a hash of the wrong length, a bad area code…).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq} is malformed: bad {what}")]
pub struct MalformedEntry {
    pub seq: i64,
    pub what: &'static str,
}

impl From<MalformedEntry> for StoreError {
    fn from(e: MalformedEntry) -> Self {
        StoreError::Invalid(format!("audit {e}"))
    }
}

/// The pieces of a stored row, decoded by each adapter and assembled here in one place.
pub(crate) struct RawEntry {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub via: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub outcome: String,
    pub subject_type: String,
    pub subject_id: Option<String>,
    pub area: Option<String>,
    pub fields: String,
    pub purpose: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub xroad_client: Option<String>,
    pub xroad_id: Option<String>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl RawEntry {
    /// A row that cannot be decoded names its sequence number, so `audit verify` can say
    /// which entry is damaged.
    pub(crate) fn into_entry(self) -> Result<AuditEntry, MalformedEntry> {
        let seq = self.seq;
        let bad = |what: &'static str| MalformedEntry { seq, what };
        let area = match self.area {
            Some(a) => {
                Some(inkingi_domain::areas::AreaCode::parse(&a).map_err(|_| bad("area code"))?)
            }
            None => None,
        };
        let fields: Vec<String> = serde_json::from_str(&self.fields).map_err(|_| bad("fields"))?;
        let mut record =
            AuditRecord::new(self.actor, self.action, self.subject_type).at(self.occurred_at);
        record.via = self.via;
        record.role = self.role;
        record.outcome = self.outcome;
        record.subject_id = self.subject_id;
        record.area = area;
        record.fields = fields;
        record.purpose = self.purpose;
        record.request_id = self.request_id;
        record.client_addr = self.client_addr;
        record.xroad_client = self.xroad_client;
        record.xroad_id = self.xroad_id;
        Ok(AuditEntry {
            seq,
            record,
            prev_hash: ChainHash::from_slice(&self.prev_hash).ok_or_else(|| bad("prev_hash"))?,
            hash: ChainHash::from_slice(&self.hash).ok_or_else(|| bad("hash"))?,
        })
    }
}

pub(crate) fn fields_json(fields: &[String]) -> String {
    serde_json::to_string(fields).unwrap_or_else(|_| "[]".into())
}

/// `LIKE` patterns for the areas of a scope; `None` for a national scope (no filter).
pub(crate) fn scope_patterns(scope: &AreaScope) -> Option<Vec<String>> {
    if scope.is_national() {
        return None;
    }
    // Area codes are digits only, so they need no LIKE escaping.
    Some(scope.codes().iter().map(|c| format!("{c}%")).collect())
}
