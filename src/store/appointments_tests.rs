use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::super::testing::mem;
use super::*;

pub(crate) fn slot(professional: &str, date: &str, time: &str) -> Slot {
    let date: Date = date.parse().unwrap();
    let time: Time = time.parse().unwrap();
    let tz = TimeZone::get("America/Argentina/Buenos_Aires").unwrap();
    let starts_at = date.to_datetime(time).to_zoned(tz).unwrap().timestamp();
    Slot {
        professional: professional.into(),
        date,
        time,
        starts_at,
        minutes: 30,
    }
}

pub(crate) fn booking(slot: Slot, document: &str) -> NewAppointment {
    NewAppointment {
        specialty: "Cardiología".into(),
        slot,
        patient_name: "Ana Gómez".into(),
        document: document.into(),
        coverage: Some("OSDE".into()),
        email: None,
        channel: "whatsapp".into(),
        user: "whatsapp:+5491100000000".into(),
        session: "s1".into(),
        created_at: "2025-06-09T12:00:00Z".parse().unwrap(),
    }
}

fn now() -> Timestamp {
    "2025-06-09T12:10:00Z".parse().unwrap()
}

#[tokio::test]
async fn book_read_back_and_refuse_a_double_booking() {
    let store = mem().await;
    let a = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "30111222"))
        .await
        .unwrap();
    assert!(!a.id.is_empty() && !a.id.contains(':'), "{}", a.id);
    assert_eq!(a.slot_key, "Dr. Juan Pérez|2025-06-10|09:00");
    assert_eq!(a.starts_at, "2025-06-10T12:00:00Z".parse::<Timestamp>().unwrap());
    assert_eq!(
        (a.status, a.coverage.as_deref()),
        (AppointmentStatus::Booked, Some("OSDE"))
    );
    assert_eq!(store.get_appointment(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_appointment("nope").await.unwrap(), None);

    let twice = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "99888777"))
        .await;
    assert!(matches!(twice, Err(StoreError::SlotTaken)), "{twice:?}");
    // Same time with another professional is another slot.
    let mut other = booking(slot("Dra. Laura Díaz", "2025-06-10", "09:00"), "99888777");
    other.coverage = None;
    let b = store.create_appointment(&other).await.unwrap();
    assert_eq!(b.coverage, None);
    assert_eq!(
        store
            .booked_slots("Dr. Juan Pérez", "2025-06-10".parse().unwrap())
            .await
            .unwrap(),
        vec![Time::constant(9, 0, 0, 0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_bookings_of_one_slot_make_one_appointment() {
    let store = mem().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let new = booking(slot("Dr. Juan Pérez", "2025-06-11", "10:30"), &format!("3000000{i}"));
        tasks.push(tokio::spawn(async move { store.create_appointment(&new).await }));
    }
    let (mut ok, mut taken) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::SlotTaken) => taken += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((ok, taken), (1, 9));
    let all = store.list_appointments(&AppointmentFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn cancelling_frees_the_slot() {
    let store = mem().await;
    let s = slot("Dr. Juan Pérez", "2025-06-10", "09:30");
    let a = store.create_appointment(&booking(s.clone(), "30111222")).await.unwrap();
    let c = store.cancel_appointment(&a.id, now()).await.unwrap().unwrap();
    assert_eq!(c.status, AppointmentStatus::Cancelled);
    assert_eq!(c.slot_key, format!("cancelled:{}", a.id));
    assert_eq!(c.cancelled_at, Some(now()));
    // Cancelling twice or an unknown id changes nothing.
    assert_eq!(store.cancel_appointment(&a.id, now()).await.unwrap(), None);
    assert_eq!(store.cancel_appointment("nope", now()).await.unwrap(), None);
    assert!(store.booked_slots("Dr. Juan Pérez", s.date).await.unwrap().is_empty());
    let again = store.create_appointment(&booking(s, "40222333")).await.unwrap();
    assert_eq!(again.status, AppointmentStatus::Booked);
}

#[tokio::test]
async fn list_filters_and_sorts_by_start() {
    let store = mem().await;
    let late = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-12", "11:00"), "30111222"))
        .await
        .unwrap();
    let early = store
        .create_appointment(&booking(slot("Dra. Laura Díaz", "2025-06-10", "08:00"), "30111222"))
        .await
        .unwrap();
    let past = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-02", "08:00"), "30111222"))
        .await
        .unwrap();
    let other = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "08:00"), "55555555"))
        .await
        .unwrap();
    let cancelled = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-13", "08:00"), "30111222"))
        .await
        .unwrap();
    store.cancel_appointment(&cancelled.id, now()).await.unwrap();

    let ids = |list: Vec<Appointment>| list.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let mine = AppointmentFilter {
        document: Some("30111222".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_appointments(&mine).await.unwrap()),
        [past.id, early.id.clone(), late.id.clone(), cancelled.id]
    );
    let upcoming_booked = AppointmentFilter {
        status: Some(AppointmentStatus::Booked),
        starts_after: Some(now()),
        ..mine.clone()
    };
    assert_eq!(
        ids(store.list_appointments(&upcoming_booked).await.unwrap()),
        [early.id.clone(), late.id]
    );
    let that_day = AppointmentFilter {
        date: Some("2025-06-10".parse().unwrap()),
        ..Default::default()
    };
    let mut day = ids(store.list_appointments(&that_day).await.unwrap());
    day.sort();
    let mut expected = vec![early.id.clone(), other.id.clone()];
    expected.sort();
    assert_eq!(day, expected);
    let booked = store
        .booked_between(
            &["Dr. Juan Pérez", "Dra. Laura Díaz", "Dr. Juan"],
            "2025-06-10".parse().unwrap(),
            "2025-06-13".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(booked.len(), 3, "{booked:?}");
}

#[tokio::test]
async fn reschedule_is_atomic() {
    let store = mem().await;
    let a = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "30111222"))
        .await
        .unwrap();
    let b = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "10:00"), "40222333"))
        .await
        .unwrap();
    // Onto b's slot: refused, and a keeps its own.
    let onto_b = store
        .reschedule_appointment(&a.id, &slot("Dr. Juan Pérez", "2025-06-10", "10:00"), now())
        .await;
    assert!(matches!(onto_b, Err(StoreError::SlotTaken)), "{onto_b:?}");
    assert_eq!(store.get_appointment(&a.id).await.unwrap(), Some(a.clone()));

    let moved = store
        .reschedule_appointment(&a.id, &slot("Dra. Laura Díaz", "2025-06-11", "08:30"), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (moved.professional.as_str(), moved.date.to_string(), moved.time),
        ("Dra. Laura Díaz", "2025-06-11".to_string(), Time::constant(8, 30, 0, 0))
    );
    assert_eq!(moved.slot_key, "Dra. Laura Díaz|2025-06-11|08:30");
    assert_eq!(moved.starts_at, "2025-06-11T11:30:00Z".parse::<Timestamp>().unwrap());
    // The old slot is free again.
    store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "77777777"))
        .await
        .unwrap();
    // A cancelled appointment cannot be moved.
    store.cancel_appointment(&b.id, now()).await.unwrap();
    let gone = store
        .reschedule_appointment(&b.id, &slot("Dr. Juan Pérez", "2025-06-12", "10:00"), now())
        .await
        .unwrap();
    assert_eq!(gone, None);
}

