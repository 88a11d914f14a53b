//! SurrealDB storage: sessions, the turn log, appointments, reminders, escalations and
//! processed message ids.
//!
//! One `Store` (cheap to clone) wraps a `Surreal<Any>`, so the same code runs embedded
//! (`mem://`, `surrealkv://`, `rocksdb://`) and against a server (`ws://`, `wss://`) shared by
//! any number of clinicflow replicas. Everything that must hold under concurrency is enforced
//! by the database, not by this process: optimistic versions for sessions, a UNIQUE index for
//! appointment slots, conditional updates for reminder leases.
//!
//! Values cross the SDK as `serde_json::Value` and are converted to our serde structs here;
//! record ids are exposed as their plain key (`abc`, not `appointment:abc`).

mod appointments;
mod browse;
mod calendar_events;
mod connect;
mod escalations;
mod file_versions;
mod group;
mod inbox;
mod lease;
mod messages;
mod outbox;
mod patients;
mod processed;
mod reminders;
mod schema;
mod sealed;
mod sessions;
mod slot_cache;
mod staff_sessions;
mod stats;
pub mod time;
mod turns;
mod txn;
mod verifications;

use std::time::Duration;

use serde::de::DeserializeOwned;
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::QueryError;

pub use appointments::{Appointment, AppointmentFilter, AppointmentStatus, NewAppointment, Slot};
pub use browse::{ConversationQuery, ConversationRow, browse_window};
pub use connect::{DEFAULT_DB, DEFAULT_NS, DEFAULT_URL};
pub use escalations::{Escalation, EscalationStatus, NewEscalation};
pub use file_versions::{FileVersion, NewFileVersion, VersionKind};
pub use lease::Fence;
pub use messages::{MessageRecord, status_rank};
pub use outbox::{OutboxRow, OutboxStatus, ReminderLink, Rows};
pub use patients::{AuditEntry, Erased, PatientData};
pub use processed::Processed;
pub use reminders::{NewReminder, Reminder, ReminderStatus};
pub use staff_sessions::StaffSession;
pub use stats::{DayStats, DropOff, SOURCES as STATS_QUERIES, Stats};
pub use turns::{LlmCall, TurnRecord};
pub use txn::{Fault, FaultHook};
pub use verifications::{PendingCode, Verification};

