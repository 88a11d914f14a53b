//! POST /twilio/messaging: a WhatsApp or SMS message from a patient → one turn → TwiML
//! `<Message>`s. Twilio waits 15 s for the answer; a turn still running after
//! `TwilioConfig::reply_timeout` is answered with an empty `<Response/>`, and its replies are
//! queued in the outbox with the turn's commit and delivered through the outbound sender
//! (Twilio's REST API) when it finishes.

use poem::web::Data;
use poem::{Response, handler};
use tokio::sync::oneshot;

use super::media::{self, is_audio};
use super::params::Params;
use super::routes::{bad_request, server_error};
use super::twiml::{self, Verb};
use crate::lang::Lang;
use crate::limits::Verdict;
use crate::outbound::{Outbound, OutboundKind};
use crate::server::AppState;
use crate::service::{MAX_TEXT, ReplyWindow, ServiceError, TurnRequest, TurnResponse, redact};

/// Longest body of one WhatsApp message Twilio accepts.
pub const WHATSAPP_LIMIT: usize = 1_600;
/// Longest body of one SMS Twilio accepts (it splits it into segments itself).
pub const SMS_LIMIT: usize = 1_600;

/// The length limit of one message on a channel.
pub fn limit_for(channel: &str) -> usize {
    match channel {
        "whatsapp" => WHATSAPP_LIMIT,
        _ => SMS_LIMIT,
    }
}

/// What we read of Twilio's Messaging webhook. Everything else is ignored.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub from: String,
    pub to: String,
    pub body: Option<String>,
    pub message_sid: Option<String>,
    pub num_media: u32,
    pub media_url: Option<String>,
    pub media_type: Option<String>,
    /// WhatsApp display name and id: personal data, not used by the flows yet.
    pub profile_name: Option<String>,
    pub wa_id: Option<String>,
    /// A quick-reply button: its payload is the answer (it wins over Body).
    pub button_payload: Option<String>,
    pub button_text: Option<String>,
}

impl Inbound {
    pub fn parse(p: &Params) -> Option<Inbound> {
        let s = |k: &str| p.get(k).map(str::to_string);
        Some(Inbound {
            from: s("From")?,
            to: s("To")?,
            body: s("Body"),
            message_sid: s("MessageSid").or_else(|| s("SmsSid")),
            num_media: p.get("NumMedia").and_then(|n| n.parse().ok()).unwrap_or(0),
            media_url: s("MediaUrl0"),
            media_type: s("MediaContentType0"),
            profile_name: s("ProfileName"),
            wa_id: s("WaId"),
            button_payload: s("ButtonPayload"),
            button_text: s("ButtonText"),
        })
    }

    pub fn channel(&self) -> &'static str {
        if self.from.starts_with("whatsapp:") {
            "whatsapp"
        } else {
            "sms"
        }
    }

    /// The patient's words: a button's payload, else the body.
    pub fn text(&self) -> Option<&str> {
        self.button_payload.as_deref().or(self.body.as_deref())
    }

    /// The voice note's URL and type, when the message is one.
    fn voice_note(&self) -> Option<(&str, &str)> {
        match (&self.media_url, &self.media_type) {
            (Some(url), Some(ct)) if self.num_media > 0 && is_audio(ct) => Some((url, ct)),
            _ => None,
        }
    }
}

