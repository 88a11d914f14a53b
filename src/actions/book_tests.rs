//! Now is Monday 2025-06-09 09:10 (see `testutil`).

use serde_json::{Value, json};

use crate::actions::testutil::{Env, alts, clinic, now, session};
use crate::actions::{ActionContext, ActionName, ActionRequest, perform};
use crate::store::AppointmentStatus;

fn booking(date: &str, time: &str, document: &str) -> Value {
    json!({
        "specialty": "Cardiología", "date": date, "time": time,
        "patient_name": "Ana Gómez", "document": document, "coverage": "OSDE",
    })
}

#[tokio::test]
async fn booking_stores_the_appointment_and_the_conversation() {
    let env = Env::new().await;
    let out = env
        .call("book_appointment", booking("2025-06-10", "09:00", "30.111.222"))
        .await;
    let id = out["appointment"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        out,
        json!({ "ok": true, "appointment": {
            "id": id, "specialty": "Cardiología", "professional": "Dr. Juan Pérez",
            "date": "2025-06-10", "time": "09:00", "minutes": 30, "patient_name": "Ana Gómez",
            "document": "30111222", "coverage": "OSDE", "status": "booked",
        }})
    );
    let stored = env.store.get_appointment(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.channel.as_str(), stored.user.as_str(), stored.session.as_str()),
        ("whatsapp", "whatsapp:+5491100000000", "whatsapp:+5491100000000")
    );
    assert_eq!(
        stored.starts_at,
        "2025-06-10T12:00:00Z".parse::<jiff::Timestamp>().unwrap()
    );
    assert_eq!(stored.created_at, now().timestamp());
    assert_eq!(stored.status, AppointmentStatus::Booked);
}

#[tokio::test]
async fn a_booked_slot_cannot_be_booked_again() {
    let env = Env::new().await;
    env.call("book_appointment", booking("2025-06-10", "09:00", "30111222"))
        .await;
    let out = env
        .call("book_appointment", booking("2025-06-10", "09:00", "40222333"))
        .await;
    assert_eq!(
        (out["ok"].clone(), out["reason"].clone()),
        (json!(false), json!("taken"))
    );
    assert_eq!(alts(&out).len(), 3);
    assert_eq!(alts(&out)[0].1, "08:30");
}

#[tokio::test]
async fn without_a_professional_the_first_free_one_is_taken() {
    let env = Env::new().await;
    let mut professionals = Vec::new();
    for doc in ["1111111", "2222222", "3333333"] {
        let out = env.call("book_appointment", booking("2025-06-09", "10:00", doc)).await;
        professionals.push(out["appointment"]["professional"].clone());
        if doc == "3333333" {
            assert_eq!(out["reason"], "taken");
        }
    }
    assert_eq!(
        professionals,
        [json!("Dr. Juan Pérez"), json!("Dra. Laura Díaz"), json!(null)]
    );
}

#[tokio::test]
async fn refusals_explain_themselves() {
    let env = Env::new().await;
    let cases = [
        (booking("2025-06-09", "09:00", "1"), "past"),
        (booking("2025-06-15", "10:00", "1"), "closed"),
        (booking("2025-06-10", "12:00", "1"), "outside_hours"),
        (json!({ "date": "2025-06-10", "time": "09:00" }), "missing_specialty"),
        (json!({ "specialty": "Cardiología", "time": "09:00" }), "missing_date"),
        (
            json!({ "specialty": "Cardiología", "date": "2025-06-10" }),
            "missing_time",
        ),
        (
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "09:00" }),
            "missing_patient_name",
        ),
        (
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "09:00", "patient_name": "A" }),
            "missing_document",
        ),
        (
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "09:00", "patient_name": "A", "document": "..." }),
            "missing_document",
        ),
        (
            json!({ "specialty": "Pediatría", "date": "2025-06-10", "time": "09:00", "patient_name": "A", "document": "1" }),
            "unknown_specialty",
        ),
        (
            json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "9h", "patient_name": "A", "document": "1" }),
            "invalid_time",
        ),
    ];
    for (args, reason) in cases {
        let out = env.call("book_appointment", args.clone()).await;
        assert_eq!(
            (out["ok"].clone(), out["reason"].clone()),
            (json!(false), json!(reason)),
            "{args}"
        );
    }
    // Refusals about the slot come with somewhere else to go.
    let out = env.call("book_appointment", booking("2025-06-15", "10:00", "1")).await;
    assert_eq!(
        alts(&out)[0],
        ("2025-06-16".into(), "08:00".into(), "Dr. Juan Pérez".into())
    );
    assert!(
        env.store
            .list_appointments(&Default::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Ten patients press "confirm" on the same slot at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bookings_of_one_slot_succeed_exactly_once() {
    let env = Env::new().await;
    let run = |args: Value| {
        let store = env.store.clone();
        tokio::spawn(async move {
            let (clinic, session, now) = (clinic(), session(), now());
            let ctx = ActionContext {
                store: &store,
                clinic: &clinic,
                session: &session,
                now: &now,
                staff: false,
            };
            let req = ActionRequest {
                action: ActionName::BookAppointment,
                args: args.as_object().cloned().unwrap_or_default(),
            };
            perform(&ctx, &req).await.unwrap()
        })
    };
    let mut tasks = Vec::new();
    for i in 0..10 {
        let mut args = booking("2025-06-10", "09:00", &format!("3000000{i}"));
        args["professional"] = json!("Pérez");
        tasks.push(run(args));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        let out = t.await.unwrap();
        outcomes.push(if out["ok"] == true {
            "ok".to_string()
        } else {
            out["reason"].as_str().unwrap().to_string()
        });
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [vec!["ok".to_string()], vec!["taken".to_string(); 9]].concat()
    );

    // Two professionals at Monday 10:00: exactly two of ten get in.
    let tasks: Vec<_> = (0..10)
        .map(|i| run(booking("2025-06-09", "10:00", &format!("4000000{i}"))))
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap()["ok"] == true);
    }
    assert_eq!(ok, 2);
    assert_eq!(env.store.list_appointments(&Default::default()).await.unwrap().len(), 3);
}
