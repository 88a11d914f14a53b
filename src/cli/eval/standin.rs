//! Where `clinicflow eval` meets the LLM core (src/llm/).
//!
//! `prompt_fn` gives the NLU prompt counted by `--cost`; `llm_step` the LLM understanding used
//! by `--llm`. Until the LLM core's `crate::llm::prompt::nlu_prompt` is wired here, the prompt
//! is a stand-in built to the LLM issue's description (clinic context, today in the clinic's
//! time zone, the question just asked, the intents allowed here, the slots in scope and their
//! JSON Schemas), and `--llm` reports that no LLM is available.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value, json};

use super::cost::PromptText;
use super::score::LlmAnswer;
use crate::engine::nlu_context;
use crate::engine::session::{Session, Wait};
use crate::flow::bot::{Bot, StateKind};
use crate::nlu::Understanding;

pub type LlmFuture = Pin<Box<dyn Future<Output = LlmAnswer> + Send>>;
pub type LlmStep = Box<dyn Fn(Session, String, jiff::Zoned, Understanding) -> LlmFuture>;

/// The LLM understanding step, when an LLM is configured.
pub fn llm_step(_bot: &Bot) -> anyhow::Result<Option<LlmStep>> {
    Ok(None)
}

/// The NLU prompt builder counted by `--cost`.
pub fn prompt_fn() -> Box<super::cost::PromptFn<'static>> {
    Box::new(nlu_prompt)
}

/// A stand-in for the LLM core's prompt: what the LLM issue says the NLU call carries.
pub fn nlu_prompt(bot: &Bot, s: &Session, text: &str, now: &jiff::Zoned) -> PromptText {
    let c = &bot.clinic;
    let ctx = nlu_context(bot, s);
    let mut intents: Vec<(String, String)> = bot
        .intents
        .iter()
        .map(|i| (i.name.clone(), i.description.clone()))
        .collect();
    intents.push(("affirm".into(), "The patient says yes.".into()));
    intents.push(("deny".into(), "The patient says no.".into()));
    let specialties: Vec<&str> = c.specialties.iter().map(|x| x.name.as_str()).collect();
    let coverages: Vec<&str> = c.coverages.iter().map(|x| x.name.as_str()).collect();
    let mut system = format!(
        "You read one message a patient sent to {} and say what they want. Answer only with \
         JSON that fits the schema: the patient's intent (one of the list, or null when the \
         message only answers the question) and the values of the slots it gives. Dates as \
         YYYY-MM-DD, resolved from today; times as HH:MM, 24-hour. Never invent values.\n\
         Today is {} {} {}, time zone {}.\nSpecialties: {}.\nCoverages: {}, or Particular.\n\
         Intents:\n",
        c.name,
        crate::flow::clinic::WeekdayKey::of(now.weekday()).name(),
        now.date(),
        format_args!("{:02}:{:02}", now.hour(), now.minute()),
        c.tz.iana_name().unwrap_or("local"),
        specialties.join(", "),
        coverages.join(", "),
    );
    for (n, d) in &intents {
        system.push_str(&format!("- {n}: {d}\n"));
    }
    let mut slots = Map::new();
    let mut user = String::new();
    if let Some(frame) = s.top()
        && let Some(flow) = bot.flow(&frame.flow)
    {
        user.push_str(&format!("Conversation: {}\n", flow.description));
        match (&frame.wait, flow.state(&frame.state).map(|st| &st.kind)) {
            (Wait::Slot(p), _) => user.push_str(&format!("The assistant just asked for: {p}\n")),
            (Wait::Intent, Some(StateKind::Expect(e))) => {
                user.push_str(&format!("The assistant just asked a question answered by: {}\n", e.join(" or ")))
            }
            _ => {}
        }
        for sl in flow.slots.iter().filter(|sl| sl.entity.is_some()) {
            let schema = slot_schema(sl.entity.map(|k| k.as_str()).unwrap_or("text"), &specialties, &coverages);
            slots.insert(sl.name.clone(), json!({ "anyOf": [schema, { "type": "null" }] }));
        }
    } else {
        for (name, kind) in [("specialty", "specialty"), ("date", "date"), ("time", "time")] {
            slots.insert(name.into(), json!({ "anyOf": [slot_schema(kind, &specialties, &coverages), { "type": "null" }] }));
        }
    }
    let _ = ctx;
    user.push_str(&format!("Patient: {text}"));
    let names: Vec<Value> = intents.iter().map(|(n, _)| Value::String(n.clone())).collect();
    let required: Vec<Value> = slots.keys().map(|k| Value::String(k.clone())).collect();
    let schema = json!({
        "name": "nlu",
        "strict": true,
        "schema": {
            "type": "object",
            "additionalProperties": false,
            "required": ["intent", "slots"],
            "properties": {
                "intent": { "anyOf": [{ "type": "string", "enum": names }, { "type": "null" }] },
                "slots": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": required,
                    "properties": slots,
                }
            }
        }
    });
    PromptText {
        system,
        user,
        schema: schema.to_string(),
    }
}

fn slot_schema(kind: &str, specialties: &[&str], coverages: &[&str]) -> Value {
    match kind {
        "specialty" => json!({ "type": "string", "enum": specialties }),
        "coverage" => {
            let mut v: Vec<&str> = coverages.to_vec();
            v.push("Particular");
            json!({ "type": "string", "enum": v })
        }
        "date" => json!({ "type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$" }),
        "time" => json!({ "type": "string", "pattern": "^\\d{2}:\\d{2}$" }),
        "document" => json!({ "type": "string", "pattern": "^\\d{7,8}$" }),
        "number" => json!({ "type": "integer", "minimum": 1 }),
        _ => json!({ "type": "string" }),
    }
}
