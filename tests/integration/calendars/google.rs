//! Google Calendar: a wiremock fake of the token endpoint and of Calendar API v3
//! (freeBusy.query, events.insert / list / patch / delete) on loopback.

use std::sync::Arc;
use std::time::Duration;

use clinicflow::actions::ActionName;
use clinicflow::calendars::ProviderKind;
use clinicflow::reload::Reloader;
use clinicflow::server::{self, AppState};
use clinicflow::service::Service;
use clinicflow::store::{AppointmentStatus, ReminderStatus};
use poem::{Endpoint, Request};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{act, appointments, book, bot_with, cancel, offered, reschedule, service, set_env};
use crate::support::{BOOKING, demo_copy, reminder_statuses, say};

const CALENDAR: &str = "agenda-cardiologia@clinica.test";
const EVENTS: &str = r"^/calendar/v3/calendars/agenda-cardiologia(@|%40)clinica\.test/events$";
pub(super) const EVENT: &str = r"^/calendar/v3/calendars/agenda-cardiologia(@|%40)clinica\.test/events/evt-1$";
const TOKEN: &str = "ya29.test-access-token";

/// A fake Google with a token endpoint; `tag` names this test's environment variables.
pub(super) async fn google(tag: &str, timeout_seconds: u64) -> (MockServer, Arc<clinicflow::flow::bot::Bot>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"
        })))
        .mount(&server)
        .await;
    let key = std::fs::read_to_string(crate::support::fixtures().join("calendars/test_service_account_key.pem"))
        .expect("test key");
    let sa = json!({
        "type": "service_account",
        "client_email": "clinicflow@test-project.iam.gserviceaccount.com",
        "private_key_id": "k1",
        "private_key": key,
        "token_uri": format!("{}/token", server.uri()),
    });
    set_env(&format!("GOOGLE_SA_{tag}"), &sa.to_string());
    set_env(&format!("GOOGLE_CHANNEL_{tag}"), &format!("channel-secret-{tag}"));
    let bot = bot_with(&format!(
        "  calendar:\n    provider: google\n    calendar_id: \"{CALENDAR}\"\n    credentials_env: GOOGLE_SA_{tag}\n    \
         channel_token_env: GOOGLE_CHANNEL_{tag}\n    base_url: \"{}\"\n    timeout_seconds: {timeout_seconds}\n",
        server.uri()
    ));
    (server, bot)
}

/// freeBusy answering with these busy intervals (UTC).
pub(super) async fn busy(server: &MockServer, intervals: &[(&str, &str)]) {
    let busy: Vec<Value> = intervals.iter().map(|(s, e)| json!({ "start": s, "end": e })).collect();
    Mock::given(method("POST"))
        .and(path("/calendar/v3/freeBusy"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(move |req: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(json!({
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": { CALENDAR: { "busy": busy } }
            }))
        })
        .mount(server)
        .await;
}

/// events.insert echoing the event with id evt-1; events.list for the check after it
/// (nothing else there); patch and delete.
pub(super) async fn events(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path_regex(EVENTS))
        .respond_with(|req: &wiremock::Request| {
            let mut event: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            event["id"] = json!("evt-1");
            event["status"] = json!("confirmed");
            ResponseTemplate::new(200).set_body_json(event)
        })
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param_is_missing("showDeleted"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "kind": "calendar#events", "items": [] })))
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex(EVENT))
        .respond_with(|req: &wiremock::Request| {
            let mut event: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            event["id"] = json!("evt-1");
            ResponseTemplate::new(200).set_body_json(event)
        })
        .mount(server)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex(EVENT))
        .respond_with(ResponseTemplate::new(204))
        .mount(server)
        .await;
}

