//! Hot reload against real files: an edit goes live, a broken edit keeps the last good bot,
//! and a conversation in progress survives both.

use std::sync::Arc;

use clinicflow::flow::compile::compile_dir;
use clinicflow::reload::{DEBOUNCE, Reloader};
use clinicflow::service::{Service, TurnRequest};
use clinicflow::store::Store;

use crate::support::{demo_copy, next_reload, say};

const NOW: &str = "2026-11-23T10:00";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_go_live_and_broken_edits_keep_the_last_good_bot() {
    let dir = demo_copy();
    let bot = compile_dir(dir.path()).expect("demo compiles");
    let service = Arc::new(Service::new(
        Store::connect("mem://").await.expect("store"),
        Arc::new(bot),
    ));
    let reloader = Reloader::new(dir.path(), service.clone());
    let mut rx = reloader.subscribe();
    let _guard = reloader.watch().expect("watch");

    // A conversation is in progress when the files change.
    let r = say(&service, "c", "quiero un turno con cardiología", NOW).await;
    assert_eq!(r.state, "book_appointment.details");

    let greeting = dir.path().join("prompts/es/greeting.j2");
    std::fs::write(&greeting, "¡Hola! Bienvenido a {{ clinic.name }} (versión nueva).\n").expect("write");
    next_reload(&mut rx).await;
    let report = reloader.last();
    assert!(report.ok, "{report:?}");
    assert!(
        say(&service, "other", "hola", NOW)
            .await
            .replies
            .join(" ")
            .contains("versión nueva")
    );
    let r = say(&service, "c", "el jueves 26", NOW).await;
    assert_eq!(r.state, "book_appointment.pick", "the conversation went on: {r:?}");
    assert_eq!(r.slots.get("date").and_then(|v| v.as_str()), Some("2026-11-26"));

    // A broken edit: reported with file:line:column, the last good bot keeps serving.
    let flow = dir.path().join("flows/faq_hours.yaml");
    let src = std::fs::read_to_string(&flow).expect("read");
    std::fs::write(
        &flow,
        src.replacen("flow: faq_hours", "flow: faq_hours\n  broken: [", 1),
    )
    .expect("write");
    next_reload(&mut rx).await;
    let report = reloader.last();
    assert!(!report.ok);
    let d = report.diagnostics.first().expect("a diagnostic");
    assert_eq!(d.file, "flows/faq_hours.yaml");
    assert!(d.line >= 1 && d.column >= 1);
    assert!(d.rendered.contains("faq_hours.yaml:"), "{}", d.rendered);
    assert!(
        say(&service, "third", "hola", NOW)
            .await
            .replies
            .join(" ")
            .contains("versión nueva"),
        "old bot serves"
    );
    let r = say(&service, "c", "a las 10", NOW).await;
    assert_eq!(r.state, "book_appointment.patient", "{r:?}");
}

/// Waits a bounded time for a reload that must NOT happen; true when none came.
async fn stays_quiet(rx: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    tokio::time::timeout(DEBOUNCE * 5, rx.changed()).await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_edit_reloads_once_and_an_idle_server_never() {
    let dir = demo_copy();
    let bot = compile_dir(dir.path()).expect("demo compiles");
    let service = Arc::new(Service::new(
        Store::connect("mem://").await.expect("store"),
        Arc::new(bot),
    ));
    let reloader = Reloader::new(dir.path(), service.clone());
    let mut rx = reloader.subscribe();
    let _guard = reloader.watch().expect("watch");
    assert!(stays_quiet(&mut rx).await, "an idle server reloaded");

    // Saving a file unchanged (an editor's save, a `touch`) is not an edit.
    let greeting = dir.path().join("prompts/es/greeting.j2");
    let before = std::fs::read_to_string(&greeting).expect("read");
    std::fs::write(&greeting, &before).expect("write");
    std::fs::File::options()
        .append(true)
        .open(&greeting)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .expect("touch");
    assert!(stays_quiet(&mut rx).await, "unchanged content reloaded");

    // One edit: exactly one reload, and the reload's own reads do not cause another.
    std::fs::write(&greeting, "¡Hola! {{ clinic.name }} (versión nueva).\n").expect("write");
    next_reload(&mut rx).await;
    assert_eq!(*rx.borrow_and_update(), 1);
    assert!(reloader.last().ok);
    assert!(stays_quiet(&mut rx).await, "a second reload after one edit");

    // A broken edit: one failed reload, then quiet; the good bot keeps serving.
    let flow = dir.path().join("flows/faq_hours.yaml");
    let src = std::fs::read_to_string(&flow).expect("read");
    std::fs::write(
        &flow,
        src.replacen("flow: faq_hours", "flow: faq_hours\n  broken: [", 1),
    )
    .expect("write");
    next_reload(&mut rx).await;
    assert_eq!(*rx.borrow_and_update(), 2);
    assert!(!reloader.last().ok);
    assert!(stays_quiet(&mut rx).await, "a broken file kept reloading");
    assert!(
        say(&service, "p", "hola", NOW)
            .await
            .replies
            .join(" ")
            .contains("versión nueva"),
        "the last good bot serves"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_whose_state_was_removed_restarts_its_flow() {
    let dir = demo_copy();
    let bot = compile_dir(dir.path()).expect("demo compiles");
    let service = Arc::new(Service::new(
        Store::connect("mem://").await.expect("store"),
        Arc::new(bot),
    ));
    let reloader = Reloader::new(dir.path(), service.clone());
    for line in ["quiero un turno con cardiología", "el jueves 26", "a las 10"] {
        say(&service, "c", line, NOW).await;
    }
    assert_eq!(
        say(&service, "c", "Juan Pérez", NOW).await.state,
        "book_appointment.patient"
    );

    // The admin renames the `patient` state to `paciente`.
    let flow = dir.path().join("flows/book_appointment.yaml");
    let src = std::fs::read_to_string(&flow).expect("read");
    std::fs::write(
        &flow,
        src.replace("patient:\n", "paciente:\n")
            .replace("goto: patient", "goto: paciente")
            .replace("next: patient", "next: paciente"),
    )
    .expect("write");
    let report = reloader.reload("manual");
    assert!(
        report.ok,
        "{:#?}",
        report
            .diagnostics
            .iter()
            .map(|d| d.rendered.clone())
            .collect::<Vec<_>>()
    );

    let r = say(&service, "c", "30111222", NOW).await;
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    assert!(r.state.starts_with("book_appointment."), "{r:?}");
    assert_eq!(
        r.slots.get("specialty").and_then(|v| v.as_str()),
        Some("Cardiología"),
        "kept what it knew"
    );
}

#[tokio::test]
async fn the_same_message_id_is_processed_once() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), crate::support::demo());
    let dt: jiff::civil::DateTime = "2026-11-23T10:00".parse().expect("dt");
    let req = TurnRequest {
        session_id: "idem".into(),
        channel: "test".into(),
        user: "u".into(),
        text: "quiero un turno con cardiología".into(),
        now: dt.to_zoned(service.bot().clinic.tz.clone()).expect("zoned"),
        message_id: Some("msg-1".into()),
        llm_budget: None,
    };
    let first = service.handle(req.clone()).await.expect("turn");
    let again = service.handle(req).await.expect("turn");
    assert!(!first.replayed && again.replayed);
    assert_eq!(first.replies, again.replies);
    assert_eq!(store.recent_turns("idem", 10).await.expect("turns").len(), 1);
}
