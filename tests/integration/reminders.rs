//! The reminder scheduler against a real SurrealDB (mem:// and surrealkv://): delivered once
//! and logged, exactly once between racing schedulers, taken over after a dead scheduler's
//! lease, sent after a restart, never for a cancelled or past appointment, retried on a
//! failing channel. Time is passed in (`run_once(.., now)`), so nothing here waits on a clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use clinicflow::outbound::{Outbound, SendFuture, Sender};
use clinicflow::reminders::{self, MAX_ATTEMPTS};
use clinicflow::service::Service;
use clinicflow::store::{NewAppointment, NewReminder, ReminderStatus, Slot, Store};

use crate::support::{BOOKING, demo, local, reminder_statuses, say_as};

fn plus(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs)).expect("time")
}

/// Records every delivery; optionally refuses the first `fail_first` ones.
#[derive(Default)]
struct Recording {
    delivered: Mutex<Vec<Outbound>>,
    refused: Mutex<usize>,
    fail_first: usize,
    delivered_signal: tokio::sync::Notify,
}

impl Recording {
    fn failing(n: usize) -> Self {
        Recording {
            fail_first: n,
            ..Default::default()
        }
    }

    fn delivered(&self) -> Vec<Outbound> {
        self.delivered.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }

    fn refused(&self) -> usize {
        *self.refused.lock().unwrap()
    }
}

impl Sender for Recording {
    fn deliver<'a>(&'a self, msg: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async move {
            // Let a concurrent scheduler run in between, as a network call would.
            tokio::task::yield_now().await;
            {
                let mut refused = self.refused.lock().unwrap();
                if *refused < self.fail_first {
                    *refused += 1;
                    return Err("twilio 503: service unavailable".into());
                }
            }
            self.delivered.lock().unwrap().push(msg.clone());
            self.delivered_signal.notify_waiters();
            Ok(())
        })
    }
}

/// A channel that takes the message and never answers (its scheduler will be killed).
#[derive(Default)]
struct Hangs {
    called: tokio::sync::Notify,
}

impl Sender for Hangs {
    fn deliver<'a>(&'a self, _msg: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async move {
            self.called.notify_one();
            std::future::pending().await
        })
    }
}

/// Books Cardiología with Dra. Laura Gómez at `when` (clinic-local) for conversation
/// `session`, and schedules a reminder `kind` before it. Returns (appointment id, reminder id).
async fn booked_with_reminder(store: &Store, session: &str, when: &str, kind: &str) -> (String, String) {
    let (date, time) = when.split_once('T').expect("date T time");
    let starts_at = local(when);
    let appointment = store
        .create_appointment(&NewAppointment {
            specialty: "Cardiología".into(),
            slot: Slot {
                professional: "Dra. Laura Gómez".into(),
                date: date.parse().expect("date"),
                time: time.parse().expect("time"),
                starts_at,
                minutes: 30,
            },
            patient_name: "María López".into(),
            document: "30123456".into(),
            coverage: None,
            email: None,
            channel: "whatsapp".into(),
            user: format!("whatsapp:+54911{session}"),
            session: session.into(),
            created_at: local("2026-11-20T09:00"),
        })
        .await
        .expect("appointment");
    let minutes: u32 = match kind {
        "24h" => 1440,
        "2h" => 120,
        other => panic!("kind {other}"),
    };
    let reminder = store
        .create_reminder(&NewReminder {
            appointment: appointment.id.clone(),
            session: session.into(),
            channel: "whatsapp".into(),
            user: format!("whatsapp:+54911{session}"),
            kind: kind.into(),
            offset_minutes: minutes,
            due_at: plus(starts_at, -60 * i64::from(minutes)),
            created_at: local("2026-11-20T09:00"),
        })
        .await
        .expect("reminder")
        .expect("new reminder");
    (appointment.id, reminder.id)
}

async fn say(service: &Service, session: &str, text: &str) {
    say_as(
        service,
        session,
        "whatsapp",
        &format!("whatsapp:+54911{session}"),
        text,
        "2026-11-23T10:00",
    )
    .await;
}