#[handler]
pub async fn inbound(state: Data<&AppState>, params: Data<&Params>) -> Response {
    let Some(msg) = Inbound::parse(&params) else {
        return bad_request("From and To are required");
    };
    let state = state.0.clone();
    let channel = msg.channel();
    let session_id = super::session_id(channel, &msg.from, &msg.to);
    let text = msg.text().map(str::to_string);

    // Over a limit: one polite answer, then silence until the sender is allowed again. The
    // message is not processed (no turn, no download).
    match state.limits.check(channel, &msg.from, &session_id) {
        Verdict::Allowed => {}
        Verdict::Limited { first: true, .. } => {
            let lang = session_lang(&state, &session_id).await;
            return messages(channel, &[crate::limits::slow_down(lang).to_string()]);
        }
        Verdict::Limited { .. } => return twiml::response(&[]),
    }

    let voice_note = match (&text, msg.voice_note()) {
        (None, Some((url, ct))) => Some((url.to_string(), ct.to_string())),
        _ => None,
    };
    if text.is_none() && voice_note.is_none() {
        if msg.num_media > 0 {
            let lang = session_lang(&state, &session_id).await;
            return messages(channel, &[media::text_only(lang).to_string()]);
        }
        return twiml::response(&[]);
    }
    if voice_note.is_some() && state.transcriber.is_none() {
        let lang = session_lang(&state, &session_id).await;
        return messages(channel, &[media::write_instead(lang).to_string()]);
    }

    let req = TurnRequest {
        session_id: session_id.clone(),
        channel: channel.into(),
        user: msg.from.clone(),
        text: text.unwrap_or_default(),
        now: state.now(),
        message_id: msg.message_sid.clone().map(Into::into),
        llm_budget: Some(state.twilio.messaging_llm_budget),
    };

    // A voice note whose download is already under way (Twilio retried the webhook) is
    // answered by the first request.
    let media_claim = match (&voice_note, &msg.message_sid) {
        (Some(_), Some(sid)) => match MediaClaim::take(&state, sid) {
            Some(claim) => Some(claim),
            None => return twiml::response(&[]),
        },
        _ => None,
    };

    // The turn runs on its own task: it must finish (and be committed) even when Twilio's
    // request is answered before it. Who says its replies is settled before it commits
    // (src/service/window.rs): this answer, or the outbox, in the turn's transaction.
    let (tx, mut rx) = oneshot::channel::<Reply>();
    let window = ReplyWindow::new();
    // Twilio hanging up (this request dropped) closes the window too.
    let _closes = CloseOnDrop(window.clone());
    let task_state = state.clone();
    let task_window = window.clone();
    let user = msg.from.clone();
    // Not awaited: the answer comes through `rx`. The late delivery is part of the task, so
    // the server's shutdown waits for it too.
    let _detached = state
        .spawn_turn(async move {
            let reply = run(&task_state, req, voice_note, task_window).await;
            drop(media_claim);
            if let Err(late) = tx.send(reply) {
                deliver_late(&task_state, &session_id, (channel, &user), late).await;
            }
        })
        .await;
    let reply = match tokio::time::timeout(state.twilio.reply_timeout, &mut rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => return server_error("the turn task stopped"),
        Err(_) => loop {
            if window.close() {
                // Closing first means the task either finds the channel closed (and its
                // replies in the outbox) or its reply is already here: never both, never
                // neither.
                rx.close();
                match rx.try_recv() {
                    Ok(reply) => break reply,
                    Err(_) => return twiml::response(&[]),
                }
            }
            // The turn is committing the replies for this answer: they come in a moment,
            // unless its commit fails, and then the window opens again.
            tokio::select! {
                reply = &mut rx => match reply {
                    Ok(reply) => break reply,
                    Err(_) => return server_error("the turn task stopped"),
                },
                () = window.settled() => {}
            }
        },
    };
    match reply {
        Reply::Turn(Ok(resp)) => messages(channel, &resp.replies),
        Reply::Turn(Err(e)) => server_error(e),
        Reply::Said(text) => messages(channel, &[text]),
    }
}

/// A voice note's MessageSid marked as being downloaded; unmarked when dropped.
struct MediaClaim {
    set: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    sid: String,
}

impl MediaClaim {
    /// None when another request holds it.
    fn take(state: &AppState, sid: &str) -> Option<MediaClaim> {
        let set = state.media_inflight.clone();
        let fresh = set.lock().unwrap_or_else(|p| p.into_inner()).insert(sid.to_string());
        fresh.then(|| MediaClaim {
            set,
            sid: sid.to_string(),
        })
    }
}

impl Drop for MediaClaim {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.sid);
    }
}

/// What a messaging turn produced.
enum Reply {
    Turn(Result<TurnResponse, ServiceError>),
    /// A reply given without a turn (a voice note that could not be transcribed).
    Said(String),
}

/// Closes a reply window when the request that waits on it ends, however it ends.
struct CloseOnDrop(ReplyWindow);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The turn, preceded by the transcription of a voice note.
async fn run(
    state: &AppState,
    mut req: TurnRequest,
    voice_note: Option<(String, String)>,
    window: ReplyWindow,
) -> Reply {
    // A retried voice note is answered from the first reply: nothing is downloaded or
    // transcribed again (the service replays it by its MessageSid).
    let seen = match (&voice_note, &req.message_id) {
        (Some(_), Some(id)) => state.service.seen(&id.id).await.unwrap_or(false),
        _ => false,
    };
    if let Some((url, content_type)) = voice_note.filter(|_| !seen) {
        let lang = session_lang(state, &req.session_id).await;
        match transcribe(state, &url, &content_type, lang).await {
            // A long voice note must not make the turn refuse its text as too long.
            Ok(text) if !text.trim().is_empty() => req.text = text.trim().chars().take(MAX_TEXT).collect(),
            Ok(_) => return Reply::Said(media::write_instead(lang).into()),
            Err(e) => {
                tracing::warn!(session = %redact(&req.session_id), "voice note not transcribed: {e}");
                return Reply::Said(media::write_instead(lang).into());
            }
        }
    }
    Reply::Turn(state.service.handle_within(req, Some(window)).await)
}

