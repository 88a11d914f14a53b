//! The fact guard of phrasing: every fact of the template's reply (dates, times, numbers,
//! names, specialties, coverages, the address) must still be in the rephrased text, and no
//! number may appear that the template did not say. Otherwise the template's text is used.
//! Comparisons ignore case, accents and spacing.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::flow::clinic::Clinic;
// Facts are compared lower case, without accents and with single spaces.
use crate::nlu::normalize::fold as normalize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// Must appear as written (normalized): "10:30", "26/11", "dra. laura gomez".
    Text(String),
    /// Must appear as a whole number: "3" is not found in "30".
    Number(String),
}

static TIME: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\b\d{1,2}[:.]\d{2}\b").ok());
static DATE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?)\b").ok());
static DIGITS: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\d+").ok());
static WORD: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"[\p{L}][\p{L}'’-]*\.?").ok());

const CALENDAR: [&str; 38] = [
    "lunes",
    "martes",
    "miercoles",
    "jueves",
    "viernes",
    "sabado",
    "domingo",
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "hoy",
];

/// Abbreviations that belong to the name after them ("Dra. Laura Gómez", "Av. Rivadavia").
const TITLES: [&str; 8] = ["dr.", "dra.", "sr.", "sra.", "lic.", "av.", "avda.", "gral."];

fn digit_runs(s: &str) -> HashSet<String> {
    let Some(re) = DIGITS.as_ref() else {
        return HashSet::new();
    };
    re.find_iter(s)
        .map(|m| m.as_str().trim_start_matches('0').to_string())
        .collect()
}

/// The facts of a reply.
pub fn facts(text: &str, clinic: &Clinic) -> Vec<Fact> {
    let mut out: Vec<Fact> = Vec::new();
    let mut push = |f: Fact| {
        if !out.contains(&f) {
            out.push(f);
        }
    };
    let mut covered: Vec<(usize, usize)> = Vec::new();
    for re in [TIME.as_ref(), DATE.as_ref()].into_iter().flatten() {
        for m in re.find_iter(text) {
            if covered.iter().any(|(a, b)| m.start() < *b && *a < m.end()) {
                continue;
            }
            covered.push((m.start(), m.end()));
            push(Fact::Text(normalize(&m.as_str().replace('.', ":"))));
        }
    }
    if let Some(re) = DIGITS.as_ref() {
        for m in re.find_iter(text) {
            if !covered.iter().any(|(a, b)| m.start() >= *a && m.end() <= *b) {
                push(Fact::Number(m.as_str().trim_start_matches('0').to_string()));
            }
        }
    }
    let norm = normalize(text);
    let mut names: Vec<&str> = vec![clinic.name.as_str()];
    names.extend(clinic.address.as_deref());
    for s in &clinic.specialties {
        names.push(&s.name);
        names.extend(s.name_en.as_deref());
        names.extend(s.professionals.iter().map(|p| p.name.as_str()));
    }
    names.extend(clinic.coverages.iter().map(|c| c.name.as_str()));
    for n in names {
        let n = normalize(n);
        if !n.is_empty() && contains_words(&norm, &n) {
            push(Fact::Text(n));
        }
    }
    for w in norm.split(|c: char| !c.is_alphanumeric()) {
        if CALENDAR.contains(&w) {
            push(Fact::Text(w.to_string()));
        }
    }
    for name in capitalized(text) {
        push(Fact::Text(normalize(&name)));
    }
    out
}

