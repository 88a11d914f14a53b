//! A fake of Twilio's Messages API on loopback (wiremock), for benchmarks and tests: `POST
//! Messages.json` accepts a message (after an optional delay, like a slow Twilio) and keeps
//! it; `GET Messages.json?To=&From=&PageSize=` lists what was accepted, newest first, as
//! Twilio's list does. The message is kept when the request arrives, before the delay: a
//! sender that dies while waiting for the answer has still sent it, as with the real Twilio.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::params::Params;

/// One message the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub sid: String,
    pub to: String,
    pub from: String,
    /// The Body, or the ContentSid of a template message.
    pub body: String,
    pub at: Timestamp,
}

pub struct FakeTwilio {
    pub server: MockServer,
    log: Arc<Mutex<Vec<Accepted>>>,
}

const MESSAGES: &str = r"^/2010-04-01/Accounts/[^/]+/Messages\.json$";

impl FakeTwilio {
    /// Starts the fake on 127.0.0.1 (a free port); `delay` before each POST is answered.
    pub async fn start(delay: Duration) -> FakeTwilio {
        let server = MockServer::start().await;
        let log: Arc<Mutex<Vec<Accepted>>> = Arc::default();
        let kept = log.clone();
        Mock::given(method("POST"))
            .and(path_regex(MESSAGES))
            .respond_with(move |req: &Request| {
                let form = Params::parse_form(&req.body);
                let field = |k: &str| form.get(k).unwrap_or_default().to_string();
                let mut log = kept.lock().unwrap_or_else(|p| p.into_inner());
                let sid = format!("SMfake{:06}", log.len());
                log.push(Accepted {
                    sid: sid.clone(),
                    to: field("To"),
                    from: field("From"),
                    body: form
                        .get("Body")
                        .or(form.get("ContentSid"))
                        .unwrap_or_default()
                        .to_string(),
                    at: Timestamp::now(),
                });
                ResponseTemplate::new(201)
                    .set_body_json(json!({ "sid": sid, "status": "queued" }))
                    .set_delay(delay)
            })
            .mount(&server)
            .await;
        let listed = log.clone();
        Mock::given(method("GET"))
            .and(path_regex(MESSAGES))
            .respond_with(move |req: &Request| {
                let query: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
                let arg = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                let size = arg("PageSize").and_then(|s| s.parse().ok()).unwrap_or(50);
                let log = listed.lock().unwrap_or_else(|p| p.into_inner());
                let messages: Vec<_> = log
                    .iter()
                    .rev()
                    .filter(|m| arg("To").is_none_or(|to| to == m.to) && arg("From").is_none_or(|f| f == m.from))
                    .take(size)
                    .map(|m| {
                        json!({
                            "sid": m.sid,
                            "to": m.to,
                            "from": m.from,
                            "body": m.body,
                            "status": "sent",
                            "date_created": rfc2822(m.at),
                        })
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({ "messages": messages, "next_page_uri": null }))
            })
            .mount(&server)
            .await;
        FakeTwilio { server, log }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Every message accepted so far, oldest first.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Twilio's date format (RFC 2822, whole seconds).
fn rfc2822(at: Timestamp) -> String {
    let zoned = at.to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::rfc2822::to_string(&zoned).unwrap_or_default()
}
