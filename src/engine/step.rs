//! One turn of the interpreter. See docs/flows.md ("How a conversation moves") for the rules in plain words.

use jiff::Zoned;
use serde_json::Value;

use super::session::{Frame, Session, Wait};
use crate::actions::ActionRequest;
use crate::flow::bot::{Behaviour, Bot, Flow, State, StateKind, Target};
use crate::nlu::{EntityKind, NluContext, Understanding};

/// What arrives at the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A patient message with what the NLU understood of it.
    Message { text: String, nlu: Understanding },
    /// The result of the action the previous outcome asked for.
    ActionResult(Value),
}

/// What the engine decided.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The conversation after this step (unchanged when nothing moved).
    pub session: Session,
    pub replies: Vec<String>,
    /// Fire-and-forget effects (`do:`, escalations), in order.
    pub effects: Vec<ActionRequest>,
    /// An action whose result the flow needs: perform it, then call `step` with `ActionResult`.
    pub pending: Option<ActionRequest>,
    /// Problems met while running the admin's flows (bad guard at run time, no transition).
    pub diagnostics: Vec<String>,
    /// The intent the turn was understood as, if any.
    pub intent: Option<String>,
    /// A flow ended and nothing else is active.
    pub ended: bool,
    /// Replies whose template failed to render (also in `diagnostics`); the patient got the
    /// fallback reply instead. The service counts them and lists them for the reload report.
    pub render_errors: Vec<String>,
}

/// The reply when even the clinic's fallback text cannot be rendered.
fn built_in_fallback(lang: crate::lang::Lang) -> &'static str {
    match lang {
        crate::lang::Lang::Es => "Disculpe, tuve un problema para responderle. ¿Puede repetirlo, por favor?",
        crate::lang::Lang::En => "Sorry, I had a problem answering you. Could you say that again, please?",
    }
}

/// A turn that ends with nothing to say (a reply template that rendered empty, a flow that
/// stopped without a word) still answers the patient, and the turn records why. Silence while
/// staff has the conversation is meant, and stays.
pub fn ensure_reply(session: &Session, replies: &mut Vec<String>, problems: &mut Vec<String>) {
    if replies.is_empty() && !session.waiting_for_staff {
        problems.push(format!(
            "{}: the turn ended without a reply; the patient got the built-in apology",
            session.position()
        ));
        replies.push(built_in_fallback(session.lang).to_string());
    }
}

/// What the NLU should expect, given where the conversation is.
pub fn nlu_context(bot: &Bot, s: &Session) -> NluContext {
    let mut ctx = NluContext {
        lang: s.lang,
        ..Default::default()
    };
    if let Some(frame) = s.top()
        && let Some(flow) = bot.flow(&frame.flow)
    {
        ctx.in_scope = flow.slots.iter().filter_map(|sl| sl.entity).collect();
        match &frame.wait {
            Wait::Slot(name) => {
                ctx.asking = flow.slot(name).and_then(|sl| sl.entity);
                ctx.past_dates = flow.slot(name).is_some_and(|sl| sl.past);
                ctx.optional = flow.slot(name).is_some_and(|sl| sl.optional);
            }
            Wait::Intent => {
                if let Some(StateKind::Expect(list)) = flow.state(&frame.state).map(|st| &st.kind) {
                    ctx.expecting = list.clone();
                }
            }
            _ => {}
        }
    }
    ctx
}

/// Runs one step. Never panics: flow errors become diagnostics and a fallback reply.
pub fn step(bot: &Bot, session: &Session, input: Input, now: &Zoned) -> Outcome {
    let mut m = Machine {
        bot,
        s: session.clone(),
        out: Outcome::default(),
        now,
        intent: String::new(),
        text: String::new(),
        budget: 64,
    };
    match input {
        Input::Message { text, nlu } => {
            let watched = !m.s.waiting_for_staff;
            m.s.watch.begin(&m.s.stack, watched);
            m.s.turns += 1;
            m.text = text.chars().take(2_000).collect();
            m.message(&text, &nlu);
        }
        Input::ActionResult(v) => m.action_result(v),
    }
    m.flow_escalations();
    m.s.watch.add(&m.out.replies);
    if m.out.pending.is_none() && m.s.watch.end(&m.s.stack) >= bot.global.max_attempts.max(1) {
        // The same reply again, in the same place: hand over instead of a third copy.
        m.out.replies.clear();
        m.escalate_after_failures();
        m.s.watch.reset();
    }
    m.note_told();
    m.out.ended = m.out.ended && m.s.stack.is_empty();
    m.out.session = m.s;
    m.out
}

