//! Availability, appointments and reminders. Searching, booking, cancelling and rescheduling
//! go through `actions::perform`, the same code the flows run, so the API and the
//! conversations follow one set of rules (opening hours, schedules, the unique slot index).

use jiff::Zoned;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::{IntegratorKey, StaffKey};
use super::error::ApiError;
use super::{Tag, check_channel, check_id};
use crate::actions::{self, ActionContext, ActionName, ActionRequest};
use crate::email::EmailKind;
use crate::engine::session::Session;
use crate::server::{AppState, clock};
use crate::store::{Appointment, AppointmentFilter, AppointmentStatus, Reminder, ReminderStatus};

#[derive(Object, Deserialize)]
struct FreeSlot {
    date: String,
    time: String,
    professional: String,
}

#[derive(Object, Deserialize)]
struct Availability {
    /// Whether the slot asked for is free (false when no `time` was given).
    available: bool,
    specialty: String,
    date: String,
    time: Option<String>,
    /// Who would see the patient when available (or the professional asked for).
    professional: Option<String>,
    /// Why not available: `past`, `closed`, `no_slots`, `outside_hours`, `taken`; without a
    /// `time`, `no_time` means the day has free slots (listed in `alternatives`).
    reason: Option<String>,
    /// Up to 3 free slots: that day first (closest to the time asked), then the next days.
    alternatives: Vec<FreeSlot>,
}

#[derive(Object)]
#[oai(rename = "Appointment")]
struct AppointmentOut {
    id: String,
    specialty: String,
    professional: String,
    /// Clinic-local date, YYYY-MM-DD.
    date: String,
    /// Clinic-local time, HH:MM.
    time: String,
    /// The same moment as an RFC 3339 instant.
    starts_at: String,
    minutes: u32,
    patient_name: String,
    document: String,
    coverage: Option<String>,
    /// `booked`, `cancelled`, `attended` or `no_show` (the last two marked by staff in the
    /// console's agenda).
    status: String,
    channel: String,
    user: String,
    /// The conversation it was booked in (`api` for API bookings without one).
    conversation: String,
    created_at: String,
    cancelled_at: Option<String>,
    /// When the patient confirmed they will come (answering a reminder).
    confirmed_at: Option<String>,
    /// When staff marked it `attended` or `no_show`, and who.
    marked_at: Option<String>,
    marked_by: Option<String>,
}

impl From<Appointment> for AppointmentOut {
    fn from(a: Appointment) -> Self {
        AppointmentOut {
            date: a.date.to_string(),
            time: crate::store::time::fmt_hhmm(a.time),
            starts_at: a.starts_at.to_string(),
            status: a.status.as_str().into(),
            created_at: a.created_at.to_string(),
            cancelled_at: a.cancelled_at.map(|t| t.to_string()),
            confirmed_at: a.confirmed_at.map(|t| t.to_string()),
            marked_at: a.marked_at.map(|t| t.to_string()),
            marked_by: a.marked_by,
            id: a.id,
            specialty: a.specialty,
            professional: a.professional,
            minutes: a.minutes,
            patient_name: a.patient_name,
            document: a.document,
            coverage: a.coverage,
            channel: a.channel,
            user: a.user,
            conversation: a.session,
        }
    }
}

/// A new appointment.
#[derive(Object)]
#[oai(rename = "NewAppointment")]
struct BookIn {
    /// Specialty name (accents and case do not matter; synonyms work).
    specialty: String,
    /// YYYY-MM-DD, clinic-local.
    date: String,
    /// HH:MM, clinic-local.
    time: String,
    /// A professional of the specialty (the first free one when absent).
    professional: Option<String>,
    patient_name: String,
    /// Document number; dots and spaces are ignored.
    document: String,
    coverage: Option<String>,
    /// The patient's email: the confirmation and reminders are emailed to it when the server
    /// has SMTP settings (docs/calendars.md, "Email"). Stored encrypted; never returned.
    email: Option<String>,
    /// The conversation the booking belongs to (reminders are recorded in its turn log).
    conversation: Option<String>,
    /// The patient's channel (`api` by default) and address there, for reminders.
    channel: Option<String>,
    user: Option<String>,
    /// Schedule the clinic's default reminders (24 h and 2 h before). Default false.
    remind: Option<bool>,
}

#[derive(Object)]
#[oai(rename = "Reschedule")]
struct RescheduleIn {
    /// YYYY-MM-DD, clinic-local.
    date: String,
    /// HH:MM, clinic-local.
    time: String,
    /// Another professional of the same specialty (the current one is kept when free).
    professional: Option<String>,
}

#[derive(Object)]
#[oai(rename = "Reminder")]
struct ReminderOut {
    id: String,
    appointment: String,
    conversation: String,
    channel: String,
    user: String,
    /// How long before the appointment: `24h`, `2h`…
    kind: String,
    due_at: String,
    /// `pending`, `sent`, `cancelled` or `failed`.
    status: String,
    attempts: u32,
    last_error: Option<String>,
    sent_at: Option<String>,
}

