//! The schema, defined at every start.
//!
//! `IF NOT EXISTS` makes start-up idempotent and safe when several replicas start at once;
//! the flip side is that changing an existing definition needs an explicit migration.
//! Defining every table up front also matters because SurrealDB refuses a SELECT on a table
//! that was never defined (first start, empty database).
//!
//! Conventions: instants are fixed-width UTC strings (see `store::time`), dates
//! "YYYY-MM-DD" and times "HH:MM", so that ordering and range checks are string
//! comparisons. Optional fields are `option<…>` and written as NONE, never NULL.

use surrealdb::Surreal;
use surrealdb::engine::any::Any;

use super::{StoreError, first_error};

/// The whole schema. Sessions are SCHEMALESS because their body is the engine's `Session`,
/// which evolves with the engine, and turns because their only writer is a typed record and
/// field checks were a large part of a turn's commit; every other table is SCHEMAFULL so that
/// a typo in a field name is an error instead of silently stored data.
pub(crate) const SCHEMA: &str = r#"
DEFINE TABLE IF NOT EXISTS session SCHEMALESS;
DEFINE FIELD IF NOT EXISTS version ON session TYPE int;
DEFINE FIELD IF NOT EXISTS channel ON session TYPE string;
DEFINE FIELD IF NOT EXISTS user ON session TYPE string;
DEFINE FIELD IF NOT EXISTS updated_at ON session TYPE string;
-- Sessions are indexed by the UTC day of their last save, not its instant: SurrealDB skips an
-- index whose value did not change, and an instant changes on every turn (two index entries
-- rewritten per turn, about a tenth of its cost). Databases made before this change get the
-- day once, while their old index still exists, and then lose the old indexes.
DEFINE FIELD IF NOT EXISTS updated_day ON session TYPE option<string>;
IF (INFO FOR TABLE session).indexes.session_updated != NONE {
    UPDATE session SET updated_day = string::slice(updated_at, 0, 10) WHERE updated_day = NONE RETURN NONE;
};
REMOVE INDEX IF EXISTS session_updated ON session;
REMOVE INDEX IF EXISTS session_channel ON session;
DEFINE INDEX IF NOT EXISTS session_day ON session FIELDS updated_day;
-- The console's conversation search: by channel, by the verified patient (document hash).
DEFINE INDEX IF NOT EXISTS session_by_channel ON session FIELDS channel;
DEFINE INDEX IF NOT EXISTS session_patient ON session FIELDS patient;

-- The turn log is SCHEMALESS, unlike the other tables: it is written only from the typed
-- `TurnRecord` (src/store/turns.rs), so a misspelt field cannot reach it, and checking its
-- fourteen field types cost about a sixth of every turn's commit (docs/performance.md).
-- Databases made before this change had those field definitions: they are removed here,
-- which keeps every row (idempotent, like the rest of the schema).
DEFINE TABLE OVERWRITE turn SCHEMALESS;
REMOVE FIELD IF EXISTS session ON turn;
REMOVE FIELD IF EXISTS seq ON turn;
REMOVE FIELD IF EXISTS at ON turn;
REMOVE FIELD IF EXISTS input ON turn;
REMOVE FIELD IF EXISTS replies ON turn;
REMOVE FIELD IF EXISTS intent ON turn;
REMOVE FIELD IF EXISTS nlu_source ON turn;
REMOVE FIELD IF EXISTS state_before ON turn;
REMOVE FIELD IF EXISTS state_after ON turn;
REMOVE FIELD IF EXISTS latency_us ON turn;
REMOVE FIELD IF EXISTS llm_tokens ON turn;
REMOVE FIELD IF EXISTS llm_calls ON turn;
REMOVE FIELD IF EXISTS effects ON turn;
REMOVE FIELD IF EXISTS problems ON turn;
DEFINE INDEX IF NOT EXISTS turn_session_seq ON turn FIELDS session, seq UNIQUE;
-- The retention sweep deletes by age.
DEFINE INDEX IF NOT EXISTS turn_at ON turn FIELDS at;
-- The dashboard counts first turns on `turn_at` (it reads a day's turns for the LLM figures
-- anyway); an index of its own was one more entry written on every turn.
REMOVE INDEX IF EXISTS turn_seq_at ON turn;

