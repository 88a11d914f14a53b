//! `clinicflow bench --replicas N`: several `serve` processes of this binary on one real
//! SurrealDB server, with a replica killed mid-run, and what survived counted from the database.
//!
//! One SurrealDB server (src/cli/surreal.rs), N `clinicflow serve` processes on it (loopback,
//! ports chosen by the OS), a fake Twilio REST API that answers slowly (wiremock, in this
//! process), then at once: `conversations` booking conversations whose messages go to the
//! replicas round-robin (a message a dead replica cannot take goes to the next one, with the
//! same `Idempotency-Key`, as a load balancer would retry it), races of [`RACE`] conversations
//! confirming the same slot at the same moment through different replicas, and [`REMINDERS`]
//! SMS reminders falling due. When half the turns are acknowledged, replica 0 gets SIGKILL.
//! Afterwards it waits (bounded) until every reminder is settled and prints what must be 0.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::civil::{Date, Time};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::surreal::SurrealServer;
use crate::actions::slots::grid;
use crate::channels::twilio::fake::FakeTwilio;
use crate::flow::bot::Bot;
use crate::store::time::fmt_hhmm;
use crate::store::{AppointmentFilter, AppointmentStatus, NewAppointment, NewReminder, Slot, Store};

/// Conversations that confirm one slot at the same moment.
pub const RACE: usize = 9;
/// Conversations a replica run has unless told (issue 12: 200 at once).
pub const CONVERSATIONS: usize = 200;

/// How many races run among the conversations.
const RACES: usize = 10;
/// Reminders seeded to fall due during the run.
pub const REMINDERS: usize = 100;
/// How slowly the fake Twilio accepts a message.
const TWILIO_DELAY: Duration = Duration::from_millis(700);
/// The longest one request may take before it counts as failed and goes to the next replica.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Leases of a killed replica's reminders must run out before others can send them.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(240);
const SPECIALTY: &str = "Cardiología";

/// A `clinicflow serve` child process; killed when dropped.
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl ServeProcess {
    /// Starts `exe serve --addr 127.0.0.1:0 --db DB --dir DIR` with `env` added, and waits for
    /// the line that says where it listens.
    pub async fn start(exe: &Path, dir: &Path, db: &str, env: &[(String, String)]) -> anyhow::Result<ServeProcess> {
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--db", db, "--dir"])
            .arg(dir)
            .env_remove("OPENAI_API_KEY")
            .env_remove("CLINICFLOW_API_KEYS")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", exe.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
        // Read to the end (a full pipe would block the server); the listening line answers.
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut seen = Vec::new();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.split("serving http://").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap_or_default().to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(addr));
                    }
                } else if tx.is_some() && seen.len() < 30 {
                    seen.push(line);
                }
            }
            if let Some(tx) = tx.take() {
                let _ = tx.send(Err(seen.join("\n")));
            }
        });
        match tokio::time::timeout(Duration::from_secs(120), rx).await {
            Ok(Ok(Ok(addr))) => Ok(ServeProcess {
                child,
                base: format!("http://{addr}"),
            }),
            Ok(Ok(Err(output))) => anyhow::bail!("`serve` exited before listening:\n{output}"),
            _ => anyhow::bail!("`serve` did not start listening within 120 s"),
        }
    }

    /// SIGKILL: no shutdown, no draining, whatever was in flight is cut.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What the run counted; every field but `acknowledged` must be 0.
#[derive(Debug, Default)]
pub struct Figures {
    pub acknowledged: usize,
    pub unanswered: usize,
    pub lost: usize,
    pub double_bookings: usize,
    pub slots_with_several_winners: usize,
    pub reminders_duplicated: usize,
    pub reminders_missing: usize,
    pub appointments_without_turn: usize,
}

impl Figures {
    /// Nothing lost, doubled or unanswered.
    pub fn all_zero(&self) -> bool {
        self.unanswered == 0
            && self.lost == 0
            && self.double_bookings == 0
            && self.slots_with_several_winners == 0
            && self.reminders_duplicated == 0
            && self.reminders_missing == 0
            && self.appointments_without_turn == 0
    }
}

/// One scripted conversation of the run.
struct Plan {
    id: String,
    lines: Vec<String>,
    race: Option<usize>,
}

