//! Google Calendar (API v3) with a service account: a JWT signed RS256 with the account's key
//! is exchanged at its `token_uri` for an access token, cached until shortly before it
//! expires. `freeBusy.query` says what is taken; `events.insert` / `patch` / `delete` write
//! the assistant's bookings (the appointment id in `extendedProperties.private`);
//! `events.list` with a sync token returns what staff changed since the last look.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::GoogleSpec;
use reqwest::StatusCode;

use super::http::{client, instant, ok_json, removed, secret, send, utc};
use super::{Availability, Booking, BoxFuture, CalendarError, ExternalEvent, Provider, ProviderKind};

/// The private extended property that carries the appointment id.
pub const APPOINTMENT_PROPERTY: &str = "clinicflow_appointment";
const SCOPE: &str = "https://www.googleapis.com/auth/calendar";

/// The fields of a service account key file (JSON) that are used.
#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

pub struct Google {
    spec: GoogleSpec,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

/// One event as `events.list` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedEvent {
    pub id: String,
    /// The appointment it was created for (absent on staff's own events).
    pub appointment: Option<String>,
    pub cancelled: bool,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

/// One page of changes: events and, on the last page, the token for next time.
pub struct Changes {
    pub events: Vec<ChangedEvent>,
    pub next_sync_token: Option<String>,
}

impl Google {
    pub fn new(spec: GoogleSpec) -> Google {
        Google {
            http: client(spec.timeout),
            spec,
            token: tokio::sync::Mutex::new(None),
        }
    }

    pub fn spec(&self) -> &GoogleSpec {
        &self.spec
    }