#[tokio::test]
async fn attendance_is_marked_keeps_the_slot_and_stops_the_reminders() {
    let store = mem().await;
    let a = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "30111222"))
        .await
        .unwrap();
    let reminder = crate::store::NewReminder {
        appointment: a.id.clone(),
        session: "s1".into(),
        channel: "whatsapp".into(),
        user: "whatsapp:+5491100000000".into(),
        kind: "2h".into(),
        offset_minutes: 120,
        due_at: "2025-06-10T10:00:00Z".parse().unwrap(),
        created_at: now(),
    };
    store.create_reminder(&reminder).await.unwrap();
    let marked = store
        .mark_appointment(&a.id, AppointmentStatus::NoShow, "ana", now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (marked.status, marked.marked_by.as_deref(), marked.marked_at),
        (AppointmentStatus::NoShow, Some("ana"), Some(now()))
    );
    let reminders = store.reminders_of(&a.id).await.unwrap();
    assert_eq!(reminders[0].status, crate::store::ReminderStatus::Cancelled);
    // Still holds its slot, and a mark can be corrected.
    let date: Date = "2025-06-10".parse().unwrap();
    assert_eq!(store.booked_slots("Dr. Juan Pérez", date).await.unwrap().len(), 1);
    let fixed = store
        .mark_appointment(&a.id, AppointmentStatus::Attended, "ana", now())
        .await
        .unwrap();
    assert_eq!(fixed.map(|a| a.status), Some(AppointmentStatus::Attended));
    // Only attendance can be marked, and not on a cancelled appointment.
    assert!(
        store
            .mark_appointment(&a.id, AppointmentStatus::Cancelled, "ana", now())
            .await
            .is_err()
    );
    let b = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:30"), "30111222"))
        .await
        .unwrap();
    store.cancel_appointment(&b.id, now()).await.unwrap();
    let refused = store
        .mark_appointment(&b.id, AppointmentStatus::Attended, "ana", now())
        .await
        .unwrap();
    assert_eq!(refused, None);
    assert_eq!(
        store
            .mark_appointment("nope", AppointmentStatus::Attended, "ana", now())
            .await
            .unwrap(),
        None
    );
}

