//! Handing a conversation to staff and back, as a patient meets it: told once, later
//! messages in the escalation, staff replies with their name, slots kept on resolve.

use clinicflow::outbound::{Outbound, OutboundKind, TurnLogOnly};
use clinicflow::service::Service;
use clinicflow::store::{EscalationStatus, Store};

use crate::support::{at, demo, say};

#[tokio::test]
async fn a_handoff_keeps_the_slots_tells_once_and_records_what_follows() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let now = "2026-11-23T10:00";
    let r = say(&service, "h", "quiero un turno con dermatología", now).await;
    assert_eq!(
        r.slots.get("specialty").and_then(|v| v.as_str()),
        Some("Dermatología"),
        "{r:?}"
    );
    let before = r.state.clone();

    let r = say(&service, "h", "quiero hablar con una persona", now).await;
    assert!(r.waiting_for_staff && !r.replies.is_empty(), "{r:?}");
    let open = store
        .list_escalations(Some(EscalationStatus::Open), 10)
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
    let e = &open[0];
    assert_eq!(
        e.reason.as_deref(),
        Some("El paciente pidió hablar con una persona."),
        "the reason in the clinic's language"
    );

    // Told once: the messages that follow get no automatic answer, but staff sees them.
    for text in ["¿hola?", "¿hay alguien?"] {
        let r = say(&service, "h", text, now).await;
        assert!(r.waiting_for_staff, "{r:?}");
        assert!(
            r.replies.is_empty(),
            "not the same notice on every message: {:?}",
            r.replies
        );
    }
    let msg = Outbound {
        session: e.session.clone(),
        channel: e.channel.clone(),
        user: e.user.clone(),
        text: "Hola, soy Ana de recepción. ¿En qué le ayudo?".into(),
        kind: OutboundKind::Staff,
        by: Some("Ana".into()),
        ..Default::default()
    };
    service.send(&TurnLogOnly, &msg, &at(now)).await.expect("staff reply");
    let transcript = store.full_transcript(e).await.expect("transcript");
    let inputs: Vec<&str> = transcript.iter().map(|t| t.input.as_str()).collect();
    assert_eq!(
        inputs,
        [
            "quiero un turno con dermatología",
            "quiero hablar con una persona",
            "¿hola?",
            "¿hay alguien?",
            ""
        ]
    );
    let staff = transcript.last().expect("staff turn");
    assert_eq!(staff.replies, std::slice::from_ref(&msg.text));
    assert_eq!(staff.effects[0]["by"], "Ana", "the staff member's name is recorded");

    // Resolved: the assistant takes over where it was, with what it had collected.
    store
        .resolve_escalation(&e.id, Some("Ana"), None, at(now).timestamp())
        .await
        .expect("resolve");
    service.release_to_bot(&e.session).await.expect("release");
    let r = say(&service, "h", "el jueves 26", now).await;
    assert!(!r.waiting_for_staff, "{r:?}");
    assert_eq!(
        r.slots.get("specialty").and_then(|v| v.as_str()),
        Some("Dermatología"),
        "{r:?}"
    );
    assert_ne!(r.state, "idle", "resumed the booking (was {before}): {r:?}");
    assert!(!r.replies.is_empty());
}

#[tokio::test]
async fn every_turn_answers_something_and_problems_are_on_the_turn() {
    // A reply template that renders to nothing: the patient still gets an answer and the
    // turn log says what happened.
    let dir = crate::support::demo_copy();
    let greeting = dir.path().join("prompts/es/greeting.j2");
    assert!(greeting.exists(), "the demo's greeting template moved");
    std::fs::write(&greeting, "{% if false %}hola{% endif %}").expect("write");
    let bot = match clinicflow::flow::compile::compile_dir(dir.path()) {
        Ok(b) => std::sync::Arc::new(b),
        Err(d) => panic!("{}", d.render()),
    };
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), bot);
    let r = say(&service, "e", "hola", "2026-11-23T10:00").await;
    assert!(!r.replies.is_empty() && !r.replies[0].is_empty(), "{r:?}");
    assert!(
        r.diagnostics.iter().any(|d| d.contains("without a reply")),
        "{:?}",
        r.diagnostics
    );
    let turns = store.recent_turns("e", 5).await.expect("turns");
    assert!(
        turns[0].problems.iter().any(|p| p.contains("without a reply")),
        "{turns:?}"
    );
}
