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
            s = std::mem::take(&mut out.session);
            let result = serde_json::json!({
                "ok": guard % 2 == 0, "available": guard % 3 == 0, "count": guard % 3,
                "alternatives": [{"date": "2026-11-26", "time": "10:30", "professional": "X"}],
                "appointments": [], "action": p.action.as_str(),
            });
            out = step(&bot, &s, Input::ActionResult(result), &now);
            guard += 1;
            assert!(guard < 20, "actions never stop");
        }
        s = std::mem::take(&mut out.session);
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

/// The HTTP surface never answers 5xx or panics, whatever the text, ids, channels, headers
/// or raw bytes of a request: the API in process and the signed Twilio webhooks.
mod http {
    use poem::http::{Method, StatusCode};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::json;

    use crate::api::{Client, NOW, demo_state};
    use crate::twilio::{CLINIC_WA, PATIENT_TEL, PATIENT_WA, Twilio, demo_twilio};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Text that mixes anything with the odd strings above, and lengths around the limits.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            prop::sample::select(super::odd_strings()),
            (0usize..3, any::<char>()).prop_map(|(k, c)| c.to_string().repeat([3_999, 4_001, 20_000][k])),
        ]
    }

    #[track_caller]
    fn no_server_error(status: StatusCode, what: &str) {
        assert!(!status.is_server_error(), "{status} for {what}");
    }

    #[test]
    fn the_api_never_answers_5xx() {
        let rt = runtime();
        let client = rt.block_on(async { Client::new(demo_state().await) });
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        let input = (
            text(),
            "[a-z0-9:+ ]{0,12}",
            "[a-z_ -]{0,8}",
            any::<Option<String>>(),
            any::<Vec<u8>>(),
        );
        runner
            .run(&input, |(text, id, channel, key, bytes)| {
                rt.block_on(async {
                    let id = if id.trim().is_empty() {
                        "fuzz".to_string()
                    } else {
                        id.replace(' ', "-")
                    };
                    let path = format!("/v1/conversations/{id}/messages");
                    let body = json!({ "text": text, "now": NOW, "channel": channel })
                        .to_string()
                        .into_bytes();
                    let key = key.map(|k| k.chars().filter(|c| !c.is_control()).take(40).collect::<String>());
                    let headers: Vec<(&str, &str)> =
                        key.as_deref().map(|k| ("Idempotency-Key", k)).into_iter().collect();
                    let (status, _) = client.raw(Method::POST, &path, body, &headers).await;
                    no_server_error(status, &format!("a message on {id}"));
                    let (status, _) = client.raw(Method::POST, &path, bytes.clone(), &[]).await;
                    no_server_error(status, "raw bytes");
                    for get in [
                        format!("/v1/conversations/{id}"),
                        format!("/v1/conversations/{id}/turns"),
                    ] {
                        no_server_error(client.get(&get).await.0, &get);
                    }
                });
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn the_twilio_webhooks_never_answer_5xx() {
        let rt = runtime();
        let tw = rt.block_on(async { Twilio::new(demo_twilio().await) });
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        let input = (text(), any::<String>(), "[0-9]{0,2}", any::<u16>());
        runner
            .run(&input, |(body, media_type, num_media, n)| {
                rt.block_on(async {
                    let sid = format!("SMfuzz{n}");
                    let messaging = [
                        ("MessageSid", sid.as_str()),
                        ("From", PATIENT_WA),
                        ("To", CLINIC_WA),
                        ("Body", body.as_str()),
                        ("NumMedia", num_media.as_str()),
                        ("MediaUrl0", "https://example.com/x"),
                        ("MediaContentType0", media_type.as_str()),
                        ("ButtonPayload", if n % 3 == 0 { body.as_str() } else { "" }),
                    ];
                    let status = tw.post("/twilio/messaging", &messaging).await.status;
                    no_server_error(status, "a WhatsApp message");
                    let call = format!("CAfuzz{n}");
                    let voice = [
                        ("CallSid", call.as_str()),
                        ("From", PATIENT_TEL),
                        ("To", "+541149015120"),
                        ("CallStatus", "in-progress"),
                        ("SpeechResult", body.as_str()),
                        ("Digits", num_media.as_str()),
                    ];
                    no_server_error(tw.post("/twilio/voice", &voice).await.status, "a call");
                    let gather = tw.post(&format!("/twilio/voice/gather?n={n}"), &voice).await.status;
                    no_server_error(gather, "speech");
                    let status = tw
                        .post(
                            "/twilio/messaging/status",
                            &[("MessageSid", sid.as_str()), ("MessageStatus", body.as_str())],
                        )
                        .await
                        .status;
                    no_server_error(status, "a delivery status");
                });
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
