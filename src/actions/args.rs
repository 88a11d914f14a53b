//! Reading action arguments and shaping results.
//!
//! Arguments come from Rhai expressions in the flows, so any JSON can arrive: nothing here
//! panics or errors on a bad value; callers turn `None` / `Arg::Invalid` into an
//! `{ ok: false, reason }` result the flow can branch on.

use crate::flow::clinic::{Clinic, Professional, Specialty, parse_hhmm};
pub(crate) use crate::nlu::normalize::fold;
use crate::store::Appointment;
use crate::store::time::{fmt_date, fmt_hhmm};
use jiff::civil::{Date, Time};
use serde_json::{Map, Value, json};

pub use crate::flow::actions::Refusal;

pub(crate) type Args = Map<String, Value>;

/// `{ ok: false, reason }`.
pub(crate) fn refuse(reason: Refusal) -> Value {
    json!({ "ok": false, "reason": reason })
}

/// `{ ok: false, reason, ...extra }`.
pub(crate) fn refuse_with(reason: Refusal, extra: Value) -> Value {
    let mut out = refuse(reason);
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}

/// A text argument: a non-blank string, or a number written out (a document number may
/// arrive as one).
pub(crate) fn text(args: &Args, key: &str) -> Option<String> {
    match args.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A parsed argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg<T> {
    Missing,
    Invalid,
    Ok(T),
}

/// "YYYY-MM-DD".
pub(crate) fn date(args: &Args, key: &str) -> Arg<Date> {
    match text(args, key) {
        None => Arg::Missing,
        Some(s) => match s.parse::<Date>() {
            Ok(d) if s.len() == 10 => Arg::Ok(d),
            _ => Arg::Invalid,
        },
    }
}

/// "HH:MM" (seconds, if given, are dropped: appointments start on the minute).
pub(crate) fn time(args: &Args, key: &str) -> Arg<Time> {
    match text(args, key) {
        None => Arg::Missing,
        Some(s) => match parse_hhmm(&s).and_then(|t| Time::new(t.hour(), t.minute(), 0, 0).ok()) {
            Some(t) => Arg::Ok(t),
            None => Arg::Invalid,
        },
    }
}

/// A time window `{"from": "HH:MM", "to": "HH:MM"}` (`from` included, `to` not).
pub(crate) fn window(args: &Args, key: &str) -> Arg<(Time, Time)> {
    match args.get(key) {
        None | Some(Value::Null) => Arg::Missing,
        Some(Value::Object(w)) => {
            let end = |k: &str| w.get(k).and_then(Value::as_str).and_then(parse_hhmm);
            match (end("from"), end("to")) {
                (Some(from), Some(to)) if from < to => Arg::Ok((from, to)),
                _ => Arg::Invalid,
            }
        }
        Some(_) => Arg::Invalid,
    }
}

/// The clinic's specialty called `name` (or one of its synonyms, or its English name).
pub(crate) fn find_specialty<'c>(clinic: &'c Clinic, name: &str) -> Option<&'c Specialty> {
    let wanted = fold(name);
    clinic.specialties.iter().find(|s| {
        fold(&s.name) == wanted
            || s.name_en.as_deref().is_some_and(|n| fold(n) == wanted)
            || s.synonyms.iter().any(|syn| fold(syn) == wanted)
    })
}

/// The professional of `specialty` called `name`: the exact (folded) name, else the only one
/// whose name contains it ("Pérez" for "Dr. Juan Pérez").
pub(crate) fn find_professional<'c>(specialty: &'c Specialty, name: &str) -> Option<&'c Professional> {
    let wanted = fold(name);
    if let Some(p) = specialty.professionals.iter().find(|p| fold(&p.name) == wanted) {
        return Some(p);
    }
    let mut partial = specialty
        .professionals
        .iter()
        .filter(|p| !wanted.is_empty() && fold(&p.name).contains(&wanted));
    match (partial.next(), partial.next()) {
        (Some(p), None) => Some(p),
        _ => None,
    }
}

/// Documents are compared without dots, spaces or dashes: "30.111.222" is "30111222".
pub(crate) fn normalize_document(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The appointment as flows and templates see it (dates and times in the clinic's zone).
pub(crate) fn appointment_json(a: &Appointment) -> Value {
    json!({
        "id": a.id,
        "specialty": a.specialty,
        "professional": a.professional,
        "date": fmt_date(a.date),
        "time": fmt_hhmm(a.time),
        "minutes": a.minutes,
        "patient_name": a.patient_name,
        "document": a.document,
        "coverage": a.coverage,
        "status": a.status.as_str(),
    })
}

/// "24h", "2h", "30m", "1d", "1h30m", "90 min" → minutes. Bounded to 60 days.
pub(crate) fn parse_offset(s: &str) -> Option<u32> {
    let s = s.trim().to_ascii_lowercase();
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut unit = String::new();
    let mut parts = Vec::new();
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                parts.push((std::mem::take(&mut digits), std::mem::take(&mut unit)));
            }
            digits.push(c);
        } else {
            unit.push(c);
        }
    }
    parts.push((digits, unit));
    for (n, unit) in parts {
        let n: u64 = n.parse().ok()?;
        let per = match unit.as_str() {
            "m" | "min" | "mins" | "minutes" | "minutos" => 1,
            "h" | "hs" | "hour" | "hours" | "hora" | "horas" => 60,
            "d" | "day" | "days" | "dia" | "dias" | "día" | "días" => 1440,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(per)?)?;
    }
    (total > 0 && total <= 60 * 1440).then_some(total as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Args {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn dates_and_times_are_strict_but_never_panic() {
        let a = args(json!({ "d": "2025-06-10", "bad": "10/06/2025", "t": "9:30", "s": "09:30:15", "n": 5, "x": [1] }));
        assert_eq!(date(&a, "d"), Arg::Ok("2025-06-10".parse().unwrap()));
        assert_eq!(date(&a, "bad"), Arg::Invalid);
        assert_eq!(date(&a, "x"), Arg::Missing);
        assert_eq!(date(&a, "nope"), Arg::Missing);
        assert_eq!(time(&a, "t"), Arg::Ok(Time::constant(9, 30, 0, 0)));
        assert_eq!(time(&a, "s"), Arg::Ok(Time::constant(9, 30, 0, 0)));
        assert_eq!(time(&a, "n"), Arg::Invalid);
        assert_eq!(text(&a, "n").as_deref(), Some("5"));
    }

    #[test]
    fn names_match_without_accents_or_case() {
        assert_eq!(fold("  CARDIOLOGÍA  infantil"), "cardiologia infantil");
        assert_eq!(normalize_document("30.111.222"), "30111222");
    }

    #[test]
    fn reminder_offsets() {
        assert_eq!(parse_offset("24h"), Some(1440));
        assert_eq!(parse_offset("2h"), Some(120));
        assert_eq!(parse_offset("30m"), Some(30));
        assert_eq!(parse_offset("1d"), Some(1440));
        assert_eq!(parse_offset("1h30m"), Some(90));
        assert_eq!(parse_offset("90 min"), Some(90));
        for bad in ["", "h", "2x", "0m", "-2h", "99999d", "184467440737095516150m"] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
    }
}
