//! Specialties, coverages, document numbers, email addresses, names and small numbers.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::intents::within_one_edit;
use super::normalize::{Found, Normalized, Span, ascii_regex, is_claimed, is_stop_word, normalize, tokens_of};
use crate::flow::clinic::Clinic;

/// Canonical value of private (no coverage) patients.
pub const PRIVATE: &str = "Particular";

const PRIVATE_PHRASES: &[&str] = &[
    "particular",
    "particulares",
    "privado",
    "privada",
    "sin obra social",
    "no tengo obra social",
    "sin cobertura",
    "no tengo cobertura",
    "sin prepaga",
    "no tengo prepaga",
    "private",
    "no insurance",
    "without insurance",
    "self pay",
    "out of pocket",
];

/// Phrases (token sequences) of a clinic's vocabulary mapped to canonical names.
#[derive(Debug, Default)]
pub struct PhraseIndex {
    /// First token → (phrase tokens, canonical index), longest phrases first.
    exact: HashMap<String, Vec<(Vec<String>, usize)>>,
    /// Single-token phrases long enough to tolerate one typo.
    fuzzy: Vec<(Vec<char>, usize)>,
    /// Words known to be real (from the intents' examples): never a typo of something else.
    real_words: HashSet<String>,
    canon: Vec<String>,
}

/// Common words one letter away from a vocabulary word ("clínica" / "clínico").
const NEVER_TYPOS: &[&str] = &["clinica", "clinicas", "lista", "listo", "listas", "visto"];

impl PhraseIndex {
    pub fn specialties(clinic: &Clinic, real_words: &HashSet<String>) -> PhraseIndex {
        let mut idx = PhraseIndex::with_real_words(real_words);
        for s in &clinic.specialties {
            let c = idx.canonical(&s.name);
            idx.add(&s.name, c);
            for syn in &s.synonyms {
                idx.add(syn, c);
            }
            // Derived forms are exact-only: "clínico" one typo away is "clínica", the clinic.
            if let Some(en) = &s.name_en {
                idx.add(en, c);
                for form in english_professional_forms(&normalize(en)) {
                    idx.add_exact(&form, c);
                }
            }
            for form in professional_forms(&normalize(&s.name)) {
                idx.add_exact(&form, c);
            }
            // "con el dr sosa", "la dra. gomez": a professional names their specialty.
            for p in &s.professionals {
                let words: Vec<String> = tokens_of(&p.name);
                if let Some(surname) = words.last() {
                    for title in ["dr", "dra", "doctor", "doctora", "dr.", "dra."] {
                        idx.add_exact(&format!("{title} {surname}"), c);
                    }
                }
            }
        }
        idx.finish()
    }

    pub fn coverages(clinic: &Clinic, real_words: &HashSet<String>) -> PhraseIndex {
        let mut idx = PhraseIndex::with_real_words(real_words);
        for cov in &clinic.coverages {
            let c = idx.canonical(&cov.name);
            idx.add(&cov.name, c);
            for syn in &cov.synonyms {
                idx.add(syn, c);
            }
        }
        let c = idx.canonical(PRIVATE);
        for p in PRIVATE_PHRASES {
            idx.add(p, c);
        }
        idx.finish()
    }

    fn with_real_words(real_words: &HashSet<String>) -> PhraseIndex {
        let mut real_words = real_words.clone();
        real_words.extend(NEVER_TYPOS.iter().map(|w| w.to_string()));
        PhraseIndex {
            real_words,
            ..PhraseIndex::default()
        }
    }

