//! Changes made in the calendar (staff cancelled or moved an event) applied to clinicflow:
//! the appointment and its reminders change in one transaction (the store's cancel and
//! reschedule), and the patient is told on their channel through `Service::send` (and by
//! email, when they gave an address).
//!
//! Google: [`sync_google`] reads the calendar's change feed (events.list with a sync token)
//! every `poll_seconds` ([`spawn`]) and at once when a push notification arrives
//! (`/calendars/google/notify`). Calendly: its webhooks (see `routes`).
//! Only events clinicflow linked to an appointment act on one; staff's own events only make
//! their time busy, which availability sees on its next search.

use std::sync::Arc;

use jiff::{Timestamp, Zoned};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::google::{Google, ListError};
use super::{CalendarError, ProviderKind};
use crate::email::EmailKind;
use crate::flow::templates::format_date;
use crate::lang::Lang;
use crate::outbound::{Outbound, OutboundKind, Sender};
use crate::service::Service;
use crate::store::time::fmt_hhmm;
use crate::store::{Appointment, AppointmentStatus, Slot, StoreError};

/// Why a sync pass failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happened to an appointment because of its calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Cancelled,
    Moved,
}

/// The appointment `id` was cancelled in its calendar: cancel it (and its reminders) and
/// tell the patient. Nothing happens when it is no longer booked (our own cancellation
/// coming back, or a repeated notification).
pub async fn cancelled_outside(
    service: &Service,
    sender: &dyn Sender,
    id: &str,
    now: &Zoned,
) -> Result<Option<Applied>, StoreError> {
    let Some(a) = service.store.cancel_appointment(id, now.timestamp()).await? else {
        return Ok(None);
    };
    service.store.unlink_event(id).await?;
    tell(service, sender, &a, Applied::Cancelled, now).await;
    service.email_patient(EmailKind::Cancelled, &a, None, now).await;
    Ok(Some(Applied::Cancelled))
}

