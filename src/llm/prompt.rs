//! The NLU prompt: a pure function of the bot, the session, the message and the time. The
//! eval tool calls it too, to count the tokens a turn costs without calling any model.

use std::sync::LazyLock;

use jiff::Zoned;
use serde_json::{Value, json};

use super::mask::mask;
use super::schema::{NONE, Scope};
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::flow::templates::{Templates, Text, format_date};
use crate::lang::Lang;

/// The template in the bot's prompts/ folder, when it has one.
pub const NLU_TEMPLATE: &str = "prompts/nlu.j2";

/// Longest patient message sent (characters); the rest is cut.
const MAX_MESSAGE: usize = 600;
/// Longest recent message or reply sent (characters).
const MAX_RECENT: usize = 280;

/// What one NLU call sends: the system and user messages, and the answer's JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub struct NluPrompt {
    pub system: String,
    pub user: String,
    pub schema: Value,
}

/// Built-in copy of prompts/nlu.j2 for bots whose folder has none, parsed once.
static BUILTIN: LazyLock<Templates> = LazyLock::new(|| {
    let mut t = Templates::new();
    // The file is part of this crate; a syntax error in it is caught by the tests.
    let _ = t.add(NLU_TEMPLATE, include_str!("../../prompts/nlu.j2"));
    t
});

/// Builds the prompt for one message: clinic context, the date and time in the clinic's time
/// zone, the question just asked, at most three recent exchanges, the allowed intents and the
/// slots in scope. Document and phone numbers are masked everywhere.
pub fn nlu_prompt(bot: &Bot, session: &Session, text: &str, now: &Zoned) -> NluPrompt {
    let scope = Scope::of(bot, session);
    let system = render(bot, NLU_TEMPLATE, &context(bot, session, &scope, now));
    let user: String = mask(text.trim()).chars().take(MAX_MESSAGE).collect();
    NluPrompt {
        system,
        user,
        schema: scope.answer_schema(),
    }
}

/// Renders a prompt template from the bot's folder, or the built-in copy.
pub(crate) fn render(bot: &Bot, name: &str, ctx: &Value) -> String {
    let text = Text {
        es: Some(name.to_string()),
        en: None,
    };
    let templates = if bot.templates.has(name) {
        &bot.templates
    } else {
        &*BUILTIN
    };
    templates.render(&text, Lang::Es, ctx).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        String::new()
    })
}

fn short(s: &str, max: usize) -> String {
    let m = mask(s.trim());
    if m.chars().count() <= max {
        return m;
    }
    let mut cut: String = m.chars().take(max).collect();
    cut.push('…');
    cut
}

fn intent_description(bot: &Bot, name: &str) -> String {
    if let Some(def) = bot.intents.iter().find(|d| d.name == name) {
        return def.description.clone();
    }
    match name {
        "affirm" => "The patient says yes, agrees or confirms.".into(),
        "deny" => "The patient says no or does not confirm.".into(),
        NONE => "None of the above.".into(),
        _ => bot
            .flow_for_intent(name)
            .map(|f| f.description.clone())
            .unwrap_or_default(),
    }
}

fn slot_description(slot: &crate::flow::bot::Slot) -> String {
    // The first sentence: the rest of a schema's description is often a note for the admin.
    let d = slot
        .schema_json
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let d = d.split(". ").next().unwrap_or(d).trim_end_matches('.');
    let kind = slot.entity.map(|k| k.as_str()).unwrap_or("");
    if d.is_empty() { kind.to_string() } else { d.to_string() }
}