/// Storage failures. `Conflict` and `SlotTaken` are expected under concurrency and callers
/// branch on them; the rest mean the database could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bad database URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database query failed: {0}")]
    Query(String),
    /// A concurrent writer won: the stored version was not the expected one, a unique key
    /// already exists, or the transaction collided with another one.
    #[error("conflicting write: {0}")]
    Conflict(String),
    /// The appointment slot (professional, date, time) is already booked.
    #[error("that appointment slot is already booked")]
    SlotTaken,
    #[error("{table} `{id}` not found")]
    NotFound { table: &'static str, id: String },
    /// A stored document does not match the shape this version of clinicflow expects.
    #[error("cannot read a stored {what}: {reason}")]
    Decode { what: &'static str, reason: String },
}

/// A handle on the database. Clone it freely: clones share one connection.
#[derive(Clone)]
pub struct Store {
    db: Surreal<Any>,
    /// Set on a handle from [`Store::begin`]: every statement joins that transaction.
    txn: Option<std::sync::Arc<txn::Open>>,
    /// The test-only fault hook (inert unless set), shared by every clone.
    faults: txn::Faults,
    /// Turns committing at the same moment share a transaction (src/store/group.rs); one
    /// group per database, shared by every clone.
    group: std::sync::Arc<group::Group>,
    /// The professionals' held slots between turns (src/store/slot_cache.rs); one per
    /// database, shared by every clone.
    slots: std::sync::Arc<slot_cache::SlotCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// How many times a write that lost an optimistic transaction race is retried. The retry
/// re-evaluates every guard (unique index, status checks), so it never double-applies.
const RETRIES: u32 = 8;

impl Store {
    /// Connects to `url` (waiting up to 30 s for a server that is starting) and defines the
    /// schema (idempotent). Schemes: `mem://`,
    /// `surrealkv://path`, `rocksdb://path` (cargo feature `rocksdb`), `ws://` / `wss://`
    /// (`ws://user:pass@host:port`, or SURREAL_USER / SURREAL_PASS). Query parameters
    /// `ns` and `db` pick the namespace and database (default `clinicflow` / `main`).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_waiting(url, connect::START_WAIT).await
    }

    /// [`Store::connect`], waiting up to `wait` for a server that is still starting
    /// (connection refused, 503).
    pub async fn connect_waiting(url: &str, wait: Duration) -> Result<Store, StoreError> {
        let db = connect::open(url, wait).await?;
        // Parsed already by `open`: an error here cannot happen, and would mean "shared".
        let shared = connect::parse(url, None, None)
            .map(|t| t.engine == connect::Engine::Remote)
            .unwrap_or(true);
        Self::ready(db, slot_cache::SlotCache::new(shared)).await
    }

    /// The same connection on another database of the namespace (created and given the
    /// schema when new): how each clinic gets its own (docs/clinics.md). A clone of the
    /// SurrealDB client is a session of its own, so switching its database leaves this
    /// store's untouched; every query of the returned store reaches `database` only.
    pub async fn database(&self, database: &str) -> Result<Store, StoreError> {
        let tame = !database.is_empty() && database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !tame {
            return Err(StoreError::Connect(format!("`{database}` cannot name a database")));
        }
        let db = self.db.clone();
        // Servers in strict mode want the database defined first; the name is checked above.
        db.query(format!("DEFINE DATABASE IF NOT EXISTS {database}"))
            .await
            .and_then(|r| r.check())
            .map_err(|e| StoreError::Connect(e.message().to_string()))?;
        db.use_db(database.to_string())
            .await
            .map_err(|e| StoreError::Connect(e.message().to_string()))?;
        Self::ready(db, slot_cache::SlotCache::new(self.slots.shared())).await
    }

    /// A store on `db` (connected, its database chosen): the schema defined (idempotent) and
    /// the appointments past their day sealed.
    async fn ready(db: Surreal<Any>, slots: slot_cache::SlotCache) -> Result<Store, StoreError> {
        schema::define(&db).await?;
        let store = Store {
            db,
            txn: None,
            faults: txn::Faults::default(),
            group: Default::default(),
            slots: std::sync::Arc::new(slots),
        };
        store.seal_old_appointments().await?;
        Ok(store)
    }

    /// The underlying client, for callers that need a query this module does not offer.
    pub fn client(&self) -> &Surreal<Any> {
        &self.db
    }

    /// Runs `sql` with `vars` (a JSON object) bound, and fails on the first statement error.
    async fn run(&self, sql: &str, vars: serde_json::Value) -> Result<surrealdb::IndexedResults, StoreError> {
        let resp = self.send(sql, vars).await?.map_err(classify)?;
        first_error(resp)
    }

    /// Sends one query, inside this handle's transaction when it has one. The outer error
    /// is the fault hook's; the inner one the database's.
    async fn send(
        &self,
        sql: &str,
        vars: serde_json::Value,
    ) -> Result<Result<surrealdb::IndexedResults, surrealdb::Error>, StoreError> {
        self.faults.check().await?;
        Ok(match self.txn.as_ref().and_then(|open| open.tx()) {
            Some(tx) => tx.query(txn::inside(sql)).bind(vars).await,
            None => self.db.query(sql).bind(vars).await,
        })
    }

    /// Like [`Store::run`], retrying when the transaction lost a write race. Only for
    /// statements whose guards make a retry safe.
    async fn run_retry(&self, sql: &str, vars: serde_json::Value) -> Result<surrealdb::IndexedResults, StoreError> {
        let mut attempt = 0;
        loop {
            let resp = self.send(sql, vars.clone()).await?;
            let result = match resp {
                Ok(resp) => first_error_raw(resp),
                Err(e) => Err(e),
            };
            match result {
                Ok(resp) => return Ok(resp),
                // Inside a turn's transaction the whole turn is redone instead.
                Err(e) if is_txn_conflict(&e) && attempt < RETRIES && self.txn.is_none() => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(classify(e)),
            }
        }
    }
}

/// Jittered so that racing writers do not collide again in lockstep.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = u64::from(nanos % 1000);
    Duration::from_micros(u64::from(attempt) * 500 + jitter)
}

/// A commit that lost a race reports it only in its message ("Transaction conflict: …
/// This transaction can be retried"); a statement reports it as a detail.
fn is_txn_conflict(e: &surrealdb::Error) -> bool {
    matches!(e.query_details(), Some(QueryError::TransactionConflict))
        || e.message().contains("This transaction can be retried")
}

/// Maps an SDK error to ours. Unique-index violations only carry their meaning in the
/// message (kind `Internal`), so that is where we look. Messages that quote stored values
/// (index entries, record ids holding phone numbers) are replaced, since errors get logged.
fn classify(e: surrealdb::Error) -> StoreError {
    let msg = e.message().to_string();
    if is_txn_conflict(&e) {
        StoreError::Conflict("a concurrent transaction won; retry".into())
    } else if let Some(index) = violated_index(&msg) {
        if index == "appointment_slot" {
            StoreError::SlotTaken
        } else {
            StoreError::Conflict(format!("duplicate entry in unique index `{index}`"))
        }
    } else if e.is_already_exists() {
        let table = msg
            .split('`')
            .nth(1)
            .and_then(|rid| rid.split(':').next())
            .unwrap_or("record");
        StoreError::Conflict(format!("that {table} record already exists"))
    } else if e.is_thrown() && msg.contains(SLOT_TAKEN) {
        StoreError::SlotTaken
    } else if e.is_thrown() && msg.contains(ALREADY_EXISTS) {
        StoreError::Conflict("that record already exists".into())
    } else if e.is_thrown() && msg.contains(VERSION_CONFLICT) {
        StoreError::Conflict("the session was saved by someone else".into())
    } else if e.is_connection() {
        StoreError::Connect(msg)
    } else {
        StoreError::Query(msg)
    }
}

