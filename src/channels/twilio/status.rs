//! `POST /twilio/messaging/status`: Twilio reports how far an outbound message got
//! (MessageSid, MessageStatus queued/sent/delivered/read/undelivered/failed, ErrorCode).
//! The status is recorded on the message in the message log. Statuses of messages we do not
//! know (sent by another system on the same account, or before our record was written) are
//! recorded too, without a conversation; a callback without a MessageSid is ignored.
//!
//! The route verifies Twilio's signature before calling [`record`].

use std::collections::HashMap;

use jiff::Timestamp;

use crate::store::{Store, StoreError};

/// Records one status callback. Its form parameters as Twilio sent them.
pub async fn record(store: &Store, params: &HashMap<String, String>) -> Result<(), StoreError> {
    let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (Some(sid), Some(status)) = (get("MessageSid").or_else(|| get("SmsSid")), get("MessageStatus")) else {
        tracing::debug!("status callback without MessageSid or MessageStatus; ignored");
        return Ok(());
    };
    // Ids go in record keys: keep them to Twilio's alphabet.
    if sid.len() > 64 || !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        tracing::debug!("status callback with a malformed MessageSid; ignored");
        return Ok(());
    }
    let status = status.to_ascii_lowercase();
    let error = get("ErrorCode");
    if let Some(code) = error {
        let code_num: i64 = code.parse().unwrap_or(0);
        tracing::warn!(
            message = sid,
            status = %status,
            code,
            "Twilio could not deliver a message: {}",
            super::rest::explain(code_num)
        );
    }
    store.record_message_status(sid, &status, error, Timestamp::now()).await
}

/// [`record`] for parameters kept as pairs, in the order Twilio sent them.
pub async fn record_pairs(store: &Store, pairs: &[(String, String)]) -> Result<(), StoreError> {
    let params: HashMap<String, String> = pairs.iter().cloned().collect();
    record(store, &params).await
}
