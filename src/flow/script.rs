//! Rhai guards and expressions. One sandboxed engine for the whole bot: bounded operations,
//! call depth, string/array/map sizes, and strict variables so a typo (`slot.date`) is a
//! compile error, not a silent `()` at run time.

use rhai::{AST, Dynamic, Engine, Scope};
use serde_json::Value;

/// The variables every expression can read: the same as templates (declared beside the
/// context that provides them).
pub use crate::engine::context::VARIABLES;

pub struct Scripts {
    engine: Engine,
}

/// A compiled expression, with where it came from (for run-time diagnostics).
#[derive(Debug)]
pub struct Expr {
    pub ast: AST,
    pub source: String,
    pub file: String,
    pub line: usize,
    /// Which of `VARIABLES` the source names (bit i for `VARIABLES[i]`): only those are built
    /// and handed to Rhai when it runs, since converting the whole context (the clinic above
    /// all) for every guard was most of a turn's engine time.
    reads: u32,
}

impl Expr {
    /// Whether the expression reads the context variable `name`.
    pub fn reads(&self, name: &str) -> bool {
        VARIABLES
            .iter()
            .position(|v| *v == name)
            .is_some_and(|i| self.reads & (1 << i) != 0)
    }
}

/// The context variables a source names, as `Expr::reads` bits. Every identifier token counts
/// (also inside strings or after a dot), so this can only over-count, which is harmless: an
/// expression cannot reach a variable without writing its name (`eval` is disabled).
fn names_read(source: &str) -> u32 {
    source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|word| VARIABLES.iter().position(|v| *v == word))
        .fold(0, |bits, i| bits | (1 << i))
}

/// A compile error inside an expression: message and 1-based (line, col) within it.
#[derive(Debug)]
pub struct ScriptError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

/// A run-time failure (error, out of operations, wrong type): reported, never a panic.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: `{source_text}`: {message}")]
pub struct EvalError {
    pub file: String,
    pub line: usize,
    pub source_text: String,
    pub message: String,
}

/// Values exposed to expressions, as JSON.
pub struct Context<'a> {
    pub slots: &'a Value,
    pub intent: &'a str,
    pub result: &'a Value,
    pub session: &'a Value,
    pub clinic: &'a Value,
    pub now: &'a Value,
    /// `{verified}`: whether this conversation proved who the patient is (`verify_patient`).
    pub patient: &'a Value,
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

impl Scripts {
    pub fn new() -> Self {
        let mut engine = Engine::new();
        engine
            .set_max_operations(20_000)
            .set_max_call_levels(16)
            .set_max_expr_depths(64, 32)
            .set_max_string_size(20_000)
            .set_max_array_size(2_000)
            .set_max_map_size(2_000)
            .set_strict_variables(true);
        engine.disable_symbol("eval");
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        Scripts { engine }
    }

