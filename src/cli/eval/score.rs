//! Running labelled messages through the NLU and scoring what comes back.
//!
//! Each case goes through `engine::nlu_context` and the bot's rules NLU exactly as a real turn
//! does; when an LLM step is given, the cases the rules are not sure of go to it, as in the
//! service. What the NLU proposes is turned into slot values the way the engine assigns them
//! (the pending slot first, then the one slot of the flow that takes that kind of value), so a
//! label says what a turn would store, not which internal entity came out.

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::Value;

use super::cases::{Case, NO_INTENT};
use crate::engine::nlu_context;
use crate::engine::session::{Session, Wait};
use crate::flow::bot::{Bot, Flow};
use crate::nlu::{Understand, Understanding};

/// What the LLM step answered for one message the rules were not sure of.
#[derive(Debug, Clone, Default)]
pub struct LlmAnswer {
    /// The merged understanding (rules and LLM), as the service would pass it to `step`.
    pub understanding: Understanding,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// What one case came out as.
#[derive(Debug, Clone)]
pub struct Got {
    pub intent: Option<String>,
    pub slots: BTreeMap<String, Value>,
    /// The rules alone were sure (no LLM call in a real turn).
    pub sure: bool,
    /// "rules" or "llm".
    pub source: String,
    pub tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub n: usize,
    pub correct: usize,
}

impl Tally {
    pub fn pct(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.n as f64
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotTally {
    /// Expected values of this slot, and how many came out right.
    pub n: usize,
    pub correct: usize,
    /// Values the NLU set that the label does not have (or had no value for).
    pub spurious: usize,
}

#[derive(Debug, Clone)]
pub struct Miss {
    pub at: String,
    pub message: String,
    pub state: String,
    pub want_intent: Vec<String>,
    pub want_slots: BTreeMap<String, Value>,
    pub got: Got,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub cases: usize,
    /// Keyed by the case's (first) expected intent.
    pub per_intent: BTreeMap<String, Tally>,
    pub per_slot: BTreeMap<String, SlotTally>,
    pub intent: Tally,
    pub slots: Tally,
    pub spurious: usize,
    /// Cases with the intent, every slot and nothing extra right.
    pub exact: Tally,
    /// Cases the rules were sure of, and how many of those were exactly right.
    pub sure: Tally,
    /// Cases that went (or would go) to the LLM.
    pub to_llm: usize,
    /// Whether an LLM step was used (otherwise `to_llm` only counts what would go).
    pub llm_used: bool,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub misses: Vec<Miss>,
}

impl Report {
    /// LLM tokens (in + out) per message of the set; 0 with the rules alone.
    pub fn tokens_per_message(&self) -> f64 {
        if self.cases == 0 {
            0.0
        } else {
            (self.tokens_in + self.tokens_out) as f64 / self.cases as f64
        }
    }
}

/// Runs the cases through the rules alone.
pub fn run_rules(bot: &Bot, cases: &[Case]) -> Report {
    let mut report = Report::default();
    for case in cases {
        let u = rules(bot, case);
        let got = got_of(bot, &case.session, &u, 0);
        report.add(case, got);
    }
    report
}

/// Runs the cases, sending those the rules are not sure of to `llm`. `tick` is called after
/// each case (for a progress bar).
pub async fn run_with_llm<F, Fut>(bot: &Bot, cases: &[Case], llm: F, mut tick: impl FnMut()) -> Report
where
    F: Fn(Session, String, jiff::Zoned, Understanding) -> Fut,
    Fut: Future<Output = LlmAnswer>,
{
    let mut report = Report {
        llm_used: true,
        ..Report::default()
    };
    for case in cases {
        let u = rules(bot, case);
        let got = if u.sure {
            got_of(bot, &case.session, &u, 0)
        } else {
            let a = llm(case.session.clone(), case.message.clone(), case.now.clone(), u).await;
            report.tokens_in += a.tokens_in;
            report.tokens_out += a.tokens_out;
            let mut g = got_of(bot, &case.session, &a.understanding, a.tokens_in + a.tokens_out);
            g.sure = false;
            g
        };
        report.add(case, got);
        tick();
    }
    report
}

fn rules(bot: &Bot, case: &Case) -> Understanding {
    let ctx = nlu_context(bot, &case.session);
    bot.nlu.understand(&case.message, &ctx, &case.now)
}

fn got_of(bot: &Bot, session: &Session, u: &Understanding, tokens: u64) -> Got {
    Got {
        intent: u.intent_name().map(str::to_string),
        slots: slots_of(bot, session, u),
        sure: u.sure,
        source: u.source.clone(),
        tokens,
    }
}

/// The slot values a turn would set from this understanding: into the flow the intent starts
/// when it is another flow (and the message does not answer the pending question), else into
/// the active flow. Values equal to what is already stored change nothing and are left out;
/// values a slot's schema refuses are dropped, as the engine drops them.
pub fn slots_of(bot: &Bot, session: &Session, u: &Understanding) -> BTreeMap<String, Value> {
    let frame = session.top();
    let active = frame.and_then(|f| bot.flow(&f.flow));
    let pending = frame.and_then(|f| match &f.wait {
        Wait::Slot(p) => Some(p.as_str()),
        _ => None,
    });
    let pending_kind = pending
        .and_then(|p| active.and_then(|fl| fl.slot(p)))
        .and_then(|s| s.entity);
    let answers_pending = pending_kind.is_some_and(|k| u.entity(k).is_some());
    let other = u
        .intent_name()
        .and_then(|i| bot.flow_for_intent(i))
        .filter(|f| active.is_none_or(|a| a.name != f.name));
    let (flow, frame, pending): (&Flow, _, _) = match (other, active) {
        (Some(o), _) if !answers_pending => (o, None, None),
        (_, Some(a)) => (a, frame, pending),
        (Some(o), None) => (o, None, None),
        (None, None) => return BTreeMap::new(),
    };
    let filled = |name: &str| frame.and_then(|f| f.slots.get(name));
    let mut out = BTreeMap::new();
    for e in &u.entities {
        let Some(target) = crate::engine::target_slot(flow, e.kind, pending, |n| filled(n).is_some()) else {
            continue;
        };
        if out.contains_key(&target) {
            continue;
        }
        let Some(slot) = flow.slot(&target) else { continue };
        if !slot.schema.is_valid(&e.value) || filled(&target) == Some(&e.value) {
            continue;
        }
        out.insert(target, e.value.clone());
    }
    out
}

impl Report {
    fn add(&mut self, case: &Case, got: Got) {
        self.cases += 1;
        let got_intent = got.intent.clone().unwrap_or_else(|| NO_INTENT.to_string());
        let intent_ok = case.intents.contains(&got_intent);
        let key = case.intents.first().cloned().unwrap_or_default();
        let t = self.per_intent.entry(key).or_default();
        t.n += 1;
        self.intent.n += 1;
        if intent_ok {
            t.correct += 1;
            self.intent.correct += 1;
        }
        let mut slots_ok = true;
        for (name, want) in &case.slots {
            let t = self.per_slot.entry(name.clone()).or_default();
            t.n += 1;
            self.slots.n += 1;
            match got.slots.get(name) {
                Some(v) if crate::cli::runner::loosely_equal(v, want) => {
                    t.correct += 1;
                    self.slots.correct += 1;
                }
                _ => slots_ok = false,
            }
        }
        for name in got.slots.keys().filter(|k| !case.slots.contains_key(*k)) {
            self.per_slot.entry(name.clone()).or_default().spurious += 1;
            self.spurious += 1;
            slots_ok = false;
        }
        let exact = intent_ok && slots_ok;
        self.exact.n += 1;
        if got.sure {
            self.sure.n += 1;
            if exact {
                self.sure.correct += 1;
            }
        } else {
            self.to_llm += 1;
        }
        if exact {
            self.exact.correct += 1;
        } else {
            self.misses.push(Miss {
                at: case.at.clone(),
                message: case.message.clone(),
                state: super::cases::describe(&case.session),
                want_intent: case.intents.clone(),
                want_slots: case.slots.clone(),
                got,
            });
        }
    }
}