mod choosing;
mod handoff;
mod values;
use choosing::OptionTurn;
pub use handoff::HandoffReason;

struct Machine<'a> {
    bot: &'a Bot,
    s: Session,
    out: Outcome,
    now: &'a Zoned,
    intent: String,
    /// The patient's message of this turn (empty for action results).
    text: String,
    /// State entries left in this step; a flow that loops without waiting is stopped.
    budget: u32,
}

/// Whether the active frame took the message.
enum Consumed {
    /// It answered what was asked (or corrected something): run the flow on.
    Answered,
    /// It gave a value that fails the slot's schema; the slot's `invalid` text was said.
    Invalid,
    /// It had nothing for the frame.
    No,
}

/// What the message did to the active frame.
#[derive(Default)]
struct Assigned {
    pending_filled: bool,
    pending_invalid: bool,
    filled: Vec<String>,
    corrected: Vec<String>,
}

impl<'a> Machine<'a> {
    fn message(&mut self, text: &str, nlu: &Understanding) {
        if let Some(lang) = nlu.lang {
            self.s.lang = lang;
        }
        // "2" in a `numbered` expect state is the second expected intent.
        let intent = super::choice::numbered(self.bot, &self.s, nlu).or_else(|| nlu.intent_name().map(str::to_string));
        self.out.intent = intent.clone();
        self.intent = intent.clone().unwrap_or_default();
        let g = &self.bot.global;

        if self.s.waiting_for_staff {
            self.while_with_staff();
            return;
        }
        if !self.s.out_of_hours_noted
            && !self.bot.clinic.is_open(self.now.date(), self.now.time())
            && let Some(t) = &g.out_of_hours
        {
            self.s.out_of_hours_noted = true;
            self.say_text(t);
        }

        self.repair();
        let expecting = self.expected_intents();
        let global_intent = intent.as_deref().filter(|i| !expecting.iter().any(|e| e == i));
        if is_match(&g.restart, text, global_intent) {
            self.s.stack.clear();
            self.s.failures = 0;
            self.say_text(&g.restart.say);
            return;
        }
        if is_match(&g.handoff, text, global_intent) {
            self.say_text(&g.handoff.say);
            self.escalate(HandoffReason::PatientAsked);
            return;
        }
        if is_match(&g.cancel, text, global_intent) {
            self.s.failures = 0;
            self.s.stack.pop();
            self.say_text(&g.cancel.say);
            self.reask();
            return;
        }
        if is_match(&g.help, text, global_intent) {
            self.s.failures = 0;
            self.say_text(&g.help.say);
            self.reask();
            return;
        }

        match self.consume(nlu) {
            Consumed::Answered => {
                self.s.failures = 0;
                if self
                    .s
                    .top()
                    .is_some_and(|f| matches!(f.wait, Wait::Slot(_) | Wait::Enter))
                {
                    self.question_alongside(nlu);
                }
                self.run();
                return;
            }
            Consumed::Invalid => return,
            Consumed::No => {}
        }
        if let Some(flow) = intent.as_deref().and_then(|i| self.bot.flow_for_intent(i)) {
            let same = self.s.top().is_some_and(|f| f.flow == flow.name);
            if same {
                self.s.failures = 0;
                if self.question_alongside(nlu) {
                    self.run();
                } else {
                    self.reask();
                }
                return;
            }
            let can_interrupt = self
                .s
                .top()
                .and_then(|f| self.bot.flow(&f.flow))
                .is_none_or(|f| f.interruptible);
            if can_interrupt {
                self.s.failures = 0;
                if self.s.stack.is_empty() && !self.s.greeted && self.s.turns == 1 {
                    // A conversation that opens with a request still gets the clinic's greeting.
                    self.s.greeted = true;
                    self.say_text(&g.greeting.say);
                }
                self.start_with_question(flow, nlu);
                self.run();
                return;
            }
        }
        if is_match(&g.greeting, text, intent.as_deref()) {
            self.s.failures = 0;
            self.s.greeted = true;
            self.say_text(&g.greeting.say);
            self.reask();
            return;
        }
        self.fallback();
    }

