//! Reminders by SMS: once a day, from the overdue worklist of each community health worker's
//! areas (the same evaluation as `GET /api/v1/worklists/overdue`), the planner queues
//! - to each child's caregiver — the mother, else the guardian, else the household head, the
//!   first living one with a phone — one reminder listing the services overdue;
//! - to each community health worker with a phone, a digest: children overdue in their areas
//!   and how many per service;
//! - to the supervisor — the health workers whose scope (a district) covers the child's
//!   village, else the sector officers of its sector — one escalation for the services still
//!   overdue after `escalate_after` daily reminders (once per service occurrence).
//!
//! Every message is an `sms_messages` row keyed by its cause (`reminder:CHILD:DAY`,
//! `digest:USER:DAY`, `escalation:CHILD:DAY:USER`), so running the planner twice a day queues
//! nothing new; reminder counts move at most once per day. Messages planned inside the quiet
//! hours wait for their end. A caregiver who reached the daily or weekly cap gets no reminder
//! that day (counted as `capped`); the reminder is planned again the next day while the service
//! stays overdue. Beneficiary notifications of the outbox (`notify.beneficiary`) are queued as
//! messages too ([`queue_notifications`]), without caps.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, Timelike, Utc};
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_domain::registry::MemberRole;
use inkingi_interop::sms::{catalogue::LANGUAGES, SmsSettings, RWANDA_OFFSET_SECS};
use inkingi_interop::worker::{JobContext, JobError, JobHandler};
use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::registry::PersonRecord;
use inkingi_store::sms::{NewSms, Recipient, SmsKind, UserContact};
use inkingi_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::services::{worklist, OverdueChild};
use crate::error::ApiResult;

/// Plans the reminders of one day (`day`, Rwanda's date); the day is its idempotency key, so
/// every worker's schedule enqueues one per day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRemindersJob {
    pub day: NaiveDate,
}

impl Job for PlanRemindersJob {
    const KIND: &'static str = "sms.plan";
    const QUEUE: &'static str = "connectors";

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("sms-plan:{}", self.day))
    }
}

/// What one planning run queued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    pub day: Option<NaiveDate>,
    pub health_workers: u64,
    pub children_overdue: u64,
    pub reminders: u64,
    pub digests: u64,
    pub escalations: u64,
    pub notifications: u64,
    /// Messages of this day planned already by an earlier run.
    pub existing: u64,
    /// Caregivers at their daily or weekly cap.
    pub capped: u64,
    /// Children without a caregiver with a phone.
    pub no_phone: u64,
}

/// Rwanda's date at `now`.
pub fn local_day(now: DateTime<Utc>) -> NaiveDate {
    FixedOffset::east_opt(RWANDA_OFFSET_SECS)
        .map_or(now.date_naive(), |o| now.with_timezone(&o).date_naive())
}

/// The planner's inputs.
struct Planner<'a> {
    store: &'a Store,
    settings: &'a SmsSettings,
    day: NaiveDate,
    not_before: DateTime<Utc>,
    supervisors: Vec<UserContact>,
    sum: PlanSummary,
}

/// Plans the day's reminders, digests and escalations, and queues pending beneficiary
/// notifications. Safe to run again: what exists is not queued twice.
pub async fn plan(
    store: &Store,
    settings: &SmsSettings,
    now: DateTime<Utc>,
) -> ApiResult<PlanSummary> {
    let mut supervisors = store.sms().users_with_role(Role::HealthWorker).await?;
    supervisors.extend(store.sms().users_with_role(Role::SectorOfficer).await?);
    let mut p = Planner {
        store,
        settings,
        day: local_day(now),
        not_before: settings.quiet.map_or(now, |q| q.next_allowed(now)),
        supervisors,
        sum: PlanSummary::default(),
    };
    p.sum.day = Some(p.day);
    p.sum.notifications = queue_notifications(store, settings, now).await?;
    let mut reminded = BTreeSet::new();
    for chw in store
        .sms()
        .users_with_role(Role::CommunityHealthWorker)
        .await?
    {
        p.sum.health_workers += 1;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut children = 0u64;
        for area in chw.scope.codes() {
            let list = worklist(store, &chw.scope, area, p.day).await?;
            for child in list.villages.iter().flat_map(|v| v.children.iter()) {
                children += 1;
                for s in &child.overdue {
                    *counts.entry(s.name.clone()).or_default() += 1;
                }
                // A child in two workers' areas is reminded once.
                if reminded.insert(child.person_id) {
                    p.sum.children_overdue += 1;
                    p.remind(child).await?;
                }
            }
        }
        if children > 0 {
            p.digest(&chw, children, &counts).await?;
        }
        audit_plan(store, &chw, children).await?;
    }
    Ok(p.sum)
}

