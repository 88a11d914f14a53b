//! `clinicflow test`: scripted conversations (tests/conversations/*.yaml) run against the
//! real engine and a fresh in-memory SurrealDB each. The format is in docs/flows.md, section 13.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::actions::{self, ActionContext, ActionName, ActionRequest};
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::service::{Service, TurnRequest};
use crate::store::{AppointmentFilter, EscalationStatus, ReminderStatus, Store};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversation {
    pub name: String,
    /// Clinic-local time the conversation starts at: "2026-11-23T10:00".
    pub now: String,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub setup: Option<Setup>,
    pub turns: Vec<Turn>,
    #[serde(default)]
    pub expect: Option<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default)]
    pub appointments: Vec<Map<String, Value>>,
    /// Settings of clinic.yaml's `clinic:` changed for this conversation only
    /// (`email_confirmations: true`): the bot is compiled again with them.
    #[serde(default)]
    pub clinic: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub user: String,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub now: Option<String>,
    #[serde(default)]
    pub bot: Option<OneOrMany>,
    #[serde(default)]
    pub bot_regex: Option<String>,
    #[serde(default)]
    pub not_bot: Option<OneOrMany>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub slots: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub waiting_for_staff: Option<bool>,
    /// Before this turn's message, send the reminders due at its time, as the server's
    /// scheduler would (the conversation that booked then waits for the answer to one).
    #[serde(default)]
    pub reminders: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub appointments: Option<Vec<Map<String, Value>>>,
    #[serde(default)]
    pub escalations: Option<usize>,
    #[serde(default)]
    pub reminders: Option<usize>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<(String, String)>,
}

