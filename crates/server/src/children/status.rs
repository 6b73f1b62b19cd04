//! Keeping the materialised services due (migration `0030`) in step with the facts.
//!
//! - **Incrementally**: every new fact about a registry person queues a `children.services`
//!   job in the fact's own transaction; the job evaluates that person again from what is
//!   committed and replaces their rows. A job rather than the same transaction because the
//!   evaluation reads every fact of the person (the new one is not visible to other
//!   connections before commit), and ingestion should not wait on it; the job is idempotent
//!   (it recomputes from the database, whatever order jobs run in) and retried when it fails.
//! - **In batch**: `inkingi children recompute` streams every registry person under six by id,
//!   reads the facts of a page's id range with one range scan per fact table, evaluates the
//!   page in parallel (rayon) and writes it with multi-row statements, the three stages
//!   overlapping; then mothers; then removes whatever it did not write again (children who
//!   turned six).
//!
//! Only the occurrences a reader needs are stored ([`stored_occurrence`]): most of a child's
//! evaluated occurrences are history (a weighing of last year, a dose given on time), which
//! no reader of the table asks for and which made up nine rows in ten.
//!
//! - **Registry changes** (a child registered, a birth registration number, a move): the worker
//!   follows the registry's events ([`follow_registry`]) and queues the same job for everyone in
//!   the households touched.
//!
//! Both paths call the same pure evaluator ([`services_of`]); SQL only stores and counts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Months, NaiveDate, Timelike, Utc};
use inkingi_domain::children::growth::{MeasuredPosition, Sex};
use inkingi_domain::children::indicators::{
    ever_lacking, grade_code, latest_growth, missing_doses, Occurrence, Visit,
};
use inkingi_domain::children::schedule::{FactKind, Schedules, ServiceStatus, Status};
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::BirthDate;
use inkingi_interop::worker::{JobContext, JobError, JobHandler};
use inkingi_store::child_status::{ChildRow, Evaluated, IndicatorBase, StatusRow, Synced};
use inkingi_store::children::{ChildFacts, MeasurementKind, PersonFacts};
use inkingi_store::dci_notify::EventPos;
use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::{Store, UnitOfWork};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::services::{schedules, services_of, Subject};
use crate::error::{ApiError, ApiResult};

/// Re-evaluates the services of these registry persons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesJob {
    pub person_ids: Vec<Uuid>,
}

impl Job for ServicesJob {
    const KIND: &'static str = "children.services";
    const QUEUE: &'static str = "children";
}

/// Queues the re-evaluation of `person` in the caller's transaction (call it with each new
/// fact about a registry person).
pub async fn services_changed(store: &Store, uow: &mut UnitOfWork, person: Uuid) -> ApiResult<()> {
    let job = NewJob::of(&ServicesJob {
        person_ids: vec![person],
    })?;
    store.jobs().enqueue(uow, job).await?;
    Ok(())
}

/// Runs `children.services` jobs.
#[derive(Debug, Clone, Default)]
pub struct ServicesHandler;

#[async_trait::async_trait]
impl JobHandler for ServicesHandler {
    fn kind(&self) -> &'static str {
        ServicesJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let job: ServicesJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", ServicesJob::KIND)))?;
        let today = chrono::Utc::now().date_naive();
        refresh(&ctx.store, &job.person_ids, today)
            .await
            .map_err(|e| JobError::retry(e.to_string()))
    }
}

/// The daily batch recompute: statuses move with time (a recurring service opens its next
/// period), and changes made while no worker followed the registry are caught up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecomputeJob {
    /// The Kigali day it is for: one job per day however many workers queue it.
    pub day: NaiveDate,
}

impl Job for RecomputeJob {
    const KIND: &'static str = "children.recompute";
    const QUEUE: &'static str = "children";
    const MAX_ATTEMPTS: u32 = 3;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("children.recompute:{}", self.day))
    }
}

/// Local hour (Kigali) after which the day's recompute is queued: early, so that the SMS
/// planner (08:00 by default) reads the day's statuses.
pub const RECOMPUTE_AT_HOUR: u32 = 1;