/// The slot cache (src/store/slot_cache.rs): a search after a booking, a cancellation or a
/// move through the store sees it at once; a write it did not see (another replica's, made
/// here straight on the database) is found by the booking it makes fail, and from then on.
#[tokio::test]
async fn held_slots_are_kept_between_searches_and_forgotten_on_every_write() {
    let store = mem().await;
    let d = |s: &str| s.parse::<Date>().unwrap();
    let span = (d("2025-06-09"), d("2025-08-08"));
    let want = (d("2025-06-10"), d("2025-06-23"));
    let held = |store: Store| async move {
        let (rows, covered) = store.held_slots(&["Dr. Juan Pérez"], want, span).await.unwrap();
        let mut times: Vec<String> = rows.iter().map(|(_, d, t)| format!("{d} {}", fmt_hhmm(*t))).collect();
        times.sort();
        (times, covered)
    };
    assert_eq!(
        held(store.clone()).await,
        (vec![], span.1),
        "the whole span is read once"
    );

    let a = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "30111222"))
        .await
        .unwrap();
    assert_eq!(held(store.clone()).await.0, ["2025-06-10 09:00"]);
    store
        .reschedule_appointment(&a.id, &slot("Dr. Juan Pérez", "2025-06-12", "10:00"), now())
        .await
        .unwrap();
    assert_eq!(held(store.clone()).await.0, ["2025-06-12 10:00"]);
    store.cancel_appointment(&a.id, now()).await.unwrap();
    assert_eq!(held(store.clone()).await.0, Vec::<String>::new());

    // Inside a transaction: its own booking at once, the others' after its commit.
    let tx = store.begin().await.unwrap();
    tx.create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-11", "09:00"), "30111222"))
        .await
        .unwrap();
    assert_eq!(held(tx.clone()).await.0, ["2025-06-11 09:00"]);
    assert_eq!(held(store.clone()).await.0, Vec::<String>::new());
    tx.commit().await.unwrap();
    assert_eq!(held(store.clone()).await.0, ["2025-06-11 09:00"]);

    // Behind the store's back: not seen while the entry is current...
    let mut other = booking(slot("Dr. Juan Pérez", "2025-06-13", "08:00"), "40222333");
    let doc = serde_json::json!({
        "specialty": other.specialty, "professional": other.slot.professional,
        "date": "2025-06-13", "time": "08:00", "starts_at": "2025-06-13T11:00:00Z", "minutes": 30,
        "patient_name": "x", "document": "x", "status": "booked", "channel": "api", "user": "u",
        "session": "s9", "created_at": "2025-06-09T12:00:00Z", "slot_key": other.slot.key(),
    });
    store
        .client()
        .query("CREATE appointment CONTENT $doc")
        .bind(serde_json::json!({ "doc": doc }))
        .await
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(held(store.clone()).await.0, ["2025-06-11 09:00"]);
    // ...until booking it is refused, which forgets.
    other.document = "50333444".into();
    assert!(matches!(
        store.create_appointment(&other).await,
        Err(StoreError::SlotTaken)
    ));
    assert_eq!(held(store.clone()).await.0, ["2025-06-11 09:00", "2025-06-13 08:00"]);
}
