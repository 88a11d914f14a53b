//! Conversation state, one record per conversation (`session:<conversation id>`).
//!
//! Optimistic concurrency contract: the caller increments `session.version` before saving.
//! A save succeeds only if the stored version is exactly `session.version - 1` (no record
//! counts as version 0, so the first save carries version 1). Anything else, including a
//! concurrent save that won the race, is `StoreError::Conflict`: reload and redo the turn.

use jiff::Timestamp;
use serde_json::json;

use super::time::{fmt_instant, utc_day};
use super::{Store, StoreError, VERSION_CONFLICT, decode, rows, to_doc};
use crate::engine::session::Session;

/// An expression that writes the session `$session_id{suffix}` as `$session_doc{suffix}` only
/// if its stored version is still `$expected{suffix}`, and says whether it did: `save_session`
/// throws on false, the turn commit (`group.rs`) writes its log only on true. The check is
/// the UPSERT's own WHERE, so the record is read once (a separate `LET $rec.version` read and
/// decoded the whole document a second time, on every turn). A missing record has version 0.
pub(super) fn upsert_if_current(suffix: &str) -> String {
    format!(
        "(array::len(UPSERT type::record('session', $session_id{suffix}) CONTENT $session_doc{suffix} \
         WHERE (version ?? 0) == $expected{suffix} RETURN VALUE true) > 0)"
    )
}

/// The variables `upsert_if_current("")` needs (the turn commit suffixes them per turn).
pub(super) fn save_vars(session: &Session) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    if session.version == 0 {
        return Err(StoreError::Query(
            "increment session.version before saving (the first save carries version 1)".into(),
        ));
    }
    let mut doc = to_doc(session)?;
    if let Some(map) = doc.as_object_mut() {
        let at = fmt_instant(Timestamp::now());
        // The indexed field (schema.rs): the UTC day, which changes once a day, not every turn.
        map.insert("updated_day".into(), json!(utc_day(&at)));
        map.insert("updated_at".into(), json!(at));
    }
    let mut vars = serde_json::Map::new();
    vars.insert("session_id".into(), json!(session.id));
    vars.insert("expected".into(), json!(session.version - 1));
    vars.insert("session_doc".into(), doc);
    Ok(vars)
}

impl Store {
    pub async fn load_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut resp = self
            .run("SELECT * FROM ONLY type::record('session', $id)", json!({ "id": id }))
            .await?;
        let Some(mut row) = rows(&mut resp, 0)?.into_iter().next() else {
            return Ok(None);
        };
        // The record id is the conversation id; the body does not repeat it.
        if let Some(map) = row.as_object_mut() {
            map.insert("id".into(), json!(id));
        }
        decode(row, "session").map(Some)
    }

    /// Saves under the optimistic contract described in the module docs.
    pub async fn save_session(&self, session: &Session) -> Result<(), StoreError> {
        let sql = format!(
            "BEGIN TRANSACTION; IF !{} {{ THROW '{VERSION_CONFLICT}' }}; COMMIT TRANSACTION;",
            upsert_if_current("")
        );
        self.run(&sql, serde_json::Value::Object(save_vars(session)?))
            .await
            .map(|_| ())
    }

    /// Deletes the conversation state (its turn log stays). Returns whether it existed.
    pub async fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut resp = self
            .run("DELETE type::record('session', $id) RETURN BEFORE", json!({ "id": id }))
            .await?;
        Ok(!rows(&mut resp, 0)?.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::*;
    use crate::engine::session::{Frame, Wait};
    use crate::lang::Lang;

    fn session(id: &str) -> Session {
        let mut s = Session::new(id, "whatsapp", "whatsapp:+5491100000000", Lang::Es);
        s.stack.push(Frame {
            flow: "book_appointment".into(),
            state: "details".into(),
            slots: [("specialty".to_string(), json!("Cardiología"))].into_iter().collect(),
            wait: Wait::Slot("date".into()),
            result: json!({ "available": false, "alternatives": [] }),
        });
        s
    }

    #[tokio::test]
    async fn round_trip_with_an_id_that_needs_escaping() {
        let store = mem().await;
        let mut s = session("whatsapp:+54 9 11-0000");
        assert_eq!(store.load_session(&s.id).await.unwrap(), None);
        s.version = 1;
        store.save_session(&s).await.unwrap();
        assert_eq!(store.load_session(&s.id).await.unwrap(), Some(s.clone()));
        assert!(store.delete_session(&s.id).await.unwrap());
        assert!(!store.delete_session(&s.id).await.unwrap());
        assert_eq!(store.load_session(&s.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn stale_versions_are_refused() {
        let store = mem().await;
        let mut s = session("c1");
        s.version = 1;
        store.save_session(&s).await.unwrap();

        // Two turns loaded version 1; the first to save wins.
        let mut a = s.clone();
        let mut b = s.clone();
        a.version = 2;
        a.turns = 1;
        b.version = 2;
        b.turns = 7;
        store.save_session(&a).await.unwrap();
        let err = store.save_session(&b).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert_eq!(store.load_session("c1").await.unwrap().unwrap().turns, 1);

        // Skipping a version and re-creating with version 1 are refused too.
        a.version = 4;
        assert!(matches!(store.save_session(&a).await, Err(StoreError::Conflict(_))));
        s.version = 1;
        assert!(matches!(store.save_session(&s).await, Err(StoreError::Conflict(_))));
        s.version = 0;
        assert!(matches!(store.save_session(&s).await, Err(StoreError::Query(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_saves_of_one_version_let_exactly_one_through() {
        let store = mem().await;
        let mut s = session("c2");
        s.version = 1;
        store.save_session(&s).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            let store = store.clone();
            let mut mine = s.clone();
            mine.version = 2;
            mine.turns = i + 1;
            tasks.push(tokio::spawn(
                async move { store.save_session(&mine).await.map(|_| i + 1) },
            ));
        }
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(turns) => winners.push(turns),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let stored = store.load_session("c2").await.unwrap().unwrap();
        assert_eq!((stored.version, stored.turns), (2, winners[0]));
    }
}
