//! Email confirmations, reminders and the notes of a cancellation or a move (src/email.rs)
//! against a fake SMTP server on loopback: who gets what, in the clinic's time zone,
//! encrypted at rest; the address typed in a booking conversation; and nothing at all
//! without SMTP settings.

use std::sync::Arc;

use clinicflow::email::Mailer;
use clinicflow::outbound::{Outbound, SendFuture, Sender};
use clinicflow::reload::Reloader;
use clinicflow::server::AppState;
use clinicflow::service::Service;
use clinicflow::store::Store;
use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::api::Client;
use crate::support::smtp::{FakeSmtp, mailer};
use crate::support::{demo, local, root, say};

const PATIENT: &str = "ana.perez@example.com";

/// The demo clinic's API on a fresh store, emailing through `smtp` when given.
async fn client(smtp: Option<&FakeSmtp>) -> (Client, Arc<Service>) {
    let mailer = smtp.map(mailer);
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

/// The demo clinic with `email_confirmations: true`, for conversations, emailing via `smtp`.
async fn conversations(smtp: &FakeSmtp) -> Service {
    let changes = json!({ "email_confirmations": true });
    let bot = clinicflow::cli::runner::with_clinic_settings(&demo(), changes.as_object().expect("map"))
        .expect("the demo with email confirmations compiles");
    let store = Store::connect("mem://").await.expect("mem:// store");
    Service::new(store, Arc::new(bot)).with_mailer(Some(mailer(smtp)))
}

#[tokio::test]
async fn the_address_typed_in_a_booking_conversation_gets_the_confirmation_the_move_and_the_cancellation() {
    let smtp = FakeSmtp::start().await;
    let service = conversations(&smtp).await;
    let typed = "Tomas.G@Example.com";
    let now = "2026-11-23T10:00";
    let mut last = String::new();
    for line in [
        "quiero un turno con la pediatra para mañana a las 11",
        "Tomás Gutiérrez",
        "45678901",
        "IOMA",
    ] {
        last = say(&service, "p", line, now).await.replies.join("\n");
    }
    assert!(last.contains("confirmación por email"), "{last}");
    let confirm = say(&service, "p", &format!("mi correo es {typed}"), now).await;
    assert_eq!(confirm.state, "book_appointment.confirm", "{:?}", confirm.replies);
    // Nothing is sent before the booking is.
    assert!(smtp.try_mail().await.is_none());
    let booked = say(&service, "p", "sí", now).await.replies.join("\n");
    assert!(booked.contains("reservado"), "{booked}");

    // Sent to the address as typed (the domain in lower case), about this booking.
    let mail = smtp.next_mail().await;
    assert_eq!(mail.to, vec!["Tomas.G@example.com".to_string()]);
    let subject = mail.subject();
    assert!(subject.starts_with("Turno confirmado: Pediatría"), "{subject}");
    assert!(subject.contains("martes 24 de noviembre a las 11:00"), "{subject}");

    // The patient moves it in their conversation: a note with where it was and where it is.
    for line in [
        "quiero cambiar mi turno",
        "45678901",
        "para el miércoles 25",
        "a las 10",
    ] {
        last = say(&service, "p", line, now).await.replies.join("\n");
    }
    assert!(last.contains("¿Lo confirmo?"), "{last}");
    assert!(smtp.try_mail().await.is_none(), "nothing before the move is stored");
    let moved = say(&service, "p", "sí", now).await.replies.join("\n");
    assert!(moved.contains("miércoles 25 de noviembre"), "{moved}");
    let mail = smtp.next_mail().await;
    assert_eq!(mail.to, vec!["Tomas.G@example.com".to_string()]);
    let subject = mail.subject();
    assert!(subject.starts_with("Turno cambiado: Pediatría"), "{subject}");
    assert!(subject.contains("miércoles 25 de noviembre a las 10:00"), "{subject}");
    let body = mail.body();
    assert!(body.contains("del martes 24 de noviembre a las 11:00"), "{body}");

    // Then cancels it.
    for line in ["quiero cancelar mi turno", "45678901"] {
        last = say(&service, "p", line, now).await.replies.join("\n");
    }
    assert!(last.contains("¿Confirma que quiere cancelar"), "{last}");
    let cancelled = say(&service, "p", "sí", now).await.replies.join("\n");
    assert!(cancelled.contains("cancelé su turno"), "{cancelled}");
    let mail = smtp.next_mail().await;
    let subject = mail.subject();
    assert!(subject.starts_with("Turno cancelado: Pediatría"), "{subject}");
    assert!(subject.contains("miércoles 25 de noviembre a las 10:00"), "{subject}");
    assert!(smtp.try_mail().await.is_none());

    // The address is sealed at rest like the name and document, exported opened, erased.
    let dump = service.store.dump_all().await.expect("dump");
    let appointments = dump["appointment"].to_string().to_lowercase();
    assert!(!appointments.contains("tomas.g@example.com"), "{appointments}");
    let export = service.store.export_patient("45678901").await.expect("export");
    assert_eq!(export.appointments[0]["email"], "Tomas.G@example.com");
    let hash = clinicflow::identity::document_hash("45678901");
    let at = crate::support::local("2026-11-23T10:30");
    service
        .store
        .erase_patient("45678901", &hash, "test", at)
        .await
        .expect("erase");
    let export = service.store.export_patient("45678901").await.expect("export");
    assert!(
        export.appointments.is_empty() && export.sessions.is_empty(),
        "{export:?}"
    );
}

#[tokio::test]
async fn a_patient_who_declines_gets_no_email_and_the_demo_never_asks() {
    let smtp = FakeSmtp::start().await;
    let service = conversations(&smtp).await;
    let now = "2026-11-23T10:00";
    for line in [
        "quiero un turno con la pediatra para mañana a las 11",
        "Ana Ruiz",
        "45678901",
        "OSDE",
    ] {
        say(&service, "d", line, now).await;
    }
    let declined = say(&service, "d", "prefiero no", now).await;
    assert_eq!(declined.state, "book_appointment.confirm", "{:?}", declined.replies);
    say(&service, "d", "sí", now).await;
    assert!(smtp.try_mail().await.is_none());

    // The demo clinic as shipped (email confirmations off) goes from the coverage to the summary.
    let store = Store::connect("mem://").await.expect("mem:// store");
    let demo = Service::new(store, demo()).with_mailer(Some(mailer(&smtp)));
    let mut last = None;
    for line in [
        "quiero un turno con la pediatra para mañana a las 11",
        "Ana Ruiz",
        "45678901",
        "OSDE",
    ] {
        last = Some(say(&demo, "e", line, now).await);
    }
    assert_eq!(last.expect("reply").state, "book_appointment.confirm");
}

#[tokio::test]
async fn staff_moving_or_cancelling_through_the_api_emails_the_patient() {
    let smtp = FakeSmtp::start().await;
    let (client, _) = client(Some(&smtp)).await;
    let (booking, (status, booked)) = book(&client, Some(PATIENT)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    assert!(smtp.next_mail().await.subject().starts_with("Turno confirmado"));
    let id = booked["id"].as_str().expect("id");
    let (date, time) = (booking["date"].as_str().unwrap(), booking["time"].as_str().unwrap());

    let (_, free) = client
        .get(&format!("/v1/availability?specialty=cardiologia&date={date}"))
        .await;
    let other = free["alternatives"]
        .as_array()
        .expect("alternatives")
        .iter()
        .find(|a| a["time"] != time || a["date"] != date)
        .expect("another free time")
        .clone();
    let (status, moved) = client
        .post(
            &format!("/v1/appointments/{id}/reschedule"),
            json!({ "date": other["date"], "time": other["time"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let mail = smtp.next_mail().await;
    assert_eq!(mail.to, vec![PATIENT.to_string()]);
    let subject = mail.subject();
    assert!(subject.starts_with("Turno cambiado: Cardiología"), "{subject}");
    assert!(
        subject.contains(&format!("a las {}", other["time"].as_str().unwrap())),
        "{subject}"
    );
    assert!(
        mail.body().contains(&format!("a las {time} cambió de horario")),
        "{}",
        mail.body()
    );

    let (status, cancelled) = client.post(&format!("/v1/appointments/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let mail = smtp.next_mail().await;
    assert!(
        mail.subject().starts_with("Turno cancelado: Cardiología"),
        "{}",
        mail.subject()
    );
    assert!(mail.body().contains(id), "{}", mail.body());
    assert!(smtp.try_mail().await.is_none());
}

#[test]
fn email_confirmations_without_the_confirmation_email_are_refused_at_compile() {
    let mut sources = demo().sources.clone();
    sources.remove("prompts/en/email_confirmation.j2");
    let bot = clinicflow::flow::compile::compile(&sources).expect("switched off, nothing is needed");
    let on = json!({ "email_confirmations": true });
    let err = clinicflow::cli::runner::with_clinic_settings(&bot, on.as_object().expect("map"))
        .err()
        .expect("refused");
    assert!(
        err.contains("clinic.email_confirmations") || err.contains("email confirmations are on"),
        "{err}"
    );
    assert!(err.contains("prompts/en/email_confirmation.j2"), "{err}");
    assert!(!err.contains("prompts/es/email_confirmation.j2"), "{err}");
    // A setting of the wrong type is reported like any other mistake in clinic.yaml.
    let wrong = json!({ "email_confirmations": "yes" });
    assert!(clinicflow::cli::runner::with_clinic_settings(&demo(), wrong.as_object().expect("map")).is_err());
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
