//! One patient's data, all of it: export and erase (the patient's right of access and of
//! erasure), each recorded in the `audit` table. A patient is found by document: their
//! appointments, the conversations those were booked from (session, turn log, escalations,
//! outbound message log, processed message ids), the appointments' reminders, the links to
//! their external calendar events (`calendar_event`, ids only) and the verification row. The
//! appointments' email addresses are sealed in the appointment rows (src/store/sealed.rs):
//! exported opened, erased with them. The events themselves are removed from the calendars
//! by the caller (`calendars::remove_events`), after the erase. Erasing removes a whole conversation even when it also booked for
//! someone else: what that conversation said cannot be split safely; the other person's
//! appointments stay.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::time::fmt_instant;
use super::{Store, StoreError, rows};

/// Everything stored about one patient, table by table, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientData {
    pub appointments: Vec<Value>,
    pub reminders: Vec<Value>,
    pub sessions: Vec<Value>,
    pub turns: Vec<Value>,
    pub escalations: Vec<Value>,
    pub messages: Vec<Value>,
    pub processed: Vec<Value>,
}

/// How many rows an erase removed per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    pub appointments: usize,
    pub reminders: usize,
    pub sessions: usize,
    pub turns: usize,
    pub escalations: usize,
    pub messages: usize,
    pub processed: usize,
    /// The conversations erased (for the service's hot-session cache; not in the counts).
    #[serde(skip)]
    pub conversations: Vec<String>,
}

/// What happened to whose data, by whom. `subject` is the document's keyed hash: the audit
/// log says that a patient's data was erased without keeping who they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    #[serde(with = "super::time::instant")]
    pub at: Timestamp,
    /// "export" or "erase".
    pub action: String,
    pub subject: String,
    /// Who asked (the API key's label, or "api" without keys).
    pub actor: String,
    /// Rows per table.
    pub counts: Value,
}

/// The tables a patient's conversations leave rows in, with the field naming the conversation.
const BY_SESSION: [(&str, &str); 4] = [
    ("turn", "turns"),
    ("escalation", "escalations"),
    ("message", "messages"),
    ("processed", "processed"),
];

impl Store {
    /// The appointment ids and conversation ids of a document.
    async fn patient_keys(&self, document: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut resp = self
            .run(
                "SELECT record::id(id) AS id, session FROM appointment WHERE document_hash = $hash",
                json!({ "hash": crate::identity::document_hash(document) }),
            )
            .await?;
        let mut ids = Vec::new();
        let mut sessions = Vec::new();
        for row in rows(&mut resp, 0)? {
            if let Some(id) = row["id"].as_str() {
                ids.push(id.to_string());
            }
            if let Some(s) = row["session"].as_str()
                && !sessions.iter().any(|x| x == s)
            {
                sessions.push(s.to_string());
            }
        }
        Ok((ids, sessions))
    }

    /// Everything stored about the patient with `document` (normalized digits).
    pub async fn export_patient(&self, document: &str) -> Result<PatientData, StoreError> {
        let (ids, sessions) = self.patient_keys(document).await?;
        let hash = crate::identity::document_hash(document);
        let vars = json!({ "hash": hash, "ids": ids, "sessions": sessions });
        let mut sql = String::from(
            "SELECT *, record::id(id) AS id FROM appointment WHERE document_hash = $hash ORDER BY starts_at;
             SELECT *, record::id(id) AS id FROM reminder WHERE appointment IN $ids OR session IN $sessions;
             SELECT *, record::id(id) AS id FROM session WHERE record::id(id) IN $sessions;",
        );
        for (table, _) in BY_SESSION {
            sql.push_str(&format!(
                " SELECT *, record::id(id) AS id FROM {table} WHERE session IN $sessions;"
            ));
        }
        let mut resp = self.run(&sql, vars).await?;
        Ok(PatientData {
            appointments: rows(&mut resp, 0)?
                .into_iter()
                .map(super::sealed::open_appointment)
                .collect::<Result<_, _>>()?,
            reminders: rows(&mut resp, 1)?,
            sessions: rows(&mut resp, 2)?,
            turns: rows(&mut resp, 3)?,
            escalations: rows(&mut resp, 4)?,
            messages: rows(&mut resp, 5)?,
            processed: rows(&mut resp, 6)?,
        })
    }