pub async fn run(dir: &Path, bot: Arc<Bot>, replicas: usize, conversations: usize) -> anyhow::Result<Figures> {
    let replicas = replicas.max(2);
    let started = Instant::now();
    let server = SurrealServer::start().await?;
    let url = server.url("clinicflow", "bench");
    println!(
        "replicas: SurrealDB {} on 127.0.0.1:{}",
        super::surreal::VERSION,
        server.port()
    );
    let store = Store::connect(&url).await?;

    let twilio = FakeTwilio::start(TWILIO_DELAY).await;

    let env: Vec<(String, String)> = [
        ("TWILIO_ACCOUNT_SID", "ACbench".to_string()),
        ("TWILIO_AUTH_TOKEN", "bench-token".to_string()),
        ("TWILIO_API_BASE", twilio.uri()),
        ("TWILIO_SMS_FROM", "+15550000000".to_string()),
        ("CLINICFLOW_LIMIT_SENDER", "off".to_string()),
        ("CLINICFLOW_LIMIT_CONVERSATION", "off".to_string()),
        ("CLINICFLOW_LIMIT_CLINIC", "off".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let exe = std::env::current_exe()?;
    let mut procs = Vec::new();
    for _ in 0..replicas {
        procs.push(ServeProcess::start(&exe, dir, &url, &env).await?);
    }
    let bases: Arc<Vec<String>> = Arc::new(procs.iter().map(|p| p.base.clone()).collect());
    // Seeded once the replicas run, so that they fall due while the conversations do.
    let numbers = seed_reminders(&store, &bot).await?;
    println!(
        "replicas: {replicas} `serve` processes up after {:.1} s; {conversations} conversations, \
         {RACES} races of {RACE}, {REMINDERS} reminders, fake Twilio answering in {} ms",
        started.elapsed().as_secs_f64(),
        TWILIO_DELAY.as_millis()
    );

    let plans = plans(&bot, conversations)?;
    let total: usize = plans.iter().map(|p| p.lines.len()).sum();
    let acked = Arc::new(AtomicUsize::new(0));
    let half = Arc::new(tokio::sync::Notify::new());
    let barriers: Vec<Arc<tokio::sync::Barrier>> =
        (0..RACES).map(|_| Arc::new(tokio::sync::Barrier::new(RACE))).collect();
    let client = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()?;
    let run_started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let (client, bases, acked, half) = (client.clone(), bases.clone(), acked.clone(), half.clone());
        let barrier = plan.race.map(|r| barriers[r].clone());
        tasks.spawn(async move {
            let mut done = Vec::new();
            let mut unanswered = 0;
            let mut won = None;
            let last = plan.lines.len() - 1;
            for (j, text) in plan.lines.iter().enumerate() {
                if j == last
                    && let Some(b) = &barrier
                {
                    b.wait().await;
                }
                let key = format!("{}-{j}", plan.id);
                match send(&client, &bases, i + j, &plan.id, text, &key).await {
                    Some(reply) => {
                        if j == last && plan.race.is_some() {
                            won = booked_id(&reply);
                        }
                        done.push((plan.id.clone(), text.clone()));
                        if acked.fetch_add(1, Ordering::Relaxed) + 1 == total / 2 {
                            half.notify_one();
                        }
                    }
                    None => unanswered += 1,
                }
            }
            (done, unanswered, won)
        });
    }
    // Mid-run, replica 0 dies without any warning.
    let victim = procs.remove(0);
    let seen = acked.clone();
    let killer = tokio::spawn(async move {
        half.notified().await;
        victim.kill().await;
        println!(
            "replicas: replica 0 killed (SIGKILL) after {} of {total} turns",
            seen.load(Ordering::Relaxed)
        );
    });
    let mut figures = Figures::default();
    let mut acknowledged = Vec::new();
    let mut winners = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (done, unanswered, won) = r?;
        acknowledged.extend(done);
        figures.unanswered += unanswered;
        winners.extend(won);
    }
    let wall = run_started.elapsed();
    // Fewer than half acknowledged: the victim dies now (the figures will say why).
    killer.abort();
    figures.acknowledged = acknowledged.len();
    println!(
        "replicas: {} turns acknowledged in {:.1} s ({:.0} turns/s over {} replicas), {} unanswered",
        figures.acknowledged,
        wall.as_secs_f64(),
        figures.acknowledged as f64 / wall.as_secs_f64(),
        replicas,
        figures.unanswered
    );

    // Reminders: every one sent, failed or skipped, none still pending (or leased by the dead).
    let settle = Instant::now();
    while settle.elapsed() < SETTLE_TIMEOUT && pending_reminders(&store).await? > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sent_to = sent_per_number(&twilio);
    for number in &numbers {
        match sent_to.get(number).copied().unwrap_or(0) {
            0 => figures.reminders_missing += 1,
            1 => {}
            _ => figures.reminders_duplicated += 1,
        }
    }
    drop(procs);
    count_from_db(&store, &acknowledged, &winners, &mut figures).await?;
    print(&figures);
    server.stop().await;
    Ok(figures)
}

