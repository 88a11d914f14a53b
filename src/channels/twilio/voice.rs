//! Phone calls: POST /twilio/voice (the call starts: greeting), /twilio/voice/gather (what
//! the caller said → a turn → the next question), /twilio/voice/status (the call ended).
//!
//! Each answer is a `<Gather>` that speaks the replies and listens, followed by a
//! `<Redirect>` Twilio follows when the caller says nothing. The turn number `n` travels in
//! the signed action URL, so a retried request has the same message id (CallSid:n) and is
//! answered from the stored reply instead of running again. Silence is counted in the URL
//! too: the first one asks again, the second says goodbye and hangs up.
//!
//! When a flow ends (a booking made, a question answered) the caller is asked whether there
//! is anything else instead of being hung up on: a caller who asked the opening hours may
//! want a turn next. "No", "gracias", "chau" or silence after that question end the call.

use poem::web::Data;
use poem::{Request, Response, handler};

use super::params::{Params, query_param};
use super::routes::{bad_request, base_path, server_error};
use super::speech::for_say;
use super::twiml::{self, Verb};
use crate::flow::clinic::VoiceSettings;
use crate::lang::Lang;
use crate::server::AppState;
use crate::service::{CallEnd, MAX_TEXT, TurnRequest, TurnResponse};

/// The `silence` value of the Redirect after "anything else?": silence there ends the call
/// with thanks, not with "I can't hear you".
const AFTER_OFFER: u8 = 3;

/// Intents that, once a flow has ended or after "anything else?", mean the caller is done.
const CLOSING: [&str; 4] = ["goodbye", "thanks", "deny", "stop"];

/// Call statuses after which the call is over.
const FINAL: [&str; 5] = ["completed", "busy", "no-answer", "failed", "canceled"];

struct Call {
    sid: String,
    from: String,
    session_id: String,
}

impl Call {
    fn parse(p: &Params) -> Option<Call> {
        let sid = p.get("CallSid")?.to_string();
        let from = p.get("From")?.to_string();
        let to = p.get("To")?;
        Some(Call {
            session_id: super::session_id("voice", &from, to),
            sid,
            from,
        })
    }
}

/// What the caller hears from us in a language.
struct Lines {
    silence: &'static str,
    goodbye: &'static str,
    transfer: &'static str,
    call_back: &'static str,
    anything_else: &'static str,
    farewell: &'static str,
}

fn lines(lang: Lang) -> Lines {
    match lang {
        Lang::Es => Lines {
            silence: "Disculpe, no lo escuché.",
            goodbye: "No lo escucho. Lo esperamos cuando quiera volver a llamar. ¡Hasta luego!",
            transfer: "Le comunico con una persona del equipo de la clínica.",
            call_back: "Una persona del equipo de la clínica lo va a llamar a este número a la brevedad. Gracias por llamar.",
            anything_else: "¿Puedo ayudarlo en algo más?",
            farewell: "Gracias por llamar. ¡Hasta luego!",
        },
        Lang::En => Lines {
            silence: "Sorry, I didn't hear you.",
            goodbye: "I can't hear you. Call us again anytime. Goodbye!",
            transfer: "I'm putting you through to a member of our staff.",
            call_back: "A member of our staff will call you back at this number shortly. Thank you for calling.",
            anything_else: "Is there anything else I can help you with?",
            farewell: "Thank you for calling. Goodbye!",
        },
    }
}

/// Builds the TwiML of one answer in the conversation's language.
struct Speaker {
    settings: VoiceSettings,
    lang: Lang,
    base: String,
}

impl Speaker {
    fn say(&self, text: &str) -> Verb {
        let v = self.settings.lang(self.lang);
        Verb::Say {
            text: for_say(text, self.lang),
            voice: v.voice.clone(),
            language: v.language.clone(),
        }
    }

    fn says(&self, texts: &[String]) -> Vec<Verb> {
        texts
            .iter()
            .filter(|t| !for_say(t, self.lang).is_empty())
            .map(|t| self.say(t))
            .collect()
    }

