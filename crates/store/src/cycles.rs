//! Storage of payment cycles (schema `0017_cycles`): cycles, their frozen entitlements and the
//! payment status of each.
//!
//! Freezing is one set-based `INSERT … SELECT` over the programme's enrolled beneficiaries: the
//! household size is counted and the benefit formula applied by the database
//! ([`LinearBenefit`]), so a cycle of 500,000 beneficiaries is one statement, not 500,000 round
//! trips. The rows keep the name, registry number, size and amount as they were; a trigger
//! refuses any later change to them, so registry edits after the freeze cannot move money.
//!
//! Every step is a conditional `UPDATE … WHERE status = <the step's starting status>`: of two
//! concurrent approvals exactly one changes a row, the other is told the cycle moved on.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::identity::AreaScope;
use inkingi_domain::programmes::cycle::{
    payment_reference, CycleStatus, CycleStep, LinearBenefit, PaymentStatus, PaymentUpdate, Period,
};
use serde::Serialize;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::registry::push_scope;
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{Store, StoreError, StoreResult};

/// A payment cycle with who did each step and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cycle {
    pub id: Uuid,
    pub programme: String,
    /// `programme-YYYYMMDD`: the prefix of its payment references.
    pub code: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub status: CycleStatus,
    /// Set when frozen.
    pub beneficiaries: i64,
    /// Francs over all entitlements, set when frozen.
    pub total_amount: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub prepared_at: Option<DateTime<Utc>>,
    pub prepared_by: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct CycleRow {
    id: Uuid,
    programme_code: String,
    code: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    status: String,
    beneficiaries: i64,
    total_amount: i64,
    created_at: DateTime<Utc>,
    created_by: String,
    prepared_at: Option<DateTime<Utc>>,
    prepared_by: Option<String>,
    verified_at: Option<DateTime<Utc>>,
    verified_by: Option<String>,
    approved_at: Option<DateTime<Utc>>,
    approved_by: Option<String>,
    version: i64,
}

const CYCLE_COLS: &str = "id, programme_code, code, period_start, period_end, status, \
    beneficiaries, total_amount, created_at, created_by, prepared_at, prepared_by, verified_at, \
    verified_by, approved_at, approved_by, version";

impl TryFrom<CycleRow> for Cycle {
    type Error = StoreError;
    fn try_from(r: CycleRow) -> StoreResult<Cycle> {
        Ok(Cycle {
            id: r.id,
            programme: r.programme_code,
            code: r.code,
            period_start: r.period_start,
            period_end: r.period_end,
            status: CycleStatus::parse(&r.status)
                .ok_or_else(|| bad(format!("stored cycle status '{}'", r.status)))?,
            beneficiaries: r.beneficiaries,
            total_amount: r.total_amount,
            created_at: r.created_at,
            created_by: r.created_by,
            prepared_at: r.prepared_at,
            prepared_by: r.prepared_by,
            verified_at: r.verified_at,
            verified_by: r.verified_by,
            approved_at: r.approved_at,
            approved_by: r.approved_by,
            version: r.version,
        })
    }
}

/// One beneficiary's frozen entitlement in a cycle, with its payment status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entitlement {
    pub seq: i64,
    pub payment_reference: String,
    pub enrolment_id: Uuid,
    pub household_id: Uuid,
    pub person_id: Option<Uuid>,
    pub village: String,
    pub registry_number: String,
    /// The name paid, as the registry held it when the cycle was frozen.
    pub beneficiary: String,
    pub household_size: i64,
    pub amount: i64,
    pub payment_status: PaymentStatus,
    /// The payment provider's reference.
    pub status_reference: Option<String>,
    pub status_date: Option<NaiveDate>,
    pub status_note: Option<String>,
    pub status_by: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct EntitlementRow {
    seq: i64,
    enrolment_id: Uuid,
    household_id: Uuid,
    person_id: Option<Uuid>,
    village_code: String,
    registry_number: String,
    beneficiary: String,
    household_size: i64,
    amount: i64,
    payment_status: String,
    status_reference: Option<String>,
    status_date: Option<NaiveDate>,
    status_note: Option<String>,
    status_by: Option<String>,
    status_at: Option<DateTime<Utc>>,
}

