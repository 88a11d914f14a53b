use jiff::{SignedDuration, Timestamp};

use super::super::testing::mem;
use super::*;
use crate::outbound::OutboundKind;

fn msg(text: &str) -> Outbound {
    Outbound {
        session: "s1".into(),
        channel: "sms".into(),
        user: "+5491100000000".into(),
        text: text.into(),
        kind: OutboundKind::Verification,
        ..Default::default()
    }
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_780_000_000 + s).unwrap()
}

const LEASE: SignedDuration = SignedDuration::from_secs(30);

#[tokio::test]
async fn rows_written_in_a_dropped_transaction_never_go_out() {
    let store = mem().await;
    let tx = store.begin().await.unwrap();
    tx.enqueue("s1#1", &[msg("123456")], at(0)).await.unwrap();
    drop(tx);
    assert!(
        store
            .claim_outbox(at(1), LEASE, "a", 10, None)
            .await
            .unwrap()
            .is_empty()
    );

    let tx = store.begin().await.unwrap();
    let ids = tx.enqueue("s1#2", &[msg("654321")], at(0)).await.unwrap();
    tx.commit().await.unwrap();
    // The same turn queued again (a second write of it) is refused, not sent twice.
    assert!(store.enqueue("s1#2", &[msg("654321")], at(0)).await.is_err());
    let claimed = store.claim_outbox(at(1), LEASE, "a", 10, Some(&ids)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message, msg("654321"));
    // Leased: nobody else gets it.
    assert!(
        store
            .claim_outbox(at(2), LEASE, "b", 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.outbox_sent(&claimed[0], Some("SM123"), at(3)).await.unwrap());
    let row = &store.outbox_of("s1").await.unwrap()[0];
    assert_eq!(
        (row.status, row.provider_id.as_deref(), row.attempts),
        (OutboxStatus::Sent, Some("SM123"), 1)
    );
    assert!(
        store
            .claim_outbox(at(100), LEASE, "b", 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_expired_claim_cannot_record_an_outcome_for_the_row_another_sender_holds() {
    let store = mem().await;
    store.enqueue("s1#1", &[msg("hola")], at(0)).await.unwrap();
    let mine = store.claim_outbox(at(0), LEASE, "a", 10, None).await.unwrap();
    // My lease runs out; another replica takes the row over.
    let theirs = store.claim_outbox(at(31), LEASE, "b", 10, None).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].lease_token, mine[0].lease_token + 1);
    assert!(!store.outbox_sent(&mine[0], Some("SMold"), at(32)).await.unwrap());
    assert!(!store.outbox_failed(&mine[0], "late", None).await.unwrap());
    // The same owner claiming again holds a new token: its old claim is fenced off too.
    assert!(store.outbox_release(&theirs[0]).await.unwrap());
    let again = store.claim_outbox(at(33), LEASE, "b", 10, None).await.unwrap();
    assert!(!store.outbox_sent(&theirs[0], None, at(34)).await.unwrap());
    assert!(store.outbox_sent(&again[0], Some("SMnew"), at(34)).await.unwrap());
    let row = &store.outbox_of("s1").await.unwrap()[0];
    assert_eq!(row.provider_id.as_deref(), Some("SMnew"));
}

#[tokio::test]
async fn a_failed_delivery_waits_for_its_retry_time_or_is_given_up() {
    let store = mem().await;
    store.enqueue("s1#1", &[msg("hola")], at(0)).await.unwrap();
    let row = store.claim_outbox(at(0), LEASE, "a", 10, None).await.unwrap().remove(0);
    assert!(store.outbox_failed(&row, "timeout", Some(at(60))).await.unwrap());
    assert!(
        store
            .claim_outbox(at(59), LEASE, "a", 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    let row = store
        .claim_outbox(at(60), LEASE, "a", 10, None)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((row.attempts, row.last_error.as_deref()), (1, Some("timeout")));
    assert!(store.outbox_failed(&row, "refused", None).await.unwrap());
    let row = &store.outbox_of("s1").await.unwrap()[0];
    assert_eq!((row.status, row.attempts), (OutboxStatus::Failed, 2));
}

#[tokio::test]
async fn a_channel_without_message_ids_is_recorded_sent_too() {
    let store = mem().await;
    store.enqueue("s1#1", &[msg("hola")], at(0)).await.unwrap();
    let row = store.claim_outbox(at(0), LEASE, "a", 10, None).await.unwrap().remove(0);
    assert!(store.outbox_sent(&row, None, at(1)).await.unwrap());
    let row = &store.outbox_of("s1").await.unwrap()[0];
    assert_eq!((row.status, row.provider_id.as_deref()), (OutboxStatus::Sent, None));
}

#[tokio::test]
async fn a_reminders_row_is_claimed_by_the_reminder_pass_only() {
    let store = mem().await;
    let link = ReminderLink {
        reminder: "r1".into(),
        deadline: at(3600),
    };
    store
        .enqueue_linked("s1#1", &[msg("recordatorio")], at(0), Some(&link))
        .await
        .unwrap();
    store.enqueue("s1#2", &[msg("hola")], at(0)).await.unwrap();
    let others = store
        .claim_outbox_where(at(1), LEASE, "w", 10, None, Rows::NotReminders)
        .await
        .unwrap();
    assert_eq!(others.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["s1#2#0"]);
    let reminders = store
        .claim_outbox_where(at(1), LEASE, "s", 10, None, Rows::Reminders)
        .await
        .unwrap();
    assert_eq!(
        reminders
            .iter()
            .map(|r| (r.id.as_str(), r.reminder.as_deref(), r.deadline))
            .collect::<Vec<_>>(),
        [("s1#1#0", Some("r1"), Some(at(3600)))]
    );
}