    fn gather_url(&self, n: u64, silence: Option<u8>) -> String {
        match silence {
            Some(s) => format!("{}/twilio/voice/gather?n={n}&silence={s}", self.base),
            None => format!("{}/twilio/voice/gather?n={n}", self.base),
        }
    }

    /// Speak, listen for answer `n`, and follow up on silence.
    fn ask(&self, prompt: Vec<Verb>, n: u64, silence: u8) -> Response {
        self.listen(prompt, self.gather_url(n, None), self.gather_url(n, Some(silence)))
    }

    /// "Anything else?": the answer's URL says so (`offered=1`), and silence ends the call.
    fn offer_more(&self, mut prompt: Vec<Verb>, n: u64) -> Response {
        prompt.push(self.say(lines(self.lang).anything_else));
        let action = format!("{}&offered=1", self.gather_url(n, None));
        self.listen(prompt, action, self.gather_url(n, Some(AFTER_OFFER)))
    }

    fn listen(&self, prompt: Vec<Verb>, action: String, redirect: String) -> Response {
        let v = self.settings.lang(self.lang);
        let hints = (!self.settings.hints.is_empty()).then(|| self.settings.hints.join(", "));
        twiml::response(&[
            Verb::Gather {
                action,
                language: v.speech_language.clone(),
                speech_timeout: self.settings.speech_timeout.clone(),
                hints,
                prompt,
            },
            Verb::Redirect(redirect),
        ])
    }
}

fn speaker(state: &AppState, lang: Lang) -> Speaker {
    Speaker {
        settings: state.service.bot().clinic.voice.clone(),
        lang,
        base: base_path(state),
    }
}

/// The conversation's language (the clinic's when it is new).
async fn lang_of(state: &AppState, session_id: &str) -> Lang {
    state.service.lang_of(session_id).await
}

/// POST /twilio/voice: the call starts with the clinic's greeting.
#[handler]
pub async fn start(state: Data<&AppState>, params: Data<&Params>) -> Response {
    let Some(call) = Call::parse(&params) else {
        return bad_request("CallSid, From and To are required");
    };
    // A number calling over and over is told once to wait, then hung up on at once.
    if let crate::limits::Verdict::Limited { first, .. } = state.limits.check("voice", &call.from, &call.session_id) {
        if !first {
            return twiml::response(&[Verb::Hangup]);
        }
        let sp = speaker(&state, lang_of(&state, &call.session_id).await);
        return twiml::response(&[sp.say(crate::limits::slow_down_call(sp.lang)), Verb::Hangup]);
    }
    let req = TurnRequest {
        session_id: call.session_id.clone(),
        channel: "voice".into(),
        user: call.from.clone(),
        text: String::new(),
        now: state.now(),
        message_id: Some(format!("{}:0", call.sid).into()),
        llm_budget: Some(state.twilio.voice_llm_budget),
    };
    let service = state.service.clone();
    let (resp, lang) = match state.detached(async move { service.open_call(req).await }).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return server_error(e),
        Err(_) => return server_error("the call's first turn stopped"),
    };
    let sp = speaker(&state, lang);
    answer(&sp, &resp, 1, false)
}

