//! Media in WhatsApp messages: voice notes are downloaded from Twilio's API only (HTTPS, this
//! account's media, with the account's basic auth; redirects only to Twilio's media hosts) and turned into text by a [`Transcriber`] (the LLM's transcription endpoint
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
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            // Twilio answers a media URL with a redirect to its storage. Follow only to the
            // same origin or to Twilio's media hosts over HTTPS, and not forever. reqwest drops
            // the credentials when the host changes.
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if attempt.previous().len() > 3 {
                attempt.error("too many redirects")
            } else if same_origin || is_media_host(attempt.url()) {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
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
    /// Not a URL of Twilio's API for this account, over HTTPS: never fetched.
    #[error("the media URL is not Twilio's ({0}); it was not fetched")]
    NotTwilio(&'static str),
    #[error("the media file is not audio (content type `{0}`)")]
    NotAudio(String),
}

/// Twilio's media storage, where its API redirects media downloads (HTTPS only).
fn is_media_host(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    url.scheme() == "https" && (host.ends_with(".twiliocdn.com") || host.ends_with(".twilio.com"))
}

/// Whether `url` is a media URL of Twilio's REST API for this account: `api_base` (default
/// https://api.twilio.com; tests point `TWILIO_API_BASE` at a fake) or a regional
/// `https://api.<region>.twilio.com`, under `/2010-04-01/Accounts/<account sid>/`. Only such
/// URLs are fetched, and only they get the account's credentials.
pub fn check_url(url: &str, api_base: &str, account_sid: Option<&str>) -> Result<reqwest::Url, MediaError> {
    let url = reqwest::Url::parse(url).map_err(|_| MediaError::NotTwilio("not a URL"))?;
    let base = reqwest::Url::parse(api_base).map_err(|_| MediaError::NotTwilio("TWILIO_API_BASE is not a URL"))?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let regional =
        url.scheme() == "https" && url.port().is_none() && host.starts_with("api.") && host.ends_with(".twilio.com");
    if url.origin() != base.origin() && !regional {
        return Err(MediaError::NotTwilio("another host, or not HTTPS"));
    }
    if url.username() != "" || url.password().is_some() {
        return Err(MediaError::NotTwilio("credentials in the URL"));
    }
    if let Some(sid) = account_sid {
        let prefix = format!("/2010-04-01/Accounts/{sid}/");
        if !url.path().starts_with(&prefix) || url.path().contains("/../") {
            return Err(MediaError::NotTwilio("not this account's media"));
        }
    }
    Ok(url)
}

/// Downloads a voice note from Twilio. `auth` is (account sid, auth token): Twilio media URLs
/// need it unless the account allows public media. The URL must pass [`check_url`]; the
/// answer must say it is audio and not over [`MAX_MEDIA`] before its body is read.
pub async fn download(url: &str, api_base: &str, auth: Option<(&str, &str)>) -> Result<Vec<u8>, MediaError> {
    let url = check_url(url, api_base, auth.map(|(sid, _)| sid))?;
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
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !is_audio(&content_type) {
        return Err(MediaError::NotAudio(content_type.chars().take(60).collect()));
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

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC123";
    const BASE: &str = "https://api.twilio.com";

    #[test]
    fn only_this_accounts_media_on_twilio_over_https_is_fetched() {
        let ok = "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1";
        assert!(check_url(ok, BASE, Some(SID)).is_ok());
        let regional = "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1";
        assert!(check_url(regional, BASE, Some(SID)).is_ok());
        for bad in [
            "http://api.twilio.com/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1",
            "https://evil.example.com/2010-04-01/Accounts/AC123/Media/ME1",
            "https://api.twilio.com.evil.example.com/2010-04-01/Accounts/AC123/Media/ME1",
            "https://api.twilio.com:8443/2010-04-01/Accounts/AC123/Media/ME1",
            "https://user:pw@api.twilio.com/2010-04-01/Accounts/AC123/Media/ME1",
            "https://api.twilio.com/2010-04-01/Accounts/ACother/Messages/MM1/Media/ME1",
            "https://api.twilio.com/2010-04-01/Accounts/AC123/../ACother/Media/ME1",
            "https://127.0.0.1/2010-04-01/Accounts/AC123/Media/ME1",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(
                matches!(check_url(bad, BASE, Some(SID)), Err(MediaError::NotTwilio(_))),
                "{bad}"
            );
        }
        // A fake API on loopback is allowed only when TWILIO_API_BASE names it.
        let fake = "http://127.0.0.1:4000/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1";
        assert!(check_url(fake, "http://127.0.0.1:4000", Some(SID)).is_ok());
        assert!(check_url(fake, "http://127.0.0.1:4001", Some(SID)).is_err());
    }
}