    fn expected_intents(&self) -> Vec<String> {
        let Some(frame) = self.s.top() else { return Vec::new() };
        if frame.wait != Wait::Intent {
            return Vec::new();
        }
        match self
            .bot
            .flow(&frame.flow)
            .and_then(|f| f.state(&frame.state))
            .map(|s| &s.kind)
        {
            Some(StateKind::Expect(list)) => list.clone(),
            _ => Vec::new(),
        }
    }

    /// Makes the stack fit the current bot after an edit: frames of removed flows are dropped,
    /// a frame whose state was removed starts its flow again (keeping what it knew).
    fn repair(&mut self) {
        while let Some(frame) = self.s.top() {
            let Some(flow) = self.bot.flow(&frame.flow) else {
                self.out.diagnostics.push(format!(
                    "flow `{}` no longer exists; the conversation left it",
                    frame.flow
                ));
                self.s.stack.pop();
                continue;
            };
            if flow.state(&frame.state).is_none() {
                let start = flow.states.get(flow.start).map(|s| s.name.clone()).unwrap_or_default();
                if let Some(f) = self.s.top_mut() {
                    f.state = start;
                    f.wait = Wait::Enter;
                }
            }
            return;
        }
    }

    /// Tries to use the message for the active frame.
    fn consume(&mut self, nlu: &Understanding) -> Consumed {
        let Some(frame) = self.s.top().cloned() else {
            return Consumed::No;
        };
        let Some(flow) = self.bot.flow(&frame.flow) else {
            return Consumed::No;
        };
        let triggers_other = self
            .out
            .intent
            .as_deref()
            .and_then(|i| self.bot.flow_for_intent(i))
            .is_some_and(|f| f.name != flow.name && nlu.sure && flow.interruptible);
        match frame.wait.clone() {
            Wait::Slot(pending) => {
                let corrected_nlu;
                let mut new_search = false;
                let nlu = match self.choose_option(flow, &pending, nlu) {
                    OptionTurn::Done(c) => return c,
                    OptionTurn::Correction(n) => {
                        corrected_nlu = n;
                        new_search = true;
                        &corrected_nlu
                    }
                    OptionTurn::Usual => nlu,
                };
                let a = self.assign(flow, nlu, Some(&pending));
                // No option fits but the message gave a day or time: search again with it.
                if new_search
                    && !a.pending_filled
                    && let Some(slot) = a.corrected.first().or(a.filled.first())
                {
                    self.goto_collector(flow, slot);
                    return Consumed::Answered;
                }
                if a.pending_invalid {
                    // Invalid answers alone never hand over (docs/flows.md §2.2): the patient is
                    // trying, and the `invalid` text says how. While a run of misunderstood
                    // messages is counting, one extends it. The same reply a third time is still
                    // caught by the stall watch.
                    if self.s.failures > 0 && self.count_failure() {
                        return Consumed::Invalid;
                    }
                    let slot = flow.slot(&pending);
                    match slot.and_then(|s| s.invalid.as_ref()) {
                        Some(t) => self.say_text(t),
                        None => self.say_text(&self.bot.global.fallback),
                    }
                    self.ask(&pending);
                    return Consumed::Invalid;
                }
                // An optional slot declined ("no", "no tengo", "skip"): answered with nothing.
                if !a.pending_filled && self.intent == "deny" && flow.slot(&pending).is_some_and(|s| s.optional) {
                    if let Some(top) = self.s.top_mut() {
                        top.slots.insert(pending.clone(), Value::Null);
                    }
                    return Consumed::Answered;
                }
                if !a.pending_filled && triggers_other {
                    self.undo(&frame);
                    return Consumed::No;
                }
                if let Some(slot) = a.corrected.first() {
                    self.goto_collector(flow, slot);
                    return Consumed::Answered;
                }
                if a.pending_filled || !a.filled.is_empty() {
                    Consumed::Answered
                } else {
                    Consumed::No
                }
            }
            Wait::Intent => {
                let a = self.assign(flow, nlu, None);
                if let Some(slot) = a.corrected.first() {
                    self.goto_collector(flow, slot);
                    return Consumed::Answered;
                }
                if self.expected_intents().contains(&self.intent) {
                    return Consumed::Answered;
                }
                // Values it already holds said again ("particular" at the confirmation): nothing
                // changes, the question is asked again (and a third time hands over, see stalls).
                let restated = !nlu.entities.is_empty()
                    && nlu.entities.iter().all(|e| {
                        super::slots::target_slot(flow, e.kind, None, |_| true)
                            .and_then(|s| frame.slots.get(&s))
                            .is_some_and(|v| *v == e.value)
                    });
                if (!a.filled.is_empty() || restated) && !triggers_other {
                    // New details while a yes/no is pending: keep them and ask again.
                    self.reask();
                    self.budget = 0;
                    return Consumed::Answered;
                }
                self.undo(&frame);
                Consumed::No
            }
            // A frame restarted by `repair`: whatever the message says feeds its slots.
            Wait::Enter => {
                let _ = self.assign(flow, nlu, None);
                Consumed::Answered
            }
            Wait::Action => Consumed::No,
        }
    }

