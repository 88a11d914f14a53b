//! No conversation goes round in circles: every waiting state of every demo flow, fed the same
//! unusable answer 20 times, hands over or changes its reply within `max_attempts + 1` turns,
//! and never gives the same reply three times in a row.

use std::collections::BTreeSet;

use clinicflow::engine::session::Session;
use clinicflow::flow::bot::StateKind;
use clinicflow::lang::Lang;
use clinicflow::service::{Service, TurnResponse};
use clinicflow::store::{AppointmentFilter, Store};

use crate::support::{demo, say_as};

/// Tuesday 1 December 2026, afternoon.
const NOW: &str = "2026-12-01T15:00";
const DOC: &str = "30123456";
/// The number that booked the seed appointments: listing, cancelling and moving from it need
/// no code. Another number must verify first (the `code` states).
const PATIENT: &str = "+5491155550101";
const OTHER: &str = "+5491155550202";

async fn say(service: &Service, session: &str, from: &str, text: &str) -> TurnResponse {
    say_as(service, session, "whatsapp", from, text, NOW).await
}

/// Messages that take a new conversation to a waiting state, and the state they reach.
const PREFIXES: &[(&str, &[&str])] = &[
    ("book_appointment.details", &["quiero un turno"]),
    ("book_appointment.details", &["quiero un turno con cardiología"]),
    ("book_appointment.pick", &["quiero un turno con cardiología el jueves"]),
    (
        "book_appointment.patient",
        &["quiero un turno con cardiología el jueves", "2"],
    ),
    (
        "book_appointment.patient",
        &["quiero un turno con cardiología el jueves", "2", "María López"],
    ),
    (
        "book_appointment.patient",
        &["quiero un turno con cardiología el jueves", "2", "María López", DOC],
    ),
    (
        "book_appointment.confirm",
        &[
            "quiero un turno con cardiología el jueves",
            "2",
            "María López",
            DOC,
            "OSDE",
        ],
    ),
    ("cancel_appointment.identify", &["quiero cancelar mi turno"]),
    ("cancel_appointment.pick", &["quiero cancelar mi turno", DOC]),
    ("cancel_appointment.confirm", &["quiero cancelar mi turno", DOC, "1"]),
    ("reschedule_appointment.identify", &["quiero cambiar mi turno"]),
    ("reschedule_appointment.pick", &["quiero cambiar mi turno", DOC]),
    ("reschedule_appointment.when", &["quiero cambiar mi turno", DOC, "1"]),
    (
        "reschedule_appointment.pick_option",
        &["quiero cambiar mi turno", DOC, "2", "el jueves 3 a las 8"],
    ),
    (
        "reschedule_appointment.confirm",
        &["quiero cambiar mi turno", DOC, "1", "el miércoles 2 a las 10"],
    ),
    ("my_appointments.identify", &["¿qué turnos tengo?"]),
];

/// The same, from a number that did not book: the one-time code is asked.
const OTHER_PREFIXES: &[(&str, &[&str])] = &[
    ("cancel_appointment.code", &["quiero cancelar mi turno", DOC]),
    ("reschedule_appointment.code", &["quiero cambiar mi turno", DOC]),
    ("my_appointments.code", &["¿qué turnos tengo?", DOC]),
];

/// Answers no waiting state can use: nonsense, a value repeated where it changes nothing, a
/// number that is no option, a lone question mark.
const UNUSABLE: &[&str] = &["zzz qqq", "particular", "14", "¿?"];

/// Two appointments of the same patient (Thursday 3 at 08:00, Monday 7 at 08:00), so that
/// cancelling and moving have a list to choose from.
async fn seeded() -> (Store, Service) {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    for (i, day) in ["el jueves 3", "el lunes 7"].iter().enumerate() {
        let s = format!("seed{i}");
        for line in [
            &format!("quiero un turno con cardiología {day} a las 8"),
            "María López",
            DOC,
            "OSDE",
            "sí",
        ] {
            say(&service, &s, PATIENT, line).await;
        }
    }
    let booked = store
        .list_appointments(&AppointmentFilter::default())
        .await
        .expect("list");
    assert_eq!(booked.len(), 2, "the seed bookings: {booked:?}");
    (store, service)
}

/// Feeds `answer` 20 times; returns the replies until the conversation is handed over.
async fn feed(service: &Service, session: &str, from: &str, answer: &str, first: &TurnResponse) -> (Vec<String>, bool) {
    let mut replies = vec![first.replies.join("\n")];
    for _ in 0..20 {
        let r = say(service, session, from, answer).await;
        assert!(!r.replies.is_empty(), "an empty reply to {answer:?}");
        if r.waiting_for_staff {
            return (replies, true);
        }
        replies.push(r.replies.join("\n"));
    }
    (replies, false)
}

