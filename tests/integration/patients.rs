//! A patient's personal data through the staff API: export shows all of it, erase removes
//! all of it (afterwards nothing of it is found in any table, while another patient's data
//! stays), both are in the audit log; the retention sweep deletes old turns (time passed in).

use poem::http::StatusCode;
use serde_json::json;

use clinicflow::channels::twilio::session_id;

use crate::api::{Client, state_for};
use crate::support::{BOOKING, at, demo, root, say_as};

const CLINIC_WA: &str = "whatsapp:+14155238886";
const MARIA: &str = "whatsapp:+5491155550000";
const JUAN: &str = "whatsapp:+5491166661234";
const NOW: &str = "2026-11-23T10:00";

async fn book(service: &clinicflow::service::Service, from: &str, script: &[&str]) {
    let session = session_id("whatsapp", from, CLINIC_WA);
    for line in script {
        say_as(service, &session, "whatsapp", from, line, NOW).await;
    }
}

#[tokio::test]
async fn export_then_erase_leaves_nothing_of_the_patient_in_any_table() {
    let state = state_for(demo(), root()).await;
    let service = state.service.clone();
    let client = Client::new(state);
    book(&service, MARIA, &BOOKING).await;
    let juan: Vec<&str> = BOOKING
        .iter()
        .map(|l| match *l {
            "María López" => "Juan Ferreyra",
            "30.123.456" => "28.999.888",
            "a las 10" => "a las 11",
            other => other,
        })
        .collect();
    book(&service, JUAN, &juan).await;
    // María also asks for a person: an escalation with her conversation in it.
    let maria_session = session_id("whatsapp", MARIA, CLINIC_WA);
    say_as(&service, &maria_session, "whatsapp", MARIA, "/humano", NOW).await;

    let (status, export) = client
        .post("/v1/patients/export", json!({ "document": "30.123.456" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let data = &export["data"];
    assert_eq!(data["appointments"].as_array().map(Vec::len), Some(1), "{data}");
    assert_eq!(data["appointments"][0]["patient_name"], "María López");
    assert_eq!(data["reminders"].as_array().map(Vec::len), Some(2));
    assert_eq!(data["sessions"].as_array().map(Vec::len), Some(1));
    assert!(data["turns"].as_array().is_some_and(|t| t.len() >= BOOKING.len()));
    assert_eq!(data["escalations"].as_array().map(Vec::len), Some(1), "{data}");
    // Nothing of Juan's in María's export.
    let text = data.to_string();
    assert!(!text.contains("Juan") && !text.contains("28999888"), "{text}");

    let (status, erased) = client
        .post("/v1/patients/erase", json!({ "document": "30123456" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["erased"]["appointments"], 1);
    assert_eq!(erased["erased"]["reminders"], 2);
    assert_eq!(erased["erased"]["escalations"], 1);

    let tables = service.store.dump_all().await.expect("dump");
    let dump = tables.to_string();
    for trace in [
        "30123456",
        "30.123.456",
        "María",
        "López",
        "5491155550000",
        maria_session.as_str(),
    ] {
        assert!(!dump.contains(trace), "{trace:?} is still stored: {dump}");
    }
    // Juan's data is untouched (and his document and name are stored encrypted).
    let rows = tables["appointment"].to_string();
    assert!(
        !rows.contains("28999888") && !rows.contains("Ferreyra") && rows.contains("enc:v1:"),
        "{rows}"
    );
    let left = service
        .store
        .list_appointments(&Default::default())
        .await
        .expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].document.as_str(), left[0].patient_name.as_str()),
        ("28999888", "Juan Ferreyra")
    );

    // Both operations are in the audit log, by the document's keyed hash only.
    let (status, audit) = client.get("/v1/audit").await;
    assert_eq!(status, StatusCode::OK);
    let entries = audit.as_array().expect("entries");
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["erase", "export"]);
    let hash = clinicflow::identity::document_hash("30123456");
    assert!(entries.iter().all(|e| e["subject"] == hash.as_str()));
    assert_eq!(entries[0]["counts"]["appointments"], 1);

    // An export now finds nothing; a bad document is a 400 with a message.
    let (_, again) = client
        .post("/v1/patients/export", json!({ "document": "30123456" }))
        .await;
    assert_eq!(again["data"]["appointments"], json!([]));
    let (status, bad) = client.post("/v1/patients/erase", json!({ "document": " .. " })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(!bad["message"].as_str().unwrap_or("").is_empty());
}

#[tokio::test]
async fn the_retention_sweep_deletes_turns_older_than_the_clinic_keeps_them() {
    let state = state_for(demo(), root()).await;
    let service = state.service.clone();
    assert_eq!(service.bot().clinic.turn_days, Some(180));
    book(&service, MARIA, &BOOKING).await;
    let session = session_id("whatsapp", MARIA, CLINIC_WA);
    let count = |s: &clinicflow::service::Service| {
        let store = s.store.clone();
        let session = session.clone();
        async move { store.recent_turns(&session, 1000).await.expect("turns").len() }
    };
    let before = count(&service).await;
    assert_eq!(before, BOOKING.len());
    // 179 days later nothing is old enough; 181 days later all of it is.
    let early = at("2027-05-21T10:00").timestamp();
    assert_eq!(
        clinicflow::retention::run_once(&service, early).await.expect("sweep"),
        0
    );
    assert_eq!(count(&service).await, before);
    let late = at("2027-05-23T10:00").timestamp();
    assert_eq!(
        clinicflow::retention::run_once(&service, late).await.expect("sweep"),
        before
    );
    assert_eq!(count(&service).await, 0);
    // The appointment itself is kept.
    let kept = service
        .store
        .list_appointments(&Default::default())
        .await
        .expect("list");
    assert_eq!(kept.len(), 1);
}

/// Erasing a patient drops their conversations from the service's hot-session cache: the
/// next message starts a new conversation instead of bringing the erased one back.
#[tokio::test]
async fn after_an_erase_the_next_message_starts_a_new_conversation() {
    let state = state_for(demo(), root()).await;
    let service = state.service.clone();
    let session = session_id("whatsapp", MARIA, CLINIC_WA);
    // Booked, and still in the cache.
    book(&service, MARIA, &BOOKING).await;
    let turns_before = service.store.recent_turns(&session, 100).await.expect("turns").len();
    assert!(turns_before > 1);
    let erased = service
        .erase_patient(
            "30123456",
            &clinicflow::identity::document_hash("30123456"),
            "test",
            crate::support::local(NOW),
        )
        .await
        .expect("erase");
    assert!(erased.conversations.contains(&session), "{:?}", erased.conversations);
    say_as(&service, &session, "whatsapp", MARIA, "hola", NOW).await;
    let stored = service
        .store
        .load_session(&session)
        .await
        .expect("load")
        .expect("new session");
    assert_eq!(stored.turns, 1, "a new conversation, not the cached one");
    assert!(stored.patient.is_none(), "{:?}", stored.patient);
}
