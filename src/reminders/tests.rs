use std::path::Path;
use std::sync::Arc;

use jiff::{Timestamp, Zoned};

use super::*;
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::flow::compile::{Sources, compile, compile_dir};
use crate::lang::Lang;
use crate::outbound::SendFuture;
use crate::store::{Appointment, NewReminder};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn demo() -> Bot {
    compile_dir(root()).unwrap_or_else(|d| panic!("{}", d.render()))
}

/// The small test bot, with `flows/global.yaml` extended by `extra` lines.
fn base_with(extra: &str) -> Bot {
    let dir = root().join("tests/fixtures/base");
    let mut sources = Sources::from_dir(&dir).unwrap();
    let global = std::fs::read_to_string(dir.join("flows/global.yaml")).unwrap();
    sources.insert("flows/global.yaml", format!("{global}{extra}"));
    compile(&sources).unwrap_or_else(|d| panic!("{}", d.render()))
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Wed 25 Nov 2026, 10:00 in Buenos Aires.
fn now() -> Zoned {
    "2026-11-25T10:00:00-03:00[America/Argentina/Buenos_Aires]"
        .parse()
        .unwrap()
}

/// Cardiología with Dra. Laura Gómez on `date` at 10:00 local (UTC-3).
fn appointment(date: &str) -> Appointment {
    let starts_at: Timestamp = format!("{date}T13:00:00Z").parse().unwrap();
    Appointment {
        id: "a1".into(),
        specialty: "Cardiología".into(),
        professional: "Dra. Laura Gómez".into(),
        date: date.parse().unwrap(),
        time: jiff::civil::time(10, 0, 0, 0),
        starts_at,
        minutes: 30,
        patient_name: "Ana Pérez".into(),
        document: "30111222".into(),
        coverage: Some("OSDE".into()),
        email: None,
        status: AppointmentStatus::Booked,
        channel: "whatsapp".into(),
        user: "whatsapp:+5491100000000".into(),
        session: "s1".into(),
        created_at: ts("2026-11-20T12:00:00Z"),
        cancelled_at: None,
        confirmed_at: None,
        marked_at: None,
        marked_by: None,
        slot_key: "k".into(),
    }
}

fn reminder() -> Reminder {
    Reminder {
        id: "r1".into(),
        appointment: "a1".into(),
        session: "s1".into(),
        channel: "whatsapp".into(),
        user: "whatsapp:+5491100000000".into(),
        kind: "24h".into(),
        offset_minutes: 1440,
        due_at: ts("2026-11-25T13:00:00Z"),
        status: ReminderStatus::Pending,
        lease_until: None,
        lease_owner: None,
        lease_token: 1,
        outbox: None,
        attempts: 1,
        last_error: None,
        created_at: ts("2026-11-20T12:00:00Z"),
        sent_at: None,
    }
}

fn session(lang: Lang) -> Session {
    Session::new("s1", "whatsapp", "whatsapp:+5491100000000", lang)
}

#[test]
fn retries_back_off_and_are_bounded() {
    let now = ts("2026-11-25T13:00:00Z");
    let row = crate::store::OutboxRow {
        id: "r".into(),
        session: "s1".into(),
        message: Outbound {
            kind: OutboundKind::Reminder,
            ..Default::default()
        },
        status: crate::store::OutboxStatus::Pending,
        reminder: Some("r1".into()),
        deadline: Some(ts("2026-11-25T13:06:00Z")),
        next_at: now,
        lease_until: None,
        lease_owner: None,
        lease_token: 1,
        attempts: 0,
        last_error: None,
        provider_id: None,
        created_at: now,
        sent_at: None,
    };
    let after = |n| crate::outbox::retry_time(&row, n, now).map(|t| t.duration_since(now).as_secs());
    assert_eq!(
        (1..=MAX_ATTEMPTS + 1).map(after).collect::<Vec<_>>(),
        [Some(30), Some(60), Some(120), Some(240), None, None]
    );
    // Never at or after the appointment's start.
    let late = ts("2026-11-25T13:05:00Z");
    assert_eq!(crate::outbox::retry_time(&row, 2, late), None);
}

#[test]
fn the_context_has_the_appointment_the_reminder_and_the_language() {
    let bot = demo();
    let ctx = text::context(&bot, &appointment("2026-11-26"), &reminder(), None, &now());
    // `check` knows exactly these names and fields (text::VARIABLES and friends).
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        k.sort();
        k
    };
    let sorted = |l: &[&str]| {
        let mut k: Vec<String> = l.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&ctx), sorted(text::VARIABLES));
    assert_eq!(keys(&ctx["appointment"]), sorted(text::APPOINTMENT_FIELDS));
    assert_eq!(keys(&ctx["reminder"]), sorted(text::REMINDER_FIELDS));
    assert_eq!(
        ctx["appointment"],
        serde_json::json!({
            "id": "a1", "specialty": "Cardiología", "professional": "Dra. Laura Gómez",
            "date": "2026-11-26", "time": "10:00", "day": "tomorrow",
            "patient_name": "Ana Pérez", "coverage": "OSDE",
        })
    );
    assert_eq!(
        ctx["reminder"],
        serde_json::json!({ "kind": "24h", "minutes_before": 1440 })
    );
    // No conversation: the clinic's language.
    assert_eq!(
        (ctx["session"]["lang"].as_str(), ctx["session"]["id"].as_str()),
        (Some("es"), Some("s1"))
    );
    assert_eq!(ctx["clinic"]["name"], "Clínica San Rafael");
    assert_eq!(
        (ctx["now"]["date"].as_str(), ctx["now"]["time"].as_str()),
        (Some("2026-11-25"), Some("10:00"))
    );
    let en = session(Lang::En);
    let ctx = text::context(&bot, &appointment("2026-11-25"), &reminder(), Some(&en), &now());
    assert_eq!(
        (ctx["session"]["lang"].as_str(), ctx["appointment"]["day"].as_str()),
        (Some("en"), Some("today"))
    );
}

