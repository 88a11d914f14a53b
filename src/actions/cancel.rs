//! `cancel_appointment {id?, document?, date?}`
//!
//! Cancels the appointment `id`, or else the next upcoming booked appointment of `document`
//! (on `date`, when given), together with its pending reminders; the slot is free again at
//! once. → `{ ok: true, appointment }` or `{ ok: false, reason }` with reason `not_found`,
//! `missing_document` (neither id nor document) or `invalid_date`.

use crate::flow::actions::Refusal;
use serde_json::{Value, json};

use super::args::{Arg, Args, appointment_json, normalize_document, refuse, text};
use super::{ActionContext, ActionError};
use crate::store::{Appointment, AppointmentFilter, AppointmentStatus};

/// The booked appointment an action is about: `id` (which must also match `document` when
/// both are given), else the next upcoming one of `document`, on `on_date` if given.
pub(crate) async fn find_target(
    ctx: &ActionContext<'_>,
    args: &Args,
    on_date: Option<jiff::civil::Date>,
) -> Result<Result<Appointment, Value>, ActionError> {
    let document = text(args, "document").map(|d| normalize_document(&d));
    if let Some(id) = text(args, "id") {
        let found = ctx.store.get_appointment(&id).await?.filter(|a| {
            a.status == AppointmentStatus::Booked
                && document.as_ref().is_none_or(|d| *d == a.document)
                && ctx.may_see(a)
        });
        return Ok(found.ok_or_else(|| refuse(Refusal::NotFound)));
    }
    let Some(document) = document.filter(|d| !d.is_empty()) else {
        return Ok(Err(refuse(Refusal::MissingDocument)));
    };
    let filter = AppointmentFilter {
        document: Some(document),
        date: on_date,
        status: Some(AppointmentStatus::Booked),
        starts_after: Some(ctx.now.timestamp()),
        ..Default::default()
    };
    let next = ctx
        .store
        .list_appointments(&filter)
        .await?
        .into_iter()
        .find(|a| ctx.may_see(a));
    Ok(next.ok_or_else(|| refuse(Refusal::NotFound)))
}

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Value, ActionError> {
    let on_date = match super::args::date(args, "date") {
        Arg::Ok(d) => Some(d),
        Arg::Missing => None,
        Arg::Invalid => return Ok(refuse(Refusal::InvalidDate)),
    };
    let target = match find_target(ctx, args, on_date).await? {
        Ok(a) => a,
        Err(refusal) => return Ok(refusal),
    };
    // None: cancelled by someone else between our read and this write.
    Ok(
        match ctx.store.cancel_appointment(&target.id, ctx.now.timestamp()).await? {
            Some(a) => {
                crate::calendars::after_cancel(ctx.store, ctx.clinic, &a).await;
                json!({ "ok": true, "appointment": appointment_json(&a) })
            }
            None => refuse(Refusal::NotFound),
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::actions::testutil::Env;
    use crate::store::ReminderStatus;

    #[tokio::test]
    async fn cancelling_by_document_frees_the_slot_and_its_reminders() {
        let env = Env::new().await;
        let id = env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        let later = env.book("Dr. Juan Pérez", "2025-06-12", "09:00", "30111222").await;
        env.call(
            "schedule_reminders",
            json!({ "appointment": id, "before": ["2h", "30m"] }),
        )
        .await;

        // The next upcoming one goes first.
        let out = env
            .call("cancel_appointment", json!({ "document": "30.111.222" }))
            .await;
        assert_eq!(
            (out["ok"].clone(), out["appointment"]["id"].clone()),
            (json!(true), json!(id))
        );
        assert_eq!(out["appointment"]["status"], "cancelled");
        let reminders = env.store.reminders_of(&id).await.unwrap();
        assert_eq!(reminders.len(), 2);
        assert!(reminders.iter().all(|r| r.status == ReminderStatus::Cancelled));
        let free = env
            .call(
                "find_availability",
                json!({ "specialty": "Cardiología", "date": "2025-06-10", "time": "09:00" }),
            )
            .await;
        assert_eq!(free["available"], true);

        // Cancelled is gone: by id it is not found any more; by document the later one is next.
        let again = env.call("cancel_appointment", json!({ "id": id })).await;
        assert_eq!(again, json!({ "ok": false, "reason": "not_found" }));
        let out = env.call("cancel_appointment", json!({ "document": "30111222" })).await;
        assert_eq!(out["appointment"]["id"], json!(later));
        let none = env.call("cancel_appointment", json!({ "document": "30111222" })).await;
        assert_eq!(none["reason"], "not_found");
    }

    #[tokio::test]
    async fn an_id_and_a_date_narrow_what_is_cancelled() {
        let env = Env::new().await;
        let first = env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        let second = env.book("Dr. Juan Pérez", "2025-06-11", "09:00", "30111222").await;
        let out = env
            .call(
                "cancel_appointment",
                json!({ "document": "30111222", "date": "2025-06-11" }),
            )
            .await;
        assert_eq!(out["appointment"]["id"], json!(second));
        // An id with somebody else's document is refused.
        let out = env
            .call("cancel_appointment", json!({ "id": first, "document": "99999999" }))
            .await;
        assert_eq!(out["reason"], "not_found");
        let out = env.call("cancel_appointment", json!({ "id": first })).await;
        assert_eq!(out["ok"], true);
        for (args, reason) in [
            (json!({}), "missing_document"),
            (json!({ "document": "30111222", "date": "11/06" }), "invalid_date"),
            (json!({ "id": "nope" }), "not_found"),
        ] {
            assert_eq!(env.call("cancel_appointment", args).await["reason"], reason);
        }
    }
}
