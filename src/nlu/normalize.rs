//! Text normalization shared by every extractor: lowercase, accents stripped, control
//! characters blanked, with a byte map back to the original so entities can quote what the
//! patient actually wrote.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// Only this many chars of a message are looked at: patients write short messages, and a
/// pasted novel must not cost more than a normal turn.
pub const MAX_CHARS: usize = 2_000;

/// Compiles a built-in pattern over normalized text. ASCII mode keeps `\b` and `\s` cheap
/// (the fast DFA gives up on Unicode word boundaries in non-ASCII text); normalized text has
/// only plain spaces and accentless letters where the patterns look.
pub fn ascii_regex(pattern: &str) -> regex::Regex {
    regex::RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("built-in NLU patterns are valid")
}

/// A byte range in the normalized text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// A value found in the message and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    pub span: Span,
    pub value: T,
}

/// Whether `span` overlaps any span already taken by another extractor.
pub fn is_claimed(claimed: &[Span], span: Span) -> bool {
    claimed.iter().any(|c| c.overlaps(&span))
}

#[derive(Debug, Clone)]
pub struct Token {
    pub text: String,
    pub span: Span,
}

/// A message prepared once per turn.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// The original message, cut at `MAX_CHARS` on a char boundary.
    pub original: String,
    /// Lowercase, accentless form; punctuation kept so regexes can see "26/11" or "10:30".
    pub text: String,
    /// For every byte of `text`, the byte range of the original char it came from.
    map: Vec<(usize, usize)>,
    /// Alphanumeric runs of `text`.
    pub tokens: Vec<Token>,
}

impl Normalized {
    pub fn new(input: &str) -> Normalized {
        let original = truncate_chars(input, MAX_CHARS).to_string();
        let mut text = String::with_capacity(original.len());
        let mut map = Vec::with_capacity(original.len());
        for (i, c) in original.char_indices() {
            let range = (i, i + c.len_utf8());
            for_each_normalized(c, |n| {
                text.push(n);
                for _ in 0..n.len_utf8() {
                    map.push(range);
                }
            });
        }
        let tokens = tokenize(&text);
        Normalized {
            original,
            text,
            map,
            tokens,
        }
    }

    /// The original text behind a normalized span (empty when the span is out of range).
    pub fn original_of(&self, span: Span) -> &str {
        if span.start >= span.end || span.end > self.map.len() {
            return "";
        }
        let start = self.map[span.start].0;
        let end = self.map[span.end - 1].1;
        self.original.get(start..end).unwrap_or("").trim()
    }

    /// The normalized text after byte `at`, or "" when `at` is not a char boundary.
    pub fn rest(&self, at: usize) -> &str {
        self.text.get(at..).unwrap_or("")
    }

    /// The normalized text before byte `at`, or "" when `at` is not a char boundary.
    pub fn before(&self, at: usize) -> &str {
        self.text.get(..at).unwrap_or("")
    }
}