#[test]
fn the_demo_reminder_speaks_the_conversation_language() {
    let bot = demo();
    let es = text::render(&bot, &appointment("2026-11-26"), &reminder(), None, &now());
    assert!(
        es.starts_with(
            "Hola Ana Pérez, le recordamos su turno de Cardiología con Dra. Laura Gómez mañana, \
             jueves 26 de noviembre, a las 10:00, en Av. Rivadavia 5120"
        ),
        "{es}"
    );
    assert!(es.contains("credencial de OSDE"), "{es}");
    let en = text::render(
        &bot,
        &appointment("2026-12-01"),
        &reminder(),
        Some(&session(Lang::En)),
        &now(),
    );
    assert!(
        en.starts_with(
            "Hello Ana Pérez, this is a reminder of your Cardiology appointment with Dra. Laura Gómez \
             on Tuesday, December 1 at 10:00"
        ),
        "{en}"
    );
}

#[test]
fn without_a_reminder_text_the_builtin_one_is_sent() {
    let bot = base_with("");
    assert!(bot.global.reminder.is_none());
    let es = text::render(&bot, &appointment("2026-11-25"), &reminder(), None, &now());
    assert_eq!(
        es,
        "Recordatorio de Clínica de Prueba: tiene turno de Cardiología con Dra. Laura Gómez hoy a las 10:00. \
         Si no puede asistir, escríbanos para cancelarlo o cambiarlo."
    );
    let en = text::render(
        &bot,
        &appointment("2026-11-26"),
        &reminder(),
        Some(&session(Lang::En)),
        &now(),
    );
    assert_eq!(
        en,
        "Reminder from Clínica de Prueba: you have a Cardiología appointment with Dra. Laura Gómez \
         tomorrow, Thursday, November 26, at 10:00. If you can't make it, write to us to cancel or reschedule it."
    );
}

#[test]
fn a_reminder_text_per_language_and_a_broken_one() {
    let bot = base_with(
        "  reminder:\n    es: \"Turno {{ appointment.day }} {{ appointment.time }} ({{ reminder.kind }})\"\n    \
         en: \"{{ appointment.time | time_hm(1, 2) }}\"\n",
    );
    let r = reminder();
    assert_eq!(
        text::render(&bot, &appointment("2026-11-25"), &r, None, &now()),
        "Turno today 10:00 (24h)"
    );
    // The English template fails at render time (`check` cannot see a filter's arguments
    // are wrong): the built-in text goes instead.
    let en = text::render(&bot, &appointment("2026-11-25"), &r, Some(&session(Lang::En)), &now());
    assert!(en.starts_with("Reminder from Clínica de Prueba"), "{en}");
}

