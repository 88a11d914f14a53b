//! External calendars (docs/calendars.md) against wiremock fakes of Google Calendar,
//! Calendly and Cal.com on loopback, shaped like their public API references. The demo
//! clinic gets a `calendar:` block; secrets go in environment variables whose names are
//! unique to each test (so parallel tests never share one).

mod calcom;
mod calendly;
mod erase;
mod forget;
mod google;

use std::sync::Arc;

use clinicflow::actions::{ActionContext, ActionName, ActionRequest};
use clinicflow::engine::session::Session;
use clinicflow::flow::bot::Bot;
use clinicflow::flow::compile::compile_dir;
use clinicflow::lang::Lang;
use clinicflow::service::Service;
use clinicflow::store::{Appointment, AppointmentFilter, Store};
use serde_json::Value;

use crate::support::{at, demo_copy};

/// Sets an environment variable for this test binary. Each test uses its own variable
/// names, and std's environment functions take a lock, so setting one while other tests
/// run is safe in practice.
pub fn set_env(name: &str, value: &str) {
    // SAFETY: see above; nothing in this process reads these variables through libc.
    unsafe { std::env::set_var(name, value) }
}

/// The demo clinic with `block` (YAML lines, indented for `clinic:`) appended.
pub fn bot_with(block: &str) -> Arc<Bot> {
    let dir = demo_copy();
    let clinic = dir.path().join("flows/clinic.yaml");
    let mut text = std::fs::read_to_string(&clinic).expect("clinic.yaml");
    text.push('\n');
    text.push_str(block);
    std::fs::write(&clinic, text).expect("write");
    match compile_dir(dir.path()) {
        Ok(bot) => Arc::new(bot),
        Err(d) => panic!("{}", d.render()),
    }
}

pub async fn service(bot: Arc<Bot>) -> Service {
    Service::new(Store::connect("mem://").await.expect("mem://"), bot)
}

/// Performs an action as the clinic's staff at the clinic-local time `now`.
pub async fn act(service: &Service, name: ActionName, args: Value, now: &str) -> Value {
    let bot = service.bot();
    let session = Session::new("staff-test", "api", "staff", Lang::Es);
    let now = at(now);
    let ctx = ActionContext {
        store: &service.store,
        clinic: &bot.clinic,
        session: &session,
        now: &now,
        staff: true,
    };
    let req = ActionRequest {
        action: name,
        args: args.as_object().cloned().unwrap_or_default(),
    };
    clinicflow::actions::perform(&ctx, &req).await.expect("action")
}

/// Books Cardiología on Thursday 26 November 2026 at `time` (on Monday the 23rd) for María
/// López, through the action the flows use.
pub async fn book(service: &Service, time: &str, email: Option<&str>) -> Value {
    let mut args = serde_json::json!({ "specialty": "Cardiología", "date": "2026-11-26", "time": time,
                                       "patient_name": "María López", "document": "30123456" });
    if let Some(email) = email {
        args["email"] = serde_json::json!(email);
    }
    act(service, ActionName::BookAppointment, args, "2026-11-23T10:00").await
}

/// Moves an appointment to 26 November at `time`.
pub async fn reschedule(service: &Service, id: &str, time: &str) -> Value {
    let args = serde_json::json!({ "id": id, "date": "2026-11-26", "time": time });
    act(service, ActionName::RescheduleAppointment, args, "2026-11-23T10:00").await
}

pub async fn cancel(service: &Service, id: &str) -> Value {
    act(
        service,
        ActionName::CancelAppointment,
        serde_json::json!({ "id": id }),
        "2026-11-23T10:00",
    )
    .await
}

/// Every appointment in the store.
pub async fn appointments(store: &Store) -> Vec<Appointment> {
    store
        .list_appointments(&AppointmentFilter::default())
        .await
        .expect("appointments")
}

/// The times offered in a result's `alternatives`, as (date, time).
pub fn offered(result: &Value) -> Vec<(String, String)> {
    result["alternatives"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["date"].as_str().unwrap_or("").into(),
                a["time"].as_str().unwrap_or("").into(),
            )
        })
        .collect()
}

#[test]
fn a_bad_calendar_block_is_reported_where_it_is() {
    let dir = demo_copy();
    let clinic = dir.path().join("flows/clinic.yaml");
    let mut text = std::fs::read_to_string(&clinic).expect("clinic.yaml");
    let line = text.lines().count() + 3;
    text.push_str("\n  calendar:\n    provider: outlook\n    calendar_id: x\n");
    std::fs::write(&clinic, text).expect("write");
    let errors = compile_dir(dir.path()).err().expect("a compile error").render();
    assert!(errors.contains("unknown calendar provider `outlook`"), "{errors}");
    assert!(errors.contains(&format!("clinic.yaml:{line}:")), "{errors}");
    assert!(errors.contains("google"), "{errors}");
}

#[test]
fn calendly_without_a_clinic_email_is_refused_at_compile() {
    let dir = demo_copy();
    let clinic = dir.path().join("flows/clinic.yaml");
    let text = std::fs::read_to_string(&clinic).expect("clinic.yaml");
    let mut text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("email:"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str("  calendar:\n    provider: calendly\n    event_type: \"https://api.calendly.com/event_types/X\"\n");
    std::fs::write(&clinic, text).expect("write");
    let errors = compile_dir(dir.path()).err().expect("a compile error").render();
    assert!(errors.contains("need the clinic's `email`"), "{errors}");
}
