//! Twilio's REST API for the messages the clinic starts: `POST
//! {api_base}/2010-04-01/Accounts/{sid}/Messages.json` with basic auth (account SID, auth
//! token). Bounded by a timeout; errors are typed so the caller knows whether trying again
//! can help (Twilio's 4xx refusals cannot; its outages, timeouts and lost connections can).
//!
//! Nothing here logs a body or a phone number: Twilio's own error messages often quote the
//! number, so only its numeric code and a plain explanation reach the logs.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::TwilioConfig;

/// The longest one REST call may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What a message carries: text, or an approved template and its placeholder values.
#[derive(Debug, Clone, PartialEq)]
pub enum Content<'a> {
    Body(&'a str),
    Template {
        content_sid: &'a str,
        variables: &'a Map<String, Value>,
    },
}

/// One message to send. `to` and `from` are Twilio addresses ("+54…" or "whatsapp:+54…").
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRequest<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub content: Content<'a>,
}

/// What Twilio said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Accepted {
    pub sid: String,
    /// Usually "queued" (or "accepted" for messaging services).
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Twilio refused this message (4xx): sending it again gives the same answer.
    #[error("Twilio refused the message (HTTP {status}, error {code}): {explanation}")]
    Refused {
        status: u16,
        /// Twilio's error code (0 when it gave none), see https://www.twilio.com/docs/api/errors.
        code: i64,
        explanation: String,
    },
    /// Twilio is overloaded or failing (429, 5xx): try later.
    #[error("Twilio is unavailable right now (HTTP {status}, error {code})")]
    Unavailable { status: u16, code: i64 },
    #[error("Twilio did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach Twilio: {0}")]
    Connection(String),
    /// A 2xx answer we cannot read: the message may have been sent, do not repeat it.
    #[error("unexpected answer from Twilio: {0}")]
    BadAnswer(String),
    /// Missing account SID or auth token.
    #[error("Twilio is not configured: {0}")]
    NotConfigured(&'static str),
}

impl RestError {
    /// Whether sending the same message later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            RestError::Unavailable { .. } | RestError::Timeout(_) | RestError::Connection(_)
        )
    }
}

/// Plain words for the Twilio error codes a clinic meets most.
pub fn explain(code: i64) -> &'static str {
    match code {
        63016 => {
            "outside WhatsApp's 24-hour window: the patient has not written in the last 24 hours, \
             so only an approved template can be sent (configure whatsapp.reminder_template in clinic.yaml)"
        }
        21608 => {
            "the number is not verified: a Twilio trial account can only send to verified numbers \
             (verify it in the Twilio console or upgrade the account)"
        }
        21211 => "the patient's number is not a valid phone number",
        21610 => "the patient has opted out (replied STOP) and cannot be messaged",
        21612 | 21614 => {
            "this number cannot receive messages from the clinic's number (not a mobile, or not reachable)"
        }
        21606 | 21659 | 21660 | 63007 => {
            "the clinic's sender (TWILIO_WHATSAPP_FROM / TWILIO_SMS_FROM) is not a number of this Twilio account \
             enabled for this channel"
        }
        20003 => "authentication failed: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        21656 | 21655 => {
            "the template's ContentSid or ContentVariables were refused: check the template in clinic.yaml"
        }
        63112 | 63024 => "the WhatsApp template is not approved (or was paused) for this sender",
        _ => "see Twilio's error dictionary for this code",
    }
}

/// One message of the account's Messages list (the fields reconciliation reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListedMessage {
    pub sid: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// RFC 2822, as Twilio writes it ("Wed, 02 Dec 2026 10:00:00 +0000").
    #[serde(default)]
    pub date_created: Option<String>,
}

impl ListedMessage {
    /// When Twilio created it; None when missing or unreadable.
    pub fn created(&self) -> Option<jiff::Timestamp> {
        let raw = self.date_created.as_deref()?;
        jiff::fmt::rfc2822::parse(raw).ok().map(|z| z.timestamp())
    }
}

#[derive(Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<ListedMessage>,
}

#[derive(Deserialize)]
struct TwilioErrorBody {
    #[serde(default)]
    code: Option<i64>,
}

