//! Group commit: turns without actions (most turns) that are ready at the same moment share one
//! transaction.
//!
//! Why: on the embedded store most of a small turn's commit is the transaction's own cost, not
//! its three writes; with sixteen conversations at once, committing eight turns in one query
//! costs each turn 20–45 % less (docs/performance.md).
//!
//! How, with no background task: a commit joins the queue, then waits for either its answer
//! or a leader slot (at most `LEADERS` batches run at once). Whoever gets a slot takes what is
//! queued (up to `MAX_BATCH`) and commits it in one transaction in which every turn keeps its
//! own version check: a turn whose conversation moved meanwhile is answered `Conflict` (the
//! service runs it again, as it always has) and the others are stored. A batch that fails as
//! a whole (a message id stored twice, a transaction conflict) is committed again one turn at
//! a time, so each turn gets its own outcome. A batch of one is the same statement for one
//! turn (also what a turn with actions sends inside its own transaction), so a quiet system
//! sends one statement per turn as before. The batch runs in a task of its own: a
//! caller that goes away (an HTTP request dropped) cannot leave the turns it took unanswered.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};
use tokio::sync::{Semaphore, oneshot};

use super::{Store, StoreError, rows};

/// Batches in flight at once: one per core of the machines we measured (2); more only queue
/// inside the database.
const LEADERS: usize = 2;
/// Turns in one transaction at most; the gain flattens out past eight.
const MAX_BATCH: usize = 16;

/// One turn's commit, ready to send: the variables its statements read (`session_id`,
/// `expected`, `session_doc`, `turn`, and `message_id` + `processed` when it has a message id).
#[derive(Debug)]
pub(super) struct TurnCommit {
    pub(super) vars: Map<String, Value>,
}

impl TurnCommit {
    fn has_processed(&self) -> bool {
        self.vars.contains_key("processed")
    }
}

/// What a turn whose conversation moved since it was loaded is answered.
fn moved() -> StoreError {
    StoreError::Conflict("the session was saved by someone else".into())
}

struct Waiting {
    commit: TurnCommit,
    answer: oneshot::Sender<Result<(), StoreError>>,
}

/// The queue and leader slots of one database (every clone of a store shares them).
pub(super) struct Group {
    queue: Mutex<Vec<Waiting>>,
    leaders: Arc<Semaphore>,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            queue: Mutex::new(Vec::new()),
            leaders: Arc::new(Semaphore::new(LEADERS)),
        }
    }
}

impl Group {
    fn queue(&self) -> MutexGuard<'_, Vec<Waiting>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits `commit`, alone or with whatever else is waiting (see the module docs).
    pub(super) async fn commit(&self, store: &Store, commit: TurnCommit) -> Result<(), StoreError> {
        let (answer, mut answered) = oneshot::channel();
        self.queue().push(Waiting { commit, answer });
        let abandoned = || StoreError::Query("the commit of this turn was abandoned".into());
        loop {
            tokio::select! {
                biased;
                done = &mut answered => return done.unwrap_or_else(|_| Err(abandoned())),
                permit = self.leaders.clone().acquire_owned() => {
                    let Ok(permit) = permit else { return Err(abandoned()) };
                    let batch: Vec<Waiting> = {
                        let mut queue = self.queue();
                        let n = queue.len().min(MAX_BATCH);
                        queue.drain(..n).collect()
                    };
                    if batch.is_empty() {
                        // Another leader took this turn: it answers.
                        drop(permit);
                        return answered.await.unwrap_or_else(|_| Err(abandoned()));
                    }
                    let store = store.clone();
                    // In the clinic's scope, so its metrics and logs keep their label.
                    let _ = crate::clinics::scope::spawn(async move {
                        store.commit_batch(batch).await;
                        drop(permit);
                    })
                    .await;
                }
            }
        }
    }
}

