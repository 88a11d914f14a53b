//! External calendars (docs/calendars.md): a professional's (or the whole clinic's) agenda
//! kept in Google Calendar, Calendly or Cal.com.
//!
//! One trait, [`Provider`], with what the actions need: which times are taken or free in a
//! range, and create / cancel / move an event. `clinic.calendar` and a professional's
//! `calendar:` in clinic.yaml are checked once at compile ([`config`]) into [`Calendars`],
//! which the compiled `Clinic` carries (so a reload swaps them with the clinic data); without
//! any block everything behaves as before, with no network call at all.
//!
//! clinicflow's own unique slot index stays the guard against double booking: the actions
//! hold the slot in the database first, then write to the calendar, verify, and undo both
//! when the calendar refuses or does not answer in time ([`hooks`]). Changes staff make in
//! the calendar come back through [`sync`] (Google polling and push notifications, Calendly
//! webhooks) and are applied to the appointment, its reminders and the patient.

pub mod calcom;
pub mod calendly;
pub mod config;
pub mod google;
mod hooks;
mod http;
pub mod routes;
pub mod sync;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use jiff::Timestamp;

pub use config::{CalendarSpec, ProviderKind, RawCalendar};
pub(crate) use hooks::{after_booking, after_cancel, after_move, booking_of, load_external, refusal, unavailable};
pub use hooks::{events_of_patient, remove_events, retry_cancellations};

/// A boxed future, so the trait can be used as `dyn Provider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a calendar call failed. `Refused`: the calendar answered and said no (the time is
/// taken, the event type does not accept it); `Unavailable`: it did not answer usefully
/// (down, timed out, rate limited past our patience, credentials missing or rejected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("the calendar refused: {0}")]
    Refused(String),
    #[error("the calendar is unavailable: {0}")]
    Unavailable(String),
}

/// What a provider says about a range of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Busy intervals `[start, end)`; everything else is free (Google's freeBusy).
    Busy(Vec<(Timestamp, Timestamp)>),
    /// Only these start times are free (Calendly's and Cal.com's available times).
    OnlyAt(std::collections::HashSet<Timestamp>),
}

impl Availability {
    /// Whether an appointment `[start, end)` fits.
    pub fn allows(&self, start: Timestamp, end: Timestamp) -> bool {
        match self {
            Availability::Busy(busy) => !busy.iter().any(|(s, e)| *s < end && start < *e),
            Availability::OnlyAt(starts) => starts.contains(&start),
        }
    }
}

/// What is written to the calendar for one appointment. `summary` and `description` name
/// the specialty and professional; the patient's name goes only to the clinic's own calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub appointment_id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The clinic's IANA time zone: events are written in it.
    pub tz: String,
    pub summary: String,
    pub description: String,
    pub patient_name: String,
    /// The patient's email when they gave one (Calendly and Cal.com need an attendee email;
    /// the clinic's own address is used otherwise).
    pub email: Option<String>,
}

/// An event in an external calendar, as stored beside the appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalEvent {
    pub provider: ProviderKind,
    /// The calendar (Google calendar id, Calendly event type, Cal.com event type id).
    pub calendar: String,
    /// The event (Google event id, Calendly scheduled event URI, Cal.com booking uid).
    pub id: String,
}

