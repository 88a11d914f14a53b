//! The console in a real browser: headless Debian Chromium driven by playwright-core
//! (tests/browser/console.mjs). Needs node, /usr/bin/chromium and `npm ci` in tests/browser;
//! `.ci/run` installs them and sets CLINICFLOW_BROWSER_TESTS=1, which makes this test
//! required. Without it the test is skipped, loudly.
//!
//! The server runs in process on 127.0.0.1:0 with a fake Twilio REST API (wiremock): the
//! handoff comes from a signed WhatsApp webhook, the receptionist's reply must arrive there.

use std::collections::HashMap;
use std::sync::Arc;

use clinicflow::channels::twilio::{TwilioConfig, TwilioSender};
use clinicflow::console::Console;
use clinicflow::server;
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
    let server = tokio::spawn(server::run(listener, state.clone(), async {
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

/// Whether the browser tests are off (said loudly, so a skipped run is not taken for a pass).
fn skipped(name: &str) -> bool {
    if std::env::var("CLINICFLOW_BROWSER_TESTS").is_ok() {
        return false;
    }
    eprintln!(
        "\n*** SKIPPED browser::{name}: set CLINICFLOW_BROWSER_TESTS=1 (with chromium and `npm ci` in \
         tests/browser; .ci/run does) ***\n"
    );
    true
}

/// Serves `state` (the whole app) on 127.0.0.1:0 until the returned sender fires.
async fn serve(state: clinicflow::server::AppState) -> (std::net::SocketAddr, Stop) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server::run(listener, state, async {
            stopped.await.ok();
        })
        .await;
    });
    (addr, Stop(Some(stop), Some(task)))
}

/// Stops a server started by `serve` or `page_server`.
struct Stop(
    Option<tokio::sync::oneshot::Sender<()>>,
    Option<tokio::task::JoinHandle<()>>,
);

impl Stop {
    async fn stop(mut self) {
        if let Some(s) = self.0.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.1.take() {
            let _ = t.await;
        }
    }
}

/// Runs tests/browser/`script` with `args`; returns its stdout, which must end in `"done":true`.
async fn node(script: &str, args: &[String], env: &[(&str, &str)]) -> String {
    let artifacts = root().join("target/browser-artifacts");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script)
        .args(args)
        .current_dir(root().join("tests/browser"))
        .env("ARTIFACTS", &artifacts);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("node (install Node.js; .ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"done\":true"), "{stdout}");
    stdout
}

