//! The clinics one server runs: each started with its own database, service, reloader,
//! sender and workers (reminders, outbox, retention, calendar sync), found again every few
//! seconds so that a clinic folder added, fixed or deleted while the server runs is started
//! or stopped without touching the others.
//!
//! Edits inside a running clinic are its own reloader's business (validate, then swap: a
//! broken edit keeps its last good flows). This module only decides which clinics run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ClinicDir, Slug, scope};
use crate::channels::twilio::TwilioConfig;
use crate::limits::{LimitsConfig, LlmBudget, RateLimits};
use crate::outbound::Sender;
use crate::reload::{Reloader, WatchGuard};
use crate::server::AppState;
use crate::service::Service;
use crate::store::Store;

/// How often the folder is looked at for clinics added or removed.
pub const POLL: Duration = Duration::from_secs(2);

/// Makes the sender of one clinic from its Twilio settings (its own numbers) and store.
pub type SenderFactory = Arc<dyn Fn(&TwilioConfig, &Store) -> Arc<dyn Sender> + Send + Sync>;

/// What every clinic of one server shares, and how each one's state is finished.
#[derive(Clone)]
pub struct Shared {
    /// The connection; the clinic `main` uses its database, every other clinic its own.
    pub root: Store,
    pub limits: LimitsConfig,
    /// Daily LLM calls and tokens, counted per clinic.
    pub llm_budget: Option<(Option<u64>, Option<u64>)>,
    /// Each clinic gets its own client (its own metrics name and structured-output mode).
    pub llm: Option<crate::llm::LlmConfig>,
    /// Twilio settings from the environment; each clinic's numbers take the place of the
    /// `TWILIO_*_FROM` senders.
    pub twilio: TwilioConfig,
    pub senders: SenderFactory,
    pub mailer: Option<Arc<crate::email::Mailer>>,
    /// Watch each clinic's files and start its workers (`serve`); tests may leave them off.
    pub watch: bool,
    pub workers: bool,
    /// Applied last to every clinic's state: keys, console, clock settings.
    pub finish: Arc<dyn Fn(AppState) -> AppState + Send + Sync>,
}

/// One running clinic.
pub struct Running {
    pub slug: Slug,
    pub path: PathBuf,
    pub state: AppState,
    stop: watch::Sender<bool>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    _watch: Option<WatchGuard>,
}

impl Running {
    /// Stops its workers (they hand back what they have not started) and its file watcher.
    async fn stop(&self) {
        let _ = self.stop.send(true);
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for worker in workers {
            let abort = worker.abort_handle();
            if tokio::time::timeout(Duration::from_secs(15), worker).await.is_err() {
                tracing::warn!(clinic = %self.slug, "a worker did not stop in time");
                abort.abort();
            }
        }
    }
}

/// A clinic that could not start; it is tried again when its files change.
#[derive(Debug, Clone)]
pub struct Failure {
    pub slug: Slug,
    pub path: PathBuf,
    /// The problems, with file:line:column, as `clinicflow check` prints them.
    pub message: String,
    fingerprint: u64,
}

pub struct Clinics {
    dir: PathBuf,
    shared: Shared,
    running: ArcSwap<Vec<Arc<Running>>>,
    failed: Mutex<Vec<Failure>>,
    /// One pass at a time decides what runs.
    pass: tokio::sync::Mutex<()>,
    /// Counts the passes that started or stopped a clinic (tests wait on it).
    generation: watch::Sender<u64>,
    /// Shared by every clinic's state: `run` waits for the turns of all of them.
    pub(crate) inflight: Arc<tokio::sync::RwLock<()>>,
}

impl Clinics {
    /// Starts every clinic of `dir` that compiles. The ones that do not are in
    /// [`Clinics::failures`]; the caller decides whether a server with them is worth running.
    pub async fn start(dir: &Path, shared: Shared) -> Arc<Clinics> {
        let clinics = Arc::new(Clinics {
            dir: dir.to_path_buf(),
            shared,
            running: ArcSwap::from_pointee(Vec::new()),
            failed: Mutex::default(),
            pass: tokio::sync::Mutex::new(()),
            generation: watch::channel(0).0,
            inflight: Arc::default(),
        });
        clinics.sync().await;
        clinics
    }