/// The whole path: a patient books on Monday (the flow schedules "24h" and "2h"), and the
/// scheduler sends each reminder once, when due, in the conversation, in its language.
#[tokio::test]
async fn a_booked_appointment_is_reminded_once_per_reminder_and_logged() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    for line in BOOKING {
        say(&service, "p1", line).await;
    }
    let pending = store
        .list_reminders(Some(ReminderStatus::Pending), 10)
        .await
        .expect("list");
    assert_eq!(
        pending.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["24h", "2h"]
    );
    let turns_before = store.recent_turns("p1", 100).await.expect("turns").len();
    let sender = Recording::default();

    // Nothing is due on Tuesday.
    assert_eq!(
        reminders::run_once(&service, &sender, "w1", local("2026-11-24T10:00"))
            .await
            .expect("run"),
        0
    );
    // Wednesday 10:00: the day-before reminder, once however often the scheduler runs.
    let wed = local("2026-11-25T10:00");
    assert_eq!(reminders::run_once(&service, &sender, "w1", wed).await.expect("run"), 1);
    assert_eq!(
        reminders::run_once(&service, &sender, "w1", plus(wed, 1))
            .await
            .expect("run"),
        0
    );
    assert_eq!(
        reminders::run_once(&service, &sender, "w2", plus(wed, 3600))
            .await
            .expect("run"),
        0
    );

    let sent = sender.delivered();
    assert_eq!(sent.len(), 1);
    let msg = &sent[0];
    assert_eq!(
        (
            msg.session.as_str(),
            msg.channel.as_str(),
            msg.user.as_str(),
            msg.kind.as_str()
        ),
        ("p1", "whatsapp", "whatsapp:+54911p1", "reminder")
    );
    assert!(
        msg.text.contains("Cardiología")
            && msg.text.contains("Dra. Laura Gómez")
            && msg.text.contains("mañana, jueves 26 de noviembre, a las 10:00"),
        "{}",
        msg.text
    );
    let turns = store.recent_turns("p1", 100).await.expect("turns");
    assert_eq!(turns.len(), turns_before + 1);
    let last = turns.last().expect("turn");
    assert_eq!(last.replies, std::slice::from_ref(&msg.text));
    assert_eq!(last.intent.as_deref(), Some("outbound:reminder"));
    assert!(last.input.is_empty());

    // Thursday 08:00: the two-hours-before reminder.
    let thu = local("2026-11-26T08:00");
    assert_eq!(reminders::run_once(&service, &sender, "w1", thu).await.expect("run"), 1);
    let text = &sender.delivered()[1].text;
    assert!(text.contains("hoy a las 10:00"), "{text}");
    let appointment = &pending[0].appointment;
    assert_eq!(
        reminder_statuses(&store, appointment).await,
        [
            ("24h".to_string(), ReminderStatus::Sent),
            ("2h".to_string(), ReminderStatus::Sent)
        ]
    );

    // The conversation goes on normally after the reminders.
    say(&service, "p1", "gracias").await;
    assert_eq!(
        store.recent_turns("p1", 100).await.expect("turns").len(),
        turns_before + 3
    );
}

/// A conversation held in English gets its reminder in English.
#[tokio::test]
async fn the_reminder_speaks_the_language_of_the_conversation() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    say(&service, "en1", "hello, I need to book an appointment").await;
    let session = store.load_session("en1").await.expect("load").expect("session");
    assert_eq!(session.lang.code(), "en");
    booked_with_reminder(&store, "en1", "2026-11-26T10:00", "2h").await;
    let sender = Recording::default();
    let n = reminders::run_once(&service, &sender, "w", local("2026-11-26T08:00"))
        .await
        .expect("run");
    assert_eq!(n, 1);
    let text = &sender.delivered()[0].text;
    assert!(
        text.contains("Cardiology appointment") && text.contains("today at 10:00"),
        "{text}"
    );
}

