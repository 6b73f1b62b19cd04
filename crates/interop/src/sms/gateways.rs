//! The two gateway adapters and the reading of their delivery reports.

use serde_json::Value;

use super::{Outgoing, Provider, SendError, SmsConnector, SmsGateway};
use crate::breaker;
use inkingi_store::sms::DlrOutcome;

/// Kannel's report types asked for: delivered (1), not delivered (2), not delivered to the
/// SMSC (16) — the final ones (1 + 2 + 16).
pub const KANNEL_DLR_MASK: u8 = 19;

/// Where Kannel (through `dlr-url`) and Africa's Talking (its dashboard's callback URL) send
/// delivery reports, below Inkingi's base URL.
pub const KANNEL_DLR_PATH: &str = "/sms/dlr/kannel";
pub const AT_DLR_PATH: &str = "/sms/dlr/africastalking";

fn client(c: &SmsConnector) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(c.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the SMS gateway's HTTP client: {e}"))
}

/// A failed HTTP status: 5xx, 429 and 408 are worth retrying, other refusals are not.
fn by_status(what: &str, status: reqwest::StatusCode, body: &str) -> SendError {
    let msg = format!(
        "{what}: HTTP {status}: {}",
        body.trim().chars().take(200).collect::<String>()
    );
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        SendError::Transient(msg)
    } else {
        SendError::Refused(msg)
    }
}

/// Kannel's smsbox, HTTP `sendsms` interface.
#[derive(Debug, Clone)]
pub struct Kannel {
    c: SmsConnector,
    http: reqwest::Client,
}

impl Kannel {
    pub fn new(c: SmsConnector) -> Result<Kannel, String> {
        Ok(Kannel {
            http: client(&c)?,
            c,
        })
    }

    /// Our delivery-report URL for a message; Kannel replaces `%d` with the report type.
    fn dlr_url(&self, m: &Outgoing<'_>) -> String {
        format!(
            "{}{KANNEL_DLR_PATH}?id={}&token={}&type=%d",
            self.c.dlr_base.trim_end_matches('/'),
            m.message_id,
            m.dlr_token
        )
    }
}

/// Kannel's `coding`: 0 (7-bit GSM) when the text is plain ASCII, else 2 (UCS-2), so
/// Kinyarwanda and French letters outside GSM-7 arrive intact.
fn kannel_coding(text: &str) -> &'static str {
    if text.is_ascii() {
        "0"
    } else {
        "2"
    }
}

#[async_trait::async_trait]
impl SmsGateway for Kannel {
    fn provider(&self) -> Provider {
        Provider::Kannel
    }

    fn system(&self) -> String {
        breaker::system_of(&self.c.url)
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Option<String>, SendError> {
        let url = format!("{}/cgi-bin/sendsms", self.c.url.trim_end_matches('/'));
        let mask = KANNEL_DLR_MASK.to_string();
        let dlr = self.dlr_url(m);
        let mut q: Vec<(&str, &str)> = vec![
            ("username", self.c.username.as_str()),
            ("password", self.c.secret.as_str()),
            ("to", m.to),
            ("text", m.text),
            ("charset", "UTF-8"),
            ("coding", kannel_coding(m.text)),
        ];
        if !self.c.sender_id.is_empty() {
            q.push(("from", self.c.sender_id.as_str()));
        }
        if !self.c.dlr_base.is_empty() {
            q.push(("dlr-mask", mask.as_str()));
            q.push(("dlr-url", dlr.as_str()));
        }
        let res = self
            .http
            .get(&url)
            .query(&q)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("GET {url}: {}", e.without_url())))?;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(by_status(&format!("GET {url}"), status, &body));
        }
        // `0: Accepted for delivery`, `3: Queued for later delivery`.
        match body.trim().split(':').next().map(str::trim) {
            Some("0") | Some("3") => Ok(None),
            _ => Err(SendError::Transient(format!(
                "GET {url}: unexpected answer '{}'",
                body.trim().chars().take(200).collect::<String>()
            ))),
        }
    }
}

/// Reads Kannel's report type (the `%d` of dlr-url).
pub fn kannel_dlr(kind: &str) -> Result<DlrOutcome, String> {
    match kind.trim() {
        "1" => Ok(DlrOutcome::Delivered),
        "2" | "16" => Ok(DlrOutcome::Undelivered),
        "4" | "8" => Ok(DlrOutcome::Interim),
        other => Err(format!(
            "'{other}' is not a Kannel delivery report type (1, 2, 4, 8 or 16)"
        )),
    }
}

/// Africa's Talking's messaging API.
#[derive(Debug, Clone)]
pub struct AfricasTalking {
    c: SmsConnector,
    http: reqwest::Client,
}