    /// The running clinics, `main` first, then by slug.
    pub fn running(&self) -> Arc<Vec<Arc<Running>>> {
        self.running.load_full()
    }

    /// Changes after every pass that started or stopped a clinic.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn failures(&self) -> Vec<Failure> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, slug: &str) -> Option<AppState> {
        self.running()
            .iter()
            .find(|r| r.slug.as_str() == slug)
            .map(|r| r.state.clone())
    }

    /// The clinic of requests that name none: `main`, or the first there is.
    pub fn default_state(&self) -> Option<AppState> {
        let running = self.running();
        running
            .iter()
            .find(|r| r.slug.is_main())
            .or_else(|| running.first())
            .map(|r| r.state.clone())
    }

    /// The state /metrics and /readyz answer with: the default clinic's, reporting every
    /// clinic when there are several or some did not start.
    pub fn reporting_state(&self) -> Option<AppState> {
        let mut state = self.default_state()?;
        let running = self.running();
        let failures = self.failures();
        if running.len() > 1 || !failures.is_empty() {
            state.every_clinic = Some(Arc::new(crate::server::EveryClinic {
                running: running.iter().map(|r| r.state.clone()).collect(),
                not_started: failures.into_iter().map(|f| (f.slug, summary(&f.message))).collect(),
            }));
        }
        Some(state)
    }

    /// The clinic that lists `number` (`+5491149015120`, or Twilio's `whatsapp:+54…`) among
    /// its WhatsApp, SMS or voice numbers.
    /// The deployment's own numbers (`TWILIO_WHATSAPP_FROM`, `TWILIO_SMS_FROM`,
    /// `TWILIO_VOICE_NUMBER`, e.g. Twilio's WhatsApp sandbox) are `main`'s.
    pub fn by_number(&self, number: &str) -> Option<AppState> {
        let bare = |n: &str| n.trim().strip_prefix("whatsapp:").unwrap_or(n.trim()).to_string();
        let number = bare(number);
        let env = &self.shared.twilio;
        let deployment = [&env.whatsapp_from, &env.sms_from, &env.voice_number]
            .into_iter()
            .flatten()
            .any(|n| bare(n) == number);
        self.running()
            .iter()
            .find(|r| {
                r.state.service.bot().clinic.numbers.all().any(|(_, n)| n == number) || (deployment && r.slug.is_main())
            })
            .map(|r| r.state.clone())
    }

    /// The clinic whose web chat answers at `/web/{web_slug}/…` (its name folded to ASCII,
    /// the widget's `data-clinic`).
    pub fn by_web_slug(&self, web_slug: &str) -> Option<AppState> {
        self.running()
            .iter()
            .find(|r| crate::console::widget::slug(&r.state.service.bot().clinic.name) == web_slug)
            .map(|r| r.state.clone())
    }

    /// Looks at the folder again: starts the clinics that are new (or whose failed files
    /// changed), stops the ones whose folder is gone. Returns what changed, in words.
    pub async fn sync(&self) -> Vec<String> {
        let _pass = self.pass.lock().await;
        let (found, problems) = super::discover(&self.dir);
        for p in &problems {
            tracing::debug!("{p}");
        }
        let mut changes = Vec::new();
        let before = self.running();
        let mut now: Vec<Arc<Running>> = Vec::new();
        for gone in before.iter().filter(|r| !found.iter().any(|c| c.slug == r.slug)) {
            gone.stop().await;
            changes.push(format!("clinic `{}` stopped: its folder is gone", gone.slug));
            tracing::info!(clinic = %gone.slug, "clinic stopped: its folder is gone");
        }
        let mut failed = Vec::new();
        let earlier = self.failures();
        for dir in &found {
            if let Some(r) = before.iter().find(|r| r.slug == dir.slug) {
                now.push(r.clone());
                continue;
            }
            let fingerprint = fingerprint(&dir.path);
            if let Some(f) = earlier
                .iter()
                .find(|f| f.slug == dir.slug && f.fingerprint == fingerprint)
            {
                failed.push(f.clone());
                continue;
            }
            // Clinics that keep running, and the ones this pass started already.
            let others: Vec<Arc<Running>> = before
                .iter()
                .filter(|r| found.iter().any(|c| c.slug == r.slug))
                .chain(now.iter())
                .cloned()
                .collect();
            match self.start_one(dir, &others).await {
                Ok(r) => {
                    changes.push(format!("clinic `{}` started", dir.slug));
                    tracing::info!(clinic = %dir.slug, flows = r.state.service.bot().flows.len(), "clinic started");
                    now.push(Arc::new(r));
                }
                Err(message) => {
                    changes.push(format!("clinic `{}` not started:\n{message}", dir.slug));
                    // The problems name files and lines, never patients: safe to log.
                    tracing::warn!(clinic = %dir.slug, "clinic not started; its files have problems:\n{message}");
                    failed.push(Failure {
                        slug: dir.slug.clone(),
                        path: dir.path.clone(),
                        message,
                        fingerprint,
                    });
                }
            }
        }
        self.running.store(Arc::new(now));
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = failed;
        if !changes.is_empty() {
            self.generation.send_modify(|g| *g += 1);
        }
        changes
    }

    /// Calls [`Clinics::sync`] every `every` until `stop` turns true (or its sender is dropped).
    pub fn watch(self: &Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = crate::background::every(every);
            while crate::background::next_tick(&mut tick, &mut stop).await {
                me.sync().await;
            }
        })
    }

    /// Stops every clinic's workers and watcher (after the server has drained).
    pub async fn stop_all(&self) {
        let _pass = self.pass.lock().await;
        for r in self.running().iter() {
            r.stop().await;
        }
    }

    async fn start_one(&self, dir: &ClinicDir, others: &[Arc<Running>]) -> Result<Running, String> {
        let bot = dir.compile().map_err(|diags| diags.render())?;
        // A number is one clinic's: with two, a patient's message would go to either.
        let file = Path::new(&dir.slug.folder())
            .join("flows/clinic.yaml")
            .display()
            .to_string();
        for (channel, n) in bot.clinic.numbers.all() {
            if let Some(o) = others
                .iter()
                .find(|o| o.state.service.bot().clinic.numbers.all().any(|(_, m)| m == n))
            {
                return Err(format!(
                    "{file}: clinic.numbers.{channel} lists {n}, which clinic `{}` lists already; a \
                     number can belong to one clinic only: remove it from one of them",
                    o.slug
                ));
            }
        }
        self.start_compiled(dir, bot).await
    }

    async fn start_compiled(&self, dir: &ClinicDir, bot: crate::flow::bot::Bot) -> Result<Running, String> {
        let shared = &self.shared;
        let slug = dir.slug.clone();
        let store = if slug.is_main() {
            shared.root.clone()
        } else {
            shared
                .root
                .database(&slug.database())
                .await
                .map_err(|e| format!("its database cannot be opened: {e}"))?
        };
        let twilio = for_numbers(&shared.twilio, &bot.clinic.numbers, slug.is_main());
        let sender = (shared.senders)(&twilio, &store);
        let llm = shared.llm.clone().map(|c| Arc::new(crate::llm::Llm::new(c)));
        let budget = shared.llm_budget.map(|(calls, tokens)| LlmBudget::new(calls, tokens));
        let service = Arc::new(
            Service::new(store, Arc::new(bot))
                .with_llm(llm.clone())
                .with_llm_budget(budget)
                .with_sender(sender.clone())
                .with_mailer(shared.mailer.clone()),
        );
        let reloader = Reloader::new(&dir.path, service.clone());
        let watch_guard = if shared.watch {
            match reloader.watch() {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::warn!(clinic = %slug, "cannot watch the clinic's files ({e}); POST …/reload still reloads");
                    None
                }
            }
        } else {
            None
        };
        let mut state = AppState::new(service.clone(), reloader)
            .with_clinic(slug.clone())
            .with_sender(sender.clone())
            .with_twilio(twilio)
            .with_limits(RateLimits::new(&shared.limits))
            .with_inflight(self.inflight.clone());
        if let Some(llm) = llm {
            state = state.with_transcriber(llm);
        }
        let state = (shared.finish)(state);
        let (stop, stopped) = watch::channel(false);
        let workers = if shared.workers {
            scope::sync_scope(slug.clone(), || {
                let owner = crate::background::worker_id();
                vec![
                    crate::calendars::sync::spawn(service.clone(), sender.clone(), stopped.clone()),
                    crate::reminders::spawn(service.clone(), sender.clone(), owner.clone(), stopped.clone()),
                    crate::outbox::spawn(service.store.clone(), sender.clone(), owner, stopped.clone()),
                    crate::retention::spawn(service.clone(), stopped.clone()),
                ]
            })
        } else {
            Vec::new()
        };
        Ok(Running {
            slug,
            path: dir.path.clone(),
            state,
            stop,
            workers: Mutex::new(workers),
            _watch: watch_guard,
        })
    }
}