/// POST /twilio/voice/gather?n=N[&silence=S]: what the caller said (or their silence).
#[handler]
pub async fn gather(req: &Request, state: Data<&AppState>, params: Data<&Params>) -> Response {
    let Some(call) = Call::parse(&params) else {
        return bad_request("CallSid, From and To are required");
    };
    let query = req.uri().query().unwrap_or("");
    let n: u64 = query_param(query, "n").and_then(|n| n.parse().ok()).unwrap_or(1);
    let silence: u8 = query_param(query, "silence").and_then(|s| s.parse().ok()).unwrap_or(0);
    let offered = query_param(query, "offered").is_some_and(|o| o == "1");
    let heard = params
        .get("SpeechResult")
        .or_else(|| params.get("Digits"))
        .map(|t| t.chars().take(MAX_TEXT).collect::<String>());

    let Some(text) = heard else {
        let sp = speaker(&state, lang_of(&state, &call.session_id).await);
        let l = lines(sp.lang);
        if silence >= AFTER_OFFER {
            return twiml::response(&[sp.say(l.farewell), Verb::Hangup]);
        }
        if silence >= 2 {
            return twiml::response(&[sp.say(l.goodbye), Verb::Hangup]);
        }
        // Ask again what was asked last.
        let last = state
            .service
            .store
            .recent_turns(&call.session_id, 1)
            .await
            .ok()
            .and_then(|t| t.into_iter().next())
            .map(|t| t.replies)
            .unwrap_or_default();
        let mut prompt = vec![sp.say(l.silence)];
        prompt.extend(sp.says(&last[last.len().saturating_sub(1)..]));
        return sp.ask(prompt, n, 2);
    };

    let turn = TurnRequest {
        session_id: call.session_id.clone(),
        channel: "voice".into(),
        user: call.from.clone(),
        text,
        now: state.now(),
        message_id: Some(format!("{}:{n}", call.sid).into()),
        llm_budget: Some(state.twilio.voice_llm_budget),
    };
    let service = state.service.clone();
    let resp = match state.detached(async move { service.handle(turn).await }).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return server_error(e),
        Err(_) => return server_error("the turn stopped"),
    };
    let sp = speaker(&state, resp.lang);
    answer(&sp, &resp, n + 1, offered)
}

/// The TwiML after a turn: hand over, hang up, or ask the next question (answer `next`).
/// `offered`: this answered "anything else?".
fn answer(sp: &Speaker, resp: &TurnResponse, next: u64, offered: bool) -> Response {
    let l = lines(sp.lang);
    if resp.waiting_for_staff {
        // The chat handoff text ("they will reply here") does not fit a call.
        return match &sp.settings.staff_number {
            Some(number) => twiml::response(&[sp.say(l.transfer), Verb::Dial(number.clone())]),
            None => twiml::response(&[sp.say(l.call_back), Verb::Hangup]),
        };
    }
    let closing = resp.intent.as_deref().is_some_and(|i| CLOSING.contains(&i));
    if closing && (resp.ended || offered) {
        // "No, gracias" to "anything else?" would get the bot's "I did not understand":
        // the caller is done, so only a goodbye the flows wrote is kept.
        let mut verbs = match resp.intent.as_deref() {
            Some("goodbye" | "thanks") => sp.says(&resp.replies),
            _ => Vec::new(),
        };
        if verbs.is_empty() {
            verbs.push(sp.say(l.farewell));
        }
        verbs.push(Verb::Hangup);
        return twiml::response(&verbs);
    }
    if resp.ended {
        return sp.offer_more(sp.says(&resp.replies), next);
    }
    sp.ask(sp.says(&resp.replies), next, 1)
}

/// POST /twilio/voice/status: when the call is over, close the conversation and log a
/// summary. Other statuses (ringing, in-progress) are acknowledged and ignored.
#[handler]
pub async fn status(state: Data<&AppState>, params: Data<&Params>) -> Response {
    let Some(call) = Call::parse(&params) else {
        return bad_request("CallSid, From and To are required");
    };
    let status = params.get("CallStatus").unwrap_or("").to_ascii_lowercase();
    if !FINAL.contains(&status.as_str()) {
        return twiml::response(&[]);
    }
    let end = CallEnd {
        status,
        duration_s: params.get("CallDuration").and_then(|d| d.parse().ok()),
    };
    let end_id = format!("{}:end", call.sid);
    let service = state.service.clone();
    let at = state.now();
    let session_id = call.session_id.clone();
    match state
        .detached(async move { service.close_call(&session_id, &end_id, end, &at).await })
        .await
    {
        Ok(Ok(_)) => twiml::response(&[]),
        Ok(Err(e)) => server_error(e),
        Err(_) => server_error("closing the call stopped"),
    }
}
