//! The integrator HTTP API (poem + poem-openapi). Handlers are thin: they check input, call
//! the same `Service`, store and action functions the conversations use, and map the result
//! to JSON. Every error is `{error, message}` JSON (see `error.rs`).
//!
//! `app(state)` is the whole HTTP surface (tests call it in process); `run` serves it on a
//! listener until a shutdown signal, letting requests in flight finish.

mod appointments;
pub mod auth;
mod conversations;
pub mod error;
mod escalations;
mod flows;
mod ops;
mod patients;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::TcpAcceptor;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Request, Response, Route, Server};
use poem_openapi::{OpenApiService, Tags};

use crate::channels::twilio::TwilioConfig;
use crate::channels::twilio::media::Transcriber;
use crate::outbound::{Sender, TurnLogOnly};
use crate::reload::Reloader;
use crate::service::Service;

pub use auth::ApiKeys;
pub use error::{ApiError, ErrorBody};
pub use ops::{install_metrics, metrics_app};

/// Largest request body accepted. A patient's message over 4,000 characters gets a polite
/// "write it shorter", so a pasted 100,000-character text (up to 4 bytes a character, JSON- or
/// form-escaped) must still be read; 1 MiB allows that without letting a client make us
/// buffer more.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long `run` waits for requests in flight after the shutdown signal.
pub const GRACE: Duration = Duration::from_secs(30);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub reloader: Arc<Reloader>,
    /// Delivers staff replies on the patient's channel.
    pub sender: Arc<dyn Sender>,
    pub keys: ApiKeys,
    /// The clinic this state serves (`main` for the clinic at the top of the folder).
    pub clinic: crate::clinics::Slug,
    /// Set on the state /metrics is served with: it counts every clinic, so its key must
    /// cover all of these.
    pub every_clinic: Option<Arc<Vec<crate::clinics::Slug>>>,
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
    inflight: Arc<tokio::sync::RwLock<()>>,
    /// MessageSids of voice notes being downloaded or transcribed: Twilio's retry of one gets
    /// an empty answer (the first delivers the reply) instead of a second download.
    pub(crate) media_inflight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
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
        self.clinic = clinic;
        self
    }

    /// What a presented key may do here: on this clinic, or (for /metrics) on every clinic.
    pub fn grant(&self, token: &str) -> auth::Grant {
        match &self.every_clinic {
            Some(all) => self.keys.role_on_all(token, all.iter()),
            None => self.keys.grant(token, &self.clinic),
        }
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

    /// Keeps `run` from returning until the guard is dropped: a turn that outlives its
    /// request (a slow Twilio turn answered later) holds one.
    pub(crate) async fn hold_inflight(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.inflight.clone().read_owned().await
    }
}

#[derive(Tags)]
enum Tag {
    /// Talk to the assistant as a patient would.
    Conversations,
    /// Availability and appointments, with the same rules the flows use.
    Appointments,
    /// Reminders scheduled for appointments.
    Reminders,
    /// Conversations handed over to staff.
    Escalations,
    /// One patient's personal data: export, erase, audit log (staff).
    Patients,
    /// The flows in force and their hot reload.
    Flows,
    /// Health, readiness and metrics.
    Ops,
}

type Apis = (
    conversations::Api,
    appointments::Api,
    escalations::Api,
    patients::Api,
    flows::Api,
    ops::Api,
);

fn openapi() -> OpenApiService<Apis, ()> {
    let apis = (
        conversations::Api,
        appointments::Api,
        escalations::Api,
        patients::Api,
        flows::Api,
        ops::Api,
    );
    OpenApiService::new(apis, "clinicflow", env!("CARGO_PKG_VERSION")).description(
        "The integrator API of clinicflow, a conversation engine for medical clinics. \
         Everything under /v1, and /metrics, needs `Authorization: Bearer <key>` when the \
         server has keys (CLINICFLOW_API_KEYS); each operation lists the roles whose keys it \
         accepts (admin, staff, integrator, metrics). A key of another role gets 403. Errors \
         are JSON `{error, message}`.",
    )
}

/// The OpenAPI document (committed as docs/openapi.json).
pub fn spec() -> String {
    openapi().spec()
}

/// The whole HTTP surface: /v1, ops endpoints, /openapi.json and /docs (Swagger UI).
pub fn app(state: AppState) -> impl Endpoint<Output = Response> + 'static {
    // Metrics recorded before the first scrape must not be lost: install now.
    ops::install_metrics();
    let api = openapi();
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .nest_no_strip("/twilio", crate::channels::twilio::routes::routes())
        .nest_no_strip("/calendars", crate::calendars::routes::routes())
        .nest("/console", crate::console::routes())
        .nest("/web", crate::console::widget::routes())
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .around(limit_body)
        .data(state)
        .catch_all_error(|err| async move { error::from_poem(err) })
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then stops accepting, lets
/// requests in flight finish (up to [`GRACE`]) and waits for every turn to be committed.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let inflight = state.inflight.clone();
    // Dropped when `run` returns, which stops the upkeep task below.
    let (stop_upkeep, mut stopped) = tokio::sync::watch::channel(());
    if let Some(handle) = ops::install_metrics() {
        // Histograms are kept in per-thread buckets until upkeep folds them in; do it in the
        // background so memory stays flat between scrapes.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
                }
            }
        });
    }
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    let result = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state).into_endpoint(), shutdown, Some(GRACE))
        .await;
    // A turn keeps running when its client hangs up; wait for those too.
    if tokio::time::timeout(GRACE, inflight.write()).await.is_err() {
        tracing::warn!("some turns were still running when the grace period ended");
    }
    drop(stop_upkeep);
    result
}

/// Refuses bodies over [`MAX_BODY`] with 413 whether or not they announce their length, and
/// hands the handlers an in-memory body.
async fn limit_body<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let too_large = || ApiError::TooLarge(format!("the request body is over the limit of {MAX_BODY} bytes"));
    let announced = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large().into());
    }
    let body = req.take_body();
    if body.is_empty() {
        // An empty POST (`curl -X POST …/resolve`) is an empty JSON body, whose fields are
        // all optional or reported missing by name, rather than a content-type error.
        if !req.headers().contains_key(poem::http::header::CONTENT_TYPE) {
            req.headers_mut().insert(
                poem::http::header::CONTENT_TYPE,
                poem::http::HeaderValue::from_static("application/json"),
            );
        }
    } else {
        match body.into_bytes_limit(MAX_BODY).await {
            Ok(bytes) => req.set_body(bytes),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Err(too_large().into()),
            Err(e) => return Err(ApiError::bad_request(format!("cannot read the request body: {e}")).into()),
        }
    }
    next.call(req).await.map(poem::IntoResponse::into_response)
}

/// The time a request runs at: the clinic's clock, or the pinned clinic-local time a test
/// server accepts.
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

/// Ids in paths are the caller's: keep them short and printable.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "a {what} id is 1 to 200 printable characters"
        )));
    }
    Ok(())
}

/// Channel names label conversations and pick the sender for staff replies: keep them tame.
pub(crate) fn check_channel(channel: &str) -> Result<(), ApiError> {
    let tame = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if channel.is_empty() || channel.len() > 32 || !channel.chars().all(tame) {
        return Err(ApiError::bad_request(
            "`channel` is 1 to 32 letters, digits, `-` or `_`",
        ));
    }
    Ok(())
}

/// Page sizes: default 100, at most 1000.
pub(crate) fn limit(requested: Option<u32>) -> Result<usize, ApiError> {
    match requested {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n as usize),
        Some(_) => Err(ApiError::bad_request("`limit` is between 1 and 1000")),
    }
}
