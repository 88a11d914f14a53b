//! Shared helpers for the integration tests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clinicflow::flow::bot::Bot;
use clinicflow::flow::compile::compile_dir;

pub mod smtp;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// The demo clinic, compiled once for the whole test binary.
pub fn demo() -> Arc<Bot> {
    static BOT: OnceLock<Arc<Bot>> = OnceLock::new();
    BOT.get_or_init(|| match compile_dir(root()) {
        Ok(b) => Arc::new(b),
        Err(d) => panic!("the demo clinic does not compile:\n{}", d.render()),
    })
    .clone()
}

/// Copies the demo bot (flows, prompts, schemas) into a temporary folder.
pub fn demo_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for sub in ["flows", "prompts", "schemas"] {
        copy_tree(&root().join(sub), &tmp.path().join(sub));
    }
    tmp
}

/// San Rafael at the top (`main`) and Harbor Dental under clinics/, as in the repository.
pub fn two_clinics() -> tempfile::TempDir {
    let tmp = demo_copy();
    copy_tree(
        &root().join("clinics/harbor-dental"),
        &tmp.path().join("clinics/harbor-dental"),
    );
    tmp
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let dest = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_tree(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).expect("copy");
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_clinicflow")
}

/// A clinic-local time such as "2026-11-23T10:00", in the demo clinic's time zone.
pub fn at(s: &str) -> jiff::Zoned {
    let dt: jiff::civil::DateTime = s.parse().expect("datetime");
    dt.to_zoned(demo().clinic.tz.clone()).expect("zoned")
}

/// Clinic-local "YYYY-MM-DDTHH:MM" → instant.
pub fn local(s: &str) -> jiff::Timestamp {
    at(s).timestamp()
}

/// An appointment's reminders as (kind, status), in the store's order.
pub async fn reminder_statuses(
    store: &clinicflow::store::Store,
    appointment: &str,
) -> Vec<(String, clinicflow::store::ReminderStatus)> {
    store
        .reminders_of(appointment)
        .await
        .expect("reminders")
        .into_iter()
        .map(|r| (r.kind, r.status))
        .collect()
}

/// One patient message on `channel` from `user`, at the clinic-local time `now`.
pub async fn say_as(
    service: &clinicflow::service::Service,
    session: &str,
    channel: &str,
    user: &str,
    text: &str,
    now: &str,
) -> clinicflow::service::TurnResponse {
    let req = clinicflow::service::TurnRequest {
        session_id: session.into(),
        channel: channel.into(),
        user: user.into(),
        text: text.into(),
        now: at(now),
        message_id: None,
        llm_budget: None,
    };
    service.handle(req).await.expect("turn")
}

/// One patient message in a test conversation.
pub async fn say(
    service: &clinicflow::service::Service,
    session: &str,
    text: &str,
    now: &str,
) -> clinicflow::service::TurnResponse {
    say_as(service, session, "test", &format!("user-{session}"), text, now).await
}

/// A whole Cardiología booking in Spanish, from "hola" to "sí".
pub const BOOKING: [&str; 8] = clinicflow::cli::bench::SCRIPT;

/// Waits (bounded, no sleeps) for the reloader to finish another reload.
pub async fn next_reload(rx: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(std::time::Duration::from_secs(20), rx.changed())
        .await
        .expect("a reload within 20 s")
        .expect("reloader alive");
}