/// Two schedulers (two services, as two replicas would be) on one database, running at the
/// same time over the same reminders (36 due, more than two batches): each is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_racing_deliver_each_reminder_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("surrealkv://{}/db", dir.path().display());
    let store = Store::connect(&url).await.expect("store");
    // SurrealKV lets one process open a folder once; replicas on a SurrealDB server share
    // the database the same way these two services share one store.
    let a = Arc::new(Service::new(store.clone(), demo()));
    let b = Arc::new(Service::new(store.clone(), demo()));
    let n = 40;
    for i in 0..n {
        let when = format!("2026-11-26T{:02}:{:02}", 8 + i / 6, (i % 6) * 10);
        booked_with_reminder(&store, &format!("s{i:02}"), &when, "24h").await;
    }
    let now = local("2026-11-25T13:59");
    let sender = Arc::new(Recording::default());
    let mut tasks = Vec::new();
    for (service, owner) in [(a, "replica-a"), (b, "replica-b")] {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = 0;
            // Several passes each, so that claims interleave.
            for _ in 0..3 {
                mine += reminders::run_once(&service, sender.as_ref(), owner, now)
                    .await
                    .expect("run");
            }
            mine
        }));
    }
    let mut per_scheduler = Vec::new();
    for t in tasks {
        per_scheduler.push(t.await.expect("task"));
    }
    // Only reminders due by Wednesday 13:59 went out: appointments until Thursday 13:50.
    let due = (0..n).filter(|i| 8 + i / 6 < 14).count();
    assert_eq!(due, 36);
    let mut per_session: BTreeMap<String, usize> = BTreeMap::new();
    for m in sender.delivered() {
        *per_session.entry(m.session).or_default() += 1;
    }
    assert_eq!(per_scheduler.iter().sum::<usize>(), due, "{per_scheduler:?}");
    assert_eq!(per_session.len(), due);
    assert!(per_session.values().all(|&c| c == 1), "{per_session:?}");
    assert_eq!(
        store
            .list_reminders(Some(ReminderStatus::Sent), 100)
            .await
            .expect("list")
            .len(),
        due
    );
    for (session, _) in per_session {
        let turns = store.recent_turns(&session, 10).await.expect("turns");
        assert_eq!(turns.len(), 1, "{session}");
    }
}

/// A scheduler claims a reminder and dies in the middle of delivering it. Nobody else sends it
/// while its lease holds; the next scheduler sends it once the lease has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_claimed_by_a_scheduler_that_died_is_sent_after_its_lease() {
    let store = Store::connect("mem://").await.expect("store");
    let (appointment, reminder) = booked_with_reminder(&store, "d1", "2026-11-26T10:00", "2h").await;
    let now = local("2026-11-26T08:00");

    let dying = Arc::new(Service::new(store.clone(), demo()));
    let hangs = Arc::new(Hangs::default());
    let called = hangs.called.notified();
    let task = {
        let (dying, hangs) = (dying.clone(), hangs.clone());
        tokio::spawn(async move { reminders::run_once(&dying, hangs.as_ref(), "dead", now).await })
    };
    called.await;
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    let claimed = store.reminders_of(&appointment).await.expect("reminders").remove(0);
    // The dying scheduler handed the reminder to the outbox (turn log, row and reminder in
    // one transaction) and died delivering the row, which its lease still holds.
    assert_eq!(claimed.status, ReminderStatus::Pending);
    let row_id = claimed.outbox.clone().expect("queued in the outbox");
    let dead_row = store.outbox_of("d1").await.expect("outbox").remove(0);
    assert_eq!(
        (
            dead_row.id.as_str(),
            dead_row.lease_owner.as_deref(),
            dead_row.lease_token
        ),
        (row_id.as_str(), Some("dead"), 1)
    );
    assert_eq!(dead_row.reminder.as_deref(), Some(reminder.as_str()));

    let other = Service::new(store.clone(), demo());
    let sender = Recording::default();
    let lease = clinicflow::outbox::LEASE.as_secs();
    assert_eq!(
        reminders::run_once(&other, &sender, "alive", plus(now, 1))
            .await
            .expect("run"),
        0
    );
    assert_eq!(
        reminders::run_once(&other, &sender, "alive", plus(now, lease - 1))
            .await
            .expect("run"),
        0
    );
    assert_eq!(
        reminders::run_once(&other, &sender, "alive", plus(now, lease))
            .await
            .expect("run"),
        1
    );
    assert_eq!(sender.count(), 1);
    let sent = &store.reminders_of(&appointment).await.expect("reminders")[0];
    assert_eq!(
        (sent.id.as_str(), sent.status, sent.attempts),
        (reminder.as_str(), ReminderStatus::Sent, 1)
    );
    // Recorded once in the turn log, by the transaction that queued it.
    assert_eq!(store.recent_turns("d1", 10).await.expect("turns").len(), 1);
    // The dead scheduler's claim is gone: it could not record anything any more.
    assert!(!store.outbox_sent(&dead_row, None, now).await.expect("mark"));
}

