//! The outbox worker: delivers what turns queued in the `outbox` table (src/store/outbox.rs)
//! and the service could not deliver right after its commit (the process died, the channel
//! was down). Any number of replicas run it; leases with fencing tokens hand each row to one
//! sender at a time, and an outcome is recorded only by the claim that still holds the row.
//!
//! Within a batch every delivery starts only while enough of the lease is left for it to
//! end (at worst at [`DELIVERY_TIMEOUT`]) before the lease does; the rest are handed back.
//! A process that dies after the channel accepted a message and before `sent` is recorded
//! leaves a row claimed again after its lease; before sending it, the new holder asks the
//! channel whether it has the message already ([`Sender::find_sent`]: Twilio's Messages
//! list), and records it as sent when it does. What remains is a channel that cannot tell.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::outbound::{OutboundKind, Sender};
use crate::store::{OutboxRow, Rows, Store, StoreError};

/// How often the worker looks for rows to deliver.
pub const TICK: Duration = Duration::from_secs(1);
/// How long a claim holds a row.
pub const LEASE: SignedDuration = SignedDuration::from_secs(60);
/// Rows claimed at once.
pub const BATCH: usize = 16;
/// The longest a channel may take to accept one message.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries tried before a row is given up.
pub const MAX_ATTEMPTS: u32 = 5;
/// First retry delay; doubled on each further attempt. A reminder waits longer
/// ([`crate::reminders::FIRST_RETRY`]), and is never retried at or after its appointment.
const FIRST_RETRY: SignedDuration = SignedDuration::from_secs(10);

/// When to try `row` again after its `attempts`-th failed delivery; `None` to give up.
pub fn retry_time(row: &OutboxRow, attempts: u32, now: Timestamp) -> Option<Timestamp> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let first = match row.message.kind {
        OutboundKind::Reminder => crate::reminders::FIRST_RETRY,
        _ => FIRST_RETRY,
    };
    let at = now
        .checked_add(first * (1i32 << attempts.saturating_sub(1).min(16)))
        .ok()?;
    match row.deadline {
        Some(deadline) if at >= deadline => None,
        _ => Some(at),
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub sent: usize,
    pub retrying: usize,
    pub given_up: usize,
    /// The claim was taken over before the outcome could be recorded.
    pub lost: usize,
    /// Handed back unsent (too little lease left).
    pub released: usize,
    /// Found already delivered (an earlier holder died after the channel took it): recorded,
    /// not sent again.
    pub found: usize,
}

/// Delivers `rows` (just claimed at `now` by the caller) through `sender`.
pub async fn deliver(store: &Store, sender: &dyn Sender, rows: &[OutboxRow], now: Timestamp) -> Tally {
    deliver_reporting(store, sender, rows, now).await.0
}