    /// The push channel token staff registered with `events.watch`, if set.
    pub fn channel_token(&self) -> Option<String> {
        secret(&self.spec.channel_token_env).ok()
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    async fn access_token(&self) -> Result<String, CalendarError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let key = secret(&self.spec.credentials_env)?;
        let sa: ServiceAccount = serde_json::from_str(&key).map_err(|e| {
            CalendarError::Unavailable(format!(
                "{} is not a service account key (JSON): {e}",
                self.spec.credentials_env
            ))
        })?;
        let now = Timestamp::now().as_second();
        let claims = Claims {
            iss: &sa.client_email,
            scope: SCOPE,
            aud: &sa.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = sa.private_key_id.clone();
        let signing = jsonwebtoken::EncodingKey::from_rsa_pem(sa.private_key.as_bytes())
            .map_err(|e| CalendarError::Unavailable(format!("the service account's private key: {e}")))?;
        let assertion = jsonwebtoken::encode(&header, &claims, &signing)
            .map_err(|e| CalendarError::Unavailable(format!("signing the token request: {e}")))?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let answer = send("google token", || self.http.post(&sa.token_uri).form(&form)).await?;
        let body = ok_json("google token", answer).map_err(|e| CalendarError::Unavailable(e.to_string()))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| CalendarError::Unavailable("google token: no access_token in the answer".into()))?
            .to_string();
        let lifetime = body.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        // Renewed a minute early so a call never starts with a token about to expire.
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(1));
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, CalendarError> {
        let mut url = reqwest::Url::parse(&self.spec.base_url)
            .map_err(|e| CalendarError::Unavailable(format!("google base_url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| CalendarError::Unavailable("google base_url cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn events_url(&self, event: Option<&str>) -> Result<reqwest::Url, CalendarError> {
        let mut segments = vec!["calendar", "v3", "calendars", self.spec.calendar_id.as_str(), "events"];
        segments.extend(event);
        self.url(&segments)
    }

    /// GET events with `query`, every page.
    async fn list(&self, query: &[(&str, String)]) -> Result<(Vec<Value>, Option<String>), ListError> {
        let token = self.access_token().await?;
        let url = self.events_url(None)?;
        let mut items = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            if let Some(p) = &page {
                q.push(("pageToken", p.clone()));
            }
            let answer = send("google events.list", || {
                self.http.get(url.clone()).bearer_auth(&token).query(&q)
            })
            .await?;
            if answer.0 == StatusCode::GONE {
                return Err(ListError::Gone);
            }
            let body = ok_json("google events.list", answer)?;
            items.extend(body.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
            match body.get("nextPageToken").and_then(Value::as_str) {
                Some(p) => page = Some(p.to_string()),
                None => {
                    let next = body.get("nextSyncToken").and_then(Value::as_str).map(str::to_string);
                    return Ok((items, next));
                }
            }
        }
    }

    /// What changed since `sync_token` (every future event when there is none yet).
    /// `Err(ListError::Gone)`: the token expired; start again without one.
    pub async fn changes(&self, sync_token: Option<&str>, now: Timestamp) -> Result<Changes, ListError> {
        let mut query = vec![
            ("showDeleted", "true".to_string()),
            ("singleEvents", "true".to_string()),
        ];
        match sync_token {
            Some(t) => query.push(("syncToken", t.to_string())),
            None => query.push(("timeMin", utc(now))),
        }
        let (items, next_sync_token) = self.list(&query).await?;
        Ok(Changes {
            events: items.iter().filter_map(changed_event).collect(),
            next_sync_token,
        })
    }

    fn event_body(&self, booking: &Booking) -> Value {
        let at = |t: Timestamp| {
            let local = jiff::tz::TimeZone::get(&booking.tz)
                .map(|tz| t.to_zoned(tz).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
                .unwrap_or_else(|_| utc(t));
            json!({ "dateTime": local, "timeZone": booking.tz })
        };
        json!({
            "summary": booking.summary,
            "description": booking.description,
            "start": at(booking.start),
            "end": at(booking.end),
            "extendedProperties": { "private": { APPOINTMENT_PROPERTY: booking.appointment_id } },
        })
    }
}

/// Why listing events failed: the sync token is no longer valid (410), or the calendar failed.
#[derive(Debug)]
pub enum ListError {
    Gone,
    Calendar(CalendarError),
}

impl From<CalendarError> for ListError {
    fn from(e: CalendarError) -> Self {
        ListError::Calendar(e)
    }
}

impl From<ListError> for CalendarError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Gone => CalendarError::Unavailable("google: sync token expired".into()),
            ListError::Calendar(e) => e,
        }
    }
}

fn changed_event(item: &Value) -> Option<ChangedEvent> {
    let id = item.get("id")?.as_str()?.to_string();
    let appointment = item
        .pointer(&format!("/extendedProperties/private/{APPOINTMENT_PROPERTY}"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(ChangedEvent {
        id,
        appointment,
        cancelled: item.get("status").and_then(Value::as_str) == Some("cancelled"),
        start: instant(item.pointer("/start/dateTime")),
        end: instant(item.pointer("/end/dateTime")),
    })
}

/// Whether a listed event takes the time it covers (not cancelled, not marked free).
fn blocks(item: &Value) -> bool {
    item.get("status").and_then(Value::as_str) != Some("cancelled")
        && item.get("transparency").and_then(Value::as_str) != Some("transparent")
}

impl Provider for Google {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Google
    }

    fn calendar(&self) -> &str {
        &self.spec.calendar_id
    }

    fn availability(&self, from: Timestamp, to: Timestamp) -> BoxFuture<'_, Result<Availability, CalendarError>> {
        Box::pin(async move {
            let token = self.access_token().await?;
            let url = self.url(&["calendar", "v3", "freeBusy"])?;
            let body = json!({
                "timeMin": utc(from),
                "timeMax": utc(to),
                "items": [{ "id": self.spec.calendar_id }],
            });
            let answer = send("google freeBusy", || {
                self.http.post(url.clone()).bearer_auth(&token).json(&body)
            })
            .await?;
            let answer = ok_json("google freeBusy", answer)?;
            let cal = answer
                .pointer("/calendars")
                .and_then(|c| c.get(&self.spec.calendar_id))
                .ok_or_else(|| {
                    CalendarError::Unavailable("google freeBusy: the calendar is not in the answer".into())
                })?;
            if let Some(errors) = cal.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty()) {
                let reason = errors[0].get("reason").and_then(Value::as_str).unwrap_or("error");
                return Err(CalendarError::Unavailable(format!("google freeBusy: {reason}")));
            }
            let busy = cal
                .get("busy")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| Some((instant(b.get("start"))?, instant(b.get("end"))?)))
                .collect();
            Ok(Availability::Busy(busy))
        })
    }

