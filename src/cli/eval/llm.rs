//! Where `clinicflow eval` meets the LLM core (src/llm/): the NLU prompt counted by `--cost`
//! is the one a real turn sends (`crate::llm::nlu_prompt`), and `--llm` runs the LLM
//! understanding step on the messages the rules are not sure of.

use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::cost::PromptText;
use super::score::LlmAnswer;
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::llm::Llm;
use crate::llm::schema::{NONE, Scope};
use crate::nlu::Understanding;

pub type LlmFuture = Pin<Box<dyn Future<Output = LlmAnswer>>>;
pub type LlmStep = Box<dyn Fn(Session, String, jiff::Zoned, Understanding) -> LlmFuture>;

/// The LLM understanding step from the environment (OPENAI_API_KEY, OPENAI_BASE_URL,
/// CLINICFLOW_LLM_MODEL…); `None` without a key.
pub fn llm_step(bot: Arc<Bot>) -> anyhow::Result<Option<LlmStep>> {
    Ok(Llm::from_env()?.map(|llm| step_with(bot, Arc::new(llm))))
}

/// The step a real turn takes when the rules are not sure: `Llm::understand` (one checked
/// call, merged with the rules; the rules' answer when the call fails), with the tokens the
/// provider reported.
pub fn step_with(bot: Arc<Bot>, llm: Arc<Llm>) -> LlmStep {
    Box::new(move |session, text, now, rules| {
        let bot = bot.clone();
        let llm = llm.clone();
        Box::pin(async move {
            let budget = llm.config().timeout;
            let o = llm.understand(&bot, &session, &text, &now, rules, budget).await;
            LlmAnswer {
                tokens_in: o.calls.iter().map(|c| c.tokens_in).sum(),
                tokens_out: o.calls.iter().map(|c| c.tokens_out).sum(),
                understanding: o.understanding,
            }
        })
    })
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