/// The same replica's expired claim is fenced off too: after its lease ran out and a later
/// pass of the same scheduler claimed the reminder again (and is still delivering it), the
/// old claim can record nothing; the new one can.
#[tokio::test]
async fn an_expired_claim_of_the_same_scheduler_cannot_mark_the_reminder() {
    let store = Store::connect("mem://").await.expect("store");
    let (appointment, reminder) = booked_with_reminder(&store, "f1", "2026-11-26T10:00", "2h").await;
    let now = local("2026-11-26T08:00");
    let service = Arc::new(Service::new(store.clone(), demo()));
    // A pass whose delivery hangs, stopped there; returns the outbox row as its claim left it.
    let hanging_pass = |at: jiff::Timestamp| {
        let (service, store) = (service.clone(), store.clone());
        async move {
            let hangs = Arc::new(Hangs::default());
            let called = hangs.called.notified();
            let task = {
                let hangs = hangs.clone();
                tokio::spawn(async move { reminders::run_once(&service, hangs.as_ref(), "w", at).await })
            };
            called.await;
            task.abort();
            let _ = task.await;
            store.outbox_of("f1").await.expect("outbox").remove(0)
        }
    };
    let first = hanging_pass(now).await;
    let second = hanging_pass(plus(now, clinicflow::outbox::LEASE.as_secs())).await;
    assert_eq!(
        (first.id.as_str(), first.lease_owner.as_deref()),
        (second.id.as_str(), Some("w"))
    );
    assert_eq!(second.lease_token, first.lease_token + 1);
    assert!(!store.outbox_sent(&first, None, plus(now, 61)).await.expect("mark"));
    assert!(!store.outbox_failed(&first, "late", None).await.expect("mark"));
    assert!(store.outbox_sent(&second, None, plus(now, 61)).await.expect("mark"));
    // The row's outcome is the reminder's, in the same statement.
    let after = store.reminders_of(&appointment).await.expect("reminders").remove(0);
    assert_eq!(
        (after.id.as_str(), after.status, after.attempts, after.sent_at),
        (reminder.as_str(), ReminderStatus::Sent, 1, Some(plus(now, 61)))
    );
}

/// The server is down from Wednesday 07:00 to Thursday 08:30: after a restart on the same
/// folder the reminders that came due meanwhile are sent, except those of appointments that
/// have already started; of one appointment with two reminders due, only the latest goes.
#[tokio::test]
async fn reminders_due_while_the_server_was_down_are_sent_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("surrealkv://{}/db", dir.path().display());
    let (later, passed, both) = {
        let store = Store::connect(&url).await.expect("store");
        // Due Wed 10:00 (24h before Thu 10:00), missed while down, still ahead at 08:30.
        let later = booked_with_reminder(&store, "r1", "2026-11-26T10:00", "24h").await;
        // Thu 08:00, already started when the server is back.
        let passed = booked_with_reminder(&store, "r2", "2026-11-26T08:00", "24h").await;
        // Thu 10:30 with "24h" and "2h" (due Wed 10:30 and Thu 08:30): only "2h" goes.
        let both = booked_with_reminder(&store, "r3", "2026-11-26T10:30", "24h").await;
        store
            .create_reminder(&NewReminder {
                appointment: both.0.clone(),
                session: "r3".into(),
                channel: "whatsapp".into(),
                user: "whatsapp:+54911r3".into(),
                kind: "2h".into(),
                offset_minutes: 120,
                due_at: local("2026-11-26T08:30"),
                created_at: local("2026-11-20T09:00"),
            })
            .await
            .expect("reminder")
            .expect("new");
        let service = Service::new(store.clone(), demo());
        let sender = Recording::default();
        let before = reminders::run_once(&service, &sender, "w", local("2026-11-25T07:00"))
            .await
            .expect("run");
        assert_eq!((before, sender.count()), (0, 0));
        (later, passed, both)
        // Server stops: the service and every store handle are dropped here.
    };

    let store = reopen(&url).await;
    let service = Service::new(store.clone(), demo());
    let sender = Recording::default();
    let sent = reminders::run_once(&service, &sender, "w-restarted", local("2026-11-26T08:30"))
        .await
        .expect("run");
    assert_eq!(sent, 2);
    let mut sessions: Vec<String> = sender.delivered().into_iter().map(|m| m.session).collect();
    sessions.sort();
    assert_eq!(sessions, ["r1", "r3"]);
    assert_eq!(
        reminder_statuses(&store, &later.0).await,
        [("24h".to_string(), ReminderStatus::Sent)]
    );
    assert_eq!(
        reminder_statuses(&store, &passed.0).await,
        [("24h".to_string(), ReminderStatus::Cancelled)]
    );
    assert_eq!(
        reminder_statuses(&store, &both.0).await,
        [
            ("24h".to_string(), ReminderStatus::Cancelled),
            ("2h".to_string(), ReminderStatus::Sent)
        ]
    );
    let skipped = store.reminders_of(&passed.0).await.expect("reminders");
    assert_eq!(skipped[0].last_error.as_deref(), Some("appointment already started"));
    assert_eq!(store.recent_turns("r2", 10).await.expect("turns").len(), 0);
}

