//! The HTTP server: the state every route set shares, the body limit, the clocks, the
//! in-flight guard and `run`.
//!
//! The route sets are siblings, each mounted here with its own prefix and none owning the
//! others: the integrator API (`api::routes()`: /v1, /openapi.json, /docs), the Twilio
//! webhooks (/twilio), the calendars' webhooks (/calendars), the staff console (/console)
//! and the web chat (/web). They all take the same [`AppState`], so a channel never
//! depends on the API to reach the service.
//!
//! `state` `AppState`, its builders, the in-flight guard (`spawn_turn`, `detached`), the
//! clocks. `dispatch` which clinic's state a request gets when the server runs several.

mod dispatch;
mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::TcpAcceptor;
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route, Server};

use crate::api::{self, ApiError};
use crate::clinics::Clinics;
pub use dispatch::CalledAs;
pub(crate) use state::clock;
pub use state::{AppState, EveryClinic};

/// Largest request body accepted. A patient's message over 4,000 characters gets a polite
/// "write it shorter", so a pasted 100,000-character text (up to 4 bytes a character, JSON- or
/// form-escaped) must still be read; 1 MiB allows that without letting a client make us
/// buffer more.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long `run` waits for requests in flight after the shutdown signal.
pub const GRACE: Duration = Duration::from_secs(30);

/// Every route set, mounted side by side; the state comes from around them.
fn routes() -> Route {
    Route::new()
        .nest_no_strip("/twilio", crate::channels::twilio::routes::routes())
        .nest_no_strip("/calendars", crate::calendars::routes::routes())
        .nest("/console", crate::console::routes())
        .nest("/web", crate::console::widget::routes())
        // Everything else: the API answers, or 404s, as before there were siblings.
        .nest("/", api::routes())
}

/// The whole HTTP surface of one clinic (tests call it in process): every route set, behind
/// the body limit, with the state, and errors outside the route sets' own answered as API JSON.
pub fn app(state: AppState) -> impl Endpoint<Output = Response> + 'static {
    // Metrics recorded before the first scrape must not be lost: install now.
    api::install_metrics();
    let clinic = state.clinic.clone();
    routes()
        .around(move |next, req| {
            crate::clinics::scope::scope(clinic.clone(), async move {
                next.call(req).await.map(IntoResponse::into_response)
            })
        })
        .data(state)
        .around(limit_body)
        .catch_all_error(|err| async move { api::error::from_poem(err) })
}

/// The HTTP surface of every clinic in `clinics`: each request gets the state of the clinic
/// it is for (`dispatch`), then goes to the same route sets as [`app`].
pub fn app_clinics(clinics: Arc<Clinics>) -> impl Endpoint<Output = Response> + 'static {
    api::install_metrics();
    routes()
        .around(move |next, req| dispatch::dispatch(clinics.clone(), next, req))
        .around(limit_body)
        .catch_all_error(|err| async move { api::error::from_poem(err) })
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then stops accepting, lets
/// requests in flight finish (up to [`GRACE`]) and waits for every turn to be committed.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let inflight = state.inflight.clone();
    serve(listener, app(state), inflight, shutdown).await
}

/// [`run`] for every clinic of `clinics` ([`app_clinics`]).
pub async fn run_clinics(
    listener: tokio::net::TcpListener,
    clinics: Arc<Clinics>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let inflight = clinics.inflight.clone();
    serve(listener, app_clinics(clinics), inflight, shutdown).await
}

async fn serve(
    listener: tokio::net::TcpListener,
    app: impl Endpoint<Output = Response> + 'static,
    inflight: Arc<tokio::sync::RwLock<()>>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    // Dropped when `serve` returns, which stops the upkeep task.
    let (stop_upkeep, stopped) = tokio::sync::watch::channel(());
    metrics_upkeep(stopped);
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    let result = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app.into_endpoint(), shutdown, Some(GRACE))
        .await;
    // A turn keeps running when its client hangs up; wait for those too.
    if tokio::time::timeout(GRACE, inflight.write()).await.is_err() {
        tracing::warn!("some turns were still running when the grace period ended");
    }
    drop(stop_upkeep);
    result
}

/// Histograms are kept in per-thread buckets until upkeep folds them in; do it in the
/// background, until `stopped` changes or closes, so memory stays flat between scrapes.
fn metrics_upkeep(mut stopped: tokio::sync::watch::Receiver<()>) {
    let Some(handle) = api::install_metrics() else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
            }
        }
    });
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
