//! A patient's personal data for staff: export (right of access) and erase (right of
//! erasure), both recorded in the audit log. The document travels in the body, never in the
//! URL, so proxies and access logs do not keep it.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::{Value, json};

use super::Tag;
use super::auth::StaffKey;
use super::error::ApiError;
use crate::actions::normalize_document;
use crate::identity::document_hash;
use crate::server::{AppState, clock};

/// Whose data.
#[derive(Object)]
#[oai(rename = "PatientRef")]
struct PatientIn {
    /// The patient's document number (dots and spaces are ignored).
    document: String,
}

#[derive(Object)]
#[oai(rename = "PatientExport")]
struct ExportOut {
    /// Everything stored about the patient, table by table, as stored: `appointments`,
    /// `reminders`, `sessions`, `turns`, `escalations`, `messages`, `processed`.
    data: Value,
}

#[derive(Object)]
#[oai(rename = "PatientErased")]
struct EraseOut {
    /// Rows removed per table.
    erased: Value,
}

#[derive(Object)]
#[oai(rename = "AuditEntry")]
struct AuditOut {
    at: String,
    /// `export` or `erase`.
    action: String,
    /// The document's keyed hash (the audit log never holds the document).
    subject: String,
    actor: String,
    counts: Value,
}

fn document(body: &PatientIn) -> Result<String, ApiError> {
    let d = normalize_document(&body.document);
    if d.is_empty() || d.len() > 20 {
        return Err(ApiError::bad_request(
            "`document` must be a document number (1 to 20 letters or digits; dots and spaces are ignored)",
        ));
    }
    Ok(d)
}

pub struct Api;

#[OpenApi(tag = "Tag::Patients")]
impl Api {
    /// Everything stored about one patient (staff only). Recorded in the audit log.
    #[oai(path = "/v1/patients/export", method = "post", operation_id = "export_patient")]
    async fn export(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        body: Json<PatientIn>,
    ) -> Result<Json<ExportOut>, ApiError> {
        let doc = document(&body.0)?;
        let store = &state.service.store;
        let data = store.export_patient(&doc).await?;
        let counts = json!({
            "appointments": data.appointments.len(), "reminders": data.reminders.len(),
            "sessions": data.sessions.len(), "turns": data.turns.len(),
            "escalations": data.escalations.len(), "messages": data.messages.len(),
            "processed": data.processed.len(),
        });
        let now = clock(&state, None)?;
        store
            .audit_export(&document_hash(&doc), "api", counts, now.timestamp())
            .await?;
        let data = serde_json::to_value(&data).unwrap_or(Value::Null);
        Ok(Json(ExportOut { data }))
    }

    /// Erases everything stored about one patient (staff only): appointments, their
    /// reminders, the conversations they were booked from with their turn logs, escalations
    /// and message logs; the events of their appointments to come are removed from the
    /// professionals' external calendars (`calendar_events`; `calendar_events_left`: those a
    /// calendar did not take, for staff to remove). Recorded in the audit log. Cannot be undone.
    #[oai(path = "/v1/patients/erase", method = "post", operation_id = "erase_patient")]
    async fn erase(
        &self,
        _key: StaffKey,
        state: Data<&AppState>,
        body: Json<PatientIn>,
    ) -> Result<Json<EraseOut>, ApiError> {
        let doc = document(&body.0)?;
        let now = clock(&state, None)?;
        // The events of their appointments to come, read before the links go with the rest.
        let events = crate::calendars::events_of_patient(&state.service.store, &doc, now.timestamp()).await?;
        let erased = state
            .service
            .erase_patient(&doc, &document_hash(&doc), "api", now.timestamp())
            .await?;
        let (removed, left) = crate::calendars::remove_events(&state.service.bot().clinic, &events).await;
        tracing::info!(
            appointments = erased.appointments,
            turns = erased.turns,
            calendar_events = removed,
            calendar_events_left = left,
            "a patient's data was erased"
        );
        let mut erased = serde_json::to_value(&erased).unwrap_or(Value::Null);
        if let Some(map) = erased.as_object_mut() {
            map.insert("calendar_events".into(), removed.into());
            map.insert("calendar_events_left".into(), left.into());
        }
        Ok(Json(EraseOut { erased }))
    }

    /// The audit log of exports and erasures, newest first (staff only).
    #[oai(path = "/v1/audit", method = "get", operation_id = "audit_log")]
    async fn audit(&self, _key: StaffKey, state: Data<&AppState>) -> Result<Json<Vec<AuditOut>>, ApiError> {
        let entries = state.service.store.audit_log(1000).await?;
        Ok(Json(
            entries
                .into_iter()
                .map(|e| AuditOut {
                    at: e.at.to_string(),
                    action: e.action,
                    subject: e.subject,
                    actor: e.actor,
                    counts: e.counts,
                })
                .collect(),
        ))
    }
}
