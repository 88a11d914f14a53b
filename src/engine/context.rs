//! The values templates and Rhai expressions see: slots, result, intent, session, clinic, now,
//! patient.

use jiff::Zoned;
use minijinja::value::Value as MjValue;
use serde_json::{Value, json};

use super::session::{Frame, Session};
use crate::flow::bot::Bot;
use crate::flow::clinic::WeekdayKey;

/// Every top-level name templates and Rhai expressions can read: the keys of `build()`.
/// Adding a value to the context means adding its name here (a test keeps the two equal);
/// `check` then accepts it in templates and guards alike.
pub const VARIABLES: &[&str] = &["slots", "result", "intent", "session", "clinic", "now", "patient"];

/// What a slot's `ambiguous:` text reads: the usual names plus `matches`, the offered options
/// the patient's answer fitted (each with its `number`), set by `step/choosing.rs`.
pub const AMBIGUOUS_VARIABLES: &[&str] = &[
    "slots", "result", "intent", "session", "clinic", "now", "patient", "matches",
];

/// The fields of `now` and `session`, which `check` knows without a conversation.
pub const NOW_FIELDS: &[&str] = &["date", "time", "hour", "minute", "weekday", "iso"];
pub const SESSION_FIELDS: &[&str] = &["id", "lang", "channel", "flow", "state", "turns"];

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

/// `slots`: the top frame's slots (`{}` outside any flow).
pub fn slots_value(frame: Option<&Frame>) -> Value {
    frame
        .map(|f| serde_json::to_value(&f.slots).unwrap_or(Value::Null))
        .unwrap_or_else(|| json!({}))
}

/// The JSON context for one render or evaluation.
pub fn build(bot: &Bot, s: &Session, frame: Option<&Frame>, intent: &str, now: &Zoned) -> Value {
    json!({
        "slots": slots_value(frame),
        "result": frame.map(|f| f.result.clone()).unwrap_or(Value::Null),
        "intent": intent,
        "session": session_value(s),
        "clinic": bot.clinic.value,
        "now": now_value(now),
        "patient": patient_value(s),
    })
}

/// The same context as `build()`, as a template value. Built from its parts so the clinic,
/// converted once when the bot was compiled (`Bot::clinic_template`), is shared rather than
/// copied and converted again for every text a turn says.
pub fn template_context(bot: &Bot, s: &Session, frame: Option<&Frame>, intent: &str, now: &Zoned) -> MjValue {
    let result = frame.map(|f| &f.result).unwrap_or(&Value::Null);
    minijinja::context! {
        slots => template_value(&slots_value(frame)),
        result => template_value(result),
        intent => intent,
        session => template_value(&session_value(s)),
        clinic => bot.clinic_template.clone(),
        now => template_value(&now_value(now)),
        patient => template_value(&patient_value(s)),
    }
}

/// Any serializable value as a template value.
pub fn template_value<T: serde::Serialize>(v: &T) -> MjValue {
    MjValue::from(minijinja::value::Serde(v))
}

/// `patient` in guards and templates: whether this conversation proved who the patient is
/// (the built-in `verify_patient`). Never the document or the name: only the fact.
pub fn patient_value(s: &Session) -> Value {
    json!({ "verified": s.patient.is_some() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        k.sort();
        k
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    }

    #[test]
    fn the_declared_names_are_the_context_keys() {
        let bot = crate::flow::compile::compile_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).expect("demo");
        let s = Session::new("s", "test", "u", Lang::Es);
        let now: Zoned = "2026-11-23T10:00[America/Argentina/Buenos_Aires]"
            .parse()
            .expect("zoned");
        assert_eq!(keys(&build(&bot, &s, None, "", &now)), sorted(VARIABLES));
        assert_eq!(keys(&now_value(&now)), sorted(NOW_FIELDS));
        assert_eq!(keys(&session_value(&s)), sorted(SESSION_FIELDS));
    }

    /// Templates see exactly what expressions see: the template context, written back as
    /// JSON, is the JSON context (slots, result, clinic and all).
    #[test]
    fn the_template_context_is_the_json_context() {
        let bot = crate::flow::compile::compile_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).expect("demo");
        let mut s = Session::new("s", "test", "u", Lang::En);
        s.turns = 4;
        let mut slots = crate::engine::session::Slots::new();
        slots.insert("service".into(), json!("limpieza"));
        s.stack.push(Frame {
            flow: "book".into(),
            state: "ask_date".into(),
            slots,
            wait: crate::engine::session::Wait::Intent,
            result: json!({"available": false, "alternatives": [{"time": "10:30"}]}),
        });
        let now: Zoned = "2026-11-23T10:00[America/Argentina/Buenos_Aires]"
            .parse()
            .expect("zoned");
        let json_ctx = build(&bot, &s, s.top(), "affirm", &now);
        let template_ctx = template_context(&bot, &s, s.top(), "affirm", &now);
        assert_eq!(serde_json::to_value(&template_ctx).expect("serializes"), json_ctx);
        assert_eq!(json_ctx["slots"]["service"], "limpieza");
        assert_ne!(json_ctx["clinic"], Value::Null);
    }
}
