//! The store and the service against a real SurrealDB server over `ws://` (the README's
//! replica path), started on loopback by `clinicflow::cli::surreal` (built once, cached).

use clinicflow::cli::bench_replicas::ServeProcess;
use clinicflow::cli::surreal::SurrealServer;
use clinicflow::service::Service;
use clinicflow::store::{AppointmentFilter, NewAppointment, Slot, Store, StoreError};
use serde_json::json;

use crate::support::{BOOKING, at, bin, demo, root, say};

async fn server() -> SurrealServer {
    match SurrealServer::start().await {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_conversation_is_stored_on_a_surrealdb_server() {
    let server = server().await;
    let store = Store::connect(&server.url("clinicflow", "booking"))
        .await
        .expect("ws store");
    let service = Service::new(store.clone(), demo());
    let now = "2026-11-23T10:00";
    let mut last = None;
    for line in BOOKING {
        last = Some(say(&service, "ws-a", line, now).await);
    }
    let booked = last.expect("reply").replies.join("\n");
    assert!(
        booked.contains("26 de noviembre") && booked.contains("10:00"),
        "{booked}"
    );
    let stored = store
        .list_appointments(&AppointmentFilter::default())
        .await
        .expect("list");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].document, "30123456");
    assert_eq!(
        store.recent_turns("ws-a", 50).await.expect("turns").len(),
        BOOKING.len()
    );

    // A second client (another replica) sees the same data and cannot take the slot.
    let other = Store::connect(&server.url("clinicflow", "booking"))
        .await
        .expect("second client");
    let again = Service::new(other, demo());
    say(&again, "ws-b", "necesito un turno con el cardiólogo", now).await;
    say(&again, "ws-b", "el jueves 26", now).await;
    let refused = say(&again, "ws-b", "a las 10", now).await.replies.join("\n");
    assert!(refused.contains("10:30") || refused.contains("11:00"), "{refused}");
    assert_eq!(
        store
            .list_appointments(&AppointmentFilter::default())
            .await
            .expect("list")
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_define_the_schema_and_one_of_nine_wins_a_slot() {
    let server = server().await;
    let url = server.url("clinic_b", "race");
    // Three replicas start at once: the schema definitions race and all succeed.
    let (a, b, c) = tokio::join!(Store::connect(&url), Store::connect(&url), Store::connect(&url));
    let stores = [a.expect("a"), b.expect("b"), c.expect("c")];
    let slot = Slot {
        professional: "Dra. Laura Gómez".into(),
        date: "2026-11-26".parse().unwrap(),
        time: "10:00".parse().unwrap(),
        starts_at: crate::support::local("2026-11-26T10:00"),
        minutes: 30,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..9 {
        let store = stores[i % 3].clone();
        let new = NewAppointment {
            specialty: "Cardiología".into(),
            slot: slot.clone(),
            patient_name: format!("Paciente {i}"),
            document: format!("3000000{i}"),
            coverage: None,
            channel: "api".into(),
            user: format!("u{i}"),
            session: format!("race-{i}"),
            created_at: at("2026-11-23T10:00").timestamp(),
            email: None,
        };
        tasks.spawn(async move { store.create_appointment(&new).await });
    }
    let mut won = 0;
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            Ok(_) => won += 1,
            Err(StoreError::SlotTaken) => {}
            Err(e) => panic!("a lost race must be SlotTaken, got {e}"),
        }
    }
    assert_eq!(won, 1);
    let booked = stores[2]
        .booked_slots("Dra. Laura Gómez", slot.date)
        .await
        .expect("booked");
    assert_eq!(booked, vec![slot.time]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_a_surrealdb_server_and_two_replicas_share_a_conversation() {
    let server = server().await;
    let url = server.url("clinicflow", "serve");
    let env = [
        ("CLINICFLOW_LIMIT_CLINIC".to_string(), "off".to_string()),
        ("CLINICFLOW_LIMIT_SENDER".to_string(), "off".to_string()),
    ];
    let exe = std::path::Path::new(bin());
    let one = ServeProcess::start(exe, root(), &url, &env).await.expect("replica 1");
    let two = ServeProcess::start(exe, root(), &url, &env).await.expect("replica 2");
    let client = reqwest::Client::new();
    for (i, text) in ["hola", "quiero un turno con cardiología"].iter().enumerate() {
        let base = if i % 2 == 0 { &one.base } else { &two.base };
        let resp = client
            .post(format!("{base}/v1/conversations/shared/messages"))
            .json(&json!({ "text": text }))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    }
    // Replica 1 sees the turn replica 2 took.
    let state: serde_json::Value = client
        .get(format!("{}/v1/conversations/shared", one.base))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(state["slots"]["specialty"], "Cardiología", "{state}");
    let ready = client.get(format!("{}/readyz", two.base)).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
}
