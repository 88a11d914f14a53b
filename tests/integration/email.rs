//! Email confirmations and reminders (src/email.rs) against a fake SMTP server on loopback:
//! who gets what, in the clinic's time zone, encrypted at rest; and nothing at all without
//! SMTP settings.

use std::sync::Arc;

use clinicflow::api::AppState;
use clinicflow::email::Mailer;
use clinicflow::outbound::{Outbound, SendFuture, Sender};
use clinicflow::reload::Reloader;
use clinicflow::service::Service;
use clinicflow::store::Store;
use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::api::Client;
use crate::support::smtp::FakeSmtp;
use crate::support::{demo, local, root};

const PATIENT: &str = "ana.perez@example.com";

/// The demo clinic's API on a fresh store, emailing through `smtp` when given.
async fn client(smtp: Option<&FakeSmtp>) -> (Client, Arc<Service>) {
    let mailer = smtp.map(|s| {
        let vars = [
            ("CLINICFLOW_SMTP_URL", s.url()),
            (
                "CLINICFLOW_SMTP_FROM",
                "Clínica San Rafael <turnos@example.com>".to_string(),
            ),
        ];
        let mailer = Mailer::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()));
        Arc::new(mailer.expect("settings").expect("a mailer"))
    });
    let store = Store::connect("mem://").await.expect("mem:// store");
    let service = Arc::new(Service::new(store, demo()).with_mailer(mailer));
    let reloader = Reloader::new(root(), service.clone());
    (Client::new(AppState::new(service.clone(), reloader)), service)
}

