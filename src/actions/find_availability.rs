//! `find_availability {specialty, date, time?, window?, professional?, limit?}`
//!
//! → `{ ok, available, specialty, date, time, professional, alternatives: [{date, time,
//! professional}], reason? }`. `ok` is false only for unusable arguments (`missing_specialty`,
//! `missing_date`, `invalid_date`, `invalid_time`, `unknown_specialty`,
//! `unknown_professional`). Otherwise `available` says whether that exact slot is free (with
//! the first free professional), and when it is not, `reason` says why: `past`, `closed`
//! (holiday or closed day), `no_slots` (nobody of the specialty works that day),
//! `outside_hours` (not a start time of anyone's schedule inside opening hours), `taken`,
//! `too_far` (after `last_day`, the clinic's `booking_horizon_days` from today);
//! without a time: `no_time` (the day has free slots, listed as alternatives) or `no_slots`
//! (it has none). Alternatives: up to 3 free slots, that day
//! first (closest in time to the one asked for), then the following days; `limit` (1 to 64)
//! asks for more (the console's agenda lists a day's free times with it).
//!
//! `window: {from, to}` (a preference, "a la tarde") applies when there is no time: the
//! alternatives are free times inside it (that day, then the following ones, up to the
//! horizon); when there are none, `reason: outside_window` and the free times nearest to it.
//! The answer echoes `window`. A time, when given, is checked as it is (an exact time wins).

use crate::flow::actions::Refusal;
use jiff::civil::{Date, Time};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};

use super::args::{Arg, Args, find_professional, find_specialty, refuse_with, text};
use super::slots::{Finder, MAX_ALTERNATIVES, alts_json, grid, starts_at};
use super::{ActionContext, ActionError};
use crate::flow::clinic::{Clinic, Professional, Specialty};
use crate::store::time::{fmt_date, fmt_hhmm};

/// Whether a requested slot can be booked, and with whom.
pub(crate) enum Verdict<'a> {
    /// Free with these professionals, in preference order.
    Free(Vec<&'a Professional>),
    Refused(Refusal),
}

/// Past, closed, nobody working, outside hours or taken, checked in that order (the first one
/// that applies is the one worth telling the patient).
pub(crate) fn judge<'a>(finder: &Finder<'a>, date: Date, time: Time) -> Verdict<'a> {
    match starts_at(finder.clinic, date, time) {
        None => return Verdict::Refused(Refusal::InvalidDate),
        Some(at) if at <= finder.now => return Verdict::Refused(Refusal::Past),
        Some(_) => {}
    }
    if date > super::slots::last_day(finder.clinic, finder.now) {
        return Verdict::Refused(Refusal::TooFar);
    }
    if finder.clinic.opening(date).is_empty() {
        return Verdict::Refused(Refusal::Closed);
    }
    if finder.scheduled_at(date, time).is_empty() {
        let works_that_day = finder.pros.iter().any(|p| !grid(finder.clinic, p, date).is_empty());
        return Verdict::Refused(if works_that_day {
            Refusal::OutsideHours
        } else {
            Refusal::NoSlots
        });
    }
    match finder.free_at(date, time) {
        free if free.is_empty() => Verdict::Refused(Refusal::Taken),
        free => Verdict::Free(free),
    }
}

/// The specialty named in `args`, or the refusal to return.
pub(crate) fn specialty_arg<'c>(clinic: &'c Clinic, args: &Args) -> Result<&'c Specialty, Value> {
    let Some(name) = text(args, "specialty") else {
        return Err(unusable(Refusal::MissingSpecialty));
    };
    find_specialty(clinic, &name).ok_or_else(|| {
        refuse_with(
            Refusal::UnknownSpecialty,
            json!({ "available": false, "specialty": name, "alternatives": [] }),
        )
    })
}

/// The candidate professionals: the one named in `args`, else all of the specialty (with
/// `prefer` first when given).
pub(crate) fn professionals_arg<'c>(
    specialty: &'c Specialty,
    args: &Args,
    prefer: Option<&str>,
) -> Result<Vec<&'c Professional>, Value> {
    if let Some(name) = text(args, "professional") {
        return match find_professional(specialty, &name) {
            Some(p) => Ok(vec![p]),
            None => Err(refuse_with(
                Refusal::UnknownProfessional,
                json!({ "available": false, "professional": name, "alternatives": [] }),
            )),
        };
    }
    let mut pros: Vec<&Professional> = specialty.professionals.iter().collect();
    if let Some(prefer) = prefer {
        pros.sort_by_key(|p| p.name != prefer);
    }
    Ok(pros)
}

/// A refusal for arguments that cannot be searched at all.
fn unusable(reason: Refusal) -> Value {
    refuse_with(reason, json!({ "available": false, "alternatives": [] }))
}

/// Most alternatives a `limit` may ask for (the console's agenda lists a whole day).
const MAX_LIMIT: usize = 64;

/// `limit`: how many alternatives (1 to [`MAX_LIMIT`]); 3 when absent or unusable.
fn limit_arg(args: &Args) -> usize {
    args.get("limit")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .unwrap_or(MAX_ALTERNATIVES)
}

