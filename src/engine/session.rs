//! The state of one conversation, persisted between turns. Plain data (serde), so the store
//! keeps it as one document and `step` can be a pure function of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lang::Lang;

pub type Slots = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Conversation id (for Twilio: channel + address; for the API: the caller's id).
    pub id: String,
    /// "cli", "api", "whatsapp", "sms", "voice".
    pub channel: String,
    /// The patient's address on that channel (phone number, API user). Personal data: never
    /// logged at info level.
    pub user: String,
    pub lang: Lang,
    /// Active flows, innermost last. Empty when idle.
    pub stack: Vec<Frame>,
    /// Set by a handoff/escalation; the bot stays quiet (except to say staff will reply).
    pub waiting_for_staff: bool,
    /// Whether the patient was already told, during this handoff, that staff will answer.
    #[serde(default)]
    pub staff_told: bool,
    /// Consecutive messages the bot did not understand (reset on any understood message).
    pub failures: u32,
    pub greeted: bool,
    /// Whether the out-of-hours note was already given in this conversation.
    pub out_of_hours_noted: bool,
    /// Incremented on every save; the store uses it to refuse lost updates.
    pub version: u64,
    /// Number of turns taken.
    pub turns: u64,
    /// The last few exchanges (at most `RECENT_MAX`), already masked, for the LLM prompt:
    /// kept here so a turn needs no query of the turn log. Only filled when an LLM is in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<Exchange>,
    /// Whether the conversation goes round in circles (see engine/stalls.rs).
    #[serde(default)]
    pub watch: super::stalls::Watch,
    /// The patient this conversation proved to be (`verify_patient`): the keyed hash of their
    /// document (`identity::document_hash`), never the number itself. `None`: not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

/// How many recent exchanges the session keeps for the LLM.
pub const RECENT_MAX: usize = 3;

/// One patient message and the bot's reply to it (personal data masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub patient: String,
    pub bot: String,
}

/// One active flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub flow: String,
    pub state: String,
    pub slots: Slots,
    pub wait: Wait,
    /// The result of the last action of this flow (`result` in guards and templates).
    #[serde(default)]
    pub result: serde_json::Value,
}

/// What the frame is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "slot", rename_all = "snake_case")]
pub enum Wait {
    /// Not waiting: the state has to run (entered but not executed yet).
    Enter,
    /// Asked for this slot; the next message should fill it.
    Slot(String),
    /// Waiting for one of the state's `expect` intents.
    Intent,
    /// Waiting for the result of the state's action (performed by the service).
    Action,
}

impl Session {
    pub fn new(id: impl Into<String>, channel: impl Into<String>, user: impl Into<String>, lang: Lang) -> Self {
        Session {
            id: id.into(),
            channel: channel.into(),
            user: user.into(),
            lang,
            stack: Vec::new(),
            waiting_for_staff: false,
            staff_told: false,
            failures: 0,
            greeted: false,
            out_of_hours_noted: false,
            version: 0,
            turns: 0,
            recent: Vec::new(),
            watch: Default::default(),
            patient: None,
        }
    }

    pub fn top(&self) -> Option<&Frame> {
        self.stack.last()
    }

    pub fn top_mut(&mut self) -> Option<&mut Frame> {
        self.stack.last_mut()
    }

    /// Remembers one exchange for the LLM prompt, keeping only the last `RECENT_MAX`.
    pub fn remember(&mut self, patient: String, bot: String) {
        self.recent.push(Exchange { patient, bot });
        let extra = self.recent.len().saturating_sub(RECENT_MAX);
        self.recent.drain(..extra);
    }

    /// "flow.state" of the innermost frame, or "idle".
    pub fn position(&self) -> String {
        match self.top() {
            Some(f) => format!("{}.{}", f.flow, f.state),
            None => "idle".to_string(),
        }
    }
}
