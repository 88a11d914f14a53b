//! `book_appointment {specialty, date, time, professional?, patient_name, document, coverage?, email?}`
//!
//! → `{ ok: true, appointment: {id, specialty, professional, date, time, minutes,
//! patient_name, document, coverage, status} }`, or `{ ok: false, reason, alternatives }` with
//! reason `missing_<field>`, `invalid_date`, `invalid_time`, `invalid_email`, `unknown_specialty`,
//! `unknown_professional`, `past`, `closed`, `no_slots`, `outside_hours`, `taken` (also when the
//! professional's external calendar refused it) or `calendar_unavailable` (docs/calendars.md).
//!
//! Without a professional the first free one of the specialty is taken. The database's
//! unique slot index settles races: a booking that loses one moves on to the next free
//! professional, and answers `taken` when there is none. `email` (optional; `invalid_email`
//! when it is not an address) is kept, encrypted, on the appointment: the service emails the
//! confirmation and reminders to it (src/email.rs), and it goes to the professional's
//! external calendar (Calendly and Cal.com need an attendee email), when there is one.

use crate::flow::actions::Refusal;
use serde_json::{Value, json};

use super::args::{Arg, Args, appointment_json, normalize_document, refuse, refuse_with, text};
use super::find_availability::{Verdict, judge, professionals_arg, specialty_arg};
use super::slots::{Finder, MAX_ALTERNATIVES, alts_json, starts_at};
use super::{ActionContext, ActionError};
use crate::store::{NewAppointment, Slot, StoreError};

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Value, ActionError> {
    if text(args, "specialty").is_none() {
        return Ok(refuse(Refusal::MissingSpecialty));
    }
    let date = match super::args::date(args, "date") {
        Arg::Ok(d) => d,
        Arg::Missing => return Ok(refuse(Refusal::MissingDate)),
        Arg::Invalid => return Ok(refuse(Refusal::InvalidDate)),
    };
    let time = match super::args::time(args, "time") {
        Arg::Ok(t) => t,
        Arg::Missing => return Ok(refuse(Refusal::MissingTime)),
        Arg::Invalid => return Ok(refuse(Refusal::InvalidTime)),
    };
    let Some(patient_name) = text(args, "patient_name") else {
        return Ok(refuse(Refusal::MissingPatientName));
    };
    let document = text(args, "document")
        .map(|d| normalize_document(&d))
        .unwrap_or_default();
    if document.is_empty() {
        return Ok(refuse(Refusal::MissingDocument));
    }
    // Optional; a wrong one is refused rather than dropped, so the patient can correct it.
    let email = text(args, "email")
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    if email.as_deref().is_some_and(|e| !crate::email::valid_address(e)) {
        return Ok(refuse(Refusal::InvalidEmail));
    }
    let specialty = match specialty_arg(ctx.clinic, args) {
        Ok(s) => s,
        Err(refusal) => return Ok(strip_availability(refusal)),
    };
    let pros = match professionals_arg(specialty, args, None) {
        Ok(p) => p,
        Err(refusal) => return Ok(strip_availability(refusal)),
    };
    let now = ctx.local_now();
    let finder = Finder::load(ctx.store, ctx.clinic, pros, now.timestamp(), date.max(now.date()), None).await?;
    let mut finder = match finder.with_calendars().await {
        Ok(f) => f,
        Err(e) => {
            return Ok(refuse_with(
                crate::calendars::unavailable(&e),
                json!({ "alternatives": [] }),
            ));
        }
    };
    let free = match judge(&finder, date, time) {
        Verdict::Free(free) => free,
        Verdict::Refused(reason) => {
            let alternatives = finder.alternatives(date, Some(time), MAX_ALTERNATIVES);
            return Ok(refuse_with(reason, json!({ "alternatives": alts_json(&alternatives) })));
        }
    };
    let Some(at) = starts_at(ctx.clinic, date, time) else {
        return Ok(refuse(Refusal::InvalidDate));
    };
    let coverage = text(args, "coverage");
    // Why the professional's calendar did not take the booking, when it did not.
    let mut refused = None;
    for prof in free {
        let new = NewAppointment {
            specialty: specialty.name.clone(),
            slot: Slot {
                professional: prof.name.clone(),
                date,
                time,
                starts_at: at,
                minutes: ctx.clinic.appointment_minutes,
            },
            patient_name: patient_name.clone(),
            document: document.clone(),
            coverage: coverage.clone(),
            email: email.clone(),
            channel: ctx.session.channel.clone(),
            user: ctx.session.user.clone(),
            session: ctx.session.id.clone(),
            created_at: now.timestamp(),
        };
        match ctx.store.create_appointment(&new).await {
            Ok(a) => match crate::calendars::after_booking(ctx, &a, email.as_deref()).await {
                Ok(()) => return Ok(json!({ "ok": true, "appointment": appointment_json(&a) })),
                // Never confirmed to anyone: gone as if it had not been tried.
                Err(e) => {
                    ctx.store.forget_appointment(&a.id).await?;
                    finder.exclude(&prof.name, date, time);
                    refused = Some(e);
                    continue;
                }
            },
            // Someone booked it since we looked: try the next professional.
            Err(StoreError::SlotTaken) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Reload: the slots we just lost are booked now and must not be offered.
    let reloaded = Finder::load(
        ctx.store,
        ctx.clinic,
        finder.pros.clone(),
        now.timestamp(),
        finder.from,
        None,
    )
    .await?;
    let alternatives = match (&refused, reloaded.with_calendars().await) {
        (None, Ok(f)) => f.alternatives(date, Some(time), MAX_ALTERNATIVES),
        // The calendar that refused (or is down) keeps what we learnt from it.
        _ => finder.alternatives(date, Some(time), MAX_ALTERNATIVES),
    };
    let reason = refused.as_ref().map_or(Refusal::Taken, crate::calendars::refusal);
    Ok(refuse_with(reason, json!({ "alternatives": alts_json(&alternatives) })))
}

/// Refusals shared with find_availability carry `available`, which means nothing here.
fn strip_availability(mut refusal: Value) -> Value {
    if let Some(map) = refusal.as_object_mut() {
        map.remove("available");
    }
    refusal
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
