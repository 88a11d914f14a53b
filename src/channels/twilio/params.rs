//! The parameters of a Twilio webhook: an `application/x-www-form-urlencoded` body (every
//! Messaging and Voice webhook), or a JSON object (the `bodySHA256` variant). Kept as pairs in
//! arrival order with repeats, because the signature is computed over exactly what was sent.

/// The parameters of one request. Unknown names are kept (they are signed too) and ignored
/// by the handlers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Params {
        Params(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// Parses a form body. Malformed escapes are kept literally rather than refused: the
    /// signature check decides whether the request is Twilio's.
    pub fn parse_form(body: &[u8]) -> Params {
        let pairs = body
            .split(|b| *b == b'&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = match pair.iter().position(|b| *b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &[][..]),
                };
                (decode(k), decode(v))
            })
            .collect();
        Params(pairs)
    }

    /// A JSON object whose values are strings, numbers or booleans (others are skipped).
    /// None when the body is not a JSON object.
    pub fn from_json(body: &[u8]) -> Option<Params> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let obj = value.as_object()?;
        let pairs = obj
            .iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                serde_json::Value::Bool(b) => Some((k.clone(), b.to_string())),
                _ => None,
            })
            .collect();
        Some(Params(pairs))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The first value of `name`, trimmed; None when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A form body that `parse_form` reads back as these pairs (tests and the fake Twilio).
    pub fn to_form(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The value of `name` in a URL's query string (`?a=1&b=2`), decoded.
pub fn query_param(url_or_query: &str, name: &str) -> Option<String> {
    let query = match url_or_query.split_once('?') {
        Some((_, q)) => q,
        None => url_or_query,
    };
    let query = query.split('#').next().unwrap_or("");
    Params::parse_form(query.as_bytes()).get(name).map(str::to_string)
}

/// Percent-decoding of one form component: `+` is a space, `%41` is `A`.
fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Form encoding of one component (unreserved characters stay, space is `+`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode_like_browsers_encode_them() {
        let p = Params::parse_form(b"From=whatsapp%3A%2B5491155550000&Body=hola+qu%C3%A9+tal&Empty=&Bad=%zz%4&Flag");
        assert_eq!(p.get("From"), Some("whatsapp:+5491155550000"));
        assert_eq!(p.get("Body"), Some("hola qué tal"));
        assert_eq!(p.get("Empty"), None);
        assert_eq!(p.get("Bad"), Some("%zz%4"));
        assert_eq!(p.pairs().len(), 5);
        let round = Params::from_pairs([("Body", "¿a & b = c? 100%"), ("To", "+1 800")]);
        assert_eq!(Params::parse_form(round.to_form().as_bytes()), round);
    }

    #[test]
    fn json_objects_and_query_strings() {
        let p = Params::from_json(br#"{"CallSid":"CA1","Duration":12,"Ok":true,"Nested":{}}"#).unwrap();
        assert_eq!(p.get("Duration"), Some("12"));
        assert_eq!(p.pairs().len(), 3);
        assert!(Params::from_json(b"[1]").is_none());
        assert_eq!(
            query_param("https://x.com/a?n=3&silence=1", "silence").as_deref(),
            Some("1")
        );
        assert_eq!(query_param("https://x.com/a", "n"), None);
    }
}
