//! Where `clinicflow eval` meets the LLM core (src/llm/): the NLU prompt counted by `--cost`
//! is the one a real turn sends (`crate::llm::nlu_prompt`), and `--llm` runs the LLM
//! understanding step on the messages the rules are not sure of.

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value, json};

use super::cost::PromptText;
use super::score::LlmAnswer;
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::llm::schema::{NONE, Scope};
use crate::nlu::Understanding;

pub type LlmFuture = Pin<Box<dyn Future<Output = LlmAnswer> + Send>>;
pub type LlmStep = Box<dyn Fn(Session, String, jiff::Zoned, Understanding) -> LlmFuture>;

/// The LLM understanding step, when an LLM is configured (OPENAI_API_KEY).
pub fn llm_step(_bot: &Bot) -> anyhow::Result<Option<LlmStep>> {
    Ok(None)
}

/// The NLU prompt of a turn, as sent: system and user messages, and the answer's JSON Schema
/// wrapped as `response_format.json_schema` (name, strict, schema).
pub fn prompt(bot: &Bot, session: &Session, text: &str, now: &jiff::Zoned) -> PromptText {
    let p = crate::llm::nlu_prompt(bot, session, text, now);
    let format = json!({ "name": "nlu", "strict": true, "schema": p.schema });
    PromptText {
        system: p.system,
        user: p.user,
        schema: format.to_string(),
    }
}

/// What the model answers for a turn, in the answer schema's shape: the intent (or "none")
/// and every slot in scope, null where the message gives nothing. `values` are the slot values
/// the turn produced.
pub fn answer(bot: &Bot, session: &Session, intent: Option<&str>, values: &Map<String, Value>) -> String {
    let scope = Scope::of(bot, session);
    let slots: Map<String, Value> = scope
        .slots
        .iter()
        .map(|s| (s.name.clone(), values.get(&s.name).cloned().unwrap_or(Value::Null)))
        .collect();
    json!({ "intent": intent.unwrap_or(NONE), "slots": slots }).to_string()
}
