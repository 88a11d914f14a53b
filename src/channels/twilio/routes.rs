//! The Twilio webhooks under /twilio, every one behind signature verification: a request
//! whose signature does not match gets 403 before any handler runs, so nothing of it is
//! processed or stored. Handlers read the verified parameters from the request data.

use std::net::IpAddr;
use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::{Endpoint, EndpointExt, Request, Response, Route, post};

use super::params::{Params, query_param};
use super::signature::{self, Signed};
use super::{messaging, voice};
use crate::server::{AppState, MAX_BODY};

/// The routes, with their full paths (mounted with `nest_no_strip("/twilio", …)` so the
/// request URI stays the one Twilio signed).
pub fn routes() -> impl Endpoint<Output = Response> + 'static {
    Route::new()
        .at("/twilio/messaging", post(messaging::inbound))
        .at("/twilio/messaging/status", post(messaging::status))
        .at("/twilio/voice", post(voice::start))
        .at("/twilio/voice/gather", post(voice::gather))
        .at("/twilio/voice/status", post(voice::status))
        .around(verify)
}

/// The header Twilio signs requests with.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

fn forbidden(why: &str) -> Response {
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .content_type("text/plain; charset=utf-8")
        .body(format!("Forbidden: {why}\n"))
}

/// Checks the signature (or, with no auth token configured, that the caller is on this
/// machine), then hands the parsed parameters to the handler.
async fn verify<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let Some(state) = req.data::<AppState>().cloned() else {
        return Ok(forbidden("the server is not ready"));
    };
    let body = match req.take_body().into_bytes_limit(MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return Ok(forbidden("the request body cannot be read")),
    };
    // The URL Twilio called and signed: before a clinic's `/clinics/{clinic}` was taken off it.
    let called = match req.extensions().get::<crate::server::CalledAs>() {
        Some(c) => c.0.clone(),
        None => req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.to_string()),
    };
    let path_and_query = called.as_str();
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let has_body_hash = query_param(path_and_query, "bodySHA256").is_some();
    let params = if is_json || has_body_hash {
        Params::from_json(&body).unwrap_or_default()
    } else {
        Params::parse_form(&body)
    };

    match state.twilio.auth_token.as_deref() {
        Some(token) => {
            let Some(base) = state.twilio.public_url.as_deref() else {
                tracing::warn!("a Twilio webhook was refused: CLINICFLOW_PUBLIC_URL is not set");
                return Ok(forbidden("signature check failed"));
            };
            let url = format!("{base}{path_and_query}");
            let given = req
                .headers()
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let signed = if has_body_hash {
                Signed::Body(&body)
            } else {
                Signed::Form(params.pairs())
            };
            if given.is_empty() || !signature::validate(token, &url, signed, given) {
                // The path only: parameters carry phone numbers and messages.
                tracing::warn!(
                    path = req.uri().path(),
                    "a Twilio webhook was refused: missing or wrong signature (is CLINICFLOW_PUBLIC_URL exactly the URL Twilio calls?)"
                );
                return Ok(forbidden("signature check failed"));
            }
        }
        None => {
            if !from_this_machine(&req) {
                tracing::warn!(
                    path = req.uri().path(),
                    "an unsigned Twilio webhook from another machine was refused: set TWILIO_AUTH_TOKEN"
                );
                return Ok(forbidden("unsigned requests are only accepted from this machine"));
            }
        }
    }
    req.set_body(body);
    req.extensions_mut().insert(params);
    next.call(req).await.map(poem::IntoResponse::into_response)
}

/// A loopback peer that is not a proxy relaying someone else (a local reverse proxy adds
/// forwarding headers; such requests count as remote).
fn from_this_machine(req: &Request) -> bool {
    let loopback = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .is_some_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        });
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    loopback && !proxied
}

/// The path prefix of the public URL ("" or "/clinicflow"), for the URLs our TwiML points
/// Twilio to.
pub fn base_path(state: &AppState) -> String {
    let Some(url) = state.twilio.public_url.as_deref() else {
        return String::new();
    };
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].trim_end_matches('/').to_string(),
        None => String::new(),
    }
}

/// A 400 with a short text (a request that is Twilio's but lacks what we need).
pub fn bad_request(what: &str) -> Response {
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{what}\n"))
}

/// A 500 for a turn that could not be run or stored (Twilio logs it in its debugger).
pub fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!("a Twilio webhook failed: {e}");
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .content_type("text/plain; charset=utf-8")
        .body("the message could not be processed\n")
}
