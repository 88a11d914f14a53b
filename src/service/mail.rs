//! The service's side of email (src/email.rs): which appointment gets which email, rendered
//! from the bot the turn runs with. Nothing here fails a turn, a reminder, a staff call or a
//! calendar change: every email is sent after what it tells about is stored.

use std::sync::Arc;

use jiff::Zoned;
use serde_json::{Value, json};

use super::Service;
use crate::actions::ActionName;
use crate::email::{EmailKind, Mailer, compose, spawn_send};
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::lang::Lang;
use crate::store::time::{fmt_date, fmt_hhmm};
use crate::store::{Appointment, Reminder};

/// Where an appointment was before it moved, for `email_rescheduled.j2` (`previous`).
pub fn previous_of(a: &Appointment) -> Value {
    json!({
        "date": fmt_date(a.date),
        "time": fmt_hhmm(a.time),
        "professional": a.professional,
    })
}

impl Service {
    /// Emails confirmations and reminders through `mailer` (`None`: no email, the default).
    pub fn with_mailer(mut self, mailer: Option<Arc<Mailer>>) -> Self {
        self.mailer = mailer;
        self
    }

    /// After a turn committed: the email each of its actions calls for (a booking's
    /// confirmation, a cancellation's or a move's note), in the conversation's `lang`.
    pub(crate) async fn email_after_turn(&self, bot: &Bot, lang: Lang, effects: &[Value], now: &Zoned) {
        if self.mailer.is_none() {
            return;
        }
        for e in effects {
            let result = &e["result"];
            let kind = match e["action"].as_str().and_then(ActionName::parse) {
                Some(ActionName::BookAppointment) => EmailKind::Confirmation,
                Some(ActionName::CancelAppointment) => EmailKind::Cancelled,
                Some(ActionName::RescheduleAppointment) => EmailKind::Rescheduled,
                _ => continue,
            };
            self.email_result(bot, kind, lang, result, now).await;
        }
    }

    /// After `book_appointment` answered `result`: emails the confirmation in `lang` when it
    /// booked, the patient gave an address and email is configured.
    pub async fn email_confirmation(&self, bot: &Bot, lang: Lang, result: &Value, now: &Zoned) {
        self.email_result(bot, EmailKind::Confirmation, lang, result, now).await;
    }

    /// After an action that answered `result` (`{ok, appointment: {id}, previous?}`): the
    /// `kind` email to the appointment's address, if it has one.
    async fn email_result(&self, bot: &Bot, kind: EmailKind, lang: Lang, result: &Value, now: &Zoned) {
        if self.mailer.is_none() {
            return;
        }
        let Some(id) = result["appointment"]["id"].as_str().filter(|_| result["ok"] == true) else {
            return;
        };
        // The address is only on the stored appointment (the result does not carry it).
        let appointment = match self.store.get_appointment(id).await {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(appointment = %id, kind = kind.as_str(), "email: cannot read the appointment: {e}");
                return;
            }
        };
        let previous = result.get("previous").filter(|p| p.is_object());
        self.email_appointment(bot, kind, lang, &appointment, previous, now);
    }

    /// The `kind` email about `appointment` (as it is now; `previous`: where it was, for a
    /// move), when it has an address and email is configured.
    pub fn email_appointment(
        &self,
        bot: &Bot,
        kind: EmailKind,
        lang: Lang,
        appointment: &Appointment,
        previous: Option<&Value>,
        now: &Zoned,
    ) {
        let (Some(mailer), Some(to)) = (&self.mailer, &appointment.email) else {
            return;
        };
        let local = now.with_time_zone(bot.clinic.tz.clone());
        let mut ctx = json!({
            "appointment": crate::reminders::text::appointment_fields(appointment, &local),
            "clinic": bot.clinic.value,
            "now": crate::engine::now_value(&local),
        });
        if let Some(p) = previous {
            ctx["previous"] = p.clone();
        }
        if let Some(mail) = compose(bot, kind, lang, &ctx) {
            spawn_send(mailer.clone(), kind, appointment.id.clone(), to.clone(), mail);
        }
    }

    /// [`Service::email_appointment`] in the language of the conversation the appointment
    /// was booked from (staff's changes, the calendar's).
    pub async fn email_patient(
        &self,
        kind: EmailKind,
        appointment: &Appointment,
        previous: Option<&Value>,
        now: &Zoned,
    ) {
        if self.mailer.is_none() || appointment.email.is_none() {
            return;
        }
        let lang = self.lang_of(&appointment.session).await;
        let bot = self.bot();
        self.email_appointment(&bot, kind, lang, appointment, previous, now);
    }

    /// Beside a reminder sent on the patient's channel: the same reminder by email, when the
    /// patient gave an address and email is configured.
    pub(crate) fn email_reminder(
        &self,
        bot: &Bot,
        appointment: &Appointment,
        reminder: &Reminder,
        session: Option<&Session>,
        now: &Zoned,
    ) {
        let (Some(mailer), Some(to)) = (&self.mailer, &appointment.email) else {
            return;
        };
        let lang = crate::reminders::text::language(bot, session);
        let ctx = crate::reminders::text::context(bot, appointment, reminder, session, now);
        if let Some(mail) = compose(bot, EmailKind::Reminder, lang, &ctx) {
            spawn_send(
                mailer.clone(),
                EmailKind::Reminder,
                appointment.id.clone(),
                to.clone(),
                mail,
            );
        }
    }
}
