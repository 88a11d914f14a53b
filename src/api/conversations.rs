//! Conversations: send a message, read the state, read the turn log, reset.

use std::collections::BTreeMap;
use std::time::Instant;

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;

use super::auth::{IntegratorKey, StaffKey};
use super::error::ApiError;
use super::{Tag, check_channel, check_id};
use crate::engine::session::{Session, Wait};
use crate::limits::Verdict;
use crate::server::{AppState, clock};
use crate::service::{MessageId, TurnRequest, TurnResponse};
use crate::store::TurnRecord;

/// A patient's message.
#[derive(Object)]
#[oai(rename = "Message")]
struct MessageIn {
    /// What the patient wrote. Over 4,000 characters the assistant asks for a shorter message
    /// (a normal reply; nothing is processed or stored).
    text: String,
    /// The patient's address on their channel (phone number, user id). Default: the
    /// conversation id. Used only when the conversation starts.
    user: Option<String>,
    /// The channel the patient is on: `api` (default), `whatsapp`, `sms`… Used only when the
    /// conversation starts; staff replies are delivered there.
    channel: Option<String>,
    /// Tests only: the clinic-local time of the message, like `2026-11-23T10:00`. Servers not
    /// started for tests answer 400 when it is present.
    now: Option<String>,
}

/// The assistant's answer, and where the conversation stands.
#[derive(Object)]
#[oai(rename = "TurnReply")]
struct TurnOut {
    /// The messages to show the patient, in order.
    replies: Vec<String>,
    /// `flow.state` of the active flow, or `idle`.
    state: String,
    /// The values collected by the active flow.
    slots: BTreeMap<String, Value>,
    /// True while staff has the conversation: the assistant only says that staff will reply.
    waiting_for_staff: bool,
    /// True when the flow reached its end in this turn.
    ended: bool,
    /// The intent understood, if any.
    intent: Option<String>,
    /// True when this is the stored answer to a message sent before with the same
    /// `Idempotency-Key` (it was not processed again).
    replayed: bool,
}

impl From<TurnResponse> for TurnOut {
    fn from(r: TurnResponse) -> Self {
        TurnOut {
            replies: r.replies,
            state: r.state,
            slots: r.slots,
            waiting_for_staff: r.waiting_for_staff,
            ended: r.ended,
            intent: r.intent,
            replayed: r.replayed,
        }
    }
}

/// One active flow of a conversation.
#[derive(Object)]
#[oai(rename = "Frame")]
struct FrameOut {
    flow: String,
    state: String,
    slots: BTreeMap<String, Value>,
    /// What the flow waits for: `slot:<name>`, `intent`, `action` or `enter`.
    waiting_for: String,
}

#[derive(Object)]
#[oai(rename = "Conversation")]
struct ConversationOut {
    id: String,
    channel: String,
    /// The patient's address on the channel.
    user: String,
    /// Language of the conversation (`es`, `en`).
    lang: String,
    /// `flow.state` of the active flow, or `idle`.
    state: String,
    /// Active flows, outermost first (a question asked mid-booking sits on top of it).
    stack: Vec<FrameOut>,
    /// The slots of the active flow.
    slots: BTreeMap<String, Value>,
    waiting_for_staff: bool,
    /// Turns taken so far.
    turns: u64,
}

impl From<Session> for ConversationOut {
    fn from(s: Session) -> Self {
        let state = s.position();
        let slots = s.top().map(|f| f.slots.clone()).unwrap_or_default();
        let stack = s
            .stack
            .into_iter()
            .map(|f| FrameOut {
                waiting_for: match f.wait {
                    Wait::Enter => "enter".into(),
                    Wait::Slot(slot) => format!("slot:{slot}"),
                    Wait::Intent => "intent".into(),
                    Wait::Action => "action".into(),
                },
                flow: f.flow,
                state: f.state,
                slots: f.slots,
            })
            .collect();
        ConversationOut {
            id: s.id,
            channel: s.channel,
            user: s.user,
            lang: s.lang.code().into(),
            state,
            stack,
            slots,
            waiting_for_staff: s.waiting_for_staff,
            turns: s.turns,
        }
    }
}

/// One turn of the log: a patient message and the replies, or a message the clinic sent
/// (reminder, staff reply: empty `input`, `intent` `outbound:<kind>`).
#[derive(Object)]
#[oai(rename = "Turn")]
pub(super) struct TurnLogOut {
    seq: u64,
    /// RFC 3339 instant.
    at: String,
    input: String,
    replies: Vec<String>,
    intent: Option<String>,
    nlu_source: Option<String>,
    state_before: String,
    state_after: String,
    latency_us: u64,
    /// Problems in the clinic's flows met during the turn (the patient got the fallback).
    problems: Vec<String>,
}

impl From<TurnRecord> for TurnLogOut {
    fn from(t: TurnRecord) -> Self {
        TurnLogOut {
            seq: t.seq,
            at: t.at.to_string(),
            input: t.input,
            replies: t.replies,
            intent: t.intent,
            nlu_source: t.nlu_source,
            state_before: t.state_before,
            state_after: t.state_after,
            latency_us: t.latency_us,
            problems: t.problems,
        }
    }
}

#[derive(ApiResponse)]
enum Deleted {
    /// The conversation starts over with the next message. The turn log stays.
    #[oai(status = 204)]
    Deleted,
}

/// The message id of an `Idempotency-Key`, scoped to its conversation without ambiguity (the
/// id's length comes first, so `a` + `b:c` and `a:b` + `c` differ), with a hash of the request
/// so the same key with another body is refused.
fn idempotency_id(conversation: &str, key: &str, request: [&str; 4]) -> MessageId {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in request {
        // Length-prefixed too: no two requests hash the same parts.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    MessageId {
        id: format!("api:{}:{conversation}:{key}", conversation.len()),
        request: Some(format!("{:x}", hash.finalize())),
    }
}

