//! `clinicflow eval`: scoring a labelled set, reporting malformed files, and the cost replay.

use std::process::Command;

use clinicflow::cli::eval::{self, cost, score};

use crate::support::{bin, demo, fixtures, root};

#[test]
fn the_small_set_scores_as_labelled() {
    let bot = demo();
    let files = vec![fixtures().join("eval/cases.yaml")];
    let cases = eval::load_all(&bot, &files).expect("the fixture loads");
    let r = score::run_rules(&bot, &cases);
    assert_eq!(r.cases, 8);
    assert_eq!((r.intent.n, r.intent.correct), (8, 7), "{:#?}", r.misses);
    // choice, document_id right; coverage and date labelled wrong on purpose.
    assert_eq!((r.slots.n, r.slots.correct), (4, 2), "{:#?}", r.misses);
    assert_eq!(r.per_slot["choice"].correct, 1);
    assert_eq!(r.per_slot["document_id"].correct, 1);
    assert_eq!(r.per_slot["date"].correct, 0);
    assert_eq!(r.per_intent["greet"], score::Tally { n: 1, correct: 1 });
    assert_eq!(r.per_intent["thanks"], score::Tally { n: 2, correct: 1 });
    assert_eq!((r.exact.n, r.exact.correct), (8, 5));
    assert_eq!(r.misses.len(), 3);
    assert_eq!(r.sure.n + r.to_llm, 8);
    assert!(!r.llm_used);
    assert_eq!(r.tokens_per_message(), 0.0);

    let table = eval::render(&r, 1);
    assert!(table.contains("intent accuracy     7/8 = 87.5%"), "{table}");
    assert!(table.contains("slot accuracy       2/4 = 50.0%"), "{table}");
    let misses = eval::render_misses(&r);
    assert!(misses.contains("cases.yaml:"), "{misses}");
    assert!(misses.contains("message:  el jueves"), "{misses}");
    assert!(misses.contains("\"date\":\"2026-11-26\""), "{misses}");
}

#[test]
fn the_demo_set_is_large_and_runs_from_the_command_line() {
    let dir = root().display().to_string();
    let out = Command::new(bin())
        .args(["eval", "--dir", &dir, "--failures"])
        .output()
        .expect("run clinicflow eval");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = stdout
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .expect("first word is the number of messages");
    assert!(n >= 170, "the labelled set has {n} messages");
    assert!(stdout.contains("NLU: rules only"), "{stdout}");
    assert!(stdout.contains("LLM tokens/message  0.0"), "{stdout}");
    assert!(stdout.contains("not understood exactly as labelled"), "{stdout}");
}

#[test]
fn a_malformed_case_file_exits_2_with_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("bad.yaml");
    let src = "now: \"2026-11-23T10:00\"\ncases:\n  - message: \"hola\"\n    expect: { intent: greet }\n  - message: \"cardio\"\n    state: book_appointment.detalles\n    expect: { intent: none }\n";
    std::fs::write(&file, src).expect("write");
    let dir = root().display().to_string();
    let out = Command::new(bin())
        .args(["eval", "--dir", &dir])
        .arg(&file)
        .output()
        .expect("run clinicflow eval");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.yaml:6:"), "{stderr}");
    assert!(stderr.contains("has no state `detalles`"), "{stderr}");
}

#[tokio::test]
async fn the_cost_replay_counts_a_booking_against_the_whole_chat_baseline() {
    let bot = demo();
    let files = vec![root().join("tests/conversations/book_cardiologia.yaml")];
    let r = cost::run(bot, &files, &eval::llm::prompt).await.expect("replays");
    assert_eq!(r.rows.len(), 1);
    let t = &r.total;
    assert_eq!(t.booked, 1);
    assert_eq!(t.turns, 9);
    // Every baseline turn sends at least the system prompt; the chat grows turn by turn.
    assert!(t.base_in > 9 * r.base_system, "{t:?}");
    assert!(t.base_out > 0);
    // The upper bound sends one NLU prompt per turn; ours only on turns the rules were unsure of.
    assert!(t.every_in > 9 * 200, "{t:?}");
    assert!(t.ours_in <= t.every_in);
    assert_eq!(t.ours_in == 0, t.llm_turns == 0);
    assert!(r.ratio() < r.every_ratio() || t.llm_turns == t.turns);
    let md = eval::render_cost(&r, Some(0.5));
    assert!(md.contains("| book_cardiologia.yaml | 9 |"), "{md}");
    assert!(md.contains("LLM on 50% of turns"), "{md}");
}

/// `--llm`: the messages the rules are not sure of go through `Llm::understand` (a fake
/// OpenAI-compatible server here), and the tokens it reports are counted per message.
#[tokio::test]
async fn with_an_llm_the_unsure_messages_go_to_it_and_their_tokens_are_counted() {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let content = json!({ "intent": "book_appointment", "slots": { "specialty": null, "date": null, "time": null, "coverage": null } });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": content.to_string() }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 420, "completion_tokens": 31, "total_tokens": 451 }
        })))
        .mount(&server)
        .await;
    let llm = std::sync::Arc::new(clinicflow::llm::Llm::new(clinicflow::llm::LlmConfig::new(
        "test-key",
        Some(format!("{}/v1", server.uri())),
    )));
    let bot = demo();
    let src = concat!(
        "now: \"2026-11-23T10:00\"\ncases:\n",
        // Sure: answered by the rules, no call.
        "  - message: \"hola\"\n    expect: { intent: greet }\n",
        // Vague: only the model can tell it is a booking.
        "  - message: \"lo mismo q la otra vez con la doctora esa q me atendio, se puede?\"\n    expect: { intent: book_appointment }\n",
    );
    let cases = eval::cases::parse(&bot, "t.yaml", src).expect("parses");
    let step = eval::llm::step_with(bot.clone(), llm);
    let mut ticks = 0;
    let r = score::run_with_llm(&bot, &cases, step, || ticks += 1).await;
    assert_eq!(ticks, 2);
    assert!(r.llm_used);
    assert_eq!((r.sure.n, r.to_llm), (1, 1), "{:#?}", r.misses);
    assert_eq!((r.tokens_in, r.tokens_out), (420, 31));
    assert_eq!(r.tokens_per_message(), 451.0 / 2.0);
    assert_eq!(r.intent.correct, 2, "{:#?}", r.misses);
    assert!(eval::render(&r, 1).contains("NLU: rules + LLM"));
}
