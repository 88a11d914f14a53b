//! `clinicflow bench --large-db`: does a turn get slower as the database grows? The same
//! scripted conversations run on an empty database and on one already holding 100,000
//! appointments, 1,000,000 turns and 50,000 sessions (times a factor), and the query plans of
//! the turn path are printed (SurrealDB's EXPLAIN) to show every query is on an index.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use serde_json::{Value, json};

use super::bench::SCRIPT;
use super::bench_http::Run;
use crate::actions::slots::grid;
use crate::flow::bot::Bot;
use crate::service::Service;
use crate::store::Store;

const APPOINTMENTS: f64 = 100_000.0;
const TURNS: f64 = 1_000_000.0;
const SESSIONS: f64 = 50_000.0;
/// Rows per INSERT while seeding.
const BATCH: usize = 2_000;

/// The statements a booking conversation runs, in the shapes the store sends them, with
/// sample values: their plans must use an index (or a record id), never a table scan.
pub const TURN_QUERIES: [(&str, &str); 7] = [
    (
        "load the session",
        "SELECT * FROM ONLY type::record('session', 'seed-7')",
    ),
    (
        "recent turns of a conversation",
        "SELECT * FROM turn WHERE session = 'seed-7' ORDER BY seq DESC LIMIT 20",
    ),
    (
        "booked slots of a specialty's professionals (availability, booking)",
        "SELECT slot_key FROM appointment WHERE slot_key >= 'Dra. Laura Gómez|2026-11-23' AND slot_key <= 'Dra. Laura Gómez|2027-01-22|~'",
    ),
    (
        "a patient's appointments (by the document's keyed hash)",
        "SELECT * FROM appointment WHERE document_hash = 'h7' ORDER BY starts_at",
    ),
    (
        "a conversation's appointments",
        "SELECT * FROM appointment WHERE session = 'seed-7' ORDER BY starts_at",
    ),
    (
        "a processed message id (replay check)",
        "SELECT * FROM ONLY type::record('processed', 'm7')",
    ),
    (
        "due reminders (scheduler)",
        "SELECT id FROM reminder WHERE status = 'pending' AND due_at <= '2026-11-23T13:00:00.000000Z' LIMIT 16",
    ),
];

/// Seeds `store` with the large data set times `factor`; returns how long it took.
pub async fn seed(store: &Store, bot: &Bot, factor: f64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let sessions = ((SESSIONS * factor) as usize).max(1);
    let turns = (TURNS * factor) as usize;
    let appointments = (APPOINTMENTS * factor) as usize;
    let at = "2026-01-01T10:00:00.000000Z";
    insert(store, "session", sessions, |i| {
        let mut s = serde_json::to_value(crate::engine::session::Session::new(
            format!("seed-{i}"),
            "api",
            format!("seed-{i}"),
            bot.clinic.language,
        ))
        .unwrap_or_else(|_| json!({}));
        if let Some(map) = s.as_object_mut() {
            map.insert("version".into(), json!(1));
            map.insert("updated_at".into(), json!(at));
            map.insert("updated_day".into(), json!(crate::store::time::utc_day(at)));
        }
        s
    })
    .await?;
    insert(store, "turn", turns, |i| {
        json!({
            "session": format!("seed-{}", i % sessions),
            "seq": i / sessions + 1,
            "at": at,
            "input": "hola",
            "replies": ["Buenos días, Clínica San Rafael."],
            "state_before": "start",
            "state_after": "book_appointment.details",
            "latency_us": 900,
            "llm_calls": [],
            "effects": [],
        })
    })
    .await?;
    // Appointments on every professional's grid, from 2022 up to the booking
    // horizon ahead, except the day the bench's own conversations book (so they take the
    // same path as on the empty database) — enough of them lie in the horizon that
    // availability has real bookings to read.
    let clinic = &bot.clinic;
    let skip: Date = "2026-11-26".parse()?;
    let mut slots = Vec::new();
    let mut day: Date = "2022-01-01".parse()?;
    let end: Date = "2027-01-20".parse()?;
    'days: while day <= end {
        if day != skip {
            for s in &clinic.specialties {
                for p in &s.professionals {
                    for t in grid(clinic, p, day) {
                        slots.push((s.name.clone(), p.name.clone(), day, t));
                        if slots.len() >= appointments * 3 {
                            break 'days;
                        }
                    }
                }
            }
        }
        day = day.tomorrow()?;
    }
    // Spread over the whole range: every `step`-th grid position is booked.
    let step = (slots.len() / appointments.max(1)).max(1);
    let picked: Vec<_> = slots.iter().step_by(step).take(appointments).cloned().collect();
    insert(store, "appointment", picked.len(), |i| {
        let (specialty, professional, date, time) = &picked[i];
        let (date, time) = (crate::store::time::fmt_date(*date), crate::store::time::fmt_hhmm(*time));
        json!({
            "specialty": specialty,
            "professional": professional,
            "date": date,
            "time": time,
            "starts_at": format!("{date}T{time}:00.000000Z"),
            "minutes": clinic.appointment_minutes,
            "patient_name": "seed",
            "document": "seed",
            "document_hash": format!("h{}", i % 40_000),
            "status": "booked",
            "channel": "api",
            "user": "seed",
            "session": format!("seed-{}", i % sessions),
            "created_at": at,
            "slot_key": format!("{professional}|{date}|{time}"),
        })
    })
    .await?;
    Ok(started.elapsed())
}