/// The JSON bodies of the requests `method` made to paths matching `re`.
pub(super) async fn bodies(server: &MockServer, method: &str, re: &str) -> Vec<Value> {
    let re = regex::Regex::new(re).expect("regex");
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == method && re.is_match(r.url.path()))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test]
async fn a_busy_event_removes_its_slot_and_the_token_is_asked_once() {
    let (server, bot) = google("BUSY", 5).await;
    // Thursday 26 November, 10:00-10:30 in Buenos Aires (UTC-3): Dra. Gómez is away.
    busy(&server, &[("2026-11-26T13:00:00Z", "2026-11-26T13:30:00Z")]).await;
    let service = service(bot).await;
    let asked = json!({ "specialty": "Cardiología", "date": "2026-11-26", "time": "10:00" });
    let out = act(&service, ActionName::FindAvailability, asked, "2026-11-23T10:00").await;
    assert_eq!(
        (out["available"].clone(), out["reason"].clone()),
        (json!(false), json!("taken")),
        "{out}"
    );
    let times = offered(&out);
    assert!(!times.contains(&("2026-11-26".into(), "10:00".into())), "{times:?}");
    assert!(times.contains(&("2026-11-26".into(), "09:30".into())), "{times:?}");
    // The next slot is free; the token from the first call is reused.
    let free = json!({ "specialty": "Cardiología", "date": "2026-11-26", "time": "10:30" });
    let out = act(&service, ActionName::FindAvailability, free, "2026-11-23T10:00").await;
    assert_eq!(out["available"], true, "{out}");
    let requests = server.received_requests().await.unwrap_or_default();
    let tokens: Vec<_> = requests.iter().filter(|r| r.url.path() == "/token").collect();
    assert_eq!(tokens.len(), 1);
    let form = crate::twilio_out::form(tokens[0]);
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    // A signed JWT: header.claims.signature, the claims naming the account and the scope.
    let parts: Vec<&str> = form["assertion"].split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("base64");
    let claims: Value = serde_json::from_slice(&claims).expect("claims");
    assert_eq!(claims["iss"], "clinicflow@test-project.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/calendar");
    let asked = bodies(&server, "POST", "^/calendar/v3/freeBusy$").await;
    assert_eq!(asked[0]["items"], json!([{ "id": CALENDAR }]));
}

#[tokio::test]
async fn bookings_create_move_and_delete_the_event_in_the_clinic_time_zone() {
    let (server, bot) = google("BOOK", 5).await;
    busy(&server, &[]).await;
    events(&server).await;
    let service = service(bot).await;
    let mut last = None;
    for line in BOOKING {
        last = Some(say(&service, "g-book", line, "2026-11-23T10:00").await);
    }
    let reply = last.expect("replies").replies.join(" ");
    assert!(reply.contains("turno"), "{reply}");
    let booked = appointments(&service.store).await;
    assert_eq!(booked.len(), 1, "{reply}");
    let id = booked[0].id.clone();
    let inserted = bodies(&server, "POST", EVENTS).await;
    assert_eq!(inserted.len(), 1);
    let event = &inserted[0];
    assert_eq!(
        event["start"],
        json!({ "dateTime": "2026-11-26T10:00:00-03:00", "timeZone": "America/Argentina/Buenos_Aires" })
    );
    assert_eq!(
        event["end"],
        json!({ "dateTime": "2026-11-26T10:30:00-03:00", "timeZone": "America/Argentina/Buenos_Aires" })
    );
    assert_eq!(
        event["extendedProperties"]["private"]["clinicflow_appointment"],
        json!(id)
    );
    let linked = service.store.event_of(&id).await.expect("store").expect("linked");
    assert_eq!((linked.provider, linked.id.as_str()), (ProviderKind::Google, "evt-1"));

    // Moved by the assistant: the same event gets the new times.
    let out = reschedule(&service, &id, "11:00").await;
    assert_eq!(out["ok"], true, "{out}");
    let patched = bodies(&server, "PATCH", EVENT).await;
    assert_eq!(patched.len(), 1);
    assert_eq!(patched[0]["start"]["dateTime"], "2026-11-26T11:00:00-03:00");
    assert_eq!(patched[0]["end"]["dateTime"], "2026-11-26T11:30:00-03:00");

    // Cancelled by the assistant: the event is deleted and forgotten.
    let out = cancel(&service, &id).await;
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(bodies(&server, "DELETE", EVENT).await.len(), 1);
    assert_eq!(service.store.event_of(&id).await.expect("store"), None);
}

