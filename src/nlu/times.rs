//! Clock times in Spanish and English.
//!
//! A bare number is never a time on its own ("10" may be a day, a choice or an age); it needs a
//! lead ("a las", "at"), minutes, a suffix ("hs", "pm") or a part of the day ("de la tarde"),
//! unless the bot just asked for a time.

use std::sync::LazyLock;

use jiff::civil::Time;
use regex::{Captures, Regex};

use super::normalize::{Found, Normalized, Span, ascii_regex, is_claimed};

static TIME: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(
        r"\b(?P<lead>(?:(?:a\s+eso\s+de|desde|despues\s+de|antes\s+de|tipo|a)\s+)?las\s+|a\s+la\s+|at\s+|around\s+|about\s+|tipo\s+)?(?P<h>[0-9]{1,2})(?:[:.h](?P<m>[0-9]{2})|\s+y\s+(?P<ym>media|cuarto|[0-9]{1,2})|\s+menos\s+(?P<mm>cuarto|[0-9]{1,2}))?(?:\s*(?P<suf>hs|hrs|hr|horas|h|am|pm|a\.?\s?m\.?|p\.?\s?m\.?|o'?\s?clock))?",
    )
});
// A part of the day right after the number.
static QUALIFIER: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(
        r"^\s*,?\s*(?:(?:de|por|a|en|esta)\s+la\s+(?P<es>manana|tarde|noche|madrugada)|esta\s+(?P<es2>manana|tarde|noche)|del\s+(?P<noon>mediodia)|(?:in\s+the|this)\s+(?P<en>morning|afternoon|evening)|at\s+(?P<night>night)|(?P<tonight>tonight))\b",
    )
});
// A part of the day anywhere in the message ("por la mañana a las 7"); not "good morning".
static DAYPART: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(
        r"\b(?:(?:la|esta)\s+(?P<am>manana|madrugada)|(?:la|esta)\s+(?P<pm>tarde|noche)|(?:in\s+the|this)\s+(?P<am_en>morning)|(?:in\s+the|this)\s+(?P<pm_en>afternoon|evening)|(?P<tonight>tonight))\b",
    )
});
static NOON: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"\b(?:al\s+|a\s+)?(?:mediodia|medio\s+dia|noon|midday)\b"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Am,
    Pm,
    Unknown,
}

/// Every clock time in the message, in order. Skips spans in `claimed` and adds its own.
pub fn find_times(n: &Normalized, asking_time: bool, claimed: &mut Vec<Span>) -> Vec<Found<Time>> {
    let text = n.text.as_str();
    let mut out = Vec::new();
    let message_part = message_daypart(text);

    for c in TIME.captures_iter(text) {
        let (Some(all), Some(h)) = (c.get(0), c.name("h")) else {
            continue;
        };
        let mut end = all.end();
        let mut suffix = c.name("suf");
        if n.rest(end).chars().next().is_some_and(char::is_alphanumeric) {
            // "10 hermanos": the "h" was not a suffix; retry without it.
            if suffix.is_none() {
                continue;
            }
            end = number_end(&c);
            suffix = None;
            if n.rest(end).chars().next().is_some_and(char::is_alphanumeric) {
                continue;
            }
        }
        let span = Span::new(all.start(), end);
        if is_claimed(claimed, span) {
            continue;
        }
        let (part, qual_len) = qualifier_after(n.rest(end));
        let lead = c.name("lead").is_some();
        let minutes = c.name("m").is_some();
        let half_or_quarter = matches!(c.name("ym").map(|m| m.as_str()), Some("media" | "cuarto"))
            || matches!(c.name("mm").map(|m| m.as_str()), Some("cuarto"));
        if !(lead || minutes || half_or_quarter || suffix.is_some() || part != Part::Unknown) {
            continue;
        }
        let suffix_part = match suffix.map(|s| s.as_str().chars().next()) {
            Some(Some('a')) => Part::Am,
            Some(Some('p')) => Part::Pm,
            _ => Part::Unknown,
        };
        let part = [suffix_part, part, message_part]
            .into_iter()
            .find(|p| *p != Part::Unknown)
            .unwrap_or(Part::Unknown);
        let Some(time) = resolve(h.as_str(), &c, part) else {
            continue;
        };
        let span = Span::new(all.start(), end + qual_len);
        claimed.push(span);
        out.push(Found { span, value: time });
    }

    for m in NOON.find_iter(text) {
        let span = Span::new(m.start(), m.end());
        if !is_claimed(claimed, span) {
            claimed.push(span);
            out.push(Found {
                span,
                value: Time::constant(12, 0, 0, 0),
            });
        }
    }

    if asking_time
        && out.is_empty()
        && let [only] = n.tokens.as_slice()
        && let Some(time) = resolve_bare(&only.text, message_part)
    {
        claimed.push(only.span);
        out.push(Found {
            span: only.span,
            value: time,
        });
    }

    out.sort_by_key(|f| f.span.start);
    out
}

fn number_end(c: &Captures) -> usize {
    ["h", "m", "ym", "mm"]
        .iter()
        .filter_map(|g| c.name(g).map(|m| m.end()))
        .max()
        .unwrap_or(0)
}

fn qualifier_after(rest: &str) -> (Part, usize) {
    let Some(c) = QUALIFIER.captures(rest) else {
        return (Part::Unknown, 0);
    };
    let len = c.get(0).map_or(0, |m| m.end());
    let word = ["es", "es2", "noon", "en", "night", "tonight"]
        .iter()
        .find_map(|g| c.name(g))
        .map_or("", |m| m.as_str());
    let part = match word {
        "manana" | "madrugada" | "morning" => Part::Am,
        _ => Part::Pm,
    };
    (part, len)
}

