//! Voice-note downloads: only from Twilio's API for this account (a fake on loopback stands in
//! for it through `TWILIO_API_BASE`), never another host even through a redirect, audio only,
//! size checked before the body, and a retried MessageSid is not downloaded again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clinicflow::channels::twilio::media::{TranscribeFuture, Transcriber};
use clinicflow::lang::Lang;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::messaging::{MEDIA_PATH, media_server, voice_note};
use super::{Twilio, config, state_with};
use crate::support::demo;

/// Says "hola" and counts its calls.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Transcriber for Counting {
    fn transcribe<'a>(&'a self, _audio: Vec<u8>, _content_type: &'a str, _lang: Lang) -> TranscribeFuture<'a> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok("hola".to_string()) })
    }
}

/// Any request to it is a failure of the test: it answers audio to whoever asks.
async fn other_host() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(vec![1u8; 64])
                .insert_header("content-type", "audio/ogg"),
        )
        .mount(&server)
        .await;
    server
}

async fn twilio_with_api(api_base: &str) -> (Twilio, Arc<Counting>) {
    let transcriber = Arc::new(Counting::default());
    let state = state_with(demo(), config(&[("TWILIO_API_BASE", api_base)]))
        .await
        .with_transcriber(transcriber.clone());
    (Twilio::new(state), transcriber)
}

#[tokio::test]
async fn media_outside_twilio_is_never_fetched_and_gets_no_credentials() {
    let evil = other_host().await;
    // The real Twilio API is the configured base: a loopback URL is another host.
    let (tw, transcriber) = twilio_with_api("https://api.twilio.com").await;
    for (sid, url) in [
        ("SMx1", format!("{}{MEDIA_PATH}", evil.uri())),
        ("SMx2", format!("{}/anything.ogg", evil.uri())),
        (
            "SMx3",
            MEDIA_PATH.replace("/2010-04-01", "http://api.twilio.com/2010-04-01"),
        ),
    ] {
        let twiml = tw.post("/twilio/messaging", &voice_note(sid, &url)).await.twiml();
        assert!(twiml.messages()[0].contains("escribir"), "{sid}: {}", twiml.xml);
    }
    // The fake Twilio answers with a redirect to another host: not followed.
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MEDIA_PATH))
        .respond_with(ResponseTemplate::new(302).insert_header("location", format!("{}/stolen", evil.uri())))
        .mount(&fake)
        .await;
    let (tw2, transcriber2) = twilio_with_api(&fake.uri()).await;
    let twiml = tw2
        .post(
            "/twilio/messaging",
            &voice_note("SMx4", &format!("{}{MEDIA_PATH}", fake.uri())),
        )
        .await
        .twiml();
    assert!(twiml.messages()[0].contains("escribir"), "{}", twiml.xml);
    assert_eq!(fake.received_requests().await.map(|r| r.len()), Some(1));

    let seen = evil.received_requests().await.unwrap_or_default();
    assert!(seen.is_empty(), "the other host was asked {} time(s)", seen.len());
    assert_eq!(
        transcriber.0.load(Ordering::SeqCst) + transcriber2.0.load(Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn only_audio_of_a_sane_size_is_read() {
    let fake = MockServer::start().await;
    let image = MEDIA_PATH.replace("ME1", "ME2");
    let huge = MEDIA_PATH.replace("ME1", "ME3");
    Mock::given(method("GET"))
        .and(path(image.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(vec![0u8; 64])
                .insert_header("content-type", "text/html"),
        )
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path(huge.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(vec![0u8; clinicflow::channels::twilio::media::MAX_MEDIA + 1])
                .insert_header("content-type", "audio/ogg"),
        )
        .mount(&fake)
        .await;
    let (tw, transcriber) = twilio_with_api(&fake.uri()).await;
    for (sid, p) in [("SMt1", &image), ("SMt2", &huge)] {
        let twiml = tw
            .post("/twilio/messaging", &voice_note(sid, &format!("{}{p}", fake.uri())))
            .await
            .twiml();
        assert!(twiml.messages()[0].contains("escribir"), "{sid}: {}", twiml.xml);
    }
    assert_eq!(transcriber.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_retried_voice_note_is_downloaded_and_transcribed_once() {
    let server = media_server().await;
    let (tw, transcriber) = twilio_with_api(&server.uri()).await;
    let url = format!("{}{MEDIA_PATH}", server.uri());
    let first = tw.post("/twilio/messaging", &voice_note("SMr1", &url)).await.twiml();
    assert!(first.messages()[0].contains("Clínica San Rafael"), "{}", first.xml);
    let again = tw.post("/twilio/messaging", &voice_note("SMr1", &url)).await.twiml();
    assert_eq!(again.xml, first.xml);
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(1));
    assert_eq!(transcriber.0.load(Ordering::SeqCst), 1);
}