    fn undo(&mut self, frame: &Frame) {
        if let Some(top) = self.s.top_mut() {
            *top = frame.clone();
        }
    }

    /// Maps the NLU's entities to the frame's slots, validating each against its schema.
    fn assign(&mut self, flow: &Flow, nlu: &Understanding, pending: Option<&str>) -> Assigned {
        let mut a = Assigned::default();
        let Some(frame) = self.s.stack.last_mut() else { return a };
        let mut used: Vec<String> = Vec::new();
        for e in &nlu.entities {
            let target = super::slots::target_slot(flow, e.kind, pending, |n| frame.slots.contains_key(n));
            let Some(target) = target else { continue };
            if used.contains(&target) {
                continue;
            }
            used.push(target.clone());
            let Some(slot) = flow.slot(&target) else { continue };
            let is_pending = pending == Some(target.as_str());
            if !slot.schema.is_valid(&e.value) {
                if is_pending {
                    a.pending_invalid = true;
                }
                continue;
            }
            match frame.slots.get(&target) {
                // Declined before (an optional slot), given now: a first value, not a change.
                Some(Value::Null) => {
                    frame.slots.insert(target.clone(), e.value.clone());
                    if is_pending {
                        a.pending_filled = true;
                    } else {
                        a.filled.push(target);
                    }
                }
                Some(old) if *old == e.value => {
                    if is_pending {
                        a.pending_filled = true;
                    }
                }
                Some(_) => {
                    frame.slots.insert(target.clone(), e.value.clone());
                    if is_pending {
                        a.pending_filled = true;
                    } else {
                        a.corrected.push(target);
                    }
                }
                None => {
                    frame.slots.insert(target.clone(), e.value.clone());
                    if is_pending {
                        a.pending_filled = true;
                    } else {
                        a.filled.push(target);
                    }
                }
            }
        }
        if a.pending_filled {
            a.pending_invalid = false;
        }
        // A new window ("mejor a la tarde") replaces an exact time held from before, unless
        // the same message says a time too: otherwise the old time would win the search.
        // Replacing a time is a correction: availability is searched again.
        let window_set = a
            .filled
            .iter()
            .chain(&a.corrected)
            .find(|n| flow.slot(n).is_some_and(|s| s.entity == Some(EntityKind::Window)));
        if let Some(window) = window_set.cloned()
            && nlu.entity(EntityKind::Time).is_none()
        {
            let mut replaced = false;
            for sl in flow.slots.iter().filter(|s| s.entity == Some(EntityKind::Time)) {
                replaced |= frame.slots.remove(&sl.name).is_some();
            }
            if replaced && !a.corrected.contains(&window) {
                a.filled.retain(|n| *n != window);
                a.corrected.push(window);
            }
        }
        a
    }

