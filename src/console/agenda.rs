//! The agenda (receptionists and admins): one day's appointments per professional in the
//! clinic's time zone (today by default, any day by the date picker, the day before and
//! after), a search by patient (name, document or phone, matched on the server), cancel and
//! mark attended or no-show. Booking and moving are in `agenda_slots.rs`.
//!
//! Every change goes through the code the flows use: `actions::perform` (staff context) for
//! cancelling, booking and moving, `Service::mark_attendance` for attendance. A refusal (the
//! slot was taken meanwhile, the day has passed) comes back as a sentence on the page.

use jiff::Zoned;
use jiff::civil::Date;
use poem::web::{Form, Path, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::i18n;
use super::view::{enc, field, internal, known_reason, now, parse_day, phone_of};
use super::{Page, Staff, State};
use crate::actions::{self, ActionContext, ActionName, ActionRequest};
use crate::engine::session::Session;
use crate::lang::Lang;
use crate::server::AppState;
use crate::service::Attendance;
use crate::store::browse_window;
use crate::store::{Appointment, AppointmentFilter, AppointmentStatus};

/// At most this many search results.
const FOUND: usize = 100;

/// The conversation an agenda action runs in (like the API's `api`): a booking made here
/// belongs to it, and the patient's contact, when given, is the appointment's.
pub(super) fn console_session(lang: Lang, channel: &str, user: &str) -> Session {
    Session::new("console", channel, user, lang)
}

/// Runs an action as staff; the result object (with `ok` and, when refused, `reason`).
pub(super) async fn perform(
    state: &AppState,
    session: &Session,
    now: &Zoned,
    action: ActionName,
    args: Value,
) -> poem::Result<Value> {
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
    actions::perform(&ctx, &ActionRequest { action, args })
        .await
        .map_err(internal)
}

/// The refusal code of an action's result, when it was refused.
pub(super) fn refusal(result: &Value) -> Option<&'static str> {
    (result["ok"] != true).then(|| known_reason(result["reason"].as_str().unwrap_or("refused")))
}

/// The words for a refusal code, in `lang`.
pub(super) fn reason_text(lang: Lang, code: &str) -> &'static str {
    i18n::text(lang, &format!("reason_{}", known_reason(code)))
}

/// "lunes 23/11/2026" in `lang`.
pub(super) fn day_label(day: Date, lang: Lang) -> String {
    const ES: [&str; 7] = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"];
    const EN: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let i = usize::from(day.weekday().to_monday_zero_offset().unsigned_abs());
    let name = match lang {
        Lang::Es => ES[i % 7],
        Lang::En => EN[i % 7],
    };
    format!("{name} {}", day.strftime("%d/%m/%Y"))
}

/// What the agenda shows of an appointment (personal data: staff pages only).
pub(super) fn appointment_view(a: &Appointment, lang: Lang, today: Date) -> Value {
    json!({
        "id": a.id,
        "date": a.date.to_string(),
        "day": day_label(a.date, lang),
        "time": crate::store::time::fmt_hhmm(a.time),
        "patient": a.patient_name,
        "document": a.document,
        "phone": phone_of(&a.channel, &a.user),
        "specialty": a.specialty,
        "professional": a.professional,
        "status": a.status.as_str(),
        "status_text": i18n::text(lang, &format!("status_{}", a.status.as_str())),
        "booked": a.status == AppointmentStatus::Booked,
        "markable": a.status != AppointmentStatus::Cancelled && a.date <= today,
        "confirmed": a.confirmed_at.is_some(),
        "marked_by": a.marked_by,
    })
}