#[tokio::test]
async fn a_refused_insert_leaves_no_appointment_and_offers_another_slot() {
    let (server, bot) = google("REFUSED", 5).await;
    busy(&server, &[]).await;
    Mock::given(method("POST"))
        .and(path_regex(EVENTS))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": { "code": 403, "message": "The requested time is not available.", "errors": [] }
        })))
        .mount(&server)
        .await;
    let service = service(bot).await;
    let mut last = None;
    for line in BOOKING {
        last = Some(say(&service, "g-refused", line, "2026-11-23T10:00").await);
    }
    let reply = last.expect("replies").replies.join(" ");
    assert!(appointments(&service.store).await.is_empty());
    assert!(reply.contains("ya no está disponible"), "{reply}");
    assert!(reply.contains("1."), "another slot is offered: {reply}");
    assert!(!reply.contains("1. jueves 26 de noviembre a las 10:00"), "{reply}");
}

#[tokio::test]
async fn a_timed_out_insert_leaves_no_appointment_and_removes_a_late_event() {
    let (server, bot) = google("TIMEOUT", 1).await;
    busy(&server, &[]).await;
    // Google takes longer than the configured second, then creates the event anyway.
    Mock::given(method("POST"))
        .and(path_regex(EVENTS))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(3))
                .set_body_json(json!({ "id": "late" })),
        )
        .mount(&server)
        .await;
    // Looking for it by the appointment's private property finds it, and it is deleted.
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param_is_missing("showDeleted"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "items": [{ "id": "late", "status": "confirmed" }] })),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex(r"/events/late$"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let service = service(bot).await;
    let out = book(&service, "10:00", None).await;
    assert_eq!(
        (out["ok"].clone(), out["reason"].clone()),
        (json!(false), json!("calendar_unavailable")),
        "{out}"
    );
    assert!(appointments(&service.store).await.is_empty());
    let times = offered(&out);
    assert!(
        !times.is_empty() && !times.contains(&("2026-11-26".into(), "10:00".into())),
        "{times:?}"
    );
    let looked: Vec<_> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET")
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "privateExtendedProperty")
                .map(|(_, v)| v.to_string())
        })
        .collect();
    assert_eq!(looked.len(), 1);
    assert!(looked[0].starts_with("clinicflow_appointment="), "{looked:?}");
}

#[tokio::test]
async fn a_calendar_that_is_down_is_said_and_a_person_offered() {
    let (server, bot) = google("DOWN", 5).await;
    Mock::given(method("POST"))
        .and(path("/calendar/v3/freeBusy"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let service = service(bot).await;
    say(&service, "g-down", "hola", "2026-11-23T10:00").await;
    let out = say(
        &service,
        "g-down",
        "quiero un turno con cardiología el jueves 26 a las 10",
        "2026-11-23T10:00",
    )
    .await;
    let reply = out.replies.join(" ");
    assert!(reply.contains("no puedo consultar la agenda"), "{reply}");
    assert!(reply.contains("/humano"), "{reply}");
    assert!(appointments(&service.store).await.is_empty());
}

/// events.list read from `token` answering `items` and the next sync token.
async fn feed(server: &MockServer, token: &str, items: Value, next: &str) {
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param("syncToken", token))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "items": items, "nextSyncToken": next })))
        .mount(server)
        .await;
}

/// The app with the service, as `serve` runs it.
fn app(service: Arc<Service>) -> impl Endpoint {
    let dir = demo_copy();
    let reloader = Reloader::new(dir.path(), service.clone());
    server::app(AppState::new(service, reloader))
}

