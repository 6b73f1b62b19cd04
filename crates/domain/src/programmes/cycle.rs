//! Payment cycles: one period of a programme whose beneficiaries and amounts are frozen, then
//! checked and approved by different people before anyone is paid.
//!
//! ```text
//! draft ──freeze──► prepared ──verify──► verified ──approve──► approved
//! ```
//! Freezing takes the snapshot; verifying and approving are each done by a user who did no
//! earlier step of the same cycle (three pairs of eyes, no one approving their own list).
//! Each entitlement of an approved cycle then carries a payment status:
//!
//! ```text
//! pending ──► paid ──► returned
//!    └──────► failed ──► paid | failed
//! ```

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::Benefit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleStatus {
    Draft,
    Prepared,
    Verified,
    Approved,
}

impl CycleStatus {
    pub const ALL: [CycleStatus; 4] = [
        CycleStatus::Draft,
        CycleStatus::Prepared,
        CycleStatus::Verified,
        CycleStatus::Approved,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            CycleStatus::Draft => "draft",
            CycleStatus::Prepared => "prepared",
            CycleStatus::Verified => "verified",
            CycleStatus::Approved => "approved",
        }
    }

    pub fn parse(s: &str) -> Option<CycleStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for CycleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One approval step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleStep {
    /// Take the snapshot of beneficiaries and amounts.
    Freeze,
    Verify,
    Approve,
}

impl CycleStep {
    pub const ALL: [CycleStep; 3] = [CycleStep::Freeze, CycleStep::Verify, CycleStep::Approve];

    pub const fn as_str(self) -> &'static str {
        match self {
            CycleStep::Freeze => "freeze",
            CycleStep::Verify => "verify",
            CycleStep::Approve => "approve",
        }
    }

    pub fn parse(s: &str) -> Option<CycleStep> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The status a cycle must have for this step.
    pub const fn from(self) -> CycleStatus {
        match self {
            CycleStep::Freeze => CycleStatus::Draft,
            CycleStep::Verify => CycleStatus::Prepared,
            CycleStep::Approve => CycleStatus::Verified,
        }
    }

    /// What the user taking the step must be allowed: programme staff prepare and verify,
    /// finance approves.
    pub const fn permission(self) -> crate::identity::Permission {
        use crate::identity::Permission;
        match self {
            CycleStep::Freeze | CycleStep::Verify => Permission::ManageProgrammes,
            CycleStep::Approve => Permission::ApprovePayments,
        }
    }

    /// The status the step leaves the cycle in.
    pub const fn to(self) -> CycleStatus {
        match self {
            CycleStep::Freeze => CycleStatus::Prepared,
            CycleStep::Verify => CycleStatus::Verified,
            CycleStep::Approve => CycleStatus::Approved,
        }
    }
}

impl std::fmt::Display for CycleStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The cycle is not at the step's stage (e.g. approved already): a conflict.
    #[error("the cycle is {status}; {step} needs a {} cycle", step.from())]
    WrongStatus {
        status: CycleStatus,
        step: CycleStep,
    },
    /// Separation of duties: the user did an earlier step of this cycle.
    #[error("{user} already {did} this cycle; another user must {step} it")]
    SameUser {
        user: String,
        did: &'static str,
        step: CycleStep,
    },
}

/// Who did the steps of a cycle so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepActors<'a> {
    pub prepared_by: Option<&'a str>,
    pub verified_by: Option<&'a str>,
}

/// Checks that `user` may take `step` on a cycle in `status`.
pub fn check_step(
    status: CycleStatus,
    step: CycleStep,
    user: &str,
    done: &StepActors<'_>,
) -> Result<(), StepError> {
    if status != step.from() {
        return Err(StepError::WrongStatus { status, step });
    }
    let earlier = [
        ("prepared", done.prepared_by),
        ("verified", done.verified_by),
    ];
    if let Some((did, _)) = earlier.iter().find(|(_, by)| *by == Some(user)) {
        return Err(StepError::SameUser {
            user: user.to_string(),
            did,
            step,
        });
    }
    Ok(())
}

/// The period a cycle pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    start: NaiveDate,
    end: NaiveDate,
}

impl Period {
    /// `end` on or after `start`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Period, String> {
        if end < start {
            return Err(format!("{end} is before the start of the period, {start}"));
        }
        Ok(Period { start, end })
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }

    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// The cycle's code for a programme: `programme-YYYYMMDD`, the prefix of its payment
    /// references.
    pub fn cycle_code(&self, programme: &str) -> String {
        format!("{programme}-{}", self.start.format("%Y%m%d"))
    }
}

