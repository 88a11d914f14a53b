//! What a reminder says: the `reminder` text of flows/global.yaml rendered with the
//! appointment, or a built-in text when the clinic has none (or its template fails).

use jiff::Zoned;
use serde_json::{Value, json};

use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::flow::templates::format_date;
use crate::lang::Lang;
use crate::store::time::{fmt_date, fmt_hhmm};
use crate::store::{Appointment, Reminder};

/// The language of the reminder: the conversation's, else the clinic's.
pub(crate) fn language(bot: &Bot, session: Option<&Session>) -> Lang {
    session.map(|s| s.lang).unwrap_or(bot.clinic.language)
}

/// "today", "tomorrow" or "later": the appointment's day seen from `now`, both clinic-local.
fn day(appointment: &Appointment, now: &Zoned) -> &'static str {
    let today = now.date();
    if appointment.date == today {
        "today"
    } else if today.tomorrow().is_ok_and(|t| t == appointment.date) {
        "tomorrow"
    } else {
        "later"
    }
}

/// The top-level names of the reminder text's context (`context()`'s keys), for `check`.
pub const VARIABLES: &[&str] = &["appointment", "reminder", "session", "clinic", "now"];
/// The fields of `appointment` and `reminder` there.
pub const APPOINTMENT_FIELDS: &[&str] = &[
    "id",
    "specialty",
    "professional",
    "date",
    "time",
    "day",
    "patient_name",
    "coverage",
];
pub const REMINDER_FIELDS: &[&str] = &["kind", "minutes_before"];

/// The template context: `appointment`, `reminder`, `session`, `clinic`, `now`.
pub(crate) fn context(
    bot: &Bot,
    appointment: &Appointment,
    reminder: &Reminder,
    session: Option<&Session>,
    now: &Zoned,
) -> Value {
    let lang = language(bot, session);
    // The same shape flows see as `session`.
    let session = json!({
        "id": reminder.session,
        "lang": lang.code(),
        "channel": session.map_or(reminder.channel.as_str(), |s| s.channel.as_str()),
        "flow": session.and_then(|s| s.top()).map(|f| f.flow.clone()),
        "state": session.and_then(|s| s.top()).map(|f| f.state.clone()),
        "turns": session.map_or(0, |s| s.turns),
    });
    json!({
        "appointment": appointment_fields(appointment, now),
        "reminder": {
            "kind": reminder.kind,
            "minutes_before": reminder.offset_minutes,
        },
        "session": session,
        "clinic": bot.clinic.value,
        "now": crate::engine::now_value(now),
    })
}

/// `appointment` in a template context ([`APPOINTMENT_FIELDS`]): the reminder's, the emails'.
pub(crate) fn appointment_fields(appointment: &Appointment, now: &Zoned) -> Value {
    json!({
        "id": appointment.id,
        "specialty": appointment.specialty,
        "professional": appointment.professional,
        "date": fmt_date(appointment.date),
        "time": fmt_hhmm(appointment.time),
        "day": day(appointment, now),
        "patient_name": appointment.patient_name,
        "coverage": appointment.coverage,
    })
}

/// Renders the clinic's reminder text; the built-in one when there is none, it fails, or it
/// renders to nothing. Never fails: a reminder must not be lost to a template typo.
pub(crate) fn render(
    bot: &Bot,
    appointment: &Appointment,
    reminder: &Reminder,
    session: Option<&Session>,
    now: &Zoned,
) -> String {
    let lang = language(bot, session);
    if let Some(text) = &bot.global.reminder {
        let ctx = context(bot, appointment, reminder, session, now);
        match bot.templates.render(text, lang, &ctx) {
            Ok(out) if !out.is_empty() => return out,
            Ok(_) => tracing::warn!(
                reminder = %reminder.id,
                kind = %reminder.kind,
                "the reminder template rendered nothing; sending the built-in text"
            ),
            Err(e) => tracing::warn!(
                reminder = %reminder.id,
                kind = %reminder.kind,
                template = %e.name,
                "the reminder template failed ({}); sending the built-in text",
                e.message
            ),
        }
    }
    builtin(bot, appointment, lang, now)
}

/// The text sent when the clinic wrote none.
pub(crate) fn builtin(bot: &Bot, a: &Appointment, lang: Lang, now: &Zoned) -> String {
    let time = fmt_hhmm(a.time);
    let date = format_date(a.date, lang);
    let clinic = &bot.clinic.name;
    // Numbered answers only mean something when the clinic has the flow that takes them.
    let answers = bot.flow(super::REPLY_FLOW).is_some();
    match lang {
        Lang::Es => {
            let when = match day(a, now) {
                "today" => format!("hoy a las {time}"),
                "tomorrow" => format!("mañana, {date}, a las {time}"),
                _ => format!("el {date} a las {time}"),
            };
            let ask = if answers {
                "Respóndanos con un número: 1 confirmo · 2 cancelo · 3 quiero cambiarlo."
            } else {
                "Si no puede asistir, escríbanos para cancelarlo o cambiarlo."
            };
            format!(
                "Recordatorio de {clinic}: tiene turno de {} con {} {when}. {ask}",
                a.specialty, a.professional
            )
        }
        Lang::En => {
            let specialty = bot
                .clinic
                .specialties
                .iter()
                .find(|s| s.name == a.specialty)
                .and_then(|s| s.name_en.as_deref())
                .unwrap_or(&a.specialty);
            let when = match day(a, now) {
                "today" => format!("today at {time}"),
                "tomorrow" => format!("tomorrow, {date}, at {time}"),
                _ => format!("on {date} at {time}"),
            };
            let ask = if answers {
                "Please reply with a number: 1 I'll be there · 2 cancel it · 3 change it."
            } else {
                "If you can't make it, write to us to cancel or reschedule it."
            };
            format!(
                "Reminder from {clinic}: you have a {specialty} appointment with {} {when}. {ask}",
                a.professional
            )
        }
    }
}

/// The WhatsApp template the clinic configured for reminders (clinic.yaml
/// `whatsapp.reminder_template`), with its placeholders rendered from the same context as the
/// text. `None` on other channels, without a template, or when a placeholder fails to render
/// (the text is sent instead, which WhatsApp accepts inside its 24-hour window).
pub(crate) fn whatsapp_template(
    bot: &Bot,
    appointment: &Appointment,
    reminder: &Reminder,
    session: Option<&Session>,
    now: &Zoned,
) -> Option<crate::outbound::ContentTemplate> {
    if reminder.channel != "whatsapp" {
        return None;
    }
    let def = bot.clinic.whatsapp.reminder_template.as_ref()?;
    let ctx = context(bot, appointment, reminder, session, now);
    match def.render(&ctx) {
        Ok(variables) => Some(crate::outbound::ContentTemplate {
            content_sid: def.content_sid.clone(),
            variables,
        }),
        Err(e) => {
            tracing::warn!(
                reminder = %reminder.id,
                template = %e.name,
                "a WhatsApp template placeholder failed ({}); sending the text instead",
                e.message
            );
            None
        }
    }
}
