//! Cal.com v2: a wiremock fake of /v2/slots and /v2/bookings.

use clinicflow::actions::ActionName;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{act, book, bot_with, cancel, offered, reschedule, service, set_env};

#[tokio::test]
async fn slots_limit_what_is_offered_and_bookings_move_and_cancel() {
    let server = MockServer::start().await;
    set_env("CALCOM_KEY_T", "cal_live_test");
    Mock::given(method("GET"))
        .and(path("/v2/slots"))
        .and(header("cal-api-version", "2024-09-04"))
        .and(header("authorization", "Bearer cal_live_test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success",
            "data": { "2026-11-26": [{ "start": "2026-11-26T11:00:00.000Z" }, { "start": "2026-11-26T14:00:00.000Z" }] }
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/bookings"))
        .and(header("cal-api-version", "2024-08-13"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "status": "success", "data": { "uid": "bk-1", "status": "accepted" }
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/bookings/bk-1/reschedule"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "status": "success", "data": { "uid": "bk-2", "status": "accepted" }
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/bookings/bk-2/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "success", "data": {} })))
        .expect(1)
        .mount(&server)
        .await;
    let bot = bot_with(&format!(
        "  calendar:\n    provider: calcom\n    event_type: 4242\n    token_env: CALCOM_KEY_T\n    base_url: \"{}\"\n",
        server.uri()
    ));
    let service = service(bot).await;
    let asked = json!({ "specialty": "Cardiología", "date": "2026-11-26" });
    let out = act(&service, ActionName::FindAvailability, asked, "2026-11-23T10:00").await;
    // 08:00 and 11:00 in Buenos Aires.
    assert_eq!(
        offered(&out),
        [
            ("2026-11-26".into(), "08:00".into()),
            ("2026-11-26".into(), "11:00".into())
        ],
        "{out}"
    );
    let out = book(&service, "08:00", Some("maria@example.com")).await;
    assert_eq!(out["ok"], true, "{out}");
    let id = out["appointment"]["id"].as_str().expect("id").to_string();
    let out = reschedule(&service, &id, "11:00").await;
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(
        service.store.event_of(&id).await.expect("store").expect("linked").id,
        "bk-2"
    );
    let out = cancel(&service, &id).await;
    assert_eq!(out["ok"], true, "{out}");
}
