//! The inbox: conversations handed over to staff, newest activity first, updated live (SSE);
//! one handoff's whole conversation and collected data; reply on the patient's channel (the
//! service's send path, staff name recorded), take, release, resolve (the assistant resumes
//! with what it had collected).

use std::time::Duration;

use poem::http::StatusCode;
use poem::web::sse::{Event, SSE};
use poem::web::{Form, Path, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Page, Staff, State};
use crate::outbound::{Outbound, OutboundKind};
use crate::service::{MAX_TEXT, redact};
use crate::store::{Escalation, EscalationStatus, TurnRecord};

/// At most this many handoffs on the inbox page.
const SHOWN: usize = 200;
/// How often the live update looks for news.
const POLL: Duration = Duration::from_secs(2);

/// One row of the inbox.
async fn rows(state: &crate::server::AppState) -> poem::Result<Vec<Value>> {
    let store = &state.service.store;
    let open = store
        .list_escalations(Some(EscalationStatus::Open), SHOWN)
        .await
        .map_err(internal)?;
    let tz = state.service.bot().clinic.tz.clone();
    let mut rows = Vec::with_capacity(open.len());
    for e in open {
        let transcript = store.full_transcript(&e).await.map_err(internal)?;
        let last = transcript
            .last()
            .map(|t| t.at)
            .unwrap_or(e.created_at)
            .max(e.created_at);
        let waiting = transcript.iter().rev().take_while(|t| !t.input.is_empty()).count();
        rows.push(json!({
            "id": e.id,
            "reason": e.reason,
            "channel": e.channel,
            "who": redact(&e.user),
            "taken_by": e.taken_by,
            "last": last.to_string(),
            "last_local": last.to_zoned(tz.clone()).strftime("%d/%m %H:%M").to_string(),
            "unanswered": waiting,
        }));
    }
    rows.sort_by(|a, b| b["last"].as_str().cmp(&a["last"].as_str()));
    Ok(rows)
}

fn internal(e: impl std::fmt::Display) -> poem::Error {
    tracing::error!("console: {e}");
    poem::Error::from_string(
        "the database did not answer; try again",
        StatusCode::SERVICE_UNAVAILABLE,
    )
}

#[handler]
pub(super) async fn page(state: State<'_>, req: &Request, staff: Staff) -> poem::Result<Response> {
    let rows = rows(&state).await?;
    let view = Page::new(&state, req, "inbox.html").staff(&staff).with("rows", rows);
    Ok(state.console.render(view))
}

/// The list alone, for the live refresh.
#[handler]
pub(super) async fn list(state: State<'_>, req: &Request, staff: Staff) -> poem::Result<Response> {
    let rows = rows(&state).await?;
    let view = Page::new(&state, req, "inbox_list.html")
        .staff(&staff)
        .with("rows", rows);
    Ok(state.console.render(view))
}

/// What staff sees of one turn.
fn turn_view(t: &TurnRecord, tz: &jiff::tz::TimeZone) -> Value {
    let staff = t.intent.as_deref() == Some("outbound:staff");
    let by = t
        .effects
        .iter()
        .find_map(|e| e.get("by").and_then(Value::as_str).map(str::to_string));
    json!({
        "at": t.at.to_zoned(tz.clone()).strftime("%d/%m %H:%M").to_string(),
        "input": t.input,
        "replies": t.replies,
        "from_staff": staff,
        "outbound": t.input.is_empty() && !staff,
        "by": by,
        "problems": t.problems,
    })
}

async fn escalation(state: &crate::server::AppState, id: &str) -> poem::Result<Escalation> {
    if id.is_empty() || id.len() > 200 {
        return Err(poem::Error::from_status(StatusCode::NOT_FOUND));
    }
    state
        .service
        .store
        .get_escalation(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| poem::Error::from_string("no such handoff", StatusCode::NOT_FOUND))
}

