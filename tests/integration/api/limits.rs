//! Rate limits on the API: over the limit, 429 with Retry-After, and the excess is not
//! processed (governor's fake clock: no sleeps).

use std::time::Duration;

use clinicflow::limits::{LimitClock, LimitsConfig, RateLimits};
use governor::clock::FakeRelativeClock;
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, Request};
use serde_json::{Value, json};

use super::{NOW, demo_state};

#[tokio::test]
async fn a_flood_gets_429_with_retry_after_and_is_not_processed() {
    let clock = FakeRelativeClock::default();
    let limits = RateLimits::with_clock(&LimitsConfig::default(), LimitClock::Fake(clock.clone()));
    let state = demo_state().await.with_limits(limits);
    let ep = clinicflow::server::app(state.clone()).boxed();
    let send = |conversation: &str, user: &str| {
        let body = json!({ "text": "hola", "now": NOW, "user": user }).to_string();
        Request::builder()
            .method(poem::http::Method::POST)
            .uri_str(format!("/v1/conversations/{conversation}/messages"))
            .content_type("application/json")
            .body(body)
    };
    let (mut ok, mut limited) = (0, 0);
    let mut retry_after = Vec::new();
    for _ in 0..300 {
        let resp = ep.get_response(send("flood", "+5491100000000")).await;
        match resp.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                if let Some(v) = resp.headers().get("retry-after") {
                    retry_after.push(v.to_str().unwrap_or_default().to_string());
                }
                let body: Value =
                    serde_json::from_str(&resp.into_body().into_string().await.unwrap_or_default()).unwrap_or_default();
                assert_eq!(body["error"], "rate_limited", "{body}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, limited), (20, 280));
    assert_eq!(retry_after.len(), 280, "every 429 says when to retry");
    assert!(
        retry_after
            .iter()
            .all(|s| s.parse::<u64>().is_ok_and(|n| (1..=60).contains(&n))),
        "{retry_after:?}"
    );
    let conversation = state
        .service
        .store
        .load_session("flood")
        .await
        .expect("load")
        .expect("session");
    assert_eq!(conversation.turns, 20, "the refused messages were not processed");

    // Other conversations of other people go on; the same person after the window too.
    assert_eq!(
        ep.get_response(send("other", "+5491122222222")).await.status(),
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        ep.get_response(send("flood", "+5491100000000")).await.status(),
        StatusCode::OK
    );
}