async fn notify(app: &impl Endpoint, token: &str) -> (u16, Value) {
    let req = Request::builder()
        .method(poem::http::Method::POST)
        .uri("/calendars/google/notify".parse().expect("uri"))
        .header("X-Goog-Channel-ID", "chan-1")
        .header("X-Goog-Channel-Token", token)
        .header("X-Goog-Resource-State", "exists")
        .finish();
    let resp = app.get_response(req).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().into_string().await.unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_event_cancelled_or_moved_in_the_calendar_changes_the_appointment_and_tells_the_patient() {
    let (server, bot) = google("SYNC", 5).await;
    busy(&server, &[]).await;
    events(&server).await;
    let service = Arc::new(service(bot).await);
    for line in BOOKING {
        say(&service, "g-sync", line, "2026-11-23T10:00").await;
    }
    let id = appointments(&service.store).await[0].id.clone();
    assert_eq!(reminder_statuses(&service.store, &id).await.len(), 2);
    let app = app(service.clone());

    // A forged notification is refused and changes nothing.
    let (status, _) = notify(&app, "not-the-token").await;
    assert_eq!(status, 403);

    // Staff move the event to 11:00 (first pass: no sync token yet).
    let ours = |status: &str, start: &str, end: &str| {
        json!({ "id": "evt-1", "status": status,
                "start": { "dateTime": start }, "end": { "dateTime": end },
                "extendedProperties": { "private": { "clinicflow_appointment": id } } })
    };
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param("showDeleted", "true"))
        .and(query_param_is_missing("syncToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [ours("confirmed", "2026-11-26T11:00:00-03:00", "2026-11-26T11:30:00-03:00"),
                      { "id": "staff-own", "status": "confirmed", "start": { "dateTime": "2026-11-27T09:00:00-03:00" } }],
            "nextSyncToken": "sync-1"
        })))
        .mount(&server)
        .await;
    let (status, body) = notify(&app, "channel-secret-SYNC").await;
    assert_eq!((status, body["applied"].clone()), (200, json!(1)), "{body}");
    let moved = service.store.get_appointment(&id).await.expect("store").expect("there");
    assert_eq!(
        (moved.time.to_string(), moved.status),
        ("11:00:00".to_string(), AppointmentStatus::Booked)
    );

    // Then they cancel it: the next pass reads from the sync token.
    feed(
        &server,
        "sync-1",
        json!([ours(
            "cancelled",
            "2026-11-26T11:00:00-03:00",
            "2026-11-26T11:30:00-03:00"
        )]),
        "sync-2",
    )
    .await;
    let (status, body) = notify(&app, "channel-secret-SYNC").await;
    assert_eq!((status, body["applied"].clone()), (200, json!(1)), "{body}");
    let cancelled = service.store.get_appointment(&id).await.expect("store").expect("there");
    assert_eq!(cancelled.status, AppointmentStatus::Cancelled);
    assert!(
        reminder_statuses(&service.store, &id)
            .await
            .iter()
            .all(|(_, s)| *s == ReminderStatus::Cancelled),
        "{:?}",
        reminder_statuses(&service.store, &id).await
    );
    assert_eq!(
        service
            .store
            .sync_token("google|agenda-cardiologia@clinica.test")
            .await
            .expect("store")
            .as_deref(),
        Some("sync-2")
    );

    // The patient was told both times, in their conversation.
    let turns = service.store.recent_turns("g-sync", 5).await.expect("turns");
    let told: Vec<&String> = turns
        .iter()
        .filter(|t| t.intent.as_deref() == Some("outbound:calendar"))
        .flat_map(|t| t.replies.iter())
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        told.iter()
            .any(|t| t.contains("cambió su turno") && t.contains("11:00")),
        "{told:?}"
    );
    assert!(told.iter().any(|t| t.contains("canceló su turno")), "{told:?}");

    // The same notification again changes nothing.
    feed(
        &server,
        "sync-2",
        json!([ours(
            "cancelled",
            "2026-11-26T11:00:00-03:00",
            "2026-11-26T11:30:00-03:00"
        )]),
        "sync-3",
    )
    .await;
    let (_, body) = notify(&app, "channel-secret-SYNC").await;
    assert_eq!(body["applied"], 0);
}

