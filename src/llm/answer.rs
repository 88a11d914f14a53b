//! The model's answer, checked and merged with the rules. Pure functions: what the model said
//! is only a proposal, cut down to the intents allowed and the slots in scope, each value
//! checked against its slot's schema, and the rules keep every exact match they made.

use serde_json::Value;

use super::schema::{NONE, Scope};
use crate::nlu::{Entity, EntityKind, IntentGuess, Understanding};

/// Confidence given to an intent the model chose (the rules' scale: below their "sure").
const LLM_CONFIDENCE: f32 = 0.8;
/// A rules intent this confident is an exact match (an exact yes/no) and is never overridden.
const EXACT: f32 = 0.9;

/// A checked answer: what survives of what the model said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    /// An allowed intent other than `none`.
    pub intent: Option<String>,
    /// Values that pass their slot's schema: (slot, entity kind, value).
    pub values: Vec<(String, EntityKind, Value)>,
    /// Values that fail it (never stored; the pending one is reported as invalid input).
    pub invalid: Vec<(String, EntityKind, Value)>,
    /// Intents and slots outside the scope, dropped.
    pub dropped: Vec<String>,
}

/// Finds the JSON object in a reply: models in plain mode wrap it in prose or ``` fences.
pub fn parse(raw: &str) -> Option<Value> {
    let t = raw.trim();
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(t) {
        return Some(v);
    }
    let start = t.find('{')?;
    let end = t.rfind('}')?;
    match serde_json::from_str::<Value>(t.get(start..=end)?) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// Checks an answer against the scope. `None` when it is not an answer at all (no object).
pub fn check(scope: &Scope<'_>, answer: &Value) -> Option<Checked> {
    let obj = answer.as_object()?;
    let mut c = Checked::default();
    match obj.get("intent") {
        Some(Value::String(i)) if i == NONE || i.is_empty() => {}
        Some(Value::String(i)) if scope.intents.iter().any(|x| x == i) => c.intent = Some(i.clone()),
        Some(Value::Null) | None => {}
        Some(other) => c.dropped.push(format!("intent {other}")),
    }
    let slots = match obj.get("slots") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Null) | None => Default::default(),
        Some(_) => {
            c.dropped.push("slots".into());
            Default::default()
        }
    };
    for (name, value) in slots {
        if value.is_null() {
            continue;
        }
        let Some((slot, kind)) = scope.slot(&name).and_then(|s| s.entity.map(|k| (s, k))) else {
            c.dropped.push(format!("slot {name}"));
            continue;
        };
        if slot.schema.is_valid(&value) {
            c.values.push((name, kind, value));
        } else {
            c.invalid.push((name, kind, value));
        }
    }
    Some(c)
}

/// Merges a checked answer into the rules' understanding. The rules win on what they matched
/// exactly (an exact yes/no, and a value of a kind they found exactly once: digits, dates,
/// times, lexicon names); the model fills what they did not find, and settles a kind the rules
/// found several conflicting values of. The model can never say
/// yes for the patient: at a yes/no question its `affirm` counts only if the rules heard one.
pub fn merge(scope: &Scope<'_>, rules: &Understanding, c: &Checked) -> Understanding {
    let mut u = rules.clone();
    u.source = "llm".into();
    u.sure = true;
    let rules_exact = rules.intent.as_ref().is_some_and(|i| i.confidence >= EXACT);
    if !rules_exact {
        let rules_affirm = rules.intent_name() == Some("affirm");
        u.intent = match c.intent.as_deref() {
            Some("affirm") if scope.expecting.iter().any(|e| e == "affirm") && !rules_affirm => rules.intent.clone(),
            Some(i) => Some(IntentGuess {
                name: i.to_string(),
                confidence: LLM_CONFIDENCE,
            }),
            None => None,
        };
    }
    let has = |u: &Understanding, k: EntityKind| u.entities.iter().any(|e| e.kind == k);
    for (_, kind, value) in &c.values {
        match rules.entities.iter().filter(|e| e.kind == *kind).count() {
            // The rules found it: theirs stands (a value they matched is an exact match).
            1 => {}
            // They found several ("el martes… no, el miércoles"): the model settles which.
            n if n > 1 => {
                u.entities.retain(|e| e.kind != *kind);
                u.entities.push(entity(*kind, value));
            }
            _ => {
                if !has(&u, *kind) {
                    u.entities.push(entity(*kind, value));
                }
            }
        }
    }
    // A wrong value for the question just asked is answered like the rules' wrong values:
    // the engine checks it against the schema, says the slot's `invalid` text and asks again.
    for (name, kind, value) in &c.invalid {
        if scope.pending.as_deref() == Some(name.as_str()) && !has(&u, *kind) {
            u.entities.push(entity(*kind, value));
        }
    }
    u
}