/// Queues the day's recompute once the Kigali time is past [`RECOMPUTE_AT_HOUR`]; true when
/// it is time (the job is queued once a day whatever the number of calls).
pub async fn queue_daily_recompute(store: &Store, now: DateTime<Utc>) -> ApiResult<bool> {
    let local =
        now + chrono::Duration::seconds(i64::from(inkingi_interop::sms::RWANDA_OFFSET_SECS));
    if local.hour() < RECOMPUTE_AT_HOUR {
        return Ok(false);
    }
    let job = NewJob::of(&RecomputeJob {
        day: local.date_naive(),
    })?;
    store.jobs().enqueue_now(job).await?;
    Ok(true)
}

/// Runs `children.recompute` jobs: the whole batch, as `inkingi children recompute` does.
#[derive(Debug, Clone, Default)]
pub struct RecomputeHandler;

#[async_trait::async_trait]
impl JobHandler for RecomputeHandler {
    fn kind(&self) -> &'static str {
        RecomputeJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let _: RecomputeJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", RecomputeJob::KIND)))?;
        let today = Utc::now().date_naive();
        let sum = recompute_all(&ctx.store, today, 5000, |_| {})
            .await
            .map_err(|e| JobError::retry(e.to_string()))?;
        tracing::info!(
            children = sum.children,
            rows = sum.rows,
            "services due recomputed"
        );
        Ok(())
    }
}

/// Evaluates these persons again and replaces their rows, in one transaction. A person no
/// longer in the registry (or with nothing due) is left with no rows.
pub async fn refresh(store: &Store, ids: &[Uuid], today: NaiveDate) -> ApiResult<()> {
    let national = AreaScope::national();
    let mut facts: HashMap<Uuid, PersonFacts> = store
        .children()
        .facts_of_people(&national, ids)
        .await?
        .into_iter()
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(p) = store.registry().person(&national, *id).await? else {
            out.push(Evaluated {
                person_id: *id,
                rows: Vec::new(),
                base: None,
            });
            continue;
        };
        let births = children_births(store, &p).await?;
        let person = Person {
            id: *id,
            village: p.person.village.as_ref().map(|v| v.as_str().to_string()),
            sex: sex_of(&p.person.data.sex.to_string()),
            who: Subject::of(&p),
            alive: p.person.died_on.is_none(),
        };
        let f = facts.remove(id).unwrap_or_default();
        out.push(evaluate_person(
            &person,
            &ChildFacts::from(&f),
            &births,
            today,
        )?);
    }
    let mut uow = store.begin().await?;
    store.child_status().replace(&mut uow, &out).await?;
    uow.commit().await?;
    Ok(())
}

/// Birth dates of a person's registry children in the same household (for a mother's PNC).
async fn children_births(
    store: &Store,
    p: &inkingi_store::registry::PersonRecord,
) -> ApiResult<Vec<BirthDate>> {
    let Some(h) = p.person.household_id else {
        return Ok(Vec::new());
    };
    let members = store.registry().members(&AreaScope::national(), h).await?;
    Ok(members
        .into_iter()
        .filter(|m| m.mother_id == Some(p.person.id))
        .filter_map(|m| m.person.data.birth_date)
        .collect())
}

/// Who is evaluated: the few fields the schedules and the indicators need.
struct Person {
    id: Uuid,
    village: Option<String>,
    sex: Option<Sex>,
    who: Subject,
    alive: bool,
}

fn sex_of(code: &str) -> Option<Sex> {
    match code {
        "F" => Some(Sex::Female),
        "M" => Some(Sex::Male),
        _ => None,
    }
}

/// The rows and indicator inputs of one person on `today` (pure).
fn evaluate_person(
    p: &Person,
    f: &ChildFacts,
    births: &[BirthDate],
    today: NaiveDate,
) -> ApiResult<Evaluated> {
    if !p.alive {
        return Ok(Evaluated {
            person_id: p.id,
            rows: Vec::new(),
            base: None,
        });
    }
    let statuses = services_of(&p.who, f, births, today)?;
    let base = match p.who.birth_date.map(|b| b.midpoint()) {
        Some(birth) if under_six(birth, today) => {
            Some(base(schedules()?, p, birth, &statuses, f, today))
        }
        _ => None,
    };
    let all = schedules()?;
    let birth = base.as_ref().map(|b| b.birth_date);
    Ok(Evaluated {
        person_id: p.id,
        rows: rows(p, &statuses, today, |s| {
            stored_occurrence(all, s, birth, today)
        }),
        base,
    })
}

