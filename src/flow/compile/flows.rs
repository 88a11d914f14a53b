//! One flow file → `Flow`: slots, states, transitions; names resolved, graph checked.

use std::collections::{HashSet, VecDeque};

use serde_json::Value;

use super::global::check_intent;
use super::{Env, File, compile_expr, compile_text};
use crate::actions::ActionName;
use crate::flow::bot::{ActionCall, Arg, Flow, Slot, State, StateKind, Target, Transition};
use crate::flow::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::flow::raw::{OrderedMap, RawDo, RawFlow, RawNext, RawSlot, RawState, RawTransition};
use crate::flow::script::Expr;
use crate::flow::yaml::Doc;
use crate::nlu::EntityKind;

pub(crate) fn compile(file: &mut File<'_>, env: &mut Env<'_>) -> Option<Flow> {
    let value = file.doc.value.clone();
    let raw = match file.deser::<RawFlow>(&value, "") {
        Some(r) => r,
        None => {
            // Report the errors of every other state too, not just the first one serde met.
            if let Some(Value::Object(states)) = value.get("states") {
                for (name, v) in states {
                    let _ = file.deser::<RawState>(v, &format!("states.{name}"));
                }
            }
            return None;
        }
    };
    let before = file.diags.len();
    if raw.flow.trim().is_empty() || raw.flow.contains(char::is_whitespace) {
        file.err(
            "flow",
            format!("`{}` is not a usable flow name", raw.flow),
            "use lowercase words joined by _ (book_appointment)",
        );
    }
    for (i, t) in raw.trigger.iter().enumerate() {
        check_intent(file, env, t, &format!("trigger[{i}]"));
    }

    // Templates of this flow may read its slots (and `check` says so when they read others).
    env.slots = Some(raw.slots.keys().cloned().collect());
    let slots: Vec<Slot> = raw
        .slots
        .iter()
        .filter_map(|(name, s)| compile_slot(file, env, name, s))
        .collect();
    let slot_names: Vec<&str> = raw.slots.keys().map(String::as_str).collect();
    let state_names: Vec<&str> = raw.states.keys().map(String::as_str).collect();
    if raw.states.is_empty() {
        file.err(
            "states",
            "this flow has no states",
            "add at least one state under `states:`",
        );
        return None;
    }
    let start = match &raw.start {
        None => 0,
        Some(s) => match state_names.iter().position(|n| n == s) {
            Some(i) => i,
            None => {
                unknown(file, "start", "state", s, &state_names);
                0
            }
        },
    };

    for (name, st) in raw.states.iter() {
        for (i, c) in st.collect.iter().enumerate() {
            if let Some(sl) = slots.iter().find(|s| s.name == *c)
                && sl.ask.is_none()
            {
                file.err(
                    &format!("states.{name}.collect[{i}]"),
                    format!("slot `{c}` is asked for, but it has no question"),
                    format!("add `ask:` to slot `{c}` under `slots:`"),
                );
            }
            if let Some(sl) = slots.iter().find(|s| s.name == *c)
                && sl.entity.is_none()
            {
                file.err(
                    &format!("states.{name}.collect[{i}]"),
                    format!("slot `{c}` is asked for, but nothing says what kind of value it holds"),
                    "add `entity:` to the slot (specialty, coverage, date, time, document, name, number, text or window)",
                );
            }
        }
    }
    let names = Names {
        slots: &slot_names,
        states: &state_names,
    };
    let mut states = Vec::new();
    for (name, st) in raw.states.iter() {
        states.push(compile_state(file, env, &names, name, st));
    }
    if file.diags.len() == before {
        check_graph(file, &raw, start, &states);
    }

    if file.diags.len() > before {
        return None;
    }
    Some(Flow {
        name: raw.flow.clone(),
        description: raw.description.clone().unwrap_or_default(),
        triggers: raw.trigger.clone(),
        interruptible: raw.interruptible.unwrap_or(true),
        slots,
        start,
        states,
        file: file.path.to_string(),
    })
}

struct Names<'a> {
    slots: &'a [&'a str],
    states: &'a [&'a str],
}

fn unknown(file: &mut File<'_>, path: &str, what: &str, name: &str, known: &[&str]) {
    let help = did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
        if known.is_empty() {
            format!("this flow declares no {what}s")
        } else {
            format!("{what}s here: {}", known.join(", "))
        }
    });
    file.err(path, format!("unknown {what} `{name}`"), help);
}

