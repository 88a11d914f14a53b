//! One transaction for a whole turn, and the fault hook that proves it.
//!
//! [`Store::begin`] returns a `Store` whose every statement joins one SurrealDB interactive
//! transaction (the SDK's `begin()`: the same on embedded engines and over `ws://`). The
//! actions a turn performs run against that handle, so their writes (appointment, reminders,
//! escalation, verification codes, outbox rows) and the turn's own commit (session version
//! check, turn log, processed id) become visible together on [`Store::commit`], or never.
//! Dropping the handle without committing rolls everything back. The store's statements
//! keep their own `BEGIN … COMMIT` for when they run alone; inside a turn's transaction
//! those two become no-ops (SurrealDB does not nest transactions).
//!
//! Guards stay in the database: two turns booking one slot both pass their reads, and the
//! second to commit fails on the `appointment_slot` unique index or as a transaction
//! conflict; the service then re-runs that turn on fresh state.
//!
//! The fault hook ([`Store::inject`]) is compiled in always and inert unless a test sets it:
//! it counts the statements sent to the database (including begin and commit) and fails the
//! n-th, or runs a callback just before it (to force a concurrent write at a given point).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use surrealdb::engine::any::Any;
use surrealdb::method::Transaction;

use super::{Store, StoreError, classify};

/// A callback run by the fault hook before the statement it is set at.
pub type FaultHook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the fault hook does when its statement comes.
#[derive(Clone)]
pub enum Fault {
    /// The statement fails as if the process had died or the database was unreachable.
    Fail,
    /// Runs the callback, then the statement as usual.
    Before(FaultHook),
}

#[derive(Default)]
struct Plan {
    /// Statements still to go before the fault; None: no fault set.
    countdown: Option<usize>,
    fault: Option<Fault>,
    /// Statements sent since the store was opened (for tests that count round trips).
    sent: usize,
}

/// Shared by every clone of a store.
#[derive(Clone, Default)]
pub(super) struct Faults(Arc<Mutex<Plan>>);

impl Faults {
    /// Called before each statement: the error to return, if the plan says so.
    pub(super) async fn check(&self) -> Result<(), StoreError> {
        let due = {
            let mut plan = self.0.lock().unwrap_or_else(|p| p.into_inner());
            plan.sent += 1;
            match plan.countdown {
                Some(0) | None => None,
                Some(1) => {
                    plan.countdown = None;
                    plan.fault.take()
                }
                Some(n) => {
                    plan.countdown = Some(n - 1);
                    None
                }
            }
        };
        match due {
            None => Ok(()),
            Some(Fault::Fail) => Err(StoreError::Query("injected fault".into())),
            Some(Fault::Before(hook)) => {
                hook().await;
                Ok(())
            }
        }
    }
}

/// The open transaction; rolled back when dropped uncommitted. The flag is set once it
/// has written appointments: its reads of held slots then go to the database (they must see
/// its own writes), and its commit makes the slot cache forget.
pub(super) struct Open(Option<Transaction<Any>>, AtomicBool);

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = tx.cancel().await;
            });
        }
    }
}

impl Open {
    pub(super) fn tx(&self) -> Option<&Transaction<Any>> {
        self.0.as_ref()
    }

    pub(super) fn wrote_slots(&self) -> bool {
        self.1.load(Ordering::Acquire)
    }
}

impl Store {
    /// A handle whose statements all run in one new transaction (see the module docs).
    pub async fn begin(&self) -> Result<Store, StoreError> {
        if self.txn.is_some() {
            return Err(StoreError::Query("a transaction is already open on this handle".into()));
        }
        self.faults.check().await?;
        let tx = self.db.clone().begin().await.map_err(classify)?;
        Ok(Store {
            db: self.db.clone(),
            txn: Some(Arc::new(Open(Some(tx), AtomicBool::new(false)))),
            faults: self.faults.clone(),
            group: self.group.clone(),
            slots: self.slots.clone(),
        })
    }

    /// Whether this handle is inside a transaction.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// Commits the transaction of a handle from [`Store::begin`] (a no-op on a plain store).
    /// Every clone of the handle must be gone by then.
    pub async fn commit(self) -> Result<(), StoreError> {
        let Some(open) = self.txn else { return Ok(()) };
        let mut open = Arc::try_unwrap(open)
            .map_err(|_| StoreError::Query("the transaction is still in use and cannot be committed".into()))?;
        // On a fault `open` is dropped here, which rolls the transaction back.
        self.faults.check().await?;
        let Some(tx) = open.0.take() else { return Ok(()) };
        let committed = tx.commit().await.map(|_| ()).map_err(classify);
        // After the commit, so that no read between the two keeps the old rows as current;
        // also when it failed (forgetting is only ever a cost).
        if open.wrote_slots() {
            self.slots.forget();
        }
        committed
    }

    /// Appointments were booked, cancelled, moved or deleted through this handle: the slot
    /// cache forgets (now, or when the handle's transaction commits). Call it after the
    /// statement.
    pub(super) fn slots_changed(&self) {
        match &self.txn {
            Some(open) => open.1.store(true, Ordering::Release),
            None => self.slots.forget(),
        }
    }

