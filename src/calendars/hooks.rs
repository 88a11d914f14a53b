//! What the appointment actions call: the calendars' view of a range (for the free-slot
//! finder), and the calendar side of a booking, a cancellation, a move and an erasure.
//!
//! Order matters for consistency. The database's unique slot index is taken first (the
//! action has already written the appointment); the event is created after, verified, and
//! linked; any failure undoes the calendar side here and the action undoes its own write, so
//! the patient is never told "booked" for a time the calendar does not hold.

use crate::flow::actions::Refusal;
use std::collections::HashMap;
use std::sync::Arc;

use jiff::civil::Date;

use super::{Availability, Booking, CalendarError, ExternalEvent, Provider};
use crate::actions::ActionContext;
use crate::flow::clinic::{Clinic, Professional};
use crate::store::{Appointment, AppointmentFilter, AppointmentStatus, Store};

/// What the calendars of `pros` say about the days `from..=to` (clinic-local), from `now`
/// on. No calendar configured: nothing is asked and the map is empty.
pub(crate) async fn load_external(
    clinic: &Clinic,
    pros: &[&Professional],
    (from, to): (Date, Date),
    now: jiff::Timestamp,
) -> Result<HashMap<String, Availability>, CalendarError> {
    let mut out = HashMap::new();
    if clinic.calendars.is_empty() {
        return Ok(out);
    }
    let day_start = |d: Date| d.to_zoned(clinic.tz.clone()).ok().map(|z| z.timestamp());
    let (Some(start), Some(end)) = (day_start(from), to.tomorrow().ok().and_then(day_start)) else {
        return Ok(out);
    };
    let start = start.max(now);
    if start >= end {
        return Ok(out);
    }
    let mut asked: Vec<(&Arc<dyn Provider>, Availability)> = Vec::new();
    for pro in pros {
        let Some(provider) = clinic.calendars.of(&pro.name) else {
            continue;
        };
        let availability = match asked.iter().find(|(p, _)| Arc::ptr_eq(p, provider)) {
            Some((_, a)) => a.clone(),
            None => {
                let a = provider.availability(start, end).await?;
                asked.push((provider, a.clone()));
                a
            }
        };
        out.insert(pro.name.clone(), availability);
    }
    Ok(out)
}

/// What was written to the calendar for the stored appointment `a` (its own email).
pub(crate) fn booking_of(clinic: &Clinic, a: &Appointment) -> Booking {
    booking(clinic, a, a.email.as_deref())
}

/// What is written to the calendar for `a`.
fn booking(clinic: &Clinic, a: &Appointment, email: Option<&str>) -> Booking {
    let end = a
        .starts_at
        .checked_add(jiff::SignedDuration::from_mins(i64::from(a.minutes)))
        .unwrap_or(a.starts_at);
    Booking {
        appointment_id: a.id.clone(),
        start: a.starts_at,
        end,
        tz: clinic.tz_name.clone(),
        summary: format!("{} — {}", a.specialty, a.patient_name),
        description: format!(
            "{} con {}. Turno reservado por el asistente de {} (turno {}).",
            a.specialty, a.professional, clinic.name, a.id
        ),
        patient_name: a.patient_name.clone(),
        email: email.map(str::to_string).or_else(|| clinic.email.clone()),
    }
}

/// Creates, verifies and links the event of a just-booked appointment. On `Err` the
/// calendar holds nothing for it and the caller removes the appointment.
pub(crate) async fn after_booking(
    ctx: &ActionContext<'_>,
    a: &Appointment,
    email: Option<&str>,
) -> Result<(), CalendarError> {
    let Some(provider) = ctx.clinic.calendars.of(&a.professional) else {
        return Ok(());
    };
    let booking = booking(ctx.clinic, a, email);
    let result = create_verified(ctx.store, provider.as_ref(), a, &booking).await;
    if let Err(e) = &result {
        tracing::warn!(
            provider = provider.kind().as_str(),
            "a booking was not confirmed by its calendar: {e}"
        );
        if matches!(e, CalendarError::Unavailable(_)) {
            // It may have been created all the same (a lost answer): look and remove it.
            provider.forget(&booking).await;
        }
    }
    result
}

async fn create_verified(
    store: &Store,
    provider: &dyn Provider,
    a: &Appointment,
    booking: &Booking,
) -> Result<(), CalendarError> {
    let event = provider.create(booking).await?;
    let undo = |why: CalendarError| async {
        if let Err(e) = provider.cancel(&event).await {
            tracing::warn!("could not remove an event its booking gave up: {e}");
        }
        Err(why)
    };
    match provider.verify(&event, booking).await {
        Ok(true) => {}
        Ok(false) => return undo(CalendarError::Refused("another event holds that time".into())).await,
        Err(e) => return undo(e).await,
    }
    if let Err(e) = store.link_event(&a.id, &event).await {
        return undo(CalendarError::Unavailable(format!("recording the event: {e}"))).await;
    }
    Ok(())
}

/// Removes the event of a cancelled appointment. The cancellation stands either way; a
/// calendar that cannot be reached leaves the event there (logged; staff see it).
pub(crate) async fn after_cancel(store: &Store, clinic: &Clinic, a: &Appointment) {
    let Some(provider) = clinic.calendars.of(&a.professional) else {
        return;
    };
    let event = match store.event_of(&a.id).await {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("could not read the calendar event of a cancelled appointment: {e}");
            return;
        }
    };
    match provider.cancel(&event).await {
        Ok(()) => {
            if let Err(e) = store.unlink_event(&a.id).await {
                tracing::warn!("could not forget a removed calendar event: {e}");
            }
        }
        Err(e) => {
            tracing::warn!(
                provider = provider.kind().as_str(),
                "the event of a cancelled appointment is still in the calendar; retried later: {e}"
            );
            if let Err(e) = store.mark_cancel_pending(&a.id).await {
                tracing::warn!("could not record a calendar cancellation to retry: {e}");
            }
        }
    }
}

