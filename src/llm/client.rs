//! The connection to the model server: one chat completion in a given structured-output mode,
//! bounded by a deadline, with its usage recorded. Everything goes through async-openai.
//!
//! async-openai 0.43's default client retries 429 and 5xx with exponential backoff (up to 3
//! times, honouring `retry-after`, each wait up to 8 s) and offers no switch for it without its
//! `middleware` feature. So every call here runs under `tokio::time::timeout` with what is left
//! of the turn's budget, and the HTTP client has the same timeout: dropping the future drops
//! any pending retry, so no call outlives its budget.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, CreateChatCompletionRequest, CreateChatCompletionResponse,
};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::{LlmConfig, Mode};
use crate::store::LlmCall;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model did not answer in time")]
    Timeout,
    /// 400/422: the server does not take this request (often the structured-output mode).
    #[error("the server refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the server failed ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("could not reach the model server: {0}")]
    Http(String),
    #[error("the model's answer is not usable: {0}")]
    Garbage(String),
}

impl LlmError {
    /// The `outcome` label of metrics and the turn log.
    pub fn outcome(&self) -> &'static str {
        match self {
            LlmError::Timeout => "timeout",
            LlmError::Rejected { .. } => "rejected",
            LlmError::Server { .. } | LlmError::Http(_) => "error",
            LlmError::Garbage(_) => "invalid",
        }
    }

    pub(crate) fn from_openai(e: OpenAIError) -> LlmError {
        match e {
            OpenAIError::ApiError(r) => {
                let status = r.status_code.as_u16();
                let message: String = r.api_error.message.chars().take(300).collect();
                // llama.cpp-based servers (llama-cpp-python 0.3.x) refuse `json_schema` with a
                // 500 whose message says so: recognised by the body, whatever the status.
                if status == 400 || status == 422 || refuses_mode(&r.api_error.message) {
                    LlmError::Rejected { status, message }
                } else {
                    LlmError::Server { status, message }
                }
            }
            // A 4xx whose body is not OpenAI's error object (FastAPI servers such as
            // llama-cpp-python answer `{"detail": [...]}`) surfaces as a decoding error; when
            // it names the request's format it is a refusal of the mode.
            OpenAIError::JSONDeserialize(_, body)
                if body.trim_start().starts_with("{\"detail\"") || refuses_mode(&body) =>
            {
                LlmError::Rejected {
                    status: 422,
                    message: body.chars().take(300).collect(),
                }
            }
            OpenAIError::JSONDeserialize(e, _) => LlmError::Garbage(format!("not a chat completion: {e}")),
            OpenAIError::Reqwest(e) => LlmError::Http(e.to_string()),
            other => LlmError::Http(other.to_string()),
        }
    }
}

/// Whether an error text is a refusal of the structured-output mode rather than a failure.
fn refuses_mode(text: &str) -> bool {
    text.contains("response_format")
        || text.contains("json_schema")
        || text.contains("Input should be 'text' or 'json_object'")
}

/// One completed call: the text (or tool arguments) and its accounting.
pub struct Completion {
    pub content: String,
    pub call: LlmCall,
}

/// What a chat call sends, independent of the mode.
pub struct ChatSpec<'a> {
    pub purpose: &'static str,
    pub system: &'a str,
    pub user: &'a str,
    /// The answer's schema (None: free text, as for phrasing).
    pub schema: Option<&'a Value>,
    pub temperature: f32,
}

pub struct Connection {
    pub config: LlmConfig,
    pub client: Client<OpenAIConfig>,
    /// The structured-output mode in use (a `Mode` as u8); lowered once per refusal.
    mode: AtomicU8,
}

const TOOL_NAME: &str = "understanding";