/// Lower case without accents or repeated spaces, punctuation kept: "  Cardiología " and
/// "CARDIOLOGIA" match, "Dra. Gómez" stays "dra. gomez". For comparing names and facts; the
/// NLU's own tokens come from `Normalized`.
pub fn fold(s: &str) -> String {
    let plain: String = s.nfd().filter(|c| !is_combining_mark(*c)).collect();
    plain.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Normalizes a phrase from configuration (examples, synonyms) into space-joined tokens.
pub fn normalize(s: &str) -> String {
    let n = Normalized::new(s);
    n.tokens.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// Normalized tokens of a phrase from configuration.
pub fn tokens_of(s: &str) -> Vec<String> {
    Normalized::new(s).tokens.into_iter().map(|t| t.text).collect()
}

/// The first `max` chars of `s`, cut on a char boundary.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn for_each_normalized(c: char, mut push: impl FnMut(char)) {
    if c.is_control() || c.is_whitespace() {
        push(' ');
        return;
    }
    // Ordinal indicators and the degree sign ("1º", "1°") act as the letter "o" in dates.
    let c = match c {
        'º' | '°' => 'o',
        'ª' => 'a',
        '¿' | '¡' => ' ',
        other => other,
    };
    for lower in c.to_lowercase() {
        decompose_canonical(lower, |d| {
            if !is_combining_mark(d) {
                push(d);
            }
        });
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(s) = start.take() {
            tokens.push(Token {
                text: text[s..i].to_string(),
                span: Span::new(s, i),
            });
        }
    }
    if let Some(s) = start {
        tokens.push(Token {
            text: text[s..].to_string(),
            span: Span::new(s, text.len()),
        });
    }
    tokens
}

/// Collapses repeated letters ("siiii" → "si", "noooo" → "no") for lexicon lookups.
pub fn squeeze(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = None;
    for c in s.chars() {
        if Some(c) != last {
            out.push(c);
        }
        last = Some(c);
    }
    out
}

/// Words that carry no intent in either language. Negations and greetings are kept on purpose.
pub fn is_stop_word(w: &str) -> bool {
    matches!(
        w,
        "a" | "al"
            // "mejor el viernes" is a correction: the word wants nothing by itself.
            | "mejor"
            | "xfa"
            | "porfa"
            | "plis"
            | "el"
            | "la"
            | "los"
            | "las"
            | "lo"
            | "le"
            | "les"
            | "un"
            | "una"
            | "unos"
            | "unas"
            | "de"
            | "del"
            | "y"
            | "e"
            | "o"
            | "u"
            | "en"
            | "con"
            | "para"
            | "por"
            | "mi"
            | "mis"
            | "tu"
            | "tus"
            | "su"
            | "sus"
            | "me"
            | "te"
            | "se"
            | "que"
            | "es"
            | "son"
            | "este"
            | "esta"
            | "esto"
            | "ese"
            | "esa"
            | "yo"
            | "nos"
            | "muy"
            | "favor"
            | "the"
            | "an"
            | "to"
            | "of"
            | "for"
            | "in"
            | "on"
            | "at"
            | "my"
            | "i"
            | "is"
            | "are"
            | "be"
            | "and"
            | "or"
            | "with"
            | "please"
            | "you"
            | "your"
            | "it"
            | "this"
            | "that"
            | "do"
            | "does"
            // Contraction tails: "I'd", "I'm", "it's", "we'll".
            | "d"
            | "m"
            | "s"
            | "ll"
            | "re"
            | "ve"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_accents_and_case_and_maps_back() {
        let n = Normalized::new("¿Mañana, CARDIOLOGÍA?");
        assert_eq!(n.text, " manana, cardiologia?");
        let toks: Vec<_> = n.tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(toks, ["manana", "cardiologia"]);
        assert_eq!(n.original_of(n.tokens[1].span), "CARDIOLOGÍA");
        assert_eq!(n.original_of(n.tokens[0].span), "Mañana");
    }

    #[test]
    fn control_chars_become_spaces_and_ordinals_become_letters() {
        assert_eq!(normalize("hola\u{0}\u{7}mundo"), "hola mundo");
        assert_eq!(normalize("1º de diciembre"), "1o de diciembre");
    }

    #[test]
    fn truncates_on_char_boundary() {
        let s = "ñ".repeat(MAX_CHARS + 10);
        let n = Normalized::new(&s);
        assert_eq!(n.original.chars().count(), MAX_CHARS);
        assert_eq!(truncate_chars("añb", 2), "añ");
    }

    #[test]
    fn squeeze_collapses_runs() {
        assert_eq!(squeeze("siiiii"), "si");
        assert_eq!(squeeze("noooo"), "no");
    }

    #[test]
    fn out_of_range_spans_are_empty() {
        let n = Normalized::new("hola");
        assert_eq!(n.original_of(Span::new(2, 99)), "");
        assert_eq!(n.original_of(Span::new(3, 1)), "");
    }
}
