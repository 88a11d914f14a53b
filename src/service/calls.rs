//! Phone calls as conversations: a call starts with the clinic's greeting (no patient input,
//! so nothing fake lands in the turn log) and ends with a short summary in the turn log. Each
//! call starts from a fresh conversation, as a person answering the phone would.

use jiff::Zoned;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Service, ServiceError, TurnRequest, TurnResponse, redact};
use crate::engine::session::Session;
use crate::engine::{Input, step};
use crate::lang::Lang;
use crate::nlu::{IntentGuess, Understanding};
use crate::store::{Processed, TurnRecord};

/// `nlu_source` of the turn that opens a call, and of the one that closes it.
pub const CALL_START: &str = "call:start";
pub const CALL_END: &str = "call:end";

/// What is known about a call when it ends (Twilio's status callback).
#[derive(Debug, Clone, Serialize)]
pub struct CallEnd {
    /// Twilio's CallStatus: completed, busy, no-answer, failed, canceled.
    pub status: String,
    /// CallDuration in seconds, when Twilio sent it.
    pub duration_s: Option<u64>,
}

/// The summary stored for a call: no names, numbers or words of the caller, only what
/// happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    pub status: String,
    pub duration_s: Option<u64>,
    /// Patient turns during the call (the greeting not counted).
    pub turns: u64,
    /// booked, cancelled, rescheduled, handed_to_staff or none.
    pub outcome: String,
}

impl CallSummary {
    /// One line for the turn log, in the clinic's language.
    pub fn text(&self, lang: Lang) -> String {
        let secs = self.duration_s.map(|s| format!("{s} s")).unwrap_or_else(|| "?".into());
        match lang {
            Lang::Es => format!(
                "Llamada terminada ({}): {secs}, {} turnos, resultado: {}.",
                self.status, self.turns, self.outcome
            ),
            Lang::En => format!(
                "Call ended ({}): {secs}, {} turns, outcome: {}.",
                self.status, self.turns, self.outcome
            ),
        }
    }
}

impl Service {
    /// Starts a call: a fresh conversation (turn log kept) and the clinic's greeting, logged
    /// as a turn with empty input. `req.text` is ignored. With the same `message_id` (a
    /// retried webhook) the stored answer is returned. Also returns the conversation's
    /// language, which picks the voice.
    pub async fn open_call(&self, req: TurnRequest) -> Result<(TurnResponse, Lang), ServiceError> {
        let id = req.session_id.clone();
        self.locked(&id, self.open_call_locked(req)).await
    }

    async fn open_call_locked(&self, req: TurnRequest) -> Result<(TurnResponse, Lang), ServiceError> {
        let bot = self.bot();
        let now = req.now.with_time_zone(bot.clinic.tz.clone());
        let old = self.store.load_session(&req.session_id).await?;
        if let Some(resp) = self.replay(&req).await? {
            let lang = old.map_or(bot.clinic.language, |s| s.lang);
            return Ok((resp, lang));
        }
        let mut session = Session::new(&req.session_id, "voice", &req.user, bot.clinic.language);
        if let Some(old) = old {
            session.lang = old.lang;
            session.turns = old.turns;
            session.version = old.version;
        }
        let g = &bot.global.greeting;
        let nlu = Understanding {
            intent: g.intents.first().map(|name| IntentGuess {
                name: name.clone(),
                confidence: 1.0,
            }),
            sure: true,
            source: CALL_START.into(),
            ..Default::default()
        };
        let text = g.commands.first().cloned().unwrap_or_default();
        let out = step(&bot, &session, Input::Message { text, nlu }, &now);
        let mut next = out.session;
        next.version = session.version + 1;
        let mut turn = TurnRecord::new(&next, now.timestamp(), session.position());
        turn.replies = out.replies.clone();
        turn.intent = out.intent.clone();
        turn.nlu_source = Some(CALL_START.into());
        let mut response = TurnResponse::of(&next, out.replies, CALL_START);
        // A call starts with nothing collected.
        response.slots = Default::default();
        response.intent = out.intent;
        response.diagnostics = out.diagnostics;
        let processed = req.message_id.as_ref().map(|id| Processed {
            message_id: id.id.clone(),
            session: next.id.clone(),
            reply: serde_json::to_value(&response).unwrap_or(Value::Null),
            at: now.timestamp(),
            request: id.request.clone(),
        });
        self.forget(&next.id);
        self.store.commit_turn(&next, &turn, processed.as_ref()).await?;
        tracing::info!(session = %redact(&next.id), "call started");
        Ok((response, next.lang))
    }

