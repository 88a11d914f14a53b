//! The parts of a turn that choose: an option from an offered list (`options:` slots) and a
//! question asked alongside a request. Split from step.rs to keep files small; same `Machine`.

use serde_json::Value;

use super::{Consumed, Machine};
use crate::engine::options::{self, Choice};
use crate::flow::bot::{Flow, StateKind};
use crate::nlu::{Entity, EntityKind, Understanding};

/// What a slot with `options:` made of the message.
pub(super) enum OptionTurn {
    /// Chosen, or asked which: the turn is decided.
    Done(Consumed),
    /// No option fits: understood as usual, as a correction of the search (this understanding).
    Correction(Understanding),
    /// Nothing about the options: understood as usual.
    Usual,
}

impl Machine<'_> {
    /// A slot with `options:` is answered by choosing one of them (see engine/options.rs).
    pub(super) fn choose_option(&mut self, flow: &Flow, pending: &str, nlu: &Understanding) -> OptionTurn {
        let Some(slot) = flow.slot(pending) else {
            return OptionTurn::Usual;
        };
        let Some(expr) = &slot.options else {
            return OptionTurn::Usual;
        };
        let options = match self.eval(expr) {
            Ok(Value::Array(list)) => list,
            Ok(_) => return OptionTurn::Usual,
            Err(e) => {
                self.out.diagnostics.push(e.to_string());
                return OptionTurn::Usual;
            }
        };
        match options::choose(&options, nlu, &self.text) {
            Choice::Pick(i) => {
                if let Some(f) = self.s.top_mut() {
                    f.slots.insert(pending.to_string(), Value::from(i + 1));
                }
                OptionTurn::Done(Consumed::Answered)
            }
            Choice::Several(which) => {
                let matches: Vec<Value> = which
                    .iter()
                    .filter_map(|i| {
                        let mut o = options.get(*i)?.clone();
                        if let Value::Object(m) = &mut o {
                            m.insert("number".into(), Value::from(i + 1));
                        }
                        Some(o)
                    })
                    .collect();
                match slot.ambiguous.clone().or_else(|| slot.ask.clone()) {
                    Some(t) => {
                        let ctx = minijinja::context! {
                            matches => crate::engine::context::template_value(&matches),
                            ..self.ctx()
                        };
                        self.render(&t, &ctx);
                    }
                    None => self.say_text(&self.bot.global.fallback),
                }
                OptionTurn::Done(Consumed::Invalid)
            }
            Choice::Nothing => {
                // None of the options has that day or time: the patient is changing the search.
                // The day or time goes to its slot as a correction (never as an option number),
                // and a time said alone means the day all the options are on.
                let mut n = nlu.clone();
                let time = n.entity(EntityKind::Time).is_some();
                if time {
                    n.entities.retain(|e| e.kind != EntityKind::Number);
                    if n.entity(EntityKind::Date).is_none()
                        && let Some(d) = options::common_date(&options)
                    {
                        n.entities.push(Entity {
                            kind: EntityKind::Date,
                            value: Value::String(d.to_string()),
                            text: String::new(),
                        });
                    }
                }
                OptionTurn::Correction(n)
            }
            Choice::Silent => OptionTurn::Usual,
        }
    }

    /// Starts the flow of the message's intent. A message that also asks a question in a
    /// sentence of its own gets the question answered first, then the request goes on, each
    /// flow keeping the values the message carried.
    pub(super) fn start_with_question(&mut self, flow: &Flow, nlu: &Understanding) {
        let other = nlu
            .also
            .as_ref()
            .and_then(|a| self.bot.flow_for_intent(&a.name))
            .filter(|o| o.name != flow.name);
        match other {
            Some(request) if answers_only(flow) && !answers_only(request) => {
                self.start_flow(request, nlu, Default::default());
                self.start_flow(flow, nlu, Default::default());
            }
            _ => {
                self.start_flow(flow, nlu, Default::default());
                self.question_alongside(nlu);
            }
        }
    }

    /// Puts the flow of a question asked alongside (`also`) on top, to be answered first.
    pub(super) fn question_alongside(&mut self, nlu: &Understanding) -> bool {
        let Some(q) = nlu.also.as_ref().and_then(|a| self.bot.flow_for_intent(&a.name)) else {
            return false;
        };
        let top_ok = self
            .s
            .top()
            .is_none_or(|f| f.flow != q.name && self.bot.flow(&f.flow).is_none_or(|t| t.interruptible));
        if !answers_only(q) || !top_ok {
            return false;
        }
        self.start_flow(q, nlu, Default::default());
        true
    }
}

/// A flow that only answers (no question of its own): an FAQ a message can ask alongside.
pub(super) fn answers_only(flow: &Flow) -> bool {
    flow.states
        .iter()
        .all(|s| matches!(s.kind, StateKind::Plain | StateKind::Action(_)))
}