    /// Deletes everything stored about the patient with `document` in one transaction, and
    /// records it in the audit log in the same one.
    pub async fn erase_patient(
        &self,
        document: &str,
        document_hash: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<Erased, StoreError> {
        let (ids, sessions) = self.patient_keys(document).await?;
        let vars = json!({
            "ids": ids, "sessions": &sessions, "hash": document_hash,
            "actor": actor, "at": fmt_instant(now),
        });
        let mut sql = String::from(
            "BEGIN TRANSACTION;
             DELETE reminder WHERE appointment IN $ids OR session IN $sessions RETURN BEFORE;
             DELETE appointment WHERE document_hash = $hash RETURN BEFORE;
             DELETE session WHERE record::id(id) IN $sessions RETURN BEFORE;",
        );
        for (table, _) in BY_SESSION {
            // `$sessions CONTAINS session`, not `session IN $sessions`: with the index on
            // (session, seq) SurrealDB 3.3 plans the IN form and deletes nothing from `turn`.
            sql.push_str(&format!(
                " DELETE {table} WHERE $sessions CONTAINS session RETURN BEFORE;"
            ));
        }
        sql.push_str(
            " DELETE calendar_event WHERE $ids CONTAINS appointment RETURN NONE;
              DELETE outbox WHERE $sessions CONTAINS session RETURN NONE;
              DELETE type::record('verification', $hash) RETURN NONE;
              CREATE audit CONTENT { at: $at, action: 'erase', subject: $hash, actor: $actor, counts: {} } RETURN NONE;
              COMMIT TRANSACTION;",
        );
        let mut resp = self.run_retry(&sql, vars).await?;
        self.slots_changed();
        let count = |resp: &mut surrealdb::IndexedResults, i: usize| rows(resp, i).map(|r| r.len());
        let erased = Erased {
            reminders: count(&mut resp, 1)?,
            appointments: count(&mut resp, 2)?,
            sessions: count(&mut resp, 3)?,
            turns: count(&mut resp, 4)?,
            escalations: count(&mut resp, 5)?,
            messages: count(&mut resp, 6)?,
            processed: count(&mut resp, 7)?,
            conversations: sessions.clone(),
        };
        // The counts are only known after the deletes: recorded in a second, tiny write.
        self.run(
            "UPDATE audit SET counts = $counts WHERE subject = $hash AND at = $at AND action = 'erase'",
            json!({ "counts": erased, "hash": document_hash, "at": fmt_instant(now) }),
        )
        .await?;
        Ok(erased)
    }

    /// Records an export in the audit log.
    pub async fn audit_export(
        &self,
        document_hash: &str,
        actor: &str,
        counts: Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(
            "CREATE audit CONTENT { at: $at, action: 'export', subject: $hash, actor: $actor, counts: $counts } RETURN NONE",
            json!({ "at": fmt_instant(now), "hash": document_hash, "actor": actor, "counts": counts }),
        )
        .await?;
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut resp = self
            .run(
                "SELECT *, record::id(id) AS id FROM audit ORDER BY at DESC LIMIT $limit",
                json!({ "limit": limit }),
            )
            .await?;
        super::decode_rows(&mut resp, 0, "audit entry")
    }

    /// Deletes the turns logged before `cutoff` (the retention sweep). Returns how many.
    pub async fn delete_turns_before(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let mut resp = self
            .run_retry(
                "DELETE turn WHERE at < $cutoff RETURN BEFORE",
                json!({ "cutoff": fmt_instant(cutoff) }),
            )
            .await?;
        Ok(rows(&mut resp, 0)?.len())
    }

    /// Every row of every table, as JSON (tests: proving that nothing of a patient is left).
    pub async fn dump_all(&self) -> Result<Value, StoreError> {
        let mut resp = self.run("INFO FOR DB", json!({})).await?;
        let info = rows(&mut resp, 0)?;
        let tables: Vec<String> = info
            .first()
            .and_then(|i| i["tables"].as_object())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let mut out = serde_json::Map::new();
        for t in tables {
            let mut resp = self.run(&format!("SELECT * FROM {t}"), json!({})).await?;
            out.insert(t, Value::Array(rows(&mut resp, 0)?));
        }
        Ok(Value::Object(out))
    }
}
