//! `clinicflow serve`: the HTTP API, hot reload of the bot folder and the reminder scheduler,
//! until ctrl-c or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::api::{self, ApiKeys};
use crate::outbound::{Sender, TurnLogOnly};
use crate::reload::Reloader;
use crate::server::{self, AppState};
use crate::service::Service;
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
    let Some(bot) = super::load(&args.dir.dir) else {
        return Ok(ExitCode::FAILURE);
    };
    let flows = bot.flows.len();
    let store = Store::connect(&args.db).await?;
    let (llm, nlu_line) = crate::llm::from_env_with_banner()?;
    let llm_for_voice_notes = llm.clone();
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
    let sender = outbound_sender(&store);
    // No SMTP settings: no email (src/email.rs). Wrong ones stop the server with the reason.
    let mailer = match crate::email::Mailer::from_env() {
        Ok(m) => m.map(Arc::new),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if bot.clinic.email_confirmations && mailer.is_none() {
        eprintln!(
            "warning: clinic.email_confirmations is on but there are no SMTP settings \
             (CLINICFLOW_SMTP_URL or CLINICFLOW_SMTP_HOST, and CLINICFLOW_SMTP_FROM): patients \
             will be asked for an email and nothing will be sent to it."
        );
    }
    let service = Arc::new(
        Service::new(store, Arc::new(bot))
            .with_llm(llm)
            .with_llm_budget(llm_budget)
            .with_sender(sender.clone())
            .with_mailer(mailer),
    );
    let reloader = Reloader::new(&args.dir.dir, service.clone());
    // Dropping the guard stops watching: it lives until the server stops.
    let _watch = match reloader.watch() {
        Ok(guard) => Some(guard),
        Err(e) => {
            tracing::warn!(
                "cannot watch {} for edits ({e}); POST /v1/reload still reloads",
                args.dir.dir.display()
            );
            None
        }
    };
    let (stop_reminders, stopped) = tokio::sync::watch::channel(false);
    for var in service.bot().clinic.calendars.missing_secrets() {
        eprintln!("warning: {var} is not set: the calendars that need it will answer as unavailable");
    }
    let calendars = crate::calendars::sync::spawn(service.clone(), sender.clone(), stopped.clone());
    let reminders = crate::reminders::spawn(
        service.clone(),
        sender.clone(),
        crate::background::worker_id(),
        stopped.clone(),
    );
    let outbox = crate::outbox::spawn(
        service.store.clone(),
        sender.clone(),
        crate::background::worker_id(),
        stopped.clone(),
    );
    let retention = crate::retention::spawn(service.clone(), stopped);

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().unwrap_or(addr);
    let twilio = crate::channels::twilio::TwilioConfig::from_env();
    if let Some(warning) = twilio_warning(&twilio) {
        eprintln!("{warning}");
    }
    let state = AppState::new(service, reloader)
        .with_keys(keys.clone())
        .with_sender(sender)
        .with_twilio(twilio)
        .with_limits(crate::limits::RateLimits::new(&limits))
        .with_console(console(&args)?);
    // Voice notes are transcribed by the same LLM that understands messages, when there is one.
    let state = match llm_for_voice_notes {
        Some(llm) => state.with_transcriber(llm),
        None => state,
    };
    eprintln!("clinicflow: {nlu_line}");
    eprintln!(
        "clinicflow: {flows} flows from {}, serving http://{local} (API docs at /docs{})",
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
            let app = api::metrics_app(state.clone());
            let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)?;
            Some(AbortOnDrop(tokio::spawn(async move {
                let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
            })))
        }
        None => None,
    };
    server::run(listener, state, shutdown_signal()).await?;

    // The server has drained; let the scheduler hand back what it has not started.
    let _ = stop_reminders.send(true);
    if tokio::time::timeout(Duration::from_secs(15), reminders).await.is_err() {
        tracing::warn!("the reminder scheduler did not stop in time");
    }
    // A delivery cut short is one whose lease expires: another replica (or the next start)
    // sends it.
    if tokio::time::timeout(Duration::from_secs(15), outbox).await.is_err() {
        tracing::warn!("the outbox worker did not stop in time");
    }
    // The retention sweep is one DELETE: stopping it mid-way loses nothing.
    retention.abort();
    // A sync pass applies each change in its own transaction: stopping between two is safe.
    calendars.abort();
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

/// Twilio's REST API when its account and token are set, else the turn log only; says
/// which (no secrets).
fn outbound_sender(store: &Store) -> Arc<dyn Sender> {
    let cfg = crate::channels::twilio::TwilioConfig::from_env();
    if cfg.can_call_rest()
        && let Some(twilio) = crate::channels::twilio::TwilioSender::new(cfg, store.clone())
    {
        eprintln!(
            "clinicflow: reminders and staff replies go out through {}",
            twilio.describe()
        );
        return Arc::new(twilio);
    }
    eprintln!(
        "clinicflow: reminders and staff replies are only recorded in the conversations \
         (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to send them through Twilio)"
    );
    Arc::new(TurnLogOnly)
}

/// Completes on ctrl-c or SIGTERM (what `docker stop`, systemd and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    eprintln!("clinicflow: shutting down; finishing requests in flight");
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