/// The provider in force that holds `event` (none when that calendar is no longer configured).
fn provider_of<'c>(clinic: &'c Clinic, event: &ExternalEvent) -> Option<&'c Arc<dyn Provider>> {
    clinic
        .calendars
        .providers()
        .find(|p| p.kind() == event.provider && p.calendar() == event.calendar)
}

/// Before a patient's data is erased: the external events of their appointments still to
/// come (booked, starting after `now`). Past events are the clinic's record of visits held.
pub async fn events_of_patient(
    store: &Store,
    document: &str,
    now: jiff::Timestamp,
) -> Result<Vec<ExternalEvent>, crate::store::StoreError> {
    let filter = AppointmentFilter {
        document: Some(document.to_string()),
        status: Some(AppointmentStatus::Booked),
        starts_after: Some(now),
        ..Default::default()
    };
    let mut events = Vec::new();
    for a in store.list_appointments(&filter).await? {
        events.extend(store.event_of(&a.id).await?);
    }
    Ok(events)
}

/// After a patient's data was erased: deletes (Google) or cancels (Calendly, Cal.com) the
/// events [`events_of_patient`] found, best effort. Returns (removed, left): an event left
/// (its calendar was down, or is no longer configured) is for staff to remove; the counts
/// are logged, nothing about the patient.
pub async fn remove_events(clinic: &Clinic, events: &[ExternalEvent]) -> (usize, usize) {
    let mut removed = 0;
    for event in events {
        let Some(provider) = provider_of(clinic, event) else {
            continue;
        };
        match provider.cancel(event).await {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(
                provider = provider.kind().as_str(),
                "an erased patient's calendar event could not be removed: {e}"
            ),
        }
    }
    let left = events.len() - removed;
    if !events.is_empty() {
        tracing::info!(removed, left, "calendar events of an erased patient");
    }
    (removed, left)
}

/// Retries removing the events of cancelled appointments their calendars did not take at the
/// time (see [`after_cancel`]). Returns how many were removed.
pub async fn retry_cancellations(store: &Store, clinic: &Clinic) -> Result<usize, crate::store::StoreError> {
    let mut done = 0;
    for (appointment, event) in store.pending_cancellations(50).await? {
        let Some(provider) = provider_of(clinic, &event) else {
            // That calendar is no longer configured: nothing left to tell.
            store.unlink_event(&appointment).await?;
            continue;
        };
        if provider.cancel(&event).await.is_ok() {
            store.unlink_event(&appointment).await?;
            done += 1;
        }
    }
    Ok(done)
}

/// The calendar side of a move from `old` to `new` (the same appointment, already moved in
/// the database). On `Err` the calendar is as it was and the caller moves the appointment
/// back.
pub(crate) async fn after_move(
    ctx: &ActionContext<'_>,
    old: &Appointment,
    new: &Appointment,
) -> Result<(), CalendarError> {
    let calendars = &ctx.clinic.calendars;
    let (from, to) = (calendars.of(&old.professional), calendars.of(&new.professional));
    if from.is_none() && to.is_none() {
        return Ok(());
    }
    let linked = ctx
        .store
        .event_of(&old.id)
        .await
        .map_err(|e| CalendarError::Unavailable(format!("reading the calendar event: {e}")))?;
    let booking = booking(ctx.clinic, new, None);
    match (from, to, linked) {
        // Same calendar: move the event, and put it back if something else is there.
        (Some(f), Some(t), Some(event)) if Arc::ptr_eq(f, t) => {
            let moved = t.reschedule(&event, &booking).await?;
            if !t.verify(&moved, &booking).await.unwrap_or(false) {
                let back = self::booking(ctx.clinic, old, None);
                if let Err(e) = t.reschedule(&moved, &back).await {
                    tracing::warn!("could not put a calendar event back after a refused move: {e}");
                }
                return Err(CalendarError::Refused("another event holds that time".into()));
            }
            ctx.store
                .link_event(&new.id, &moved)
                .await
                .map_err(|e| CalendarError::Unavailable(format!("recording the event: {e}")))
        }
        // Another calendar (or none before): create there first, then remove the old one.
        (_, to, linked) => {
            if let Some(t) = to {
                create_verified(ctx.store, t.as_ref(), new, &booking).await?;
            } else if let Err(e) = ctx.store.unlink_event(&old.id).await {
                tracing::warn!("could not forget a calendar event: {e}");
            }
            if let (Some(f), Some(event)) = (from, linked)
                && let Err(e) = f.cancel(&event).await
            {
                tracing::warn!("the old event of a moved appointment is still in its calendar: {e}");
            }
            Ok(())
        }
    }
}

/// The reason an action answers when a calendar cannot be asked (logged here, once).
pub(crate) fn unavailable(e: &CalendarError) -> Refusal {
    tracing::warn!("calendar not available for an availability search: {e}");
    Refusal::CalendarUnavailable
}

/// The reason an action answers when a calendar did not take a booking or a move: `taken`
/// when it said no (something else is there), `calendar_unavailable` when it did not answer.
pub(crate) fn refusal(e: &CalendarError) -> Refusal {
    match e {
        CalendarError::Refused(_) => Refusal::Taken,
        CalendarError::Unavailable(_) => Refusal::CalendarUnavailable,
    }
}
