//! Booking and moving from the agenda: the free times come from `find_availability` (the
//! flows' own search, asked for a whole day's worth), the booking from `book_appointment`
//! and the move from `reschedule_appointment`. A refusal redraws the page with the reason
//! in words and what was typed kept.

use jiff::civil::Date;
use poem::http::StatusCode;
use poem::web::{Form, Path, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::agenda::{back, check_id, console_session, day_label, perform, reason_text, refusal};
use super::view::{field, internal, now, parse_day};
use super::{Page, Staff, State};
use crate::actions::ActionName;
use crate::lang::Lang;
use crate::server::AppState;
use crate::store::{Appointment, AppointmentStatus};

/// As many free times as one day can have in the demo clinic, and then some.
const LIMIT: u64 = 64;

/// The free times `find_availability` offers on `date` (or, when it has none, on the first
/// day after it that has some), and why none is on `date` itself when none is.
async fn free_times(
    state: &AppState,
    lang: Lang,
    specialty: &str,
    professional: Option<&str>,
    date: Date,
) -> poem::Result<(Vec<Value>, Option<&'static str>)> {
    let now = now(state);
    let session = console_session(lang, "console", "");
    let args = json!({
        "specialty": specialty, "professional": professional, "date": date.to_string(), "limit": LIMIT,
    });
    let result = perform(state, &session, &now, ActionName::FindAvailability, args).await?;
    let mut days: Vec<Value> = Vec::new();
    for alt in result["alternatives"].as_array().into_iter().flatten() {
        let (Some(d), Some(t), Some(p)) = (alt["date"].as_str(), alt["time"].as_str(), alt["professional"].as_str())
        else {
            continue;
        };
        let slot = json!({ "value": format!("{d}|{t}|{p}"), "time": t, "professional": p });
        match days.iter_mut().find(|g| g["date"] == d) {
            Some(g) => {
                if let Some(list) = g["slots"].as_array_mut() {
                    list.push(slot);
                }
            }
            None => {
                let label = parse_day(d).map(|day| day_label(day, lang)).unwrap_or_default();
                days.push(json!({ "date": d, "label": label, "slots": [slot] }));
            }
        }
    }
    // The day asked for, or else the first one after it with free times.
    days.truncate(1);
    let why = match result["reason"].as_str() {
        // The day has free times (listed): nothing to explain.
        Some("no_time") | None => None,
        Some(_) if result["ok"] == true && days.first().is_some_and(|g| g["date"] == date.to_string()) => None,
        Some(r) => Some(reason_text(lang, r)),
    };
    Ok((days, why))
}

/// A chosen slot, `date|time|professional`.
fn parse_slot(s: &str) -> Option<(Date, String, String)> {
    let mut parts = s.splitn(3, '|');
    let date = parse_day(parts.next()?)?;
    let time = parts.next()?.to_string();
    let professional = parts.next()?.to_string();
    (!professional.is_empty() && crate::flow::clinic::parse_hhmm(&time).is_some()).then_some((date, time, professional))
}

/// What the booking form holds (kept when a refusal redraws it).
#[derive(Deserialize, Serialize, Default)]
pub(super) struct BookForm {
    #[serde(default)]
    csrf: String,
    specialty: Option<String>,
    professional: Option<String>,
    date: Option<String>,
    slot: Option<String>,
    patient_name: Option<String>,
    document: Option<String>,
    phone: Option<String>,
    /// `whatsapp`, `sms` or `none`: the channel the patient's contact is on.
    notify: Option<String>,
}

/// The booking page: free times of a specialty (and professional) from a date.
async fn book_page(
    state: &AppState,
    req: &Request,
    staff: &Staff,
    form: &BookForm,
    refused: Option<&'static str>,
) -> poem::Result<Response> {
    let lang = super::lang_of(state, req);
    let today = now(state).date();
    let date = form.date.as_deref().and_then(parse_day).unwrap_or(today);
    let specialty = field(&form.specialty).unwrap_or_default();
    let professional = field(&form.professional);
    let (days, why) = if specialty.is_empty() {
        (Vec::new(), Some(reason_text(lang, "missing_specialty")))
    } else {
        free_times(state, lang, &specialty, professional.as_deref(), date).await?
    };
    let view = Page::new(state, req, "agenda_book.html")
        .staff(staff)
        .with("specialty", &specialty)
        .with("professional", &professional)
        .with("date", date.to_string())
        .with("date_label", day_label(date, lang))
        .with("days", days)
        .with("why", why)
        .with("refusal", refused.map(|c| reason_text(lang, c)))
        .with(
            "form",
            json!({
                "slot": form.slot, "patient_name": form.patient_name, "document": form.document,
                "phone": form.phone, "notify": form.notify.as_deref().unwrap_or("whatsapp"),
            }),
        );
    let mut resp = state.console.render(view);
    if let Some(code) = refused {
        resp.set_status(status_of(code));
    }
    Ok(resp)
}

/// 422 for what the form lacks, 409 for what the agenda refuses (taken, past…).
fn status_of(code: &str) -> StatusCode {
    if code.starts_with("missing_") || code.starts_with("invalid_") || matches!(code, "no_slot" | "bad_phone") {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CONFLICT
    }
}

#[handler]
pub(super) async fn book_form(
    state: State<'_>,
    req: &Request,
    staff: Staff,
    q: Query<BookForm>,
) -> poem::Result<Response> {
    book_page(&state, req, &staff, &q, None).await
}

/// The patient's contact as a conversation would have it: `whatsapp:+549…` or `+549…`
/// (so the patient can later manage the appointment from that number), or none.
fn contact(form: &BookForm) -> Result<(String, String), &'static str> {
    let Some(phone) = field(&form.phone) else {
        return Ok(("console".into(), String::new()));
    };
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let junk = phone
        .chars()
        .any(|c| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.')));
    if !(8..=15).contains(&digits.len()) || junk {
        return Err("bad_phone");
    }
    Ok(match form.notify.as_deref() {
        Some("sms") => ("sms".into(), format!("+{digits}")),
        Some("none") => ("console".into(), String::new()),
        _ => ("whatsapp".into(), format!("whatsapp:+{digits}")),
    })
}

#[handler]
pub(super) async fn book(
    state: State<'_>,
    req: &Request,
    staff: Staff,
    form: Form<BookForm>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.csrf)?;
    let form = form.0;
    let Some((date, time, professional)) = form.slot.as_deref().and_then(parse_slot) else {
        return book_page(&state, req, &staff, &form, Some("no_slot")).await;
    };
    let (channel, user) = match contact(&form) {
        Ok(c) => c,
        Err(code) => return book_page(&state, req, &staff, &form, Some(code)).await,
    };
    let lang = super::lang_of(&state, req);
    let mut session = console_session(lang, &channel, &user);
    // With a contact, the booking belongs to the patient's own conversation with the clinic's
    // number, where the reminders go and the answer to them comes back.
    if let Some(id) = patient_conversation(&state, &channel, &user) {
        session.id = id;
    }
    let now = now(&state);
    let args = json!({
        "specialty": field(&form.specialty), "professional": professional, "date": date.to_string(),
        "time": time, "patient_name": field(&form.patient_name), "document": field(&form.document),
    });
    let result = perform(&state, &session, &now, ActionName::BookAppointment, args).await?;
    tracing::info!(by = %staff.name, ok = refusal(&result).is_none(), "agenda: book");
    if let Some(code) = refusal(&result) {
        return book_page(&state, req, &staff, &form, Some(code)).await;
    }
    // The reminders a booking in a conversation gets (the flows' `schedule_reminders`), when
    // the patient can receive them.
    if session.id != "console" {
        let args = json!({ "appointment": result["appointment"]["id"] });
        let reminded = perform(&state, &session, &now, ActionName::ScheduleReminders, args).await?;
        tracing::info!(by = %staff.name, count = reminded["count"].as_u64().unwrap_or(0), "agenda: reminders");
    }
    Ok(back(date, Ok("booked")))
}

