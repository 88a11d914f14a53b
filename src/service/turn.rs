//! One patient turn. Everything the turn does is stored together or not at all: the effects
//! run against a handle on one database transaction ([`Store::begin`]) that also carries the
//! session (under its version check), the turn log, the processed message id and the outbox
//! rows of what the turn sends to someone else. A version conflict (another replica moved the
//! conversation, or booked the slot first) rolls all of it back and the turn runs again on
//! fresh state, a bounded number of times with jittered backoff; the patient never sees it.

use std::time::Instant;

use jiff::Zoned;
use serde_json::{Value, json};

use super::{
    MAX_ACTIONS, ReplyWindow, Service, ServiceError, TurnRequest, TurnResponse, finish_pending, redact, remembered,
};
use crate::actions::{self, ActionContext, ActionName, ActionRequest};
use crate::engine::session::Session;
use crate::engine::{Input, nlu_context, step};
use crate::flow::bot::Bot;
use crate::nlu::Understand;
use crate::outbound::{Outbound, OutboundKind};
use crate::store::{Processed, Store, StoreError, TurnRecord};

/// How many times a turn that lost a race is run (the first time included).
const TURN_ATTEMPTS: u32 = 6;

/// What a turn's actions produced besides their results.
#[derive(Default)]
pub(super) struct Effects {
    /// Messages for someone else than the patient in this conversation (a one-time code to
    /// the contact on record), delivered through the outbox once the turn is stored.
    pub outgoing: Vec<Outbound>,
    /// Appointments booked by this attempt with an external calendar, as (professional, what
    /// was written there): the calendar already holds their events, which must go if the
    /// attempt is not stored.
    pub booked: Vec<(String, crate::calendars::Booking)>,
}

