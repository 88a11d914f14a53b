//! The console in a real browser: headless Debian Chromium driven by playwright-core
//! (tests/browser/console.mjs). Needs node, /usr/bin/chromium and `npm ci` in tests/browser;
//! `.ci/run` installs them and sets CLINICFLOW_BROWSER_TESTS=1, which makes this test
//! required. Without it the test is skipped, loudly.
//!
//! The server runs in process on 127.0.0.1:0 with a fake Twilio REST API (wiremock): the
//! handoff comes from a signed WhatsApp webhook, the receptionist's reply must arrive there.

use std::collections::HashMap;
use std::sync::Arc;

use clinicflow::api;
use clinicflow::channels::twilio::{TwilioConfig, TwilioSender};
use clinicflow::console::Console;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::console::{PASSWORD, accounts};
use crate::support::root;
use crate::twilio::Twilio;

const REPLY: &str = "Hola, soy Ana de recepción: ¿qué día le queda bien?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receptionist_answers_a_whatsapp_handoff_in_chromium() {
    if std::env::var("CLINICFLOW_BROWSER_TESTS").is_err() {
        eprintln!(
            "\n*** SKIPPED browser::a_receptionist_answers_a_whatsapp_handoff_in_chromium: set \
             CLINICFLOW_BROWSER_TESTS=1 (with chromium and `npm ci` in tests/browser; .ci/run does) ***\n"
        );
        return;
    }
    let twilio_api = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "sid": "SMstaff", "status": "queued" })))
        .mount(&twilio_api)
        .await;
    let env: HashMap<&str, String> = [
        ("TWILIO_ACCOUNT_SID", crate::twilio::SID.to_string()),
        ("TWILIO_AUTH_TOKEN", crate::twilio::TOKEN.to_string()),
        ("TWILIO_API_BASE", twilio_api.uri()),
        ("TWILIO_WHATSAPP_FROM", "whatsapp:+14155238886".to_string()),
        ("CLINICFLOW_PUBLIC_URL", crate::twilio::PUBLIC.to_string()),
    ]
    .into_iter()
    .collect();
    let config = TwilioConfig::from_lookup(|k| env.get(k).cloned());
    let state = crate::twilio::state_with(crate::support::demo(), config.clone()).await;
    let sender = TwilioSender::new(config, state.service.store.clone()).expect("sender");
    let state = state
        .with_sender(Arc::new(sender))
        .with_console(Console::new(accounts()));

    // The patient, on WhatsApp (signed webhooks, in process).
    let tw = Twilio::new(state.clone());
    tw.whatsapp("SMb1", "quiero un turno con dermatología").await;
    tw.whatsapp("SMb2", "quiero hablar con una persona").await;
    tw.whatsapp("SMb3", "¿me atiende alguien?").await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::run(listener, state.clone(), async {
        stopped.await.ok();
    }));

    let dir = root().join("tests/browser");
    let artifacts = root().join("target/browser-artifacts");
    let out = tokio::process::Command::new("node")
        .arg("console.mjs")
        .arg(format!("http://{addr}"))
        .current_dir(&dir)
        .env("ARTIFACTS", &artifacts)
        .env("STAFF_PASSWORD", PASSWORD)
        .env("STAFF_REPLY", REPLY)
        .output()
        .await
        .expect("node (install Node.js; .ci/run does)");
    let _ = stop.send(());
    let _ = server.await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"done\":true"), "{stdout}");

    let bodies: Vec<String> = twilio_api
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .map(|r| crate::twilio_out::form(r).get("Body").cloned().unwrap_or_default())
        .collect();
    assert!(
        bodies.iter().any(|b| b == REPLY),
        "the fake Twilio REST API got the reply: {bodies:?}"
    );
    for shot in ["login", "inbox", "escalation", "lockout"] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "screenshot {shot}");
    }
}

/// Serves `state` on 127.0.0.1:0, runs the playwright script `script` of tests/browser
/// against it (screenshots into target/browser-artifacts), and stops the server.
async fn run_script(state: clinicflow::api::AppState, script: &str) -> std::process::Output {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::run(listener, state, async {
        stopped.await.ok();
    }));
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(format!("http://{addr}"))
        .current_dir(root().join("tests/browser"))
        .env("ARTIFACTS", root().join("target/browser-artifacts"))
        .env("STAFF_PASSWORD", PASSWORD)
        .output()
        .await
        .expect("node (install Node.js; .ci/run does)");
    let _ = stop.send(());
    let _ = server.await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receptionist_books_and_cancels_and_an_admin_reads_the_dashboard_in_chromium() {
    if std::env::var("CLINICFLOW_BROWSER_TESTS").is_err() {
        eprintln!(
            "\n*** SKIPPED browser::a_receptionist_books_and_cancels_and_an_admin_reads_the_dashboard_in_chromium: \
             set CLINICFLOW_BROWSER_TESTS=1 (with chromium and `npm ci` in tests/browser; .ci/run does) ***\n"
        );
        return;
    }
    let state = crate::pages::seeded().await;
    let out = run_script(state.clone(), "pages.mjs").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"done\":true"), "{stdout}");
    let filter = clinicflow::store::AppointmentFilter {
        document: Some("28555666".into()),
        ..Default::default()
    };
    let rosa = state.service.store.list_appointments(&filter).await.expect("list");
    assert_eq!(
        rosa.iter().map(|a| a.status).collect::<Vec<_>>(),
        [clinicflow::store::AppointmentStatus::Cancelled],
        "booked and cancelled through the agenda"
    );
    let artifacts = root().join("target/browser-artifacts");
    for shot in ["agenda", "agenda_book", "dashboard", "conversations", "conversation"] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "screenshot {shot}");
    }
}
