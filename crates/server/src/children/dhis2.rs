//! Pulling the child record's facts from DHIS2 (the HMIS) through its tracker API.
//!
//! A sync walks, for each mapped program, first its tracked entities and then its events, each
//! a stream ordered by `updatedAt` with a cursor in the database (`connector_cursors`). A page
//! is stored in one unit of work together with the cursor that passes it, so a sync cut short
//! (DHIS2 down, the worker stopped) resumes after the last stored page, and a page taken again
//! stores nothing twice: every record goes through the same path as FHIR resources
//! ([`Ingest`]), idempotent by (source system `dhis2`, source id).
//!
//! - A tracked entity is a Patient (source id: its UID): linked to a registry person when
//!   certain, else kept unlinked with a row in the review queue (`dhis2_patient`). Its mother's
//!   national ID, when the mapping names that attribute, makes a related person (`UID/mother`).
//!   An enrolment in a program whose incident date is the LMP is a pregnancy (source id: the
//!   enrolment UID).
//! - Each mapped data value of an event is one fact (source id `EVENT/DATA_ELEMENT`); an event
//!   of a contact stage is one ANC or PNC contact (source id: the event UID).
//!
//! Values Inkingi refuses (an implausible weight, a date before the birth) are skipped, counted
//! and logged with the event; they do not stop the sync.
//!
//! The cursor: the stream is asked for `updatedAfter` one millisecond before the high-water mark
//! (so it works whether DHIS2 compares inclusively or not); when a page moves the mark, the next
//! page is page 1 at the new mark, else (a full page of equal times) the next page number at the
//! same mark. Records updated while a sync runs get later times and come at the end.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_domain::children::schedule::{Schedules, VaccineCodes};
use inkingi_domain::identity::{AreaScope, Username};
use inkingi_domain::registry::NationalId;
use inkingi_interop::breaker::{self, Breakers};
use inkingi_interop::dhis2::{
    format_stamp, parse_stamp, CallError, Dhis2Client, Dhis2Connector, Event, Mapping, Program,
    Subject, TrackedEntity,
};
use inkingi_interop::worker::{JobContext, JobError, JobHandler};
use inkingi_store::children::{MeasurementKind, Written};
use inkingi_store::connectors::Cursor;
use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::{Store, UnitOfWork};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::fhir::parse::{
    Body, EncounterIn, ImmunizationIn, Incoming, ObservationCode, ObservationIn, PersonIn,
    SID_BIRTH_REGISTRATION, SID_NATIONAL_ID,
};
use super::ingest::Ingest;
use crate::auth::Principal;

/// The connector's name in cursors, metrics and breakers, and the source system of its facts.
pub const CONNECTOR: &str = "dhis2";
/// Identifier system of a mother's phone number carried on a child's record.
pub const SID_PHONE: &str = "urn:inkingi:phone";

/// Runs one sync of every stream. `slot` makes the periodic schedule enqueue one job per
/// period however many workers run the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dhis2SyncJob {
    #[serde(default)]
    pub slot: Option<i64>,
}

impl Job for Dhis2SyncJob {
    const KIND: &'static str = "dhis2.sync";
    const QUEUE: &'static str = "connectors";
    /// With the default backoff this keeps trying for about a day.
    const MAX_ATTEMPTS: u32 = 25;

    fn idempotency_key(&self) -> Option<String> {
        self.slot.map(|s| format!("dhis2-sync:{s}"))
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    pub pages: u64,
    pub tracked_entities: u64,
    pub events: u64,
    /// Records (persons and facts) stored for the first time.
    pub created: u64,
    /// Records already stored (a page taken again).
    pub existing: u64,
    /// Records Inkingi refused (see the log for each).
    pub refused: u64,
    /// Events not mapped (stage), deleted, not done yet (no date) or of a person DHIS2 no
    /// longer has.
    pub skipped: u64,
}

/// Why a sync stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncError {
    /// DHIS2 failed in a way worth another attempt.
    Transient(String),
    /// DHIS2 refused the request (token, parameters): fix the configuration.
    Refused(String),
    /// The circuit of the DHIS2 host is open: try again after this.
    Open(Duration),
    /// The database failed.
    Store(String),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Transient(m) | SyncError::Refused(m) | SyncError::Store(m) => f.write_str(m),
            SyncError::Open(d) => write!(f, "circuit open for another {d:?}"),
        }
    }
}