    fn create<'a>(&'a self, booking: &'a Booking) -> BoxFuture<'a, Result<ExternalEvent, CalendarError>> {
        Box::pin(async move {
            let token = self.access_token().await?;
            let url = self.events_url(None)?;
            let body = self.event_body(booking);
            let answer = send("google events.insert", || {
                self.http.post(url.clone()).bearer_auth(&token).json(&body)
            })
            .await?;
            let event = ok_json("google events.insert", answer)?;
            let id = event
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| CalendarError::Unavailable("google events.insert: no event id in the answer".into()))?;
            let created = ExternalEvent {
                provider: ProviderKind::Google,
                calendar: self.spec.calendar_id.clone(),
                id: id.to_string(),
            };
            // The answer must be the event we asked for; anything else is undone.
            let same = instant(event.pointer("/start/dateTime")) == Some(booking.start)
                && instant(event.pointer("/end/dateTime")) == Some(booking.end);
            if !same {
                let _ = self.cancel(&created).await;
                return Err(CalendarError::Refused(
                    "google events.insert: the event has other times".into(),
                ));
            }
            Ok(created)
        })
    }

    fn verify<'a>(
        &'a self,
        event: &'a ExternalEvent,
        booking: &'a Booking,
    ) -> BoxFuture<'a, Result<bool, CalendarError>> {
        Box::pin(async move {
            let query = [
                ("timeMin", utc(booking.start)),
                ("timeMax", utc(booking.end)),
                ("singleEvents", "true".to_string()),
            ];
            let (items, _) = self.list(&query).await?;
            let others = items
                .iter()
                .filter(|i| i.get("id").and_then(Value::as_str) != Some(event.id.as_str()))
                .filter(|i| blocks(i))
                .filter(|i| {
                    // All-day events have `date`, not `dateTime`: they take the whole day.
                    match (
                        instant(i.pointer("/start/dateTime")),
                        instant(i.pointer("/end/dateTime")),
                    ) {
                        (Some(s), Some(e)) => s < booking.end && booking.start < e,
                        _ => true,
                    }
                })
                .count();
            Ok(others == 0)
        })
    }

    fn cancel<'a>(&'a self, event: &'a ExternalEvent) -> BoxFuture<'a, Result<(), CalendarError>> {
        Box::pin(async move {
            let token = self.access_token().await?;
            let url = self.events_url(Some(&event.id))?;
            let answer = send("google events.delete", || {
                self.http.delete(url.clone()).bearer_auth(&token)
            })
            .await?;
            // Already deleted (410) or never there (404).
            removed(
                "google events.delete",
                answer,
                &[StatusCode::GONE, StatusCode::NOT_FOUND],
            )
        })
    }

    fn reschedule<'a>(
        &'a self,
        event: &'a ExternalEvent,
        booking: &'a Booking,
    ) -> BoxFuture<'a, Result<ExternalEvent, CalendarError>> {
        Box::pin(async move {
            let token = self.access_token().await?;
            let url = self.events_url(Some(&event.id))?;
            let full = self.event_body(booking);
            let body = json!({ "start": full["start"], "end": full["end"], "summary": full["summary"] });
            let answer = send("google events.patch", || {
                self.http.patch(url.clone()).bearer_auth(&token).json(&body)
            })
            .await?;
            ok_json("google events.patch", answer)?;
            Ok(event.clone())
        })
    }

    fn forget<'a>(&'a self, booking: &'a Booking) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let appointment_id = &booking.appointment_id;
            let query = [(
                "privateExtendedProperty",
                format!("{APPOINTMENT_PROPERTY}={appointment_id}"),
            )];
            match self.list(&query).await {
                Ok((items, _)) => {
                    for item in items.iter().filter(|i| blocks(i)) {
                        if let Some(id) = item.get("id").and_then(Value::as_str) {
                            let event = ExternalEvent {
                                provider: ProviderKind::Google,
                                calendar: self.spec.calendar_id.clone(),
                                id: id.to_string(),
                            };
                            if let Err(e) = self.cancel(&event).await {
                                tracing::warn!("google: could not remove an event left by a failed booking: {e}");
                            }
                        }
                    }
                }
                Err(_) => tracing::warn!("google: could not look for an event left by a failed booking"),
            }
        })
    }

    fn as_google(&self) -> Option<&Google> {
        Some(self)
    }
}
