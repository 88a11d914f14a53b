//! Preferences as search windows: "a la tarde", "de 10 a 12", "después de las 17", "antes
//! del mediodía", "temprano", "in the afternoon", "between 10 and 12", "before noon".
//!
//! A window is `{from, to}` ("HH:MM", `from` included, `to` not); an open end is "00:00" or
//! "23:59" (the clinic's opening hours clip it anyway). Ranges and bounds ("de 10 a 12",
//! "después de las 17") claim their numbers before clock times are read, so they are never
//! an exact time; a part of the day ("a la tarde") is a window only when the message has no
//! clock time ("por la mañana a las 7" is 07:00). See docs/flows.md §6.2.0.

use std::sync::LazyLock;

use jiff::civil::Time;
use regex::{Captures, Regex};

use super::normalize::{Found, Normalized, Span, ascii_regex, is_claimed};
use super::times::{Part, hour_24};

/// A time window, `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Time,
    pub to: Time,
}

impl Window {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({ "from": hhmm(self.from), "to": hhmm(self.to) })
    }
}

fn hhmm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

const OPEN_START: Time = Time::constant(0, 0, 0, 0);
const OPEN_END: Time = Time::constant(23, 59, 0, 0);

// One clock reading inside a range: "las 10", "10:30", "10 hs", "3 pm".
const CLOCK: &str =
    r"(?:las?\s+)?(?P<hN>[0-9]{1,2})(?:[:.h](?P<mN>[0-9]{2}))?(?:\s*(?P<sN>hs|hrs|h|horas|am|pm|a\.?m\.?|p\.?m\.?))?";
// A part of the day after a range ("de 2 a 4 de la tarde").
const PART: &str =
    r"(?:\s+(?:de|por|a|en)\s+la\s+(?P<part>manana|tarde|noche)|\s+in\s+the\s+(?P<part_en>morning|afternoon|evening))?";

fn clock(n: &str) -> String {
    CLOCK
        .replace("hN", &format!("h{n}"))
        .replace("mN", &format!("m{n}"))
        .replace("sN", &format!("s{n}"))
}

static RANGE: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(&format!(
        r"\b(?:de|desde|entre|from|between)\s+{}\s+(?:a|y|hasta|and|to|until|till|-)\s+{}{PART}\b",
        clock("1"),
        clock("2")
    ))
});
static AFTER: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(&format!(
        r"\b(?:despues\s+de|a\s+partir\s+de|desde|after|from)\s+{}{PART}\b",
        clock("1")
    ))
});
static BEFORE: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(&format!(r"\b(?:antes\s+de|before)\s+{}{PART}\b", clock("1"))));
static BEFORE_NOON: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"\b(?:antes\s+del?\s+(?:mediodia|medio\s+dia)|before\s+(?:noon|midday|lunch))\b"));
static AFTER_NOON: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"\b(?:despues\s+del?\s+(?:mediodia|medio\s+dia)|after\s+(?:noon|midday|lunch))\b"));
// Parts of the day; "buenas tardes" and "good morning" have no article, so they never match.
static DAYPART: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(
        r"\b(?:(?P<tn>(?:a\s+la\s+|por\s+la\s+)?tarde[\s-]+noche|a\s+ultima\s+hora|(?:late|early)\s+evening)|(?:a|por|en|de|esta|para\s+la)\s+la\s+(?P<es>manana|tarde|noche)|esta\s+(?P<es2>manana|tarde|noche)|(?:in\s+the|this|tomorrow)\s+(?P<en>morning|afternoon|evening)|(?P<tonight>tonight)|(?P<asap>lo\s+mas\s+temprano(?:\s+posible)?)|(?P<early>(?:bien\s+|muy\s+)?temprano|early(?:\s+in\s+the\s+day)?|first\s+thing))\b",
    )
});

fn t(h: i8, m: i8) -> Time {
    Time::constant(h, m, 0, 0)
}