/// Audits that the planner read the worklist of a health worker's areas (as the API's
/// `worklist.read` does for a person).
async fn audit_plan(store: &Store, chw: &UserContact, children: u64) -> ApiResult<()> {
    let mut rec = AuditRecord::new("system", "worklist.read", "user");
    rec.subject_id = Some(chw.username.clone());
    rec.purpose = Some("sms reminders".into());
    rec.fields = vec![format!("children:{children}"), "services_overdue".into()];
    store.audit().append(vec![rec]).await?;
    Ok(())
}

/// A person's language: the registry answer `language` when it is one of the catalogue's,
/// else the configured default.
fn language_of(p: &PersonRecord, default: &str) -> String {
    p.person
        .data
        .answers
        .get("language")
        .and_then(Value::as_str)
        .filter(|l| LANGUAGES.contains(l))
        .unwrap_or(default)
        .to_string()
}

impl Planner<'_> {
    fn scope() -> AreaScope {
        AreaScope::national()
    }

    /// The first of the child's mother, guardian and household head who is alive and has a
    /// phone.
    async fn caregiver(&self, child: Uuid) -> ApiResult<Option<PersonRecord>> {
        let registry = self.store.registry();
        let Some(c) = registry.person(&Self::scope(), child).await? else {
            return Ok(None);
        };
        let reachable =
            |p: &PersonRecord| p.person.died_on.is_none() && !p.person.data.phones.is_empty();
        for id in [c.mother_id, c.guardian_id].into_iter().flatten() {
            if let Some(p) = registry.person(&Self::scope(), id).await? {
                if reachable(&p) {
                    return Ok(Some(p));
                }
            }
        }
        let Some(h) = c.person.household_id else {
            return Ok(None);
        };
        let members = registry.members(&Self::scope(), h).await?;
        Ok(members
            .into_iter()
            .find(|m| m.role == Some(MemberRole::Head) && reachable(m)))
    }

    /// Whether `to` reached the daily or weekly cap.
    async fn capped(&self, to: Recipient) -> ApiResult<bool> {
        let caps = self.settings.caps;
        let sms = self.store.sms();
        let today = sms.count_for(to, self.day, self.day).await?;
        let week_start = self.day.checked_sub_days(Days::new(6)).unwrap_or(self.day);
        let week = sms.count_for(to, week_start, self.day).await?;
        Ok(today >= caps.per_day || week >= caps.per_week)
    }

    fn message(
        &self,
        key: String,
        kind: SmsKind,
        to: Recipient,
        language: String,
        template: &str,
        params: Value,
    ) -> NewSms {
        NewSms {
            source_key: key,
            kind,
            recipient: to,
            language,
            template: template.into(),
            params,
            plan_day: self.day,
            not_before: self.not_before,
        }
    }

    /// The caregiver's reminder, the reminder counts, and escalations that are due.
    async fn remind(&mut self, child: &OverdueChild) -> ApiResult<()> {
        let key = format!("reminder:{}:{}", child.person_id, self.day);
        if self.store.sms().exists(&key).await? {
            self.sum.existing += 1;
            return Ok(());
        }
        let Some(carer) = self.caregiver(child.person_id).await? else {
            self.sum.no_phone += 1;
            return Ok(());
        };
        let to = Recipient::Person(carer.person.id);
        if self.capped(to).await? {
            self.sum.capped += 1;
            return Ok(());
        }
        let given = child.name.split(' ').next().unwrap_or_default().to_string();
        let services: Vec<&str> = child.overdue.iter().map(|s| s.name.as_str()).collect();
        let m = self.message(
            key,
            SmsKind::Reminder,
            to,
            language_of(&carer, &self.settings.default_language),
            "reminder.overdue",
            json!({"child": given, "services": services}),
        );
        let mut uow = self.store.begin().await?;
        if self.store.sms().queue(&mut uow, &m).await?.is_some() {
            self.sum.reminders += 1;
        }
        let asked: Vec<(&str, u32)> = child
            .overdue
            .iter()
            .map(|s| (s.service.as_str(), s.occurrence))
            .collect();
        let counts = self
            .store
            .sms()
            .remind(&mut uow, child.person_id, &asked, self.day)
            .await?;
        let mut ignored = Vec::new();
        for (s, n) in child.overdue.iter().zip(counts) {
            if n.reminders >= self.settings.escalate_after
                && n.escalated_on.is_none()
                && self
                    .store
                    .sms()
                    .mark_escalated(
                        &mut uow,
                        child.person_id,
                        &s.service,
                        s.occurrence,
                        self.day,
                    )
                    .await?
            {
                ignored.push((s.name.clone(), n.reminders));
            }
        }
        if !ignored.is_empty() {
            self.escalate(&mut uow, child, &given, &ignored).await?;
        }
        uow.commit().await?;
        Ok(())
    }

    /// Tells the child's supervisors (health workers of the district, else sector officers)
    /// which services stay overdue despite reminders.
    async fn escalate(
        &mut self,
        uow: &mut inkingi_store::UnitOfWork,
        child: &OverdueChild,
        given: &str,
        ignored: &[(String, u32)],
    ) -> ApiResult<()> {
        let Some(village) = self
            .store
            .registry()
            .person(&Self::scope(), child.person_id)
            .await?
            .and_then(|p| p.person.village)
        else {
            return Ok(());
        };
        let covering = |role: Role| -> Vec<UserContact> {
            self.supervisors
                .iter()
                .filter(|u| u.role == role && u.phone.is_some() && u.scope.contains(&village))
                .cloned()
                .collect()
        };
        let mut to = covering(Role::HealthWorker);
        if to.is_empty() {
            to = covering(Role::SectorOfficer);
        }
        let services: Vec<&str> = ignored.iter().map(|(n, _)| n.as_str()).collect();
        let reminders = ignored.iter().map(|(_, n)| *n).max().unwrap_or(0);
        for sup in to {
            let m = self.message(
                format!("escalation:{}:{}:{}", child.person_id, self.day, sup.id),
                SmsKind::Escalation,
                Recipient::User(sup.id),
                sup.language
                    .clone()
                    .unwrap_or_else(|| self.settings.default_language.clone()),
                "escalation.overdue",
                json!({"child": given, "village": village.as_str(), "service": services,
                    "reminders": reminders}),
            );
            if self.store.sms().queue(uow, &m).await?.is_some() {
                self.sum.escalations += 1;
            }
        }
        Ok(())
    }

    /// A health worker's digest: children overdue and the five services most overdue.
    async fn digest(
        &mut self,
        chw: &UserContact,
        children: u64,
        counts: &BTreeMap<String, u64>,
    ) -> ApiResult<()> {
        if chw.phone.is_none() {
            return Ok(());
        }
        let key = format!("digest:{}:{}", chw.id, self.day);
        let mut top: Vec<(&String, &u64)> = counts.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let text: Vec<String> = top
            .iter()
            .take(5)
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let m = self.message(
            key,
            SmsKind::Digest,
            Recipient::User(chw.id),
            chw.language
                .clone()
                .unwrap_or_else(|| self.settings.default_language.clone()),
            "digest.chw",
            json!({"date": self.day.to_string(), "children": children, "counts": text.join("; ")}),
        );
        let mut uow = self.store.begin().await?;
        match self.store.sms().queue(&mut uow, &m).await? {
            Some(_) => self.sum.digests += 1,
            None => self.sum.existing += 1,
        }
        uow.commit().await?;
        Ok(())
    }
}

