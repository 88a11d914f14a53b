//! Masks document and phone numbers before text goes to the LLM provider. The rules NLU
//! extracts them exactly, so the model never needs to see them (and rules win on them anyway).

use std::sync::LazyLock;

use regex::Regex;

/// A run of digits with the separators people type inside numbers ("30.111.222",
/// "+54 9 11 5555-1234", "(011) 4555 1234"). Not `:` or `/`, so times and dates stay.
static NUMBERS: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\+?\(?\d[\d \t().-]*\d").ok());

/// What replaces a document number in the text sent.
pub const DOCUMENT: &str = "[DOCUMENTO]";
/// What replaces a phone number in the text sent.
pub const PHONE: &str = "[TELÉFONO]";

/// Replaces document numbers (7–8 digits) and phone numbers (9 or more digits, or written
/// with a leading `+`) with placeholders. Shorter numbers (days, times, choices) stay.
pub fn mask(text: &str) -> String {
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
