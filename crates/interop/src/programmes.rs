//! Jobs of the programmes context.
//!
//! - `programmes.recertify`: after a household's data changed (and its score was recomputed),
//!   re-evaluates the rule of every programme it (or a member) is waiting for, enrolled in or
//!   suspended from. A beneficiary who no longer qualifies gets an open re-certification
//!   decision for a reviewer; nobody is exited by the machine. Running it twice opens nothing
//!   new (one open decision per enrolment).
//! - `notify.beneficiary`: writes the message of an enrolment transition or a re-certification
//!   decision to the notification outbox, once per cause. The SMS planner
//!   (`inkingi_server::children::reminders::queue_notifications`) sends it.

use inkingi_store::jobs::Job;
use inkingi_store::notifications::NotifyJob;
use inkingi_store::programmes::NotEvaluated;
use inkingi_store::recertification::RecertifyJob;

use crate::worker::{JobContext, JobError, JobHandler};

/// Runs `programmes.recertify` jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecertifyHandler;

#[async_trait::async_trait]
impl JobHandler for RecertifyHandler {
    fn kind(&self) -> &'static str {
        RecertifyJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: serde_json::Value) -> Result<(), JobError> {
        let job: RecertifyJob = serde_json::from_value(payload)
            .map_err(|e| JobError::Permanent(format!("bad programmes.recertify payload: {e}")))?;
        let programmes = ctx.store.programmes();
        let open = programmes
            .open_enrolments_of(job.household_id)
            .await
            .map_err(JobError::retry)?;
        if open.is_empty() {
            return Ok(());
        }
        let catalogue = programmes.programmes(None).await.map_err(JobError::retry)?;
        for e in open {
            let Some(p) = catalogue.iter().find(|p| p.programme.code == e.programme) else {
                continue;
            };
            let finding = match programmes
                .evaluate(&p.programme, e.household_id, e.person_id, true)
                .await
                .map_err(JobError::retry)?
            {
                Ok(ev) if ev.eligible => continue,
                Ok(ev) => ev.explanation,
                Err(NotEvaluated::HouseholdInactive) => {
                    "the household is no longer active in the registry".to_string()
                }
                Err(NotEvaluated::NotALivingMember) => {
                    "the beneficiary is no longer a living member of the household".to_string()
                }
            };
            ctx.store
                .recertifications()
                .open(&e, &finding)
                .await
                .map_err(JobError::retry)?;
        }
        Ok(())
    }
}

/// Runs `notify.beneficiary` jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifyBeneficiaryHandler;

#[async_trait::async_trait]
impl JobHandler for NotifyBeneficiaryHandler {
    fn kind(&self) -> &'static str {
        NotifyJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: serde_json::Value) -> Result<(), JobError> {
        let job: NotifyJob = serde_json::from_value(payload)
            .map_err(|e| JobError::Permanent(format!("bad notify.beneficiary payload: {e}")))?;
        ctx.store
            .notifications()
            .write(&job)
            .await
            .map_err(JobError::retry)?;
        Ok(())
    }
}
