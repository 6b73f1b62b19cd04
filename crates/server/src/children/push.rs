//! The aggregate push of child indicators to DHIS2 (`POST /api/dataValueSets`): one
//! `dhis2.push` job per sector and month, through the job queue (retries with backoff, the
//! DHIS2 host's circuit breaker), and DHIS2's import summary stored per sector and month with
//! its conflicts (`dhis2_aggregate_pushes`), never dropped.
//!
//! Idempotent twice over: a job's key is (sector, period, day queued), so enqueuing again the
//! same day queues nothing; and DHIS2 keys a data value by (data element, combination,
//! organisation unit, period), so a value sent again (a retry after a lost answer, a push on a
//! later day) updates it instead of adding one.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::children::indicators::RefMonth;
use inkingi_domain::identity::AreaScope;
use inkingi_interop::breaker;
use inkingi_interop::dhis2::aggregate::{
    AggregateMapping, DataValueOut, DataValueSet, ImportSummary, Part,
};
use inkingi_interop::worker::{JobContext, JobError, JobHandler};
use inkingi_store::child_status::PushRecord;
use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dhis2::{Dhis2Sync, SyncError, CONNECTOR};
use super::indicators::{table, AreaRow};

/// Pushes one sector's indicators of one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushJob {
    pub sector: String,
    /// `YYYY-MM`.
    pub month: String,
    /// The day it was queued: one push per sector, month and day.
    pub queued_on: NaiveDate,
}

impl Job for PushJob {
    const KIND: &'static str = "dhis2.push";
    const QUEUE: &'static str = "connectors";
    const MAX_ATTEMPTS: u32 = 25;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!(
            "dhis2-push:{}:{}:{}",
            self.sector,
            self.month.replace('-', ""),
            self.queued_on
        ))
    }
}

/// The data values of one area's indicators, as the mapping places them.
pub fn data_values(agg: &AggregateMapping, row: &AreaRow) -> Vec<DataValueOut> {
    agg.data_elements
        .iter()
        .filter_map(|e| {
            let cell = row.indicators.get(&e.indicator)?;
            let v = match e.part {
                Part::Numerator => Some(cell.numerator),
                Part::Denominator => Some(cell.denominator),
                Part::Moderate => cell.moderate,
                Part::Severe => cell.severe,
            }?;
            Some(DataValueOut {
                data_element: e.data_element.clone(),
                category_option_combo: e.category_option_combo.clone(),
                value: v.to_string(),
            })
        })
        .collect()
}

/// Why a push did not get an import summary.
#[derive(Debug)]
pub enum PushError {
    /// Not configured for this sector (no `[aggregate]`, no organisation unit).
    NotMapped(String),
    Call(SyncError),
    Store(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::NotMapped(m) | PushError::Store(m) => f.write_str(m),
            PushError::Call(e) => write!(f, "{e}"),
        }
    }
}

/// Counts `sector`'s indicators of `month`, sends them, and stores DHIS2's import summary.
pub async fn push_sector(
    sync: &Dhis2Sync,
    store: &Store,
    sector: &str,
    month: RefMonth,
) -> Result<PushRecord, PushError> {
    let agg = sync
        .mapping()
        .aggregate
        .as_ref()
        .ok_or_else(|| PushError::NotMapped("the DHIS2 mapping has no [aggregate]".into()))?;
    let org_unit = agg.org_units.get(sector).ok_or_else(|| {
        PushError::NotMapped(format!(
            "sector {sector} has no organisation unit in [aggregate.org_units]"
        ))
    })?;
    let area = AreaCode::parse(sector).map_err(|e| PushError::NotMapped(e.to_string()))?;
    let t = table(store, &AreaScope::national(), Some(&area), month)
        .await
        .map_err(|e| PushError::Store(e.to_string()))?;
    let set = DataValueSet {
        data_set: agg.data_set.clone(),
        complete_date: Some(Utc::now().date_naive().to_string()),
        period: month.dhis2_period(),
        org_unit: org_unit.clone(),
        data_values: data_values(agg, &t.total),
    };
    let summary: ImportSummary = sync
        .call(async { sync.client().push_data_values(&set).await })
        .await
        .map_err(PushError::Call)?;
    if !summary.conflicts.is_empty() {
        tracing::warn!(sector, period = %set.period, conflicts = ?summary.conflicts,
            "DHIS2 refused some indicator values");
    }
    let rec = PushRecord {
        sector_code: sector.to_string(),
        period: set.period.clone(),
        org_unit: org_unit.clone(),
        status: summary.status.clone(),
        imported: summary.import_count.imported,
        updated: summary.import_count.updated,
        ignored: summary.import_count.ignored,
        deleted: summary.import_count.deleted,
        conflicts: serde_json::to_value(&summary.conflicts).unwrap_or(Value::Null),
        values_sent: set.data_values.len() as i64,
        pushed_at: Utc::now(),
    };
    let stored = async {
        let mut uow = store.begin().await?;
        store.child_status().record_push(&mut uow, &rec).await?;
        uow.commit().await
    };
    stored.await.map_err(|e| PushError::Store(e.to_string()))?;
    Ok(rec)
}

/// Queues one push per mapped sector for `month`; returns the sectors queued.
pub async fn enqueue_month(
    store: &Store,
    agg: &AggregateMapping,
    month: RefMonth,
) -> Result<Vec<String>, inkingi_store::StoreError> {
    let today = Utc::now().date_naive();
    let mut uow = store.begin().await?;
    for sector in agg.org_units.keys() {
        let job = NewJob::of(&PushJob {
            sector: sector.clone(),
            month: month.to_string(),
            queued_on: today,
        })?;
        store.jobs().enqueue(&mut uow, job).await?;
    }
    uow.commit().await?;
    Ok(agg.org_units.keys().cloned().collect())
}

/// Runs `dhis2.push` jobs.
#[derive(Debug, Clone)]
pub struct PushHandler {
    sync: Arc<Dhis2Sync>,
}

impl PushHandler {
    pub fn new(sync: Dhis2Sync) -> Self {
        PushHandler {
            sync: Arc::new(sync),
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for PushHandler {
    fn kind(&self) -> &'static str {
        PushJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let job: PushJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", PushJob::KIND)))?;
        let month = RefMonth::parse(&job.month).map_err(JobError::permanent)?;
        match push_sector(&self.sync, &ctx.store, &job.sector, month).await {
            // Conflicts are stored with the summary: sending the same values again would meet
            // the same conflicts, so the job is done either way.
            Ok(_) => Ok(()),
            Err(PushError::NotMapped(m)) => Err(JobError::Permanent(m)),
            Err(PushError::Call(SyncError::Open(after))) => Err(JobError::Defer {
                after,
                reason: format!("circuit of {} is open", self.sync.system()),
            }),
            Err(PushError::Call(SyncError::Refused(m))) => Err(JobError::Permanent(m)),
            Err(e) => {
                if ctx.attempt < ctx.max_attempts {
                    breaker::count_retry(CONNECTOR, self.sync.system());
                }
                Err(JobError::Retry(e.to_string()))
            }
        }
    }
}
