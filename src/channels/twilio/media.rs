//! Media in WhatsApp messages: voice notes are downloaded from Twilio (with the account's
//! basic auth) and turned into text by a [`Transcriber`] (the LLM's transcription endpoint
//! when one is configured); other media get a polite "please write" reply.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::time::Duration;

use crate::lang::Lang;

pub type TranscribeFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// Speech to text. Errors are plain text for the log.
pub trait Transcriber: Send + Sync {
    fn transcribe<'a>(&'a self, audio: Vec<u8>, content_type: &'a str, lang: Lang) -> TranscribeFuture<'a>;
}

/// Largest media file downloaded (WhatsApp voice notes are well under it; Twilio caps
/// WhatsApp media at 16 MB).
pub const MAX_MEDIA: usize = 16 * 1024 * 1024;

/// Media downloads must not hold a webhook past Twilio's patience.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(8);

static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .unwrap_or_default()
});

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the media download failed: {0}")]
    Http(String),
    #[error("the media server answered {0}")]
    Status(u16),
    #[error("the media file is over {MAX_MEDIA} bytes")]
    TooLarge,
}

/// Downloads a media file. `auth` is (account sid, auth token): Twilio media URLs need it
/// unless the account allows public media. reqwest drops the credentials when Twilio
/// redirects to its storage on another host.
pub async fn download(url: &str, auth: Option<(&str, &str)>) -> Result<Vec<u8>, MediaError> {
    let mut req = HTTP.get(url);
    if let Some((user, pass)) = auth {
        req = req.basic_auth(user, Some(pass));
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| MediaError::Http(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(MediaError::Status(resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|n| n > MAX_MEDIA as u64) {
        return Err(MediaError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| MediaError::Http(e.without_url().to_string()))?
    {
        if out.len() + chunk.len() > MAX_MEDIA {
            return Err(MediaError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Said when a voice note cannot be turned into text (no transcriber, or it failed).
pub fn write_instead(lang: Lang) -> &'static str {
    match lang {
        Lang::Es => "Disculpe, no puedo escuchar mensajes de voz. ¿Me lo podría escribir, por favor?",
        Lang::En => "Sorry, I can't listen to voice messages. Could you write it to me, please?",
    }
}

/// Said to an image, document, location or sticker that comes without text.
pub fn text_only(lang: Lang) -> &'static str {
    match lang {
        Lang::Es => "Disculpe, solo puedo leer mensajes de texto. ¿Me cuenta por escrito en qué lo puedo ayudar?",
        Lang::En => "Sorry, I can only read text messages. Could you tell me in writing how I can help?",
    }
}

/// Whether a media content type is audio (voice notes are audio/ogg on WhatsApp).
pub fn is_audio(content_type: &str) -> bool {
    content_type.trim().to_ascii_lowercase().starts_with("audio/")
}
