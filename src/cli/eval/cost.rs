//! `clinicflow eval --cost`: what the LLM costs per booked appointment, ours against a bot that
//! sends the whole chat to the model on every turn. Both are counted with the gpt-4o-mini
//! tokenizer (o200k_base) over the demo's scripted conversations (tests/conversations/*.yaml),
//! replayed offline with the rules NLU and an in-memory store.
//!
//! OURS: on every patient turn the rules are not sure of, one NLU call: the prompt the LLM core
//! builds (system + user + the JSON Schema of the answer) in, and the answer JSON out (the
//! intent and slot values that turn produced, in the answer's shape). Turns the rules are sure
//! of cost nothing.
//! BASELINE: every turn, a system prompt with the clinic's whole context, the entire chat so
//! far and the new message in, and the bot's reply out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::score::slots_of;
use crate::cli::runner::Conversation;
use crate::engine::nlu_context;
use crate::engine::session::Session;
use crate::flow::bot::Bot;
use crate::nlu::Understand;
use crate::service::{Service, TurnRequest};
use crate::store::{AppointmentFilter, Store};

/// Tokens OpenAI adds around each chat message, and to prime the reply (the count the
/// OpenAI cookbook gives for the gpt-4o family).
const PER_MESSAGE: u64 = 3;
const PER_REQUEST: u64 = 3;

/// Tokens of `text` for gpt-4o-mini.
pub fn tokens(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_with_special_tokens(text)
        .len() as u64
}

/// One NLU prompt as the LLM core sends it.
#[derive(Debug, Clone)]
pub struct PromptText {
    pub system: String,
    pub user: String,
    /// The JSON Schema sent as `response_format`, serialized as sent.
    pub schema: String,
}

impl PromptText {
    /// Input tokens of the request: two messages and the schema.
    pub fn tokens(&self) -> u64 {
        PER_REQUEST + 2 * PER_MESSAGE + tokens(&self.system) + tokens(&self.user) + tokens(&self.schema)
    }
}

/// Builds the NLU prompt for a turn: (bot, session before the message, message, now).
pub type PromptFn<'a> = dyn Fn(&Bot, &Session, &str, &jiff::Zoned) -> PromptText + 'a;

#[derive(Debug, Clone, Default)]
pub struct ConversationCost {
    pub name: String,
    pub file: String,
    pub turns: usize,
    /// Turns the rules were not sure of (one NLU call each for us).
    pub llm_turns: usize,
    pub booked: usize,
    pub ours_in: u64,
    pub ours_out: u64,
    pub base_in: u64,
    pub base_out: u64,
    /// What ours would cost if every turn went to the LLM (the upper bound).
    pub every_in: u64,
    pub every_out: u64,
}

impl ConversationCost {
    pub fn ours(&self) -> u64 {
        self.ours_in + self.ours_out
    }
    pub fn base(&self) -> u64 {
        self.base_in + self.base_out
    }
    pub fn every(&self) -> u64 {
        self.every_in + self.every_out
    }
}

#[derive(Debug, Clone, Default)]
pub struct CostReport {
    /// Conversations that booked at least one appointment.
    pub rows: Vec<ConversationCost>,
    pub total: ConversationCost,
    /// Tokens of the baseline's system prompt (sent on every turn).
    pub base_system: u64,
}

impl CostReport {
    pub fn ours_per_booking(&self) -> f64 {
        per(self.total.ours(), self.total.booked)
    }
    pub fn base_per_booking(&self) -> f64 {
        per(self.total.base(), self.total.booked)
    }
    pub fn every_per_booking(&self) -> f64 {
        per(self.total.every(), self.total.booked)
    }
    /// ours / baseline (≤ 0.25 is what the LLM issue asks for).
    pub fn ratio(&self) -> f64 {
        frac(self.total.ours(), self.total.base())
    }
    /// ours with an LLM call on every turn / baseline.
    pub fn every_ratio(&self) -> f64 {
        frac(self.total.every(), self.total.base())
    }
    /// ours if a share `p` of the turns (e.g. the eval set's share of messages the rules are
    /// not sure of) went to the LLM: that share of the every-turn cost, over the baseline.
    pub fn ratio_at(&self, p: f64) -> f64 {
        p * self.every_ratio()
    }
}

