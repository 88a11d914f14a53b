//! The one place that runs a turn with I/O: lock the conversation → NLU → `step` → perform
//! effects → persist session + turn log in one transaction. The CLI chat, the scripted tests
//! and (later) the HTTP API and Twilio all call `Service::handle`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;

use jiff::Zoned;
use serde::Serialize;
use serde_json::{Value, json};

use crate::actions::{self, ActionContext, ActionRequest};
use crate::engine::session::{Session, Slots};
use crate::engine::{Input, Outcome, nlu_context, step};
use crate::flow::bot::Bot;
use crate::nlu::Understand;
use crate::store::TurnRecord;
use crate::store::{Processed, Store, StoreError};

mod calls;
mod mail;
pub use calls::{CALL_END, CALL_START, CallEnd, CallSummary};

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
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the message could not be delivered: {0}")]
    Delivery(crate::outbound::DeliveryError),
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
    /// The LLM, when one is configured: asked only when the rules are not sure.
    llm: Option<Arc<crate::llm::Llm>>,
    /// Replies that failed to render since the bot was last swapped (newest last, bounded),
    /// for the reload report: what `check` could not catch.
    render_errors: Mutex<Vec<String>>,
    /// The clinic's daily LLM allowance; None: no limit.
    llm_budget: Option<crate::limits::LlmBudget>,
    /// Delivers what a turn sends to someone else (a one-time code to the contact on record).
    sender: Option<Arc<dyn crate::outbound::Sender>>,
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
            llm: None,
            render_errors: Mutex::new(Vec::new()),
            llm_budget: None,
            sender: None,
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

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string()).or_default().clone()
    }

    /// Runs one turn. Turns of one conversation are serialized; others run in parallel.
    pub async fn handle(&self, req: TurnRequest) -> Result<TurnResponse, ServiceError> {
        if req.text.chars().nth(MAX_TEXT).is_some() {
            return self.refuse_too_long(&req).await;
        }
        let lock = self.lock_for(&req.session_id);
        let result = {
            let _guard = lock.lock().await;
            self.turn(req).await
        };
        self.release(lock);
        result
    }

    /// The answer to a message over [`MAX_TEXT`]: where the conversation stands, unchanged,
    /// and a request to write less. Nothing is understood or stored (a flood of pasted text
    /// must not fill the turn log); the log line says how long it was, never what it said.
    async fn refuse_too_long(&self, req: &TurnRequest) -> Result<TurnResponse, ServiceError> {
        let session = match self.store.load_session(&req.session_id).await? {
            Some(s) => s,
            None => Session::new(&req.session_id, &req.channel, &req.user, self.bot().clinic.language),
        };
        tracing::info!(
            session = %redact(&req.session_id),
            chars = req.text.chars().count(),
            "a message over {MAX_TEXT} characters was refused"
        );
        Ok(TurnResponse {
            replies: vec![too_long_reply(session.lang).to_string()],
            state: session.position(),
            slots: session.top().map(|f| f.slots.clone()).unwrap_or_default(),
            waiting_for_staff: session.waiting_for_staff,
            ended: false,
            intent: None,
            diagnostics: Vec::new(),
            replayed: false,
            nlu_source: "too_long".into(),
        })
    }

    /// Forgets a conversation's lock once nobody holds or waits for it, so the map stays
    /// as small as the number of conversations in flight.
    fn release(&self, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // One reference is ours, one the map's: nobody else is waiting.
        if Arc::strong_count(&lock) == 2 {
            map.retain(|_, l| !Arc::ptr_eq(l, &lock));
        }
    }

    async fn turn(&self, req: TurnRequest) -> Result<TurnResponse, ServiceError> {
        let started = Instant::now();
        if let Some(resp) = self.replay(&req).await? {
            return Ok(resp);
        }
        // One snapshot of the bot for the whole turn.
        let bot = self.bot();
        let now = req.now.with_time_zone(bot.clinic.tz.clone());

        let session = match self.store.load_session(&req.session_id).await? {
            Some(s) => s,
            None => Session::new(&req.session_id, &req.channel, &req.user, bot.clinic.language),
        };
        let before = session.position();
        let ctx = nlu_context(&bot, &session);
        let rules_nlu = bot.nlu.understand(&req.text, &ctx, &now);
        // The LLM's whole share of this turn (understanding, then phrasing) fits in the budget.
        let llm_deadline = started
            + req
                .llm_budget
                .or(self.llm.as_ref().map(|l| l.config().timeout))
                .unwrap_or_default();
        let (nlu, mut llm_calls) = match self.llm.as_ref() {
            // While staff has the conversation the bot only says so: nothing to understand.
            Some(_)
                if !rules_nlu.sure
                    && !session.waiting_for_staff
                    && let Some(llm) = self.llm_today(&now) =>
            {
                let budget = llm_deadline.saturating_duration_since(Instant::now());
                let o = llm.understand(&bot, &session, &req.text, &now, rules_nlu, budget).await;
                (o.understanding, o.calls)
            }
            _ => (rules_nlu, Vec::new()),
        };
        let nlu_source = nlu.source.clone();
        let mut out = step(
            &bot,
            &session,
            Input::Message {
                text: req.text.clone(),
                nlu,
            },
            &now,
        );

        self.record_render_errors(&mut out);
        let mut replies = std::mem::take(&mut out.replies);
        let mut diagnostics = std::mem::take(&mut out.diagnostics);
        let intent = out.intent.clone();
        let mut ended = out.ended;
        let mut effects_log = Vec::new();
        let mut session = out.session.take().unwrap_or(session);
        for _ in 0..MAX_ACTIONS {
            for effect in std::mem::take(&mut out.effects) {
                let result = self.perform(&bot, &mut session, &now, &effect).await;
                effects_log.push(json!({ "action": effect.action.as_str(), "result": result }));
            }
            let Some(pending) = out.pending.take() else { break };
            let result = self.perform(&bot, &mut session, &now, &pending).await;
            effects_log.push(json!({ "action": pending.action.as_str(), "result": result }));
            out = step(&bot, &session, Input::ActionResult(result), &now);
            self.record_render_errors(&mut out);
            replies.append(&mut out.replies);
            diagnostics.append(&mut out.diagnostics);
            ended = out.ended;
            if let Some(s) = out.session.take() {
                session = s;
            }
        }
        finish_pending(&mut out, &mut diagnostics);

        if let Some(llm) = &self.llm {
            if crate::llm::phrase::wanted(&bot, &session) && !replies.is_empty() && self.llm_today(&now).is_some() {
                let budget = llm_deadline.saturating_duration_since(Instant::now());
                let (phrased, calls) = llm.phrase(&bot, &session, replies, budget).await;
                replies = phrased;
                llm_calls.extend(calls);
            }
            let names = crate::llm::mask::known_names(&bot, &session);
            session.remember(remembered(&req.text, &names), remembered(&replies.join("\n"), &names));
        }
        let llm_tokens = (!llm_calls.is_empty()).then(|| llm_calls.iter().map(|c| c.tokens_in + c.tokens_out).sum());
        if let (Some(b), Some(tokens)) = (&self.llm_budget, llm_tokens) {
            b.spend(now.date(), llm_calls.len() as u64, tokens);
        }

        session.version += 1;
        let turn = TurnRecord {
            session: session.id.clone(),
            seq: session.turns,
            at: now.timestamp(),
            input: req.text.clone(),
            replies: replies.clone(),
            intent: intent.clone(),
            nlu_source: Some(nlu_source.clone()),
            state_before: before,
            state_after: session.position(),
            latency_us: started.elapsed().as_micros() as u64,
            llm_tokens,
            llm_calls,
            effects: effects_log,
            problems: diagnostics.clone(),
        };
        let response = TurnResponse {
            replies,
            state: session.position(),
            slots: session.top().map(|f| f.slots.clone()).unwrap_or_default(),
            waiting_for_staff: session.waiting_for_staff,
            ended,
            intent: intent.clone(),
            diagnostics,
            replayed: false,
            nlu_source: nlu_source.clone(),
        };
        let processed = req.message_id.as_ref().map(|id| Processed {
            message_id: id.id.clone(),
            session: session.id.clone(),
            reply: serde_json::to_value(&response).unwrap_or(Value::Null),
            at: now.timestamp(),
            request: id.request.clone(),
        });
        self.store.commit_turn(&session, &turn, processed.as_ref()).await?;
        for d in &response.diagnostics {
            tracing::warn!(session = %redact(&session.id), "flow problem: {d}");
        }
        tracing::info!(
            session = %redact(&session.id),
            state = %response.state,
            intent = intent.as_deref().unwrap_or("-"),
            nlu = %response.nlu_source,
            latency_us = turn.latency_us,
            "turn"
        );
        Ok(response)
    }

    /// The stored reply to a message processed before, marked `replayed`; None for a new
    /// message. The same id with another request, or from another conversation, is refused.
    pub(crate) async fn replay(&self, req: &TurnRequest) -> Result<Option<TurnResponse>, ServiceError> {
        let Some(id) = &req.message_id else { return Ok(None) };
        let Some(done) = self.store.processed(&id.id).await? else {
            return Ok(None);
        };
        let other_request = matches!((&done.request, &id.request), (Some(a), Some(b)) if a != b);
        if done.session != req.session_id || other_request {
            return Err(ServiceError::IdReused);
        }
        Ok(serde_json::from_value::<TurnResponse>(done.reply).ok().map(|mut resp| {
            resp.replayed = true;
            resp
        }))
    }

    /// Whether a channel message id was processed already (Twilio retries a webhook): checked
    /// before any costly work, such as downloading and transcribing a voice note.
    pub async fn seen(&self, message_id: &str) -> Result<bool, ServiceError> {
        Ok(self.store.processed(message_id).await?.is_some())
    }

    /// Delivers a message the clinic initiates (reminder, staff reply) and records it in the
    /// conversation's turn log as a turn with no patient input. The conversation is locked like
    /// a patient turn, so the two never interleave.
    pub async fn send(
        &self,
        sender: &dyn crate::outbound::Sender,
        msg: &crate::outbound::Outbound,
        now: &Zoned,
    ) -> Result<(), ServiceError> {
        sender.deliver(msg).await.map_err(ServiceError::Delivery)?;
        let elsewhere = sender.answers_in(msg);
        let lock = self.lock_for(&msg.session);
        let result = {
            let _guard = lock.lock().await;
            self.record_outbound(msg, now, elsewhere.is_none()).await
        };
        self.release(lock);
        let lang = result?;
        match elsewhere {
            Some(conv) => self.await_answer_in(&conv, msg, lang).await,
            None => Ok(()),
        }
    }

    /// Puts the conversation the answer to a reminder arrives in (not the reminder's own) where
    /// that answer acts on the reminded appointment. Returns nothing to the patient.
    async fn await_answer_in(
        &self,
        conv: &crate::outbound::AnswerConversation,
        msg: &crate::outbound::Outbound,
        lang: crate::lang::Lang,
    ) -> Result<(), ServiceError> {
        let Some(appointment) = msg.appointment.as_ref().filter(|_| msg.kind == "reminder") else {
            return Ok(());
        };
        let bot = self.bot();
        let lock = self.lock_for(&conv.session);
        let result = {
            let _guard = lock.lock().await;
            let mut session = match self.store.load_session(&conv.session).await? {
                Some(s) => s,
                None => Session::new(&conv.session, &conv.channel, &conv.user, lang),
            };
            if crate::reminders::await_answer(&bot, &mut session, appointment) {
                session.version += 1;
                self.store.save_session(&session).await?;
            }
            Ok(())
        };
        self.release(lock);
        result
    }

    /// Records an outbound message in its conversation's turn log (and, for a reminder whose
    /// answer comes back here, awaits it). Returns the conversation's language.
    async fn record_outbound(
        &self,
        msg: &crate::outbound::Outbound,
        now: &Zoned,
        answers_here: bool,
    ) -> Result<crate::lang::Lang, ServiceError> {
        let bot = self.bot();
        let mut session = match self.store.load_session(&msg.session).await? {
            Some(s) => s,
            None => Session::new(&msg.session, &msg.channel, &msg.user, bot.clinic.language),
        };
        session.turns += 1;
        session.version += 1;
        let state_before = session.position();
        // The answer to a reminder acts on its appointment (flows/reminder_reply.yaml).
        if answers_here
            && msg.kind == "reminder"
            && let Some(appointment) = &msg.appointment
        {
            crate::reminders::await_answer(&bot, &mut session, appointment);
        }
        let turn = TurnRecord {
            session: session.id.clone(),
            seq: session.turns,
            at: now.timestamp(),
            input: String::new(),
            replies: vec![msg.text.clone()],
            intent: Some(format!("outbound:{}", msg.kind)),
            nlu_source: None,
            state_before,
            state_after: session.position(),
            latency_us: 0,
            llm_tokens: None,
            llm_calls: Vec::new(),
            effects: Vec::new(),
            problems: Vec::new(),
        };
        self.store.commit_turn(&session, &turn, None).await?;
        Ok(session.lang)
    }

    /// Starts a conversation over (no active flow, slots, handover or failures), keeping its
    /// turn log and counter (log positions are unique per conversation). Waits for a turn in
    /// progress instead of racing it. Returns false when the conversation does not exist.
    pub async fn reset(&self, session_id: &str) -> Result<bool, ServiceError> {
        let lock = self.lock_for(session_id);
        let result = {
            let _guard = lock.lock().await;
            match self.store.load_session(session_id).await? {
                Some(old) => {
                    let mut fresh = Session::new(old.id, old.channel, old.user, old.lang);
                    fresh.turns = old.turns;
                    fresh.version = old.version + 1;
                    self.store.save_session(&fresh).await?;
                    Ok(true)
                }
                None => Ok(false),
            }
        };
        self.release(lock);
        result
    }

    /// Hands the conversation back to the bot after staff resolved its escalation.
    pub async fn release_to_bot(&self, session_id: &str) -> Result<(), ServiceError> {
        let lock = self.lock_for(session_id);
        let result = {
            let _guard = lock.lock().await;
            match self.store.load_session(session_id).await? {
                Some(mut s) if s.waiting_for_staff => {
                    s.waiting_for_staff = false;
                    s.failures = 0;
                    s.version += 1;
                    self.store.save_session(&s).await.map_err(ServiceError::from)
                }
                _ => Ok(()),
            }
        };
        self.release(lock);
        result
    }

    /// Performs one action. A failure of the database becomes a result the flow can branch
    /// on (`ok: false, reason: "unavailable"`) instead of a broken conversation.
    async fn perform(&self, bot: &Bot, session: &mut Session, now: &Zoned, req: &ActionRequest) -> Value {
        let ctx = ActionContext {
            store: &self.store,
            clinic: &bot.clinic,
            session,
            now,
            staff: false,
        };
        if req.action == actions::ActionName::VerifyPatient {
            return match actions::verify::run(&ctx, &req.args).await {
                Ok(v) => {
                    if let (Some(msg), Some(sender)) = (&v.send, &self.sender)
                        && let Err(e) = sender.deliver(msg).await
                    {
                        // The patient gets the same answer either way: a code that did not
                        // arrive is asked for again.
                        tracing::warn!(channel = %msg.channel, "verification code not delivered: {e}");
                    }
                    session.patient = v.patient;
                    v.result
                }
                Err(e) => {
                    tracing::error!(action = req.action.as_str(), "action failed: {e}");
                    json!({ "ok": false, "verified": false, "reason": "unavailable" })
                }
            };
        }
        match actions::perform(&ctx, req).await {
            Ok(v) if req.action == actions::ActionName::BookAppointment => {
                self.email_confirmation(bot, session.lang, &v, now).await;
                v
            }
            Ok(v) => v,
            Err(e) => {
                tracing::error!(action = req.action.as_str(), "action failed: {e}");
                json!({ "ok": false, "available": false, "reason": "unavailable", "alternatives": [] })
            }
        }
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
