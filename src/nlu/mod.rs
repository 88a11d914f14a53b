//! Understanding what the patient said: an intent and entity values.
//!
//! The NLU never decides what happens next; it only proposes. The engine maps entities to the
//! slots in scope and validates them against the slots' JSON Schemas.
//!
//! `rules` is the deterministic, offline NLU (the default). It reports `sure` so a later LLM
//! step knows when to help.

pub mod dates;
pub mod entities;
pub mod intents;
pub mod lexicons;
pub mod normalize;
pub mod rules;
pub mod times;
pub mod windows;

use serde::{Deserialize, Serialize};

use crate::flow::clinic::Clinic;
use crate::lang::Lang;

/// The kinds of value the NLU can extract. A slot declares one (`entity:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// Canonical specialty name from clinic.yaml ("Cardiología").
    Specialty,
    /// Canonical coverage name from clinic.yaml ("OSDE"), or "Particular" for private patients.
    Coverage,
    /// A calendar date, ISO "2026-11-26".
    Date,
    /// A clock time, "10:30".
    Time,
    /// A document number, digits only ("12345678").
    Document,
    /// A person's full name ("María López"). Only extracted when a name is asked for.
    Name,
    /// A small whole number (a choice from a list: "la 2", "2").
    Number,
    /// Any free text (the whole message). Only extracted when asked for.
    Text,
    /// A preferred time window, `{"from": "12:00", "to": "19:00"}` ("a la tarde", "de 10 a
    /// 12", "después de las 17"): a search inside it, never an exact time.
    Window,
    /// An email address as the patient wrote it (domain in lower case): anything shaped
    /// `name@domain`, so a typo ("ana@gmail") reaches the slot's schema, which refuses it.
    Email,
}

impl EntityKind {
    pub const ALL: [EntityKind; 10] = [
        EntityKind::Specialty,
        EntityKind::Coverage,
        EntityKind::Date,
        EntityKind::Time,
        EntityKind::Document,
        EntityKind::Name,
        EntityKind::Number,
        EntityKind::Text,
        EntityKind::Window,
        EntityKind::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Specialty => "specialty",
            EntityKind::Coverage => "coverage",
            EntityKind::Date => "date",
            EntityKind::Time => "time",
            EntityKind::Document => "document",
            EntityKind::Name => "name",
            EntityKind::Number => "number",
            EntityKind::Text => "text",
            EntityKind::Window => "window",
            EntityKind::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One intent of flows/intents.yaml, compiled.
#[derive(Debug, Clone)]
pub struct IntentDef {
    pub name: String,
    pub description: String,
    /// Example phrases per language.
    pub examples: Vec<(Lang, String)>,
}

/// What the conversation expects right now; the NLU uses it to resolve ambiguity
/// ("2" is a choice when a number is asked, a date's day otherwise; a bare name is only a
/// name when a name is asked for).
#[derive(Debug, Clone, Default)]
pub struct NluContext {
    /// The entity kind of the slot the bot just asked for, if any.
    pub asking: Option<EntityKind>,
    /// Entity kinds of all the slots in scope (the active flow's slots).
    pub in_scope: Vec<EntityKind>,
    /// Intents the current state expects (e.g. affirm, deny), if any.
    pub expecting: Vec<String>,
    /// The session language so far.
    pub lang: Lang,
    /// The date slot asked for looks back (`direction: past`): dates resolve to the past.
    pub past_dates: bool,
    /// The slot asked for can be declined (`optional: true`): "no", "no tengo", "prefiero
    /// no", "skip" are a no to it (intent `deny`).
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentGuess {
    pub name: String,
    /// 0.0 ..= 1.0
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    /// Canonical value: see `EntityKind` for the shape of each kind.
    pub value: serde_json::Value,
    /// The part of the message it came from (for logs at debug level and corrections).
    pub text: String,
}

/// The NLU's proposal for one message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Understanding {
    pub intent: Option<IntentGuess>,
    pub entities: Vec<Entity>,
    /// True when the rules are confident enough that no LLM call is needed.
    pub sure: bool,
    /// The language the message seems to be in, when it is clear.
    pub lang: Option<Lang>,
    /// Which path produced this: "rules" or "llm".
    pub source: String,
    /// Another thing the same message asks for, in a sentence of its own ("¿aceptan IOMA?
    /// necesito turno con el oftalmólogo": `intent` one of them, `also` the other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub also: Option<IntentGuess>,
}

impl Understanding {
    pub fn entity(&self, kind: EntityKind) -> Option<&Entity> {
        self.entities.iter().find(|e| e.kind == kind)
    }

    pub fn intent_name(&self) -> Option<&str> {
        self.intent.as_ref().map(|i| i.name.as_str())
    }
}

/// The data the rules NLU needs, prepared once when the bot is compiled
/// (nothing is normalized or indexed during a turn).
pub trait Understand: Send + Sync {
    /// `now` is the current time in the clinic's time zone (relative dates resolve from it).
    fn understand(&self, text: &str, ctx: &NluContext, now: &jiff::Zoned) -> Understanding;
}

/// Build the rules NLU for a clinic and its intents.
pub fn rules_for(clinic: &Clinic, intents: &[IntentDef]) -> rules::RulesNlu {
    rules::RulesNlu::new(clinic, intents)
}
