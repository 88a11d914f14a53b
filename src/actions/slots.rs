//! Where appointments can go: the professionals' weekly schedules cut into
//! `appointment_minutes` steps, clipped to the clinic's opening hours, minus holidays, the
//! past and what is already booked. Shared by availability, booking and rescheduling.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::flow::clinic::{Clinic, Professional, WeekdayKey};
use crate::store::time::{fmt_date, fmt_hhmm};
use crate::store::{Appointment, Store, StoreError};

/// How many alternatives are offered.
pub(crate) const MAX_ALTERNATIVES: usize = 3;

/// Start times of `prof`'s grid on `date`: each schedule range stepped by the appointment
/// length from its start, keeping the slots that end inside the range and lie wholly inside
/// the clinic's opening hours (so a holiday or a closed day has none).
pub(crate) fn grid(clinic: &Clinic, prof: &Professional, date: Date) -> Vec<Time> {
    let opening = clinic.opening(date);
    let step = SignedDuration::from_mins(i64::from(clinic.appointment_minutes.max(1)));
    let Some(ranges) = prof.schedule.get(&WeekdayKey::of(date.weekday())) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for range in ranges {
        let mut t = range.start;
        // `checked_add` fails past midnight, which also ends the range.
        while let Ok(end) = t.checked_add(step) {
            if end > range.end {
                break;
            }
            if opening.iter().any(|o| o.start <= t && end <= o.end) {
                out.push(t);
            }
            t = end;
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The clinic's local date at `now`.
fn today(clinic: &Clinic, now: Timestamp) -> Date {
    now.to_zoned(clinic.tz.clone()).date()
}

/// The last day appointments can be booked on: `booking_horizon_days` after today.
pub(crate) fn last_day(clinic: &Clinic, now: Timestamp) -> Date {
    let today = today(clinic, now);
    today
        .checked_add(jiff::Span::new().days(i64::from(clinic.booking_horizon_days)))
        .unwrap_or(today)
}

/// The instant a local date and time in the clinic's zone denote.
pub(crate) fn starts_at(clinic: &Clinic, date: Date, time: Time) -> Option<Timestamp> {
    date.to_datetime(time)
        .to_zoned(clinic.tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// One free slot offered to the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alt {
    pub date: Date,
    pub time: Time,
    pub professional: String,
}

impl Alt {
    pub fn to_json(&self) -> Value {
        json!({
            "date": fmt_date(self.date),
            "time": fmt_hhmm(self.time),
            "professional": self.professional,
        })
    }
}

pub(crate) fn alts_json(alts: &[Alt]) -> Value {
    Value::Array(alts.iter().map(Alt::to_json).collect())
}

/// Free-slot queries over a fixed window, with the bookings of that window loaded once.
pub(crate) struct Finder<'a> {
    pub clinic: &'a Clinic,
    /// Candidate professionals, in order of preference.
    pub pros: Vec<&'a Professional>,
    pub now: Timestamp,
    pub from: Date,
    pub to: Date,
    booked: HashSet<(String, Date, Time)>,
    /// The current slot of an appointment being moved: free for the move itself, but not
    /// worth offering as an alternative.
    current: Option<(String, Date, Time)>,
    /// What the professionals' external calendars say (empty without calendars; see
    /// [`Finder::with_calendars`]).
    external: std::collections::HashMap<String, crate::calendars::Availability>,
    /// The last day whose bookings were read (`to`, unless loaded with [`Finder::load_near`]
    /// past the store's slot cache).
    loaded_to: Date,
    /// Set when a search asked about a day after `loaded_to`: its answer is not to be used.
    missed: Option<&'a AtomicBool>,
}

impl<'a> Finder<'a> {
    /// Loads the bookings from `from` to the clinic's last bookable day (today +
    /// `booking_horizon_days`). `moving` is an appointment being rescheduled: its own slot
    /// counts as free.
    pub async fn load(
        store: &Store,
        clinic: &'a Clinic,
        pros: Vec<&'a Professional>,
        now: Timestamp,
        from: Date,
        moving: Option<&Appointment>,
    ) -> Result<Finder<'a>, StoreError> {
        Self::load_days(store, clinic, pros, now, from, moving, None).await
    }

    /// Like [`Finder::load`], needing only the bookings of the `days` days from `from` (the
    /// store may answer for more: its slot cache covers the whole horizon): a search that
    /// looks at a day after those read sets `missed` (and finds nothing free there), and its
    /// caller searches again with [`Finder::load`]. What a search answers without setting it
    /// depends only on the days read, so it is the answer of the full load.
    pub async fn load_near(
        store: &Store,
        clinic: &'a Clinic,
        pros: Vec<&'a Professional>,
        now: Timestamp,
        from: Date,
        days: i64,
        missed: &'a AtomicBool,
    ) -> Result<Finder<'a>, StoreError> {
        Self::load_days(store, clinic, pros, now, from, None, Some((days, missed))).await
    }

    async fn load_days(
        store: &Store,
        clinic: &'a Clinic,
        pros: Vec<&'a Professional>,
        now: Timestamp,
        from: Date,
        moving: Option<&Appointment>,
        near: Option<(i64, &'a AtomicBool)>,
    ) -> Result<Finder<'a>, StoreError> {
        let to = last_day(clinic, now).max(from);
        let wanted_to = match near {
            Some((days, _)) => from
                .checked_add(jiff::Span::new().days(days.max(1) - 1))
                .unwrap_or(to)
                .min(to),
            None => to,
        };
        // Only the candidates' bookings: each is one index range, whatever the table holds.
        // The store answers from its slot cache when it can, and then covers the whole
        // horizon, which spares a near search its second read.
        let names: Vec<&str> = pros.iter().map(|p| p.name.as_str()).collect();
        let span = (today(clinic, now).min(from), to);
        let (held, loaded_to) = store.held_slots(&names, (from, wanted_to), span).await?;
        let mut booked: HashSet<_> = held.into_iter().collect();
        let current = moving.map(|a| (a.professional.clone(), a.date, a.time));
        if let Some(c) = &current {
            booked.remove(c);
        }
        Ok(Finder {
            clinic,
            pros,
            now,
            from,
            to,
            booked,
            current,
            external: Default::default(),
            loaded_to,
            missed: near.map(|(_, m)| m),
        })
    }

    /// Adds what the professionals' external calendars say about the window (no calendar
    /// configured: no call, nothing changes). A calendar that cannot be asked is an error
    /// the action answers as `calendar_unavailable`.
    pub async fn with_calendars(mut self) -> Result<Finder<'a>, crate::calendars::CalendarError> {
        self.external =
            crate::calendars::load_external(self.clinic, &self.pros, (self.from, self.to), self.now).await?;
        Ok(self)
    }

    /// Counts a slot as taken (a booking its calendar just refused).
    pub fn exclude(&mut self, professional: &str, date: Date, time: Time) {
        self.booked.insert((professional.to_string(), date, time));
    }

    fn free(&self, prof: &Professional, date: Date, time: Time) -> bool {
        if let Some(missed) = self.missed.filter(|_| date > self.loaded_to) {
            // Not read: the caller's answer is discarded (see `load_near`).
            missed.store(true, Ordering::Relaxed);
            return false;
        }
        let Some(start) = starts_at(self.clinic, date, time) else {
            return false;
        };
        let end = start
            .checked_add(SignedDuration::from_mins(i64::from(self.clinic.appointment_minutes)))
            .unwrap_or(start);
        let key = (prof.name.clone(), date, time);
        // The event of an appointment being moved is its own: it does not make its slot busy.
        let own = self.current.as_ref() == Some(&key);
        !self.booked.contains(&key)
            && start > self.now
            && (own || self.external.get(&prof.name).is_none_or(|a| a.allows(start, end)))
    }

    /// Professionals whose grid has `time` on `date` (free or not), in preference order.
    pub fn scheduled_at(&self, date: Date, time: Time) -> Vec<&'a Professional> {
        self.pros
            .iter()
            .copied()
            .filter(|p| grid(self.clinic, p, date).contains(&time))
            .collect()
    }

    /// Professionals free at that date and time, in preference order.
    pub fn free_at(&self, date: Date, time: Time) -> Vec<&'a Professional> {
        self.scheduled_at(date, time)
            .into_iter()
            .filter(|p| self.free(p, date, time))
            .collect()
    }

    /// Free times of a day (other than the current slot of an appointment being moved), each
    /// with the first free professional, earliest first.
    pub fn free_on(&self, date: Date) -> Vec<Alt> {
        let mut out: Vec<Alt> = Vec::new();
        for prof in &self.pros {
            for time in grid(self.clinic, prof, date) {
                let current = self
                    .current
                    .as_ref()
                    .is_some_and(|(p, d, t)| *p == prof.name && *d == date && *t == time);
                if !current && self.free(prof, date, time) && !out.iter().any(|a| a.time == time) {
                    out.push(Alt {
                        date,
                        time,
                        professional: prof.name.clone(),
                    });
                }
            }
        }
        // Stable: at equal times the preferred professional (pushed first) stays.
        out.sort_by_key(|a| a.time);
        out
    }

    /// Up to `n` free slots near `date` / `around`: that day first (closest to `around` when
    /// given, else earliest), then the following days, earliest first.
    pub fn alternatives(&self, date: Date, around: Option<Time>, n: usize) -> Vec<Alt> {
        // A date before the window (in the past) starts the search at the window's first day.
        let first = date.max(self.from);
        let mut same_day = self.free_on(first);
        if let Some(around) = around.filter(|_| first == date) {
            same_day.sort_by_key(|a| (minutes_apart(a.time, around), a.time));
        }
        let mut out: Vec<Alt> = same_day.into_iter().take(n).collect();
        let mut day = first;
        while out.len() < n {
            day = match day.tomorrow() {
                Ok(d) if d <= self.to => d,
                _ => break,
            };
            out.extend(self.free_on(day).into_iter().take(n - out.len()));
        }
        out
    }
}

