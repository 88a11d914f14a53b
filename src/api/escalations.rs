//! The staff inbox: conversations handed over to a person. While one waits for staff the
//! assistant only says that staff will reply; staff answer through `reply` and give the
//! conversation back with `resolve`.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};

use super::auth::StaffKey;
use super::conversations::TurnLogOut;
use super::error::ApiError;
use super::{Tag, check_id};
use crate::outbound::{Outbound, OutboundKind};
use crate::server::{AppState, clock};
use crate::service::{Delivery, MAX_TEXT};
use crate::store::{Escalation, EscalationStatus};

#[derive(Object)]
#[oai(rename = "Escalation")]
struct EscalationOut {
    id: String,
    /// The conversation handed over.
    conversation: String,
    channel: String,
    /// The patient's address on the channel.
    user: String,
    /// Why: `patient_asked`, `not_understood`…
    reason: Option<String>,
    /// `open` or `resolved`.
    status: String,
    created_at: String,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    note: Option<String>,
    /// The conversation, oldest first: up to the handover and, while open, everything since
    /// (the patient's later messages, staff's replies).
    transcript: Vec<TurnLogOut>,
    /// Who of the staff took it, if anyone.
    taken_by: Option<String>,
}

impl EscalationOut {
    /// With the whole transcript (the turns since the handover read from the turn log).
    async fn full(store: &crate::store::Store, mut e: Escalation) -> Result<EscalationOut, ApiError> {
        e.transcript = store.full_transcript(&e).await?;
        Ok(e.into())
    }
}

impl From<Escalation> for EscalationOut {
    fn from(e: Escalation) -> Self {
        EscalationOut {
            status: e.status.as_str().into(),
            created_at: e.created_at.to_string(),
            resolved_at: e.resolved_at.map(|t| t.to_string()),
            transcript: e.transcript.into_iter().map(TurnLogOut::from).collect(),
            id: e.id,
            conversation: e.session,
            channel: e.channel,
            user: e.user,
            reason: e.reason,
            resolved_by: e.resolved_by,
            note: e.note,
            taken_by: e.taken_by,
        }
    }
}

#[derive(Enum, Clone, Copy)]
#[oai(rename = "EscalationStatus", rename_all = "snake_case")]
enum EscalationStatusParam {
    Open,
    Resolved,
}

/// A message from staff to the patient.
#[derive(Object)]
#[oai(rename = "StaffReply")]
struct ReplyIn {
    /// Delivered on the patient's channel and recorded in the conversation's turn log.
    text: String,
    /// Who of the staff writes (recorded with the message).
    by: Option<String>,
}

#[derive(Object)]
#[oai(rename = "Delivery")]
struct ReplyOut {
    /// True when the channel took it; false when it is queued and retried by the outbox.
    delivered: bool,
    conversation: String,
}

#[derive(Object)]
#[oai(rename = "Resolution")]
struct ResolveIn {
    /// Who resolved it.
    by: Option<String>,
    /// A note for the record.
    note: Option<String>,
}

pub struct Api;

#[OpenApi(tag = "Tag::Escalations")]
impl Api {
    /// Escalations by status (`open` for the inbox), oldest first.
    #[oai(path = "/v1/escalations", method = "get", operation_id = "list_escalations")]
    async fn list(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        status: Query<Option<EscalationStatusParam>>,
        /// At most this many (1 to 1000, default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<EscalationOut>>, ApiError> {
        let status = status.0.map(|s| match s {
            EscalationStatusParam::Open => EscalationStatus::Open,
            EscalationStatusParam::Resolved => EscalationStatus::Resolved,
        });
        let found = state
            .service
            .store
            .list_escalations(status, super::limit(limit.0)?)
            .await?;
        let mut out = Vec::with_capacity(found.len());
        for e in found {
            out.push(EscalationOut::full(&state.service.store, e).await?);
        }
        Ok(Json(out))
    }

    /// Answer the patient of an open escalation, on their channel.
    #[oai(
        path = "/v1/escalations/:id/reply",
        method = "post",
        operation_id = "reply_escalation"
    )]
    async fn reply(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        id: Path<String>,
        body: Json<ReplyIn>,
    ) -> Result<Json<ReplyOut>, ApiError> {
        check_id("escalation", &id)?;
        let ReplyIn { text, by } = body.0;
        if text.trim().is_empty() {
            return Err(ApiError::bad_request("`text` is empty"));
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT {
            return Err(ApiError::TooLarge(format!(
                "`text` has {chars} characters; the limit is {MAX_TEXT}"
            )));
        }
        let Some(e) = state.service.store.get_escalation(&id).await? else {
            return Err(ApiError::not_found("escalation", &id));
        };
        if e.status == EscalationStatus::Resolved {
            return Err(ApiError::Conflict {
                code: "resolved".into(),
                message: "the escalation is resolved; the assistant has the conversation again".into(),
            });
        }
        let msg = Outbound {
            session: e.session.clone(),
            channel: e.channel,
            user: e.user,
            text,
            kind: OutboundKind::Staff,
            by,
            ..Default::default()
        };
        let now = clock(&state, None)?;
        // In the turn log and the outbox together; a channel down now is retried by the
        // outbox worker, a refusal for good is the caller's to know.
        let delivered = match state.service.send(&*state.sender, &msg, &now).await? {
            Delivery::Sent => true,
            Delivery::Queued => false,
            Delivery::Refused => {
                return Err(ApiError::Delivery(
                    "the channel refused the reply (it is in the turn log, marked failed in the outbox)".into(),
                ));
            }
        };
        Ok(Json(ReplyOut {
            delivered,
            conversation: e.session,
        }))
    }

    /// Close an escalation; the assistant takes the conversation back.
    #[oai(
        path = "/v1/escalations/:id/resolve",
        method = "post",
        operation_id = "resolve_escalation"
    )]
    async fn resolve(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        id: Path<String>,
        /// Optional: `{by, note}`.
        body: Json<Option<ResolveIn>>,
    ) -> Result<Json<EscalationOut>, ApiError> {
        check_id("escalation", &id)?;
        let (by, note) = match body.0 {
            Some(b) => (b.by, b.note),
            None => (None, None),
        };
        let now = clock(&state, None)?;
        let store = &state.service.store;
        let e = store
            .resolve_escalation(&id, by.as_deref(), note.as_deref(), now.timestamp())
            .await?;
        state.service.release_to_bot(&e.session).await?;
        Ok(Json(e.into()))
    }
}
