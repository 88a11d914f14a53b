//! WhatsApp and SMS through POST /twilio/messaging.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clinicflow::channels::twilio::media::{TranscribeFuture, Transcriber};
use clinicflow::channels::twilio::messaging::WHATSAPP_LIMIT;
use clinicflow::lang::Lang;
use clinicflow::outbound::{Outbound, SendFuture, Sender};
use tokio::sync::{Notify, mpsc};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{CLINIC_WA, PATIENT_WA, SID, TOKEN, Twilio, config, demo_twilio, footprint, state_with};
use crate::support::{BOOKING, demo};

#[tokio::test]
async fn a_whole_booking_over_whatsapp() {
    let tw = Twilio::new(demo_twilio().await);
    let mut last = Vec::new();
    for (i, text) in BOOKING.iter().enumerate() {
        let twiml = tw.whatsapp(&format!("SM{i:032}"), text).await;
        last = twiml.messages();
        assert!(!last.is_empty(), "{text}: no reply in {}", twiml.xml);
    }
    let all = last.join("\n");
    assert!(all.contains("Su turno quedó reservado"), "{all}");
    assert!(all.contains("Cardiología") && all.contains("26 de noviembre"), "{all}");

    // The conversation is keyed by channel, patient and clinic number.
    let session = clinicflow::channels::twilio::session_id("whatsapp", PATIENT_WA, CLINIC_WA);
    let store = &tw.state.service.store;
    let s = store.load_session(&session).await.expect("load").expect("session");
    assert_eq!((s.channel.as_str(), s.user.as_str()), ("whatsapp", PATIENT_WA));
    let booked = store
        .list_appointments(&Default::default())
        .await
        .expect("appointments");
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0].specialty, "Cardiología");
}

#[tokio::test]
async fn the_same_message_sid_twice_is_one_turn_with_identical_twiml() {
    let tw = Twilio::new(demo_twilio().await);
    let first = tw.whatsapp("SMdup0000000000000000000000000001", "hola").await;
    let again = tw.whatsapp("SMdup0000000000000000000000000001", "hola").await;
    assert_eq!(first.xml, again.xml);
    assert!(!first.messages().is_empty());
    let session = clinicflow::channels::twilio::session_id("whatsapp", PATIENT_WA, CLINIC_WA);
    let turns = tw.state.service.store.recent_turns(&session, 10).await.expect("turns");
    assert_eq!(turns.len(), 1);
    assert_eq!(footprint(&tw.state.service.store).await, [1, 1, 1]);
}

#[tokio::test]
async fn sms_buttons_and_empty_messages() {
    let tw = Twilio::new(demo_twilio().await);
    // SMS: plain numbers, its own conversation.
    let sms = tw
        .post(
            "/twilio/messaging",
            &[
                ("MessageSid", "SMsms1"),
                ("From", "+5491155550000"),
                ("To", "+15017122661"),
                ("Body", "hola"),
            ],
        )
        .await
        .twiml();
    assert!(sms.messages()[0].contains("Clínica San Rafael"), "{}", sms.xml);
    let s = tw
        .state
        .service
        .store
        .load_session(&clinicflow::channels::twilio::session_id(
            "sms",
            "+5491155550000",
            "+15017122661",
        ))
        .await
        .expect("load")
        .expect("sms session");
    assert_eq!(s.channel, "sms");

    // A quick-reply button: its payload is the answer, whatever the body says.
    let button = tw
        .post(
            "/twilio/messaging",
            &[
                ("MessageSid", "SMbtn1"),
                ("From", PATIENT_WA),
                ("To", CLINIC_WA),
                ("Body", "Ver horarios"),
                ("ButtonText", "Ver horarios"),
                ("ButtonPayload", "/ayuda"),
            ],
        )
        .await
        .twiml();
    let session = clinicflow::channels::twilio::session_id("whatsapp", PATIENT_WA, CLINIC_WA);
    let turns = tw.state.service.store.recent_turns(&session, 1).await.expect("turns");
    assert_eq!(turns[0].input, "/ayuda", "{}", button.xml);

    // Nothing to say: an empty <Response/>, nothing stored.
    let empty = tw
        .post(
            "/twilio/messaging",
            &[
                ("MessageSid", "SMempty"),
                ("From", "whatsapp:+1999"),
                ("To", CLINIC_WA),
                ("Body", "  "),
            ],
        )
        .await
        .twiml();
    assert!(empty.verbs().is_empty(), "{}", empty.xml);
    // Missing From/To: Twilio's request but unusable.
    let bad = tw
        .post("/twilio/messaging", &[("MessageSid", "SMx"), ("Body", "hola")])
        .await;
    assert_eq!(bad.status.as_u16(), 400);
}

