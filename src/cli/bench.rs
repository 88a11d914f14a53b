//! `clinicflow bench`: compile time of the bot, cost of one engine step (rules NLU + `step`,
//! no I/O) and of a whole turn through the service with durable storage, with concurrency.
//! Prints figures; the budget is in docs/performance.md.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bench_http::{cpu_since, process_cpu};
use crate::engine::session::Session;
use crate::engine::{Input, nlu_context, step};
use crate::flow::bot::Bot;
use crate::flow::compile::compile_dir;
use crate::nlu::Understand;
use crate::service::Service;
use crate::store::Store;

/// Conversations a run has unless told (see `--conversations`).
pub const CONVERSATIONS: usize = 400;

/// A whole Cardiología booking in Spanish, from "hola" to "sí" (the integration tests use it too).
pub const SCRIPT: [&str; 8] = [
    "hola",
    "quiero un turno con cardiología",
    "el jueves 26",
    "a las 10",
    "María López",
    "30.123.456",
    "OSDE",
    "sí",
];

pub async fn run(
    dir: &Path,
    db: Option<&str>,
    conversations: usize,
    concurrency: usize,
    large_db: Option<f64>,
) -> anyhow::Result<()> {
    // Compile.
    let mut times = Vec::new();
    let mut bot = None;
    for _ in 0..30 {
        let t = Instant::now();
        let b = compile_dir(dir).map_err(|d| anyhow::anyhow!("the bot does not compile:\n{d}"))?;
        times.push(t.elapsed());
        bot = Some(b);
    }
    let bot = Arc::new(bot.ok_or_else(|| anyhow::anyhow!("no bot"))?);
    times.sort();
    println!(
        "compile ({} files, {} flows): min {:.1} ms, median {:.1} ms, max {:.1} ms  (budget 50 ms)",
        bot.files,
        bot.flows.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );

    // Engine alone.
    let now = "2026-11-23T10:00"
        .parse::<jiff::civil::DateTime>()?
        .to_zoned(bot.clinic.tz.clone())?;
    let mut lat = Vec::new();
    let cpu = process_cpu();
    let started = Instant::now();
    for i in 0..conversations.max(1) {
        let mut s = Session::new(format!("b{i}"), "bench", "u", bot.clinic.language);
        for text in SCRIPT {
            let t = Instant::now();
            s = engine_turn(&bot, s, text, &now);
            lat.push(t.elapsed());
        }
    }
    report(
        "engine step + rules NLU (no I/O)",
        &mut lat,
        started.elapsed(),
        cpu_since(cpu),
    );

    // Whole turns through the service, `concurrency` conversations at a time.
    // A fixed folder, emptied at the start: removing it at the end would race SurrealKV's own
    // shutdown, which flushes after the last handle is dropped.
    let tmp = std::env::temp_dir().join("clinicflow-bench");
    let _ = std::fs::remove_dir_all(&tmp);
    let url = db
        .map(str::to_string)
        .unwrap_or_else(|| format!("surrealkv://{}", tmp.display()));
    let store = Store::connect(&url).await?;
    let service = Arc::new(Service::new(store, bot.clone()));
    let cpu = process_cpu();
    let (mut lat, wall) =
        super::bench_large::turns(service, now.clone(), &SCRIPT, conversations, concurrency, 0).await?;
    report(
        &format!("service turn, {url}, {} concurrent", concurrency.max(1)),
        &mut lat,
        wall,
        cpu_since(cpu),
    );
    if let Some(factor) = large_db {
        large_db_check(&bot, &tmp, &now, factor, conversations, concurrency).await?;
    }
    // Over HTTP: `serve`'s app on loopback vs a bare poem endpoint doing one SurrealDB write.
    let http_db = format!("surrealkv://{}", tmp.join("http").display());
    let baseline_db = format!("surrealkv://{}", tmp.join("baseline").display());
    let store = Store::connect(&http_db).await?;
    let service = Arc::new(Service::new(store, bot.clone()));
    let reloader = crate::reload::Reloader::new(dir, service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let state = crate::server::AppState::new(service, reloader);
    let server = tokio::spawn(crate::server::run(listener, state, async {
        let _ = stop_rx.await;
    }));
    let base = format!("http://{addr}");
    let (baseline_url, baseline_stop) = super::bench_http::start_baseline(Store::connect(&baseline_db).await?).await?;
    let [engine, base_run] = super::bench_http::interleaved(
        [
            (&base, |b, id| format!("{b}/v1/conversations/{id}/messages")),
            (&baseline_url, |b, id| format!("{b}/baseline/{id}")),
        ],
        &SCRIPT,
        conversations,
        concurrency,
    )
    .await;
    let _ = stop_tx.send(());
    let _ = server.await;
    let _ = baseline_stop.send(());
    let c = concurrency.max(1);
    let (e_rate, e_p99, e_cpu) = summary(&format!("HTTP turn (serve, surrealkv, {c} concurrent)"), engine);
    let (b_rate, b_p99, b_cpu) = summary(
        &format!("HTTP baseline (poem + one SurrealDB write, surrealkv, {c} concurrent)"),
        base_run,
    );
    if b_rate > 0.0 && e_rate > 0.0 {
        println!(
            "engine overhead: throughput {:.2}x lower than the baseline, p99 +{:.3} ms",
            b_rate / e_rate,
            e_p99 - b_p99
        );
    }
    if let (Some(e), Some(b)) = (e_cpu, b_cpu)
        && b > 0.0
    {
        println!(
            "CPU per request: {:.2}x the baseline's ({e:.3} ms against {b:.3} ms)",
            e / b
        );
    }
    Ok(())
}

/// The same turns on an empty database and on a large one (surrealkv, fresh folders), side by
/// side, then the query plans of the turn path on the large one.
async fn large_db_check(
    bot: &Arc<Bot>,
    tmp: &Path,
    now: &jiff::Zoned,
    factor: f64,
    conversations: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let empty = Store::connect(&format!("surrealkv://{}", tmp.join("empty").display())).await?;
    let large_url = format!("surrealkv://{}", tmp.join("large").display());
    let large = Store::connect(&large_url).await?;
    let seeded = super::bench_large::seed(&large, bot, factor).await?;
    println!(
        "large database: seeded {factor}x (100,000 appointments, 1,000,000 turns, 50,000 sessions) in {:.1} s",
        seeded.as_secs_f64()
    );
    // Just loaded, every seeded row is still in surrealkv's memtable (up to 1 GiB on a machine
    // with this much memory), a skiplist each lookup and insert walks; that follows the writes
    // since the last flush, not the size of the database. After a restart the memtable has
    // been written to disk, as for a database that grew over months: both are shown.
    let as_loaded = super::bench_large::compare([empty.clone(), large], bot, now, conversations, concurrency).await?;
    println!("large database, just loaded (the seed still in the memtable): {as_loaded}");
    let large = super::bench_large::reopen(&large_url).await?;
    match super::bench_large::settle(Duration::from_secs(600)).await {
        Some(t) => println!(
            "large database: its background compaction ended after {:.1} s",
            t.as_secs_f64()
        ),
        None => println!("large database: still compacting after 600 s; measuring anyway"),
    }
    let restarted =
        super::bench_large::compare([empty.clone(), large.clone()], bot, now, conversations, concurrency).await?;
    println!("large database, after a restart (the seed on disk): {restarted}");
    for (label, store) in [("empty", &empty), ("large", &large)] {
        println!("{label} database:");
        super::bench_large::breakdown(store, bot, 300).await?;
    }
    let scans = super::bench_large::explain(&large).await?;
    if scans.is_empty() {
        println!("plans: every turn-path query uses an index or a record id");
    } else {
        println!("plans: table scans in: {}", scans.join(", "));
    }
    Ok(())
}

fn engine_turn(bot: &Bot, s: Session, text: &str, now: &jiff::Zoned) -> Session {
    let ctx = nlu_context(bot, &s);
    let nlu = bot.nlu.understand(text, &ctx, now);
    let mut out = step(bot, &s, Input::Message { text: text.into(), nlu }, now);
    let mut s = std::mem::take(&mut out.session);
    // Answer actions with a plausible result, as the service would.
    for _ in 0..4 {
        let Some(_) = out.pending.take() else { break };
        let result = serde_json::json!({
            "ok": true, "available": true, "professional": "Dra. Laura Gómez",
            "appointment": {"id": "a1", "date": "2026-11-26", "time": "10:00"}, "alternatives": [],
        });
        out = step(bot, &s, Input::ActionResult(result), now);
        s = std::mem::take(&mut out.session);
    }
    s
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile (0 to 1) of sorted latencies; zero when there are none.
pub(super) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or_default()
}

/// Prints a phase: throughput, latencies and, when known, the CPU it used per turn (`cpu` is
/// the phase's total; see `bench_http::process_cpu`).
pub(super) fn report(label: &str, lat: &mut [Duration], total: Duration, cpu: Option<Duration>) {
    if lat.is_empty() {
        println!("{label}: no turns");
        return;
    }
    lat.sort();
    let pct = |q: f64| quantile(lat, q);
    let cpu = cpu
        .map(|c| format!(", CPU {:.3} ms/turn", ms(c) / lat.len() as f64))
        .unwrap_or_default();
    println!(
        "{label}: {} turns, {:.0} turns/s, p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms{cpu}",
        lat.len(),
        lat.len() as f64 / total.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.95)),
        ms(pct(0.99))
    );
}

/// Prints one HTTP run; returns (turns/s, p99 ms, CPU ms per request).
fn summary(label: &str, mut run: super::bench_http::Run) -> (f64, f64, Option<f64>) {
    if run.errors > 0 {
        println!("{label}: {} requests failed", run.errors);
    }
    if run.latencies.is_empty() {
        return (0.0, 0.0, None);
    }
    report(label, &mut run.latencies, run.wall, run.cpu);
    let p99 = quantile(&run.latencies, 0.99);
    let cpu = run.cpu.map(|c| ms(c) / run.latencies.len() as f64);
    (run.latencies.len() as f64 / run.wall.as_secs_f64(), ms(p99), cpu)
}