    fn canonical(&mut self, name: &str) -> usize {
        match self.canon.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.canon.push(name.to_string());
                self.canon.len() - 1
            }
        }
    }

    /// The first canonical name a phrase is given to keeps it.
    fn add(&mut self, phrase: &str, canon: usize) {
        self.insert(phrase, canon, true);
    }

    fn add_exact(&mut self, phrase: &str, canon: usize) {
        self.insert(phrase, canon, false);
    }

    fn insert(&mut self, phrase: &str, canon: usize, typos: bool) {
        let toks = tokens_of(phrase);
        let Some(first) = toks.first().cloned() else {
            return;
        };
        let list = self.exact.entry(first).or_default();
        if list.iter().any(|(t, _)| *t == toks) {
            return;
        }
        if let [only] = toks.as_slice()
            && typos
            && only.chars().count() >= 5
            && !only.chars().any(|c| c.is_ascii_digit())
        {
            self.fuzzy.push((only.chars().collect(), canon));
        }
        list.push((toks, canon));
    }

    fn finish(mut self) -> PhraseIndex {
        for list in self.exact.values_mut() {
            list.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        }
        self
    }

    /// Every mention in the message, in order; spans are added to `claimed`.
    pub fn find(&self, n: &Normalized, claimed: &mut Vec<Span>) -> Vec<Found<String>> {
        let mut out = Vec::new();
        let toks = &n.tokens;
        let mut i = 0;
        while i < toks.len() {
            let mut matched = None;
            if let Some(list) = self.exact.get(&toks[i].text) {
                matched = list.iter().find_map(|(phrase, c)| {
                    let end = i + phrase.len();
                    let same = toks.get(i..end)?.iter().zip(phrase).all(|(t, p)| t.text == *p);
                    same.then_some((end, *c))
                });
            }
            if matched.is_none() {
                matched = self.fuzzy_match(&toks[i].text).map(|c| (i + 1, c));
            }
            if let Some((end, c)) = matched {
                let span = Span::new(toks[i].span.start, toks[end - 1].span.end);
                if !is_claimed(claimed, span) {
                    claimed.push(span);
                    if let Some(name) = self.canon.get(c) {
                        out.push(Found {
                            span,
                            value: name.clone(),
                        });
                    }
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
        out
    }

    fn fuzzy_match(&self, token: &str) -> Option<usize> {
        if token.len() < 5
            || is_stop_word(token)
            || self.real_words.contains(token)
            || token.chars().any(|c| c.is_ascii_digit())
        {
            return None;
        }
        let chars: Vec<char> = token.chars().collect();
        if chars.len() < 5 {
            return None;
        }
        // Typos rarely hit the first letter, and requiring it keeps real words out
        // ("lista" is not "vista", "mejor" is not "menor").
        self.fuzzy
            .iter()
            .find(|(p, _)| p.first() == chars.first() && within_one_edit(p, &chars))
            .map(|(_, c)| *c)
    }
}

/// "cardiologia" → cardiólogo/a(s); "pediatria" → pediatra(s); "clinica medica" → clínico.
pub fn professional_forms(name: &str) -> Vec<String> {
    if name == "clinica medica" {
        // Not "clínica" alone: that is the clinic itself.
        return ["clinico", "clinicos", "medico clinico", "medica clinica"]
            .iter()
            .map(|f| f.to_string())
            .collect();
    }
    if name.contains(' ') {
        return Vec::new();
    }
    if let Some(stem) = name.strip_suffix("iatria") {
        return vec![format!("{stem}iatra"), format!("{stem}iatras")];
    }
    match name.strip_suffix("ia") {
        Some(stem) if stem.len() >= 3 => ["o", "a", "os", "as"].iter().map(|e| format!("{stem}{e}")).collect(),
        _ => Vec::new(),
    }
}

/// "cardiology" → cardiologist(s); "pediatrics" → pediatrician(s).
pub fn english_professional_forms(name: &str) -> Vec<String> {
    if name.contains(' ') {
        return Vec::new();
    }
    if let Some(stem) = name.strip_suffix("logy") {
        return vec![format!("{stem}logist"), format!("{stem}logists")];
    }
    if let Some(stem) = name.strip_suffix("ics") {
        return vec![format!("{stem}ician"), format!("{stem}icians")];
    }
    Vec::new()
}

static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| ascii_regex(r"[0-9](?:[0-9.]*[0-9])?"));
static DOTTED_DOC: LazyLock<Regex> = LazyLock::new(|| ascii_regex(r"^[0-9]{1,2}\.[0-9]{3}\.[0-9]{3}$"));
static SPACED_DOC: LazyLock<Regex> = LazyLock::new(|| ascii_regex(r"\b[0-9]{1,2} [0-9]{3} [0-9]{3}\b"));
static ANY_DIGITS: LazyLock<Regex> = LazyLock::new(|| ascii_regex(r"[0-9](?:[0-9. -]*[0-9])?"));

/// Document numbers: 7–8 digits, dots allowed ("12.345.678"). When a document is being asked
/// for, any digits are returned so the engine can say what is wrong with them.
pub fn find_documents(n: &Normalized, claimed: &[Span], asking: bool) -> Vec<Found<String>> {
    let text = n.text.as_str();
    let mut out = Vec::new();
    for m in DIGIT_RUN.find_iter(text) {
        let span = Span::new(m.start(), m.end());
        let run = m.as_str();
        let digits: String = run.chars().filter(char::is_ascii_digit).collect();
        let plain = !run.contains('.') && (7..=8).contains(&digits.len());
        if (plain || DOTTED_DOC.is_match(run)) && !is_claimed(claimed, span) {
            out.push(Found { span, value: digits });
        }
    }
    for m in SPACED_DOC.find_iter(text) {
        let span = Span::new(m.start(), m.end());
        if !is_claimed(claimed, span) && !out.iter().any(|f| f.span.overlaps(&span)) {
            let digits = m.as_str().chars().filter(char::is_ascii_digit).collect();
            out.push(Found { span, value: digits });
        }
    }
    if asking
        && out.is_empty()
        && let Some(m) = ANY_DIGITS.find(text)
    {
        let digits = m.as_str().chars().filter(char::is_ascii_digit).collect();
        out.push(Found {
            span: Span::new(m.start(), m.end()),
            value: digits,
        });
    }
    out.sort_by_key(|f| f.span.start);
    out
}

const NAME_LEAD_INS: &[&[&str]] = &[
    // Booking for someone else: "es para mi hijo Tomás Ruiz" names the patient.
    &["es", "para", "mi", "hijo"],
    &["es", "para", "mi", "hija"],
    &["es", "para", "mi", "mama"],
    &["es", "para", "mi", "papa"],
    &["es", "para", "mi", "esposa"],
    &["es", "para", "mi", "esposo"],
    &["para", "mi", "hijo"],
    &["para", "mi", "hija"],
    &["para", "mi", "mama"],
    &["para", "mi", "papa"],
    &["para", "mi", "madre"],
    &["para", "mi", "padre"],
    &["para", "mi", "esposa"],
    &["para", "mi", "esposo"],
    &["para", "mi", "marido"],
    &["para", "mi", "mujer"],
    &["el", "paciente", "es"],
    &["la", "paciente", "es"],
    &["it", "s", "for", "my", "son"],
    &["it", "s", "for", "my", "daughter"],
    &["for", "my", "son"],
    &["for", "my", "daughter"],
    &["for", "my", "wife"],
    &["for", "my", "husband"],
    &["for", "my", "mother"],
    &["for", "my", "father"],
    &["mi", "nombre", "completo", "es"],
    &["mi", "nombre", "es"],
    &["el", "nombre", "es"],
    &["mi", "nombre"],
    &["me", "llamo"],
    &["nombre"],
    &["soy"],
    &["es"],
    &["my", "full", "name", "is"],
    &["my", "name", "is"],
    &["my", "name", "s"],
    &["my", "name"],
    &["name"],
    &["this", "is"],
    &["i", "am"],
    &["im"],
    &["it", "is"],
    &["its"],
];
const GREETINGS: &[&str] = &["hola", "buenas", "buen", "buenos", "dia", "dias", "hi", "hello", "hey"];
const THANKS: &[&str] = &["gracias", "thanks", "thank", "you", "saludos"];
const NOT_NAME_WORDS: &[&str] = &[
    "quiero",
    "quisiera",
    "necesito",
    "turno",
    "turnos",
    "cancelar",
    "no",
    "si",
    "want",
    "need",
    "appointment",
    "book",
    "cancel",
    "que",
    "como",
    "cuando",
    "donde",
    "what",
    "when",
    "where",
    "how",
    "ayuda",
    "help",
    "obra",
    "social",
    "hora",
    "dia",
    "gracias",
    "thanks",
    "porque",
    // Questions back ("¿para qué necesitan mi nombre?") are not names.
    "q",
    "xq",
    "pq",
    "para",
    "por",
    "necesitan",
    "why",
    "for",
];
const LOWER_PARTICLES: &[&str] = &["de", "del", "la", "las", "los", "y", "da", "di", "van", "von", "der"];

/// A person's name from a message that answers "¿Me dice su nombre?", title-cased, or None
/// when the message clearly is something else.
pub fn extract_name(original: &str) -> Option<String> {
    // A question is never a name, whatever its words.
    if original.chars().any(|c| c.is_ascii_digit() || c == '?' || c == '¿') {
        return None;
    }
    let words: Vec<&str> = original.split_whitespace().collect();
    let keys: Vec<String> = words.iter().map(|w| normalize(w).replace(' ', "")).collect();
    let mut start = 0;
    while keys.get(start).is_some_and(|k| GREETINGS.contains(&k.as_str())) {
        start += 1;
    }
    if let Some(lead) = NAME_LEAD_INS.iter().find(|lead| {
        keys.get(start..start + lead.len())
            .is_some_and(|ks| ks.iter().zip(lead.iter()).all(|(k, l)| k == l))
    }) {
        start += lead.len();
    }
    let mut end = words.len();
    while end > start
        && keys
            .get(end - 1)
            .is_some_and(|k| THANKS.contains(&k.as_str()) || k.is_empty())
    {
        end -= 1;
    }
    let rest = words.get(start..end)?;
    let rest_keys = keys.get(start..end)?;
    if rest.is_empty() || rest.len() > 6 {
        return None;
    }
    if rest_keys.iter().any(|k| NOT_NAME_WORDS.contains(&k.as_str())) {
        return None;
    }
    let mut parts = Vec::new();
    for (i, w) in rest.iter().enumerate() {
        let w = w.trim_matches(|c: char| !c.is_alphabetic());
        if w.is_empty() {
            continue;
        }
        let ok = w.chars().all(|c| {
            c.is_alphabetic()
                || matches!(c, '-' | '\'' | '’' | '.')
                || unicode_normalization::char::is_combining_mark(c)
        });
        if !ok {
            return None;
        }
        let key = normalize(w);
        if i > 0 && LOWER_PARTICLES.contains(&key.as_str()) {
            parts.push(w.to_lowercase());
        } else {
            parts.push(title_case(w));
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join(" "))
}

fn title_case(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut upper_next = true;
    for c in word.chars() {
        if upper_next && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.extend(c.to_lowercase());
        }
        if matches!(c, '-' | '\'' | '’') {
            upper_next = true;
        }
    }
    out
}

const NUMBER_FILLERS: &[&str] = &[
    "la", "el", "lo", "opcion", "option", "numero", "number", "nro", "the", "por", "favor", "please",
];

/// A choice: a number or ordinal. Anywhere when `asking`; otherwise only when the message is
/// nothing but a choice of 1..20 ("2", "la primera", "opción 3", "the second").
/// A number inside a date or time ("09:00", "el 3") is never a choice: `claimed` says where those are.
pub fn find_number(n: &Normalized, asking: bool, claimed: &[Span]) -> Option<Found<i64>> {
    if asking {
        return n
            .tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| !claimed.iter().any(|c| c.overlaps(&t.span)))
            // "los dos", "las tres": all of them, not one option.
            .filter(|(i, _)| !(*i > 0 && matches!(n.tokens[i - 1].text.as_str(), "los" | "las" | "both")))
            .find_map(|(_, t)| number_word(&t.text).map(|v| Found { span: t.span, value: v }));
    }
    let mut found = None;
    for t in &n.tokens {
        if NUMBER_FILLERS.contains(&t.text.as_str()) {
            continue;
        }
        // "el 10" is a day, "10:30" a time.
        if claimed.iter().any(|c| c.overlaps(&t.span)) {
            return None;
        }
        match number_word(&t.text) {
            Some(v) if found.is_none() && (1..=20).contains(&v) => found = Some(Found { span: t.span, value: v }),
            _ => return None,
        }
    }
    found
}

