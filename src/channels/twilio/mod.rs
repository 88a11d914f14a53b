//! Twilio: WhatsApp and SMS (Messaging webhooks), phone calls (Voice webhooks with speech),
//! request signatures, and the REST client for messages the clinic initiates.

pub mod config;

pub use config::TwilioConfig;