const ENTITLEMENT_COLS: &str = "seq, enrolment_id, household_id, person_id, village_code, \
    registry_number, beneficiary, household_size, amount, payment_status, status_reference, \
    status_date, status_note, status_by, status_at";

fn payment_status(s: &str) -> StoreResult<PaymentStatus> {
    PaymentStatus::parse(s).ok_or_else(|| bad(format!("stored payment status '{s}'")))
}

fn entitlement_from(code: &str, r: EntitlementRow) -> StoreResult<Entitlement> {
    Ok(Entitlement {
        seq: r.seq,
        payment_reference: payment_reference(code, r.seq),
        enrolment_id: r.enrolment_id,
        household_id: r.household_id,
        person_id: r.person_id,
        village: r.village_code,
        registry_number: r.registry_number,
        beneficiary: r.beneficiary,
        household_size: r.household_size,
        amount: r.amount,
        payment_status: payment_status(&r.payment_status)?,
        status_reference: r.status_reference,
        status_date: r.status_date,
        status_note: r.status_note,
        status_by: r.status_by,
        status_at: r.status_at,
    })
}

/// The payment state of one entitlement, as status updates are checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub status: PaymentStatus,
    pub reference: Option<String>,
    pub village: String,
}

fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(what.to_string())
}

/// The cycle tables, reached through [`Store::cycles`].
pub struct Cycles<'a> {
    pub(crate) store: &'a Store,
}

/// The freeze: every enrolled beneficiary of an active household, numbered by village, with
/// the household's living members counted today and the benefit formula applied.
/// `$1` cycle, `$2` programme, `$3` base, `$4` per member, `$5` cap, `$6` today.
const FREEZE_SQL: &str = "INSERT INTO cycle_entitlements (cycle_id, seq, enrolment_id, \
    household_id, person_id, village_code, registry_number, beneficiary, household_size, amount) \
    SELECT $1, ROW_NUMBER() OVER (ORDER BY s.village_code, s.household_id, s.enrolment_id), \
      s.enrolment_id, s.household_id, s.person_id, s.village_code, s.registry_number, \
      s.beneficiary, s.size, \
      CASE WHEN $5 IS NOT NULL AND $3 + $4 * s.size > $5 THEN $5 ELSE $3 + $4 * s.size END \
    FROM (SELECT e.id AS enrolment_id, e.household_id, e.person_id, h.village_code, \
        h.registry_number, \
        COALESCE( \
          (SELECT p.given_name || ' ' || p.family_name FROM registry_people p \
            WHERE p.id = e.person_id), \
          (SELECT p.given_name || ' ' || p.family_name FROM registry_people p \
            WHERE p.household_id = e.household_id AND p.role = 'head' ORDER BY p.id LIMIT 1), \
          '') AS beneficiary, \
        (SELECT count(*) FROM registry_people m WHERE m.household_id = e.household_id \
            AND (m.died_on IS NULL OR m.died_on > $6)) AS size \
      FROM programme_enrolments e JOIN registry_households h ON h.id = e.household_id \
      WHERE e.programme_code = $2 AND e.status = 'enrolled' AND h.status = 'active') s";