fn number_word(w: &str) -> Option<i64> {
    if let Ok(v) = w.parse::<i64>() {
        return Some(v);
    }
    // "1ra", "2do", "3rd", "4th", "1o".
    let digits_end = w.find(|c: char| !c.is_ascii_digit()).unwrap_or(w.len());
    if digits_end > 0
        && matches!(
            &w[digits_end..],
            "ra" | "ro"
                | "da"
                | "do"
                | "er"
                | "a"
                | "o"
                | "st"
                | "nd"
                | "rd"
                | "th"
                | "va"
                | "vo"
                | "ta"
                | "to"
                | "na"
                | "no"
                | "ma"
                | "mo"
        )
    {
        return w[..digits_end].parse().ok();
    }
    let v = match w {
        "primera" | "primero" | "primer" | "first" | "uno" | "one" => 1,
        "segunda" | "segundo" | "second" | "dos" | "two" => 2,
        "tercera" | "tercero" | "tercer" | "third" | "tres" | "three" => 3,
        "cuarta" | "cuarto" | "fourth" | "cuatro" | "four" => 4,
        "quinta" | "quinto" | "fifth" | "cinco" | "five" => 5,
        "sexta" | "sexto" | "sixth" | "seis" | "six" => 6,
        "septima" | "septimo" | "setima" | "setimo" | "seventh" | "siete" | "seven" => 7,
        "octava" | "octavo" | "eighth" | "ocho" | "eight" => 8,
        "novena" | "noveno" | "ninth" | "nueve" | "nine" => 9,
        "decima" | "decimo" | "tenth" | "diez" | "ten" => 10,
        _ => return None,
    };
    Some(v)
}

