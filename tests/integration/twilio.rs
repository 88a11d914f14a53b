//! The Twilio webhooks, in process: every request is signed like Twilio signs it (with the
//! crate's own signature code and a test token) and goes through the whole poem app;
//! answers are TwiML read with an XML parser. Messaging is in `twilio/messaging.rs`, calls in
//! `twilio/voice.rs`, requests over a real loopback socket in `twilio/live.rs`.

mod limits;
mod live;
mod media;
mod messaging;
mod voice;

use std::sync::Arc;

use clinicflow::channels::twilio::TwilioConfig;
use clinicflow::channels::twilio::params::Params;
use clinicflow::channels::twilio::routes::SIGNATURE_HEADER;
use clinicflow::channels::twilio::signature;
use clinicflow::flow::bot::Bot;
use clinicflow::server::{self, AppState};
use clinicflow::store::Store;
use poem::http::{Method, StatusCode};
use poem::{Endpoint, EndpointExt, Request, Response};

use crate::api::state_for;
use crate::support::{demo, root};

pub const TOKEN: &str = "test-auth-token-0123456789";
pub const SID: &str = "ACtest00000000000000000000000000";
pub const PUBLIC: &str = "https://turnos.example.com";
/// The clinic-local time webhook turns run at: Monday 23 November 2026, 10:00 (open).
pub const NOW: &str = "2026-11-23T10:00";

pub const PATIENT_WA: &str = "whatsapp:+5491155550000";
pub const CLINIC_WA: &str = "whatsapp:+14155238886";
pub const PATIENT_TEL: &str = "+5491155550000";
pub const CLINIC_TEL: &str = "+541149015120";