/// SurrealKV finishes closing a folder in the background after its last handle is dropped;
/// reopening waits for that (bounded).
async fn reopen(url: &str) -> Store {
    let mut last = None;
    for _ in 0..200 {
        match Store::connect(url).await {
            Ok(s) => return s,
            Err(e) => last = Some(e),
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("cannot reopen {url}: {last:?}");
}

/// A cancelled appointment's reminders are never sent: cancelled with it (the normal path), or
/// skipped by the scheduler when the appointment was cancelled behind the store's back.
#[tokio::test]
async fn a_cancelled_appointments_reminder_is_not_sent() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let (cancelled, _) = booked_with_reminder(&store, "c1", "2026-11-26T10:00", "2h").await;
    let (edited, _) = booked_with_reminder(&store, "c2", "2026-11-26T10:30", "2h").await;
    let (kept, _) = booked_with_reminder(&store, "c3", "2026-11-26T11:00", "2h").await;
    store
        .cancel_appointment(&cancelled, local("2026-11-25T12:00"))
        .await
        .expect("cancel")
        .expect("was booked");
    store
        .client()
        .query("UPDATE type::record('appointment', $id) SET status = 'cancelled'")
        .bind(serde_json::json!({ "id": edited }))
        .await
        .expect("edit");
    let edited_now = store.get_appointment(&edited).await.expect("get").expect("found");
    assert_eq!(edited_now.status.as_str(), "cancelled");

    let sender = Recording::default();
    let sent = reminders::run_once(&service, &sender, "w", local("2026-11-26T09:00"))
        .await
        .expect("run");
    assert_eq!(sent, 1);
    assert_eq!(
        sender.delivered().into_iter().map(|m| m.session).collect::<Vec<_>>(),
        ["c3"]
    );
    assert_eq!(
        reminder_statuses(&store, &cancelled).await[0].1,
        ReminderStatus::Cancelled
    );
    let skipped = &store.reminders_of(&edited).await.expect("reminders")[0];
    assert_eq!(
        (skipped.status, skipped.last_error.as_deref()),
        (ReminderStatus::Cancelled, Some("appointment cancelled"))
    );
    assert_eq!(reminder_statuses(&store, &kept).await[0].1, ReminderStatus::Sent);
    for s in ["c1", "c2"] {
        assert!(store.recent_turns(s, 10).await.expect("turns").is_empty());
    }
}

/// The channel refuses twice: the reminder waits 30 s, then 1 min, and is delivered on the
/// third attempt, once; only the delivery appears in the turn log.
#[tokio::test]
async fn a_failing_channel_is_retried_with_backoff_until_it_delivers() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let (appointment, _) = booked_with_reminder(&store, "f1", "2026-11-26T10:00", "2h").await;
    let sender = Recording::failing(2);
    let now = local("2026-11-26T08:00");
    let run = |secs| reminders::run_once(&service, &sender, "w", plus(now, secs));

    assert_eq!(run(0).await.expect("run"), 0);
    let r = &store.reminders_of(&appointment).await.expect("reminders")[0];
    assert_eq!(
        (r.status, r.attempts, r.last_error.as_deref(), r.lease_until),
        (
            ReminderStatus::Pending,
            1,
            Some("twilio 503: service unavailable"),
            Some(plus(now, 30))
        )
    );
    assert_eq!(run(29).await.expect("run"), 0);
    assert_eq!(sender.refused(), 1);
    assert_eq!(run(30).await.expect("run"), 0);
    assert_eq!(sender.refused(), 2);
    assert_eq!(run(89).await.expect("run"), 0);
    assert_eq!(run(90).await.expect("run"), 1);
    assert_eq!(run(200).await.expect("run"), 0);
    assert_eq!((sender.refused(), sender.count()), (2, 1));
    let r = &store.reminders_of(&appointment).await.expect("reminders")[0];
    assert_eq!((r.status, r.attempts), (ReminderStatus::Sent, 3));
    // At the time of the pass that delivered it (a fresh `now`, so a few ms after its start).
    let at = r.sent_at.expect("sent_at");
    assert!(at >= plus(now, 90) && at < plus(now, 91), "{at}");
    assert_eq!(store.recent_turns("f1", 10).await.expect("turns").len(), 1);
}

