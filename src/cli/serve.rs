//! `clinicflow serve`: the HTTP API, hot reload of the bot folder and the reminder scheduler,
//! until ctrl-c or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::api::{self, ApiKeys};
use crate::outbound::{Sender, TurnLogOnly};
use crate::server::{self, AppState};
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub dir: super::DirArg,
    /// Address to listen on. Anything but loopback needs CLINICFLOW_API_KEYS.
    #[arg(long, env = "CLINICFLOW_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Database URL: mem://, surrealkv://path, rocksdb://path, ws://host:port.
    #[arg(long, env = "CLINICFLOW_DB", default_value = crate::store::DEFAULT_URL)]
    pub db: String,
    /// The console's staff accounts (`clinicflow user add NAME` writes it).
    #[arg(long, env = "CLINICFLOW_STAFF_FILE", default_value = super::user::DEFAULT_STAFF_FILE)]
    pub staff_file: std::path::PathBuf,
}

/// Bearer keys come only from the environment or a file: a command-line flag would show them
/// in `ps`.
const KEYS_ENV: &str = "CLINICFLOW_API_KEYS";
const KEYS_FILE_ENV: &str = "CLINICFLOW_API_KEYS_FILE";
/// A second listen address that serves /metrics alone, without a key.
const METRICS_ADDR_ENV: &str = "CLINICFLOW_METRICS_ADDR";