#[handler]
pub(super) async fn show(state: State<'_>, req: &Request, staff: Staff, id: Path<String>) -> poem::Result<Response> {
    let e = escalation(&state, &id).await?;
    let store = &state.service.store;
    let tz = state.service.bot().clinic.tz.clone();
    let transcript: Vec<Value> = store
        .full_transcript(&e)
        .await
        .map_err(internal)?
        .iter()
        .map(|t| turn_view(t, &tz))
        .collect();
    let session = store.load_session(&e.session).await.map_err(internal)?;
    let slots: Vec<Value> = session
        .iter()
        .flat_map(|s| s.stack.iter())
        .flat_map(|f| {
            f.slots
                .iter()
                .map(move |(k, v)| json!({ "flow": f.flow, "name": k, "value": display(v) }))
        })
        .collect();
    let notice = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("done=")))
        .map(str::to_string);
    let view = Page::new(&state, req, "escalation.html")
        .staff(&staff)
        .with(
            "e",
            json!({
                "id": e.id, "reason": e.reason, "channel": e.channel, "who": redact(&e.user),
                "open": e.status == EscalationStatus::Open, "taken_by": e.taken_by,
                "mine": e.taken_by.as_deref() == Some(staff.name.as_str()),
            }),
        )
        .with("transcript", transcript)
        .with("slots", slots)
        .with("notice", notice);
    Ok(state.console.render(view))
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
pub(super) struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

fn back(id: &str, done: &str) -> Response {
    Redirect::see_other(format!("/console/inbox/{id}?done={done}")).into_response()
}

#[handler]
pub(super) async fn reply(
    state: State<'_>,
    staff: Staff,
    id: Path<String>,
    form: Form<ReplyForm>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.csrf)?;
    let text = form.0.text.trim().to_string();
    if text.is_empty() {
        return Ok(back(&id, "empty_reply"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(poem::Error::from_string(
            format!("a reply has at most {MAX_TEXT} characters"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ));
    }
    let e = escalation(&state, &id).await?;
    if e.status != EscalationStatus::Open {
        return Ok(back(&id, "resolved"));
    }
    let msg = Outbound {
        session: e.session.clone(),
        channel: e.channel.clone(),
        user: e.user.clone(),
        text,
        kind: OutboundKind::Staff,
        by: Some(staff.name.clone()),
        ..Default::default()
    };
    let now = state.service.now();
    let notice = match state.service.send(&*state.sender, &msg, &now).await {
        Ok(crate::service::Delivery::Sent) => "sent",
        // In the outbox: the worker retries it.
        Ok(crate::service::Delivery::Queued) => "queued",
        Ok(crate::service::Delivery::Refused) => "not_delivered",
        Err(err) => {
            tracing::warn!("a staff reply was not stored: {err}");
            return Ok(back(&id, "not_delivered"));
        }
    };
    if notice == "not_delivered" {
        return Ok(back(&id, notice));
    }
    // Whoever answers has it.
    if e.taken_by.is_none() {
        state
            .service
            .store
            .take_escalation(&e.id, Some(&staff.name))
            .await
            .map_err(internal)?;
    }
    Ok(back(&id, notice))
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(super) async fn take(
    state: State<'_>,
    staff: Staff,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.csrf)?;
    escalation(&state, &id).await?;
    state
        .service
        .store
        .take_escalation(&id, Some(&staff.name))
        .await
        .map_err(internal)?;
    Ok(back(&id, "take"))
}

#[handler]
pub(super) async fn release(
    state: State<'_>,
    staff: Staff,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.csrf)?;
    escalation(&state, &id).await?;
    state.service.store.take_escalation(&id, None).await.map_err(internal)?;
    Ok(back(&id, "release"))
}

#[handler]
pub(super) async fn resolve(
    state: State<'_>,
    staff: Staff,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> poem::Result<Response> {
    staff.check_csrf(&form.csrf)?;
    escalation(&state, &id).await?;
    let now = state.service.now();
    let e = state
        .service
        .store
        .resolve_escalation(&id, Some(&staff.name), None, now.timestamp())
        .await
        .map_err(internal)?;
    state.service.release_to_bot(&e.session).await.map_err(internal)?;
    Ok(back(&id, "resolved"))
}

/// Server-sent events: `inbox` with the number of open handoffs whenever the inbox changes
/// (a new handoff, a new message in one, one resolved). The page refreshes its list and,
/// when the number grew, shows a badge and plays a sound.
#[handler]
pub(super) async fn events(state: State<'_>, _staff: Staff) -> SSE {
    let state = state.0.clone();
    let stream = futures_util::stream::unfold((state, String::new()), |(state, last)| async move {
        loop {
            let now = match rows(&state).await {
                Ok(rows) => json!({ "open": rows.len(), "rows": rows }).to_string(),
                Err(_) => last.clone(),
            };
            if now != last {
                let open = serde_json::from_str::<Value>(&now)
                    .ok()
                    .and_then(|v| v["open"].as_u64())
                    .unwrap_or(0);
                let event = Event::message(open.to_string()).event_type("inbox");
                return Some((event, (state, now)));
            }
            tokio::time::sleep(POLL).await;
        }
    });
    SSE::new(stream).keep_alive(Duration::from_secs(15))
}
