//! Phone calls: /twilio/voice → /twilio/voice/gather … → /twilio/voice/status.

use std::sync::Arc;

use clinicflow::channels::twilio::session_id;
use clinicflow::service::CALL_START;

use super::{CLINIC_TEL, PATIENT_TEL, Twilio, Twiml, config, demo_twilio, footprint, state_with};
use crate::support::{BOOKING, demo, demo_copy};

const CALL: &str = "CA00000000000000000000000000000001";

fn call_params<'a>(sid: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("CallSid", sid),
        ("AccountSid", super::SID),
        ("From", PATIENT_TEL),
        ("To", CLINIC_TEL),
        ("CallStatus", "in-progress"),
        ("Direction", "inbound"),
    ];
    // Extra parameters replace the defaults of the same name.
    p.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    p.extend_from_slice(extra);
    p
}

impl Twilio {
    async fn call_starts(&self, sid: &str) -> Twiml {
        self.post("/twilio/voice", &call_params(sid, &[("CallStatus", "ringing")]))
            .await
            .twiml()
    }

    /// What the caller said, posted where the last Gather pointed.
    async fn speak(&self, sid: &str, action: &str, words: &str) -> Twiml {
        self.post(
            action,
            &call_params(sid, &[("SpeechResult", words), ("Confidence", "0.92")]),
        )
        .await
        .twiml()
    }

    /// Twilio following the Redirect after a Gather that heard nothing.
    async fn silence(&self, sid: &str, redirect: &str) -> Twiml {
        self.post(redirect, &call_params(sid, &[])).await.twiml()
    }

    async fn call_ends(&self, sid: &str, status: &str, seconds: &str) -> Twiml {
        self.post(
            "/twilio/voice/status",
            &call_params(sid, &[("CallStatus", status), ("CallDuration", seconds)]),
        )
        .await
        .twiml()
    }
}

/// The Gather's action and the Redirect's target of a question.
#[track_caller]
fn next_urls(t: &Twiml) -> (String, String) {
    assert_eq!(t.verbs(), ["Gather", "Redirect"], "{}", t.xml);
    let action = t.attr("Gather", "action").expect("action");
    let redirect = t.texts("Redirect").remove(0);
    (action, redirect)
}

#[tokio::test]
async fn a_whole_booking_by_phone() {
    let tw = Twilio::new(demo_twilio().await);
    let greeting = tw.call_starts(CALL).await;
    assert!(greeting.said().contains("Clínica San Rafael"), "{}", greeting.xml);
    assert_eq!(greeting.attr("Gather", "input").as_deref(), Some("speech dtmf"));
    assert_eq!(greeting.attr("Gather", "language").as_deref(), Some("es-MX"));
    assert_eq!(greeting.attr("Gather", "speechTimeout").as_deref(), Some("auto"));
    assert!(greeting.attr("Gather", "hints").is_some_and(|h| h.contains("OSDE")));
    assert_eq!(greeting.attr("Say", "voice").as_deref(), Some("Polly.Mia"));
    let (mut action, redirect) = next_urls(&greeting);
    assert_eq!(action, "/twilio/voice/gather?n=1");
    assert_eq!(redirect, "/twilio/voice/gather?n=1&silence=1");

    // "hola" was the greeting; the rest of the booking is spoken.
    let mut last = greeting;
    for words in &BOOKING[1..] {
        last = tw.speak(CALL, &action, words).await;
        assert!(!last.said().is_empty(), "{words}: {}", last.xml);
        if last.has("Hangup") {
            break;
        }
        action = next_urls(&last).0;
    }
    let said = last.said();
    assert!(said.contains("Su turno quedó reservado"), "{said}");
    // The confirmation was read without chat markup.
    assert!(!said.contains("- ") && !said.contains('*'), "{said}");
    // The booking is done; the caller is asked whether there is anything else, not hung up on.
    assert!(said.contains("algo más"), "{said}");
    let bye = tw.speak(CALL, &next_urls(&last).0, "no, gracias").await;
    assert!(!bye.has("Gather"), "{}", bye.xml);
    assert_eq!(bye.verbs().last().map(String::as_str), Some("Hangup"), "{}", bye.xml);
    assert_eq!(
        tw.state
            .service
            .store
            .list_appointments(&Default::default())
            .await
            .expect("list")
            .len(),
        1
    );

    // The call ends: the conversation is closed and the log has a summary without personal data.
    let done = tw.call_ends(CALL, "completed", "95").await;
    assert!(done.verbs().is_empty());
    let sid = session_id("voice", PATIENT_TEL, CLINIC_TEL);
    let store = &tw.state.service.store;
    let turns = store.recent_turns(&sid, 50).await.expect("turns");
    assert_eq!(turns[0].nlu_source.as_deref(), Some(CALL_START));
    assert_eq!(turns[0].input, "", "the greeting has no patient input");
    let summary = turns.last().expect("summary");
    assert_eq!(summary.intent.as_deref(), Some("call:summary"));
    let text = summary.replies.join(" ");
    assert!(
        text.contains("completed") && text.contains("95 s") && text.contains("booked"),
        "{text}"
    );
    // The booking's answers and the "no, gracias".
    assert!(text.contains(&format!("{} turnos", BOOKING.len())), "{text}");
    assert!(!text.contains("5491155550000") && !text.contains("López"), "{text}");
    let s = store.load_session(&sid).await.expect("load").expect("session");
    assert_eq!(s.position(), "idle");

    // A repeated status callback changes nothing.
    let before = footprint(store).await;
    tw.call_ends(CALL, "completed", "95").await;
    assert_eq!(footprint(store).await, before);
}