    /// A correction: go back to the first state that collects the slot (the flow's first
    /// state when none does: the value is still an input of what follows) and run forward again.
    fn goto_collector(&mut self, flow: &Flow, slot: &str) {
        let idx = flow.collector_of(slot).or(Some(flow.start));
        if let (Some(i), Some(frame)) = (idx, self.s.top_mut())
            && let Some(st) = flow.states.get(i)
        {
            frame.state = st.name.clone();
            frame.wait = Wait::Enter;
        }
    }

    fn start_flow(&mut self, flow: &Flow, nlu: &Understanding, carry: super::session::Slots) {
        let start = flow.states.get(flow.start).map(|s| s.name.clone()).unwrap_or_default();
        self.s.stack.push(Frame {
            flow: flow.name.clone(),
            state: start,
            slots: carry,
            wait: Wait::Enter,
            result: Value::Null,
        });
        let _ = self.assign(flow, nlu, None);
    }

    fn action_result(&mut self, v: Value) {
        match self.s.top_mut() {
            Some(frame) if frame.wait == Wait::Action => {
                frame.result = v;
                self.run();
            }
            _ => self
                .out
                .diagnostics
                .push("an action result arrived but no action was pending".into()),
        }
    }

    /// Runs states until the conversation waits for the patient or for an action.
    fn run(&mut self) {
        while self.budget > 0 {
            let Some(frame) = self.s.top().cloned() else { return };
            let Some(flow) = self.bot.flow(&frame.flow) else {
                // The flow was removed by an edit: drop it politely.
                self.s.stack.pop();
                continue;
            };
            let Some(state) = flow.state(&frame.state) else {
                // The state was removed by an edit: restart the flow.
                if let Some(f) = self.s.top_mut() {
                    f.state = flow.states.get(flow.start).map(|s| s.name.clone()).unwrap_or_default();
                    f.wait = Wait::Enter;
                }
                self.budget -= 1;
                continue;
            };
            match frame.wait {
                Wait::Enter => {
                    self.budget -= 1;
                    if !self.enter(flow, state) {
                        return;
                    }
                }
                Wait::Slot(_) => {
                    if let StateKind::Collect(list) = &state.kind
                        && let Some(missing) = list.iter().find(|s| !frame.slots.contains_key(*s))
                    {
                        self.set_wait(Wait::Slot(missing.clone()));
                        self.ask(missing);
                        return;
                    }
                    if !self.transition(flow, state) {
                        return;
                    }
                }
                Wait::Intent | Wait::Action => {
                    if !self.transition(flow, state) {
                        return;
                    }
                }
            }
        }
        if self.budget == 0 && self.out.pending.is_none() && self.s.top().is_some_and(|f| f.wait == Wait::Enter) {
            self.flow_error("the flow went from state to state without stopping to ask anything".into());
        }
    }

    fn set_wait(&mut self, w: Wait) {
        if let Some(f) = self.s.top_mut() {
            f.wait = w;
        }
    }

    /// Runs a state's entry. Returns false when the turn must stop here (waiting).
    fn enter(&mut self, flow: &Flow, state: &State) -> bool {
        if !self.apply_set(&state.set) {
            return false;
        }
        self.clear(&state.clear);
        if let Some(t) = &state.say {
            self.say_text(t);
        }
        match &state.kind {
            StateKind::Collect(list) => {
                let slots = self.s.top().map(|f| f.slots.clone()).unwrap_or_default();
                match list.iter().find(|s| !slots.contains_key(*s)) {
                    Some(missing) => {
                        self.set_wait(Wait::Slot(missing.clone()));
                        self.ask(missing);
                        false
                    }
                    None => self.transition(flow, state),
                }
            }
            StateKind::Action(call) => match self.request(call) {
                Some(req) => {
                    self.set_wait(Wait::Action);
                    self.out.pending = Some(req);
                    false
                }
                None => false,
            },
            StateKind::Expect(_) => {
                self.set_wait(Wait::Intent);
                false
            }
            StateKind::Plain => self.transition(flow, state),
        }
    }

