//! Calendly (API v2) with a personal access token: the event type's available times (at most
//! 31 days per call, so longer ranges are asked in pieces), bookings through the Scheduling
//! API (`POST /invitees`, tracking the appointment id), cancellation of the scheduled event,
//! finding a booking a timed-out attempt left (`/users/me`, `/scheduled_events`, its
//! invitees' tracking), and its webhooks
//! (`invitee.created`, `invitee.canceled`), signed with the webhook signing key.

use std::collections::HashSet;

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use sha2::Sha256;

use super::config::CalendlySpec;
use super::http::{client, instant, ok_json, removed, secret, send, utc};
use super::{Availability, Booking, BoxFuture, CalendarError, ExternalEvent, Provider, ProviderKind};

/// The longest range one `event_type_available_times` call may cover.
const MAX_RANGE: SignedDuration = SignedDuration::from_hours(31 * 24);
/// How old a signed webhook may be (Calendly's own advice is a few minutes).
const WEBHOOK_TOLERANCE_SECS: i64 = 180;

pub struct Calendly {
    spec: CalendlySpec,
    http: reqwest::Client,
}

impl Calendly {
    pub fn new(spec: CalendlySpec) -> Calendly {
        Calendly {
            http: client(spec.timeout),
            spec,
        }
    }

    pub fn spec(&self) -> &CalendlySpec {
        &self.spec
    }

    fn token(&self) -> Result<String, CalendarError> {
        secret(&self.spec.token_env)
    }

    /// The signing key of this calendar's webhook subscription, if set.
    pub fn signing_key(&self) -> Option<String> {
        secret(&self.spec.signing_key_env).ok()
    }

    /// `POST {scheduled event}/cancellation` for a scheduled event URI.
    fn cancellation_url(&self, event_uri: &str) -> String {
        let uuid = event_uri.rsplit('/').next().unwrap_or_default();
        format!("{}/scheduled_events/{uuid}/cancellation", self.spec.base_url)
    }
}

/// Checks `Calendly-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`
/// against `key`, and that it is recent. Constant-time comparison (hmac's `verify_slice`).
pub fn verify_signature(header: &str, body: &[u8], key: &str, now: Timestamp) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value.trim()),
            Some(("v1", value)) => v1 = Some(value.trim()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let Ok(seconds) = t.parse::<i64>() else { return false };
    if (now.as_second() - seconds).abs() > WEBHOOK_TOLERANCE_SECS {
        return false;
    }
    let Ok(expected) = hex::decode(v1) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The signature header Calendly would send (tests and docs).
pub fn sign(body: &[u8], key: &str, at: Timestamp) -> String {
    let t = at.as_second().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl Provider for Calendly {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Calendly
    }

    fn calendar(&self) -> &str {
        &self.spec.event_type
    }

    fn availability(&self, from: Timestamp, to: Timestamp) -> BoxFuture<'_, Result<Availability, CalendarError>> {
        Box::pin(async move {
            let token = self.token()?;
            let url = format!("{}/event_type_available_times", self.spec.base_url);
            let mut starts = HashSet::new();
            let mut piece_start = from;
            while piece_start < to {
                let piece_end = piece_start.checked_add(MAX_RANGE).unwrap_or(to).min(to);
                let query = [
                    ("event_type", self.spec.event_type.clone()),
                    ("start_time", utc(piece_start)),
                    ("end_time", utc(piece_end)),
                ];
                let answer = send("calendly available times", || {
                    self.http.get(&url).bearer_auth(&token).query(&query)
                })
                .await?;
                let body = ok_json("calendly available times", answer)?;
                for slot in body.get("collection").and_then(Value::as_array).into_iter().flatten() {
                    let available = slot
                        .get("status")
                        .and_then(Value::as_str)
                        .is_none_or(|s| s == "available");
                    if let (true, Some(t)) = (available, instant(slot.get("start_time"))) {
                        starts.insert(t);
                    }
                }
                piece_start = piece_end;
            }
            Ok(Availability::OnlyAt(starts))
        })
    }

    fn create<'a>(&'a self, booking: &'a Booking) -> BoxFuture<'a, Result<ExternalEvent, CalendarError>> {
        Box::pin(async move {
            let token = self.token()?;
            let url = format!("{}/invitees", self.spec.base_url);
            let Some(email) = booking.email.clone() else {
                return Err(CalendarError::Refused("calendly needs an email for the invitee".into()));
            };
            let body = json!({
                "event_type": self.spec.event_type,
                "start_time": utc(booking.start),
                "invitee": { "name": booking.patient_name, "email": email, "timezone": booking.tz },
                // Found again by `forget` when the answer is lost.
                "tracking": { "utm_source": "clinicflow", "utm_content": booking.appointment_id },
            });
            let answer = send("calendly create invitee", || {
                self.http.post(&url).bearer_auth(&token).json(&body)
            })
            .await?;
            let resource = ok_json("calendly create invitee", answer)?;
            let event = resource
                .pointer("/resource/event")
                .and_then(Value::as_str)
                .ok_or_else(|| CalendarError::Unavailable("calendly: no scheduled event in the answer".into()))?;
            Ok(ExternalEvent {
                provider: ProviderKind::Calendly,
                calendar: self.spec.event_type.clone(),
                id: event.to_string(),
            })
        })
    }

    fn cancel<'a>(&'a self, event: &'a ExternalEvent) -> BoxFuture<'a, Result<(), CalendarError>> {
        Box::pin(async move {
            let token = self.token()?;
            let url = self.cancellation_url(&event.id);
            let body = json!({ "reason": "Cancelled through the clinic's assistant" });
            let answer = send("calendly cancel", || {
                self.http.post(&url).bearer_auth(&token).json(&body)
            })
            .await?;
            // Already cancelled (403), or gone (404).
            let gone = [reqwest::StatusCode::NOT_FOUND, reqwest::StatusCode::FORBIDDEN];
            removed("calendly cancel", answer, &gone)
        })
    }

    fn reschedule<'a>(
        &'a self,
        event: &'a ExternalEvent,
        booking: &'a Booking,
    ) -> BoxFuture<'a, Result<ExternalEvent, CalendarError>> {
        // The API has no move: book the new time, then cancel the old one.
        Box::pin(async move {
            let new = self.create(booking).await?;
            if let Err(e) = self.cancel(event).await {
                tracing::warn!("calendly: the old event of a moved appointment is still there: {e}");
            }
            Ok(new)
        })
    }

    /// The active events of the event type at the booking's start with its invitee email,
    /// whose invitee carries the appointment id in its tracking (`create` writes it there):
    /// cancelled. Calendly lists events by user, so the token's user is asked first.
    fn forget<'a>(&'a self, booking: &'a Booking) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.forget_booking(booking).await {
                tracing::warn!("calendly: could not look for a booking left by a failed attempt: {e}");
            }
        })
    }

    fn as_calendly(&self) -> Option<&Calendly> {
        Some(self)
    }
}

