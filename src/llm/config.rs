//! LLM settings from the environment. No OPENAI_API_KEY: no LLM, the rules answer alone.

use std::time::Duration;

/// How the answer's structure is asked for. Servers differ: OpenAI and vLLM take a strict
/// `json_schema`; llama.cpp-based servers and some proxies only `json_object`; others only
/// tool calls or nothing at all. A 400/422 refusal moves down this list once and stays there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// `response_format: {type: json_schema, strict: true}`.
    JsonSchema = 0,
    /// `response_format: {type: json_object}` with the schema in the prompt.
    JsonObject = 1,
    /// A forced call of one function whose parameters are the schema.
    Tool = 2,
    /// No structured output: the prompt asks for the JSON and the answer is parsed.
    Plain = 3,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::JsonSchema, Mode::JsonObject, Mode::Tool, Mode::Plain];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::JsonSchema => "json_schema",
            Mode::JsonObject => "json_object",
            Mode::Tool => "tool",
            Mode::Plain => "plain",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s.trim().to_ascii_lowercase())
    }

    pub fn from_u8(n: u8) -> Mode {
        Self::ALL.get(n as usize).copied().unwrap_or(Mode::Plain)
    }

    /// The mode to try when the server refuses this one.
    pub fn next(self) -> Option<Mode> {
        Self::ALL.get(self as usize + 1).copied()
    }
}

#[derive(Clone)]
pub struct LlmConfig {
    pub api_key: String,
    /// `None`: OpenAI's own endpoint.
    pub base_url: Option<String>,
    pub model: String,
    /// Upper bound of one call, retries included.
    pub timeout: Duration,
    pub mode: Mode,
    /// How long a validated NLU answer is reused for the same message in the same state.
    pub cache: Duration,
    pub transcribe_model: String,
}

