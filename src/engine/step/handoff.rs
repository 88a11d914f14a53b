//! Handing a conversation over to staff, and what the assistant does while staff has it.
//!
//! One rule for every way in (the patient asks for a person, the assistant fails to
//! understand, a flow runs the `escalate` action): the session waits for staff, keeps its
//! stack and slots (so the assistant resumes where it was once staff resolves), and the
//! patient is told once that staff will answer, not on every message. Reasons are written in
//! the clinic's language, for the staff who read them.

use serde_json::{Map, Value};

use super::Machine;
use crate::actions::{ActionName, ActionRequest};
use crate::lang::Lang;

/// Why a conversation was handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffReason {
    /// The patient asked for a person (`handoff` command or intent).
    PatientAsked,
    /// The assistant did not understand the patient `max_attempts` times in a row.
    NotUnderstood,
}

impl HandoffReason {
    /// A stable code, for metrics and filters.
    pub fn code(self) -> &'static str {
        match self {
            HandoffReason::PatientAsked => "patient_asked",
            HandoffReason::NotUnderstood => "not_understood",
        }
    }

    /// The reason as staff read it, in the clinic's language.
    pub fn text(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (HandoffReason::PatientAsked, Lang::Es) => "El paciente pidió hablar con una persona.",
            (HandoffReason::PatientAsked, Lang::En) => "The patient asked to talk to a person.",
            (HandoffReason::NotUnderstood, Lang::Es) => "El asistente no logró entender al paciente.",
            (HandoffReason::NotUnderstood, Lang::En) => "The assistant could not understand the patient.",
        }
    }
}

impl Machine<'_> {
    /// Opens an escalation and hands the conversation to staff, keeping the active flows.
    pub(super) fn escalate(&mut self, reason: HandoffReason) {
        let mut args = Map::new();
        args.insert(
            "reason".into(),
            Value::String(reason.text(self.bot.clinic.language).into()),
        );
        args.insert("code".into(), Value::String(reason.code().into()));
        args.insert("message".into(), Value::String(self.text.clone()));
        args.insert(
            "flow".into(),
            self.s
                .top()
                .map(|f| Value::String(f.flow.clone()))
                .unwrap_or(Value::Null),
        );
        self.out.effects.push(ActionRequest {
            action: ActionName::Escalate,
            args,
        });
        self.hand_over();
    }

    /// The session now waits for staff. Its flows stay on the stack: staff may resolve and
    /// give the conversation back with what was already collected.
    fn hand_over(&mut self) {
        self.s.waiting_for_staff = true;
        self.s.staff_told = false;
        self.s.failures = 0;
    }

    /// A message while staff has the conversation: the patient hears once that staff will
    /// answer; after that the assistant stays silent (the message is still logged, and staff
    /// sees it in the escalation's transcript).
    pub(super) fn while_with_staff(&mut self) {
        if !self.s.staff_told {
            self.say_text(&self.bot.global.waiting_for_staff);
        }
    }

    /// A flow's own `escalate` action hands over like a handoff does: the assistant stops
    /// answering until staff resolves. The message that led here goes with the escalation.
    pub(super) fn flow_escalations(&mut self) {
        if self.s.waiting_for_staff {
            return;
        }
        let text = self.text.clone();
        let mut found = false;
        for req in self.out.effects.iter_mut().chain(self.out.pending.as_mut()) {
            if req.action == ActionName::Escalate {
                found = true;
                if !text.is_empty() {
                    req.args.entry("message").or_insert(Value::String(text.clone()));
                }
            }
        }
        if found {
            self.hand_over();
        }
    }

    /// Whatever the assistant said while the conversation is with staff tells the patient
    /// that staff will answer.
    pub(super) fn note_told(&mut self) {
        if self.s.waiting_for_staff && !self.out.replies.is_empty() {
            self.s.staff_told = true;
        }
    }
}
