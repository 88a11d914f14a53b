//! The turn log: one append-only record per turn, for transcripts (escalations, staff
//! review) and metrics. Never updated.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::group::TurnCommit;
use super::processed::Processed;
use super::sessions::save_vars;
use super::{PLAIN_ID, Store, StoreError, decode_rows, to_doc};
use crate::engine::session::Session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// Conversation id.
    pub session: String,
    /// Position in the conversation (the session's `turns` counter); unique per session, so a
    /// turn cannot be logged twice.
    pub seq: u64,
    #[serde(with = "super::time::instant")]
    pub at: Timestamp,
    /// What the patient sent (text, transcribed speech, digits…). Personal data.
    pub input: String,
    pub replies: Vec<String>,
    #[serde(default)]
    pub intent: Option<String>,
    /// Which NLU understood it: "rules", "llm", "button"…
    #[serde(default)]
    pub nlu_source: Option<String>,
    /// `Session::position()` before and after the turn.
    pub state_before: String,
    pub state_after: String,
    pub latency_us: u64,
    /// LLM tokens of the turn, in and out, over all its calls (None: no call).
    #[serde(default)]
    pub llm_tokens: Option<u64>,
    /// Each LLM call of the turn: what for, tokens, latency and how it ended.
    #[serde(default)]
    pub llm_calls: Vec<LlmCall>,
    /// Effects requested and their results, as JSON objects.
    #[serde(default)]
    pub effects: Vec<serde_json::Value>,
    /// What went wrong in the clinic's flows during the turn (a template that failed to
    /// render, a condition that errored): the patient got the fallback reply instead.
    #[serde(default)]
    pub problems: Vec<String>,
}

impl TurnRecord {
    /// The record of a turn of `session` (already moved to where the turn left it) at `at`,
    /// that started at `state_before`; what the turn said and did is filled in by the caller.
    pub fn new(session: &Session, at: Timestamp, state_before: String) -> TurnRecord {
        TurnRecord {
            session: session.id.clone(),
            seq: session.turns,
            at,
            input: String::new(),
            replies: Vec::new(),
            intent: None,
            nlu_source: None,
            state_before,
            state_after: session.position(),
            latency_us: 0,
            llm_tokens: None,
            llm_calls: Vec::new(),
            effects: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// One LLM call, for cost and latency accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    /// "nlu", "phrase" or "transcription".
    pub purpose: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub latency_ms: u64,
    /// "ok", "cached", "invalid", "timeout", "error", "rejected" (the mode was refused).
    pub outcome: String,
}

impl Store {
    pub async fn append_turn(&self, turn: &TurnRecord) -> Result<(), StoreError> {
        self.run(
            "CREATE turn CONTENT $turn RETURN NONE",
            json!({ "turn": to_doc(turn)? }),
        )
        .await
        .map(|_| ())
    }

    /// The last `limit` turns of a conversation, oldest first.
    pub async fn recent_turns(&self, session_id: &str, limit: usize) -> Result<Vec<TurnRecord>, StoreError> {
        let sql = format!("SELECT {PLAIN_ID} FROM turn WHERE session = $session_id ORDER BY seq DESC LIMIT $limit");
        let mut resp = self
            .run(&sql, json!({ "session_id": session_id, "limit": limit }))
            .await?;
        let mut turns: Vec<TurnRecord> = decode_rows(&mut resp, 0, "turn")?;
        turns.reverse();
        Ok(turns)
    }

    /// Persists a whole turn in one transaction: the session (under the optimistic contract
    /// of [`Store::save_session`]), its log record and, when the input came with a channel
    /// message id, the processed marker. Either all of it is stored or none, so a retried
    /// webhook never sees a half-applied turn.
    pub async fn commit_turn(
        &self,
        session: &Session,
        turn: &TurnRecord,
        processed: Option<&Processed>,
    ) -> Result<(), StoreError> {
        let mut vars = save_vars(session)?;
        vars.insert("turn".into(), to_doc(turn)?);
        if let Some(p) = processed {
            vars.insert("message_id".into(), json!(p.message_id));
            vars.insert("processed".into(), to_doc(p)?);
        }
        let commit = TurnCommit { vars };
        match &self.txn {
            // Inside a turn's transaction it is one more statement of it.
            Some(_) => self.commit_one(&commit).await,
            // Alone, it may share a transaction with turns committing at the same moment.
            None => self.group.commit(self, commit).await,
        }
    }
}

#[cfg(test)]
pub(crate) fn sample_turn(session: &str, seq: u64, input: &str) -> TurnRecord {
    TurnRecord {
        session: session.into(),
        seq,
        at: Timestamp::from_second(1_749_470_000 + seq as i64).unwrap(),
        input: input.into(),
        replies: vec![format!("reply to {input}")],
        intent: Some("book_appointment".into()),
        nlu_source: Some("rules".into()),
        state_before: "idle".into(),
        state_after: "book_appointment.details".into(),
        latency_us: 850,
        llm_tokens: None,
        llm_calls: Vec::new(),
        effects: vec![json!({ "action": "find_availability", "result": { "available": true } })],
        problems: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::mem;
    use super::*;
    use crate::lang::Lang;

    #[tokio::test]
    async fn recent_turns_are_the_last_ones_in_order() {
        let store = mem().await;
        for seq in 1..=5 {
            store
                .append_turn(&sample_turn("s", seq, &format!("msg {seq}")))
                .await
                .unwrap();
        }
        store.append_turn(&sample_turn("other", 1, "x")).await.unwrap();
        let turns = store.recent_turns("s", 3).await.unwrap();
        let inputs: Vec<_> = turns.iter().map(|t| t.input.as_str()).collect();
        assert_eq!(inputs, ["msg 3", "msg 4", "msg 5"]);
        assert_eq!(turns[2], sample_turn("s", 5, "msg 5"));
        // The same position cannot be logged twice.
        let dup = store.append_turn(&sample_turn("s", 5, "again")).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    }

    #[tokio::test]
    async fn commit_turn_is_all_or_nothing() {
        let store = mem().await;
        let mut s = Session::new("c", "sms", "+54911", Lang::Es);
        s.version = 1;
        s.turns = 1;
        let p = Processed::new("SM1", "c", json!({ "replies": ["hola"] }), Timestamp::now());
        store
            .commit_turn(&s, &sample_turn("c", 1, "hola"), Some(&p))
            .await
            .unwrap();
        assert_eq!(store.load_session("c").await.unwrap().unwrap().turns, 1);
        assert_eq!(
            store.processed("SM1").await.unwrap().map(|p| p.reply),
            Some(json!({ "replies": ["hola"] }))
        );

        // A stale session version rolls back the turn and the processed marker too.
        let p2 = Processed::new("SM2", "c", json!({}), Timestamp::now());
        let err = store.commit_turn(&s, &sample_turn("c", 2, "otra"), Some(&p2)).await;
        assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
        assert_eq!(store.recent_turns("c", 10).await.unwrap().len(), 1);
        assert_eq!(store.processed("SM2").await.unwrap(), None);

        // A message id seen before also rolls back the session write.
        s.version = 2;
        s.turns = 2;
        let err = store.commit_turn(&s, &sample_turn("c", 2, "otra"), Some(&p)).await;
        assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
        // Errors get logged: they must not quote ids that may hold phone numbers.
        assert!(!format!("{err:?}").contains("SM1"), "{err:?}");
        assert_eq!(store.load_session("c").await.unwrap().unwrap().version, 1);
    }
}
