//! The NLU prompt: a pure function of the bot, the session, the message and the time. The
//! eval tool calls it too, to count the tokens a turn costs without calling any model.

use std::sync::LazyLock;

use jiff::Zoned;
use serde_json::{Value, json};

use super::mask::mask;
use super::schema::{NONE, Scope};
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::flow::templates::{Templates, Text};
use crate::lang::Lang;

/// The template in the bot's prompts/ folder, when it has one.
pub const NLU_TEMPLATE: &str = "prompts/nlu.j2";

/// Longest patient message sent (characters); the rest is cut.
const MAX_MESSAGE: usize = 600;
/// Exchanges sent (the session keeps three): the last one's reply is the question just asked;
/// the one before says what led to it. Older ones rarely change how a message reads.
const RECENT_SENT: usize = 2;
/// Longest recent patient message, and question just asked, sent (characters).
const MAX_RECENT: usize = 280;
/// Longest earlier reply sent (characters): its start says what was asked, which is all the
/// model needs to read the patient's answer to it.
const MAX_EARLIER_REPLY: usize = 60;

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
/// slots in scope. Document and phone numbers, and the patient names the conversation holds,
/// are masked everywhere.
pub fn nlu_prompt(bot: &Bot, session: &Session, text: &str, now: &Zoned) -> NluPrompt {
    let scope = Scope::of(bot, session);
    let system = render(bot, NLU_TEMPLATE, &context(bot, session, &scope, now));
    let names = super::mask::known_names(bot, session);
    let user: String = super::mask::mask_personal(text.trim(), &names)
        .chars()
        .take(MAX_MESSAGE)
        .collect();
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

/// An earlier reply cut to what it asked: up to its first question mark (or sentence), at
/// most `MAX_EARLIER_REPLY` characters. The patient's next message answers that part.
fn first_question(reply: &str) -> String {
    let end = reply
        .find('?')
        .map(|i| i + 1)
        .or_else(|| reply.find(['\n', '.']))
        .unwrap_or(reply.len());
    short(&reply[..end], MAX_EARLIER_REPLY)
}

fn intent_description(bot: &Bot, name: &str) -> String {
    if let Some(def) = bot.intents.iter().find(|d| d.name == name) {
        return brief(&def.description);
    }
    match name {
        // The names say it; the header says when to answer "none".
        "affirm" | "deny" | NONE => String::new(),
        _ => bot
            .flow_for_intent(name)
            .map(|f| brief(&f.description))
            .unwrap_or_default(),
    }
}

/// Words a shortened description must not end on.
const DANGLING: [&str; 20] = [
    "a", "an", "the", "or", "and", "to", "of", "with", "for", "in", "on", "how", "their", "they", "right", "y", "o",
    "de", "con", "instead",
];

/// A description cut to what tells items apart: every unsure turn pays for each word. Drops
/// "The patient", parentheses and what follows the first comma or sentence; at most 6 words.
fn brief(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0u32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let cut = out
        .split([',', ';', ':'])
        .next()
        .unwrap_or("")
        .split(". ")
        .next()
        .unwrap_or("");
    let mut words: Vec<&str> = cut.split_whitespace().collect();
    if words.len() >= 2 && words[0].eq_ignore_ascii_case("the") && words[1] == "patient" {
        words.drain(..2);
        // "wants to cancel …" reads as well as "cancel …" after an intent's name.
        if words.len() > 2 && words[0] == "wants" && words[1] == "to" {
            words.drain(..2);
        }
    }
    words.truncate(6);
    // A cut at six words can leave "… with a specialty or": drop the dangling words.
    while let Some(w) = words.last() {
        let w = w.trim_end_matches('.');
        if w.is_empty() || DANGLING.contains(&w.to_lowercase().as_str()) {
            words.pop();
        } else {
            break;
        }
    }
    words.join(" ").trim_end_matches('.').trim_end().to_string()
}

/// A slot in a few words, or nothing when the name and the answer schema say it all: its
/// name says its kind ("patient_name"), its values are listed there (specialty, coverage) or
/// the format lines cover it (date, time).
/// The schema's description is often a note for the admin; its first words are enough.
fn slot_description(slot: &crate::flow::bot::Slot) -> String {
    use crate::nlu::EntityKind;
    let named = slot.entity.is_some_and(|k| slot.name.contains(k.as_str()));
    if named || lists_values(slot) || matches!(slot.entity, Some(EntityKind::Date | EntityKind::Time)) {
        return String::new();
    }
    let d = slot
        .schema_json
        .get("description")
        .and_then(Value::as_str)
        // "… by its canonical name in flows/clinic.yaml": the schema lists the names.
        .map(|d| brief(d.split(" by ").next().unwrap_or(d)))
        .unwrap_or_default();
    if d.is_empty() {
        slot.entity.map(|k| k.as_str().to_string()).unwrap_or_default()
    } else {
        d
    }
}

const WEEKDAYS_ES: [&str; 7] = ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"];
const WEEKDAYS_EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn weekday(d: jiff::civil::Date, lang: Lang) -> &'static str {
    let i = d.weekday().to_monday_zero_offset() as usize;
    match lang {
        Lang::Es => WEEKDAYS_ES[i],
        Lang::En => WEEKDAYS_EN[i],
    }
}