/// [`deliver`], also saying which rows the channel took (and whose `sent` was recorded).
pub async fn deliver_reporting<'r>(
    store: &Store,
    sender: &dyn Sender,
    rows: &'r [OutboxRow],
    now: Timestamp,
) -> (Tally, Vec<&'r OutboxRow>) {
    let mut tally = Tally::default();
    let mut sent = Vec::new();
    let claimed_at = tokio::time::Instant::now();
    // A delivery may start only while it can end before the lease does.
    let budget = LEASE.unsigned_abs().saturating_sub(DELIVERY_TIMEOUT * 2);
    for row in rows {
        let elapsed = claimed_at.elapsed();
        let at = now + SignedDuration::try_from(elapsed).unwrap_or_default();
        let recorded = if elapsed > budget {
            tally.released += 1;
            store.outbox_release(row).await
        } else {
            // A message the channel has already is recorded like one sent now.
            let found = found_sent(sender, row).await;
            let delivered = match &found {
                Some(id) => Ok(Ok(Some(id.clone()))),
                None => tokio::time::timeout(DELIVERY_TIMEOUT, sender.deliver_with_id(&row.message)).await,
            };
            match delivered {
                Ok(Ok(id)) => {
                    match found {
                        Some(_) => tally.found += 1,
                        None => tally.sent += 1,
                    }
                    let recorded = store.outbox_sent(row, id.as_deref(), at).await;
                    if matches!(recorded, Ok(true)) {
                        sent.push(row);
                    }
                    recorded
                }
                // Retries count from the claim, so a policy's times hold to the second.
                Ok(Err(e)) => failed(store, row, &e.message, e.permanent, now, &mut tally).await,
                Err(_) => failed(store, row, "the channel did not answer in time", false, now, &mut tally).await,
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => tally.lost += 1,
            // Not the error's text: it may quote the row id, which holds the conversation id.
            Err(e) => tracing::warn!(kind = %row.message.kind, error = error_kind(&e), "outbox: outcome not recorded"),
        }
    }
    for (outcome, n) in [
        ("sent", tally.sent),
        ("found_sent", tally.found),
        ("retrying", tally.retrying),
        ("failed", tally.given_up),
    ] {
        metrics::counter!("clinicflow_outbox_total", "outcome" => outcome).increment(n as u64);
    }
    (tally, sent)
}

async fn failed(
    store: &Store,
    row: &OutboxRow,
    error: &str,
    permanent: bool,
    now: Timestamp,
    tally: &mut Tally,
) -> Result<bool, StoreError> {
    let attempts = row.attempts + 1;
    let retry_at = retry_time(row, attempts, now).filter(|_| !permanent);
    match retry_at {
        Some(_) => tally.retrying += 1,
        None => tally.given_up += 1,
    }
    tracing::warn!(kind = %row.message.kind, attempts, permanent, "outbox: delivery failed: {error}");
    let error: String = error.chars().take(500).collect();
    store.outbox_failed(row, &error, retry_at).await
}

/// For a row an earlier claim already took (every claim increments `lease_token`): the
/// channel's id of the message if the channel has it already. That claim may have ended
/// without knowing: its holder died or lost the database after the channel accepted the
/// message, or the channel took it but answered after the delivery timeout (recorded as a
/// retryable failure). A first claim asks nothing. When the channel cannot say (its list is
/// down too), the message is sent: a message twice is better than a reminder never.
async fn found_sent(sender: &dyn Sender, row: &OutboxRow) -> Option<String> {
    if row.lease_token <= 1 {
        return None;
    }
    match tokio::time::timeout(DELIVERY_TIMEOUT, sender.find_sent(&row.message, row.created_at)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(kind = %row.message.kind, "outbox: cannot ask the channel whether it has the message already: {e}");
            None
        }
        Err(_) => None,
    }
}

/// One pass at `now`: claims due rows as `owner` and delivers them. Rows that deliver a
/// reminder are the reminder scheduler's (`reminders::sweep` starts with them, on every
/// replica): it also emails the reminder once the channel took it.
pub async fn run_once(store: &Store, sender: &dyn Sender, owner: &str, now: Timestamp) -> Result<Tally, StoreError> {
    let rows = store
        .claim_outbox_where(now, LEASE, owner, BATCH, None, Rows::NotReminders)
        .await?;
    Ok(deliver(store, sender, &rows, now).await)
}

/// Starts the worker: a pass every [`TICK`] until `shutdown`.
pub fn spawn(
    store: Store,
    sender: Arc<dyn Sender>,
    owner: String,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    crate::clinics::scope::spawn(async move {
        let mut tick = crate::background::every(TICK);
        let mut failing = false;
        while crate::background::next_tick(&mut tick, &mut shutdown).await {
            match run_once(&store, sender.as_ref(), &owner, Timestamp::now()).await {
                Ok(_) => failing = false,
                // Logged once per outage, not once per second.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = error_kind(&e), "outbox worker: cannot claim messages");
                }
                Err(_) => {}
            }
        }
    })
}

/// What kind of database failure, for logs that must not quote ids.
fn error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Connect(_) | StoreError::BadUrl { .. } => "unreachable",
        StoreError::Conflict(_) | StoreError::SlotTaken => "conflict",
        StoreError::Decode { .. } => "decode",
        StoreError::NotFound { .. } | StoreError::Query(_) => "query",
    }
}
