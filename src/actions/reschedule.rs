//! `reschedule_appointment {id? | document?, date, time, professional?}`
//!
//! Moves the appointment `id` (or the next upcoming one of `document`) to `date` `time`,
//! same specialty; keeps its professional when free, else takes the first free one (or the
//! one named). The move and its pending reminders change in one transaction.
//! → `{ ok: true, appointment, previous: {date, time, professional} }` or
//! `{ ok: false, reason, alternatives? }` with reason `not_found`, `missing_document`,
//! `missing_date`, `missing_time`, `invalid_date`, `invalid_time`, `unknown_specialty`,
//! `unknown_professional`, `past`, `closed`, `no_slots`, `outside_hours` or `taken`.

use crate::flow::actions::Refusal;
use serde_json::{Value, json};

use super::args::{Arg, Args, appointment_json, find_specialty, refuse, refuse_with};
use super::cancel::find_target;
use super::find_availability::{Verdict, judge, professionals_arg};
use super::slots::{Finder, MAX_ALTERNATIVES, alts_json, starts_at};
use super::{ActionContext, ActionError};
use crate::store::time::{fmt_date, fmt_hhmm};
use crate::store::{Slot, StoreError};

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Value, ActionError> {
    let date = match super::args::date(args, "date") {
        Arg::Ok(d) => d,
        Arg::Missing => return Ok(refuse(Refusal::MissingDate)),
        Arg::Invalid => return Ok(refuse(Refusal::InvalidDate)),
    };
    let time = match super::args::time(args, "time") {
        Arg::Ok(t) => t,
        Arg::Missing => return Ok(refuse(Refusal::MissingTime)),
        Arg::Invalid => return Ok(refuse(Refusal::InvalidTime)),
    };
    let current = match find_target(ctx, args, None).await? {
        Ok(a) => a,
        Err(refusal) => return Ok(refusal),
    };
    let Some(specialty) = find_specialty(ctx.clinic, &current.specialty) else {
        return Ok(refuse(Refusal::UnknownSpecialty));
    };
    let pros = match professionals_arg(specialty, args, Some(&current.professional)) {
        Ok(p) => p,
        Err(mut refusal) => {
            if let Some(map) = refusal.as_object_mut() {
                map.remove("available");
            }
            return Ok(refusal);
        }
    };
    let now = ctx.local_now();
    let from = date.max(now.date());
    let finder = Finder::load(ctx.store, ctx.clinic, pros, now.timestamp(), from, Some(&current)).await?;
    let mut finder = match finder.with_calendars().await {
        Ok(f) => f,
        Err(e) => {
            return Ok(refuse_with(
                crate::calendars::unavailable(&e),
                json!({ "alternatives": [] }),
            ));
        }
    };
    let free = match judge(&finder, date, time) {
        Verdict::Free(free) => free,
        Verdict::Refused(reason) => {
            let alternatives = finder.alternatives(date, Some(time), MAX_ALTERNATIVES);
            return Ok(refuse_with(reason, json!({ "alternatives": alts_json(&alternatives) })));
        }
    };
    let Some(at) = starts_at(ctx.clinic, date, time) else {
        return Ok(refuse(Refusal::InvalidDate));
    };
    let previous = json!({
        "date": fmt_date(current.date),
        "time": fmt_hhmm(current.time),
        "professional": current.professional,
    });
    let mut refused = None;
    for prof in free {
        let to = Slot {
            professional: prof.name.clone(),
            date,
            time,
            starts_at: at,
            minutes: ctx.clinic.appointment_minutes,
        };
        match ctx
            .store
            .reschedule_appointment(&current.id, &to, now.timestamp())
            .await
        {
            Ok(Some(a)) => match crate::calendars::after_move(ctx, &current, &a).await {
                Ok(()) => return Ok(json!({ "ok": true, "appointment": appointment_json(&a), "previous": previous })),
                // The calendar did not take the move: the appointment goes back where it was.
                Err(e) => {
                    let back = Slot {
                        professional: current.professional.clone(),
                        date: current.date,
                        time: current.time,
                        starts_at: current.starts_at,
                        minutes: current.minutes,
                    };
                    ctx.store
                        .reschedule_appointment(&current.id, &back, now.timestamp())
                        .await?;
                    finder.exclude(&prof.name, date, time);
                    refused = Some(e);
                    continue;
                }
            },
            Ok(None) => return Ok(refuse(Refusal::NotFound)),
            Err(StoreError::SlotTaken) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(e) = &refused {
        let alternatives = finder.alternatives(date, Some(time), MAX_ALTERNATIVES);
        return Ok(refuse_with(
            crate::calendars::refusal(e),
            json!({ "alternatives": alts_json(&alternatives) }),
        ));
    }
    let finder = Finder::load(
        ctx.store,
        ctx.clinic,
        finder.pros,
        now.timestamp(),
        from,
        Some(&current),
    )
    .await?;
    let alternatives = match finder.with_calendars().await {
        Ok(f) => f.alternatives(date, Some(time), MAX_ALTERNATIVES),
        Err(_) => Vec::new(),
    };
    Ok(refuse_with(
        Refusal::Taken,
        json!({ "alternatives": alts_json(&alternatives) }),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::actions::testutil::{Env, alts};
    use crate::store::ReminderStatus;

    #[tokio::test]
    async fn rescheduling_keeps_the_professional_and_moves_the_reminders() {
        let env = Env::new().await;
        let id = env.book("Dr. Juan Pérez", "2025-06-11", "10:00", "30111222").await;
        let out = env.call("schedule_reminders", json!({ "appointment": id })).await;
        assert_eq!(out["count"], 2);

        // Díaz also works Wednesdays; Pérez is kept because he is free.
        let out = env
            .call(
                "reschedule_appointment",
                json!({ "document": "30111222", "date": "2025-06-12", "time": "11:00" }),
            )
            .await;
        assert_eq!(out["ok"], true, "{out}");
        assert_eq!(
            out["previous"],
            json!({ "date": "2025-06-11", "time": "10:00", "professional": "Dr. Juan Pérez" })
        );
        let a = &out["appointment"];
        assert_eq!(
            (
                a["id"].clone(),
                a["date"].clone(),
                a["time"].clone(),
                a["professional"].clone()
            ),
            (json!(id), json!("2025-06-12"), json!("11:00"), json!("Dr. Juan Pérez"))
        );
        // Thu 12 June 11:00 local = 14:00Z.
        let due: Vec<_> = env
            .store
            .reminders_of(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.kind, r.status, r.due_at.to_string()))
            .collect();
        assert_eq!(
            due,
            [
                (
                    "24h".to_string(),
                    ReminderStatus::Pending,
                    "2025-06-11T14:00:00Z".to_string()
                ),
                (
                    "2h".to_string(),
                    ReminderStatus::Pending,
                    "2025-06-12T12:00:00Z".to_string()
                ),
            ]
        );
        // The old slot is free.
        let free = env
            .call(
                "find_availability",
                json!({ "specialty": "Cardiología", "date": "2025-06-11", "time": "10:00" }),
            )
            .await;
        assert_eq!(free["available"], true);
    }

    #[tokio::test]
    async fn a_taken_target_changes_nothing_and_offers_alternatives() {
        let env = Env::new().await;
        let mine = env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        env.book("Dr. Juan Pérez", "2025-06-10", "10:00", "40222333").await;
        let out = env
            .call(
                "reschedule_appointment",
                json!({ "id": mine, "date": "2025-06-10", "time": "10:00" }),
            )
            .await;
        assert_eq!(out["reason"], "taken");
        // Its own slot (09:00) is not offered as somewhere to move to.
        let times: Vec<_> = alts(&out).into_iter().map(|a| a.1).collect();
        assert_eq!(times, ["09:30", "10:30", "11:00"]);
        let stored = env.store.get_appointment(&mine).await.unwrap().unwrap();
        assert_eq!(stored.time.to_string(), "09:00:00");
        // Moving onto itself is allowed (and changes nothing).
        let out = env
            .call(
                "reschedule_appointment",
                json!({ "id": mine, "date": "2025-06-10", "time": "09:00" }),
            )
            .await;
        assert_eq!(out["ok"], true, "{out}");
        // Another professional can be asked for by name.
        let out = env
            .call(
                "reschedule_appointment",
                json!({ "id": mine, "date": "2025-06-11", "time": "10:00", "professional": "Díaz" }),
            )
            .await;
        assert_eq!(out["appointment"]["professional"], "Dra. Laura Díaz");
    }

    #[tokio::test]
    async fn reschedule_refusals() {
        let env = Env::new().await;
        let id = env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        for (args, reason) in [
            (json!({ "document": "30111222", "time": "09:00" }), "missing_date"),
            (json!({ "document": "30111222", "date": "2025-06-11" }), "missing_time"),
            (json!({ "date": "2025-06-11", "time": "09:00" }), "missing_document"),
            (
                json!({ "document": "55555555", "date": "2025-06-11", "time": "09:00" }),
                "not_found",
            ),
            (json!({ "id": id, "date": "2025-06-09", "time": "08:00" }), "past"),
            (json!({ "id": id, "date": "2025-06-15", "time": "09:00" }), "closed"),
            (json!({ "id": id, "date": "2025-06-14", "time": "09:00" }), "no_slots"),
            (
                json!({ "id": id, "date": "2025-06-11", "time": "16:00" }),
                "outside_hours",
            ),
            (
                json!({ "id": id, "date": "2025-06-11", "time": "10:00", "professional": "Ruiz" }),
                "unknown_professional",
            ),
        ] {
            let out = env.call("reschedule_appointment", args.clone()).await;
            assert_eq!(
                (out["ok"].clone(), out["reason"].clone()),
                (json!(false), json!(reason)),
                "{args}"
            );
        }
    }
}
