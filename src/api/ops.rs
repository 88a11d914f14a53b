//! Health, readiness and Prometheus metrics. Not under /v1. Probes carry no key; /metrics
//! needs a metrics (or admin) key when the server has keys, or is served without one on its
//! own listen address (`CLINICFLOW_METRICS_ADDR`, see [`metrics_app`]).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::Tag;
use super::auth::MetricsKey;
use crate::server::AppState;
use crate::store::EscalationStatus;

/// Turn latency buckets, in seconds: the engine aims at ~2 ms, the LLM path at seconds.
const TURN_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// LLM call latency buckets, in seconds (calls are bounded by CLINICFLOW_LLM_TIMEOUT_MS).
const LLM_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 8.0, 15.0];

/// Installs the Prometheus recorder as the global `metrics` recorder, once per process (tests
/// start several servers in one process). `None` when another recorder was installed first:
/// metrics then go there and /metrics shows nothing.
pub fn install_metrics() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("clinicflow_turn_seconds".into()), &TURN_BUCKETS)
                .ok()?
                .set_buckets_for_metric(Matcher::Full("clinicflow_llm_latency_seconds".into()), &LLM_BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Every metric recorded for a clinic carries its `clinic` label (clinics::scope).
            match metrics::set_global_recorder(crate::clinics::scope::ClinicLabels(recorder)) {
                Ok(()) => Some(handle),
                Err(_) => {
                    tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
                    None
                }
            }
        })
        .clone()
}

#[derive(Object)]
struct Health {
    /// Always `ok`: the process answers.
    status: String,
}

#[derive(Object)]
struct Readiness {
    ready: bool,
    /// `ready`; `stale`: serving the last good version while the files on disk have
    /// problems (see `message` and GET /v1/reload); `not_ready`.
    status: String,
    /// In plain words, for a person reading the probe.
    message: String,
    /// Problems in the files on disk (0 when they are in force).
    problems: u64,
    /// The database answered a trivial query.
    database: bool,
    /// Flows in force.
    flows: u64,
    /// A server running several clinics: each one (the fields above then sum them up).
    #[oai(skip_serializing_if_is_none)]
    clinics: Option<Vec<ClinicReadiness>>,
}

#[derive(Object)]
struct ClinicReadiness {
    clinic: String,
    ready: bool,
    /// `ready`, `stale`, `not_ready`, or `not_started` (its files have problems).
    status: String,
    message: String,
    problems: u64,
    /// Its database answered (absent for a clinic that did not start).
    #[oai(skip_serializing_if_is_none)]
    database: Option<bool>,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Ready to serve conversations.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready: the database does not answer or no flows are loaded.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

pub struct Api;

#[OpenApi(tag = "Tag::Ops")]
impl Api {
    /// Liveness: the process is up.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Health> {
        Json(Health { status: "ok".into() })
    }

    /// Readiness: the database answers and flows are loaded. A server running several
    /// clinics lists each under `clinics`, and is ready when every clinic it runs is.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        let Some(all) = &state.every_clinic else {
            let body = readiness(&state).await;
            return if body.ready {
                ReadyResponse::Ready(Json(body))
            } else {
                ReadyResponse::NotReady(Json(body))
            };
        };
        let mut clinics = Vec::new();
        for s in &all.running {
            let r = readiness(s).await;
            clinics.push(ClinicReadiness {
                clinic: s.clinic.to_string(),
                ready: r.ready,
                status: r.status,
                message: r.message,
                problems: r.problems,
                database: Some(r.database),
            });
        }
        for (slug, why) in &all.not_started {
            clinics.push(ClinicReadiness {
                clinic: slug.to_string(),
                ready: false,
                status: "not_started".into(),
                message: format!("not started: {why}"),
                problems: 1,
                database: None,
            });
        }
        let serving: Vec<_> = clinics.iter().filter(|c| c.status != "not_started").collect();
        let ready = !serving.is_empty() && serving.iter().all(|c| c.ready);
        let troubled = clinics.iter().filter(|c| c.status != "ready").count();
        let (status, message) = match (ready, troubled) {
            (false, _) => ("not_ready", "a clinic cannot serve; see `clinics`".to_string()),
            (true, 0) => ("ready", format!("ready; {} clinics serving", serving.len())),
            (true, n) => (
                "stale",
                format!("{} clinics serving; {n} with problems, see `clinics`", serving.len()),
            ),
        };
        let body = Readiness {
            ready,
            status: status.into(),
            message,
            problems: clinics.iter().map(|c| c.problems).sum(),
            database: clinics.iter().all(|c| c.database != Some(false)),
            flows: all.running.iter().map(|s| s.service.bot().flows.len() as u64).sum(),
            clinics: Some(clinics),
        };
        if ready {
            ReadyResponse::Ready(Json(body))
        } else {
            ReadyResponse::NotReady(Json(body))
        }
    }

    /// Prometheus metrics: turns, turn latency, NLU path, reloads, reminders, open escalations.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, _key: MetricsKey, state: Data<&AppState>) -> PlainText<String> {
        PlainText(render(&state).await)
    }
}