/// INSERTs `n` rows made by `row` into `table`, `BATCH` at a time.
async fn insert(store: &Store, table: &str, n: usize, row: impl Fn(usize) -> Value) -> anyhow::Result<()> {
    let sql = format!("INSERT INTO {table} $rows RETURN NONE");
    let mut i = 0;
    while i < n {
        let rows: Vec<Value> = (i..(i + BATCH).min(n)).map(&row).collect();
        let resp = store.client().query(sql.as_str()).bind(json!({ "rows": rows })).await?;
        resp.check()?;
        i += BATCH;
    }
    Ok(())
}

/// Prints the plan of every statement of [`TURN_QUERIES`] on `store`; returns the ones that
/// scan a whole table.
pub async fn explain(store: &Store) -> anyhow::Result<Vec<&'static str>> {
    let mut scans = Vec::new();
    for (what, sql) in TURN_QUERIES {
        let mut resp = store.client().query(format!("{sql} EXPLAIN")).await?;
        let plan = resp.take::<surrealdb::types::Value>(0)?.into_json_value();
        let text = plan.to_string();
        println!("plan: {what}: {sql}\n  {text}");
        if text.contains("Iterate Table") || text.contains("TableScan") {
            scans.push(what);
        }
    }
    Ok(scans)
}

/// Service turns on `stores` (an empty and a large database) in alternating slices, as the
/// HTTP bench does, so both see the same drift of a shared machine; prints each side's figures
/// and returns how the large one compares.
pub async fn compare(
    stores: [Store; 2],
    bot: &Arc<Bot>,
    now: &jiff::Zoned,
    conversations: usize,
    concurrency: usize,
) -> anyhow::Result<String> {
    let services = stores.map(|store| Arc::new(Service::new(store, bot.clone())));
    let mut runs = [Run::empty(), Run::empty()];
    let slice = conversations.div_ceil(super::bench_http::ROUNDS);
    for round in 0..super::bench_http::ROUNDS {
        for k in [round % 2, 1 - round % 2] {
            let cpu = super::bench_http::process_cpu();
            let (latencies, wall) = turns(services[k].clone(), now.clone(), &SCRIPT, slice, concurrency, round).await?;
            let cpu = super::bench_http::cpu_since(cpu);
            runs[k].add(Run {
                latencies,
                wall,
                errors: 0,
                cpu,
            });
        }
    }
    let mut figures = Vec::new();
    for (label, mut run) in ["empty", "large"].into_iter().zip(runs) {
        let label = format!("  service turn, {label} database, {concurrency} concurrent");
        super::bench::report(&label, &mut run.latencies, run.wall, run.cpu);
        let rate = run.latencies.len() as f64 / run.wall.as_secs_f64();
        figures.push((rate, super::bench::quantile(&run.latencies, 0.5)));
    }
    let [(e_rate, e_p50), (l_rate, l_p50)] = figures[..] else {
        anyhow::bail!("no turns");
    };
    Ok(format!(
        "throughput {:+.1} %, p50 {:+.1} % against the empty one (budget: within 10 %)",
        (l_rate / e_rate - 1.0) * 100.0,
        (l_p50.as_secs_f64() / e_p50.as_secs_f64().max(1e-9) - 1.0) * 100.0
    ))
}

/// Waits until this process has been nearly idle (under 5 % of a core) for a whole second,
/// up to `max`: how long that took, or None if it never was. Reopened after a bulk load,
/// surrealkv compacts the tables it just wrote in background threads for a while.
pub async fn settle(max: Duration) -> Option<Duration> {
    let started = Instant::now();
    let window = Duration::from_secs(1);
    while started.elapsed() < max {
        let before = super::bench_http::process_cpu()?;
        tokio::time::sleep(window).await;
        if super::bench_http::cpu_since(Some(before))? < window / 20 {
            return Some(started.elapsed());
        }
    }
    None
}

