//! Patient identity (issue 10, first bullet): an appointment is bound to the WhatsApp number
//! that booked it. A second number cannot learn or change it without the one-time code sent
//! to the first one (through a wiremock fake of Twilio's REST API), can after typing it, gets
//! the same answer for a document with and without appointments, and repeated wrong codes
//! lock the document and open an escalation.

use std::sync::Arc;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use clinicflow::channels::twilio::{TwilioConfig, TwilioSender, session_id};
use clinicflow::service::{Service, TurnResponse};
use clinicflow::store::{AppointmentStatus, EscalationStatus, Store};

use crate::support::{BOOKING, demo, say_as};

const SID: &str = "ACtest0000000000000000000000000000";
const MESSAGES: &str = "/2010-04-01/Accounts/ACtest0000000000000000000000000000/Messages.json";
const CLINIC_WA: &str = "whatsapp:+14155238886";
const FIRST: &str = "whatsapp:+5491155550000";
const SECOND: &str = "whatsapp:+5491166660000";
const DOCUMENT: &str = "30123456";
const NOW: &str = "2026-11-23T10:00";

struct Clinic {
    server: MockServer,
    store: Store,
    service: Service,
}

impl Clinic {
    async fn new() -> Clinic {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "sid": "SMcode", "status": "queued" })))
            .mount(&server)
            .await;
        let env = [
            ("TWILIO_ACCOUNT_SID", SID.to_string()),
            ("TWILIO_AUTH_TOKEN", "test-token".to_string()),
            ("TWILIO_API_BASE", server.uri()),
            ("TWILIO_WHATSAPP_FROM", CLINIC_WA.to_string()),
        ];
        let cfg = TwilioConfig::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()));
        let store = Store::connect("mem://").await.expect("store");
        let sender = TwilioSender::new(cfg, store.clone()).expect("sender");
        let service = Service::new(store.clone(), demo()).with_sender(Arc::new(sender));
        Clinic { server, store, service }
    }

    async fn say(&self, from: &str, text: &str) -> TurnResponse {
        let session = session_id("whatsapp", from, CLINIC_WA);
        say_as(&self.service, &session, "whatsapp", from, text, NOW).await
    }

    /// What the fake Twilio was asked to send: (To, Body).
    async fn sent(&self) -> Vec<(String, String)> {
        let requests = self.server.received_requests().await.expect("recorded");
        requests
            .iter()
            .map(|r| {
                let f = crate::twilio_out::form(r);
                (f["To"].clone(), f["Body"].clone())
            })
            .collect()
    }

    async fn last_code(&self) -> String {
        let sent = self.sent().await;
        let (_, body) = sent.last().expect("a message was sent");
        clinicflow::identity::find_code(body).expect("a code in the message")
    }
}

fn text(r: &TurnResponse) -> String {
    r.replies.join("\n")
}

/// Nothing of the first patient's appointment in a reply.
#[track_caller]
fn reveals_nothing(r: &TurnResponse) {
    let t = text(r);
    for secret in [
        "Cardiología",
        "Gómez",
        "Sosa",
        "26 de noviembre",
        "10:00",
        "María",
        "López",
    ] {
        assert!(!t.contains(secret), "{secret:?} revealed in {t}");
    }
}