/// Whether one clinic can serve.
async fn readiness(state: &AppState) -> Readiness {
    let query = state.service.store.client().query("RETURN 1");
    let database = matches!(tokio::time::timeout(Duration::from_secs(2), query).await, Ok(Ok(_)));
    let flows = state.service.bot().flows.len() as u64;
    let last = state.reloader.last();
    let problems = if last.ok { 0 } else { last.diagnostics.len() as u64 };
    let ready = database && flows > 0;
    let (status, message) = match (ready, problems) {
        (false, _) if !database => ("not_ready", "the database does not answer".to_string()),
        (false, _) => ("not_ready", "no flows are loaded".to_string()),
        (true, 0) => ("ready", "ready; the files on disk are in force".to_string()),
        (true, n) => (
            "stale",
            format!(
                "serving last good version; files on disk have {n} problem{}",
                if n == 1 { "" } else { "s" }
            ),
        ),
    };
    Readiness {
        ready,
        status: status.into(),
        message,
        problems,
        database,
        flows,
        clinics: None,
    }
}

/// The metrics text: what /metrics answers on either address.
async fn render(state: &AppState) -> String {
    match &state.every_clinic {
        Some(all) => {
            for clinic in all.running.iter() {
                crate::clinics::scope::scope(clinic.clinic.clone(), refresh_gauges(clinic)).await;
            }
        }
        None => crate::clinics::scope::scope(state.clinic.clone(), refresh_gauges(state)).await,
    }
    match install_metrics() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// Gauges read from the database at scrape time, so every replica reports the same queue and
/// nothing has to keep it in step.
async fn refresh_gauges(state: &AppState) {
    if let Ok(open) = state
        .service
        .store
        .count_escalations(Some(EscalationStatus::Open))
        .await
    {
        metrics::gauge!("clinicflow_open_escalations").set(open as f64);
    }
}

/// /metrics alone, without a key, for a listen address only the scraper reaches
/// (`CLINICFLOW_METRICS_ADDR`, e.g. an internal interface). Everything else is 404.
/// `source` gives the state to report (every clinic's, when the server runs several).
pub fn metrics_app(
    source: impl Fn() -> Option<AppState> + Send + Sync + 'static,
) -> impl poem::Endpoint<Output = poem::Response> + 'static {
    use poem::IntoResponse;
    let source = std::sync::Arc::new(source);
    let scrape = poem::endpoint::make(move |_req| {
        let state = source();
        async move {
            match state {
                Some(state) => render(&state).await.into_response(),
                None => poem::Response::builder()
                    .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
                    .body("no clinic is running\n"),
            }
        }
    });
    poem::Route::new().at("/metrics", poem::get(scrape))
}

/// Records one turn served over the API.
pub(super) fn record_turn(outcome: &'static str, seconds: f64, nlu: Option<(&str, bool)>) {
    metrics::counter!("clinicflow_turns_total", "outcome" => outcome).increment(1);
    if outcome == "ok" {
        metrics::histogram!("clinicflow_turn_seconds").record(seconds);
    }
    if let Some((path, understood)) = nlu {
        let understood = if understood { "yes" } else { "no" };
        let path = if path.is_empty() {
            "rules".to_string()
        } else {
            path.to_string()
        };
        metrics::counter!("clinicflow_nlu_total", "path" => path, "understood" => understood).increment(1);
    }
}
