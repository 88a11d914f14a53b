//! The vocabulary the flows, the engine and the actions share: which built-in actions a flow
//! can name (`action:` / `do:`) and the request the engine makes of the service. The names
//! are the flows' own words (snake_case in YAML); the compiler refuses any other.

use serde::{Deserialize, Serialize};

/// The built-in actions a flow can name in `action:` or `do:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    FindAvailability,
    BookAppointment,
    CancelAppointment,
    ConfirmAppointment,
    RescheduleAppointment,
    ListAppointments,
    ScheduleReminders,
    Escalate,
    VerifyPatient,
}

impl ActionName {
    pub const ALL: [ActionName; 9] = [
        ActionName::FindAvailability,
        ActionName::BookAppointment,
        ActionName::CancelAppointment,
        ActionName::ConfirmAppointment,
        ActionName::RescheduleAppointment,
        ActionName::ListAppointments,
        ActionName::ScheduleReminders,
        ActionName::Escalate,
        ActionName::VerifyPatient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionName::FindAvailability => "find_availability",
            ActionName::BookAppointment => "book_appointment",
            ActionName::CancelAppointment => "cancel_appointment",
            ActionName::ConfirmAppointment => "confirm_appointment",
            ActionName::RescheduleAppointment => "reschedule_appointment",
            ActionName::ListAppointments => "list_appointments",
            ActionName::ScheduleReminders => "schedule_reminders",
            ActionName::Escalate => "escalate",
            ActionName::VerifyPatient => "verify_patient",
        }
    }

    /// Whether the action only reads. A turn opens its transaction at its first writing
    /// action: reads before it (the free slots the patient is offered, their appointments)
    /// take no part in a transaction, so a long conversation of reads never holds one open
    /// and never conflicts with other conversations' bookings. A read after a write joins
    /// the transaction and sees the turn's own writes.
    pub fn reads_only(self) -> bool {
        matches!(self, ActionName::FindAvailability | ActionName::ListAppointments)
    }

    pub fn parse(s: &str) -> Option<ActionName> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An action the engine wants performed, with its arguments already evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub action: ActionName,
    pub args: serde_json::Map<String, serde_json::Value>,
}
