//! `schedule_reminders {appointment?, before? = ["24h", "2h"]}`
//!
//! Schedules one reminder per offset before the appointment ("24h", "2h", "30m", "1d"),
//! skipping those whose time has already passed. Scheduling the same offset twice is a
//! no-op. The appointment is `appointment` (an id, or an object with `id`), else the one the
//! current flow just booked (`result.appointment.id`), else this conversation's latest
//! upcoming booking. → `{ ok: true, count, scheduled: [{kind, due_at}], skipped: [kind] }`
//! where `count` is how many of the requested reminders are pending and `due_at` is local
//! "YYYY-MM-DD HH:MM"; or `{ ok: false, reason }` with `not_found`, `invalid_duration`.

use crate::flow::actions::Refusal;
use jiff::SignedDuration;
use serde_json::{Value, json};

use super::args::{Args, parse_offset, refuse, refuse_with};
use super::{ActionContext, ActionError};
use crate::store::{Appointment, AppointmentFilter, AppointmentStatus, NewReminder, ReminderStatus};

const DEFAULT_BEFORE: [&str; 2] = ["24h", "2h"];

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Value, ActionError> {
    let kinds: Vec<String> = match args.get("before") {
        None | Some(Value::Null) => DEFAULT_BEFORE.iter().map(|s| s.to_string()).collect(),
        Some(Value::String(s)) => vec![s.trim().to_string()],
        Some(Value::Array(items)) => {
            let mut kinds = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) => kinds.push(s.trim().to_string()),
                    None => return Ok(refuse_with(Refusal::InvalidDuration, json!({ "value": item }))),
                }
            }
            kinds
        }
        Some(other) => return Ok(refuse_with(Refusal::InvalidDuration, json!({ "value": other }))),
    };
    let mut offsets = Vec::new();
    for kind in &kinds {
        match parse_offset(kind) {
            Some(minutes) => offsets.push((kind.clone(), minutes)),
            None => return Ok(refuse_with(Refusal::InvalidDuration, json!({ "value": kind }))),
        }
    }
    let Some(appointment) = target(ctx, args).await? else {
        return Ok(refuse(Refusal::NotFound));
    };
    let now = ctx.now.timestamp();
    let mut skipped = Vec::new();
    for (kind, minutes) in &offsets {
        let due = appointment
            .starts_at
            .checked_sub(SignedDuration::from_mins(i64::from(*minutes)))
            .ok()
            .filter(|due| *due > now);
        let Some(due_at) = due else {
            skipped.push(kind.clone());
            continue;
        };
        let new = NewReminder {
            appointment: appointment.id.clone(),
            session: appointment.session.clone(),
            channel: appointment.channel.clone(),
            user: appointment.user.clone(),
            kind: kind.clone(),
            offset_minutes: *minutes,
            due_at,
            created_at: now,
        };
        // None: already scheduled, which is fine.
        ctx.store.create_reminder(&new).await?;
    }
    let tz = ctx.clinic.tz.clone();
    let scheduled: Vec<Value> = ctx
        .store
        .reminders_of(&appointment.id)
        .await?
        .into_iter()
        .filter(|r| r.status == ReminderStatus::Pending && kinds.contains(&r.kind))
        .map(|r| {
            let local = r.due_at.to_zoned(tz.clone());
            json!({ "kind": r.kind, "due_at": local.strftime("%Y-%m-%d %H:%M").to_string() })
        })
        .collect();
    Ok(json!({
        "ok": true,
        "appointment": appointment.id,
        "count": scheduled.len(),
        "scheduled": scheduled,
        "skipped": skipped,
    }))
}

