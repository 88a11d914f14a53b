//! Which external calendar event belongs to which appointment (`calendar_event`, keyed by
//! the appointment id), and where each calendar's change feed stands (`calendar_sync`).
//! Kept beside the appointment rather than in it so that appointments without a calendar
//! are stored exactly as before. No personal data here: ids only.

use serde_json::json;

use super::{Store, StoreError, rows};
use crate::calendars::{ExternalEvent, ProviderKind};

fn event_of_row(row: &serde_json::Value) -> Option<(String, ExternalEvent)> {
    let field = |k: &str| row.get(k).and_then(|v| v.as_str());
    Some((
        field("appointment")?.to_string(),
        ExternalEvent {
            provider: ProviderKind::parse(field("provider")?)?,
            calendar: field("calendar")?.to_string(),
            id: field("event_id")?.to_string(),
        },
    ))
}

impl Store {
    /// Records (or replaces) the event of an appointment.
    pub async fn link_event(&self, appointment: &str, event: &ExternalEvent) -> Result<(), StoreError> {
        self.run_retry(
            "UPSERT type::record('calendar_event', $appointment) CONTENT {
                 appointment: $appointment, provider: $provider, calendar: $calendar, event_id: $event_id
             } RETURN NONE",
            json!({
                "appointment": appointment,
                "provider": event.provider.as_str(),
                "calendar": event.calendar,
                "event_id": event.id,
            }),
        )
        .await
        .map(|_| ())
    }

    /// The event of an appointment, if it has one.
    pub async fn event_of(&self, appointment: &str) -> Result<Option<ExternalEvent>, StoreError> {
        let mut resp = self
            .run(
                "SELECT * FROM ONLY type::record('calendar_event', $appointment)",
                json!({ "appointment": appointment }),
            )
            .await?;
        Ok(rows(&mut resp, 0)?.iter().find_map(event_of_row).map(|(_, e)| e))
    }

    /// The appointment an event belongs to.
    pub async fn appointment_of_event(
        &self,
        provider: ProviderKind,
        event_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut resp = self
            .run(
                "SELECT * FROM calendar_event WHERE event_id = $event_id AND provider = $provider LIMIT 1",
                json!({ "event_id": event_id, "provider": provider.as_str() }),
            )
            .await?;
        Ok(rows(&mut resp, 0)?.iter().find_map(event_of_row).map(|(a, _)| a))
    }

    /// Marks the event of a cancelled appointment as still to be removed from its calendar.
    pub async fn mark_cancel_pending(&self, appointment: &str) -> Result<(), StoreError> {
        self.run_retry(
            "UPDATE type::record('calendar_event', $appointment) SET cancel_pending = true RETURN NONE",
            json!({ "appointment": appointment }),
        )
        .await
        .map(|_| ())
    }

    /// Events of cancelled appointments still to be removed from their calendars (oldest
    /// first, at most `limit`), with their appointment ids.
    pub async fn pending_cancellations(&self, limit: usize) -> Result<Vec<(String, ExternalEvent)>, StoreError> {
        let mut resp = self
            .run(
                "SELECT * FROM calendar_event WHERE cancel_pending = true LIMIT $limit",
                json!({ "limit": limit }),
            )
            .await?;
        Ok(rows(&mut resp, 0)?.iter().filter_map(event_of_row).collect())
    }

    /// Forgets the event of an appointment.
    pub async fn unlink_event(&self, appointment: &str) -> Result<(), StoreError> {
        self.run(
            "DELETE type::record('calendar_event', $appointment)",
            json!({ "appointment": appointment }),
        )
        .await
        .map(|_| ())
    }

    /// Removes an appointment that was never confirmed to the patient (its calendar refused
    /// it): the row and whatever hangs from it, as if the booking had not been tried.
    pub async fn forget_appointment(&self, id: &str) -> Result<(), StoreError> {
        self.run_retry(
            "BEGIN TRANSACTION;
             DELETE reminder WHERE appointment = $id;
             DELETE type::record('calendar_event', $id);
             DELETE type::record('appointment', $id);
             COMMIT TRANSACTION;",
            json!({ "id": id }),
        )
        .await?;
        self.slots_changed();
        Ok(())
    }

    /// Where the change feed of a calendar stands (Google's sync token).
    pub async fn sync_token(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut resp = self
            .run(
                "SELECT VALUE token FROM ONLY type::record('calendar_sync', $key)",
                json!({ "key": key }),
            )
            .await?;
        Ok(rows(&mut resp, 0)?.first().and_then(|v| v.as_str()).map(str::to_string))
    }

    pub async fn set_sync_token(&self, key: &str, token: Option<&str>) -> Result<(), StoreError> {
        let sql = match token {
            // `$token` is reserved by SurrealDB.
            Some(_) => "UPSERT type::record('calendar_sync', $key) CONTENT { token: $sync_token } RETURN NONE",
            None => "DELETE type::record('calendar_sync', $key)",
        };
        self.run_retry(sql, json!({ "key": key, "sync_token": token }))
            .await
            .map(|_| ())
    }
}
