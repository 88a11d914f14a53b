//! Channel message ids already handled, with the reply that was sent. Twilio retries a
//! webhook that timed out; answering a retry from here keeps a turn from running twice.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{PLAIN_ID, Store, StoreError, decode_rows, to_doc};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processed {
    /// The channel's message id (Twilio MessageSid / CallSid + sequence, API request id).
    /// It is the record key, hence the rename.
    #[serde(rename = "id")]
    pub message_id: String,
    pub session: String,
    /// Whatever the service needs to answer the retry exactly as the first time.
    pub reply: serde_json::Value,
    #[serde(with = "super::time::instant")]
    pub at: Timestamp,
    /// A hash of the request (API `Idempotency-Key`s): the same key with another request is
    /// refused rather than answered with this reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl Processed {
    pub fn new(
        message_id: impl Into<String>,
        session: impl Into<String>,
        reply: serde_json::Value,
        at: Timestamp,
    ) -> Processed {
        Processed {
            message_id: message_id.into(),
            session: session.into(),
            reply,
            at,
            request: None,
        }
    }
}

impl Store {
    pub async fn processed(&self, message_id: &str) -> Result<Option<Processed>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM ONLY type::record('processed', $id)");
        let mut resp = self.run(&sql, json!({ "id": message_id })).await?;
        Ok(decode_rows(&mut resp, 0, "processed message")?.into_iter().next())
    }

    /// Records a handled message. Returns false when it was already recorded (the earlier
    /// record is kept).
    pub async fn mark_processed(&self, p: &Processed) -> Result<bool, StoreError> {
        let result = self
            .run(
                "CREATE type::record('processed', $id) CONTENT $doc RETURN NONE",
                json!({ "id": p.message_id, "doc": to_doc(p)? }),
            )
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::*;

    #[tokio::test]
    async fn a_message_is_processed_once() {
        let store = mem().await;
        let at = Timestamp::from_second(1_749_470_000).unwrap();
        let first = Processed::new("SMabc", "s1", json!({ "replies": ["Hola"] }), at);
        assert!(store.mark_processed(&first).await.unwrap());
        let retry = Processed::new("SMabc", "s1", json!({ "replies": ["otra"] }), at);
        assert!(!store.mark_processed(&retry).await.unwrap());
        assert_eq!(store.processed("SMabc").await.unwrap(), Some(first));
        assert_eq!(store.processed("SMzzz").await.unwrap(), None);
    }
}
