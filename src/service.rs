//! The one place that runs a turn with I/O: lock the conversation → NLU → `step` → perform
//! effects → persist everything the turn did in one transaction. The CLI chat, the scripted
//! tests, the HTTP API and Twilio all call `Service::handle`. The service owns the
//! conversation: channels get what they need in `TurnResponse` and never read the store.
//!
//! `conversation.rs`: the lock, load-or-create, replays, clinic-initiated messages, reset and
//! hand-back; `turn.rs`: one patient turn (and its re-runs on a conflict); `calls.rs`: calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use jiff::Zoned;
use serde::Serialize;

use crate::engine::Outcome;
use crate::engine::session::{Session, Slots};
use crate::flow::bot::Bot;
use crate::store::{Store, StoreError};

mod agenda;
mod calls;
mod conversation;
mod mail;
mod turn;
mod window;
pub use agenda::{Attendance, MarkRefusal};
pub use calls::{CALL_END, CALL_START, CallEnd, CallSummary};
pub use conversation::Delivery;
pub use mail::previous_of;
pub use window::ReplyWindow;

/// One incoming message.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub session_id: String,
    pub channel: String,
    pub user: String,
    pub text: String,
    /// The time of the turn; the engine never reads the clock itself.
    pub now: Zoned,
    /// A channel message id or an `Idempotency-Key`: a message seen before is not processed
    /// again, and gets the reply it got the first time.
    pub message_id: Option<MessageId>,
    /// How long understanding may wait for the LLM in this turn (Twilio gives up on a webhook
    /// after 15 s; voice callers wait less). `None`: the configured LLM timeout.
    pub llm_budget: Option<std::time::Duration>,
}

/// A message processed at most once: a channel's message id (Twilio's MessageSid), or an
/// API `Idempotency-Key` scoped to its conversation together with a hash of the request, so
/// the same key sent with another request is refused instead of answered with the first reply.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageId {
    pub id: String,
    /// A hash of what the request said; None for channels whose retries are identical.
    pub request: Option<String>,
}

impl From<String> for MessageId {
    fn from(id: String) -> Self {
        MessageId { id, request: None }
    }
}

impl From<&str> for MessageId {
    fn from(id: &str) -> Self {
        id.to_string().into()
    }
}

/// What the patient gets back, plus where the conversation stands.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TurnResponse {
    pub replies: Vec<String>,
    pub state: String,
    pub slots: Slots,
    pub waiting_for_staff: bool,
    pub ended: bool,
    pub intent: Option<String>,
    /// Problems in the flows met during this turn (for logs and `clinicflow test`).
    #[serde(skip)]
    pub diagnostics: Vec<String>,
    /// True when this is the stored reply to a message processed before (same message id).
    #[serde(default)]
    pub replayed: bool,
    /// Which understanding answered: "rules", "llm", or "fallback" (the LLM was asked but
    /// failed, timed out or answered nonsense, so the rules' understanding was used).
    #[serde(default)]
    pub nlu_source: String,
    /// The conversation's language after the turn (channels pick a voice or a text by it,
    /// without reading the store).
    #[serde(default)]
    pub lang: crate::lang::Lang,
    /// The outbox rows of replies queued because the channel had stopped waiting for them
    /// (see [`ReplyWindow`]); the channel delivers them through its sender.
    #[serde(skip)]
    pub queued: Vec<String>,
}