/// tests/conversations/*.yaml under `dir`, sorted.
pub fn default_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let folder = dir.join("tests/conversations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs every file; prints failures and a last line `N passed, N failed`.
pub async fn run_files(bot: Arc<Bot>, files: &[PathBuf], verbose: bool) -> Report {
    run_files_of(bot, files, verbose, None).await
}

/// [`run_files`], the count line starting with `clinic: ` when there is one (`clinicflow test`
/// on a folder of several clinics).
pub async fn run_files_of(bot: Arc<Bot>, files: &[PathBuf], verbose: bool, clinic: Option<&str>) -> Report {
    let mut report = Report::default();
    let bar = if std::io::stderr().is_terminal() && !verbose {
        let b = indicatif::ProgressBar::new(files.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    for file in files {
        let label = file.display().to_string();
        if let Some(b) = &bar {
            b.set_message(label.clone());
        }
        match run_file(bot.clone(), file, verbose).await {
            Ok(()) => report.passed += 1,
            Err(msg) => {
                report.failed += 1;
                report.failures.push((label, msg));
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for (file, msg) in &report.failures {
        println!("FAILED {file}\n{msg}\n");
    }
    let label = clinic.map(|c| format!("{c}: ")).unwrap_or_default();
    println!("{label}{} passed, {} failed", report.passed, report.failed);
    report
}

/// Runs one conversation file. The error is a readable account of what differed.
pub async fn run_file(bot: Arc<Bot>, file: &Path, verbose: bool) -> Result<(), String> {
    let conv = read_conversation(file)?;
    run_conversation(bot, &conv, verbose).await
}

/// Reads one conversation file; the error says file:line:column and what is wrong.
pub fn read_conversation(file: &Path) -> Result<Conversation, String> {
    let src = std::fs::read_to_string(file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let doc = crate::flow::yaml::parse(&src).map_err(|e| {
        format!(
            "{}:{}:{}: not valid YAML: {}",
            file.display(),
            e.pos.line,
            e.pos.col,
            e.message
        )
    })?;
    serde_path_to_error::deserialize(&doc.value).map_err(|e| {
        let pos = doc.nearest(&e.path().to_string());
        format!("{}:{}:{}: {}", file.display(), pos.line, pos.col, e.inner())
    })
}

/// Books the appointments a conversation's `setup:` lists (other patients' bookings, an
/// appointment to cancel…). Returns how many were booked.
pub(crate) async fn apply_setup(
    store: &Store,
    bot: &Bot,
    conv: &Conversation,
    lang: crate::lang::Lang,
    now: &jiff::Zoned,
) -> Result<usize, String> {
    let Some(setup) = &conv.setup else { return Ok(0) };
    for (i, a) in setup.appointments.iter().enumerate() {
        // Booked from the conversation `from` names (default `main`, the one the turns use
        // unless they say otherwise): that contact is the one on record.
        let mut args = a.clone();
        let from = match args.remove("from") {
            Some(Value::String(s)) => s,
            _ => "main".to_string(),
        };
        let session = Session::new(&from, TEST_CHANNEL, test_user(&from), lang);
        let ctx = ActionContext {
            store,
            clinic: &bot.clinic,
            session: &session,
            now,
            staff: true,
        };
        let req = ActionRequest {
            action: ActionName::BookAppointment,
            args,
        };
        let res = actions::perform(&ctx, &req).await.map_err(|e| e.to_string())?;
        if res["ok"] != Value::Bool(true) {
            return Err(format!("setup appointment {} could not be booked: {res}", i + 1));
        }
    }
    Ok(setup.appointments.len())
}

/// `bot` compiled again with clinic.yaml's `clinic:` settings changed by `changes`.
pub fn with_clinic_settings(bot: &Bot, changes: &Map<String, Value>) -> Result<Bot, String> {
    const CLINIC: &str = "flows/clinic.yaml";
    let mut sources = bot.sources.clone();
    let mut doc = crate::flow::yaml::parse(sources.text(CLINIC))
        .map_err(|e| format!("{CLINIC}: {}", e.message))?
        .value;
    let Some(clinic) = doc.get_mut("clinic").and_then(Value::as_object_mut) else {
        return Err(format!("{CLINIC} has no `clinic:` block"));
    };
    for (k, v) in changes {
        clinic.insert(k.clone(), v.clone());
    }
    // JSON is YAML: the changed file is written back as JSON.
    sources.insert(CLINIC, doc.to_string());
    crate::flow::compile::compile(&sources)
        .map_err(|d| format!("setup.clinic: the bot does not compile:\n{}", d.render()))
}

pub async fn run_conversation(bot: Arc<Bot>, conv: &Conversation, verbose: bool) -> Result<(), String> {
    let bot = match conv.setup.as_ref().and_then(|s| s.clinic.as_ref()) {
        Some(changes) => Arc::new(with_clinic_settings(&bot, changes)?),
        None => bot,
    };
    let store = Store::connect("mem://").await.map_err(|e| e.to_string())?;
    let tz = bot.clinic.tz.clone();
    let mut now = super::parse_now(&conv.now, &tz).map_err(|e| e.to_string())?;
    let lang = conv
        .lang
        .as_deref()
        .and_then(crate::lang::Lang::parse)
        .unwrap_or(bot.clinic.language);

    apply_setup(&store, &bot, conv, lang, &now).await?;

    let outbox = Arc::new(Outbox::default());
    let service = Service::new(store.clone(), bot.clone()).with_sender(outbox.clone());
    for (i, t) in conv.turns.iter().enumerate() {
        if let Some(n) = &t.now {
            now = super::parse_now(n, &tz).map_err(|e| e.to_string())?;
        }
        if t.reminders {
            let sent = crate::reminders::run_once(&service, outbox.as_ref(), "scripted", now.timestamp())
                .await
                .map_err(|e| format!("turn {}: sending the due reminders: {e}", i + 1))?;
            if sent == 0 {
                return Err(format!(
                    "  {}\n  turn {}: `reminders: true` but no reminder was due at {}",
                    conv.name,
                    i + 1,
                    now.datetime()
                ));
            }
        }
        let session_id = t.session.clone().unwrap_or_else(|| "main".into());
        if conv.lang.is_some() && store.load_session(&session_id).await.ok().flatten().is_none() {
            let mut s = Session::new(&session_id, TEST_CHANNEL, test_user(&session_id), lang);
            s.version = 1;
            store.save_session(&s).await.map_err(|e| e.to_string())?;
        }
        // `{code}`: the one-time code last sent to a contact, typed in as the patient would.
        let text = if t.user.contains("{code}") {
            let code = outbox.last_code().ok_or_else(|| {
                format!(
                    "turn {}: the turn types {{code}} but no verification code was sent",
                    i + 1
                )
            })?;
            t.user.replace("{code}", &code)
        } else {
            t.user.clone()
        };
        let req = TurnRequest {
            session_id: session_id.clone(),
            channel: TEST_CHANNEL.into(),
            user: test_user(&session_id),
            text,
            now: now.clone(),
            message_id: None,
            llm_budget: None,
        };
        let resp = service.handle(req).await.map_err(|e| format!("turn {}: {e}", i + 1))?;
        let joined = resp.replies.join("\n");
        if verbose {
            println!("[{}] you> {}", conv.name, t.user);
            for l in joined.lines() {
                println!("[{}] bot> {l}", conv.name);
            }
        }
        let mut problems = Vec::new();
        let lower = joined.to_lowercase();
        if let Some(b) = &t.bot {
            for want in b.list() {
                if !lower.contains(&want.to_lowercase()) {
                    problems.push(format!("the reply should contain {want:?}"));
                }
            }
        }
        if let Some(nb) = &t.not_bot {
            for bad in nb.list() {
                if lower.contains(&bad.to_lowercase()) {
                    problems.push(format!("the reply should not contain {bad:?}"));
                }
            }
        }
        if let Some(re) = &t.bot_regex {
            match regex::Regex::new(re) {
                Ok(r) if !r.is_match(&joined) => problems.push(format!("the reply should match /{re}/")),
                Ok(_) => {}
                Err(e) => problems.push(format!("bad regex /{re}/: {e}")),
            }
        }
        if let Some(st) = &t.state
            && *st != resp.state
        {
            problems.push(format!("state should be `{st}` but is `{}`", resp.state));
        }
        if let Some(slots) = &t.slots {
            for (k, v) in slots {
                match resp.slots.get(k) {
                    Some(got) if loosely_equal(got, v) => {}
                    got => problems.push(format!(
                        "slot `{k}` should be {v} but is {}",
                        got.map(|g| g.to_string()).unwrap_or("missing".into())
                    )),
                }
            }
        }
        if let Some(w) = t.waiting_for_staff
            && w != resp.waiting_for_staff
        {
            problems.push(format!("waiting_for_staff should be {w}"));
        }
        for d in &resp.diagnostics {
            problems.push(format!("flow problem: {d}"));
        }
        if !problems.is_empty() {
            return Err(format!(
                "  {}\n  turn {} (session {session_id}) you> {}\n  bot> {}\n  - {}",
                conv.name,
                i + 1,
                t.user,
                joined.replace('\n', "\n  bot> "),
                problems.join("\n  - ")
            ));
        }
    }
    if let Some(exp) = &conv.expect {
        check_expect(&store, exp)
            .await
            .map_err(|e| format!("  {}\n  at the end: {e}", conv.name))?;
    }
    Ok(())
}

/// The channel of scripted conversations; each `session:` is its own contact.
const TEST_CHANNEL: &str = "test";

fn test_user(session: &str) -> String {
    format!("user-{session}")
}

/// The messages a scripted conversation sends to other contacts (verification codes).
#[derive(Default)]
struct Outbox {
    sent: std::sync::Mutex<Vec<crate::outbound::Outbound>>,
}

impl Outbox {
    fn last_code(&self) -> Option<String> {
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter().rev().find_map(|m| crate::identity::find_code(&m.text))
    }
}

impl crate::outbound::Sender for Outbox {
    fn deliver<'a>(&'a self, msg: &'a crate::outbound::Outbound) -> crate::outbound::SendFuture<'a> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).push(msg.clone());
        Box::pin(async { Ok(()) })
    }
}

async fn check_expect(store: &Store, exp: &Expect) -> Result<(), String> {
    if let Some(want) = &exp.appointments {
        let all = store
            .list_appointments(&AppointmentFilter::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut docs: Vec<Value> = all
            .iter()
            .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
            .collect();
        if docs.len() != want.len() {
            return Err(format!(
                "expected {} appointment(s), found {}: {}",
                want.len(),
                docs.len(),
                Value::Array(docs.clone())
            ));
        }
        for w in want {
            let pos = docs.iter().position(|d| w.iter().all(|(k, v)| loosely_equal(&d[k], v)));
            match pos {
                Some(p) => {
                    docs.remove(p);
                }
                None => return Err(format!("no stored appointment matches {}", Value::Object(w.clone()))),
            }
        }
    }
    if let Some(n) = exp.escalations {
        let open = store
            .list_escalations(Some(EscalationStatus::Open), 1000)
            .await
            .map_err(|e| e.to_string())?;
        if open.len() != n {
            return Err(format!("expected {n} open escalation(s), found {}", open.len()));
        }
    }
    if let Some(n) = exp.reminders {
        let pending = store
            .list_reminders(Some(ReminderStatus::Pending), 1000)
            .await
            .map_err(|e| e.to_string())?;
        if pending.len() != n {
            return Err(format!("expected {n} pending reminder(s), found {}", pending.len()));
        }
    }
    Ok(())
}

/// Equal, treating "10:00" and "10:00:00" alike and numbers by value.
pub(crate) fn loosely_equal(got: &Value, want: &Value) -> bool {
    if got == want {
        return true;
    }
    match (got, want) {
        (Value::String(a), Value::String(b)) => {
            a.trim_end_matches(":00") == b.trim_end_matches(":00") || a.eq_ignore_ascii_case(b)
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => *a == b.to_string(),
        _ => false,
    }
}
