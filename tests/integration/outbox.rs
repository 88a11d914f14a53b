//! The outbox: what the clinic sends (a one-time code a turn decides to send, a staff reply,
//! a reminder) is queued in one transaction with its turn-log record and delivered after the
//! commit, by the service or, when that failed or never happened (the process died), by the
//! outbox worker of any replica: exactly once, with Twilio's message id recorded. Twilio is a
//! wiremock fake on loopback; time is passed in, nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use clinicflow::channels::twilio::fake::FakeTwilio;
use clinicflow::channels::twilio::{TwilioConfig, TwilioSender, session_id};
use clinicflow::outbound::{DeliveryError, Outbound, OutboundKind, SendFuture, Sender, TurnLogOnly};
use clinicflow::service::{Delivery, Service};
use clinicflow::store::{Fault, NewAppointment, NewReminder, OutboxRow, OutboxStatus, ReminderStatus, Slot, Store};

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
    // Two POSTs; before the second, the retry asked Twilio's list whether the first had gone
    // out after all (this fake has no list: the answer is "cannot say", and it is sent).
    let methods: Vec<String> = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(methods, ["POST", "GET", "POST"]);
}

/// The code's row claimed by a holder that recorded nothing (it died, or is about to record
/// a timeout), after Twilio took the message (the fake's list has it) or before. Returns
/// the claimed row.
async fn claimed_unrecorded(store: &Store, sender: &dyn Sender, conv: &str, twilio_took_it: bool) -> OutboxRow {
    let mut rows = store
        .claim_outbox(after(1), clinicflow::outbox::LEASE, "holder", 16, None)
        .await
        .expect("claim");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].session, conv);
    if twilio_took_it {
        sender.deliver_with_id(&rows[0].message).await.expect("twilio takes it");
    }
    rows.remove(0)
}

#[tokio::test]
async fn a_code_twilio_took_before_its_holder_died_is_recorded_not_sent_again() {
    let twilio = FakeTwilio::start(Duration::ZERO).await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let conv = code_asked(&service).await;
    let sender = sender(&twilio.server, &store);
    claimed_unrecorded(&store, sender.as_ref(), &conv, true).await;
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
    claimed_unrecorded(&store, sender.as_ref(), &conv, false).await;
    let late = clinicflow::outbox::run_once(&store, sender.as_ref(), "w", after(62)).await;
    let late = late.expect("pass");
    assert_eq!((late.found, late.sent), (0, 1), "{late:?}");
    let took = twilio.accepted();
    assert_eq!(took.len(), 1);
    assert_eq!(took[0].to, FIRST);
    let row = store.outbox_of(&conv).await.expect("outbox").remove(0);
    assert_eq!(row.status, OutboxStatus::Sent);
}

/// Counts deliveries; fails the first `fail_first` (retryably), as a channel that is down.
#[derive(Default)]
struct Counting {
    delivered: std::sync::Mutex<Vec<Outbound>>,
    failed: std::sync::Mutex<usize>,
    fail_first: usize,
}

impl Sender for Counting {
    fn deliver<'a>(&'a self, msg: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async move {
            // Let a concurrent worker run in between, as a network call would.
            tokio::task::yield_now().await;
            {
                let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
                if *failed < self.fail_first {
                    *failed += 1;
                    return Err(DeliveryError::retryable("twilio 503"));
                }
            }
            self.delivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(msg.clone());
            Ok(())
        })
    }
}

fn staff_reply(session: &str) -> Outbound {
    Outbound {
        session: session.into(),
        channel: "whatsapp".into(),
        user: FIRST.into(),
        text: "Hola, soy Ana de recepción.".into(),
        kind: OutboundKind::Staff,
        by: Some("Ana".into()),
        ..Default::default()
    }
}

/// The service dies between the commit and the delivery (the claim right after the commit
/// fails, as if the process or the database went away there): the reply is in the turn log
/// and the outbox, and the worker of another replica delivers it exactly once.
#[tokio::test]
async fn a_staff_reply_whose_sender_died_after_the_commit_is_sent_once_by_the_worker() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let sender = Counting::default();
    // A dry run counts the statements of one send: the claim is the one after the commit.
    let before = store.statements_sent();
    service
        .send(&TurnLogOnly, &staff_reply("dry"), &crate::support::at(NOW))
        .await
        .expect("dry run");
    let per_send = store.statements_sent() - before;
    let claim_at = per_send - 1;
    store.inject(claim_at, Fault::Fail);
    let sent = service
        .send(&sender, &staff_reply("s"), &crate::support::at(NOW))
        .await
        .expect("stored");
    assert_eq!(sent, Delivery::Queued);
    assert!(!store.fault_pending(), "the fault met the claim");
    assert!(sender.delivered.lock().unwrap().is_empty());
    let turns = store.recent_turns("s", 10).await.expect("turns");
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].intent.as_deref(), Some("outbound:staff"));

    for (owner, secs) in [("replica-b", 1), ("replica-c", 2), ("replica-b", 600)] {
        clinicflow::outbox::run_once(&store, &sender, owner, after(secs))
            .await
            .expect("pass");
    }
    assert_eq!(sender.delivered.lock().unwrap().len(), 1);
    let rows = store.outbox_of("s").await.expect("outbox");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, OutboxStatus::Sent);
}