impl TurnResponse {
    /// Where `session` stands, with these replies.
    pub fn of(session: &Session, replies: Vec<String>, nlu_source: impl Into<String>) -> TurnResponse {
        TurnResponse {
            replies,
            state: session.position(),
            slots: session.top().map(|f| f.slots.clone()).unwrap_or_default(),
            waiting_for_staff: session.waiting_for_staff,
            ended: false,
            intent: None,
            diagnostics: Vec::new(),
            replayed: false,
            nlu_source: nlu_source.into(),
            lang: session.lang,
            queued: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A reminder's claim was taken over (or the reminder cancelled) before it was queued:
    /// nothing of it was stored.
    #[error("the reminder's lease was lost before it was queued")]
    ClaimLost,
    /// A message id seen before came with another request (or on another conversation).
    #[error("this message id was already used for a different request; use a new one for a new message")]
    IdReused,
}

/// Longest message understood; a longer one gets a polite request to write it shorter
/// (in the conversation's language) and no other work is done for it.
pub const MAX_TEXT: usize = 4_000;

/// What a patient whose message is over [`MAX_TEXT`] is told.
pub fn too_long_reply(lang: crate::lang::Lang) -> &'static str {
    match lang {
        crate::lang::Lang::Es => {
            "Disculpe, su mensaje es demasiado largo para mí. ¿Me lo podría escribir más corto, en pocas palabras?"
        }
        crate::lang::Lang::En => "Sorry, your message is too long for me. Could you write it in a few words?",
    }
}

/// How many action round trips one turn may take (a flow that chains actions forever stops).
const MAX_ACTIONS: usize = 8;

pub struct Service {
    pub store: Store,
    /// The compiled bot; hot reload swaps it atomically. A turn loads it once and uses that
    /// snapshot from start to end.
    bot: ArcSwap<Bot>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Hot sessions, as this process last stored them. A stale one (another replica moved
    /// the conversation) fails the version check at commit and the turn runs again on the
    /// stored one, so the cache needs no cross-replica invalidation.
    sessions: Mutex<HashMap<String, Session>>,
    /// The LLM, when one is configured: asked only when the rules are not sure.
    llm: Option<Arc<crate::llm::Llm>>,
    /// Replies that failed to render since the bot was last swapped (newest last, bounded),
    /// for the reload report: what `check` could not catch.
    render_errors: Mutex<Vec<String>>,
    /// The clinic's daily LLM allowance; None: no limit.
    llm_budget: Option<crate::limits::LlmBudget>,
    /// Delivers what a turn sends to someone else (a one-time code to the contact on record)
    /// right after the turn is stored; the outbox worker delivers what it could not.
    sender: Option<Arc<dyn crate::outbound::Sender>>,
    /// This process's name on the outbox rows it claims.
    owner: String,
    /// Emails confirmations and reminders to patients who gave an address (src/email.rs).
    mailer: Option<Arc<crate::email::Mailer>>,
}

/// How many run-time render errors the reload report keeps.
const RENDER_ERRORS_KEPT: usize = 20;

impl Service {
    pub fn new(store: Store, bot: Arc<Bot>) -> Self {
        Service {
            store,
            bot: ArcSwap::new(bot),
            locks: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            llm: None,
            render_errors: Mutex::new(Vec::new()),
            llm_budget: None,
            sender: None,
            owner: crate::background::worker_id(),
            mailer: None,
        }
    }

    /// Sends one-time verification codes through this channel sender (Twilio in `serve`).
    /// Without one a code cannot reach anybody, so verification from another contact fails.
    pub fn with_sender(mut self, sender: Arc<dyn crate::outbound::Sender>) -> Self {
        self.sender = Some(sender);
        self
    }

    /// Uses this LLM for understanding (and phrasing, where the clinic wants it). `None`:
    /// the rules alone.
    pub fn with_llm(mut self, llm: Option<Arc<crate::llm::Llm>>) -> Self {
        if let Some(l) = &llm {
            l.set_clinic(&self.bot().clinic.name);
        }
        self.llm = llm;
        self
    }

    /// Caps the LLM calls or tokens of each clinic-local day.
    pub fn with_llm_budget(mut self, budget: Option<crate::limits::LlmBudget>) -> Self {
        self.llm_budget = budget;
        self
    }

    /// The LLM, unless today's budget is spent.
    fn llm_today(&self, now: &Zoned) -> Option<&Arc<crate::llm::Llm>> {
        let llm = self.llm.as_ref()?;
        match &self.llm_budget {
            Some(b) if !b.allows(now.date()) => None,
            _ => Some(llm),
        }
    }

    pub fn llm(&self) -> Option<&Arc<crate::llm::Llm>> {
        self.llm.as_ref()
    }

    /// The bot in force now.
    pub fn bot(&self) -> Arc<Bot> {
        self.bot.load_full()
    }

