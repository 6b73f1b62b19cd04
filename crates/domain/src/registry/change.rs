//! Change requests: typed proposals to change the registry, submitted by enumerators, officers,
//! partners or citizens, approved by officers of the household's area in a configurable number
//! of tiers, and applied atomically on final approval.
//!
//! States: draft → submitted → approved | rejected → applied (or withdrawn before a decision).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::person::MemberRole;
use super::PersonInput;
use crate::areas::AreaCode;

/// What a change request asks for, with the data it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeKind {
    AddMember {
        household_id: Uuid,
        person: PersonInput,
        role: MemberRole,
        #[serde(default)]
        mother_id: Option<Uuid>,
        #[serde(default)]
        father_id: Option<Uuid>,
    },
    RemoveMember {
        household_id: Uuid,
        person_id: Uuid,
    },
    MoveHousehold {
        household_id: Uuid,
        village: AreaCode,
        #[serde(default)]
        address: Option<String>,
    },
    ChangeHead {
        household_id: Uuid,
        new_head_id: Uuid,
        /// The outgoing head's new role; `other_relative` when not given.
        #[serde(default)]
        previous_head_role: Option<MemberRole>,
    },
    /// Some members leave to form a new household in `village`, headed by `new_head_id`.
    SplitHousehold {
        household_id: Uuid,
        person_ids: Vec<Uuid>,
        new_head_id: Uuid,
        village: AreaCode,
    },
    /// Everyone in `from_household_id` joins `into_household_id`, which keeps its head; the
    /// other household is marked merged.
    MergeHouseholds {
        into_household_id: Uuid,
        from_household_id: Uuid,
    },
    UpdateIdentity {
        person_id: Uuid,
        /// Person fields to set (given_name, family_name, sex, birth_date, national_id, …).
        fields: Map<String, Value>,
    },
    CorrectData {
        household_id: Uuid,
        /// Household fields to set: address, gps, answers (the whole answers object).
        fields: Map<String, Value>,
    },
    RecordBirth {
        household_id: Uuid,
        mother_id: Option<Uuid>,
        child: PersonInput,
    },
    RecordDeath {
        person_id: Uuid,
        died_on: NaiveDate,
        /// Needed when the deceased headed a household that has other members.
        #[serde(default)]
        new_head_id: Option<Uuid>,
    },
    /// Two registry records are one person (a confirmed linkage review): the duplicate is
    /// marked merged into the survivor, its record kept, and leaves its household.
    MergePeople {
        survivor_id: Uuid,
        duplicate_id: Uuid,
    },
    /// Undoes a merge of these two records, restoring the duplicate as it was.
    UnmergePeople {
        survivor_id: Uuid,
        duplicate_id: Uuid,
    },
}

