//! Delivers the clinic's messages (reminders, staff replies) through Twilio's REST API, on
//! the conversation's channel:
//!
//! - `whatsapp` → from TWILIO_WHATSAPP_FROM to "whatsapp:<patient>"; a message that carries
//!   an approved template (reminders, when clinic.yaml configures one) is sent as ContentSid +
//!   ContentVariables, anything else as Body (only accepted inside WhatsApp's 24-hour window);
//! - `sms` → from TWILIO_SMS_FROM, always Body;
//! - `voice` → an SMS to the caller's number (e.g. the reminder of an appointment booked by
//!   phone), from TWILIO_SMS_FROM;
//! - anything else (`api`, `cli`…) → nothing to send: the turn log is the delivery.
//!
//! Every message Twilio accepted is recorded in the message log (src/store/messages.rs) with
//! its MessageSid, so delivery statuses can be matched to it.

use jiff::Timestamp;

use super::TwilioConfig;
use super::rest::{Content, MessageRequest, RestClient, RestError};
use crate::outbound::{AnswerConversation, ContentTemplate, DeliveryError, Outbound, SendFuture, Sender};
use crate::store::{MessageRecord, Store, status_rank};

/// Twilio's limit for one message body (WhatsApp and SMS alike); longer texts go in parts.
pub const MAX_BODY: usize = 1_600;

/// The Twilio addresses of one message, and the template it carries, if any.
struct Route<'m> {
    from: String,
    to: String,
    template: Option<&'m ContentTemplate>,
}

pub struct TwilioSender {
    rest: RestClient,
    cfg: TwilioConfig,
    store: Store,
}

impl TwilioSender {
    /// `None` when the configuration cannot call the REST API (no SID or token).
    pub fn new(cfg: TwilioConfig, store: Store) -> Option<TwilioSender> {
        let rest = RestClient::new(&cfg).ok()?;
        Some(TwilioSender { rest, cfg, store })
    }

    /// One line for the start-up banner: which senders are set (never a secret).
    pub fn describe(&self) -> String {
        describe(&self.cfg)
    }

    /// Sends `msg` (a long text as several messages); returns the last MessageSid.
    async fn send(&self, msg: &Outbound) -> Result<Option<String>, DeliveryError> {
        let Some(Route { from, to, template }) = self.addresses(msg)? else {
            // API and CLI conversations: the turn log is where the message goes.
            return Ok(None);
        };
        let contents: Vec<Content<'_>> = match template {
            Some(t) => vec![Content::Template {
                content_sid: &t.content_sid,
                variables: &t.variables,
            }],
            None => split_body(&msg.text, MAX_BODY).into_iter().map(Content::Body).collect(),
        };
        let mut sid = None;
        for content in contents {
            let req = MessageRequest {
                to: &to,
                from: &from,
                content,
            };
            let accepted = self.rest.send_message(&req).await.map_err(|e| delivery_error(&e))?;
            self.record(msg, &accepted.sid, accepted.status.as_deref().unwrap_or("queued"))
                .await;
            sid = Some(accepted.sid);
        }
        Ok(sid)
    }

    /// The MessageSid of `msg` if Twilio took it since `since`: among the newest messages from
    /// the clinic's sender to the patient, one created since then with the body of `msg`'s
    /// last part (a template message: any one created since then, as its body is Twilio's
    /// rendering).
    async fn already_sent(&self, msg: &Outbound, since: Timestamp) -> Result<Option<String>, DeliveryError> {
        let Some(Route { from, to, template }) = self.addresses(msg)? else {
            return Ok(None);
        };
        let last = split_body(&msg.text, MAX_BODY).pop().unwrap_or_default();
        let listed = self
            .rest
            .recent_messages(&to, &from, 20)
            .await
            .map_err(|e| delivery_error(&e))?;
        Ok(listed
            .into_iter()
            .find(|m| {
                // Twilio's dates have whole seconds.
                m.created()
                    .is_some_and(|at| at >= since - jiff::SignedDuration::from_secs(1))
                    && (template.is_some() || m.body.as_deref() == Some(last))
            })
            .map(|m| m.sid))
    }

    /// Where `msg` goes on its channel; None for channels Twilio does not carry.
    fn addresses<'m>(&self, msg: &'m Outbound) -> Result<Option<Route<'m>>, DeliveryError> {
        let bare = msg.user.split_once(':').map_or(msg.user.as_str(), |(_, n)| n);
        let (from, to, template) = match msg.channel.as_str() {
            "whatsapp" => (
                self.cfg.whatsapp_from.as_deref().ok_or_else(|| {
                    DeliveryError::permanent("TWILIO_WHATSAPP_FROM is not set: the clinic has no WhatsApp sender")
                })?,
                format!("whatsapp:{bare}"),
                msg.template.as_ref(),
            ),
            "sms" | "voice" => (
                self.cfg.sms_from.as_deref().ok_or_else(|| {
                    DeliveryError::permanent("TWILIO_SMS_FROM is not set: the clinic has no SMS number")
                })?,
                bare.to_string(),
                None,
            ),
            _ => return Ok(None),
        };
        let from = if msg.channel == "whatsapp" && !from.starts_with("whatsapp:") {
            format!("whatsapp:{from}")
        } else {
            from.to_string()
        };
        Ok(Some(Route { from, to, template }))
    }

    /// Records an accepted message. A failure here is logged, not returned: the patient has
    /// the message, and reporting a failure would send it again.
    async fn record(&self, msg: &Outbound, sid: &str, status: &str) {
        let now = Timestamp::now();
        let record = MessageRecord {
            id: sid.to_string(),
            session: Some(msg.session.clone()),
            channel: Some(msg.channel.clone()),
            kind: Some(msg.kind.as_str().to_string()),
            status: status.to_string(),
            rank: status_rank(status),
            error_code: None,
            created_at: now,
            updated_at: now,
        };
        if let Err(e) = self.store.record_message(&record).await {
            tracing::warn!(kind = %msg.kind, "sent through Twilio but not recorded in the message log: {e}");
        }
    }
}

