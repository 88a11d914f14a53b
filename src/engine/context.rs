//! The values templates and Rhai expressions see: slots, result, intent, session, clinic, now,
//! patient.

use jiff::Zoned;
use serde_json::{Value, json};

use super::session::{Frame, Session};
use crate::flow::bot::Bot;
use crate::flow::clinic::WeekdayKey;

pub fn now_value(now: &Zoned) -> Value {
    json!({
        "date": now.date().to_string(),
        "time": format!("{:02}:{:02}", now.hour(), now.minute()),
        "hour": now.hour(),
        "minute": now.minute(),
        "weekday": WeekdayKey::of(now.weekday()).name(),
        "iso": now.datetime().to_string(),
    })
}

pub fn session_value(s: &Session) -> Value {
    json!({
        "id": s.id,
        "lang": s.lang.code(),
        "channel": s.channel,
        "flow": s.top().map(|f| f.flow.clone()),
        "state": s.top().map(|f| f.state.clone()),
        "turns": s.turns,
    })
}

/// The JSON context for one render or evaluation.
pub fn build(bot: &Bot, s: &Session, frame: Option<&Frame>, intent: &str, now: &Zoned) -> Value {
    let slots = frame
        .map(|f| serde_json::to_value(&f.slots).unwrap_or(Value::Null))
        .unwrap_or_else(|| json!({}));
    let result = frame.map(|f| f.result.clone()).unwrap_or(Value::Null);
    json!({
        "slots": slots,
        "result": result,
        "intent": intent,
        "session": session_value(s),
        "clinic": bot.clinic.value,
        "now": now_value(now),
        "patient": patient_value(s),
    })
}

/// `patient` in guards and templates: whether this conversation proved who the patient is
/// (the built-in `verify_patient`). Never the document or the name: only the fact.
pub fn patient_value(s: &Session) -> Value {
    json!({ "verified": s.patient.is_some() })
}