/// The first line of a clinic's problems, for /readyz.
fn summary(message: &str) -> String {
    let line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("its files have problems");
    line.chars().take(200).collect()
}

/// The Twilio settings of one clinic. `main` sends from `TWILIO_WHATSAPP_FROM` /
/// `TWILIO_SMS_FROM` when they are set (a deployment of one clinic, unchanged), else from its
/// first numbers; every other clinic from its own first numbers only, never from another
/// clinic's: a clinic that lists none on a channel cannot send on it.
fn for_numbers(base: &TwilioConfig, numbers: &crate::flow::clinic::Numbers, main: bool) -> TwilioConfig {
    let mut cfg = base.clone();
    if !main {
        cfg.whatsapp_from = None;
        cfg.sms_from = None;
        cfg.voice_number = None;
    }
    if cfg.whatsapp_from.is_none() {
        cfg.whatsapp_from = numbers.whatsapp.first().map(|n| format!("whatsapp:{n}"));
    }
    if cfg.sms_from.is_none() {
        cfg.sms_from = numbers.sms.first().cloned();
    }
    if cfg.voice_number.is_none() {
        cfg.voice_number = numbers.voice.first().cloned();
    }
    cfg
}

/// Names, sizes and modification times of a clinic's files: a failed clinic is compiled
/// again only when this changes.
fn fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut stack: Vec<PathBuf> = ["flows", "prompts", "schemas"].iter().map(|s| dir.join(s)).collect();
    let mut seen: HashMap<PathBuf, (u64, Option<std::time::SystemTime>)> = HashMap::new();
    while let Some(p) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&p) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => {
                    seen.insert(path, (m.len(), m.modified().ok()));
                }
                Err(_) => {}
            }
        }
    }
    let mut files: Vec<_> = seen.into_iter().collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clinic_sends_from_its_own_numbers_and_main_from_the_environments_first() {
        let base = TwilioConfig::from_lookup(|k| (k == "TWILIO_SMS_FROM").then(|| "+15550000000".to_string()));
        let numbers = crate::flow::clinic::Numbers {
            whatsapp: vec!["+13125550100".into()],
            sms: vec![],
            voice: vec!["+13125550101".into()],
        };
        let other = for_numbers(&base, &numbers, false);
        assert_eq!(other.whatsapp_from.as_deref(), Some("whatsapp:+13125550100"));
        assert_eq!(other.sms_from, None, "never another clinic's (the deployment's) number");
        assert_eq!(other.voice_number.as_deref(), Some("+13125550101"));
        let main = for_numbers(&base, &numbers, true);
        assert_eq!(
            main.sms_from.as_deref(),
            Some("+15550000000"),
            "the environment's, as with one clinic"
        );
        assert_eq!(main.whatsapp_from.as_deref(), Some("whatsapp:+13125550100"));
    }

    #[test]
    fn the_fingerprint_changes_with_an_edit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("flows")).unwrap();
        let a = fingerprint(dir.path());
        std::fs::write(dir.path().join("flows/clinic.yaml"), "name: x\n").unwrap();
        let b = fingerprint(dir.path());
        assert_ne!(a, b);
        assert_eq!(b, fingerprint(dir.path()));
    }
}