impl From<Reminder> for ReminderOut {
    fn from(r: Reminder) -> Self {
        ReminderOut {
            due_at: r.due_at.to_string(),
            status: r.status.as_str().into(),
            sent_at: r.sent_at.map(|t| t.to_string()),
            id: r.id,
            appointment: r.appointment,
            conversation: r.session,
            channel: r.channel,
            user: r.user,
            kind: r.kind,
            attempts: r.attempts,
            last_error: r.last_error,
        }
    }
}

#[derive(Enum, Clone, Copy)]
#[oai(rename = "AppointmentStatus", rename_all = "snake_case")]
enum AppointmentStatusParam {
    Booked,
    Cancelled,
    Attended,
    NoShow,
}

#[derive(Enum, Clone, Copy)]
#[oai(rename = "ReminderStatus", rename_all = "snake_case")]
enum ReminderStatusParam {
    Pending,
    Sent,
    Cancelled,
    Failed,
}

#[derive(ApiResponse)]
enum Booked {
    /// Booked.
    #[oai(status = 201)]
    Created(Json<AppointmentOut>),
}

/// Runs an action for the API: `Ok(result)` when it succeeded, the refusal as an error when
/// it did not.
async fn perform(
    state: &AppState,
    session: &Session,
    now: &Zoned,
    action: ActionName,
    args: Value,
    id: &str,
) -> Result<Value, ApiError> {
    let bot = state.service.bot();
    let ctx = ActionContext {
        store: &state.service.store,
        clinic: &bot.clinic,
        session,
        now,
        staff: true,
    };
    let args: Map<String, Value> = match args {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let result = actions::perform(&ctx, &ActionRequest { action, args }).await?;
    if result.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(result)
    } else {
        Err(ApiError::refusal(&result, "appointment", id))
    }
}

/// The conversation an API call acts for when it names none.
fn api_session(state: &AppState) -> Session {
    Session::new("api", "api", "api", state.service.bot().clinic.language)
}

fn parse_date(s: &str) -> Result<jiff::civil::Date, ApiError> {
    s.parse::<jiff::civil::Date>()
        .ok()
        .filter(|_| s.len() == 10)
        .ok_or_else(|| ApiError::bad_request("`date` is written YYYY-MM-DD"))
}

/// Loads an appointment the caller named, or 404.
async fn existing(state: &AppState, id: &str) -> Result<Appointment, ApiError> {
    check_id("appointment", id)?;
    state
        .service
        .store
        .get_appointment(id)
        .await?
        .ok_or_else(|| ApiError::not_found("appointment", id))
}

pub struct Api;