/// The booked appointment to remind of (see the module docs for the order of preference).
async fn target(ctx: &ActionContext<'_>, args: &Args) -> Result<Option<Appointment>, ActionError> {
    let from_args = match args.get("appointment").or_else(|| args.get("id")) {
        Some(Value::String(id)) => Some(id.trim().to_string()),
        Some(Value::Object(a)) => a.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let from_result = || {
        ctx.session
            .top()
            .and_then(|f| f.result.get("appointment"))
            .and_then(|a| a.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Some(id) = from_args.or_else(from_result) {
        let found = ctx.store.get_appointment(&id).await?;
        return Ok(found.filter(|a| a.status == AppointmentStatus::Booked));
    }
    let filter = AppointmentFilter {
        session: Some(ctx.session.id.clone()),
        status: Some(AppointmentStatus::Booked),
        starts_after: Some(ctx.now.timestamp()),
        ..Default::default()
    };
    let mine = ctx.store.list_appointments(&filter).await?;
    Ok(mine.into_iter().max_by_key(|a| a.created_at))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::actions::testutil::Env;
    use crate::engine::session::{Frame, Wait};

    #[tokio::test]
    async fn reminders_already_due_are_skipped_and_scheduling_twice_is_harmless() {
        let env = Env::new().await;
        // Tue 10 June 09:00 local: 24h before (Mon 09:00) has passed at Mon 09:10.
        let id = env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        let out = env
            .call(
                "schedule_reminders",
                json!({ "appointment": id, "before": ["24h", "2h", "30m"] }),
            )
            .await;
        assert_eq!(
            out,
            json!({
                "ok": true, "appointment": id, "count": 2, "skipped": ["24h"],
                "scheduled": [
                    { "kind": "2h", "due_at": "2025-06-10 07:00" },
                    { "kind": "30m", "due_at": "2025-06-10 08:30" },
                ],
            })
        );
        let again = env
            .call(
                "schedule_reminders",
                json!({ "appointment": { "id": id }, "before": ["2h", "30m"] }),
            )
            .await;
        assert_eq!(again["count"], 2);
        let stored = env.store.reminders_of(&id).await.unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(
            (stored[0].channel.as_str(), stored[0].offset_minutes),
            ("whatsapp", 120)
        );
    }

    #[tokio::test]
    async fn the_appointment_defaults_to_the_one_just_booked() {
        let mut env = Env::new().await;
        let booked = env
            .call("book_appointment", json!({ "specialty": "Cardiología", "date": "2025-06-12", "time": "10:00", "patient_name": "A", "document": "1" }))
            .await;
        let id = booked["appointment"]["id"].as_str().unwrap().to_string();
        // From the flow's last result...
        env.session.stack.push(Frame {
            flow: "book_appointment".into(),
            state: "book".into(),
            slots: Default::default(),
            wait: Wait::Enter,
            result: booked,
        });
        let out = env.call("schedule_reminders", json!({ "before": "1d" })).await;
        assert_eq!(
            (out["appointment"].clone(), out["count"].clone()),
            (json!(id), json!(1))
        );
        // ...or, without one, this conversation's latest booking.
        env.session.stack.clear();
        let out = env.call("schedule_reminders", json!({})).await;
        assert_eq!(
            (out["appointment"].clone(), out["count"].clone()),
            (json!(id), json!(2))
        );
    }

    #[tokio::test]
    async fn bad_requests() {
        let env = Env::new().await;
        let id = env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        let out = env
            .call(
                "schedule_reminders",
                json!({ "appointment": id, "before": ["tomorrow"] }),
            )
            .await;
        assert_eq!(
            out,
            json!({ "ok": false, "reason": "invalid_duration", "value": "tomorrow" })
        );
        assert_eq!(
            env.call("schedule_reminders", json!({ "appointment": id, "before": 5 }))
                .await["reason"],
            "invalid_duration"
        );
        assert_eq!(
            env.call("schedule_reminders", json!({ "appointment": "nope" })).await["reason"],
            "not_found"
        );
        env.call("cancel_appointment", json!({ "id": id })).await;
        assert_eq!(
            env.call("schedule_reminders", json!({ "appointment": id })).await["reason"],
            "not_found"
        );
    }
}