#[tokio::test]
async fn a_second_number_needs_the_code_sent_to_the_first_to_list_or_cancel() {
    let clinic = Clinic::new().await;
    for line in BOOKING {
        clinic.say(FIRST, line).await;
    }
    let booked = clinic.store.list_appointments(&Default::default()).await.expect("list");
    assert_eq!(booked.len(), 1);
    assert!(clinic.sent().await.is_empty());

    // The second number asks for "my appointments" with the first person's document.
    clinic.say(SECOND, "quiero ver mis turnos").await;
    let asked = clinic.say(SECOND, DOCUMENT).await;
    reveals_nothing(&asked);
    assert_eq!(asked.state, "my_appointments.code");
    // The code went to the number on record, not to the one asking.
    let sent = clinic.sent().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, FIRST);
    let code = clinic.last_code().await;

    // A document nobody booked gets exactly the same answer (no enumeration), and no message.
    let third = "whatsapp:+5491177770000";
    clinic.say(third, "quiero ver mis turnos").await;
    let unknown = clinic.say(third, "40111222").await;
    assert_eq!(unknown.replies, asked.replies);
    assert_eq!(unknown.state, asked.state);
    assert_eq!(clinic.sent().await.len(), 1);

    // Cancelling without the code cancels nothing and says nothing.
    let other = "whatsapp:+5491188880000";
    clinic.say(other, "quiero cancelar mi turno").await;
    let r = clinic.say(other, DOCUMENT).await;
    reveals_nothing(&r);
    assert_eq!(clinic.sent().await.len(), 2);
    let r = clinic.say(other, "sí").await;
    reveals_nothing(&r);
    let a = clinic
        .store
        .get_appointment(&booked[0].id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(a.status, AppointmentStatus::Booked);

    // With the code, the second number sees it…
    let listed = clinic.say(SECOND, &code).await;
    assert!(text(&listed).contains("Cardiología"), "{}", text(&listed));
    assert!(listed.state == "idle");
    // …and, verified in this conversation, can cancel it without a new code.
    clinic.say(SECOND, "quiero cancelar mi turno").await;
    let confirm = clinic.say(SECOND, DOCUMENT).await;
    assert_eq!(confirm.state, "cancel_appointment.confirm", "{}", text(&confirm));
    clinic.say(SECOND, "sí").await;
    let a = clinic
        .store
        .get_appointment(&booked[0].id)
        .await
        .expect("get")
        .expect("there");
    assert_eq!(a.status, AppointmentStatus::Cancelled);
    // Two codes in all: the second number's, and the one the cancelling number asked for.
    assert_eq!(clinic.sent().await.len(), 2, "no new code for the cancel");
}

#[tokio::test]
async fn the_number_that_booked_cancels_with_no_extra_step() {
    let clinic = Clinic::new().await;
    for line in BOOKING {
        clinic.say(FIRST, line).await;
    }
    clinic.say(FIRST, "quiero cancelar mi turno").await;
    let confirm = clinic.say(FIRST, DOCUMENT).await;
    assert_eq!(confirm.state, "cancel_appointment.confirm");
    assert!(text(&confirm).contains("Cardiología"));
    clinic.say(FIRST, "sí").await;
    let all = clinic.store.list_appointments(&Default::default()).await.expect("list");
    assert_eq!(all[0].status, AppointmentStatus::Cancelled);
    assert!(clinic.sent().await.is_empty());
}

#[tokio::test]
async fn wrong_codes_lock_the_document_for_everyone_else_and_open_an_escalation() {
    let clinic = Clinic::new().await;
    for line in BOOKING {
        clinic.say(FIRST, line).await;
    }
    clinic.say(SECOND, "quiero ver mis turnos").await;
    clinic.say(SECOND, DOCUMENT).await;
    let right = clinic.last_code().await;
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let mut last = None;
    for _ in 0..3 {
        last = Some(clinic.say(SECOND, wrong).await);
    }
    let locked = last.expect("answers");
    assert!(text(&locked).contains("bloqueé"), "{}", text(&locked));
    reveals_nothing(&locked);
    let open = clinic
        .store
        .list_escalations(Some(EscalationStatus::Open), 10)
        .await
        .expect("escalations");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].reason.as_deref(), Some("identity_locked"));

    // The right code no longer works while locked, from this number or another.
    clinic.say(SECOND, "quiero ver mis turnos").await;
    let r = clinic.say(SECOND, DOCUMENT).await;
    assert!(text(&r).contains("bloqueé"));
    reveals_nothing(&r);
    assert_eq!(clinic.sent().await.len(), 1, "no new code while locked");
    // The number on record is not locked out of its own appointments.
    clinic.say(FIRST, "quiero ver mis turnos").await;
    let mine = clinic.say(FIRST, DOCUMENT).await;
    assert!(text(&mine).contains("Cardiología"), "{}", text(&mine));
}

#[tokio::test]
async fn stored_verification_rows_hold_no_document_or_code() {
    let clinic = Clinic::new().await;
    for line in BOOKING {
        clinic.say(FIRST, line).await;
    }
    clinic.say(SECOND, "quiero ver mis turnos").await;
    clinic.say(SECOND, DOCUMENT).await;
    let code = clinic.last_code().await;
    let mut resp = clinic
        .store
        .client()
        .query("SELECT * FROM verification")
        .await
        .expect("query");
    let rows: surrealdb::types::Value = resp.take(0).expect("rows");
    let dump = rows.into_json_value().to_string();
    assert!(dump.contains("code_hash"), "{dump}");
    assert!(!dump.contains(DOCUMENT) && !dump.contains(&code), "{dump}");
}