/// POSTs one message, starting at replica `first` and moving on while replicas do not answer.
/// `Some(reply)` once a replica acknowledged it.
async fn send(
    client: &reqwest::Client,
    bases: &[String],
    first: usize,
    id: &str,
    text: &str,
    key: &str,
) -> Option<Value> {
    for attempt in 0..bases.len() * 3 {
        let base = &bases[(first + attempt) % bases.len()];
        let resp = client
            .post(format!("{base}/v1/conversations/{id}/messages"))
            .header("Idempotency-Key", key)
            .json(&json!({ "text": text }))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => return r.json().await.ok(),
            // Busy with another message of the conversation, or a conflict: the same replica
            // order again, after the others.
            Ok(_) | Err(_) => continue,
        }
    }
    None
}

/// The conversations: races first (nine at one slot each), then one slot each, all on the
/// free Cardiología grid of the coming days.
fn plans(bot: &Bot, conversations: usize) -> anyhow::Result<Vec<Plan>> {
    let clinic = &bot.clinic;
    let specialty = clinic
        .specialties
        .iter()
        .find(|s| s.name == SPECIALTY)
        .with_context(|| format!("the bench books {SPECIALTY}, which the clinic does not have"))?;
    let today = jiff::Zoned::now().with_time_zone(clinic.tz.clone()).date();
    let last = crate::actions::slots::last_day(clinic, jiff::Timestamp::now());
    let mut slots: Vec<(Date, Time)> = Vec::new();
    let mut day = today.tomorrow()?;
    while day <= last {
        let mut times: Vec<Time> = specialty
            .professionals
            .iter()
            .flat_map(|p| grid(clinic, p, day))
            .collect();
        times.sort();
        times.dedup();
        slots.extend(times.into_iter().map(|t| (day, t)));
        day = day.tomorrow()?;
    }
    let races = RACES.min(conversations / RACE);
    let singles = conversations.saturating_sub(races * RACE);
    anyhow::ensure!(
        slots.len() >= races + singles,
        "only {} free {SPECIALTY} slots in the booking horizon for {conversations} conversations",
        slots.len()
    );
    let pid = std::process::id();
    let mut out = Vec::new();
    for (n, &(date, time)) in slots.iter().take(races + singles).enumerate() {
        let (race, copies) = if n < races { (Some(n), RACE) } else { (None, 1) };
        for _ in 0..copies {
            let c = out.len();
            out.push(Plan {
                id: format!("rep-{pid}-{c}"),
                lines: script(date, time, c),
                race,
            });
        }
    }
    Ok(out)
}

/// A booking of `date` at `time`, in the words of a patient.
fn script(date: Date, time: Time, c: usize) -> Vec<String> {
    vec![
        "hola".into(),
        format!("quiero un turno con {}", SPECIALTY.to_lowercase()),
        format!("el {}/{}", date.day(), date.month()),
        format!("a las {}", fmt_hhmm(time)),
        "María López".into(),
        format!("{}.{:03}.{:03}", 20 + c / 1000, c % 1000, 456),
        "OSDE".into(),
        "sí".into(),
    ]
}

/// One appointment and one SMS reminder per patient number, due over the next seconds (the
/// turns run meanwhile). Returns the numbers, which tell the fake Twilio's requests apart.
async fn seed_reminders(store: &Store, bot: &Bot) -> anyhow::Result<Vec<String>> {
    let clinic = &bot.clinic;
    let now = jiff::Timestamp::now();
    let date = now
        .to_zoned(clinic.tz.clone())
        .date()
        .checked_add(jiff::Span::new().days(20))?;
    let time = Time::constant(10, 0, 0, 0);
    let starts_at = date.to_datetime(time).to_zoned(clinic.tz.clone())?.timestamp();
    let mut numbers = Vec::new();
    for i in 0..REMINDERS {
        let number = format!("+549110{i:07}");
        let session = format!("bench-reminder-{i}");
        let appointment = store
            .create_appointment(&NewAppointment {
                specialty: SPECIALTY.into(),
                slot: Slot {
                    professional: format!("Bench {i}"),
                    date,
                    time,
                    starts_at,
                    minutes: clinic.appointment_minutes,
                },
                patient_name: "Paciente de prueba".into(),
                document: format!("40{i:06}"),
                coverage: None,
                channel: "sms".into(),
                user: number.clone(),
                session: session.clone(),
                created_at: now,
                email: None,
            })
            .await?;
        let due = now + jiff::SignedDuration::from_millis(1000 + 100 * i as i64);
        store
            .create_reminder(&NewReminder {
                appointment: appointment.id,
                session,
                channel: "sms".into(),
                user: number.clone(),
                kind: "24h".into(),
                offset_minutes: 24 * 60,
                due_at: due,
                created_at: now,
            })
            .await?;
        numbers.push(number);
    }
    Ok(numbers)
}