impl From<inkingi_store::StoreError> for SyncError {
    fn from(e: inkingi_store::StoreError) -> Self {
        SyncError::Store(e.to_string())
    }
}

impl From<crate::error::ApiError> for SyncError {
    fn from(e: crate::error::ApiError) -> Self {
        SyncError::Store(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TrackedEntities,
    Events,
}

/// A configured DHIS2 sync.
#[derive(Debug, Clone)]
pub struct Dhis2Sync {
    client: Dhis2Client,
    mapping: Arc<Mapping>,
    vaccines: &'static VaccineCodes,
    principal: Principal,
    system: String,
}

impl Dhis2Sync {
    pub fn new(connector: Dhis2Connector, mapping: Mapping) -> Result<Dhis2Sync, String> {
        connector.check()?;
        let vaccines = Schedules::embedded()
            .map(|s| &s.vaccines)
            .map_err(|e| e.to_string())?;
        let system = breaker::system_of(&connector.url);
        let client = Dhis2Client::new(connector).map_err(|e| e.to_string())?;
        let username = Username::parse(CONNECTOR).map_err(|e| e.to_string())?;
        Ok(Dhis2Sync {
            client,
            mapping: Arc::new(mapping),
            vaccines,
            principal: Principal::connector(username),
            system,
        })
    }

    /// Takes every stream up to what DHIS2 holds now.
    pub async fn run(&self, store: &Store) -> Result<SyncSummary, SyncError> {
        let mut sum = SyncSummary::default();
        for kind in [Kind::TrackedEntities, Kind::Events] {
            for program in &self.mapping.programs {
                self.stream(store, program, kind, &mut sum).await?;
            }
        }
        Ok(sum)
    }

    pub(crate) fn client(&self) -> &Dhis2Client {
        &self.client
    }

    pub(crate) fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    pub(crate) fn system(&self) -> &str {
        &self.system
    }

    /// A call through the circuit breaker of the DHIS2 host.
    pub(crate) async fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, CallError>>,
    ) -> Result<T, SyncError> {
        let breakers = Breakers::global();
        if let Err(wait) = breakers.before_call(CONNECTOR, &self.system) {
            breaker::count_deferred(CONNECTOR, &self.system);
            return Err(SyncError::Open(wait));
        }
        match f.await {
            Ok(v) => {
                breakers.success(CONNECTOR, &self.system);
                Ok(v)
            }
            Err(CallError::Transient(m)) => {
                breakers.failure(CONNECTOR, &self.system);
                Err(SyncError::Transient(m))
            }
            Err(CallError::Refused(m)) => {
                breaker::count_failed(CONNECTOR, &self.system);
                Err(SyncError::Refused(m))
            }
        }
    }

    async fn stream(
        &self,
        store: &Store,
        program: &Program,
        kind: Kind,
        sum: &mut SyncSummary,
    ) -> Result<(), SyncError> {
        let name = match kind {
            Kind::TrackedEntities => format!("tracked_entities:{}", program.uid),
            Kind::Events => format!("events:{}", program.uid),
        };
        let page_size = self.client.connector().page_size as usize;
        let cursors = store.connector_cursors();
        loop {
            let cur = cursors.get(CONNECTOR, &name).await?;
            // One millisecond before the mark: the records at the mark come again (stored
            // already, so nothing is written twice) whether DHIS2 compares with > or >=.
            let after = cur
                .as_ref()
                .and_then(|c| parse_stamp(&c.position))
                .map(|t| format_stamp(t - chrono::Duration::milliseconds(1)));
            let page_no = cur.as_ref().map_or(1, |c| c.page);
            // The page (and the persons its events name that were never stored) is read
            // before the unit of work begins: no call to DHIS2 holds the database's writer.
            let mut ingest = Ingest::on(store, self.principal.clone(), CONNECTOR);
            let (mut uow, taken, latest) = match kind {
                Kind::TrackedEntities => {
                    let page = self
                        .call(
                            self.client
                                .tracked_entities(&program.uid, after.as_deref(), page_no),
                        )
                        .await?;
                    let mut uow = store.begin().await?;
                    for te in &page.items {
                        sum.tracked_entities += 1;
                        self.tracked_entity(&mut ingest, &mut uow, te, program, sum)
                            .await?;
                    }
                    let latest = newest(page.items.iter().map(|t| &t.updated_at));
                    (uow, page.items.len(), latest)
                }
                Kind::Events => {
                    let page = self
                        .call(self.client.events(&program.uid, after.as_deref(), page_no))
                        .await?;
                    let people = self.unseen_people(store, &page.items, program).await?;
                    let mut uow = store.begin().await?;
                    for te in &people {
                        self.tracked_entity(&mut ingest, &mut uow, te, program, sum)
                            .await?;
                    }
                    for ev in &page.items {
                        sum.events += 1;
                        self.event(&mut ingest, &mut uow, ev, sum).await?;
                    }
                    let latest = newest(page.items.iter().map(|e| &e.updated_at));
                    (uow, page.items.len(), latest)
                }
            };
            sum.pages += 1;
            if let Some(next) = next_cursor(cur.as_ref(), latest, page_no, taken >= page_size) {
                cursors.advance(&mut uow, CONNECTOR, &name, &next).await?;
            }
            uow.commit().await?;
            if taken < page_size {
                return Ok(());
            }
        }
    }

    /// Stores one record through the child record's ingest path, counting the outcome.
    async fn put(
        &self,
        ingest: &mut Ingest<'_>,
        uow: &mut UnitOfWork,
        inc: Incoming,
        sum: &mut SyncSummary,
    ) -> Result<bool, SyncError> {
        match ingest.one(uow, &inc, None).await? {
            Ok(stored) => {
                match stored.written {
                    Written::Created(_) => sum.created += 1,
                    Written::Existing(_) => sum.existing += 1,
                }
                Ok(true)
            }
            Err(issues) => {
                sum.refused += 1;
                let why: Vec<String> = issues
                    .iter()
                    .map(|i| format!("{}: {}", i.expression, i.diagnostics))
                    .collect();
                tracing::warn!(record = %inc.at, issues = ?why, "DHIS2 record refused");
                Ok(false)
            }
        }
    }

    fn incoming(&self, source_id: String, at: String, body: Body) -> Incoming {
        let resource_type = match &body {
            Body::Patient(_) => "Patient",
            Body::RelatedPerson(_) => "RelatedPerson",
            Body::Immunization(_) => "Immunization",
            Body::Observation(_) => "Observation",
            Body::Encounter(_) => "Encounter",
        };
        Incoming {
            resource_type,
            source_id,
            source_system: Some(CONNECTOR.to_string()),
            body,
            at,
        }
    }

    /// Where a record of `org_unit` is filed, and the registry people it is compared with.
    fn place(&self, ingest: &mut Ingest<'_>, org_unit: Option<&str>, for_linking: bool) {
        let area = org_unit.and_then(|ou| self.mapping.area(ou));
        let scope = match (&area, for_linking) {
            (Some(a), true) => AreaScope::areas([widen(a, self.mapping.link_within)])
                .unwrap_or_else(|_| AreaScope::national()),
            _ => AreaScope::national(),
        };
        ingest.place(scope, area);
    }

    async fn tracked_entity(
        &self,
        ingest: &mut Ingest<'_>,
        uow: &mut UnitOfWork,
        te: &TrackedEntity,
        program: &Program,
        sum: &mut SyncSummary,
    ) -> Result<(), SyncError> {
        if te.deleted {
            sum.skipped += 1;
            return Ok(());
        }
        let a = &self.mapping.attributes;
        let uid = &te.tracked_entity;
        let attr = |k: &Option<String>| te.attribute(k.as_deref()).map(str::to_string);
        let mut identifiers = Vec::new();
        if let Some(nid) = attr(&a.national_id) {
            push_national_id(&mut identifiers, &nid, uid);
        }
        if let Some(brn) = attr(&a.birth_registration) {
            identifiers.push((SID_BIRTH_REGISTRATION.to_string(), brn));
        }
        let person = PersonIn {
            identifiers,
            given: attr(&a.given_name),
            family: attr(&a.family_name),
            sex: attr(&a.sex).and_then(|s| self.mapping.sex_of(&s).map(str::to_string)),
            birth_date: attr(&a.birth_date)
                .and_then(|b| parse_stamp(&b))
                .map(|t| t.date().to_string()),
            patient: None,
            relationship: None,
        };
        self.place(ingest, te.org_unit.as_deref(), true);
        let at = format!("trackedEntity {uid}");
        let inc = self.incoming(uid.clone(), at.clone(), Body::Patient(person));
        if !self.put(ingest, uow, inc, sum).await? {
            return Ok(());
        }
        let patient = format!("Patient/{uid}");
        if program.subject == Subject::Child {
            self.mother(ingest, uow, te, &patient, sum).await?;
        }
        if program.enrollment_date.as_deref() == Some("lmp") {
            for e in te
                .enrollments
                .iter()
                .filter(|e| e.program == program.uid && !e.deleted)
            {
                let Some(lmp) = e.occurred_at.as_deref().and_then(parse_stamp) else {
                    continue;
                };
                let o = ObservationIn {
                    subject: patient.clone(),
                    code: ObservationCode::LastMenstrualPeriod,
                    loinc: "8665-2".into(),
                    value: None,
                    unit: "",
                    date: lmp.date(),
                    value_path: format!("enrollment {}.occurredAt", e.enrollment),
                };
                let at = format!("enrollment {}", e.enrollment);
                let inc = self.incoming(e.enrollment.clone(), at, Body::Observation(o));
                self.put(ingest, uow, inc, sum).await?;
            }
        }
        Ok(())
    }

    /// The mother named on a child's record by her national ID (and phone).
    async fn mother(
        &self,
        ingest: &mut Ingest<'_>,
        uow: &mut UnitOfWork,
        te: &TrackedEntity,
        patient: &str,
        sum: &mut SyncSummary,
    ) -> Result<(), SyncError> {
        let a = &self.mapping.attributes;
        let Some(nid) = te.attribute(a.mother_national_id.as_deref()) else {
            return Ok(());
        };
        let mut identifiers = Vec::new();
        push_national_id(&mut identifiers, nid, &te.tracked_entity);
        if identifiers.is_empty() {
            return Ok(());
        }
        if let Some(phone) = te.attribute(a.mother_phone.as_deref()) {
            identifiers.push((SID_PHONE.to_string(), phone.to_string()));
        }
        let p = PersonIn {
            identifiers,
            given: None,
            family: None,
            sex: Some("F".into()),
            birth_date: None,
            patient: Some(patient.to_string()),
            relationship: Some("mother".into()),
        };
        let uid = &te.tracked_entity;
        let inc = self.incoming(
            format!("{uid}/mother"),
            format!("trackedEntity {uid} (mother)"),
            Body::RelatedPerson(p),
        );
        self.put(ingest, uow, inc, sum).await.map(|_| ())
    }

    async fn event(
        &self,
        ingest: &mut Ingest<'_>,
        uow: &mut UnitOfWork,
        ev: &Event,
        sum: &mut SyncSummary,
    ) -> Result<(), SyncError> {
        let done = !matches!(
            ev.status.as_deref(),
            Some("SCHEDULE" | "SKIPPED" | "OVERDUE")
        );
        let stage = self.mapping.stage(&ev.program_stage);
        let on = ev
            .occurred_at
            .as_deref()
            .and_then(parse_stamp)
            .map(|t| t.date());
        let (Some(stage), Some(on), Some(te), true, false) =
            (stage, on, ev.tracked_entity.as_deref(), done, ev.deleted)
        else {
            sum.skipped += 1;
            return Ok(());
        };
        let patient = format!("Patient/{te}");
        if !self.known(ingest, te).await? {
            // DHIS2 no longer has the person (see `unseen_people`).
            sum.skipped += 1;
            return Ok(());
        }
        self.place(ingest, ev.org_unit.as_deref(), false);
        let value = |de: &str| {
            ev.data_values
                .iter()
                .find(|v| v.data_element == de)
                .and_then(|v| v.value.as_deref())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let at = |de: &str| format!("event {} dataValue {de}", ev.event);
        for im in &stage.immunizations {
            let given = value(&im.data_element)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1"));
            if !given {
                continue;
            }
            let system = im.system_uri();
            let body = Body::Immunization(ImmunizationIn {
                patient: patient.clone(),
                vaccine_system: system.into(),
                vaccine_code: im.code.clone(),
                vaccine: self.vaccines.map(system, &im.code).map(str::to_string),
                dose: im.dose,
                date: on,
            });
            let id = format!("{}/{}", ev.event, im.data_element);
            let inc = self.incoming(id, at(&im.data_element), body);
            self.put(ingest, uow, inc, sum).await?;
        }
        for ms in &stage.measurements {
            let Some(raw) = value(&ms.data_element) else {
                continue;
            };
            let (Ok(v), Some(kind)) = (raw.parse::<f64>(), MeasurementKind::parse(&ms.kind)) else {
                sum.refused += 1;
                tracing::warn!(record = %at(&ms.data_element), value = raw, "DHIS2 value is not a number");
                continue;
            };
            let body = Body::Observation(ObservationIn {
                subject: patient.clone(),
                code: ObservationCode::Measure(kind),
                loinc: ms.loinc().into(),
                value: Some(ms.normalise(v)),
                unit: if kind == MeasurementKind::Weight {
                    "kg"
                } else {
                    "cm"
                },
                date: on,
                value_path: at(&ms.data_element),
            });
            let id = format!("{}/{}", ev.event, ms.data_element);
            let inc = self.incoming(id, at(&ms.data_element), body);
            self.put(ingest, uow, inc, sum).await?;
        }
        if let Some(kind) = &stage.contact {
            let body = Body::Encounter(EncounterIn {
                subject: patient.clone(),
                kind: kind.clone(),
                date: on,
            });
            let inc = self.incoming(ev.event.clone(), format!("event {}", ev.event), body);
            self.put(ingest, uow, inc, sum).await?;
        }
        Ok(())
    }

    /// The tracked entities named by `events` that were never stored (changed after their
    /// stream was read), as DHIS2 has them now; those it no longer has are left out.
    async fn unseen_people(
        &self,
        store: &Store,
        events: &[Event],
        program: &Program,
    ) -> Result<Vec<TrackedEntity>, SyncError> {
        let mut uids: Vec<&str> = events
            .iter()
            .filter_map(|e| e.tracked_entity.as_deref())
            .collect();
        uids.sort_unstable();
        uids.dedup();
        let mut out = Vec::new();
        for uid in uids {
            let stored = store
                .children()
                .source_person(&AreaScope::national(), CONNECTOR, uid)
                .await?
                .is_some();
            if stored {
                continue;
            }
            if let Some(te) = self
                .call(self.client.tracked_entity(uid, &program.uid))
                .await?
            {
                out.push(te);
            }
        }
        Ok(out)
    }

    /// Whether the person of a tracked entity was stored (before, or in this page).
    async fn known(&self, ingest: &Ingest<'_>, te: &str) -> Result<bool, SyncError> {
        if ingest.knows(&format!("Patient/{te}")) {
            return Ok(true);
        }
        Ok(ingest.source_person_exists(CONNECTOR, te).await?)
    }
}

/// Adds a national ID identifier when it is well formed (a malformed one would refuse the
/// whole person; it is logged and left out instead).
fn push_national_id(identifiers: &mut Vec<(String, String)>, nid: &str, te: &str) {
    match NationalId::parse(nid) {
        Ok(n) => identifiers.push((SID_NATIONAL_ID.to_string(), n.as_str().to_string())),
        Err(e) => tracing::warn!(tracked_entity = te, error = %e, "DHIS2 national ID left out"),
    }
}

/// The latest `updatedAt` of a page.
fn newest<'a>(stamps: impl Iterator<Item = &'a Option<String>>) -> Option<chrono::NaiveDateTime> {
    stamps
        .filter_map(|s| s.as_deref().and_then(parse_stamp))
        .max()
}

/// Where a stream goes on after a page taken at `cur` (page `page_no`, `full` or the last)
/// whose latest update was `newest`: the new mark; or, when a full page did not move the mark
/// (all at one time), the next page at the same mark; `None` when it stays (a last page that
/// did not move the mark is asked again next time, as new records fill it up).
fn next_cursor(
    cur: Option<&Cursor>,
    newest: Option<chrono::NaiveDateTime>,
    page_no: u32,
    full: bool,
) -> Option<Cursor> {
    let newest = format_stamp(newest?);
    match cur {
        Some(c) if newest <= c.position => full.then(|| Cursor {
            position: c.position.clone(),
            page: page_no + 1,
        }),
        _ => Some(Cursor {
            position: newest,
            page: 1,
        }),
    }
}

/// The area at `level` enclosing `area` (the area itself when it is at or above the level).
pub(super) fn widen(area: &AreaCode, level: AreaLevel) -> AreaCode {
    let mut a = area.clone();
    while a.level() > level {
        match a.parent() {
            Some(p) => a = p,
            None => break,
        }
    }
    a
}

/// Runs `dhis2.sync` jobs.
#[derive(Debug, Clone)]
pub struct Dhis2SyncHandler {
    sync: Arc<Dhis2Sync>,
}

impl Dhis2SyncHandler {
    pub fn new(sync: Dhis2Sync) -> Self {
        Dhis2SyncHandler {
            sync: Arc::new(sync),
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for Dhis2SyncHandler {
    fn kind(&self) -> &'static str {
        Dhis2SyncJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let _: Dhis2SyncJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", Dhis2SyncJob::KIND)))?;
        match self.sync.run(&ctx.store).await {
            Ok(sum) => {
                tracing::info!(?sum, "DHIS2 sync done");
                Ok(())
            }
            Err(SyncError::Open(after)) => Err(JobError::Defer {
                after,
                reason: format!("circuit of {} is open", self.sync.system),
            }),
            Err(SyncError::Refused(m)) => Err(JobError::Permanent(m)),
            Err(e @ (SyncError::Transient(_) | SyncError::Store(_))) => {
                if ctx.attempt < ctx.max_attempts {
                    breaker::count_retry(CONNECTOR, &self.sync.system);
                }
                Err(JobError::Retry(e.to_string()))
            }
        }
    }
}

/// Enqueues a sync every `every` until `shutdown` (one job per period: the slot is its key).
pub async fn run_schedule(store: Store, every: Duration, shutdown: CancellationToken) {
    let secs = every.as_secs().max(1);
    loop {
        let slot = Utc::now().timestamp() / secs as i64;
        let job = NewJob::of(&Dhis2SyncJob { slot: Some(slot) });
        let queued = match job {
            Ok(job) => store.jobs().enqueue_now(job).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = queued {
            tracing::warn!(error = %e, "cannot queue the DHIS2 sync; will try again");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> Option<chrono::NaiveDateTime> {
        parse_stamp(s)
    }

    #[test]
    fn the_cursor_moves_to_the_newest_or_pages_through_ties() {
        let first = next_cursor(None, t("2026-01-01T00:00:00.005"), 1, true).unwrap();
        assert_eq!(first.position, "2026-01-01T00:00:00.005");
        assert_eq!(first.page, 1);
        // A full page all at the mark: the next page at the same mark.
        let tie = next_cursor(Some(&first), t("2026-01-01T00:00:00.005"), 1, true).unwrap();
        assert_eq!(
            (tie.position.as_str(), tie.page),
            ("2026-01-01T00:00:00.005", 2)
        );
        // The last page, not moving the mark: asked again next time.
        assert_eq!(
            next_cursor(Some(&tie), t("2026-01-01T00:00:00.005"), 2, false),
            None
        );
        let moved = next_cursor(Some(&tie), t("2026-01-01T00:00:01.000"), 2, false).unwrap();
        assert_eq!(moved.page, 1);
        assert_eq!(next_cursor(Some(&moved), None, 1, true), None);
    }

    #[test]
    fn linking_looks_in_the_enclosing_district() {
        let v = AreaCode::parse("11010102").unwrap();
        assert_eq!(widen(&v, AreaLevel::District).as_str(), "11");
        assert_eq!(widen(&v, AreaLevel::Village).as_str(), "11010102");
        let s = AreaCode::parse("1101").unwrap();
        assert_eq!(widen(&s, AreaLevel::Sector).as_str(), "1101");
    }
}
