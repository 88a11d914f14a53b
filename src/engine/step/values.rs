//! What a state says and reads: rendering texts (never an empty reply), evaluating guards and
//! `set:` values, clearing slots and building action requests. Split from step.rs to keep
//! files small; same `Machine`.

use minijinja::value::Value as MjValue;
use serde_json::{Map, Value};

use super::{Machine, built_in_fallback};
use crate::actions::ActionRequest;
use crate::engine::context;
use crate::flow::bot::{ActionCall, Arg};
use crate::flow::script::{Context, EvalError, Expr};
use crate::flow::templates::Text;

impl Machine<'_> {
    /// A problem in the admin's flow at run time: logged with where it happened, the patient
    /// gets the fallback reply, and the broken flow is left so the conversation goes on.
    pub(super) fn flow_error(&mut self, msg: String) {
        let at = self.s.position();
        self.out.diagnostics.push(format!("{at}: {msg}"));
        tracing::warn!(position = %at, "flow error: {msg}");
        self.s.stack.pop();
        self.out.pending = None;
        self.say_text(&self.bot.global.fallback);
        self.reask();
    }

    /// What a text renders with (the same values guards read, see engine/context.rs).
    pub(super) fn ctx(&self) -> MjValue {
        context::template_context(self.bot, &self.s, self.s.top(), &self.intent, self.now)
    }

    pub(super) fn say_text(&mut self, text: &Text) {
        let ctx = self.ctx();
        self.render(text, &ctx);
    }

    pub(super) fn render(&mut self, text: &Text, ctx: &MjValue) {
        match self.bot.templates.render_value(text, self.s.lang, ctx.clone()) {
            Ok(s) if !s.is_empty() => self.out.replies.push(s),
            Ok(_) => {}
            Err(e) => {
                self.out.diagnostics.push(e.to_string());
                self.out.render_errors.push(e.to_string());
                tracing::warn!("template error: {e}");
                // Never an empty reply: the clinic's fallback, or a built-in one when the
                // fallback itself is what failed.
                let fallback = &self.bot.global.fallback;
                let said = (!std::ptr::eq(text, fallback))
                    .then(|| self.bot.templates.render_value(fallback, self.s.lang, ctx.clone()).ok())
                    .flatten()
                    .filter(|s| !s.is_empty());
                self.out
                    .replies
                    .push(said.unwrap_or_else(|| built_in_fallback(self.s.lang).to_string()));
            }
        }
    }

    /// Evaluates an expression with only the parts of the context it names built (the
    /// clinic and the last result are lent, not copied).
    pub(super) fn eval(&self, e: &Expr) -> Result<Value, EvalError> {
        let frame = self.s.top();
        let part = |name: &str, build: &dyn Fn() -> Value| if e.reads(name) { build() } else { Value::Null };
        let slots = part("slots", &|| context::slots_value(frame));
        let session = part("session", &|| context::session_value(&self.s));
        let now = part("now", &|| context::now_value(self.now));
        let patient = part("patient", &|| context::patient_value(&self.s));
        let c = Context {
            slots: &slots,
            intent: &self.intent,
            result: frame.map(|f| &f.result).unwrap_or(&Value::Null),
            session: &session,
            clinic: &self.bot.clinic.value,
            now: &now,
            patient: &patient,
        };
        self.bot.scripts.eval(e, &c)
    }

    pub(super) fn guard(&self, e: &Expr) -> Result<bool, EvalError> {
        match self.eval(e)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            other => Err(EvalError {
                file: e.file.clone(),
                line: e.line,
                source_text: e.source.clone(),
                message: format!("a condition must be true or false, but this gave {other}"),
            }),
        }
    }

    pub(super) fn apply_set(&mut self, set: &[(String, Expr)]) -> bool {
        for (slot, e) in set {
            match self.eval(e) {
                Ok(Value::Null) => {
                    if let Some(f) = self.s.top_mut() {
                        f.slots.remove(slot);
                    }
                }
                Ok(v) => {
                    let schema_ok = self
                        .s
                        .top()
                        .and_then(|f| self.bot.flow(&f.flow))
                        .and_then(|f| f.slot(slot))
                        .is_none_or(|sl| sl.schema.is_valid(&v));
                    if !schema_ok {
                        self.flow_error(format!(
                            "{}:{}: `set: {slot}: {}` gave a value that does not fit the slot's schema",
                            e.file, e.line, e.source
                        ));
                        return false;
                    }
                    if let Some(f) = self.s.top_mut() {
                        f.slots.insert(slot.clone(), v);
                    }
                }
                Err(err) => {
                    self.flow_error(err.to_string());
                    return false;
                }
            }
        }
        true
    }

    pub(super) fn clear(&mut self, slots: &[String]) {
        if let Some(f) = self.s.top_mut() {
            for s in slots {
                f.slots.remove(s);
            }
        }
    }

    /// Evaluates an action's arguments. With no `with:`, the flow's slots are the arguments.
    pub(super) fn request(&mut self, call: &ActionCall) -> Option<ActionRequest> {
        let mut args = Map::new();
        if call.args.is_empty()
            && let Some(f) = self.s.top()
        {
            for (k, v) in &f.slots {
                args.insert(k.clone(), v.clone());
            }
        }
        for (k, a) in &call.args {
            let v = match a {
                Arg::Literal(v) => v.clone(),
                Arg::Expr(e) => match self.eval(e) {
                    Ok(v) => v,
                    Err(err) => {
                        self.flow_error(err.to_string());
                        return None;
                    }
                },
            };
            args.insert(k.clone(), v);
        }
        Some(ActionRequest {
            action: call.action,
            args,
        })
    }
}
