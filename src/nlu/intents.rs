//! Intent scoring against example phrases.
//!
//! Entity mentions become placeholders ("@coverage") in both examples and messages, so
//! "¿trabajan con Galeno?" matches the example "¿trabajan con OSDE?" word for word.
//!
//! Examples are stored as ids into one vocabulary, so a turn compares each message word with
//! each distinct example word once, however many examples share it.

use std::collections::HashMap;

use super::normalize::{Normalized, Span, is_stop_word};

/// Message tokens looked at when scoring: intents show in the first words, and this bounds
/// the work on pasted walls of text.
pub const MAX_SCORED_TOKENS: usize = 64;

/// Credit for a word one typo away, and for a word sharing a 5-letter stem.
const TYPO_CREDIT: f32 = 0.85;
const STEM_CREDIT: f32 = 0.7;

#[derive(Debug)]
struct Example {
    intent: usize,
    /// Distinct vocabulary ids.
    words: Vec<usize>,
}

#[derive(Debug)]
struct Word {
    chars: Vec<char>,
    placeholder: bool,
    /// Higher the fewer intents use the word.
    weight: f32,
}

/// Examples of every intent, prepared once.
#[derive(Debug, Default)]
pub struct IntentIndex {
    names: Vec<String>,
    examples: Vec<Example>,
    vocab: Vec<Word>,
    ids: HashMap<String, usize>,
}

impl IntentIndex {
    /// `examples`: (intent name, content tokens of one example phrase).
    pub fn new(examples: Vec<(String, Vec<String>)>) -> IntentIndex {
        let mut idx = IntentIndex::default();
        let mut users: Vec<Vec<usize>> = Vec::new();
        for (name, tokens) in examples {
            if tokens.is_empty() {
                continue;
            }
            let intent = match idx.names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    idx.names.push(name);
                    idx.names.len() - 1
                }
            };
            let mut words = Vec::new();
            for t in tokens {
                let id = match idx.ids.get(&t) {
                    Some(id) => *id,
                    None => {
                        idx.vocab.push(Word {
                            chars: t.chars().collect(),
                            placeholder: t.starts_with('@'),
                            weight: 1.0,
                        });
                        users.push(Vec::new());
                        idx.ids.insert(t, idx.vocab.len() - 1);
                        idx.vocab.len() - 1
                    }
                };
                if !words.contains(&id) {
                    words.push(id);
                }
                if let Some(u) = users.get_mut(id)
                    && !u.contains(&intent)
                {
                    u.push(intent);
                }
            }
            idx.examples.push(Example { intent, words });
        }
        let n = idx.names.len().max(1) as f32;
        for (word, u) in idx.vocab.iter_mut().zip(&users) {
            word.weight = 1.0 + (n / u.len().max(1) as f32).ln();
        }
        idx
    }

    pub fn name(&self, i: usize) -> &str {
        self.names.get(i).map_or("", String::as_str)
    }

    /// Best score per intent (index, 0..=1), best first.
    pub fn score(&self, message: &[String]) -> Vec<(usize, f32)> {
        let message = &message[..message.len().min(MAX_SCORED_TOKENS)];
        if message.is_empty() || self.examples.is_empty() {
            return Vec::new();
        }
        let words: Vec<MessageWord> = message.iter().map(|m| self.message_word(m)).collect();
        // Best credit any message word gives each vocabulary word (for recall).
        let mut best_for = vec![0.0_f32; self.vocab.len()];
        for w in &words {
            for &(id, c) in &w.credits {
                if let Some(b) = best_for.get_mut(id) {
                    *b = b.max(c);
                }
            }
        }
        let mut best = vec![0.0_f32; self.names.len()];
        for ex in &self.examples {
            let s = self.score_example(&words, &best_for, ex);
            if let Some(b) = best.get_mut(ex.intent) {
                *b = b.max(s);
            }
        }
        let mut out: Vec<(usize, f32)> = best.into_iter().enumerate().filter(|(_, s)| *s > 0.0).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    fn message_word(&self, m: &str) -> MessageWord {
        if let Some(&id) = self.ids.get(m) {
            let weight = self.vocab.get(id).map_or(1.0, |w| w.weight);
            return MessageWord {
                exact: Some(id),
                placeholder: m.starts_with('@'),
                weight,
                credits: vec![(id, 1.0)],
            };
        }
        let chars: Vec<char> = m.chars().collect();
        let placeholder = m.starts_with('@');
        let credits = if placeholder {
            Vec::new()
        } else {
            self.vocab
                .iter()
                .enumerate()
                .filter(|(_, w)| !w.placeholder)
                .filter_map(|(id, w)| {
                    let c = credit(&chars, &w.chars);
                    (c > 0.0).then_some((id, c))
                })
                .collect()
        };
        MessageWord {
            exact: None,
            placeholder,
            weight: 1.0,
            credits,
        }
    }

    fn score_example(&self, words: &[MessageWord], best_for: &[f32], ex: &Example) -> f32 {
        let same_set =
            words.len() == ex.words.len() && words.iter().all(|w| w.exact.is_some_and(|id| ex.words.contains(&id)));
        if same_set {
            return 1.0;
        }
        let (mut got, mut total) = (0.0, 0.0);
        for &id in &ex.words {
            let w = self.vocab.get(id).map_or(1.0, |w| w.weight);
            total += w;
            got += w * best_for.get(id).copied().unwrap_or(0.0);
        }
        let recall = if total > 0.0 { got / total } else { 0.0 };
        let (mut got, mut total) = (0.0, 0.0);
        for w in words {
            // An entity the example does not mention ("…para el martes") is extra detail,
            // not noise.
            if w.placeholder && !w.exact.is_some_and(|id| ex.words.contains(&id)) {
                continue;
            }
            total += w.weight;
            let c = w
                .credits
                .iter()
                .filter(|(id, _)| ex.words.contains(id))
                .map(|(_, c)| *c)
                .fold(0.0, f32::max);
            got += w.weight * c;
        }
        let precision = if total > 0.0 { got / total } else { 0.0 };
        // F1: a one-word example ("hola") at the start of a longer request covers little of
        // it, and a long example barely touched by the message is no match either.
        if recall + precision > 0.0 {
            2.0 * recall * precision / (recall + precision)
        } else {
            0.0
        }
    }
}

