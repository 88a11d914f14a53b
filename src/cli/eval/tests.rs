//! Unit tests of the case format and the scoring, on the demo clinic.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::json;

use super::cases::{self, NO_INTENT};
use super::score;
use crate::engine::session::Wait;
use crate::flow::bot::Bot;
use crate::flow::compile::compile_dir;

fn demo() -> &'static Bot {
    static BOT: OnceLock<Bot> = OnceLock::new();
    BOT.get_or_init(|| compile_dir(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|d| panic!("{}", d.render())))
}

const HEAD: &str = "now: \"2026-11-23T10:00\"\ncases:\n";

#[test]
fn a_collecting_state_asks_its_first_missing_slot() {
    let src = format!(
        "{HEAD}  - message: \"el jueves 26\"\n    state: book_appointment.details\n    filled: {{ specialty: Cardiología }}\n    expect: {{ intent: none, slots: {{ date: \"2026-11-26\" }} }}\n"
    );
    let cs = cases::parse(demo(), "t.yaml", &src).expect("parses");
    let frame = cs[0].session.top().expect("a frame");
    assert_eq!(frame.wait, Wait::Slot("date".into()));
    assert_eq!(cases::describe(&cs[0].session), "book_appointment.details asking date");
    assert_eq!(cs[0].at, "t.yaml:3");
}

#[test]
fn a_label_that_cannot_be_right_is_a_malformed_file_with_its_line() {
    let bad_intent = format!("{HEAD}  - message: \"hola\"\n    expect: {{ intent: saludo }}\n");
    let e = cases::parse(demo(), "t.yaml", &bad_intent).expect_err("unknown intent");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.to_string().contains("`saludo` is not an intent"), "{e}");

    let bad_value = format!(
        "{HEAD}  - message: \"x\"\n    state: book_appointment.details\n    expect: {{ intent: none, slots: {{ specialty: Cardio }} }}\n"
    );
    let e = cases::parse(demo(), "t.yaml", &bad_value).expect_err("bad value");
    assert_eq!(e.line, 5, "{e}");

    // A slot nothing would store: no flow active and the intent starts none.
    let no_flow =
        format!("{HEAD}  - message: \"hola\"\n    expect: {{ intent: greet, slots: {{ date: \"2026-11-26\" }} }}\n");
    let e = cases::parse(demo(), "t.yaml", &no_flow).expect_err("no flow");
    assert!(e.to_string().contains("nothing would store slot `date`"), "{e}");

    // Every slot of a collecting state filled: it would not be waiting.
    let full = format!(
        "{HEAD}  - message: \"x\"\n    state: cancel_appointment.identify\n    filled: {{ document_id: \"30111222\" }}\n    expect: {{ intent: none }}\n"
    );
    assert!(cases::parse(demo(), "t.yaml", &full).is_err());
}

#[test]
fn scoring_counts_intents_slots_spurious_values_and_sureness() {
    let src = [
        HEAD,
        "  - message: \"la 2\"\n    state: cancel_appointment.pick\n    expect: { intent: none, slots: { choice: 2 } }\n",
        "  - message: \"hola\"\n    expect: { intent: greet }\n",
        "  - message: \"trabajan con osde?\"\n    expect: { intent: faq_coverage, slots: { coverage: Galeno } }\n",
    ]
    .concat();
    let cs = cases::parse(demo(), "t.yaml", &src).expect("parses");
    let r = score::run_rules(demo(), &cs);
    assert_eq!(r.cases, 3);
    assert_eq!(r.intent.correct, 3);
    // choice right; coverage came out OSDE where the (deliberately wrong) label says Galeno.
    assert_eq!((r.slots.n, r.slots.correct), (2, 1));
    assert_eq!(r.per_slot["coverage"].correct, 0);
    assert_eq!(r.exact.correct, 2);
    assert_eq!(r.misses.len(), 1);
    assert_eq!(r.misses[0].got.slots.get("coverage"), Some(&json!("OSDE")));
    assert_eq!(r.tokens_per_message(), 0.0);
    assert!(r.per_intent.contains_key(NO_INTENT));
}

#[test]
fn a_number_fills_the_pending_slot_of_its_kind() {
    // reschedule has two number slots (choice, option): the one asked gets it.
    let src = format!(
        "{HEAD}  - message: \"2\"\n    state: reschedule_appointment.pick_option\n    expect: {{ intent: none, slots: {{ option: 2 }} }}\n"
    );
    let cs = cases::parse(demo(), "t.yaml", &src).expect("parses");
    let r = score::run_rules(demo(), &cs);
    assert_eq!(r.per_slot["option"].correct, 1, "{:?}", r.misses);
    assert_eq!(r.spurious, 0);
}

#[test]
fn token_counts_use_the_gpt_4o_tokenizer() {
    assert_eq!(super::cost::tokens(""), 0);
    // o200k_base: "hello world" is two tokens.
    assert_eq!(super::cost::tokens("hello world"), 2);
}
