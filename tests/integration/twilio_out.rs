//! Outbound Twilio: reminders and staff replies through the REST API (a wiremock fake of
//! Twilio on loopback), the message log and its status callbacks, and the patient's answers
//! to reminders ("1" confirms, "2" cancels, "3" reschedules THAT appointment). Time is
//! passed in (`run_once(.., now)`, `say_as(.., now)`): nothing waits on a clock.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use clinicflow::channels::twilio::{TwilioConfig, TwilioSender, session_id, status};
use clinicflow::flow::bot::Bot;
use clinicflow::flow::compile::compile_dir;
use clinicflow::reminders;
use clinicflow::service::{Service, TurnResponse};
use clinicflow::store::{AppointmentStatus, ReminderStatus, Store};

use crate::support::{BOOKING, demo, demo_copy, local, reminder_statuses, say_as};

const SID: &str = "ACtest0000000000000000000000000000";
const TOKEN: &str = "test-token";
const MESSAGES: &str = "/2010-04-01/Accounts/ACtest0000000000000000000000000000/Messages.json";
const CONTENT_SID: &str = "HX0123456789abcdef0123456789abcdef";
const CLINIC_WA: &str = "whatsapp:+14155238886";
const CLINIC_SMS: &str = "+15005550006";
const PATIENT: &str = "+5491155550000";

/// The demo clinic with a WhatsApp reminder template in clinic.yaml.
fn bot_with_template() -> Arc<Bot> {
    let dir = demo_copy();
    let clinic = dir.path().join("flows/clinic.yaml");
    let mut text = std::fs::read_to_string(&clinic).expect("clinic.yaml");
    text.push_str(&format!(
        "\n  whatsapp:\n    reminder_template:\n      content_sid: \"{CONTENT_SID}\"\n      variables:\n        \
         \"1\": \"{{{{ appointment.specialty }}}}\"\n        \"2\": \"{{{{ appointment.date | date_long }}}}\"\n        \
         \"3\": \"{{{{ appointment.time }}}}\"\n"
    ));
    std::fs::write(&clinic, text).expect("write");
    match compile_dir(dir.path()) {
        Ok(bot) => Arc::new(bot),
        Err(d) => panic!("{}", d.render()),
    }
}

fn config(server: &MockServer) -> TwilioConfig {
    let env: HashMap<&str, String> = [
        ("TWILIO_ACCOUNT_SID", SID.to_string()),
        ("TWILIO_AUTH_TOKEN", TOKEN.to_string()),
        ("TWILIO_API_BASE", server.uri()),
        ("TWILIO_WHATSAPP_FROM", CLINIC_WA.to_string()),
        ("TWILIO_SMS_FROM", CLINIC_SMS.to_string()),
        ("CLINICFLOW_PUBLIC_URL", "https://turnos.example.com".to_string()),
    ]
    .into_iter()
    .collect();
    TwilioConfig::from_lookup(|k| env.get(k).cloned())
}

fn basic_auth() -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"));
    format!("Basic {b64}")
}

/// Twilio's answer to an accepted message.
fn accepted(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({ "sid": sid, "status": "queued" }))
}

/// Decodes an application/x-www-form-urlencoded body.
pub(crate) fn form(req: &Request) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("utf-8")
    }
    std::str::from_utf8(&req.body)
        .expect("form body")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

struct Patient {
    session: String,
    channel: &'static str,
    user: String,
}

impl Patient {
    fn whatsapp() -> Patient {
        Patient {
            session: session_id("whatsapp", &format!("whatsapp:{PATIENT}"), CLINIC_WA),
            channel: "whatsapp",
            user: format!("whatsapp:{PATIENT}"),
        }
    }

    fn sms() -> Patient {
        Patient {
            session: session_id("sms", PATIENT, CLINIC_SMS),
            channel: "sms",
            user: PATIENT.to_string(),
        }
    }

    async fn say(&self, service: &Service, text: &str, now: &str) -> TurnResponse {
        say_as(service, &self.session, self.channel, &self.user, text, now).await
    }

