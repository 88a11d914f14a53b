//! Understanding with the LLM: one call when the rules are not sure, its answer checked
//! against the current state and merged with the rules; any failure falls back to the rules.

use std::time::Duration;

use jiff::Zoned;
use tokio::time::Instant;

use super::answer::{self, Checked};
use super::cache;
use super::client::{ChatSpec, LlmError};
use super::prompt::nlu_prompt;
use super::schema::Scope;
use super::{Llm, record_metrics};
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::nlu::Understanding;
use crate::store::LlmCall;

/// What understanding a message produced, and what it cost.
#[derive(Debug, Clone)]
pub struct NluOutcome {
    /// Source "llm" when the model's answer was used, "fallback" when it could not be,
    /// "rules" when no call was needed.
    pub understanding: Understanding,
    pub calls: Vec<LlmCall>,
}

impl Llm {
    /// Understands `text` given what the rules made of it. Calls the model only when the rules
    /// are not sure; never takes longer than `budget` (nor the configured timeout).
    pub async fn understand(
        &self,
        bot: &Bot,
        session: &Session,
        text: &str,
        now: &Zoned,
        rules: Understanding,
        budget: Duration,
    ) -> NluOutcome {
        // Digits alone ("2", "30.111.222") give a model nothing to read: the rules are exact.
        if rules.sure || !text.chars().any(char::is_alphabetic) {
            return NluOutcome {
                understanding: rules,
                calls: Vec::new(),
            };
        }
        let clinic = bot.clinic.name.as_str();
        let scope = Scope::of(bot, session);
        let prompt = nlu_prompt(bot, session, text, now);
        let schema_text = prompt.schema.to_string();
        let position = match session.top() {
            Some(f) => format!("{}.{}.{:?}", f.flow, f.state, f.wait),
            None => "idle".into(),
        };
        let key = cache::key(
            bot as *const Bot as usize,
            &schema_text,
            &position,
            &now.date().to_string(),
            session.lang.code(),
            &prompt.user,
        );
        if let Some(checked) = self.cache.get(key) {
            let call = LlmCall {
                purpose: "nlu".into(),
                tokens_in: 0,
                tokens_out: 0,
                latency_ms: 0,
                outcome: "cached".into(),
            };
            record_metrics(clinic, &call);
            return NluOutcome {
                understanding: answer::merge(&scope, &rules, &checked),
                calls: vec![call],
            };
        }

        let deadline = Instant::now() + budget.min(self.config().timeout);
        let spec = ChatSpec {
            purpose: "nlu",
            system: &prompt.system,
            user: &prompt.user,
            schema: Some(&prompt.schema),
            // Understanding wants the same answer every time; the clinic's temperature is for phrasing.
            temperature: 0.0,
        };
        let mut calls = Vec::new();
        let mut mode = self.mode();
        let mut downgraded = false;
        let result: Result<Checked, LlmError> = loop {
            let (result, mut call) = self.conn.chat(mode, &spec, deadline).await;
            let checked = result.and_then(|raw| {
                let value = answer::parse(&raw).ok_or_else(|| LlmError::Garbage("no JSON object".into()))?;
                answer::check(&scope, &value).ok_or_else(|| LlmError::Garbage("not an answer object".into()))
            });
            if let Err(e) = &checked {
                call.outcome = e.outcome().into();
            }
            record_metrics(clinic, &call);
            calls.push(call);
            match checked {
                Err(LlmError::Rejected { .. }) if !downgraded => match self.conn.downgrade(mode) {
                    Some(next) => {
                        mode = next;
                        downgraded = true;
                    }
                    None => break Err(LlmError::Garbage("no structured-output mode left".into())),
                },
                other => break other,
            }
        };
        match result {
            Ok(checked) => {
                if !checked.dropped.is_empty() || !checked.invalid.is_empty() {
                    tracing::info!(
                        dropped = checked.dropped.len(),
                        invalid = checked.invalid.len(),
                        "the LLM answered outside the state's scope; those parts were ignored"
                    );
                }
                self.cache.put(key, checked.clone());
                NluOutcome {
                    understanding: answer::merge(&scope, &rules, &checked),
                    calls,
                }
            }
            Err(e) => {
                // A server's error text may quote the request: details at debug level only.
                tracing::warn!(outcome = e.outcome(), "LLM understanding failed; the rules answer");
                tracing::debug!("LLM understanding failed: {e}");
                let mut understanding = rules;
                understanding.source = "fallback".into();
                NluOutcome { understanding, calls }
            }
        }
    }
}