struct MessageWord {
    exact: Option<usize>,
    placeholder: bool,
    weight: f32,
    /// (vocabulary id, credit > 0).
    credits: Vec<(usize, f32)>,
}

/// How much message word `m` counts as example word `e` when they differ: one typo, or the
/// same stem ("cancelo" / "cancelar").
fn credit(m: &[char], e: &[char]) -> f32 {
    let (lm, le) = (m.len(), e.len());
    if lm >= 5 && le >= 5 && lm.abs_diff(le) <= 1 && within_one_edit(m, e) {
        return TYPO_CREDIT;
    }
    let common = m.iter().zip(e).take_while(|(a, b)| a == b).count();
    if lm >= 6 && le >= 6 && common >= 5 {
        return STEM_CREDIT;
    }
    0.0
}

/// Optimal-string-alignment distance ≤ 1 (one insertion, deletion, substitution or swap of
/// neighbours), without allocating.
pub fn within_one_edit(a: &[char], b: &[char]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let Some(i) = short.iter().zip(long).position(|(x, y)| x != y) else {
        return true;
    };
    if short.len() == long.len() {
        let substitution = short.get(i + 1..) == long.get(i + 1..);
        let swap = short.get(i) == long.get(i + 1)
            && short.get(i + 1) == long.get(i)
            && short.get(i + 2..) == long.get(i + 2..);
        substitution || swap
    } else {
        short.get(i..) == long.get(i + 1..)
    }
}

