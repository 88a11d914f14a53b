//! Answers to reminders. A reminder asks the patient to answer ("1 confirmo · 2 cancelo ·
//! 3 quiero cambiarlo"); when it is sent, the conversation gets a frame of the flow
//! [`REPLY_FLOW`] (flows/reminder_reply.yaml) holding the appointment, already waiting at its
//! first state, so that the answer, whenever it comes, acts on that appointment without the
//! patient identifying themselves again. What the answers do is written in that flow.
//!
//! The frame goes at the *bottom* of the stack: a conversation in the middle of something
//! else goes on undisturbed, and the answer is taken once that is done. A newer reminder
//! replaces the frame of an older one. A clinic without the flow gets no frame. When the
//! answer comes back in another conversation (a phone booking reminded by SMS, see
//! `Sender::answers_in`), the frame goes in that one.

use serde_json::Value;

use super::session::{Frame, Session, Wait};
use crate::flow::bot::{Bot, StateKind};

/// The flow that takes the answer to a reminder.
pub const REPLY_FLOW: &str = "reminder_reply";
/// Its slot that holds the appointment (the shape of `list_appointments` items).
const SLOT: &str = "appointment";

/// Puts `session` where the answer to a reminder of `appointment` is taken by
/// [`REPLY_FLOW`]. Returns false (and leaves the session alone) when the bot has no such
/// flow, or it does not start with an `expect` state, or it has no `appointment` slot that
/// accepts the value.
pub fn await_answer(bot: &Bot, session: &mut Session, appointment: &Value) -> bool {
    let Some(flow) = bot.flow(REPLY_FLOW) else { return false };
    let Some(start) = flow.states.get(flow.start) else {
        return false;
    };
    if !matches!(start.kind, StateKind::Expect(_)) {
        tracing::warn!("flow `{REPLY_FLOW}` must start with an `expect` state; reminder answers are not awaited");
        return false;
    }
    if !flow.slot(SLOT).is_some_and(|s| s.schema.is_valid(appointment)) {
        tracing::warn!(
            "flow `{REPLY_FLOW}` has no `{SLOT}` slot for the appointment; reminder answers are not awaited"
        );
        return false;
    }
    session.stack.retain(|f| f.flow != REPLY_FLOW);
    let mut slots = crate::engine::session::Slots::new();
    slots.insert(SLOT.to_string(), appointment.clone());
    session.stack.insert(
        0,
        Frame {
            flow: flow.name.clone(),
            state: start.name.clone(),
            slots,
            wait: Wait::Intent,
            result: Value::Null,
        },
    );
    true
}