    /// Puts a newly compiled bot in force; turns already running finish on the old one.
    pub fn swap_bot(&self, bot: Arc<Bot>) {
        self.bot.store(bot);
        self.render_errors.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Templates that failed at run time since the last reload, oldest first.
    pub fn render_errors(&self) -> Vec<String> {
        self.render_errors.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record_render_errors(&self, out: &mut Outcome) {
        if out.render_errors.is_empty() {
            return;
        }
        metrics::counter!("clinicflow_render_errors_total").increment(out.render_errors.len() as u64);
        let mut kept = self.render_errors.lock().unwrap_or_else(|p| p.into_inner());
        for e in out.render_errors.drain(..) {
            if !kept.contains(&e) {
                kept.push(e);
            }
        }
        let excess = kept.len().saturating_sub(RENDER_ERRORS_KEPT);
        kept.drain(..excess);
    }

    /// The current time in the clinic's time zone.
    pub fn now(&self) -> Zoned {
        Zoned::now().with_time_zone(self.bot().clinic.tz.clone())
    }

    /// Runs one turn. Turns of one conversation are serialized; others run in parallel.
    pub async fn handle(&self, req: TurnRequest) -> Result<TurnResponse, ServiceError> {
        self.handle_within(req, None).await
    }

    /// [`Service::handle`] for a channel that waits for the replies only so long: when it
    /// closed `window` before the turn commits, the replies are queued in the outbox with the
    /// turn (their ids in `TurnResponse::queued`) instead of returned for the channel to say.
    pub async fn handle_within(
        &self,
        req: TurnRequest,
        window: Option<ReplyWindow>,
    ) -> Result<TurnResponse, ServiceError> {
        if req.text.chars().nth(MAX_TEXT).is_some() {
            return self.refuse_too_long(&req).await;
        }
        let id = req.session_id.clone();
        // Boxed: a turn's future is large (actions, LLM calls), and callers' stacks are not.
        self.locked(&id, Box::pin(self.turn(req, window))).await
    }

    /// The answer to a message over [`MAX_TEXT`]: where the conversation stands, unchanged,
    /// and a request to write less. Nothing is understood or stored (a flood of pasted text
    /// must not fill the turn log); the log line says how long it was, never what it said.
    async fn refuse_too_long(&self, req: &TurnRequest) -> Result<TurnResponse, ServiceError> {
        let session = self
            .load_or_create(&req.session_id, &req.channel, &req.user, None)
            .await?;
        tracing::info!(
            session = %redact(&req.session_id),
            chars = req.text.chars().count(),
            "a message over {MAX_TEXT} characters was refused"
        );
        Ok(TurnResponse::of(
            &session,
            vec![too_long_reply(session.lang).to_string()],
            "too_long",
        ))
    }

    /// A conversation's language (the clinic's for a new one), for what a channel says
    /// without a turn (a rate-limit notice, a silence on a call).
    pub async fn lang_of(&self, session_id: &str) -> crate::lang::Lang {
        match self.cached(session_id) {
            Some(s) => s.lang,
            None => match self.store.load_session(session_id).await {
                Ok(Some(s)) => s.lang,
                _ => self.bot().clinic.language,
            },
        }
    }

    /// Whether a channel message id was processed already (Twilio retries a webhook): checked
    /// before any costly work, such as downloading and transcribing a voice note.
    pub async fn seen(&self, message_id: &str) -> Result<bool, ServiceError> {
        Ok(self.store.processed(message_id).await?.is_some())
    }
}

fn finish_pending(out: &mut Outcome, diagnostics: &mut Vec<String>) {
    if out.pending.is_some() {
        diagnostics.push(format!("more than {MAX_ACTIONS} actions in one turn; stopped"));
    }
}

/// What the session keeps of a message or reply for the LLM prompt: masked and short.
fn remembered(text: &str, names: &[String]) -> String {
    crate::llm::mask::mask_personal(text, names).chars().take(400).collect()
}

/// Conversation ids often contain phone numbers: keep the last 4 characters only.
pub fn redact(s: &str) -> String {
    let n = s.chars().count();
    if n <= 4 {
        return "****".into();
    }
    let tail: String = s.chars().skip(n - 4).collect();
    format!("…{tail}")
}