/// A channel that always fails: the reminder is given up after MAX_ATTEMPTS.
#[tokio::test]
async fn a_channel_that_always_fails_is_given_up_after_bounded_attempts() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let (appointment, _) = booked_with_reminder(&store, "g1", "2026-11-26T10:00", "2h").await;
    let sender = Recording::failing(usize::MAX);
    let mut now = local("2026-11-26T08:00");
    for _ in 0..MAX_ATTEMPTS + 2 {
        assert_eq!(reminders::run_once(&service, &sender, "w", now).await.expect("run"), 0);
        now = plus(now, 600);
    }
    assert_eq!(sender.refused(), MAX_ATTEMPTS as usize);
    let r = &store.reminders_of(&appointment).await.expect("reminders")[0];
    assert_eq!((r.status, r.attempts), (ReminderStatus::Failed, MAX_ATTEMPTS));
    // The turn log records what the clinic decided to send, written with its outbox row
    // (once, whatever the retries); the row says it failed.
    assert_eq!(store.recent_turns("g1", 10).await.expect("turns").len(), 1);
    let row = store.outbox_of("g1").await.expect("outbox").remove(0);
    assert_eq!(
        (row.status, row.attempts),
        (clinicflow::store::OutboxStatus::Failed, MAX_ATTEMPTS)
    );
}

/// `spawn` as `serve` runs it, on the real clock: it sends what is due and stops on shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spawned_scheduler_delivers_and_stops_on_shutdown() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Arc::new(Service::new(store.clone(), demo()));
    // An appointment tomorrow (real time) whose reminder was due a minute ago.
    let starts_at = plus(Timestamp::now(), 86_400);
    let local_start = starts_at.to_zoned(demo().clinic.tz.clone());
    let when = local_start.strftime("%Y-%m-%dT%H:%M").to_string();
    let (appointment, _) = booked_with_reminder(&store, "live", &when, "24h").await;

    let sender = Arc::new(Recording::default());
    let delivered = sender.delivered_signal.notified();
    tokio::pin!(delivered);
    delivered.as_mut().enable();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let handles: Vec<_> = ["s-a", "s-b"]
        .into_iter()
        .map(|owner| reminders::spawn(service.clone(), sender.clone(), owner.into(), shutdown.clone()))
        .collect();
    // The first tick is immediate; the guard only fails a broken scheduler instead of hanging.
    tokio::time::timeout(std::time::Duration::from_secs(30), delivered)
        .await
        .expect("the scheduler delivered");
    stop.send(true).expect("shutdown");
    for h in handles {
        tokio::time::timeout(std::time::Duration::from_secs(30), h)
            .await
            .expect("stopped")
            .expect("no panic");
    }
    assert_eq!(sender.count(), 1);
    assert_eq!(reminder_statuses(&store, &appointment).await[0].1, ReminderStatus::Sent);
}
