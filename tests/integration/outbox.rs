//! The outbox: a one-time code a turn decides to send is queued in the turn's transaction and
//! delivered after the commit, by the service or, when that failed or never happened (the
//! process died), by the outbox worker of any replica: exactly once, with Twilio's message id
//! recorded. Twilio is a wiremock fake on loopback; time is passed in, nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use clinicflow::channels::twilio::fake::FakeTwilio;
use clinicflow::channels::twilio::{TwilioConfig, TwilioSender, session_id};
use clinicflow::outbound::Sender;
use clinicflow::service::Service;
use clinicflow::store::{OutboxStatus, Store};

use crate::support::{BOOKING, demo, local, say_as};

const SID: &str = "ACtest0000000000000000000000000000";
const MESSAGES: &str = "/2010-04-01/Accounts/ACtest0000000000000000000000000000/Messages.json";
const CLINIC_WA: &str = "whatsapp:+14155238886";
const FIRST: &str = "whatsapp:+5491155550000";
const SECOND: &str = "whatsapp:+5491166660000";
const NOW: &str = "2026-11-23T10:00";

fn sender(server: &MockServer, store: &Store) -> Arc<dyn Sender> {
    let env = [
        ("TWILIO_ACCOUNT_SID", SID.to_string()),
        ("TWILIO_AUTH_TOKEN", "test-token".to_string()),
        ("TWILIO_API_BASE", server.uri()),
        ("TWILIO_WHATSAPP_FROM", CLINIC_WA.to_string()),
    ];
    let cfg = TwilioConfig::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()));
    Arc::new(TwilioSender::new(cfg, store.clone()).expect("sender"))
}

fn accepted(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({ "sid": sid, "status": "queued" }))
}

/// FIRST books; SECOND asks for "my appointments" with FIRST's document, so a code goes to
/// FIRST. Returns FIRST's conversation id (the code's row belongs to the conversation it is
/// sent in).
async fn code_asked(service: &Service) -> String {
    let first = session_id("whatsapp", FIRST, CLINIC_WA);
    for line in BOOKING {
        say_as(service, &first, "whatsapp", FIRST, line, NOW).await;
    }
    let second = session_id("whatsapp", SECOND, CLINIC_WA);
    say_as(service, &second, "whatsapp", SECOND, "quiero ver mis turnos", NOW).await;
    let asked = say_as(service, &second, "whatsapp", SECOND, "30123456", NOW).await;
    assert_eq!(asked.state, "my_appointments.code");
    first
}

fn after(secs: i64) -> jiff::Timestamp {
    local(NOW) + SignedDuration::from_secs(secs)
}

#[tokio::test]
async fn a_code_queued_by_a_turn_that_died_after_its_commit_is_sent_once_by_the_worker() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(accepted("SMworker"))
        .expect(1)
        .mount(&server)
        .await;
    let store = Store::connect("mem://").await.expect("store");
    // No sender on the service: nothing is delivered after the commit, as if it died there.
    let service = Service::new(store.clone(), demo());
    let conv = code_asked(&service).await;
    let rows = store.outbox_of(&conv).await.expect("outbox");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status, rows[0].message.user.as_str()),
        (OutboxStatus::Pending, FIRST)
    );

    let sender = sender(&server, &store);
    let a = clinicflow::outbox::run_once(&store, sender.as_ref(), "replica-a", after(1)).await;
    assert_eq!(a.expect("pass").sent, 1);
    // Another replica's pass, and a later one: nothing more goes out.
    let b = clinicflow::outbox::run_once(&store, sender.as_ref(), "replica-b", after(2)).await;
    assert_eq!(b.expect("pass").sent, 0);
    let later = clinicflow::outbox::run_once(&store, sender.as_ref(), "replica-b", after(600)).await;
    assert_eq!(later.expect("pass").sent, 0);
    let row = &store.outbox_of(&conv).await.expect("outbox")[0];
    assert_eq!(
        (row.status, row.provider_id.as_deref()),
        (OutboxStatus::Sent, Some("SMworker"))
    );
    server.verify().await;
}