    /// Sets the fault hook: the `at`-th statement from now (1 = the next) meets `fault`.
    /// For tests; a store without it set behaves exactly as without the hook.
    pub fn inject(&self, at: usize, fault: Fault) {
        let mut plan = self.faults.0.lock().unwrap_or_else(|p| p.into_inner());
        plan.countdown = Some(at.max(1));
        plan.fault = Some(fault);
    }

    /// Whether a fault set by [`Store::inject`] is still waiting for its statement.
    pub fn fault_pending(&self) -> bool {
        self.faults
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .countdown
            .is_some()
    }

    /// Statements sent to the database since the store was opened (round trips).
    pub fn statements_sent(&self) -> usize {
        self.faults.0.lock().unwrap_or_else(|p| p.into_inner()).sent
    }
}

/// `sql` for statements run inside an open transaction: its own BEGIN and COMMIT become
/// no-ops, so that callers find each statement's result at the same index as outside.
pub(super) fn inside(sql: &str) -> String {
    sql.replace("BEGIN TRANSACTION;", "RETURN NONE;")
        .replace("COMMIT TRANSACTION;", "RETURN NONE;")
}

#[cfg(test)]
mod tests {
    use super::super::appointments::tests::{booking, slot};
    use super::super::testing::mem;
    use super::*;
    use crate::engine::session::Session;
    use crate::lang::Lang;

    fn filter() -> super::super::AppointmentFilter {
        Default::default()
    }

    #[tokio::test]
    async fn writes_show_on_commit_and_vanish_when_dropped() {
        let store = mem().await;
        let tx = store.begin().await.unwrap();
        let a = tx
            .create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "30111222"))
            .await
            .unwrap();
        // Read-your-writes inside, nothing outside.
        assert!(tx.get_appointment(&a.id).await.unwrap().is_some());
        assert!(store.get_appointment(&a.id).await.unwrap().is_none());
        let mut s = Session::new("c", "sms", "+549", Lang::Es);
        s.version = 1;
        tx.save_session(&s).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store.get_appointment(&a.id).await.unwrap().is_some());
        assert_eq!(store.load_session("c").await.unwrap().map(|s| s.version), Some(1));

        let tx = store.begin().await.unwrap();
        tx.create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:30"), "30111222"))
            .await
            .unwrap();
        drop(tx);
        assert_eq!(store.list_appointments(&filter()).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn two_transactions_booking_one_slot_let_one_commit() {
        let store = mem().await;
        let a = store.begin().await.unwrap();
        let b = store.begin().await.unwrap();
        let s = || booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "30111222");
        a.create_appointment(&s()).await.unwrap();
        let b_wrote = b.create_appointment(&s()).await;
        a.commit().await.unwrap();
        let b_done = match b_wrote {
            Ok(_) => b.commit().await,
            Err(e) => Err(e),
        };
        assert!(
            matches!(b_done, Err(StoreError::Conflict(_) | StoreError::SlotTaken)),
            "{b_done:?}"
        );
        assert_eq!(store.list_appointments(&filter()).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_stale_session_version_fails_the_transaction() {
        let store = mem().await;
        let mut s = Session::new("c", "sms", "+549", Lang::Es);
        s.version = 1;
        store.save_session(&s).await.unwrap();
        let tx = store.begin().await.unwrap();
        tx.create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "30111222"))
            .await
            .unwrap();
        // Someone else saved version 2 meanwhile; ours is version 2 as well.
        s.version = 2;
        store.save_session(&s).await.unwrap();
        let err = tx.save_session(&s).await;
        let done = match err {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        assert!(matches!(done, Err(StoreError::Conflict(_))), "{done:?}");
        assert!(store.list_appointments(&filter()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_fault_hook_fails_the_chosen_statement_only() {
        let store = mem().await;
        store.inject(2, Fault::Fail);
        assert!(store.load_session("a").await.is_ok());
        assert!(matches!(store.load_session("a").await, Err(StoreError::Query(_))));
        assert!(store.load_session("a").await.is_ok());
        assert!(!store.fault_pending());
    }
}

#[cfg(test)]
mod refusals {
    use super::super::appointments::tests::{booking, slot};
    use super::super::testing::mem;
    use crate::engine::session::Session;
    use crate::lang::Lang;

    /// A statement that refuses (THROW inside the store's own statements: "not booked") or
    /// loses the slot index must leave the turn's transaction usable.
    #[tokio::test]
    async fn a_refused_statement_does_not_spoil_the_transaction() {
        let store = mem().await;
        let taken = booking(slot("Dr. Juan Pérez", "2025-06-10", "09:00"), "30111222");
        store.create_appointment(&taken).await.unwrap();
        let tx = store.begin().await.unwrap();
        let now = "2025-06-09T12:10:00Z".parse().unwrap();
        assert_eq!(tx.cancel_appointment("nope", now).await.unwrap(), None);
        assert!(matches!(
            tx.create_appointment(&taken).await,
            Err(super::StoreError::SlotTaken)
        ));
        let mut s = Session::new("c", "sms", "+549", Lang::Es);
        s.version = 1;
        tx.save_session(&s).await.unwrap();
        tx.create_appointment(&booking(slot("Dr. Juan Pérez", "2025-06-10", "09:30"), "30111222"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.load_session("c").await.unwrap().map(|s| s.version), Some(1));
        assert_eq!(store.list_appointments(&Default::default()).await.unwrap().len(), 2);
    }
}
