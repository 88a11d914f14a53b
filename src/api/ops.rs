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
            match metrics::set_global_recorder(recorder) {
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

    /// Readiness: the database answers and flows are loaded.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
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
        let body = Readiness {
            ready,
            status: status.into(),
            message,
            problems,
            database,
            flows,
        };
        if body.ready {
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

/// The metrics text: what /metrics answers on either address.
async fn render(state: &AppState) -> String {
    // A gauge read from the database at scrape time, so every replica reports the same
    // queue and nothing has to keep it in step.
    if let Ok(open) = state
        .service
        .store
        .count_escalations(Some(EscalationStatus::Open))
        .await
    {
        metrics::gauge!("clinicflow_open_escalations").set(open as f64);
    }
    match install_metrics() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// /metrics alone, without a key, for a listen address only the scraper reaches
/// (`CLINICFLOW_METRICS_ADDR`, e.g. an internal interface). Everything else is 404.
pub fn metrics_app(state: AppState) -> impl poem::Endpoint<Output = poem::Response> + 'static {
    use poem::{EndpointExt, IntoResponse};
    #[poem::handler]
    async fn scrape(state: Data<&AppState>) -> poem::Response {
        render(&state).await.into_response()
    }
    poem::Route::new().at("/metrics", poem::get(scrape)).data(state)
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