/// Queues a message for every pending beneficiary notification that has none: to the person
/// it names when they have a phone, else to the household head. A notification with nobody to
/// send to is marked failed. Returns how many were queued.
pub async fn queue_notifications(
    store: &Store,
    settings: &SmsSettings,
    now: DateTime<Utc>,
) -> ApiResult<u64> {
    let scope = AreaScope::national();
    let not_before = settings.quiet.map_or(now, |q| q.next_allowed(now));
    let mut queued = 0;
    loop {
        let pending = store.sms().pending_notifications(200).await?;
        if pending.is_empty() {
            return Ok(queued);
        }
        for n in pending {
            let mut to = match n.person_id {
                Some(id) => store.registry().person(&scope, id).await?,
                None => None,
            }
            .filter(|p| !p.person.data.phones.is_empty());
            if to.is_none() {
                to = store
                    .registry()
                    .members(&scope, n.household_id)
                    .await?
                    .into_iter()
                    .find(|m| m.role == Some(MemberRole::Head) && !m.person.data.phones.is_empty());
            }
            let Some(p) = to else {
                store.sms().fail_notification(&n.source_key).await?;
                continue;
            };
            let m = NewSms {
                source_key: n.source_key,
                kind: SmsKind::Notification,
                recipient: Recipient::Person(p.person.id),
                language: language_of(&p, &settings.default_language),
                template: n.template,
                params: n.params,
                plan_day: local_day(now),
                not_before,
            };
            let mut uow = store.begin().await?;
            if store.sms().queue(&mut uow, &m).await?.is_some() {
                queued += 1;
            }
            uow.commit().await?;
        }
    }
}

