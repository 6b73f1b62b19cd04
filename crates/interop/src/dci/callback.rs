//! `dci.callback`: delivers an asynchronous answer (on-search, txn/on-status) to the caller's
//! `sender_uri`. The answer is built when the request is accepted and enqueued in the same
//! transaction as its message id, so an accepted request is answered even if this process
//! stops; every retry sends the same message id, so the receiver can drop repeats.

use std::time::Duration;

use inkingi_store::jobs::Job;
use serde::{Deserialize, Serialize};

use crate::worker::{JobContext, JobError, JobHandler};

/// Timeout of one delivery attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The payload of a `dci.callback` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackJob {
    /// Where to POST: the caller's `sender_uri` joined with the callback path.
    pub url: String,
    /// The answer envelope.
    pub body: serde_json::Value,
    /// The transaction it answers; marked delivered on success.
    pub correlation_id: String,
}

impl Job for CallbackJob {
    const KIND: &'static str = "dci.callback";
    const QUEUE: &'static str = "dci";
    /// With the default backoff (capped at 10 minutes) this keeps trying for about two hours.
    const MAX_ATTEMPTS: u32 = 20;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("dci-callback:{}", self.correlation_id))
    }
}

/// Joins a caller's `sender_uri` and a callback path (`on-search`, `txn/on-status`): a URI
/// that already ends with the path is used as is. Only http(s) URLs are accepted.
pub fn callback_url(sender_uri: &str, path: &str) -> Result<String, String> {
    let base = sender_uri.trim();
    let url = reqwest::Url::parse(base)
        .map_err(|e| format!("header.sender_uri '{}': {e}", super::envelope::short(base)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "header.sender_uri '{}': an http or https URL is needed for the answer",
            super::envelope::short(base)
        ));
    }
    let trimmed = base.trim_end_matches('/');
    if trimmed.ends_with(&format!("/{path}")) {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("{trimmed}/{path}"))
    }
}

/// Runs `dci.callback` jobs.
#[derive(Debug, Clone)]
pub struct CallbackHandler {
    client: reqwest::Client,
    signer: Option<super::signing::MessageSigner>,
}

impl CallbackHandler {
    pub fn new() -> Result<CallbackHandler, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            // An answer goes where the caller said, not where a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(CallbackHandler {
            client,
            signer: None,
        })
    }

    /// Signs every answer before it is sent (each attempt anew, so the signature is fresh).
    pub fn signed_by(mut self, signer: Option<super::signing::MessageSigner>) -> Self {
        self.signer = signer;
        self
    }
}

#[async_trait::async_trait]
impl JobHandler for CallbackHandler {
    fn kind(&self) -> &'static str {
        CallbackJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: serde_json::Value) -> Result<(), JobError> {
        let job: CallbackJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", CallbackJob::KIND)))?;
        let mut body = job.body.clone();
        if let Some(signer) = &self.signer {
            signer.sign(&mut body, chrono::Utc::now());
        }
        let res = self
            .client
            .post(&job.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| JobError::retry(format!("POST {}: {e}", job.url)))?;
        let status = res.status();
        if status.is_success() {
            ctx.store
                .dci()
                .set_transaction_status(&job.correlation_id, "succ", chrono::Utc::now())
                .await
                .map_err(JobError::retry)?;
            return Ok(());
        }
        let msg = format!("POST {}: HTTP {status}", job.url);
        // Overload and timeouts pass; other client errors mean the answer will never be taken.
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
        {
            Err(JobError::Retry(msg))
        } else {
            Err(JobError::Permanent(msg))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn joins_sender_uri_and_path() {
        let j = |u| callback_url(u, "on-search");
        assert_eq!(
            j("http://a.example/dci").unwrap(),
            "http://a.example/dci/on-search"
        );
        assert_eq!(
            j("http://a.example/dci/").unwrap(),
            "http://a.example/dci/on-search"
        );
        assert_eq!(
            j("https://a.example/cb/on-search").unwrap(),
            "https://a.example/cb/on-search"
        );
        assert!(j("").is_err());
        assert!(j("ftp://a.example/x")
            .unwrap_err()
            .contains("http or https"));
        assert!(j("not a url").is_err());
    }
}
