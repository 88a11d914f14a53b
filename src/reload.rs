//! Hot reload: watch the bot folder, compile on change, and put the new bot in force only when
//! it compiles. A broken edit leaves the last good bot serving; its diagnostics are kept for
//! `/v1/reload` and logged. Conversations in progress continue: `step` repairs frames whose
//! flow or state disappeared at their next turn.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;

use crate::flow::bot::Bot;
use crate::flow::compile::{Sources, compile};
use crate::flow::diag::{Diagnostic, Diagnostics};
use crate::service::Service;

/// Edits arrive as bursts of file events (editors write, rename, chmod): wait until no event
/// came for this long before compiling.
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
    /// Replies that failed to render at run time since this version went in force (the
    /// patient got the fallback reply): what `check` could not see coming.
    pub render_errors: Vec<String>,
}

pub struct Reloader {
    dir: PathBuf,
    service: Arc<Service>,
    last: Mutex<ReloadReport>,
    generation: tokio::sync::watch::Sender<u64>,
    /// What the files held at the last compile: a watch event whose files hash the same (a
    /// `touch`, an editor saving unchanged text) compiles nothing and logs nothing.
    compiled: Mutex<Compiled>,
    /// Held by whoever writes the bot's files from inside the process (the console's
    /// editor): its compare-then-write is one step.
    writing: tokio::sync::Mutex<()>,
    /// Whose files these are: reloads run in the clinic's scope (metric label, log field),
    /// also on the watcher's thread and the blocking pool, where no request's scope reaches.
    clinic: Mutex<crate::clinics::Slug>,
}

#[derive(Default)]
struct Compiled {
    fingerprint: Option<u64>,
    /// The last failed compile's problems, so the same broken files warn once, not per event.
    warned: Option<String>,
}

