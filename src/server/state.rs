//! `AppState`: what every route set (API, Twilio, calendars, console, web chat) can reach,
//! and the in-flight guard that lets `run` wait for turns that outlive their request.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, RwLock};
use tokio::task::{JoinError, JoinHandle};

use crate::api::{ApiError, ApiKeys};
use crate::channels::twilio::TwilioConfig;
use crate::channels::twilio::media::Transcriber;
use crate::outbound::{Sender, TurnLogOnly};
use crate::reload::Reloader;
use crate::service::Service;

/// What every handler can reach. It lives in the server module, not in one of the route
/// sets, because they all take it: a channel importing it from the API would make the API
/// the owner of everyone's state.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub reloader: Arc<Reloader>,
    /// Delivers staff replies on the patient's channel.
    pub sender: Arc<dyn Sender>,
    pub keys: ApiKeys,
    /// The clinic this state serves (`main` for the clinic at the top of the folder).
    pub clinic: crate::clinics::Slug,
    /// Set on the state /metrics and /readyz are served with when the server runs several
    /// clinics: they report every one, so a metrics key must cover all of them.
    pub every_clinic: Option<Arc<EveryClinic>>,
    /// Tests only: honour the `now` field of a message (a pinned clinic-local time). `serve`
    /// leaves it false, and a `now` sent to it is refused.
    pub allow_clock_override: bool,
    /// Twilio settings: webhook verification, media downloads, latency budgets.
    pub twilio: Arc<TwilioConfig>,
    /// Turns WhatsApp voice notes into text; None: the patient is asked to write instead.
    pub transcriber: Option<Arc<dyn Transcriber>>,
    /// Tests only: the clinic-local time every Twilio webhook turn runs at (Twilio requests
    /// carry no time of their own). `serve` leaves it None.
    pub pinned_now: Option<jiff::civil::DateTime>,
    /// Message rates per sender, conversation and clinic (none unless configured: `serve`
    /// applies `CLINICFLOW_LIMIT_*` or the defaults).
    pub limits: Arc<crate::limits::RateLimits>,
    /// The staff console (accounts, sessions): mounted at /console.
    pub console: Arc<crate::console::Console>,
    /// Turns in flight hold a read guard; `run` takes the write guard after the server stops,
    /// so it returns only when every turn has been committed.
    pub(super) inflight: Arc<RwLock<()>>,
    /// MessageSids of voice notes being downloaded or transcribed: Twilio's retry of one gets
    /// an empty answer (the first delivers the reply) instead of a second download.
    pub(crate) media_inflight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Every clinic a server runs, and the ones it could not start (with the reason).
pub struct EveryClinic {
    pub running: Vec<AppState>,
    pub not_started: Vec<(crate::clinics::Slug, String)>,
}

impl AppState {
    /// No keys, no clock override, staff replies recorded in the turn log only.
    pub fn new(service: Arc<Service>, reloader: Arc<Reloader>) -> AppState {
        AppState {
            service,
            reloader,
            sender: Arc::new(TurnLogOnly),
            keys: ApiKeys::default(),
            clinic: crate::clinics::Slug::main(),
            every_clinic: None,
            allow_clock_override: false,
            twilio: Arc::new(TwilioConfig::default()),
            transcriber: None,
            pinned_now: None,
            limits: Arc::new(crate::limits::RateLimits::new(&crate::limits::LimitsConfig::off())),
            console: Arc::new(crate::console::Console::default()),
            inflight: Arc::default(),
            media_inflight: Arc::default(),
        }
    }

    pub fn with_keys(mut self, keys: ApiKeys) -> AppState {
        self.keys = keys;
        self
    }

    /// The clinic this state serves.
    pub fn with_clinic(mut self, clinic: crate::clinics::Slug) -> AppState {
        self.reloader.set_clinic(clinic.clone());
        self.clinic = clinic;
        self
    }

