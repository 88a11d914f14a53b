//! What the LLM may answer here: the intents allowed in the current state and the slots in
//! scope, as one JSON Schema built from the compiled bot and the session. The same scope is
//! used again to check the answer, so the model cannot reach outside it.

use serde_json::{Map, Value, json};

use crate::engine::session::{Session, Wait};
use crate::flow::bot::{Bot, Slot, StateKind};
use crate::nlu::EntityKind;

/// The intent the model answers when nothing in the list fits.
pub const NONE: &str = "none";

/// The intents allowed and the slots in scope for one message.
pub struct Scope<'a> {
    /// Allowed intents, the state's expected ones first; always ends with `none`.
    pub intents: Vec<String>,
    /// Slots the model may fill (each has an entity kind, so the engine can map it).
    pub slots: Vec<&'a Slot>,
    /// The slot the bot just asked for, if any.
    pub pending: Option<String>,
    /// The intents the state expects (a yes/no question), if any.
    pub expecting: Vec<String>,
}

impl<'a> Scope<'a> {
    pub fn of(bot: &'a Bot, session: &Session) -> Scope<'a> {
        let mut intents: Vec<String> = Vec::new();
        let mut add = |i: &str| {
            if !intents.iter().any(|x| x == i) {
                intents.push(i.to_string());
            }
        };
        let frame = session.top();
        let flow = frame.and_then(|f| bot.flow(&f.flow));
        let mut expecting = Vec::new();
        let mut pending = None;
        if let (Some(frame), Some(flow)) = (frame, flow) {
            match &frame.wait {
                Wait::Intent => {
                    if let Some(StateKind::Expect(list)) = flow.state(&frame.state).map(|s| &s.kind) {
                        expecting = list.clone();
                    }
                }
                Wait::Slot(name) => pending = Some(name.clone()),
                _ => {}
            }
        }
        for i in &expecting {
            add(i);
        }
        for f in &bot.flows {
            for t in &f.triggers {
                add(t);
            }
        }
        let g = &bot.global;
        for b in [&g.greeting, &g.help, &g.restart, &g.cancel, &g.handoff] {
            for i in &b.intents {
                add(i);
            }
        }
        add(NONE);

        // Free text would swallow any message and a bare number means nothing without the
        // list it picks from: those are only offered when they are what was asked. Idle, only
        // the details a request can come with ("turno con cardiología el jueves a las 10").
        let idle = flow.is_none();
        let offered = |s: &Slot| match s.entity {
            // Documents and emails are masked in what is sent; only the rules read them.
            None | Some(EntityKind::Document | EntityKind::Email) => false,
            Some(EntityKind::Text | EntityKind::Number) => pending.as_deref() == Some(s.name.as_str()),
            Some(EntityKind::Name) => !idle,
            Some(_) => true,
        };
        let mut slots: Vec<&Slot> = Vec::new();
        match flow {
            Some(flow) => slots.extend(flow.slots.iter().filter(|s| offered(s))),
            // Idle: the message may start a flow and give its details at once.
            None => {
                for f in &bot.flows {
                    for s in f.slots.iter().filter(|s| offered(s)) {
                        if !slots.iter().any(|x| x.name == s.name) {
                            slots.push(s);
                        }
                    }
                }
            }
        }
        Scope {
            intents,
            slots,
            pending,
            expecting,
        }
    }

    pub fn slot(&self, name: &str) -> Option<&'a Slot> {
        self.slots.iter().copied().find(|s| s.name == name)
    }

    /// The answer schema: `{"intent": one of the allowed, "slots": {each slot: value or null}}`,
    /// in the subset of JSON Schema that OpenAI's strict structured outputs accept.
    pub fn answer_schema(&self) -> Value {
        let mut props = Map::new();
        for s in &self.slots {
            props.insert(s.name.clone(), nullable(strict_subset(&s.schema_json)));
        }
        let names: Vec<&str> = self.slots.iter().map(|s| s.name.as_str()).collect();
        json!({
            "type": "object",
            "properties": {
                "intent": { "type": "string", "enum": self.intents },
                "slots": {
                    "type": "object",
                    "properties": props,
                    "required": names,
                    "additionalProperties": false,
                },
            },
            "required": ["intent", "slots"],
            "additionalProperties": false,
        })
    }
}

/// A slot's schema that also takes null (the message does not say it). A plain typed value
/// becomes `"type": [t, "null"]`, as OpenAI documents for optional fields, which is a few
/// tokens shorter than a union; a schema listing values or with its own unions keeps
/// `anyOf` (an enum would have to list null too).
fn nullable(own: Value) -> Value {
    if let Some(obj) = own.as_object()
        && let Some(Value::String(t)) = obj.get("type")
        && t != "object"
        && t != "array"
        && !["enum", "const", "anyOf"].iter().any(|k| obj.contains_key(*k))
    {
        let mut obj = obj.clone();
        obj.insert("type".into(), json!([t, "null"]));
        return Value::Object(obj);
    }
    json!({ "anyOf": [own, { "type": "null" }] })
}

/// Keywords strict structured outputs accept; others (`$schema`, `title`, `examples`,
/// `minLength`…) are dropped from what is sent, and so is `description` (the prompt already
/// describes each slot once). Validation uses the full schema anyway.
const KEEP: [&str; 13] = [
    "type",
    "enum",
    "const",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "items",
    "minItems",
    "maxItems",
];

/// A slot schema reduced to what strict mode takes: objects get every property required
/// and no extra properties, as strict mode demands.
pub fn strict_subset(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "items" => {
                out.insert(k.clone(), strict_subset(v));
            }
            "anyOf" => {
                let list: Vec<Value> = v.as_array().into_iter().flatten().map(strict_subset).collect();
                out.insert(k.clone(), Value::Array(list));
            }
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, p)| (name.clone(), strict_subset(p)))
                    .collect();
                let names: Vec<Value> = props.keys().cloned().map(Value::String).collect();
                out.insert("properties".into(), Value::Object(props));
                out.insert("required".into(), Value::Array(names));
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            k if KEEP.contains(&k) => {
                out.insert(k.to_string(), v.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_subset_drops_what_strict_mode_refuses() {
        let s = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Person name",
            "description": "Full name",
            "type": "string",
            "minLength": 3,
            "pattern": "^\\S+(\\s+\\S+)+$",
            "examples": ["Juan Pérez"]
        });
        assert_eq!(
            strict_subset(&s),
            json!({"type": "string", "pattern": "^\\S+(\\s+\\S+)+$"})
        );
    }

    #[test]
    fn optional_values_take_null_in_their_shortest_form() {
        let date = json!({"type": "string", "pattern": "^\\d{4}$"});
        assert_eq!(
            nullable(date),
            json!({"type": ["string", "null"], "pattern": "^\\d{4}$"})
        );
        let listed = json!({"type": "string", "enum": ["OSDE"]});
        assert_eq!(
            nullable(listed.clone()),
            json!({"anyOf": [listed, {"type": "null"}]}),
            "an enum keeps the union: null is not among its values"
        );
    }

    #[test]
    fn strict_subset_closes_objects() {
        let s = json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": []});
        let out = strict_subset(&s);
        assert_eq!(out["required"], json!(["id"]));
        assert_eq!(out["additionalProperties"], json!(false));
    }
}