#[tokio::test]
async fn a_code_twilio_failed_to_take_is_retried_after_its_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({ "code": 20503, "message": "down" })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(accepted("SMretry"))
        .mount(&server)
        .await;
    let store = Store::connect("mem://").await.expect("store");
    let sender = sender(&server, &store);
    let service = Service::new(store.clone(), demo()).with_sender(sender.clone());
    let conv = code_asked(&service).await;
    // The service tried right after the commit; Twilio was down.
    let row = store.outbox_of(&conv).await.expect("outbox").remove(0);
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 1));
    assert!(row.last_error.is_some());
    let early = clinicflow::outbox::run_once(&store, sender.as_ref(), "w", after(5)).await;
    assert_eq!(early.expect("pass").sent, 0, "retried before its backoff");
    let due = clinicflow::outbox::run_once(&store, sender.as_ref(), "w", after(11)).await;
    assert_eq!(due.expect("pass").sent, 1);
    let row = store.outbox_of(&conv).await.expect("outbox").remove(0);
    assert_eq!(
        (row.status, row.provider_id.as_deref(), row.attempts),
        (OutboxStatus::Sent, Some("SMretry"), 2)
    );
    assert_eq!(server.received_requests().await.expect("recorded").len(), 2);
}

/// A holder that claimed the code's row and died: after Twilio took the message (the fake's
/// list has it), or before.
async fn died_holding(store: &Store, sender: &dyn Sender, conv: &str, after_twilio_took_it: bool) {
    let rows = store
        .claim_outbox(after(1), clinicflow::outbox::LEASE, "dead", 16, None)
        .await
        .expect("claim");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].session, conv);
    if after_twilio_took_it {
        sender.deliver_with_id(&rows[0].message).await.expect("twilio takes it");
    }
}

#[tokio::test]
async fn a_code_twilio_took_before_its_holder_died_is_recorded_not_sent_again() {
    let twilio = FakeTwilio::start(Duration::ZERO).await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let conv = code_asked(&service).await;
    let sender = sender(&twilio.server, &store);
    died_holding(&store, sender.as_ref(), &conv, true).await;
    let took = twilio.accepted();
    assert_eq!(took.len(), 1);

    // Inside the dead holder's lease nobody touches the row; after it, the worker finds it.
    let early = clinicflow::outbox::run_once(&store, sender.as_ref(), "w", after(30)).await;
    assert_eq!(early.expect("pass"), Default::default());
    let late = clinicflow::outbox::run_once(&store, sender.as_ref(), "w", after(62)).await;
    let late = late.expect("pass");
    assert_eq!((late.found, late.sent), (1, 0), "{late:?}");
    assert_eq!(twilio.accepted().len(), 1, "sent twice");
    let row = store.outbox_of(&conv).await.expect("outbox").remove(0);
    assert_eq!(
        (row.status, row.provider_id.as_deref()),
        (OutboxStatus::Sent, Some(took[0].sid.as_str()))
    );
}

#[tokio::test]
async fn a_code_whose_holder_died_before_twilio_took_it_is_sent_once_after_the_lease() {
    let twilio = FakeTwilio::start(Duration::ZERO).await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let conv = code_asked(&service).await;
    let sender = sender(&twilio.server, &store);
    died_holding(&store, sender.as_ref(), &conv, false).await;
    let late = clinicflow::outbox::run_once(&store, sender.as_ref(), "w", after(62)).await;
    let late = late.expect("pass");
    assert_eq!((late.found, late.sent), (0, 1), "{late:?}");
    let took = twilio.accepted();
    assert_eq!(took.len(), 1);
    assert_eq!(took[0].to, FIRST);
    let row = store.outbox_of(&conv).await.expect("outbox").remove(0);
    assert_eq!(row.status, OutboxStatus::Sent);
}