/// The clinic's reading of the parts of the day (documented in docs/flows.md §6.2.0).
fn daypart(word: &str) -> Window {
    match word {
        "manana" | "morning" => Window {
            from: OPEN_START,
            to: t(12, 0),
        },
        "tarde" | "afternoon" => Window {
            from: t(12, 0),
            to: t(19, 0),
        },
        "early" => Window {
            from: OPEN_START,
            to: t(10, 0),
        },
        "tarde-noche" => Window {
            from: t(17, 0),
            to: OPEN_END,
        },
        // noche, evening, tonight
        _ => Window {
            from: t(19, 0),
            to: OPEN_END,
        },
    }
}

fn range_part(c: &Captures) -> Part {
    match c.name("part").or(c.name("part_en")).map(|m| m.as_str()) {
        Some("manana" | "morning") => Part::Am,
        Some(_) => Part::Pm,
        None => Part::Unknown,
    }
}

/// The clock reading number `n` of a match, with the range's part of the day.
fn read(c: &Captures, n: &str, part: Part) -> Option<Time> {
    let h = c.name(&format!("h{n}"))?.as_str();
    let suffix = match c.name(&format!("s{n}")).and_then(|s| s.as_str().chars().next()) {
        Some('a') => Part::Am,
        Some('p') => Part::Pm,
        _ => part,
    };
    let h24 = hour_24(h, suffix)?;
    let m: i8 = match c.name(&format!("m{n}")) {
        Some(m) => m.as_str().parse().ok().filter(|m| *m < 60)?,
        None => 0,
    };
    Time::new(h24 as i8, m, 0, 0).ok()
}

/// Windows in the message (the first one is the one used). Ranges and bounds claim their
/// span; call before `find_times`, then `find_dayparts` after it.
pub fn find_bounds(n: &Normalized, claimed: &mut Vec<Span>) -> Vec<Found<Window>> {
    let text = n.text.as_str();
    let mut out = Vec::new();
    let mut add = |m: regex::Match, w: Option<Window>, claimed: &mut Vec<Span>| {
        let span = Span::new(m.start(), m.end());
        if let Some(w) = w.filter(|w| w.from < w.to)
            && !is_claimed(claimed, span)
        {
            claimed.push(span);
            out.push(Found { span, value: w });
        }
    };
    for c in RANGE.captures_iter(text) {
        let part = range_part(&c);
        let (Some(from), Some(to)) = (read(&c, "1", part), read(&c, "2", part)) else {
            continue;
        };
        // "de 10 a 2": the end is after the start, so 2 is 14:00.
        let to = if to <= from && to.hour() < 12 {
            t(to.hour() + 12, to.minute())
        } else {
            to
        };
        if let Some(m) = c.get(0) {
            add(m, Some(Window { from, to }), claimed);
        }
    }
    for c in AFTER.captures_iter(text) {
        let w = read(&c, "1", range_part(&c)).map(|from| Window { from, to: OPEN_END });
        if let Some(m) = c.get(0) {
            add(m, w, claimed);
        }
    }
    for c in BEFORE.captures_iter(text) {
        let w = read(&c, "1", range_part(&c)).map(|to| Window { from: OPEN_START, to });
        if let Some(m) = c.get(0) {
            add(m, w, claimed);
        }
    }
    for m in BEFORE_NOON.find_iter(text) {
        add(
            m,
            Some(Window {
                from: OPEN_START,
                to: t(12, 0),
            }),
            claimed,
        );
    }
    for m in AFTER_NOON.find_iter(text) {
        add(
            m,
            Some(Window {
                from: t(12, 0),
                to: OPEN_END,
            }),
            claimed,
        );
    }
    out.sort_by_key(|f| f.span.start);
    out
}

