//! Without an auth token, unsigned webhooks are accepted from this machine only: over a real
//! loopback socket (`server::run`, and `clinicflow serve` with its warning at start).

use std::process::Stdio;
use std::time::Duration;

use clinicflow::channels::twilio::TwilioConfig;
use clinicflow::server;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{CLINIC_WA, PATIENT_WA, Twiml, state_with};
use crate::support::{bin, demo, root};

const FORM: &str = "MessageSid=SMlive1&From=whatsapp%3A%2B5491155550000&To=whatsapp%3A%2B14155238886&Body=hola";

#[tokio::test]
async fn unsigned_requests_from_loopback_are_accepted_without_a_token() {
    let state = state_with(demo(), TwilioConfig::from_lookup(|_| None)).await;
    let store = state.service.store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let post = |extra: Option<(&'static str, &'static str)>| {
        let mut req = http
            .post(format!("{base}/twilio/messaging"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(FORM);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let resp = post(None).await.expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    let twiml = Twiml::parse(&resp.text().await.expect("body"));
    assert!(twiml.messages()[0].contains("Clínica San Rafael"), "{}", twiml.xml);
    // A local reverse proxy relaying someone else is not "this machine".
    let proxied = post(Some(("x-forwarded-for", "203.0.113.9"))).await.expect("post");
    assert_eq!(proxied.status().as_u16(), 403);

    let session = clinicflow::channels::twilio::session_id("whatsapp", PATIENT_WA, CLINIC_WA);
    assert_eq!(store.recent_turns(&session, 10).await.expect("turns").len(), 1);
    let _ = stop.send(());
    server.await.expect("join").expect("server");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_warns_once_when_webhooks_are_not_verified() {
    let dir = root().display().to_string();
    let mut child = Command::new(bin())
        .args(["serve", "--dir", &dir, "--db", "mem://", "--addr", "127.0.0.1:0"])
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("CLINICFLOW_PUBLIC_URL")
        .env_remove("CLINICFLOW_API_KEYS")
        // The folder holds two clinics: the sandbox number the form writes to is the
        // deployment's (San Rafael's) because the environment names it.
        .env("TWILIO_WHATSAPP_FROM", "whatsapp:+14155238886")
        .env_remove("CLINICFLOW_ADDR")
        .env_remove("CLINICFLOW_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut warnings = Vec::new();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("warning:") && line.contains("TWILIO_AUTH_TOKEN") {
                warnings.push(line.clone());
            }
            if let Some(rest) = line.split("serving ").nth(1) {
                return rest.split_whitespace().next().map(String::from);
            }
        }
        None
    })
    .await
    .expect("serve starts within 60 s")
    .expect("a `serving` line");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("this machine only"), "{warnings:?}");

    let resp = reqwest::Client::new()
        .post(format!("{base}/twilio/messaging"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(FORM)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(Twiml::parse(&resp.text().await.expect("body")).has("Message"));
    child.kill().await.expect("kill");
}
