//! `calendar:` blocks of clinic.yaml, as written and as checked. Secrets are never written in
//! the file: the block names the environment variable that holds them, read when the
//! calendar is first used (so `clinicflow check` works on a laptop without them).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::Provider;

/// A `calendar:` block, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalendar {
    /// `google`, `calendly` or `calcom`.
    pub provider: String,
    /// Google: the calendar id (an email-like address, or `primary`).
    #[serde(default)]
    pub calendar_id: Option<String>,
    /// Google: the variable holding the service account's JSON key (default GOOGLE_SA_JSON).
    #[serde(default)]
    pub credentials_env: Option<String>,
    /// Google: the variable holding the push channel token (default GOOGLE_CHANNEL_TOKEN).
    #[serde(default)]
    pub channel_token_env: Option<String>,
    /// Calendly: the event type URI; Cal.com: the numeric event type id.
    #[serde(default)]
    pub event_type: Option<serde_json::Value>,
    /// Calendly / Cal.com: the variable holding the API token (default CALENDLY_TOKEN /
    /// CALCOM_API_KEY).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Calendly: the variable holding the webhook signing key (default
    /// CALENDLY_WEBHOOK_SIGNING_KEY).
    #[serde(default)]
    pub signing_key_env: Option<String>,
    /// The API's base URL (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    /// How long one call may take, in seconds (default 5, 1 to 30).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Google: how often changes are polled, in seconds (default 60, 10 to 3600).
    #[serde(default)]
    pub poll_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Google,
    Calendly,
    CalCom,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::Calendly => "calendly",
            ProviderKind::CalCom => "calcom",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s.trim().to_ascii_lowercase().replace(['.', '-', '_'], "").as_str() {
            "google" | "googlecalendar" => Some(ProviderKind::Google),
            "calendly" => Some(ProviderKind::Calendly),
            "calcom" => Some(ProviderKind::CalCom),
            _ => None,
        }
    }
}

/// A checked `calendar:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarSpec {
    Google(GoogleSpec),
    Calendly(CalendlySpec),
    CalCom(CalComSpec),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleSpec {
    pub calendar_id: String,
    pub credentials_env: String,
    pub channel_token_env: String,
    pub base_url: String,
    pub timeout: Duration,
    pub poll: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendlySpec {
    pub event_type: String,
    pub token_env: String,
    pub signing_key_env: String,
    pub base_url: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalComSpec {
    pub event_type_id: u64,
    pub token_env: String,
    pub base_url: String,
    pub timeout: Duration,
}

impl CalendarSpec {
    /// The variable without which the calendar cannot be used at all.
    pub fn required_secret(&self) -> &str {
        match self {
            CalendarSpec::Google(s) => &s.credentials_env,
            CalendarSpec::Calendly(s) => &s.token_env,
            CalendarSpec::CalCom(s) => &s.token_env,
        }
    }

    pub(crate) fn provider(&self) -> Arc<dyn Provider> {
        match self {
            CalendarSpec::Google(s) => Arc::new(super::google::Google::new(s.clone())),
            CalendarSpec::Calendly(s) => Arc::new(super::calendly::Calendly::new(s.clone())),
            CalendarSpec::CalCom(s) => Arc::new(super::calcom::CalCom::new(s.clone())),
        }
    }
}

/// One problem in a block: the key it is about (relative to the block), what is wrong, and
/// how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: &'static str,
    pub message: String,
    pub help: String,
}

fn problem(key: &'static str, message: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem {
        key,
        message: message.into(),
        help: help.into(),
    }
}

