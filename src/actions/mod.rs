//! Effects: what the flows ask the outside world to do. `step` only *requests* them
//! (`ActionRequest`); the service layer performs them against the store and feeds the result
//! back to the engine as `result`.
//!
//! One file per effect. Every action takes JSON arguments (evaluated from the state's `with:`)
//! and returns a JSON object; errors in the arguments are reported in the result
//! (`ok: false, reason: ...`) so flows can branch on them, never as a crash.
//!
//! `ActionError` is kept for infrastructure failures (the database is unreachable): the turn
//! cannot complete and the service answers with its generic apology. A refusal that is part
//! of the domain (slot taken, appointment not found, bad argument) is a normal result.
//!
//! Every result carries `ok`. Dates are "YYYY-MM-DD" and times "HH:MM" in the clinic's time
//! zone, in arguments and results alike.

mod args;
mod book;
mod cancel;
mod confirm;
mod escalate;
mod find_availability;
mod list;
mod remind;
mod reschedule;
pub(crate) mod slots;
#[cfg(test)]
pub(crate) mod testutil;
pub(crate) mod verify;

use crate::engine::session::Session;
use crate::flow::clinic::Clinic;
use crate::store::{Store, StoreError};

/// What an action may read: the store, the clinic data, the conversation that asked for it
/// and the time the turn is running at (from the turn's input, so tests can pin it).
#[derive(Debug, Clone, Copy)]
pub struct ActionContext<'a> {
    pub store: &'a Store,
    pub clinic: &'a Clinic,
    pub session: &'a Session,
    pub now: &'a jiff::Zoned,
    /// Acting for the clinic's staff (the integrator API): every appointment is theirs to see.
    /// A patient's conversation (`false`) sees only what its contact booked or what
    /// `verify_patient` proved is theirs.
    pub staff: bool,
}

impl ActionContext<'_> {
    /// Now, in the clinic's time zone.
    pub(crate) fn local_now(&self) -> jiff::Zoned {
        self.now.with_time_zone(self.clinic.tz.clone())
    }

    /// Whether this conversation may see or change `a`: staff always; a patient's conversation
    /// when it comes from the contact that booked it, or once `verify_patient` proved that the
    /// appointment's document is the patient's.
    pub(crate) fn may_see(&self, a: &crate::store::Appointment) -> bool {
        self.staff
            || crate::identity::same_contact((&a.channel, &a.user), (&self.session.channel, &self.session.user))
            || self
                .session
                .patient
                .as_deref()
                .is_some_and(|p| p == crate::identity::document_hash(&a.document))
    }
}

pub use crate::flow::actions::{ActionName, ActionRequest};
pub(crate) use args::normalize_document;

/// An action could not run for reasons outside the conversation (database down…).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An appointment as flows see it (the items of `list_appointments`, `result.appointment`).
pub fn appointment_value(a: &crate::store::Appointment) -> serde_json::Value {
    args::appointment_json(a)
}

/// Performs `req` and returns its result object (see each action's module for its shape).
pub async fn perform(ctx: &ActionContext<'_>, req: &ActionRequest) -> Result<serde_json::Value, ActionError> {
    let args = &req.args;
    let result = match req.action {
        ActionName::FindAvailability => find_availability::run(ctx, args).await,
        ActionName::BookAppointment => book::run(ctx, args).await,
        ActionName::CancelAppointment => cancel::run(ctx, args).await,
        ActionName::ConfirmAppointment => confirm::run(ctx, args).await,
        ActionName::RescheduleAppointment => reschedule::run(ctx, args).await,
        ActionName::ListAppointments => list::run(ctx, args).await,
        ActionName::ScheduleReminders => remind::run(ctx, args).await,
        ActionName::Escalate => escalate::run(ctx, args).await,
        // Without the service there is no channel to send a code on: the answer is the same
        // as when the document has no contact on record.
        ActionName::VerifyPatient => verify::run(ctx, args).await.map(|v| v.result),
    };
    match &result {
        Ok(value) => tracing::debug!(
            action = req.action.as_str(),
            session = %crate::service::redact(&ctx.session.id),
            ok = value.get("ok").and_then(|v| v.as_bool()).unwrap_or(false),
            reason = value.get("reason").and_then(|v| v.as_str()).unwrap_or(""),
            "action performed"
        ),
        Err(e) => tracing::warn!(action = req.action.as_str(), error = %e, "action failed"),
    }
    result
}