DEFINE TABLE IF NOT EXISTS appointment SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS specialty ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS professional ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS date ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS time ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS starts_at ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS minutes ON appointment TYPE int;
-- patient_name, document and user are encrypted (store/sealed.rs); the document is found
-- by its keyed hash.
DEFINE FIELD IF NOT EXISTS patient_name ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS document ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS document_hash ON appointment TYPE option<string>;
DEFINE FIELD IF NOT EXISTS coverage ON appointment TYPE option<string>;
DEFINE FIELD IF NOT EXISTS email ON appointment TYPE option<string>;
-- OVERWRITE: databases made before attended / no_show had the shorter list.
DEFINE FIELD OVERWRITE status ON appointment TYPE string ASSERT $value IN ['booked', 'cancelled', 'attended', 'no_show'];
-- When staff marked it attended or no-show in the agenda, and who (a staff name).
DEFINE FIELD IF NOT EXISTS marked_at ON appointment TYPE option<string>;
DEFINE FIELD IF NOT EXISTS marked_by ON appointment TYPE option<string>;
DEFINE FIELD IF NOT EXISTS channel ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS user ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS session ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON appointment TYPE string;
DEFINE FIELD IF NOT EXISTS cancelled_at ON appointment TYPE option<string>;
-- Set when the patient confirms they will come (answering a reminder).
DEFINE FIELD IF NOT EXISTS confirmed_at ON appointment TYPE option<string>;
-- "professional|date|time" while booked, "cancelled:<id>" once cancelled: the UNIQUE index
-- below is what makes a double booking impossible, whatever the number of replicas.
DEFINE FIELD IF NOT EXISTS slot_key ON appointment TYPE string;
DEFINE INDEX IF NOT EXISTS appointment_slot ON appointment FIELDS slot_key UNIQUE;
DEFINE INDEX IF NOT EXISTS appointment_document_hash ON appointment FIELDS document_hash, starts_at;
DEFINE INDEX IF NOT EXISTS appointment_date ON appointment FIELDS date, professional;
DEFINE INDEX IF NOT EXISTS appointment_session ON appointment FIELDS session;
-- The console's dashboard counts by day (src/store/stats.rs).
DEFINE INDEX IF NOT EXISTS appointment_created ON appointment FIELDS created_at;
DEFINE INDEX IF NOT EXISTS appointment_cancelled ON appointment FIELDS cancelled_at;

DEFINE TABLE IF NOT EXISTS reminder SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS appointment ON reminder TYPE string;
DEFINE FIELD IF NOT EXISTS session ON reminder TYPE string;
DEFINE FIELD IF NOT EXISTS channel ON reminder TYPE string;
DEFINE FIELD IF NOT EXISTS user ON reminder TYPE string;
DEFINE FIELD IF NOT EXISTS kind ON reminder TYPE string;
DEFINE FIELD IF NOT EXISTS offset_minutes ON reminder TYPE int;
DEFINE FIELD IF NOT EXISTS due_at ON reminder TYPE string;
DEFINE FIELD IF NOT EXISTS status ON reminder TYPE string ASSERT $value IN ['pending', 'sent', 'cancelled', 'failed'];
DEFINE FIELD IF NOT EXISTS lease_until ON reminder TYPE option<string>;
DEFINE FIELD IF NOT EXISTS lease_owner ON reminder TYPE option<string>;
DEFINE FIELD IF NOT EXISTS lease_token ON reminder TYPE int DEFAULT 0;
-- The outbox row that delivers it, once queued (src/reminders/): not claimed again.
DEFINE FIELD IF NOT EXISTS outbox ON reminder TYPE option<string>;
DEFINE FIELD IF NOT EXISTS attempts ON reminder TYPE int DEFAULT 0;
DEFINE FIELD IF NOT EXISTS last_error ON reminder TYPE option<string>;
DEFINE FIELD IF NOT EXISTS created_at ON reminder TYPE string;
DEFINE FIELD IF NOT EXISTS sent_at ON reminder TYPE option<string>;
DEFINE INDEX IF NOT EXISTS reminder_due ON reminder FIELDS status, due_at;
DEFINE INDEX IF NOT EXISTS reminder_appointment ON reminder FIELDS appointment, kind UNIQUE;
DEFINE INDEX IF NOT EXISTS reminder_sent ON reminder FIELDS sent_at;

