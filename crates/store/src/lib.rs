//! The storage port of Inkingi: one trait per bounded context, and two adapters that implement
//! them all: SQLite (the embedded default: one file, one writer) and PostgreSQL (production).
//!
//! Callers hold a [`Store`] and ask it for a context (`store.areas()`, `store.jobs()`). Work that
//! must be atomic across contexts — a registry change and the job it causes — runs inside a
//! [`UnitOfWork`] obtained from [`Store::begin`] and passed to the trait methods that take one.
//!
//! Each backend has its own forward-only migration folder (`migrations/sqlite`,
//! `migrations/postgres`): SQL dialects differ enough that one shared folder would mean the
//! lowest common denominator. sqlx's `Any` driver is avoided for the same reason.

pub mod areas;
pub mod audit;
pub mod changes;
mod child_packed;
pub mod child_status;
pub mod children;
pub mod connectors;
pub mod crvs;
pub mod cycles;
#[macro_use]
mod children_sql;
pub mod dci;
pub mod dci_notify;
mod error;
mod facts_codec;
pub mod id_checks;
pub mod identity;
pub mod jobs;
pub mod linkage;
pub mod notifications;
#[macro_use]
mod linkage_sql;
pub mod lookup;
mod postgres;
pub mod programmes;
pub mod recertification;
pub mod reference;
pub mod registry;
pub mod registry_bulk;
mod shared_sql;
pub mod simulation;
pub mod sms;
mod sqlite;
pub mod synthetic;
pub mod synthetic_children;
pub mod system;
pub mod targeting;
pub mod targeting_facts;
mod uow;
pub mod uploads;

pub use error::{redact_url, StoreError, StoreResult};
pub use uow::UnitOfWork;

use std::sync::Arc;
use std::time::Duration;

use areas::AreaStore;
use audit::AuditStore;
use changes::ChangeRequestStore;
use children::ChildStore;
use dci::DciStore;
use dci_notify::NotifyStore;
use identity::IdentityStore;
use jobs::JobStore;
use linkage::LinkageReviewStore;
use registry::RegistryStore;
use registry_bulk::RegistryBulk;
use system::SystemStore;

/// Which database sits behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn from_url(url: &str) -> StoreResult<BackendKind> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(BackendKind::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(BackendKind::Sqlite)
        } else {
            Err(StoreError::BadUrl {
                url: redact_url(url),
                reason: "expected sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
            })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    /// Connections in the pool (PostgreSQL) or in the read pool (SQLite; writes always use one).
    pub max_connections: u32,
    /// How long a caller waits for a free connection before the request fails with 503.
    pub acquire_timeout: Duration,
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything one backend adapter implements.
#[async_trait::async_trait]
pub(crate) trait Adapter:
    AreaStore
    + AuditStore
    + ChangeRequestStore
    + ChildStore
    + LinkageReviewStore
    + registry::ChangeApplier
    + DciStore
    + NotifyStore
    + IdentityStore
    + JobStore
    + RegistryStore
    + RegistryBulk
    + uploads::UploadStore
    + SystemStore
    + Send
    + Sync
    + 'static
{
    async fn begin(&self) -> StoreResult<UnitOfWork>;
    async fn migrate(&self) -> StoreResult<()>;
    async fn close(&self);
    /// The pools, for the contexts whose SQL is shared by both backends.
    fn pools(&self) -> shared_sql::Pools;
}

/// A handle to the database, cheap to clone, shared by every request and job.
#[derive(Clone)]
pub struct Store {
    adapter: Arc<dyn Adapter>,
    kind: BackendKind,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("kind", &self.kind).finish()
    }
}

impl Store {
    /// Connects, without migrating. Fails with a clear message when the database is unreachable.
    pub async fn connect(opts: &ConnectOptions) -> StoreResult<Store> {
        let kind = BackendKind::from_url(&opts.url)?;
        let adapter: Arc<dyn Adapter> = match kind {
            BackendKind::Sqlite => Arc::new(sqlite::SqliteAdapter::connect(opts).await?),
            BackendKind::Postgres => Arc::new(postgres::PgAdapter::connect(opts).await?),
        };
        Ok(Store { adapter, kind })
    }

