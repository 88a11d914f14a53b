//! The LLM (any OpenAI-compatible API, through async-openai): understanding free-form messages
//! when the rules NLU is not sure, and optionally phrasing replies. It only ever proposes; the
//! flow decides. With no OPENAI_API_KEY nothing here is used.

pub mod answer;
pub mod config;
pub mod mask;
pub mod prompt;
pub mod schema;

pub use config::{LlmConfig, LlmConfigError, Mode};
pub use prompt::{NluPrompt, nlu_prompt};
