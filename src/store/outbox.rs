//! The outbox: every message clinicflow sends outside a direct reply (reminders, staff
//! replies, late replies, one-time codes, calendar notices), written in the same
//! transaction as its record in the turn log, and delivered afterwards by whoever holds the
//! row's lease (the service right after the commit, else the outbox worker of any replica).
//!
//! Leases are the ones every background table shares (src/store/lease.rs): every claim
//! increments `lease_token`, and the outcome is recorded only by the claim that holds the
//! current token, so a sender whose lease expired (and whose row another replica claimed
//! since) cannot mark it sent or failed. The channel's message id is recorded with `sent`.
//! A row that delivers a reminder carries the reminder's id: its outcome sets the
//! reminder's status in the same transaction.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lease::{Fence, Leased, Pick};
use super::time::fmt_instant;
use super::{PLAIN_ID, Store, StoreError, decode_rows};
use crate::outbound::Outbound;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Failed,
    /// Not to be sent any more (the reminder's appointment was cancelled or moved).
    Cancelled,
}

/// One message waiting to go out, or gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: String,
    /// Conversation the message belongs to.
    pub session: String,
    pub message: Outbound,
    pub status: OutboxStatus,
    /// For a reminder: its id. Every outcome of this row updates it in the same statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<String>,
    /// No retry at or after this time (a reminder's appointment start).
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
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
    /// Deliveries tried (outcomes recorded).
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

impl OutboxRow {
    /// The claim this row was returned by.
    pub fn fence(&self) -> Fence {
        Fence {
            id: self.id.clone(),
            owner: self.lease_owner.clone().unwrap_or_default(),
            token: self.lease_token,
        }
    }
}

/// Which outbox rows a claim looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    All,
    /// Rows that deliver a reminder (the reminder scheduler's).
    Reminders,
    /// The others (the outbox worker's).
    NotReminders,
}

/// A message's link to the reminder it delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct ReminderLink {
    pub reminder: String,
    /// The appointment's start: no retry at or after it.
    pub deadline: Timestamp,
}

/// The outbox as a leased table (src/store/lease.rs).
const OUTBOX: Leased = Leased {
    table: "outbox",
    claimable: "status = 'pending' AND next_at <= $now AND (!lease_until OR lease_until <= $now)",
    on_claim: "",
};

impl Store {
    /// Queues `messages` under ids derived from `key` (conversation + turn), so a turn that
    /// is written twice cannot queue its messages twice. Runs in the caller's transaction
    /// when the handle has one. Returns the row ids.
    pub async fn enqueue(&self, key: &str, messages: &[Outbound], now: Timestamp) -> Result<Vec<String>, StoreError> {
        self.enqueue_linked(key, messages, now, None).await
    }

    /// [`Store::enqueue`], each row linked to `link`'s reminder when given.
    pub async fn enqueue_linked(
        &self,
        key: &str,
        messages: &[Outbound],
        now: Timestamp,
        link: Option<&ReminderLink>,
    ) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for (i, msg) in messages.iter().enumerate() {
            let id = format!("{key}#{i}");
            let mut doc = json!({
                "session": msg.session,
                "message": msg,
                "status": "pending",
                "next_at": fmt_instant(now),
                "lease_token": 0,
                "attempts": 0,
                "created_at": fmt_instant(now),
            });
            if let (Some(link), Some(map)) = (link, doc.as_object_mut()) {
                map.insert("reminder".into(), json!(link.reminder));
                map.insert("deadline".into(), json!(fmt_instant(link.deadline)));
            }
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
        self.claim_outbox_where(now, lease, owner, limit, only, Rows::All).await
    }

    /// [`Store::claim_outbox`], of the rows `rows` says.
    pub async fn claim_outbox_where(
        &self,
        now: Timestamp,
        lease: SignedDuration,
        owner: &str,
        limit: usize,
        only: Option<&[String]>,
        rows: Rows,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let filter = match rows {
            Rows::All => "",
            Rows::Reminders => "AND reminder != NONE",
            Rows::NotReminders => "AND reminder = NONE",
        };
        let pick = match only {
            Some(ids) => Pick::Only(ids),
            None => Pick::Due {
                filter,
                order: "created_at",
                limit,
            },
        };
        let mut claimed: Vec<OutboxRow> = self.claim_leased(&OUTBOX, pick, now, lease, owner, json!({})).await?;
        claimed.sort_by_key(|r| r.created_at);
        Ok(claimed)
    }

    /// Records a delivery (and the reminder's, for a reminder). False when `row`'s claim is
    /// no longer the current one.
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
        let reminder = "status = 'sent', sent_at = $now, lease_until = NONE, lease_owner = NONE, attempts = $attempts";
        self.outbox_outcome(
            row,
            set,
            reminder,
            json!({ "now": fmt_instant(now), "provider": provider_id }),
        )
        .await
    }

    /// Records a failed delivery: tried again at `retry_at`, or given up without one.
    pub async fn outbox_failed(
        &self,
        row: &OutboxRow,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let (set, reminder) = match retry_at {
            Some(_) => (
                "next_at = $retry_at, lease_until = NONE, lease_owner = NONE, attempts += 1, last_error = $error",
                // Pending still, with the retry time where it always was.
                "lease_until = $retry_at, lease_owner = NONE, attempts = $attempts, last_error = $error",
            ),
            None => (
                "status = 'failed', lease_until = NONE, lease_owner = NONE, attempts += 1, last_error = $error",
                "status = 'failed', lease_until = NONE, lease_owner = NONE, attempts = $attempts, last_error = $error",
            ),
        };
        self.outbox_outcome(
            row,
            set,
            reminder,
            json!({ "error": error, "retry_at": retry_at.map(fmt_instant) }),
        )
        .await
    }

    /// Hands a claimed row back unsent (claimable again at once).
    pub async fn outbox_release(&self, row: &OutboxRow) -> Result<bool, StoreError> {
        self.fenced(
            &OUTBOX,
            &row.fence(),
            "lease_until = NONE, lease_owner = NONE",
            "",
            json!({}),
        )
        .await
    }

    /// `set` on `row`, only while `row`'s claim (owner and token) is the current one; and,
    /// in the same transaction, `reminder` on the reminder it delivers.
    async fn outbox_outcome(
        &self,
        row: &OutboxRow,
        set: &str,
        reminder: &str,
        mut vars: serde_json::Value,
    ) -> Result<bool, StoreError> {
        let then = match &row.reminder {
            Some(_) => format!(
                "UPDATE type::record('reminder', $reminder) SET {reminder}
                     WHERE status = 'pending' AND outbox = $id"
            ),
            None => String::new(),
        };
        if let Some(map) = vars.as_object_mut() {
            map.insert("reminder".into(), json!(row.reminder));
            map.insert("attempts".into(), json!(row.attempts + 1));
        }
        self.fenced(&OUTBOX, &row.fence(), set, &then, vars).await
    }

    /// Cancels the rows not yet sent that deliver `reminders` (their appointment was
    /// cancelled or moved). A row being delivered right now loses its outcome.
    pub(super) async fn cancel_outbox_of_reminders(&self, reminders: &[String]) -> Result<(), StoreError> {
        if reminders.is_empty() {
            return Ok(());
        }
        self.run_retry(
            "UPDATE outbox SET status = 'cancelled', lease_until = NONE, lease_owner = NONE
                 WHERE reminder IN $reminders AND status = 'pending' RETURN NONE",
            json!({ "reminders": reminders }),
        )
        .await?;
        Ok(())
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