/// Keeps the file watcher alive; dropping it stops watching (and ends the reload thread,
/// whose event channel closes with the watcher).
pub struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
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
            render_errors: Vec::new(),
        };
        let (generation, _) = tokio::sync::watch::channel(0);
        let fingerprint = Sources::from_dir(dir).ok().map(|s| s.fingerprint());
        Arc::new(Reloader {
            dir: dir.to_path_buf(),
            service,
            last: Mutex::new(report),
            generation,
            compiled: Mutex::new(Compiled {
                fingerprint,
                warned: None,
            }),
            writing: tokio::sync::Mutex::new(()),
            clinic: Mutex::new(crate::clinics::Slug::main()),
        })
    }

    /// Names the clinic whose files these are (`main` until told otherwise).
    pub fn set_clinic(&self, clinic: crate::clinics::Slug) {
        *self.clinic.lock().unwrap_or_else(|p| p.into_inner()) = clinic;
    }

    fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let clinic = self.clinic.lock().unwrap_or_else(|p| p.into_inner()).clone();
        crate::clinics::scope::sync_scope(clinic, f)
    }

    /// The last reload's report, with the run-time render errors met since.
    pub fn last(&self) -> ReloadReport {
        let mut report = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        report.render_errors = self.service.render_errors();
        report
    }

    /// Changes every time a reload finishes (tests and the API wait on it).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Compiles the folder now; swaps the bot in only if it compiles.
    pub fn reload(&self, trigger: &str) -> ReloadReport {
        self.in_scope(|| self.reload_now(trigger))
    }

    fn reload_now(&self, trigger: &str) -> ReloadReport {
        let started = Instant::now();
        match Sources::from_dir(&self.dir) {
            Ok(sources) => self.compile_and_swap(&sources, trigger, started),
            Err(e) => {
                let mut d = Diagnostics::default();
                d.push(Diagnostic::file_level(
                    &self.dir.display().to_string(),
                    format!("cannot read the bot folder: {e}"),
                ));
                self.finish(Err(d), None, trigger, started)
            }
        }
    }

    /// Compiles only when the files' content differs from the last compile's. Returns
    /// `None` when nothing changed.
    pub fn reload_if_changed(&self, trigger: &str) -> Option<ReloadReport> {
        self.in_scope(|| self.reload_changed_now(trigger))
    }

    fn reload_changed_now(&self, trigger: &str) -> Option<ReloadReport> {
        let started = Instant::now();
        let Ok(sources) = Sources::from_dir(&self.dir) else {
            // A folder that cannot be read (mid-rename) is reported by a full reload.
            return Some(self.reload_now(trigger));
        };
        let fingerprint = sources.fingerprint();
        if self.lock_compiled().fingerprint == Some(fingerprint) {
            tracing::debug!(
                trigger,
                "files changed on disk but their content did not; nothing to reload"
            );
            return None;
        }
        Some(self.compile_and_swap(&sources, trigger, started))
    }

    fn compile_and_swap(&self, sources: &Sources, trigger: &str, started: Instant) -> ReloadReport {
        let result = compile(sources);
        self.finish(result, Some(sources.fingerprint()), trigger, started)
    }

    fn lock_compiled(&self) -> std::sync::MutexGuard<'_, Compiled> {
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(
        &self,
        result: Result<Bot, Diagnostics>,
        fingerprint: Option<u64>,
        trigger: &str,
        started: Instant,
    ) -> ReloadReport {
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut compiled = self.lock_compiled();
        compiled.fingerprint = fingerprint;
        let generation = last.generation + 1;
        let report = match result {
            Ok(bot) => {
                let flows = bot.flows.len();
                self.service.swap_bot(Arc::new(bot));
                compiled.warned = None;
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
                    render_errors: Vec::new(),
                }
            }
            Err(mut diags) => {
                // A clinic under clinics/ names its files from the top of the folder, as
                // `clinicflow check` does: the log and the report say which clinic's file.
                diags.in_folder(&self.clinic.lock().unwrap_or_else(|p| p.into_inner()).folder());
                let text = diags.to_string();
                if compiled.warned.as_deref() == Some(text.as_str()) {
                    tracing::debug!(trigger, problems = diags.len(), "the same problems as before");
                } else {
                    tracing::warn!(
                        trigger,
                        problems = diags.len(),
                        "the edited flows have problems; the previous version keeps serving:\n{diags}"
                    );
                    compiled.warned = Some(text);
                }
                metrics::counter!("clinicflow_reloads_total", "outcome" => "error").increment(1);
                ReloadReport {
                    at: now(),
                    trigger: trigger.into(),
                    ok: false,
                    flows: self.service.bot().flows.len(),
                    duration_ms,
                    diagnostics: infos(&diags),
                    generation,
                    render_errors: Vec::new(),
                }
            }
        };
        drop(compiled);
        *last = report.clone();
        drop(last);
        self.generation.send_replace(generation);
        report
    }

    /// Watches flows/, prompts/ and schemas/ and reloads after each burst of content changes.
    ///
    /// A raw watcher rather than a debouncer: the debouncer drops the event kind, and on
    /// Linux every read of a watched file (our own compile included) is an `open` event, so
    /// reloading on any event made each reload trigger the next one.
    pub fn watch(self: &Arc<Self>) -> Result<WatchGuard, notify::Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx)?;
        for sub in ["flows", "prompts", "schemas"] {
            let path = self.dir.join(sub);
            if path.is_dir() {
                watcher.watch(&path, RecursiveMode::Recursive)?;
            }
        }
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("clinicflow-reload".into())
            .spawn(move || me.watch_loop(&rx))
            .map_err(notify::Error::io)?;
        Ok(WatchGuard { _watcher: watcher })
    }

    /// Waits for a content event, then for a quiet `DEBOUNCE`, then reloads if the content
    /// differs. Ends when the watcher is dropped.
    fn watch_loop(&self, rx: &Receiver<notify::Result<notify::Event>>) {
        while let Ok(event) = rx.recv() {
            match event {
                Ok(e) if changes_content(&e) => {}
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!("file watcher error: {e}");
                    continue;
                }
            }
            loop {
                match rx.recv_timeout(DEBOUNCE) {
                    Ok(_) => continue,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            self.reload_if_changed("watch");
        }
    }

    pub fn bot(&self) -> Arc<Bot> {
        self.service.bot()
    }

    /// The bot folder this reloader compiles.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The right to write the bot's files: one writer at a time (see `editor`).
    pub async fn lock_files(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writing.lock().await
    }
}

/// Writes, creations, deletions and renames of bot files; not reads (`open`/`close`), nor
/// permission or timestamp changes (`touch`).
fn changes_content(e: &notify::Event) -> bool {
    let kind = matches!(
        e.kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
    );
    kind && e.paths.iter().any(|p| relevant(p))
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