fn under_six(birth: NaiveDate, today: NaiveDate) -> bool {
    birth <= today
        && birth
            .checked_add_months(Months::new(72))
            .is_some_and(|s| today < s)
}

/// Whether an evaluated occurrence is stored. The table serves its readers, not history:
/// - the worklist and the SMS planner read occurrences not completed and not closed; one
///   completed, or closed before `today`, can never be overdue on a later day;
/// - the 12/24-month immunisation drill-down reads the doses [`missing_doses`] could list
///   ([`ever_lacking`]): a dose given by both birthdays never is, so leaving it out changes no
///   answer (the counts themselves are in `child_indicator_base`).
///
/// The rest, most of an older child's rows (every past weighing, vitamin A round and dose
/// given on time), is history that the per-child API and page evaluate on the fly. `birth`:
/// the birth date the indicator base holds (a child under six), else `None`.
pub fn stored_occurrence(
    all: &Schedules,
    s: &ServiceStatus,
    birth: Option<NaiveDate>,
    today: NaiveDate,
) -> bool {
    let open = s.completed_on.is_none() && s.window.closes.is_none_or(|c| c >= today);
    let dose = || Occurrence {
        schedule: &s.schedule,
        service: &s.service,
        due_by: s.window.due_by,
        completed_on: s.completed_on,
    };
    open || birth.is_some_and(|b| ever_lacking(all, &dose(), b))
}

/// One row per stored occurrence (twins' PNC visits are one visit of their mother).
fn rows(
    p: &Person,
    statuses: &[ServiceStatus],
    today: NaiveDate,
    stored: impl Fn(&ServiceStatus) -> bool,
) -> Vec<StatusRow> {
    let mut seen = HashSet::new();
    statuses
        .iter()
        .filter(|s| stored(s))
        .filter(|s| seen.insert((s.schedule.as_str(), s.service.as_str(), s.occurrence)))
        .map(|s| StatusRow {
            person_id: p.id,
            schedule: s.schedule.clone(),
            service: s.service.clone(),
            occurrence: s.occurrence,
            schedule_version: s.schedule_version.clone(),
            village_code: p.village.clone(),
            status: s.status,
            window: s.window,
            completed_on: s.completed_on,
            evaluated_on: today,
        })
        .collect()
}

/// What the indicators count about a child (see docs/CHILDREN.md, "Indicators").
fn base(
    all: &Schedules,
    p: &Person,
    birth: NaiveDate,
    statuses: &[ServiceStatus],
    f: &ChildFacts,
    today: NaiveDate,
) -> IndicatorBase {
    let occ = || {
        statuses.iter().map(|s| Occurrence {
            schedule: &s.schedule,
            service: &s.service,
            due_by: s.window.due_by,
            completed_on: s.completed_on,
        })
    };
    let fic = |months| missing_doses(all, occ(), birth, months, today).map(|m| m.is_empty());
    let done = |kind: FactKind| {
        statuses.iter().any(|s| {
            s.status == Status::Completed
                && all
                    .service(&s.schedule, &s.service)
                    .is_some_and(|v| v.fact == kind)
        })
    };
    let growth = p.sex.and_then(|sex| latest_growth(sex, birth, &visits(f)));
    IndicatorBase {
        person_id: p.id,
        village_code: p.village.clone(),
        birth_date: birth,
        fic12: fic(12),
        fic24: fic(24),
        growth_on: growth.map(|g| g.on),
        stunting: growth.and_then(|g| g.stunting).map(grade_code),
        wasting: growth.and_then(|g| g.wasting).map(grade_code),
        birth_registered: done(FactKind::BirthRegistration),
        enrolled: done(FactKind::PreprimaryEnrolment),
        evaluated_on: today,
    }
}

/// Measurements grouped into visits by day (weights in kg, lengths in cm as stored).
fn visits(f: &ChildFacts) -> Vec<Visit> {
    let mut by_day: std::collections::BTreeMap<NaiveDate, Visit> = Default::default();
    for m in &f.measurements {
        let v = by_day.entry(m.on).or_insert(Visit {
            on: m.on,
            weight_kg: None,
            length_cm: None,
        });
        match m.kind {
            MeasurementKind::Weight => v.weight_kg = Some(m.value),
            MeasurementKind::Length => v.length_cm = Some((m.value, MeasuredPosition::Lying)),
            MeasurementKind::Height => v.length_cm = Some((m.value, MeasuredPosition::Standing)),
            _ => {}
        }
    }
    by_day.into_values().collect()
}

