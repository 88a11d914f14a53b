//! Stage one of the flow language: the files exactly as written, deserialized with
//! `deny_unknown_fields` so a typo in a key is an error, not a silently ignored line.
//! Nothing here is checked beyond shape; `compile` does the rest and collects every error.

use std::collections::BTreeMap;

pub use indexmap_like::OrderedMap;
use serde::Deserialize;

/// Maps keep the order they are written in (states run top to bottom by default).
pub mod indexmap_like {
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

    #[derive(Debug, Clone, PartialEq)]
    pub struct OrderedMap<V>(pub Vec<(String, V)>);

    impl<V> Default for OrderedMap<V> {
        fn default() -> Self {
            OrderedMap(Vec::new())
        }
    }

    impl<V> OrderedMap<V> {
        pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
            self.0.iter().map(|(k, v)| (k, v))
        }
        pub fn len(&self) -> usize {
            self.0.len()
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub fn get(&self, key: &str) -> Option<&V> {
            self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
        }
        pub fn keys(&self) -> impl Iterator<Item = &String> {
            self.0.iter().map(|(k, _)| k)
        }
    }

    impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V2<V>(std::marker::PhantomData<V>);
            impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
                type Value = OrderedMap<V>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a mapping")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = m.next_entry::<String, V>()? {
                        out.push((k, v));
                    }
                    Ok(OrderedMap(out))
                }
            }
            d.deserialize_map(V2(std::marker::PhantomData))
        }
    }
}

/// A reply or question: an inline minijinja template, a template file in prompts/
/// (`confirm.j2`), or one of those per language (`{es: ..., en: ...}`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RawText {
    One(String),
    PerLang(BTreeMap<String, String>),
}