/// Twilio settings for tests: token, account and public URL, as the environment gives them.
pub fn config(extra: &[(&str, &str)]) -> TwilioConfig {
    let mut env: Vec<(String, String)> = vec![
        ("TWILIO_AUTH_TOKEN".into(), TOKEN.into()),
        ("TWILIO_ACCOUNT_SID".into(), SID.into()),
        ("CLINICFLOW_PUBLIC_URL".into(), PUBLIC.into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TwilioConfig::from_lookup(|k| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

/// A bot on a fresh mem:// store, with Twilio configured and the clock pinned.
pub async fn state_with(bot: Arc<Bot>, twilio: TwilioConfig) -> AppState {
    state_for(bot, root())
        .await
        .with_twilio(twilio)
        .with_pinned_now(NOW.parse().expect("datetime"))
}

pub async fn demo_twilio() -> AppState {
    state_with(demo(), config(&[])).await
}

/// Plays Twilio: posts form parameters, signed with the test token over the public URL.
pub struct Twilio {
    ep: poem::endpoint::BoxEndpoint<'static, Response>,
    pub state: AppState,
}

/// One answer: status, content type and body.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    /// The TwiML document; the answer must be 200 text/xml.
    #[track_caller]
    pub fn twiml(&self) -> Twiml {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert!(self.content_type.starts_with("text/xml"), "{}", self.content_type);
        Twiml::parse(&self.body)
    }
}

impl Twilio {
    pub fn new(state: AppState) -> Twilio {
        Twilio {
            ep: server::app(state.clone()).boxed(),
            state,
        }
    }

    /// Plays Twilio against any endpoint (a server of several clinics); `state` is the one
    /// the helpers that need a state use.
    pub fn over(ep: poem::endpoint::BoxEndpoint<'static, Response>, state: AppState) -> Twilio {
        Twilio { ep, state }
    }

    /// Posts `params` to `path` (with its query) signed as Twilio would.
    pub async fn post(&self, path: &str, params: &[(&str, &str)]) -> Answer {
        let pairs = Params::from_pairs(params.iter().copied());
        let sig = signature::compute(TOKEN, &format!("{PUBLIC}{path}"), pairs.pairs());
        self.raw(path, pairs.to_form(), Some(&sig), &[]).await
    }

    /// Posts a form body with the given signature header (or none).
    pub async fn raw(&self, path: &str, form: String, sig: Option<&str>, headers: &[(&str, &str)]) -> Answer {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri_str(path)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(sig) = sig {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.ep.get_response(req.body(form)).await;
        Answer {
            status: resp.status(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            body: resp.into_body().into_string().await.expect("body"),
        }
    }

    /// A WhatsApp message from the test patient.
    pub async fn whatsapp(&self, sid: &str, body: &str) -> Twiml {
        self.post(
            "/twilio/messaging",
            &[
                ("MessageSid", sid),
                ("SmsSid", sid),
                ("AccountSid", SID),
                ("From", PATIENT_WA),
                ("To", CLINIC_WA),
                ("Body", body),
                ("NumMedia", "0"),
                ("ProfileName", "María"),
                ("WaId", "5491155550000"),
                ("ApiVersion", "2010-04-01"),
            ],
        )
        .await
        .twiml()
    }
}

/// A parsed TwiML answer.
pub struct Twiml {
    pub xml: String,
}

impl Twiml {
    #[track_caller]
    pub fn parse(xml: &str) -> Twiml {
        let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml}"));
        assert_eq!(doc.root_element().tag_name().name(), "Response", "{xml}");
        Twiml { xml: xml.to_string() }
    }

    fn doc(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.xml).expect("xml")
    }

    /// Texts of the elements named `tag`, in document order.
    pub fn texts(&self, tag: &str) -> Vec<String> {
        self.doc()
            .descendants()
            .filter(|n| n.has_tag_name(tag))
            .map(|n| n.text().unwrap_or("").to_string())
            .collect()
    }

    pub fn messages(&self) -> Vec<String> {
        self.texts("Message")
    }

    /// Everything said, one string.
    pub fn said(&self) -> String {
        self.texts("Say").join(" ")
    }

    pub fn has(&self, tag: &str) -> bool {
        self.doc().descendants().any(|n| n.has_tag_name(tag))
    }

    /// Attribute `attr` of the first `tag`.
    pub fn attr(&self, tag: &str, attr: &str) -> Option<String> {
        self.doc()
            .descendants()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.attribute(attr))
            .map(str::to_string)
    }

    /// The verbs directly under <Response>, by name.
    pub fn verbs(&self) -> Vec<String> {
        self.doc()
            .root_element()
            .children()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name().to_string())
            .collect()
    }
}

/// Rows in the session, turn and processed tables.
pub async fn footprint(store: &Store) -> [usize; 3] {
    let mut resp = store
        .client()
        .query("SELECT VALUE id FROM session; SELECT VALUE id FROM turn; SELECT VALUE id FROM processed;")
        .await
        .expect("query");
    let mut out = [0; 3];
    for (i, n) in out.iter_mut().enumerate() {
        let v: surrealdb::types::Value = resp.take(i).expect("take");
        *n = match v.into_json_value() {
            serde_json::Value::Array(a) => a.len(),
            serde_json::Value::Null => 0,
            _ => 1,
        };
    }
    out
}

const HELLO: [(&str, &str); 5] = [
    ("MessageSid", "SMforged0000000000000000000000001"),
    ("From", PATIENT_WA),
    ("To", CLINIC_WA),
    ("Body", "hola"),
    ("NumMedia", "0"),
];

fn sign(url: &str, params: &[(&str, &str)]) -> String {
    signature::compute(TOKEN, url, Params::from_pairs(params.iter().copied()).pairs())
}

#[tokio::test]
async fn forged_requests_get_403_and_leave_no_trace() {
    let tw = Twilio::new(demo_twilio().await);
    let form = Params::from_pairs(HELLO).to_form();
    let good = sign(&format!("{PUBLIC}/twilio/messaging"), &HELLO);

    // A tampered parameter: the body changed after signing.
    let mut tampered = HELLO;
    tampered[3] = ("Body", "quiero cancelar todo");
    let tampered_form = Params::from_pairs(tampered).to_form();
    // Signed for another URL (another path, another host, http instead of https).
    let other_path = sign(&format!("{PUBLIC}/twilio/voice"), &HELLO);
    let other_host = sign("https://evil.example.com/twilio/messaging", &HELLO);
    let other_scheme = sign("http://turnos.example.com/twilio/messaging", &HELLO);
    let cases: [(&str, String, Option<&str>); 6] = [
        ("tampered parameter", tampered_form, Some(&good)),
        ("wrong path", form.clone(), Some(&other_path)),
        ("wrong host", form.clone(), Some(&other_host)),
        ("wrong scheme", form.clone(), Some(&other_scheme)),
        ("no signature", form.clone(), None),
        ("garbage signature", form.clone(), Some("bm90IGEgc2lnbmF0dXJl")),
    ];
    for (what, body, sig) in cases {
        let a = tw.raw("/twilio/messaging", body, sig, &[]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{what}: {}", a.body);
        assert!(a.body.len() < 100 && a.body.contains("Forbidden"), "{what}: {}", a.body);
    }
    // Every route is behind the check, voice too.
    for path in [
        "/twilio/voice",
        "/twilio/voice/gather?n=1",
        "/twilio/voice/status",
        "/twilio/messaging/status",
    ] {
        let a = tw.raw(path, "CallSid=CA1&From=%2B1&To=%2B2".into(), None, &[]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(footprint(&tw.state.service.store).await, [0, 0, 0]);

    // The untouched request is accepted: the refusals above were about the signature.
    let ok = tw.raw("/twilio/messaging", form, Some(&good), &[]).await;
    assert!(!ok.twiml().messages().is_empty());
    assert_eq!(footprint(&tw.state.service.store).await, [1, 1, 1]);
}

#[tokio::test]
async fn the_url_is_the_public_one_with_or_without_the_default_port() {
    let tw = Twilio::new(demo_twilio().await);
    // Twilio sometimes signs with :443; the Host header says something else entirely.
    let sig = sign("https://turnos.example.com:443/twilio/messaging", &HELLO);
    let a = tw
        .raw(
            "/twilio/messaging",
            Params::from_pairs(HELLO).to_form(),
            Some(&sig),
            &[("host", "internal-lb:8080")],
        )
        .await;
    assert!(!a.twiml().messages().is_empty());

    // A public URL with a path prefix (behind a proxy that strips it).
    let state = state_with(
        demo(),
        config(&[("CLINICFLOW_PUBLIC_URL", "https://x.example.org/clinica/")]),
    )
    .await;
    let tw = Twilio::new(state);
    let sig = sign(
        "https://x.example.org/clinica/twilio/voice",
        &[("CallSid", "CA9"), ("From", PATIENT_TEL), ("To", CLINIC_TEL)],
    );
    let a = tw
        .raw(
            "/twilio/voice",
            Params::from_pairs([("CallSid", "CA9"), ("From", PATIENT_TEL), ("To", CLINIC_TEL)]).to_form(),
            Some(&sig),
            &[],
        )
        .await;
    // The TwiML points Twilio back under the prefix.
    assert_eq!(
        a.twiml().attr("Gather", "action").as_deref(),
        Some("/clinica/twilio/voice/gather?n=1")
    );
}

#[tokio::test]
async fn json_bodies_are_verified_by_their_hash() {
    let tw = Twilio::new(demo_twilio().await);
    let body = br#"{"CallSid":"CA77","From":"+5491155550000","To":"+541149015120","CallStatus":"ringing"}"#;
    let path = format!("/twilio/voice/status?bodySHA256={}", signature::body_sha256(body));
    let sig = signature::compute(TOKEN, &format!("{PUBLIC}{path}"), &[]);
    let send = |body: &'static [u8], sig: String| {
        let req = Request::builder()
            .method(Method::POST)
            .uri_str(&path)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, sig)
            .body(body);
        tw.ep.get_response(req)
    };
    assert_eq!(send(body, sig.clone()).await.status(), StatusCode::OK);
    let other: &[u8] = br#"{"CallSid":"CA77","From":"+5491155550000","To":"+541149015120","CallStatus":"completed"}"#;
    assert_eq!(send(other, sig).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_a_token_only_this_machine_may_post() {
    // In process there is no peer address: that is not loopback, so it is refused.
    let state = state_with(demo(), TwilioConfig::from_lookup(|_| None)).await;
    let tw = Twilio::new(state);
    let a = tw
        .raw("/twilio/messaging", Params::from_pairs(HELLO).to_form(), None, &[])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(footprint(&tw.state.service.store).await, [0, 0, 0]);
}

#[tokio::test]
async fn a_token_without_a_public_url_refuses_everything() {
    let cfg = TwilioConfig::from_lookup(|k| (k == "TWILIO_AUTH_TOKEN").then(|| TOKEN.to_string()));
    let tw = Twilio::new(state_with(demo(), cfg).await);
    let a = tw.post("/twilio/messaging", &HELLO).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}