/// `name@domain` in normalized text (lower case, accents stripped): where an address is.
/// Its value is read from the original text, so "José@Gmail.com" keeps its accent.
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\w.%+'-]*\w@[\w-]*(?:\.[\w-]+)*").expect("built-in NLU pattern is valid"));
/// An answer to "what is your email?" that looks like a try at one without the `@`
/// ("ana.gmail.com"): one word with an inner dot.
static DOTTED_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\w[\w.%+-]*\.\w+$").expect("built-in NLU pattern is valid"));

/// Email addresses, as written, with the domain in lower case (the part before the `@` is
/// kept exactly: some servers tell cases and accents apart). Anything `name@domain` counts,
/// even "ana@gmail": the slot's schema (schemas/email.json) says whether it is an address, so
/// a typo gets the slot's `invalid` text instead of being taken for something else. When an
/// email is being asked for, one word that looks like a try without the `@` counts too.
pub fn find_emails(n: &Normalized, asking: bool) -> Vec<Found<String>> {
    let mut out = Vec::new();
    for m in EMAIL.find_iter(&n.text) {
        let span = Span::new(m.start(), m.end());
        let written = n.original_of(span);
        let Some((user, domain)) = written.split_once('@') else {
            continue;
        };
        let domain = domain.trim_end_matches(['.', '-']);
        out.push(Found {
            span,
            value: format!("{user}@{}", domain.to_lowercase()),
        });
    }
    if asking && out.is_empty() {
        let word = n.text.trim().trim_end_matches(['.', ',', ';', '!']);
        if DOTTED_WORD.is_match(word)
            && word.chars().any(char::is_alphabetic)
            && let Some(start) = n.text.find(word)
        {
            let span = Span::new(start, start + word.len());
            out.push(Found {
                span,
                value: n.original_of(span).to_string(),
            });
        }
    }
    out
}