    /// Books Cardiología on Thursday 26 November 2026 at 10:00 (on Monday the 23rd); the flow
    /// schedules the "24h" and "2h" reminders. Returns the appointment id.
    async fn book(&self, service: &Service) -> String {
        for line in BOOKING {
            self.say(service, line, "2026-11-23T10:00").await;
        }
        let booked = service
            .store
            .list_appointments(&clinicflow::store::AppointmentFilter {
                session: Some(self.session.clone()),
                ..Default::default()
            })
            .await
            .expect("appointments");
        assert_eq!(booked.len(), 1, "{booked:?}");
        booked[0].id.clone()
    }
}

/// The "24h" reminder is due on Wednesday 25 at 10:00.
const DUE: &str = "2026-11-25T10:00";

#[tokio::test]
async fn a_due_whatsapp_reminder_is_sent_once_with_the_template() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(accepted("SMreminder1"))
        .expect(1)
        .mount(&server)
        .await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), bot_with_template());
    let sender = TwilioSender::new(config(&server), store.clone()).expect("sender");
    let patient = Patient::whatsapp();
    let id = patient.book(&service).await;

    // Two schedulers, two sweeps each: one message.
    let due = local(DUE);
    let mut sent = 0;
    for owner in ["replica-a", "replica-b", "replica-a"] {
        sent += reminders::run_once(&service, &sender, owner, due).await.expect("sweep");
    }
    assert_eq!(sent, 1);

    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    let f = form(&requests[0]);
    assert_eq!(f["To"], format!("whatsapp:{PATIENT}"));
    assert_eq!(f["From"], CLINIC_WA);
    assert_eq!(f["ContentSid"], CONTENT_SID);
    let vars: Value = serde_json::from_str(&f["ContentVariables"]).expect("JSON variables");
    assert_eq!(
        vars,
        json!({ "1": "Cardiología", "2": "jueves 26 de noviembre", "3": "10:00" })
    );
    assert!(!f.contains_key("Body"), "{f:?}");
    assert_eq!(
        f["StatusCallback"],
        "https://turnos.example.com/twilio/messaging/status"
    );

    // Logged with its MessageSid; the turn log has the text.
    let logged = store.messages_of(&patient.session).await.expect("log");
    assert_eq!(logged.len(), 1);
    assert_eq!(
        (
            logged[0].id.as_str(),
            logged[0].kind.as_deref(),
            logged[0].status.as_str()
        ),
        ("SMreminder1", Some("reminder"), "queued")
    );
    assert_eq!(
        reminder_statuses(&store, &id).await,
        [
            ("24h".to_string(), ReminderStatus::Sent),
            ("2h".to_string(), ReminderStatus::Pending)
        ]
    );

    // Twilio reports the delivery.
    let params: HashMap<String, String> = [
        ("MessageSid", "SMreminder1"),
        ("MessageStatus", "delivered"),
        ("AccountSid", SID),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    status::record(&store, &params).await.expect("status");
    let m = store.get_message("SMreminder1").await.expect("get").expect("known");
    assert_eq!(m.status, "delivered");
}

#[tokio::test]
async fn an_sms_reminder_is_sent_as_text_asking_for_a_numbered_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(accepted("SMsms1"))
        .expect(1)
        .mount(&server)
        .await;
    let store = Store::connect("mem://").await.expect("store");
    // The template is for WhatsApp only.
    let service = Service::new(store.clone(), bot_with_template());
    let sender = TwilioSender::new(config(&server), store.clone()).expect("sender");
    let patient = Patient::sms();
    patient.book(&service).await;
    assert_eq!(
        reminders::run_once(&service, &sender, "w", local(DUE))
            .await
            .expect("sweep"),
        1
    );
    let requests = server.received_requests().await.expect("recorded");
    let f = form(&requests[0]);
    assert_eq!((f["To"].as_str(), f["From"].as_str()), (PATIENT, CLINIC_SMS));
    assert!(!f.contains_key("ContentSid"), "{f:?}");
    let body = &f["Body"];
    assert!(
        body.contains("Cardiología") && body.contains("1 confirmo · 2 cancelo · 3 quiero cambiarlo"),
        "{body}"
    );
}

