//! Abuse on the Twilio channels: any length gets a normal reply, and a flood from one number
//! gets one polite answer, then silence, and is not processed (governor's fake clock: no
//! sleeps).

use std::time::Duration;

use clinicflow::limits::{LimitClock, LimitsConfig, RateLimits};
use governor::clock::FakeRelativeClock;

use super::{CLINIC_TEL, CLINIC_WA, PATIENT_TEL, PATIENT_WA, Twilio, demo_twilio, footprint};

#[tokio::test]
async fn a_message_of_any_length_gets_a_normal_reply() {
    let tw = Twilio::new(demo_twilio().await);
    tw.whatsapp("SMlen0", "quiero un turno con cardiología").await;
    for (sid, n) in [("SMlen1", 4_001), ("SMlen2", 100_000)] {
        let twiml = tw.whatsapp(sid, &"turno ".repeat(n / 6 + 1)).await;
        let said = twiml.messages().join(" ");
        assert!(said.contains("demasiado largo"), "{n}: {}", twiml.xml);
    }
    // The booking in progress is where it was: nothing of the long messages was processed.
    let id = clinicflow::channels::twilio::session_id("whatsapp", PATIENT_WA, CLINIC_WA);
    let session = tw
        .state
        .service
        .store
        .load_session(&id)
        .await
        .expect("load")
        .expect("session");
    assert_eq!(session.position(), "book_appointment.details");
    assert_eq!(
        tw.state.service.store.recent_turns(&id, 10).await.expect("turns").len(),
        1
    );
}

#[tokio::test]
async fn a_flood_from_one_number_is_answered_once_then_silence_and_not_processed() {
    let clock = FakeRelativeClock::default();
    let limits = RateLimits::with_clock(&LimitsConfig::default(), LimitClock::Fake(clock.clone()));
    let tw = Twilio::new(demo_twilio().await.with_limits(limits));
    let mut answered = 0;
    let mut polite = 0;
    let mut silent = 0;
    for i in 0..300 {
        let twiml = tw.whatsapp(&format!("SMflood{i}"), "hola").await;
        match twiml.messages().as_slice() {
            [] => silent += 1,
            [one] if one.contains("muchos mensajes seguidos") => polite += 1,
            _ => answered += 1,
        }
    }
    // The default is 20 a minute per sender. The same "hola" over and over goes round in
    // circles, so the conversation is handed to staff and later allowed messages get no
    // automatic answer either: the turns are what the limit let through.
    assert_eq!(polite, 1);
    assert!(
        answered >= 3 && answered + polite + silent == 300,
        "{answered} {silent}"
    );
    let turns = footprint(&tw.state.service.store).await[1];
    assert_eq!(turns, 20, "only the allowed messages became turns");

    // The window passes (on the fake clock): the message is processed again (a turn; staff
    // has the conversation, so no automatic answer) and not refused.
    clock.advance(Duration::from_secs(60));
    let twiml = tw.whatsapp("SMafter", "hola").await;
    assert!(!twiml.xml.contains("muchos mensajes"), "{}", twiml.xml);
    assert_eq!(footprint(&tw.state.service.store).await[1], 21);
}

#[tokio::test]
async fn a_number_calling_over_and_over_is_told_once_then_hung_up_on() {
    let clock = FakeRelativeClock::default();
    let limits = RateLimits::with_clock(&LimitsConfig::default(), LimitClock::Fake(clock));
    let tw = Twilio::new(demo_twilio().await.with_limits(limits));
    let mut greeted = 0;
    let mut told = 0;
    let mut hung_up = 0;
    for i in 0..25 {
        let sid = format!("CAflood{i:030}");
        let twiml = tw
            .post(
                "/twilio/voice",
                &[
                    ("CallSid", sid.as_str()),
                    ("From", PATIENT_TEL),
                    ("To", CLINIC_TEL),
                    ("CallStatus", "ringing"),
                ],
            )
            .await
            .twiml();
        let said = twiml.said();
        if twiml.has("Gather") {
            greeted += 1;
        } else if said.contains("muchas llamadas") {
            told += 1;
        } else if said.is_empty() && twiml.has("Hangup") {
            hung_up += 1;
        }
    }
    assert_eq!((greeted, told, hung_up), (20, 1, 4));
}
