//! Email to patients: an optional confirmation after a booking, a reminder beside the
//! channel's, and a short note when the appointment is cancelled or moved, sent over SMTP
//! (lettre) when the patient gave an address.
//!
//! Settings come from the environment only (docs/calendars.md, "Email"): either
//! `CLINICFLOW_SMTP_URL` (`smtps://user:pass@host`, `smtp://host:587?tls=required`…) or
//! `CLINICFLOW_SMTP_HOST` with `_PORT` (587), `_USER`, `_PASSWORD` (STARTTLS); and
//! `CLINICFLOW_SMTP_FROM` (`Clínica San Rafael <turnos@example.com>`) with either. None of them
//! set: no email at all, and no connection is ever made.
//!
//! What is sent is rendered from `prompts/<lang>/email_confirmation.j2`, `email_reminder.j2`,
//! `email_cancelled.j2` and `email_rescheduled.j2` (compiled with the other prompts): the first line of the output is
//! the subject, the rest the body. A clinic without those files sends no email.
//!
//! Delivery runs in the background: a turn never waits for SMTP, and a failure is logged
//! (the appointment id and the error kind, never the address) and otherwise ignored.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use crate::flow::bot::Bot;
use crate::flow::templates::Text;
use crate::lang::Lang;

/// The longest an SMTP exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest address accepted (RFC 5321's path limit).
pub const MAX_ADDRESS: usize = 254;

/// What can go wrong with email. The messages never quote an address.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("email settings: {0}")]
    Settings(String),
    #[error("the email could not be built: {0}")]
    Build(String),
    #[error("the SMTP server did not take the email: {0}")]
    Smtp(String),
}

impl EmailError {
    /// The kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            EmailError::Settings(_) => "settings",
            EmailError::Build(_) => "build",
            EmailError::Smtp(_) => "smtp",
        }
    }
}

/// The emails a patient can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    Confirmation,
    Reminder,
    /// The appointment was cancelled (by the patient, by staff or in its calendar).
    Cancelled,
    /// The appointment was moved (by the patient, by staff or in its calendar).
    Rescheduled,
}

impl EmailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Confirmation => "confirmation",
            EmailKind::Reminder => "reminder",
            EmailKind::Cancelled => "cancelled",
            EmailKind::Rescheduled => "rescheduled",
        }
    }

    /// The prompt file, per language, without `prompts/<lang>/`.
    fn file(self) -> &'static str {
        match self {
            EmailKind::Confirmation => "email_confirmation.j2",
            EmailKind::Reminder => "email_reminder.j2",
            EmailKind::Cancelled => "email_cancelled.j2",
            EmailKind::Rescheduled => "email_rescheduled.j2",
        }
    }
}

/// Whether `s` is an email address lettre can send to (and short enough to store).
pub fn valid_address(s: &str) -> bool {
    s.len() <= MAX_ADDRESS && Address::from_str(s).is_ok()
}

/// An SMTP connection's settings and the sender's address.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer the environment configures; `None` when no SMTP variable is set.
    pub fn from_env() -> Result<Option<Mailer>, EmailError> {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`Mailer::from_env`] reading variables through `var` (tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Mailer>, EmailError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| EmailError::Settings(format!("{what}: {e}"));
        let builder = match (var("CLINICFLOW_SMTP_URL"), var("CLINICFLOW_SMTP_HOST")) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(EmailError::Settings(
                    "set CLINICFLOW_SMTP_URL or CLINICFLOW_SMTP_HOST, not both".into(),
                ));
            }
            (Some(url), None) => AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                .map_err(|e| bad("CLINICFLOW_SMTP_URL is not an smtp:// or smtps:// URL", &e))?,
            (None, Some(host)) => {
                let port = match var("CLINICFLOW_SMTP_PORT") {
                    None => 587,
                    Some(p) => p
                        .trim()
                        .parse::<u16>()
                        .map_err(|e| bad("CLINICFLOW_SMTP_PORT is not a port number", &e))?,
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host.trim())
                    .map_err(|e| bad("CLINICFLOW_SMTP_HOST", &e))?
                    .port(port);
                match (var("CLINICFLOW_SMTP_USER"), var("CLINICFLOW_SMTP_PASSWORD")) {
                    (Some(u), Some(p)) => b = b.credentials(Credentials::new(u, p)),
                    (None, None) => {}
                    _ => {
                        return Err(EmailError::Settings(
                            "CLINICFLOW_SMTP_USER and CLINICFLOW_SMTP_PASSWORD go together".into(),
                        ));
                    }
                }
                b
            }
        };
        let from = var("CLINICFLOW_SMTP_FROM").ok_or_else(|| {
            EmailError::Settings(
                "CLINICFLOW_SMTP_FROM is needed with the SMTP settings (e.g. `Clínica <turnos@example.com>`)".into(),
            )
        })?;
        let from = Mailbox::from_str(from.trim()).map_err(|e| bad("CLINICFLOW_SMTP_FROM is not an address", &e))?;
        Ok(Some(Mailer {
            transport: builder.timeout(Some(TIMEOUT)).build(),
            from,
        }))
    }

    /// Sends one plain-text email.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), EmailError> {
        let to = Address::from_str(to).map_err(|e| EmailError::Build(e.to_string()))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| EmailError::Build(e.to_string()))?;
        match tokio::time::timeout(TIMEOUT, self.transport.send(msg)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(EmailError::Smtp(e.to_string())),
            Err(_) => Err(EmailError::Smtp(format!("no answer within {TIMEOUT:?}"))),
        }
    }
}