/// Booked on a phone call: the reminder goes by SMS to the caller, and the answer, which
/// comes back in the SMS conversation, acts on the appointment.
#[tokio::test]
async fn a_phone_booking_is_reminded_by_sms_and_answered_there() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(accepted("SMvoice1"))
        .expect(1)
        .mount(&server)
        .await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let sender = TwilioSender::new(config(&server), store.clone()).expect("sender");
    let caller = Patient {
        session: session_id("voice", PATIENT, "+541149015120"),
        channel: "voice",
        user: PATIENT.to_string(),
    };
    let id = caller.book(&service).await;
    assert_eq!(
        reminders::run_once(&service, &sender, "w", local(DUE))
            .await
            .expect("sweep"),
        1
    );
    let requests = server.received_requests().await.expect("recorded");
    let f = form(&requests[0]);
    assert_eq!((f["To"].as_str(), f["From"].as_str()), (PATIENT, CLINIC_SMS));
    assert!(f["Body"].contains("2 cancelo"), "{f:?}");

    let sms = Patient::sms();
    let turn = sms.say(&service, "2", "2026-11-25T10:05").await;
    assert!(turn.replies.join("\n").contains("cancelé"), "{:?}", turn.replies);
    let a = store.get_appointment(&id).await.expect("get").expect("there");
    assert_eq!(a.status, AppointmentStatus::Cancelled);
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_an_outage_is() {
    let server = MockServer::start().await;
    // A trial account cannot message unverified numbers: final.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21608, "message": "The number +5491155550000 is unverified.", "status": 400
        })))
        .expect(1)
        .mount(&server)
        .await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let sender = TwilioSender::new(config(&server), store.clone()).expect("sender");
    let id = Patient::whatsapp().book(&service).await;
    let due = local(DUE);
    assert_eq!(
        reminders::run_once(&service, &sender, "w", due).await.expect("sweep"),
        0
    );
    // Much later (before the appointment): nothing is tried again.
    let later = local("2026-11-25T12:00");
    assert_eq!(
        reminders::run_once(&service, &sender, "w", later).await.expect("sweep"),
        0
    );
    let r = store.reminders_of(&id).await.expect("reminders");
    let first = r.iter().find(|r| r.kind == "24h").expect("24h");
    assert_eq!(first.status, ReminderStatus::Failed);
    let error = first.last_error.clone().unwrap_or_default();
    assert!(error.contains("21608") && error.contains("trial"), "{error}");
    assert!(!error.contains(PATIENT), "Twilio's message quotes the number: {error}");
    server.verify().await;

    // Twilio down: retried by the scheduler's policy (30 s later), then accepted.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({ "code": 20500 })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(accepted("SMretry"))
        .expect(1)
        .mount(&server)
        .await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let sender = TwilioSender::new(config(&server), store.clone()).expect("sender");
    let id = Patient::whatsapp().book(&service).await;
    assert_eq!(
        reminders::run_once(&service, &sender, "w", due).await.expect("sweep"),
        0
    );
    let pending = store.reminders_of(&id).await.expect("reminders");
    let r = pending.iter().find(|r| r.kind == "24h").expect("24h");
    assert_eq!((r.status, r.attempts), (ReminderStatus::Pending, 1));
    // Not before its retry time…
    let soon = Timestamp::from_second(due.as_second() + 10).expect("time");
    assert_eq!(
        reminders::run_once(&service, &sender, "w", soon).await.expect("sweep"),
        0
    );
    // …and at it.
    let retry = Timestamp::from_second(due.as_second() + 31).expect("time");
    assert_eq!(
        reminders::run_once(&service, &sender, "w", retry).await.expect("sweep"),
        1
    );
    assert_eq!(
        reminder_statuses(&store, &id).await[0],
        ("24h".to_string(), ReminderStatus::Sent)
    );
}

