//! Dates in Spanish and English, resolved against the clinic's "today".
//!
//! Passes run from the most explicit form to the loosest, and every pass skips text an earlier
//! one claimed, so "el lunes 30 de noviembre" is one date and "26/11" never becomes a time.

use std::sync::LazyLock;

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};
use regex::{Captures, Regex};

use super::normalize::{Found, Normalized, Span, ascii_regex, is_claimed};

const MONTHS: &str = "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|\
octubre|noviembre|diciembre|january|february|march|april|may|june|july|august|september|\
october|november|december|ene|jan|feb|mar|abr|apr|jun|jul|ago|aug|sept|sep|set|oct|nov|dic|dec";

const WEEKDAYS: &str = "lunes|martes|miercoles|jueves|viernes|sabado|domingo|monday|tuesday|\
wednesday|thursday|friday|saturday|sunday";

/// A day and month without a year that passed this many days ago or less is that past day.
const RECENT_PAST_DAYS: i64 = 45;

static ISO: LazyLock<Regex> = LazyLock::new(|| ascii_regex(r"\b([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})\b"));
static NUMERIC: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"\b([0-9]{1,2})[/-]([0-9]{1,2})(?:[/-]([0-9]{4}|[0-9]{2}))?\b"));
// Dots only with a year: "10.30" is a time.
static DOTTED: LazyLock<Regex> = LazyLock::new(|| ascii_regex(r"\b([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4}|[0-9]{2})\b"));
static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(&format!(
        r"\b([0-9]{{1,2}})(?:st|nd|rd|th|ro|er|o)?\s*(?:de\s+|of\s+)?({MONTHS})\b\.?(?:\s*(?:de|del|,)?\s*([0-9]{{4}})\b)?"
    ))
});
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(&format!(
        r"\b({MONTHS})\.?\s+([0-9]{{1,2}})(?:st|nd|rd|th)?\b(?:\s*,?\s*([0-9]{{4}})\b)?"
    ))
});
static RELATIVE: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(
        r"\b(pasado\s+manana|day\s+after\s+tomorrow|antes\s+de\s+ayer|anteayer|ayer|yesterday|hoy|today|tonight|manana|tomorrow|lo\s+antes\s+posible|cuanto\s+antes|lo\s+mas\s+pronto(?:\s+posible)?|as\s+soon\s+as\s+possible|asap|(?:el\s+)?primer\s+turno(?:\s+libre|\s+disponible)?|(?:the\s+)?(?:first|earliest|next)\s+(?:free|available|open)(?:\s+(?:slot|appointment|time))?|la\s+semana\s+que\s+viene|la\s+proxima\s+semana|next\s+week)\b",
    )
});
static WEEKDAY_DAY: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(&format!(
        r"\b(?:(?:el|on)\s+)?({WEEKDAYS})\s*,?\s+(?:the\s+)?([0-9]{{1,2}})(?:st|nd|rd|th)?"
    ))
});
static DAY_ONLY: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"\b(?:(?:para|for)\s+)?(?:el\s+dia|el|on\s+the|the|dia)\s+([0-9]{1,2})(?:st|nd|rd|th)?")
});
static WEEKDAY: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(&format!(
        r"\b(?:(el\s+proximo|la\s+proxima|proximo|el|este|this|on|next|last)\s+)?({WEEKDAYS})\b(?:\s+(que\s+viene|proximo|next|pasado))?\b"
    ))
});
// What, right after a number, makes it a time or part of something else rather than a day.
static NOT_A_DAY: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(
        r"^(?:[:./-][0-9]|\s*(?:hs|hrs|hr|h|horas|am|pm|a\.\s?m|p\.\s?m|o'?\s?clock|y\s+media|y\s+cuarto|menos\s+cuarto|de\s+la\s+(?:manana|tarde|noche|madrugada))\b)",
    )
});

