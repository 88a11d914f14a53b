//! The labelled message files of `clinicflow eval` (tests/nlu/*.yaml): reading them, checking
//! every label against the compiled bot, and building the session each case starts from.
//!
//! A label that could never be right (an unknown intent, a slot the flow does not have, a value
//! its schema refuses, a state that does not exist) is a malformed file, reported with
//! file:line:column, so a typo in the set never shows up as an NLU "miss".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::engine::session::{Frame, Session, Slots, Wait};
use crate::flow::bot::{Bot, StateKind};
use crate::lang::Lang;

/// The intent label of a message that asks for nothing by itself: it answers the pending
/// question ("el jueves", "30111222", "la 2") or is outside what the clinic's intents cover.
pub const NO_INTENT: &str = "none";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Clinic-local time every case of the file is evaluated at ("2026-11-23T10:00").
    now: String,
    #[serde(default)]
    lang: Option<String>,
    cases: Vec<RawCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    message: String,
    #[serde(default = "start")]
    state: String,
    #[serde(default)]
    asking: Option<String>,
    #[serde(default)]
    filled: BTreeMap<String, Value>,
    #[serde(default)]
    lang: Option<String>,
    expect: RawExpect,
}

fn start() -> String {
    "start".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    intent: OneOrMany,
    #[serde(default)]
    slots: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// One labelled message, checked and ready to run.
#[derive(Debug, Clone)]
pub struct Case {
    /// "tests/nlu/booking.yaml:42" (where the case starts), for failure listings.
    pub at: String,
    pub message: String,
    /// The conversation before the message.
    pub session: Session,
    pub now: jiff::Zoned,
    /// Any of these is right; `none` means "no intent".
    pub intents: Vec<String>,
    /// Slot name → the value a careful reader would store.
    pub slots: BTreeMap<String, Value>,
}

/// A case file that cannot be used, with where and why in plain words.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct CaseError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every *.yaml / *.yml file in `dir`, sorted.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and checks one case file.
pub fn load_file(bot: &Bot, path: &Path) -> Result<Vec<Case>, CaseError> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| CaseError {
        file: name.clone(),
        line: 1,
        col: 1,
        message: format!("cannot read the file: {e}"),
    })?;
    parse(bot, &name, &src)
}