/// The reminder went out (through the turn log only): the conversation now waits for the
/// answer to it.
async fn reminded(patient: &Patient) -> (Service, String) {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store, demo());
    let id = patient.book(&service).await;
    let n = reminders::run_once(&service, &clinicflow::outbound::TurnLogOnly, "w", local(DUE))
        .await
        .expect("sweep");
    assert_eq!(n, 1);
    (service, id)
}

#[tokio::test]
async fn answering_2_cancels_that_appointment_and_its_other_reminders() {
    let patient = Patient::whatsapp();
    let (service, id) = reminded(&patient).await;
    let turn = patient.say(&service, "2", "2026-11-25T10:05").await;
    let said = turn.replies.join("\n");
    assert!(said.contains("cancelé su turno de Cardiología"), "{said}");
    let a = service.store.get_appointment(&id).await.expect("get").expect("there");
    assert_eq!(a.status, AppointmentStatus::Cancelled);
    assert_eq!(
        reminder_statuses(&service.store, &id).await,
        [
            ("24h".to_string(), ReminderStatus::Sent),
            ("2h".to_string(), ReminderStatus::Cancelled)
        ]
    );
    assert_eq!(turn.state, "idle");
}

#[tokio::test]
async fn answering_1_or_yes_confirms_it() {
    for answer in ["1", "sí, confirmo"] {
        let patient = Patient::whatsapp();
        let (service, id) = reminded(&patient).await;
        let turn = patient.say(&service, answer, "2026-11-25T10:05").await;
        let said = turn.replies.join("\n");
        assert!(said.contains("Gracias por confirmar"), "{answer}: {said}");
        let a = service.store.get_appointment(&id).await.expect("get").expect("there");
        assert_eq!(a.status, AppointmentStatus::Booked);
        assert!(a.confirmed_at.is_some(), "{answer}");
        // Its reminders stay.
        assert_eq!(
            reminder_statuses(&service.store, &id).await[1].1,
            ReminderStatus::Pending
        );
    }
}

#[tokio::test]
async fn answering_3_starts_rescheduling_that_appointment() {
    let patient = Patient::whatsapp();
    let (service, id) = reminded(&patient).await;
    let turn = patient.say(&service, "3", "2026-11-25T10:05").await;
    assert_eq!(turn.state, "reschedule_appointment.when");
    assert_eq!(turn.slots["appointment"]["id"], json!(id));
    let said = turn.replies.join("\n");
    assert!(said.contains("¿Para qué día lo quiere pasar?"), "{said}");
    // No document number asked; Friday is full, so the first alternative ("1" is an option
    // of the reschedule flow now, not an answer to the reminder).
    patient.say(&service, "el viernes 27", "2026-11-25T10:06").await;
    let turn = patient.say(&service, "a las 11", "2026-11-25T10:06").await;
    assert_eq!(turn.state, "reschedule_appointment.pick_option", "{:?}", turn.replies);
    let turn = patient.say(&service, "1", "2026-11-25T10:07").await;
    assert!(turn.state.ends_with(".confirm"), "{}: {:?}", turn.state, turn.replies);
    patient.say(&service, "sí", "2026-11-25T10:07").await;
    let a = service.store.get_appointment(&id).await.expect("get").expect("there");
    assert_eq!(
        (a.date.to_string(), a.time.to_string()),
        ("2026-11-30".into(), "08:00:00".into())
    );
    assert_eq!(a.status, AppointmentStatus::Booked);
}

#[tokio::test]
async fn words_answer_too_and_other_messages_are_handled_as_usual() {
    let patient = Patient::whatsapp();
    let (service, id) = reminded(&patient).await;
    // A question first: answered as always, nothing happens to the appointment.
    let turn = patient
        .say(&service, "¿dónde queda la clínica?", "2026-11-25T10:05")
        .await;
    assert!(!turn.replies.is_empty());
    let a = service.store.get_appointment(&id).await.expect("get").expect("there");
    assert_eq!((a.status, a.confirmed_at), (AppointmentStatus::Booked, None));
    // The answer still acts on the reminded appointment.
    let turn = patient.say(&service, "cancelo", "2026-11-25T10:06").await;
    assert!(turn.replies.join("\n").contains("cancelé"), "{:?}", turn.replies);
    let a = service.store.get_appointment(&id).await.expect("get").expect("there");
    assert_eq!(a.status, AppointmentStatus::Cancelled);

    let other = Patient::sms();
    let (service, id) = reminded(&other).await;
    let turn = other.say(&service, "quiero cambiarlo", "2026-11-25T10:05").await;
    assert_eq!(turn.state, "reschedule_appointment.when", "{:?}", turn.replies);
    assert_eq!(turn.slots["appointment"]["id"], json!(id));
}

