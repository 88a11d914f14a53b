//! What the providers' HTTP clients share: one client per provider with its timeout, reading
//! secrets from the environment, a 429 back-off, and one mapping of HTTP outcomes to
//! [`CalendarError`].

use std::time::Duration;

use serde_json::Value;

use super::CalendarError;

/// How many times a rate-limited (429) call is retried, and the longest wait before one:
/// a patient is waiting for the answer.
const RETRIES_429: usize = 2;
const MAX_WAIT_429: Duration = Duration::from_secs(2);

pub(crate) fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .unwrap_or_default()
}

/// A secret from the environment; its absence is the calendar being unavailable (said in
/// the log by variable name, never by value).
pub(crate) fn secret(var: &str) -> Result<String, CalendarError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(CalendarError::Unavailable(format!(
            "environment variable {var} is not set"
        ))),
    }
}

/// Sends a request (rebuilt by `make` for each try), backing off on 429. Returns the status
/// and the body as JSON (`Null` when empty or not JSON).
pub(crate) async fn send(
    what: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, Value), CalendarError> {
    let mut tries = 0;
    loop {
        let resp = make().send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out"
            } else {
                "could not be reached"
            };
            CalendarError::Unavailable(format!("{what}: {why}"))
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS && tries < RETRIES_429 {
            tries += 1;
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_millis(500))
                .min(MAX_WAIT_429);
            tracing::info!(what, ?wait, "calendar rate limit: backing off");
            tokio::time::sleep(wait).await;
            continue;
        }
        let body = resp.bytes().await.map_err(|e| {
            let why = if e.is_timeout() { "timed out" } else { "broke off" };
            CalendarError::Unavailable(format!("{what}: {why}"))
        })?;
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Ok((status, json));
    }
}

/// The JSON of a successful answer; a 4xx is a refusal (with the provider's message), other
/// statuses are the provider being unavailable.
pub(crate) fn ok_json(what: &str, (status, body): (reqwest::StatusCode, Value)) -> Result<Value, CalendarError> {
    if status.is_success() {
        return Ok(body);
    }
    let message = body
        .pointer("/error/message")
        .or_else(|| body.get("message"))
        .or_else(|| body.pointer("/error"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let text = format!(
        "{what}: HTTP {}{}{message}",
        status.as_u16(),
        if message.is_empty() { "" } else { " " }
    );
    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS && status.as_u16() != 401 {
        Err(CalendarError::Refused(text))
    } else {
        Err(CalendarError::Unavailable(text))
    }
}

/// The answer to a delete or cancel: one of `gone` (already deleted, never there) counts as
/// done, since there is nothing left to remove.
pub(crate) fn removed(
    what: &str,
    (status, body): (reqwest::StatusCode, Value),
    gone: &[reqwest::StatusCode],
) -> Result<(), CalendarError> {
    if gone.contains(&status) {
        return Ok(());
    }
    ok_json(what, (status, body)).map(|_| ())
}

/// RFC 3339 instant from a provider's JSON.
pub(crate) fn instant(v: Option<&Value>) -> Option<jiff::Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// An instant in UTC as providers accept it ("2026-12-03T13:00:00Z").
pub(crate) fn utc(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
