//! `verify_patient {document, code?}`: proves that the person in this conversation is the
//! patient whose document they gave, before anything about that patient's appointments is
//! shown or changed.
//!
//! → `{ ok: true, verified: true }` when
//!   - this conversation comes from a contact an appointment of that document was booked from
//!     (no extra step for the patient who booked), or
//!   - `code` is the one-time code sent for it to this conversation, still valid, or
//!   - the caller is staff (the integrator API).
//!
//! Otherwise `{ ok: false, verified: false, reason }` with reason
//!   - `code_sent`: a code was sent to the contact on record, *if there is one*. A document
//!     with appointments and one without get exactly this answer, and a code is issued (and
//!     counted) for both, so nothing tells them apart;
//!   - `wrong_code` (with `attempts_left`): that was not the code, or it expired;
//!   - `locked`: too many wrong codes; the document is locked for `clinic.identity.lock_minutes`
//!     and an escalation is opened for staff.
//!
//! The service performs this action with its channel sender (the code goes out through the
//! same path as reminders) and records the verified document in the session (`patient`).

use crate::flow::actions::Refusal;
use jiff::SignedDuration;
use serde_json::{Value, json};

use super::args::{Args, normalize_document, refuse, text};
use super::{ActionContext, ActionError};
use crate::identity::{code_hash, document_hash, new_code, same_contact};
use crate::outbound::{Outbound, OutboundKind};
use crate::store::{Appointment, AppointmentFilter, PendingCode, Verification};

/// What `verify_patient` did.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The result flows see.
    pub result: Value,
    /// The document's keyed hash when the patient is verified (the session keeps it).
    pub patient: Option<String>,
    /// A code to deliver to the contact on record.
    pub send: Option<Outbound>,
}

impl Verified {
    fn yes(document_hash: String) -> Verified {
        Verified {
            result: json!({ "ok": true, "verified": true }),
            patient: Some(document_hash),
            send: None,
        }
    }

    fn no(reason: Refusal, extra: Value) -> Verified {
        let mut result = json!({ "ok": false, "verified": false, "reason": reason });
        if let (Some(out), Value::Object(extra)) = (result.as_object_mut(), extra) {
            out.extend(extra);
        }
        Verified {
            result,
            patient: None,
            send: None,
        }
    }
}

pub(crate) async fn run(ctx: &ActionContext<'_>, args: &Args) -> Result<Verified, ActionError> {
    let Some(document) = text(args, "document")
        .map(|d| normalize_document(&d))
        .filter(|d| !d.is_empty())
    else {
        return Ok(Verified {
            result: refuse(Refusal::MissingDocument),
            patient: None,
            send: None,
        });
    };
    let hash = document_hash(&document);
    if ctx.staff || ctx.session.patient.as_deref() == Some(hash.as_str()) {
        return Ok(Verified::yes(hash));
    }
    let filter = AppointmentFilter {
        document: Some(document),
        ..Default::default()
    };
    let appointments = ctx.store.list_appointments(&filter).await?;
    let here = (ctx.session.channel.as_str(), ctx.session.user.as_str());
    if appointments.iter().any(|a| same_contact((&a.channel, &a.user), here)) {
        return Ok(Verified::yes(hash));
    }

    let settings = &ctx.clinic.identity;
    let now = ctx.now.timestamp();
    let mut record = ctx
        .store
        .verification(&hash)
        .await?
        .unwrap_or_else(|| Verification::new(&hash, now));
    if record.locked_until.is_some_and(|t| t > now) {
        return Ok(Verified::no(Refusal::Locked, json!({})));
    }
    if record.locked_until.is_some() {
        // The lock has run out: a fresh start.
        record = Verification::new(&hash, now);
    }
    let pending = record.pending(&ctx.session.id, now).cloned();

    // A code read as a number loses its leading zeros ("012345" → 12345): pad them back.
    if let Some(code) = text(args, "code").map(|c| format!("{c:0>width$}", width = crate::identity::CODE_DIGITS)) {
        let right = pending
            .as_ref()
            .is_some_and(|p| p.code_hash == code_hash(&hash, &ctx.session.id, &code));
        if right {
            ctx.store.delete_verification(&hash).await?;
            return Ok(Verified::yes(hash));
        }
        record.failures += 1;
        record.updated_at = now;
        if record.failures >= settings.max_failures {
            record.locked_until = Some(now + SignedDuration::from_mins(i64::from(settings.lock_minutes)));
            record.codes.clear();
            ctx.store.save_verification(&record).await?;
            let mut esc = Args::new();
            esc.insert("reason".into(), json!("identity_locked"));
            super::escalate::run(ctx, &esc).await?;
            tracing::warn!("a patient document was locked after repeated wrong verification codes");
            return Ok(Verified::no(Refusal::Locked, json!({})));
        }
        ctx.store.save_verification(&record).await?;
        let left = settings.max_failures - record.failures;
        return Ok(Verified::no(Refusal::WrongCode, json!({ "attempts_left": left })));
    }

    // No code given: issue one, unless this conversation already has one still valid (asking
    // again does not flood the patient's phone).
    if pending.is_some() {
        return Ok(Verified::no(Refusal::CodeSent, json!({})));
    }
    let code = new_code();
    let pending = PendingCode {
        session: ctx.session.id.clone(),
        code_hash: code_hash(&hash, &ctx.session.id, &code),
        expires_at: now + SignedDuration::from_mins(i64::from(settings.code_minutes)),
    };
    record.issue(pending, now);
    record.updated_at = now;
    ctx.store.save_verification(&record).await?;
    let mut out = Verified::no(Refusal::CodeSent, json!({}));
    out.send = contact_on_record(&appointments).map(|a| Outbound {
        session: a.session.clone(),
        channel: a.channel.clone(),
        user: a.user.clone(),
        text: code_message(ctx, &code),
        kind: OutboundKind::Verification,
        appointment: None,
        template: None,
        by: None,
    });
    Ok(out)
}