    /// Ends a call: the conversation starts over (a half-finished booking is not resumed by
    /// the next call; an escalation stays in the staff inbox) and the call's summary is
    /// logged as a turn. `end_id` (CallSid + ":end") makes a repeated status callback a no-op.
    /// Returns None when the conversation does not exist or the call was already closed.
    pub async fn close_call(
        &self,
        session_id: &str,
        end_id: &str,
        end: CallEnd,
        now: &Zoned,
    ) -> Result<Option<CallSummary>, ServiceError> {
        self.locked(session_id, self.close_call_locked(session_id, end_id, end, now))
            .await
    }

    async fn close_call_locked(
        &self,
        session_id: &str,
        end_id: &str,
        end: CallEnd,
        now: &Zoned,
    ) -> Result<Option<CallSummary>, ServiceError> {
        if self.store.processed(end_id).await?.is_some() {
            return Ok(None);
        }
        let Some(old) = self.store.load_session(session_id).await? else {
            return Ok(None);
        };
        let recent = self.store.recent_turns(session_id, 200).await?;
        // The turns of this call: those after its greeting.
        let start = recent
            .iter()
            .rposition(|t| t.nlu_source.as_deref() == Some(CALL_START))
            .map_or(0, |i| i + 1);
        let call = &recent[start..];
        let summary = CallSummary {
            status: end.status.clone(),
            duration_s: end.duration_s,
            turns: call.iter().filter(|t| !t.input.is_empty()).count() as u64,
            outcome: outcome(call, old.waiting_for_staff).into(),
        };
        let lang = self.bot().clinic.language;
        let mut fresh = Session::new(old.id.clone(), old.channel.clone(), old.user.clone(), old.lang);
        fresh.turns = old.turns + 1;
        fresh.version = old.version + 1;
        let mut turn = TurnRecord::new(&fresh, now.timestamp(), old.position());
        turn.replies = vec![summary.text(lang)];
        turn.intent = Some("call:summary".into());
        turn.nlu_source = Some(CALL_END.into());
        turn.effects = vec![json!({ "call": summary })];
        self.forget(session_id);
        let marker = Processed::new(end_id, session_id, json!({ "call": summary }), now.timestamp());
        self.store.commit_turn(&fresh, &turn, Some(&marker)).await?;
        // The summary holds no personal data: status, seconds, counts, outcome.
        tracing::info!(
            session = %redact(session_id),
            status = %summary.status,
            duration_s = summary.duration_s.unwrap_or(0),
            turns = summary.turns,
            outcome = %summary.outcome,
            "call ended"
        );
        Ok(Some(summary))
    }
}

/// What a call achieved, from the actions its turns performed.
fn outcome(turns: &[TurnRecord], handed_over: bool) -> &'static str {
    if handed_over {
        return "handed_to_staff";
    }
    let ok = |name: &str| {
        turns
            .iter()
            .flat_map(|t| &t.effects)
            .any(|e| e["action"] == name && (e["result"]["ok"] == Value::Bool(true)))
    };
    if ok("book_appointment") {
        "booked"
    } else if ok("reschedule_appointment") {
        "rescheduled"
    } else if ok("cancel_appointment") {
        "cancelled"
    } else {
        "none"
    }
}