fn check(place: &str, answer: &str, replies: &[String], handed_over: bool, max_attempts: usize) {
    // replies[0] is the question that put us here; the answers' replies follow.
    let answers = &replies[1..];
    for w in answers.windows(3) {
        assert!(
            !(w[0] == w[1] && w[1] == w[2]),
            "{place}: {answer:?} got the same reply three times in a row:\n{}",
            w[0]
        );
    }
    let early = &answers[..answers.len().min(max_attempts + 1)];
    let changed = early.windows(2).any(|w| w[0] != w[1]);
    assert!(
        handed_over && answers.len() <= max_attempts || changed,
        "{place}: {answer:?} neither handed over nor changed the reply within {} turns:\n{}",
        max_attempts + 1,
        answers.join("\n---\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiting_state_hands_over_or_moves_on_instead_of_looping() {
    let bot = demo();
    let max_attempts = bot.global.max_attempts as usize;
    let (store, service) = seeded().await;
    let mut reached = BTreeSet::new();
    let mut n = 0;
    let all = PREFIXES
        .iter()
        .map(|p| (PATIENT, p))
        .chain(OTHER_PREFIXES.iter().map(|p| (OTHER, p)));
    for (from, (place, prefix)) in all {
        for answer in UNUSABLE {
            n += 1;
            let session = format!("loop{n}");
            // Wrong codes lock the document: each try from another number starts afresh.
            let fresh;
            let service = if from == OTHER {
                fresh = seeded().await;
                &fresh.1
            } else {
                &service
            };
            let mut last = None;
            for line in *prefix {
                last = Some(say(service, &session, from, line).await);
            }
            let first = last.expect("a prefix");
            assert_eq!(
                first.state, *place,
                "the prefix {prefix:?} leads elsewhere: {:?}",
                first.replies
            );
            reached.insert(place.to_string());
            let (replies, handed_over) = feed(service, &session, from, answer, &first).await;
            check(place, answer, &replies, handed_over, max_attempts);
        }
    }

    // The email question, asked only by a clinic with `email_confirmations: true`.
    let changes = serde_json::json!({ "email_confirmations": true });
    let email_bot = clinicflow::cli::runner::with_clinic_settings(&bot, changes.as_object().expect("map"))
        .expect("the demo with email confirmations compiles");
    let email_service = Service::new(
        Store::connect("mem://").await.expect("store"),
        std::sync::Arc::new(email_bot),
    );
    let place = "book_appointment.contact";
    for answer in UNUSABLE {
        n += 1;
        let session = format!("loop{n}");
        let mut last = None;
        for line in [
            "quiero un turno con cardiología el jueves",
            "2",
            "María López",
            DOC,
            "OSDE",
        ] {
            last = Some(say(&email_service, &session, PATIENT, line).await);
        }
        let first = last.expect("a prefix");
        assert_eq!(first.state, place, "{:?}", first.replies);
        reached.insert(place.to_string());
        let (replies, handed_over) = feed(&email_service, &session, PATIENT, answer, &first).await;
        check(place, answer, &replies, handed_over, max_attempts);
    }

    // The answer to a reminder: the frame the reminder puts in the conversation.
    let appointment = store
        .list_appointments(&AppointmentFilter::default())
        .await
        .expect("list")
        .into_iter()
        .next()
        .expect("an appointment");
    let value = serde_json::to_value(&appointment).expect("json");
    for answer in UNUSABLE {
        n += 1;
        let id = format!("loop{n}");
        let mut s = Session::new(&id, "whatsapp", PATIENT, Lang::Es);
        assert!(clinicflow::reminders::await_answer(&bot, &mut s, &value));
        s.version = 1;
        store.save_session(&s).await.expect("save");
        let mut first = TurnResponse::of(&s, vec!["(reminder)".into()], "");
        first.slots = Default::default();
        reached.insert(s.position());
        let (replies, handed_over) = feed(&service, &id, PATIENT, answer, &first).await;
        check("reminder_reply.answer", answer, &replies, handed_over, max_attempts);
    }

    // Every state of every demo flow that waits for the patient was tried.
    let waiting: BTreeSet<String> = bot
        .flows
        .iter()
        .flat_map(|f| {
            f.states
                .iter()
                .filter(|s| matches!(s.kind, StateKind::Collect(_) | StateKind::Expect(_)))
                .map(move |s| format!("{}.{}", f.name, s.name))
        })
        .collect();
    let missing: Vec<&String> = waiting.difference(&reached).collect();
    assert!(missing.is_empty(), "waiting states no prefix reaches: {missing:?}");
}

/// The example: offered times on another day, the patient insists on times that are
/// not offered. The reply changes or the conversation is handed over; never 13 identical.
#[tokio::test]
async fn insisting_on_times_not_offered_does_not_loop() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store, demo());
    let first = say(&service, "p", PATIENT, "quiero un turno con cardiología el jueves").await;
    assert_eq!(first.state, "book_appointment.pick");
    let mut replies = Vec::new();
    for _ in 0..13 {
        let r = say(&service, "p", PATIENT, "a las 21").await;
        if r.waiting_for_staff {
            break;
        }
        replies.push(r.replies.join("\n"));
    }
    for w in replies.windows(3) {
        assert!(!(w[0] == w[1] && w[1] == w[2]), "three identical replies:\n{}", w[0]);
    }
    assert!(replies.len() < 13, "never handed over: {replies:?}");
}
