//! The outbound message log: every message the clinic sent through a channel's API
//! (reminders, staff replies), keyed by the channel's message id (Twilio's MessageSid), with
//! its delivery status as the channel reports it (`POST /twilio/messaging/status`).
//!
//! No text and no address are stored here: the turn log has the text; this log answers
//! "did it arrive?".

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::time::fmt_instant;
use super::{PLAIN_ID, Store, StoreError, decode_rows, to_doc};

/// One sent message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The channel's id (Twilio "SM…"/"MM…"). The record key.
    pub id: String,
    /// The conversation; `None` for a message we only know from a status callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// "reminder", "staff"…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// queued, sending, sent, delivered, read, undelivered, failed (Twilio's words).
    pub status: String,
    /// Order of `status` (see [`status_rank`]); a late callback never moves a status back.
    pub rank: i64,
    /// Twilio's ErrorCode for undelivered/failed messages (e.g. "63016").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(with = "super::time::instant")]
    pub created_at: Timestamp,
    #[serde(with = "super::time::instant")]
    pub updated_at: Timestamp,
}

/// How far a message got. Callbacks may arrive out of order (Twilio sends them
/// concurrently), so the furthest status wins; the failures are final.
pub fn status_rank(status: &str) -> i64 {
    match status {
        "accepted" | "scheduled" => 0,
        "queued" => 1,
        "sending" => 2,
        "sent" => 3,
        "delivered" => 4,
        "read" => 5,
        "undelivered" | "failed" | "canceled" => 6,
        _ => 0,
    }
}

impl Store {
    /// Records a message the channel accepted. When its status callback came first (it can),
    /// the record exists already: the conversation details are added and the status kept.
    pub async fn record_message(&self, m: &MessageRecord) -> Result<(), StoreError> {
        let created = self
            .run(
                "CREATE type::record('message', $id) CONTENT $doc RETURN NONE",
                json!({ "id": m.id, "doc": to_doc(m)? }),
            )
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                self.run(
                    "UPDATE type::record('message', $id) SET session = $conversation, channel = $channel,
                         kind = $kind, created_at = $created RETURN NONE",
                    json!({
                        "id": m.id,
                        "conversation": m.session,
                        "channel": m.channel,
                        "kind": m.kind,
                        "created": fmt_instant(m.created_at),
                    }),
                )
                .await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Records a delivery status reported by the channel. A status behind the stored one is
    /// ignored; a message we do not know is recorded without a conversation.
    pub async fn record_message_status(
        &self,
        id: &str,
        status: &str,
        error_code: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let rank = status_rank(status);
        let vars = json!({
            "id": id,
            "status": status,
            "rank": rank,
            "error": error_code,
            "at": fmt_instant(at),
        });
        // Twice: a first status may race the `record_message` of the same message.
        for _ in 0..2 {
            let mut resp = self
                .run(
                    "UPDATE type::record('message', $id)
                         SET status = $status, rank = $rank, error_code = $error ?? NONE, updated_at = $at
                         WHERE rank <= $rank RETURN VALUE record::id(id);
                     SELECT VALUE record::id(id) FROM ONLY type::record('message', $id);",
                    vars.clone(),
                )
                .await?;
            let known = !super::rows(&mut resp, 1)?.is_empty();
            if known {
                return Ok(());
            }
            let doc = MessageRecord {
                id: id.to_string(),
                session: None,
                channel: None,
                kind: None,
                status: status.to_string(),
                rank,
                error_code: error_code.map(str::to_string),
                created_at: at,
                updated_at: at,
            };
            match self
                .run(
                    "CREATE type::record('message', $id) CONTENT $doc RETURN NONE",
                    json!({ "id": id, "doc": to_doc(&doc)? }),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub async fn get_message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM ONLY type::record('message', $id)");
        let mut resp = self.run(&sql, json!({ "id": id })).await?;
        Ok(decode_rows(&mut resp, 0, "message")?.into_iter().next())
    }

    /// Messages of one conversation, oldest first.
    pub async fn messages_of(&self, session: &str) -> Result<Vec<MessageRecord>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM message WHERE session = $conversation ORDER BY created_at");
        let mut resp = self.run(&sql, json!({ "conversation": session })).await?;
        decode_rows(&mut resp, 0, "message")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::*;

    fn sent(id: &str, at: Timestamp) -> MessageRecord {
        MessageRecord {
            id: id.into(),
            session: Some("whatsapp:+5491155550000:+14155238886".into()),
            channel: Some("whatsapp".into()),
            kind: Some("reminder".into()),
            status: "queued".into(),
            rank: status_rank("queued"),
            error_code: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[tokio::test]
    async fn statuses_move_forward_only() {
        let store = mem().await;
        let at = Timestamp::from_second(1_790_000_000).unwrap();
        store.record_message(&sent("SM1", at)).await.unwrap();
        store.record_message_status("SM1", "delivered", None, at).await.unwrap();
        // "sent" arriving after "delivered" does not move it back.
        store.record_message_status("SM1", "sent", None, at).await.unwrap();
        let m = store.get_message("SM1").await.unwrap().unwrap();
        assert_eq!(m.status, "delivered");
        assert_eq!(m.kind.as_deref(), Some("reminder"));
        store.record_message_status("SM1", "read", None, at).await.unwrap();
        assert_eq!(store.get_message("SM1").await.unwrap().unwrap().status, "read");
    }

    #[tokio::test]
    async fn failures_keep_their_code_and_unknown_messages_are_recorded() {
        let store = mem().await;
        let at = Timestamp::from_second(1_790_000_000).unwrap();
        store.record_message(&sent("SM2", at)).await.unwrap();
        store
            .record_message_status("SM2", "undelivered", Some("63016"), at)
            .await
            .unwrap();
        let m = store.get_message("SM2").await.unwrap().unwrap();
        assert_eq!(
            (m.status.as_str(), m.error_code.as_deref()),
            ("undelivered", Some("63016"))
        );

        store
            .record_message_status("SMunknown", "sent", None, at)
            .await
            .unwrap();
        let m = store.get_message("SMunknown").await.unwrap().unwrap();
        assert_eq!((m.status.as_str(), m.session), ("sent", None));
        // The send is recorded after its first callback: details added, status kept.
        store.record_message(&sent("SMunknown", at)).await.unwrap();
        let m = store.get_message("SMunknown").await.unwrap().unwrap();
        assert_eq!(m.status, "sent");
        assert_eq!(m.kind.as_deref(), Some("reminder"));
        let listed = store.messages_of("whatsapp:+5491155550000:+14155238886").await.unwrap();
        assert_eq!(listed.len(), 2);
    }
}
