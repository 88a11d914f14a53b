//! What the background workers (reminders, retention) share: wait for the next tick unless
//! the server is stopping.

use tokio::sync::watch;
use tokio::time::Interval;

/// Waits for `tick`; returns false as soon as `shutdown` turns true or its sender is dropped,
/// so a worker's loop is `while next_tick(&mut tick, &mut shutdown).await { … }`.
pub async fn next_tick(tick: &mut Interval, shutdown: &mut watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return false;
                }
            }
            _ = tick.tick() => return true,
        }
    }
}

/// A ticker for a worker: the first tick at once, and after a slow pass the next one a whole
/// `period` later (no burst of catch-up ticks).
pub fn every(period: std::time::Duration) -> Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// A name unique to this process (host, pid and a random suffix): the lease owner of the
/// reminders and outbox rows it claims.
pub fn worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "clinicflow".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}-{}-{nanos:08x}", std::process::id())
}