fn artifact(name: &str) -> std::path::PathBuf {
    root().join("target/browser-artifacts").join(format!("{name}.png"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_breaks_fixes_and_rolls_back_in_chromium() {
    if skipped("an_admin_edits_breaks_fixes_and_rolls_back_in_chromium") {
        return;
    }
    let (state, dir) = crate::editor::editable().await;
    let (addr, stop) = serve(state.clone()).await;
    node(
        "editor.mjs",
        &[format!("http://{addr}")],
        &[("STAFF_PASSWORD", PASSWORD)],
    )
    .await;
    stop.stop().await;

    let greeting = "prompts/es/greeting.j2";
    assert_eq!(
        std::fs::read_to_string(dir.path().join(greeting)).expect("read"),
        std::fs::read_to_string(root().join(greeting)).expect("read"),
        "rolled back to what was on disk"
    );
    let kinds: Vec<_> = state
        .service
        .store
        .file_versions(greeting, 10)
        .await
        .expect("versions")
        .into_iter()
        .map(|v| (v.n, v.kind, v.rollback_of))
        .collect();
    use clinicflow::store::VersionKind::{Edit, Found, Rollback};
    assert_eq!(kinds, [(3, Rollback, Some(1)), (2, Edit, None), (1, Found, None)]);
    assert!(
        std::fs::read_to_string(dir.path().join("flows/thanks.yaml"))
            .expect("read")
            .contains("(revisado)"),
        "the fixed flow was saved"
    );
    for shot in ["editor", "editor_diagnostic", "editor_history"] {
        assert!(artifact(shot).exists(), "screenshot {shot}");
    }
}

/// A plain HTML page that pastes the widget's one `<script>` tag, served on `listener`.
async fn page_server(listener: tokio::net::TcpListener, assistant: std::net::SocketAddr) -> Stop {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"es\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Clínica San Rafael</title></head><body><h1>Clínica San Rafael</h1>\
         <p>Saque su turno por el chat.</p>\
         <script src=\"http://{assistant}/web/widget.js\" data-clinic=\"clinica-san-rafael\" defer></script>\
         </body></html>"
    );
    let app = poem::Route::new().at(
        "/",
        poem::get(poem::endpoint::make_sync(move |_| poem::web::Html(html.clone()))),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("acceptor");
    let task = tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async {
                    stopped.await.ok();
                },
                Some(std::time::Duration::from_secs(5)),
            )
            .await;
    });
    Stop(Some(stop), Some(task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_books_from_another_allowed_origin_and_is_refused_elsewhere_in_chromium() {
    if skipped("the_widget_books_from_another_allowed_origin_and_is_refused_elsewhere_in_chromium") {
        return;
    }
    // Two more loopback servers: different ports are different origins.
    let allowed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let allowed_origin = format!("http://{}", allowed.local_addr().expect("addr"));
    let refused_origin = format!("http://{}", refused.local_addr().expect("addr"));
    let dir = crate::support::demo_copy();
    let clinic = dir.path().join("flows/clinic.yaml");
    let yaml = std::fs::read_to_string(&clinic).expect("read");
    let listed = "allowed_origins: [\"http://localhost:8000\", \"http://127.0.0.1:8000\"]";
    assert!(yaml.contains(listed));
    std::fs::write(
        &clinic,
        yaml.replace(listed, &format!("allowed_origins: [\"{allowed_origin}\"]")),
    )
    .expect("write");
    let bot = clinicflow::flow::compile::compile_dir(dir.path())
        .map_err(|d| d.render())
        .expect("compiles");
    let state = crate::api::state_for(Arc::new(bot), dir.path())
        .await
        .with_pinned_now(crate::twilio::NOW.parse().expect("datetime"));
    let (addr, stop) = serve(state.clone()).await;
    let pages = [page_server(allowed, addr).await, page_server(refused, addr).await];

    let out = node("widget.mjs", &[allowed_origin, refused_origin], &[]).await;
    for p in pages {
        p.stop().await;
    }
    stop.stop().await;

    let last: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("a JSON line");
    let id = |k: &str| last[k].as_str().map(str::to_string).expect("a conversation id");
    let store = &state.service.store;
    let booked = store
        .list_appointments(&clinicflow::store::AppointmentFilter::default())
        .await
        .expect("list");
    assert_eq!(booked.len(), 1, "one appointment, booked through the widget");
    assert_eq!(
        (booked[0].channel.as_str(), booked[0].session.clone()),
        ("web", format!("web:{}", id("allowed")))
    );
    let refused_session = format!("web:{}", id("refused"));
    assert!(store.load_session(&refused_session).await.expect("load").is_none());
    assert!(
        store
            .turns_after(&refused_session, 0, 10)
            .await
            .expect("turns")
            .is_empty(),
        "no turn stored for the refused origin"
    );
    for shot in ["widget_options", "widget_phone", "widget_refused"] {
        assert!(artifact(shot).exists(), "screenshot {shot}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receptionist_books_and_cancels_and_an_admin_reads_the_dashboard_in_chromium() {
    if skipped("a_receptionist_books_and_cancels_and_an_admin_reads_the_dashboard_in_chromium") {
        return;
    }
    let state = crate::pages::seeded().await;
    let (addr, stop) = serve(state.clone()).await;
    node(
        "pages.mjs",
        &[format!("http://{addr}")],
        &[("STAFF_PASSWORD", PASSWORD)],
    )
    .await;
    stop.stop().await;
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
    for shot in ["agenda", "agenda_book", "dashboard", "conversations", "conversation"] {
        assert!(artifact(shot).exists(), "screenshot {shot}");
    }
}