/// Books the first free Cardiología slot a week from today (the API runs on the real clock),
/// with `email`. Returns the booking body sent and the answer.
async fn book(client: &Client, email: Option<&str>) -> (Value, (StatusCode, Value)) {
    let tz = demo().clinic.tz.clone();
    let week = jiff::Zoned::now().with_time_zone(tz).date() + jiff::Span::new().days(7);
    let (status, free) = client
        .get(&format!("/v1/availability?specialty=cardiologia&date={week}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{free}");
    let first = free["alternatives"][0].clone();
    let booking = json!({
        "specialty": "Cardiología", "date": first["date"], "time": first["time"],
        "patient_name": "Ana Pérez", "document": "30.111.222", "email": email, "remind": true,
    });
    let answer = client.post("/v1/appointments", booking.clone()).await;
    (booking, answer)
}

/// Takes every message, as a channel that works.
struct Accepts;

impl Sender for Accepts {
    fn deliver<'a>(&'a self, _msg: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_booking_with_an_email_is_confirmed_by_email_and_reminded_beside_the_channel() {
    let smtp = FakeSmtp::start().await;
    let (client, service) = client(Some(&smtp)).await;
    let (booking, (status, booked)) = book(&client, Some(PATIENT)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let (date, time) = (booking["date"].as_str().unwrap(), booking["time"].as_str().unwrap());
    // The address is not handed back, and is not stored in the clear.
    assert!(!booked.to_string().contains(PATIENT), "{booked}");
    let dump = service.store.dump_all().await.expect("dump").to_string();
    assert!(!dump.contains(PATIENT), "the email is stored in the clear");

    let mail = smtp.next_mail().await;
    assert_eq!(
        (mail.from.as_str(), mail.to.clone()),
        ("turnos@example.com", vec![PATIENT.to_string()])
    );
    assert!(mail.header("To").is_some_and(|t| t.contains(PATIENT)), "{}", mail.data);
    let subject = mail.subject();
    // The clinic-local time (what the patient chose), not UTC.
    assert!(subject.starts_with("Turno confirmado: Cardiología"), "{subject}");
    assert!(subject.contains(&format!("a las {time}")), "{subject}");
    let body = mail.body();
    assert!(body.contains(&format!("Hora: {time} (hora de la clínica)")), "{body}");
    assert!(body.contains(booked["id"].as_str().unwrap()), "{body}");
    assert!(body.contains("Av. Rivadavia 5120"), "{body}");

    // The 24-hour reminder, due: sent on the channel and by email.
    let starts = local(&format!("{date}T{time}"));
    let due = starts.checked_sub(jiff::SignedDuration::from_hours(23)).unwrap();
    let sent = clinicflow::reminders::run_once(&service, &Accepts, "test", due)
        .await
        .expect("sweep");
    assert_eq!(sent, 1);
    let reminder = smtp.next_mail().await;
    assert_eq!(reminder.to, vec![PATIENT.to_string()]);
    let subject = reminder.subject();
    assert!(subject.starts_with("Recordatorio: turno de Cardiología"), "{subject}");
    assert!(subject.contains(time), "{subject}");
    let professional = booked["professional"].as_str().expect("professional");
    assert!(reminder.body().contains(professional), "{}", reminder.body());
}

#[tokio::test]
async fn without_smtp_settings_or_an_address_no_email_is_attempted() {
    // A server is listening, but nothing points at it: no settings, no email.
    let smtp = FakeSmtp::start().await;
    let (client, service) = client(None).await;
    let (booking, (status, booked)) = book(&client, Some(PATIENT)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let starts = local(&format!(
        "{}T{}",
        booking["date"].as_str().unwrap(),
        booking["time"].as_str().unwrap()
    ));
    let due = starts.checked_sub(jiff::SignedDuration::from_hours(23)).unwrap();
    let sent = clinicflow::reminders::run_once(&service, &Accepts, "test", due)
        .await
        .expect("sweep");
    assert_eq!(sent, 1, "the channel's reminder goes as always");
    assert!(Mailer::from_vars(|_| None).expect("no settings").is_none());

    // With settings, a booking without an address sends nothing either; one with an address
    // sends exactly its own confirmation (so the first email seen is that one).
    let (client, _) = self::client(Some(&smtp)).await;
    let (_, (status, _)) = book(&client, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let other = "otro@example.com";
    let tz = demo().clinic.tz.clone();
    let week = jiff::Zoned::now().with_time_zone(tz).date() + jiff::Span::new().days(8);
    let (_, free) = client
        .get(&format!("/v1/availability?specialty=cardiologia&date={week}"))
        .await;
    let slot = &free["alternatives"][0];
    let (status, _) = client
        .post(
            "/v1/appointments",
            json!({ "specialty": "Cardiología", "date": slot["date"], "time": slot["time"],
                    "patient_name": "Luis Díaz", "document": "20111222", "email": other }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(smtp.next_mail().await.to, vec![other.to_string()]);
    assert!(smtp.try_mail().await.is_none());
    assert_eq!(smtp.connections(), 1);
}

#[tokio::test]
async fn a_wrong_address_is_refused_and_books_nothing() {
    let (client, service) = client(None).await;
    let (_, (status, body)) = book(&client, Some("ana.perez at example")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_email", "{body}");
    let dump = service.store.dump_all().await.expect("dump");
    assert!(dump["appointment"].as_array().is_none_or(|a| a.is_empty()), "{dump}");
}

/// Fails the first message (Twilio down), takes the rest.
#[derive(Default)]
struct FailsOnce(std::sync::atomic::AtomicBool);

impl Sender for FailsOnce {
    fn deliver<'a>(&'a self, _msg: &'a Outbound) -> SendFuture<'a> {
        let first = !self.0.swap(true, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move { if first { Err("twilio 503".into()) } else { Ok(()) } })
    }
}

/// The channel took the reminder only on its retry (from the outbox): the email goes then,
/// once, and not before.
#[tokio::test]
async fn a_reminder_the_channel_took_on_a_retry_is_emailed_then() {
    let smtp = FakeSmtp::start().await;
    let (client, service) = client(Some(&smtp)).await;
    let (booking, (status, booked)) = book(&client, Some(PATIENT)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let confirmation = smtp.next_mail().await;
    assert!(confirmation.subject().starts_with("Turno confirmado"));
    let (date, time) = (booking["date"].as_str().unwrap(), booking["time"].as_str().unwrap());
    let due = local(&format!("{date}T{time}"))
        .checked_sub(jiff::SignedDuration::from_hours(23))
        .unwrap();
    let sender = FailsOnce::default();
    let first = clinicflow::reminders::run_once(&service, &sender, "test", due).await;
    assert_eq!(first.expect("sweep"), 0);
    let retry = due.checked_add(jiff::SignedDuration::from_secs(31)).unwrap();
    let second = clinicflow::reminders::run_once(&service, &sender, "test", retry).await;
    assert_eq!(second.expect("sweep"), 1);
    let reminder = smtp.next_mail().await;
    assert!(
        reminder.subject().starts_with("Recordatorio: turno de Cardiología"),
        "{}",
        reminder.subject()
    );
}