    /// Takes the first transition whose guard holds. Returns false when the turn must stop.
    fn transition(&mut self, flow: &Flow, state: &State) -> bool {
        if state.end && state.next.is_empty() {
            return self.end_flow();
        }
        for t in &state.next {
            let ok = match &t.guard {
                None => true,
                Some(g) => match self.guard(g) {
                    Ok(b) => b,
                    Err(e) => {
                        self.flow_error(e.to_string());
                        return false;
                    }
                },
            };
            if !ok {
                continue;
            }
            if !self.apply_set(&t.set) {
                return false;
            }
            self.clear(&t.clear);
            if let Some(text) = &t.say {
                self.say_text(text);
            }
            for call in &t.effects {
                match self.request(call) {
                    Some(req) => self.out.effects.push(req),
                    None => return false,
                }
            }
            return match &t.target {
                Target::Goto(i) => {
                    let name = flow.states.get(*i).map(|s| s.name.clone()).unwrap_or_default();
                    if let Some(f) = self.s.top_mut() {
                        f.state = name;
                        f.wait = Wait::Enter;
                    }
                    true
                }
                Target::End => self.end_flow(),
                Target::Flow(name) => match self.bot.flow(name) {
                    Some(next) => {
                        let carry = self.s.stack.pop().map(|f| f.slots).unwrap_or_default();
                        let carry = carry.into_iter().filter(|(k, _)| next.slot(k).is_some()).collect();
                        self.start_flow(next, &Understanding::default(), carry);
                        true
                    }
                    None => {
                        self.flow_error(format!("flow `{name}` does not exist"));
                        false
                    }
                },
            };
        }
        self.flow_error(format!("no transition of state `{}` matched", state.name));
        false
    }

    /// Ends the top flow; the interrupted one, if any, asks its question again.
    fn end_flow(&mut self) -> bool {
        self.s.stack.pop();
        if self.s.stack.is_empty() {
            self.out.ended = true;
            return false;
        }
        // A frame whose pending slot was filled meanwhile (by the message that also asked a
        // question) goes on too.
        let resumable = self
            .s
            .top()
            .is_some_and(|f| f.wait == Wait::Enter || matches!(&f.wait, Wait::Slot(p) if f.slots.contains_key(p)));
        if resumable {
            return true;
        }
        self.reask();
        false
    }

    /// Repeats the pending question of the active frame, if it waits for the patient.
    fn reask(&mut self) {
        let Some(frame) = self.s.top().cloned() else { return };
        match &frame.wait {
            Wait::Slot(slot) => self.ask(slot),
            Wait::Intent => {
                if let Some(t) = self
                    .bot
                    .flow(&frame.flow)
                    .and_then(|f| f.state(&frame.state))
                    .and_then(|s| s.say.as_ref())
                {
                    self.say_text(t);
                }
            }
            Wait::Enter | Wait::Action => {}
        }
    }

    fn ask(&mut self, slot: &str) {
        let text = self
            .s
            .top()
            .and_then(|f| self.bot.flow(&f.flow))
            .and_then(|f| f.slot(slot))
            .and_then(|s| s.ask.clone());
        if let Some(t) = text {
            self.say_text(&t);
        }
    }

    fn fallback(&mut self) {
        if self.count_failure() {
            return;
        }
        self.say_text(&self.bot.global.fallback);
        self.reask();
    }

    /// One more misunderstood message; the `max_attempts`-th hands over (true when it did).
    fn count_failure(&mut self) -> bool {
        self.s.failures += 1;
        let escalate = self.s.failures >= self.bot.global.max_attempts;
        if escalate {
            self.escalate_after_failures();
        }
        escalate
    }

    fn escalate_after_failures(&mut self) {
        self.say_text(&self.bot.global.escalate_say);
        self.escalate(HandoffReason::NotUnderstood);
    }
}

fn is_match(b: &Behaviour, text: &str, intent: Option<&str>) -> bool {
    b.matches(text, intent)
}
