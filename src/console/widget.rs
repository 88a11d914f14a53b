//! The web chat widget: `GET /web/widget.js` (one `<script>` tag with `data-clinic="slug"`)
//! and `POST /web/:clinic/messages`, a turn on channel `web` through the same service as
//! WhatsApp, rate limited like the other channels. Only pages from the clinic's
//! `web.allowed_origins` may call it (CORS); any other origin gets 403.

use poem::http::{HeaderValue, Method, StatusCode};
use poem::web::{Json, Path};
use poem::{IntoResponse, Request, Response, Route, get, handler};
use serde::Deserialize;
use serde_json::json;
use unicode_normalization::UnicodeNormalization;

use super::State;
use crate::limits::Verdict;
use crate::server::AppState;
use crate::service::{MAX_TEXT, TurnRequest};

/// The clinic's slug in the widget's URL: its name folded to ASCII, `clinica-san-rafael`.
pub fn slug(name: &str) -> String {
    let folded: String = name
        .nfd()
        .filter(char::is_ascii)
        .collect::<String>()
        .to_ascii_lowercase();
    folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[derive(Deserialize)]
struct MessageIn {
    /// The browser's conversation id (random, kept in localStorage).
    conversation: String,
    text: String,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": status.as_u16(), "message": message }))).into_response()
}

/// The page's origin when the clinic allows it.
fn allowed_origin(state: &AppState, req: &Request) -> Option<String> {
    let origin = req.headers().get("origin")?.to_str().ok()?.to_ascii_lowercase();
    let bot = state.service.bot();
    bot.clinic.web_origins.contains(&origin).then_some(origin)
}

fn with_cors(mut resp: Response, origin: &str) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert("access-control-allow-origin", v);
    }
    h.insert("vary", HeaderValue::from_static("Origin"));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert("access-control-allow-headers", HeaderValue::from_static("content-type"));
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    resp
}

#[handler]
async fn messages(state: State<'_>, req: &Request, clinic: Path<String>, body: poem::Body) -> Response {
    let bot = state.service.bot();
    if *clinic != slug(&bot.clinic.name) {
        return refuse(StatusCode::NOT_FOUND, "no such clinic");
    }
    let Some(origin) = allowed_origin(&state, req) else {
        return refuse(StatusCode::FORBIDDEN, "this website may not use the clinic's chat");
    };
    if req.method() == Method::OPTIONS {
        return with_cors(StatusCode::NO_CONTENT.into_response(), &origin);
    }
    let resp = turn(&state, body).await;
    with_cors(resp, &origin)
}

async fn turn(state: &AppState, body: poem::Body) -> Response {
    let Ok(bytes) = body.into_bytes_limit(64 * 1024).await else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the message is too large");
    };
    let Ok(msg) = serde_json::from_slice::<MessageIn>(&bytes) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected {\"conversation\": \"…\", \"text\": \"…\"}",
        );
    };
    let tame = msg.conversation.len() >= 16
        && msg.conversation.len() <= 64
        && msg.conversation.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !tame {
        return refuse(
            StatusCode::BAD_REQUEST,
            "`conversation` is 16 to 64 letters, digits or '-'",
        );
    }
    let text: String = msg.text.trim().chars().take(MAX_TEXT + 1).collect();
    if text.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "`text` is empty");
    }
    let session = format!("web:{}", msg.conversation);
    if let Verdict::Limited { .. } = state.limits.check("web", &msg.conversation, &session) {
        let lang = state.service.bot().clinic.language;
        return Json(json!({ "replies": [crate::limits::slow_down(lang)], "limited": true })).into_response();
    }
    let req = TurnRequest {
        session_id: session,
        channel: "web".into(),
        user: msg.conversation,
        text,
        now: state.now(),
        message_id: None,
        llm_budget: None,
    };
    // Like the other channels: a browser that closes must not cut a turn between its
    // effects and its commit.
    let service = state.service.clone();
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!("web chat turn failed: {e}");
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the assistant is not available right now",
        )
    };
    match state.detached(async move { service.handle(req).await }).await {
        Ok(Ok(r)) => Json(json!({
            "replies": r.replies,
            "waiting_for_staff": r.waiting_for_staff,
            "ended": r.ended,
        }))
        .into_response(),
        Ok(Err(e)) => failed(&e),
        Err(e) => failed(&e),
    }
}

#[handler]
fn script() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header("Cache-Control", "public, max-age=300")
        .header("Access-Control-Allow-Origin", "*")
        .body(include_str!("assets/widget.js"))
}

/// The widget's routes, nested at `/web`.
pub fn routes() -> impl poem::Endpoint<Output = Response> {
    Route::new()
        .at("/widget.js", get(script))
        .at("/:clinic/messages", poem::post(messages).options(messages))
}
