//! Masks document and phone numbers, and the patient names a conversation holds, before text
//! goes to the LLM provider. The rules NLU extracts numbers exactly, so the model never needs
//! to see them (and rules win on them anyway); a name the patient gave is in a slot already.

use std::sync::LazyLock;

use regex::Regex;

/// A run of digits with the separators people type inside numbers ("30.111.222",
/// "+54 9 11 5555-1234", "(011) 4555 1234"). Not `:` or `/`, so times and dates stay.
static NUMBERS: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\+?\(?\d[\d \t().-]*\d").ok());

/// What replaces a document number in the text sent.
pub const DOCUMENT: &str = "[DOCUMENTO]";
/// What replaces a phone number in the text sent.
pub const PHONE: &str = "[TELÉFONO]";

/// What replaces an email address in the text sent.
pub const EMAIL: &str = "[EMAIL]";

/// Anything `name@domain`: never sent (the rules read emails; the model needs none).
static EMAILS: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"[^\s@]*@[^\s@]*").ok());

/// What replaces a patient's name in the text sent.
pub const NAME: &str = "[NOMBRE]";

/// The patient names this conversation holds: the values of its slots whose kind is a name
/// (`patient_name` in the demo), in every active flow.
pub fn known_names(bot: &crate::flow::bot::Bot, session: &crate::engine::session::Session) -> Vec<String> {
    let mut names = Vec::new();
    for frame in &session.stack {
        let Some(flow) = bot.flow(&frame.flow) else { continue };
        for (slot, value) in &frame.slots {
            let is_name = flow
                .slot(slot)
                .is_some_and(|s| s.entity == Some(crate::nlu::EntityKind::Name));
            if let (true, Some(v)) = (is_name, value.as_str()) {
                names.push(v.to_string());
            }
        }
    }
    names
}

/// [`mask`], and every word of `names` (3 letters or more, any case) replaced by [`NAME`].
pub fn mask_personal(text: &str, names: &[String]) -> String {
    let masked = mask(text);
    let words: Vec<String> = names
        .iter()
        .flat_map(|n| n.split_whitespace())
        .filter(|w| w.chars().count() >= 3)
        .map(regex::escape)
        .collect();
    if words.is_empty() {
        return masked;
    }
    match Regex::new(&format!(r"(?i)\b(?:{})\b", words.join("|"))) {
        Ok(re) => re.replace_all(&masked, NAME).into_owned(),
        // A name the regex engine cannot take: say nothing rather than send it.
        Err(_) => NAME.to_string(),
    }
}

/// Replaces document numbers (7–8 digits) and phone numbers (9 or more digits, or written
/// with a leading `+`) with placeholders. Shorter numbers (days, times, choices) stay.
pub fn mask(text: &str) -> String {
    let text = match EMAILS.as_ref() {
        Some(re) if text.contains('@') => re.replace_all(text, EMAIL),
        Some(_) => std::borrow::Cow::Borrowed(text),
        // Without the pattern nothing with an `@` may go.
        None if text.contains('@') => return EMAIL.to_string(),
        None => std::borrow::Cow::Borrowed(text),
    };
    let text = text.as_ref();
    let Some(re) = NUMBERS.as_ref() else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in re.find_iter(text) {
        let s = m.as_str();
        if looks_like_date(s) {
            continue;
        }
        let digits = s.chars().filter(char::is_ascii_digit).count();
        let placeholder = if s.starts_with('+') && digits >= 6 || digits >= 9 {
            Some(PHONE)
        } else if (7..=8).contains(&digits) {
            Some(DOCUMENT)
        } else {
            None
        };
        if let Some(p) = placeholder {
            out.push_str(&text[last..m.start()]);
            out.push_str(p);
            last = m.end();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// "2026-11-26", "26-11-2026", "26.11.26": three groups whose middle one is a month. A dotted
/// document number ("30.111.222") has three digits in the middle.
fn looks_like_date(s: &str) -> bool {
    let groups: Vec<&str> = s.split(['-', '.']).collect();
    groups.len() == 3
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.chars().all(|c| c.is_ascii_digit()))
        && groups[1].len() <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_documents_in_any_spelling() {
        assert_eq!(mask("mi dni es 12345678"), "mi dni es [DOCUMENTO]");
        assert_eq!(mask("DNI 30.111.222, gracias"), "DNI [DOCUMENTO], gracias");
        assert_eq!(mask("30 111 222"), "[DOCUMENTO]");
        assert_eq!(mask("1234567"), "[DOCUMENTO]");
    }

    #[test]
    fn masks_emails() {
        assert_eq!(
            mask("mi mail es ana.perez@example.com, gracias"),
            "mi mail es [EMAIL] gracias"
        );
        assert_eq!(mask("ana@gmail y 30111222"), "[EMAIL] y [DOCUMENTO]");
    }

    #[test]
    fn masks_the_names_the_conversation_holds_in_any_case() {
        let names = vec!["María López".to_string()];
        assert_eq!(
            mask_personal("turno para MARÍA lópez, dni 30111222", &names),
            "turno para [NOMBRE] [NOMBRE], dni [DOCUMENTO]"
        );
        assert_eq!(mask_personal("Lopezito no", &names), "Lopezito no");
        assert_eq!(mask_personal("sin nombres", &[]), "sin nombres");
    }

    #[test]
    fn masks_phone_numbers() {
        assert_eq!(mask("llamame al +54 9 11 5555-1234"), "llamame al [TELÉFONO]");
        assert_eq!(mask("tel (011) 4555-1234 o 1155667788"), "tel [TELÉFONO] o [TELÉFONO]");
        assert_eq!(mask("whatsapp:+5491155551234"), "whatsapp:[TELÉFONO]");
    }

    #[test]
    fn keeps_dates_times_and_choices() {
        for s in [
            "el jueves 26/11 a las 10:30",
            "la 2",
            "el 26 de noviembre",
            "tipo 10 y media",
            "2026-11-26",
            "26-11-2026",
            "26.11.26",
            "a las 9",
            "",
        ] {
            assert_eq!(mask(s), s, "{s}");
        }
    }

    #[test]
    fn masks_every_occurrence_and_keeps_the_rest() {
        assert_eq!(
            mask("soy Ana, dni 12345678, cel 1155667788, turno el 26/11"),
            "soy Ana, dni [DOCUMENTO], cel [TELÉFONO], turno el 26/11"
        );
    }
}