/// A sender that never answers.
struct Hangs;

impl Sender for Hangs {
    fn deliver<'a>(&'a self, _msg: &'a Outbound) -> SendFuture<'a> {
        Box::pin(std::future::pending())
    }
}

/// The outbox cuts a delivery off at DELIVERY_TIMEOUT (paused clock: no real wait) and
/// keeps the reminder's row for a retry.
#[tokio::test(start_paused = true)]
async fn a_channel_that_does_not_answer_is_cut_off() {
    let store = crate::store::testing::mem().await;
    let msg = Outbound {
        session: "s1".into(),
        channel: "whatsapp".into(),
        user: "u".into(),
        text: "t".into(),
        kind: OutboundKind::Reminder,
        ..Default::default()
    };
    let t0 = ts("2026-11-25T13:00:00Z");
    store.enqueue("s1#1", &[msg], t0).await.unwrap();
    let rows = store
        .claim_outbox(t0, crate::outbox::LEASE, "w", 1, None)
        .await
        .unwrap();
    let tally = crate::outbox::deliver(&store, &Hangs, &rows, t0).await;
    assert_eq!((tally.sent, tally.retrying), (0, 1));
    let row = &store.outbox_of("s1").await.unwrap()[0];
    assert!(
        row.last_error.as_deref().is_some_and(|e| e.contains("did not answer")),
        "{row:?}"
    );
    // A reminder's first retry comes 30 s later.
    assert_eq!(row.next_at, t0 + FIRST_RETRY);
}

async fn mem_service() -> Service {
    Service::new(crate::store::testing::mem().await, Arc::new(demo()))
}

#[tokio::test]
async fn a_reminder_without_its_appointment_is_skipped() {
    let service = mem_service().await;
    let r = service
        .store
        .create_reminder(&NewReminder {
            appointment: "gone".into(),
            session: "s1".into(),
            channel: "api".into(),
            user: "u".into(),
            kind: "2h".into(),
            offset_minutes: 120,
            due_at: ts("2026-11-25T11:00:00Z"),
            created_at: ts("2026-11-20T11:00:00Z"),
        })
        .await
        .unwrap()
        .unwrap();
    let tally = sweep(
        &service,
        &crate::outbound::TurnLogOnly,
        "w",
        ts("2026-11-25T11:00:01Z"),
        &|| false,
    )
    .await
    .unwrap();
    assert_eq!((tally.claimed, tally.skipped, tally.sent), (1, 1, 0));
    let stored = &service.store.reminders_of("gone").await.unwrap()[0];
    assert_eq!(
        (stored.id.as_str(), stored.status, stored.last_error.as_deref()),
        (r.id.as_str(), ReminderStatus::Cancelled, Some("appointment not found"))
    );
}

#[tokio::test]
async fn a_stop_request_hands_the_claimed_reminders_back() {
    let service = mem_service().await;
    for i in 0..3 {
        service
            .store
            .create_reminder(&NewReminder {
                appointment: format!("a{i}"),
                session: "s1".into(),
                channel: "api".into(),
                user: "u".into(),
                kind: "2h".into(),
                offset_minutes: 120,
                due_at: ts("2026-11-25T11:00:00Z"),
                created_at: ts("2026-11-20T11:00:00Z"),
            })
            .await
            .unwrap()
            .unwrap();
    }
    let now = ts("2026-11-25T11:00:01Z");
    let tally = sweep(&service, &crate::outbound::TurnLogOnly, "w", now, &|| true)
        .await
        .unwrap();
    assert_eq!((tally.claimed, tally.released), (3, 3));
    // Claimable again at once, with no attempt spent.
    let again = service.store.claim_due(now, LEASE, "other", 10).await.unwrap();
    assert_eq!(again.iter().map(|r| r.attempts).collect::<Vec<_>>(), [1, 1, 1]);
}
