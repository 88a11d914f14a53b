//! One-time codes and failed attempts per patient document, keyed by the document's keyed
//! hash (`identity::document_hash`): the table never holds a document number or a code, only
//! HMACs of them. One row per document, so failures from any conversation count together
//! and a lock holds wherever the next attempt comes from.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{PLAIN_ID, Store, StoreError, decode_rows, to_doc};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// The document's keyed hash; the record key.
    pub id: String,
    /// Codes issued and not used yet, one per conversation that asked (a code works only in
    /// its own conversation, and one conversation asking does not void another's code).
    #[serde(default)]
    pub codes: Vec<PendingCode>,
    /// Wrong codes since the last success (any conversation).
    pub failures: u32,
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<Timestamp>,
    #[serde(with = "super::time::instant")]
    pub updated_at: Timestamp,
}

/// One code waiting to be typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCode {
    pub session: String,
    /// HMAC of the code (`identity::code_hash`).
    pub code_hash: String,
    #[serde(with = "super::time::instant")]
    pub expires_at: Timestamp,
}

/// At most this many conversations wait for a code for one document at a time.
pub const MAX_PENDING: usize = 5;

impl Verification {
    pub fn new(document_hash: &str, now: Timestamp) -> Verification {
        Verification {
            id: document_hash.to_string(),
            codes: Vec::new(),
            failures: 0,
            locked_until: None,
            updated_at: now,
        }
    }

    /// The still valid code issued to `session`.
    pub fn pending(&self, session: &str, now: Timestamp) -> Option<&PendingCode> {
        self.codes.iter().find(|c| c.session == session && c.expires_at > now)
    }

    /// Replaces `session`'s code, dropping expired ones and the oldest beyond `MAX_PENDING`.
    pub fn issue(&mut self, code: PendingCode, now: Timestamp) {
        self.codes.retain(|c| c.session != code.session && c.expires_at > now);
        self.codes.push(code);
        let extra = self.codes.len().saturating_sub(MAX_PENDING);
        self.codes.drain(..extra);
    }
}

impl Store {
    pub async fn verification(&self, document_hash: &str) -> Result<Option<Verification>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM ONLY type::record('verification', $id)");
        let mut resp = self.run(&sql, json!({ "id": document_hash })).await?;
        Ok(decode_rows(&mut resp, 0, "verification")?.into_iter().next())
    }

    pub async fn save_verification(&self, v: &Verification) -> Result<(), StoreError> {
        let doc = to_doc(v)?;
        self.run_retry(
            "UPSERT type::record('verification', $id) CONTENT $doc RETURN NONE",
            json!({ "id": v.id, "doc": doc }),
        )
        .await?;
        Ok(())
    }

    pub async fn delete_verification(&self, document_hash: &str) -> Result<(), StoreError> {
        self.run(
            "DELETE type::record('verification', $id) RETURN NONE",
            json!({ "id": document_hash }),
        )
        .await?;
        Ok(())
    }
}
