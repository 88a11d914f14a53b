//! Optional phrasing: a reply rendered from the flow's template is rewritten in the clinic's
//! tone, then checked by the fact guard. The template's text is used whenever the rewrite
//! drops or adds a fact, fails or takes too long, so phrasing can only change the wording.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::client::ChatSpec;
use super::config::Mode;
use super::mask::mask_personal;
use super::prompt::render;
use super::{Llm, facts, record_metrics};
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::store::LlmCall;

pub const PHRASE_TEMPLATE: &str = "prompts/phrase.j2";

/// Whether this turn's replies are rephrased: the `phrase:` of the state the conversation
/// now waits in, else the clinic's `llm.phrase`; on voice only with `llm.phrase_on_voice`.
pub fn wanted(bot: &Bot, session: &Session) -> bool {
    let llm = &bot.clinic.llm;
    let state = session
        .top()
        .and_then(|f| bot.flow(&f.flow).and_then(|flow| flow.state(&f.state)))
        .and_then(|s| s.phrase);
    state.unwrap_or(llm.phrase) && (session.channel != "voice" || llm.phrase_on_voice)
}

impl Llm {
    /// Rephrases each reply within `budget` (all of them together). Replies that carry a
    /// document or phone number are never sent; they stay as the template wrote them.
    pub async fn phrase(
        &self,
        bot: &Bot,
        session: &Session,
        replies: Vec<String>,
        budget: Duration,
    ) -> (Vec<String>, Vec<LlmCall>) {
        let deadline = Instant::now() + budget.min(self.config().timeout);
        let ctx = json!({
            "clinic": { "name": bot.clinic.name },
            "tone": bot.clinic.llm.tone,
            "lang": session.lang.code(),
        });
        let system = render(bot, PHRASE_TEMPLATE, &ctx);
        let mut calls = Vec::new();
        let mut out = Vec::with_capacity(replies.len());
        // A reply with a number or the patient's name is kept as written: it is not sent.
        let names = super::mask::known_names(bot, session);
        for reply in replies {
            if reply.trim().is_empty() || mask_personal(&reply, &names) != reply || Instant::now() >= deadline {
                out.push(reply);
                continue;
            }
            let spec = ChatSpec {
                purpose: "phrase",
                system: &system,
                user: &reply,
                schema: None,
                temperature: bot.clinic.llm.temperature,
            };
            let (result, mut call) = self.conn.chat(Mode::Plain, &spec, deadline).await;
            let text = match result {
                Ok(candidate) => {
                    let candidate = candidate.trim().trim_matches('"').trim().to_string();
                    let too_long = candidate.chars().count() > reply.chars().count() * 2 + 80;
                    match facts::check(&reply, &candidate, &bot.clinic) {
                        Ok(()) if !too_long && !candidate.is_empty() => candidate,
                        verdict => {
                            // The missing fact may be a name: debug level only.
                            tracing::debug!(
                                "phrasing not used: {}",
                                verdict.err().unwrap_or_else(|| "too long".into())
                            );
                            call.outcome = "invalid".into();
                            reply
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(outcome = e.outcome(), "phrasing failed; the template's text is used");
                    tracing::debug!("phrasing failed: {e}");
                    reply
                }
            };
            record_metrics(&bot.clinic.name, &call);
            calls.push(call);
            out.push(text);
        }
        (out, calls)
    }
}