#[tokio::test]
async fn a_reminder_does_not_disturb_a_conversation_in_progress() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store, demo());
    let patient = Patient::whatsapp();
    let id = patient.book(&service).await;
    // Booking something else when the reminder goes out.
    let turn = patient
        .say(&service, "quiero un turno con dermatología", "2026-11-25T09:59")
        .await;
    assert!(turn.state.starts_with("book_appointment."), "{}", turn.state);
    let n = reminders::run_once(&service, &clinicflow::outbound::TurnLogOnly, "w", local(DUE))
        .await
        .expect("sweep");
    assert_eq!(n, 1);
    // "el lunes 30" goes to the booking, not to the reminder.
    let turn = patient.say(&service, "el lunes 30", "2026-11-25T10:01").await;
    assert!(turn.state.starts_with("book_appointment."), "{}", turn.state);
    assert_eq!(turn.slots["date"], "2026-11-30");
    // The booking is dropped: nothing is asked again, and the reminder's answer still works.
    let turn = patient.say(&service, "/cancelar", "2026-11-25T10:02").await;
    assert_eq!(turn.state, "reminder_reply.answer");
    assert_eq!(turn.replies.len(), 1, "{:?}", turn.replies);
    // "No" asks which, and keeps waiting.
    let turn = patient.say(&service, "no", "2026-11-25T10:03").await;
    assert!(turn.replies.join(" ").contains("respóndame 2"), "{:?}", turn.replies);
    assert_eq!(turn.state, "reminder_reply.answer");
    patient.say(&service, "2", "2026-11-25T10:04").await;
    let a = service.store.get_appointment(&id).await.expect("get").expect("there");
    assert_eq!(a.status, AppointmentStatus::Cancelled);
}

#[tokio::test]
async fn an_answer_after_the_appointment_is_not_applied_to_it() {
    let patient = Patient::whatsapp();
    let (service, id) = reminded(&patient).await;
    // Thursday after the 10:00 appointment: "cancelar mi turno" is about another one.
    let turn = patient
        .say(&service, "quiero cancelar mi turno", "2026-11-26T12:00")
        .await;
    assert_eq!(turn.state, "cancel_appointment.identify", "{:?}", turn.replies);
    let a = service.store.get_appointment(&id).await.expect("get").expect("there");
    assert_eq!(a.status, AppointmentStatus::Booked);
}

#[tokio::test]
async fn a_staff_reply_from_the_inbox_reaches_twilio() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(accepted("SMstaff1"))
        .expect(1)
        .mount(&server)
        .await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Arc::new(Service::new(store.clone(), demo()));
    let patient = Patient::whatsapp();
    let turn = patient
        .say(&service, "quiero hablar con una persona", "2026-11-23T10:00")
        .await;
    assert!(turn.waiting_for_staff);
    let sender = Arc::new(TwilioSender::new(config(&server), store.clone()).expect("sender"));
    let reloader = clinicflow::reload::Reloader::new(crate::support::root(), service.clone());
    let state = clinicflow::server::AppState::new(service, reloader)
        .with_clock_override(true)
        .with_sender(sender);
    let client = crate::api::Client::new(state);
    let (_, open) = client.get("/v1/escalations?status=open").await;
    let id = open[0]["id"].as_str().expect("escalation id").to_string();
    let (status, body) = client
        .post(
            &format!("/v1/escalations/{id}/reply"),
            json!({ "text": "Hola, soy Ana de recepción." }),
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");

    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    let f = form(&requests[0]);
    assert_eq!(f["To"], format!("whatsapp:{PATIENT}"));
    assert_eq!(f["From"], CLINIC_WA);
    assert_eq!(f["Body"], "Hola, soy Ana de recepción.");
    assert!(!f.contains_key("ContentSid"));
    let logged = store.messages_of(&patient.session).await.expect("log");
    assert_eq!(logged[0].kind.as_deref(), Some("staff"));
}

