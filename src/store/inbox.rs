//! What the staff inbox reads beyond an escalation's own record: the conversation since the
//! handoff (the patient's later messages and staff's replies are ordinary turns of the log),
//! and who has taken it.

use serde_json::json;

use super::escalations::{Escalation, EscalationStatus};
use super::{PLAIN_ID, Store, StoreError, decode_rows};
use crate::store::TurnRecord;

/// How many turns after the handoff a transcript shows (a long chat with staff stays readable).
const LATER_TURNS: usize = 200;

impl Store {
    /// Turns of a conversation after position `seq`, oldest first (at most `limit`).
    pub async fn turns_after(&self, session_id: &str, seq: u64, limit: usize) -> Result<Vec<TurnRecord>, StoreError> {
        let sql = format!(
            "SELECT {PLAIN_ID} FROM turn WHERE session = $session_id AND seq > $seq ORDER BY seq ASC LIMIT $limit"
        );
        let mut resp = self
            .run(&sql, json!({ "session_id": session_id, "seq": seq, "limit": limit }))
            .await?;
        decode_rows(&mut resp, 0, "turn")
    }

    /// The escalation's transcript followed by everything logged since the handoff: what the
    /// patient wrote while waiting and what staff answered. For an open escalation only; a
    /// resolved one shows what it had (later turns belong to the assistant again).
    pub async fn full_transcript(&self, e: &Escalation) -> Result<Vec<TurnRecord>, StoreError> {
        let mut turns = e.transcript.clone();
        if e.status != EscalationStatus::Open {
            return Ok(turns);
        }
        // The handoff turn itself is in the snapshot only as the patient's message (it was
        // taken before the turn committed): its logged version, with the replies, replaces it.
        let last = turns.iter().map(|t| t.seq).max().unwrap_or(0);
        let later = self
            .turns_after(&e.session, last.saturating_sub(1), LATER_TURNS)
            .await?;
        turns.retain(|t| !later.iter().any(|l| l.seq == t.seq));
        turns.extend(later);
        Ok(turns)
    }

    /// The open escalation of a conversation, if any (the newest when, oddly, several are).
    pub async fn open_escalation_of(&self, session_id: &str) -> Result<Option<Escalation>, StoreError> {
        let sql = format!(
            "SELECT {PLAIN_ID} FROM escalation WHERE session = $session_id AND status = 'open'
                 ORDER BY created_at DESC LIMIT 1"
        );
        let mut resp = self.run(&sql, json!({ "session_id": session_id })).await?;
        Ok(decode_rows(&mut resp, 0, "escalation")?.into_iter().next())
    }

    /// Marks an open escalation as taken by a member of staff (`None`: released for anyone).
    /// `NotFound` when there is no such escalation; a resolved one is returned unchanged.
    pub async fn take_escalation(&self, id: &str, by: Option<&str>) -> Result<Escalation, StoreError> {
        let sql = format!(
            "UPDATE type::record('escalation', $id) SET taken_by = ($by ?? NONE)
                 WHERE status = 'open' RETURN {PLAIN_ID}"
        );
        let mut resp = self.run_retry(&sql, json!({ "id": id, "by": by })).await?;
        if let Some(e) = decode_rows(&mut resp, 0, "escalation")?.into_iter().next() {
            return Ok(e);
        }
        self.get_escalation(id).await?.ok_or(StoreError::NotFound {
            table: "escalation",
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::super::testing::mem;
    use super::super::turns::sample_turn;
    use crate::store::NewEscalation;

    #[tokio::test]
    async fn the_transcript_goes_on_after_the_handoff_until_resolved() {
        let store = mem().await;
        for (seq, text) in [(1, "hola"), (2, "una persona"), (3, "¿hola?"), (4, "")] {
            store.append_turn(&sample_turn("s1", seq, text)).await.unwrap();
        }
        store.append_turn(&sample_turn("other", 3, "not mine")).await.unwrap();
        let at = Timestamp::from_second(1_749_470_000).unwrap();
        let e = store
            .create_escalation(&NewEscalation {
                session: "s1".into(),
                channel: "whatsapp".into(),
                user: "whatsapp:+5491100000000".into(),
                reason: None,
                transcript: vec![sample_turn("s1", 1, "hola"), sample_turn("s1", 2, "una persona")],
                created_at: at,
            })
            .await
            .unwrap();
        let inputs = |t: Vec<crate::store::TurnRecord>| t.into_iter().map(|t| t.input).collect::<Vec<_>>();
        assert_eq!(
            inputs(store.full_transcript(&e).await.unwrap()),
            ["hola", "una persona", "¿hola?", ""]
        );
        assert_eq!(
            store.open_escalation_of("s1").await.unwrap().map(|x| x.id),
            Some(e.id.clone())
        );
        let taken = store.take_escalation(&e.id, Some("ana")).await.unwrap();
        assert_eq!(taken.taken_by.as_deref(), Some("ana"));
        let released = store.take_escalation(&e.id, None).await.unwrap();
        assert_eq!(released.taken_by, None);
        let done = store.resolve_escalation(&e.id, Some("ana"), None, at).await.unwrap();
        assert_eq!(
            inputs(store.full_transcript(&done).await.unwrap()),
            ["hola", "una persona"]
        );
        assert_eq!(store.open_escalation_of("s1").await.unwrap(), None);
    }
}