    fn declared_scope() -> Scope<'static> {
        let mut scope = Scope::new();
        for v in VARIABLES {
            scope.push(*v, Dynamic::UNIT);
        }
        scope
    }

    pub fn compile(&self, source: &str, file: &str, line: usize) -> Result<Expr, ScriptError> {
        let scope = Self::declared_scope();
        match self.engine.compile_expression_with_scope(&scope, source) {
            Ok(ast) => Ok(Expr {
                ast,
                reads: names_read(source),
                source: source.to_string(),
                file: file.to_string(),
                line,
            }),
            Err(e) => {
                let pos = e.position();
                Err(ScriptError {
                    message: e.err_type().to_string(),
                    line: pos.line().unwrap_or(1),
                    col: pos.position().unwrap_or(1),
                })
            }
        }
    }

    pub fn eval(&self, expr: &Expr, ctx: &Context<'_>) -> Result<Value, EvalError> {
        let err = |message: String| EvalError {
            file: expr.file.clone(),
            line: expr.line,
            source_text: expr.source.clone(),
            message,
        };
        let mut scope = Scope::new();
        let vars: [(&str, &Value); 7] = [
            ("slots", ctx.slots),
            ("intent", &Value::String(ctx.intent.to_string())),
            ("result", ctx.result),
            ("session", ctx.session),
            ("clinic", ctx.clinic),
            ("now", ctx.now),
            ("patient", ctx.patient),
        ];
        for (name, v) in vars {
            if !expr.reads(name) {
                continue;
            }
            let d = rhai::serde::to_dynamic(v).map_err(|e| err(e.to_string()))?;
            scope.push_dynamic(name, d);
        }
        let out: Dynamic = self
            .engine
            .eval_ast_with_scope(&mut scope, &expr.ast)
            .map_err(|e| err(e.to_string()))?;
        if out.is_unit() {
            return Ok(Value::Null);
        }
        rhai::serde::from_dynamic::<Value>(&out).map_err(|e| err(e.to_string()))
    }

    /// Evaluates a guard: true, false, or `()` (missing) as false; anything else is an error.
    pub fn guard(&self, expr: &Expr, ctx: &Context<'_>) -> Result<bool, EvalError> {
        match self.eval(expr, ctx)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            other => Err(EvalError {
                file: expr.file.clone(),
                line: expr.line,
                source_text: expr.source.clone(),
                message: format!("a condition must be true or false, but this gave {other}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx<'a>(slots: &'a Value, result: &'a Value, null: &'a Value) -> Context<'a> {
        Context {
            slots,
            intent: "affirm",
            result,
            session: null,
            clinic: null,
            now: null,
            patient: null,
        }
    }

    #[test]
    fn guards_read_json_context() {
        let s = Scripts::new();
        let slots = json!({"date": "2026-11-26"});
        let result = json!({"available": false, "alternatives": [{"time": "10:30"}]});
        let null = Value::Null;
        let c = ctx(&slots, &result, &null);
        let e = s.compile("result.alternatives.len() > 0", "f.yaml", 3).unwrap();
        assert!(s.guard(&e, &c).unwrap());
        let e = s.compile("result.available", "f.yaml", 3).unwrap();
        assert!(!s.guard(&e, &c).unwrap());
        let e = s.compile("intent == \"affirm\"", "f.yaml", 3).unwrap();
        assert!(s.guard(&e, &c).unwrap());
        let e = s.compile("slots.time", "f.yaml", 3).unwrap();
        assert!(!s.guard(&e, &c).unwrap(), "missing is false");
    }

    #[test]
    fn only_the_named_values_are_read() {
        let s = Scripts::new();
        let e = s.compile("slots.date != () && result.available", "f.yaml", 1).unwrap();
        assert!(e.reads("slots") && e.reads("result"));
        assert!(!e.reads("clinic") && !e.reads("session") && !e.reads("now"));
        // A value the expression does not name is not handed over, so a context whose other
        // parts are missing still evaluates it.
        let slots = json!({"date": "2026-11-26"});
        let result = json!({"available": true});
        let null = Value::Null;
        assert!(s.guard(&e, &ctx(&slots, &result, &null)).unwrap());
        let e = s.compile("clinic_name_x == 1", "f.yaml", 1);
        assert!(e.is_err(), "a longer word is not the variable");
        let e = s.compile("clinic.name + now.date", "f.yaml", 1).unwrap();
        assert!(e.reads("clinic") && e.reads("now") && !e.reads("slots") && !e.reads("patient"));
    }

    #[test]
    fn unknown_variables_fail_at_compile_time() {
        let s = Scripts::new();
        let err = s.compile("slot.date == 1", "f.yaml", 1).unwrap_err();
        assert!(err.message.contains("slot"), "{err:?}");
        assert_eq!(err.col, 1);
    }

    #[test]
    fn runaway_expressions_are_stopped() {
        let s = Scripts::new();
        let null = Value::Null;
        let c = ctx(&null, &null, &null);
        assert!(
            s.compile("{ let x = 0; loop { x += 1; } }", "f.yaml", 9).is_err(),
            "no statements"
        );
        let e = s.compile("\"a\".pad(100000, \"b\") == \"\"", "f.yaml", 9).unwrap();
        let err = s.eval(&e, &c).unwrap_err();
        assert_eq!(err.line, 9);
        let e = s.compile("result.items[5]", "f.yaml", 2).unwrap();
        let result = json!({"items": [1]});
        let c = ctx(&null, &result, &null);
        assert!(s.eval(&e, &c).is_err());
        let e = s.compile("\"x\" + 1", "f.yaml", 2).unwrap();
        assert!(s.guard(&e, &c).is_err());
    }
}