impl Finder<'_> {
    /// Up to `n` free slots inside `[from, to)`: that day first, then the following days,
    /// earliest first (a preference such as "a la tarde").
    pub fn alternatives_within(&self, date: Date, (from, to): (Time, Time), n: usize) -> Vec<Alt> {
        let mut out = Vec::new();
        let mut day = date.max(self.from);
        while out.len() < n && day <= self.to {
            let inside = self.free_on(day).into_iter().filter(|a| a.time >= from && a.time < to);
            out.extend(inside.take(n - out.len()));
            day = match day.tomorrow() {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        out
    }

    /// Up to `n` free slots nearest to `[from, to)` when none is inside it: the first day from
    /// `date` with free times, those closest to the window first.
    pub fn nearest_to_window(&self, date: Date, (from, to): (Time, Time), n: usize) -> Vec<Alt> {
        let mut day = date.max(self.from);
        while day <= self.to {
            let mut free = self.free_on(day);
            if !free.is_empty() {
                let off = |t: Time| {
                    if t < from {
                        minutes_apart(t, from)
                    } else {
                        minutes_apart(t, to)
                    }
                };
                free.sort_by_key(|a| (off(a.time), a.time));
                free.truncate(n);
                free.sort_by_key(|a| a.time);
                return free;
            }
            day = match day.tomorrow() {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        Vec::new()
    }
}

fn minutes_apart(a: Time, b: Time) -> i64 {
    let mins = |t: Time| i64::from(t.hour()) * 60 + i64::from(t.minute());
    (mins(a) - mins(b)).abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::testutil::clinic;

    fn t(s: &str) -> Time {
        s.parse().unwrap()
    }

    #[test]
    fn grid_is_clipped_to_opening_hours_and_skips_holidays() {
        let c = clinic();
        let ruiz = &c.specialties[1].professionals[0];
        // Tuesday: schedule 18:00-21:00, clinic closes at 20:00.
        let tue: Date = "2025-06-10".parse().unwrap();
        assert_eq!(grid(&c, ruiz, tue), [t("18:00"), t("18:30"), t("19:00"), t("19:30")]);
        let perez = &c.specialties[0].professionals[0];
        let mon: Date = "2025-06-09".parse().unwrap();
        assert_eq!(grid(&c, perez, mon).len(), 8);
        assert_eq!(grid(&c, perez, mon).last(), Some(&t("11:30")));
        // Friday 20 June is a holiday; Sunday has no hours.
        assert!(grid(&c, perez, "2025-06-20".parse().unwrap()).is_empty());
        assert!(grid(&c, perez, "2025-06-15".parse().unwrap()).is_empty());
    }

    #[test]
    fn starts_at_uses_the_clinic_zone() {
        let c = clinic();
        let at = starts_at(&c, "2025-06-10".parse().unwrap(), t("09:00")).unwrap();
        assert_eq!(at, "2025-06-10T12:00:00Z".parse::<Timestamp>().unwrap());
    }
}