#[tokio::test]
async fn long_replies_are_split_under_the_limit_and_escaped() {
    // A clinic whose help text is long and full of markup characters.
    let tmp = crate::support::demo_copy();
    let global = tmp.path().join("flows/global.yaml");
    let src = std::fs::read_to_string(&global).expect("read");
    let para = "Podemos ayudarlo con turnos <de> todas las especialidades & coberturas. ".repeat(12);
    let help = format!("    say: \"{para}\\n\\n{para}\"\n");
    let src = src.replacen("    say: help.j2\n", &help, 1);
    std::fs::write(&global, src).expect("write");
    let bot = clinicflow::flow::compile::compile_dir(tmp.path()).unwrap_or_else(|d| panic!("{}", d.render()));
    let tw = Twilio::new(state_with(Arc::new(bot), config(&[])).await);
    let twiml = tw.whatsapp("SMlong", "/ayuda").await;
    let parts = twiml.messages();
    assert!(parts.len() >= 2, "{}", twiml.xml);
    assert!(parts.iter().all(|p| p.chars().count() <= WHATSAPP_LIMIT), "{parts:?}");
    // Split at the paragraph, nothing lost, markup characters intact.
    assert!(parts[0].ends_with("coberturas."), "{}", parts[0]);
    assert!(parts.iter().any(|p| p.contains("<de> todas") && p.contains("&")));
    let words = |s: &str| s.split_whitespace().count();
    assert_eq!(parts.iter().map(|p| words(p)).sum::<usize>(), 2 * words(&para));
}

/// A transcriber that waits until the test lets it go, then says what it was told.
struct HeldTranscriber {
    release: Notify,
    text: String,
    seen: Mutex<Vec<(usize, String)>>,
}

impl Transcriber for HeldTranscriber {
    fn transcribe<'a>(&'a self, audio: Vec<u8>, content_type: &'a str, _lang: Lang) -> TranscribeFuture<'a> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((audio.len(), content_type.to_string()));
            self.release.notified().await;
            Ok(self.text.clone())
        })
    }
}

/// Records what would go out through Twilio's REST API.
struct Channel(mpsc::UnboundedSender<Outbound>);

impl Sender for Channel {
    fn deliver<'a>(&'a self, msg: &'a Outbound) -> SendFuture<'a> {
        let _ = self.0.send(msg.clone());
        Box::pin(async { Ok(()) })
    }
}

/// Where the fake Twilio API serves the voice note (the account's media path).
pub const MEDIA_PATH: &str = "/2010-04-01/Accounts/ACtest00000000000000000000000000/Messages/MM1/Media/ME1";

/// Serves a voice note at [`MEDIA_PATH`], only with the account's basic auth. Its URI is the
/// `TWILIO_API_BASE` of the state that downloads from it.
pub async fn media_server() -> MockServer {
    let server = MockServer::start().await;
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{SID}:{TOKEN}"))
    );
    Mock::given(method("GET"))
        .and(path(MEDIA_PATH))
        .and(header("authorization", auth.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(vec![7u8; 2048])
                .insert_header("content-type", "audio/ogg"),
        )
        .mount(&server)
        .await;
    server
}

