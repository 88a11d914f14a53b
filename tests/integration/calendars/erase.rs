//! Erasing a patient (right of erasure) removes the external events of their appointments
//! to come: Google's are deleted (events.delete), Calendly's cancelled (its cancellation);
//! past ones stay, as the clinic's record of visits held.

use std::sync::Arc;

use clinicflow::reload::Reloader;
use clinicflow::server::AppState;
use clinicflow::store::Store;
use poem::http::StatusCode;
use serde_json::json;

use super::calendly::calendly;
use super::google::{EVENT, busy, events, google};
use super::{book, service};
use crate::api::Client;
use crate::support::{at, demo_copy};

/// How many requests `method` made to paths matching `re`.
async fn count(server: &wiremock::MockServer, method: &str, re: &str) -> usize {
    let re = regex::Regex::new(re).expect("regex");
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == method && re.is_match(r.url.path()))
        .count()
}

#[tokio::test]
async fn erasing_a_patient_through_the_api_deletes_the_google_events_of_their_appointments_to_come() {
    let (server, bot) = google("ERASE", 5).await;
    busy(&server, &[]).await;
    events(&server).await;
    let service = Arc::new(service(bot).await);
    // One visit already held (26 November, before today) and one a week from today (the
    // API runs on the real clock).
    let past = book(&service, "10:00", None).await;
    assert_eq!(past["ok"], true, "{past}");
    let dir = demo_copy();
    let client = Client::new(AppState::new(
        service.clone(),
        Reloader::new(dir.path(), service.clone()),
    ));
    let tz = service.bot().clinic.tz.clone();
    let week = jiff::Zoned::now().with_time_zone(tz).date() + jiff::Span::new().days(7);
    let (status, free) = client
        .get(&format!("/v1/availability?specialty=cardiologia&date={week}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{free}");
    let slot = &free["alternatives"][0];
    let (status, booked) = client
        .post(
            "/v1/appointments",
            json!({ "specialty": "Cardiología", "date": slot["date"], "time": slot["time"],
                    "patient_name": "María López", "document": "30123456" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    assert_eq!(count(&server, "DELETE", EVENT).await, 0);

    let (status, erased) = client
        .post("/v1/patients/erase", json!({ "document": "30.123.456" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["erased"]["appointments"], 2, "{erased}");
    assert_eq!(erased["erased"]["calendar_events"], 1, "{erased}");
    assert_eq!(erased["erased"]["calendar_events_left"], 0, "{erased}");
    // Only the event to come was deleted, and no link to either is left.
    assert_eq!(count(&server, "DELETE", EVENT).await, 1);
    let dump = service.store.dump_all().await.expect("dump");
    assert!(
        dump["calendar_event"].as_array().is_none_or(|rows| rows.is_empty()),
        "{}",
        dump["calendar_event"]
    );
}

#[tokio::test]
async fn erasing_a_patient_cancels_their_calendly_booking_and_a_calendar_that_is_down_leaves_it_counted() {
    let (server, bot) = calendly().await;
    let service = service(bot).await;
    let out = book(&service, "10:30", Some("maria@example.com")).await;
    assert_eq!(out["ok"], true, "{out}");
    let store: &Store = &service.store;
    // On the Monday before: the Thursday booking is to come.
    let now = at("2026-11-23T11:00").timestamp();
    let events = clinicflow::calendars::events_of_patient(store, "30123456", now)
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    store
        .erase_patient(
            "30123456",
            &clinicflow::identity::document_hash("30123456"),
            "test",
            now,
        )
        .await
        .expect("erase");
    let cancellations = "^/scheduled_events/EV-1/cancellation$";
    assert_eq!(count(&server, "POST", cancellations).await, 0);
    let bot = service.bot();
    assert_eq!(clinicflow::calendars::remove_events(&bot.clinic, &events).await, (1, 0));
    assert_eq!(count(&server, "POST", cancellations).await, 1);

    // Calendly down: nothing removed, counted as left for staff.
    server.reset().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .mount(&server)
        .await;
    assert_eq!(clinicflow::calendars::remove_events(&bot.clinic, &events).await, (0, 1));
}