fn compile_slot(file: &mut File<'_>, env: &mut Env<'_>, name: &str, raw: &RawSlot) -> Option<Slot> {
    let path = format!("slots.{name}");
    let (schema, stem) = match &raw.schema {
        Value::String(f) => {
            let key = f.trim_start_matches("schemas/");
            match env.schemas.get(key) {
                Some(v) => (Some(v.clone()), key.trim_end_matches(".json").to_string()),
                None if env.broken_schemas.iter().any(|b| b == key) => (None, String::new()),
                None => {
                    let mut known: Vec<&str> = env.schemas.keys().map(String::as_str).collect();
                    known.sort();
                    // Words admins write (`fecha.json`) before spelling: `fecha` is not `choice`.
                    let help = match super::hints::schema_file_for(key).filter(|f| known.contains(f)) {
                        Some(f) => format!("did you mean `{f}`? Files in schemas/: {}", known.join(", ")),
                        None => did_you_mean(key, known.iter().copied())
                            .map(|h| format!("{h} Files in schemas/: {}", known.join(", ")))
                            .unwrap_or_else(|| {
                                format!(
                                    "files in schemas/: {}; put the JSON Schema file there or write the schema inline",
                                    known.join(", ")
                                )
                            }),
                    };
                    file.err(
                        &format!("{path}.schema"),
                        format!("schema file `{f}` not found in schemas/"),
                        help,
                    );
                    (None, String::new())
                }
            }
        }
        Value::Object(_) => match jsonschema::validator_for(&raw.schema) {
            Ok(v) => (Some(std::sync::Arc::new(v)), String::new()),
            Err(_) if super::hints::json_schema(&raw.schema).is_some() => {
                if let Some((msg, hint, key)) = super::hints::json_schema(&raw.schema) {
                    let at = format!("{path}.schema.{key}");
                    let pos = file.doc.pos(&at).unwrap_or_else(|| file.doc.nearest(&at));
                    let d = file.at(pos, format!("invalid schema: {msg}"));
                    file.diags.push(d.with_hint(hint));
                }
                (None, String::new())
            }
            Err(e) => {
                file.err(
                    &format!("{path}.schema"),
                    format!("invalid JSON Schema: {e}"),
                    "see https://json-schema.org for the keywords",
                );
                (None, String::new())
            }
        },
        _ => {
            file.err(
                &format!("{path}.schema"),
                "`schema` must be a file in schemas/ or an inline schema",
                "",
            );
            (None, String::new())
        }
    };
    // For the LLM's answer schema: as written, with clinic.yaml's lists filled in.
    let schema_json = match &raw.schema {
        Value::String(f) => env
            .schema_values
            .get(f.trim_start_matches("schemas/"))
            .cloned()
            .unwrap_or(Value::Null),
        v => v.clone(),
    };
    let entity = match &raw.entity {
        Some(e) => EntityKind::parse(e).or_else(|| {
            let kinds: Vec<&str> = EntityKind::ALL.iter().map(|k| k.as_str()).collect();
            unknown(file, &format!("{path}.entity"), "entity kind", e, &kinds);
            None
        }),
        None => EntityKind::parse(name)
            .or_else(|| EntityKind::parse(&stem))
            .or_else(|| {
                // Common slot names that say what they hold (document_id, patient_name, choice).
                [
                    ("document", EntityKind::Document),
                    ("name", EntityKind::Name),
                    ("choice", EntityKind::Number),
                ]
                .into_iter()
                .find(|(w, _)| name.contains(w) || stem.contains(w))
                .map(|(_, k)| k)
            }),
    };
    let ask = raw
        .ask
        .as_ref()
        .map(|t| compile_text(file, env, t, &format!("{path}.ask")));
    let invalid = raw
        .invalid
        .as_ref()
        .map(|t| compile_text(file, env, t, &format!("{path}.invalid")));
    let options = raw
        .options
        .as_ref()
        .and_then(|src| compile_expr(file, env, src, &format!("{path}.options")));
    // The "which one?" text also sees `matches`, the options the answer fitted.
    let names = std::mem::replace(&mut env.names, crate::engine::context::AMBIGUOUS_VARIABLES);
    let ambiguous = raw
        .ambiguous
        .as_ref()
        .map(|t| compile_text(file, env, t, &format!("{path}.ambiguous")));
    env.names = names;
    let past = match raw.direction.as_deref() {
        None | Some("future") => false,
        Some("past") => true,
        Some(other) => {
            file.err(
                &format!("{path}.direction"),
                format!("unknown direction `{other}`"),
                "write `direction: past` (dates said for this slot are in the past) or `direction: future` (the default)",
            );
            false
        }
    };
    Some(Slot {
        name: name.to_string(),
        entity,
        schema: schema?,
        schema_json: std::sync::Arc::new(schema_json),
        ask,
        invalid,
        options,
        ambiguous,
        past,
        optional: raw.optional.unwrap_or(false),
    })
}