async fn transcribe(state: &AppState, url: &str, content_type: &str, lang: Lang) -> Result<String, String> {
    let Some(transcriber) = state.transcriber.clone() else {
        return Err("no transcriber".into());
    };
    let auth = match (&state.twilio.account_sid, &state.twilio.auth_token) {
        (Some(sid), Some(token)) => Some((sid.as_str(), token.as_str())),
        _ => None,
    };
    let audio = media::download(url, &state.twilio.api_base, auth)
        .await
        .map_err(|e| e.to_string())?;
    transcriber.transcribe(audio, content_type, lang).await
}

/// Replies of a turn that finished after Twilio's request was answered: the turn queued them
/// in the outbox with its commit, and the sender delivers them now (the outbox worker, if
/// that fails). A reply said without a committed turn (a voice note not transcribed, a
/// message over the length limit, a turn that committed just as Twilio hung up) goes through
/// the outbox as a message of its own.
async fn deliver_late(state: &AppState, session_id: &str, (channel, user): (&str, &str), reply: Reply) {
    let texts = match reply {
        Reply::Turn(Ok(resp)) if !resp.queued.is_empty() => {
            let now = state.service.now().timestamp();
            state.service.deliver_queued(&*state.sender, &resp.queued, now).await;
            return;
        }
        Reply::Turn(Ok(resp)) if !resp.replayed => resp.replies,
        // A replayed message was answered the first time; an error has nothing to send.
        Reply::Turn(Ok(_)) => return,
        Reply::Turn(Err(e)) => {
            tracing::error!(session = %redact(session_id), "a late Twilio turn failed: {e}");
            return;
        }
        Reply::Said(text) => vec![text],
    };
    let now = state.service.now();
    for part in texts.iter().flat_map(|t| split(t, limit_for(channel))) {
        let msg = Outbound {
            session: session_id.to_string(),
            channel: channel.to_string(),
            user: user.to_string(),
            text: part,
            kind: OutboundKind::Reply,
            ..Default::default()
        };
        if let Err(e) = state.service.send(&*state.sender, &msg, &now).await {
            tracing::warn!(session = %redact(session_id), "a late reply was not queued: {e}");
        }
    }
}

/// The conversation's language (the clinic's for a new one).
async fn session_lang(state: &AppState, session_id: &str) -> Lang {
    state.service.lang_of(session_id).await
}

/// One `<Message>` per reply, each split under the channel's limit.
fn messages(channel: &str, replies: &[String]) -> Response {
    let verbs: Vec<Verb> = replies
        .iter()
        .flat_map(|r| split(r, limit_for(channel)))
        .map(Verb::Message)
        .collect();
    twiml::response(&verbs)
}

/// Splits a text into parts of at most `limit` characters, at the last paragraph break,
/// else line break, else sentence end, else space before the limit; a word longer than the
/// limit is cut. Parts are trimmed; no part is empty.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > limit {
        // Byte index just past the `limit`-th character.
        let window_end = rest.char_indices().nth(limit).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..window_end];
        let cut = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "]
            .iter()
            .find_map(|sep| window.rfind(sep).filter(|&i| i > 0).map(|i| i + sep.trim_end().len()))
            .unwrap_or(window_end);
        let (head, tail) = rest.split_at(cut);
        let head = head.trim();
        if !head.is_empty() {
            parts.push(head.to_string());
        }
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

/// POST /twilio/messaging/status: delivery status of a message the clinic sent.
#[handler]
pub async fn status(state: Data<&AppState>, params: Data<&Params>) -> Response {
    match super::status::record_pairs(&state.service.store, params.pairs()).await {
        Ok(()) => twiml::response(&[]),
        Err(e) => server_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_best_boundary_under_the_limit() {
        let para = "Primera parte.\n\nSegunda parte, algo más larga.";
        assert_eq!(split(para, 30), ["Primera parte.", "Segunda parte, algo más larga."]);
        let sentences = "Uno dos tres. Cuatro cinco seis. Siete.";
        assert_eq!(split(sentences, 20), ["Uno dos tres.", "Cuatro cinco seis.", "Siete."]);
        let words = "áé íó úñ ab cd";
        assert_eq!(split(words, 6), ["áé íó", "úñ ab", "cd"]);
        assert_eq!(split("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(split("  corto  ", 1600), ["corto"]);
        assert!(split("   ", 10).is_empty());
        let long = "Palabra ".repeat(500);
        let parts = split(&long, WHATSAPP_LIMIT);
        assert!(parts.iter().all(|p| p.chars().count() <= WHATSAPP_LIMIT));
        assert_eq!(parts.join(" "), long.trim());
    }
}