#[tokio::test]
async fn a_cancellation_the_calendar_did_not_take_is_retried_later() {
    let (server, bot) = google("RETRY", 5).await;
    busy(&server, &[]).await;
    // Google is down for the first delete, back for the next one.
    Mock::given(method("DELETE"))
        .and(path_regex(EVENT))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    events(&server).await;
    let service = service(bot).await;
    let out = book(&service, "10:00", None).await;
    let id = out["appointment"]["id"].as_str().expect("booked").to_string();
    let out = cancel(&service, &id).await;
    // The patient's cancellation stands; the event is still linked, to be removed later.
    assert_eq!(out["ok"], true, "{out}");
    assert!(service.store.event_of(&id).await.expect("store").is_some());
    let removed = clinicflow::calendars::retry_cancellations(&service.store, &service.bot().clinic)
        .await
        .expect("store");
    assert_eq!(removed, 1);
    assert_eq!(service.store.event_of(&id).await.expect("store"), None);
    assert_eq!(bodies(&server, "DELETE", EVENT).await.len(), 2);
}

#[tokio::test]
async fn an_event_put_in_the_slot_meanwhile_undoes_the_booking() {
    let (server, bot) = google("RACE", 5).await;
    // freeBusy saw the slot free; by the time the event is inserted, the front desk has put
    // a patient there: the check after the insert finds it.
    busy(&server, &[]).await;
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param("timeMin", "2026-11-26T13:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "items": [
            { "id": "evt-1", "status": "confirmed",
              "start": { "dateTime": "2026-11-26T10:00:00-03:00" }, "end": { "dateTime": "2026-11-26T10:30:00-03:00" } },
            { "id": "front-desk", "status": "confirmed", "summary": "Paciente por teléfono",
              "start": { "dateTime": "2026-11-26T09:45:00-03:00" }, "end": { "dateTime": "2026-11-26T10:15:00-03:00" } }
        ] })))
        .mount(&server)
        .await;
    events(&server).await;
    let service = service(bot).await;
    let out = book(&service, "10:00", None).await;
    assert_eq!(
        (out["ok"].clone(), out["reason"].clone()),
        (json!(false), json!("taken")),
        "{out}"
    );
    assert!(!offered(&out).is_empty(), "{out}");
    assert!(appointments(&service.store).await.is_empty());
    // Our event was removed again.
    assert_eq!(bodies(&server, "DELETE", EVENT).await.len(), 1);
}

#[tokio::test]
async fn an_expired_sync_token_reads_the_calendar_again() {
    let (server, bot) = google("GONE", 5).await;
    let service = service(bot).await;
    service
        .store
        .set_sync_token("google|agenda-cardiologia@clinica.test", Some("stale"))
        .await
        .expect("store");
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param("syncToken", "stale"))
        .respond_with(ResponseTemplate::new(410).set_body_json(
            json!({ "error": { "code": 410, "message": "Sync token is no longer valid, a full sync is required." } }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param_is_missing("syncToken"))
        .and(query_param("showDeleted", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "items": [], "nextSyncToken": "fresh" })))
        .mount(&server)
        .await;
    let now = crate::support::at("2026-11-23T10:00");
    let applied = clinicflow::calendars::sync::sync_all(&service, &clinicflow::outbound::TurnLogOnly, &now).await;
    assert!(applied.is_empty());
    let token = service
        .store
        .sync_token("google|agenda-cardiologia@clinica.test")
        .await
        .expect("store");
    assert_eq!(token.as_deref(), Some("fresh"));
}

