//! The held slots of each professional over the booking horizon, kept between turns.
//!
//! Every availability search and every booking attempt reads the bookings of the candidate
//! professionals for the days it looks at; on a busy agenda that is hundreds of rows, read
//! again for each patient who asks. Here they are read once for the whole horizon and kept
//! while nothing could have changed them:
//!
//! - **A write here forgets everything.** Every store call that books, cancels, moves or
//!   deletes an appointment bumps a generation (after its commit, when it runs in a turn's
//!   transaction), and an entry read under an older generation is not used. A reader takes the
//!   generation *before* its query, so a read that raced a commit is never kept as current.
//! - **Another process's writes** (replicas on one SurrealDB server) are seen within
//!   [`FRESH`]: there, an entry older than that is read again. An embedded database
//!   (`mem://`, `surrealkv://`) is only ever written by this process, through this store.
//! - **It only decides what is offered.** Booking is guarded by the `appointment_slot` unique
//!   index, never by this cache: a slot offered from a stale entry is refused as taken
//!   (which also forgets the cache, so the alternatives offered next are read afresh).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::civil::{Date, Time};

/// On a database other processes write too (a SurrealDB server shared by replicas), how long
/// an entry is used without reading again: the most another replica's write goes unseen in
/// what is offered. An embedded database has no other writer: its entries last until a write.
pub(super) const FRESH: Duration = Duration::from_secs(1);

/// Held (date, time) of one professional from `from` to `to`, both included, as read at
/// `read_at` under `generation`.
struct Entry {
    generation: u64,
    read_at: Instant,
    from: Date,
    to: Date,
    held: Vec<(Date, Time)>,
}

/// One per database, shared by every clone of its store.
#[derive(Default)]
pub(super) struct SlotCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
    /// [`FRESH`] on a shared database; None on an embedded one.
    max_age: Option<Duration>,
}

impl SlotCache {
    /// The cache of a database that other processes write too (`shared`) or not.
    pub fn new(shared: bool) -> SlotCache {
        SlotCache {
            max_age: shared.then_some(FRESH),
            ..SlotCache::default()
        }
    }

    /// Whether other processes write the database (entries then age out).
    pub fn shared(&self) -> bool {
        self.max_age.is_some()
    }

    /// The generation to read under: take it before the query whose rows [`SlotCache::put`]
    /// stores.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Appointments changed: nothing read before now is used again.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The held slots of `professional` from `from` through `to` and the last day the entry
    /// covers (at least `to`), when a current entry covers that range.
    pub fn get(&self, professional: &str, from: Date, to: Date) -> Option<(Vec<(Date, Time)>, Date)> {
        let generation = self.generation();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.get(professional)?;
        let current = e.generation == generation && self.max_age.is_none_or(|age| e.read_at.elapsed() < age);
        (current && e.from <= from && to <= e.to).then(|| {
            let held = e.held.iter().filter(|(d, _)| *d >= from).copied().collect();
            (held, e.to)
        })
    }

    /// Keeps what was read under `generation` (nothing, if appointments changed since).
    pub fn put(&self, professional: &str, generation: u64, from: Date, to: Date, held: Vec<(Date, Time)>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if generation != self.generation() {
            return;
        }
        entries.insert(
            professional.to_string(),
            Entry {
                generation,
                read_at: Instant::now(),
                from,
                to,
                held,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn t(s: &str) -> Time {
        s.parse().unwrap()
    }

    #[test]
    fn an_entry_serves_the_ranges_inside_it_until_something_is_written() {
        let cache = SlotCache::default();
        let g = cache.generation();
        let held = vec![(d("2026-11-24"), t("09:00")), (d("2026-11-30"), t("10:00"))];
        cache.put("Dr. A", g, d("2026-11-23"), d("2027-01-22"), held);
        let (got, to) = cache.get("Dr. A", d("2026-11-26"), d("2026-12-09")).expect("covered");
        assert_eq!(got, vec![(d("2026-11-30"), t("10:00"))]);
        assert_eq!(to, d("2027-01-22"));
        // Outside the range read, or for someone never read: not answered.
        assert!(cache.get("Dr. A", d("2026-11-22"), d("2026-12-09")).is_none());
        assert!(cache.get("Dr. A", d("2026-11-26"), d("2027-01-23")).is_none());
        assert!(cache.get("Dr. B", d("2026-11-26"), d("2026-12-09")).is_none());
        cache.forget();
        assert!(cache.get("Dr. A", d("2026-11-26"), d("2026-12-09")).is_none());
    }

    #[test]
    fn on_a_shared_database_an_old_entry_is_read_again() {
        let cache = SlotCache::new(true);
        cache.put(
            "Dr. A",
            cache.generation(),
            d("2026-11-23"),
            d("2027-01-22"),
            Vec::new(),
        );
        assert!(cache.get("Dr. A", d("2026-11-23"), d("2026-11-23")).is_some());
        // Aged without waiting: the entry is dated back past FRESH.
        if let Some(e) = cache.entries.lock().unwrap().get_mut("Dr. A") {
            e.read_at = Instant::now()
                .checked_sub(FRESH)
                .expect("a monotonic clock older than a second");
        }
        assert!(cache.get("Dr. A", d("2026-11-23"), d("2026-11-23")).is_none());
        // Embedded: only a write makes an entry old.
        let embedded = SlotCache::new(false);
        embedded.put(
            "Dr. A",
            embedded.generation(),
            d("2026-11-23"),
            d("2027-01-22"),
            Vec::new(),
        );
        if let Some(e) = embedded.entries.lock().unwrap().get_mut("Dr. A") {
            e.read_at = Instant::now()
                .checked_sub(FRESH * 60)
                .expect("a monotonic clock older than a minute");
        }
        assert!(embedded.get("Dr. A", d("2026-11-23"), d("2026-11-23")).is_some());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = SlotCache::default();
        let before = cache.generation();
        // The query ran, and meanwhile a booking committed.
        cache.forget();
        cache.put("Dr. A", before, d("2026-11-23"), d("2027-01-22"), Vec::new());
        assert!(cache.get("Dr. A", d("2026-11-23"), d("2026-11-23")).is_none());
    }
}
