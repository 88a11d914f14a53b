//! Twilio: WhatsApp and SMS (Messaging webhooks), phone calls (Voice webhooks with speech),
//! request signatures, and the REST client for messages the clinic initiates.

pub mod config;
pub mod fake;
pub mod media;
pub mod messaging;
pub mod params;
pub mod rest;
pub mod routes;
pub mod sender;
pub mod signature;
pub mod speech;
pub mod status;
pub mod twiml;
pub mod voice;

pub use config::TwilioConfig;
pub use sender::TwilioSender;

/// The channels whose conversations Twilio carries (their contact is a patient's phone).
pub const CHANNELS: [&str; 3] = ["whatsapp", "sms", "voice"];

/// The conversation a Twilio message or call belongs to: one per channel ("whatsapp", "sms",
/// "voice"), patient address and clinic number, so a patient who writes on WhatsApp and calls
/// by phone has two conversations, and two clinic numbers never share one.
///
/// `patient` and `clinic` are the addresses as Twilio sends them (`From`/`To`, e.g.
/// "whatsapp:+5491155550000"); the channel prefix is dropped so ids stay short.
pub fn session_id(channel: &str, patient: &str, clinic: &str) -> String {
    let bare = |a: &str| a.split_once(':').map_or(a, |(_, rest)| rest).to_string();
    format!("{channel}:{}:{}", bare(patient), bare(clinic))
}

#[cfg(test)]
mod tests {
    #[test]
    fn session_ids_drop_the_channel_prefix() {
        assert_eq!(
            super::session_id("whatsapp", "whatsapp:+5491155550000", "whatsapp:+14155238886"),
            "whatsapp:+5491155550000:+14155238886"
        );
        assert_eq!(
            super::session_id("voice", "+5491155550000", "+541149015120"),
            "voice:+5491155550000:+541149015120"
        );
    }
}