    /// What a presented key may do here: on this clinic, or (for /metrics) on every clinic.
    pub fn grant(&self, token: &str) -> crate::api::auth::Grant {
        match &self.every_clinic {
            Some(all) => self.keys.role_on_all(token, all.running.iter().map(|s| &s.clinic)),
            None => self.keys.grant(token, &self.clinic),
        }
    }

    /// Shares the in-flight guard of other states (every clinic of one server), so `run`
    /// waits for the turns of all of them.
    pub(crate) fn with_inflight(mut self, inflight: Arc<RwLock<()>>) -> AppState {
        self.inflight = inflight;
        self
    }

    pub fn with_sender(mut self, sender: Arc<dyn Sender>) -> AppState {
        self.sender = sender;
        self
    }

    pub fn with_clock_override(mut self, allow: bool) -> AppState {
        self.allow_clock_override = allow;
        self
    }

    pub fn with_twilio(mut self, config: TwilioConfig) -> AppState {
        self.twilio = Arc::new(config);
        self
    }

    pub fn with_transcriber(mut self, transcriber: Arc<dyn Transcriber>) -> AppState {
        self.transcriber = Some(transcriber);
        self
    }

    pub fn with_console(mut self, console: crate::console::Console) -> AppState {
        self.console = Arc::new(console);
        self
    }

    pub fn with_limits(mut self, limits: crate::limits::RateLimits) -> AppState {
        self.limits = Arc::new(limits);
        self
    }

    /// Tests only: pins the time of Twilio webhook turns (clinic-local).
    pub fn with_pinned_now(mut self, now: jiff::civil::DateTime) -> AppState {
        self.pinned_now = Some(now);
        self
    }

    /// Keeps `run` from returning until the guard is dropped.
    async fn hold_inflight(&self) -> OwnedRwLockReadGuard<()> {
        self.inflight.clone().read_owned().await
    }

    /// Spawns `work` on its own task holding an in-flight guard until `work` is done, and
    /// does not wait for it. For a turn whose request may be answered before it ends (a slow
    /// WhatsApp turn: Twilio gets an empty answer, the task delivers the replies later):
    /// `work` includes that late delivery, so `run` waits for it too.
    pub(crate) async fn spawn_turn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        let guard = self.hold_inflight().await;
        crate::clinics::scope::spawn(async move {
            let out = work.await;
            drop(guard);
            out
        })
    }

    /// Runs `work` on its own task holding an in-flight guard and waits for it: when the
    /// client hangs up (Twilio gives up after 15 s, a browser closes) the request's future is
    /// dropped, and a turn must not be cut between its effects (a booking) and its commit.
    /// Err if the task panicked.
    pub(crate) async fn detached<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, JoinError> {
        self.spawn_turn(work).await.await
    }

    /// The clinic-local time of a channel's turn (a webhook, the web chat: requests that
    /// carry no time of their own): now, or the time pinned for tests.
    pub fn now(&self) -> jiff::Zoned {
        let tz = self.service.bot().clinic.tz.clone();
        match self.pinned_now.and_then(|dt| dt.to_zoned(tz).ok()) {
            Some(z) => z,
            None => self.service.now(),
        }
    }
}

/// The time an API request runs at: the clinic's clock, or the pinned clinic-local time (the
/// request's `now`) a test server accepts.
pub(crate) fn clock(state: &AppState, pinned: Option<&str>) -> Result<jiff::Zoned, ApiError> {
    let tz = state.service.bot().clinic.tz.clone();
    let Some(s) = pinned else {
        return Ok(jiff::Zoned::now().with_time_zone(tz));
    };
    if !state.allow_clock_override {
        return Err(ApiError::bad_request(
            "`now` is only accepted by servers started for tests; leave it out",
        ));
    }
    s.trim()
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(tz).ok())
        .ok_or_else(|| ApiError::bad_request("`now` is a clinic-local date and time like 2026-11-23T10:00"))
}
