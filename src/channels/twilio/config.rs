//! Twilio settings, from the environment only: the auth token is a secret and must not sit in
//! a file the clinic admin edits (clinic.yaml holds the per-clinic voice and template settings).

use std::time::Duration;

/// Where Twilio's REST API lives; tests point `TWILIO_API_BASE` at a fake on loopback.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// `TWILIO_ACCOUNT_SID` (AC…): REST calls and media downloads.
    pub account_sid: Option<String>,
    /// `TWILIO_AUTH_TOKEN`: signs webhooks (verification) and authenticates REST calls.
    /// None: unsigned webhooks are accepted from loopback only.
    pub auth_token: Option<String>,
    /// `TWILIO_API_BASE`, default https://api.twilio.com.
    pub api_base: String,
    /// `CLINICFLOW_PUBLIC_URL`: the https base URL Twilio calls (e.g. https://turnos.clinica.com).
    /// Signatures are computed over it, never over the request's Host header.
    pub public_url: Option<String>,
    /// `TWILIO_WHATSAPP_FROM`: the clinic's WhatsApp sender, "whatsapp:+14155238886".
    pub whatsapp_from: Option<String>,
    /// `TWILIO_SMS_FROM`: the clinic's SMS number, "+15017122661".
    pub sms_from: Option<String>,
    /// `TWILIO_VOICE_NUMBER`: the clinic's phone number callers dial.
    pub voice_number: Option<String>,
    /// How long a voice turn may wait for the LLM (`CLINICFLOW_LLM_BUDGET_VOICE_MS`, default 4 s).
    pub voice_llm_budget: Duration,
    /// How long a messaging turn may wait for the LLM (`CLINICFLOW_LLM_BUDGET_MESSAGING_MS`,
    /// default 8 s). Twilio drops a webhook after 15 s.
    pub messaging_llm_budget: Duration,
    /// How long a WhatsApp/SMS webhook waits for its turn before answering an empty
    /// `<Response/>` and sending the replies through the REST API when the turn ends
    /// (`CLINICFLOW_TWILIO_REPLY_TIMEOUT_MS`, default 10 s; Twilio gives up at 15 s).
    pub reply_timeout: Duration,
}

/// Nothing configured, default budgets and timeouts (not zero durations).
impl Default for TwilioConfig {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

impl TwilioConfig {
    /// Reads the environment; missing variables leave their field empty.
    pub fn from_env() -> TwilioConfig {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as `from_env`, with any source of variables (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> TwilioConfig {
        let nonempty = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let ms =
            |k: &str, default: u64| Duration::from_millis(nonempty(k).and_then(|v| v.parse().ok()).unwrap_or(default));
        TwilioConfig {
            account_sid: nonempty("TWILIO_ACCOUNT_SID"),
            auth_token: nonempty("TWILIO_AUTH_TOKEN"),
            api_base: nonempty("TWILIO_API_BASE")
                .unwrap_or_else(|| DEFAULT_API_BASE.to_string())
                .trim_end_matches('/')
                .to_string(),
            public_url: nonempty("CLINICFLOW_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
            whatsapp_from: nonempty("TWILIO_WHATSAPP_FROM"),
            sms_from: nonempty("TWILIO_SMS_FROM"),
            voice_number: nonempty("TWILIO_VOICE_NUMBER"),
            voice_llm_budget: ms("CLINICFLOW_LLM_BUDGET_VOICE_MS", 4_000),
            messaging_llm_budget: ms("CLINICFLOW_LLM_BUDGET_MESSAGING_MS", 8_000),
            reply_timeout: ms("CLINICFLOW_TWILIO_REPLY_TIMEOUT_MS", 10_000),
        }
    }

    /// REST calls (outbound messages, media downloads) need both the account and the token.
    pub fn can_call_rest(&self) -> bool {
        self.account_sid.is_some() && self.auth_token.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_trimming() {
        let env: HashMap<&str, &str> = [
            ("TWILIO_AUTH_TOKEN", " 12345 "),
            ("CLINICFLOW_PUBLIC_URL", "https://turnos.example.com/"),
            ("CLINICFLOW_LLM_BUDGET_VOICE_MS", "2500"),
            ("TWILIO_SMS_FROM", ""),
        ]
        .into_iter()
        .collect();
        let c = TwilioConfig::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(c.auth_token.as_deref(), Some("12345"));
        assert_eq!(c.public_url.as_deref(), Some("https://turnos.example.com"));
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert_eq!(c.voice_llm_budget, Duration::from_millis(2500));
        assert_eq!(c.messaging_llm_budget, Duration::from_secs(8));
        assert_eq!(c.reply_timeout, Duration::from_secs(10));
        // Nothing configured still means real budgets, not zero.
        assert_eq!(TwilioConfig::default().voice_llm_budget, Duration::from_secs(4));
        assert_eq!(c.sms_from, None);
        assert!(!c.can_call_rest());
    }
}