impl Service {
    /// Runs the turn, again on fresh state when it lost a race (see the module docs).
    pub(super) async fn turn(
        &self,
        req: TurnRequest,
        window: Option<ReplyWindow>,
    ) -> Result<TurnResponse, ServiceError> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            // Checked on every attempt: the race may have been lost to the same message
            // delivered twice (a retried webhook on another replica).
            if let Some(resp) = self.replay(&req).await? {
                return Ok(resp);
            }
            let mut effects = Effects::default();
            let result = Box::pin(self.attempt(&req, started, &mut effects, window.as_ref())).await;
            if result.is_err() {
                self.undo_calendar_bookings(&effects.booked).await;
            }
            match result {
                Err(ServiceError::Store(StoreError::Conflict(_) | StoreError::SlotTaken))
                    if attempt < TURN_ATTEMPTS =>
                {
                    metrics::counter!("clinicflow_turn_retries_total").increment(1);
                    tracing::info!(session = %redact(&req.session_id), attempt, "turn lost a race; running it again");
                    self.forget(&req.session_id);
                    tokio::time::sleep(crate::store::backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The events external calendars hold for bookings of an attempt that was not stored
    /// (a lost race re-runs the turn, which books again): removed, so no event outlives a
    /// booking the database does not have. Best effort, like the calendars' own undo.
    async fn undo_calendar_bookings(&self, booked: &[(String, crate::calendars::Booking)]) {
        let bot = self.bot();
        for (professional, booking) in booked {
            if let Some(provider) = bot.clinic.calendars.of(professional) {
                provider.forget(booking).await;
            }
        }
    }

    async fn attempt(
        &self,
        req: &TurnRequest,
        started: Instant,
        effects: &mut Effects,
        window: Option<&ReplyWindow>,
    ) -> Result<TurnResponse, ServiceError> {
        // One snapshot of the bot for the whole turn.
        let bot = self.bot();
        let now = req.now.with_time_zone(bot.clinic.tz.clone());
        let session = match self.cached(&req.session_id) {
            Some(s) => s,
            None => {
                self.load_or_create(&req.session_id, &req.channel, &req.user, None)
                    .await?
            }
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
        let mut session = std::mem::take(&mut out.session);
        // The turn's transaction, opened by its first writing action: a turn without any
        // (most of them) commits in one statement.
        let mut tx: Option<Store> = None;
        for _ in 0..MAX_ACTIONS {
            for effect in std::mem::take(&mut out.effects) {
                let store = self.store_for(&mut tx, effect.action).await?;
                let result = self.perform(&bot, store, &mut session, &now, &effect, effects).await?;
                effects_log.push(json!({ "action": effect.action.as_str(), "result": result }));
            }
            let Some(pending) = out.pending.take() else { break };
            let store = self.store_for(&mut tx, pending.action).await?;
            let result = self.perform(&bot, store, &mut session, &now, &pending, effects).await?;
            effects_log.push(json!({ "action": pending.action.as_str(), "result": result }));
            out = step(&bot, &session, Input::ActionResult(result), &now);
            self.record_render_errors(&mut out);
            replies.append(&mut out.replies);
            diagnostics.append(&mut out.diagnostics);
            ended = out.ended;
            session = std::mem::take(&mut out.session);
        }
        finish_pending(&mut out, &mut diagnostics);
        crate::engine::ensure_reply(&session, &mut replies, &mut diagnostics);

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
        let mut turn = TurnRecord::new(&session, now.timestamp(), before);
        turn.input = req.text.clone();
        turn.replies = replies.clone();
        turn.intent = intent.clone();
        turn.nlu_source = Some(nlu_source.clone());
        turn.latency_us = started.elapsed().as_micros() as u64;
        turn.llm_tokens = llm_tokens;
        turn.llm_calls = llm_calls;
        turn.effects = effects_log;
        turn.problems = diagnostics.clone();
        let mut response = TurnResponse::of(&session, replies, nlu_source);
        response.ended = ended;
        response.intent = intent;
        response.diagnostics = diagnostics;
        let processed = req.message_id.as_ref().map(|id| Processed {
            message_id: id.id.clone(),
            session: session.id.clone(),
            reply: serde_json::to_value(&response).unwrap_or(Value::Null),
            at: now.timestamp(),
            request: id.request.clone(),
        });
        // Who says the replies is settled before the commit: the channel, or (when it stopped
        // waiting) the outbox, in this transaction (src/service/window.rs).
        let late = window.is_some_and(|w| !w.commit_inline());
        if late {
            effects.outgoing.extend(response.replies.iter().map(|text| Outbound {
                session: session.id.clone(),
                channel: req.channel.clone(),
                user: req.user.clone(),
                text: text.clone(),
                kind: OutboundKind::Reply,
                ..Default::default()
            }));
        }
        let committed = self
            .commit_attempt(tx, &session, &turn, processed.as_ref(), effects, &now)
            .await;
        let queued = match committed {
            Ok(queued) => queued,
            Err(e) => {
                if let Some(w) = window {
                    w.commit_failed();
                }
                return Err(e);
            }
        };
        if late {
            response.queued = queued.clone();
        }
        self.remember_session(&session);
        self.flush_outbox(&queued, now.timestamp()).await;
        // Emails (confirmations, cancellations, moves) only for changes that are now stored.
        self.email_after_turn(&bot, session.lang, &turn.effects, &now).await;
        for d in &response.diagnostics {
            tracing::warn!(session = %redact(&session.id), "flow problem: {d}");
        }
        tracing::info!(
            session = %redact(&session.id),
            state = %response.state,
            intent = response.intent.as_deref().unwrap_or("-"),
            nlu = %response.nlu_source,
            latency_us = turn.latency_us,
            "turn"
        );
        Ok(response)
    }

    /// Where an action runs: a read before the turn's first write on the store itself
    /// (outside any transaction); a write, or a read after one, in the turn's transaction.
    async fn store_for<'t>(&'t self, tx: &'t mut Option<Store>, action: ActionName) -> Result<&'t Store, ServiceError> {
        if action.reads_only() && tx.is_none() {
            return Ok(&self.store);
        }
        self.open(tx).await
    }

    /// Stores the attempt: its outbox rows (under ids derived from (conversation, turn)),
    /// session, turn log and processed id, in the turn's transaction (or one statement when
    /// it has neither actions nor messages). Returns the outbox row ids.
    async fn commit_attempt(
        &self,
        mut tx: Option<Store>,
        session: &Session,
        turn: &TurnRecord,
        processed: Option<&Processed>,
        effects: &Effects,
        now: &Zoned,
    ) -> Result<Vec<String>, ServiceError> {
        let queued = match effects.outgoing.as_slice() {
            [] => Vec::new(),
            outgoing => {
                let key = format!("{}#{}", session.id, session.turns);
                self.open(&mut tx)
                    .await?
                    .enqueue(&key, outgoing, now.timestamp())
                    .await?
            }
        };
        match tx {
            Some(tx) => {
                tx.commit_turn(session, turn, processed).await?;
                tx.commit().await?;
            }
            None => self.store.commit_turn(session, turn, processed).await?,
        }
        Ok(queued)
    }

    /// The turn's transaction, begun by its first writing action.
    async fn open<'t>(&self, tx: &'t mut Option<Store>) -> Result<&'t Store, ServiceError> {
        Ok(match tx {
            Some(t) => t,
            None => tx.insert(self.store.begin().await?),
        })
    }

    /// Performs one action against `store` (the turn's transaction). A refusal is a result
    /// the flow branches on. A failure of the database is the turn's: some of the action's
    /// writes may be in the transaction and others not, so nothing of the turn is stored
    /// (a lost race runs the turn again; anything else reaches the channel, whose retry of
    /// the message finds nothing half done).
    async fn perform(
        &self,
        bot: &Bot,
        store: &Store,
        session: &mut Session,
        now: &Zoned,
        req: &ActionRequest,
        effects: &mut Effects,
    ) -> Result<Value, ServiceError> {
        let ctx = ActionContext {
            store,
            clinic: &bot.clinic,
            session,
            now,
            staff: false,
        };
        if req.action == actions::ActionName::VerifyPatient {
            return match actions::verify::run(&ctx, &req.args).await {
                Ok(v) => {
                    effects.outgoing.extend(v.send);
                    session.patient = v.patient;
                    Ok(v.result)
                }
                Err(actions::ActionError::Store(e)) => Err(failed(req, e)),
            };
        }
        match actions::perform(&ctx, req).await {
            Ok(v) => {
                if req.action == actions::ActionName::BookAppointment
                    && v["ok"] == true
                    && let (Some(pro), Some(id)) = (
                        v["appointment"]["professional"].as_str(),
                        v["appointment"]["id"].as_str(),
                    )
                    && bot.clinic.calendars.of(pro).is_some()
                {
                    // Read in the turn's transaction: what its calendar was given.
                    match store.get_appointment(id).await {
                        Ok(Some(a)) => effects
                            .booked
                            .push((pro.to_string(), crate::calendars::booking_of(&bot.clinic, &a))),
                        Ok(None) => {}
                        Err(e) => return Err(failed(req, e)),
                    }
                }
                Ok(v)
            }
            Err(actions::ActionError::Store(e)) => Err(failed(req, e)),
        }
    }
}

/// An action's database failure, as the turn's error (logged unless it is a lost race).
fn failed(req: &ActionRequest, e: StoreError) -> ServiceError {
    if !matches!(e, StoreError::Conflict(_) | StoreError::SlotTaken) {
        tracing::error!(
            action = req.action.as_str(),
            "action failed; the turn is not stored: {e}"
        );
    }
    e.into()
}
