//! The HTTP API, in process (every request goes through the whole poem app: routing, auth,
//! body limit, error mapping). Tests over a real socket are in `api/live.rs`, and of the
//! `serve` command in `api/serve.rs`.

mod limits;
mod live;
mod roles;
mod serve;

use std::path::Path;
use std::sync::Arc;

use clinicflow::api::{self, ApiKeys};
use clinicflow::flow::bot::Bot;
use clinicflow::reload::Reloader;
use clinicflow::server::{self, AppState};
use clinicflow::service::Service;
use clinicflow::store::Store;
use poem::http::{Method, StatusCode};
use poem::{Endpoint, EndpointExt, Request, Response};
use serde_json::{Value, json};

use crate::support::{demo, root};

/// The demo clinic on a fresh mem:// store, with the clock override tests need.
pub async fn state_for(bot: Arc<Bot>, dir: &Path) -> AppState {
    let store = Store::connect("mem://").await.expect("mem:// store");
    let service = Arc::new(Service::new(store, bot));
    let reloader = Reloader::new(dir, service.clone());
    AppState::new(service, reloader).with_clock_override(true)
}

pub async fn demo_state() -> AppState {
    state_for(demo(), root()).await
}

/// A client that calls the app in process.
pub struct Client {
    ep: poem::endpoint::BoxEndpoint<'static, Response>,
    key: Option<String>,
}

pub const NOW: &str = "2026-11-23T10:00";

impl Client {
    pub fn new(state: AppState) -> Client {
        Client {
            ep: server::app(state).boxed(),
            key: None,
        }
    }

    /// A client of any endpoint (a server of several clinics: `server::app_clinics`).
    pub fn over(ep: poem::endpoint::BoxEndpoint<'static, Response>) -> Client {
        Client { ep, key: None }
    }

    pub fn with_key(mut self, key: &str) -> Client {
        self.key = Some(key.to_string());
        self
    }

    /// Sends a request; the body is raw bytes (JSON or not). Returns the status and the body
    /// parsed as JSON (a string when it is not JSON).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri_str(path);
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        if let Some(key) = &self.key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.ep.get_response(req.body(body)).await;
        let status = resp.status();
        let text = resp.into_body().into_string().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.raw(Method::GET, path, Vec::new(), &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.raw(Method::POST, path, body.to_string().into_bytes(), &[]).await
    }

    /// One patient message at the pinned test time with an `Idempotency-Key`.
    pub async fn send_keyed(&self, conversation: &str, text: &str, key: &str) -> (StatusCode, Value) {
        let body = json!({ "text": text, "now": NOW }).to_string().into_bytes();
        let path = format!("/v1/conversations/{conversation}/messages");
        self.raw(Method::POST, &path, body, &[("Idempotency-Key", key)]).await
    }

    /// One patient message at the pinned test time; the answer must be 200.
    pub async fn say(&self, conversation: &str, text: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/v1/conversations/{conversation}/messages"),
                json!({ "text": text, "now": NOW }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{text}: {body}");
        body
    }
}

pub fn replies(turn: &Value) -> String {
    turn["replies"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// Every error is `{error, message}` with a non-empty message.
#[track_caller]
fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], code, "{}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", got.1);
}

#[tokio::test]
async fn without_the_key_v1_answers_401_and_probes_stay_open() {
    let state = demo_state().await.with_keys(ApiKeys::parse("k1,k2"));
    let anonymous = Client::new(state.clone());
    assert_error(
        &anonymous.get("/v1/flows").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, _) = anonymous
        .post("/v1/conversations/a/messages", json!({ "text": "hola", "now": NOW }))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong = Client::new(state.clone()).with_key("k3");
    assert_error(&wrong.get("/v1/reload").await, StatusCode::UNAUTHORIZED, "unauthorized");
    for open in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        assert_eq!(anonymous.get(open).await.0, StatusCode::OK, "{open}");
    }
    assert_eq!(anonymous.get("/metrics").await.0, StatusCode::UNAUTHORIZED);
    let client = Client::new(state).with_key("k2");
    assert_eq!(client.get("/v1/flows").await.0, StatusCode::OK);
    assert!(replies(&client.say("a", "hola").await).contains("Clínica San Rafael"));
}

