//! `escalate {reason?}`
//!
//! Opens an escalation for staff with the conversation so far (the last turns of this
//! session from the turn log) → `{ ok: true, id }`. Marking the session as waiting for
//! staff is the engine's job, not this action's.

use serde_json::{Value, json};

use super::args::{Args, text};
use super::{ActionContext, ActionError};
use crate::store::NewEscalation;

/// Enough context for a person to pick the conversation up without scrolling a phone.
const TRANSCRIPT_TURNS: usize = 30;

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Value, ActionError> {
    let mut transcript = ctx.store.recent_turns(&ctx.session.id, TRANSCRIPT_TURNS).await?;
    // The message that led here is not in the log yet (the turn is committed after its
    // effects): add it so staff sees what the patient last wrote.
    if let Some(message) = args.get("message").and_then(Value::as_str) {
        transcript.push(crate::store::TurnRecord {
            session: ctx.session.id.clone(),
            seq: ctx.session.turns,
            at: ctx.now.timestamp(),
            input: message.to_string(),
            replies: Vec::new(),
            intent: None,
            nlu_source: None,
            state_before: ctx.session.position(),
            state_after: ctx.session.position(),
            latency_us: 0,
            llm_tokens: None,
            llm_calls: Vec::new(),
            effects: Vec::new(),
            problems: Vec::new(),
        });
    }
    let new = NewEscalation {
        session: ctx.session.id.clone(),
        channel: ctx.session.channel.clone(),
        user: ctx.session.user.clone(),
        reason: text(args, "reason"),
        transcript,
        created_at: ctx.now.timestamp(),
    };
    let escalation = ctx.store.create_escalation(&new).await?;
    Ok(json!({ "ok": true, "id": escalation.id }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::actions::testutil::Env;
    use crate::store::{EscalationStatus, TurnRecord};

    #[tokio::test]
    async fn escalation_carries_the_conversation_so_far() {
        let env = Env::new().await;
        for (seq, input) in [
            (1, "hola"),
            (2, "quiero un turno"),
            (3, "quiero hablar con una persona"),
        ] {
            let turn = TurnRecord {
                session: env.session.id.clone(),
                seq,
                at: env.now.timestamp(),
                input: input.into(),
                replies: vec!["…".into()],
                intent: None,
                nlu_source: None,
                state_before: "idle".into(),
                state_after: "idle".into(),
                latency_us: 100,
                llm_tokens: None,
                llm_calls: Vec::new(),
                effects: vec![],
                problems: Vec::new(),
            };
            env.store.append_turn(&turn).await.unwrap();
        }
        let out = env.call("escalate", json!({ "reason": "asked_for_human" })).await;
        assert_eq!(out["ok"], true);
        let e = env
            .store
            .get_escalation(out["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.status, e.reason.as_deref(), e.channel.as_str()),
            (EscalationStatus::Open, Some("asked_for_human"), "whatsapp")
        );
        let inputs: Vec<_> = e.transcript.iter().map(|t| t.input.as_str()).collect();
        assert_eq!(inputs, ["hola", "quiero un turno", "quiero hablar con una persona"]);
        // No reason is fine too.
        let out = env.call("escalate", json!({})).await;
        let e = env
            .store
            .get_escalation(out["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.reason, None);
    }
}