fn message_daypart(text: &str) -> Part {
    let Some(c) = DAYPART.captures(text) else {
        return Part::Unknown;
    };
    if c.name("am").is_some() || c.name("am_en").is_some() {
        Part::Am
    } else {
        Part::Pm
    }
}

fn resolve(hour: &str, c: &Captures, part: Part) -> Option<Time> {
    let h24 = hour_24(hour, part)?;
    let mut minutes = i32::from(h24) * 60;
    if let Some(m) = c.name("m") {
        let m: i32 = m.as_str().parse().ok()?;
        if m > 59 {
            return None;
        }
        minutes += m;
    } else if let Some(m) = c.name("ym") {
        minutes += offset(m.as_str())?;
    } else if let Some(m) = c.name("mm") {
        // "11 menos cuarto" is 10:45.
        minutes -= offset(m.as_str())?;
    }
    let minutes = minutes.rem_euclid(24 * 60);
    Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()
}

fn resolve_bare(token: &str, part: Part) -> Option<Time> {
    let h24 = hour_24(token, part)?;
    Time::new(h24 as i8, 0, 0, 0).ok()
}

fn offset(word: &str) -> Option<i32> {
    match word {
        "media" => Some(30),
        "cuarto" => Some(15),
        n => n.parse().ok().filter(|m| (0..60).contains(m)),
    }
}

/// In a clinic, 1..7 without am/pm is afternoon ("a las 3" is 15:00); a leading zero ("07:00")
/// means the patient wrote a 24-hour clock.
pub(super) fn hour_24(hour: &str, part: Part) -> Option<u8> {
    let h: u8 = hour.parse().ok()?;
    let h24 = match part {
        Part::Am if h == 12 => 0,
        Part::Am if h > 12 => return None,
        Part::Am => h,
        Part::Pm if h < 12 => h + 12,
        Part::Pm => h,
        Part::Unknown if (1..=7).contains(&h) && !hour.starts_with('0') => h + 12,
        Part::Unknown => h,
    };
    (h24 <= 23).then_some(h24)
}

/// Builds the static patterns now, so the first patient does not wait for them.
pub fn warm_up() {
    LazyLock::force(&TIME);
    LazyLock::force(&QUALIFIER);
    LazyLock::force(&DAYPART);
    LazyLock::force(&NOON);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times_asking(s: &str, asking: bool) -> Vec<String> {
        let n = Normalized::new(s);
        let mut claimed = Vec::new();
        find_times(&n, asking, &mut claimed)
            .into_iter()
            .map(|f| format!("{:02}:{:02}", f.value.hour(), f.value.minute()))
            .collect()
    }

    fn one(s: &str) -> String {
        let all = times_asking(s, false);
        assert_eq!(all.len(), 1, "{s:?} gave {all:?}");
        all[0].clone()
    }

    #[test]
    fn spanish_forms() {
        assert_eq!(one("a las 10"), "10:00");
        assert_eq!(one("a las 3"), "15:00");
        assert_eq!(one("a la 1"), "13:00");
        assert_eq!(one("10:30"), "10:30");
        assert_eq!(one("10.30"), "10:30");
        assert_eq!(one("10 y media"), "10:30");
        assert_eq!(one("10 y cuarto"), "10:15");
        assert_eq!(one("11 menos cuarto"), "10:45");
        assert_eq!(one("a las 10 y 20"), "10:20");
        assert_eq!(one("3 de la tarde"), "15:00");
        assert_eq!(one("9 de la mañana"), "09:00");
        assert_eq!(one("8 de la noche"), "20:00");
        assert_eq!(one("15 hs"), "15:00");
        assert_eq!(one("15 h"), "15:00");
        assert_eq!(one("15hs"), "15:00");
        assert_eq!(one("a eso de las 11"), "11:00");
        assert_eq!(one("mediodía"), "12:00");
        assert_eq!(one("al mediodia"), "12:00");
        assert_eq!(one("por la mañana a las 7"), "07:00");
        assert_eq!(one("a las 07:00"), "07:00");
        assert_eq!(one("10h30"), "10:30");
    }

    #[test]
    fn english_forms() {
        assert_eq!(one("10am"), "10:00");
        assert_eq!(one("3 pm"), "15:00");
        assert_eq!(one("3:30 p.m."), "15:30");
        assert_eq!(one("12 am"), "00:00");
        assert_eq!(one("at 10"), "10:00");
        assert_eq!(one("at 4 in the afternoon"), "16:00");
        assert_eq!(one("noon"), "12:00");
        assert_eq!(one("5 o'clock"), "17:00");
    }

    #[test]
    fn not_times() {
        assert!(times_asking("10", false).is_empty());
        assert!(times_asking("26/11", false).is_empty());
        assert!(times_asking("12.345.678", false).is_empty());
        assert!(times_asking("12345678", false).is_empty());
        assert!(times_asking("26 de noviembre", false).is_empty());
        assert!(times_asking("10 hermanos", false).is_empty());
        assert!(times_asking("la 2", false).is_empty());
        assert!(times_asking("a las 25", false).is_empty());
        assert!(times_asking("10:75", false).is_empty());
        assert!(times_asking("10 y 15", false).is_empty());
    }

    #[test]
    fn bare_number_when_asked() {
        assert_eq!(times_asking("10", true), ["10:00"]);
        assert_eq!(times_asking("3", true), ["15:00"]);
        assert!(times_asking("30", true).is_empty());
    }

    #[test]
    fn claimed_spans_are_skipped() {
        let n = Normalized::new("el 26/11 a las 10");
        let mut claimed = vec![Span::new(3, 8)];
        let t = find_times(&n, false, &mut claimed);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].value, Time::constant(10, 0, 0, 0));
        assert_eq!(n.original_of(t[0].span), "a las 10");
    }
}