/// An integrator talks for patients of its own channel: it may not start or continue a
/// WhatsApp, SMS or voice conversation, whose contact is a patient's phone (and whose
/// identity the clinic trusts).
async fn integrator_may_write(state: &AppState, id: &str, channel: &str) -> Result<(), ApiError> {
    let refused = || -> ApiError {
        ApiError::Forbidden(
            "an integrator key may not write to WhatsApp, SMS or voice conversations (their \
             contact is a patient's phone); use a channel name of your own, like `web`"
                .to_string(),
        )
    };
    let twilio = |c: &str| crate::channels::twilio::CHANNELS.contains(&c);
    if twilio(channel)
        || crate::channels::twilio::CHANNELS
            .iter()
            .any(|c| id.starts_with(&format!("{c}:")))
    {
        return Err(refused());
    }
    match state.service.store.load_session(id).await? {
        Some(s) if twilio(&s.channel) => Err(refused()),
        _ => Ok(()),
    }
}

pub struct Api;

#[OpenApi(tag = "Tag::Conversations")]
impl Api {
    /// Send a patient message and get the assistant's replies.
    ///
    /// Messages of one conversation are processed one at a time, in arrival order. With an
    /// `Idempotency-Key`, a repeated request is not processed again: it gets the first answer;
    /// the same key with a different body gets 422. Over a rate limit (per `user`, per
    /// conversation, per clinic) the answer is 429 with `Retry-After` (seconds).
    #[oai(
        path = "/v1/conversations/:id/messages",
        method = "post",
        operation_id = "send_message"
    )]
    async fn send_message(
        &self,
        key: IntegratorKey,
        state: Data<&AppState>,
        /// The conversation id, chosen by the caller (1 to 200 characters).
        id: Path<String>,
        /// Any string unique to this message (at most 200 characters).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<MessageIn>,
    ) -> Result<Json<TurnOut>, ApiError> {
        check_id("conversation", &id)?;
        let body = body.0;
        if body.text.trim().is_empty() {
            return Err(ApiError::bad_request("`text` is empty"));
        }
        let channel = body.channel.unwrap_or_else(|| "api".into());
        check_channel(&channel)?;
        let user = body.user.unwrap_or_else(|| id.0.clone());
        check_id("user", &user)?;
        if key.is_integrator() {
            integrator_may_write(&state, &id, &channel).await?;
        }
        if let Verdict::Limited { retry_after, .. } = state.limits.check(&channel, &user, &id) {
            return Err(ApiError::TooManyRequests {
                retry_after: retry_after.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let message_id = match idempotency_key.0 {
            Some(key) if key.is_empty() || key.len() > 200 => {
                return Err(ApiError::bad_request("`Idempotency-Key` is 1 to 200 characters"));
            }
            Some(key) => Some(idempotency_id(
                &id,
                &key,
                [&body.text, &user, &channel, body.now.as_deref().unwrap_or("")],
            )),
            None => None,
        };
        let req = TurnRequest {
            session_id: id.0,
            channel,
            user,
            text: body.text,
            now: clock(&state, body.now.as_deref())?,
            message_id,
            llm_budget: None,
        };
        let started = Instant::now();
        // A client that hangs up must not cut a turn between its effects and its commit.
        let service = state.service.clone();
        let result = state
            .detached(async move { service.handle(req).await })
            .await
            .map_err(|e| ApiError::Internal(format!("the turn task failed: {e}")))?;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(resp) if resp.replayed => {
                super::ops::record_turn("replayed", seconds, None);
                Ok(Json(resp.into()))
            }
            Ok(resp) => {
                super::ops::record_turn("ok", seconds, Some((resp.nlu_source.as_str(), resp.intent.is_some())));
                Ok(Json(resp.into()))
            }
            Err(e) => {
                super::ops::record_turn("error", seconds, None);
                Err(e.into())
            }
        }
    }

    /// Where a conversation stands: state, active flows, slots, language.
    #[oai(path = "/v1/conversations/:id", method = "get", operation_id = "get_conversation")]
    async fn get_conversation(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Json<ConversationOut>, ApiError> {
        check_id("conversation", &id)?;
        match state.service.store.load_session(&id).await? {
            Some(s) => Ok(Json(s.into())),
            None => Err(ApiError::not_found("conversation", &id)),
        }
    }

    /// The turn log of a conversation, oldest first (the last `limit` turns).
    #[oai(path = "/v1/conversations/:id/turns", method = "get", operation_id = "list_turns")]
    async fn list_turns(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        id: Path<String>,
        /// How many of the latest turns (1 to 1000, default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<TurnLogOut>>, ApiError> {
        check_id("conversation", &id)?;
        let store = &state.service.store;
        let turns = store.recent_turns(&id, super::limit(limit.0)?).await?;
        // A reset conversation keeps its log; only an id never seen is unknown.
        if turns.is_empty() && store.load_session(&id).await?.is_none() {
            return Err(ApiError::not_found("conversation", &id));
        }
        Ok(Json(turns.into_iter().map(TurnLogOut::from).collect()))
    }

    /// Reset a conversation: it starts over (no active flow, slots, handover or failures).
    /// The turn log stays.
    #[oai(
        path = "/v1/conversations/:id",
        method = "delete",
        operation_id = "reset_conversation"
    )]
    async fn reset_conversation(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        check_id("conversation", &id)?;
        if !state.service.reset(&id).await? {
            return Err(ApiError::not_found("conversation", &id));
        }
        Ok(Deleted::Deleted)
    }
}
