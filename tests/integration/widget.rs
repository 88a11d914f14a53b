//! The web chat widget's endpoint: a booking from an allowed origin, refusals from others.

use clinicflow::server;
use clinicflow::store::AppointmentFilter;
use poem::http::{Method, StatusCode};
use poem::{Endpoint, EndpointExt, Request};
use serde_json::{Value, json};

use crate::support::BOOKING;
use crate::twilio::demo_twilio;

const URL: &str = "/web/clinica-san-rafael/messages";
const ALLOWED: &str = "http://localhost:8000";
const CONVERSATION: &str = "0123456789abcdef0123456789abcdef";

async fn post(
    ep: &poem::endpoint::BoxEndpoint<'static, poem::Response>,
    url: &str,
    origin: Option<&str>,
    text: &str,
) -> (StatusCode, Option<String>, Value) {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri_str(url)
        .header("content-type", "application/json");
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let body = json!({ "conversation": CONVERSATION, "text": text }).to_string();
    let resp = ep.get_response(req.body(body)).await;
    let status = resp.status();
    let acao = resp
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.into_body().into_string().await.expect("body");
    (status, acao, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn the_widget_books_from_an_allowed_origin_and_is_refused_elsewhere() {
    let state = demo_twilio().await;
    let ep = server::app(state.clone()).boxed();

    let (status, _, _) = post(&ep, URL, Some("https://evil.example"), "hola").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an origin the clinic does not list");
    let (status, _, _) = post(&ep, URL, None, "hola").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no origin at all");
    let (status, _, _) = post(&ep, "/web/otra-clinica/messages", Some(ALLOWED), "hola").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let preflight = ep
        .get_response(
            Request::builder()
                .method(Method::OPTIONS)
                .uri_str(URL)
                .header("origin", ALLOWED)
                .header("access-control-request-method", "POST")
                .finish(),
        )
        .await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ALLOWED)
    );

    let mut last = Value::Null;
    for text in BOOKING {
        let (status, acao, body) = post(&ep, URL, Some(ALLOWED), text).await;
        assert_eq!(status, StatusCode::OK, "{text}: {body}");
        assert_eq!(acao.as_deref(), Some(ALLOWED));
        assert!(
            !body["replies"].as_array().expect("replies").is_empty(),
            "{text}: {body}"
        );
        last = body;
    }
    let booked = state
        .service
        .store
        .list_appointments(&AppointmentFilter::default())
        .await
        .expect("list");
    assert_eq!(booked.len(), 1, "booked through the widget: {last}");
    assert_eq!(booked[0].channel, "web");

    let script = ep
        .get_response(Request::builder().uri_str("/web/widget.js").finish())
        .await;
    assert_eq!(script.status(), StatusCode::OK);
    let js = script.into_body().into_string().await.expect("js");
    assert!(js.contains("aria-label") && js.contains("localStorage"));
}
