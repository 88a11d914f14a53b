//! Messages the clinic sends outside a direct reply: reminders, staff replies, late replies,
//! one-time codes, calendar notices. Every one is written to the outbox (src/store/outbox.rs)
//! in the same transaction as its record in the turn log, and a `Sender` delivers it on the
//! patient's channel (Twilio: src/channels/twilio/sender.rs) after the commit.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One outgoing message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    /// Conversation id the message belongs to.
    pub session: String,
    /// "whatsapp", "sms", "voice", "api", "cli"…
    pub channel: String,
    /// The patient's address on that channel. Personal data.
    pub user: String,
    pub text: String,
    /// What the message is (stored and logged as today's strings: "reminder", "staff"…).
    pub kind: OutboundKind,
    /// For a reminder: its appointment as flows see it (the shape of `list_appointments`
    /// items), so that the patient's answer to the reminder acts on that appointment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment: Option<Value>,
    /// A pre-approved WhatsApp template sent instead of `text` on WhatsApp (business-initiated
    /// messages outside the 24-hour window need one). Other channels send `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ContentTemplate>,
    /// For a staff reply: who of the staff wrote it (recorded in the turn log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What an outbound message is. Serialized as the strings the turn log (`outbound:<kind>`),
/// the message log and the outbox always used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundKind {
    /// An appointment reminder (src/reminders/).
    Reminder,
    /// A reply written by staff (API or console inbox).
    Staff,
    /// The replies of a turn that ended after the channel stopped waiting for them (Twilio).
    #[default]
    Reply,
    /// A one-time code to the contact on record (`verify_patient`).
    Verification,
    /// A change the clinic made in an external calendar, told to the patient.
    Calendar,
}

impl OutboundKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundKind::Reminder => "reminder",
            OutboundKind::Staff => "staff",
            OutboundKind::Reply => "reply",
            OutboundKind::Verification => "verification",
            OutboundKind::Calendar => "calendar",
        }
    }
}

impl std::fmt::Display for OutboundKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Twilio Content template and the values of its placeholders ("1" → "Cardiología").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentTemplate {
    /// "HX…", from Twilio's Content Template Builder.
    pub content_sid: String,
    pub variables: Map<String, Value>,
}

/// Why a delivery failed. `permanent` failures (the channel refused this message for good:
/// an unverified number on a trial account, outside WhatsApp's 24-hour window…) are not
/// retried; the others (timeouts, the channel's outages) are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// Plain words for the log and the reminder's `last_error`; never the text or the address.
    pub message: String,
    pub permanent: bool,
}

impl DeliveryError {
    /// A refusal that trying again will not change.
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: true,
        }
    }

    /// A failure worth retrying later.
    pub fn retryable(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            permanent: false,
        }
    }
}

impl From<String> for DeliveryError {
    fn from(message: String) -> Self {
        DeliveryError::retryable(message)
    }
}

impl From<&str> for DeliveryError {
    fn from(message: &str) -> Self {
        DeliveryError::retryable(message)
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// A delivery that says the channel's id for the message (Twilio's MessageSid), if any.
pub type SendIdFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<String>, DeliveryError>> + Send + 'a>>;

/// A conversation the patient's answer to a message arrives in, when it is not the message's
/// own: a reminder for an appointment booked by phone goes out by SMS, and the answer comes
/// back in the SMS conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerConversation {
    pub session: String,
    pub channel: String,
    /// The patient's address on that channel. Personal data.
    pub user: String,
}

/// Delivers a message on its channel.
pub trait Sender: Send + Sync {
    fn deliver<'a>(&'a self, msg: &'a Outbound) -> SendFuture<'a>;

    /// Delivers and returns the channel's id for the message (the outbox records it).
    /// Default: [`Sender::deliver`], no id.
    fn deliver_with_id<'a>(&'a self, msg: &'a Outbound) -> SendIdFuture<'a> {
        Box::pin(async move { self.deliver(msg).await.map(|()| None) })
    }

    /// The channel's id of `msg` if the channel already has it since `since`: asked before
    /// sending a message whose previous holder may have died after the channel accepted it
    /// and before its outcome was recorded, so that it is recorded instead of sent again.
    /// Default: the channel cannot tell (`Ok(None)`), and the message is sent.
    fn find_sent<'a>(&'a self, _msg: &'a Outbound, _since: jiff::Timestamp) -> SendIdFuture<'a> {
        Box::pin(async { Ok(None) })
    }

    /// Where the answer to `msg` arrives when it is another conversation than `msg.session`
    /// (the channel it is sent on differs from the conversation's). Default: the same one.
    fn answers_in(&self, _msg: &Outbound) -> Option<AnswerConversation> {
        None
    }
}

/// No channel connected (no Twilio credentials, or API/CLI conversations): delivery is
/// recording it in the turn log, which the service does for every outbound message anyway.
pub struct TurnLogOnly;

impl Sender for TurnLogOnly {
    fn deliver<'a>(&'a self, _msg: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}
