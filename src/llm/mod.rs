//! The LLM (any OpenAI-compatible API, through async-openai): understanding free-form messages
//! when the rules NLU is not sure, and optionally phrasing replies. It only ever proposes; the
//! flow decides. With no OPENAI_API_KEY nothing here is used. See docs/llm.md.

pub mod answer;
pub mod cache;
pub mod client;
pub mod config;
pub mod facts;
pub mod mask;
pub mod nlu;
pub mod phrase;
pub mod prompt;
pub mod schema;
pub mod transcribe;

use std::sync::RwLock;

pub use client::LlmError;
pub use config::{LlmConfig, LlmConfigError, Mode};
pub use nlu::NluOutcome;
pub use prompt::{NluPrompt, nlu_prompt};

use crate::store::LlmCall;

/// The LLM as the service uses it: one per process, shared by all turns.
pub struct Llm {
    conn: client::Connection,
    cache: cache::Cache,
    /// The clinic's name, for the metrics of calls made outside a turn (transcription).
    clinic: RwLock<String>,
}

impl Llm {
    pub fn new(config: LlmConfig) -> Llm {
        Llm {
            cache: cache::Cache::new(config.cache),
            conn: client::Connection::new(config),
            clinic: RwLock::new(String::new()),
        }
    }

    /// Reads the environment: `Ok(None)` without OPENAI_API_KEY.
    pub fn from_env() -> Result<Option<Llm>, LlmConfigError> {
        Ok(LlmConfig::from_env()?.map(Llm::new))
    }

    pub fn config(&self) -> &LlmConfig {
        &self.conn.config
    }

    /// The structured-output mode in use now (lower than configured after a refusal).
    pub fn mode(&self) -> Mode {
        self.conn.mode()
    }

    /// Names the clinic in the metrics of calls made outside a turn.
    pub fn set_clinic(&self, name: &str) {
        if let Ok(mut c) = self.clinic.write() {
            *c = name.to_string();
        }
    }

    fn clinic(&self) -> String {
        self.clinic.read().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Exports one call's tokens, latency and outcome to /metrics.
pub fn record_metrics(clinic: &str, call: &LlmCall) {
    // The slug inside a clinic's scope (the label every other metric carries), else the name.
    let clinic = crate::clinics::scope::current().map_or_else(|| clinic.to_string(), |s| s.to_string());
    let purpose = call.purpose.clone();
    metrics::counter!("clinicflow_llm_calls_total", "clinic" => clinic.clone(), "purpose" => purpose.clone(), "outcome" => call.outcome.clone())
        .increment(1);
    if call.outcome == "cached" {
        return;
    }
    for (direction, n) in [("in", call.tokens_in), ("out", call.tokens_out)] {
        metrics::counter!("clinicflow_llm_tokens_total", "clinic" => clinic.clone(), "purpose" => purpose.clone(), "direction" => direction)
            .increment(n);
    }
    metrics::histogram!("clinicflow_llm_latency_seconds", "clinic" => clinic, "purpose" => purpose)
        .record(call.latency_ms as f64 / 1000.0);
}

/// The LLM from the environment for `serve` and `chat`, with the one line they print about
/// which understanding is in use (never the key).
pub fn from_env_with_banner() -> Result<(Option<std::sync::Arc<Llm>>, String), LlmConfigError> {
    Ok(match Llm::from_env()? {
        Some(llm) => {
            let line = format!("NLU: rules, then LLM {} when unsure", llm.config().describe());
            (Some(std::sync::Arc::new(llm)), line)
        }
        None => (None, "NLU: rules only (set OPENAI_API_KEY to add an LLM)".to_string()),
    })
}