/// Days of bookings a search reads first: enough for the first free slots on all but a full
/// agenda; a search that needs a later day runs again on the whole horizon.
const NEAR_DAYS: i64 = 14;

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Value, ActionError> {
    // External calendars are asked for the whole horizon anyway; a second search would ask
    // them again.
    if !ctx.clinic.calendars.is_empty() {
        return search(ctx, args, None).await;
    }
    let missed = AtomicBool::new(false);
    let near = search(ctx, args, Some((NEAR_DAYS, &missed))).await?;
    if !missed.load(Ordering::Relaxed) {
        return Ok(near);
    }
    search(ctx, args, None).await
}

/// The search, on the bookings of the first `near.0` days only when `near` is given (a look
/// at a later day sets `near.1`, and the answer must not be used).
async fn search(ctx: &ActionContext<'_>, args: &Args, near: Option<(i64, &AtomicBool)>) -> Result<Value, ActionError> {
    let specialty = match specialty_arg(ctx.clinic, args) {
        Ok(s) => s,
        Err(refusal) => return Ok(refusal),
    };
    let date = match super::args::date(args, "date") {
        Arg::Ok(d) => d,
        Arg::Missing => return Ok(unusable(Refusal::MissingDate)),
        Arg::Invalid => return Ok(unusable(Refusal::InvalidDate)),
    };
    let time = match super::args::time(args, "time") {
        Arg::Ok(t) => Some(t),
        Arg::Missing => None,
        Arg::Invalid => return Ok(unusable(Refusal::InvalidTime)),
    };
    let window = match super::args::window(args, "window") {
        Arg::Ok(w) => Some(w),
        Arg::Missing => None,
        Arg::Invalid => return Ok(unusable(Refusal::InvalidWindow)),
    };
    let n = limit_arg(args);
    let pros = match professionals_arg(specialty, args, None) {
        Ok(p) => p,
        Err(refusal) => return Ok(refusal),
    };
    let now = ctx.local_now();
    let last = super::slots::last_day(ctx.clinic, now.timestamp());
    let from = date.max(now.date()).min(last);
    let finder = match near {
        Some((days, missed)) => {
            Finder::load_near(ctx.store, ctx.clinic, pros, now.timestamp(), from, days, missed).await?
        }
        None => Finder::load(ctx.store, ctx.clinic, pros, now.timestamp(), from, None).await?,
    };
    let requested_professional = text(args, "professional").and(finder.pros.first().map(|p| p.name.clone()));

    let answer = |available: bool, professional: Option<String>, alternatives: Value, reason: Option<Refusal>| {
        let mut out = json!({
            "ok": true,
            "available": available,
            "specialty": specialty.name,
            "date": fmt_date(date),
            "time": time.map(fmt_hhmm),
            "professional": professional,
            "alternatives": alternatives,
        });
        if let (Some(reason), Some(map)) = (reason, out.as_object_mut()) {
            map.insert("reason".into(), json!(reason));
            if reason == Refusal::TooFar {
                map.insert("last_day".into(), json!(fmt_date(last)));
            }
        }
        if let (Some((from, to)), Some(map)) = (window, out.as_object_mut()) {
            map.insert("window".into(), json!({ "from": fmt_hhmm(from), "to": fmt_hhmm(to) }));
        }
        out
    };
    let finder = match finder.with_calendars().await {
        Ok(f) => f,
        Err(e) => {
            let reason = crate::calendars::unavailable(&e);
            return Ok(answer(false, requested_professional, json!([]), Some(reason)));
        }
    };

    if date > last {
        // Beyond the booking horizon: nothing is offered, and the flow can say until when.
        return Ok(answer(false, requested_professional, json!([]), Some(Refusal::TooFar)));
    }
    let Some(time) = time else {
        let mut alternatives = match window {
            Some(w) => finder.alternatives_within(date, w, n),
            None => finder.alternatives(date, None, n),
        };
        let reason = if date < now.date() {
            Refusal::Past
        } else if ctx.clinic.opening(date).is_empty() {
            Refusal::Closed
        } else if alternatives.first().is_some_and(|a| a.date == date) {
            Refusal::NoTime
        } else if let Some(w) = window.filter(|_| alternatives.is_empty()) {
            // Nothing free inside the window up to the horizon: the nearest outside it.
            alternatives = finder.nearest_to_window(date, w, n);
            Refusal::OutsideWindow
        } else {
            Refusal::NoSlots
        };
        return Ok(answer(
            false,
            requested_professional,
            alts_json(&alternatives),
            Some(reason),
        ));
    };
    Ok(match judge(&finder, date, time) {
        Verdict::Free(free) => answer(true, free.first().map(|p| p.name.clone()), json!([]), None),
        Verdict::Refused(reason) => {
            let alternatives = finder.alternatives(date, Some(time), n);
            answer(false, requested_professional, alts_json(&alternatives), Some(reason))
        }
    })
}

#[cfg(test)]
#[path = "find_availability_tests.rs"]
mod tests;