#[tokio::test]
async fn status_callbacks_for_unknown_or_incomplete_messages_are_harmless() {
    let store = Store::connect("mem://").await.expect("store");
    let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    status::record(&store, &params(&[("MessageStatus", "sent")]))
        .await
        .expect("no sid");
    status::record(&store, &params(&[("MessageSid", "SM:x"), ("MessageStatus", "sent")]))
        .await
        .expect("bad sid");
    assert_eq!(store.get_message("SM:x").await.ok().flatten(), None);
    status::record(
        &store,
        &params(&[
            ("MessageSid", "SMelse"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "63016"),
        ]),
    )
    .await
    .expect("unknown sid");
    let m = store.get_message("SMelse").await.expect("get").expect("recorded");
    assert_eq!(
        (m.status.as_str(), m.error_code.as_deref(), m.session),
        ("undelivered", Some("63016"), None)
    );
}

#[test]
fn a_bad_whatsapp_template_is_reported_with_its_position() {
    let dir = demo_copy();
    let clinic = dir.path().join("flows/clinic.yaml");
    let mut text = std::fs::read_to_string(&clinic).expect("clinic.yaml");
    text.push_str(
        "\n  whatsapp:\n    reminder_template:\n      content_sid: \"HXnope\"\n      variables:\n        \
         \"1\": \"{{ appointment.specialty \"\n        \"uno\": \"x\"\n",
    );
    std::fs::write(&clinic, text).expect("write");
    let flow = dir.path().join("flows/faq_hours.yaml");
    let src = std::fs::read_to_string(&flow).expect("faq_hours");
    std::fs::write(
        &flow,
        src.replacen(
            "    say: faq_hours.j2\n",
            "    say: faq_hours.j2\n    numbered: true\n",
            1,
        ),
    )
    .expect("write");
    let Err(diags) = compile_dir(dir.path()) else {
        panic!("a bad template must not compile")
    };
    let out = diags.render();
    for what in [
        "`HXnope` is not a Twilio ContentSid",
        "template error",
        "`uno` is not a placeholder number",
        "`numbered` only applies to a state with `expect`",
    ] {
        assert!(out.contains(what), "missing {what:?} in:\n{out}");
    }
    assert!(
        regex::Regex::new(r"flows/clinic\.yaml:\d+:\d+")
            .expect("re")
            .is_match(&out),
        "{out}"
    );
}

/// `clinicflow serve` sends through Twilio when the account and token are set, and says so
/// without printing either.
#[tokio::test]
async fn serve_says_which_sender_it_uses_without_secrets() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = crate::support::root().display().to_string();
    let mut child = tokio::process::Command::new(crate::support::bin())
        .args(["serve", "--dir", &dir, "--db", "mem://", "--addr", "127.0.0.1:0"])
        .env_remove("CLINICFLOW_API_KEYS")
        .env("TWILIO_ACCOUNT_SID", SID)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("TWILIO_API_BASE", "http://127.0.0.1:9")
        .env("TWILIO_WHATSAPP_FROM", CLINIC_WA)
        .env_remove("TWILIO_SMS_FROM")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut seen = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("serving ") {
                break;
            }
        }
        seen
    })
    .await
    .expect("serve starts within 60 s");
    // San Rafael sends from its clinic.numbers (WhatsApp and SMS), Harbor Dental from its own.
    assert!(
        seen.contains("clinic `main`: reminders and staff replies go out through Twilio REST (WhatsApp and SMS)"),
        "{seen}"
    );
    assert!(seen.contains("clinic `harbor-dental`: reminders"), "{seen}");
    assert!(!seen.contains(TOKEN) && !seen.contains(SID), "{seen}");
    child.kill().await.expect("kill");
}