async fn pending_reminders(store: &Store) -> anyhow::Result<usize> {
    let mut resp = store
        .client()
        .query("SELECT id FROM reminder WHERE status = 'pending' AND session CONTAINS 'bench-reminder-'")
        .await?;
    let rows = resp.take::<surrealdb::types::Value>(0)?.into_json_value();
    Ok(rows.as_array().map_or(0, Vec::len))
}

/// Messages the fake Twilio accepted, per `To` number.
fn sent_per_number(twilio: &FakeTwilio) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for m in twilio.accepted() {
        *out.entry(m.to).or_insert(0) += 1;
    }
    out
}

/// Lost turns, double bookings, race winners and appointments without their turn, from the
/// database itself.
async fn count_from_db(
    store: &Store,
    acknowledged: &[(String, String)],
    winners: &[String],
    f: &mut Figures,
) -> anyhow::Result<()> {
    let mut resp = store
        .client()
        .query("SELECT session, input, effects FROM turn WHERE session CONTAINS 'rep-'")
        .await?;
    let turns: Vec<Value> = resp
        .take::<surrealdb::types::Value>(0)?
        .into_json_value()
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut stored: HashMap<(String, String), usize> = HashMap::new();
    let mut committed_appointments = HashSet::new();
    for t in &turns {
        let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        *stored.entry((s("session"), s("input"))).or_insert(0) += 1;
        for e in t.get("effects").and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = e.pointer("/result/appointment/id").and_then(Value::as_str) {
                committed_appointments.insert(id.to_string());
            }
        }
    }
    let mut wanted: HashMap<(String, String), usize> = HashMap::new();
    for (session, text) in acknowledged {
        *wanted.entry((session.clone(), text.clone())).or_insert(0) += 1;
    }
    f.lost = wanted
        .iter()
        .map(|(k, n)| n.saturating_sub(stored.get(k).copied().unwrap_or(0)))
        .sum();
    let booked = store
        .list_appointments(&AppointmentFilter {
            status: Some(AppointmentStatus::Booked),
            ..AppointmentFilter::default()
        })
        .await?;
    // Booked appointments per (professional, date, time): more than one is a double booking,
    // whatever the slot key says.
    let mut per_slot: HashMap<(String, Date, Time), usize> = HashMap::new();
    let mut slot_of = HashMap::new();
    for a in &booked {
        *per_slot.entry((a.professional.clone(), a.date, a.time)).or_insert(0) += 1;
        slot_of.insert(a.id.clone(), (a.professional.clone(), a.date, a.time));
        if a.session.starts_with("rep-") && !committed_appointments.contains(&a.id) {
            f.appointments_without_turn += 1;
        }
    }
    f.double_bookings = per_slot.values().map(|n| n.saturating_sub(1)).sum();
    // Racers told "booked": by the slot of the appointment they were given. A winner whose
    // appointment is not booked in the database was told something false: a lost turn.
    let mut told: HashMap<(String, Date, Time), usize> = HashMap::new();
    for id in winners {
        match slot_of.get(id) {
            Some(slot) => *told.entry(slot.clone()).or_insert(0) += 1,
            None => f.lost += 1,
        }
    }
    f.slots_with_several_winners = told.values().filter(|n| **n > 1).count();
    Ok(())
}

fn print(f: &Figures) {
    println!("replicas: acknowledged turns lost: {}", f.lost);
    println!("replicas: double bookings: {}", f.double_bookings);
    println!(
        "replicas: slots booked by more than one race winner: {}",
        f.slots_with_several_winners
    );
    println!("replicas: reminders sent more than once: {}", f.reminders_duplicated);
    println!("replicas: reminders not sent at all: {}", f.reminders_missing);
    println!(
        "replicas: appointments without a committed turn: {}",
        f.appointments_without_turn
    );
}

/// The appointment number of a "¡Listo! Su turno quedó reservado … Número de turno: ID." reply.
fn booked_id(reply: &Value) -> Option<String> {
    reply.get("replies")?.as_array()?.iter().find_map(|r| {
        let after = r.as_str()?.split("Número de turno: ").nth(1)?;
        let id: String = after.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        (!id.is_empty()).then_some(id)
    })
}
