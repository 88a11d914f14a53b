//! What staff does to an appointment that no flow does: mark it attended or no-show (the
//! console's agenda). Booking, cancelling and moving go through `actions::perform`, like the
//! flows; this is the one agenda write that has no action.

use jiff::Zoned;

use super::{Service, ServiceError};
use crate::store::{Appointment, AppointmentStatus};

/// What staff can say about an appointment that has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attendance {
    Attended,
    NoShow,
}

impl Attendance {
    pub fn status(self) -> AppointmentStatus {
        match self {
            Attendance::Attended => AppointmentStatus::Attended,
            Attendance::NoShow => AppointmentStatus::NoShow,
        }
    }

    pub fn parse(s: &str) -> Option<Attendance> {
        match AppointmentStatus::parse(s)? {
            AppointmentStatus::Attended => Some(Attendance::Attended),
            AppointmentStatus::NoShow => Some(Attendance::NoShow),
            _ => None,
        }
    }
}

/// Why an appointment cannot be marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MarkRefusal {
    #[error("there is no such appointment")]
    NotFound,
    #[error("the appointment was cancelled")]
    Cancelled,
    /// Its day has not come yet (a patient can come early on the day, not before).
    #[error("the appointment's day has not come yet")]
    NotYet,
}

impl MarkRefusal {
    /// The reason code pages show in words (the same style as the actions' refusals).
    pub fn code(self) -> &'static str {
        match self {
            MarkRefusal::NotFound => "not_found",
            MarkRefusal::Cancelled => "already_cancelled",
            MarkRefusal::NotYet => "not_yet",
        }
    }
}

impl Service {
    /// Marks appointment `id` attended or no-show on behalf of `by` (a staff name), from its
    /// day on; its pending reminders are cancelled with it. A mark can be corrected (attended
    /// ↔ no-show); a cancelled appointment cannot be marked.
    pub async fn mark_attendance(
        &self,
        id: &str,
        attendance: Attendance,
        by: &str,
        now: &Zoned,
    ) -> Result<Result<Appointment, MarkRefusal>, ServiceError> {
        let Some(current) = self.store.get_appointment(id).await? else {
            return Ok(Err(MarkRefusal::NotFound));
        };
        if current.status == AppointmentStatus::Cancelled {
            return Ok(Err(MarkRefusal::Cancelled));
        }
        let today = now.with_time_zone(self.bot().clinic.tz.clone()).date();
        if current.date > today {
            return Ok(Err(MarkRefusal::NotYet));
        }
        let marked = self
            .store
            .mark_appointment(id, attendance.status(), by, now.timestamp())
            .await?;
        // None: cancelled between our read and the write.
        Ok(marked.ok_or(MarkRefusal::Cancelled))
    }
}