/// "Database index `appointment_slot` already contains …" → `appointment_slot`.
fn violated_index(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("Database index `")?;
    let (name, tail) = rest.split_once('`')?;
    tail.trim_start().starts_with("already contains").then_some(name)
}

/// What our transactions THROW when an optimistic version check fails.
const VERSION_CONFLICT: &str = "version_conflict";
/// What they THROW when a check before a write finds the slot booked, or the record there.
const SLOT_TAKEN: &str = "slot_already_booked";
const ALREADY_EXISTS: &str = "record_already_exists";

fn first_error(resp: surrealdb::IndexedResults) -> Result<surrealdb::IndexedResults, StoreError> {
    first_error_raw(resp).map_err(classify)
}

/// In a failed transaction every statement reports "not executed" and only one carries the
/// cause (`.check()` would return the first, useless one); pick the cause.
fn first_error_raw(mut resp: surrealdb::IndexedResults) -> Result<surrealdb::IndexedResults, surrealdb::Error> {
    let mut errors: Vec<(usize, surrealdb::Error)> = resp.take_errors().into_iter().collect();
    if errors.is_empty() {
        return Ok(resp);
    }
    errors.sort_by_key(|(i, _)| *i);
    let not_executed = |e: &surrealdb::Error| matches!(e.query_details(), Some(QueryError::NotExecuted));
    let pick = errors.iter().position(|(_, e)| !not_executed(e)).unwrap_or(0);
    Err(errors.swap_remove(pick).1)
}

/// The rows of statement `index` as JSON (a single object counts as one row, NONE as none).
fn rows(resp: &mut surrealdb::IndexedResults, index: usize) -> Result<Vec<serde_json::Value>, StoreError> {
    let value: surrealdb::types::Value = resp.take(index).map_err(classify)?;
    Ok(match value.into_json_value() {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null => Vec::new(),
        other => vec![other],
    })
}

/// Decodes the rows of statement `index` into `T`.
fn decode_rows<T: DeserializeOwned>(
    resp: &mut surrealdb::IndexedResults,
    index: usize,
    what: &'static str,
) -> Result<Vec<T>, StoreError> {
    rows(resp, index)?.into_iter().map(|row| decode(row, what)).collect()
}

fn decode<T: DeserializeOwned>(row: serde_json::Value, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_value(row).map_err(|e| StoreError::Decode {
        what,
        reason: e.to_string(),
    })
}

/// Serializes `value` into a document for CONTENT: `id` is removed (the record id says it)
/// and top-level nulls are dropped, since `option<T>` fields accept NONE but not NULL.
fn to_doc<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, StoreError> {
    let mut doc = serde_json::to_value(value).map_err(|e| StoreError::Query(e.to_string()))?;
    if let serde_json::Value::Object(map) = &mut doc {
        map.remove("id");
        map.retain(|_, v| !v.is_null());
    }
    Ok(doc)
}

/// Projection that returns the plain key as `id`.
const PLAIN_ID: &str = "*, record::id(id) AS id";

#[cfg(test)]
mod tests {
    use super::violated_index;

    /// Each clinic's store is its own database on one connection: what one stores the other
    /// never finds, and the first store keeps its own database.
    #[tokio::test]
    async fn a_database_of_its_own_sees_nothing_of_another() {
        let main = super::testing::mem().await;
        let other = main.database("harbor_dental").await.expect("second database");
        let mut session = crate::engine::session::Session::new("whatsapp:+1", "whatsapp", "+1", crate::lang::Lang::Es);
        session.version = 1;
        other.save_session(&session).await.expect("saved");
        assert!(other.load_session("whatsapp:+1").await.expect("read").is_some());
        assert!(main.load_session("whatsapp:+1").await.expect("read").is_none());
        assert!(main.database("bad-name").await.is_err());
    }

    #[test]
    fn index_violations_are_recognised_from_the_message() {
        let msg = "Database index `appointment_slot` already contains 'Dr. X|2025-06-10|09:00', \
                   with record `appointment:abc`";
        assert_eq!(violated_index(msg), Some("appointment_slot"));
        assert_eq!(violated_index("Found field 'x', but no such field exists"), None);
        assert_eq!(violated_index("Database index `x` is corrupt"), None);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Store;

    pub async fn mem() -> Store {
        match Store::connect("mem://").await {
            Ok(store) => store,
            Err(e) => panic!("mem:// store: {e}"),
        }
    }
}
