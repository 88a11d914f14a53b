//! `X-Twilio-Signature`: how we know a webhook comes from Twilio.
//!
//! Twilio signs every request with the account's auth token: base64(HMAC-SHA1(token, url +
//! the POST parameters sorted by name, each name followed by its value)). For JSON bodies the
//! URL carries `bodySHA256` (hex SHA-256 of the body) and the signature covers the URL only.
//! Like Twilio's own libraries, a URL is accepted with and without its port (`:443` for https,
//! `:80` for http), since proxies and Twilio do not agree on writing it.
//!
//! The URL is the public one (CLINICFLOW_PUBLIC_URL + path and query), never built from the
//! request's Host header, which the caller controls.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::params::query_param;

/// What was signed besides the URL.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// Form parameters (name, value), in any order.
    Form(&'a [(String, String)]),
    /// A raw body (JSON) whose SHA-256 the URL's `bodySHA256` must name.
    Body(&'a [u8]),
}

/// The signature Twilio sends for `url` and form `params`.
pub fn compute(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name, then by value for repeated names (byte order is code point order in UTF-8).
    sorted.sort();
    let mut mac = match Hmac::<Sha1>::new_from_slice(token.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Lowercase hex SHA-256 of a body, as in `bodySHA256`.
pub fn body_sha256(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `signature` is Twilio's for this request.
pub fn validate(token: &str, url: &str, signed: Signed<'_>, signature: &str) -> bool {
    let (params, body_ok): (&[(String, String)], bool) = match signed {
        Signed::Form(p) => (p, true),
        Signed::Body(body) => match query_param(url, "bodySHA256") {
            Some(expected) => (&[], constant_time_eq(body_sha256(body).as_bytes(), expected.as_bytes())),
            None => (&[], false),
        },
    };
    // Every variant is computed and compared, so timing says nothing about which one matched.
    let sig_ok = url_variants(url)
        .iter()
        .map(|u| constant_time_eq(compute(token, u, params).as_bytes(), signature.trim().as_bytes()))
        .fold(false, |acc, ok| acc | ok);
    body_ok & sig_ok
}

/// The URL without its port and with its port (the default port of the scheme when it has
/// none), as Twilio's libraries accept both.
pub fn url_variants(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_string()];
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = split_port(authority);
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some("443"),
        "http" => Some("80"),
        _ => None,
    };
    let with_port = match (port, default) {
        (Some(p), _) => Some(format!("{scheme}://{host}:{p}{tail}")),
        (None, Some(d)) => Some(format!("{scheme}://{host}:{d}{tail}")),
        (None, None) => None,
    };
    let mut out = vec![format!("{scheme}://{host}{tail}")];
    out.extend(with_port);
    out
}

/// "host:8080" → ("host", Some("8080")); IPv6 literals keep their brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains('[') || host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    //! Vectors from Twilio's published examples and the unit tests of twilio-python
    //! (tests/unit/test_request_validator.py): token 12345.
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ])
    }

    #[test]
    fn published_form_vector() {
        assert_eq!(compute(TOKEN, URL, &params()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(validate(
            TOKEN,
            URL,
            Signed::Form(&params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // Order of arrival does not matter; repeated names sort by value.
        let dup = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        assert_eq!(compute(TOKEN, URL, &dup), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn ports_are_accepted_with_and_without() {
        let p = params();
        // Signed without a port, requested with one.
        let with_port = URL.replace(".com", ".com:1234");
        assert!(validate(
            TOKEN,
            &with_port,
            Signed::Form(&p),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // Signed with the http URL and its port.
        let http_port = with_port.replace("https", "http");
        assert!(validate(
            TOKEN,
            &http_port,
            Signed::Form(&p),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
        // Signed with the default port, configured without it.
        assert!(validate(TOKEN, URL, Signed::Form(&p), "kvajT1Ptam85bY51eRf/AJRuM3w="));
        let http = URL.replace("https", "http");
        assert!(validate(TOKEN, &http, Signed::Form(&p), "0ZXoZLH/DfblKGATFgpif+LLRf4="));
        assert_eq!(
            url_variants("https://[::1]:8443/t?x=1"),
            ["https://[::1]/t?x=1", "https://[::1]:8443/t?x=1"]
        );
    }

    #[test]
    fn published_json_body_vector() {
        let body = br#"{"property": "value", "boolean": true}"#;
        assert_eq!(
            body_sha256(body),
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let url = format!("{URL}&bodySHA256={}", body_sha256(body));
        assert!(validate(
            TOKEN,
            &url,
            Signed::Body(body),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        // Another body under the same signed URL fails on the hash.
        assert!(!validate(
            TOKEN,
            &url,
            Signed::Body(b"{}"),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        // A body without `bodySHA256` in the URL is not signed at all.
        assert!(!validate(TOKEN, URL, Signed::Body(body), &compute(TOKEN, URL, &[])));
    }

    #[test]
    fn anything_changed_fails() {
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        let mut tampered = params();
        tampered[1].1 = "9999".into();
        assert!(!validate(TOKEN, URL, Signed::Form(&tampered), good));
        assert!(!validate(
            TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            Signed::Form(&params()),
            good
        ));
        assert!(!validate("54321", URL, Signed::Form(&params()), good));
        assert!(!validate(TOKEN, URL, Signed::Form(&params()), ""));
        // An extra parameter the attacker adds is signed too.
        let mut extra = params();
        extra.push(("Body".into(), "x".into()));
        assert!(!validate(TOKEN, URL, Signed::Form(&extra), good));
    }
}
