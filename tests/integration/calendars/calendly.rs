//! Calendly: a wiremock fake of API v2 (event type available times, the Scheduling API's
//! POST /invitees, cancellation) and its signed webhooks.

use std::sync::Arc;

use clinicflow::actions::ActionName;
use clinicflow::calendars::calendly::sign;
use clinicflow::reload::Reloader;
use clinicflow::server::{self, AppState};
use clinicflow::store::AppointmentStatus;
use jiff::Timestamp;
use poem::{Endpoint, Request};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{act, appointments, book, bot_with, offered, service, set_env};
use crate::support::demo_copy;

pub(super) const EVENT_TYPE: &str = "https://api.calendly.com/event_types/CARDIO30";
const SCHEDULED: &str = "https://api.calendly.com/scheduled_events/EV-1";
const KEY: &str = "calendly-signing-key";

pub(super) async fn calendly() -> (MockServer, Arc<clinicflow::flow::bot::Bot>) {
    let server = MockServer::start().await;
    let bot = calendly_on(&server, "T", 5).await;
    (server, bot)
}

/// The fake's mocks on `server`, and the demo clinic with a Calendly block pointing at it
/// (`tag` names the environment variables; `timeout_seconds` of the block).
pub(super) async fn calendly_on(
    server: &MockServer,
    tag: &str,
    timeout_seconds: u64,
) -> Arc<clinicflow::flow::bot::Bot> {
    set_env(&format!("CALENDLY_TOKEN_{tag}"), "calendly-pat");
    set_env(&format!("CALENDLY_KEY_{tag}"), KEY);
    // Thursday 26 November: Calendly offers 09:00 and 10:30 only (UTC-3).
    Mock::given(method("GET"))
        .and(path("/event_type_available_times"))
        .and(header("authorization", "Bearer calendly-pat"))
        .respond_with(|req: &wiremock::Request| {
            let q: std::collections::HashMap<String, String> = req.url.query_pairs().into_owned().collect();
            let start: Timestamp = q["start_time"].parse().expect("start_time");
            let slot = |t: &str| {
                json!({ "status": "available", "invitees_remaining": 1, "start_time": t,
                                          "scheduling_url": "https://calendly.com/x/30min" })
            };
            let slots: Vec<Value> = ["2026-11-26T12:00:00Z", "2026-11-26T13:30:00Z"]
                .iter()
                .filter(|t| t.parse::<Timestamp>().expect("t") >= start)
                .filter(|t| t.parse::<Timestamp>().expect("t") < q["end_time"].parse::<Timestamp>().expect("end"))
                .map(|t| slot(t))
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({ "collection": slots }))
        })
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/invitees"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "resource": { "uri": "https://api.calendly.com/scheduled_events/EV-1/invitees/INV-1",
                          "event": SCHEDULED, "status": "active", "name": "María López" }
        })))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/scheduled_events/EV-1/cancellation"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "resource": { "canceled_by": "clinicflow" } })))
        .mount(server)
        .await;
    bot_with(&format!(
        "  calendar:\n    provider: calendly\n    event_type: \"{EVENT_TYPE}\"\n    token_env: CALENDLY_TOKEN_{tag}\n    \
         signing_key_env: CALENDLY_KEY_{tag}\n    base_url: \"{}\"\n    timeout_seconds: {timeout_seconds}\n",
        server.uri()
    ))
}

#[tokio::test]
async fn available_times_are_asked_in_pieces_of_at_most_31_days_and_booking_goes_through_invitees() {
    let (server, bot) = calendly().await;
    let service = service(bot).await;
    let asked = json!({ "specialty": "Cardiología", "date": "2026-11-26", "time": "10:00" });
    let out = act(&service, ActionName::FindAvailability, asked, "2026-11-23T10:00").await;
    assert_eq!(out["available"], false, "{out}");
    assert_eq!(
        offered(&out)[..2],
        [
            ("2026-11-26".into(), "10:30".into()),
            ("2026-11-26".into(), "09:00".into())
        ],
        "{out}"
    );
    // The 60-day horizon takes two calls, none longer than 31 days.
    let calls: Vec<_> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/event_type_available_times")
        .collect();
    assert_eq!(calls.len(), 2);
    for c in &calls {
        let q: std::collections::HashMap<String, String> = c.url.query_pairs().into_owned().collect();
        let (s, e): (Timestamp, Timestamp) = (q["start_time"].parse().expect("s"), q["end_time"].parse().expect("e"));
        assert!(e.duration_since(s).as_hours() <= 31 * 24);
        assert_eq!(q["event_type"], EVENT_TYPE);
    }
    let out = book(&service, "10:30", Some("maria@example.com")).await;
    assert_eq!(out["ok"], true, "{out}");
    let invitee: Vec<Value> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/invitees")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert_eq!(invitee[0]["start_time"], "2026-11-26T13:30:00Z");
    assert_eq!(invitee[0]["event_type"], EVENT_TYPE);
    assert_eq!(invitee[0]["invitee"]["email"], "maria@example.com");
    assert_eq!(invitee[0]["invitee"]["timezone"], "America/Argentina/Buenos_Aires");
}

