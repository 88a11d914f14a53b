//! The service's side of email (src/email.rs): which appointment gets which email, rendered
//! from the bot the turn runs with. Nothing here fails a turn or a reminder.

use std::sync::Arc;

use jiff::Zoned;
use serde_json::{Value, json};

use super::Service;
use crate::email::{EmailKind, Mailer, compose, spawn_send};
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::lang::Lang;
use crate::store::{Appointment, Reminder};

impl Service {
    /// Emails confirmations and reminders through `mailer` (`None`: no email, the default).
    pub fn with_mailer(mut self, mailer: Option<Arc<Mailer>>) -> Self {
        self.mailer = mailer;
        self
    }

    /// After `book_appointment` answered `result`: emails the confirmation in `lang` when it
    /// booked, the patient gave an address and email is configured.
    pub async fn email_confirmation(&self, bot: &Bot, lang: Lang, result: &Value, now: &Zoned) {
        let Some(mailer) = &self.mailer else { return };
        let Some(id) = result["appointment"]["id"].as_str().filter(|_| result["ok"] == true) else {
            return;
        };
        // The address is only on the stored appointment (the result does not carry it).
        let appointment = match self.store.get_appointment(id).await {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(appointment = %id, "confirmation email: cannot read the appointment: {e}");
                return;
            }
        };
        let Some(to) = appointment.email.clone() else { return };
        let local = now.with_time_zone(bot.clinic.tz.clone());
        let ctx = json!({
            "appointment": crate::reminders::text::appointment_fields(&appointment, &local),
            "clinic": bot.clinic.value,
            "now": crate::engine::now_value(&local),
        });
        if let Some(mail) = compose(bot, EmailKind::Confirmation, lang, &ctx) {
            spawn_send(mailer.clone(), EmailKind::Confirmation, appointment.id, to, mail);
        }
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
