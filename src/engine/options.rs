//! Choosing among offered options. A slot with `options:` (an expression giving the list the
//! bot just showed, e.g. `result.alternatives`) is answered by anything that singles one out:
//! its number or an ordinal ("la 2", "la última", "the second one"), its time ("la de las 15",
//! "15:00", "3 pm"), its day ("el jueves"), its professional ("con la Dra. Díaz"), or several
//! of these together. Each thing the message says narrows the list; what is left decides.

use serde_json::Value;

use crate::nlu::normalize::fold;
use crate::nlu::{EntityKind, Understanding};

/// What a message did with a list of options.
#[derive(Debug, PartialEq)]
pub(super) enum Choice {
    /// Exactly one option fits (0-based index).
    Pick(usize),
    /// Several fit (0-based indexes, in list order): ask which.
    Several(Vec<usize>),
    /// The message named a day, time or professional that none of the options has: it is a
    /// correction of the search, not a choice.
    Nothing,
    /// The message says nothing about the options (no number, day, time or name).
    Silent,
}

/// Words that are titles or fillers in a professional's name, never enough to single one out.
const NAME_FILLERS: &[&str] = &[
    "dr",
    "dra",
    "doctor",
    "doctora",
    "lic",
    "licenciada",
    "licenciado",
    "la",
    "el",
    "de",
    "del",
];

pub(super) fn choose(options: &[Value], nlu: &Understanding, text: &str) -> Choice {
    if options.is_empty() {
        return Choice::Silent;
    }
    let folded = fold(text);
    let words: Vec<String> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let mut left: Vec<usize> = (0..options.len()).collect();
    let mut said_something = false;

    let time = nlu.entity(EntityKind::Time).and_then(|e| e.value.as_str());
    let mut date = nlu.entity(EntityKind::Date).and_then(|e| e.value.as_str());
    // "el 2" is a day of the month or an option's number: the option, when no option is on
    // that day and there is such an option.
    let mut number_from_date = None;
    if let Some(e) = nlu.entity(EntityKind::Date)
        && let Some(d) = date
        && !options.iter().any(|o| field(o, "date") == Some(d))
        && let Some(n) = bare_number(&e.text)
        && (1..=options.len() as u64).contains(&n)
    {
        number_from_date = Some(n);
        date = None;
    }
    // "la última" / "the last one".
    let last = words.iter().any(|w| matches!(w.as_str(), "ultima" | "ultimo" | "last"));
    // A number is an option's position, unless it is part of a time ("09:00", "a las 9").
    let number = nlu
        .entity(EntityKind::Number)
        .and_then(|e| e.value.as_u64())
        .or(number_from_date)
        .filter(|_| time.is_none());

    if last {
        said_something = true;
        left.retain(|i| *i + 1 == options.len());
    } else if let Some(n) = number {
        said_something = true;
        left.retain(|i| (*i as u64) + 1 == n);
    }
    if let Some(t) = time {
        said_something = true;
        left.retain(|i| field(&options[*i], "time").is_some_and(|o| same_time(o, t)));
    }
    if let Some(d) = date {
        said_something = true;
        // "el del martes" said of a list on other weeks: a weekday named without a number
        // means the options on that weekday, when none is on the date it was read as.
        let weekday_only = nlu
            .entity(EntityKind::Date)
            .is_some_and(|e| !e.text.chars().any(|c| c.is_ascii_digit()));
        let exact = options.iter().any(|o| field(o, "date") == Some(d));
        match d.parse::<jiff::civil::Date>() {
            Ok(day) if weekday_only && !exact => left.retain(|i| {
                field(&options[*i], "date")
                    .and_then(|o| o.parse::<jiff::civil::Date>().ok())
                    .is_some_and(|o| o.weekday() == day.weekday())
            }),
            _ => left.retain(|i| field(&options[*i], "date") == Some(d)),
        }
    }
    // A window ("a la tarde", "después de las 17"): the options inside it.
    if time.is_none()
        && let Some(w) = nlu.entity(EntityKind::Window)
        && let (Some(from), Some(to)) = (field(&w.value, "from"), field(&w.value, "to"))
    {
        said_something = true;
        left.retain(|i| field(&options[*i], "time").is_some_and(|o| o >= from && o < to));
    }
    // A professional named by a word of their name ("Díaz", "con la doctora Méndez").
    let named: Vec<usize> = (0..options.len())
        .filter(|i| {
            field(&options[*i], "professional").is_some_and(|p| {
                fold(p)
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() > 2 && !NAME_FILLERS.contains(w))
                    .any(|w| words.iter().any(|x| x == w))
            })
        })
        .collect();
    if !named.is_empty() {
        said_something = true;
        left.retain(|i| named.contains(i));
    }
    // A specialty named ("el de cardiología"), for lists of appointments.
    let by_specialty: Vec<usize> = (0..options.len())
        .filter(|i| {
            field(&options[*i], "specialty").is_some_and(|sp| {
                let sp = fold(sp);
                words
                    .iter()
                    .any(|w| w.chars().count() > 3 && sp.starts_with(&w.chars().take(6).collect::<String>()))
            })
        })
        .collect();
    if !by_specialty.is_empty() && by_specialty.len() < options.len() {
        said_something = true;
        left.retain(|i| by_specialty.contains(i));
    }

    match left.as_slice() {
        _ if !said_something => Choice::Silent,
        [] => Choice::Nothing,
        [one] => Choice::Pick(*one),
        _ => Choice::Several(left),
    }
}

