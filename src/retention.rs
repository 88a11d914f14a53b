//! The retention sweep inside `serve`: turns older than `clinic.retention.turn_days` are
//! deleted from the turn log. What a patient wrote is the most sensitive thing stored and
//! the least needed once the appointment exists. Time is passed in (`run_once(.., now)`), so
//! tests move it instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::Service;
use crate::store::StoreError;

/// How often the sweep runs: retention is counted in days, an hour late is nothing.
const TICK: Duration = Duration::from_secs(3600);

/// Deletes the turns older than the clinic's retention period at `now`. Returns how many.
pub async fn run_once(service: &Service, now: Timestamp) -> Result<usize, StoreError> {
    let Some(days) = service.bot().clinic.turn_days else {
        return Ok(0);
    };
    let cutoff = now - SignedDuration::from_hours(24 * i64::from(days));
    service.store.delete_turns_before(cutoff).await
}

/// Runs the sweep every hour until `shutdown` turns true.
pub fn spawn(service: Arc<Service>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    crate::clinics::scope::spawn(async move {
        let mut tick = crate::background::every(TICK);
        while crate::background::next_tick(&mut tick, &mut shutdown).await {
            match run_once(&service, Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(turns = n, "retention: old turns deleted from the turn log"),
                Err(e) => tracing::warn!("retention: the sweep failed: {e}"),
            }
        }
    })
}