/// `needle` appears in `hay` on word boundaries.
fn contains_words(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Runs of capitalized words ("Dra. Laura Gómez", "OSDE"). A sentence's first word is only
/// capitalized by grammar, so it is left out.
fn capitalized(text: &str) -> Vec<String> {
    let Some(re) = WORD.as_ref() else { return Vec::new() };
    let mut out = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let mut run_starts_sentence = false;
    let mut last_end = 0;
    let mut flush = |run: &mut Vec<&str>, starts: bool| {
        let words: Vec<&str> = if starts {
            run.iter().skip(1).copied().collect()
        } else {
            run.clone()
        };
        if !words.is_empty() {
            let joined = words.join(" ");
            let trimmed = if words
                .last()
                .is_some_and(|w| TITLES.contains(&w.to_lowercase().as_str()))
            {
                joined
            } else {
                joined.trim_end_matches('.').to_string()
            };
            if trimmed.chars().count() > 1 {
                out.push(trimmed);
            }
        }
        run.clear();
    };
    for m in re.find_iter(text) {
        let w = m.as_str();
        let gap = &text[last_end..m.start()];
        let is_cap = w.chars().next().is_some_and(char::is_uppercase);
        let sentence_start = {
            let before = text[..m.start()].trim_end_matches(|c: char| c.is_whitespace() || "¿¡\"«“(".contains(c));
            before.is_empty() || before.ends_with(['.', '!', '?', '\n']) && !ends_with_title(before)
        };
        let joins = !run.is_empty() && gap.chars().all(|c| c == ' ') && !gap.is_empty() && !run_ends_sentence(&run);
        if is_cap && joins {
            run.push(w);
        } else {
            flush(&mut run, run_starts_sentence);
            if is_cap {
                run.push(w);
                run_starts_sentence = sentence_start;
            }
        }
        last_end = m.end();
    }
    flush(&mut run, run_starts_sentence);
    out
}

fn ends_with_title(before: &str) -> bool {
    let last = before.rsplit(char::is_whitespace).next().unwrap_or("").to_lowercase();
    TITLES.contains(&last.as_str())
}

/// "Gracias. Dra." ends a sentence at "Gracias." but not at "Dra.".
fn run_ends_sentence(run: &[&str]) -> bool {
    run.last()
        .is_some_and(|w| w.ends_with('.') && !TITLES.contains(&w.to_lowercase().as_str()))
}

/// Checks a rephrased reply. `Err` names the first fact missing (or the number added).
pub fn check(template: &str, rephrased: &str, clinic: &Clinic) -> Result<(), String> {
    let out = normalize(&rephrased.replace(['.', ':'], ":"));
    let out_plain = normalize(rephrased);
    let out_numbers = digit_runs(rephrased);
    for f in facts(template, clinic) {
        let ok = match &f {
            Fact::Text(t) if t.contains(':') => out.contains(t.as_str()),
            Fact::Text(t) => contains_words(&out_plain, t) || out_plain.contains(t.as_str()),
            Fact::Number(n) => out_numbers.contains(n),
        };
        if !ok {
            return Err(match f {
                Fact::Text(t) | Fact::Number(t) => format!("`{t}` is missing"),
            });
        }
    }
    let template_numbers = digit_runs(template);
    if let Some(extra) = out_numbers.iter().find(|n| !template_numbers.contains(*n)) {
        return Err(format!("`{extra}` was added"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clinic() -> Clinic {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::flow::compile::compile_dir(dir)
            .unwrap_or_else(|d| panic!("{d:?}"))
            .clinic
    }

    const BOOKED: &str = "Listo, le reservé el turno de Cardiología con la Dra. Laura Gómez el jueves 26/11 a las 10:30. Atendemos en Av. Rivadavia 1234. Cobertura: OSDE.";

    #[test]
    fn extracts_dates_times_numbers_names_and_clinic_terms() {
        let c = clinic();
        let f = facts(BOOKED, &c);
        for want in [
            Fact::Text("10:30".into()),
            Fact::Text("26/11".into()),
            Fact::Text("jueves".into()),
            Fact::Text("cardiologia".into()),
            Fact::Text("dra. laura gomez".into()),
            Fact::Text("osde".into()),
            Fact::Number("1234".into()),
        ] {
            assert!(f.contains(&want), "{want:?} not in {f:?}");
        }
        assert!(
            !f.contains(&Fact::Text("listo".into())),
            "a sentence's first word is not a name"
        );
        assert!(
            !f.contains(&Fact::Number("10".into())),
            "the time's digits are part of the time"
        );
    }

    #[test]
    fn a_faithful_rephrase_passes_whatever_the_case_accents_and_spacing() {
        let c = clinic();
        let good = "¡Perfecto! Quedó su turno de cardiologia con la DRA. Laura Gomez, el Jueves 26/11  a las 10.30 hs. Lo esperamos en Av. Rivadavia 1234 (cobertura OSDE).";
        assert_eq!(check(BOOKED, good, &c), Ok(()));
    }

    #[test]
    fn a_dropped_or_changed_fact_fails() {
        let c = clinic();
        let cases = [
            (
                "Listo, turno de Cardiología con la Dra. Laura Gómez el jueves 26/11. Av. Rivadavia 1234, OSDE.",
                "10:30",
            ),
            (
                "Listo, Cardiología con la Dra. Laura Gómez el jueves 26/11 a las 11:30, Av. Rivadavia 1234, OSDE.",
                "10:30",
            ),
            (
                "Listo, Cardiología con la Dra. Laura Pérez el jueves 26/11 a las 10:30, Av. Rivadavia 1234, OSDE.",
                "gomez",
            ),
            (
                "Listo, Cardiología con la Dra. Laura Gómez el viernes 26/11 a las 10:30, Av. Rivadavia 1234, OSDE.",
                "jueves",
            ),
            (
                "Listo, Dermatología con la Dra. Laura Gómez el jueves 26/11 a las 10:30, Av. Rivadavia 1234, OSDE.",
                "cardiologia",
            ),
            (
                "Listo, Cardiología con la Dra. Laura Gómez el jueves 26/11 a las 10:30, Av. Rivadavia 1234.",
                "osde",
            ),
        ];
        for (bad, missing) in cases {
            let e = check(BOOKED, bad, &c).unwrap_err();
            assert!(e.contains(missing), "{bad}: {e}");
        }
    }

    #[test]
    fn numbers_are_whole_and_none_may_be_added() {
        let c = clinic();
        assert!(check("Tiene 3 turnos.", "Usted tiene 30 turnos.", &c).is_err());
        assert!(check("Tiene 3 turnos.", "Tiene 3 turnos, el más próximo en 2 días.", &c).is_err());
        assert_eq!(check("Tiene 3 turnos.", "Usted tiene 3 turnos.", &c), Ok(()));
    }

    #[test]
    fn lists_keep_every_option() {
        let c = clinic();
        let t = "Tengo estos horarios: 1. jueves 26/11 10:00 2. jueves 26/11 11:30";
        assert!(check(t, "Opciones: 1) jueves 26/11 10:00, 2) jueves 26/11 11:30", &c).is_ok());
        assert!(check(t, "Opciones: 1) jueves 26/11 10:00", &c).is_err());
    }

    #[test]
    fn a_text_without_facts_accepts_any_wording_without_numbers() {
        let c = clinic();
        assert_eq!(
            check("¿En qué puedo ayudarlo?", "¿Cómo puedo ayudarte hoy?", &c),
            Ok(())
        );
    }

    #[test]
    fn normalize_ignores_case_accents_and_spaces() {
        assert_eq!(normalize("  Gómez   MIÉRCOLES\tÑandú "), "gomez miercoles nandu");
    }
}