/// Runs `sms.plan` jobs.
#[derive(Debug, Clone)]
pub struct PlanRemindersHandler {
    settings: SmsSettings,
}

impl PlanRemindersHandler {
    pub fn new(settings: SmsSettings) -> Self {
        PlanRemindersHandler { settings }
    }
}

#[async_trait::async_trait]
impl JobHandler for PlanRemindersHandler {
    fn kind(&self) -> &'static str {
        PlanRemindersJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let _: PlanRemindersJob = serde_json::from_value(payload).map_err(|e| {
            JobError::permanent(format!("bad {} payload: {e}", PlanRemindersJob::KIND))
        })?;
        let sum = plan(&ctx.store, &self.settings, Utc::now())
            .await
            .map_err(JobError::retry)?;
        tracing::info!(?sum, "SMS reminders planned");
        Ok(())
    }
}

/// Every `poll`: queues pending beneficiary notifications, and once the local time is past
/// `plan_at` (seconds after local midnight) enqueues the day's `sms.plan` job (one per day
/// whatever the number of workers: the day is its key).
pub async fn run_schedule(
    store: Store,
    settings: SmsSettings,
    plan_at: Duration,
    poll: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let now = Utc::now();
        if let Err(e) = queue_notifications(&store, &settings, now).await {
            tracing::warn!(error = %e, "cannot queue beneficiary notifications; will try again");
        }
        let local = now + chrono::Duration::seconds(i64::from(RWANDA_OFFSET_SECS));
        let since_midnight = Duration::from_secs(u64::from(local.num_seconds_from_midnight()));
        if since_midnight >= plan_at {
            let queued = match NewJob::of(&PlanRemindersJob {
                day: local_day(now),
            }) {
                Ok(job) => store.jobs().enqueue_now(job).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = queued {
                tracing::warn!(error = %e, "cannot queue the day's SMS planning; will try again");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