#[tokio::test]
async fn a_retried_gather_is_answered_from_the_stored_turn() {
    let tw = Twilio::new(demo_twilio().await);
    let greeting = tw.call_starts(CALL).await;
    let again = tw.call_starts(CALL).await;
    assert_eq!(greeting.xml, again.xml);
    let (action, _) = next_urls(&greeting);
    let first = tw.speak(CALL, &action, "quiero un turno con cardiología").await;
    let retry = tw.speak(CALL, &action, "quiero un turno con cardiología").await;
    assert_eq!(first.xml, retry.xml);
    let turns = tw
        .state
        .service
        .store
        .recent_turns(&session_id("voice", PATIENT_TEL, CLINIC_TEL), 10)
        .await
        .expect("turns");
    assert_eq!(turns.len(), 2, "greeting and one answer");
    assert_eq!(next_urls(&first).0, "/twilio/voice/gather?n=2");
}

#[tokio::test]
async fn keys_pressed_are_answers_too() {
    let tw = Twilio::new(demo_twilio().await);
    let greeting = tw.call_starts(CALL).await;
    let (action, _) = next_urls(&greeting);
    let t = tw.speak(CALL, &action, "quiero un turno con cardiología").await;
    let (action, _) = next_urls(&t);
    let t = tw.post(&action, &call_params(CALL, &[("Digits", "26")])).await.twiml();
    assert!(t.said().contains("hora"), "{}", t.xml);
}

#[tokio::test]
async fn silence_twice_says_goodbye_and_hangs_up() {
    let tw = Twilio::new(demo_twilio().await);
    let greeting = tw.call_starts(CALL).await;
    let (_, redirect) = next_urls(&greeting);
    let first = tw.silence(CALL, &redirect).await;
    // Asked again: the same question, still waiting for answer 1, and a second chance.
    assert!(first.said().contains("no lo escuché"), "{}", first.xml);
    assert!(first.said().contains("Clínica San Rafael"), "{}", first.xml);
    let (action, redirect) = next_urls(&first);
    assert_eq!(action, "/twilio/voice/gather?n=1");
    assert_eq!(redirect, "/twilio/voice/gather?n=1&silence=2");
    let second = tw.silence(CALL, &redirect).await;
    assert_eq!(second.verbs(), ["Say", "Hangup"], "{}", second.xml);
    assert!(second.said().contains("Hasta luego"), "{}", second.xml);
    // Silence runs no turn.
    let turns = tw
        .state
        .service
        .store
        .recent_turns(&session_id("voice", PATIENT_TEL, CLINIC_TEL), 10)
        .await
        .expect("turns");
    assert_eq!(turns.len(), 1);
}