/// The next seven days on one line, "mar 24, mié 25, …": the month is written only where it
/// changes ("mar 1/12") and the year only where it does ("vie 1/1/2027"), which is all the
/// model needs to turn "el jueves" into an ISO date.
fn next_days(today: jiff::civil::Date, lang: Lang) -> String {
    let mut prev = today;
    let mut out: Vec<String> = Vec::new();
    for n in 1..=7 {
        let Ok(d) = today.checked_add(jiff::Span::new().days(n)) else {
            break;
        };
        let mut s = format!("{} {}", weekday(d, lang), d.day());
        if d.month() != prev.month() {
            s.push_str(&format!("/{}", d.month()));
            if d.year() != prev.year() {
                s.push_str(&format!("/{}", d.year()));
            }
        }
        out.push(s);
        prev = d;
    }
    out.join(", ")
}

/// Whether a slot's schema lists its values (an `enum` somewhere): then the answer schema
/// already names them and the prompt need not.
fn lists_values(slot: &crate::flow::bot::Slot) -> bool {
    fn has_enum(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.contains_key("enum") || m.values().any(has_enum),
            Value::Array(a) => a.iter().any(has_enum),
            _ => false,
        }
    }
    has_enum(&slot.schema_json)
}

fn context(bot: &Bot, session: &Session, scope: &Scope<'_>, now: &Zoned) -> Value {
    use crate::nlu::EntityKind;
    let lang = session.lang;
    let c = &bot.clinic;
    let today = now.date();
    // The calendar only matters when a date can be answered.
    let wants_dates = scope.slots.iter().any(|s| s.entity == Some(EntityKind::Date));
    let days = wants_dates.then(|| next_days(today, lang));
    // Specialty and coverage names help classify even without their slot; when a slot in scope
    // lists them, the answer schema carries them already.
    let listed = |k: EntityKind| scope.slots.iter().any(|s| s.entity == Some(k) && lists_values(s));
    let specialties: Vec<String> = if listed(EntityKind::Specialty) {
        Vec::new()
    } else {
        c.specialties.iter().map(|s| s.name.clone()).collect()
    };
    let coverages: Vec<String> = if listed(EntityKind::Coverage) {
        Vec::new()
    } else {
        c.coverages.iter().map(|s| s.name.clone()).collect()
    };
    let frame = session.top();
    let flow = frame.and_then(|f| bot.flow(&f.flow));
    let asking = scope
        .pending
        .as_deref()
        .and_then(|p| scope.slot(p))
        .map(|s| s.name.clone());
    // The last reply is the question just asked: shown once, as `question`.
    let n = session.recent.len();
    let skip = n.saturating_sub(RECENT_SENT);
    let recent: Vec<Value> = session
        .recent
        .iter()
        .enumerate()
        .skip(skip)
        .map(|(i, x)| {
            let bot = (i + 1 < n).then(|| first_question(&x.bot));
            json!({ "patient": short(&x.patient, MAX_RECENT), "bot": bot })
        })
        .collect();
    let question = session.recent.last().map(|x| short(&x.bot, MAX_RECENT));
    json!({
        "clinic": {
            "name": c.name,
            "specialties": specialties,
            "coverages": coverages,
        },
        "today": format!(
            "{} {}/{}/{} {:02}:{:02}",
            weekday(today, lang),
            today.day(),
            today.month(),
            today.year(),
            now.hour(),
            now.minute()
        ),
        "days": days,
        // The flow's name says it (it is the intent that starts it, in the list below).
        "flow": flow.map(|f| f.name.clone()),
        "dates": wants_dates,
        "times": scope.slots.iter().any(|s| s.entity == Some(EntityKind::Time)),
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
        assert!(p.system.contains("Waiting for: date"));
        assert!(p.system.contains(&bot.clinic.name));
        assert!(p.system.contains("lun 23/11/2026 09:15"), "today's date and time");
        assert!(p.system.contains("jue 26, "), "the coming days, to resolve weekdays");
        assert!(p.system.contains("lun 30."), "a whole week ahead");
        let names = p.schema["properties"]["slots"]["properties"]["specialty"].to_string();
        assert!(names.contains("Cardiología"), "the specialties, in the answer schema");
        assert!(p.system.contains("«respuesta 5»"), "the question just asked");
        assert!(p.system.contains("mensaje 5") && p.system.contains("mensaje 4"));
        assert!(!p.system.contains("mensaje 3"), "only the last two exchanges are sent");
        assert_eq!(
            p.system.matches("respuesta 5").count(),
            1,
            "the question is not repeated"
        );
        assert!(!p.system.contains("12345678") && !p.user.contains("1155667788"));
        assert_eq!(p.user, "el jueves, mi cel es [TELÉFONO]");
    }

    #[test]
    fn the_prompt_is_short_and_does_not_repeat_the_schema() {
        let bot = demo();
        let mut s = booking(Wait::Slot("date".into()));
        s.remember(
            "quiero un turno con cardiología".into(),
            "¿Qué día le queda bien? Puede decirme «el jueves».".into(),
        );
        let p = nlu_prompt(&bot, &s, "el juevs", &now());
        // Every unsure turn pays for this prompt (issue 4: a quarter of a full-history bot).
        let tokens = crate::cli::eval::cost::tokens(&p.system);
        assert!(tokens < 330, "{tokens} tokens:\n{}", p.system);
        assert!(!p.system.contains("flows/clinic.yaml"), "no notes meant for the admin");
        assert!(
            !p.system.contains("Traumatología"),
            "the schema lists the specialties already"
        );
        assert!(
            !p.system.contains("\"pattern\""),
            "the schema goes apart, in response_format"
        );
        assert!(
            p.system.contains("book_appointment: wants a new appointment\n"),
            "one short line per intent"
        );
        assert!(p.system.contains("Dates from the days above; times 24h"));
    }

    #[test]
    fn a_calendar_across_months_and_years_names_them_where_they_change() {
        let d: jiff::civil::Date = "2026-12-28".parse().unwrap();
        assert_eq!(
            next_days(d, Lang::Es),
            "mar 29, mié 30, jue 31, vie 1/1/2027, sáb 2, dom 3, lun 4"
        );
        let d: jiff::civil::Date = "2026-11-28".parse().unwrap();
        assert!(next_days(d, Lang::En).starts_with("Sun 29, Mon 30, Tue 1/12, "));
    }

    #[test]
    fn descriptions_are_cut_to_a_few_words_without_dangling_ones() {
        assert_eq!(
            brief("The patient wants a new appointment (turno) with a specialty or a professional."),
            "wants a new appointment"
        );
        assert_eq!(
            brief("The patient wants to talk to a person (reception) instead of the assistant."),
            "talk to a person"
        );
        assert_eq!(brief("A calendar day, ISO format YYYY-MM-DD"), "A calendar day");
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
