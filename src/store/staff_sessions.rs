//! The console's logins, shared by every replica: staff sessions (keyed by a SHA-256 of the
//! cookie's token, so the database never holds a usable cookie) and failed-login counters
//! with their lockout. In the database rather than in memory so that a restart does not log
//! everybody out and a round-robin load balancer in front of several replicas just works.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::time::fmt_instant;
use super::{Store, StoreError, decode_rows, rows};

/// A logged-in member of staff, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffSession {
    pub name: String,
    /// "receptionist" or "admin" (the console's `Role`).
    pub role: String,
    pub csrf: String,
}

/// The record key of a session token.
fn key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Stores a new session under `token`; also drops sessions idle since before `idle_before`.
    pub async fn open_staff_session(
        &self,
        token: &str,
        session: &StaffSession,
        now: Timestamp,
        idle_before: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(
            "DELETE staff_session WHERE seen_at < $cutoff;
             CREATE type::record('staff_session', $id) CONTENT $doc RETURN NONE;",
            json!({
                "id": key(token),
                "cutoff": fmt_instant(idle_before),
                "doc": { "name": session.name, "role": session.role, "csrf": session.csrf, "seen_at": fmt_instant(now) },
            }),
        )
        .await
        .map(|_| ())
    }

    /// The session of `token` if it was used since `idle_before`, marked used at `now`.
    pub async fn staff_session(
        &self,
        token: &str,
        now: Timestamp,
        idle_before: Timestamp,
    ) -> Result<Option<StaffSession>, StoreError> {
        let mut resp = self
            .run(
                "UPDATE type::record('staff_session', $id) SET seen_at = $now WHERE seen_at >= $cutoff
                     RETURN name, role, csrf",
                json!({ "id": key(token), "now": fmt_instant(now), "cutoff": fmt_instant(idle_before) }),
            )
            .await?;
        Ok(decode_rows(&mut resp, 0, "staff session")?.into_iter().next())
    }

    pub async fn close_staff_session(&self, token: &str) -> Result<(), StoreError> {
        self.run("DELETE type::record('staff_session', $id)", json!({ "id": key(token) }))
            .await
            .map(|_| ())
    }

    /// Whether `name` is locked at `now`.
    pub async fn login_locked(&self, name: &str, now: Timestamp) -> Result<bool, StoreError> {
        let mut resp = self
            .run(
                "SELECT VALUE locked_until FROM ONLY type::record('login_failure', $name)",
                json!({ "name": name }),
            )
            .await?;
        let until = rows(&mut resp, 0)?.into_iter().next();
        Ok(until.and_then(|u| u.as_str().map(|u| u > fmt_instant(now).as_str())) == Some(true))
    }

    /// Counts a wrong password for `name` at `now` (a lock that has run out starts the count
    /// over); the `max`-th in a row locks the name until `now + lock`. One transaction, so
    /// two replicas counting at once do not lose a failure.
    pub async fn login_failed(
        &self,
        name: &str,
        now: Timestamp,
        max: u32,
        lock: SignedDuration,
    ) -> Result<(), StoreError> {
        let until = now
            .checked_add(lock)
            .map_err(|e| StoreError::Query(format!("lock end: {e}")))?;
        let sql = "BEGIN TRANSACTION;
             LET $rec = type::record('login_failure', $name);
             LET $old = (SELECT count, locked_until FROM ONLY $rec);
             LET $expired = $old.locked_until != NONE AND $old.locked_until <= $now;
             LET $count = IF $expired { 1 } ELSE { ($old.count ?? 0) + 1 };
             UPSERT $rec SET count = $count,
                 locked_until = IF $count >= $max { $until } ELSE IF $expired { NONE } ELSE { $old.locked_until }
                 RETURN NONE;
             COMMIT TRANSACTION;";
        self.run_retry(
            sql,
            json!({ "name": name, "now": fmt_instant(now), "max": max, "until": fmt_instant(until) }),
        )
        .await
        .map(|_| ())
    }

    /// Forgets the failures of `name` (it logged in).
    pub async fn login_cleared(&self, name: &str) -> Result<(), StoreError> {
        self.run("DELETE type::record('login_failure', $name)", json!({ "name": name }))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_764_000_000 + s).unwrap()
    }

    #[tokio::test]
    async fn sessions_are_found_by_token_until_idle_and_closed() {
        let store = mem().await;
        let s = StaffSession {
            name: "ana".into(),
            role: "admin".into(),
            csrf: "c".into(),
        };
        store.open_staff_session("tok", &s, at(0), at(-10)).await.unwrap();
        assert_eq!(
            store.staff_session("tok", at(5), at(-5)).await.unwrap(),
            Some(s.clone())
        );
        assert_eq!(store.staff_session("other", at(5), at(-5)).await.unwrap(), None);
        // Used at 5; idle since then until 100 with a cutoff after 5: gone.
        assert_eq!(store.staff_session("tok", at(100), at(6)).await.unwrap(), None);
        store.open_staff_session("tok2", &s, at(0), at(-10)).await.unwrap();
        store.close_staff_session("tok2").await.unwrap();
        assert_eq!(store.staff_session("tok2", at(1), at(-10)).await.unwrap(), None);
        // The token itself is not stored.
        let mut resp = store.run("SELECT * FROM staff_session", json!({})).await.unwrap();
        let all = format!("{:?}", rows(&mut resp, 0).unwrap());
        assert!(!all.contains("\"tok\""), "{all}");
    }

    #[tokio::test]
    async fn the_fifth_failure_locks_until_the_lock_runs_out() {
        let store = mem().await;
        let lock = SignedDuration::from_mins(15);
        for i in 0..4 {
            store.login_failed("ana", at(i), 5, lock).await.unwrap();
            assert!(
                !store.login_locked("ana", at(i)).await.unwrap(),
                "locked after {}",
                i + 1
            );
        }
        store.login_failed("ana", at(4), 5, lock).await.unwrap();
        assert!(store.login_locked("ana", at(5)).await.unwrap());
        assert!(!store.login_locked("bea", at(5)).await.unwrap());
        // After the lock, one more failure starts a new count.
        let later = at(4 + 15 * 60 + 1);
        assert!(!store.login_locked("ana", later).await.unwrap());
        store.login_failed("ana", later, 5, lock).await.unwrap();
        assert!(!store.login_locked("ana", later).await.unwrap());
        store.login_cleared("ana").await.unwrap();
        assert!(!store.login_locked("ana", later).await.unwrap());
    }
}