#[OpenApi]
impl Api {
    /// Free slots of a specialty on a date (and whether one exact time is free).
    #[oai(
        path = "/v1/availability",
        method = "get",
        operation_id = "availability",
        tag = "Tag::Appointments"
    )]
    async fn availability(
        &self,
        _key: IntegratorKey,
        state: Data<&AppState>,
        specialty: Query<String>,
        /// YYYY-MM-DD, clinic-local.
        date: Query<String>,
        /// HH:MM, clinic-local: ask about this exact time.
        time: Query<Option<String>>,
        professional: Query<Option<String>>,
    ) -> Result<Json<Availability>, ApiError> {
        let now = clock(&state, None)?;
        let args = json!({ "specialty": specialty.0, "date": date.0, "time": time.0, "professional": professional.0 });
        let result = perform(
            &state,
            &api_session(&state),
            &now,
            ActionName::FindAvailability,
            args,
            "",
        )
        .await?;
        serde_json::from_value(result)
            .map(Json)
            .map_err(|e| ApiError::Internal(format!("find_availability answered an unexpected shape: {e}")))
    }

    /// Appointments, by document, date and status, soonest first.
    #[oai(
        path = "/v1/appointments",
        method = "get",
        operation_id = "list_appointments",
        tag = "Tag::Appointments"
    )]
    async fn list_appointments(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        /// Document number; dots and spaces are ignored.
        document: Query<Option<String>>,
        /// YYYY-MM-DD, clinic-local.
        date: Query<Option<String>>,
        status: Query<Option<AppointmentStatusParam>>,
        /// At most this many (1 to 1000, default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<AppointmentOut>>, ApiError> {
        let filter = AppointmentFilter {
            // As the actions compare them: "30.111.222" is "30111222".
            document: document.0.map(|d| {
                d.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_uppercase())
                    .collect()
            }),
            date: date.0.as_deref().map(parse_date).transpose()?,
            status: status.0.map(|s| match s {
                AppointmentStatusParam::Booked => AppointmentStatus::Booked,
                AppointmentStatusParam::Cancelled => AppointmentStatus::Cancelled,
                AppointmentStatusParam::Attended => AppointmentStatus::Attended,
                AppointmentStatusParam::NoShow => AppointmentStatus::NoShow,
            }),
            limit: Some(super::limit(limit.0)?),
            ..Default::default()
        };
        let found = state.service.store.list_appointments(&filter).await?;
        Ok(Json(found.into_iter().map(AppointmentOut::from).collect()))
    }

    /// Book an appointment, with the same checks a conversation gets (409 when the slot is
    /// taken, past, outside hours…).
    #[oai(
        path = "/v1/appointments",
        method = "post",
        operation_id = "book_appointment",
        tag = "Tag::Appointments"
    )]
    async fn book(&self, _key: IntegratorKey, state: Data<&AppState>, body: Json<BookIn>) -> Result<Booked, ApiError> {
        let b = body.0;
        let conversation = b.conversation.unwrap_or_else(|| "api".into());
        check_id("conversation", &conversation)?;
        let channel = b.channel.unwrap_or_else(|| "api".into());
        check_channel(&channel)?;
        let user = b.user.unwrap_or_default();
        if user.chars().count() > 200 {
            return Err(ApiError::bad_request("`user` is at most 200 characters"));
        }
        let session = Session::new(conversation, channel, user, state.service.bot().clinic.language);
        let now = clock(&state, None)?;
        let args = json!({
            "specialty": b.specialty, "date": b.date, "time": b.time, "professional": b.professional,
            "patient_name": b.patient_name, "document": b.document, "coverage": b.coverage,
            "email": b.email,
        });
        let result = perform(&state, &session, &now, ActionName::BookAppointment, args, "").await?;
        let bot = state.service.bot();
        state
            .service
            .email_confirmation(&bot, session.lang, &result, &now)
            .await;
        let id = result["appointment"]["id"].as_str().unwrap_or_default().to_string();
        if b.remind == Some(true) {
            let args = json!({ "appointment": id });
            perform(&state, &session, &now, ActionName::ScheduleReminders, args, &id).await?;
        }
        Ok(Booked::Created(Json(existing(&state, &id).await?.into())))
    }

    #[oai(
        path = "/v1/appointments/:id",
        method = "get",
        operation_id = "get_appointment",
        tag = "Tag::Appointments"
    )]
    async fn get(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Json<AppointmentOut>, ApiError> {
        Ok(Json(existing(&state, &id).await?.into()))
    }

    /// Cancel an appointment; its slot is free at once and its pending reminders are cancelled.
    #[oai(
        path = "/v1/appointments/:id/cancel",
        method = "post",
        operation_id = "cancel_appointment",
        tag = "Tag::Appointments"
    )]
    async fn cancel(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        id: Path<String>,
    ) -> Result<Json<AppointmentOut>, ApiError> {
        let current = existing(&state, &id).await?;
        if current.status == AppointmentStatus::Cancelled {
            return Err(ApiError::Conflict {
                code: "already_cancelled".into(),
                message: "the appointment is already cancelled".into(),
            });
        }
        let now = clock(&state, None)?;
        let args = json!({ "id": id.0 });
        perform(
            &state,
            &api_session(&state),
            &now,
            ActionName::CancelAppointment,
            args,
            &id,
        )
        .await?;
        let cancelled = existing(&state, &id).await?;
        // After the cancellation is stored: the patient's note, when they gave an email.
        state
            .service
            .email_patient(EmailKind::Cancelled, &cancelled, None, &now)
            .await;
        Ok(Json(cancelled.into()))
    }

    /// Move an appointment to another date and time (same specialty); its reminders move too.
    #[oai(
        path = "/v1/appointments/:id/reschedule",
        method = "post",
        operation_id = "reschedule_appointment",
        tag = "Tag::Appointments"
    )]
    async fn reschedule(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        id: Path<String>,
        body: Json<RescheduleIn>,
    ) -> Result<Json<AppointmentOut>, ApiError> {
        let current = existing(&state, &id).await?;
        if current.status == AppointmentStatus::Cancelled {
            return Err(ApiError::Conflict {
                code: "already_cancelled".into(),
                message: "a cancelled appointment cannot be moved; book a new one".into(),
            });
        }
        let now = clock(&state, None)?;
        let args = json!({ "id": id.0, "date": body.0.date, "time": body.0.time, "professional": body.0.professional });
        perform(
            &state,
            &api_session(&state),
            &now,
            ActionName::RescheduleAppointment,
            args,
            &id,
        )
        .await?;
        let moved = existing(&state, &id).await?;
        let previous = crate::service::previous_of(&current);
        state
            .service
            .email_patient(EmailKind::Rescheduled, &moved, Some(&previous), &now)
            .await;
        Ok(Json(moved.into()))
    }

    /// Reminders by status, soonest first.
    #[oai(
        path = "/v1/reminders",
        method = "get",
        operation_id = "list_reminders",
        tag = "Tag::Reminders"
    )]
    async fn reminders(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        status: Query<Option<ReminderStatusParam>>,
        /// At most this many (1 to 1000, default 100).
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<ReminderOut>>, ApiError> {
        let status = status.0.map(|s| match s {
            ReminderStatusParam::Pending => ReminderStatus::Pending,
            ReminderStatusParam::Sent => ReminderStatus::Sent,
            ReminderStatusParam::Cancelled => ReminderStatus::Cancelled,
            ReminderStatusParam::Failed => ReminderStatus::Failed,
        });
        let found = state
            .service
            .store
            .list_reminders(status, super::limit(limit.0)?)
            .await?;
        Ok(Json(found.into_iter().map(ReminderOut::from).collect()))
    }
}