/// Parses and checks the text of one case file (`name` is used in error positions).
pub fn parse(bot: &Bot, name: &str, src: &str) -> Result<Vec<Case>, CaseError> {
    let doc = crate::flow::yaml::parse(src).map_err(|e| CaseError {
        file: name.to_string(),
        line: e.pos.line,
        col: e.pos.col,
        message: format!("this is not valid YAML: {}", e.message),
    })?;
    let err_at = |path: &str, message: String| {
        let pos = doc.nearest(path);
        CaseError {
            file: name.to_string(),
            line: pos.line,
            col: pos.col,
            message,
        }
    };
    let raw: RawFile = serde_path_to_error::deserialize(&doc.value).map_err(|e| {
        let path = e.path().to_string();
        let hint = "each file has `now:`, optional `lang:` and `cases:`, a list of \
                    { message, state, filled, asking, lang, expect: { intent, slots } }";
        err_at(&path, format!("{} (at `{path}`; {hint})", e.inner()))
    })?;
    let tz = bot.clinic.tz.clone();
    let now = super::super::parse_now(&raw.now, &tz).map_err(|e| err_at("now", e.to_string()))?;
    let file_lang = match &raw.lang {
        Some(l) => parse_lang(l).map_err(|m| err_at("lang", m))?,
        None => bot.clinic.language,
    };
    if raw.cases.is_empty() {
        return Err(err_at(
            "cases",
            "`cases:` is empty; add at least one labelled message".into(),
        ));
    }
    let mut out = Vec::with_capacity(raw.cases.len());
    for (i, rc) in raw.cases.into_iter().enumerate() {
        let base = format!("cases[{i}]");
        let line = doc.nearest(&base).line;
        let lang = match &rc.lang {
            Some(l) => parse_lang(l).map_err(|m| err_at(&format!("{base}.lang"), m))?,
            None => file_lang,
        };
        if rc.message.trim().is_empty() {
            return Err(err_at(&format!("{base}.message"), "the message is empty".into()));
        }
        let session = build_session(bot, &rc, lang).map_err(|(field, m)| err_at(&format!("{base}.{field}"), m))?;
        let intents = match rc.expect.intent {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        if intents.is_empty() {
            return Err(err_at(
                &format!("{base}.expect.intent"),
                "give at least one intent".into(),
            ));
        }
        for intent in &intents {
            if !known_intent(bot, intent) {
                return Err(err_at(
                    &format!("{base}.expect.intent"),
                    format!(
                        "`{intent}` is not an intent of flows/intents.yaml; use one of {}, or `{NO_INTENT}`",
                        intent_names(bot).join(", ")
                    ),
                ));
            }
        }
        check_slots(bot, &session, &intents, &rc.expect.slots)
            .map_err(|(slot, m)| err_at(&format!("{base}.expect.slots.{slot}"), m))?;
        out.push(Case {
            at: format!("{name}:{line}"),
            message: rc.message,
            session,
            now: now.clone(),
            intents,
            slots: rc.expect.slots,
        });
    }
    Ok(out)
}

fn parse_lang(l: &str) -> Result<Lang, String> {
    Lang::parse(l).ok_or_else(|| format!("`{l}` is not a language; use `es` or `en`"))
}

fn known_intent(bot: &Bot, name: &str) -> bool {
    name == NO_INTENT || name == "affirm" || name == "deny" || bot.intents.iter().any(|i| i.name == name)
}

fn intent_names(bot: &Bot) -> Vec<String> {
    let mut v: Vec<String> = bot.intents.iter().map(|i| i.name.clone()).collect();
    v.extend(["affirm".into(), "deny".into()]);
    v
}

/// The session as it stands before the message: `start` (nothing going on) or one active
/// flow `flow.state` with the slots in `filled`, waiting as the engine would there.
fn build_session(bot: &Bot, rc: &RawCase, lang: Lang) -> Result<Session, (&'static str, String)> {
    let mut s = Session::new("eval", "eval", "eval", lang);
    // Past the first turn and greeted, as in a conversation under way: the NLU does not care,
    // but a session that looks new would make the engine add its opening greeting.
    s.turns = 1;
    s.greeted = true;
    let state = rc.state.trim();
    if state == "start" || state == "idle" {
        if !rc.filled.is_empty() || rc.asking.is_some() {
            return Err((
                "state",
                "`filled:` and `asking:` need an active flow; write `state: flow.state`".into(),
            ));
        }
        return Ok(s);
    }
    let Some((flow_name, state_name)) = state.split_once('.') else {
        return Err((
            "state",
            format!("`{state}` is not a state; write `start` or `flow.state`, e.g. `book_appointment.details`"),
        ));
    };
    let Some(flow) = bot.flow(flow_name) else {
        let names: Vec<&str> = bot.flows.iter().map(|f| f.name.as_str()).collect();
        return Err((
            "state",
            format!("there is no flow `{flow_name}`; the flows are {}", names.join(", ")),
        ));
    };
    let Some(st) = flow.state(state_name) else {
        let names: Vec<&str> = flow.states.iter().map(|s| s.name.as_str()).collect();
        return Err((
            "state",
            format!(
                "flow `{flow_name}` has no state `{state_name}`; its states are {}",
                names.join(", ")
            ),
        ));
    };
    let mut slots = Slots::new();
    for (k, v) in &rc.filled {
        let Some(slot) = flow.slot(k) else {
            return Err(("filled", format!("flow `{flow_name}` has no slot `{k}`")));
        };
        if !slot.schema.is_valid(v) {
            return Err(("filled", format!("{v} is not a valid value for slot `{k}`")));
        }
        slots.insert(k.clone(), v.clone());
    }
    let wait = match (&st.kind, &rc.asking) {
        (_, Some(a)) => {
            if flow.slot(a).is_none() {
                return Err(("asking", format!("flow `{flow_name}` has no slot `{a}`")));
            }
            Wait::Slot(a.clone())
        }
        // A collecting state asks its first missing slot, exactly as the engine does.
        (StateKind::Collect(list), None) => match list.iter().find(|n| !slots.contains_key(*n)) {
            Some(n) => Wait::Slot(n.clone()),
            None => {
                return Err((
                    "filled",
                    format!("every slot `{state_name}` collects is filled, so it would not be waiting for a message"),
                ));
            }
        },
        (StateKind::Expect(_), None) => Wait::Intent,
        _ => {
            return Err((
                "state",
                format!(
                    "state `{state_name}` does not wait for the patient (it neither collects slots nor expects intents)"
                ),
            ));
        }
    };
    s.stack.push(Frame {
        flow: flow.name.clone(),
        state: st.name.clone(),
        slots,
        wait,
        result: Value::Null,
    });
    Ok(s)
}

/// Expected slots must be slots of the active flow or of a flow an expected intent starts,
/// and values those slots accept.
fn check_slots(
    bot: &Bot,
    session: &Session,
    intents: &[String],
    slots: &BTreeMap<String, Value>,
) -> Result<(), (String, String)> {
    let mut flows: Vec<&crate::flow::bot::Flow> = Vec::new();
    if let Some(f) = session.top().and_then(|f| bot.flow(&f.flow)) {
        flows.push(f);
    }
    flows.extend(intents.iter().filter_map(|i| bot.flow_for_intent(i)));
    for (k, v) in slots {
        let candidates: Vec<_> = flows.iter().filter_map(|f| f.slot(k)).collect();
        if candidates.is_empty() {
            let names: Vec<&str> = flows.iter().map(|f| f.name.as_str()).collect();
            return Err((
                k.clone(),
                if names.is_empty() {
                    format!("no flow is active or started by the expected intent, so nothing would store slot `{k}`")
                } else {
                    format!("slot `{k}` is not a slot of {}", names.join(" or "))
                },
            ));
        }
        if !candidates.iter().any(|s| s.schema.is_valid(v)) {
            return Err((
                k.clone(),
                format!("{v} is not a value slot `{k}` accepts (see its schema in schemas/)"),
            ));
        }
    }
    Ok(())
}

/// "start", "book_appointment.confirm" or "book_appointment.details asking date".
pub fn describe(s: &Session) -> String {
    match s.top() {
        None => "start".into(),
        Some(f) => match &f.wait {
            Wait::Slot(slot) => format!("{}.{} asking {slot}", f.flow, f.state),
            _ => format!("{}.{}", f.flow, f.state),
        },
    }
}