#[tokio::test]
async fn a_handoff_without_a_staff_number_promises_a_call_back() {
    let tw = Twilio::new(demo_twilio().await);
    let greeting = tw.call_starts(CALL).await;
    let (action, _) = next_urls(&greeting);
    let t = tw.speak(CALL, &action, "quiero hablar con una persona").await;
    assert_eq!(t.verbs(), ["Say", "Hangup"], "{}", t.xml);
    assert!(t.said().contains("lo va a llamar"), "{}", t.xml);
    assert!(!t.has("Dial"));
    // The escalation is in the staff inbox, and stays there after the call.
    let store = &tw.state.service.store;
    assert_eq!(store.count_escalations(None).await.expect("count"), 1);
    tw.call_ends(CALL, "completed", "20").await;
    let turns = store
        .recent_turns(&session_id("voice", PATIENT_TEL, CLINIC_TEL), 10)
        .await
        .expect("turns");
    assert!(turns.last().expect("summary").replies[0].contains("handed_to_staff"));
    assert_eq!(store.count_escalations(None).await.expect("count"), 1);
}

#[tokio::test]
async fn a_handoff_with_a_staff_number_dials_it_in_the_callers_language() {
    let tmp = demo_copy();
    let clinic = tmp.path().join("flows/clinic.yaml");
    let src = std::fs::read_to_string(&clinic).expect("read");
    let src = src.replace(
        "    # staff_number: \"+54 11 4901-5120\"",
        "    staff_number: \"+54 11 4901-5120\"",
    );
    assert!(src.contains("\n    staff_number:"));
    std::fs::write(&clinic, src).expect("write");
    let bot = clinicflow::flow::compile::compile_dir(tmp.path()).unwrap_or_else(|d| panic!("{}", d.render()));
    assert_eq!(bot.clinic.voice.staff_number.as_deref(), Some("+541149015120"));
    let tw = Twilio::new(state_with(Arc::new(bot), config(&[])).await);

    let greeting = tw.call_starts(CALL).await;
    let (action, _) = next_urls(&greeting);
    // An English speaker: English voice from then on.
    let t = tw.speak(CALL, &action, "hello, I want to talk to a person").await;
    assert_eq!(t.verbs(), ["Say", "Dial"], "{}", t.xml);
    assert_eq!(t.texts("Dial"), ["+541149015120"]);
    assert_eq!(t.attr("Say", "voice").as_deref(), Some("Polly.Joanna"));
    assert_eq!(t.attr("Say", "language").as_deref(), Some("en-US"));
    assert_eq!(tw.state.service.store.count_escalations(None).await.expect("count"), 1);
}

#[tokio::test]
async fn a_new_call_starts_fresh_even_if_the_last_one_was_not_closed() {
    let tw = Twilio::new(demo_twilio().await);
    let greeting = tw.call_starts(CALL).await;
    let (action, _) = next_urls(&greeting);
    tw.speak(CALL, &action, "quiero un turno con cardiología").await;
    // No status callback arrived; the patient calls again.
    let second = tw.call_starts("CA00000000000000000000000000000002").await;
    assert!(second.said().contains("Clínica San Rafael"), "{}", second.xml);
    let s = tw
        .state
        .service
        .store
        .load_session(&session_id("voice", PATIENT_TEL, CLINIC_TEL))
        .await
        .expect("load")
        .expect("session");
    assert_eq!(s.position(), "idle");
    // Busy or unanswered calls that never reached us leave nothing behind.
    let other = Twilio::new(state_with(demo(), config(&[])).await);
    other.call_ends("CA9", "no-answer", "0").await;
    assert_eq!(footprint(&other.state.service.store).await, [0, 0, 0]);
}

#[test]
fn voice_settings_errors_say_where_and_how_to_fix() {
    let tmp = demo_copy();
    let clinic = tmp.path().join("flows/clinic.yaml");
    let src = std::fs::read_to_string(&clinic).expect("read");
    let broken = src
        .replace(
            "    # staff_number: \"+54 11 4901-5120\"",
            "    staff_number: \"4901-5120\"",
        )
        .replace("speech_timeout: auto", "speech_timeout: soon")
        .replace(
            "en: { voice: Polly.Joanna, language: en-US }",
            "en: { voice: Polly.Joanna, language: english }",
        );
    std::fs::write(&clinic, &broken).expect("write");
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).expect("line") + 1;
    let diags = match clinicflow::flow::compile::compile_dir(tmp.path()) {
        Ok(_) => panic!("broken voice settings compiled"),
        Err(d) => d,
    };
    let text = diags.0.iter().map(|d| d.one_line()).collect::<Vec<_>>().join("\n");
    assert_eq!(diags.0.len(), 3, "{text}");
    for (needle, words) in [
        ("staff_number:", "not a phone number"),
        ("speech_timeout:", "not a speech timeout"),
        ("language: english", "not a language code"),
    ] {
        let d = diags
            .0
            .iter()
            .find(|d| d.one_line().contains(words))
            .unwrap_or_else(|| panic!("no `{words}` in {text}"));
        assert_eq!(d.line, line_of(needle), "{}", d.one_line());
    }
    // A typo in a key is caught too.
    std::fs::write(&clinic, src.replace("speech_timeout: auto", "speech_timout: auto")).expect("write");
    let err = clinicflow::flow::compile::compile_dir(tmp.path())
        .err()
        .expect("typo refused");
    assert!(err.render().contains("speech_timout"), "{}", err.render());
}