impl Store {
    /// Commits `batch` and answers each of its turns.
    async fn commit_batch(&self, mut batch: Vec<Waiting>) {
        if batch.len() == 1
            && let Some(one) = batch.pop()
        {
            let done = self.commit_one(&one.commit).await;
            let _ = one.answer.send(done);
            return;
        }
        let commits: Vec<&TurnCommit> = batch.iter().map(|w| &w.commit).collect();
        match self.commit_together(&commits).await {
            Ok(stored) => {
                metrics::histogram!("clinicflow_group_commit_turns").record(batch.len() as f64);
                for (w, ok) in batch.into_iter().zip(stored) {
                    let _ = w.answer.send(if ok { Ok(()) } else { Err(moved()) });
                }
            }
            Err(_) => {
                for w in batch {
                    let done = self.commit_one(&w.commit).await;
                    let _ = w.answer.send(done);
                }
            }
        }
    }

    /// Stores one turn: its session under the version check, its turn log and processed id.
    pub(super) async fn commit_one(&self, commit: &TurnCommit) -> Result<(), StoreError> {
        match self.commit_together(&[commit]).await?[..] {
            [true] => Ok(()),
            _ => Err(moved()),
        }
    }

    /// One transaction for all of `commits`; whether each turn was stored (its version check
    /// passed), in order.
    async fn commit_together(&self, commits: &[&TurnCommit]) -> Result<Vec<bool>, StoreError> {
        let mut sql = String::from("BEGIN TRANSACTION;");
        let mut vars = Map::new();
        for (k, commit) in commits.iter().enumerate() {
            for (name, v) in &commit.vars {
                vars.insert(format!("{name}_{k}"), v.clone());
            }
            let processed = if commit.has_processed() {
                format!(" CREATE type::record('processed', $message_id_{k}) CONTENT $processed_{k} RETURN NONE;")
            } else {
                String::new()
            };
            sql.push_str(&format!(
                " LET $ok_{k} = IF {} {{ CREATE turn CONTENT $turn_{k} RETURN NONE;{processed} true }} ELSE {{ false }};",
                super::sessions::upsert_if_current(&format!("_{k}"))
            ));
        }
        let oks: Vec<String> = (0..commits.len()).map(|k| format!("$ok_{k}")).collect();
        sql.push_str(&format!(" RETURN [{}]; COMMIT TRANSACTION;", oks.join(", ")));
        let mut resp = self.run(&sql, Value::Object(vars)).await?;
        // The flags are the result of the RETURN, the last statement with a value.
        for index in (0..resp.num_statements()).rev() {
            let flags = rows(&mut resp, index)?;
            if flags.is_empty() {
                continue;
            }
            let stored: Option<Vec<bool>> = flags.iter().map(Value::as_bool).collect();
            return match stored {
                Some(stored) if stored.len() == commits.len() => Ok(stored),
                _ => Err(StoreError::Query(format!("a group commit returned {flags:?}"))),
            };
        }
        Err(StoreError::Query("a group commit returned nothing".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::super::{Processed, Store, StoreError, TurnRecord};
    use crate::engine::session::Session;
    use crate::lang::Lang;

    /// Session `id` moved to `version` (saved at `version - 1` before), with its turn record.
    fn turn(id: &str, version: u64) -> (Session, TurnRecord) {
        let mut s = Session::new(id, "sms", "+549", Lang::Es);
        s.version = version;
        s.turns = version;
        let t = TurnRecord::new(&s, jiff::Timestamp::now(), "start".into());
        (s, t)
    }

    fn processed(message_id: &str, session: &str) -> Processed {
        Processed {
            message_id: message_id.into(),
            session: session.into(),
            reply: serde_json::json!({}),
            at: jiff::Timestamp::now(),
            request: None,
        }
    }

    /// Commits every `(session, turn, processed)` at once; the outcomes in the same order.
    async fn all_at_once(
        store: &Store,
        commits: Vec<(Session, TurnRecord, Option<Processed>)>,
    ) -> Vec<Result<(), StoreError>> {
        let tasks: Vec<_> = commits
            .into_iter()
            .map(|(s, t, p)| {
                let store = store.clone();
                tokio::spawn(async move { store.commit_turn(&s, &t, p.as_ref()).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| panic!("commit task: {e}")));
        }
        out
    }

    async fn turns_of(store: &Store, id: &str) -> usize {
        store.recent_turns(id, 100).await.unwrap().len()
    }

    #[tokio::test]
    async fn turns_committing_together_share_transactions_and_are_all_stored() {
        let store = mem().await;
        let before = store.statements_sent();
        let commits = (0..40).map(|i| {
            let (s, t) = turn(&format!("c{i}"), 1);
            (s, t, Some(processed(&format!("m{i}"), &format!("c{i}"))))
        });
        let done = all_at_once(&store, commits.collect()).await;
        assert!(done.iter().all(Result::is_ok), "{done:?}");
        let sent = store.statements_sent() - before;
        assert!(sent < 10, "40 turns took {sent} statements: they were not grouped");
        for i in 0..40 {
            let id = format!("c{i}");
            assert_eq!(
                store.load_session(&id).await.unwrap().map(|s| s.version),
                Some(1),
                "{id}"
            );
            assert_eq!(turns_of(&store, &id).await, 1, "{id}");
            assert!(store.processed(&format!("m{i}")).await.unwrap().is_some(), "m{i}");
        }
    }

    /// A conversation that moved meanwhile is refused inside a batch; the rest of the batch
    /// is stored.
    #[tokio::test]
    async fn a_stale_turn_in_a_batch_is_refused_alone() {
        let store = mem().await;
        let (mut stale, stale_turn) = turn("stale", 2);
        stale.version = 5;
        let saved = Session {
            version: 1,
            ..stale.clone()
        };
        store.save_session(&saved).await.unwrap();
        let mut commits: Vec<_> = (0..20)
            .map(|i| {
                let (s, t) = turn(&format!("c{i}"), 1);
                (s, t, None)
            })
            .collect();
        commits.insert(10, (stale, stale_turn, None));
        let done = all_at_once(&store, commits).await;
        for (i, d) in done.iter().enumerate() {
            if i == 10 {
                assert!(matches!(d, Err(StoreError::Conflict(_))), "{d:?}");
            } else {
                assert!(d.is_ok(), "{i}: {d:?}");
            }
        }
        assert_eq!(store.load_session("stale").await.unwrap().map(|s| s.version), Some(1));
        assert_eq!(turns_of(&store, "stale").await, 0);
        assert_eq!(turns_of(&store, "c19").await, 1);
    }

    /// Two conversations claiming one message id fail their batch as a whole; committed one
    /// by one, the first is stored and the second refused, and nobody else is lost.
    #[tokio::test]
    async fn a_batch_that_fails_whole_is_committed_turn_by_turn() {
        let store = mem().await;
        let commits: Vec<_> = (0..12)
            .map(|i| {
                let (s, t) = turn(&format!("c{i}"), 1);
                let id = if i == 6 || i == 7 {
                    "same".to_string()
                } else {
                    format!("m{i}")
                };
                (s, t, Some(processed(&id, &format!("c{i}"))))
            })
            .collect();
        let done = all_at_once(&store, commits).await;
        let refused: Vec<usize> = (0..12).filter(|i| done[*i].is_err()).collect();
        assert_eq!(refused.len(), 1, "{done:?}");
        assert!(matches!(done[refused[0]], Err(StoreError::Conflict(_))), "{done:?}");
        for i in (0..12).filter(|i| !refused.contains(i)) {
            assert_eq!(turns_of(&store, &format!("c{i}")).await, 1, "c{i}");
        }
        assert_eq!(turns_of(&store, &format!("c{}", refused[0])).await, 0);
    }
}