pub fn voice_note<'a>(sid: &'a str, url: &'a str) -> [(&'a str, &'a str); 6] {
    [
        ("MessageSid", sid),
        ("From", PATIENT_WA),
        ("To", CLINIC_WA),
        ("NumMedia", "1"),
        ("MediaUrl0", url),
        ("MediaContentType0", "audio/ogg"),
    ]
}

#[tokio::test]
async fn a_voice_note_is_transcribed_and_a_slow_turn_answers_later_through_the_sender() {
    let server = media_server().await;
    let url = format!("{}{MEDIA_PATH}", server.uri());
    let transcriber = Arc::new(HeldTranscriber {
        release: Notify::new(),
        text: "quiero un turno con cardiología".into(),
        seen: Mutex::default(),
    });
    let (tx, mut sent) = mpsc::unbounded_channel();
    // The webhook waits 50 ms; the transcriber is held until the webhook has answered, so
    // the turn is slow whatever the machine's speed.
    let cfg = config(&[
        ("CLINICFLOW_TWILIO_REPLY_TIMEOUT_MS", "50"),
        ("TWILIO_API_BASE", &server.uri()),
    ]);
    let state = state_with(demo(), cfg)
        .await
        .with_transcriber(transcriber.clone())
        .with_sender(Arc::new(Channel(tx)));
    let tw = Twilio::new(state);

    let early = tw
        .post("/twilio/messaging", &voice_note("SMvoice1", &url))
        .await
        .twiml();
    assert!(early.verbs().is_empty(), "answered at once, empty: {}", early.xml);
    transcriber.release.notify_one();
    let late = tokio::time::timeout(Duration::from_secs(20), sent.recv())
        .await
        .expect("the replies are sent when the turn ends")
        .expect("a message");
    assert_eq!((late.channel.as_str(), late.user.as_str()), ("whatsapp", PATIENT_WA));
    assert!(
        late.text.contains("Clínica San Rafael") || late.text.contains("día"),
        "{}",
        late.text
    );
    assert_eq!(
        transcriber.seen.lock().unwrap_or_else(|p| p.into_inner()).as_slice(),
        [(2048, "audio/ogg".to_string())]
    );
    // The transcription is the turn's input.
    let session = clinicflow::channels::twilio::session_id("whatsapp", PATIENT_WA, CLINIC_WA);
    let turns = tw.state.service.store.recent_turns(&session, 5).await.expect("turns");
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].input, "quiero un turno con cardiología");
    // The late replies were queued in the outbox with the turn (not sent beside it).
    let rows = tw.state.service.store.outbox_of(&session).await.expect("outbox");
    assert_eq!(
        rows.iter()
            .map(|r| (r.message.kind, r.message.text.as_str()))
            .collect::<Vec<_>>(),
        turns[0]
            .replies
            .iter()
            .map(|t| (clinicflow::outbound::OutboundKind::Reply, t.as_str()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_quick_voice_note_is_answered_in_the_webhook() {
    let server = media_server().await;
    let url = format!("{}{MEDIA_PATH}", server.uri());
    let transcriber = Arc::new(HeldTranscriber {
        release: Notify::new(),
        text: "hola".into(),
        seen: Mutex::default(),
    });
    // Let it go before the request: `notify_one` stores a permit.
    transcriber.release.notify_one();
    let base = [("TWILIO_API_BASE", server.uri())];
    let base: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tw = Twilio::new(state_with(demo(), config(&base)).await.with_transcriber(transcriber));
    let twiml = tw
        .post("/twilio/messaging", &voice_note("SMvoice2", &url))
        .await
        .twiml();
    assert!(twiml.messages()[0].contains("Clínica San Rafael"), "{}", twiml.xml);

    // Wrong credentials on the media server's side: the patient is asked to write.
    let tw = Twilio::new(
        state_with(demo(), config(&[("TWILIO_ACCOUNT_SID", "ACother"), base[0]]))
            .await
            .with_transcriber(Arc::new(HeldTranscriber {
                release: Notify::new(),
                text: "hola".into(),
                seen: Mutex::default(),
            })),
    );
    let twiml = tw
        .post("/twilio/messaging", &voice_note("SMvoice3", &url))
        .await
        .twiml();
    assert!(twiml.messages()[0].contains("escribir"), "{}", twiml.xml);
}

#[tokio::test]
async fn media_without_a_transcriber_or_text_gets_a_polite_reply() {
    let tw = Twilio::new(demo_twilio().await);
    let audio = tw
        .post(
            "/twilio/messaging",
            &voice_note("SMvoice4", "http://127.0.0.1:9/never-fetched"),
        )
        .await
        .twiml();
    assert!(audio.messages()[0].contains("mensajes de voz"), "{}", audio.xml);
    let image = tw
        .post(
            "/twilio/messaging",
            &[
                ("MessageSid", "SMimg1"),
                ("From", PATIENT_WA),
                ("To", CLINIC_WA),
                ("NumMedia", "1"),
                ("MediaUrl0", "http://127.0.0.1:9/img"),
                ("MediaContentType0", "image/jpeg"),
            ],
        )
        .await
        .twiml();
    assert!(image.messages()[0].contains("solo puedo leer"), "{}", image.xml);
    // No turn was run for either.
    assert_eq!(footprint(&tw.state.service.store).await[1], 0);
    // An image with a caption: the caption is the message.
    let captioned = tw
        .post(
            "/twilio/messaging",
            &[
                ("MessageSid", "SMimg2"),
                ("From", PATIENT_WA),
                ("To", CLINIC_WA),
                ("Body", "hola"),
                ("NumMedia", "1"),
                ("MediaUrl0", "http://127.0.0.1:9/img"),
                ("MediaContentType0", "image/jpeg"),
            ],
        )
        .await
        .twiml();
    assert!(
        captioned.messages()[0].contains("Clínica San Rafael"),
        "{}",
        captioned.xml
    );
}

#[tokio::test]
async fn delivery_statuses_are_recorded_only_when_signed() {
    let tw = Twilio::new(demo_twilio().await);
    let params = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("MessageStatus", "delivered"),
        ("AccountSid", SID),
        ("From", CLINIC_WA),
        ("To", PATIENT_WA),
    ];
    let store = &tw.state.service.store;
    let forged = tw
        .raw(
            "/twilio/messaging/status",
            clinicflow::channels::twilio::params::Params::from_pairs(params).to_form(),
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            &[],
        )
        .await;
    assert_eq!(forged.status.as_u16(), 403);
    assert!(store.get_message(params[0].1).await.expect("get").is_none());
    let ok = tw.post("/twilio/messaging/status", &params).await.twiml();
    assert!(ok.verbs().is_empty());
    let m = store.get_message(params[0].1).await.expect("get").expect("recorded");
    assert_eq!(m.status, "delivered");
}

#[tokio::test]
async fn a_reminder_answered_2_on_whatsapp_cancels_that_appointment() {
    let tw = Twilio::new(demo_twilio().await);
    for (i, text) in BOOKING.iter().enumerate() {
        tw.whatsapp(&format!("SMbook{i:028}"), text).await;
    }
    let store = &tw.state.service.store;
    let booked = store.list_appointments(&Default::default()).await.expect("list");
    assert_eq!(booked.len(), 1);
    // The day before, the reminder goes out (recorded in the conversation).
    let due = crate::support::at("2026-11-25T10:00").timestamp();
    let sent = clinicflow::reminders::run_once(&tw.state.service, &clinicflow::outbound::TurnLogOnly, "w", due)
        .await
        .expect("sweep");
    assert_eq!(sent, 1);
    // The patient answers through the webhook, without saying which appointment.
    let answer = tw.whatsapp("SManswer000000000000000000000002", "2").await;
    let said = answer.messages().join("\n");
    assert!(said.contains("cancel"), "{}", answer.xml);
    let a = store.get_appointment(&booked[0].id).await.expect("get").expect("there");
    assert_eq!(a.status.as_str(), "cancelled");
}