/// Content tokens of a message or example: stop words dropped, entity mentions replaced by
/// one "@kind" placeholder each, common inflections folded; at most `MAX_SCORED_TOKENS`.
pub fn content_tokens(n: &Normalized, marks: &[(Span, &str)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut skip = 0;
    for (i, t) in n.tokens.iter().enumerate() {
        if out.len() >= MAX_SCORED_TOKENS {
            break;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let next = |k: usize| n.tokens.get(i + k).map(|t| t.text.as_str());
        let word = match marks.iter().find(|(s, _)| s.overlaps(&t.span)) {
            Some((_, kind)) => format!("@{kind}"),
            // "dar de baja el turno" is cancelling it; "me das un turno" is asking for one.
            None if is_dar(&t.text) && next(1) == Some("de") && next(2) == Some("baja") => {
                skip = 2;
                "cancelar".to_string()
            }
            None if is_dar(&t.text) => "sacar".to_string(),
            None if is_stop_word(&t.text) => continue,
            None => fold(&t.text).to_string(),
        };
        if !out.contains(&word) {
            out.push(word);
        }
    }
    out
}

/// The tokens minus greeting words, when there are both greeting and other words.
pub fn without_greetings(tokens: &[String]) -> Option<Vec<String>> {
    let is_greeting = |t: &String| {
        matches!(
            t.as_str(),
            "hola" | "hello" | "buenos" | "dias" | "good" | "morning" | "afternoon" | "evening" | "saludos"
        )
    };
    let rest: Vec<String> = tokens.iter().filter(|t| !is_greeting(t)).cloned().collect();
    (!rest.is_empty() && rest.len() < tokens.len()).then_some(rest)
}

/// Forms of "dar" (give) patients write: "me das", "me dan", "dame", "me podrian dar".
fn is_dar(w: &str) -> bool {
    matches!(
        w,
        "dar" | "das" | "dan" | "den" | "dame" | "darme" | "denme" | "daria" | "darian" | "darias" | "doy" | "damos"
    )
}

fn fold(w: &str) -> &str {
    match w {
        "queria" | "quisiera" | "quiere" | "queremos" | "kiero" | "qiero" => "quiero",
        "necesitaria" | "necesitamos" | "necesitaba" | "nesecito" | "nececito" => "necesito",
        "turnos" => "turno",
        "wanna" | "like" => "want",
        "buenas" | "buen" | "buenass" | "buenaas" | "buenasss" => "buenos",
        "thx" | "thnx" | "ty" => "thanks",
        "grax" | "graciass" | "graciaas" | "grasias" => "gracias",
        "anulen" | "anula" | "anulame" | "anulá" => "anular",
        "empecemos" | "empezemos" | "empezamos" | "arranquemos" => "empezar",
        // "¿me anotás para el oftalmólogo?" asks for a turno like "sacar turno".
        "anotas" | "anotame" | "anotan" | "anoten" | "anotar" => "sacar",
        "cancela" | "cancelame" | "cancelen" | "cancelalo" => "cancelar",
        "tardes" | "noches" | "dia" => "dias",
        "hi" | "hey" | "holis" => "hello",
        "appointments" | "appt" => "appointment",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn one_edit() {
        let yes = [
            ("quiero", "quero"),
            ("turno", "turno"),
            ("turno", "truno"),
            ("turno", "turnos"),
            ("cardiologia", "cardiolgia"),
            ("ab", "ba"),
            ("", "a"),
        ];
        for (a, b) in yes {
            assert!(within_one_edit(&chars(a), &chars(b)), "{a} {b}");
            assert!(within_one_edit(&chars(b), &chars(a)), "{b} {a}");
            assert!(strsim::osa_distance(a, b) <= 1, "{a} {b}");
        }
        let no = [("turno", "tunro2"), ("abc", "cba"), ("quiero", "queria"), ("a", "abc")];
        for (a, b) in no {
            assert!(!within_one_edit(&chars(a), &chars(b)), "{a} {b}");
            assert!(strsim::osa_distance(a, b) > 1, "{a} {b}");
        }
    }

    proptest::proptest! {
        #[test]
        fn one_edit_agrees_with_strsim(a in "[abcñ]{0,7}", b in "[abcñ]{0,7}") {
            let fast = within_one_edit(&chars(&a), &chars(&b));
            proptest::prop_assert_eq!(fast, strsim::osa_distance(&a, &b) <= 1);
        }
    }

    #[test]
    fn placeholders_replace_entities_once() {
        let n = Normalized::new("¿trabajan con Swiss Medical?");
        let marks = [(Span::new(15, 28), "coverage")];
        assert_eq!(content_tokens(&n, &marks), ["trabajan", "@coverage"]);
        let n = Normalized::new("Quisiera turnos, por favor");
        assert_eq!(content_tokens(&n, &[]), ["quiero", "turno"]);
    }

    #[test]
    fn rare_words_weigh_more_and_typos_count() {
        let idx = IntentIndex::new(vec![
            ("book".into(), vec!["quiero".into(), "sacar".into(), "turno".into()]),
            (
                "cancel".into(),
                vec!["quiero".into(), "cancelar".into(), "turno".into()],
            ),
        ]);
        let s = idx.score(&["cancelar".into(), "turno".into()]);
        assert_eq!(idx.name(s[0].0), "cancel");
        let s = idx.score(&["quero".into(), "sacar".into(), "turno".into()]);
        assert_eq!(idx.name(s[0].0), "book");
        assert!(s[0].1 > 0.85, "{s:?}");
        let s = idx.score(&["cancelo".into(), "turno".into()]);
        assert_eq!(idx.name(s[0].0), "cancel");
        assert!(idx.score(&[]).is_empty());
        assert!(IntentIndex::new(Vec::new()).score(&["hola".into()]).is_empty());
    }
}
