//! The console's dashboard: counts per clinic-local day, aggregated by the database.
//!
//! Every statement reads one index range (`$from <= field < $to`, see schema.rs) and groups
//! in SurrealDB by the 15-minute bucket of the instant (`time::floor`); only the buckets
//! cross the wire (at most 96 a day per figure), and they are folded into the clinic's days
//! here, which is exact for any time zone (every zone's offset, DST included, is a multiple
//! of 15 minutes). No turn, appointment or reminder is loaded.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Value, json};

use super::time::fmt_instant;
use super::{Store, StoreError, rows};

/// One clinic-local day's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayStats {
    pub day: Date,
    /// Conversations started (their first turn that day).
    pub conversations: u64,
    /// Appointments booked, by anyone (conversations, API, console).
    pub bookings: u64,
    pub cancellations: u64,
    /// Conversations handed over to staff.
    pub handoffs: u64,
    pub reminders_sent: u64,
    /// Of the reminders sent that day: appointments the patient confirmed, and cancelled.
    pub reminders_confirmed: u64,
    pub reminders_cancelled: u64,
    /// LLM calls that went out (cached answers cost nothing and are not counted).
    pub llm_calls: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// Where unfinished conversations stand: `flow.state` and how many are there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DropOff {
    pub flow: String,
    pub state: String,
    pub conversations: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Every day of the range, oldest first (days with nothing are zeros).
    pub days: Vec<DayStats>,
    /// Most conversations first.
    pub drop_off: Vec<DropOff>,
}

/// The rows each figure reads, with `$from` and `$to` bound: each must be an index range
/// (checked by the EXPLAIN test below). The aggregating statements select from these.
pub const SOURCES: [(&str, &str); 7] = [
    (
        "first turns (conversations started)",
        "SELECT at FROM turn WHERE at >= $from AND at < $to AND seq = 1",
    ),
    (
        "appointments booked",
        "SELECT created_at FROM appointment WHERE created_at >= $from AND created_at < $to",
    ),
    (
        "appointments cancelled",
        "SELECT cancelled_at FROM appointment WHERE cancelled_at >= $from AND cancelled_at < $to",
    ),
    (
        "handoffs",
        "SELECT created_at FROM escalation WHERE created_at >= $from AND created_at < $to",
    ),
    (
        "reminders sent",
        "SELECT sent_at, appointment FROM reminder WHERE sent_at >= $from AND sent_at < $to",
    ),
    (
        "turns (LLM use)",
        "SELECT at, llm_calls FROM turn WHERE at >= $from AND at < $to AND llm_tokens != NONE",
    ),
    (
        "conversations active since (drop-off)",
        "SELECT stack, waiting_for_staff FROM session WHERE updated_day >= $from_day AND updated_at >= $from",
    ),
];

/// One statement per figure, in the order [`fold`] reads them.
const AGGREGATES: &str = "
SELECT time::floor(<datetime> at, 15m) AS b, count() AS n FROM turn
    WHERE at >= $from AND at < $to AND seq = 1 GROUP BY b;
SELECT time::floor(<datetime> created_at, 15m) AS b, count() AS n FROM appointment
    WHERE created_at >= $from AND created_at < $to GROUP BY b;
SELECT time::floor(<datetime> cancelled_at, 15m) AS b, count() AS n FROM appointment
    WHERE cancelled_at >= $from AND cancelled_at < $to GROUP BY b;
SELECT time::floor(<datetime> created_at, 15m) AS b, count() AS n FROM escalation
    WHERE created_at >= $from AND created_at < $to GROUP BY b;
SELECT b, count() AS n, math::sum(confirmed) AS confirmed, math::sum(cancelled) AS cancelled FROM (
    SELECT time::floor(<datetime> sent_at, 15m) AS b,
        IF type::record('appointment', appointment).confirmed_at THEN 1 ELSE 0 END AS confirmed,
        IF type::record('appointment', appointment).status = 'cancelled' THEN 1 ELSE 0 END AS cancelled
    FROM reminder WHERE sent_at >= $from AND sent_at < $to
) GROUP BY b;
SELECT b, math::sum(calls) AS calls, math::sum(tin) AS tin, math::sum(tout) AS tout FROM (
    SELECT time::floor(<datetime> at, 15m) AS b,
        array::len(llm_calls[WHERE outcome != 'cached']) AS calls,
        math::sum(llm_calls.tokens_in) AS tin, math::sum(llm_calls.tokens_out) AS tout
    FROM turn WHERE at >= $from AND at < $to AND llm_tokens != NONE
) GROUP BY b;
SELECT flow, state, count() AS n FROM (
    SELECT array::last(stack).flow AS flow, array::last(stack).state AS state FROM session
    WHERE updated_day >= $from_day AND updated_at >= $from AND waiting_for_staff = false AND array::len(stack) > 0
) GROUP BY flow, state;
";