/// The specialties and their professionals, for the booking form.
pub(super) fn specialties(state: &AppState) -> Value {
    let bot = state.service.bot();
    bot.clinic
        .specialties
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "professionals": s.professionals.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub(super) struct DayQuery {
    date: Option<String>,
    q: Option<String>,
    done: Option<String>,
    refused: Option<String>,
}

#[handler]
pub(super) async fn page(state: State<'_>, req: &Request, staff: Staff, q: Query<DayQuery>) -> poem::Result<Response> {
    let lang = super::lang_of(&state, req);
    let now = now(&state);
    let today = now.date();
    let day = q.date.as_deref().and_then(parse_day).unwrap_or(today);
    let store = &state.service.store;
    let filter = AppointmentFilter {
        date: Some(day),
        ..Default::default()
    };
    let appointments = store.list_appointments(&filter).await.map_err(internal)?;
    let groups = per_professional(&state, day, &appointments, lang, today);

    let query = field(&q.q);
    let results = match &query {
        Some(text) => {
            let found = store
                .search_appointments(text, browse_window(today), FOUND)
                .await
                .map_err(internal)?;
            found.iter().map(|a| appointment_view(a, lang, today)).collect()
        }
        None => Vec::new(),
    };
    let notice = match q.done.as_deref() {
        Some(d @ ("booked" | "cancelled" | "moved" | "marked")) => Some(i18n::text(lang, &format!("done_{d}"))),
        _ => None,
    };
    let refused = q.refused.as_deref().map(|r| reason_text(lang, r));
    let view = Page::new(&state, req, "agenda.html")
        .staff(&staff)
        .with("day", day.to_string())
        .with("day_label", day_label(day, lang))
        .with("prev", day.yesterday().unwrap_or(day).to_string())
        .with("next", day.tomorrow().unwrap_or(day).to_string())
        .with("is_today", day == today)
        .with("groups", groups)
        .with("searched", query.is_some())
        .with("q", query)
        .with("results", results)
        .with("notice", notice)
        .with("refusal", refused)
        .with("specialties", specialties(&state))
        .with("book_date", day.max(today).to_string());
    Ok(state.console.render(view))
}

/// The day's appointments under each professional, in the clinic's order: everyone who
/// works that day or has an appointment on it (a professional no longer in clinic.yaml too).
fn per_professional(state: &AppState, day: Date, appointments: &[Appointment], lang: Lang, today: Date) -> Vec<Value> {
    let bot = state.service.bot();
    let mut order: Vec<(String, Vec<String>, bool)> = Vec::new();
    for s in &bot.clinic.specialties {
        for p in &s.professionals {
            let works = !crate::actions::slots::grid(&bot.clinic, p, day).is_empty();
            match order.iter_mut().find(|(n, ..)| *n == p.name) {
                Some((_, specs, w)) => {
                    specs.push(s.name.clone());
                    *w |= works;
                }
                None => order.push((p.name.clone(), vec![s.name.clone()], works)),
            }
        }
    }
    for a in appointments {
        if !order.iter().any(|(n, ..)| *n == a.professional) {
            order.push((a.professional.clone(), vec![a.specialty.clone()], false));
        }
    }
    order
        .into_iter()
        .filter_map(|(name, specs, works)| {
            let items: Vec<Value> = appointments
                .iter()
                .filter(|a| a.professional == name)
                .map(|a| appointment_view(a, lang, today))
                .collect();
            (works || !items.is_empty())
                .then(|| json!({ "professional": name, "specialties": specs.join(", "), "items": items }))
        })
        .collect()
}

/// Ids in paths come from links: short and printable, else 404.
pub(super) fn check_id(id: &str) -> poem::Result<()> {
    if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(poem::Error::from_status(poem::http::StatusCode::NOT_FOUND));
    }
    Ok(())
}

/// Back to the agenda of `day`, saying what happened.
pub(super) fn back(day: Date, done: Result<&str, &str>) -> Response {
    let tail = match done {
        Ok(d) => format!("done={}", enc(d)),
        Err(r) => format!("refused={}", enc(r)),
    };
    Redirect::see_other(format!("/console/agenda?date={day}&{tail}")).into_response()
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(super) async fn cancel(
    state: State<'_>,
    req: &Request,
    staff: Staff,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.csrf)?;
    check_id(&id)?;
    let now = now(&state);
    let Some(a) = state.service.store.get_appointment(&id).await.map_err(internal)? else {
        return Ok(back(now.date(), Err("not_found")));
    };
    let lang = super::lang_of(&state, req);
    let session = console_session(lang, "console", "");
    let result = perform(
        &state,
        &session,
        &now,
        ActionName::CancelAppointment,
        json!({ "id": a.id }),
    )
    .await?;
    tracing::info!(by = %staff.name, ok = refusal(&result).is_none(), "agenda: cancel");
    Ok(back(a.date, refusal(&result).map_or(Ok("cancelled"), Err)))
}

#[derive(Deserialize)]
pub(super) struct MarkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

#[handler]
pub(super) async fn mark(
    state: State<'_>,
    staff: Staff,
    id: Path<String>,
    form: Form<MarkForm>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.csrf)?;
    check_id(&id)?;
    let Some(attendance) = Attendance::parse(&form.status) else {
        return Err(poem::Error::from_string(
            "status is attended or no_show",
            poem::http::StatusCode::UNPROCESSABLE_ENTITY,
        ));
    };
    let now = now(&state);
    let day = match state.service.store.get_appointment(&id).await.map_err(internal)? {
        Some(a) => a.date,
        None => now.date(),
    };
    let marked = state
        .service
        .mark_attendance(&id, attendance, &staff.name, &now)
        .await
        .map_err(internal)?;
    Ok(back(day, marked.map(|_| "marked").map_err(|r| r.code())))
}
