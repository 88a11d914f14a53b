//! The scripted conversations in tests/conversations run here too, so `cargo test` alone
//! proves the demo clinic works end to end on a real (in-memory) SurrealDB.

use clinicflow::cli::runner;
use clinicflow::service::Service;
use clinicflow::store::{AppointmentFilter, Store};

use crate::support::{BOOKING, demo, root, say};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scripted_conversation_passes() {
    let files = runner::default_files(root()).expect("conversations");
    assert!(files.len() >= 25, "only {} scripted conversations", files.len());
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = runner::run_file(demo(), f, false).await {
            failures.push(format!("{}\n{e}", f.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The second demo clinic (clinics/harbor-dental: Chicago, English, no coverage question) runs
/// its own conversations against its own bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_harbor_dental_conversation_passes() {
    let dir = root().join("clinics/harbor-dental");
    let bot = match clinicflow::flow::compile::compile_dir(&dir) {
        Ok(b) => std::sync::Arc::new(b),
        Err(d) => panic!("harbor-dental does not compile:\n{}", d.render()),
    };
    assert_eq!(bot.clinic.tz.iana_name(), Some("America/Chicago"));
    let files = runner::default_files(&dir).expect("conversations");
    assert!(files.len() >= 8, "only {} scripted conversations", files.len());
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = runner::run_file(bot.clone(), f, false).await {
            failures.push(format!("{}\n{e}", f.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The acceptance case, asserted directly against the database.
#[tokio::test]
async fn cardiologia_booking_then_the_same_slot_is_refused() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let now = "2026-11-23T10:00";
    // The whole booking but its last "sí": the reply to "OSDE" is the confirmation.
    let mut last = None;
    for line in &BOOKING[..BOOKING.len() - 1] {
        last = Some(say(&service, "a", line, now).await);
    }
    let confirm = last.expect("reply").replies.join("\n");
    assert!(
        confirm.contains("26 de noviembre") && confirm.contains("10:00"),
        "{confirm}"
    );
    let booked = say(&service, "a", "sí", now).await.replies.join("\n");
    assert!(
        booked.contains("26 de noviembre") && booked.contains("10:00"),
        "{booked}"
    );

    let stored = store
        .list_appointments(&AppointmentFilter::default())
        .await
        .expect("list");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].specialty, "Cardiología");
    assert_eq!(stored[0].date.to_string(), "2026-11-26");
    assert_eq!(stored[0].document, "30123456");

    // Another patient asks for the very same slot.
    say(&service, "b", "necesito un turno con el cardiólogo", now).await;
    say(&service, "b", "el jueves 26", now).await;
    let refused = say(&service, "b", "a las 10", now).await;
    let text = refused.replies.join("\n");
    assert!(
        text.contains("10:30") || text.contains("11:00"),
        "alternatives offered: {text}"
    );
    assert!(!text.contains("¿Me dice el nombre"), "must not go on to book: {text}");
    assert_eq!(
        store
            .list_appointments(&AppointmentFilter::default())
            .await
            .expect("list")
            .len(),
        1
    );
}

#[tokio::test]
async fn handoff_stores_an_escalation_with_the_conversation_so_far() {
    let store = Store::connect("mem://").await.expect("store");
    let service = Service::new(store.clone(), demo());
    let now = "2026-11-23T10:00";
    say(&service, "h", "hola", now).await;
    say(&service, "h", "quiero un turno con dermatología", now).await;
    let r = say(&service, "h", "quiero hablar con una persona", now).await;
    assert!(r.waiting_for_staff);
    let open = store
        .list_escalations(Some(clinicflow::store::EscalationStatus::Open), 10)
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
    let inputs: Vec<&str> = open[0].transcript.iter().map(|t| t.input.as_str()).collect();
    assert_eq!(
        inputs,
        [
            "hola",
            "quiero un turno con dermatología",
            "quiero hablar con una persona"
        ]
    );
    // While staff has the conversation the bot does not run flows.
    let r = say(&service, "h", "quiero un turno", now).await;
    assert!(r.waiting_for_staff && r.replies.is_empty(), "{r:?}");
    assert_eq!(
        r.state, "book_appointment.details",
        "kept for when staff gives it back: {r:?}"
    );
    assert_eq!(
        store.list_escalations(None, 10).await.expect("list").len(),
        1,
        "no second escalation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_messages_of_one_conversation_lose_nothing() {
    let store = Store::connect("mem://").await.expect("store");
    let service = std::sync::Arc::new(Service::new(store.clone(), demo()));
    let mut tasks = tokio::task::JoinSet::new();
    for text in [
        "hola",
        "quiero un turno",
        "con cardiología",
        "gracias",
        "/ayuda",
        "hola",
    ] {
        let service = service.clone();
        tasks.spawn(async move { say(&service, "same", text, "2026-11-23T10:00").await });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("turn task");
    }
    let s = store.load_session("same").await.expect("load").expect("session");
    assert_eq!(s.turns, 6);
    assert_eq!(s.version, 6);
    assert_eq!(store.recent_turns("same", 100).await.expect("turns").len(), 6);
}

/// Clinic data has one home: a specialty and a coverage added to flows/clinic.yaml alone
/// (schemas/specialty.json and coverage.json untouched) are offered, understood and booked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_specialty_added_to_clinic_yaml_alone_is_bookable() {
    let dir = crate::support::demo_copy();
    let clinic = dir.path().join("flows/clinic.yaml");
    let src = std::fs::read_to_string(&clinic).expect("read");
    let src = src
        .replacen(
            "  specialties:\n",
            "  specialties:\n    - name: Neurología\n      synonyms: [neurólogo, neuróloga]\n      professionals:\n        \
             - name: Dr. Pablo Ibáñez\n          schedule: { thu: \"08:00-12:00\" }\n\n",
            1,
        )
        .replacen("  coverages:\n", "  coverages:\n    - name: Sancor Salud\n", 1);
    std::fs::write(&clinic, src).expect("write");
    let bot = match clinicflow::flow::compile::compile_dir(dir.path()) {
        Ok(b) => std::sync::Arc::new(b),
        Err(d) => panic!("{}", d.render()),
    };
    let script = root().join("tests/fixtures/new_specialty/conversation.yaml");
    if let Err(e) = runner::run_file(bot, &script, false).await {
        panic!("{e}");
    }
}