async fn webhook(app: &impl Endpoint, body: &Value, signature: &str) -> u16 {
    let req = Request::builder()
        .method(poem::http::Method::POST)
        .uri("/calendars/calendly/webhook".parse().expect("uri"))
        .header("content-type", "application/json")
        .header("Calendly-Webhook-Signature", signature)
        .body(body.to_string());
    app.get_response(req).await.status().as_u16()
}

#[tokio::test]
async fn a_forged_webhook_is_refused_and_a_signed_cancellation_cancels_the_appointment() {
    let (_server, bot) = calendly().await;
    let service = Arc::new(service(bot).await);
    let out = book(&service, "09:00", Some("maria@example.com")).await;
    assert_eq!(out["ok"], true, "{out}");
    let id = out["appointment"]["id"].as_str().expect("id").to_string();
    let dir = demo_copy();
    let app = server::app(AppState::new(
        service.clone(),
        Reloader::new(dir.path(), service.clone()),
    ));
    let body = json!({
        "event": "invitee.canceled",
        "created_at": "2026-11-24T12:00:00.000000Z",
        "payload": { "event": SCHEDULED, "status": "canceled", "rescheduled": false,
                     "cancellation": { "canceled_by": "Recepción", "reason": "Vacaciones" } }
    });
    let now = Timestamp::now();
    // Wrong key, no signature, another body: all refused, nothing changes.
    assert_eq!(
        webhook(&app, &body, &sign(body.to_string().as_bytes(), "guess", now)).await,
        403
    );
    assert_eq!(webhook(&app, &body, "").await, 403);
    let other = json!({ "event": "invitee.canceled", "payload": { "event": "x" } });
    assert_eq!(
        webhook(&app, &body, &sign(other.to_string().as_bytes(), KEY, now)).await,
        403
    );
    let kept = service.store.get_appointment(&id).await.expect("store").expect("there");
    assert_eq!(kept.status, AppointmentStatus::Booked);
    // Signed with the subscription's key: applied.
    assert_eq!(
        webhook(&app, &body, &sign(body.to_string().as_bytes(), KEY, now)).await,
        200
    );
    let gone = service.store.get_appointment(&id).await.expect("store").expect("there");
    assert_eq!(gone.status, AppointmentStatus::Cancelled);
    assert_eq!(appointments(&service.store).await.len(), 1);
}

#[tokio::test]
async fn a_reschedule_made_in_calendly_moves_the_appointment_instead_of_cancelling_it() {
    let (_server, bot) = calendly().await;
    let service = Arc::new(service(bot).await);
    let out = book(&service, "09:00", Some("maria@example.com")).await;
    assert_eq!(out["ok"], true, "{out}");
    let id = out["appointment"]["id"].as_str().expect("id").to_string();
    let dir = demo_copy();
    let app = server::app(AppState::new(
        service.clone(),
        Reloader::new(dir.path(), service.clone()),
    ));
    let signed = |body: &Value| sign(body.to_string().as_bytes(), KEY, Timestamp::now());
    let new_event = "https://api.calendly.com/scheduled_events/EV-2";

    // First the old invitee, cancelled as rescheduled: nothing changes yet.
    let canceled = json!({
        "event": "invitee.canceled",
        "payload": { "uri": format!("{SCHEDULED}/invitees/INV-1"), "event": SCHEDULED, "status": "canceled",
                     "rescheduled": true, "new_invitee": format!("{new_event}/invitees/INV-2") }
    });
    assert_eq!(webhook(&app, &canceled, &signed(&canceled)).await, 200);
    let kept = service.store.get_appointment(&id).await.expect("store").expect("there");
    assert_eq!(
        (kept.status, kept.time.to_string()),
        (AppointmentStatus::Booked, "09:00:00".into())
    );

    // Then the new invitee, naming the old one: the appointment moves to 10:30 (13:30 UTC).
    let created = json!({
        "event": "invitee.created",
        "payload": { "uri": format!("{new_event}/invitees/INV-2"), "event": new_event, "status": "active",
                     "rescheduled": false, "old_invitee": format!("{SCHEDULED}/invitees/INV-1"),
                     "scheduled_event": { "uri": new_event, "start_time": "2026-11-26T13:30:00.000000Z",
                                          "end_time": "2026-11-26T14:00:00.000000Z" } }
    });
    assert_eq!(webhook(&app, &created, &signed(&created)).await, 200);
    let moved = service.store.get_appointment(&id).await.expect("store").expect("there");
    assert_eq!(
        (moved.status, moved.time.to_string()),
        (AppointmentStatus::Booked, "10:30:00".into())
    );
    assert_eq!(appointments(&service.store).await.len(), 1);
    let linked = service.store.event_of(&id).await.expect("store").expect("linked");
    assert_eq!(linked.id, new_event);
    // The same delivery again changes nothing.
    assert_eq!(webhook(&app, &created, &signed(&created)).await, 200);

    // A later cancellation of the new event in Calendly cancels it.
    let gone = json!({
        "event": "invitee.canceled",
        "payload": { "event": new_event, "status": "canceled", "rescheduled": false }
    });
    assert_eq!(webhook(&app, &gone, &signed(&gone)).await, 200);
    let cancelled = service.store.get_appointment(&id).await.expect("store").expect("there");
    assert_eq!(cancelled.status, AppointmentStatus::Cancelled);
}
