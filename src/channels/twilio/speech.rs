//! Replies are written for chat; on a call they are read aloud. This turns a chat reply into
//! text for `<Say>`: no emoji, no *bold* or _italic_ marks, no bullets, no URLs spelled out
//! letter by letter, and "1️⃣"-style keycaps as plain digits. (XML escaping is the TwiML
//! writer's job.)

use std::sync::LazyLock;

use regex::Regex;

use crate::lang::Lang;

static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:https?://|www\.)[^\s<>()]+").unwrap_or_else(|_| unreachable!()));

/// Text to be spoken: one line, sentences kept apart so the voice pauses between them.
pub fn for_say(text: &str, lang: Lang) -> String {
    let website = match lang {
        Lang::Es => "nuestra web",
        Lang::En => "our website",
    };
    let text = URL.replace_all(text, website);
    let mut sentences = Vec::new();
    for line in text.lines() {
        let line = strip_markup(strip_bullet(line.trim()));
        let line = collapse(&line);
        if line.is_empty() {
            continue;
        }
        sentences.push(end_sentence(line));
    }
    sentences.join(" ")
}

/// "- ", "• ", "* ", "· " and "1. " style list marks at the start of a line.
fn strip_bullet(line: &str) -> &str {
    for mark in ["- ", "• ", "* ", "· ", "– ", "— "] {
        if let Some(rest) = line.strip_prefix(mark) {
            return rest.trim_start();
        }
    }
    line
}

/// Drops emoji and chat emphasis; keycap digits stay as digits.
fn strip_markup(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        match c {
            '*' | '`' | '~' => {}
            // `_italic_`: a mark at a word's edge, not inside snake_case or an address.
            '_' if !(prev.is_some_and(char::is_alphanumeric) && next.is_some_and(char::is_alphanumeric)) => {}
            c if is_emoji(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Pictographs, symbols, flags, variation selectors, joiners and the keycap mark (the digit
/// before a keycap mark is kept, so "1️⃣" reads "1").
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF   // pictographs, emoticons, transport, flags, supplemental symbols
        | 0x2600..=0x27BF   // miscellaneous symbols and dingbats (☎ ✅ ✨ ❤)
        | 0x2B00..=0x2BFF   // arrows and stars (⬅ ⭐)
        | 0x2190..=0x21FF   // arrows
        | 0x2300..=0x23FF   // technical (⌚ ⏰)
        | 0xFE00..=0xFE0F   // variation selectors
        | 0x200D            // zero-width joiner
        | 0x20E3            // combining keycap
        | 0xE0020..=0xE007F // tag characters (subdivision flags)
    )
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A line without closing punctuation gets a period, so lines of a list are read as
/// separate sentences instead of one run-on.
fn end_sentence(mut line: String) -> String {
    if !line.ends_with(['.', '?', '!', ':', ';', ',', '…', '»', ')']) {
        line.push('.');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_markup_is_not_read_aloud() {
        let chat = "¡Listo! 🎉 Su turno quedó *reservado* para _mañana_.\n\
                    - Especialidad: Cardiología\n\
                    • Hora: 10:00\n\
                    Más info en https://clinicasanrafael.com.ar/turnos o www.ejemplo.com.";
        assert_eq!(
            for_say(chat, Lang::Es),
            "¡Listo! Su turno quedó reservado para mañana. Especialidad: Cardiología. Hora: 10:00. \
             Más info en nuestra web o nuestra web."
        );
        assert_eq!(
            for_say("Visit https://x.com today", Lang::En),
            "Visit our website today."
        );
    }

    #[test]
    fn keycaps_become_digits_and_names_keep_underscores() {
        assert_eq!(
            for_say("Responda 1️⃣ para confirmar o 2️⃣ para cancelar ✅", Lang::Es),
            "Responda 1 para confirmar o 2 para cancelar."
        );
        assert_eq!(for_say("turnos_web@clinica.com", Lang::Es), "turnos_web@clinica.com.");
        assert_eq!(for_say("👍", Lang::Es), "");
    }
}