/// The payment reference of an entitlement: the cycle's code and the entitlement's number.
pub fn payment_reference(cycle_code: &str, seq: i64) -> String {
    format!("{cycle_code}-{seq:06}")
}

/// The entitlement number of `reference` if it belongs to the cycle `cycle_code`.
pub fn parse_payment_reference(cycle_code: &str, reference: &str) -> Option<i64> {
    let (code, seq) = reference.trim().rsplit_once('-')?;
    if code != cycle_code || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok().filter(|n| *n >= 1)
}

/// A benefit formula as `min(base + per_member × size, cap)`, so that a database can compute
/// every amount of a cycle in one statement. Agrees with [`Benefit::amount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearBenefit {
    pub base: i64,
    pub per_member: i64,
    pub cap: Option<i64>,
}

impl LinearBenefit {
    pub fn of(b: &Benefit) -> LinearBenefit {
        // Amounts are francs per cycle: far below i64::MAX; saturate rather than wrap.
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        match b {
            Benefit::Fixed { amount } => LinearBenefit {
                base: i(*amount),
                per_member: 0,
                cap: None,
            },
            Benefit::PerMember {
                base,
                per_member,
                cap,
            } => LinearBenefit {
                base: i(*base),
                per_member: i(*per_member),
                cap: cap.map(i),
            },
            Benefit::DailyWage { daily_wage, days } => LinearBenefit {
                base: i(daily_wage.saturating_mul(u64::from(*days))),
                per_member: 0,
                cap: None,
            },
        }
    }

    pub fn amount(&self, size: i64) -> i64 {
        let raw = self
            .base
            .saturating_add(self.per_member.saturating_mul(size));
        self.cap.map_or(raw, |c| raw.min(c))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Paid,
    Failed,
    Returned,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 4] = [
        PaymentStatus::Pending,
        PaymentStatus::Paid,
        PaymentStatus::Failed,
        PaymentStatus::Returned,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Moves a payment provider may report. A failed payment may be tried again; money paid
    /// may come back (returned), which closes the entitlement for this cycle.
    pub fn may_move_to(self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, to),
            (Pending, Paid | Failed) | (Failed, Paid | Failed) | (Paid, Returned)
        )
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payment status to record, checked: a status a provider reports, a date not after
/// `today`, and a provider reference for money that moved (paid, returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUpdate {
    pub status: PaymentStatus,
    pub reference: Option<String>,
    pub date: NaiveDate,
    pub note: Option<String>,
}

/// One refused field of a payment status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateError {
    pub field: &'static str,
    pub reason: String,
}

