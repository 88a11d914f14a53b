//! The API over a real socket: `server::run` on 127.0.0.1:0, driven by an HTTP client.

use std::sync::Arc;
use std::time::Duration;

use clinicflow::flow::compile::compile_dir;
use clinicflow::server::{self, AppState};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{NOW, demo_state, replies, state_for};
use crate::support::{demo_copy, next_reload};

/// A server on an ephemeral loopback port; `stop` shuts it down gracefully.
struct Live {
    base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Live {
    async fn start(state: AppState) -> Live {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, state, async {
            let _ = stopped.await;
        }));
        Live {
            base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task,
        }
    }

    async fn say(&self, conversation: &str, text: &str) -> Value {
        let resp = self
            .http
            .post(format!("{}/v1/conversations/{conversation}/messages", self.base))
            .json(&json!({ "text": text, "now": NOW }))
            .send()
            .await
            .expect("send");
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status.as_u16(), 200, "{text}: {body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await.expect("get");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("json")
    }

    async fn post(&self, path: &str) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .expect("post");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("json")
    }

    /// Graceful shutdown: `run` returns Ok once requests in flight are done.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the server stops within 30 s")
            .expect("server task");
        assert!(result.is_ok(), "{result:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_conversation_over_http() {
    let live = Live::start(demo_state().await).await;
    let script = [
        ("hola", "Clínica San Rafael"),
        ("quería sacar un turno con el cardiólogo", "qué día"),
        ("el jueves 26", "horarios libres"),
        ("a las 10", "nombre"),
        ("Juan Pérez", "documento"),
        ("30111222", "obra social"),
        ("OSDE", "¿Confirmo el turno?"),
        ("sí, confirmo", "reservado"),
    ];
    let mut last = Value::Null;
    for (text, expect) in script {
        last = live.say("wa-1", text).await;
        let said = replies(&last);
        assert!(said.to_lowercase().contains(&expect.to_lowercase()), "{text} → {said}");
    }
    assert_eq!(last["state"], "idle");
    assert_eq!(last["waiting_for_staff"], false);

    let booked = live.get("/v1/appointments?document=30111222").await;
    assert_eq!(booked.as_array().map(Vec::len), Some(1), "{booked}");
    let a = &booked[0];
    assert_eq!(
        (
            a["specialty"].clone(),
            a["date"].clone(),
            a["time"].clone(),
            a["professional"].clone()
        ),
        (
            json!("Cardiología"),
            json!("2026-11-26"),
            json!("10:00"),
            json!("Dra. Laura Gómez")
        )
    );
    assert_eq!(a["conversation"], "wa-1");
    let turns = live.get("/v1/conversations/wa-1/turns").await;
    assert_eq!(turns.as_array().map(Vec::len), Some(8));
    let reminders = live.get("/v1/reminders?status=pending").await;
    assert_eq!(reminders.as_array().map(Vec::len), Some(2), "{reminders}");
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_messages_to_one_conversation_are_all_kept() {
    let live = Arc::new(Live::start(demo_state().await).await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let live = live.clone();
        tasks.spawn(async move { live.say("busy", "hola").await });
    }
    let mut answered = 0;
    while let Some(done) = tasks.join_next().await {
        done.expect("request task");
        answered += 1;
    }
    assert_eq!(answered, 50);
    let conversation = live.get("/v1/conversations/busy").await;
    assert_eq!(conversation["turns"], 50, "{conversation}");
    let turns = live.get("/v1/conversations/busy/turns?limit=1000").await;
    let mut seqs: Vec<u64> = turns
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    if let Ok(live) = Arc::try_unwrap(live) {
        live.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_go_live_while_conversations_continue_and_broken_edits_are_reported() {
    let dir = demo_copy();
    let bot = compile_dir(dir.path()).expect("the demo compiles");
    let state = state_for(Arc::new(bot), dir.path()).await;
    let mut reloads = state.reloader.subscribe();
    let _watch = state.reloader.watch().expect("watch");
    let live = Live::start(state).await;

    let started = live.say("c", "quiero un turno con cardiología").await;
    assert_eq!(started["state"], "book_appointment.details");

    // An admin edits a reply: the next conversation gets it, the one in progress goes on.
    let greeting = dir.path().join("prompts/es/greeting.j2");
    std::fs::write(&greeting, "¡Hola! Bienvenido a {{ clinic.name }} (versión nueva).\n").expect("write");
    next_reload(&mut reloads).await;
    let report = live.get("/v1/reload").await;
    assert_eq!(
        (report["ok"].clone(), report["trigger"].clone()),
        (json!(true), json!("watch")),
        "{report}"
    );
    assert!(replies(&live.say("d", "hola").await).contains("versión nueva"));
    let went_on = live.say("c", "el jueves 26").await;
    assert_eq!(went_on["state"], "book_appointment.pick", "{went_on}");
    assert_eq!(went_on["slots"]["date"], "2026-11-26");

    // A broken edit: the old flows keep serving, /v1/reload shows where the problem is.
    let flow = dir.path().join("flows/faq_hours.yaml");
    let src = std::fs::read_to_string(&flow).expect("read");
    std::fs::write(
        &flow,
        src.replacen("flow: faq_hours", "flow: faq_hours\n  broken: [", 1),
    )
    .expect("write");
    next_reload(&mut reloads).await;
    let report = live.get("/v1/reload").await;
    assert_eq!(report["ok"], false, "{report}");
    let d = &report["diagnostics"][0];
    assert_eq!(d["file"], "flows/faq_hours.yaml", "{report}");
    assert!(d["line"].as_u64() >= Some(1) && d["column"].as_u64() >= Some(1), "{d}");
    assert!(
        d["rendered"].as_str().is_some_and(|r| r.contains("faq_hours.yaml:")),
        "{d}"
    );
    assert!(replies(&live.say("e", "hola").await).contains("versión nueva"));
    let after = live.say("c", "a las 10").await;
    assert_eq!(after["state"], "book_appointment.patient", "{after}");
    // A manual reload says the same, until the file is fixed.
    assert_eq!(live.post("/v1/reload").await["ok"], false);
    std::fs::write(&flow, src).expect("restore");
    let fixed = live.post("/v1/reload").await;
    assert_eq!(
        (fixed["ok"].clone(), fixed["trigger"].clone()),
        (json!(true), json!("manual")),
        "{fixed}"
    );
    live.stop().await;
}

/// Shutdown while turns are queued on one conversation: every request the server took is
/// answered, and the database holds exactly the turns that were answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_turns_in_flight_finish() {
    let state = demo_state().await;
    let store = state.service.store.clone();
    let live = Live::start(state).await;
    let url = format!("{}/v1/conversations/queue/messages", live.base);
    let (first_tx, first_rx) = oneshot::channel::<()>();
    let first_tx = Arc::new(std::sync::Mutex::new(Some(first_tx)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (http, url, first_tx) = (live.http.clone(), url.clone(), first_tx.clone());
        tasks.spawn(async move {
            let sent = http.post(url).json(&json!({ "text": "hola", "now": NOW })).send().await;
            let ok = match sent {
                Ok(resp) => {
                    assert_eq!(resp.status().as_u16(), 200, "a request the server took must succeed");
                    true
                }
                // Not accepted before the listener closed: never processed.
                Err(_) => false,
            };
            if let Some(tx) = first_tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(());
            }
            ok
        });
    }
    let _ = first_rx.await;
    live.stop().await;
    let mut answered = 0u64;
    while let Some(done) = tasks.join_next().await {
        answered += u64::from(done.expect("request task"));
    }
    let session = store.load_session("queue").await.expect("load").expect("session");
    let logged = store.recent_turns("queue", 100).await.expect("turns").len() as u64;
    assert!(answered >= 1);
    assert_eq!((session.turns, logged), (answered, answered));
}
