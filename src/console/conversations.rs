//! Conversations (admins): search by id, channel, day, flow state, or the patient's document
//! or phone, newest activity first, a page at a time; one conversation with every turn (what
//! the patient wrote, the replies, when), the path through the flow's states, the intents,
//! which understanding answered (rules, LLM, cache), LLM tokens and cost, the effects, and
//! any problem met while talking, highlighted.

use poem::http::StatusCode;
use poem::web::{Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dashboard::prices;
use super::view::{day_range, enc, field, internal, local, parse_day, phone_of};
use super::{Page, Staff, State};
use crate::store::{ConversationQuery, EscalationStatus, TurnRecord};

/// Conversations per page.
const PAGE: usize = 25;
/// Turns shown of one conversation (the first ones).
const TURNS: usize = 1_000;

#[derive(Deserialize, Default, Clone)]
pub(super) struct Search {
    id: Option<String>,
    channel: Option<String>,
    date: Option<String>,
    state: Option<String>,
    document: Option<String>,
    phone: Option<String>,
    page: Option<usize>,
}

impl Search {
    /// The query string of this search on another page.
    fn link(&self, page: usize) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("id", &self.id),
            ("channel", &self.channel),
            ("date", &self.date),
            ("state", &self.state),
            ("document", &self.document),
            ("phone", &self.phone),
        ] {
            if let Some(v) = field(v) {
                parts.push(format!("{k}={}", enc(&v)));
            }
        }
        parts.push(format!("page={page}"));
        format!("/console/conversations?{}", parts.join("&"))
    }
}

/// The channels a conversation can be on, for the search form.
const CHANNELS: [&str; 7] = ["whatsapp", "sms", "voice", "web", "api", "cli", "test"];

#[handler]
pub(super) async fn list(state: State<'_>, req: &Request, staff: Staff, q: Query<Search>) -> poem::Result<Response> {
    staff.admin()?;
    let s = q.0;
    let page = s.page.unwrap_or(0).min(10_000);
    let day = field(&s.date).as_deref().and_then(parse_day);
    let query = ConversationQuery {
        id: field(&s.id),
        channel: field(&s.channel).filter(|c| CHANNELS.contains(&c.as_str())),
        active: day.and_then(|d| day_range(d, &state)),
        state: field(&s.state),
        document: field(&s.document).map(|d| crate::actions::normalize_document(&d)),
        phone: field(&s.phone)
            .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|p| !p.is_empty()),
        offset: page * PAGE,
        limit: PAGE,
    };
    let mut rows = state
        .service
        .store
        .search_conversations(&query)
        .await
        .map_err(internal)?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let last = r
                .updated_at
                .parse::<jiff::Timestamp>()
                .map(|t| local(t, &state))
                .unwrap_or_default();
            json!({
                "id": r.id, "href": format!("/console/conversations/{}", enc(&r.id)),
                "channel": r.channel, "phone": phone_of(&r.channel, &r.user),
                "last": last, "position": r.position, "staff": r.waiting_for_staff, "turns": r.turns,
            })
        })
        .collect();
    let view = Page::new(&state, req, "conversations.html")
        .staff(&staff)
        .with("rows", rows)
        .with("channels", CHANNELS)
        .with(
            "s",
            json!({
                "id": field(&s.id), "channel": field(&s.channel), "date": day.map(|d| d.to_string()),
                "state": field(&s.state), "document": field(&s.document), "phone": field(&s.phone),
            }),
        )
        .with("newer", (page > 0).then(|| s.link(page - 1)))
        .with("older", more.then(|| s.link(page + 1)));
    Ok(state.console.render(view))
}

/// What an effect did, in one line: the action, and its refusal or the slot it acted on.
fn effect_view(e: &Value) -> Value {
    let result = &e["result"];
    let ok = result["ok"].as_bool().unwrap_or(true);
    let appointment = &result["appointment"];
    let detail = if !ok {
        result["reason"].as_str().unwrap_or("refused").to_string()
    } else if let (Some(d), Some(t)) = (appointment["date"].as_str(), appointment["time"].as_str()) {
        format!("{d} {t} {}", appointment["professional"].as_str().unwrap_or_default())
    } else if let Some(avail) = result["available"].as_bool() {
        let n = result["alternatives"].as_array().map_or(0, Vec::len);
        format!("available: {avail}, alternatives: {n}")
    } else {
        String::new()
    };
    json!({ "action": e["action"].as_str().unwrap_or("?"), "ok": ok, "detail": detail })
}

