use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::super::appointments::tests::{booking, slot};
use super::super::testing::mem;
use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn reminder(appointment: &str, kind: &str, offset_minutes: u32, due_at: &str) -> NewReminder {
    NewReminder {
        appointment: appointment.into(),
        session: "s1".into(),
        channel: "whatsapp".into(),
        user: "whatsapp:+5491100000000".into(),
        kind: kind.into(),
        offset_minutes,
        due_at: ts(due_at),
        created_at: ts("2025-06-09T12:00:00Z"),
    }
}

#[tokio::test]
async fn scheduling_is_idempotent_per_kind() {
    let store = mem().await;
    let r = store
        .create_reminder(&reminder("a1", "24h", 1440, "2025-06-10T12:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.status, r.attempts, r.lease_until),
        (ReminderStatus::Pending, 0, None)
    );
    assert_eq!(
        store
            .create_reminder(&reminder("a1", "24h", 1440, "2025-06-10T12:00:00Z"))
            .await
            .unwrap(),
        None
    );
    store
        .create_reminder(&reminder("a1", "2h", 120, "2025-06-11T10:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    let kinds: Vec<_> = store
        .reminders_of("a1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, ["24h", "2h"]);
    assert_eq!(
        store
            .list_reminders(Some(ReminderStatus::Pending), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.cancel_reminders_of("a1").await.unwrap(), 2);
    assert_eq!(
        store
            .list_reminders(Some(ReminderStatus::Cancelled), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .list_reminders(Some(ReminderStatus::Pending), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn claims_respect_due_time_and_leases() {
    let store = mem().await;
    let due = store
        .create_reminder(&reminder("a1", "24h", 1440, "2025-06-09T12:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    store
        .create_reminder(&reminder("a2", "24h", 1440, "2025-06-09T18:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    let now = ts("2025-06-09T12:05:00Z");
    let lease = SignedDuration::from_mins(5);

    let first = store.claim_due(now, lease, "worker-a", 10).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [due.id.as_str()]
    );
    assert_eq!(first[0].lease_owner.as_deref(), Some("worker-a"));
    assert_eq!(first[0].lease_until, Some(ts("2025-06-09T12:10:00Z")));
    assert_eq!(first[0].attempts, 1);
    // Leased: nobody else gets it until the lease expires.
    assert!(store.claim_due(now, lease, "worker-b", 10).await.unwrap().is_empty());
    let after_expiry = store
        .claim_due(ts("2025-06-09T12:11:00Z"), lease, "worker-b", 10)
        .await
        .unwrap();
    assert_eq!(after_expiry.len(), 1);
    assert_eq!(after_expiry[0].attempts, 2);
    // The old owner lost it.
    assert!(!store.mark_sent(&first[0].fence(), now).await.unwrap());
    // The same owner's claim is fenced by its token too.
    let stale = super::Fence {
        token: after_expiry[0].lease_token - 1,
        ..after_expiry[0].fence()
    };
    assert!(!store.mark_sent(&stale, now).await.unwrap());
    // Retry later, then give up.
    assert!(
        store
            .mark_failed(&after_expiry[0].fence(), "twilio 503", Some(ts("2025-06-09T12:30:00Z")))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_due(ts("2025-06-09T12:29:00Z"), lease, "worker-c", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retry = store
        .claim_due(ts("2025-06-09T12:30:00Z"), lease, "worker-c", 10)
        .await
        .unwrap();
    assert_eq!((retry.len(), retry[0].last_error.as_deref()), (1, Some("twilio 503")));
    assert!(
        store
            .mark_sent(&retry[0].fence(), ts("2025-06-09T12:30:01Z"))
            .await
            .unwrap()
    );
    let sent = store.list_reminders(Some(ReminderStatus::Sent), 10).await.unwrap();
    assert_eq!((sent.len(), sent[0].sent_at), (1, Some(ts("2025-06-09T12:30:01Z"))));
    assert!(
        store
            .claim_due(ts("2025-06-10T00:00:00Z"), lease, "worker-c", 10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.id != due.id)
    );
}

#[tokio::test]
async fn a_failed_reminder_without_retry_is_given_up() {
    let store = mem().await;
    let r = store
        .create_reminder(&reminder("a1", "2h", 120, "2025-06-09T12:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    let now = ts("2025-06-09T12:00:00Z");
    let claimed = store
        .claim_due(now, SignedDuration::from_mins(1), "w", 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, r.id);
    assert!(
        store
            .mark_failed(&claimed[0].fence(), "invalid number", None)
            .await
            .unwrap()
    );
    let failed = store.list_reminders(Some(ReminderStatus::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(
        store
            .claim_due(ts("2025-06-10T00:00:00Z"), SignedDuration::from_mins(1), "w", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_share_a_reminder() {
    claim_race(mem().await).await;
}

/// The file engine detects the write conflicts itself; make sure the claim relies on them
/// correctly there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_share_a_reminder_on_surrealkv() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("surrealkv://{}/db", dir.path().display());
    claim_race(super::super::Store::connect(&url).await.unwrap()).await;
}

async fn claim_race(store: super::super::Store) {
    for i in 0..30 {
        let due = format!("2025-06-09T11:{i:02}:00Z");
        store
            .create_reminder(&reminder(&format!("a{i}"), "24h", 1440, &due))
            .await
            .unwrap()
            .unwrap();
    }
    let now = ts("2025-06-09T12:00:00Z");
    let mut tasks = Vec::new();
    for w in 0..2 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            // Small batches so that the claimers interleave.
            loop {
                let batch = store
                    .claim_due(now, SignedDuration::from_mins(5), &format!("w{w}"), 4)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!((all.len(), unique.len()), (30, 30));
    assert!(
        store
            .list_reminders(Some(ReminderStatus::Pending), 100)
            .await
            .unwrap()
            .iter()
            .all(|r| r.attempts == 1)
    );
}

#[tokio::test]
async fn appointment_changes_carry_their_reminders() {
    let store = mem().await;
    let now = ts("2025-06-09T12:10:00Z");
    // Wed 11 June 10:00 local = 13:00Z.
    let a = store
        .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-11", "10:00"), "30111222"))
        .await
        .unwrap();
    store
        .create_reminder(&reminder(&a.id, "24h", 1440, "2025-06-10T13:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    store
        .create_reminder(&reminder(&a.id, "2h", 120, "2025-06-11T11:00:00Z"))
        .await
        .unwrap()
        .unwrap();

    // To Thu 12 June 09:00 local = 12:00Z: both move with it.
    store
        .reschedule_appointment(&a.id, &slot("Dr. Juan Pérez", "2025-06-12", "09:00"), now)
        .await
        .unwrap()
        .unwrap();
    let due: Vec<_> = store
        .reminders_of(&a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.status, r.due_at))
        .collect();
    assert_eq!(
        due,
        [
            ("24h".to_string(), ReminderStatus::Pending, ts("2025-06-11T12:00:00Z")),
            ("2h".to_string(), ReminderStatus::Pending, ts("2025-06-12T10:00:00Z")),
        ]
    );

    // To Tue 10 June 08:00 local = 11:00Z: 24h before is already past, so that one is dropped.
    store
        .reschedule_appointment(&a.id, &slot("Dr. Juan Pérez", "2025-06-10", "08:00"), now)
        .await
        .unwrap()
        .unwrap();
    let mut due: Vec<_> = store
        .reminders_of(&a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.status))
        .collect();
    due.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        due,
        [
            ("24h".to_string(), ReminderStatus::Cancelled),
            ("2h".to_string(), ReminderStatus::Pending)
        ]
    );

    store.cancel_appointment(&a.id, now).await.unwrap().unwrap();
    assert!(
        store
            .reminders_of(&a.id)
            .await
            .unwrap()
            .iter()
            .all(|r| r.status == ReminderStatus::Cancelled)
    );
}

#[tokio::test]
async fn a_claimed_reminder_can_be_skipped_or_handed_back() {
    let store = mem().await;
    let a = store
        .create_reminder(&reminder("a1", "24h", 1440, "2025-06-09T12:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    let b = store
        .create_reminder(&reminder("a2", "24h", 1440, "2025-06-09T12:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    let now = ts("2025-06-09T12:00:00Z");
    let lease = SignedDuration::from_mins(1);
    let claimed = store.claim_due(now, lease, "w1", 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let fence = |id: &str| claimed.iter().find(|r| r.id == id).unwrap().fence();
    let other = |id: &str| super::Fence {
        owner: "w2".into(),
        ..fence(id)
    };

    // Only the lease holder may do either.
    assert!(
        !store
            .mark_skipped(&other(&a.id), "appointment cancelled")
            .await
            .unwrap()
    );
    assert!(!store.release_claim(&other(&b.id)).await.unwrap());
    assert!(
        store
            .mark_skipped(&fence(&a.id), "appointment cancelled")
            .await
            .unwrap()
    );
    assert!(store.release_claim(&fence(&b.id)).await.unwrap());

    let skipped = store.list_reminders(Some(ReminderStatus::Cancelled), 10).await.unwrap();
    assert_eq!(
        (
            skipped.len(),
            skipped[0].last_error.as_deref(),
            skipped[0].lease_owner.as_deref()
        ),
        (1, Some("appointment cancelled"), None)
    );
    // Handed back: claimable at once by anyone, and the claim did not count as an attempt.
    let again = store.claim_due(now, lease, "w2", 10).await.unwrap();
    assert_eq!(
        again.iter().map(|r| (r.id.as_str(), r.attempts)).collect::<Vec<_>>(),
        [(b.id.as_str(), 1)]
    );
    // A skipped reminder stays closed.
    assert!(!store.mark_sent(&fence(&a.id), now).await.unwrap());
}
