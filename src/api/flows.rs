//! The flows in force, and their hot reload.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::Tag;
use super::auth::AdminKey;
use super::error::ApiError;
use crate::flow::bot::Flow;
use crate::reload::{DiagnosticInfo, ReloadReport};
use crate::server::AppState;

#[derive(Object)]
struct FlowSummary {
    name: String,
    description: String,
    /// Intents that start it.
    triggers: Vec<String>,
    /// The file it comes from, relative to the bot folder.
    file: String,
    /// Whether another flow may start in the middle of it (and it resumes afterwards).
    interruptible: bool,
    states: Vec<String>,
    slots: Vec<String>,
}

impl From<&Flow> for FlowSummary {
    fn from(f: &Flow) -> Self {
        FlowSummary {
            name: f.name.clone(),
            description: f.description.clone(),
            triggers: f.triggers.clone(),
            file: f.file.clone(),
            interruptible: f.interruptible,
            states: f.states.iter().map(|s| s.name.clone()).collect(),
            slots: f.slots.iter().map(|s| s.name.clone()).collect(),
        }
    }
}

#[derive(Object)]
struct FlowDetail {
    #[oai(flatten)]
    summary: FlowSummary,
    /// The flow drawn as a Mermaid flowchart.
    mermaid: String,
}

#[derive(Object)]
struct Diagnostic {
    /// File relative to the bot folder.
    file: String,
    line: u64,
    column: u64,
    message: String,
    help: Option<String>,
    /// The full report with the source excerpt, as `clinicflow check` prints it.
    rendered: String,
}

impl From<DiagnosticInfo> for Diagnostic {
    fn from(d: DiagnosticInfo) -> Self {
        Diagnostic {
            file: d.file,
            line: d.line as u64,
            column: d.column as u64,
            message: d.message,
            help: d.help,
            rendered: d.rendered,
        }
    }
}

#[derive(Object)]
struct Reload {
    /// RFC 3339 instant.
    at: String,
    /// `start`, `watch` (a file changed) or `manual` (POST /v1/reload).
    trigger: String,
    /// Whether the files compiled and are in force. When false the previous flows keep
    /// serving and `diagnostics` says what to fix.
    ok: bool,
    /// Flows in force after the reload.
    flows: u64,
    duration_ms: f64,
    diagnostics: Vec<Diagnostic>,
    /// Counts reloads since start, good or bad.
    generation: u64,
    /// Replies that failed to render at run time since these flows went in force (the
    /// patient got the fallback reply instead), for the console to list.
    render_errors: Vec<String>,
}

impl From<ReloadReport> for Reload {
    fn from(r: ReloadReport) -> Self {
        Reload {
            at: r.at,
            trigger: r.trigger,
            ok: r.ok,
            flows: r.flows as u64,
            duration_ms: r.duration_ms,
            diagnostics: r.diagnostics.into_iter().map(Diagnostic::from).collect(),
            generation: r.generation,
            render_errors: r.render_errors,
        }
    }
}

pub struct Api;

#[OpenApi(tag = "Tag::Flows")]
impl Api {
    /// The flows in force.
    #[oai(path = "/v1/flows", method = "get", operation_id = "list_flows")]
    async fn list(&self, _key: AdminKey, state: Data<&AppState>) -> Result<Json<Vec<FlowSummary>>, ApiError> {
        let bot = state.service.bot();
        Ok(Json(bot.flows.iter().map(FlowSummary::from).collect()))
    }

    /// One flow, with its diagram.
    #[oai(path = "/v1/flows/:name", method = "get", operation_id = "get_flow")]
    async fn get(
        &self,
        _key: AdminKey,
        state: Data<&AppState>,
        name: Path<String>,
    ) -> Result<Json<FlowDetail>, ApiError> {
        let bot = state.service.bot();
        let flow = bot.flow(&name).ok_or_else(|| ApiError::not_found("flow", &name))?;
        Ok(Json(FlowDetail {
            summary: flow.into(),
            mermaid: crate::flow::graph::mermaid(&bot, flow),
        }))
    }

    /// The last reload: when, what started it, whether it worked, and every problem found
    /// with file:line:column.
    #[oai(path = "/v1/reload", method = "get", operation_id = "last_reload")]
    async fn last(&self, _key: AdminKey, state: Data<&AppState>) -> Result<Json<Reload>, ApiError> {
        Ok(Json(state.reloader.last().into()))
    }

    /// Reload the flows now (edits are also picked up on their own within a second). Answers
    /// 200 even when the files do not compile: `ok` is false and the old flows keep serving.
    #[oai(path = "/v1/reload", method = "post", operation_id = "reload")]
    async fn reload(&self, _key: AdminKey, state: Data<&AppState>) -> Result<Json<Reload>, ApiError> {
        let reloader = state.reloader.clone();
        // Compiling reads files and takes milliseconds: keep it off the async workers.
        let report = tokio::task::spawn_blocking(move || reloader.reload("manual"))
            .await
            .map_err(|e| ApiError::Internal(format!("the reload task failed: {e}")))?;
        Ok(Json(report.into()))
    }
}