/// The instant a clinic-local day starts.
fn midnight(day: Date, tz: &TimeZone) -> Result<Timestamp, StoreError> {
    day.to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|e| StoreError::Query(format!("the start of {day}: {e}")))
}

impl Store {
    /// The dashboard's figures for the clinic-local days `first..=last` in `tz`.
    pub async fn stats(&self, first: Date, last: Date, tz: &TimeZone) -> Result<Stats, StoreError> {
        let after = last
            .tomorrow()
            .map_err(|e| StoreError::Query(format!("the day after {last}: {e}")))?;
        let from = fmt_instant(midnight(first, tz)?);
        let vars = json!({
            // Sessions are indexed by the UTC day of their last save (schema.rs).
            "from_day": super::time::utc_day(&from),
            "from": from,
            "to": fmt_instant(midnight(after, tz)?),
        });
        let mut resp = self.run(AGGREGATES, vars).await?;
        let mut days: BTreeMap<Date, DayStats> = BTreeMap::new();
        let mut day = first;
        while day <= last {
            days.insert(
                day,
                DayStats {
                    day,
                    ..Default::default()
                },
            );
            day = match day.tomorrow() {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        let setters: [fn(&mut DayStats, &Value); 6] = [
            |d, r| d.conversations += n(r, "n"),
            |d, r| d.bookings += n(r, "n"),
            |d, r| d.cancellations += n(r, "n"),
            |d, r| d.handoffs += n(r, "n"),
            |d, r| {
                d.reminders_sent += n(r, "n");
                d.reminders_confirmed += n(r, "confirmed");
                d.reminders_cancelled += n(r, "cancelled");
            },
            |d, r| {
                d.llm_calls += n(r, "calls");
                d.tokens_in += n(r, "tin");
                d.tokens_out += n(r, "tout");
            },
        ];
        for (i, set) in setters.iter().enumerate() {
            for row in rows(&mut resp, i)? {
                let bucket = row
                    .get("b")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<Timestamp>().ok())
                    .ok_or_else(|| StoreError::Decode {
                        what: "dashboard bucket",
                        reason: format!("no instant in {row}"),
                    })?;
                if let Some(d) = days.get_mut(&bucket.to_zoned(tz.clone()).date()) {
                    set(d, &row);
                }
            }
        }
        let mut drop_off: Vec<DropOff> = rows(&mut resp, setters.len())?
            .iter()
            .map(|r| DropOff {
                flow: text(r, "flow"),
                state: text(r, "state"),
                conversations: n(r, "n"),
            })
            .collect();
        drop_off.sort_by(|a, b| b.conversations.cmp(&a.conversations).then(a.flow.cmp(&b.flow)));
        Ok(Stats {
            days: days.into_values().collect(),
            drop_off,
        })
    }
}

fn n(row: &Value, key: &str) -> u64 {
    row.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text(row: &Value, key: &str) -> String {
    row.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::*;
    use crate::engine::session::{Frame, Session, Wait};
    use crate::lang::Lang;
    use crate::store::turns::sample_turn;
    use crate::store::{LlmCall, NewEscalation, NewReminder};

    fn tz() -> TimeZone {
        TimeZone::get("America/Argentina/Buenos_Aires").unwrap()
    }

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn every_source_is_an_index_range() {
        let store = mem().await;
        let vars =
            json!({ "from": "2026-11-01T03:00:00.000Z", "to": "2026-11-15T03:00:00.000Z", "from_day": "2026-11-01" });
        for (what, sql) in SOURCES {
            let mut resp = store.run(&format!("{sql} EXPLAIN"), vars.clone()).await.unwrap();
            let plan = Value::Array(rows(&mut resp, 0).unwrap()).to_string();
            assert!(
                plan.contains("IndexScan") && !plan.contains("TableScan"),
                "{what} is not an index range: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn figures_fall_on_the_clinic_local_day() {
        let store = mem().await;
        // 23 Nov 23:30 in Buenos Aires is 24 Nov 02:30 UTC: it counts on the 23rd.
        let late: Timestamp = "2026-11-24T02:30:00Z".parse().unwrap();
        let mut first = sample_turn("c1", 1, "hola");
        first.at = late;
        first.llm_tokens = Some(150);
        first.llm_calls = vec![
            LlmCall {
                purpose: "nlu".into(),
                tokens_in: 100,
                tokens_out: 20,
                latency_ms: 300,
                outcome: "ok".into(),
            },
            LlmCall {
                purpose: "nlu".into(),
                tokens_in: 0,
                tokens_out: 0,
                latency_ms: 0,
                outcome: "cached".into(),
            },
        ];
        store.append_turn(&first).await.unwrap();
        let mut second = sample_turn("c1", 2, "sí");
        second.at = "2026-11-24T13:00:00Z".parse().unwrap();
        store.append_turn(&second).await.unwrap();
        let mut other = sample_turn("c2", 1, "hola");
        other.at = "2026-11-24T13:05:00Z".parse().unwrap();
        store.append_turn(&other).await.unwrap();

        let mut new = crate::store::appointments::tests::booking(
            crate::store::appointments::tests::slot("Dr. Juan Pérez", "2026-11-30", "09:00"),
            "30111222",
        );
        new.created_at = late;
        let a = store.create_appointment(&new).await.unwrap();
        let reminder = NewReminder {
            appointment: a.id.clone(),
            session: "c1".into(),
            channel: "whatsapp".into(),
            user: "whatsapp:+5491100000000".into(),
            kind: "24h".into(),
            offset_minutes: 1440,
            due_at: "2026-11-24T13:00:00Z".parse().unwrap(),
            created_at: late,
        };
        let mut kept = crate::store::appointments::tests::booking(
            crate::store::appointments::tests::slot("Dr. Juan Pérez", "2026-11-30", "09:30"),
            "30111223",
        );
        kept.created_at = "2026-11-22T02:59:00Z".parse().unwrap();
        let kept = store.create_appointment(&kept).await.unwrap();
        for id in [&a.id, &kept.id] {
            let r = NewReminder {
                appointment: id.clone(),
                ..reminder.clone()
            };
            let r = store.create_reminder(&r).await.unwrap().unwrap();
            store
                .run(
                    "UPDATE type::record('reminder', $id) SET status = 'sent', sent_at = '2026-11-24T13:00:00.000Z'",
                    json!({ "id": r.id }),
                )
                .await
                .unwrap();
        }
        store
            .confirm_appointment(&kept.id, "2026-11-24T13:10:00Z".parse().unwrap())
            .await
            .unwrap();
        store
            .cancel_appointment(&a.id, "2026-11-24T14:00:00Z".parse().unwrap())
            .await
            .unwrap();
        store
            .create_escalation(&NewEscalation {
                session: "c2".into(),
                channel: "whatsapp".into(),
                user: "u".into(),
                reason: None,
                transcript: Vec::new(),
                created_at: "2026-11-24T13:06:00Z".parse().unwrap(),
            })
            .await
            .unwrap();
        // One conversation left half way through a booking, one idle, one with staff.
        for (id, stack, staff) in [("c1", true, false), ("c2", true, true), ("c3", false, false)] {
            let mut s = Session::new(id, "whatsapp", "u", Lang::Es);
            s.version = 1;
            s.waiting_for_staff = staff;
            if stack {
                s.stack.push(Frame {
                    flow: "book_appointment".into(),
                    state: "ask_document".into(),
                    slots: Default::default(),
                    wait: Wait::Slot("document".into()),
                    result: Value::Null,
                });
            }
            store.save_session(&s).await.unwrap();
        }

        let stats = store.stats(d("2026-11-22"), d("2026-11-24"), &tz()).await.unwrap();
        let days: Vec<Date> = stats.days.iter().map(|s| s.day).collect();
        assert_eq!(days, [d("2026-11-22"), d("2026-11-23"), d("2026-11-24")]);
        let (sun, mon, tue) = (&stats.days[0], &stats.days[1], &stats.days[2]);
        // Booked at 21 Nov 23:59 local: before the range.
        assert_eq!(
            sun,
            &DayStats {
                day: d("2026-11-22"),
                ..Default::default()
            }
        );
        assert_eq!(
            (
                mon.conversations,
                mon.bookings,
                mon.llm_calls,
                mon.tokens_in,
                mon.tokens_out
            ),
            (1, 1, 1, 100, 20)
        );
        assert_eq!(
            (tue.conversations, tue.bookings, tue.cancellations, tue.handoffs),
            (1, 0, 1, 1)
        );
        assert_eq!(
            (tue.reminders_sent, tue.reminders_confirmed, tue.reminders_cancelled),
            (2, 1, 1)
        );
        assert_eq!(
            stats.drop_off,
            [DropOff {
                flow: "book_appointment".into(),
                state: "ask_document".into(),
                conversations: 1
            }]
        );
    }
}

/// `cargo test --lib store::stats::measure -- --ignored --nocapture`: the dashboard and the
/// conversation search on `bench --large-db 0.1` (100,000 turns, 10,000 appointments, 5,000
/// sessions, all months old) plus 20,000 turns of the last 14 days.
#[cfg(test)]
mod measure {
    use std::time::Instant;

    use super::super::testing::mem;
    use crate::store::ConversationQuery;
    use serde_json::json;

    /// `MEASURE_FACTOR` (default 0.1) scales the seeded database.
    fn factor() -> f64 {
        std::env::var("MEASURE_FACTOR")
            .ok()
            .and_then(|f| f.parse().ok())
            .unwrap_or(0.1)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement (about a minute): run it by name"]
    async fn measure_on_a_large_database() {
        let store = mem().await;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let bot = crate::flow::compile::compile_dir(dir).unwrap();
        let seeded = crate::cli::bench_large::seed(&store, &bot, factor()).await.unwrap();
        let recent: Vec<serde_json::Value> = (0..20_000)
            .map(|i| {
                let at = jiff::Timestamp::from_second(1_763_900_000 + i * 60).unwrap();
                let mut row = json!({
                    "session": format!("recent-{}", i / 10), "seq": i % 10 + 1,
                    "at": super::fmt_instant(at), "input": "hola", "replies": ["x"],
                    "state_before": "idle", "state_after": "book_appointment.details",
                    "latency_us": 900, "llm_calls": [], "effects": [],
                });
                if i % 10 == 0 {
                    row["llm_tokens"] = json!(300);
                    row["llm_calls"] = json!([{ "purpose": "nlu", "tokens_in": 250, "tokens_out": 50, "latency_ms": 400, "outcome": "ok" }]);
                }
                row
            })
            .collect();
        for chunk in recent.chunks(2_000) {
            store
                .client()
                .query("INSERT INTO turn $rows RETURN NONE")
                .bind(json!({ "rows": chunk }))
                .await
                .unwrap()
                .check()
                .unwrap();
        }
        println!("seeded in {seeded:?}");
        let tz = jiff::tz::TimeZone::get("America/Argentina/Buenos_Aires").unwrap();
        let (first, last) = ("2025-11-10".parse().unwrap(), "2025-12-07".parse().unwrap());
        for _ in 0..3 {
            let t = Instant::now();
            let stats = store.stats(first, last, &tz).await.unwrap();
            let n: u64 = stats.days.iter().map(|d| d.conversations).sum();
            println!("stats, 28 days: {:?} ({n} conversations)", t.elapsed());
        }
        let vars = json!({ "from": "2025-11-10T03:00:00.000Z", "to": "2025-12-08T03:00:00.000Z" });
        for sql in super::AGGREGATES.split(";\n").filter(|s| !s.trim().is_empty()) {
            let t = Instant::now();
            store.run(sql, vars.clone()).await.unwrap();
            let head: String = sql.trim().chars().take(90).collect();
            println!("  {:?}  {head}", t.elapsed());
        }
        for (what, q) in [
            (
                "newest 25",
                ConversationQuery {
                    limit: 25,
                    ..Default::default()
                },
            ),
            (
                "by channel",
                ConversationQuery {
                    channel: Some("api".into()),
                    limit: 25,
                    ..Default::default()
                },
            ),
            (
                "by phone (no match: whole table)",
                ConversationQuery {
                    phone: Some("5491100".into()),
                    limit: 25,
                    ..Default::default()
                },
            ),
            (
                "by document",
                ConversationQuery {
                    document: Some("h7".into()),
                    limit: 25,
                    ..Default::default()
                },
            ),
        ] {
            let t = Instant::now();
            let rows = store.search_conversations(&q).await.unwrap();
            println!("search {what}: {:?} ({} rows)", t.elapsed(), rows.len());
        }
    }
}
