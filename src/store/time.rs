//! How instants are stored.
//!
//! Every instant is written as a fixed-width UTC string, `2025-06-09T12:10:00.000Z`. Fixed width
//! makes plain string comparison in SurrealQL (`due_at <= $now`) the same as comparing
//! instants, and the JSON that crosses the SDK stays a string both ways (SurrealDB does not
//! coerce strings into `datetime` fields, and its `datetime` comes back in a variable-width
//! format).

use jiff::Timestamp;
use jiff::civil::{Date, Time};

/// The stored form of an instant (UTC, millisecond precision, always 24 characters).
pub fn fmt_instant(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The UTC day of an instant stored with [`fmt_instant`], `2025-06-09` (what SurrealQL's
/// `string::slice(at, 0, 10)` gives): the sessions' indexed `updated_day` and its bounds.
pub fn utc_day(instant: &str) -> &str {
    instant.get(..10).unwrap_or(instant)
}

/// Serde adapter for `jiff::Timestamp` fields stored with [`fmt_instant`].
pub mod instant {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_instant(*ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `Option<jiff::Timestamp>`; `None` is skipped on write (see
/// `skip_serializing_if`) because SurrealDB's `option<string>` accepts NONE but not NULL.
pub mod opt_instant {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&super::fmt_instant(*ts)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// "HH:MM" for clock times (the format flows and patients use; seconds are never meaningful
/// for appointments).
pub fn fmt_hhmm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// Serde adapter for `jiff::civil::Time` stored as "HH:MM".
pub mod hhmm {
    use jiff::civil::Time;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_hhmm(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let s = String::deserialize(d)?;
        crate::flow::clinic::parse_hhmm(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a time like 08:30")))
    }
}

/// "YYYY-MM-DD"; also the serde form of `jiff::civil::Date`, so stored dates sort as strings.
pub fn fmt_date(d: Date) -> String {
    d.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_have_fixed_width_and_sort_as_strings() {
        let a: Timestamp = "2025-06-09T12:10:00Z".parse().unwrap();
        let b: Timestamp = "2025-06-09T12:10:00.5Z".parse().unwrap();
        let c: Timestamp = "2025-06-10T01:00:00.123456Z".parse().unwrap();
        let (fa, fb, fc) = (fmt_instant(a), fmt_instant(b), fmt_instant(c));
        assert_eq!(fa, "2025-06-09T12:10:00.000Z");
        assert_eq!(fb, "2025-06-09T12:10:00.500Z");
        assert_eq!(fc, "2025-06-10T01:00:00.123Z");
        assert!(fa < fb && fb < fc);
        assert_eq!(fa.parse::<Timestamp>().unwrap(), a);
        assert_eq!(utc_day(&fc), "2025-06-10");
    }

    #[test]
    fn hhmm_drops_seconds() {
        assert_eq!(fmt_hhmm(Time::new(8, 5, 59, 0).unwrap()), "08:05");
    }
}
