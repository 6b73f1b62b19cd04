//! The `sms.send` job: sends one planned message through the gateway.
//!
//! A message is sent once: the job reads the message and does nothing when it is no longer
//! queued (an earlier run sent it), and its enqueue key is the message id. Inside the quiet
//! hours (or before its planned time) it is deferred to their end, not dropped. The phone is
//! looked up now, from the registry person or the user, and the text is rendered in the
//! recipient's language. A gateway failure is retried with backoff; the gateway's circuit
//! breaker defers jobs while it is open; a refusal or the last failed attempt marks the message
//! failed and parks the job dead (the dead-letter list of `inkingi jobs list --status dead`).
//!
//! The one window for a duplicate: the gateway took the message but its answer was lost (or
//! the worker died before writing `sent`). Neither Kannel's `sendsms` nor Africa's Talking's
//! messaging API take an idempotency key, so the retry sends again.

use std::sync::Arc;

use chrono::Utc;
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::AreaScope;
use inkingi_store::jobs::Job;
use inkingi_store::sms::{Recipient, SendSmsJob, SmsMessage, SmsStatus};
use inkingi_store::Store;
use serde_json::Value;

use super::catalogue::Catalogue;
use super::{Outgoing, SendError, SmsGateway, SmsSettings};
use crate::breaker::{self, Breakers};
use crate::worker::{JobContext, JobError, JobHandler};

/// Runs `sms.send` jobs through one gateway.
#[derive(Clone)]
pub struct SendSmsHandler {
    gateway: Arc<dyn SmsGateway>,
    settings: SmsSettings,
}

impl SendSmsHandler {
    pub fn new(gateway: Arc<dyn SmsGateway>, settings: SmsSettings) -> SendSmsHandler {
        SendSmsHandler { gateway, settings }
    }

    /// The connector's name in metrics and breakers: `sms.kannel`, `sms.africastalking`.
    fn connector(&self) -> String {
        format!("sms.{}", self.gateway.provider().as_str())
    }
}

/// The recipient's phone now, and the area to audit a person's under.
async fn phone_of(
    store: &Store,
    to: Recipient,
) -> Result<Option<(String, Option<inkingi_domain::areas::AreaCode>)>, JobError> {
    match to {
        Recipient::Person(id) => {
            let p = store
                .registry()
                .person(&AreaScope::national(), id)
                .await
                .map_err(JobError::retry)?;
            Ok(p.filter(|p| p.person.died_on.is_none()).and_then(|p| {
                let phone = p.person.data.phones.first()?.as_str().to_string();
                Some((phone, p.person.village.clone()))
            }))
        }
        Recipient::User(id) => Ok(store
            .sms()
            .user_contact(id)
            .await
            .map_err(JobError::retry)?
            .and_then(|u| u.phone)
            .map(|p| (p, None))),
    }
}

/// Audits that a registry person's phone was given to the gateway.
async fn audit_send(
    store: &Store,
    m: &SmsMessage,
    area: Option<inkingi_domain::areas::AreaCode>,
) -> Result<(), JobError> {
    let Recipient::Person(id) = m.recipient else {
        return Ok(());
    };
    let mut rec = AuditRecord::new("system", "person.sms", "person");
    rec.subject_id = Some(id.to_string());
    rec.area = area;
    rec.fields = vec!["phone".into()];
    rec.purpose = Some(format!("sms: {}", m.template));
    store
        .audit()
        .append(vec![rec])
        .await
        .map(|_| ())
        .map_err(JobError::retry)
}

#[async_trait::async_trait]
impl JobHandler for SendSmsHandler {
    fn kind(&self) -> &'static str {
        SendSmsJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let job: SendSmsJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", SendSmsJob::KIND)))?;
        let store = &ctx.store;
        let sms = store.sms();
        let Some(m) = sms.get(job.message_id).await.map_err(JobError::retry)? else {
            return Err(JobError::permanent(format!(
                "no SMS message {}",
                job.message_id
            )));
        };
        if m.status != SmsStatus::Queued {
            return Ok(());
        }
        let now = Utc::now();
        let allowed = self
            .settings
            .quiet
            .map_or(now, |q| q.next_allowed(now))
            .max(m.not_before);
        if allowed > now {
            return Err(JobError::Defer {
                after: (allowed - now).to_std().unwrap_or_default(),
                reason: format!("quiet hours: not before {allowed}"),
            });
        }
        let Some((phone, area)) = phone_of(store, m.recipient).await? else {
            sms.mark_failed(m.id, "no phone number for the recipient")
                .await
                .map_err(JobError::retry)?;
            return Ok(());
        };
        let text = match Catalogue::embedded()
            .and_then(|c| c.render(&m.language, &m.template, &m.params))
        {
            Ok(t) => t,
            Err(e) => {
                sms.mark_failed(m.id, &e).await.map_err(JobError::retry)?;
                return Err(JobError::Permanent(e));
            }
        };
        let (connector, system) = (self.connector(), self.gateway.system());
        let breakers = Breakers::global();
        if let Err(wait) = breakers.before_call(&connector, &system) {
            breaker::count_deferred(&connector, &system);
            return Err(JobError::Defer {
                after: wait,
                reason: format!("circuit of {system} is open"),
            });
        }
        let out = Outgoing {
            message_id: m.id,
            to: &phone,
            text: &text,
            dlr_token: &m.dlr_token,
        };
        match self.gateway.send(&out).await {
            Ok(provider_id) => {
                breakers.success(&connector, &system);
                sms.mark_sent(
                    m.id,
                    self.gateway.provider().as_str(),
                    provider_id.as_deref(),
                )
                .await
                .map_err(JobError::retry)?;
                audit_send(store, &m, area).await
            }
            Err(SendError::Transient(e)) => {
                breakers.failure(&connector, &system);
                if ctx.attempt < ctx.max_attempts {
                    breaker::count_retry(&connector, &system);
                    sms.note(m.id, &e).await.map_err(JobError::retry)?;
                } else {
                    breaker::count_failed(&connector, &system);
                    sms.mark_failed(m.id, &e).await.map_err(JobError::retry)?;
                }
                Err(JobError::Retry(e))
            }
            Err(SendError::Refused(e)) => {
                breaker::count_failed(&connector, &system);
                sms.mark_failed(m.id, &e).await.map_err(JobError::retry)?;
                Err(JobError::Permanent(e))
            }
        }
    }
}