fn compile_state(file: &mut File<'_>, env: &mut Env<'_>, names: &Names<'_>, name: &str, st: &RawState) -> State {
    let path = format!("states.{name}");
    let line = file.doc.key_pos(&path).map(|p| p.line).unwrap_or(1);
    let say = st
        .say
        .as_ref()
        .map(|t| compile_text(file, env, t, &format!("{path}.say")));
    let set = compile_set(file, env, names, &st.set, &format!("{path}.set"));
    check_slots(file, names, &st.clear, &format!("{path}.clear"));

    let used = [!st.collect.is_empty(), st.action.is_some(), !st.expect.is_empty()]
        .iter()
        .filter(|b| **b)
        .count();
    if used > 1 {
        file.err_key(
            &path,
            format!("state `{name}` mixes `collect`, `action` and `expect`"),
            "use one of them per state and chain states with `next`",
        );
    }
    let kind = if !st.collect.is_empty() {
        check_slots(file, names, &st.collect, &format!("{path}.collect"));
        StateKind::Collect(st.collect.clone())
    } else if let Some(a) = &st.action {
        match compile_call(
            file,
            env,
            names,
            a,
            st.with.as_ref(),
            &format!("{path}.action"),
            &format!("{path}.with"),
        ) {
            Some(c) => StateKind::Action(c),
            None => StateKind::Plain,
        }
    } else if !st.expect.is_empty() {
        for (i, e) in st.expect.iter().enumerate() {
            check_intent(file, env, e, &format!("{path}.expect[{i}]"));
        }
        StateKind::Expect(st.expect.clone())
    } else {
        if st.with.is_some() {
            file.err_key(
                &format!("{path}.with"),
                "`with` is only used together with `action`",
                "add `action:` or remove `with:`",
            );
        }
        StateKind::Plain
    };
    if st.numbered && st.expect.is_empty() {
        file.err_key(
            &format!("{path}.numbered"),
            "`numbered` only applies to a state with `expect`",
            "list the intents the numbers stand for in `expect:`, or remove `numbered:`",
        );
    }

    let next = match &st.next {
        None => {
            if !st.end {
                file.err_key(
                    &path,
                    format!("state `{name}` has no way out"),
                    "add `next: <state>` or `end: true`",
                );
            }
            Vec::new()
        }
        Some(_) if st.end => {
            file.err_key(
                &format!("{path}.end"),
                format!("state `{name}` has both `next` and `end`"),
                "keep one of them",
            );
            Vec::new()
        }
        Some(RawNext::Goto(target)) => {
            let t = RawTransition {
                goto: Some(target.clone()),
                ..Default::default()
            };
            compile_transition(file, env, names, &t, &format!("{path}.next"), true)
                .into_iter()
                .collect()
        }
        Some(RawNext::Branches(list)) => {
            if list.is_empty() {
                file.err(
                    &format!("{path}.next"),
                    "`next` has no transitions",
                    "add `- goto: <state>`",
                );
            }
            list.iter()
                .enumerate()
                .filter_map(|(i, t)| compile_transition(file, env, names, t, &format!("{path}.next[{i}]"), false))
                .collect()
        }
    };
    State {
        name: name.to_string(),
        say,
        set,
        clear: st.clear.clone(),
        kind,
        numbered: st.numbered && !st.expect.is_empty(),
        next,
        end: st.end,
        line,
        phrase: st.phrase,
    }
}

fn check_slots(file: &mut File<'_>, names: &Names<'_>, list: &[String], path: &str) {
    for (i, s) in list.iter().enumerate() {
        if !names.slots.contains(&s.as_str()) {
            unknown(file, &format!("{path}[{i}]"), "slot", s, names.slots);
        }
    }
}