/// Opens `url` again once the last handle on it is gone: the engine shuts down in the
/// background (surrealkv writes its memtable to disk, then frees the folder's lock), so the
/// first attempts may find it still locked.
pub async fn reopen(url: &str) -> anyhow::Result<Store> {
    let started = Instant::now();
    loop {
        match Store::connect(url).await {
            Ok(store) => {
                println!(
                    "large database: restarted in {:.1} s (the memtable written to disk)",
                    started.elapsed().as_secs_f64()
                );
                return Ok(store);
            }
            Err(e) if started.elapsed() < Duration::from_secs(300) => {
                tracing::debug!("the large database is not free yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The same scripted turns on `service`; (latencies, wall time). `round` keeps the
/// conversation ids of one slice apart from another's.
pub async fn turns(
    service: Arc<Service>,
    now: jiff::Zoned,
    script: &'static [&'static str],
    conversations: usize,
    concurrency: usize,
    round: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = conversations.div_ceil(concurrency.max(1));
    for w in 0..concurrency.max(1) {
        let service = service.clone();
        let now = now.clone();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            for c in 0..per_task {
                let id = format!("bench-{round}-{w}-{c}-{}", std::process::id());
                for text in script {
                    let req = crate::service::TurnRequest {
                        session_id: id.clone(),
                        channel: "bench".into(),
                        user: "bench".into(),
                        text: (*text).into(),
                        now: now.clone(),
                        message_id: None,
                        llm_budget: None,
                    };
                    let t = Instant::now();
                    if service.handle(req).await.is_err() {
                        break;
                    }
                    lat.push(t.elapsed());
                }
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = tasks.join_next().await {
        lat.extend(r?);
    }
    Ok((lat, started.elapsed()))
}

/// Where a turn's database time goes: the average cost of each kind of statement a turn sends,
/// on `store`, one at a time (`rounds` of each), so nothing is batched: the baseline's raw
/// UPSERT, and the store's own calls for the rest.
pub async fn breakdown(store: &Store, bot: &Bot, rounds: usize) -> anyhow::Result<()> {
    let mut session = crate::engine::session::Session::new("breakdown", "bench", "u", bot.clinic.language);
    let cardiology: Vec<&str> = bot
        .clinic
        .specialties
        .iter()
        .find(|s| s.name == "Cardiología")
        .map(|s| s.professionals.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
    let (from, to): (Date, Date) = ("2026-11-23".parse()?, "2027-01-22".parse()?);
    let mut rows = Vec::new();
    let time = |label: &'static str, total: Duration| (label, total.as_secs_f64() * 1e6 / rounds.max(1) as f64);
    // The baseline's only statement.
    let t = Instant::now();
    for i in 0..rounds {
        store
            .client()
            .query("UPSERT type::record('bench_baseline', $id) CONTENT { text: 'hola', at: time::now() } RETURN NONE")
            .bind(json!({ "id": format!("b{i}") }))
            .await?
            .check()?;
    }
    rows.push(time("one UPSERT (the baseline's request)", t.elapsed()));
    let t = Instant::now();
    for _ in 0..rounds {
        store.load_session("breakdown").await?;
    }
    rows.push(time("load the session (SELECT by record id)", t.elapsed()));
    let t = Instant::now();
    // The store's own commit (one at a time, so never grouped with another): the figure
    // follows whatever statement the store sends.
    for _ in 0..rounds {
        session.version += 1;
        session.turns += 1;
        let mut turn = crate::store::TurnRecord::new(&session, jiff::Timestamp::now(), "start".into());
        turn.input = "hola".into();
        turn.replies = vec!["Buenos días.".into()];
        store.commit_turn(&session, &turn, None).await?;
    }
    rows.push(time(
        "commit a turn (`Store::commit_turn`: session UPSERT with its version check + turn CREATE)",
        t.elapsed(),
    ));
    let t = Instant::now();
    for _ in 0..rounds {
        store.booked_between(&cardiology, from, to).await?;
    }
    rows.push(time(
        "booked slots of a specialty for the horizon, from the database",
        t.elapsed(),
    ));
    // What a search costs now: the store's slot cache, read once above and kept.
    store.held_slots(&cardiology, (from, to), (from, to)).await?;
    let t = Instant::now();
    for _ in 0..rounds {
        store.held_slots(&cardiology, (from, to), (from, to)).await?;
    }
    rows.push(time(
        "the same from the slot cache (`Store::held_slots`, what a search reads)",
        t.elapsed(),
    ));
    println!("statement costs ({rounds} of each, one at a time):");
    for (label, us) in rows {
        println!("  {us:>8.0} µs  {label}");
    }
    Ok(())
}
