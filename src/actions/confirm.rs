//! `confirm_appointment {id? | document?}`
//!
//! The patient confirms they will come (e.g. answering "1" to a reminder). Marks the booked
//! appointment `id` (or the next upcoming one of `document`) confirmed; confirming twice is
//! fine. → `{ ok: true, appointment }` or `{ ok: false, reason }`
//! with reason `not_found` or `missing_document`.

use crate::flow::actions::Refusal;
use serde_json::{Value, json};

use super::args::{Args, appointment_json, refuse};
use super::cancel::find_target;
use super::{ActionContext, ActionError};

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Value, ActionError> {
    let target = match find_target(ctx, args, None).await? {
        Ok(a) => a,
        Err(refusal) => return Ok(refusal),
    };
    // None: cancelled by someone else between our read and this write.
    Ok(
        match ctx.store.confirm_appointment(&target.id, ctx.now.timestamp()).await? {
            Some(a) => json!({ "ok": true, "appointment": appointment_json(&a) }),
            None => refuse(Refusal::NotFound),
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::actions::testutil::Env;

    #[tokio::test]
    async fn confirms_a_booked_appointment_once_and_refuses_a_cancelled_one() {
        let env = Env::new().await;
        let id = env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        let out = env.call("confirm_appointment", json!({ "id": id })).await;
        assert_eq!(
            (out["ok"].clone(), out["appointment"]["id"].clone()),
            (json!(true), json!(id))
        );
        let first = env.store.get_appointment(&id).await.unwrap().unwrap().confirmed_at;
        assert!(first.is_some());
        let again = env.call("confirm_appointment", json!({ "id": id })).await;
        assert_eq!(again["ok"], true);
        assert_eq!(
            env.store.get_appointment(&id).await.unwrap().unwrap().confirmed_at,
            first
        );

        env.call("cancel_appointment", json!({ "id": id })).await;
        let out = env.call("confirm_appointment", json!({ "id": id })).await;
        assert_eq!(out, json!({ "ok": false, "reason": "not_found" }));
        assert_eq!(
            env.call("confirm_appointment", json!({})).await["reason"],
            "missing_document"
        );
    }
}
