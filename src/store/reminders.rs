//! Appointment reminders and the lease protocol that lets any number of senders (threads,
//! replicas) share the queue without sending one twice.
//!
//! A reminder stays `pending` until delivered. The scheduler *claims* due reminders with the
//! lease every background table shares (src/store/lease.rs): racing claimers collide in the
//! database and only one commit survives; a crashed claimer's lease simply expires. A claim
//! ends with `mark_queued` (the reminder is handed to an outbox row written in the same
//! transaction, whose outcomes then set the reminder's status: src/store/outbox.rs),
//! `mark_skipped`, `release_claim`, or `mark_sent` / `mark_failed`; each succeeds only for
//! the claim (owner and token) that currently holds the lease.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lease::{Fence, Leased, Pick};
use super::time::fmt_instant;
use super::{ALREADY_EXISTS, PLAIN_ID, Store, StoreError, decode_rows, to_doc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderStatus {
    Pending,
    Sent,
    Cancelled,
    Failed,
}

impl ReminderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderStatus::Pending => "pending",
            ReminderStatus::Sent => "sent",
            ReminderStatus::Cancelled => "cancelled",
            ReminderStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewReminder {
    pub appointment: String,
    pub session: String,
    pub channel: String,
    /// The patient's address on the channel. Personal data.
    pub user: String,
    /// How long before the appointment, as written in the flow ("24h", "2h", "30m").
    pub kind: String,
    /// The same in minutes; a reschedule recomputes `due_at` from it.
    pub offset_minutes: u32,
    pub due_at: Timestamp,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    pub id: String,
    pub appointment: String,
    pub session: String,
    pub channel: String,
    pub user: String,
    pub kind: String,
    pub offset_minutes: u32,
    #[serde(with = "super::time::instant")]
    pub due_at: Timestamp,
    pub status: ReminderStatus,
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    /// Incremented by every claim: the fence of the claim's outcome (src/store/lease.rs).
    #[serde(default)]
    pub lease_token: u64,
    /// The outbox row delivering it, once queued; its outcome is the reminder's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(with = "super::time::instant")]
    pub created_at: Timestamp,
    #[serde(default, with = "super::time::opt_instant", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
}

impl Reminder {
    /// The claim this reminder was returned by.
    pub fn fence(&self) -> Fence {
        Fence {
            id: self.id.clone(),
            owner: self.lease_owner.clone().unwrap_or_default(),
            token: self.lease_token,
        }
    }
}

/// The reminders as a leased table (src/store/lease.rs): pending, not yet handed to the
/// outbox, and not leased by anyone (never leased, lease expired, or retry time reached).
const REMINDER: Leased = Leased {
    table: "reminder",
    claimable: "status = 'pending' AND !outbox AND (!lease_until OR lease_until <= $now)",
    on_claim: "attempts += 1",
};

impl Store {
    /// Schedules a reminder. `None` when the appointment already has one of that kind, which
    /// makes scheduling idempotent.
    pub async fn create_reminder(&self, new: &NewReminder) -> Result<Option<Reminder>, StoreError> {
        let reminder = Reminder {
            id: String::new(),
            appointment: new.appointment.clone(),
            session: new.session.clone(),
            channel: new.channel.clone(),
            user: new.user.clone(),
            kind: new.kind.clone(),
            offset_minutes: new.offset_minutes,
            due_at: new.due_at,
            status: ReminderStatus::Pending,
            lease_until: None,
            lease_owner: None,
            lease_token: 0,
            outbox: None,
            attempts: 0,
            last_error: None,
            created_at: new.created_at,
            sent_at: None,
        };
        // Checked before writing, as for appointments (src/store/appointments.rs); the unique
        // index stays the guard.
        let sql = format!(
            "IF (SELECT VALUE id FROM reminder WHERE appointment = $doc.appointment AND kind = $doc.kind LIMIT 1)[0] {{
                 THROW '{ALREADY_EXISTS}'
             }} ELSE {{ CREATE reminder CONTENT $doc RETURN {PLAIN_ID} }};"
        );
        match self.run_retry(&sql, json!({ "doc": to_doc(&reminder)? })).await {
            Ok(mut resp) => Ok(decode_rows(&mut resp, 0, "reminder")?.into_iter().next()),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reminders by status (any when `None`), soonest first.
    pub async fn list_reminders(
        &self,
        status: Option<ReminderStatus>,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let filter = if status.is_some() { "WHERE status = $status" } else { "" };
        let sql = format!("SELECT {PLAIN_ID} FROM reminder {filter} ORDER BY due_at ASC LIMIT $limit");
        let vars = json!({ "status": status.map(ReminderStatus::as_str), "limit": limit });
        let mut resp = self.run(&sql, vars).await?;
        decode_rows(&mut resp, 0, "reminder")
    }

    /// All reminders of an appointment, whatever their status, soonest first.
    pub async fn reminders_of(&self, appointment: &str) -> Result<Vec<Reminder>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM reminder WHERE appointment = $appointment ORDER BY due_at ASC");
        let mut resp = self.run(&sql, json!({ "appointment": appointment })).await?;
        decode_rows(&mut resp, 0, "reminder")
    }

    /// Cancels the pending reminders of an appointment; returns how many.
    pub async fn cancel_reminders_of(&self, appointment: &str) -> Result<usize, StoreError> {
        let sql = format!(
            "UPDATE reminder SET status = 'cancelled', lease_until = NONE, lease_owner = NONE
             WHERE appointment = $appointment AND status = 'pending' RETURN {PLAIN_ID}"
        );
        let mut resp = self.run_retry(&sql, json!({ "appointment": appointment })).await?;
        let ids: Vec<String> = super::rows(&mut resp, 0)?
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect();
        // Those already queued do not go out either.
        self.cancel_outbox_of_reminders(&ids).await?;
        Ok(ids.len())
    }

    /// Leases up to `limit` due reminders (pending, not queued in the outbox, `due_at <= now`,
    /// not leased) to `owner` until `now + lease`, soonest first, and returns them. A reminder
    /// is handed to exactly one claimer per lease, whatever the number of concurrent claimers
    /// (src/store/lease.rs).
    pub async fn claim_due(
        &self,
        now: Timestamp,
        lease: SignedDuration,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let pick = Pick::Due {
            filter: "AND due_at <= $now",
            order: "due_at",
            limit,
        };
        let mut claimed: Vec<Reminder> = self.claim_leased(&REMINDER, pick, now, lease, owner, json!({})).await?;
        claimed.sort_by_key(|r| r.due_at);
        Ok(claimed)
    }

    /// Records a delivery. False when `claim` no longer holds the lease (it expired and
    /// someone else claimed the reminder, or it was cancelled or moved meanwhile).
    pub async fn mark_sent(&self, claim: &Fence, now: Timestamp) -> Result<bool, StoreError> {
        let set = "status = 'sent', sent_at = $now, lease_until = NONE";
        self.fenced(&REMINDER, claim, set, "", json!({ "now": fmt_instant(now) }))
            .await
    }

    /// Hands a claimed reminder to the outbox row `outbox` (written in the same transaction):
    /// from then on the row's outcomes decide the reminder's. False when `claim` no longer
    /// holds the lease.
    pub async fn mark_queued(&self, claim: &Fence, outbox: &str) -> Result<bool, StoreError> {
        let set = "outbox = $outbox, lease_until = NONE";
        self.fenced(&REMINDER, claim, set, "", json!({ "outbox": outbox }))
            .await
    }

    /// Records a failed delivery. With `retry_at` the reminder stays pending and becomes
    /// claimable again at that time; without it, it is given up (`failed`). False when
    /// `claim` no longer holds the lease.
    pub async fn mark_failed(
        &self,
        claim: &Fence,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let set = if retry_at.is_some() {
            "lease_until = $retry_at, lease_owner = NONE, last_error = $error"
        } else {
            "status = 'failed', lease_until = NONE, lease_owner = NONE, last_error = $error"
        };
        let vars = json!({ "error": error, "retry_at": retry_at.map(fmt_instant) });
        self.fenced(&REMINDER, claim, set, "", vars).await
    }

    /// Closes a claimed reminder without sending it (its appointment was cancelled, has
    /// already started, or a later reminder of it is due too): status `cancelled`, with
    /// `reason` in `last_error`. False when `claim` no longer holds the lease.
    pub async fn mark_skipped(&self, claim: &Fence, reason: &str) -> Result<bool, StoreError> {
        let set = "status = 'cancelled', lease_until = NONE, lease_owner = NONE, last_error = $reason";
        self.fenced(&REMINDER, claim, set, "", json!({ "reason": reason }))
            .await
    }

    /// Hands a claimed reminder back untouched (the claimer is shutting down or ran out of
    /// lease time): claimable again at once, and the claim does not count as an attempt.
    /// False when `claim` no longer holds the lease.
    pub async fn release_claim(&self, claim: &Fence) -> Result<bool, StoreError> {
        let set = "lease_until = NONE, lease_owner = NONE, attempts -= 1";
        self.fenced(&REMINDER, claim, set, "", json!({})).await
    }
}

#[cfg(test)]
#[path = "reminders_tests.rs"]
mod tests;
