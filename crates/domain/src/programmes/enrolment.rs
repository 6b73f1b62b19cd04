//! The enrolment lifecycle of one beneficiary in one programme:
//!
//! ```text
//! eligible ──► enrolled ◄──► suspended
//!    │            │  ▲           │
//!    ▼            ▼  │           ▼
//! waiting ────────┘  │     graduated / exited (closed)
//!    └──────────────────────► exited
//! ```
//! A beneficiary found eligible is enrolled when the programme has room, else waits (the
//! waiting list is served poorest score first). Suspending, graduating and exiting need a
//! reason; graduated and exited are final.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrolmentStatus {
    Eligible,
    Waiting,
    Enrolled,
    Suspended,
    Graduated,
    Exited,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an enrolment cannot go from {from} to {to}")]
    NotAllowed {
        from: EnrolmentStatus,
        to: EnrolmentStatus,
    },
    #[error("a reason is required to move an enrolment to {0}")]
    ReasonRequired(EnrolmentStatus),
}

impl EnrolmentStatus {
    pub const ALL: [EnrolmentStatus; 6] = [
        EnrolmentStatus::Eligible,
        EnrolmentStatus::Waiting,
        EnrolmentStatus::Enrolled,
        EnrolmentStatus::Suspended,
        EnrolmentStatus::Graduated,
        EnrolmentStatus::Exited,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EnrolmentStatus::Eligible => "eligible",
            EnrolmentStatus::Waiting => "waiting",
            EnrolmentStatus::Enrolled => "enrolled",
            EnrolmentStatus::Suspended => "suspended",
            EnrolmentStatus::Graduated => "graduated",
            EnrolmentStatus::Exited => "exited",
        }
    }

    pub fn parse(s: &str) -> Option<EnrolmentStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Holds one of the programme's places (counts against capacity and budget).
    pub const fn holds_place(self) -> bool {
        matches!(self, EnrolmentStatus::Enrolled | EnrolmentStatus::Suspended)
    }

    /// Graduated or exited: nothing follows.
    pub const fn is_closed(self) -> bool {
        matches!(self, EnrolmentStatus::Graduated | EnrolmentStatus::Exited)
    }

    /// The moves the lifecycle allows.
    pub fn may_move_to(self, to: EnrolmentStatus) -> bool {
        use EnrolmentStatus::*;
        matches!(
            (self, to),
            (Eligible, Enrolled | Waiting | Exited)
                | (Waiting, Enrolled | Exited)
                | (Enrolled, Suspended | Graduated | Exited)
                | (Suspended, Enrolled | Graduated | Exited)
        )
    }

    /// Checks a move and its reason (required to suspend, graduate or exit).
    pub fn transition(
        self,
        to: EnrolmentStatus,
        reason: Option<&str>,
    ) -> Result<(), TransitionError> {
        if !self.may_move_to(to) {
            return Err(TransitionError::NotAllowed { from: self, to });
        }
        let needs_reason = matches!(
            to,
            EnrolmentStatus::Suspended | EnrolmentStatus::Graduated | EnrolmentStatus::Exited
        );
        if needs_reason && reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(TransitionError::ReasonRequired(to));
        }
        Ok(())
    }
}

impl std::fmt::Display for EnrolmentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