fn frac(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn per(n: u64, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// Replays `files` and keeps the conversations that booked an appointment.
pub async fn run(bot: Arc<Bot>, files: &[PathBuf], prompt: &PromptFn<'_>) -> anyhow::Result<CostReport> {
    let system = baseline_system(&bot);
    let mut report = CostReport {
        base_system: tokens(&system),
        ..CostReport::default()
    };
    for file in files {
        let conv = crate::cli::runner::read_conversation(file).map_err(anyhow::Error::msg)?;
        let row = replay(bot.clone(), file, &conv, &system, prompt).await?;
        if row.booked > 0 {
            let t = &mut report.total;
            t.turns += row.turns;
            t.llm_turns += row.llm_turns;
            t.booked += row.booked;
            t.ours_in += row.ours_in;
            t.ours_out += row.ours_out;
            t.base_in += row.base_in;
            t.base_out += row.base_out;
            t.every_in += row.every_in;
            t.every_out += row.every_out;
            report.rows.push(row);
        }
    }
    report.total.name = "total".into();
    Ok(report)
}

async fn replay(
    bot: Arc<Bot>,
    file: &Path,
    conv: &Conversation,
    system: &str,
    prompt: &PromptFn<'_>,
) -> anyhow::Result<ConversationCost> {
    let store = Store::connect("mem://").await?;
    let tz = bot.clinic.tz.clone();
    let mut now = super::super::parse_now(&conv.now, &tz)?;
    let lang = conv
        .lang
        .as_deref()
        .and_then(crate::lang::Lang::parse)
        .unwrap_or(bot.clinic.language);
    let setup_booked = crate::cli::runner::apply_setup(&store, &bot, conv, lang, &now)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut row = ConversationCost {
        name: conv.name.clone(),
        file: file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    let system_tokens = PER_MESSAGE + tokens(system);
    // The baseline's chat so far, per conversation id: tokens of each message with its wrapper.
    let mut history: HashMap<String, u64> = HashMap::new();
    let mut recent: HashMap<String, Session> = HashMap::new();
    let service = Service::new(store.clone(), bot.clone());
    for t in &conv.turns {
        if let Some(n) = &t.now {
            now = super::super::parse_now(n, &tz)?;
        }
        let id = t.session.clone().unwrap_or_else(|| "main".into());
        let session = match store.load_session(&id).await? {
            Some(s) => s,
            None => {
                let s = Session::new(&id, "test", format!("user-{id}"), lang);
                if conv.lang.is_some() {
                    let mut saved = s.clone();
                    saved.version = 1;
                    store.save_session(&saved).await?;
                }
                s
            }
        };
        // With an LLM configured the service keeps the last exchanges in the session for the
        // prompt; this replay runs without one, so it keeps them the same way here.
        let mut session = session;
        if let Some(r) = recent.get(&id) {
            session.recent = r.recent.clone();
        }
        // The same understanding the service computes in this turn.
        let ctx = nlu_context(&bot, &session);
        let u = bot.nlu.understand(&t.user, &ctx, &now);
        row.turns += 1;
        let call_in = prompt(&bot, &session, &t.user, &now).tokens();
        let values: Map<String, Value> = slots_of(&bot, &session, &u).into_iter().collect();
        let call_out = tokens(&super::llm::answer(&bot, &session, u.intent_name(), &values));
        row.every_in += call_in;
        row.every_out += call_out;
        if !u.sure {
            row.llm_turns += 1;
            row.ours_in += call_in;
            row.ours_out += call_out;
        }
        let resp = service
            .handle(TurnRequest {
                session_id: id.clone(),
                channel: "test".into(),
                user: format!("user-{id}"),
                text: t.user.clone(),
                now: now.clone(),
                message_id: None,
                llm_budget: None,
            })
            .await?;
        let reply = resp.replies.join("\n");
        recent
            .entry(id.clone())
            .or_insert_with(|| Session::new(&id, "test", "", lang))
            .remember(remembered(&t.user), remembered(&reply));
        let user_tokens = PER_MESSAGE + tokens(&t.user);
        let reply_tokens = tokens(&reply);
        let so_far = history.entry(id).or_insert(0);
        row.base_in += PER_REQUEST + system_tokens + *so_far + user_tokens;
        row.base_out += reply_tokens;
        *so_far += user_tokens + PER_MESSAGE + reply_tokens;
    }
    let booked = store
        .list_appointments(&AppointmentFilter::default())
        .await?
        .iter()
        .filter(|a| serde_json::to_value(a).is_ok_and(|v| v["status"] == "booked"))
        .count();
    row.booked = booked.saturating_sub(setup_booked);
    Ok(row)
}

/// What the service keeps of one message for the LLM prompt (masked and cut, as it does).
fn remembered(text: &str) -> String {
    crate::llm::mask::mask(text).chars().take(400).collect()
}

/// The system prompt of a "send the whole chat every turn" assistant: what it must know to
/// answer anything the demo clinic's patients ask (the clinic's data as the admin wrote it,
/// and what the assistant does). It has no tool definitions or availability data, which a
/// real one would also need: the baseline is, if anything, counted low.
pub fn baseline_system(bot: &Bot) -> String {
    let mut s = format!(
        "You are the WhatsApp assistant of {}. Answer patients in their language (Spanish from \
         Argentina, formal \"usted\", or English), briefly and politely. You can book, cancel and \
         reschedule appointments, list a patient's appointments and answer questions about the \
         clinic. To book, collect the specialty, the day and the time, check the professional's \
         schedule, then the patient's full name, ID (DNI) number and health coverage, read \
         everything back and ask for confirmation before booking. To cancel or reschedule, ask \
         for the DNI first. Never give medical advice; if the patient asks for a person, say \
         the staff will reply. Today is given in each message.\n\nWhat you can do:\n",
        bot.clinic.name
    );
    for f in &bot.flows {
        s.push_str(&format!("- {}: {}\n", f.name, f.description));
    }
    s.push_str("\nThe clinic:\n");
    yamlish(&bot.clinic.value, 0, &mut s);
    s
}

/// Indented `key: value` lines: how a person would paste the clinic's data into a prompt.
fn yamlish(v: &Value, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::Object(_) | Value::Array(_) if !is_flat(v) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yamlish(v, depth + 1, out);
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", flat(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_flat(item) {
                    out.push_str(&format!("{pad}- {}\n", flat(item)));
                } else {
                    out.push_str(&format!("{pad}-\n"));
                    yamlish(item, depth + 1, out);
                }
            }
        }
        _ => out.push_str(&format!("{pad}{}\n", flat(v))),
    }
}

fn is_flat(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.iter().all(|x| !x.is_object() && !x.is_array()),
        Value::Object(m) => m.is_empty(),
        _ => true,
    }
}

fn flat(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(flat).collect::<Vec<_>>().join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