/// The keys of CLINICFLOW_API_KEYS and CLINICFLOW_API_KEYS_FILE; a message for the operator
/// when they do not parse.
fn load_keys() -> Result<ApiKeys, String> {
    let list = std::env::var(KEYS_ENV).unwrap_or_default();
    let file = match std::env::var(KEYS_FILE_ENV).ok().filter(|f| !f.trim().is_empty()) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Some((path, text)),
            Err(e) => return Err(format!("cannot read {KEYS_FILE_ENV} `{path}`: {e}")),
        },
        None => None,
    };
    let keys = ApiKeys::load(&list, file.as_ref().map(|(p, t)| (p.as_str(), t.as_str())))
        .map_err(|e| format!("the API keys are not valid: {e}"))?;
    if keys.short() > 0 {
        eprintln!(
            "warning: {} API key(s) are shorter than {} characters and could be guessed; \
             use long random ones (e.g. `openssl rand -hex 32`)",
            keys.short(),
            crate::api::auth::MIN_KEY_LEN
        );
    }
    Ok(keys)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let keys = match load_keys() {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let env = |k: &str| std::env::var(k).ok();
    let (limits, llm_budget) = match (
        crate::limits::LimitsConfig::from_lookup(env),
        crate::limits::LlmBudget::from_lookup(env),
    ) {
        (Ok(l), Ok(b)) => (l, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let addr = resolve(&args.addr).await?;
    if keys.is_empty() && !addr.ip().is_loopback() {
        eprintln!(
            "error: refusing to listen on {addr} without API keys: anyone who can reach it could \
             read conversations and book appointments.\n\
             Set {KEYS_ENV}=key1,staff:key2,metrics:key3 (clients send `Authorization: Bearer \
             key1`; a key without a role is an admin key), or listen on a loopback address \
             such as 127.0.0.1:8080."
        );
        return Ok(ExitCode::FAILURE);
    }
    let (found, layout_problems) = crate::clinics::discover(&args.dir.dir);
    for p in &layout_problems {
        eprintln!("warning: {p}");
    }
    if found.is_empty() {
        eprintln!(
            "error: {} holds no clinic: put its flows in flows/ (one clinic) or in \
             clinics/<slug>/flows/ (several; `clinicflow init <slug>` creates one)",
            display_dir(&args.dir.dir)
        );
        return Ok(ExitCode::FAILURE);
    }
    let store = Store::connect(&args.db).await?;
    let (llm, nlu_line) = crate::llm::from_env_with_banner()?;
    match crate::identity::check_key() {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "warning: {} is not set: document numbers and one-time codes are hashed with the \
             public development key. Set it to 64 hex digits (`openssl rand -hex 32`) in production.",
            crate::identity::DATA_KEY_ENV
        ),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    // No SMTP settings: no email (src/email.rs). Wrong ones stop the server with the reason.
    let mailer = match crate::email::Mailer::from_env() {
        Ok(m) => m.map(Arc::new),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let twilio = crate::channels::twilio::TwilioConfig::from_env();
    if let Some(warning) = twilio_warning(&twilio) {
        eprintln!("{warning}");
    }
    let console = Arc::new(console(&args)?);
    let finish_keys = keys.clone();
    let shared = crate::clinics::Shared {
        root: store,
        limits,
        llm_budget: llm_budget.map(|b| (b.max_calls, b.max_tokens)),
        llm: llm.map(|l| l.config().clone()),
        twilio,
        senders: Arc::new(outbound_sender),
        mailer: mailer.clone(),
        watch: true,
        workers: true,
        finish: Arc::new(move |mut state: AppState| {
            state.console = console.clone();
            state.with_keys(finish_keys.clone())
        }),
    };
    let clinics = crate::clinics::Clinics::start(&args.dir.dir, shared).await;
    let running = clinics.running();
    if running.is_empty() {
        if let [only] = found.as_slice() {
            // One clinic: its problems exactly as `clinicflow check` prints them.
            let _ = super::load(&only.path);
        } else {
            for f in clinics.failures() {
                eprintln!("clinic `{}`:\n{}", f.slug, f.message);
            }
            eprintln!("error: no clinic could start; fix the problems above (`clinicflow check` lists them)");
        }
        return Ok(ExitCode::FAILURE);
    }
    for f in clinics.failures() {
        eprintln!(
            "warning: clinic `{}` is not started; its files have problems (it starts as soon as they are fixed):\n{}",
            f.slug, f.message
        );
    }
    for r in running.iter() {
        let bot = r.state.service.bot();
        if bot.clinic.email_confirmations && mailer.is_none() {
            eprintln!(
                "warning: clinic `{}` has clinic.email_confirmations on but there are no SMTP settings \
                 (CLINICFLOW_SMTP_URL or CLINICFLOW_SMTP_HOST, and CLINICFLOW_SMTP_FROM): patients \
                 will be asked for an email and nothing will be sent to it.",
                r.slug
            );
        }
        for var in bot.clinic.calendars.missing_secrets() {
            eprintln!("warning: {var} is not set: the calendars that need it will answer as unavailable");
        }
    }
    describe_senders(&running);
    let (stop_watching, stopped) = tokio::sync::watch::channel(false);
    // Clinic folders added or removed while the server runs.
    let rescan = clinics.watch(crate::clinics::registry::POLL, stopped);

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    // Before the banner: whoever waits for it may send SIGTERM straight away.
    let shutdown = shutdown_signal();
    eprintln!("clinicflow: {nlu_line}");
    let what = match running.as_slice() {
        [only] if only.slug.is_main() => format!("{} flows", only.state.service.bot().flows.len()),
        many => format!(
            "clinics {}",
            many.iter()
                .map(|r| format!("{} ({} flows)", r.slug, r.state.service.bot().flows.len()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    eprintln!(
        "clinicflow: {what} from {}, serving http://{local} (API docs at /docs{})",
        display_dir(&args.dir.dir),
        if keys.is_empty() {
            "; no API keys: loopback only".to_string()
        } else {
            format!("; API keys: {}", keys.summary())
        }
    );
    let _metrics_server = match std::env::var(METRICS_ADDR_ENV).ok().filter(|a| !a.trim().is_empty()) {
        Some(a) => {
            let addr = resolve(a.trim()).await?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {METRICS_ADDR_ENV} {addr}"))?;
            eprintln!(
                "clinicflow: /metrics without a key on http://{}",
                listener.local_addr().unwrap_or(addr)
            );
            let source = clinics.clone();
            let app = api::metrics_app(move || source.reporting_state());
            let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)?;
            Some(AbortOnDrop(tokio::spawn(async move {
                let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
            })))
        }
        None => None,
    };
    server::run_clinics(listener, clinics.clone(), shutdown).await?;

    // The server has drained: stop looking for clinics, then let each clinic's workers hand
    // back what they have not started. A delivery cut short is one whose lease expires:
    // another replica (or the next start) sends it. A retention sweep is one DELETE and a
    // calendar sync pass applies each change in its own transaction: stopping between is safe.
    let _ = stop_watching.send(true);
    let _ = rescan.await;
    clinics.stop_all().await;
    eprintln!("clinicflow: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Stops the metrics server when `run` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One line for the operator when Twilio webhooks cannot be verified as configured.
fn twilio_warning(c: &crate::channels::twilio::TwilioConfig) -> Option<&'static str> {
    match (&c.auth_token, &c.public_url) {
        (None, _) => Some(
            "warning: TWILIO_AUTH_TOKEN is not set: /twilio webhooks are not verified and are \
             accepted from this machine only",
        ),
        (Some(_), None) => Some(
            "warning: CLINICFLOW_PUBLIC_URL is not set: /twilio webhooks cannot be verified and \
             are refused (set it to the https URL Twilio calls)",
        ),
        _ => None,
    }
}

/// `host:port` → one socket address (the first the resolver gives).
async fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("`{addr}` is not an address like 127.0.0.1:8080"))?
        .next()
        .with_context(|| format!("`{addr}` resolves to no address"))
}

/// Says where each clinic's reminders and staff replies go (no secrets).
fn describe_senders(running: &[Arc<crate::clinics::registry::Running>]) {
    for r in running {
        let cfg = &r.state.twilio;
        let whose = if running.len() == 1 {
            String::new()
        } else {
            format!("clinic `{}`: ", r.slug)
        };
        if cfg.can_call_rest() {
            eprintln!(
                "clinicflow: {whose}reminders and staff replies go out through {}",
                crate::channels::twilio::sender::describe(cfg)
            );
        } else {
            eprintln!(
                "clinicflow: {whose}reminders and staff replies are only recorded in the conversations \
                 (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to send them through Twilio)"
            );
        }
    }
}

/// One clinic's sender: Twilio's REST API from its numbers when the account and token are
/// set, else the turn log only.
fn outbound_sender(cfg: &crate::channels::twilio::TwilioConfig, store: &Store) -> Arc<dyn Sender> {
    if cfg.can_call_rest()
        && let Some(twilio) = crate::channels::twilio::TwilioSender::new(cfg.clone(), store.clone())
    {
        return Arc::new(twilio);
    }
    Arc::new(TurnLogOnly)
}

/// Completes on ctrl-c or SIGTERM (what `docker stop`, systemd and Kubernetes send). The
/// handlers are installed when this is called, not when the future is first polled: a SIGTERM
/// that arrives before the server polls its shutdown future must stop it, not kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (term, int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        eprintln!("clinicflow: shutting down; finishing requests in flight");
    }
}

fn display_dir(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// The console with the staff accounts file (`clinicflow user add` writes it); cookies are
/// marked Secure when `CLINICFLOW_SECURE_COOKIES=1` (always HTTPS in front) or a proxy says so.
fn console(args: &ServeArgs) -> anyhow::Result<crate::console::Console> {
    let mut console = crate::console::Console::from_file(args.staff_file.clone())?;
    console.secure_cookies = std::env::var("CLINICFLOW_SECURE_COOKIES").is_ok_and(|v| v == "1" || v == "true");
    if console.accounts().users.is_empty() {
        tracing::info!(
            "no staff accounts in {}: the console at /console refuses every login (add one with `clinicflow user add NAME`)",
            args.staff_file.display()
        );
    }
    Ok(console)
}
