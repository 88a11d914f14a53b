//! Stage two: the compiled, immutable bot. Built once by `compile()`; a turn only reads it.
//! Names are resolved to indexes, Rhai is parsed to ASTs, templates are parsed, schemas are
//! compiled, so nothing is parsed during a turn.

use std::collections::HashMap;
use std::sync::Arc;

use super::clinic::Clinic;
use super::script::{Expr, Scripts};
use super::templates::{Templates, Text};
use crate::actions::ActionName;
use crate::nlu::rules::RulesNlu;
use crate::nlu::{EntityKind, IntentDef};

pub struct Bot {
    pub clinic: Clinic,
    /// `clinic.value` as a template value, converted once here: every text a turn says
    /// shares it (see engine/context.rs `template_context`).
    pub clinic_template: minijinja::value::Value,
    pub intents: Vec<IntentDef>,
    pub flows: Vec<Flow>,
    pub flow_index: HashMap<String, usize>,
    pub global: Global,
    pub templates: Templates,
    pub scripts: Scripts,
    pub nlu: RulesNlu,
    /// Number of source files compiled (for reports).
    pub files: usize,
    /// The files it was compiled from (`clinicflow test` compiles a variant of them for a
    /// conversation whose `setup.clinic` changes a setting).
    pub sources: super::compile::Sources,
}

impl Bot {
    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flow_index.get(name).map(|&i| &self.flows[i])
    }

    /// The flow started by this intent, if any.
    pub fn flow_for_intent(&self, intent: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.triggers.iter().any(|t| t == intent))
    }
}

pub struct Flow {
    pub name: String,
    pub description: String,
    pub triggers: Vec<String>,
    pub interruptible: bool,
    pub slots: Vec<Slot>,
    pub start: usize,
    pub states: Vec<State>,
    pub file: String,
}

impl Flow {
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }

    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.iter().find(|s| s.name == name)
    }

    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|s| s.name == name)
    }

    /// The first state that collects `slot` (where a correction goes back to).
    pub fn collector_of(&self, slot: &str) -> Option<usize> {
        self.states
            .iter()
            .position(|s| matches!(&s.kind, StateKind::Collect(list) if list.iter().any(|x| x == slot)))
    }
}

pub struct Slot {
    pub name: String,
    /// What the NLU extracts for it; None for slots only set by `set:`.
    pub entity: Option<EntityKind>,
    pub schema: Arc<jsonschema::Validator>,
    /// The schema as written (the LLM's answer schema is built from it at prompt time).
    pub schema_json: Arc<serde_json::Value>,
    pub ask: Option<Text>,
    pub invalid: Option<Text>,
    /// `options:`: the list this slot chooses from (see engine/options.rs).
    pub options: Option<Expr>,
    /// Said when an answer fits several options.
    pub ambiguous: Option<Text>,
    /// `direction: past`: dates said for it resolve to the past.
    pub past: bool,
    /// `optional: true`: a no when it is asked answers it with nothing (`null`).
    pub optional: bool,
}

pub struct State {
    pub name: String,
    pub say: Option<Text>,
    pub set: Vec<(String, Expr)>,
    pub clear: Vec<String>,
    pub kind: StateKind,
    /// An `expect` state whose intents can also be picked by number ("2" = the second).
    pub numbered: bool,
    pub next: Vec<Transition>,
    pub end: bool,
    pub line: usize,
    /// `phrase:` override for turns that end waiting in this state (None: the clinic's).
    pub phrase: Option<bool>,
}

pub enum StateKind {
    Plain,
    Collect(Vec<String>),
    Action(ActionCall),
    Expect(Vec<String>),
}

pub struct ActionCall {
    pub action: ActionName,
    pub args: Vec<(String, Arg)>,
}

pub enum Arg {
    Expr(Expr),
    Literal(serde_json::Value),
}

pub struct Transition {
    pub guard: Option<Expr>,
    /// The admin's description of the guard (`when:`), for diagrams.
    pub label: Option<String>,
    pub say: Option<Text>,
    pub set: Vec<(String, Expr)>,
    pub clear: Vec<String>,
    pub effects: Vec<ActionCall>,
    pub target: Target,
}

pub enum Target {
    Goto(usize),
    End,
    Flow(String),
}

pub struct Global {
    pub greeting: Behaviour,
    pub help: Behaviour,
    pub restart: Behaviour,
    pub cancel: Behaviour,
    pub handoff: Behaviour,
    pub out_of_hours: Option<Text>,
    pub waiting_for_staff: Text,
    pub fallback: Text,
    pub max_attempts: u32,
    pub escalate_say: Text,
    /// The appointment reminder (`appointment`, `reminder`, `session`, `clinic`, `now`);
    /// `None`: the scheduler's built-in text.
    pub reminder: Option<Text>,
}

pub struct Behaviour {
    /// Lower-cased exact commands.
    pub commands: Vec<String>,
    pub intents: Vec<String>,
    pub say: Text,
}

impl Behaviour {
    pub fn matches(&self, text: &str, intent: Option<&str>) -> bool {
        let t = text.trim().to_lowercase();
        self.commands.contains(&t) || intent.is_some_and(|i| self.intents.iter().any(|x| x == i))
    }
}

/// Intents the engine knows without intents.yaml (the rules NLU's yes/no lexicon).
pub const BUILTIN_INTENTS: [&str; 2] = ["affirm", "deny"];