fn entity(kind: EntityKind, value: &Value) -> Entity {
    let text = match value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    Entity {
        kind,
        value: value.clone(),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::session::{Frame, Session, Wait};
    use crate::flow::bot::Bot;
    use crate::lang::Lang;
    use serde_json::json;

    fn demo() -> Bot {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::flow::compile::compile_dir(dir).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn at(state: &str, wait: Wait) -> Session {
        let mut s = Session::new("s", "whatsapp", "u", Lang::Es);
        s.stack.push(Frame {
            flow: "book_appointment".into(),
            state: state.into(),
            slots: Default::default(),
            wait,
            result: Value::Null,
        });
        s
    }

    fn rules(intent: Option<(&str, f32)>, entities: Vec<Entity>) -> Understanding {
        Understanding {
            intent: intent.map(|(n, c)| IntentGuess {
                name: n.into(),
                confidence: c,
            }),
            entities,
            sure: false,
            lang: None,
            source: "rules".into(),
            also: None,
        }
    }

    #[test]
    fn parse_finds_the_object_in_prose_and_fences() {
        assert_eq!(parse(r#"{"intent":"none"}"#), Some(json!({"intent": "none"})));
        assert_eq!(
            parse("Claro:\n```json\n{\"intent\": \"greet\", \"slots\": {}}\n```"),
            Some(json!({"intent": "greet", "slots": {}}))
        );
        assert_eq!(parse("no sé"), None);
        assert_eq!(parse("[1, 2]"), None);
        assert_eq!(parse("{\"intent\": "), None);
    }

    #[test]
    fn check_keeps_only_the_scope() {
        let bot = demo();
        let s = at("details", Wait::Slot("date".into()));
        let scope = Scope::of(&bot, &s);
        let c = check(
            &scope,
            &json!({
                "intent": "drop_all_tables",
                "slots": {
                    "specialty": "Cardiología",
                    "date": "el jueves",
                    "time": 1030,
                    "appointment": {"id": "x"},
                    "document_id": "12345678",
                    "admin": true,
                    "coverage": null
                }
            }),
        )
        .unwrap();
        assert_eq!(c.intent, None, "an intent outside the enum is dropped");
        assert_eq!(
            c.values,
            vec![("specialty".into(), EntityKind::Specialty, json!("Cardiología"))]
        );
        let invalid: Vec<&str> = c.invalid.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(invalid, ["date", "time"], "values failing their schema are set apart");
        assert!(c.dropped.iter().any(|d| d.contains("appointment")));
        assert!(
            c.dropped.iter().any(|d| d.contains("document_id")),
            "documents never come from the model"
        );
        assert!(c.dropped.iter().any(|d| d.contains("admin")));
        assert!(check(&scope, &json!("book_appointment")).is_none());
    }

    #[test]
    fn merge_rules_win_on_what_they_found() {
        let bot = demo();
        let s = at("details", Wait::Slot("specialty".into()));
        let scope = Scope::of(&bot, &s);
        let r = rules(
            Some(("book_appointment", 0.5)),
            vec![entity(EntityKind::Time, &json!("10:30"))],
        );
        let c = Checked {
            intent: Some("book_appointment".into()),
            values: vec![
                ("time".into(), EntityKind::Time, json!("22:30")),
                ("specialty".into(), EntityKind::Specialty, json!("Cardiología")),
                ("date".into(), EntityKind::Date, json!("2026-11-26")),
            ],
            ..Default::default()
        };
        let u = merge(&scope, &r, &c);
        assert_eq!(u.source, "llm");
        assert_eq!(u.entity(EntityKind::Time).unwrap().value, json!("10:30"));
        assert_eq!(u.entity(EntityKind::Specialty).unwrap().value, json!("Cardiología"));
        assert_eq!(u.entity(EntityKind::Date).unwrap().value, json!("2026-11-26"));
        assert_eq!(u.entities.iter().filter(|e| e.kind == EntityKind::Time).count(), 1);
    }

    #[test]
    fn merge_lets_the_model_settle_conflicting_rules_values() {
        let bot = demo();
        let s = at("details", Wait::Slot("date".into()));
        let scope = Scope::of(&bot, &s);
        let r = rules(
            None,
            vec![
                entity(EntityKind::Date, &json!("2026-11-24")),
                entity(EntityKind::Date, &json!("2026-11-25")),
            ],
        );
        let c = Checked {
            values: vec![("date".into(), EntityKind::Date, json!("2026-11-26"))],
            ..Default::default()
        };
        let u = merge(&scope, &r, &c);
        let dates: Vec<&Value> = u
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::Date)
            .map(|e| &e.value)
            .collect();
        assert_eq!(dates, [&json!("2026-11-26")]);
    }

    #[test]
    fn merge_never_confirms_for_the_patient() {
        let bot = demo();
        let s = at("confirm", Wait::Intent);
        let scope = Scope::of(&bot, &s);
        let c = Checked {
            intent: Some("affirm".into()),
            ..Default::default()
        };
        let u = merge(&scope, &rules(None, vec![]), &c);
        assert_eq!(u.intent, None, "no yes heard by the rules: the model's yes is ignored");
        let u = merge(&scope, &rules(Some(("affirm", 0.7)), vec![]), &c);
        assert_eq!(
            u.intent_name(),
            Some("affirm"),
            "a yes the rules heard but were unsure of"
        );
        let deny = Checked {
            intent: Some("deny".into()),
            ..Default::default()
        };
        assert_eq!(merge(&scope, &rules(None, vec![]), &deny).intent_name(), Some("deny"));
        let exact_yes = rules(Some(("affirm", 1.0)), vec![]);
        assert_eq!(
            merge(&scope, &exact_yes, &deny).intent_name(),
            Some("affirm"),
            "an exact yes stays"
        );
    }

    #[test]
    fn merge_reports_a_wrong_value_only_for_the_question_asked() {
        let bot = demo();
        let s = at("details", Wait::Slot("date".into()));
        let scope = Scope::of(&bot, &s);
        let c = Checked {
            invalid: vec![
                ("date".into(), EntityKind::Date, json!("el jueves")),
                ("time".into(), EntityKind::Time, json!("tarde")),
            ],
            ..Default::default()
        };
        let u = merge(&scope, &rules(None, vec![]), &c);
        assert_eq!(u.entities.len(), 1);
        assert_eq!(u.entities[0].kind, EntityKind::Date);
        let slot = bot.flow("book_appointment").unwrap().slot("date").unwrap();
        assert!(
            !slot.schema.is_valid(&u.entities[0].value),
            "the engine will refuse and re-ask it"
        );
    }
}