/// Renders `kind`'s prompt in `lang` with `ctx`: (subject, body). `None` when the clinic has
/// no such prompt, it fails, or it renders no subject (logged: a template typo must not
/// break the turn).
pub(crate) fn compose(bot: &Bot, kind: EmailKind, lang: Lang, ctx: &Value) -> Option<(String, String)> {
    let name = |l: Lang| {
        let path = format!("prompts/{}/{}", l.code(), kind.file());
        bot.templates.has(&path).then_some(path)
    };
    let text = Text {
        es: name(Lang::Es),
        en: name(Lang::En),
    };
    text.template_for(lang)?;
    let out = match bot.templates.render(&text, lang, ctx) {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(kind = kind.as_str(), template = %e.name, "email template failed ({}); not sent", e.message);
            return None;
        }
    };
    let (subject, body) = out.split_once('\n').unwrap_or((&out, ""));
    let subject = subject.trim();
    if subject.is_empty() {
        tracing::warn!(kind = kind.as_str(), "email template rendered no subject; not sent");
        return None;
    }
    Some((subject.to_string(), body.trim().to_string()))
}

/// Sends in the background; logs the outcome with the appointment id only.
pub(crate) fn spawn_send(
    mailer: Arc<Mailer>,
    kind: EmailKind,
    appointment: String,
    to: String,
    mail: (String, String),
) {
    crate::clinics::scope::spawn(async move {
        match mailer.send(&to, &mail.0, &mail.1).await {
            Ok(()) => {
                metrics::counter!("clinicflow_emails_total", "kind" => kind.as_str(), "outcome" => "sent").increment(1);
                tracing::info!(kind = kind.as_str(), appointment = %appointment, "email sent");
            }
            Err(e) => {
                metrics::counter!("clinicflow_emails_total", "kind" => kind.as_str(), "outcome" => "failed")
                    .increment(1);
                tracing::warn!(kind = kind.as_str(), appointment = %appointment, error = e.kind(), "email not delivered");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn no_settings_means_no_mailer() {
        assert!(Mailer::from_vars(vars(&[])).unwrap().is_none());
        // A sender alone configures nothing either.
        assert!(
            Mailer::from_vars(vars(&[("CLINICFLOW_SMTP_FROM", "a@b.com")]))
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn settings_are_checked() {
        let ok = Mailer::from_vars(vars(&[
            ("CLINICFLOW_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("CLINICFLOW_SMTP_FROM", "Clínica <turnos@example.com>"),
        ]));
        assert!(ok.unwrap().is_some());
        let host = Mailer::from_vars(vars(&[
            ("CLINICFLOW_SMTP_HOST", "smtp.example.com"),
            ("CLINICFLOW_SMTP_USER", "u"),
            ("CLINICFLOW_SMTP_PASSWORD", "p"),
            ("CLINICFLOW_SMTP_FROM", "turnos@example.com"),
        ]));
        assert!(host.unwrap().is_some());
        let cases: &[&[(&str, &str)]] = &[
            &[("CLINICFLOW_SMTP_URL", "smtp://127.0.0.1:2525")],
            &[("CLINICFLOW_SMTP_URL", "http://x"), ("CLINICFLOW_SMTP_FROM", "a@b.com")],
            &[
                ("CLINICFLOW_SMTP_URL", "smtp://x"),
                ("CLINICFLOW_SMTP_FROM", "not an address"),
            ],
            &[
                ("CLINICFLOW_SMTP_HOST", "x"),
                ("CLINICFLOW_SMTP_PORT", "99999"),
                ("CLINICFLOW_SMTP_FROM", "a@b.com"),
            ],
            &[
                ("CLINICFLOW_SMTP_HOST", "x"),
                ("CLINICFLOW_SMTP_USER", "u"),
                ("CLINICFLOW_SMTP_FROM", "a@b.com"),
            ],
            &[
                ("CLINICFLOW_SMTP_HOST", "x"),
                ("CLINICFLOW_SMTP_URL", "smtp://x"),
                ("CLINICFLOW_SMTP_FROM", "a@b.com"),
            ],
        ];
        for case in cases {
            let err = Mailer::from_vars(vars(case)).unwrap_err();
            assert!(matches!(err, EmailError::Settings(_)), "{case:?}: {err}");
        }
    }

    #[test]
    fn addresses() {
        assert!(valid_address("ana.perez@example.com"));
        assert!(!valid_address("ana.perez"));
        assert!(!valid_address("ana perez@example.com"));
        assert!(!valid_address(&format!("{}@example.com", "a".repeat(260))));
    }
}