/// One external calendar. Implementations are thin HTTP clients of the provider's public
/// API with configurable base URLs and timeouts.
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// The calendar this provider writes to (see [`ExternalEvent::calendar`]).
    fn calendar(&self) -> &str;

    /// What is free or busy in `[from, to)`.
    fn availability(&self, from: Timestamp, to: Timestamp) -> BoxFuture<'_, Result<Availability, CalendarError>>;

    /// Creates the event of a booking. Returns once the provider has confirmed it.
    fn create<'a>(&'a self, booking: &'a Booking) -> BoxFuture<'a, Result<ExternalEvent, CalendarError>>;

    /// After `create`: whether the event really holds its time alone (nothing else was put
    /// there between our availability check and the insert). Default: the provider refuses
    /// double bookings itself, so a created event is verified.
    fn verify<'a>(
        &'a self,
        _event: &'a ExternalEvent,
        _booking: &'a Booking,
    ) -> BoxFuture<'a, Result<bool, CalendarError>> {
        Box::pin(async { Ok(true) })
    }

    /// Deletes or cancels an event. An event already gone is not an error.
    fn cancel<'a>(&'a self, event: &'a ExternalEvent) -> BoxFuture<'a, Result<(), CalendarError>>;

    /// Moves an event to the booking's new times; returns the event as it is now (Cal.com
    /// gives a rescheduled booking a new uid; Calendly cannot move, so it books anew and
    /// cancels the old one).
    fn reschedule<'a>(
        &'a self,
        event: &'a ExternalEvent,
        booking: &'a Booking,
    ) -> BoxFuture<'a, Result<ExternalEvent, CalendarError>>;

    /// After a failed or timed-out `create` of `booking`: removes whatever the provider may
    /// have created for that appointment anyway (a timeout does not mean nothing happened).
    /// Best effort: Google and Cal.com find it by the appointment id stored with the event,
    /// Calendly by its time, event type, invitee email and the id in the invitee's tracking.
    fn forget<'a>(&'a self, _booking: &'a Booking) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// The Google provider, for the sync loop and the push notification webhook.
    fn as_google(&self) -> Option<&google::Google> {
        None
    }

    /// The Calendly provider, for its webhooks.
    fn as_calendly(&self) -> Option<&calendly::Calendly> {
        None
    }
}

/// The providers of one clinic, by professional. Cheap to clone; empty by default (no
/// calendars configured: today's built-in behaviour).
#[derive(Clone, Default)]
pub struct Calendars {
    by_professional: Arc<HashMap<String, Arc<dyn Provider>>>,
    all: Arc<Vec<Arc<dyn Provider>>>,
    specs: Arc<Vec<CalendarSpec>>,
}

impl std::fmt::Debug for Calendars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.by_professional.keys().collect();
        names.sort();
        f.debug_struct("Calendars").field("professionals", &names).finish()
    }
}

impl Calendars {
    /// Builds the providers: professionals with the same calendar block share one provider
    /// (one token cache, one HTTP client).
    pub fn build(specs: Vec<(String, CalendarSpec)>) -> Calendars {
        let mut made: Vec<(CalendarSpec, Arc<dyn Provider>)> = Vec::new();
        let mut by_professional = HashMap::new();
        for (professional, spec) in specs {
            let provider = match made.iter().find(|(s, _)| *s == spec) {
                Some((_, p)) => p.clone(),
                None => {
                    let p = spec.provider();
                    made.push((spec, p.clone()));
                    p
                }
            };
            by_professional.insert(professional, provider);
        }
        let (specs, all) = made.into_iter().unzip();
        Calendars {
            by_professional: Arc::new(by_professional),
            all: Arc::new(all),
            specs: Arc::new(specs),
        }
    }

    /// The environment variables the calendars need that are not set (for `serve` to warn
    /// about at start: those calendars would answer as unavailable).
    pub fn missing_secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .specs
            .iter()
            .map(CalendarSpec::required_secret)
            .filter(|var| std::env::var(var).map_or(true, |v| v.trim().is_empty()))
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The calendar of a professional, if they have one.
    pub fn of(&self, professional: &str) -> Option<&Arc<dyn Provider>> {
        self.by_professional.get(professional)
    }

    /// Every provider, once each.
    pub fn providers(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.all.iter()
    }

    /// The professionals a provider serves.
    pub fn professionals_of<'a>(&'a self, provider: &'a Arc<dyn Provider>) -> impl Iterator<Item = &'a str> + 'a {
        self.by_professional
            .iter()
            .filter(move |(_, p)| Arc::ptr_eq(p, provider))
            .map(|(name, _)| name.as_str())
    }
}
