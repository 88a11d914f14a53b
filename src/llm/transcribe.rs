//! Speech to text for voice notes (WhatsApp audio), with the same timeout as every call.

use async_openai::error::OpenAIError;
use async_openai::types::audio::{AudioInput, AudioResponseFormat, CreateTranscriptionRequest};
use serde::Deserialize;
use tokio::time::Instant;

use super::{Llm, LlmError, record_metrics};
use crate::lang::Lang;
use crate::store::LlmCall;

/// The transcription answer; `usage` is missing on many servers (and on older OpenAI models).
#[derive(Deserialize)]
struct Transcript {
    text: String,
    #[serde(default)]
    usage: Option<serde_json::Value>,
}

impl Llm {
    /// Transcribes one audio file with CLINICFLOW_LLM_TRANSCRIBE_MODEL. Usage goes to the
    /// metrics as purpose "transcription".
    pub async fn transcribe(&self, audio: Vec<u8>, file_name: &str, lang: Lang) -> Result<String, LlmError> {
        let started = Instant::now();
        let mut call = LlmCall {
            purpose: "transcription".into(),
            tokens_in: 0,
            tokens_out: 0,
            latency_ms: 0,
            outcome: "ok".into(),
        };
        let result = self.transcribe_inner(audio, file_name, lang, &mut call).await;
        call.latency_ms = started.elapsed().as_millis() as u64;
        if let Err(e) = &result {
            call.outcome = e.outcome().into();
        }
        record_metrics(&self.clinic(), &call);
        result
    }

    async fn transcribe_inner(
        &self,
        audio: Vec<u8>,
        file_name: &str,
        lang: Lang,
        call: &mut LlmCall,
    ) -> Result<String, LlmError> {
        let request = CreateTranscriptionRequest {
            file: AudioInput::from_vec_u8(file_name.to_string(), audio),
            model: self.config().transcribe_model.clone(),
            language: Some(lang.code().to_string()),
            response_format: Some(AudioResponseFormat::Json),
            ..Default::default()
        };
        let audio_api = self.conn.client.audio();
        let transcriptions = audio_api.transcription();
        let raw = match tokio::time::timeout(self.config().timeout, transcriptions.create_raw(request)).await {
            Err(_) => return Err(LlmError::Timeout),
            Ok(Err(OpenAIError::Reqwest(e))) if e.is_timeout() => return Err(LlmError::Timeout),
            Ok(Err(e)) => return Err(LlmError::from_openai(e)),
            Ok(Ok(bytes)) => bytes,
        };
        let t: Transcript =
            serde_json::from_slice(&raw).map_err(|e| LlmError::Garbage(format!("not a transcription: {e}")))?;
        if let Some(u) = &t.usage {
            let n = |k: &str| u.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            call.tokens_in = n("input_tokens");
            call.tokens_out = n("output_tokens");
        }
        Ok(t.text.trim().to_string())
    }
}

/// WhatsApp voice notes reach the LLM's transcription endpoint through this adapter: the
/// Twilio channel only knows its `Transcriber` trait, the LLM only knows audio bytes.
impl crate::channels::twilio::media::Transcriber for Llm {
    fn transcribe<'a>(
        &'a self,
        audio: Vec<u8>,
        content_type: &'a str,
        lang: Lang,
    ) -> crate::channels::twilio::media::TranscribeFuture<'a> {
        Box::pin(async move {
            Llm::transcribe(self, audio, &audio_file_name(content_type), lang)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The transcription endpoint guesses the format from the file name's extension.
fn audio_file_name(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let ext = match essence.as_str() {
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" | "audio/aac" => "m4a",
        "audio/amr" => "amr",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/webm" => "webm",
        _ => "ogg",
    };
    format!("voice-note.{ext}")
}

#[cfg(test)]
mod file_name_tests {
    #[test]
    fn content_types_map_to_extensions_the_endpoint_knows() {
        assert_eq!(super::audio_file_name("audio/ogg; codecs=opus"), "voice-note.ogg");
        assert_eq!(super::audio_file_name("audio/mpeg"), "voice-note.mp3");
        assert_eq!(super::audio_file_name("AUDIO/AMR"), "voice-note.amr");
        assert_eq!(super::audio_file_name("audio/something-new"), "voice-note.ogg");
    }
}