impl AfricasTalking {
    pub fn new(c: SmsConnector) -> Result<AfricasTalking, String> {
        Ok(AfricasTalking {
            http: client(&c)?,
            c,
        })
    }
}

#[async_trait::async_trait]
impl SmsGateway for AfricasTalking {
    fn provider(&self) -> Provider {
        Provider::AfricasTalking
    }

    fn system(&self) -> String {
        breaker::system_of(&self.c.url)
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Option<String>, SendError> {
        let url = format!("{}/version1/messaging", self.c.url.trim_end_matches('/'));
        let mut form: Vec<(&str, &str)> = vec![
            ("username", self.c.username.as_str()),
            ("to", m.to),
            ("message", m.text),
        ];
        if !self.c.sender_id.is_empty() {
            form.push(("from", self.c.sender_id.as_str()));
        }
        let res = self
            .http
            .post(&url)
            .header("apiKey", &self.c.secret)
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("POST {url}: {}", e.without_url())))?;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(by_status(&format!("POST {url}"), status, &body));
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| SendError::Transient(format!("POST {url}: answer is not JSON: {e}")))?;
        at_recipient(&v).map(Some)
    }
}

/// The one recipient's outcome in an Africa's Talking answer: its `messageId` when taken
/// (status codes 100 Processed, 101 Sent, 102 Queued).
pub fn at_recipient(v: &Value) -> Result<String, SendError> {
    let data = &v["SMSMessageData"];
    let Some(r) = data["Recipients"].get(0) else {
        return Err(SendError::Refused(format!(
            "Africa's Talking took no recipient: {}",
            data["Message"].as_str().unwrap_or("(no message)")
        )));
    };
    let code = r["statusCode"].as_u64().unwrap_or(0);
    let status = r["status"].as_str().unwrap_or("");
    match code {
        100..=102 => r["messageId"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| SendError::Transient("Africa's Talking gave no messageId".into())),
        500..=599 => Err(SendError::Transient(format!(
            "Africa's Talking: {code} {status}"
        ))),
        _ => Err(SendError::Refused(format!(
            "Africa's Talking refused the message: {code} {status}"
        ))),
    }
}

/// Reads an Africa's Talking delivery report status.
pub fn at_dlr(status: &str) -> Result<DlrOutcome, String> {
    match status.trim() {
        "Success" => Ok(DlrOutcome::Delivered),
        "Failed" | "Rejected" => Ok(DlrOutcome::Undelivered),
        "Sent" | "Submitted" | "Buffered" => Ok(DlrOutcome::Interim),
        other => Err(format!(
            "'{other}' is not an Africa's Talking delivery status (Sent, Submitted, Buffered, \
             Rejected, Success, Failed)"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn africas_talking_answers_are_read() {
        let ok = json!({"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [
            {"statusCode": 101, "number": "+250788123456", "status": "Success",
             "cost": "RWF 10", "messageId": "ATXid_1"}]}});
        assert_eq!(at_recipient(&ok).unwrap(), "ATXid_1");
        let bad = json!({"SMSMessageData": {"Recipients": [
            {"statusCode": 403, "status": "InvalidPhoneNumber", "messageId": "None"}]}});
        assert!(matches!(at_recipient(&bad), Err(SendError::Refused(_))));
        let busy = json!({"SMSMessageData": {"Recipients": [
            {"statusCode": 500, "status": "InternalServerError"}]}});
        assert!(matches!(at_recipient(&busy), Err(SendError::Transient(_))));
        let none = json!({"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}});
        assert!(
            matches!(at_recipient(&none), Err(SendError::Refused(m)) if m.contains("InvalidSenderId"))
        );
    }

    #[test]
    fn report_types_are_read_and_others_refused() {
        assert_eq!(kannel_dlr("1").unwrap(), DlrOutcome::Delivered);
        assert_eq!(kannel_dlr("16").unwrap(), DlrOutcome::Undelivered);
        assert_eq!(kannel_dlr("8").unwrap(), DlrOutcome::Interim);
        assert!(kannel_dlr("3").unwrap_err().contains("1, 2, 4, 8 or 16"));
        assert_eq!(at_dlr("Success").unwrap(), DlrOutcome::Delivered);
        assert_eq!(at_dlr("Rejected").unwrap(), DlrOutcome::Undelivered);
        assert!(at_dlr("Delivered").is_err());
    }

    #[test]
    fn coding_follows_the_text() {
        assert_eq!(kannel_coding("Muraho"), "0");
        assert_eq!(kannel_coding("Vérifiez"), "2");
    }
}