fn compile_set(
    file: &mut File<'_>,
    env: &Env<'_>,
    names: &Names<'_>,
    set: &OrderedMap<String>,
    path: &str,
) -> Vec<(String, Expr)> {
    let mut out = Vec::new();
    for (slot, src) in set.iter() {
        let p = format!("{path}.{slot}");
        if !names.slots.contains(&slot.as_str()) {
            let help =
                did_you_mean(slot, names.slots.iter().copied()).unwrap_or_else(|| "declare it under `slots:`".into());
            file.err_key(&p, format!("unknown slot `{slot}`"), help);
            continue;
        }
        if let Some(e) = flow_expr(file, env, names, src, &p) {
            out.push((slot.clone(), e));
        }
    }
    out
}

fn compile_call(
    file: &mut File<'_>,
    env: &Env<'_>,
    names: &Names<'_>,
    action: &str,
    with: Option<&OrderedMap<Value>>,
    apath: &str,
    wpath: &str,
) -> Option<ActionCall> {
    let Some(name) = ActionName::parse(action) else {
        let known: Vec<&str> = ActionName::ALL.iter().map(|a| a.as_str()).collect();
        let help =
            did_you_mean(action, known.iter().copied()).unwrap_or_else(|| format!("actions: {}", known.join(", ")));
        file.err(apath, format!("unknown action `{action}`"), help);
        return None;
    };
    let mut args = Vec::new();
    for (k, v) in with.map(|w| w.iter().collect::<Vec<_>>()).unwrap_or_default() {
        let p = format!("{wpath}.{k}");
        match v {
            Value::String(src) => {
                if let Some(e) = flow_expr(file, env, names, src, &p) {
                    args.push((k.clone(), Arg::Expr(e)));
                }
            }
            other => args.push((k.clone(), Arg::Literal(other.clone()))),
        }
    }
    Some(ActionCall { action: name, args })
}

fn compile_transition(
    file: &mut File<'_>,
    env: &mut Env<'_>,
    names: &Names<'_>,
    t: &RawTransition,
    path: &str,
    short: bool,
) -> Option<Transition> {
    let guard = t
        .when
        .as_ref()
        .and_then(|src| flow_expr(file, env, names, src, &format!("{path}.if")));
    let say = t
        .say
        .as_ref()
        .map(|s| compile_text(file, env, s, &format!("{path}.say")));
    let set = compile_set(file, env, names, &t.set, &format!("{path}.set"));
    check_slots(file, names, &t.clear, &format!("{path}.clear"));
    let effects = t
        .effects
        .iter()
        .enumerate()
        .filter_map(|(i, RawDo { action, with })| {
            compile_call(
                file,
                env,
                names,
                action,
                with.as_ref(),
                &format!("{path}.do[{i}].action"),
                &format!("{path}.do[{i}].with"),
            )
        })
        .collect();
    let targets = [t.goto.is_some(), t.end, t.flow.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if targets != 1 {
        let msg = if targets == 0 {
            "this transition goes nowhere"
        } else {
            "this transition has more than one of `goto`, `end`, `flow`"
        };
        file.err(
            path,
            msg,
            "give it exactly one of `goto: <state>`, `end: true` or `flow: <flow>`",
        );
        return None;
    }
    let target = if let Some(g) = &t.goto {
        let p = if short {
            path.to_string()
        } else {
            format!("{path}.goto")
        };
        match names.states.iter().position(|s| s == g) {
            Some(i) => Target::Goto(i),
            None => {
                unknown(file, &p, "state", g, names.states);
                return None;
            }
        }
    } else if let Some(f) = &t.flow {
        Target::Flow(f.clone())
    } else {
        Target::End
    };
    Some(Transition {
        guard,
        label: t.label.clone(),
        say,
        set,
        clear: t.clear.clone(),
        effects,
        target,
    })
}

/// Unreachable states: nothing leads to them from the start state.
fn check_graph(file: &mut File<'_>, raw: &RawFlow, start: usize, states: &[State]) {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        if !seen.insert(i) {
            continue;
        }
        if let Some(s) = states.get(i) {
            for t in &s.next {
                if let Target::Goto(j) = t.target {
                    queue.push_back(j);
                }
            }
        }
    }
    for (i, name) in raw.states.keys().enumerate() {
        if !seen.contains(&i) && states.len() == raw.states.len() {
            file.err_key(
                &format!("states.{name}"),
                format!("state `{name}` is never reached"),
                "add a `next` or `goto` that leads to it, or remove it",
            );
        }
    }
}