/// The conversation of `user` on `channel` with the clinic's number for that channel; None
/// without a contact or without the clinic's number (then the booking stays in `console`).
fn patient_conversation(state: &AppState, channel: &str, user: &str) -> Option<String> {
    let clinic = match channel {
        "whatsapp" => state.twilio.whatsapp_from.as_deref()?,
        "sms" => state.twilio.sms_from.as_deref()?,
        _ => return None,
    };
    Some(crate::channels::twilio::session_id(channel, user, clinic))
}

#[derive(Deserialize, Default)]
pub(super) struct MoveForm {
    #[serde(default)]
    csrf: String,
    date: Option<String>,
    slot: Option<String>,
}

/// The booked appointment `id`, or where to send the browser instead.
async fn movable(state: &AppState, id: &str) -> poem::Result<Result<Appointment, Response>> {
    check_id(id)?;
    let today = now(state).date();
    Ok(match state.service.store.get_appointment(id).await.map_err(internal)? {
        Some(a) if a.status == AppointmentStatus::Booked => Ok(a),
        Some(a) => Err(back(a.date, Err("not_found"))),
        None => Err(back(today, Err("not_found"))),
    })
}

async fn move_page(
    state: &AppState,
    req: &Request,
    staff: &Staff,
    a: &Appointment,
    form: &MoveForm,
    refused: Option<&'static str>,
) -> poem::Result<Response> {
    let lang = super::lang_of(state, req);
    let today = now(state).date();
    let date = form.date.as_deref().and_then(parse_day).unwrap_or(a.date.max(today));
    let (days, why) = free_times(state, lang, &a.specialty, None, date).await?;
    let view = Page::new(state, req, "agenda_move.html")
        .staff(staff)
        .with("a", super::agenda::appointment_view(a, lang, today))
        .with("date", date.to_string())
        .with("date_label", day_label(date, lang))
        .with("days", days)
        .with("why", why)
        .with("refusal", refused.map(|c| reason_text(lang, c)))
        .with("slot", &form.slot);
    let mut resp = state.console.render(view);
    if let Some(code) = refused {
        resp.set_status(status_of(code));
    }
    Ok(resp)
}