/// A registry child of the batch, evaluated (pure; run in parallel).
fn evaluate_row(c: &ChildRow, f: &ChildFacts, today: NaiveDate) -> ApiResult<Option<Evaluated>> {
    let Some(birth) = c
        .birth_date
        .as_deref()
        .and_then(|b| BirthDate::parse(b).ok())
    else {
        return Ok(None);
    };
    if !under_six(birth.midpoint(), today) {
        return Ok(None);
    }
    let p = Person {
        id: c.id,
        village: c.village_code.clone(),
        sex: sex_of(&c.sex),
        who: Subject {
            birth_date: Some(birth),
            birth_registered: c.birth_registration.is_some(),
        },
        alive: true,
    };
    evaluate_person(&p, f, &[], today).map(Some)
}

/// A page of the batch: the children after `after` in id order, and the facts of their id
/// range.
struct Page {
    after: Option<Uuid>,
    kids: Vec<ChildRow>,
    facts: HashMap<Uuid, ChildFacts>,
}

/// Reads the pages of children born from `born_from` (a prefix bound) into `tx`, until the
/// last one, an error (sent on) or the receiver gone.
async fn read_pages(
    store: Store,
    born_from: String,
    page: u32,
    tx: tokio::sync::mpsc::Sender<ApiResult<Page>>,
) {
    let mut after = None;
    loop {
        let next = read_page(&store, &born_from, after, page).await;
        if let Ok(Some(p)) = &next {
            after = p.kids.last().map(|k| k.id);
        }
        let item = match next {
            Ok(None) => return,
            Ok(Some(p)) => Ok(p),
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

async fn read_page(
    store: &Store,
    born_from: &str,
    after: Option<Uuid>,
    page: u32,
) -> ApiResult<Option<Page>> {
    let status = store.child_status();
    let kids = status.children_page(born_from, after, page).await?;
    let (Some(first), Some(last)) = (kids.first(), kids.last()) else {
        return Ok(None);
    };
    let facts = status.facts_between(first.id, last.id).await?;
    Ok(Some(Page { after, kids, facts }))
}

/// Evaluates a page in parallel (pure).
fn evaluate_page(
    kids: &[ChildRow],
    facts: &HashMap<Uuid, ChildFacts>,
    today: NaiveDate,
) -> ApiResult<Vec<Evaluated>> {
    let none = ChildFacts::default();
    kids.par_iter()
        .map(|k| evaluate_row(k, facts.get(&k.id).unwrap_or(&none), today))
        .filter_map(Result::transpose)
        .collect()
}

/// What a full recompute did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecomputeSummary {
    pub children: u64,
    pub mothers: u64,
    /// Occurrences stored for the children (whether written this time or unchanged).
    pub rows: u64,
    /// Rows written because they were new or changed (occurrences and indicator bases).
    pub written: u64,
    /// Rows removed: occurrences no longer stored, people no longer followed.
    pub removed: u64,
    pub seconds: f64,
}

impl RecomputeSummary {
    fn add(&mut self, s: Synced) {
        self.written += s.written;
        self.removed += s.removed;
    }
}

/// Everyone under six, then mothers, evaluated on `today`; `page` children at a time.
/// `progress` is told how many children are done so far.
pub async fn recompute_all(
    store: &Store,
    today: NaiveDate,
    page: u32,
    progress: impl Fn(u64),
) -> ApiResult<RecomputeSummary> {
    let started = Instant::now();
    let mut sum = RecomputeSummary::default();
    // Birth dates are text (possibly only a year): a prefix bound, checked exactly after.
    let six_ago = today.checked_sub_months(Months::new(72)).unwrap_or(today);
    let born_from = format!("{:04}", six_ago.year());
    let status = store.child_status();
    // Mothers: an ongoing pregnancy, or a child born in the last ten weeks. Known first, so
    // that the children's pass leaves their rows alone.
    let ten_weeks = today
        .checked_sub_days(chrono::Days::new(70))
        .unwrap_or(today);
    let mothers = status.mothers(&ten_weeks.to_string()).await?;
    let keep: Arc<HashSet<Uuid>> = Arc::new(mothers.iter().copied().collect());
    // Three stages on the machine's cores: a task reads pages (children, then their facts by
    // one range scan per table), rayon evaluates a page while the next is read, and a task
    // writes the last page meanwhile (only what changed).
    let (tx, mut pages) = tokio::sync::mpsc::channel(2);
    let reader = tokio::spawn(read_pages(store.clone(), born_from, page, tx));
    let mut writing: Option<tokio::task::JoinHandle<ApiResult<Synced>>> = None;
    let mut end = None;
    while let Some(next) = pages.recv().await {
        let Page { after, kids, facts } = next?;
        let last = kids.last().map(|k| k.id);
        let evaluated = tokio::task::spawn_blocking(move || evaluate_page(&kids, &facts, today))
            .await
            .map_err(ApiError::internal)??;
        sum.children += evaluated.len() as u64;
        sum.rows += evaluated.iter().map(|e| e.rows.len() as u64).sum::<u64>();
        if let Some(w) = writing.take() {
            sum.add(w.await.map_err(ApiError::internal)??);
        }
        writing = Some(tokio::spawn(sync(
            store.clone(),
            after,
            last,
            evaluated,
            keep.clone(),
        )));
        end = last;
        progress(sum.children);
    }
    reader.await.map_err(ApiError::internal)?;
    if let Some(w) = writing.take() {
        sum.add(w.await.map_err(ApiError::internal)??);
    }
    // Whoever comes after the last child.
    sum.add(sync(store.clone(), end, None, Vec::new(), keep).await?);
    for chunk in mothers.chunks(500) {
        refresh(store, chunk, today).await?;
    }
    sum.mothers = mothers.len() as u64;
    sum.seconds = started.elapsed().as_secs_f64();
    Ok(sum)
}

/// Writes what changed for the ids in `(after, last]` in one transaction.
async fn sync(
    store: Store,
    after: Option<Uuid>,
    last: Option<Uuid>,
    evaluated: Vec<Evaluated>,
    keep: Arc<HashSet<Uuid>>,
) -> ApiResult<Synced> {
    let mut uow = store.begin().await?;
    let done = store
        .child_status()
        .sync_range(&mut uow, after, last, &evaluated, &keep)
        .await?;
    uow.commit().await?;
    Ok(done)
}

/// Registry events read at a time by [`follow_registry`].
const EVENT_BATCH: u32 = 500;

/// Queues the re-evaluation of everyone in the households the registry events after `pos`
/// touched (a child registered, a birth registration number, a move, a death; the household's
/// mother for her postnatal visits). Returns the position reached and the people queued.
pub async fn follow_step(store: &Store, pos: EventPos) -> ApiResult<(EventPos, usize)> {
    let feed = store.lookup_feed();
    let events = feed.events_after(pos, EVENT_BATCH).await?;
    let Some(last) = events.last().map(|e| e.pos) else {
        return Ok((pos, 0));
    };
    let mut households: Vec<Uuid> = events.iter().map(|e| e.household_id).collect();
    households.sort_unstable();
    households.dedup();
    // Members who left are named by their own events.
    let mut people: Vec<Uuid> = events
        .iter()
        .filter(|e| e.entity == "member")
        .map(|e| e.entity_id)
        .collect();
    people.extend(
        feed.people(&[], &households)
            .await?
            .into_iter()
            .map(|p| p.id),
    );
    people.sort_unstable();
    people.dedup();
    for chunk in people.chunks(500) {
        let job = NewJob::of(&ServicesJob {
            person_ids: chunk.to_vec(),
        })?;
        store.jobs().enqueue_now(job).await?;
    }
    Ok((last, people.len()))
}

/// Follows the registry's events from the newest one at start, every `every`, until
/// `shutdown`, and queues the daily recompute. Changes made while no worker ran are left to
/// that recompute; several
/// workers following at once queue the same re-evaluations twice, which is harmless.
pub async fn follow_registry(store: Store, every: Duration, shutdown: CancellationToken) {
    let mut pos = match store.lookup_feed().start_position().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow registry events for services due");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = queue_daily_recompute(&store, Utc::now()).await {
            tracing::warn!(error = %e, "cannot queue the day's recompute of services due");
        }
        loop {
            match follow_step(&store, pos).await {
                Ok((next, n)) if n > 0 => pos = next,
                Ok((next, _)) => {
                    pos = next;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "registry events for services due; will retry");
                    break;
                }
            }
        }
    }
}
