//! `targeting.rescore`: recomputes a household's score with the current scoring model after
//! its data changed. Every registry event enqueues one in the event's transaction; running it
//! twice only writes the same score again.
//!
//! A household with open enrolments then gets a `programmes.recertify` job (see
//! [`crate::programmes`]): it runs after the new score is stored, so the programmes' rules are
//! re-evaluated on the score the change produced.

use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::recertification::RecertifyJob;
use inkingi_store::targeting::RescoreJob;

use crate::worker::{JobContext, JobError, JobHandler};

/// Runs `targeting.rescore` jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RescoreHandler;

#[async_trait::async_trait]
impl JobHandler for RescoreHandler {
    fn kind(&self) -> &'static str {
        RescoreJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: serde_json::Value) -> Result<(), JobError> {
        let job: RescoreJob = serde_json::from_value(payload)
            .map_err(|e| JobError::Permanent(format!("bad targeting.rescore payload: {e}")))?;
        // A household that is no longer active, or a registry without a model, has nothing to
        // score: that is a success, not a failure to retry.
        ctx.store
            .targeting()
            .rescore(job.household_id)
            .await
            .map_err(JobError::retry)?;
        let open = ctx
            .store
            .programmes()
            .open_enrolments_of(job.household_id)
            .await
            .map_err(JobError::retry)?;
        if !open.is_empty() {
            let next = NewJob::of(&RecertifyJob {
                household_id: job.household_id,
            })
            .map_err(JobError::permanent)?;
            ctx.store
                .jobs()
                .enqueue_now(next)
                .await
                .map_err(JobError::retry)?;
        }
        Ok(())
    }
}