/// Checks that need every flow: `flow:` targets exist.
pub(crate) fn check_cross_references(
    flows: &[Flow],
    docs: &[(String, Doc)],
    sources: &super::Sources,
    diags: &mut Diagnostics,
) {
    let mut names: Vec<&str> = flows.iter().map(|f| f.name.as_str()).collect();
    // A flow whose file has errors of its own (reported there) is still a flow: a `flow:`
    // pointing at it is not a second error.
    for (_, doc) in docs {
        if let Some(name) = doc.value.get("flow").and_then(|v| v.as_str())
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    // One intent starts one flow; two flows listening for it would make the choice arbitrary.
    let mut owner: std::collections::HashMap<&str, &Flow> = std::collections::HashMap::new();
    for flow in flows {
        let Some((_, doc)) = docs.iter().find(|(p, _)| *p == flow.file) else {
            continue;
        };
        for (i, t) in flow.triggers.iter().enumerate() {
            match owner.get(t.as_str()) {
                Some(first) => {
                    let path = format!("trigger[{i}]");
                    let pos = doc.pos(&path).unwrap_or_else(|| doc.nearest(&path));
                    let msg = format!("intent `{t}` already starts flow `{}` ({})", first.name, first.file);
                    diags.push(
                        Diagnostic::new(&flow.file, sources.text(&flow.file), pos, msg)
                            .with_help("an intent can start only one flow; remove it from one of the two"),
                    );
                }
                None => {
                    owner.insert(t.as_str(), flow);
                }
            }
        }
    }
    for flow in flows {
        let Some((_, doc)) = docs.iter().find(|(p, _)| *p == flow.file) else {
            continue;
        };
        for st in &flow.states {
            for (i, t) in st.next.iter().enumerate() {
                if let Target::Flow(target) = &t.target
                    && !names.contains(&target.as_str())
                {
                    let path = format!("states.{}.next[{i}].flow", st.name);
                    let pos = doc.pos(&path).unwrap_or_else(|| doc.nearest(&path));
                    let help = did_you_mean(target, names.iter().copied())
                        .unwrap_or_else(|| format!("flows: {}", names.join(", ")));
                    diags.push(
                        Diagnostic::new(
                            &flow.file,
                            sources.text(&flow.file),
                            pos,
                            format!("unknown flow `{target}`"),
                        )
                        .with_help(help),
                    );
                }
            }
        }
    }
}

/// A Rhai expression of this flow: compiled, and every `slots.NAME` it reads must be a slot of
/// the flow (strict variables only catch top-level names, and a typo there would silently read
/// as "missing" forever).
fn flow_expr(file: &mut File<'_>, env: &Env<'_>, names: &Names<'_>, src: &str, path: &str) -> Option<Expr> {
    let expr = compile_expr(file, env, src, path)?;
    static SLOT_READ: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\bslots\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)").expect("regex"));
    let mut ok = true;
    for cap in SLOT_READ.captures_iter(src) {
        let (Some(whole), Some(name)) = (cap.get(0), cap.get(1)) else {
            continue;
        };
        if names.slots.contains(&name.as_str()) {
            continue;
        }
        let base = file.doc.pos(path).unwrap_or_else(|| file.doc.nearest(path));
        let quoted = matches!(file.src.as_bytes().get(base.offset), Some(b'"' | b'\''));
        let shift = whole.start() + usize::from(quoted);
        let at = crate::flow::yaml::Pos {
            col: base.col + shift,
            offset: base.offset + shift,
            ..base
        };
        let help = did_you_mean(name.as_str(), names.slots.iter().copied())
            .unwrap_or_else(|| format!("slots of this flow: {}", names.slots.join(", ")));
        let d = file.at(
            at,
            format!(
                "`{}` reads slot `{}`, which this flow does not declare",
                whole.as_str(),
                name.as_str()
            ),
        );
        file.diags.push(d.with_help(help));
        ok = false;
    }
    ok.then_some(expr)
}
