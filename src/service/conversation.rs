//! What every operation on a conversation shares: the per-conversation lock, loading (or
//! starting) the session, answering a message seen before, and the operations that are not
//! patient turns (messages the clinic sends, reset, hand-back after staff).

use std::future::Future;
use std::sync::Arc;

use jiff::{Timestamp, Zoned};

use super::{Service, ServiceError, TurnRequest, TurnResponse};
use crate::engine::session::Session;
use crate::lang::Lang;
use crate::outbound::{AnswerConversation, Outbound, Sender};
use crate::store::TurnRecord;

/// How many sessions the cache holds.
const SESSIONS_CACHED: usize = 10_000;

impl Service {
    /// Runs `work` while holding the conversation's lock: turns, calls, messages the clinic
    /// sends, resets and hand-backs of one conversation never interleave in this process
    /// (across replicas the session version check settles it). The lock is forgotten once
    /// nobody holds or waits for it, so the map stays as small as the conversations in flight.
    pub(super) async fn locked<F: Future>(&self, conversation: &str, work: F) -> F::Output {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(conversation.to_string()).or_default().clone()
        };
        let result = {
            let _guard = lock.lock().await;
            work.await
        };
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // One reference is ours, one the map's: nobody else is waiting.
        if Arc::strong_count(&lock) == 2 {
            map.retain(|_, l| !Arc::ptr_eq(l, &lock));
        }
        result
    }

    /// The stored conversation, or a new one on `channel` for `user` (in `lang`, else the
    /// clinic's language).
    pub(super) async fn load_or_create(
        &self,
        id: &str,
        channel: &str,
        user: &str,
        lang: Option<Lang>,
    ) -> Result<Session, ServiceError> {
        Ok(match self.store.load_session(id).await? {
            Some(s) => s,
            None => Session::new(id, channel, user, lang.unwrap_or(self.bot().clinic.language)),
        })
    }

    /// The session as this process last stored it, if it is in the cache.
    pub(super) fn cached(&self, id: &str) -> Option<Session> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Keeps `session` (just committed) for the next turn of its conversation.
    pub(super) fn remember_session(&self, session: &Session) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded without bookkeeping: a full cache starts over (a miss costs one read).
        if map.len() >= SESSIONS_CACHED && !map.contains_key(&session.id) {
            map.clear();
        }
        map.insert(session.id.clone(), session.clone());
    }

    /// Drops a conversation from the cache (written by something other than a turn, or
    /// found stale).
    pub(crate) fn forget(&self, id: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
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

    /// Delivers the outbox rows `ids` (just committed) through this service's sender. What
    /// fails here stays in the outbox for the worker; without a sender the worker sends all.
    pub(super) async fn flush_outbox(&self, ids: &[String], now: Timestamp) -> Option<crate::outbox::Tally> {
        let sender = self.sender.as_ref().filter(|_| !ids.is_empty())?;
        match self
            .store
            .claim_outbox(now, crate::outbox::LEASE, &self.owner, ids.len(), Some(ids))
            .await
        {
            Ok(rows) => Some(crate::outbox::deliver(&self.store, sender.as_ref(), &rows, now).await),
            // Not the error's text: it may quote row ids, which hold conversation ids.
            Err(_) => {
                tracing::warn!("outbox: cannot claim what the turn queued; the worker will send it");
                None
            }
        }
    }

    /// Delivers a message the clinic initiates (reminder, staff reply) and records it in the
    /// conversation's turn log as a turn with no patient input. The conversation is locked like
    /// a patient turn, so the two never interleave.
    pub async fn send(&self, sender: &dyn Sender, msg: &Outbound, now: &Zoned) -> Result<(), ServiceError> {
        sender.deliver(msg).await.map_err(ServiceError::Delivery)?;
        let elsewhere = sender.answers_in(msg);
        let lang = self
            .locked(&msg.session, self.record_outbound(msg, now, elsewhere.is_none()))
            .await?;
        match elsewhere {
            Some(conv) => self.locked(&conv.session, self.await_answer_in(&conv, msg, lang)).await,
            None => Ok(()),
        }
    }

    /// Puts the conversation the answer to a reminder arrives in (not the reminder's own) where
    /// that answer acts on the reminded appointment. Returns nothing to the patient.
    async fn await_answer_in(&self, conv: &AnswerConversation, msg: &Outbound, lang: Lang) -> Result<(), ServiceError> {
        let Some(appointment) = msg.appointment.as_ref().filter(|_| msg.kind == "reminder") else {
            return Ok(());
        };
        let mut session = self
            .load_or_create(&conv.session, &conv.channel, &conv.user, Some(lang))
            .await?;
        if crate::engine::await_answer(&self.bot(), &mut session, appointment) {
            session.version += 1;
            self.forget(&session.id);
            self.store.save_session(&session).await?;
        }
        Ok(())
    }

    /// Records an outbound message in its conversation's turn log (and, for a reminder whose
    /// answer comes back here, awaits it). Returns the conversation's language.
    async fn record_outbound(&self, msg: &Outbound, now: &Zoned, answers_here: bool) -> Result<Lang, ServiceError> {
        let mut session = self.load_or_create(&msg.session, &msg.channel, &msg.user, None).await?;
        session.turns += 1;
        session.version += 1;
        let state_before = session.position();
        // The answer to a reminder acts on its appointment (flows/reminder_reply.yaml).
        if answers_here
            && msg.kind == "reminder"
            && let Some(appointment) = &msg.appointment
        {
            crate::engine::await_answer(&self.bot(), &mut session, appointment);
        }
        let mut turn = TurnRecord::new(&session, now.timestamp(), state_before);
        turn.replies = vec![msg.text.clone()];
        turn.intent = Some(format!("outbound:{}", msg.kind));
        turn.effects = msg
            .by
            .iter()
            .map(|by| serde_json::json!({ "action": "staff_reply", "by": by }))
            .collect();
        self.forget(&session.id);
        self.store.commit_turn(&session, &turn, None).await?;
        Ok(session.lang)
    }

    /// Starts a conversation over (no active flow, slots, handover or failures), keeping its
    /// turn log and counter (log positions are unique per conversation). Waits for a turn in
    /// progress instead of racing it. Returns false when the conversation does not exist.
    pub async fn reset(&self, session_id: &str) -> Result<bool, ServiceError> {
        self.locked(session_id, async {
            let Some(old) = self.store.load_session(session_id).await? else {
                return Ok(false);
            };
            let mut fresh = Session::new(old.id, old.channel, old.user, old.lang);
            fresh.turns = old.turns;
            fresh.version = old.version + 1;
            self.forget(session_id);
            self.store.save_session(&fresh).await?;
            Ok(true)
        })
        .await
    }

    /// Hands the conversation back to the bot after staff resolved its escalation.
    pub async fn release_to_bot(&self, session_id: &str) -> Result<(), ServiceError> {
        self.locked(session_id, async {
            match self.store.load_session(session_id).await? {
                Some(mut s) if s.waiting_for_staff => {
                    s.waiting_for_staff = false;
                    s.failures = 0;
                    s.version += 1;
                    self.forget(session_id);
                    self.store.save_session(&s).await.map_err(ServiceError::from)
                }
                _ => Ok(()),
            }
        })
        .await
    }
}
