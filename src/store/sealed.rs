//! The appointment fields encrypted at rest: the document number, the patient's name, the
//! address (phone number) it was booked from and the patient's email, with AES-256-GCM under the data key
//! (`identity::seal`). The document is found by its keyed hash (`document_hash`), stored
//! beside it. Rows written before encryption (no `enc:v1:` marker) still read.

use serde_json::Value;

use serde_json::json;

use super::{Store, StoreError, decode, rows};
use crate::identity::{SealError, document_hash, open, seal};

/// The encrypted fields of an appointment row.
const FIELDS: [&str; 4] = ["document", "patient_name", "user", "email"];

fn err(e: SealError) -> StoreError {
    StoreError::Decode {
        what: "appointment",
        reason: e.to_string(),
    }
}

/// A document about to be written: the fields encrypted, `document_hash` added.
pub(super) fn seal_appointment(mut doc: Value) -> Result<Value, StoreError> {
    let Some(map) = doc.as_object_mut() else { return Ok(doc) };
    if let Some(d) = map.get("document").and_then(Value::as_str) {
        let hash = document_hash(d);
        map.insert("document_hash".into(), Value::String(hash));
    }
    for f in FIELDS {
        if let Some(Value::String(plain)) = map.get(f) {
            let sealed = seal(f, plain).map_err(err)?;
            map.insert(f.into(), Value::String(sealed));
        }
    }
    Ok(doc)
}

/// A row as read: the fields decrypted, `document_hash` dropped.
pub(super) fn open_appointment(mut row: Value) -> Result<Value, StoreError> {
    let Some(map) = row.as_object_mut() else { return Ok(row) };
    map.remove("document_hash");
    for f in FIELDS {
        if let Some(Value::String(stored)) = map.get(f) {
            let plain = open(f, stored).map_err(err)?;
            map.insert(f.into(), Value::String(plain));
        }
    }
    Ok(row)
}

/// The appointments of statement `index`, decrypted.
pub(super) fn decode_appointments(
    resp: &mut surrealdb::IndexedResults,
    index: usize,
) -> Result<Vec<super::Appointment>, StoreError> {
    rows(resp, index)?
        .into_iter()
        .map(|row| decode(open_appointment(row)?, "appointment"))
        .collect()
}

impl Store {
    /// Encrypts the appointments written before encryption (no `document_hash`), once, at
    /// start: afterwards every lookup by document finds them. Idempotent and cheap when there
    /// are none.
    pub(super) async fn seal_old_appointments(&self) -> Result<usize, StoreError> {
        let mut resp = self
            .run(
                "SELECT record::id(id) AS id, document, patient_name, user FROM appointment
                 WHERE document_hash = NONE",
                json!({}),
            )
            .await?;
        let old = rows(&mut resp, 0)?;
        for row in &old {
            let Some(id) = row["id"].as_str() else { continue };
            let sealed = seal_appointment(row.clone())?;
            self.run(
                "UPDATE type::record('appointment', $id) SET document = $d, patient_name = $n,
                     user = $u, document_hash = $h WHERE document_hash = NONE RETURN NONE",
                json!({
                    "id": id, "d": sealed["document"], "n": sealed["patient_name"],
                    "u": sealed["user"], "h": sealed["document_hash"],
                }),
            )
            .await?;
        }
        if !old.is_empty() {
            tracing::info!(count = old.len(), "appointments encrypted at rest");
        }
        Ok(old.len())
    }
}
