//! The calendars' webhooks under /calendars:
//!
//! - `POST /calendars/google/notify`: Google push notifications of a watched calendar. No
//!   body; `X-Goog-Channel-Token` must be the token of a configured calendar (the one given
//!   to `events.watch`), else 403. The calendar's changes are then synced at once.
//! - `POST /calendars/calendly/webhook`: Calendly's `invitee.created` / `invitee.canceled`,
//!   signed (`Calendly-Webhook-Signature`) with the subscription's signing key, else 403.
//!   A cancellation cancels the appointment; a reschedule made in Calendly (the old invitee
//!   cancelled with `rescheduled: true`, then a new one naming it in `old_invitee`) moves it.
//!
//! A calendar or database failure answers 503 so the provider delivers the notification
//! again later.

use poem::http::HeaderMap;
use poem::web::{Data, Json};
use poem::{Body, Endpoint, EndpointExt, Response, Route, handler, post};
use serde_json::{Value, json};

use super::{ProviderKind, sync};
use crate::api::ApiError;
use crate::server::AppState;

pub fn routes() -> impl Endpoint<Output = Response> + 'static {
    Route::new()
        .at("/calendars/google/notify", post(google_notify))
        .at("/calendars/calendly/webhook", post(calendly_webhook))
        .map_to_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Equal strings, compared in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now(state: &AppState) -> jiff::Zoned {
    jiff::Zoned::now().with_time_zone(state.service.bot().clinic.tz.clone())
}

#[handler]
async fn google_notify(state: Data<&AppState>, headers: &HeaderMap) -> poem::Result<Json<Value>> {
    let token = header(headers, "X-Goog-Channel-Token").unwrap_or_default();
    let bot = state.service.bot();
    let matching: Vec<_> = bot
        .clinic
        .calendars
        .providers()
        .filter_map(|p| p.as_google())
        .filter(|g| !token.is_empty() && g.channel_token().is_some_and(|t| same_secret(&t, token)))
        .collect();
    if matching.is_empty() {
        return Err(ApiError::Forbidden("unknown or missing X-Goog-Channel-Token".into()).into());
    }
    // "sync" only announces a new channel.
    if header(headers, "X-Goog-Resource-State") == Some("sync") {
        return Ok(Json(json!({ "ok": true, "applied": 0 })));
    }
    let now = now(&state);
    let mut applied = 0;
    for google in matching {
        match sync::sync_google(&state.service, state.sender.as_ref(), google, &now).await {
            Ok(a) => applied += a.len(),
            Err(e) => {
                tracing::warn!("google calendar sync after a push notification failed: {e}");
                return Err(ApiError::Unavailable(format!("google calendar sync: {e}")).into());
            }
        }
    }
    Ok(Json(json!({ "ok": true, "applied": applied })))
}

#[handler]
async fn calendly_webhook(state: Data<&AppState>, headers: &HeaderMap, body: Body) -> poem::Result<Json<Value>> {
    let body = body
        .into_bytes()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
    let signature = header(headers, "Calendly-Webhook-Signature").unwrap_or_default();
    let bot = state.service.bot();
    let at = jiff::Timestamp::now();
    let signed = bot
        .clinic
        .calendars
        .providers()
        .filter_map(|p| p.as_calendly())
        .filter_map(|c| c.signing_key())
        .any(|key| super::calendly::verify_signature(signature, &body, &key, at));
    if !signed {
        return Err(ApiError::Forbidden("the Calendly-Webhook-Signature does not match".into()).into());
    }
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the webhook body is not JSON: {e}")))?;
    let kind = event.get("event").and_then(Value::as_str).unwrap_or_default();
    let payload = event.get("payload").cloned().unwrap_or(Value::Null);
    // The scheduled event: `payload.event` (a URI), or `payload.scheduled_event.uri`.
    let uri = payload
        .get("event")
        .and_then(Value::as_str)
        .or_else(|| payload.pointer("/scheduled_event/uri").and_then(Value::as_str))
        .unwrap_or_default();
    let rescheduled = payload.get("rescheduled").and_then(Value::as_bool).unwrap_or(false);
    let store_down = |e: crate::store::StoreError| ApiError::Unavailable(e.to_string());
    let applied = match kind {
        // A reschedule in Calendly cancels the old invitee (`rescheduled: true`, ignored) and
        // creates a new one that names it (`old_invitee`): the appointment moves then.
        "invitee.created" => match rescheduled_to(&payload, uri) {
            Some((old_event, new_event, start)) => moved_in_calendly(&state, &old_event, new_event, start)
                .await
                .map_err(store_down)?,
            None => false,
        },
        "invitee.canceled" if !rescheduled && !uri.is_empty() => {
            match state
                .service
                .store
                .appointment_of_event(ProviderKind::Calendly, uri)
                .await
                .map_err(store_down)?
            {
                Some(id) => sync::cancelled_outside(&state.service, state.sender.as_ref(), &id, &now(&state))
                    .await
                    .map_err(store_down)?
                    .is_some(),
                None => false,
            }
        }
        // Bookings made in Calendly itself take their time, which the available times show.
        _ => false,
    };
    Ok(Json(json!({ "ok": true, "applied": applied })))
}

/// An `invitee.created` that is a reschedule: (the old scheduled event, the new one, its
/// start). The old event is the part of `old_invitee` before `/invitees/`.
fn rescheduled_to(payload: &Value, new_event: &str) -> Option<(String, String, jiff::Timestamp)> {
    let old_invitee = payload.get("old_invitee").and_then(Value::as_str)?;
    let (old_event, _) = old_invitee.split_once("/invitees/")?;
    let start = payload
        .pointer("/scheduled_event/start_time")
        .and_then(Value::as_str)?
        .parse()
        .ok()?;
    (!new_event.is_empty() && new_event != old_event).then(|| (old_event.to_string(), new_event.to_string(), start))
}

/// The appointment of `old_event` moves to `start` and is linked to `new_event` (the old one
/// is cancelled in Calendly already). False when no appointment of ours is there, or the move
/// is not applied (see `sync::moved_outside`).
async fn moved_in_calendly(
    state: &AppState,
    old_event: &str,
    new_event: String,
    start: jiff::Timestamp,
) -> Result<bool, crate::store::StoreError> {
    let store = &state.service.store;
    let Some(id) = store.appointment_of_event(ProviderKind::Calendly, old_event).await? else {
        return Ok(false);
    };
    let Some(calendar) = store.event_of(&id).await?.map(|e| e.calendar) else {
        return Ok(false);
    };
    let moved = sync::moved_outside(&state.service, state.sender.as_ref(), &id, start, &now(state)).await?;
    if moved.is_some() {
        let event = super::ExternalEvent {
            provider: ProviderKind::Calendly,
            calendar,
            id: new_event,
        };
        store.link_event(&id, &event).await?;
    } else {
        tracing::warn!("a reschedule made in Calendly was not applied to its appointment");
    }
    Ok(moved.is_some())
}
