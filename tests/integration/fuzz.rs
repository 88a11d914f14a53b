//! A turn never panics: random, empty, huge and odd-Unicode text goes through the rules NLU
//! and `step` from many conversation positions.

use clinicflow::engine::session::Session;
use clinicflow::engine::{Input, nlu_context, step};
use clinicflow::lang::Lang;
use clinicflow::nlu::Understand;
use proptest::prelude::*;

use crate::support::demo;

fn now() -> jiff::Zoned {
    let dt: jiff::civil::DateTime = "2026-11-23T10:00".parse().expect("dt");
    dt.to_zoned(demo().clinic.tz.clone()).expect("zoned")
}

/// Feeds `texts` one after another, answering every action with a plausible result.
fn converse(texts: &[String]) {
    let bot = demo();
    let now = now();
    let mut s = Session::new("fuzz", "test", "u", Lang::Es);
    for t in texts {
        let ctx = nlu_context(&bot, &s);
        let nlu = bot.nlu.understand(t, &ctx, &now);
        let mut out = step(&bot, &s, Input::Message { text: t.clone(), nlu }, &now);
        let mut guard = 0;
        while let Some(p) = out.pending.take() {
            s = out.session.take().expect("session");
            let result = serde_json::json!({
                "ok": guard % 2 == 0, "available": guard % 3 == 0, "count": guard % 3,
                "alternatives": [{"date": "2026-11-26", "time": "10:30", "professional": "X"}],
                "appointments": [], "action": p.action.as_str(),
            });
            out = step(&bot, &s, Input::ActionResult(result), &now);
            guard += 1;
            assert!(guard < 20, "actions never stop");
        }
        s = out.session.take().expect("session");
    }
}

fn odd_strings() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "\u{0}\u{1}\u{7f}".into(),
        "🙂🙂🙂 turno 🦷".into(),
        "ﷺ مرحبا עברית".into(),
        "e\u{301}\u{301}\u{301}".into(),
        "a".repeat(100_000),
        "12.345.678".repeat(1_000),
        "/ayuda".into(),
        "{{ slots }} {% for %}".into(),
        "\"; DROP TABLE appointment; --".into(),
        "quiero un turno con cardiologia el 31/02 a las 25:99".into(),
        "el 99 de noviembre a las 10 y media".into(),
    ]
}

#[test]
fn odd_inputs_never_panic() {
    let base = [
        "hola",
        "quiero un turno con cardiología",
        "el jueves 26",
        "a las 10",
        "María López",
        "30123456",
    ];
    for odd in odd_strings() {
        for cut in 0..=base.len() {
            let mut texts: Vec<String> = base[..cut].iter().map(|s| s.to_string()).collect();
            texts.push(odd.clone());
            texts.push("sí".into());
            converse(&texts);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(texts in proptest::collection::vec(any::<String>(), 1..6)) {
        converse(&texts);
    }

    #[test]
    fn random_words_never_panic(words in proptest::collection::vec(
        prop::sample::select(vec!["turno", "cardiología", "mañana", "10", "y", "media", "sí", "no", "cancelar",
            "osde", "12.345.678", "el", "jueves", "/ayuda", "hola", "olvidalo", "persona", "3", "de", "la", "tarde"]),
        0..12)) {
        let text = words.join(" ");
        converse(&[text.clone(), text]);
    }
}
