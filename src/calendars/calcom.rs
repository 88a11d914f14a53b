//! Cal.com (API v2) with an API key: `GET /v2/slots` for the event type's free start times,
//! `POST /v2/bookings`, `POST /v2/bookings/{uid}/cancel` and `/reschedule` (which gives the
//! booking a new uid), `GET /v2/bookings` to find a booking a timed-out attempt left (by the
//! appointment id in its metadata). Each endpoint family pins its `cal-api-version`.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::config::CalComSpec;
use super::http::{client, instant, ok_json, removed, secret, send, utc};
use super::{Availability, Booking, BoxFuture, CalendarError, ExternalEvent, Provider, ProviderKind};

const SLOTS_VERSION: &str = "2024-09-04";
const BOOKINGS_VERSION: &str = "2024-08-13";

pub struct CalCom {
    spec: CalComSpec,
    http: reqwest::Client,
    calendar: String,
}

impl CalCom {
    pub fn new(spec: CalComSpec) -> CalCom {
        CalCom {
            http: client(spec.timeout),
            calendar: spec.event_type_id.to_string(),
            spec,
        }
    }

    /// A POST to the bookings API, sent with the 429 back-off.
    async fn post(&self, what: &str, path: &str, body: &Value) -> Result<(reqwest::StatusCode, Value), CalendarError> {
        let token = secret(&self.spec.token_env)?;
        let url = format!("{}{path}", self.spec.base_url);
        send(what, || {
            self.http
                .post(&url)
                .bearer_auth(&token)
                .header("cal-api-version", BOOKINGS_VERSION)
                .json(body)
        })
        .await
    }

    fn event(&self, uid: &str) -> ExternalEvent {
        ExternalEvent {
            provider: ProviderKind::CalCom,
            calendar: self.calendar.clone(),
            id: uid.to_string(),
        }
    }
}

/// The booking uid of a `/v2/bookings` answer.
fn uid(body: &Value) -> Result<String, CalendarError> {
    body.pointer("/data/uid")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| CalendarError::Unavailable("cal.com: no booking uid in the answer".into()))
}

impl Provider for CalCom {
    fn kind(&self) -> ProviderKind {
        ProviderKind::CalCom
    }

    fn calendar(&self) -> &str {
        &self.calendar
    }

    fn availability(&self, from: Timestamp, to: Timestamp) -> BoxFuture<'_, Result<Availability, CalendarError>> {
        Box::pin(async move {
            let token = secret(&self.spec.token_env)?;
            let url = format!("{}/v2/slots", self.spec.base_url);
            let query = [
                ("eventTypeId", self.calendar.clone()),
                ("start", utc(from)),
                ("end", utc(to)),
                ("timeZone", "UTC".to_string()),
            ];
            let answer = send("cal.com slots", || {
                self.http
                    .get(&url)
                    .bearer_auth(&token)
                    .header("cal-api-version", SLOTS_VERSION)
                    .query(&query)
            })
            .await?;
            let body = ok_json("cal.com slots", answer)?;
            // {"data": {"2026-12-03": [{"start": "…"}, …], …}}
            let mut starts = HashSet::new();
            for day in body
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|d| d.values())
            {
                for slot in day.as_array().into_iter().flatten() {
                    if let Some(t) = instant(slot.get("start")) {
                        starts.insert(t);
                    }
                }
            }
            Ok(Availability::OnlyAt(starts))
        })
    }

    fn create<'a>(&'a self, booking: &'a Booking) -> BoxFuture<'a, Result<ExternalEvent, CalendarError>> {
        Box::pin(async move {
            let Some(email) = booking.email.clone() else {
                return Err(CalendarError::Refused("cal.com needs an email for the attendee".into()));
            };
            let body = json!({
                "start": utc(booking.start),
                "eventTypeId": self.spec.event_type_id,
                "attendee": { "name": booking.patient_name, "email": email, "timeZone": booking.tz },
                "metadata": { super::google::APPOINTMENT_PROPERTY: booking.appointment_id },
            });
            let answer = self.post("cal.com create booking", "/v2/bookings", &body).await?;
            let body = ok_json("cal.com create booking", answer)?;
            Ok(self.event(&uid(&body)?))
        })
    }

    fn cancel<'a>(&'a self, event: &'a ExternalEvent) -> BoxFuture<'a, Result<(), CalendarError>> {
        Box::pin(async move {
            let body = json!({ "cancellationReason": "Cancelled through the clinic's assistant" });
            let path = format!("/v2/bookings/{}/cancel", event.id);
            let answer = self.post("cal.com cancel", &path, &body).await?;
            removed("cal.com cancel", answer, &[reqwest::StatusCode::NOT_FOUND])
        })
    }

    /// The bookings of the event type in the booking's time whose metadata carry its
    /// appointment id (written by `create`), cancelled.
    fn forget<'a>(&'a self, booking: &'a Booking) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(token) = secret(&self.spec.token_env) else {
                return;
            };
            let url = format!("{}/v2/bookings", self.spec.base_url);
            let query = [
                ("eventTypeId", self.calendar.clone()),
                ("afterStart", utc(booking.start)),
                ("beforeEnd", utc(booking.end)),
            ];
            let answer = send("cal.com list bookings", || {
                self.http
                    .get(&url)
                    .bearer_auth(&token)
                    .header("cal-api-version", BOOKINGS_VERSION)
                    .query(&query)
            })
            .await;
            let body = match answer.and_then(|a| ok_json("cal.com list bookings", a)) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("cal.com: could not look for a booking left by a failed attempt: {e}");
                    return;
                }
            };
            let ours = body
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|b| {
                    b.pointer(&format!("/metadata/{}", super::google::APPOINTMENT_PROPERTY))
                        .and_then(Value::as_str)
                        == Some(booking.appointment_id.as_str())
                        && b.get("status").and_then(Value::as_str) != Some("cancelled")
                })
                .filter_map(|b| b.get("uid").and_then(Value::as_str));
            for uid in ours {
                if let Err(e) = self.cancel(&self.event(uid)).await {
                    tracing::warn!("cal.com: could not remove a booking left by a failed attempt: {e}");
                }
            }
        })
    }

    fn reschedule<'a>(
        &'a self,
        event: &'a ExternalEvent,
        booking: &'a Booking,
    ) -> BoxFuture<'a, Result<ExternalEvent, CalendarError>> {
        Box::pin(async move {
            let body =
                json!({ "start": utc(booking.start), "reschedulingReason": "Moved through the clinic's assistant" });
            let path = format!("/v2/bookings/{}/reschedule", event.id);
            let answer = self.post("cal.com reschedule", &path, &body).await?;
            let body = ok_json("cal.com reschedule", answer)?;
            Ok(self.event(&uid(&body)?))
        })
    }
}