/// Every date in the message, in order of appearance. Spans found are added to `claimed`.
/// `past`: the slot asked for looks back (`direction: past`): "el viernes" is last Friday,
/// "el 20/11" this year's 20 November even long ago, "el 3" this month's or an earlier one.
pub fn find_dates(
    n: &Normalized,
    today: Date,
    asking_date: bool,
    past: bool,
    claimed: &mut Vec<Span>,
) -> Vec<Found<Date>> {
    let mut out = Vec::new();
    let text = n.text.as_str();

    scan(&ISO, text, claimed, &mut out, |c| {
        let y = num::<i16>(c, 1)?;
        Date::new(y, num(c, 2)?, num(c, 3)?).ok()
    });
    scan(&NUMERIC, text, claimed, &mut out, |c| {
        day_month_year(num(c, 1)?, num(c, 2)?, c.get(3).map(|m| m.as_str()), today, past)
    });
    scan(&DOTTED, text, claimed, &mut out, |c| {
        day_month_year(num(c, 1)?, num(c, 2)?, c.get(3).map(|m| m.as_str()), today, past)
    });
    scan(&DAY_MONTH, text, claimed, &mut out, |c| {
        let month = month_number(c.get(2)?.as_str())?;
        day_month_year(num(c, 1)?, month, c.get(3).map(|m| m.as_str()), today, past)
    });
    scan(&MONTH_DAY, text, claimed, &mut out, |c| {
        let month = month_number(c.get(1)?.as_str())?;
        day_month_year(num(c, 2)?, month, c.get(3).map(|m| m.as_str()), today, past)
    });
    for c in RELATIVE.captures_iter(text) {
        let (Some(all), Some(word)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let span = Span::new(all.start(), all.end());
        if is_claimed(claimed, span) {
            continue;
        }
        let w = word.as_str();
        let days = match w {
            "hoy" | "today" | "tonight" => 0,
            "ayer" | "yesterday" => -1,
            "anteayer" => -2,
            _ if w.starts_with("antes") && w.ends_with("ayer") => -2,
            // "la semana que viene": its Monday (a search from there).
            _ if w.contains("semana") || w.contains("week") => 7 - i64::from(today.weekday().to_monday_zero_offset()),
            // "lo antes posible", "el primer turno libre": a search from today.
            _ if !w.contains("manana") && !w.contains("tomorrow") => 0,
            "manana" | "tomorrow" => {
                // "a la mañana", "por la mañana", "esta mañana" are times of day.
                let prev = previous_word(n.before(all.start()));
                if matches!(prev, "la" | "esta") {
                    continue;
                }
                1
            }
            _ => 2,
        };
        if let Some(d) = add_days(today, days) {
            push(&mut out, claimed, span, d);
        }
    }
    for c in WEEKDAY_DAY.captures_iter(text) {
        let (Some(all), Some(day)) = (c.get(0), c.get(2)) else {
            continue;
        };
        let span = Span::new(all.start(), all.end());
        if is_claimed(claimed, span) || !day_can_end_here(n, all.end()) {
            continue;
        }
        if let Some(d) = day.as_str().parse().ok().and_then(|d| day_of_month(d, today, past)) {
            push(&mut out, claimed, span, d);
        }
    }
    for c in DAY_ONLY.captures_iter(text) {
        let (Some(all), Some(day)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let span = Span::new(all.start(), all.end());
        if is_claimed(claimed, span) || !day_can_end_here(n, all.end()) {
            continue;
        }
        if let Some(d) = day.as_str().parse().ok().and_then(|d| day_of_month(d, today, past)) {
            push(&mut out, claimed, span, d);
        }
    }
    for c in WEEKDAY.captures_iter(text) {
        let (Some(all), Some(day)) = (c.get(0), c.get(2)) else {
            continue;
        };
        let span = Span::new(all.start(), all.end());
        if is_claimed(claimed, span)
            || precedes_claimed(n, all.end(), claimed)
            || follows_claimed(n, all.start(), claimed)
        {
            continue;
        }
        let Some(wd) = weekday(day.as_str()) else {
            continue;
        };
        let this = matches!(c.get(1).map(|m| m.as_str()), Some("este" | "this"));
        // "el viernes pasado", "last Friday": the one before today.
        let ahead = c
            .get(1)
            .is_some_and(|m| m.as_str().contains("proxim") || m.as_str() == "next")
            || c.get(3).is_some_and(|m| m.as_str() != "pasado");
        let back = c.get(1).is_some_and(|m| m.as_str() == "last") || c.get(3).is_some_and(|m| m.as_str() == "pasado");
        let found = if this && past {
            Some(today)
                .filter(|t| t.weekday() == wd)
                .or_else(|| previous_weekday(today, wd))
        } else if back || (past && !ahead) {
            previous_weekday(today, wd)
        } else {
            next_weekday(today, wd, this)
        };
        if let Some(d) = found {
            push(&mut out, claimed, span, d);
        }
    }
    if asking_date
        && out.is_empty()
        && let [only] = n.tokens.as_slice()
        && let Ok(day) = only.text.parse::<i8>()
        && let Some(d) = day_of_month(day, today, past)
    {
        push(&mut out, claimed, only.span, d);
    }

    out.sort_by_key(|f| f.span.start);
    drop_from_dates(n, &mut out);
    out
}

/// "mover el turno del lunes para el viernes", "from Monday to Friday": the first date is where
/// the appointment is now, the second the one wanted. Only the wanted one is a date to fill.
fn drop_from_dates(n: &Normalized, out: &mut Vec<Found<Date>>) {
    let mut i = 0;
    while i + 1 < out.len() {
        let (a, b) = (out[i].span, out[i + 1].span);
        let before = previous_word(n.before(a.start));
        let between = n.text.get(a.end..b.start).unwrap_or("").trim();
        let from = matches!(before, "del" | "de" | "from") || n.original_of(a).starts_with("del ");
        let to = between
            .split_whitespace()
            .next()
            .is_some_and(|w| matches!(w, "para" | "al" | "a" | "hasta" | "to" | "for" | "por"));
        if from && to {
            out.remove(i);
        } else {
            i += 1;
        }
    }
}

fn scan(
    re: &Regex,
    text: &str,
    claimed: &mut Vec<Span>,
    out: &mut Vec<Found<Date>>,
    build: impl Fn(&Captures) -> Option<Date>,
) {
    for c in re.captures_iter(text) {
        let Some(all) = c.get(0) else { continue };
        let span = Span::new(all.start(), all.end());
        if is_claimed(claimed, span) {
            continue;
        }
        if let Some(d) = build(&c) {
            push(out, claimed, span, d);
        }
    }
}

fn push(out: &mut Vec<Found<Date>>, claimed: &mut Vec<Span>, span: Span, value: Date) {
    claimed.push(span);
    out.push(Found { span, value });
}

fn num<T: std::str::FromStr>(c: &Captures, i: usize) -> Option<T> {
    c.get(i)?.as_str().parse().ok()
}

/// Day and month as written (day first), swapped only when that is the one possible reading
/// ("11/26"). Without a year: this year, or next year once the date has passed, except a date
/// that passed within the last `RECENT_PAST_DAYS` ("el 25/11" on 1 December is the 25th that
/// just went by: the flow says it has passed instead of booking next November).
fn day_month_year(day: i8, month: i8, year: Option<&str>, today: Date, past: bool) -> Option<Date> {
    let (day, month) = if month > 12 && day <= 12 {
        (month, day)
    } else {
        (day, month)
    };
    match year {
        Some(y) => {
            let y: i16 = y.parse().ok()?;
            let y = if y < 100 { 2000 + y } else { y };
            Date::new(y, month, day).ok()
        }
        None => {
            // The same day and month last year, this year and next year.
            let on = |dy: i16| today.year().checked_add(dy).and_then(|y| Date::new(y, month, day).ok());
            let candidates = [on(-1), on(0), on(1)];
            if past {
                return candidates.iter().flatten().rfind(|d| **d <= today).copied();
            }
            let recent = today.checked_sub(RECENT_PAST_DAYS.days()).ok()?;
            let just_passed = candidates.iter().flatten().rfind(|d| **d < today && **d >= recent);
            just_passed
                .or_else(|| candidates.iter().flatten().find(|d| **d >= today))
                .copied()
        }
    }
}

/// "el 26": this month, or the next month that has that day once it has passed.
fn day_of_month(day: i8, today: Date, past: bool) -> Option<Date> {
    if !(1..=31).contains(&day) {
        return None;
    }
    if past {
        // This month's when it is not ahead, else the latest earlier month that has that day.
        let mut first = today.first_of_month();
        for _ in 0..3 {
            if let Ok(d) = Date::new(first.year(), first.month(), day)
                && d <= today
            {
                return Some(d);
            }
            first = first.yesterday().ok()?.first_of_month();
        }
        return None;
    }
    let mut first = today.first_of_month();
    for _ in 0..3 {
        if let Ok(d) = Date::new(first.year(), first.month(), day)
            && d >= today
        {
            return Some(d);
        }
        first = first.last_of_month().tomorrow().ok()?;
    }
    None
}

/// The next `wd` strictly after today, or today itself when `this` ("este martes") says so.
fn next_weekday(today: Date, wd: Weekday, this: bool) -> Option<Date> {
    let from = i64::from(today.weekday().to_monday_zero_offset());
    let to = i64::from(wd.to_monday_zero_offset());
    let mut delta = (to - from).rem_euclid(7);
    if delta == 0 && !this {
        delta = 7;
    }
    add_days(today, delta)
}

/// The last `wd` strictly before today.
fn previous_weekday(today: Date, wd: Weekday) -> Option<Date> {
    let from = i64::from(today.weekday().to_monday_zero_offset());
    let to = i64::from(wd.to_monday_zero_offset());
    let mut delta = (from - to).rem_euclid(7);
    if delta == 0 {
        delta = 7;
    }
    add_days(today, -delta)
}

fn add_days(d: Date, days: i64) -> Option<Date> {
    d.checked_add(days.days()).ok()
}

fn previous_word(before: &str) -> &str {
    before
        .trim_end()
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
}

/// A day number ends here only if no digit, letter or time marker follows.
fn day_can_end_here(n: &Normalized, end: usize) -> bool {
    let rest = n.rest(end);
    if rest.chars().next().is_some_and(char::is_alphanumeric) {
        return false;
    }
    !NOT_A_DAY.is_match(rest)
}

/// "el lunes 30 de noviembre": the weekday only labels the date that follows it.
fn precedes_claimed(n: &Normalized, end: usize, claimed: &[Span]) -> bool {
    let rest = n.rest(end);
    let skipped = rest.len() - rest.trim_start_matches([' ', ',']).len();
    let next = end + skipped;
    claimed.iter().any(|c| c.start == next)
}

/// "hoy martes", "mañana jueves": the weekday only labels the date before it.
fn follows_claimed(n: &Normalized, start: usize, claimed: &[Span]) -> bool {
    let before = n.before(start).trim_end_matches([' ', ',']);
    let prev_end = before.len();
    prev_end > 0 && claimed.iter().any(|c| c.end == prev_end)
}

fn month_number(m: &str) -> Option<i8> {
    let n = match m {
        "enero" | "ene" | "january" | "jan" => 1,
        "febrero" | "feb" | "february" => 2,
        "marzo" | "mar" | "march" => 3,
        "abril" | "abr" | "april" | "apr" => 4,
        "mayo" | "may" => 5,
        "junio" | "jun" | "june" => 6,
        "julio" | "jul" | "july" => 7,
        "agosto" | "ago" | "august" | "aug" => 8,
        "septiembre" | "setiembre" | "september" | "sept" | "sep" | "set" => 9,
        "octubre" | "october" | "oct" => 10,
        "noviembre" | "november" | "nov" => 11,
        "diciembre" | "december" | "dic" | "dec" => 12,
        _ => return None,
    };
    Some(n)
}

fn weekday(w: &str) -> Option<Weekday> {
    let d = match w {
        "lunes" | "monday" => Weekday::Monday,
        "martes" | "tuesday" => Weekday::Tuesday,
        "miercoles" | "wednesday" => Weekday::Wednesday,
        "jueves" | "thursday" => Weekday::Thursday,
        "viernes" | "friday" => Weekday::Friday,
        "sabado" | "saturday" => Weekday::Saturday,
        "domingo" | "sunday" => Weekday::Sunday,
        _ => return None,
    };
    Some(d)
}

/// Builds the static patterns now, so the first patient does not wait for them.
pub fn warm_up() {
    LazyLock::force(&ISO);
    LazyLock::force(&NUMERIC);
    LazyLock::force(&DOTTED);
    LazyLock::force(&DAY_MONTH);
    LazyLock::force(&MONTH_DAY);
    LazyLock::force(&RELATIVE);
    LazyLock::force(&WEEKDAY_DAY);
    LazyLock::force(&DAY_ONLY);
    LazyLock::force(&WEEKDAY);
    LazyLock::force(&NOT_A_DAY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    // Sunday.
    const TODAY: Date = date(2026, 11, 22);

    fn dates(s: &str) -> Vec<String> {
        dates_asking(s, false)
    }

    fn dates_asking(s: &str, asking: bool) -> Vec<String> {
        let n = Normalized::new(s);
        let mut claimed = Vec::new();
        find_dates(&n, TODAY, asking, false, &mut claimed)
            .into_iter()
            .map(|f| f.value.to_string())
            .collect()
    }

    fn one(s: &str) -> String {
        let all = dates(s);
        assert_eq!(all.len(), 1, "{s:?} gave {all:?}");
        all[0].clone()
    }

    #[test]
    fn a_slot_that_looks_back_reads_dates_in_the_past() {
        // TODAY is Sunday 22 November 2026.
        let past = |s: &str| {
            let n = Normalized::new(s);
            let mut claimed = Vec::new();
            find_dates(&n, TODAY, true, true, &mut claimed)
                .into_iter()
                .map(|f| f.value.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(past("el viernes"), ["2026-11-20"]);
        assert_eq!(past("last Friday"), ["2026-11-20"]);
        assert_eq!(past("ayer"), ["2026-11-21"]);
        assert_eq!(past("20/11"), ["2026-11-20"]);
        assert_eq!(past("el 15/3"), ["2026-03-15"]);
        assert_eq!(past("el 25"), ["2026-10-25"]);
        assert_eq!(past("el 3"), ["2026-11-03"]);
        assert_eq!(past("el proximo viernes"), ["2026-11-27"]);
    }

    #[test]
    fn past_and_relative_days() {
        // TODAY is Sunday 22 November 2026.
        assert_eq!(one("ayer"), "2026-11-21");
        assert_eq!(one("anteayer"), "2026-11-20");
        assert_eq!(one("el viernes pasado"), "2026-11-20");
        assert_eq!(one("last Friday"), "2026-11-20");
        assert_eq!(one("el viernes"), "2026-11-27");
        assert_eq!(one("la semana que viene"), "2026-11-23");
        assert_eq!(one("lo antes posible"), "2026-11-22");
        assert_eq!(one("the first free slot"), "2026-11-22");
    }

    #[test]
    fn a_day_and_month_that_just_passed_stays_in_the_past() {
        assert_eq!(one("el 20/11"), "2026-11-20");
        assert_eq!(one("el 15 de octubre"), "2026-10-15");
        // Further back than 45 days: next year's.
        assert_eq!(one("el 15/3"), "2027-03-15");
        assert_eq!(one("el 30/11"), "2026-11-30");
    }

    #[test]
    fn from_one_day_to_another_keeps_the_second() {
        assert_eq!(dates("quiero mover el turno del lunes para el viernes"), ["2026-11-27"]);
        assert_eq!(dates("move it from Monday to Friday"), ["2026-11-27"]);
        assert_eq!(dates("el lunes o el viernes"), ["2026-11-23", "2026-11-27"]);
    }

    #[test]
    fn relative_days() {
        assert_eq!(one("hoy"), "2026-11-22");
        assert_eq!(one("Mañana"), "2026-11-23");
        assert_eq!(one("pasado mañana"), "2026-11-24");
        assert_eq!(one("today please"), "2026-11-22");
        assert_eq!(one("tomorrow"), "2026-11-23");
        assert_eq!(one("the day after tomorrow"), "2026-11-24");
    }

    #[test]
    fn morning_is_not_tomorrow() {
        assert!(dates("a la mañana").is_empty());
        assert!(dates("por la mañana").is_empty());
        assert!(dates("a las 9 de la mañana").is_empty());
        assert_eq!(dates("mañana por la mañana"), ["2026-11-23"]);
    }

    #[test]
    fn weekdays_are_the_next_one() {
        assert_eq!(one("el martes"), "2026-11-24");
        assert_eq!(one("el próximo martes"), "2026-11-24");
        assert_eq!(one("el martes que viene"), "2026-11-24");
        assert_eq!(one("el sábado"), "2026-11-28");
        // Today is Sunday: "el domingo" is next week's, "este domingo" today.
        assert_eq!(one("el domingo"), "2026-11-29");
        assert_eq!(one("este domingo"), "2026-11-22");
        assert_eq!(one("next tuesday"), "2026-11-24");
        assert_eq!(one("on Wednesday"), "2026-11-25");
        assert_eq!(one("el miércoles"), "2026-11-25");
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(one("26/11"), "2026-11-26");
        assert_eq!(one("26/11/2026"), "2026-11-26");
        assert_eq!(one("26-11"), "2026-11-26");
        assert_eq!(one("26/11/27"), "2027-11-26");
        assert_eq!(one("2026-12-01"), "2026-12-01");
        assert_eq!(one("26.11.2026"), "2026-11-26");
        // Day/month first; swapped only when impossible otherwise.
        assert_eq!(one("11/26"), "2026-11-26");
        assert_eq!(one("3/12"), "2026-12-03");
        // Already past this year: next year.
        assert_eq!(one("5/1"), "2027-01-05");
        assert!(dates("31/02").is_empty());
        assert!(dates("45/45").is_empty());
    }

    #[test]
    fn month_names() {
        assert_eq!(one("26 de noviembre"), "2026-11-26");
        assert_eq!(one("el 26 de Noviembre de 2027"), "2027-11-26");
        assert_eq!(one("1º de diciembre"), "2026-12-01");
        assert_eq!(one("november 26"), "2026-11-26");
        assert_eq!(one("November 26th, 2026"), "2026-11-26");
        assert_eq!(one("26th november"), "2026-11-26");
        assert_eq!(one("the 3rd of December"), "2026-12-03");
        assert_eq!(one("3 de marzo"), "2027-03-03");
        assert_eq!(one("el lunes 30 de noviembre"), "2026-11-30");
        assert_eq!(one("mañana lunes"), "2026-11-23");
        assert_eq!(one("hoy domingo"), "2026-11-22");
        assert_eq!(dates("mañana o el martes"), ["2026-11-23", "2026-11-24"]);
    }

    #[test]
    fn day_of_month_only() {
        assert_eq!(one("el 26"), "2026-11-26");
        assert_eq!(one("para el día 26"), "2026-11-26");
        assert_eq!(one("el 22"), "2026-11-22");
        assert_eq!(one("el 5"), "2026-12-05");
        // November has no 31st.
        assert_eq!(one("el 31"), "2026-12-31");
        assert_eq!(one("the 28th"), "2026-11-28");
        assert_eq!(one("el lunes 30"), "2026-11-30");
        assert!(dates("el 10:30").is_empty());
        assert!(dates("el 10 hs").is_empty());
        assert!(dates("el 45").is_empty());
    }

    #[test]
    fn bare_numbers_are_days_only_when_a_date_is_asked() {
        assert!(dates("26").is_empty());
        assert_eq!(dates_asking("26", true), ["2026-11-26"]);
        assert!(dates_asking("99", true).is_empty());
    }

    #[test]
    fn several_dates_in_order() {
        assert_eq!(dates("hoy o el 26/11"), ["2026-11-22", "2026-11-26"]);
    }

    #[test]
    fn documents_and_times_are_not_dates() {
        assert!(dates("12.345.678").is_empty());
        assert!(dates("10:30").is_empty());
        assert!(dates("10.30").is_empty());
        assert!(dates("a las 10").is_empty());
    }
}
