//! `step` on a small bot, with hand-written NLU results so each rule is tested on its own.

use serde_json::{Value, json};

use super::session::{Session, Wait};
use super::{Input, Outcome, step};
use crate::actions::ActionName;
use crate::flow::bot::Bot;
use crate::flow::compile::{Sources, compile};
use crate::lang::Lang;
use crate::nlu::{Entity, EntityKind, IntentGuess, Understanding};

const CLINIC: &str = "clinic:
  name: Clínica Test
  timezone: America/Argentina/Buenos_Aires
  hours: { mon: \"08:00-20:00\" }
  specialties:
    - name: Cardiología
      professionals: [{ name: Dra. A, schedule: { mon: \"08:00-12:00\" } }]
";
const INTENTS: &str = "intents:
  greet: { description: saludo, examples: { es: [hola] } }
  help: { description: ayuda, examples: { es: [ayuda] } }
  restart: { description: reiniciar, examples: { es: [reiniciar] } }
  stop: { description: salir, examples: { es: [olvidalo] } }
  human: { description: persona, examples: { es: [persona] } }
  book: { description: turno, examples: { es: [turno] } }
  faq: { description: pregunta, examples: { es: [obra social] } }
";
const GLOBAL: &str = "global:
  greeting: { intents: [greet], say: \"Hola.\" }
  help: { commands: [/ayuda], intents: [help], say: \"AYUDA\" }
  restart: { commands: [/reiniciar], intents: [restart], say: \"REINICIO\" }
  cancel: { commands: [/cancelar], intents: [stop], say: \"CANCELADO\" }
  handoff: { commands: [/humano], intents: [human], say: \"PERSONA\" }
  out_of_hours: \"CERRADO\"
  waiting_for_staff: \"ESPERE\"
  fallback: { say: \"NO ENTENDI\", escalate_say: \"ESCALO\" }
";
const BOOK: &str = "flow: book
trigger: [book]
slots:
  specialty: { schema: { type: string }, entity: specialty, ask: \"¿Especialidad?\" }
  date: { schema: { type: string, pattern: \"^\\\\d{4}-\\\\d{2}-\\\\d{2}$\" }, ask: \"¿Día?\", invalid: \"FECHA MAL\" }
states:
  details:
    collect: [specialty, date]
    next: check
  check:
    action: find_availability
    with: { specialty: slots.specialty, date: slots.date, fixed: [1, 2] }
    next:
      - if: result.available
        goto: confirm
      - if: result.boom
        say: \"never\"
        goto: details
      - say: \"NO HAY\"
        clear: [date]
        goto: details
  confirm:
    say: \"¿Confirma {{ slots.specialty }} el {{ slots.date }}?\"
    expect: [affirm, deny]
    next:
      - if: intent == \"affirm\"
        say: \"LISTO\"
        do: [{ action: schedule_reminders, with: { before: [\"24h\"] } }]
        end: true
      - goto: details
";
const FAQ: &str = "flow: faq
trigger: [faq]
states:
  answer:
    say: \"RESPUESTA FAQ\"
    end: true
";

fn bot_with(book: &str) -> Bot {
    let mut s = Sources::new();
    s.insert("flows/clinic.yaml", CLINIC);
    s.insert("flows/intents.yaml", INTENTS);
    s.insert("flows/global.yaml", GLOBAL);
    s.insert("flows/book.yaml", book);
    s.insert("flows/faq.yaml", FAQ);
    match compile(&s) {
        Ok(b) => b,
        Err(d) => panic!("{}", d.render()),
    }
}

fn bot() -> Bot {
    bot_with(BOOK)
}

/// Monday 10:00, clinic open.
fn open() -> jiff::Zoned {
    "2026-11-23T10:00[America/Argentina/Buenos_Aires]"
        .parse()
        .expect("zoned")
}

fn msg(intent: Option<&str>, entities: &[(EntityKind, Value)]) -> Input {
    Input::Message {
        text: "x".into(),
        nlu: Understanding {
            intent: intent.map(|i| IntentGuess {
                name: i.into(),
                confidence: 0.95,
            }),
            entities: entities
                .iter()
                .map(|(k, v)| Entity {
                    kind: *k,
                    value: v.clone(),
                    text: v.to_string(),
                })
                .collect(),
            sure: true,
            lang: None,
            source: "test".into(),
            also: None,
        },
    }
}

fn text(input: &str) -> Input {
    Input::Message {
        text: input.into(),
        nlu: Understanding::default(),
    }
}

fn run(bot: &Bot, s: &Session, input: Input) -> (Session, Outcome) {
    let mut out = step(bot, s, input, &open());
    let s = std::mem::take(&mut out.session);
    (s, out)
}

fn new_session() -> Session {
    Session::new("t", "test", "u", Lang::Es)
}

#[test]
fn collects_each_missing_slot_then_requests_the_action() {
    let b = bot();
    let (s, out) = run(&b, &new_session(), msg(Some("book"), &[]));
    assert_eq!(
        out.replies,
        ["Hola.", "¿Especialidad?"],
        "a first message that asks for something is greeted too"
    );
    assert_eq!(s.top().map(|f| f.wait.clone()), Some(Wait::Slot("specialty".into())));
    let (s, out) = run(&b, &s, msg(None, &[(EntityKind::Specialty, json!("Cardiología"))]));
    assert_eq!(out.replies, ["¿Día?"]);
    let (s, out) = run(&b, &s, msg(None, &[(EntityKind::Date, json!("2026-11-26"))]));
    let req = out.pending.expect("find_availability requested");
    assert_eq!(req.action, ActionName::FindAvailability);
    assert_eq!(req.args["specialty"], "Cardiología");
    assert_eq!(req.args["date"], "2026-11-26");
    assert_eq!(req.args["fixed"], json!([1, 2]));
    assert_eq!(s.top().map(|f| f.wait.clone()), Some(Wait::Action));
}

#[test]
fn several_values_in_the_opening_message_skip_their_questions() {
    let b = bot();
    let m = msg(
        Some("book"),
        &[
            (EntityKind::Specialty, json!("Cardiología")),
            (EntityKind::Date, json!("2026-11-26")),
        ],
    );
    let (_, out) = run(&b, &new_session(), m);
    assert!(out.pending.is_some(), "goes straight to the availability check");
}

#[test]
fn a_value_failing_the_schema_gets_the_invalid_text_and_the_question_again() {
    let b = bot();
    let (s, _) = run(
        &b,
        &new_session(),
        msg(Some("book"), &[(EntityKind::Specialty, json!("Cardiología"))]),
    );
    let (s, out) = run(&b, &s, msg(None, &[(EntityKind::Date, json!("26 de algo"))]));
    assert_eq!(out.replies, ["FECHA MAL", "¿Día?"]);
    assert!(!s.top().expect("frame").slots.contains_key("date"));
    assert_eq!(s.failures, 0, "an invalid answer alone is not a misunderstanding");
}

#[test]
fn invalid_answers_alone_never_hand_over_but_one_after_a_misunderstood_message_does() {
    let b = bot();
    let start = || {
        run(
            &b,
            &new_session(),
            msg(Some("book"), &[(EntityKind::Specialty, json!("Cardiología"))]),
        )
        .0
    };
    // Two different typos in a row: explained twice, still asked, nobody called.
    let (s, _) = run(&b, &start(), msg(None, &[(EntityKind::Date, json!("26 de algo"))]));
    let (s, out) = run(&b, &s, msg(None, &[(EntityKind::Date, json!("32/13"))]));
    assert_eq!(out.replies, ["FECHA MAL", "¿Día?"]);
    assert!(!s.waiting_for_staff);
    // The same reply a third time would repeat itself: the stall watch hands over instead.
    let (s, out) = run(&b, &s, msg(None, &[(EntityKind::Date, json!("ayer no"))]));
    assert!(s.waiting_for_staff && out.replies == ["ESCALO"], "{:?}", out.replies);

    // A misunderstood message, then an invalid answer: the second failure hands over.
    let (s, out) = run(&b, &start(), msg(None, &[]));
    assert_eq!(out.replies.first().map(String::as_str), Some("NO ENTENDI"));
    let (s, out) = run(&b, &s, msg(None, &[(EntityKind::Date, json!("26 de algo"))]));
    assert!(s.waiting_for_staff && out.replies == ["ESCALO"], "{:?}", out.replies);
}

fn at_confirm(b: &Bot) -> Session {
    let m = msg(
        Some("book"),
        &[
            (EntityKind::Specialty, json!("Cardiología")),
            (EntityKind::Date, json!("2026-11-26")),
        ],
    );
    let (s, _) = run(b, &new_session(), m);
    let (s, out) = run(b, &s, Input::ActionResult(json!({"available": true})));
    assert_eq!(out.replies, ["¿Confirma Cardiología el 2026-11-26?"]);
    s
}

#[test]
fn action_results_choose_the_transition() {
    let b = bot();
    let m = msg(
        Some("book"),
        &[
            (EntityKind::Specialty, json!("Cardiología")),
            (EntityKind::Date, json!("2026-11-26")),
        ],
    );
    let (s, _) = run(&b, &new_session(), m);
    let (s, out) = run(&b, &s, Input::ActionResult(json!({"available": false})));
    assert_eq!(out.replies, ["NO HAY", "¿Día?"]);
    assert!(!s.top().expect("frame").slots.contains_key("date"), "cleared");
}

#[test]
fn affirm_ends_the_flow_with_its_effects() {
    let b = bot();
    let s = at_confirm(&b);
    let (s, out) = run(&b, &s, msg(Some("affirm"), &[]));
    assert_eq!(out.replies, ["LISTO"]);
    assert_eq!(out.effects.len(), 1);
    assert_eq!(out.effects[0].action, ActionName::ScheduleReminders);
    assert_eq!(out.effects[0].args["before"], json!(["24h"]));
    assert!(out.ended && s.stack.is_empty());
}

#[test]
fn a_correction_at_confirmation_goes_back_and_rechecks() {
    let b = bot();
    let s = at_confirm(&b);
    let (s, out) = run(&b, &s, msg(Some("deny"), &[(EntityKind::Date, json!("2026-11-27"))]));
    let req = out.pending.expect("availability checked again");
    assert_eq!(req.args["date"], "2026-11-27");
    assert_eq!(s.top().expect("frame").slots["date"], "2026-11-27");
}

#[test]
fn a_digression_runs_then_the_interrupted_question_is_asked_again() {
    let b = bot();
    let (s, _) = run(
        &b,
        &new_session(),
        msg(Some("book"), &[(EntityKind::Specialty, json!("Cardiología"))]),
    );
    let (s, out) = run(&b, &s, msg(Some("faq"), &[]));
    assert_eq!(out.replies, ["RESPUESTA FAQ", "¿Día?"]);
    assert_eq!(s.stack.len(), 1);
    assert_eq!(s.top().expect("frame").flow, "book");
}

#[test]
fn two_misunderstood_messages_escalate_to_staff() {
    let b = bot();
    let (s, _) = run(&b, &new_session(), msg(Some("book"), &[]));
    let (s, out) = run(&b, &s, text("???"));
    assert_eq!(out.replies, ["NO ENTENDI", "¿Especialidad?"]);
    let (s, out) = run(&b, &s, text("???"));
    assert_eq!(out.replies, ["ESCALO"]);
    assert_eq!(out.effects[0].action, ActionName::Escalate);
    assert!(s.waiting_for_staff && s.staff_told);
    assert_eq!(
        s.position(),
        "book.details",
        "the flow and its slots wait for the resolve"
    );
    assert_eq!(
        out.effects[0].args["reason"],
        "El asistente no logró entender al paciente."
    );
    let (s, out) = run(&b, &s, msg(Some("book"), &[]));
    assert!(out.replies.is_empty(), "told once already: {:?}", out.replies);
    assert!(out.effects.is_empty() && s.waiting_for_staff);
}

#[test]
fn a_handoff_without_words_tells_the_patient_once_on_the_next_message() {
    let b = bot_with(&BOOK.replace(
        "        say: \"LISTO\"\n        do: [{ action: schedule_reminders, with: { before: [\"24h\"] } }]",
        "        do: [{ action: escalate }]",
    ));
    let s = at_confirm(&b);
    let (s, out) = run(&b, &s, msg(Some("affirm"), &[]));
    assert_eq!(out.effects[0].action, ActionName::Escalate, "the flow's own escalate");
    assert_eq!(out.effects[0].args["message"], "x", "with the message that led there");
    assert!(s.waiting_for_staff && !s.staff_told, "a flow's escalate hands over too");
    let (s, out) = run(&b, &s, text("¿hola?"));
    assert_eq!(out.replies, ["ESPERE"]);
    let (s, out) = run(&b, &s, text("¿hay alguien?"));
    assert!(out.replies.is_empty() && s.waiting_for_staff);
}

#[test]
fn a_turn_with_nothing_to_say_gets_an_apology_and_a_recorded_problem() {
    let s = new_session();
    let (mut replies, mut problems) = (Vec::new(), Vec::new());
    super::ensure_reply(&s, &mut replies, &mut problems);
    assert_eq!(replies.len(), 1);
    assert!(problems[0].contains("without a reply"), "{problems:?}");
    let mut waiting = new_session();
    waiting.waiting_for_staff = true;
    let (mut replies, mut problems) = (Vec::new(), Vec::new());
    super::ensure_reply(&waiting, &mut replies, &mut problems);
    assert!(
        replies.is_empty() && problems.is_empty(),
        "silence while staff has it is meant"
    );
}

#[test]
fn global_commands() {
    let b = bot();
    let (s, _) = run(&b, &new_session(), msg(Some("book"), &[]));
    let (s, out) = run(&b, &s, text("/ayuda"));
    assert_eq!(out.replies, ["AYUDA", "¿Especialidad?"]);
    let (s, out) = run(&b, &s, text("/CANCELAR"));
    assert_eq!(out.replies, ["CANCELADO"]);
    assert!(s.stack.is_empty());
    let (s, _) = run(&b, &s, msg(Some("book"), &[]));
    let (s, out) = run(&b, &s, text("/reiniciar"));
    assert_eq!(out.replies, ["REINICIO"]);
    assert!(s.stack.is_empty());
    let (s, out) = run(&b, &s, text("/humano"));
    assert_eq!(out.replies, ["PERSONA"]);
    assert!(s.waiting_for_staff);
}

#[test]
fn out_of_hours_note_is_given_once() {
    let b = bot();
    let closed: jiff::Zoned = "2026-11-22T22:00[America/Argentina/Buenos_Aires]"
        .parse()
        .expect("zoned");
    let mut out = step(&b, &new_session(), msg(Some("greet"), &[]), &closed);
    assert_eq!(out.replies, ["CERRADO", "Hola."]);
    let s = std::mem::take(&mut out.session);
    let out = step(&b, &s, msg(Some("greet"), &[]), &closed);
    assert_eq!(out.replies, ["Hola."]);
}

#[test]
fn a_guard_failing_at_run_time_is_a_diagnosed_fallback_not_a_panic() {
    let b = bot_with(&BOOK.replace("if: result.boom", "if: result.boom + 1"));
    let m = msg(
        Some("book"),
        &[
            (EntityKind::Specialty, json!("Cardiología")),
            (EntityKind::Date, json!("2026-11-26")),
        ],
    );
    let (s, _) = run(&b, &new_session(), m);
    let (s, out) = run(&b, &s, Input::ActionResult(json!({"available": false, "boom": "x"})));
    assert_eq!(out.replies, ["NO ENTENDI"]);
    assert_eq!(out.diagnostics.len(), 1);
    assert!(
        out.diagnostics[0].contains("book.check") && out.diagnostics[0].contains("result.boom + 1"),
        "{:?}",
        out.diagnostics
    );
    assert!(s.stack.is_empty());
}

#[test]
fn a_state_removed_by_an_edit_restarts_its_flow() {
    let b = bot();
    let mut s = at_confirm(&b);
    if let Some(f) = s.top_mut() {
        f.state = "gone".into();
        f.wait = Wait::Intent;
    }
    let (s, out) = run(&b, &s, msg(Some("affirm"), &[]));
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    assert_eq!(s.top().expect("frame").state, "check", "ran from the start again");
    assert!(out.pending.is_some());
}

#[test]
fn a_flow_removed_by_an_edit_is_dropped() {
    let b = bot();
    let mut s = new_session();
    s.stack.push(super::session::Frame {
        flow: "old_flow".into(),
        state: "x".into(),
        slots: Default::default(),
        wait: Wait::Intent,
        result: Value::Null,
    });
    let (s, out) = run(&b, &s, msg(Some("greet"), &[]));
    assert_eq!(out.replies, ["Hola."]);
    assert!(s.stack.is_empty() || s.top().is_some_and(|f| f.flow != "old_flow"));
}

#[test]
fn a_set_value_that_fails_the_slot_schema_is_a_diagnosed_flow_error() {
    let b = bot_with(&BOOK.replace(
        "        say: \"LISTO\"\n",
        "        set: { date: \"42\" }\n        say: \"LISTO\"\n",
    ));
    let s = at_confirm(&b);
    let (_, out) = run(&b, &s, msg(Some("affirm"), &[]));
    assert_eq!(out.replies, ["NO ENTENDI"]);
    assert!(
        out.diagnostics[0].contains("does not fit the slot's schema"),
        "{:?}",
        out.diagnostics
    );
}