impl Connection {
    pub fn new(config: LlmConfig) -> Connection {
        let mut oc = OpenAIConfig::new().with_api_key(config.api_key.clone());
        oc = oc.with_api_base(
            config
                .base_url
                .clone()
                .unwrap_or_else(|| async_openai::config::OPENAI_API_BASE.to_string()),
        );
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(3)))
            .build()
            .unwrap_or_default();
        let client = Client::with_config(oc).with_http_client(http);
        Connection {
            mode: AtomicU8::new(config.mode as u8),
            config,
            client,
        }
    }

    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// Moves from `from` to the next mode (once: a concurrent call may have done it already).
    /// Returns the mode to use now, or None when there is no lower mode.
    pub fn downgrade(&self, from: Mode) -> Option<Mode> {
        let next = from.next()?;
        match self
            .mode
            .compare_exchange(from as u8, next as u8, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => {
                tracing::warn!(
                    "the LLM server refused `{}` structured output; using `{}` from now on",
                    from.as_str(),
                    next.as_str()
                );
                Some(next)
            }
            Err(now) => Some(Mode::from_u8(now)),
        }
    }

    /// The request for one mode, as JSON (then typed by async-openai).
    pub fn request_json(&self, mode: Mode, spec: &ChatSpec<'_>) -> Value {
        let mut system = spec.system.to_string();
        let mut req = json!({
            "model": self.config.model,
            "temperature": spec.temperature,
        });
        if let Some(schema) = spec.schema {
            match mode {
                Mode::JsonSchema => {
                    req["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": { "name": TOOL_NAME, "schema": schema, "strict": true },
                    });
                }
                Mode::JsonObject => {
                    req["response_format"] = json!({ "type": "json_object" });
                    system.push_str(&schema_instructions(schema));
                }
                Mode::Tool => {
                    req["tools"] = json!([{
                        "type": "function",
                        "function": {
                            "name": TOOL_NAME,
                            "description": "Report what the patient's message means.",
                            "parameters": schema,
                        },
                    }]);
                    req["tool_choice"] = json!({ "type": "function", "function": { "name": TOOL_NAME } });
                }
                Mode::Plain => system.push_str(&schema_instructions(schema)),
            }
        }
        req["messages"] = json!([
            { "role": "system", "content": system },
            { "role": "user", "content": spec.user },
        ]);
        req
    }

    /// One chat completion in `mode`, abandoned at `deadline`.
    pub async fn chat(
        &self,
        mode: Mode,
        spec: &ChatSpec<'_>,
        deadline: Instant,
    ) -> (Result<String, LlmError>, LlmCall) {
        let started = Instant::now();
        let mut call = LlmCall {
            purpose: spec.purpose.to_string(),
            tokens_in: 0,
            tokens_out: 0,
            latency_ms: 0,
            outcome: "ok".into(),
        };
        let result = self.chat_inner(mode, spec, deadline, &mut call).await;
        call.latency_ms = started.elapsed().as_millis() as u64;
        if let Err(e) = &result {
            call.outcome = e.outcome().into();
        }
        (result, call)
    }

    async fn chat_inner(
        &self,
        mode: Mode,
        spec: &ChatSpec<'_>,
        deadline: Instant,
        call: &mut LlmCall,
    ) -> Result<String, LlmError> {
        let request: CreateChatCompletionRequest = serde_json::from_value(self.request_json(mode, spec))
            .map_err(|e| LlmError::Garbage(format!("request: {e}")))?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LlmError::Timeout);
        }
        let chat = self.client.chat();
        let response: CreateChatCompletionResponse = match tokio::time::timeout(left, chat.create(request)).await {
            Err(_) => return Err(LlmError::Timeout),
            Ok(Err(OpenAIError::Reqwest(e))) if e.is_timeout() => return Err(LlmError::Timeout),
            Ok(Err(e)) => return Err(LlmError::from_openai(e)),
            Ok(Ok(r)) => r,
        };
        if let Some(u) = &response.usage {
            call.tokens_in = u64::from(u.prompt_tokens);
            call.tokens_out = u64::from(u.completion_tokens);
        }
        let Some(choice) = response.choices.into_iter().next() else {
            return Err(LlmError::Garbage("no choices".into()));
        };
        let msg = choice.message;
        let from_tool = msg.tool_calls.into_iter().flatten().find_map(|t| match t {
            ChatCompletionMessageToolCalls::Function(f) => Some(f.function.arguments),
            _ => None,
        });
        match from_tool.or(msg.content) {
            Some(text) if !text.trim().is_empty() => Ok(text),
            _ => Err(LlmError::Garbage(match msg.refusal {
                Some(_) => "the model refused".into(),
                None => "empty answer".into(),
            })),
        }
    }
}

/// For modes without enforced structure: the schema goes in the prompt.
fn schema_instructions(schema: &Value) -> String {
    format!(
        "\n\nAnswer with one JSON object and nothing else. It must match this JSON Schema:\n{}",
        serde_json::to_string(schema).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(mode: Mode) -> Connection {
        let mut c = LlmConfig::new("k", Some("http://127.0.0.1:9/v1".into()));
        c.mode = mode;
        Connection::new(c)
    }

    fn spec(schema: &Value) -> ChatSpec<'_> {
        ChatSpec {
            purpose: "nlu",
            system: "sys",
            user: "hola",
            schema: Some(schema),
            temperature: 0.2,
        }
    }

    #[test]
    fn each_mode_asks_for_the_structure_its_own_way_and_types_as_a_request() {
        let schema = json!({"type": "object", "properties": {"intent": {"type": "string"}}});
        for mode in Mode::ALL {
            let c = conn(mode);
            let r = c.request_json(mode, &spec(&schema));
            let typed: Result<CreateChatCompletionRequest, _> = serde_json::from_value(r.clone());
            assert!(typed.is_ok(), "{mode:?}: {typed:?}");
            let system = r["messages"][0]["content"].as_str().unwrap();
            match mode {
                Mode::JsonSchema => {
                    assert_eq!(r["response_format"]["json_schema"]["schema"], schema);
                    assert_eq!(r["response_format"]["json_schema"]["strict"], json!(true));
                    assert_eq!(system, "sys");
                }
                Mode::JsonObject => {
                    assert_eq!(r["response_format"]["type"], json!("json_object"));
                    assert!(system.contains("\"intent\""));
                }
                Mode::Tool => {
                    assert_eq!(r["tools"][0]["function"]["parameters"], schema);
                    assert_eq!(r["tool_choice"]["function"]["name"], json!(TOOL_NAME));
                }
                Mode::Plain => {
                    assert!(r.get("response_format").is_none() && r.get("tools").is_none());
                    assert!(system.contains("JSON Schema"));
                }
            }
        }
    }

    #[test]
    fn downgrade_happens_once_and_sticks() {
        let c = conn(Mode::JsonSchema);
        assert_eq!(c.downgrade(Mode::JsonSchema), Some(Mode::JsonObject));
        // A second call that also saw json_schema refused does not skip a mode.
        assert_eq!(c.downgrade(Mode::JsonSchema), Some(Mode::JsonObject));
        assert_eq!(c.mode(), Mode::JsonObject);
        let c = conn(Mode::Plain);
        assert_eq!(c.downgrade(Mode::Plain), None);
    }
}