impl Sender for TwilioSender {
    fn deliver<'a>(&'a self, msg: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async move { self.send(msg).await.map(|_| ()) })
    }

    fn deliver_with_id<'a>(&'a self, msg: &'a Outbound) -> crate::outbound::SendIdFuture<'a> {
        Box::pin(self.send(msg))
    }

    fn find_sent<'a>(&'a self, msg: &'a Outbound, since: Timestamp) -> crate::outbound::SendIdFuture<'a> {
        Box::pin(self.already_sent(msg, since))
    }

    /// A message for a phone-call conversation goes by SMS, so its answer comes back in the
    /// SMS conversation between the caller and the clinic's SMS number.
    fn answers_in(&self, msg: &Outbound) -> Option<AnswerConversation> {
        if msg.channel != "voice" {
            return None;
        }
        let from = self.cfg.sms_from.as_deref()?;
        let caller = msg.user.split_once(':').map_or(msg.user.as_str(), |(_, n)| n);
        Some(AnswerConversation {
            session: super::session_id("sms", caller, from),
            channel: "sms".into(),
            user: caller.to_string(),
        })
    }
}

/// The delivery error for a REST error, logged with the code and a plain explanation only.
fn delivery_error(e: &RestError) -> DeliveryError {
    match e {
        RestError::Refused { code, explanation, .. } => {
            tracing::warn!(code, "Twilio refused a message: {explanation}");
            DeliveryError::permanent(e.to_string())
        }
        _ if e.retryable() => DeliveryError::retryable(e.to_string()),
        _ => {
            tracing::warn!("Twilio message failed: {e}");
            DeliveryError::permanent(e.to_string())
        }
    }
}

/// Splits `text` into parts of at most `max` characters, at a line break or a space when
/// there is one in the second half of the part.
/// Which channels a sender with `cfg` can send on, for the start-up banner (never a secret).
pub fn describe(cfg: &TwilioConfig) -> String {
    let mut channels = Vec::new();
    if cfg.whatsapp_from.is_some() {
        channels.push("WhatsApp");
    }
    if cfg.sms_from.is_some() {
        channels.push("SMS");
    }
    if channels.is_empty() {
        "Twilio REST (no clinic.numbers, TWILIO_WHATSAPP_FROM or TWILIO_SMS_FROM: nothing can be sent)".into()
    } else {
        format!("Twilio REST ({})", channels.join(" and "))
    }
}

pub fn split_body(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max {
        let cut = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..cut];
        let at = head
            .rfind('\n')
            .filter(|i| *i > cut / 2)
            .or_else(|| head.rfind(' ').filter(|i| *i > cut / 2))
            .unwrap_or(cut);
        parts.push(rest[..at].trim_end());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::split_body;

    #[test]
    fn long_bodies_are_split_at_spaces_under_the_limit() {
        assert_eq!(split_body("hola", 1600), vec!["hola"]);
        let text = "palabra ".repeat(500);
        let parts = split_body(&text, 1600);
        assert!(parts.len() == 3, "{}", parts.len());
        assert!(
            parts
                .iter()
                .all(|p| p.chars().count() <= 1600 && !p.starts_with(' ') && !p.ends_with(' '))
        );
        assert_eq!(parts.concat().replace(' ', ""), text.replace(' ', ""));
        let no_spaces = "á".repeat(3300);
        let parts = split_body(&no_spaces, 1600);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            vec![1600, 1600, 100]
        );
    }
}
