//! Who a patient is, without keeping what identifies them in the clear.
//!
//! An appointment is bound to the contact that booked it (channel + address) and to the
//! patient's document. A conversation from that contact acts on it as before; any other has
//! to prove the patient first (`verify_patient`, src/actions/verify.rs): a one-time code sent
//! to the contact on record.
//!
//! Documents and codes are compared through keyed hashes (HMAC-SHA256) under the data key
//! (`CLINICFLOW_DATA_KEY`, 32 bytes as 64 hex digits). Without it a fixed development key is
//! used and `serve` says so at start: fine on a laptop, never in production, because anyone
//! with the source can then recompute the hashes.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable holding the data key.
pub const DATA_KEY_ENV: &str = "CLINICFLOW_DATA_KEY";

/// Used when no key is configured (development, tests). Public on purpose: it protects nothing.
const DEV_KEY: [u8; 32] = *b"clinicflow-development-key-00000";

/// Digits of a one-time code.
pub const CODE_DIGITS: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{DATA_KEY_ENV} must be 64 hexadecimal digits (32 bytes); generate one with `openssl rand -hex 32`")]
    Malformed,
}

struct Keys {
    hmac: [u8; 32],
    aes: [u8; 32],
    from_env: bool,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let master = std::env::var(DATA_KEY_ENV).ok().and_then(|k| parse_key(&k).ok());
        let from_env = master.is_some();
        let master = master.unwrap_or(DEV_KEY);
        Keys {
            hmac: derive(&master, b"clinicflow/hmac/v1"),
            aes: derive(&master, b"clinicflow/aes-256-gcm/v1"),
            from_env,
        }
    })
}

/// Parses a data key (64 hex digits).
pub fn parse_key(s: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(s.trim()).map_err(|_| KeyError::Malformed)?;
    bytes.try_into().map_err(|_| KeyError::Malformed)
}

/// Checks the configured key at start: `Ok(true)` when one is set, `Ok(false)` when the
/// development key is in use, an error when the variable is set but malformed.
pub fn check_key() -> Result<bool, KeyError> {
    match std::env::var(DATA_KEY_ENV) {
        Ok(k) => parse_key(&k).map(|_| true),
        Err(_) => Ok(keys().from_env),
    }
}

/// One purpose-bound subkey of the master key, so hashes and (later) ciphers never share one.
fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    mac(master, &[label]).into()
}

fn mac(key: &[u8], parts: &[&[u8]]) -> sha2::digest::Output<Sha256> {
    // HMAC accepts keys of any length: this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes()
}

/// The keyed hash a document is looked up by: the same for "30.111.222" and "30111222".
pub fn document_hash(document: &str) -> String {
    let digits = crate::actions::normalize_document(document);
    hex::encode(mac(&keys().hmac, &[b"document", digits.as_bytes()]))
}

/// The keyed hash a one-time code is stored as (bound to its document and conversation, so a
/// stolen row says nothing and works nowhere else).
pub fn code_hash(document_hash: &str, session: &str, code: &str) -> String {
    let code: String = code.chars().filter(char::is_ascii_digit).collect();
    hex::encode(mac(
        &keys().hmac,
        &[b"code", document_hash.as_bytes(), session.as_bytes(), code.as_bytes()],
    ))
}

/// A fresh one-time code of `CODE_DIGITS` digits from the operating system's generator.
pub fn new_code() -> String {
    let mut buf = [0u8; 8];
    // Without randomness no code is safe to send: fall back to one nobody can know, which
    // makes verification fail (closed) rather than guessable.
    if getrandom::fill(&mut buf).is_err() {
        return "x".repeat(CODE_DIGITS);
    }
    let n = u64::from_le_bytes(buf) % 10u64.pow(CODE_DIGITS as u32);
    format!("{n:0width$}", width = CODE_DIGITS)
}

/// The one-time code in a message, read as a person would (the scripted conversations and
/// tests use it to answer with the code a fake channel received).
pub fn find_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == CODE_DIGITS)
        .map(str::to_string)
}

/// What marks an encrypted value: `enc:v1:` + base64(nonce ‖ ciphertext ‖ tag).
const SEALED: &str = "enc:v1:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Never the value itself: only that it could not be read.
    #[error("an encrypted value cannot be read (was it written with another {DATA_KEY_ENV}?)")]
    Unreadable,
    #[error("the operating system gave no random numbers; nothing was encrypted")]
    NoRandomness,
}

