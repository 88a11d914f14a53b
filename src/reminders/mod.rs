//! The durable reminder scheduler that runs inside `clinicflow serve`.
//!
//! Flows schedule reminders (`schedule_reminders`, src/actions/remind.rs); they wait in
//! SurrealDB until due. Every [`TICK`] the scheduler *claims* the due ones with a lease
//! ([`LEASE`], see src/store/reminders.rs), so any number of replicas sharing one database
//! send each reminder once, and a reminder claimed by a replica that died is claimed again
//! when its lease runs out. For each claimed reminder it loads the appointment and:
//!
//! - skips it (status `cancelled`, reason in `last_error`, nothing sent) when the appointment
//!   is gone, cancelled or has already started, or when a later reminder of the same
//!   appointment is due too (after a long outage the patient gets the latest one only);
//! - otherwise renders the `reminder` text of flows/global.yaml (see [`text`]) in the
//!   conversation's language and hands it to the outbox ([`Service::queue`]): one
//!   transaction writes the turn-log record, the outbox row (which carries the reminder's
//!   id and its appointment's start), the conversation's wait for the answer, and the
//!   reminder's `outbox` field, fenced by this claim; then delivers the row at once through
//!   the channel [`Sender`];
//! - the row's outcomes set the reminder's status in the same statement (src/store/outbox.rs):
//!   `sent`; or, when the channel refuses or does not answer within [`DELIVERY_TIMEOUT`],
//!   still pending with a retry time (30 s, 1 min, 2 min, 4 min…), and `failed` after
//!   [`MAX_ATTEMPTS`], on a refusal for good, or when the next try would come after the
//!   appointment has started. The retries are outbox rows: each pass of the scheduler (on
//!   any replica) starts with an outbox pass over reminder rows, which the bare outbox worker
//!   leaves to it. Cancelling or moving the appointment cancels a row not yet sent.
//! - once the channel took it, emails the same reminder when the patient gave an address
//!   and email is configured (`prompts/<lang>/email_reminder.j2`, src/email.rs).
//!
//! Reminders that came due while no scheduler ran are simply due at the next tick, so they
//! are sent when the server is back (unless their appointment has started meanwhile).
//!
//! Exactly once, precisely: a reminder is queued once (the claim's fence and the outbox
//! row's id, derived from the conversation's turn, make a second hand-over fail and roll
//! back), and the row is delivered at most once per lease of its own (src/outbox.rs). What
//! remains is the unavoidable window of any sender that talks to two systems: a process
//! that dies *after* the channel accepted the message and *before* `sent` is recorded
//! leaves a row that is sent again after its lease; and a channel that times out may still
//! have delivered.
//!
//! Logs carry the reminder id and kind only: never the patient's address, name or the text.

pub mod text;

pub use crate::engine::{REPLY_FLOW, await_answer};

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::outbound::{Outbound, OutboundKind, Sender};
use crate::service::{Delivery, Service, ServiceError};
use crate::store::{AppointmentStatus, Reminder, ReminderLink, ReminderStatus, Store, StoreError};

/// How often the scheduler looks for due reminders.
pub const TICK: Duration = Duration::from_secs(1);
/// How long a claim holds a reminder. Another scheduler may take it over afterwards.
pub const LEASE: SignedDuration = SignedDuration::from_secs(60);
/// Reminders claimed at once.
pub const BATCH: usize = 16;
/// Batches handled in one tick at most (a backlog after an outage drains over a few ticks).
const MAX_BATCHES: usize = 16;
/// Claims of one reminder (failed deliveries, expired leases) before it is given up.
pub const MAX_ATTEMPTS: u32 = 5;
/// The longest a channel may take to accept one message.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// A delivery starts only this soon after its batch was claimed, so that it ends (at worst at
/// `DELIVERY_TIMEOUT`) well before the lease does; the rest of the batch is handed back.
const BUDGET: Duration = Duration::from_secs(40);
// The last delivery a batch starts ends before the lease does.
const _: () = assert!(BUDGET.as_secs() + DELIVERY_TIMEOUT.as_secs() < LEASE.as_secs() as u64);
/// First retry delay of a reminder the channel did not take; doubled on each further attempt
/// (the outbox's policy for reminder rows, src/outbox.rs).
pub const FIRST_RETRY: SignedDuration = SignedDuration::from_secs(30);

