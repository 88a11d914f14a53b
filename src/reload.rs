//! Hot reload: watch the bot folder, compile on change, and put the new bot in force only when
//! it compiles. A broken edit leaves the last good bot serving; its diagnostics are kept for
//! `/v1/reload` and logged. Conversations in progress continue: `step` repairs frames whose
//! flow or state disappeared at their next turn.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use serde::Serialize;

use crate::flow::bot::Bot;
use crate::flow::compile::compile_dir;
use crate::flow::diag::Diagnostics;
use crate::service::Service;

/// Edits arrive as bursts of file events (editors write, rename, chmod): wait this long after
/// the last one before compiling.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// One problem found by a reload, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosticInfo {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
    /// The full report with the source excerpt, as `clinicflow check` prints it.
    pub rendered: String,
}

/// The outcome of the last reload.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// RFC 3339 instant.
    pub at: String,
    /// "start", "watch" or "manual".
    pub trigger: String,
    /// Whether the new files are in force.
    pub ok: bool,
    /// Flows in force after the reload (the old ones when it failed).
    pub flows: usize,
    pub duration_ms: f64,
    pub diagnostics: Vec<DiagnosticInfo>,
    /// Increments on every reload, good or bad.
    pub generation: u64,
}

pub struct Reloader {
    dir: PathBuf,
    service: Arc<Service>,
    last: Mutex<ReloadReport>,
    generation: tokio::sync::watch::Sender<u64>,
}

/// Keeps the file watcher alive; dropping it stops watching.
pub struct WatchGuard {
    _debouncer: Debouncer<notify::RecommendedWatcher>,
}

impl Reloader {
    /// A reloader for a service whose bot was compiled from `dir` at start.
    pub fn new(dir: &Path, service: Arc<Service>) -> Arc<Reloader> {
        let flows = service.bot().flows.len();
        let report = ReloadReport {
            at: jiff::Timestamp::now().to_string(),
            trigger: "start".into(),
            ok: true,
            flows,
            duration_ms: 0.0,
            diagnostics: Vec::new(),
            generation: 0,
        };
        let (generation, _) = tokio::sync::watch::channel(0);
        Arc::new(Reloader {
            dir: dir.to_path_buf(),
            service,
            last: Mutex::new(report),
            generation,
        })
    }

    /// The last reload's report.
    pub fn last(&self) -> ReloadReport {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes every time a reload finishes (tests and the API wait on it).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Compiles the folder now; swaps the bot in only if it compiles.
    pub fn reload(&self, trigger: &str) -> ReloadReport {
        let started = Instant::now();
        let result = compile_dir(&self.dir);
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let generation = last.generation + 1;
        let report = match result {
            Ok(bot) => {
                let flows = bot.flows.len();
                self.service.swap_bot(Arc::new(bot));
                tracing::info!(trigger, flows, duration_ms, "flows reloaded");
                metrics::counter!("clinicflow_reloads_total", "outcome" => "ok").increment(1);
                ReloadReport {
                    at: now(),
                    trigger: trigger.into(),
                    ok: true,
                    flows,
                    duration_ms,
                    diagnostics: Vec::new(),
                    generation,
                }
            }
            Err(diags) => {
                tracing::warn!(
                    trigger,
                    problems = diags.len(),
                    "the edited flows have problems; the previous version keeps serving:\n{diags}"
                );
                metrics::counter!("clinicflow_reloads_total", "outcome" => "error").increment(1);
                ReloadReport {
                    at: now(),
                    trigger: trigger.into(),
                    ok: false,
                    flows: self.service.bot().flows.len(),
                    duration_ms,
                    diagnostics: infos(&diags),
                    generation,
                }
            }
        };
        *last = report.clone();
        drop(last);
        self.generation.send_replace(generation);
        report
    }

    /// Watches flows/, prompts/ and schemas/ and reloads after each burst of changes.
    pub fn watch(self: &Arc<Self>) -> Result<WatchGuard, notify::Error> {
        let me = Arc::clone(self);
        let mut debouncer = new_debouncer(DEBOUNCE, move |res: DebounceEventResult| match res {
            // Compiling takes milliseconds: do it right here on the watcher's thread.
            Ok(events) if events.iter().any(|e| relevant(&e.path)) => {
                me.reload("watch");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("file watcher error: {e}"),
        })?;
        for sub in ["flows", "prompts", "schemas"] {
            let path = self.dir.join(sub);
            if path.is_dir() {
                debouncer.watcher().watch(&path, RecursiveMode::Recursive)?;
            }
        }
        Ok(WatchGuard { _debouncer: debouncer })
    }

    pub fn bot(&self) -> Arc<Bot> {
        self.service.bot()
    }
}

/// Editor swap files and the like do not trigger a reload.
fn relevant(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "j2" | "json"))
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

pub fn infos(diags: &Diagnostics) -> Vec<DiagnosticInfo> {
    diags
        .0
        .iter()
        .map(|d| DiagnosticInfo {
            file: d.file.clone(),
            line: d.line,
            column: d.col,
            message: d.message.clone(),
            help: d.help.clone(),
            rendered: d.render(),
        })
        .collect()
}