/// Encrypts `plain` with AES-256-GCM under the data key, bound to `field` (a value moved to
/// another field does not decrypt). A fresh random nonce each time.
pub fn seal(field: &str, plain: &str) -> Result<String, SealError> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use base64::Engine;
    let cipher = aes_gcm::Aes256Gcm::new(&keys().aes.into());
    let mut nonce = [0u8; 12];
    // Without randomness a nonce could repeat: refuse to store rather than weaken the cipher.
    getrandom::fill(&mut nonce).map_err(|_| SealError::NoRandomness)?;
    let payload = Payload {
        msg: plain.as_bytes(),
        aad: field.as_bytes(),
    };
    // Encrypting fails only for messages of gigabytes.
    let ct = cipher
        .encrypt(&nonce.into(), payload)
        .map_err(|_| SealError::Unreadable)?;
    let mut out = nonce.to_vec();
    out.extend(ct);
    Ok(format!(
        "{SEALED}{}",
        base64::engine::general_purpose::STANDARD.encode(out)
    ))
}

/// Decrypts a value written by [`seal`]; a value without the marker is returned as it is
/// (rows written before encryption).
pub fn open(field: &str, stored: &str) -> Result<String, SealError> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use base64::Engine;
    let Some(b64) = stored.strip_prefix(SEALED) else {
        return Ok(stored.to_string());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| SealError::Unreadable)?;
    if bytes.len() < 12 {
        return Err(SealError::Unreadable);
    }
    let (nonce, ct) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Unreadable)?;
    let cipher = aes_gcm::Aes256Gcm::new(&keys().aes.into());
    let plain = cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: ct,
                aad: field.as_bytes(),
            },
        )
        .map_err(|_| SealError::Unreadable)?;
    String::from_utf8(plain).map_err(|_| SealError::Unreadable)
}

/// Who a contact is, for comparing the conversation's with the one an appointment was booked
/// from. On the phone channels the number is the contact: a booking made by phone (caller ID)
/// is answered by SMS and the patient may write on WhatsApp from the same number. Elsewhere
/// (API, CLI) it is the channel and the address.
pub fn contact_key(channel: &str, user: &str) -> String {
    match channel {
        "whatsapp" | "sms" | "voice" => {
            let digits: String = user.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                format!("{channel}:{user}")
            } else {
                format!("phone:{digits}")
            }
        }
        _ => format!("{channel}:{user}"),
    }
}

/// Whether two contacts are the same.
pub fn same_contact(a: (&str, &str), b: (&str, &str)) -> bool {
    contact_key(a.0, a.1) == contact_key(b.0, b.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_hash_alike_whatever_their_punctuation_and_never_contain_the_number() {
        let h = document_hash("30.111.222");
        assert_eq!(h, document_hash("30111222"));
        assert_ne!(h, document_hash("30111223"));
        assert!(!h.contains("30111222"));
        assert_eq!(h.len(), 64);
    }

    #[test]
    fn codes_are_six_digits_and_their_hash_is_bound_to_document_and_conversation() {
        let c = new_code();
        assert_eq!(c.len(), 6);
        assert!(c.chars().all(|ch| ch.is_ascii_digit()));
        let d = document_hash("30111222");
        assert_eq!(code_hash(&d, "s", &c), code_hash(&d, "s", &format!(" {c} ")));
        assert_ne!(code_hash(&d, "s", &c), code_hash(&d, "t", &c));
        assert_ne!(code_hash(&d, "s", &c), code_hash(&document_hash("1"), "s", &c));
    }

    #[test]
    fn the_phone_number_is_the_contact_on_phone_channels() {
        assert!(same_contact(("voice", "+5491155551234"), ("sms", "+5491155551234")));
        assert!(same_contact(
            ("whatsapp", "whatsapp:+5491155551234"),
            ("sms", "+5491155551234")
        ));
        assert!(!same_contact(
            ("whatsapp", "whatsapp:+5491155551234"),
            ("whatsapp", "whatsapp:+5491155559999")
        ));
        assert!(!same_contact(("api", "+5491155551234"), ("sms", "+5491155551234")));
        assert!(same_contact(("test", "user-main"), ("test", "user-main")));
    }

    #[test]
    fn sealed_values_read_back_only_in_their_field_and_never_show_the_plain_text() {
        let a = seal("document", "30111222").unwrap();
        let b = seal("document", "30111222").unwrap();
        assert!(a.starts_with("enc:v1:") && !a.contains("30111222"));
        assert_ne!(a, b, "a fresh nonce each time");
        assert_eq!(open("document", &a).as_deref(), Ok("30111222"));
        assert_eq!(open("patient_name", &a), Err(SealError::Unreadable));
        assert_eq!(open("document", "30111222").as_deref(), Ok("30111222"));
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push(if a.ends_with('A') { 'B' } else { 'A' });
        assert!(open("document", &tampered).is_err());
    }

    #[test]
    fn keys_must_be_64_hex_digits() {
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        assert_eq!(parse_key("abc"), Err(KeyError::Malformed));
        assert_eq!(parse_key(&"zz".repeat(32)), Err(KeyError::Malformed));
    }
}