#[tokio::test]
async fn client_errors_are_json_with_a_message() {
    let client = Client::new(demo_state().await);
    let post = |body: &str| {
        client.raw(
            Method::POST,
            "/v1/conversations/a/messages",
            body.as_bytes().to_vec(),
            &[],
        )
    };
    assert_error(
        &post("{\"text\": \"hola\"").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(&post("[1, 2]").await, StatusCode::BAD_REQUEST, "bad_request");
    assert_error(&post("{\"user\": \"x\"}").await, StatusCode::BAD_REQUEST, "bad_request");
    assert_error(
        &post("{\"text\": \"   \"}").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &post("{\"text\": \"hola\", \"now\": \"ayer\"}").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &post("{\"text\": \"hola\", \"channel\": \"a b\"}").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );

    // A message over 4,000 characters is a normal answer asking for a shorter one (nothing
    // is processed or stored); only a body over 1 MiB is refused.
    client.say("a", "quiero un turno con cardiología").await;
    for n in [4_001, 100_000] {
        let long = json!({ "text": "ñ".repeat(n), "now": NOW }).to_string();
        let (status, turn) = post(&long).await;
        assert_eq!(status, StatusCode::OK, "{n}: {turn}");
        assert!(replies(&turn).contains("demasiado largo"), "{n}: {turn}");
        assert_eq!(turn["state"], "book_appointment.details", "{turn}");
    }
    assert_eq!(client.get("/v1/conversations/a").await.1["turns"], 1);
    let huge = json!({ "text": "a".repeat(1_100_000) }).to_string();
    assert_error(&post(&huge).await, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    // Unknown ids.
    assert_error(
        &client.get("/v1/conversations/nobody").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &client.get("/v1/conversations/nobody/turns").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, _) = client
        .raw(Method::DELETE, "/v1/conversations/nobody", Vec::new(), &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(
        &client.get("/v1/appointments/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let cancel = client.post("/v1/appointments/nope/cancel", json!({})).await;
    assert_error(&cancel, StatusCode::NOT_FOUND, "not_found");
    let reply = client
        .post("/v1/escalations/nope/reply", json!({ "text": "hola" }))
        .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
    let resolve = client
        .raw(Method::POST, "/v1/escalations/nope/resolve", Vec::new(), &[])
        .await;
    assert_error(&resolve, StatusCode::NOT_FOUND, "not_found");
    assert_error(&client.get("/v1/flows/nope").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &client.get("/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Bad query values.
    assert_error(
        &client.get("/v1/reminders?status=lost").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &client.get("/v1/escalations?status=closed").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &client.get("/v1/appointments?date=26/11").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &client.get("/v1/appointments?limit=0").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &client.get("/v1/availability?date=2026-11-26").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let unknown = client.get("/v1/availability?specialty=Magia&date=2026-11-26").await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "unknown_specialty");
    let (status, _) = client.raw(Method::PUT, "/v1/flows", Vec::new(), &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_pinned_clock_is_refused_by_a_real_server() {
    let client = Client::new(demo_state().await.with_clock_override(false));
    let got = client
        .post("/v1/conversations/a/messages", json!({ "text": "hola", "now": NOW }))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "bad_request");
    let got = client
        .post("/v1/conversations/a/messages", json!({ "text": "hola" }))
        .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
}

#[tokio::test]
async fn the_same_idempotency_key_gets_the_first_answer_once() {
    let state = demo_state().await;
    let client = Client::new(state.clone());
    let send = |conversation, text, key| client.send_keyed(conversation, text, key);
    let first = send("a", "quiero un turno con cardiología", "m1").await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first.1["replayed"], false);
    // A retry (the same body) is not processed again.
    let again = send("a", "quiero un turno con cardiología", "m1").await;
    assert_eq!(again.1["replies"], first.1["replies"]);
    assert_eq!(again.1["state"], first.1["state"]);
    assert_eq!(again.1["replayed"], true);
    let (_, conversation) = client.get("/v1/conversations/a").await;
    assert_eq!(conversation["turns"], 1, "{conversation}");
    let (_, turns) = client.get("/v1/conversations/a/turns").await;
    assert_eq!(turns.as_array().map(Vec::len), Some(1));

    // The key is scoped to its conversation; a new key is a new message.
    let other = send("b", "hola", "m1").await;
    assert_eq!(other.1["replayed"], false);
    let next = send("a", "el jueves 26", "m2").await;
    assert_eq!(next.1["slots"]["date"], "2026-11-26", "{}", next.1);
    assert_eq!(client.get("/v1/conversations/a").await.1["turns"], 2);

    // The same key with another body is refused, and nothing is processed.
    let reused = send("a", "a las 10", "m2").await;
    assert_error(&reused, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_mismatch");
    assert_eq!(client.get("/v1/conversations/a").await.1["turns"], 2);
}

/// `Idempotency-Key: b:c` on conversation `a` once replayed conversation `a:b`'s key `c`
/// (its state and slots): keys are scoped without ambiguity.
#[tokio::test]
async fn an_idempotency_key_never_replays_another_conversation() {
    let client = Client::new(demo_state().await);
    let send = |conversation, text, key| client.send_keyed(conversation, text, key);
    let theirs = send("a:b", "quiero un turno con cardiología", "c").await;
    assert_eq!(theirs.1["state"], "book_appointment.details", "{}", theirs.1);
    let mine = send("a", "hola", "b:c").await;
    assert_eq!(mine.0, StatusCode::OK, "{}", mine.1);
    assert_eq!(mine.1["replayed"], false, "{}", mine.1);
    assert_ne!(mine.1["state"], "book_appointment.details", "{}", mine.1);
    assert!(mine.1["slots"].get("specialty").is_none(), "{}", mine.1);
    assert_eq!(client.get("/v1/conversations/a").await.1["turns"], 1);
}

#[tokio::test]
async fn conversation_state_turns_and_reset() {
    let client = Client::new(demo_state().await);
    client.say("c", "quiero un turno con cardiología").await;
    let (status, c) = client.get("/v1/conversations/c").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["state"], "book_appointment.details");
    assert_eq!(c["slots"]["specialty"], "Cardiología");
    assert_eq!(c["stack"][0]["flow"], "book_appointment");
    assert_eq!(c["stack"][0]["waiting_for"], "slot:date");
    assert_eq!((c["lang"].clone(), c["channel"].clone()), (json!("es"), json!("api")));

    let (status, _) = client.raw(Method::DELETE, "/v1/conversations/c", Vec::new(), &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, c) = client.get("/v1/conversations/c").await;
    assert_eq!(
        (c["state"].clone(), c["stack"].clone(), c["turns"].clone()),
        (json!("idle"), json!([]), json!(1))
    );
    // The log outlives the reset.
    let (status, turns) = client.get("/v1/conversations/c/turns?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(turns[0]["input"], "quiero un turno con cardiología");
    assert_eq!(turns[0]["state_after"], "book_appointment.details");
    let fresh = client.say("c", "el jueves 26").await;
    assert_eq!(fresh["state"], "idle", "{fresh}");
    assert_eq!(
        client.get("/v1/conversations/c/turns").await.1.as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn staff_take_over_reply_on_the_channel_and_hand_back() {
    let state = demo_state().await;
    let client = Client::new(state.clone());
    let turn = client.say("p", "quiero hablar con una persona").await;
    assert_eq!(turn["waiting_for_staff"], true, "{turn}");

    let (status, open) = client.get("/v1/escalations?status=open").await;
    assert_eq!(status, StatusCode::OK);
    let open = open.as_array().cloned().unwrap_or_default();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["conversation"], "p");
    assert_eq!(open[0]["status"], "open");
    let id = open[0]["id"].as_str().expect("id").to_string();
    let metrics = client.get("/metrics").await.1;
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("clinicflow_open_escalations{clinic=\"main\"} 1")),
        "{metrics}"
    );

    // While staff has it, the assistant does not take the conversation back on its own.
    let waiting = client.say("p", "¿hola?").await;
    assert_eq!(waiting["waiting_for_staff"], true);

    let (status, sent) = client
        .post(
            &format!("/v1/escalations/{id}/reply"),
            json!({ "text": "Hola, soy Ana de recepción." }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let (_, turns) = client.get("/v1/conversations/p/turns").await;
    let last = turns.as_array().and_then(|t| t.last()).cloned().unwrap_or_default();
    assert_eq!(last["intent"], "outbound:staff", "{turns}");
    assert_eq!(last["replies"][0], "Hola, soy Ana de recepción.");

    let (status, resolved) = client
        .post(&format!("/v1/escalations/{id}/resolve"), json!({ "by": "ana" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(
        (resolved["status"].clone(), resolved["resolved_by"].clone()),
        (json!("resolved"), json!("ana"))
    );
    assert_eq!(client.get("/v1/conversations/p").await.1["waiting_for_staff"], false);
    let late = client
        .post(&format!("/v1/escalations/{id}/reply"), json!({ "text": "¿sigue ahí?" }))
        .await;
    assert_error(&late, StatusCode::CONFLICT, "resolved");
    assert_eq!(client.get("/v1/escalations?status=open").await.1, json!([]));
    let back = client.say("p", "quiero un turno con cardiología").await;
    assert_eq!(back["state"], "book_appointment.details", "{back}");
}

/// The API books with the real clock, so dates are picked a week ahead from what the
/// availability search offers.
#[tokio::test]
async fn appointments_follow_the_same_rules_as_the_flows() {
    let client = Client::new(demo_state().await);
    let tz = demo().clinic.tz.clone();
    let week = jiff::Zoned::now().with_time_zone(tz).date() + jiff::Span::new().days(7);
    let (status, free) = client
        .get(&format!("/v1/availability?specialty=cardiologia&date={week}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{free}");
    assert_eq!(free["specialty"], "Cardiología");
    let alts = free["alternatives"].as_array().cloned().unwrap_or_default();
    assert!(alts.len() >= 2, "{free}");
    let (first, second) = (&alts[0], &alts[1]);

    let booking = json!({
        "specialty": "Cardiología", "date": first["date"], "time": first["time"],
        "patient_name": "Ana Gómez", "document": "30.111.222", "coverage": "OSDE", "remind": true,
    });
    let (status, booked) = client.post("/v1/appointments", booking.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    assert_eq!(
        (booked["status"].clone(), booked["document"].clone()),
        (json!("booked"), json!("30111222"))
    );
    let id = booked["id"].as_str().expect("id").to_string();
    assert_error(
        &client.post("/v1/appointments", booking).await,
        StatusCode::CONFLICT,
        "taken",
    );
    let (_, reminders) = client.get("/v1/reminders?status=pending").await;
    assert!(
        reminders
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["appointment"] == json!(id))),
        "{reminders}"
    );

    let (status, listed) = client.get("/v1/appointments?document=30111222&status=booked").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(client.get(&format!("/v1/appointments/{id}")).await.1["id"], json!(id));

    let to = json!({ "date": second["date"], "time": second["time"] });
    let (status, moved) = client.post(&format!("/v1/appointments/{id}/reschedule"), to).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        (moved["date"].clone(), moved["time"].clone()),
        (second["date"].clone(), second["time"].clone())
    );
    let bad = client
        .post(
            &format!("/v1/appointments/{id}/reschedule"),
            json!({ "date": "mañana", "time": "10:00" }),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_date");

    let (status, cancelled) = client.post(&format!("/v1/appointments/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let again = client.post(&format!("/v1/appointments/{id}/cancel"), json!({})).await;
    assert_error(&again, StatusCode::CONFLICT, "already_cancelled");
    let (_, pending) = client.get("/v1/reminders?status=pending").await;
    assert_eq!(pending, json!([]));
    let missing = client.post("/v1/appointments", json!({ "specialty": "Cardiología", "date": week.to_string(), "time": "10:00", "patient_name": "", "document": "1" })).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "missing_patient_name");
}

#[tokio::test]
async fn flows_reload_metrics_and_docs() {
    let client = Client::new(demo_state().await);
    let (status, flows) = client.get("/v1/flows").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = flows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(names.contains(&"book_appointment"), "{names:?}");
    let (status, flow) = client.get("/v1/flows/book_appointment").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        flow["mermaid"].as_str().is_some_and(|m| m.starts_with("flowchart")),
        "{flow}"
    );
    assert!(flow["states"].as_array().is_some_and(|s| s.contains(&json!("confirm"))));

    let (_, last) = client.get("/v1/reload").await;
    assert_eq!(
        (last["trigger"].clone(), last["ok"].clone()),
        (json!("start"), json!(true))
    );
    let (status, manual) = client.post("/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            manual["trigger"].clone(),
            manual["ok"].clone(),
            manual["generation"].clone()
        ),
        (json!("manual"), json!(true), json!(1))
    );

    client.say("m", "hola").await;
    let (_, metrics) = client.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default();
    for name in [
        "clinicflow_turns_total{outcome=\"ok\",clinic=\"main\"}",
        "clinicflow_reloads_total{outcome=\"ok\",clinic=\"main\"}",
        "clinicflow_turn_seconds_bucket",
        "clinicflow_nlu_total",
        "clinicflow_reloads_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    let (status, docs) = client.get("/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(docs.as_str().is_some_and(|d| d.contains("swagger")), "{docs}");
    let (_, spec) = client.get("/openapi.json").await;
    assert_eq!(spec, serde_json::from_str::<Value>(&api::spec()).expect("spec"));
    assert_eq!(client.get("/readyz").await.1["ready"], true);
}

/// docs/openapi.json is the generated document; regenerate it after changing the API with
/// `UPDATE_OPENAPI=1 cargo test --test integration api::openapi`.
#[test]
fn openapi_document_is_committed() {
    let path = root().join("docs/openapi.json");
    let generated = format!("{}\n", api::spec());
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json differs from the API the code serves; regenerate it with\n\
         UPDATE_OPENAPI=1 cargo test --test integration api::openapi\nand commit it"
    );
}

/// What `check` cannot see fails at run time visibly: the patient gets the fallback reply, the
/// turn and the reload report say which template, a metric counts it. A broken edit on disk
/// makes /readyz say the last good version is serving.
#[tokio::test]
async fn render_failures_are_reported_and_readyz_tells_stale_from_ready() {
    let dir = crate::support::demo_copy();
    let bot = Arc::new(clinicflow::flow::compile::compile_dir(dir.path()).expect("demo"));
    let client = Client::new(state_for(bot, dir.path()).await);
    let (status, ready) = client.get("/readyz").await;
    assert_eq!(
        (status, ready["status"].clone()),
        (StatusCode::OK, json!("ready")),
        "{ready}"
    );

    // Wrong arguments to a filter: only rendering finds out.
    std::fs::write(
        dir.path().join("prompts/es/greeting.j2"),
        "Hola, {{ clinic.name | time_hm(1, 2) }}.\n",
    )
    .expect("write");
    assert_eq!(client.post("/v1/reload", json!({})).await.1["ok"], true);
    let turn = client.say("r", "hola").await;
    let replies = replies(&turn);
    assert!(!replies.trim().is_empty(), "never an empty reply: {turn}");
    assert!(!replies.contains("Hola,"), "{turn}");
    assert!(
        replies.contains("Disculpe, no le entendí"),
        "the clinic's fallback (prompts/es/fallback.j2): {turn}"
    );
    let (_, log) = client.get("/v1/conversations/r/turns").await;
    assert!(log.to_string().contains("greeting.j2"), "recorded on the turn: {log}");
    let (_, last) = client.get("/v1/reload").await;
    let listed = last["render_errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{last}");
    assert!(listed[0].as_str().is_some_and(|e| e.contains("greeting.j2")), "{last}");
    let (_, metrics) = client.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("clinicflow_render_errors_total")
    );

    // A broken edit: still serving (200), but not "ready" in the same words.
    let flow = dir.path().join("flows/faq_hours.yaml");
    let src = std::fs::read_to_string(&flow).expect("read");
    std::fs::write(
        &flow,
        src.replacen("flow: faq_hours", "flow: faq_hours\n  broken: [", 1),
    )
    .expect("write");
    assert_eq!(client.post("/v1/reload", json!({})).await.1["ok"], false);
    let (status, ready) = client.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["status"], "stale", "{ready}");
    assert_eq!(ready["problems"], 1, "{ready}");
    assert_eq!(
        ready["message"], "serving last good version; files on disk have 1 problem",
        "{ready}"
    );
}