fn turn_view(t: &TurnRecord, state: &crate::server::AppState) -> Value {
    let (tin, tout) = t
        .llm_calls
        .iter()
        .fold((0, 0), |(i, o), c| (i + c.tokens_in, o + c.tokens_out));
    let calls: Vec<Value> = t
        .llm_calls
        .iter()
        .map(|c| json!({ "purpose": c.purpose, "outcome": c.outcome, "tokens_in": c.tokens_in, "tokens_out": c.tokens_out, "ms": c.latency_ms }))
        .collect();
    json!({
        "seq": t.seq,
        "at": local(t.at, state),
        "input": t.input,
        "replies": t.replies,
        "intent": t.intent,
        "nlu": t.nlu_source,
        "before": t.state_before,
        "after": t.state_after,
        "moved": t.state_before != t.state_after,
        "calls": calls,
        "tokens": tin + tout,
        "cost": prices().cost_text(tin, tout),
        "effects": t.effects.iter().map(effect_view).collect::<Vec<_>>(),
        "problems": t.problems,
        "ms": t.latency_us / 1000,
    })
}

/// The states the conversation went through, each once per visit: "idle → book.ask → …".
fn state_path(turns: &[TurnRecord]) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    for t in turns {
        for s in [&t.state_before, &t.state_after] {
            if path.last() != Some(s) {
                path.push(s.clone());
            }
        }
    }
    path
}

#[handler]
pub(super) async fn show(state: State<'_>, req: &Request, staff: Staff, id: Path<String>) -> poem::Result<Response> {
    staff.admin()?;
    super::agenda::check_id(&id)?;
    let store = &state.service.store;
    let session = store.load_session(&id).await.map_err(internal)?;
    let turns = store.turns_after(&id, 0, TURNS).await.map_err(internal)?;
    if session.is_none() && turns.is_empty() {
        return Err(poem::Error::from_string(
            "There is no such conversation.",
            StatusCode::NOT_FOUND,
        ));
    }
    let escalations: Vec<Value> = store
        .escalations_of(&id)
        .await
        .map_err(internal)?
        .iter()
        .map(|e| {
            json!({
                "at": local(e.created_at, &state), "reason": e.reason,
                "open": e.status == EscalationStatus::Open, "href": format!("/console/inbox/{}", enc(&e.id)),
                "resolved_by": e.resolved_by,
            })
        })
        .collect();
    let filter = crate::store::AppointmentFilter {
        session: Some(id.0.clone()),
        ..Default::default()
    };
    let lang = super::lang_of(&state, req);
    let today = super::view::now(&state).date();
    let appointments: Vec<Value> = store
        .list_appointments(&filter)
        .await
        .map_err(internal)?
        .iter()
        .map(|a| super::agenda::appointment_view(a, lang, today))
        .collect();
    let (tin, tout, calls) = turns.iter().flat_map(|t| &t.llm_calls).fold((0, 0, 0), |(i, o, n), c| {
        (i + c.tokens_in, o + c.tokens_out, n + u64::from(c.outcome != "cached"))
    });
    let problems = turns.iter().filter(|t| !t.problems.is_empty()).count();
    let channel = session.as_ref().map(|s| s.channel.clone()).unwrap_or_default();
    let phone = session.as_ref().and_then(|s| phone_of(&s.channel, &s.user));
    let view = Page::new(&state, req, "conversation.html")
        .staff(&staff)
        .with(
            "c",
            json!({
                "id": id.0, "channel": channel, "phone": phone,
                "position": session.as_ref().map(|s| s.position()),
                "staff": session.as_ref().is_some_and(|s| s.waiting_for_staff),
                "lang": session.as_ref().map(|s| s.lang.code()),
            }),
        )
        .with("path", state_path(&turns))
        .with("turns", turns.iter().map(|t| turn_view(t, &state)).collect::<Vec<_>>())
        .with(
            "totals",
            json!({
                "turns": turns.len(), "calls": calls, "tokens": tin + tout,
                "cost": prices().cost_text(tin, tout), "problems": problems,
            }),
        )
        .with("escalations", escalations)
        .with("appointments", appointments);
    Ok(state.console.render(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_lists_each_visit_once_and_effects_say_what_they_did() {
        let mut a = crate::store::TurnRecord::new(
            &crate::engine::session::Session::new("c", "test", "u", crate::lang::Lang::Es),
            jiff::Timestamp::UNIX_EPOCH,
            "idle".into(),
        );
        a.state_after = "book.ask".into();
        let mut b = a.clone();
        b.state_before = "book.ask".into();
        b.state_after = "book.ask".into();
        let mut c = a.clone();
        c.state_before = "book.ask".into();
        c.state_after = "idle".into();
        assert_eq!(state_path(&[a, b, c]), ["idle", "book.ask", "idle"]);
        let refused =
            effect_view(&json!({ "action": "book_appointment", "result": { "ok": false, "reason": "taken" } }));
        assert_eq!(
            refused,
            json!({ "action": "book_appointment", "ok": false, "detail": "taken" })
        );
        let booked = effect_view(&json!({ "action": "book_appointment", "result": { "ok": true,
            "appointment": { "date": "2026-11-24", "time": "09:00", "professional": "Dr. X" } } }));
        assert_eq!(booked["detail"], "2026-11-24 09:00 Dr. X");
    }
}