/// The event of appointment `id` now starts at `start`: move the appointment (its reminders
/// follow) and tell the patient. A move onto a slot clinicflow has booked for someone else
/// is not applied (logged): the calendar and clinicflow then disagree until staff fix it.
pub async fn moved_outside(
    service: &Service,
    sender: &dyn Sender,
    id: &str,
    start: Timestamp,
    now: &Zoned,
) -> Result<Option<Applied>, StoreError> {
    let Some(a) = service.store.get_appointment(id).await? else {
        return Ok(None);
    };
    if a.status != AppointmentStatus::Booked || a.starts_at == start {
        return Ok(None);
    }
    let local = start.to_zoned(service.bot().clinic.tz.clone());
    let slot = Slot {
        professional: a.professional.clone(),
        date: local.date(),
        time: local.time(),
        starts_at: start,
        minutes: a.minutes,
    };
    match service.store.reschedule_appointment(id, &slot, now.timestamp()).await {
        Ok(Some(moved)) => {
            tell(service, sender, &moved, Applied::Moved, now).await;
            let previous = crate::service::previous_of(&a);
            service
                .email_patient(EmailKind::Rescheduled, &moved, Some(&previous), now)
                .await;
            Ok(Some(Applied::Moved))
        }
        Ok(None) => Ok(None),
        Err(StoreError::SlotTaken) => {
            tracing::warn!("an event was moved in the calendar onto a time booked for another patient; not applied");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// What the patient is told.
fn notice(a: &Appointment, what: Applied, lang: Lang) -> String {
    let date = format_date(a.date, lang);
    let time = fmt_hhmm(a.time);
    match (what, lang) {
        (Applied::Cancelled, Lang::Es) => format!(
            "Le avisamos que la clínica canceló su turno de {} con {} del {date} a las {time}. Si quiere otro, escríbame y lo buscamos.",
            a.specialty, a.professional
        ),
        (Applied::Cancelled, Lang::En) => format!(
            "The clinic has cancelled your {} appointment with {} on {date} at {time}. If you would like another one, write to me and we will find it.",
            a.specialty, a.professional
        ),
        (Applied::Moved, Lang::Es) => format!(
            "Le avisamos que la clínica cambió su turno de {} con {}: ahora es el {date} a las {time}. Si no le queda bien, escríbame y lo cambiamos.",
            a.specialty, a.professional
        ),
        (Applied::Moved, Lang::En) => format!(
            "The clinic has moved your {} appointment with {}: it is now on {date} at {time}. If that does not suit you, write to me and we will change it.",
            a.specialty, a.professional
        ),
    }
}

/// Tells the patient on the channel they booked from, in their conversation's language,
/// through the outbox. A failure is logged: the appointment has changed either way.
async fn tell(service: &Service, sender: &dyn Sender, a: &Appointment, what: Applied, now: &Zoned) {
    let lang = service.lang_of(&a.session).await;
    let msg = Outbound {
        session: a.session.clone(),
        channel: a.channel.clone(),
        user: a.user.clone(),
        text: notice(a, what, lang),
        kind: OutboundKind::Calendar,
        appointment: Some(crate::actions::appointment_value(a)),
        template: None,
        by: None,
    };
    // Through the outbox: a channel down now is retried by the outbox worker.
    match service.send(sender, &msg, now).await {
        Ok(crate::service::Delivery::Sent | crate::service::Delivery::Queued) => {}
        Ok(crate::service::Delivery::Refused) => tracing::warn!(
            session = %crate::service::redact(&a.session),
            "the channel refused the calendar change notice"
        ),
        Err(e) => {
            tracing::warn!(session = %crate::service::redact(&a.session), "calendar change notice not stored: {e}")
        }
    }
}

/// The key of a Google calendar's sync token.
fn token_key(google: &Google) -> String {
    format!("google|{}", google.spec().calendar_id)
}

/// Reads what changed in a Google calendar since the last pass and applies it. Returns what
/// was applied. The first pass (no token yet) reads the future events once.
pub async fn sync_google(
    service: &Service,
    sender: &dyn Sender,
    google: &Google,
    now: &Zoned,
) -> Result<Vec<Applied>, SyncError> {
    let key = token_key(google);
    let token = service.store.sync_token(&key).await?;
    let changes = match google.changes(token.as_deref(), now.timestamp()).await {
        Ok(c) => c,
        // The token expired (Google keeps them for a while): read everything again.
        Err(ListError::Gone) => {
            service.store.set_sync_token(&key, None).await?;
            google
                .changes(None, now.timestamp())
                .await
                .map_err(CalendarError::from)?
        }
        Err(ListError::Calendar(e)) => return Err(e.into()),
    };
    let mut applied = Vec::new();
    for event in &changes.events {
        let id = match &event.appointment {
            Some(id) => Some(id.clone()),
            None => {
                service
                    .store
                    .appointment_of_event(ProviderKind::Google, &event.id)
                    .await?
            }
        };
        let Some(id) = id else { continue };
        // Only the event linked to the appointment speaks for it (not a leftover of a
        // booking that was undone).
        match service.store.event_of(&id).await? {
            Some(linked) if linked.provider == ProviderKind::Google && linked.id == event.id => {}
            _ => continue,
        }
        let done = if event.cancelled {
            cancelled_outside(service, sender, &id, now).await?
        } else if let Some(start) = event.start {
            moved_outside(service, sender, &id, start, now).await?
        } else {
            None
        };
        applied.extend(done);
    }
    if let Some(next) = &changes.next_sync_token {
        service.store.set_sync_token(&key, Some(next)).await?;
    }
    Ok(applied)
}

/// Every Google calendar of the clinic in force, synced once; and the cancellations a
/// calendar did not take at the time, tried again.
pub async fn sync_all(service: &Service, sender: &dyn Sender, now: &Zoned) -> Vec<Applied> {
    let bot = service.bot();
    if bot.clinic.calendars.is_empty() {
        return Vec::new();
    }
    match super::retry_cancellations(&service.store, &bot.clinic).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(events = n, "calendar: events of cancelled appointments removed"),
        Err(e) => tracing::warn!("calendar: retrying cancellations failed: {e}"),
    }
    let mut applied = Vec::new();
    for provider in bot.clinic.calendars.providers() {
        let Some(google) = provider.as_google() else { continue };
        match sync_google(service, sender, google, now).await {
            Ok(a) => applied.extend(a),
            Err(e) => tracing::warn!("google calendar sync failed: {e}"),
        }
    }
    applied
}

/// Polls the Google calendars every `poll_seconds` (the shortest configured; 60 s when there
/// are none, so a reload that adds one is picked up) until `shutdown`.
pub fn spawn(service: Arc<Service>, sender: Arc<dyn Sender>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    crate::clinics::scope::spawn(async move {
        let period = |service: &Service| {
            service
                .bot()
                .clinic
                .calendars
                .providers()
                .filter_map(|p| p.as_google().map(|g| g.spec().poll))
                .min()
                .unwrap_or(std::time::Duration::from_secs(60))
        };
        let mut current = period(&service);
        let mut tick = crate::background::every(current);
        while crate::background::next_tick(&mut tick, &mut shutdown).await {
            let tz = service.bot().clinic.tz.clone();
            sync_all(&service, sender.as_ref(), &Timestamp::now().to_zoned(tz)).await;
            let wanted = period(&service);
            if wanted != current {
                current = wanted;
                tick = crate::background::every(current);
                tick.tick().await;
            }
        }
    })
}
