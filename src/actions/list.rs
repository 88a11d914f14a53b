//! `list_appointments {document, status? = "booked", upcoming? = true}`
//!
//! → `{ ok: true, count, appointments: [..] }` sorted by date and time; status may be
//! "booked", "cancelled" or "all". `{ ok: false, reason }` with `missing_document`,
//! `invalid_status`.

use crate::flow::actions::Refusal;
use serde_json::{Value, json};

use super::args::{Args, appointment_json, normalize_document, refuse, text};
use super::{ActionContext, ActionError};
use crate::store::{AppointmentFilter, AppointmentStatus};

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Value, ActionError> {
    let Some(document) = text(args, "document")
        .map(|d| normalize_document(&d))
        .filter(|d| !d.is_empty())
    else {
        return Ok(refuse(Refusal::MissingDocument));
    };
    let status = match text(args, "status").as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Some(AppointmentStatus::Booked),
        Some("all" | "any") => None,
        Some(s) => match AppointmentStatus::parse(s) {
            Some(s) => Some(s),
            None => return Ok(refuse(Refusal::InvalidStatus)),
        },
    };
    let upcoming = match args.get("upcoming") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !matches!(s.trim().to_ascii_lowercase().as_str(), "false" | "no" | "0"),
        _ => true,
    };
    let filter = AppointmentFilter {
        document: Some(document),
        status,
        starts_after: upcoming.then(|| ctx.now.timestamp()),
        ..Default::default()
    };
    let found = ctx.store.list_appointments(&filter).await?;
    // A conversation never learns of appointments that are not its patient's: they are left
    // out as if they did not exist (the same answer as for a document with none).
    let appointments: Vec<Value> = found.iter().filter(|a| ctx.may_see(a)).map(appointment_json).collect();
    Ok(json!({ "ok": true, "count": appointments.len(), "appointments": appointments }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::actions::testutil::Env;
    use crate::store::{NewAppointment, Slot};

    #[tokio::test]
    async fn lists_the_upcoming_booked_ones_in_order_by_default() {
        let env = Env::new().await;
        let late = env.book("Dr. Juan Pérez", "2025-06-12", "09:00", "30111222").await;
        let early = env.book("Dra. Laura Díaz", "2025-06-11", "12:30", "30111222").await;
        let cancelled = env.book("Dr. Juan Pérez", "2025-06-13", "09:00", "30111222").await;
        env.book("Dr. Juan Pérez", "2025-06-11", "09:00", "99999999").await;
        env.call("cancel_appointment", json!({ "id": cancelled })).await;
        // One from last week, written straight to the store (booking refuses the past).
        let past_start = "2025-06-02T12:00:00Z".parse().unwrap();
        let past = NewAppointment {
            specialty: "Cardiología".into(),
            slot: Slot {
                professional: "Dr. Juan Pérez".into(),
                date: "2025-06-02".parse().unwrap(),
                time: "09:00".parse().unwrap(),
                starts_at: past_start,
                minutes: 30,
            },
            patient_name: "Ana Gómez".into(),
            document: "30111222".into(),
            coverage: None,
            email: None,
            channel: env.session.channel.clone(),
            user: env.session.user.clone(),
            session: env.session.id.clone(),
            created_at: past_start,
        };
        let past = env.store.create_appointment(&past).await.unwrap().id;

        let ids = |out: &serde_json::Value| -> Vec<String> {
            out["appointments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect()
        };
        let out = env.call("list_appointments", json!({ "document": "30.111.222" })).await;
        assert_eq!((out["ok"].clone(), out["count"].clone()), (json!(true), json!(2)));
        assert_eq!(ids(&out), [early.clone(), late.clone()]);
        assert_eq!(out["appointments"][0]["time"], "12:30");
        let out = env
            .call(
                "list_appointments",
                json!({ "document": "30111222", "status": "all", "upcoming": false }),
            )
            .await;
        assert_eq!(ids(&out), [past, early, late, cancelled.clone()]);
        let out = env
            .call(
                "list_appointments",
                json!({ "document": "30111222", "status": "cancelled" }),
            )
            .await;
        assert_eq!(ids(&out), [cancelled]);
        assert_eq!(
            env.call("list_appointments", json!({})).await["reason"],
            "missing_document"
        );
        assert_eq!(
            env.call("list_appointments", json!({ "document": "1", "status": "x" }))
                .await["reason"],
            "invalid_status"
        );
        assert_eq!(
            env.call("list_appointments", json!({ "document": "1" })).await["count"],
            0
        );
    }
}