/// Twilio hangs up on a webhook after 15 s and a caller will not wait that long: a turn on a
/// call waits for the LLM at most the voice budget (CLINICFLOW_LLM_BUDGET_VOICE_MS), then
/// goes on with what the rules understood. Here the LLM never answers.
#[tokio::test]
async fn a_hanging_llm_does_not_hold_a_call_past_its_budget() {
    use std::time::{Duration, Instant};

    use clinicflow::llm::{Llm, LlmConfig};
    use clinicflow::reload::Reloader;
    use clinicflow::service::Service;
    use clinicflow::store::Store;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let openai = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(120)))
        .expect(1..)
        .mount(&openai)
        .await;
    let llm = Arc::new(Llm::new(LlmConfig::new(
        "test-key",
        Some(format!("{}/v1", openai.uri())),
    )));
    let store = Store::connect("mem://").await.expect("store");
    let service = Arc::new(Service::new(store, demo()).with_llm(Some(llm)));
    let reloader = Reloader::new(crate::support::root(), service.clone());
    let state = clinicflow::server::AppState::new(service, reloader)
        .with_twilio(config(&[("CLINICFLOW_LLM_BUDGET_VOICE_MS", "300")]))
        .with_pinned_now(super::NOW.parse().expect("datetime"));
    let tw = Twilio::new(state);

    let greeting = tw.call_starts(CALL).await;
    let (action, _) = next_urls(&greeting);
    // Words the rules only half understand, so the turn asks the LLM.
    let started = Instant::now();
    let answer = tw
        .speak(
            CALL,
            &action,
            "mi vieja necesita control con el del corazon el juevs a eso de las diez y media",
        )
        .await;
    let took = started.elapsed();
    // 300 ms of budget plus the turn itself; the server would have held it for 120 s.
    assert!(took < Duration::from_secs(5), "the webhook took {took:?}");
    // The call goes on: the caller hears the next question inside a new Gather.
    assert!(answer.has("Gather"), "{}", answer.xml);
    assert!(!answer.said().is_empty(), "{}", answer.xml);
    let session = session_id("voice", PATIENT_TEL, CLINIC_TEL);
    let turns = tw.state.service.store.recent_turns(&session, 1).await.expect("turns");
    assert_eq!(turns[0].nlu_source.as_deref(), Some("fallback"), "{:?}", turns[0]);
    assert_eq!(turns[0].llm_calls.first().map(|c| c.outcome.as_str()), Some("timeout"));
}

/// A caller who only asked something (the opening hours) may want more: the flow ending does
/// not hang up; silence after "anything else?" ends the call with thanks.
#[tokio::test]
async fn after_an_answer_the_caller_is_asked_for_anything_else() {
    let tw = Twilio::new(demo_twilio().await);
    let greeting = tw.call_starts(CALL).await;
    let (action, _) = next_urls(&greeting);
    let hours = tw.speak(CALL, &action, "a qué hora abren").await;
    let said = hours.said();
    assert!(said.contains("08:00") || said.contains("8"), "{said}");
    assert!(said.contains("algo más"), "{said}");
    let (action, redirect) = next_urls(&hours);
    assert!(action.ends_with("&offered=1"), "{action}");
    // Silence after the offer: thanks and goodbye, not "I can't hear you".
    let quiet = tw.silence(CALL, &redirect).await;
    assert_eq!(quiet.verbs(), ["Say", "Hangup"], "{}", quiet.xml);
    assert!(quiet.said().contains("Gracias por llamar"), "{}", quiet.xml);
    // Asking for more instead goes on with the conversation.
    let more = tw.speak(CALL, &action, "sí, quiero un turno con cardiología").await;
    assert!(more.has("Gather"), "{}", more.xml);
    assert!(more.said().contains("día"), "{}", more.xml);
}