/// A booking turn that lost a race (another replica saved the conversation meanwhile) runs
/// again and books again: the event its first attempt put in the calendar is removed, so
/// the calendar holds one event, of the booking that was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_turn_that_lost_a_race_leaves_no_event_of_its_first_attempt() {
    let (server, bot) = google("RACE", 5).await;
    busy(&server, &[]).await;
    // Looking up the events of an appointment (privateExtendedProperty) finds one per
    // appointment; the check after an insert (no such query) finds nothing else there.
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param_is_missing("showDeleted"))
        .respond_with(|req: &wiremock::Request| {
            let items: Vec<Value> = req
                .url
                .query_pairs()
                .filter(|(k, _)| k == "privateExtendedProperty")
                .map(|(_, v)| json!({ "id": format!("of-{}", v.trim_start_matches("clinicflow_appointment=")), "status": "confirmed" }))
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({ "kind": "calendar#events", "items": items }))
        })
        .mount(&server)
        .await;
    events(&server).await;
    Mock::given(method("DELETE"))
        .and(path_regex(r"/events/of-[^/]+$"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let service = service(bot).await;
    for line in &BOOKING[..BOOKING.len() - 1] {
        say(&service, "g-race", line, "2026-11-23T10:00").await;
    }
    let store = service.store.clone();
    let other = store.clone();
    store.inject(
        1,
        clinicflow::store::Fault::Before(Arc::new(move || {
            let other = other.clone();
            Box::pin(async move {
                let mut s = other.load_session("g-race").await.expect("load").expect("session");
                s.version += 1;
                other.save_session(&s).await.expect("concurrent save");
            })
        })),
    );
    let last = say(&service, "g-race", BOOKING[BOOKING.len() - 1], "2026-11-23T10:00").await;
    assert!(!store.fault_pending());
    let booked = appointments(&service.store).await;
    assert_eq!(booked.len(), 1, "{:?}", last.replies);
    assert_eq!(bodies(&server, "POST", EVENTS).await.len(), 2, "one insert per attempt");
    let removed: Vec<String> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .map(|r| r.url.path().rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_ne!(
        removed[0],
        format!("of-{}", booked[0].id),
        "the stored booking keeps its event"
    );
    assert!(removed[0].starts_with("of-"), "{removed:?}");
    assert_eq!(
        service
            .store
            .event_of(&booked[0].id)
            .await
            .expect("store")
            .map(|e| e.id),
        Some("evt-1".to_string())
    );
}

#[tokio::test]
async fn a_change_made_in_the_calendar_is_emailed_to_a_patient_who_gave_an_address() {
    let (server, bot) = google("MAIL", 5).await;
    busy(&server, &[]).await;
    events(&server).await;
    let smtp = crate::support::smtp::FakeSmtp::start().await;
    let service = Arc::new(
        service(bot)
            .await
            .with_mailer(Some(crate::support::smtp::mailer(&smtp))),
    );
    let out = book(&service, "10:00", Some("maria@example.com")).await;
    assert_eq!(out["ok"], true, "{out}");
    let id = out["appointment"]["id"].as_str().expect("id").to_string();
    let app = app(service.clone());
    let ours = |status: &str, start: &str, end: &str| {
        json!({ "id": "evt-1", "status": status,
                "start": { "dateTime": start }, "end": { "dateTime": end },
                "extendedProperties": { "private": { "clinicflow_appointment": id } } })
    };
    Mock::given(method("GET"))
        .and(path_regex(EVENTS))
        .and(query_param("showDeleted", "true"))
        .and(query_param_is_missing("syncToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [ours("confirmed", "2026-11-26T11:00:00-03:00", "2026-11-26T11:30:00-03:00")],
            "nextSyncToken": "mail-1"
        })))
        .mount(&server)
        .await;
    let (status, body) = notify(&app, "channel-secret-MAIL").await;
    assert_eq!((status, body["applied"].clone()), (200, json!(1)), "{body}");
    let mail = smtp.next_mail().await;
    assert_eq!(mail.to, vec!["maria@example.com".to_string()]);
    let subject = mail.subject();
    assert!(
        subject.starts_with("Turno cambiado: Cardiología, ahora el jueves 26 de noviembre a las 11:00"),
        "{subject}"
    );
    assert!(
        mail.body().contains("del jueves 26 de noviembre a las 10:00"),
        "{}",
        mail.body()
    );

    feed(
        &server,
        "mail-1",
        json!([ours(
            "cancelled",
            "2026-11-26T11:00:00-03:00",
            "2026-11-26T11:30:00-03:00"
        )]),
        "mail-2",
    )
    .await;
    let (status, body) = notify(&app, "channel-secret-MAIL").await;
    assert_eq!((status, body["applied"].clone()), (200, json!(1)), "{body}");
    let mail = smtp.next_mail().await;
    assert!(
        mail.subject().starts_with("Turno cancelado: Cardiología"),
        "{}",
        mail.subject()
    );
    assert!(smtp.try_mail().await.is_none());
}