/// What one pass of the scheduler did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Reminders claimed.
    pub claimed: usize,
    /// Delivered and marked sent.
    pub sent: usize,
    /// Closed without a message (appointment cancelled, gone, started, or superseded).
    pub skipped: usize,
    /// Delivery failed; pending again with a retry time.
    pub retrying: usize,
    /// Delivery failed for the last time; marked failed.
    pub given_up: usize,
    /// The lease was lost before the outcome could be recorded (moved, cancelled or taken over).
    pub lost: usize,
    /// Handed back unsent (shutting down, or too little lease left).
    pub released: usize,
    /// The database failed while handling it; it is retried when the lease expires.
    pub errors: usize,
}

/// The fate of one claimed reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Skipped,
    Retrying,
    GivenUp,
    Lost,
    Released,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Skipped => "skipped",
            Outcome::Retrying => "retrying",
            Outcome::GivenUp => "failed",
            Outcome::Lost => "lost",
            Outcome::Released => "released",
            Outcome::Error => "error",
        }
    }
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        let field = match outcome {
            Outcome::Sent => &mut self.sent,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Retrying => &mut self.retrying,
            Outcome::GivenUp => &mut self.given_up,
            Outcome::Lost => &mut self.lost,
            Outcome::Released => &mut self.released,
            Outcome::Error => &mut self.errors,
        };
        *field += 1;
        metrics::counter!("clinicflow_reminders_total", "outcome" => outcome.as_str()).increment(1);
    }
}

/// Starts the scheduler: every [`TICK`] it runs [`sweep`] with the current time as `owner`
/// (a name unique to this process, e.g. host + pid + a random suffix), until `shutdown`
/// becomes true or its sender is dropped. A batch in progress is cut short at shutdown: the
/// reminders not yet started are handed back for another replica (or the next start).
pub fn spawn(
    service: Arc<Service>,
    sender: Arc<dyn Sender>,
    owner: String,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    crate::clinics::scope::spawn(async move {
        tracing::info!(owner = %owner, "reminder scheduler started");
        let mut tick = crate::background::every(TICK);
        let mut failing = false;
        while crate::background::next_tick(&mut tick, &mut shutdown).await {
            let stop = || *shutdown.borrow();
            if stop() {
                break;
            }
            match sweep(&service, sender.as_ref(), &owner, Timestamp::now(), &stop).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("reminder scheduler: the database answers again");
                }
                Ok(_) => {}
                // Logged once per outage, not once per second.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = error_kind(&e), "reminder scheduler: cannot claim reminders");
                }
                Err(_) => {}
            }
        }
        tracing::info!(owner = %owner, "reminder scheduler stopped");
    })
}

/// One pass at time `now`: claims due reminders as `owner` and handles them (see the module
/// docs). Returns how many were delivered. Fails only when the claim itself fails; trouble
/// with one reminder is logged and that reminder is retried later.
pub async fn run_once(
    service: &Service,
    sender: &dyn Sender,
    owner: &str,
    now: Timestamp,
) -> Result<usize, StoreError> {
    Ok(sweep(service, sender, owner, now, &|| false).await?.sent)
}