impl ChangeKind {
    pub fn name(&self) -> &'static str {
        match self {
            ChangeKind::AddMember { .. } => "add_member",
            ChangeKind::RemoveMember { .. } => "remove_member",
            ChangeKind::MoveHousehold { .. } => "move_household",
            ChangeKind::ChangeHead { .. } => "change_head",
            ChangeKind::SplitHousehold { .. } => "split_household",
            ChangeKind::MergeHouseholds { .. } => "merge_households",
            ChangeKind::UpdateIdentity { .. } => "update_identity",
            ChangeKind::CorrectData { .. } => "correct_data",
            ChangeKind::RecordBirth { .. } => "record_birth",
            ChangeKind::RecordDeath { .. } => "record_death",
            ChangeKind::MergePeople { .. } => "merge_people",
            ChangeKind::UnmergePeople { .. } => "unmerge_people",
        }
    }

    /// The records the change would touch: two open requests that share one conflict.
    pub fn touches(&self) -> Vec<Uuid> {
        match self {
            ChangeKind::AddMember { household_id, .. }
            | ChangeKind::MoveHousehold { household_id, .. }
            | ChangeKind::CorrectData { household_id, .. }
            | ChangeKind::RecordBirth { household_id, .. } => vec![*household_id],
            ChangeKind::RemoveMember {
                household_id,
                person_id,
            } => vec![*household_id, *person_id],
            ChangeKind::ChangeHead {
                household_id,
                new_head_id,
                ..
            } => vec![*household_id, *new_head_id],
            ChangeKind::SplitHousehold {
                household_id,
                person_ids,
                ..
            } => std::iter::once(*household_id)
                .chain(person_ids.iter().copied())
                .collect(),
            ChangeKind::MergeHouseholds {
                into_household_id,
                from_household_id,
            } => vec![*into_household_id, *from_household_id],
            ChangeKind::UpdateIdentity { person_id, .. }
            | ChangeKind::RecordDeath { person_id, .. } => vec![*person_id],
            ChangeKind::MergePeople {
                survivor_id,
                duplicate_id,
            }
            | ChangeKind::UnmergePeople {
                survivor_id,
                duplicate_id,
            } => vec![*survivor_id, *duplicate_id],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Applied,
    Withdrawn,
}

impl ChangeStatus {
    pub const ALL: [ChangeStatus; 6] = [
        ChangeStatus::Draft,
        ChangeStatus::Submitted,
        ChangeStatus::Approved,
        ChangeStatus::Rejected,
        ChangeStatus::Applied,
        ChangeStatus::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Draft => "draft",
            ChangeStatus::Submitted => "submitted",
            ChangeStatus::Approved => "approved",
            ChangeStatus::Rejected => "rejected",
            ChangeStatus::Applied => "applied",
            ChangeStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeStatus> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Still waiting for a decision: such requests conflict with others on the same records.
    pub fn is_open(self) -> bool {
        matches!(self, ChangeStatus::Draft | ChangeStatus::Submitted)
    }
}

impl fmt::Display for ChangeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step in a request's life, with its actor and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeStep {
    pub status: ChangeStatus,
    /// The approval tier this step completed (1-based), for approvals.
    pub tier: Option<u32>,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

/// A change request and its trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub id: Uuid,
    pub change: ChangeKind,
    pub status: ChangeStatus,
    /// The village whose officers decide (the household's village at submission).
    pub area: AreaCode,
    /// Approval tiers needed; `approvals` counts those given.
    pub tiers: u32,
    pub approvals: u32,
    pub reason: Option<String>,
    pub submitted_by: String,
    pub channel: super::history::Channel,
    pub steps: Vec<ChangeStep>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the request is {0}; only {1} requests can be {2}")]
    WrongState(ChangeStatus, &'static str, &'static str),
    #[error(
        "{0} already decided tier {1} of this request; another approver must decide the next tier"
    )]
    SameApprover(String, u32),
    #[error("{0} submitted this request and may not approve it")]
    OwnRequest(String),
}

/// What an approval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// A tier was approved; more are needed.
    Partial { tier: u32 },
    /// The last tier was approved: apply the change now, in the same transaction.
    Final { tier: u32 },
}

impl ChangeRequest {
    pub fn submit(&mut self, actor: &str, at: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status != ChangeStatus::Draft {
            return Err(TransitionError::WrongState(
                self.status,
                "draft",
                "submitted",
            ));
        }
        self.step(ChangeStatus::Submitted, None, actor, at, None);
        Ok(())
    }

    /// Records one tier's approval. The submitter may not approve, and one person decides at
    /// most one tier (four eyes per tier).
    pub fn approve(
        &mut self,
        actor: &str,
        at: DateTime<Utc>,
        note: Option<String>,
    ) -> Result<Approval, TransitionError> {
        if self.status != ChangeStatus::Submitted {
            return Err(TransitionError::WrongState(
                self.status,
                "submitted",
                "approved",
            ));
        }
        if actor == self.submitted_by {
            return Err(TransitionError::OwnRequest(actor.into()));
        }
        if let Some(prev) = self
            .steps
            .iter()
            .find(|s| s.tier.is_some() && s.actor == actor)
        {
            return Err(TransitionError::SameApprover(
                actor.into(),
                prev.tier.unwrap_or(0),
            ));
        }
        self.approvals += 1;
        let tier = self.approvals;
        if tier >= self.tiers {
            self.step(ChangeStatus::Approved, Some(tier), actor, at, note);
            Ok(Approval::Final { tier })
        } else {
            self.steps.push(ChangeStep {
                status: ChangeStatus::Submitted,
                tier: Some(tier),
                actor: actor.into(),
                at,
                note,
            });
            Ok(Approval::Partial { tier })
        }
    }

