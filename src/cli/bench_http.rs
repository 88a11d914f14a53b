//! The HTTP half of `clinicflow bench`: scripted conversations driven over loopback HTTP
//! against `serve`, and a baseline — a bare poem endpoint doing one SurrealDB write per request
//! on the same kind of store — so the engine's overhead shows as a ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::listener::TcpAcceptor;
use poem::web::{Data, Json, Path};
use poem::{EndpointExt, Route, Server, handler, post};
use serde_json::{Value, json};

use crate::store::Store;

/// Latencies of every request and the wall time of the whole run.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
    pub errors: usize,
    /// CPU the whole process (server and client) used during the run.
    pub cpu: Option<Duration>,
}

/// CPU time this process has used so far (user + system, all threads), from /proc/self/stat;
/// None without /proc. On a shared 2-core VM the CPU a phase costs per turn varies far less
/// between runs than its throughput does, so the bench prints both.
pub fn process_cpu() -> Option<Duration> {
    cpu_of_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// utime + stime of a `/proc/<pid>/stat` line.
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    // The fields after the command name, which is in parentheses and may hold spaces: the
    // line's 14th and 15th fields (utime, stime) are the 12th and 13th of these.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // /proc counts in USER_HZ, which is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// The CPU used since `start` (a `process_cpu()` reading).
pub fn cpu_since(start: Option<Duration>) -> Option<Duration> {
    Some(process_cpu()?.saturating_sub(start?))
}

impl Run {
    pub(super) fn empty() -> Run {
        Run {
            latencies: Vec::new(),
            wall: Duration::ZERO,
            errors: 0,
            cpu: Some(Duration::ZERO),
        }
    }

    /// Adds `other`, run after this one.
    pub(super) fn add(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.wall += other.wall;
        self.errors += other.errors;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a + b);
    }
}

/// Where a driven side is: its base URL and the URL of one conversation under it.
pub type Target<'a> = (&'a str, fn(&str, &str) -> String);

/// How many slices the two sides of a comparison take turns in (the HTTP turn and the
/// baseline; the empty and the large database).
pub const ROUNDS: usize = 4;

/// Drives `conversations` scripted conversations through each of `targets` (base URL and the
/// URL of a conversation under it), in [`ROUNDS`] alternating slices: a shared VM's speed
/// drifts by tens of percent within a minute, and measured one after the other the two sides
/// saw different machines. Alternating, each side sees the same drift.
pub async fn interleaved(
    targets: [Target<'_>; 2],
    script: &[&'static str],
    conversations: usize,
    concurrency: usize,
) -> [Run; 2] {
    let mut runs = [Run::empty(), Run::empty()];
    let slice = conversations.div_ceil(ROUNDS);
    for round in 0..ROUNDS {
        // Who goes first alternates too, so neither side always follows the other's writes.
        for k in [round % 2, 1 - round % 2] {
            let (base, url_for) = targets[k];
            runs[k].add(drive(base, url_for, script, slice, concurrency, round).await);
        }
    }
    runs
}

/// Sends `conversations` scripted conversations, `concurrency` at a time: each line of `script`
/// is POSTed as `{"text": line}` to `url_for(base, conversation_id)`. `round` keeps the ids of
/// one slice apart from another's.
async fn drive(
    base: &str,
    url_for: fn(&str, &str) -> String,
    script: &[&'static str],
    conversations: usize,
    concurrency: usize,
    round: usize,
) -> Run {
    let client = reqwest::Client::new();
    let cpu = process_cpu();
    let started = Instant::now();
    let per_worker = conversations.div_ceil(concurrency.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    let lines: Arc<Vec<&'static str>> = Arc::new(script.to_vec());
    for w in 0..concurrency.max(1) {
        let client = client.clone();
        let base = base.to_string();
        let lines = lines.clone();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            for c in 0..per_worker {
                let id = format!("bench-{round}-{w}-{c}-{}", std::process::id());
                for line in lines.iter() {
                    let req = client.post(url_for(&base, &id)).json(&json!({ "text": line }));
                    let t = Instant::now();
                    match req.send().await {
                        Ok(resp) if resp.status().is_success() => {
                            let _ = resp.bytes().await;
                            lat.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
            }
            (lat, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        if let Ok((l, e)) = r {
            latencies.extend(l);
            errors += e;
        }
    }
    Run {
        latencies,
        wall: started.elapsed(),
        errors,
        cpu: cpu_since(cpu),
    }
}

#[handler]
async fn baseline(Path(id): Path<String>, Json(body): Json<Value>, store: Data<&Store>) -> poem::Result<Json<Value>> {
    let sql = "UPSERT type::record('bench_baseline', $id) CONTENT { text: $text, at: time::now() } RETURN NONE";
    store
        .client()
        .query(sql)
        .bind(json!({ "id": id, "text": body["text"] }))
        .await
        .map_err(|e| poem::Error::from_string(e.to_string(), poem::http::StatusCode::SERVICE_UNAVAILABLE))?;
    Ok(Json(json!({ "ok": true })))
}

/// Starts the baseline server on 127.0.0.1:0; returns its base URL and a stop handle.
pub async fn start_baseline(store: Store) -> std::io::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    let app = Route::new().at("/baseline/:id", post(baseline)).data(store);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async {
                    let _ = rx.await;
                },
                Some(Duration::from_secs(5)),
            )
            .await;
    });
    Ok((format!("http://{addr}"), tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let line = "4242 (clinic flow) R 1 4242 4242 0 -1 4194304 1200 0 0 0 250 37 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_of_stat(line), Some(Duration::from_millis(2870)));
        assert_eq!(cpu_of_stat("4242 (x) R 1"), None);
        assert!(process_cpu().is_some(), "Linux has /proc/self/stat");
    }
}