fn context(bot: &Bot, session: &Session, scope: &Scope<'_>, now: &Zoned) -> Value {
    let lang = session.lang;
    let c = &bot.clinic;
    let today = now.date();
    let upcoming: Vec<Value> = (1..=7)
        .filter_map(|d| today.checked_add(jiff::Span::new().days(d)).ok())
        .map(|d| json!({ "iso": d.to_string(), "long": format_date(d, lang) }))
        .collect();
    let frame = session.top();
    let flow = frame.and_then(|f| bot.flow(&f.flow));
    let asking = scope
        .pending
        .as_deref()
        .and_then(|p| scope.slot(p))
        .map(|s| format!("{} ({})", s.name, slot_description(s)));
    // The last reply is the question just asked: shown once, as `question`.
    let n = session.recent.len();
    let recent: Vec<Value> = session
        .recent
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let bot = (i + 1 < n).then(|| short(&x.bot, MAX_RECENT));
            json!({ "patient": short(&x.patient, MAX_RECENT), "bot": bot })
        })
        .collect();
    let question = session.recent.last().map(|x| short(&x.bot, MAX_RECENT));
    json!({
        "clinic": {
            "name": c.name,
            "timezone": c.tz_name,
            "specialties": c.specialties.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            "coverages": c.coverages.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        },
        "today": {
            "iso": today.to_string(),
            "long": format_date(today, lang),
            "time": format!("{:02}:{:02}", now.hour(), now.minute()),
        },
        "upcoming": upcoming,
        "flow": flow.map(|f| json!({ "name": f.name, "description": f.description })),
        "asking": asking,
        "question": question,
        "recent": recent,
        "intents": scope.intents.iter().map(|i| json!({ "name": i, "description": intent_description(bot, i) })).collect::<Vec<_>>(),
        "slots": scope.slots.iter().map(|s| json!({ "name": s.name, "description": slot_description(s) })).collect::<Vec<_>>(),
        "lang": lang.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::session::{Frame, Wait};

    pub(crate) fn demo() -> Bot {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        match crate::flow::compile::compile_dir(dir) {
            Ok(b) => b,
            Err(d) => panic!("demo bot: {d:?}"),
        }
    }

    fn now() -> Zoned {
        "2026-11-23T09:15:00-03:00[America/Argentina/Buenos_Aires]"
            .parse()
            .unwrap()
    }

    fn booking(wait: Wait) -> Session {
        let mut s = Session::new("s", "whatsapp", "+5491155551234", Lang::Es);
        s.stack.push(Frame {
            flow: "book_appointment".into(),
            state: "details".into(),
            slots: Default::default(),
            wait,
            result: Value::Null,
        });
        s
    }

    #[test]
    fn schema_has_the_states_intents_and_slots_only() {
        let bot = demo();
        let p = nlu_prompt(&bot, &booking(Wait::Slot("specialty".into())), "x", &now());
        let intents = p.schema["properties"]["intent"]["enum"].as_array().unwrap();
        assert!(intents.contains(&json!("book_appointment")));
        assert!(intents.contains(&json!("human")));
        assert_eq!(intents.last(), Some(&json!("none")));
        assert!(!intents.contains(&json!("affirm")), "no yes/no question is pending");
        let slots = p.schema["properties"]["slots"]["properties"].as_object().unwrap();
        assert!(slots.contains_key("specialty") && slots.contains_key("date") && slots.contains_key("time"));
        assert!(
            !slots.contains_key("appointment"),
            "slots the NLU cannot fill are not offered"
        );
        assert_eq!(
            slots["specialty"]["anyOf"][0]["enum"][0],
            json!("Cardiología"),
            "each slot carries its own schema"
        );
        assert_eq!(p.schema["properties"]["slots"]["additionalProperties"], json!(false));
    }

    #[test]
    fn a_yes_no_question_allows_affirm_and_deny() {
        let bot = demo();
        let mut s = booking(Wait::Intent);
        s.stack[0].state = "confirm".into();
        let p = nlu_prompt(&bot, &s, "x", &now());
        let intents = p.schema["properties"]["intent"]["enum"].as_array().unwrap();
        assert_eq!(&intents[..2], &[json!("affirm"), json!("deny")]);
    }

    #[test]
    fn prompt_has_context_and_only_three_masked_exchanges() {
        let bot = demo();
        let mut s = booking(Wait::Slot("date".into()));
        for i in 0..6 {
            s.remember(format!("mensaje {i} dni 12345678"), format!("respuesta {i}"));
        }
        assert_eq!(s.recent.len(), 3, "the session keeps three exchanges");
        let p = nlu_prompt(&bot, &s, "el jueves, mi cel es 1155667788", &now());
        assert!(p.system.contains("waiting for: date"));
        assert!(p.system.contains(&bot.clinic.name));
        assert!(p.system.contains("2026-11-23"), "today's date");
        assert!(p.system.contains("2026-11-26"), "the coming days, to resolve weekdays");
        assert!(p.system.contains("09:15"));
        assert!(p.system.contains("Cardiología"));
        assert!(p.system.contains("«respuesta 5»"), "the question just asked");
        assert!(p.system.contains("mensaje 5") && p.system.contains("mensaje 4") && p.system.contains("mensaje 3"));
        assert!(!p.system.contains("mensaje 2"), "never more than three exchanges");
        assert_eq!(
            p.system.matches("respuesta 5").count(),
            1,
            "the question is not repeated"
        );
        assert!(!p.system.contains("12345678") && !p.user.contains("1155667788"));
        assert_eq!(p.user, "el jueves, mi cel es [TELÉFONO]");
    }

    #[test]
    fn idle_offers_the_slots_a_flow_can_start_with() {
        let bot = demo();
        let s = Session::new("s", "whatsapp", "u", Lang::Es);
        let p = nlu_prompt(&bot, &s, "quiero un turno", &now());
        let slots = p.schema["properties"]["slots"]["properties"].as_object().unwrap();
        assert!(slots.contains_key("specialty") && slots.contains_key("date"));
        for never in ["choice", "patient_name", "document_id"] {
            assert!(
                !slots.contains_key(never),
                "{never}: only with the question or the flow that asks it"
            );
        }
        assert!(p.system.contains("book_appointment"));
    }
}
