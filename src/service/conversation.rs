//! What every operation on a conversation shares: the per-conversation lock, loading (or
//! starting) the session, answering a message seen before, and the operations that are not
//! patient turns (messages the clinic sends, through the outbox; reset; hand-back after staff).

use std::future::Future;
use std::sync::Arc;

use jiff::{Timestamp, Zoned};

use super::{Service, ServiceError, TurnRequest, TurnResponse};
use crate::engine::session::Session;
use crate::lang::Lang;
use crate::outbound::{AnswerConversation, Outbound, OutboundKind, Sender};
use crate::store::{Fence, ReminderLink, StoreError, TurnRecord};

/// How many sessions the cache holds.
const SESSIONS_CACHED: usize = 10_000;
/// How many times queueing a clinic-initiated message that lost a race is run.
const QUEUE_ATTEMPTS: u32 = 4;

/// What became of a message the clinic sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The channel took it.
    Sent,
    /// In the outbox, not delivered yet (the channel failed for now, or another sender holds
    /// it): retried by the outbox's policy.
    Queued,
    /// The channel refused it for good; recorded as failed in the outbox.
    Refused,
}

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
    pub(super) async fn flush_outbox(&self, ids: &[String], now: Timestamp) -> Option<Delivery> {
        let sender = self.sender.clone().filter(|_| !ids.is_empty())?;
        Some(self.deliver_queued(sender.as_ref(), ids, now).await)
    }

    /// Delivers the outbox rows `ids` through `sender` now, if nobody holds them. What fails
    /// stays in the outbox, retried by its policy (src/outbox.rs).
    pub async fn deliver_queued(&self, sender: &dyn Sender, ids: &[String], now: Timestamp) -> Delivery {
        self.deliver_queued_as(&self.owner, sender, ids, now).await
    }

    /// [`Service::deliver_queued`], the rows leased to `owner` (the reminder scheduler's name).
    pub async fn deliver_queued_as(
        &self,
        owner: &str,
        sender: &dyn Sender,
        ids: &[String],
        now: Timestamp,
    ) -> Delivery {
        if ids.is_empty() {
            return Delivery::Sent;
        }
        match self
            .store
            .claim_outbox(now, crate::outbox::LEASE, owner, ids.len(), Some(ids))
            .await
        {
            Ok(rows) => {
                let tally = crate::outbox::deliver(&self.store, sender, &rows, now).await;
                if tally.given_up > 0 {
                    Delivery::Refused
                } else if tally.sent == ids.len() {
                    Delivery::Sent
                } else {
                    Delivery::Queued
                }
            }
            // Not the error's text: it may quote row ids, which hold conversation ids.
            Err(_) => {
                tracing::warn!("outbox: cannot claim what was just queued; the worker will send it");
                Delivery::Queued
            }
        }
    }

    /// Sends a message the clinic initiates (staff reply, calendar notice, late reply): its
    /// record in the conversation's turn log (a turn with no patient input) and its outbox
    /// row are written in one transaction, then `sender` delivers it (the outbox worker of
    /// any replica, when that fails now). The conversation is locked like a patient turn.
    pub async fn send(&self, sender: &dyn Sender, msg: &Outbound, now: &Zoned) -> Result<Delivery, ServiceError> {
        let ids = self.queue(sender, msg, now, None).await?;
        Ok(self.deliver_queued(sender, &ids, now.timestamp()).await)
    }

    /// Writes `msg` to the outbox in one transaction with its turn-log record, the
    /// conversation's wait for the answer to a reminder (in the conversation the answer
    /// arrives in, which `sender` knows) and, for a reminder, the reminder's hand-over to
    /// the row (fenced by its claim). Re-run on fresh state when it lost a race (bounded).
    /// Returns the outbox row ids.
    pub(crate) async fn queue(
        &self,
        sender: &dyn Sender,
        msg: &Outbound,
        now: &Zoned,
        reminder: Option<(&Fence, &ReminderLink)>,
    ) -> Result<Vec<String>, ServiceError> {
        let elsewhere = sender.answers_in(msg);
        let mut attempt = 1;
        loop {
            let work = self.queue_once(msg, now, elsewhere.as_ref(), reminder);
            let result = match &elsewhere {
                Some(conv) => self.locked(&msg.session, self.locked(&conv.session, work)).await,
                None => self.locked(&msg.session, work).await,
            };
            match result {
                Err(ServiceError::Store(StoreError::Conflict(_))) if attempt < QUEUE_ATTEMPTS => {
                    tokio::time::sleep(crate::store::backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn queue_once(
        &self,
        msg: &Outbound,
        now: &Zoned,
        elsewhere: Option<&AnswerConversation>,
        reminder: Option<(&Fence, &ReminderLink)>,
    ) -> Result<Vec<String>, ServiceError> {
        let bot = self.bot();
        self.forget(&msg.session);
        let mut session = self.load_or_create(&msg.session, &msg.channel, &msg.user, None).await?;
        session.turns += 1;
        session.version += 1;
        let state_before = session.position();
        // The answer to a reminder acts on its appointment (flows/reminder_reply.yaml).
        let appointment = msg.appointment.as_ref().filter(|_| msg.kind == OutboundKind::Reminder);
        let mut other = None;
        if let Some(appointment) = appointment {
            match elsewhere {
                None => {
                    crate::engine::await_answer(&bot, &mut session, appointment);
                }
                Some(conv) => {
                    self.forget(&conv.session);
                    let mut s = self
                        .load_or_create(&conv.session, &conv.channel, &conv.user, Some(session.lang))
                        .await?;
                    if crate::engine::await_answer(&bot, &mut s, appointment) {
                        s.version += 1;
                        other = Some(s);
                    }
                }
            }
        }
        let mut turn = TurnRecord::new(&session, now.timestamp(), state_before);
        turn.replies = vec![msg.text.clone()];
        turn.intent = Some(format!("outbound:{}", msg.kind));
        turn.effects = msg
            .by
            .iter()
            .map(|by| serde_json::json!({ "action": "staff_reply", "by": by }))
            .collect();
        let tx = self.store.begin().await?;
        let key = format!("{}#{}", session.id, session.turns);
        let ids = tx
            .enqueue_linked(&key, std::slice::from_ref(msg), now.timestamp(), reminder.map(|r| r.1))
            .await?;
        if let Some((fence, _)) = reminder {
            let row = ids.first().map(String::as_str).unwrap_or_default();
            if !tx.mark_queued(fence, row).await? {
                // Taken over or cancelled meanwhile: nothing of this is stored.
                return Err(ServiceError::ClaimLost);
            }
        }
        if let Some(s) = &other {
            tx.save_session(s).await?;
        }
        tx.commit_turn(&session, &turn, None).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Erases everything stored about one patient (src/store/patients.rs) and drops their
    /// conversations from the hot-session cache, so no turn of this process brings an erased
    /// session back from memory.
    pub async fn erase_patient(
        &self,
        document: &str,
        document_hash: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<crate::store::Erased, ServiceError> {
        let erased = self.store.erase_patient(document, document_hash, actor, now).await?;
        for id in &erased.conversations {
            self.forget(id);
        }
        Ok(erased)
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