/// Builds the static patterns now, so the first patient does not wait for them.
pub fn warm_up() {
    LazyLock::force(&DIGIT_RUN);
    LazyLock::force(&DOTTED_DOC);
    LazyLock::force(&SPACED_DOC);
    LazyLock::force(&ANY_DIGITS);
    LazyLock::force(&EMAIL);
    LazyLock::force(&DOTTED_WORD);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn professional_forms_from_specialty_names() {
        assert_eq!(
            professional_forms("cardiologia"),
            ["cardiologo", "cardiologa", "cardiologos", "cardiologas"]
        );
        assert_eq!(professional_forms("pediatria"), ["pediatra", "pediatras"]);
        assert!(professional_forms("clinica medica").contains(&"clinico".to_string()));
        assert!(professional_forms("nutricion").is_empty());
        assert_eq!(
            english_professional_forms("dermatology"),
            ["dermatologist", "dermatologists"]
        );
        assert_eq!(
            english_professional_forms("pediatrics"),
            ["pediatrician", "pediatricians"]
        );
    }

    #[test]
    fn names_are_cleaned_and_title_cased() {
        assert_eq!(extract_name("maría lópez").as_deref(), Some("María López"));
        assert_eq!(
            extract_name("Hola! me llamo ana de la fuente, gracias").as_deref(),
            Some("Ana de la Fuente")
        );
        assert_eq!(
            extract_name("I'm Mary-Jane Watson").as_deref(),
            Some("Mary-Jane Watson")
        );
        assert_eq!(extract_name("ana 2"), None);
        assert_eq!(extract_name("quiero un turno"), None);
        assert_eq!(extract_name("hola"), None);
        assert_eq!(extract_name("a b c d e f g"), None);
        assert_eq!(extract_name("ana@mail.com"), None);
        assert_eq!(extract_name("para q necesitan mi nombre?"), None);
        assert_eq!(extract_name("y para que lo necesitan"), None);
        assert_eq!(
            extract_name("es para mi hijo Tomas Ruiz").as_deref(),
            Some("Tomas Ruiz")
        );
        assert_eq!(
            extract_name("for my daughter Emma Stone").as_deref(),
            Some("Emma Stone")
        );
        assert_eq!(extract_name(""), None);
    }

    #[test]
    fn number_words() {
        assert_eq!(number_word("3"), Some(3));
        assert_eq!(number_word("1ra"), Some(1));
        assert_eq!(number_word("2nd"), Some(2));
        assert_eq!(number_word("tercera"), Some(3));
        assert_eq!(number_word("five"), Some(5));
        assert_eq!(number_word("una"), None);
        assert_eq!(number_word("99999999999999999999999"), None);
        assert_eq!(number_word("2x"), None);
    }

    #[test]
    fn emails_keep_what_was_written_but_the_domain_case() {
        let emails = |s: &str, asking| {
            let n = Normalized::new(s);
            find_emails(&n, asking).into_iter().map(|f| f.value).collect::<Vec<_>>()
        };
        assert_eq!(
            emails("mi mail es ana.perez@example.com", false),
            ["ana.perez@example.com"]
        );
        // Accents and case of the name part are kept (normalization would lose them).
        assert_eq!(emails("José.Núñez@Gmail.COM.", false), ["José.Núñez@gmail.com"]);
        assert_eq!(
            emails("es ana_2026+turnos@mail.com.ar, gracias", false),
            ["ana_2026+turnos@mail.com.ar"]
        );
        // A typo is still found: the slot's schema refuses it, with the slot's explanation.
        assert_eq!(emails("ana@gmail", false), ["ana@gmail"]);
        assert!(emails("quiero un turno", false).is_empty());
        assert!(emails("a las 10.30", false).is_empty());
        assert!(emails("ana.gmail.com", false).is_empty());
        assert_eq!(emails("ana.gmail.com", true), ["ana.gmail.com"]);
        assert!(emails("no tengo", true).is_empty());
        assert!(emails("no.", true).is_empty());
    }

    #[test]
    fn documents_need_seven_or_eight_digits() {
        let docs = |s: &str, asking| {
            let n = Normalized::new(s);
            find_documents(&n, &[], asking)
                .into_iter()
                .map(|f| f.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(docs("12.345.678", false), ["12345678"]);
        assert_eq!(docs("dni 1234567", false), ["1234567"]);
        assert_eq!(docs("12 345 678", false), ["12345678"]);
        assert!(docs("123456", false).is_empty());
        assert!(docs("123456789", false).is_empty());
        assert!(docs("1.23.456", false).is_empty());
        assert_eq!(docs("1.23.456", true), ["123456"]);
        assert_eq!(docs("abc 12-34", true), ["1234"]);
        assert!(docs("sin número", true).is_empty());
    }
}
