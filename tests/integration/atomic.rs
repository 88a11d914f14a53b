//! A turn is stored whole or not at all. The store's fault hook fails each statement of a
//! booking's last turn in turn ("the process died here"); a new `Service` over the same
//! database ("after the restart") then finds either everything the turn did or nothing of
//! it, and the patient's retry of the same message ends the booking exactly once. A forced
//! version conflict in the middle of the turn is absorbed: the turn runs again on fresh state.

use std::sync::Arc;

use clinicflow::service::{Service, TurnRequest, TurnResponse};
use clinicflow::store::{AppointmentFilter, Fault, Store};

use crate::support::{BOOKING, at, demo, say};

const NOW: &str = "2026-11-23T10:00";

async fn fresh() -> (Store, Service) {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    (store, service)
}

/// The booking up to "¿Confirmo?".
async fn to_confirmation(service: &Service, id: &str) {
    for line in &BOOKING[..BOOKING.len() - 1] {
        say(service, id, line, NOW).await;
    }
}

fn yes(id: &str) -> TurnRequest {
    TurnRequest {
        session_id: id.into(),
        channel: "test".into(),
        user: format!("user-{id}"),
        text: "sí".into(),
        now: at(NOW),
        message_id: Some("SMconfirm".into()),
        llm_budget: None,
    }
}

/// What the database holds of the conversation and its booking.
#[derive(Debug, PartialEq)]
struct Seen {
    appointments: usize,
    reminders: usize,
    turns: u64,
    state: String,
    processed: bool,
}

async fn seen(store: &Store, id: &str) -> Seen {
    let appointments = store
        .list_appointments(&AppointmentFilter::default())
        .await
        .expect("appointments");
    let mut reminders = 0;
    for a in &appointments {
        reminders += store.reminders_of(&a.id).await.expect("reminders").len();
    }
    let session = store.load_session(id).await.expect("load").expect("session");
    Seen {
        appointments: appointments.len(),
        reminders,
        turns: store.recent_turns(id, 100).await.expect("turns").len() as u64,
        state: session.position(),
        processed: store.processed("SMconfirm").await.expect("processed").is_some(),
    }
}

fn booked(resp: &TurnResponse) -> bool {
    let text = resp.replies.join("\n");
    text.contains("26 de noviembre") && text.contains("10:00")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_any_statement_of_a_booking_turn_leaves_all_of_it_or_nothing() {
    // How the turn ends when nothing fails.
    let (store, service) = fresh().await;
    to_confirmation(&service, "c").await;
    let before = seen(&store, "c").await;
    let sent = store.statements_sent();
    let resp = service.handle(yes("c")).await.expect("turn");
    assert!(booked(&resp), "{:?}", resp.replies);
    let statements = store.statements_sent() - sent;
    let after = seen(&store, "c").await;
    assert_eq!((before.appointments, after.appointments), (0, 1));
    assert!(after.reminders > 0 && after.processed && !before.processed, "{after:?}");
    assert!(statements >= 4, "{statements} statements");

    let mut failed_turns = 0;
    for n in 1..=statements {
        let (store, service) = fresh().await;
        to_confirmation(&service, "c").await;
        store.inject(n, Fault::Fail);
        let result = service.handle(yes("c")).await;
        assert!(!store.fault_pending(), "statement {n} was never sent");
        // "Restart": a new service (no cache, no locks) over what the database kept.
        let restarted = Service::new(store.clone(), demo());
        let kept = seen(&store, "c").await;
        match &result {
            // A failure after the commit (delivering the outbox, say) changes nothing.
            Ok(resp) => {
                assert!(booked(resp), "statement {n}: {:?}", resp.replies);
                assert_eq!(kept, after, "statement {n}");
            }
            Err(_) => {
                failed_turns += 1;
                assert_eq!(kept, before, "statement {n}: a half-stored turn");
            }
        }
        // The patient's retry (same message id) ends with exactly one booking.
        let retry = restarted.handle(yes("c")).await.expect("retry");
        assert!(booked(&retry), "statement {n}: {:?}", retry.replies);
        assert_eq!(retry.replayed, result.is_ok(), "statement {n}");
        assert_eq!(seen(&store, "c").await, after, "statement {n}");
    }
    // Every statement up to the commit fails the turn.
    assert!(
        failed_turns >= statements - 2,
        "{failed_turns} of {statements} failures surfaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_conflict_in_the_middle_of_a_booking_turn_runs_it_again() {
    for n in [1, 3, 5] {
        let (store, service) = fresh().await;
        to_confirmation(&service, "c").await;
        let before = seen(&store, "c").await;
        // Another replica saves the conversation while this turn is under way.
        let other = store.clone();
        store.inject(
            n,
            Fault::Before(Arc::new(move || {
                let other = other.clone();
                Box::pin(async move {
                    let mut s = other.load_session("c").await.expect("load").expect("session");
                    s.version += 1;
                    other.save_session(&s).await.expect("concurrent save");
                })
            })),
        );
        let resp = service.handle(yes("c")).await.expect("no conflict reaches the patient");
        assert!(!store.fault_pending());
        assert!(booked(&resp), "statement {n}: {:?}", resp.replies);
        let after = seen(&store, "c").await;
        assert_eq!(after.appointments, 1, "statement {n}");
        assert_eq!(after.turns, before.turns + 1, "statement {n}");
        assert_eq!(after.state, "idle", "statement {n}");
        let appointment = &store
            .list_appointments(&AppointmentFilter::default())
            .await
            .expect("list")[0];
        assert_eq!(appointment.date.to_string(), "2026-11-26");
    }
}