/// [`run_once`] with the whole tally, stopping early (handing the unstarted reminders back)
/// as soon as `stop` returns true.
pub async fn sweep(
    service: &Service,
    sender: &dyn Sender,
    owner: &str,
    now: Timestamp,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Tally, StoreError> {
    let mut tally = Tally::default();
    let started = tokio::time::Instant::now();
    if !stop() {
        // First the reminders whose delivery failed: they wait in the outbox for their retry
        // time (src/outbox.rs applies the reminders' policy to their rows).
        let rows = service
            .store
            .claim_outbox_where(
                now,
                crate::outbox::LEASE,
                owner,
                BATCH,
                None,
                crate::store::Rows::Reminders,
            )
            .await?;
        let (retried, sent) = crate::outbox::deliver_reporting(&service.store, sender, &rows, now).await;
        for row in sent {
            email_after_retry(service, row, now).await;
        }
        tally.sent += retried.sent;
        tally.retrying += retried.retrying;
        tally.given_up += retried.given_up;
        tally.lost += retried.lost;
        tally.released += retried.released;
    }
    for _ in 0..MAX_BATCHES {
        // Every claim at the time it is made (to the second): a pass that took a while must
        // not lease from (and expire at) its start.
        let now = now + SignedDuration::from_secs(started.elapsed().as_secs() as i64);
        let batch = service.store.claim_due(now, LEASE, owner, BATCH).await?;
        let claimed_at = tokio::time::Instant::now();
        tally.claimed += batch.len();
        let full = batch.len() == BATCH;
        for reminder in &batch {
            let outcome = if stop() || claimed_at.elapsed() > BUDGET {
                release(&service.store, reminder).await
            } else {
                handle(service, sender, owner, now, reminder).await
            };
            tally.add(outcome);
        }
        if !full || stop() {
            break;
        }
    }
    Ok(tally)
}

async fn release(store: &Store, r: &Reminder) -> Outcome {
    match store.release_claim(&r.fence()).await {
        Ok(true) => Outcome::Released,
        Ok(false) => Outcome::Lost,
        Err(e) => failed_to_record(r, &e),
    }
}

/// Handles one claimed reminder and logs what became of it.
async fn handle(service: &Service, sender: &dyn Sender, owner: &str, now: Timestamp, r: &Reminder) -> Outcome {
    let outcome = match try_handle(service, sender, owner, now, r).await {
        Ok(outcome) => outcome,
        Err(e) => return failed_to_record(r, &e),
    };
    let (id, kind, attempts) = (&r.id, &r.kind, r.attempts);
    match outcome {
        Outcome::Sent => tracing::info!(reminder = %id, kind = %kind, attempts, "reminder sent"),
        Outcome::Retrying => {
            tracing::warn!(reminder = %id, kind = %kind, attempts, "reminder not delivered; will retry")
        }
        Outcome::GivenUp => tracing::error!(reminder = %id, kind = %kind, attempts, "reminder not delivered; given up"),
        Outcome::Lost => tracing::warn!(
            reminder = %id,
            kind = %kind,
            "reminder lease lost before its outcome was recorded (moved, cancelled or taken over)"
        ),
        Outcome::Skipped | Outcome::Released | Outcome::Error => {}
    }
    outcome
}

fn failed_to_record(r: &Reminder, e: &StoreError) -> Outcome {
    tracing::warn!(
        reminder = %r.id,
        kind = %r.kind,
        error = error_kind(e),
        "reminder: database error; retried when the lease expires"
    );
    Outcome::Error
}

async fn try_handle(
    service: &Service,
    sender: &dyn Sender,
    owner: &str,
    now: Timestamp,
    r: &Reminder,
) -> Result<Outcome, StoreError> {
    let store = &service.store;
    let claim = r.fence();
    if r.attempts > MAX_ATTEMPTS {
        // Claimed again and again without an outcome (crashing holders, database errors).
        let held = store
            .mark_failed(&claim, "too many attempts without an outcome", None)
            .await?;
        return Ok(if held { Outcome::GivenUp } else { Outcome::Lost });
    }
    let appointment = store.get_appointment(&r.appointment).await?;
    let skip = match &appointment {
        None => Some("appointment not found"),
        Some(a) if a.status == AppointmentStatus::Cancelled => Some("appointment cancelled"),
        Some(a) if a.status != AppointmentStatus::Booked => Some("appointment already marked by staff"),
        Some(a) if a.starts_at <= now => Some("appointment already started"),
        Some(_) if superseded(store, r, now).await? => Some("a later reminder of the appointment is due"),
        Some(_) => None,
    };
    let appointment = match (skip, appointment) {
        (None, Some(a)) => a,
        (reason, _) => {
            let reason = reason.unwrap_or("appointment not found");
            let held = store.mark_skipped(&claim, reason).await?;
            tracing::info!(reminder = %r.id, kind = %r.kind, reason, "reminder skipped");
            return Ok(if held { Outcome::Skipped } else { Outcome::Lost });
        }
    };

    let bot = service.bot();
    let session = store.load_session(&r.session).await?;
    let local = now.to_zoned(bot.clinic.tz.clone());
    let msg = Outbound {
        session: r.session.clone(),
        channel: r.channel.clone(),
        user: r.user.clone(),
        text: text::render(&bot, &appointment, r, session.as_ref(), &local),
        kind: OutboundKind::Reminder,
        appointment: Some(crate::actions::appointment_value(&appointment)),
        template: text::whatsapp_template(&bot, &appointment, r, session.as_ref(), &local),
        by: None,
    };
    // One transaction: the turn-log record, the outbox row (linked to the reminder, no retry
    // after the appointment starts), the wait for the answer, and the reminder handed to the
    // row under this claim's fence. From then on the row's outcomes are the reminder's.
    let link = ReminderLink {
        reminder: r.id.clone(),
        deadline: appointment.starts_at,
    };
    let ids = match service.queue(sender, &msg, &local, Some((&claim, &link))).await {
        Ok(ids) => ids,
        Err(ServiceError::ClaimLost) => return Ok(Outcome::Lost),
        Err(ServiceError::Store(e)) => return Err(e),
        Err(e) => return Err(StoreError::Query(e.to_string())),
    };
    Ok(match service.deliver_queued_as(owner, sender, &ids, now).await {
        Delivery::Sent => {
            // The email goes with the channel's reminder, never instead of it (src/email.rs).
            service.email_reminder(&bot, &appointment, r, session.as_ref(), &local);
            Outcome::Sent
        }
        Delivery::Queued => Outcome::Retrying,
        Delivery::Refused => Outcome::GivenUp,
    })
}

/// The email of a reminder the channel took on a retry (the first try emails in
/// [`try_handle`]): it goes with the channel's reminder, never instead of it. Best effort.
async fn email_after_retry(service: &Service, row: &crate::store::OutboxRow, now: Timestamp) {
    let (Some(id), Some(appointment)) = (&row.reminder, row.message.appointment.as_ref()) else {
        return;
    };
    let Some(appointment_id) = appointment["id"].as_str() else {
        return;
    };
    let store = &service.store;
    let (Ok(Some(a)), Ok(reminders)) = (
        store.get_appointment(appointment_id).await,
        store.reminders_of(appointment_id).await,
    ) else {
        return;
    };
    let Some(r) = reminders.iter().find(|r| &r.id == id) else {
        return;
    };
    let bot = service.bot();
    let session = store.load_session(&r.session).await.ok().flatten();
    service.email_reminder(&bot, &a, r, session.as_ref(), &now.to_zoned(bot.clinic.tz.clone()));
}

/// True when another reminder of the same appointment, due later than `r`, is due by `now`
/// (or was sent already): after an outage only the latest reminder is worth sending.
async fn superseded(store: &Store, r: &Reminder, now: Timestamp) -> Result<bool, StoreError> {
    let others = store.reminders_of(&r.appointment).await?;
    Ok(others.iter().any(|o| {
        o.id != r.id
            && matches!(o.status, ReminderStatus::Pending | ReminderStatus::Sent)
            && o.due_at <= now
            && (o.due_at, &o.id) > (r.due_at, &r.id)
    }))
}

/// The kind of a storage error, for logs (messages may quote stored values or URLs).
fn error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::BadUrl { .. } => "bad_url",
        StoreError::Connect(_) => "connect",
        StoreError::Query(_) => "query",
        StoreError::Conflict(_) => "conflict",
        StoreError::SlotTaken => "slot_taken",
        StoreError::NotFound { .. } => "not_found",
        StoreError::Decode { .. } => "decode",
    }
}

#[cfg(test)]
mod tests;
