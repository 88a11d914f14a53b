//! The outbox: messages clinicflow sends outside a direct reply (one-time codes, staff
//! replies, late replies), written in the same transaction as the turn that decided to send
//! them and delivered afterwards by whoever holds the row's lease (the service right after
//! the commit, else the outbox worker of any replica).
//!
//! The lease protocol is the reminders' (src/store/reminders.rs) plus a fencing token: every
//! claim increments `lease_token`, and the outcome is recorded only by the claim that holds
//! the current token, so a sender whose lease expired (and whose row another replica claimed
//! since) cannot mark it sent or failed. The channel's message id is recorded with `sent`.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::time::fmt_instant;
use super::{PLAIN_ID, Store, StoreError, decode_rows, rows};
use crate::outbound::Outbound;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Failed,
}

/// One message waiting to go out, or gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: String,
    /// Conversation the message belongs to.
    pub session: String,
    pub message: Outbound,
    pub status: OutboxStatus,
    /// When it may be (re)tried.
    #[serde(with = "super::time::instant")]
    pub next_at: Timestamp,
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    /// Incremented by every claim: the fence of [`Store::outbox_sent`] and friends.
    #[serde(default)]
    pub lease_token: u64,
    /// Deliveries tried.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The channel's id for the message (Twilio MessageSid), once sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    #[serde(with = "super::time::instant")]
    pub created_at: Timestamp,
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
}

/// Pending, due, and not leased by anyone.
const CLAIMABLE: &str = "status = 'pending' AND next_at <= $now AND (!lease_until OR lease_until <= $now)";

impl Store {
    /// Queues `messages` under ids derived from `key` (conversation + turn), so a turn that
    /// is written twice cannot queue its messages twice. Runs in the caller's transaction
    /// when the handle has one. Returns the row ids.
    pub async fn enqueue(&self, key: &str, messages: &[Outbound], now: Timestamp) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for (i, msg) in messages.iter().enumerate() {
            let id = format!("{key}#{i}");
            let doc = json!({
                "session": msg.session,
                "message": msg,
                "status": "pending",
                "next_at": fmt_instant(now),
                "lease_token": 0,
                "attempts": 0,
                "created_at": fmt_instant(now),
            });
            self.run(
                "CREATE type::record('outbox', $id) CONTENT $doc RETURN NONE",
                json!({ "id": id, "doc": doc }),
            )
            .await?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Leases up to `limit` due rows to `owner` until `now + lease` (oldest first); or, with
    /// `only`, those rows if they are claimable.
    pub async fn claim_outbox(
        &self,
        now: Timestamp,
        lease: SignedDuration,
        owner: &str,
        limit: usize,
        only: Option<&[String]>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let until = now
            .checked_add(lease)
            .map_err(|e| StoreError::Query(format!("lease end: {e}")))?;
        let pick = match only {
            Some(_) => "LET $ids = $only.map(|$k| type::record('outbox', $k));",
            None => {
                "LET $ids = (SELECT id, created_at FROM outbox WHERE status = 'pending' AND next_at <= $now \
                     ORDER BY created_at ASC LIMIT $limit).id;"
            }
        };
        let sql = format!(
            "BEGIN TRANSACTION;
             {pick}
             UPDATE $ids SET lease_until = $until, lease_owner = $owner, lease_token += 1
                 WHERE {CLAIMABLE} RETURN {PLAIN_ID};
             COMMIT TRANSACTION;"
        );
        let vars = json!({
            "now": fmt_instant(now),
            "until": fmt_instant(until),
            "owner": owner,
            "limit": limit,
            "only": only.unwrap_or(&[]),
        });
        let mut resp = self.run_retry(&sql, vars).await?;
        let mut claimed: Vec<OutboxRow> = decode_rows(&mut resp, 2, "outbox row")?;
        claimed.sort_by_key(|r| r.created_at);
        Ok(claimed)
    }

    /// Records a delivery. False when `row`'s claim is no longer the current one.
    pub async fn outbox_sent(
        &self,
        row: &OutboxRow,
        provider_id: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // NONE, not NULL, when the channel gave no id (`option<string>`).
        let set = match provider_id {
            Some(_) => "status = 'sent', sent_at = $now, provider_id = $provider, lease_until = NONE, attempts += 1",
            None => "status = 'sent', sent_at = $now, lease_until = NONE, attempts += 1",
        };
        self.outbox_outcome(row, set, json!({ "now": fmt_instant(now), "provider": provider_id }))
            .await
    }

    /// Records a failed delivery: tried again at `retry_at`, or given up without one.
    pub async fn outbox_failed(
        &self,
        row: &OutboxRow,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let set = match retry_at {
            Some(_) => {
                "next_at = $retry_at, lease_until = NONE, lease_owner = NONE, attempts += 1, last_error = $error"
            }
            None => "status = 'failed', lease_until = NONE, lease_owner = NONE, attempts += 1, last_error = $error",
        };
        self.outbox_outcome(
            row,
            set,
            json!({ "error": error, "retry_at": retry_at.map(fmt_instant) }),
        )
        .await
    }

    /// Hands a claimed row back unsent (claimable again at once).
    pub async fn outbox_release(&self, row: &OutboxRow) -> Result<bool, StoreError> {
        self.outbox_outcome(row, "lease_until = NONE, lease_owner = NONE", json!({}))
            .await
    }

    /// `set` on `row`, only while `row`'s claim (owner and token) is the current one.
    async fn outbox_outcome(
        &self,
        row: &OutboxRow,
        set: &str,
        mut vars: serde_json::Value,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE type::record('outbox', $id) SET {set}
                 WHERE status = 'pending' AND lease_owner = $owner AND lease_token = $fence RETURN {PLAIN_ID}"
        );
        if let Some(map) = vars.as_object_mut() {
            map.insert("id".into(), json!(row.id));
            map.insert("owner".into(), json!(row.lease_owner));
            map.insert("fence".into(), json!(row.lease_token));
        }
        let mut resp = self.run_retry(&sql, vars).await?;
        Ok(!rows(&mut resp, 0)?.is_empty())
    }

    /// Every row of a conversation, oldest first (for tests and support).
    pub async fn outbox_of(&self, session: &str) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM outbox WHERE session = $conversation ORDER BY created_at ASC");
        let mut resp = self.run(&sql, json!({ "conversation": session })).await?;
        decode_rows(&mut resp, 0, "outbox row")
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
