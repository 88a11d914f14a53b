//! What the agenda, conversations and dashboard pages share: the time a request runs at, the
//! database error page, clinic-local formatting, links with ids in them, and query fields.

use jiff::civil::Date;
use jiff::{Timestamp, Zoned};
use poem::http::StatusCode;

use crate::server::AppState;

/// Now in the clinic's zone: the pinned test clock when the server has one, else the clock.
pub(super) fn now(state: &AppState) -> Zoned {
    let tz = state.service.bot().clinic.tz.clone();
    state
        .pinned_now
        .and_then(|dt| dt.to_zoned(tz).ok())
        .unwrap_or_else(|| state.service.now())
}

/// The database did not answer: a 503 with a plain sentence (the cause goes to the log).
pub(super) fn internal(e: impl std::fmt::Display) -> poem::Error {
    tracing::error!("console: {e}");
    poem::Error::from_string(
        "the database did not answer; try again",
        StatusCode::SERVICE_UNAVAILABLE,
    )
}

/// "23/11 10:00" in the clinic's zone.
pub(super) fn local(ts: Timestamp, state: &AppState) -> String {
    ts.to_zoned(state.service.bot().clinic.tz.clone())
        .strftime("%d/%m %H:%M")
        .to_string()
}

/// The instants a clinic-local day runs between, `[start, end)`.
pub(super) fn day_range(day: Date, state: &AppState) -> Option<(Timestamp, Timestamp)> {
    let tz = state.service.bot().clinic.tz.clone();
    let start = day.to_zoned(tz.clone()).ok()?.timestamp();
    let end = day.tomorrow().ok()?.to_zoned(tz).ok()?.timestamp();
    Some((start, end))
}

/// A form field: trimmed, `None` when blank, at most 200 characters.
pub(super) fn field(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect())
}

/// "YYYY-MM-DD", strictly.
pub(super) fn parse_day(s: &str) -> Option<Date> {
    let s = s.trim();
    s.parse::<Date>().ok().filter(|_| s.len() == 10)
}

/// Percent-encodes a path segment or query value (conversation ids hold `:` and `+`).
pub(super) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The phone number of a patient's address on a phone channel ("whatsapp:+549…" → "+549…").
pub(super) fn phone_of(channel: &str, user: &str) -> Option<String> {
    match channel {
        "whatsapp" | "sms" | "voice" => {
            let digits: String = user.chars().filter(char::is_ascii_digit).collect();
            (!digits.is_empty()).then(|| format!("+{digits}"))
        }
        _ => None,
    }
}

/// The reason code of a refusal, if it is one we have words for (anything else becomes
/// `refused`): pages never echo what a query string says.
pub(super) fn known_reason(code: &str) -> &'static str {
    super::i18n_pages::REASONS
        .iter()
        .find(|r| **r == code)
        .copied()
        .unwrap_or("refused")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_survive_a_link_and_phones_are_read_from_addresses() {
        assert_eq!(super::enc("whatsapp:+54 9"), "whatsapp%3A%2B54%209");
        assert_eq!(
            super::phone_of("whatsapp", "whatsapp:+5491155550000").as_deref(),
            Some("+5491155550000")
        );
        assert_eq!(super::phone_of("api", "x1"), None);
        assert_eq!(super::known_reason("taken"), "taken");
        assert_eq!(super::known_reason("<script>"), "refused");
        assert_eq!(super::parse_day("2026-11-23").map(|d| d.day()), Some(23));
        assert_eq!(super::parse_day("23/11/2026"), None);
    }
}
