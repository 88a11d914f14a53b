//! A create that times out may have happened all the same: Cal.com and Calendly look for
//! what the lost answer created (by the appointment id stored with it) and cancel it, and
//! leave anybody else's booking at that time alone.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{appointments, book, bot_with, service, set_env};

#[tokio::test]
async fn calcom_cancels_the_booking_a_timed_out_attempt_left_and_no_other() {
    let server = MockServer::start().await;
    set_env("CALCOM_KEY_FORGET", "cal_live_forget");
    Mock::given(method("GET"))
        .and(path("/v2/slots"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success", "data": { "2026-11-26": [{ "start": "2026-11-26T13:00:00.000Z" }] }
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/bookings"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_delay(Duration::from_secs(3))
                .set_body_json(json!({ "status": "success", "data": { "uid": "late" } })),
        )
        .mount(&server)
        .await;
    // The appointment id of the attempt is only known to clinicflow: answer with every
    // booking whose metadata carries one, and another one of somebody else.
    Mock::given(method("GET"))
        .and(path("/v2/bookings"))
        .and(query_param("eventTypeId", "4243"))
        .and(query_param("afterStart", "2026-11-26T13:00:00Z"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "status": "success", "data": [
            { "uid": "someone-else", "status": "accepted", "metadata": { "clinicflow_appointment": "not-ours" } },
            { "uid": "no-metadata", "status": "accepted" },
        ] })),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/bookings/someone-else/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "success" })))
        .expect(0)
        .mount(&server)
        .await;
    let bot = bot_with(&format!(
        "  calendar:\n    provider: calcom\n    event_type: 4243\n    token_env: CALCOM_KEY_FORGET\n    base_url: \"{}\"\n    timeout_seconds: 1\n",
        server.uri()
    ));
    let service = service(bot).await;
    let out = book(&service, "10:00", Some("maria@example.com")).await;
    assert_eq!(out["reason"], "calendar_unavailable", "{out}");
    assert!(appointments(&service.store).await.is_empty());
    let looked = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == "/v2/bookings")
        .count();
    assert_eq!(looked, 1, "the attempt's booking was looked for once");
}

#[tokio::test]
async fn calcom_finds_its_own_late_booking_by_the_appointment_id() {
    let server = MockServer::start().await;
    set_env("CALCOM_KEY_FORGET2", "cal_live_forget2");
    Mock::given(method("GET"))
        .and(path("/v2/slots"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success", "data": { "2026-11-26": [{ "start": "2026-11-26T13:00:00.000Z" }] }
        })))
        .mount(&server)
        .await;
    // The create times out; the metadata it sent names the appointment: the listing echoes it.
    let created = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = created.clone();
    Mock::given(method("POST"))
        .and(path("/v2/bookings"))
        .respond_with(move |req: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = body
                .pointer("/metadata/clinicflow_appointment")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            ResponseTemplate::new(201)
                .set_delay(Duration::from_secs(3))
                .set_body_json(json!({ "status": "success", "data": { "uid": "late" } }))
        })
        .mount(&server)
        .await;
    let listed = created.clone();
    Mock::given(method("GET"))
        .and(path("/v2/bookings"))
        .respond_with(move |_: &wiremock::Request| {
            let id = listed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(json!({ "status": "success", "data": [
                { "uid": "late", "status": "accepted", "metadata": { "clinicflow_appointment": id } },
            ] }))
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/bookings/late/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "success" })))
        .expect(1)
        .mount(&server)
        .await;
    let bot = bot_with(&format!(
        "  calendar:\n    provider: calcom\n    event_type: 4244\n    token_env: CALCOM_KEY_FORGET2\n    base_url: \"{}\"\n    timeout_seconds: 1\n",
        server.uri()
    ));
    let service = service(bot).await;
    let out = book(&service, "10:00", Some("maria@example.com")).await;
    assert_eq!(out["reason"], "calendar_unavailable", "{out}");
    assert!(
        created.lock().expect("lock").is_some(),
        "the create carried the appointment id"
    );
}

#[tokio::test]
async fn calendly_cancels_the_event_a_timed_out_attempt_left_by_its_tracking() {
    // The usual fake (mounted after these, so the slow create below answers first).
    let server = MockServer::start().await;
    let appointment = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = appointment.clone();
    Mock::given(method("POST"))
        .and(path("/invitees"))
        .respond_with(move |req: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = body
                .pointer("/tracking/utm_content")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            ResponseTemplate::new(201)
                .set_delay(Duration::from_secs(3))
                .set_body_json(json!({ "resource": { "event": "https://api.calendly.com/scheduled_events/LATE" } }))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "resource": { "uri": "https://api.calendly.com/users/ME" }
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scheduled_events"))
        .and(query_param("user", "https://api.calendly.com/users/ME"))
        .and(query_param("invitee_email", "maria@example.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "collection": [
            { "uri": "https://api.calendly.com/scheduled_events/LATE", "status": "active",
              "event_type": super::calendly::EVENT_TYPE, "start_time": "2026-11-26T12:00:00.000000Z" },
            { "uri": "https://api.calendly.com/scheduled_events/OTHER-TYPE", "status": "active",
              "event_type": "https://api.calendly.com/event_types/ELSE", "start_time": "2026-11-26T12:00:00.000000Z" },
        ] })))
        .mount(&server)
        .await;
    let tracked = appointment.clone();
    Mock::given(method("GET"))
        .and(path("/scheduled_events/LATE/invitees"))
        .respond_with(move |_: &wiremock::Request| {
            let id = tracked.lock().unwrap_or_else(|p| p.into_inner()).clone();
            ResponseTemplate::new(200).set_body_json(json!({ "collection": [
                { "uri": "https://api.calendly.com/scheduled_events/LATE/invitees/I1", "status": "active",
                  "tracking": { "utm_source": "clinicflow", "utm_content": id } }
            ] }))
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/scheduled_events/LATE/cancellation"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "resource": {} })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/scheduled_events/OTHER-TYPE/cancellation"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "resource": {} })))
        .expect(0)
        .mount(&server)
        .await;
    let bot = super::calendly::calendly_on(&server, "FORGET", 1).await;
    let service = service(bot).await;
    let out = book(&service, "09:00", Some("maria@example.com")).await;
    assert_eq!(out["reason"], "calendar_unavailable", "{out}");
    assert!(appointments(&service.store).await.is_empty());
    assert!(
        !appointment.lock().expect("lock").is_empty(),
        "the invitee carried the appointment id"
    );
}