    pub fn reject(
        &mut self,
        actor: &str,
        at: DateTime<Utc>,
        note: Option<String>,
    ) -> Result<(), TransitionError> {
        if self.status != ChangeStatus::Submitted {
            return Err(TransitionError::WrongState(
                self.status,
                "submitted",
                "rejected",
            ));
        }
        self.step(
            ChangeStatus::Rejected,
            Some(self.approvals + 1),
            actor,
            at,
            note,
        );
        Ok(())
    }

    pub fn withdraw(&mut self, actor: &str, at: DateTime<Utc>) -> Result<(), TransitionError> {
        if !self.status.is_open() {
            return Err(TransitionError::WrongState(
                self.status,
                "draft or submitted",
                "withdrawn",
            ));
        }
        self.step(ChangeStatus::Withdrawn, None, actor, at, None);
        Ok(())
    }

    /// Marks an approved request applied (the registry change is in the same transaction).
    pub fn mark_applied(&mut self, actor: &str, at: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status != ChangeStatus::Approved {
            return Err(TransitionError::WrongState(
                self.status,
                "approved",
                "applied",
            ));
        }
        self.step(ChangeStatus::Applied, None, actor, at, None);
        Ok(())
    }

    fn step(
        &mut self,
        status: ChangeStatus,
        tier: Option<u32>,
        actor: &str,
        at: DateTime<Utc>,
        note: Option<String>,
    ) {
        self.status = status;
        self.steps.push(ChangeStep {
            status,
            tier,
            actor: actor.into(),
            at,
            note,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::history::Channel;

    fn request(tiers: u32) -> ChangeRequest {
        ChangeRequest {
            id: Uuid::from_u128(1),
            change: ChangeKind::RecordDeath {
                person_id: Uuid::from_u128(2),
                died_on: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
                new_head_id: None,
            },
            status: ChangeStatus::Draft,
            area: AreaCode::parse("57150505").expect("code"),
            tiers,
            approvals: 0,
            reason: None,
            submitted_by: "enum1".into(),
            channel: Channel::Web,
            steps: vec![],
            version: 1,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn two_tiers_need_two_different_approvers() {
        let mut r = request(2);
        let now = Utc::now();
        assert!(matches!(
            r.approve("sector1", now, None),
            Err(TransitionError::WrongState(..))
        ));
        r.submit("enum1", now).expect("submit");
        assert_eq!(
            r.approve("enum1", now, None),
            Err(TransitionError::OwnRequest("enum1".into()))
        );
        assert_eq!(
            r.approve("sector1", now, None),
            Ok(Approval::Partial { tier: 1 })
        );
        assert!(matches!(
            r.approve("sector1", now, None),
            Err(TransitionError::SameApprover(_, 1))
        ));
        assert_eq!(
            r.approve("district1", now, None),
            Ok(Approval::Final { tier: 2 })
        );
        assert_eq!(r.status, ChangeStatus::Approved);
        r.mark_applied("district1", now).expect("apply");
        assert_eq!(r.status, ChangeStatus::Applied);
        assert!(r.withdraw("enum1", now).is_err());
    }

    #[test]
    fn rejection_ends_the_request() {
        let mut r = request(1);
        let now = Utc::now();
        r.submit("enum1", now).expect("submit");
        r.reject("sector1", now, Some("not found at the address".into()))
            .expect("reject");
        assert_eq!(r.status, ChangeStatus::Rejected);
        assert!(r.approve("sector2", now, None).is_err());
    }

    #[test]
    fn touches_name_every_record() {
        let k = ChangeKind::MergeHouseholds {
            into_household_id: Uuid::from_u128(1),
            from_household_id: Uuid::from_u128(2),
        };
        assert_eq!(k.touches(), vec![Uuid::from_u128(1), Uuid::from_u128(2)]);
        let json = serde_json::to_value(&k).expect("json");
        assert_eq!(json["kind"], "merge_households");
    }
}