DEFINE TABLE IF NOT EXISTS escalation SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS session ON escalation TYPE string;
DEFINE FIELD IF NOT EXISTS channel ON escalation TYPE string;
DEFINE FIELD IF NOT EXISTS user ON escalation TYPE string;
DEFINE FIELD IF NOT EXISTS reason ON escalation TYPE option<string>;
DEFINE FIELD IF NOT EXISTS status ON escalation TYPE string ASSERT $value IN ['open', 'resolved'];
DEFINE FIELD IF NOT EXISTS created_at ON escalation TYPE string;
DEFINE FIELD IF NOT EXISTS resolved_at ON escalation TYPE option<string>;
DEFINE FIELD IF NOT EXISTS resolved_by ON escalation TYPE option<string>;
DEFINE FIELD IF NOT EXISTS note ON escalation TYPE option<string>;
DEFINE FIELD IF NOT EXISTS transcript ON escalation TYPE array<object> FLEXIBLE;
-- Who of the staff is answering it (the console's take / release).
DEFINE FIELD IF NOT EXISTS taken_by ON escalation TYPE option<string>;
DEFINE INDEX IF NOT EXISTS escalation_status ON escalation FIELDS status, created_at;
DEFINE INDEX IF NOT EXISTS escalation_session ON escalation FIELDS session;
DEFINE INDEX IF NOT EXISTS escalation_created ON escalation FIELDS created_at;

-- The console's logins (src/store/staff_sessions.rs): sessions keyed by a hash of the
-- cookie, failed-login counters and locks keyed by the login name.
DEFINE TABLE IF NOT EXISTS staff_session SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS name ON staff_session TYPE string;
DEFINE FIELD IF NOT EXISTS role ON staff_session TYPE string;
DEFINE FIELD IF NOT EXISTS csrf ON staff_session TYPE string;
DEFINE FIELD IF NOT EXISTS seen_at ON staff_session TYPE string;
DEFINE INDEX IF NOT EXISTS staff_session_seen ON staff_session FIELDS seen_at;
DEFINE TABLE IF NOT EXISTS login_failure SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS count ON login_failure TYPE int DEFAULT 0;
DEFINE FIELD IF NOT EXISTS locked_until ON login_failure TYPE option<string>;

DEFINE TABLE IF NOT EXISTS processed SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS session ON processed TYPE string;
DEFINE FIELD IF NOT EXISTS reply ON processed TYPE any;
DEFINE FIELD IF NOT EXISTS at ON processed TYPE string;
DEFINE FIELD IF NOT EXISTS request ON processed TYPE option<string>;

-- Outbound messages sent through a channel's API, keyed by its message id (Twilio MessageSid).
DEFINE TABLE IF NOT EXISTS message SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS session ON message TYPE option<string>;
DEFINE FIELD IF NOT EXISTS channel ON message TYPE option<string>;
DEFINE FIELD IF NOT EXISTS kind ON message TYPE option<string>;
DEFINE FIELD IF NOT EXISTS status ON message TYPE string;
DEFINE FIELD IF NOT EXISTS rank ON message TYPE int;
DEFINE FIELD IF NOT EXISTS error_code ON message TYPE option<string>;
DEFINE FIELD IF NOT EXISTS created_at ON message TYPE string;
DEFINE FIELD IF NOT EXISTS updated_at ON message TYPE string;
DEFINE INDEX IF NOT EXISTS message_session ON message FIELDS session, created_at;

-- Messages to send outside a direct reply, written with the turn that sends them
-- (src/store/outbox.rs); `lease_token` fences outcomes to the current claim.
DEFINE TABLE IF NOT EXISTS outbox SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS session ON outbox TYPE string;
DEFINE FIELD IF NOT EXISTS message ON outbox TYPE object FLEXIBLE;
DEFINE FIELD IF NOT EXISTS status ON outbox TYPE string ASSERT $value IN ['pending', 'sent', 'failed', 'cancelled'];
-- For a reminder: its id (outcomes update it in the same statement) and its appointment's
-- start (no retry after it).
DEFINE FIELD IF NOT EXISTS reminder ON outbox TYPE option<string>;
DEFINE FIELD IF NOT EXISTS deadline ON outbox TYPE option<string>;
DEFINE FIELD IF NOT EXISTS next_at ON outbox TYPE string;
DEFINE FIELD IF NOT EXISTS lease_until ON outbox TYPE option<string>;
DEFINE FIELD IF NOT EXISTS lease_owner ON outbox TYPE option<string>;
DEFINE FIELD IF NOT EXISTS lease_token ON outbox TYPE int DEFAULT 0;
DEFINE FIELD IF NOT EXISTS attempts ON outbox TYPE int DEFAULT 0;
DEFINE FIELD IF NOT EXISTS last_error ON outbox TYPE option<string>;
DEFINE FIELD IF NOT EXISTS provider_id ON outbox TYPE option<string>;
DEFINE FIELD IF NOT EXISTS created_at ON outbox TYPE string;
DEFINE FIELD IF NOT EXISTS sent_at ON outbox TYPE option<string>;
DEFINE INDEX IF NOT EXISTS outbox_due ON outbox FIELDS status, next_at;
DEFINE INDEX IF NOT EXISTS outbox_session ON outbox FIELDS session, created_at;
DEFINE INDEX IF NOT EXISTS outbox_reminder ON outbox FIELDS reminder;

-- One-time codes and failed attempts per patient document (src/store/verifications.rs). The
-- record key is the document's keyed hash; no document number or code is ever stored here.
DEFINE TABLE IF NOT EXISTS verification SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS codes ON verification TYPE array<object> FLEXIBLE;
DEFINE FIELD IF NOT EXISTS failures ON verification TYPE int;
DEFINE FIELD IF NOT EXISTS locked_until ON verification TYPE option<string>;
DEFINE FIELD IF NOT EXISTS updated_at ON verification TYPE string;

-- Who exported or erased whose data (src/store/patients.rs); `subject` is the document's
-- keyed hash, never the document.
DEFINE TABLE IF NOT EXISTS audit SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS at ON audit TYPE string;
DEFINE FIELD IF NOT EXISTS action ON audit TYPE string ASSERT $value IN ['export', 'erase'];
DEFINE FIELD IF NOT EXISTS subject ON audit TYPE string;
DEFINE FIELD IF NOT EXISTS actor ON audit TYPE string;
DEFINE FIELD IF NOT EXISTS counts ON audit TYPE object FLEXIBLE;
DEFINE INDEX IF NOT EXISTS audit_at ON audit FIELDS at;

-- External calendar events of appointments, keyed by the appointment id, and each
-- calendar's change feed position (src/store/calendar_events.rs). Ids only.
DEFINE TABLE IF NOT EXISTS calendar_event SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS appointment ON calendar_event TYPE string;
DEFINE FIELD IF NOT EXISTS provider ON calendar_event TYPE string;
DEFINE FIELD IF NOT EXISTS calendar ON calendar_event TYPE string;
DEFINE FIELD IF NOT EXISTS event_id ON calendar_event TYPE string;
-- Set when the appointment was cancelled but its calendar could not be told: retried.
DEFINE FIELD IF NOT EXISTS cancel_pending ON calendar_event TYPE option<bool>;
DEFINE INDEX IF NOT EXISTS calendar_event_id ON calendar_event FIELDS event_id;
DEFINE TABLE IF NOT EXISTS calendar_sync SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS token ON calendar_sync TYPE string;

-- Versions of the clinic's files saved from the console's editor (src/store/file_versions.rs).
DEFINE TABLE IF NOT EXISTS file_version SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS path ON file_version TYPE string;
DEFINE FIELD IF NOT EXISTS n ON file_version TYPE int;
DEFINE FIELD IF NOT EXISTS content ON file_version TYPE string;
DEFINE FIELD IF NOT EXISTS hash ON file_version TYPE string;
DEFINE FIELD IF NOT EXISTS author ON file_version TYPE option<string>;
DEFINE FIELD IF NOT EXISTS at ON file_version TYPE string;
DEFINE FIELD IF NOT EXISTS note ON file_version TYPE option<string>;
DEFINE FIELD IF NOT EXISTS kind ON file_version TYPE string ASSERT $value IN ['found', 'edit', 'rollback'];
DEFINE FIELD IF NOT EXISTS rollback_of ON file_version TYPE option<int>;
DEFINE INDEX IF NOT EXISTS file_version_path_n ON file_version FIELDS path, n UNIQUE;
"#;

pub(crate) async fn define(db: &Surreal<Any>) -> Result<(), StoreError> {
    // Replicas starting together race on the catalog; a lost race is retried.
    let mut attempt = 0;
    loop {
        let result = match db.query(SCHEMA).await {
            Ok(resp) => first_error(resp).map(|_| ()),
            Err(e) => Err(super::classify(e)),
        };
        match result {
            Err(StoreError::Conflict(_)) if attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(super::backoff(attempt)).await;
            }
            Err(e) => return Err(StoreError::Query(format!("defining the schema: {e}"))),
            Ok(()) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use serde_json::json;

    /// A database made while the turn log was SCHEMAFULL: starting again drops the field
    /// checks (an undeclared field is then accepted) and keeps every turn and index.
    #[tokio::test]
    async fn an_old_schemafull_turn_log_keeps_its_turns_and_loses_its_checks() {
        let store = super::super::testing::mem().await;
        let old = "DEFINE TABLE OVERWRITE turn SCHEMAFULL; \
                   DEFINE FIELD session ON turn TYPE string; DEFINE FIELD seq ON turn TYPE int; \
                   DEFINE FIELD at ON turn TYPE string;";
        store.run(old, json!({})).await.unwrap();
        store
            .run(
                "CREATE turn CONTENT {session: 's1', seq: 1, at: '2026-12-03T10:00:00.000000Z'}",
                json!({}),
            )
            .await
            .unwrap();
        assert!(
            store
                .run(
                    "CREATE turn CONTENT {session: 's1', seq: 2, at: 'x', extra: 1}",
                    json!({})
                )
                .await
                .is_err(),
            "the old table refuses an undeclared field"
        );
        super::define(&store.db).await.unwrap();
        let mut resp = store.run("INFO FOR TABLE turn", json!({})).await.unwrap();
        let info = super::super::rows(&mut resp, 0).unwrap();
        assert_eq!(info[0]["fields"], json!({}), "{info:?}");
        assert_eq!(info[0]["indexes"].as_object().map(|i| i.len()), Some(2), "{info:?}");
        store
            .run(
                "CREATE turn CONTENT {session: 's1', seq: 2, at: 'x', extra: 1}",
                json!({}),
            )
            .await
            .unwrap();
        let mut resp = store
            .run("SELECT seq FROM turn WHERE session = 's1' ORDER BY seq", json!({}))
            .await
            .unwrap();
        assert_eq!(
            super::super::rows(&mut resp, 0).unwrap(),
            vec![json!({"seq": 1}), json!({"seq": 2})]
        );
        // The unique (session, seq) index still holds.
        assert!(
            store
                .run("CREATE turn CONTENT {session: 's1', seq: 2, at: 'y'}", json!({}))
                .await
                .is_err()
        );
    }

    /// A database made while sessions were indexed by the instant of their last save: starting
    /// again gives its sessions the day (the dashboard's drop-off finds them), drops the two
    /// indexes that were rewritten on every turn, and a second start changes nothing.
    #[tokio::test]
    async fn old_sessions_get_their_day_and_lose_the_per_turn_indexes() {
        let store = super::super::testing::mem().await;
        let old = "REMOVE INDEX session_day ON session; REMOVE INDEX session_by_channel ON session; \
                   DEFINE INDEX session_updated ON session FIELDS updated_at; \
                   DEFINE INDEX session_channel ON session FIELDS channel, updated_at; \
                   CREATE session:old CONTENT {version: 3, channel: 'api', user: 'u', \
                       updated_at: '2026-11-20T10:00:00.000000Z', stack: []};";
        store.run(old, json!({})).await.unwrap();
        for _ in 0..2 {
            super::define(&store.db).await.unwrap();
            let mut resp = store
                .run(
                    "SELECT VALUE updated_day FROM session WHERE updated_day >= '2026-11-20'",
                    json!({}),
                )
                .await
                .unwrap();
            assert_eq!(super::super::rows(&mut resp, 0).unwrap(), vec![json!("2026-11-20")]);
            let mut resp = store.run("INFO FOR TABLE session", json!({})).await.unwrap();
            let info = super::super::rows(&mut resp, 0).unwrap();
            let mut names: Vec<&String> = info[0]["indexes"].as_object().unwrap().keys().collect();
            names.sort();
            assert_eq!(
                names,
                ["session_by_channel", "session_day", "session_patient"],
                "{info:?}"
            );
        }
    }

    /// The embedded file engine is the production default and stricter than mem://.
    #[tokio::test]
    async fn schema_works_on_surrealkv_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("surrealkv://{}/nested/db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        // Every table is queryable on a fresh database.
        for table in [
            "session",
            "turn",
            "appointment",
            "reminder",
            "escalation",
            "processed",
            "message",
            "verification",
            "audit",
            "outbox",
        ] {
            let sql = format!("SELECT * FROM {table}");
            let mut resp = store.run(&sql, serde_json::json!({})).await.unwrap();
            assert!(super::super::rows(&mut resp, 0).unwrap().is_empty(), "{table}");
        }
        let mut session = crate::engine::session::Session::new("s1", "cli", "u", crate::lang::Lang::Es);
        session.version = 1;
        store.save_session(&session).await.unwrap();
        drop(store);
        // Defining again is a no-op and the data is still there. The file lock of the
        // dropped handle is released in the background, hence the wait.
        let mut reopened = Store::connect(&url).await;
        for _ in 0..100 {
            match &reopened {
                Err(e) if e.to_string().contains("locked") => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    reopened = Store::connect(&url).await;
                }
                _ => break,
            }
        }
        let store = reopened.unwrap();
        let loaded = store.load_session("s1").await.unwrap();
        assert_eq!(loaded, Some(session));
    }
}