/// The date all options share, when they are all on one day (a time said alone then means
/// that day: the patient is looking at it).
pub(super) fn common_date(options: &[Value]) -> Option<&str> {
    let first = field(options.first()?, "date")?;
    options.iter().all(|o| field(o, "date") == Some(first)).then_some(first)
}

/// "2", "el 2", "la 2" → 2.
fn bare_number(text: &str) -> Option<u64> {
    let folded = fold(text);
    let rest = folded
        .trim_start_matches("el dia ")
        .trim_start_matches("el ")
        .trim_start_matches("la ")
        .trim();
    rest.parse().ok()
}

fn field<'v>(o: &'v Value, key: &str) -> Option<&'v str> {
    o.get(key).and_then(Value::as_str)
}

/// "09:00" and "9:00" are the same time.
fn same_time(a: &str, b: &str) -> bool {
    let hm = |s: &str| -> Option<(u32, u32)> {
        let (h, m) = s.split_once(':')?;
        Some((h.trim().parse().ok()?, m.trim().parse().ok()?))
    };
    match (hm(a), hm(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::Entity;
    use serde_json::json;

    fn opts() -> Vec<Value> {
        vec![
            json!({"date": "2026-12-03", "time": "09:00", "professional": "Dra. Laura Gómez"}),
            json!({"date": "2026-12-03", "time": "09:30", "professional": "Dra. Laura Gómez"}),
            json!({"date": "2026-12-03", "time": "15:00", "professional": "Dr. Martín Sosa"}),
            json!({"date": "2026-12-04", "time": "09:00", "professional": "Dr. Martín Sosa"}),
        ]
    }

    fn nlu(entities: &[(EntityKind, Value)]) -> Understanding {
        Understanding {
            entities: entities
                .iter()
                .map(|(k, v)| Entity {
                    kind: *k,
                    value: v.clone(),
                    text: String::new(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn by_number_and_ordinal() {
        assert_eq!(
            choose(&opts(), &nlu(&[(EntityKind::Number, json!(2))]), "la 2"),
            Choice::Pick(1)
        );
        assert_eq!(choose(&opts(), &nlu(&[]), "la última"), Choice::Pick(3));
        assert_eq!(
            choose(&opts(), &nlu(&[(EntityKind::Number, json!(14))]), "14"),
            Choice::Nothing
        );
        // "el 2" with no option on the 2nd is option 2.
        let mut m = nlu(&[(EntityKind::Date, json!("2026-12-02"))]);
        m.entities[0].text = "el 2".into();
        assert_eq!(choose(&opts(), &m, "el 2"), Choice::Pick(1));
    }

    #[test]
    fn a_time_is_never_an_option_number() {
        let m = nlu(&[(EntityKind::Time, json!("15:00")), (EntityKind::Number, json!(15))]);
        assert_eq!(choose(&opts(), &m, "la de las 15"), Choice::Pick(2));
        let m = nlu(&[(EntityKind::Time, json!("09:00")), (EntityKind::Number, json!(9))]);
        assert_eq!(choose(&opts(), &m, "09:00"), Choice::Several(vec![0, 3]));
    }

    #[test]
    fn combinations_narrow_down() {
        let m = nlu(&[
            (EntityKind::Time, json!("09:00")),
            (EntityKind::Date, json!("2026-12-04")),
        ]);
        assert_eq!(choose(&opts(), &m, "el viernes a las 9"), Choice::Pick(3));
        let m = nlu(&[(EntityKind::Date, json!("2026-12-03"))]);
        assert_eq!(choose(&opts(), &m, "con Sosa el jueves"), Choice::Pick(2));
        assert_eq!(
            choose(&opts(), &nlu(&[]), "con la Dra. Gómez"),
            Choice::Several(vec![0, 1])
        );
    }

    #[test]
    fn appointments_are_chosen_by_weekday_or_specialty() {
        let list = vec![
            json!({"date": "2026-11-26", "time": "09:00", "specialty": "Cardiología"}),
            json!({"date": "2026-12-01", "time": "08:30", "specialty": "Oftalmología"}),
        ];
        // "el del martes" read as Tuesday 24: the appointment on a Tuesday.
        let mut m = nlu(&[(EntityKind::Date, json!("2026-11-24"))]);
        m.entities[0].text = "martes".into();
        assert_eq!(choose(&list, &m, "el del martes"), Choice::Pick(1));
        // A date with its number is that date: none of them.
        m.entities[0].text = "24/11".into();
        assert_eq!(choose(&list, &m, "el del 24/11"), Choice::Nothing);
        assert_eq!(choose(&list, &nlu(&[]), "el de cardiologia"), Choice::Pick(0));
        assert_eq!(choose(&list, &nlu(&[]), "el de oftalmo"), Choice::Pick(1));
    }

    #[test]
    fn unmatched_day_or_time_is_a_correction_and_chatter_is_silent() {
        let m = nlu(&[(EntityKind::Time, json!("12:00"))]);
        assert_eq!(choose(&opts(), &m, "a las 12"), Choice::Nothing);
        assert_eq!(choose(&opts(), &nlu(&[]), "mmm no se"), Choice::Silent);
        assert_eq!(common_date(&opts()[..3]), Some("2026-12-03"));
        assert_eq!(common_date(&opts()), None);
    }
}