/// Checks a block; every problem is reported, not only the first.
pub fn check(raw: &RawCalendar) -> Result<CalendarSpec, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some(kind) = ProviderKind::parse(&raw.provider) else {
        return Err(vec![problem(
            "provider",
            format!("unknown calendar provider `{}`", raw.provider),
            "use `google`, `calendly` or `calcom`, or remove the calendar block",
        )]);
    };
    let timeout = match raw.timeout_seconds {
        None => Duration::from_secs(5),
        Some(s @ 1..=30) => Duration::from_secs(s),
        Some(s) => {
            problems.push(problem(
                "timeout_seconds",
                format!("timeout_seconds {s} is out of range"),
                "use a number of seconds from 1 to 30 (default 5)",
            ));
            Duration::from_secs(5)
        }
    };
    let base_url = |default: &str, problems: &mut Vec<Problem>| match raw.base_url.as_deref().map(str::trim) {
        None => default.to_string(),
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => url.trim_end_matches('/').to_string(),
        Some(url) => {
            problems.push(problem(
                "base_url",
                format!("`{url}` is not an http(s) URL"),
                format!("leave it out to use {default}"),
            ));
            default.to_string()
        }
    };
    let env_name = |key: &'static str, value: &Option<String>, default: &str, problems: &mut Vec<Problem>| {
        let name = value.as_deref().unwrap_or(default).trim().to_string();
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problems.push(problem(
                key,
                format!("`{name}` is not the name of an environment variable"),
                format!("write the variable's name (such as {default}), never the secret itself"),
            ));
        }
        name
    };
    let unused = |key: &'static str, set: bool, problems: &mut Vec<Problem>| {
        if set {
            problems.push(problem(
                key,
                format!("`{key}` does not apply to the {} provider", kind.as_str()),
                "remove it",
            ));
        }
    };
    let spec = match kind {
        ProviderKind::Google => {
            let calendar_id = raw
                .calendar_id
                .as_deref()
                .map(str::trim)
                .unwrap_or_default()
                .to_string();
            if calendar_id.is_empty() {
                problems.push(problem(
                    "calendar_id",
                    "a Google calendar needs its `calendar_id`",
                    "copy it from the calendar's settings (Integrate calendar → Calendar ID)",
                ));
            }
            unused("event_type", raw.event_type.is_some(), &mut problems);
            unused("token_env", raw.token_env.is_some(), &mut problems);
            unused("signing_key_env", raw.signing_key_env.is_some(), &mut problems);
            let poll = match raw.poll_seconds {
                None => Duration::from_secs(60),
                Some(s @ 10..=3600) => Duration::from_secs(s),
                Some(s) => {
                    problems.push(problem(
                        "poll_seconds",
                        format!("poll_seconds {s} is out of range"),
                        "use a number of seconds from 10 to 3600 (default 60)",
                    ));
                    Duration::from_secs(60)
                }
            };
            CalendarSpec::Google(GoogleSpec {
                calendar_id,
                credentials_env: env_name("credentials_env", &raw.credentials_env, "GOOGLE_SA_JSON", &mut problems),
                channel_token_env: env_name(
                    "channel_token_env",
                    &raw.channel_token_env,
                    "GOOGLE_CHANNEL_TOKEN",
                    &mut problems,
                ),
                base_url: base_url("https://www.googleapis.com", &mut problems),
                timeout,
                poll,
            })
        }
        ProviderKind::Calendly => {
            unused("calendar_id", raw.calendar_id.is_some(), &mut problems);
            unused("credentials_env", raw.credentials_env.is_some(), &mut problems);
            unused("poll_seconds", raw.poll_seconds.is_some(), &mut problems);
            let event_type = match &raw.event_type {
                Some(serde_json::Value::String(s)) if s.trim().starts_with("http") => s.trim().to_string(),
                _ => {
                    problems.push(problem(
                        "event_type",
                        "a Calendly calendar needs its `event_type` URI",
                        "write it like https://api.calendly.com/event_types/AAAAAAAAAAAAAAAA (GET /event_types lists them)",
                    ));
                    String::new()
                }
            };
            CalendarSpec::Calendly(CalendlySpec {
                event_type,
                token_env: env_name("token_env", &raw.token_env, "CALENDLY_TOKEN", &mut problems),
                signing_key_env: env_name(
                    "signing_key_env",
                    &raw.signing_key_env,
                    "CALENDLY_WEBHOOK_SIGNING_KEY",
                    &mut problems,
                ),
                base_url: base_url("https://api.calendly.com", &mut problems),
                timeout,
            })
        }
        ProviderKind::CalCom => {
            unused("calendar_id", raw.calendar_id.is_some(), &mut problems);
            unused("credentials_env", raw.credentials_env.is_some(), &mut problems);
            unused("signing_key_env", raw.signing_key_env.is_some(), &mut problems);
            unused("poll_seconds", raw.poll_seconds.is_some(), &mut problems);
            let id = match &raw.event_type {
                Some(serde_json::Value::Number(n)) => n.as_u64(),
                Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            };
            if id.is_none() {
                problems.push(problem(
                    "event_type",
                    "a Cal.com calendar needs its numeric `event_type` id",
                    "write the number shown in the event type's URL, e.g. event_type: 123456",
                ));
            }
            CalendarSpec::CalCom(CalComSpec {
                event_type_id: id.unwrap_or_default(),
                token_env: env_name("token_env", &raw.token_env, "CALCOM_API_KEY", &mut problems),
                base_url: base_url("https://api.cal.com", &mut problems),
                timeout,
            })
        }
    };
    if problems.is_empty() { Ok(spec) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: serde_json::Value) -> RawCalendar {
        serde_json::from_value(yaml).unwrap()
    }

    #[test]
    fn google_defaults_and_every_problem_at_once() {
        let spec = check(&raw(
            serde_json::json!({ "provider": "google", "calendar_id": "dr@x.com" }),
        ))
        .unwrap();
        let CalendarSpec::Google(g) = spec else { panic!() };
        assert_eq!(g.credentials_env, "GOOGLE_SA_JSON");
        assert_eq!(g.base_url, "https://www.googleapis.com");
        assert_eq!(g.timeout, Duration::from_secs(5));
        let problems = check(&raw(serde_json::json!({
            "provider": "google", "credentials_env": "{\"private_key\": 1}", "timeout_seconds": 90, "event_type": "x"
        })))
        .unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            ["timeout_seconds", "calendar_id", "event_type", "credentials_env"]
        );
    }

    #[test]
    fn unknown_provider_and_calcom_ids() {
        let p = check(&raw(serde_json::json!({ "provider": "outlook" }))).unwrap_err();
        assert!(p[0].message.contains("outlook"), "{p:?}");
        let spec = check(&raw(serde_json::json!({ "provider": "cal.com", "event_type": 42 }))).unwrap();
        assert!(matches!(
            spec,
            CalendarSpec::CalCom(CalComSpec { event_type_id: 42, .. })
        ));
        assert!(check(&raw(serde_json::json!({ "provider": "calendly", "event_type": 42 }))).is_err());
    }
}