impl Calendly {
    async fn get(&self, what: &str, url: &str, query: &[(&str, String)]) -> Result<Value, CalendarError> {
        let token = self.token()?;
        let answer = send(what, || self.http.get(url).bearer_auth(&token).query(query)).await?;
        ok_json(what, answer)
    }

    async fn forget_booking(&self, booking: &Booking) -> Result<(), CalendarError> {
        let Some(email) = &booking.email else { return Ok(()) };
        let base = &self.spec.base_url;
        let me = self.get("calendly users/me", &format!("{base}/users/me"), &[]).await?;
        let Some(user) = me.pointer("/resource/uri").and_then(Value::as_str) else {
            return Err(CalendarError::Unavailable("calendly: no user in /users/me".into()));
        };
        let query = [
            ("user", user.to_string()),
            ("invitee_email", email.clone()),
            ("status", "active".to_string()),
            ("min_start_time", utc(booking.start)),
            ("max_start_time", utc(booking.start + SignedDuration::from_secs(1))),
        ];
        let events = self
            .get("calendly scheduled_events", &format!("{base}/scheduled_events"), &query)
            .await?;
        let candidates = events
            .get("collection")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.get("event_type").and_then(Value::as_str) == Some(self.spec.event_type.as_str()))
            .filter(|e| instant(e.get("start_time")) == Some(booking.start))
            .filter_map(|e| e.get("uri").and_then(Value::as_str));
        for uri in candidates {
            let uuid = uri.rsplit('/').next().unwrap_or_default();
            let invitees = self
                .get(
                    "calendly invitees",
                    &format!("{base}/scheduled_events/{uuid}/invitees"),
                    &[],
                )
                .await?;
            let ours = invitees
                .get("collection")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|i| {
                    i.pointer("/tracking/utm_content").and_then(Value::as_str) == Some(booking.appointment_id.as_str())
                });
            if ours {
                let event = ExternalEvent {
                    provider: ProviderKind::Calendly,
                    calendar: self.spec.event_type.clone(),
                    id: uri.to_string(),
                };
                self.cancel(&event).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_with_the_key_and_the_time() {
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let body = br#"{"event":"invitee.canceled"}"#;
        let header = sign(body, "secret", now);
        assert!(verify_signature(&header, body, "secret", now));
        assert!(!verify_signature(&header, body, "other", now));
        assert!(!verify_signature(
            &header,
            br#"{"event":"invitee.created"}"#,
            "secret",
            now
        ));
        let later = now.checked_add(SignedDuration::from_mins(10)).unwrap();
        assert!(!verify_signature(&header, body, "secret", later));
        assert!(!verify_signature("t=1,v1=zz", body, "secret", now));
        assert!(!verify_signature("", body, "secret", now));
    }
}