/// A part of the day ("a la tarde", "temprano") not already part of a time or a bound.
pub fn find_dayparts(n: &Normalized, claimed: &mut Vec<Span>) -> Vec<Found<Window>> {
    let mut out = Vec::new();
    for c in DAYPART.captures_iter(n.text.as_str()) {
        let Some(all) = c.get(0) else { continue };
        // "lo más temprano posible" is the earliest free time, not a part of the day.
        if c.name("asap").is_some() {
            continue;
        }
        let span = Span::new(all.start(), all.end());
        if is_claimed(claimed, span) {
            continue;
        }
        let word = if c.name("tn").is_some() {
            "tarde-noche"
        } else if c.name("early").is_some() {
            "early"
        } else if c.name("tonight").is_some() {
            "noche"
        } else {
            ["es", "es2", "en"]
                .iter()
                .find_map(|g| c.name(g))
                .map_or("", |m| m.as_str())
        };
        claimed.push(span);
        out.push(Found {
            span,
            value: daypart(word),
        });
    }
    out
}

/// Builds the static patterns now, so the first patient does not wait for them.
pub fn warm_up() {
    for r in [&RANGE, &AFTER, &BEFORE, &BEFORE_NOON, &AFTER_NOON, &DAYPART] {
        LazyLock::force(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(s: &str) -> Vec<String> {
        let n = Normalized::new(s);
        let mut claimed = Vec::new();
        let mut all = find_bounds(&n, &mut claimed);
        let times = super::super::times::find_times(&n, false, &mut claimed);
        if times.is_empty() {
            all.extend(find_dayparts(&n, &mut claimed));
        }
        all.into_iter()
            .map(|f| format!("{}-{}", hhmm(f.value.from), hhmm(f.value.to)))
            .collect()
    }

    #[test]
    fn ranges_and_bounds() {
        assert_eq!(windows("de 10 a 12"), ["10:00-12:00"]);
        assert_eq!(windows("entre las 10 y las 12"), ["10:00-12:00"]);
        assert_eq!(windows("desde las 14 hasta las 16:30"), ["14:00-16:30"]);
        assert_eq!(windows("de 2 a 4 de la tarde"), ["14:00-16:00"]);
        assert_eq!(windows("de 10 a 2"), ["10:00-14:00"]);
        assert_eq!(windows("después de las 17"), ["17:00-23:59"]);
        assert_eq!(windows("a partir de las 5"), ["17:00-23:59"]);
        assert_eq!(windows("antes de las 12"), ["00:00-12:00"]);
        assert_eq!(windows("antes del mediodía"), ["00:00-12:00"]);
        assert_eq!(windows("between 10 and 12"), ["10:00-12:00"]);
        assert_eq!(windows("after 5 pm"), ["17:00-23:59"]);
        assert_eq!(windows("before noon"), ["00:00-12:00"]);
        assert_eq!(windows("before 11am"), ["00:00-11:00"]);
    }

    #[test]
    fn parts_of_the_day() {
        assert_eq!(windows("a la tarde"), ["12:00-19:00"]);
        assert_eq!(windows("el jueves por la mañana"), ["00:00-12:00"]);
        assert_eq!(windows("a la noche"), ["19:00-23:59"]);
        assert_eq!(windows("tarde-noche"), ["17:00-23:59"]);
        assert_eq!(windows("a la tarde noche"), ["17:00-23:59"]);
        assert_eq!(windows("temprano"), ["00:00-10:00"]);
        assert_eq!(windows("in the afternoon"), ["12:00-19:00"]);
        assert_eq!(windows("early"), ["00:00-10:00"]);
    }

    #[test]
    fn exact_times_and_greetings_are_not_windows() {
        assert!(windows("a las 10").is_empty());
        assert!(windows("por la mañana a las 7").is_empty());
        assert!(windows("a las 10 de la mañana").is_empty());
        assert!(windows("buenas tardes").is_empty());
        assert!(windows("good morning").is_empty());
        assert!(windows("mañana").is_empty());
        assert!(windows("lo más temprano posible").is_empty());
        assert!(windows("del lunes al viernes").is_empty());
        assert_eq!(windows("de 10 a 8"), ["10:00-20:00"]);
    }
}
