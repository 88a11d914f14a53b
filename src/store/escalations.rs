//! Conversations handed over to staff, with the transcript they need to pick it up.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::time::fmt_instant;
use super::{PLAIN_ID, Store, StoreError, decode_rows, to_doc};
use crate::store::TurnRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationStatus {
    Open,
    Resolved,
}

impl EscalationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationStatus::Open => "open",
            EscalationStatus::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEscalation {
    pub session: String,
    pub channel: String,
    pub user: String,
    pub reason: Option<String>,
    /// The conversation so far, oldest first.
    pub transcript: Vec<TurnRecord>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub id: String,
    pub session: String,
    pub channel: String,
    /// The patient's address. Personal data.
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub status: EscalationStatus,
    #[serde(with = "super::time::instant")]
    pub created_at: Timestamp,
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub transcript: Vec<TurnRecord>,
    /// The member of staff answering it, if someone took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_by: Option<String>,
}

impl Store {
    pub async fn create_escalation(&self, new: &NewEscalation) -> Result<Escalation, StoreError> {
        let escalation = Escalation {
            id: String::new(),
            session: new.session.clone(),
            channel: new.channel.clone(),
            user: new.user.clone(),
            reason: new.reason.clone(),
            status: EscalationStatus::Open,
            created_at: new.created_at,
            resolved_at: None,
            resolved_by: None,
            note: None,
            transcript: new.transcript.clone(),
            taken_by: None,
        };
        let sql = format!("CREATE escalation CONTENT $doc RETURN {PLAIN_ID}");
        let mut resp = self.run_retry(&sql, json!({ "doc": to_doc(&escalation)? })).await?;
        decode_rows(&mut resp, 0, "escalation")?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Query("CREATE returned no escalation".into()))
    }

    pub async fn get_escalation(&self, id: &str) -> Result<Option<Escalation>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM ONLY type::record('escalation', $id)");
        let mut resp = self.run(&sql, json!({ "id": id })).await?;
        Ok(decode_rows(&mut resp, 0, "escalation")?.into_iter().next())
    }

    /// Escalations by status (any when `None`), oldest first: the queue staff work through.
    pub async fn list_escalations(
        &self,
        status: Option<EscalationStatus>,
        limit: usize,
    ) -> Result<Vec<Escalation>, StoreError> {
        let filter = if status.is_some() { "WHERE status = $status" } else { "" };
        let sql = format!("SELECT {PLAIN_ID} FROM escalation {filter} ORDER BY created_at ASC LIMIT $limit");
        let vars = json!({ "status": status.map(EscalationStatus::as_str), "limit": limit });
        let mut resp = self.run(&sql, vars).await?;
        decode_rows(&mut resp, 0, "escalation")
    }

    /// How many escalations have `status` (any when `None`): the open-escalations gauge.
    pub async fn count_escalations(&self, status: Option<EscalationStatus>) -> Result<u64, StoreError> {
        let filter = if status.is_some() { "WHERE status = $status" } else { "" };
        let sql = format!("SELECT count() AS n FROM escalation {filter} GROUP ALL");
        let mut resp = self
            .run(&sql, json!({ "status": status.map(EscalationStatus::as_str) }))
            .await?;
        // No matching rows means no group at all, not a zero count.
        Ok(super::rows(&mut resp, 0)?
            .first()
            .and_then(|row| row.get("n"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0))
    }

    /// Closes an open escalation. `NotFound` when there is no such escalation; resolving an
    /// already resolved one keeps the first resolution and returns it unchanged.
    pub async fn resolve_escalation(
        &self,
        id: &str,
        by: Option<&str>,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<Escalation, StoreError> {
        // `?? NONE`: absent values arrive as NULL, which option<string> fields refuse.
        let sql = format!(
            "UPDATE type::record('escalation', $id)
                 SET status = 'resolved', resolved_at = $now,
                     resolved_by = ($by ?? NONE), note = ($note ?? NONE)
                 WHERE status = 'open' RETURN {PLAIN_ID}"
        );
        let vars = json!({ "id": id, "now": fmt_instant(now), "by": by, "note": note });
        let mut resp = self.run_retry(&sql, vars).await?;
        if let Some(e) = decode_rows(&mut resp, 0, "escalation")?.into_iter().next() {
            return Ok(e);
        }
        self.get_escalation(id).await?.ok_or(StoreError::NotFound {
            table: "escalation",
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::super::turns::sample_turn;
    use super::*;

    #[tokio::test]
    async fn escalations_keep_the_transcript_and_resolve_once() {
        let store = mem().await;
        let at = Timestamp::from_second(1_749_470_000).unwrap();
        let new = NewEscalation {
            session: "s1".into(),
            channel: "whatsapp".into(),
            user: "whatsapp:+5491100000000".into(),
            reason: Some("patient_asked".into()),
            transcript: vec![
                sample_turn("s1", 1, "hola"),
                sample_turn("s1", 2, "quiero hablar con alguien"),
            ],
            created_at: at,
        };
        assert_eq!(store.count_escalations(Some(EscalationStatus::Open)).await.unwrap(), 0);
        let e = store.create_escalation(&new).await.unwrap();
        assert_eq!(e.status, EscalationStatus::Open);
        assert_eq!(e.transcript, new.transcript);
        let later = NewEscalation {
            reason: None,
            transcript: vec![],
            created_at: at + jiff::SignedDuration::from_mins(5),
            ..new.clone()
        };
        let e2 = store.create_escalation(&later).await.unwrap();
        assert_eq!(e2.reason, None);

        let open = store.list_escalations(Some(EscalationStatus::Open), 10).await.unwrap();
        assert_eq!(
            open.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            [e.id.as_str(), e2.id.as_str()]
        );

        let done = store.resolve_escalation(&e.id, Some("ana"), None, at).await.unwrap();
        assert_eq!(
            (done.status, done.resolved_by.as_deref(), done.note.as_deref()),
            (EscalationStatus::Resolved, Some("ana"), None)
        );
        let again = store
            .resolve_escalation(&e.id, Some("bob"), Some("x"), at)
            .await
            .unwrap();
        assert_eq!(again.resolved_by.as_deref(), Some("ana"));
        assert_eq!(store.get_escalation(&e.id).await.unwrap(), Some(done));
        assert_eq!(
            store
                .list_escalations(Some(EscalationStatus::Open), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.list_escalations(None, 10).await.unwrap().len(), 2);
        assert_eq!(store.count_escalations(Some(EscalationStatus::Open)).await.unwrap(), 1);
        assert_eq!(store.count_escalations(None).await.unwrap(), 2);
        assert!(matches!(
            store.resolve_escalation("nope", None, None, at).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}