impl PaymentUpdate {
    /// Checks raw fields; every problem is reported, each with its field.
    pub fn parse(
        status: &str,
        reference: Option<&str>,
        date: &str,
        note: Option<&str>,
        today: NaiveDate,
    ) -> Result<PaymentUpdate, Vec<UpdateError>> {
        let mut errors = Vec::new();
        let mut err = |field, reason: String| errors.push(UpdateError { field, reason });
        let status = match PaymentStatus::parse(status.trim()) {
            Some(PaymentStatus::Pending) | None => {
                err(
                    "status",
                    format!("'{status}' is not one of paid, failed, returned"),
                );
                None
            }
            s => s,
        };
        let date = match NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d") {
            Ok(d) if d > today => {
                err("date", format!("{d} is in the future"));
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                err("date", format!("'{date}' is not a date (YYYY-MM-DD)"));
                None
            }
        };
        let reference = reference.map(str::trim).filter(|r| !r.is_empty());
        if reference.is_some_and(|r| r.chars().count() > 100) {
            err("reference", "longer than 100 characters".into());
        }
        let needs_reference = matches!(status, Some(PaymentStatus::Paid | PaymentStatus::Returned));
        if needs_reference && reference.is_none() {
            err(
                "reference",
                "the payment provider's reference is required for paid and returned".into(),
            );
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 500) {
            err("note", "longer than 500 characters".into());
        }
        match (status, date, errors.is_empty()) {
            (Some(status), Some(date), true) => Ok(PaymentUpdate {
                status,
                reference: reference.map(str::to_string),
                date,
                note: note.map(str::to_string),
            }),
            _ => Err(errors),
        }
    }

    /// Whether applying this to an entitlement in `current` changes nothing (the same report
    /// received again, e.g. a status file uploaded twice).
    pub fn repeats(&self, current: PaymentStatus, reference: Option<&str>) -> bool {
        current == self.status && reference == self.reference.as_deref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn steps_follow_in_order_by_different_users() {
        let none = StepActors::default();
        assert_eq!(
            check_step(CycleStatus::Draft, CycleStep::Freeze, "a", &none),
            Ok(())
        );
        let prepared = StepActors {
            prepared_by: Some("a"),
            verified_by: None,
        };
        assert!(matches!(
            check_step(CycleStatus::Prepared, CycleStep::Verify, "a", &prepared),
            Err(StepError::SameUser {
                did: "prepared",
                ..
            })
        ));
        assert_eq!(
            check_step(CycleStatus::Prepared, CycleStep::Verify, "b", &prepared),
            Ok(())
        );
        let verified = StepActors {
            prepared_by: Some("a"),
            verified_by: Some("b"),
        };
        for user in ["a", "b"] {
            assert!(
                check_step(CycleStatus::Verified, CycleStep::Approve, user, &verified).is_err()
            );
        }
        assert_eq!(
            check_step(CycleStatus::Verified, CycleStep::Approve, "c", &verified),
            Ok(())
        );
        let twice = check_step(CycleStatus::Approved, CycleStep::Approve, "c", &verified);
        assert_eq!(
            twice,
            Err(StepError::WrongStatus {
                status: CycleStatus::Approved,
                step: CycleStep::Approve
            })
        );
        assert_eq!(
            twice.unwrap_err().to_string(),
            "the cycle is approved; approve needs a verified cycle"
        );
    }

    #[test]
    fn the_linear_form_agrees_with_the_benefit_formula() {
        let formulas = [
            Benefit::Fixed { amount: 7500 },
            Benefit::PerMember {
                base: 1000,
                per_member: 500,
                cap: Some(3000),
            },
            Benefit::PerMember {
                base: 0,
                per_member: 2000,
                cap: None,
            },
            Benefit::DailyWage {
                daily_wage: 1500,
                days: 12,
            },
        ];
        for b in &formulas {
            let l = LinearBenefit::of(b);
            for size in 0..15u32 {
                assert_eq!(
                    l.amount(i64::from(size)),
                    b.amount(size) as i64,
                    "{b:?} size {size}"
                );
            }
        }
    }

    #[test]
    fn payment_references_round_trip_and_belong_to_one_cycle() {
        let p = Period::new(d("2026-11-01"), d("2026-11-30")).unwrap();
        let code = p.cycle_code("vup_ds");
        assert_eq!(code, "vup_ds-20261101");
        let r = payment_reference(&code, 42);
        assert_eq!(r, "vup_ds-20261101-000042");
        assert_eq!(parse_payment_reference(&code, &r), Some(42));
        assert_eq!(parse_payment_reference("vup_ds-20261201", &r), None);
        assert_eq!(parse_payment_reference(&code, "vup_ds-20261101-"), None);
        assert_eq!(parse_payment_reference(&code, "vup_ds-20261101-x1"), None);
        assert_eq!(parse_payment_reference(&code, "vup_ds-20261101-0"), None);
        assert!(Period::new(d("2026-11-30"), d("2026-11-01")).is_err());
    }

    #[test]
    fn payment_updates_name_every_bad_field() {
        let today = d("2026-11-22");
        let ok = PaymentUpdate::parse("paid", Some(" MTN-1 "), "2026-11-20", None, today);
        assert_eq!(
            ok.as_ref().map(|u| u.reference.as_deref()),
            Ok(Some("MTN-1"))
        );
        let errs = PaymentUpdate::parse("done", None, "2026-13-01", None, today).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["status", "date"]);
        let errs =
            PaymentUpdate::parse("returned", Some(""), "2026-12-01", None, today).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["date", "reference"]);
        assert!(PaymentUpdate::parse("pending", None, "2026-11-01", None, today).is_err());
        assert!(PaymentUpdate::parse("failed", None, "2026-11-01", None, today).is_ok());
    }

    #[test]
    fn payment_status_moves() {
        use PaymentStatus::*;
        assert!(
            Pending.may_move_to(Paid) && Failed.may_move_to(Paid) && Paid.may_move_to(Returned)
        );
        assert!(
            !Paid.may_move_to(Failed)
                && !Returned.may_move_to(Paid)
                && !Pending.may_move_to(Returned)
        );
    }
}