/// A Twilio REST client for one account.
#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    messages_url: String,
    account_sid: String,
    auth_token: String,
    /// Where Twilio reports delivery statuses (`{public_url}/twilio/messaging/status`).
    status_callback: Option<String>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("RestClient")
            .field("messages_url", &self.messages_url)
            .finish()
    }
}

impl RestClient {
    /// A client for the account in `cfg`; `NotConfigured` without SID and token.
    pub fn new(cfg: &TwilioConfig) -> Result<RestClient, RestError> {
        let account_sid = cfg
            .account_sid
            .clone()
            .ok_or(RestError::NotConfigured("TWILIO_ACCOUNT_SID is not set"))?;
        let auth_token = cfg
            .auth_token
            .clone()
            .ok_or(RestError::NotConfigured("TWILIO_AUTH_TOKEN is not set"))?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| RestError::Connection(e.to_string()))?;
        Ok(RestClient {
            http,
            messages_url: format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", cfg.api_base),
            account_sid,
            auth_token,
            status_callback: cfg.public_url.as_ref().map(|u| format!("{u}/twilio/messaging/status")),
        })
    }

    /// Sends one message; returns Twilio's MessageSid.
    pub async fn send_message(&self, req: &MessageRequest<'_>) -> Result<Accepted, RestError> {
        let mut form: Vec<(&str, String)> = vec![("To", req.to.to_string()), ("From", req.from.to_string())];
        match &req.content {
            Content::Body(text) => form.push(("Body", text.to_string())),
            Content::Template { content_sid, variables } => {
                form.push(("ContentSid", content_sid.to_string()));
                form.push(("ContentVariables", Value::Object((*variables).clone()).to_string()));
            }
        }
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.clone()));
        }
        let resp = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(transport)?;
        read_answer(resp).await
    }
}

impl RestClient {
    /// The newest messages (first page, newest first) from `from` to `to`: how a sender that
    /// lost track of a message (it died after Twilio accepted it) finds out it went out.
    pub async fn recent_messages(&self, to: &str, from: &str, page_size: u32) -> Result<Vec<ListedMessage>, RestError> {
        let page_size = page_size.to_string();
        let resp = self
            .http
            .get(&self.messages_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .query(&[("To", to), ("From", from), ("PageSize", page_size.as_str())])
            .send()
            .await
            .map_err(transport)?;
        read_answer::<MessagePage>(resp).await.map(|p| p.messages)
    }
}

/// A 2xx answer read as `T`; anything else as the typed error (refusal or outage).
async fn read_answer<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, RestError> {
    let status = resp.status();
    let body = resp.text().await.map_err(transport)?;
    if status.is_success() {
        return serde_json::from_str::<T>(&body).map_err(|e| RestError::BadAnswer(e.to_string()));
    }
    let code = serde_json::from_str::<TwilioErrorBody>(&body)
        .ok()
        .and_then(|b| b.code)
        .unwrap_or(0);
    let status = status.as_u16();
    if status == 429 || status >= 500 {
        return Err(RestError::Unavailable { status, code });
    }
    Err(RestError::Refused {
        status,
        code,
        explanation: explain(code).to_string(),
    })
}

fn transport(e: reqwest::Error) -> RestError {
    if e.is_timeout() {
        RestError::Timeout(TIMEOUT)
    } else {
        // Without the URL: it names the account.
        RestError::Connection(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_final_and_outages_are_not() {
        let refused = RestError::Refused {
            status: 400,
            code: 63016,
            explanation: explain(63016).into(),
        };
        assert!(!refused.retryable());
        assert!(refused.to_string().contains("24-hour window"), "{refused}");
        assert!(RestError::Unavailable { status: 503, code: 0 }.retryable());
        assert!(RestError::Timeout(TIMEOUT).retryable());
        assert!(!RestError::BadAnswer("x".into()).retryable());
        assert!(explain(21608).contains("trial"));
    }

    #[test]
    fn needs_the_account_and_the_token() {
        let cfg = TwilioConfig::from_lookup(|k| (k == "TWILIO_ACCOUNT_SID").then(|| "ACx".to_string()));
        assert!(matches!(RestClient::new(&cfg), Err(RestError::NotConfigured(_))));
    }
}