/// The contact the latest booking of the document came from. The sender knows which
/// channels it can reach (a phone call's number gets an SMS; an API contact none).
fn contact_on_record(appointments: &[Appointment]) -> Option<&Appointment> {
    appointments.iter().max_by_key(|a| a.created_at)
}

fn code_message(ctx: &ActionContext<'_>, code: &str) -> String {
    let minutes = ctx.clinic.identity.code_minutes;
    let clinic = &ctx.clinic.name;
    match ctx.session.lang {
        crate::lang::Lang::En => format!(
            "{clinic}: your verification code is {code}. It expires in {minutes} minutes. \
             If you did not ask for it, ignore this message: nobody can see your appointments without it."
        ),
        _ => format!(
            "{clinic}: su código de verificación es {code}. Vence en {minutes} minutos. \
             Si no lo pidió, ignore este mensaje: nadie puede ver sus turnos sin él."
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::run;
    use crate::actions::ActionContext;
    use crate::actions::testutil::Env;
    use crate::engine::session::Session;
    use crate::lang::Lang;

    fn other() -> Session {
        Session::new(
            "whatsapp:+5491199999999",
            "whatsapp",
            "whatsapp:+5491199999999",
            Lang::Es,
        )
    }

    async fn verify(env: &Env, session: &Session, args: serde_json::Value) -> super::Verified {
        let ctx = ActionContext {
            store: &env.store,
            clinic: &env.clinic,
            session,
            now: &env.now,
            staff: false,
        };
        run(&ctx, args.as_object().unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn the_contact_that_booked_needs_no_code() {
        let env = Env::new().await;
        env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        let v = verify(&env, &env.session, json!({ "document": "30.111.222" })).await;
        assert_eq!(v.result["verified"], true);
        assert!(v.patient.is_some() && v.send.is_none());
    }

    #[tokio::test]
    async fn another_contact_gets_a_code_and_the_same_answer_for_an_unknown_document() {
        let env = Env::new().await;
        env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        let s = other();
        let known = verify(&env, &s, json!({ "document": "30111222" })).await;
        let unknown = verify(&env, &s, json!({ "document": "40111222" })).await;
        assert_eq!(known.result, unknown.result);
        assert_eq!(known.result["reason"], "code_sent");
        // Only the known document's contact on record gets a message.
        let sent = known.send.expect("a code for the contact on record");
        assert_eq!(sent.user, env.session.user);
        assert!(unknown.send.is_none());
        let code = crate::identity::find_code(&sent.text).unwrap();
        // Another conversation cannot use it.
        let elsewhere = Session::new("sms:+5491188888888", "sms", "+5491188888888", Lang::Es);
        let stolen = verify(&env, &elsewhere, json!({ "document": "30111222", "code": code })).await;
        assert_eq!(stolen.result["reason"], "wrong_code");
        let ok = verify(&env, &s, json!({ "document": "30111222", "code": code })).await;
        assert_eq!(ok.result["verified"], true, "{code} in {}", sent.text);
    }

    #[tokio::test]
    async fn wrong_codes_lock_the_document_and_open_an_escalation() {
        let env = Env::new().await;
        env.book("Dr. Juan Pérez", "2025-06-10", "09:00", "30111222").await;
        let s = other();
        verify(&env, &s, json!({ "document": "30111222" })).await;
        let first = verify(&env, &s, json!({ "document": "30111222", "code": "000000" })).await;
        assert_eq!(first.result["reason"], "wrong_code");
        assert_eq!(first.result["attempts_left"], 2);
        verify(&env, &s, json!({ "document": "30111222", "code": "000001" })).await;
        let third = verify(&env, &s, json!({ "document": "30111222", "code": "000002" })).await;
        assert_eq!(third.result["reason"], "locked");
        let open = env.store.list_escalations(None, 10).await.unwrap();
        assert_eq!(open.len(), 1);
        // Locked even for a fresh code request.
        let again = verify(&env, &s, json!({ "document": "30111222" })).await;
        assert_eq!(again.result["reason"], "locked");
        assert!(again.send.is_none());
        let stored = env
            .store
            .verification(&crate::identity::document_hash("30111222"))
            .await
            .unwrap()
            .unwrap();
        assert!(stored.codes.is_empty() && stored.locked_until.is_some());
    }
}