impl Cycles<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Opens a draft cycle of `programme` for `period`; one cycle per programme and start date.
    pub async fn create(&self, programme: &str, period: Period, by: &str) -> StoreResult<Cycle> {
        let now = Utc::now();
        let cycle = Cycle {
            id: Uuid::now_v7(),
            programme: programme.to_string(),
            code: period.cycle_code(programme),
            period_start: period.start(),
            period_end: period.end(),
            status: CycleStatus::Draft,
            beneficiaries: 0,
            total_amount: 0,
            created_at: now,
            created_by: by.to_string(),
            prepared_at: None,
            prepared_by: None,
            verified_at: None,
            verified_by: None,
            approved_at: None,
            approved_by: None,
            version: 1,
        };
        let mut uow = self.store.begin().await?;
        let done = on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO programme_cycles (id, programme_code, code, period_start, \
                 period_end, status, created_at, created_by, version) \
                 VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, 1)",
            )
            .bind(cycle.id)
            .bind(programme)
            .bind(&cycle.code)
            .bind(cycle.period_start)
            .bind(cycle.period_end)
            .bind(now)
            .bind(by)
            .execute(&mut *c)
            .await
            .map(|_| ())
        });
        match done.map_err(StoreError::from) {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(StoreError::Conflict(format!(
                    "period_start: programme {programme} already has a cycle starting {}",
                    cycle.period_start
                )))
            }
            Err(StoreError::Invalid(_)) => {
                return Err(StoreError::NotFound(format!("programme {programme}")))
            }
            Err(e) => return Err(e),
        }
        uow.commit().await?;
        Ok(cycle)
    }

    /// The cycles of a programme, latest period first.
    pub async fn list(&self, programme: &str) -> StoreResult<Vec<Cycle>> {
        let rows: Vec<CycleRow> = on_read!(self.pools(), |p| {
            sqlx::query_as(&format!(
                "SELECT {CYCLE_COLS} FROM programme_cycles WHERE programme_code = $1 \
                 ORDER BY period_start DESC"
            ))
            .bind(programme)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(Cycle::try_from).collect()
    }

    pub async fn get(&self, id: Uuid) -> StoreResult<Option<Cycle>> {
        let row: Option<CycleRow> = on_read!(self.pools(), |p| {
            sqlx::query_as(&format!(
                "SELECT {CYCLE_COLS} FROM programme_cycles WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(p)
            .await?
        });
        row.map(Cycle::try_from).transpose()
    }

    /// Takes `step` as `by`: the cycle must be at the step's starting status and `by` must have
    /// done no earlier step (the caller reports that more precisely first; this is the guard
    /// that holds under concurrency). Freezing also takes the snapshot, in the same transaction.
    pub async fn take_step(
        &self,
        id: Uuid,
        step: CycleStep,
        by: &str,
        benefit: LinearBenefit,
        today: NaiveDate,
    ) -> StoreResult<Cycle> {
        let (at_col, by_col) = match step {
            CycleStep::Freeze => ("prepared_at", "prepared_by"),
            CycleStep::Verify => ("verified_at", "verified_by"),
            CycleStep::Approve => ("approved_at", "approved_by"),
        };
        let mut uow = self.store.begin().await?;
        let claimed = on_uow!(uow, |c| {
            sqlx::query(&format!(
                "UPDATE programme_cycles SET status = $1, {at_col} = $2, {by_col} = $3, \
                 version = version + 1 WHERE id = $4 AND status = $5 \
                 AND (prepared_by IS NULL OR prepared_by <> $3) \
                 AND (verified_by IS NULL OR verified_by <> $3)"
            ))
            .bind(step.to().as_str())
            .bind(Utc::now())
            .bind(by)
            .bind(id)
            .bind(step.from().as_str())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if claimed != 1 {
            return Err(self.refusal(id, step).await);
        }
        if step == CycleStep::Freeze {
            self.snapshot(&mut uow, id, benefit, today).await?;
        }
        uow.commit().await?;
        self.get(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("cycle {id}")))
    }

    /// Why a step changed nothing, read after the fact.
    async fn refusal(&self, id: Uuid, step: CycleStep) -> StoreError {
        match self.get(id).await {
            Ok(None) => StoreError::NotFound(format!("cycle {id}")),
            Ok(Some(c)) if c.status != step.from() => StoreError::Conflict(format!(
                "status: the cycle is {}; {} needs a {} cycle",
                c.status,
                step.as_str(),
                step.from()
            )),
            Ok(Some(_)) => StoreError::Conflict(format!(
                "status: the same user may not {} a cycle they prepared or verified",
                step.as_str()
            )),
            Err(e) => e,
        }
    }

    async fn snapshot(
        &self,
        uow: &mut crate::UnitOfWork,
        id: Uuid,
        benefit: LinearBenefit,
        today: NaiveDate,
    ) -> StoreResult<()> {
        on_uow!(uow, |c| {
            let programme: String =
                sqlx::query_scalar("SELECT programme_code FROM programme_cycles WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *c)
                    .await?;
            sqlx::query(FREEZE_SQL)
                .bind(id)
                .bind(&programme)
                .bind(benefit.base)
                .bind(benefit.per_member)
                .bind(benefit.cap)
                .bind(today)
                .execute(&mut *c)
                .await?;
            sqlx::query(
                "UPDATE programme_cycles SET \
                 beneficiaries = (SELECT count(*) FROM cycle_entitlements WHERE cycle_id = $1), \
                 total_amount = (SELECT CAST(coalesce(sum(amount), 0) AS BIGINT) \
                   FROM cycle_entitlements WHERE cycle_id = $1) WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Entitlements of a cycle within `scope`, by number, after `after`.
    pub async fn entitlements(
        &self,
        scope: &AreaScope,
        cycle: &Cycle,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Entitlement>> {
        let rows: Vec<EntitlementRow> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {ENTITLEMENT_COLS} FROM cycle_entitlements WHERE cycle_id = "
            ));
            qb.push_bind(cycle.id).push(" AND seq > ").push_bind(after);
            push_scope(&mut qb, "village_code", scope);
            qb.push(" ORDER BY seq LIMIT ")
                .push_bind(i64::from(limit.max(1)));
            qb.build_query_as().fetch_all(p).await?
        });
        rows.into_iter()
            .map(|r| entitlement_from(&cycle.code, r))
            .collect()
    }

    /// The payment state of the entitlements numbered `seqs` within `scope`; numbers not in the
    /// cycle or outside the scope are absent.
    pub async fn payment_states(
        &self,
        scope: &AreaScope,
        cycle: Uuid,
        seqs: &[i64],
    ) -> StoreResult<HashMap<i64, PaymentState>> {
        let mut out = HashMap::with_capacity(seqs.len());
        for chunk in seqs.chunks(1000) {
            let rows: Vec<(i64, String, Option<String>, String)> = on_read!(self.pools(), |p| {
                let mut qb = QueryBuilder::new(
                    "SELECT seq, payment_status, status_reference, village_code \
                     FROM cycle_entitlements WHERE cycle_id = ",
                );
                qb.push_bind(cycle).push(" AND seq IN (");
                let mut list = qb.separated(", ");
                for s in chunk {
                    list.push_bind(*s);
                }
                qb.push(")");
                push_scope(&mut qb, "village_code", scope);
                qb.build_query_as().fetch_all(p).await?
            });
            for (seq, status, reference, village) in rows {
                out.insert(
                    seq,
                    PaymentState {
                        status: payment_status(&status)?,
                        reference,
                        village,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Records payment statuses, all or none: each update applies only if the entitlement is
    /// still in the status it was checked against (`expected`); otherwise nothing is written
    /// and the conflict names the entitlement.
    pub async fn record_payments(
        &self,
        cycle: &Cycle,
        updates: &[(i64, PaymentStatus, PaymentUpdate)],
        by: &str,
    ) -> StoreResult<()> {
        let now = Utc::now();
        let mut uow = self.store.begin().await?;
        for (seq, expected, u) in updates {
            let n = on_uow!(uow, |c| {
                sqlx::query(
                    "UPDATE cycle_entitlements SET payment_status = $1, status_reference = $2, \
                     status_date = $3, status_note = $4, status_by = $5, status_at = $6 \
                     WHERE cycle_id = $7 AND seq = $8 AND payment_status = $9",
                )
                .bind(u.status.as_str())
                .bind(&u.reference)
                .bind(u.date)
                .bind(&u.note)
                .bind(by)
                .bind(now)
                .bind(cycle.id)
                .bind(*seq)
                .bind(expected.as_str())
                .execute(&mut *c)
                .await?
                .rows_affected()
            });
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "status: payment {} changed while this update was checked; nothing was \
                     recorded, send it again",
                    payment_reference(&cycle.code, *seq)
                )));
            }
        }
        uow.commit().await
    }
}