impl std::fmt::Debug for LlmConfig {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{var}: {message}")]
pub struct LlmConfigError {
    pub var: &'static str,
    pub message: String,
}

pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_TIMEOUT_MS: u64 = 8_000;
pub const DEFAULT_CACHE_SECS: u64 = 300;
pub const DEFAULT_TRANSCRIBE_MODEL: &str = "whisper-1";

impl LlmConfig {
    /// Reads the process environment. `Ok(None)` without OPENAI_API_KEY.
    pub fn from_env() -> Result<Option<LlmConfig>, LlmConfigError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Same as `from_env` over any lookup (tests pass a map).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<LlmConfig>, LlmConfigError> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let Some(api_key) = get("OPENAI_API_KEY") else {
            return Ok(None);
        };
        let number = |var: &'static str, default: u64| -> Result<u64, LlmConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| LlmConfigError {
                    var,
                    message: format!("`{v}` is not a whole number"),
                }),
            }
        };
        let timeout_ms = number("CLINICFLOW_LLM_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)?;
        if timeout_ms == 0 {
            return Err(LlmConfigError {
                var: "CLINICFLOW_LLM_TIMEOUT_MS",
                message: "must be more than 0 (milliseconds; 8000 is a good start)".into(),
            });
        }
        let mode = match get("CLINICFLOW_LLM_MODE") {
            None => Mode::JsonSchema,
            Some(m) => Mode::parse(&m).ok_or_else(|| LlmConfigError {
                var: "CLINICFLOW_LLM_MODE",
                message: format!("unknown mode `{m}`; use json_schema, json_object, tool or plain"),
            })?,
        };
        Ok(Some(LlmConfig {
            api_key,
            base_url: get("OPENAI_BASE_URL").map(|u| u.trim_end_matches('/').to_string()),
            model: get("CLINICFLOW_LLM_MODEL").unwrap_or_else(|| DEFAULT_MODEL.into()),
            timeout: Duration::from_millis(timeout_ms),
            mode,
            cache: Duration::from_secs(number("CLINICFLOW_LLM_CACHE_SECS", DEFAULT_CACHE_SECS)?),
            transcribe_model: get("CLINICFLOW_LLM_TRANSCRIBE_MODEL").unwrap_or_else(|| DEFAULT_TRANSCRIBE_MODEL.into()),
        }))
    }

    /// A configuration for tests and tools: this server, this model, defaults for the rest.
    pub fn new(api_key: impl Into<String>, base_url: Option<String>) -> LlmConfig {
        LlmConfig {
            api_key: api_key.into(),
            base_url,
            model: DEFAULT_MODEL.into(),
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            mode: Mode::JsonSchema,
            cache: Duration::from_secs(DEFAULT_CACHE_SECS),
            transcribe_model: DEFAULT_TRANSCRIBE_MODEL.into(),
        }
    }

    /// One line for the logs: which model where (never the key).
    pub fn describe(&self) -> String {
        let at = self.base_url.as_deref().unwrap_or("https://api.openai.com/v1");
        format!(
            "{} at {} ({}, timeout {} ms)",
            self.model,
            at,
            self.mode.as_str(),
            self.timeout.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> Result<Option<LlmConfig>, LlmConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LlmConfig::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn no_key_no_llm() {
        assert!(vars(&[]).unwrap().is_none());
        assert!(
            vars(&[("OPENAI_API_KEY", "  "), ("CLINICFLOW_LLM_MODEL", "x")])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let c = vars(&[("OPENAI_API_KEY", "sk-1")]).unwrap().unwrap();
        assert_eq!(c.model, "gpt-4o-mini");
        assert_eq!(c.timeout, Duration::from_millis(8000));
        assert_eq!(c.mode, Mode::JsonSchema);
        assert_eq!(c.cache, Duration::from_secs(300));
        assert_eq!(c.transcribe_model, "whisper-1");
        assert!(!format!("{c:?}").contains("sk-1") && !c.describe().contains("sk-1"));
        let c = vars(&[
            ("OPENAI_API_KEY", "sk-1"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1/"),
            ("CLINICFLOW_LLM_MODE", "JSON_OBJECT"),
            ("CLINICFLOW_LLM_TIMEOUT_MS", "1500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.base_url.as_deref(), Some("http://127.0.0.1:8080/v1"));
        assert_eq!(c.mode, Mode::JsonObject);
        assert_eq!(c.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn bad_values_say_which_variable() {
        let e = vars(&[("OPENAI_API_KEY", "k"), ("CLINICFLOW_LLM_MODE", "grammar")]).unwrap_err();
        assert_eq!(e.var, "CLINICFLOW_LLM_MODE");
        let e = vars(&[("OPENAI_API_KEY", "k"), ("CLINICFLOW_LLM_TIMEOUT_MS", "8s")]).unwrap_err();
        assert_eq!(e.var, "CLINICFLOW_LLM_TIMEOUT_MS");
    }

    #[test]
    fn modes_step_down_in_order() {
        assert_eq!(Mode::JsonSchema.next(), Some(Mode::JsonObject));
        assert_eq!(Mode::JsonObject.next(), Some(Mode::Tool));
        assert_eq!(Mode::Tool.next(), Some(Mode::Plain));
        assert_eq!(Mode::Plain.next(), None);
        assert_eq!(Mode::from_u8(Mode::Tool as u8), Mode::Tool);
    }

    /// The demo clinic with `extra` lines added under `clinic:` (line 8 of flows/clinic.yaml).
    fn clinic_with(extra: &str) -> Result<crate::flow::bot::Bot, crate::flow::diag::Diagnostics> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = crate::flow::compile::Sources::from_dir(dir).expect("read the demo");
        let yaml = sources
            .text("flows/clinic.yaml")
            .replacen("clinic:\n", &format!("clinic:\n{extra}"), 1);
        sources.insert("flows/clinic.yaml", yaml);
        crate::flow::compile::compile(&sources)
    }

    #[test]
    fn clinic_llm_settings_compile_with_defaults() {
        let bot = clinic_with("  llm:\n    phrase: true\n    tone: cálido, de usted\n").expect("compiles");
        let llm = &bot.clinic.llm;
        assert!(llm.phrase && !llm.phrase_on_voice);
        assert_eq!(llm.temperature, 0.2);
        assert_eq!(llm.tone.as_deref(), Some("cálido, de usted"));
        let demo = clinic_with("").expect("compiles");
        assert_eq!(demo.clinic.llm, crate::flow::clinic::ClinicLlm::default());
    }

    #[test]
    fn clinic_llm_errors_point_at_the_line() {
        let e = clinic_with("  llm:\n    temperature: 5\n").err().expect("an error");
        let lines: Vec<String> = e.0.iter().map(|d| d.one_line()).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("flows/clinic.yaml:9:") && l.contains("temperature")),
            "{lines:?}"
        );
        let e = clinic_with("  llm:\n    phrasing: true\n").err().expect("an error");
        let lines: Vec<String> = e.0.iter().map(|d| d.one_line()).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("flows/clinic.yaml:") && l.contains("phrasing")),
            "{lines:?}"
        );
    }
}