/// One flow file (flows/<name>.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    pub flow: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Intents that start this flow (when idle, or as a digression mid-flow).
    #[serde(default)]
    pub trigger: Vec<String>,
    /// Whether another flow may interrupt this one (default true).
    #[serde(default)]
    pub interruptible: Option<bool>,
    #[serde(default)]
    pub slots: OrderedMap<RawSlot>,
    /// The first state (default: the first one written).
    #[serde(default)]
    pub start: Option<String>,
    pub states: OrderedMap<RawState>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlot {
    /// A file in schemas/ (`date.json`) or an inline JSON Schema.
    pub schema: serde_json::Value,
    /// What kind of value the NLU extracts for it: specialty, coverage, date, time, document,
    /// name, number, text, window, email. Default: the slot name or the schema file stem, when it is one of those.
    #[serde(default)]
    pub entity: Option<String>,
    /// The question asked when the slot is missing (required when a state collects it).
    #[serde(default)]
    pub ask: Option<RawText>,
    /// Said (then the question again) when a value fails the schema.
    #[serde(default)]
    pub invalid: Option<RawText>,
    /// The list the bot just offered (an expression, e.g. `result.alternatives`): the slot is
    /// then answered by choosing one of them (see docs/flows.md, "Choosing among options").
    #[serde(default)]
    pub options: Option<String>,
    /// Said when an answer fits several of the `options` (it sees `matches`).
    #[serde(default)]
    pub ambiguous: Option<RawText>,
    /// For a date slot: `future` (default: "el viernes" is the next one) or `past` ("el
    /// viernes" is the last one; for questions such as when a lab test was done).
    #[serde(default)]
    pub direction: Option<String>,
    /// `true`: the patient can decline it when asked ("no", "no tengo", "skip"); it is then
    /// answered with nothing (`null`) and not asked again.
    #[serde(default)]
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// Said when the state is entered.
    #[serde(default)]
    pub say: Option<RawText>,
    /// Slots to fill; each missing one is asked in turn.
    #[serde(default)]
    pub collect: Vec<String>,
    /// A built-in action; its result is `result` in `next`.
    #[serde(default)]
    pub action: Option<String>,
    /// Arguments of the action: strings are Rhai expressions, other values are literals.
    #[serde(default)]
    pub with: Option<OrderedMap<serde_json::Value>>,
    /// Wait for one of these intents (e.g. [affirm, deny]); `intent` holds it in `next`.
    #[serde(default)]
    pub expect: Vec<String>,
    /// With `expect`: a bare number answers too, "1" meaning the first expected intent,
    /// "2" the second… (questions that list numbered options, like a reminder's).
    #[serde(default)]
    pub numbered: bool,
    /// Assign slots on entry: slot → Rhai expression.
    #[serde(default)]
    pub set: OrderedMap<String>,
    /// Forget slots on entry.
    #[serde(default)]
    pub clear: Vec<String>,
    /// Where to go: a state name, or a list of guarded transitions (first match wins).
    #[serde(default)]
    pub next: Option<RawNext>,
    /// The flow ends after this state (after `say`).
    #[serde(default)]
    pub end: bool,
    /// Rephrase replies of turns that end waiting here (overrides the clinic's `llm.phrase`).
    #[serde(default)]
    pub phrase: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawNext {
    Goto(String),
    Branches(Vec<RawTransition>),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTransition {
    /// Rhai guard; the transition is taken when it is true. No `if` = always.
    #[serde(default, rename = "if")]
    pub when: Option<String>,
    /// What the condition means, in the admin's words (`when: "hay alternativas"`): the
    /// label of the arrow in `clinicflow graph`.
    #[serde(default, rename = "when")]
    pub label: Option<String>,
    #[serde(default)]
    pub say: Option<RawText>,
    #[serde(default)]
    pub set: OrderedMap<String>,
    #[serde(default)]
    pub clear: Vec<String>,
    /// Fire-and-forget actions (their results are not used).
    #[serde(default, rename = "do")]
    pub effects: Vec<RawDo>,
    #[serde(default)]
    pub goto: Option<String>,
    /// End this flow (the interrupted one, if any, resumes).
    #[serde(default)]
    pub end: bool,
    /// Hand over to another flow (this one ends; the slots with the same name carry over).
    #[serde(default)]
    pub flow: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDo {
    pub action: String,
    #[serde(default)]
    pub with: Option<OrderedMap<serde_json::Value>>,
}

/// flows/intents.yaml
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntentsFile {
    pub intents: OrderedMap<RawIntent>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntent {
    pub description: String,
    /// Example phrases per language: {es: [...], en: [...]}.
    pub examples: BTreeMap<String, Vec<String>>,
}

/// flows/global.yaml: behaviour that applies in every flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGlobalFile {
    pub global: RawGlobal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGlobal {
    /// Said to a greeting when idle (and before the first reply of a conversation that starts
    /// with a request).
    pub greeting: RawBehaviour,
    pub help: RawBehaviour,
    /// Forget everything and start over.
    pub restart: RawBehaviour,
    /// Leave the current flow.
    pub cancel: RawBehaviour,
    /// Ask for a person: escalates to staff.
    pub handoff: RawBehaviour,
    /// Said once per conversation when the patient writes while the clinic is closed.
    #[serde(default)]
    pub out_of_hours: Option<RawText>,
    /// While staff has the conversation, any message gets this.
    pub waiting_for_staff: RawText,
    pub fallback: RawFallback,
    /// The appointment reminder the scheduler sends; a built-in text without it.
    #[serde(default)]
    pub reminder: Option<RawText>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBehaviour {
    /// Exact commands that trigger it ("/ayuda").
    #[serde(default)]
    pub commands: Vec<String>,
    /// Intents that trigger it.
    #[serde(default)]
    pub intents: Vec<String>,
    pub say: RawText,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    /// Said when a message is not understood (then the pending question again).
    pub say: RawText,
    /// After this many consecutive misunderstood messages, escalate to staff (default 2).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Said when escalating after too many misunderstood messages.
    pub escalate_say: RawText,
}