#[handler]
pub(super) async fn move_form(
    state: State<'_>,
    req: &Request,
    staff: Staff,
    id: Path<String>,
    q: Query<MoveForm>,
) -> poem::Result<Response> {
    match movable(&state, &id).await? {
        Ok(a) => move_page(&state, req, &staff, &a, &q, None).await,
        Err(elsewhere) => Ok(elsewhere),
    }
}

#[handler]
pub(super) async fn move_to(
    state: State<'_>,
    req: &Request,
    staff: Staff,
    id: Path<String>,
    form: Form<MoveForm>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.csrf)?;
    let a = match movable(&state, &id).await? {
        Ok(a) => a,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let Some((date, time, professional)) = form.slot.as_deref().and_then(parse_slot) else {
        return move_page(&state, req, &staff, &a, &form, Some("no_slot")).await;
    };
    let lang = super::lang_of(&state, req);
    let now = now(&state);
    let args = json!({ "id": a.id, "date": date.to_string(), "time": time, "professional": professional });
    let session = console_session(lang, "console", "");
    let result = perform(&state, &session, &now, ActionName::RescheduleAppointment, args).await?;
    tracing::info!(by = %staff.name, ok = refusal(&result).is_none(), "agenda: move");
    match refusal(&result) {
        None => Ok(Redirect::see_other(format!("/console/agenda?date={date}&done=moved")).into_response()),
        Some(code) => move_page(&state, req, &staff, &a, &form, Some(code)).await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_slot_is_a_day_a_time_and_a_professional() {
        let (d, t, p) = super::parse_slot("2026-11-24|09:30|Dr. Juan Pérez").unwrap();
        assert_eq!(
            (d.to_string(), t.as_str(), p.as_str()),
            ("2026-11-24".into(), "09:30", "Dr. Juan Pérez")
        );
        assert!(super::parse_slot("2026-11-24|9h|X").is_none());
        assert!(super::parse_slot("mañana|09:30|X").is_none());
        assert!(super::parse_slot("2026-11-24|09:30|").is_none());
    }
}
