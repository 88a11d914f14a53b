//! TwiML, the XML Twilio expects in a webhook's answer. Every text and attribute is escaped
//! here, and characters XML 1.0 cannot carry are dropped, so a reply that quotes what a
//! patient wrote can never break (or inject into) the document.

use poem::Response;

/// One instruction of a `<Response>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    /// A WhatsApp or SMS message.
    Message(String),
    /// Speech on a call.
    Say {
        text: String,
        voice: String,
        language: String,
    },
    /// Listen for speech or keys; Twilio posts what it heard to `action`.
    Gather {
        action: String,
        language: String,
        speech_timeout: String,
        /// Comma-separated words and phrases that help recognition.
        hints: Option<String>,
        /// What is said while listening (the caller may interrupt it).
        prompt: Vec<Verb>,
    },
    /// Go on with the TwiML at this URL (POST).
    Redirect(String),
    /// Connect the caller to this number.
    Dial(String),
    Hangup,
}

const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// The document for these verbs; `<Response/>` when there are none.
pub fn render(verbs: &[Verb]) -> String {
    let mut out = String::from(DECLARATION);
    if verbs.is_empty() {
        out.push_str("<Response/>");
        return out;
    }
    out.push_str("<Response>");
    for v in verbs {
        write_verb(&mut out, v);
    }
    out.push_str("</Response>");
    out
}

/// An HTTP 200 carrying the document, as `text/xml`.
pub fn response(verbs: &[Verb]) -> Response {
    Response::builder()
        .content_type("text/xml; charset=utf-8")
        .body(render(verbs))
}

fn write_verb(out: &mut String, v: &Verb) {
    match v {
        Verb::Message(body) => element(out, "Message", &[], body),
        Verb::Say { text, voice, language } => element(out, "Say", &[("voice", voice), ("language", language)], text),
        Verb::Gather {
            action,
            language,
            speech_timeout,
            hints,
            prompt,
        } => {
            let mut attrs = vec![
                ("input", "speech dtmf"),
                ("action", action.as_str()),
                ("method", "POST"),
                ("language", language.as_str()),
                ("speechTimeout", speech_timeout.as_str()),
            ];
            if let Some(h) = hints {
                attrs.push(("hints", h.as_str()));
            }
            open(out, "Gather", &attrs);
            for p in prompt {
                write_verb(out, p);
            }
            out.push_str("</Gather>");
        }
        Verb::Redirect(url) => element(out, "Redirect", &[("method", "POST")], url),
        Verb::Dial(number) => element(out, "Dial", &[], number),
        Verb::Hangup => out.push_str("<Hangup/>"),
    }
}

fn open(out: &mut String, name: &str, attrs: &[(&str, &str)]) {
    out.push('<');
    out.push_str(name);
    for (k, v) in attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, v);
        out.push('"');
    }
    out.push('>');
}

fn element(out: &mut String, name: &str, attrs: &[(&str, &str)], text: &str) {
    open(out, name, attrs);
    escape_into(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Escapes markup characters and drops characters XML 1.0 does not allow (most control
/// characters, unpaired surrogates cannot occur in a Rust string).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_escaped() {
        assert_eq!(render(&[]), format!("{DECLARATION}<Response/>"));
        let xml = render(&[Verb::Message("a < b & \"c\" \u{0}ok".into()), Verb::Hangup]);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let msg = doc.descendants().find(|n| n.has_tag_name("Message")).unwrap();
        assert_eq!(msg.text(), Some("a < b & \"c\" ok"));
        assert!(doc.descendants().any(|n| n.has_tag_name("Hangup")));
    }

    #[test]
    fn gather_holds_its_prompt() {
        let xml = render(&[
            Verb::Gather {
                action: "/twilio/voice/gather?n=1".into(),
                language: "es-MX".into(),
                speech_timeout: "auto".into(),
                hints: Some("OSDE, cardiología".into()),
                prompt: vec![Verb::Say {
                    text: "Hola".into(),
                    voice: "Polly.Mia".into(),
                    language: "es-MX".into(),
                }],
            },
            Verb::Redirect("/twilio/voice/gather?n=1&silence=1".into()),
        ]);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let g = doc.descendants().find(|n| n.has_tag_name("Gather")).unwrap();
        assert_eq!(g.attribute("action"), Some("/twilio/voice/gather?n=1"));
        assert_eq!(g.attribute("input"), Some("speech dtmf"));
        assert_eq!(g.attribute("hints"), Some("OSDE, cardiología"));
        let say = g.children().find(|n| n.has_tag_name("Say")).unwrap();
        assert_eq!(say.attribute("voice"), Some("Polly.Mia"));
        let r = doc.descendants().find(|n| n.has_tag_name("Redirect")).unwrap();
        assert_eq!(r.text(), Some("/twilio/voice/gather?n=1&silence=1"));
    }
}
