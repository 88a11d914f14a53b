//! Messages the clinic sends without being asked in that turn: reminders and staff replies.
//! A `Sender` delivers them on the patient's channel (Twilio comes with the Twilio issue);
//! the service records every one in the conversation's turn log.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

/// One outgoing message.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outbound {
    /// Conversation id the message belongs to.
    pub session: String,
    /// "whatsapp", "sms", "voice", "api", "cli"…
    pub channel: String,
    /// The patient's address on that channel. Personal data.
    pub user: String,
    pub text: String,
    /// "reminder" or "staff".
    pub kind: String,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Delivers a message on its channel. Errors are plain text for the log and the retry policy.
pub trait Sender: Send + Sync {
    fn deliver<'a>(&'a self, msg: &'a Outbound) -> SendFuture<'a>;
}

/// Until a channel is connected (Twilio issue): delivery is recording it in the turn log, which
/// the service does for every outbound message anyway, so there is nothing more to do.
pub struct TurnLogOnly;

impl Sender for TurnLogOnly {
    fn deliver<'a>(&'a self, _msg: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}