/// A fault at every statement of a staff reply: afterwards the reply is in the turn log if
/// and only if it is in the outbox (and a failure before the commit leaves neither).
#[tokio::test]
async fn a_staff_reply_is_in_the_turn_log_iff_it_is_in_the_outbox() {
    let mut n = 1;
    loop {
        let store = Store::connect("mem://").await.expect("store");
        let service = Service::new(store.clone(), demo());
        store.inject(n, Fault::Fail);
        let result = service
            .send(&TurnLogOnly, &staff_reply("s"), &crate::support::at(NOW))
            .await;
        let past_the_end = store.fault_pending();
        // Moved out of the way of the reads below.
        store.inject(usize::MAX, Fault::Fail);
        let turns = store.recent_turns("s", 10).await.expect("turns").len();
        let rows = store.outbox_of("s").await.expect("outbox").len();
        assert_eq!(turns, rows, "fault at statement {n}: {result:?}");
        assert!(turns <= 1, "fault at statement {n}");
        if past_the_end {
            // Past the last statement: the send went through untouched.
            assert_eq!((turns, result.ok()), (1, Some(Delivery::Sent)));
            break;
        }
        n += 1;
        assert!(n < 30, "a send takes fewer statements");
    }
    assert!(n > 4, "the fault met begin, writes and commit");
}

/// Two replicas (two services with their schedulers and outbox workers) on one store, a
/// channel that fails every reminder's first delivery: the retries go through the outbox,
/// claimed by both at once, and every reminder reaches the patient exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_is_delivered_once_when_two_replicas_claim_it_concurrently() {
    let store = Store::connect("mem://").await.expect("store");
    let replicas = [
        Arc::new(Service::new(store.clone(), demo())),
        Arc::new(Service::new(store.clone(), demo())),
    ];
    let n = 12;
    for i in 0..n {
        book_with_reminder(&store, &format!("c{i:02}")).await;
    }
    let sender = Arc::new(Counting {
        fail_first: n,
        ..Default::default()
    });
    let due = local("2026-11-25T10:00");
    // One clock for both: each step starts together on both replicas (the simulated time
    // of one replica must not run a lease ahead of the other's).
    let barrier = Arc::new(tokio::sync::Barrier::new(replicas.len()));
    let mut tasks = Vec::new();
    for (r, service) in replicas.iter().enumerate() {
        let (service, sender, barrier) = (service.clone(), sender.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("replica-{r}");
            for step in [0, 0, 31, 31, 61, 400] {
                barrier.wait().await;
                let at = due + SignedDuration::from_secs(step);
                clinicflow::reminders::run_once(&service, sender.as_ref(), &owner, at)
                    .await
                    .expect("scheduler");
                clinicflow::outbox::run_once(&service.store, sender.as_ref(), &owner, at)
                    .await
                    .expect("outbox");
            }
        }));
    }
    for t in tasks {
        t.await.expect("replica");
    }
    let mut per_session = std::collections::BTreeMap::new();
    for m in sender.delivered.lock().unwrap().iter() {
        *per_session.entry(m.session.clone()).or_insert(0) += 1;
    }
    assert_eq!(per_session.len(), n, "{per_session:?}");
    assert!(per_session.values().all(|&c| c == 1), "{per_session:?}");
    let sent = store
        .list_reminders(Some(ReminderStatus::Sent), 100)
        .await
        .expect("reminders");
    assert_eq!(sent.len(), n);
    for s in per_session.keys() {
        assert_eq!(store.recent_turns(s, 10).await.expect("turns").len(), 1, "{s}");
    }
}

/// An appointment on Thursday 26 at 10:00 with its "24h" reminder, for conversation `session`.
async fn book_with_reminder(store: &Store, session: &str) {
    let n: u32 = session[1..].parse().expect("number");
    let when = local(&format!("2026-11-26T{:02}:{:02}", 10 + n / 2, (n % 2) * 30));
    let date: jiff::civil::Date = "2026-11-26".parse().expect("date");
    let time = when.to_zoned(demo().clinic.tz.clone()).time();
    let a = store
        .create_appointment(&NewAppointment {
            specialty: "Cardiología".into(),
            slot: Slot {
                professional: "Dra. Laura Gómez".into(),
                date,
                time,
                starts_at: when,
                minutes: 30,
            },
            patient_name: "María López".into(),
            document: "30123456".into(),
            coverage: None,
            email: None,
            channel: "whatsapp".into(),
            user: FIRST.into(),
            session: session.into(),
            created_at: local("2026-11-20T09:00"),
        })
        .await
        .expect("appointment");
    store
        .create_reminder(&NewReminder {
            appointment: a.id,
            session: session.into(),
            channel: "whatsapp".into(),
            user: FIRST.into(),
            kind: "24h".into(),
            offset_minutes: 1440,
            due_at: local("2026-11-25T10:00"),
            created_at: local("2026-11-20T09:00"),
        })
        .await
        .expect("reminder")
        .expect("new");
}

#[tokio::test]
async fn a_code_twilio_took_but_answered_too_late_for_is_recorded_on_its_retry_not_sent_again() {
    let twilio = FakeTwilio::start(Duration::ZERO).await;
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let conv = code_asked(&service).await;
    let sender = sender(&twilio.server, &store);
    // Twilio took it, but the answer came after the delivery timeout: a retryable failure.
    let row = claimed_unrecorded(&store, sender.as_ref(), &conv, true).await;
    let failed = store.outbox_failed(&row, "the channel did not answer in time", Some(after(11)));
    assert!(failed.await.expect("recorded"));
    let retry = clinicflow::outbox::run_once(&store, sender.as_ref(), "w", after(12)).await;
    let retry = retry.expect("pass");
    assert_eq!((retry.found, retry.sent), (1, 0), "{retry:?}");
    assert_eq!(twilio.accepted().len(), 1, "sent twice");
    let row = store.outbox_of(&conv).await.expect("outbox").remove(0);
    assert_eq!(row.status, OutboxStatus::Sent);
}