    /// Applies pending migrations, then loads any reference data (areas) whose version changed.
    pub async fn migrate(&self) -> StoreResult<()> {
        self.adapter.migrate().await?;
        // A first bulk load drops the registry's secondary indexes; if it was interrupted,
        // migrate (run by every `serve`) puts them back.
        self.adapter.ensure_indexes().await?;
        reference::ensure_loaded(self).await?;
        registry::ensure_default_form(self).await?;
        targeting::ensure_default_model(self).await
    }

    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    pub async fn begin(&self) -> StoreResult<UnitOfWork> {
        self.adapter.begin().await
    }

    pub fn areas(&self) -> &dyn AreaStore {
        &*self.adapter
    }

    pub fn jobs(&self) -> &dyn JobStore {
        &*self.adapter
    }

    pub fn identity(&self) -> &dyn IdentityStore {
        &*self.adapter
    }

    /// The audit log. Queries take the reader's [`inkingi_domain::identity::AreaScope`]: every
    /// store call that returns personal data does, so a caller cannot forget to filter.
    pub fn audit(&self) -> &dyn AuditStore {
        &*self.adapter
    }

    /// Change requests to the registry. Reads take the reader's area scope.
    pub fn changes(&self) -> &dyn ChangeRequestStore {
        &*self.adapter
    }

    /// Materialised services due, indicator inputs and the DHIS2 aggregate push log.
    pub fn child_status(&self) -> child_status::ChildStatus<'_> {
        child_status::ChildStatus { store: self }
    }

    /// Facts about children under six and their mothers from health systems, and the linkage
    /// review queue. Reads take the reader's area scope.
    pub fn children(&self) -> &dyn ChildStore {
        &*self.adapter
    }

    /// The linkage review queue and its decisions. Reads take the reader's area scope.
    pub fn linkage(&self) -> &dyn LinkageReviewStore {
        &*self.adapter
    }

    /// Applies approved change requests to the registry.
    pub fn change_applier(&self) -> &dyn registry::ChangeApplier {
        &*self.adapter
    }

    /// Households, people, memberships, history and form versions. Reads of personal data take
    /// the reader's [`inkingi_domain::identity::AreaScope`].
    pub fn registry(&self) -> &dyn RegistryStore {
        &*self.adapter
    }

    /// Files uploaded for a bulk import, and the state of their import job.
    pub fn uploads(&self) -> &dyn uploads::UploadStore {
        &*self.adapter
    }

    /// Bulk loads and exports of the registry (`inkingi import`, `inkingi export`).
    pub fn registry_bulk(&self) -> &dyn RegistryBulk {
        &*self.adapter
    }

    /// Inbound DCI message ids and transactions.
    pub fn dci(&self) -> &dyn DciStore {
        &*self.adapter
    }

    /// Scoring models, eligibility rule sets and household scores.
    pub fn targeting(&self) -> targeting::Targeting<'_> {
        targeting::Targeting { store: self }
    }

    /// Agencies, programmes and enrolments. Reads of enrolments take the reader's area scope.
    pub fn programmes(&self) -> programmes::Programmes<'_> {
        programmes::Programmes { store: self }
    }

    /// Payment cycles and their frozen entitlements. Reads of entitlements take the reader's
    /// area scope.
    pub fn cycles(&self) -> cycles::Cycles<'_> {
        cycles::Cycles { store: self }
    }

    /// Re-certification decisions opened when a beneficiary's data changed.
    pub fn recertifications(&self) -> recertification::Recertifications<'_> {
        recertification::Recertifications { store: self }
    }

    /// The outbox of messages to beneficiaries, written by `notify.*` jobs.
    pub fn notifications(&self) -> notifications::Notifications<'_> {
        notifications::Notifications { store: self }
    }

    /// What the registration-time lookup index reads: current people and registry events.
    pub fn lookup_feed(&self) -> lookup::LookupFeed<'_> {
        lookup::LookupFeed { store: self }
    }

    /// DCI event subscriptions, the notification outbox and its dispatcher's cursor.
    pub fn dci_notify(&self) -> &dyn NotifyStore {
        &*self.adapter
    }

    pub fn system(&self) -> &dyn SystemStore {
        &*self.adapter
    }

    /// Closes every pooled connection; used at shutdown.
    pub async fn close(&self) {
        self.adapter.close().await
    }
}
