//! The vocabulary the flows, the engine and the actions share: which built-in actions a flow
//! can name (`action:` / `do:`), why they refuse ([`Refusal`]) and the request the engine
//! makes of the service. The names
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

/// Why an action refused: the `reason` of its `{ok: false, reason}` result, which flows
/// branch on (`result.reason == "taken"`), templates show and the API maps to its errors.
/// Serialized as today's strings; the compiler checks the ones a flow's guards compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No appointment (or reminder) matches.
    NotFound,
    /// The slot is booked, or an external calendar holds that time.
    Taken,
    /// The date and time have already passed.
    Past,
    /// The clinic is closed that day.
    Closed,
    /// Nobody of that specialty sees patients that day.
    NoSlots,
    /// That time is not a start time of any professional's schedule.
    OutsideHours,
    /// Beyond the booking horizon (`last_day` says until when).
    TooFar,
    /// A day with free times, asked without a time.
    NoTime,
    /// Nothing free inside the asked window (the nearest outside it are offered).
    OutsideWindow,
    /// An external calendar did not answer.
    CalendarUnavailable,
    /// The clinic has no such specialty.
    UnknownSpecialty,
    /// No professional of that specialty has that name.
    UnknownProfessional,
    /// A date that is not YYYY-MM-DD.
    InvalidDate,
    /// A time that is not HH:MM.
    InvalidTime,
    /// Not an email address.
    InvalidEmail,
    /// A reminder offset that is not like 24h, 2h or 30m.
    InvalidDuration,
    /// An appointment status filter that does not exist.
    InvalidStatus,
    /// A time window that cannot be read.
    InvalidWindow,
    /// `date` is required.
    MissingDate,
    /// `document` is required.
    MissingDocument,
    /// `patient_name` is required.
    MissingPatientName,
    /// `specialty` is required.
    MissingSpecialty,
    /// `time` is required.
    MissingTime,
    /// A one-time code was sent (or one still valid was); the patient must give it.
    CodeSent,
    /// Too many wrong codes: verification is locked for a while.
    Locked,
    /// The code given is not the one sent (`attempts_left`).
    WrongCode,
}

impl Refusal {
    pub const ALL: [Refusal; 26] = [
        Refusal::NotFound,
        Refusal::Taken,
        Refusal::Past,
        Refusal::Closed,
        Refusal::NoSlots,
        Refusal::OutsideHours,
        Refusal::TooFar,
        Refusal::NoTime,
        Refusal::OutsideWindow,
        Refusal::CalendarUnavailable,
        Refusal::UnknownSpecialty,
        Refusal::UnknownProfessional,
        Refusal::InvalidDate,
        Refusal::InvalidTime,
        Refusal::InvalidEmail,
        Refusal::InvalidDuration,
        Refusal::InvalidStatus,
        Refusal::InvalidWindow,
        Refusal::MissingDate,
        Refusal::MissingDocument,
        Refusal::MissingPatientName,
        Refusal::MissingSpecialty,
        Refusal::MissingTime,
        Refusal::CodeSent,
        Refusal::Locked,
        Refusal::WrongCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotFound => "not_found",
            Refusal::Taken => "taken",
            Refusal::Past => "past",
            Refusal::Closed => "closed",
            Refusal::NoSlots => "no_slots",
            Refusal::OutsideHours => "outside_hours",
            Refusal::TooFar => "too_far",
            Refusal::NoTime => "no_time",
            Refusal::OutsideWindow => "outside_window",
            Refusal::CalendarUnavailable => "calendar_unavailable",
            Refusal::UnknownSpecialty => "unknown_specialty",
            Refusal::UnknownProfessional => "unknown_professional",
            Refusal::InvalidDate => "invalid_date",
            Refusal::InvalidTime => "invalid_time",
            Refusal::InvalidEmail => "invalid_email",
            Refusal::InvalidDuration => "invalid_duration",
            Refusal::InvalidStatus => "invalid_status",
            Refusal::InvalidWindow => "invalid_window",
            Refusal::MissingDate => "missing_date",
            Refusal::MissingDocument => "missing_document",
            Refusal::MissingPatientName => "missing_patient_name",
            Refusal::MissingSpecialty => "missing_specialty",
            Refusal::MissingTime => "missing_time",
            Refusal::CodeSent => "code_sent",
            Refusal::Locked => "locked",
            Refusal::WrongCode => "wrong_code",
        }
    }

    pub fn parse(s: &str) -> Option<Refusal> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action the engine wants performed, with its arguments already evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub action: ActionName,
    pub args: serde_json::Map<String, serde_json::Value>,
}
