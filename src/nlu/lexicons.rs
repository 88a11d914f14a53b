//! Yes/no lexicons and language detection: small closed word lists, no examples needed.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::normalize::{Normalized, Span, squeeze};

/// Tokens looked at: a yes/no or a language shows in the first words.
const MAX_TOKENS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    Affirm,
    Deny,
}

impl Polarity {
    pub fn intent(self) -> &'static str {
        match self {
            Polarity::Affirm => "affirm",
            Polarity::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YesNo {
    pub polarity: Polarity,
    /// The whole message is a yes/no (plus thanks/please), not just its first words.
    pub exact: bool,
    /// Thanks or please came with it ("ok, gracias" may be a thank-you more than a yes).
    pub polite: bool,
}

// Phrases separated by '|', compared after squeezing repeated letters ("siii" → "si").
const AFFIRM: &str = "si|sip|dale|de una|joya|ok|okey|okay|oka|de acuerdo|perfecto|confirmo|confirmado|\
    correcto|exacto|claro|por supuesto|bueno|va|vale|genial|listo|esta bien|ta bien|muy bien|\
    bien|afirmativo|obvio|asi es|yes|sure|yeah|yep|yup|of course|correct|confirm|confirmed|\
    right|that s right|sounds good|great|perfect|fine|absolutely|agreed";
const DENY: &str = "no|nop|nope|nah|para nada|negativo|tampoco|no quiero|mejor no|\
    de ninguna manera|ni ahi|no way|not really|no thanks|not now|ahora no|todavia no|aun no|\
    no por ahora";
const POLITE: &str = "gracias muchas mil thanks thank you por favor please much";

static LEXICON: LazyLock<Vec<(Vec<String>, Polarity)>> = LazyLock::new(|| {
    let mut v: Vec<(Vec<String>, Polarity)> = AFFIRM
        .split('|')
        .map(|p| (p, Polarity::Affirm))
        .chain(DENY.split('|').map(|p| (p, Polarity::Deny)))
        .map(|(p, pol)| (p.split(' ').map(squeeze).collect(), pol))
        .collect();
    v.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    v
});

/// Yes or no at the start of the message; `exact` when nothing else is said. A first word that
/// belongs to an entity ("no tengo obra social") is not a "no".
pub fn yes_no(n: &Normalized, claimed: &[Span]) -> Option<YesNo> {
    if n.tokens.is_empty() {
        return emoji_yes_no(&n.original).map(|polarity| YesNo {
            polarity,
            exact: true,
            polite: false,
        });
    }
    if claimed.iter().any(|c| c.overlaps(&n.tokens[0].span)) {
        return None;
    }
    let toks: Vec<String> = n.tokens.iter().take(MAX_TOKENS).map(|t| squeeze(&t.text)).collect();
    let mut i = 0;
    let mut polarity = None;
    let mut polite = false;
    while i < toks.len() {
        let hit = LEXICON
            .iter()
            .find(|(phrase, _)| toks.get(i..i + phrase.len()).is_some_and(|w| w == phrase.as_slice()));
        match hit {
            Some((phrase, pol)) if polarity.is_none_or(|p| p == *pol) => {
                polarity = Some(*pol);
                i += phrase.len();
            }
            _ if is_polite(&toks[i]) && polarity.is_some() => {
                polite = true;
                i += 1;
            }
            _ => break,
        }
    }
    let polarity = polarity?;
    let rest = toks.get(i..).unwrap_or(&[]);
    let exact = rest.iter().all(|t| is_polite(t));
    Some(YesNo {
        polarity,
        exact,
        polite: polite || (exact && !rest.is_empty()),
    })
}

fn is_polite(w: &str) -> bool {
    POLITE.split(' ').any(|p| p == w)
}

fn emoji_yes_no(original: &str) -> Option<Polarity> {
    let t = original.trim();
    if t.starts_with('👍') || t.starts_with('👌') || t.starts_with('✅') {
        Some(Polarity::Affirm)
    } else if t.starts_with('👎') || t.starts_with('❌') {
        Some(Polarity::Deny)
    } else {
        None
    }
}

// Words typical of one language and not the other ("no", "ok", "a" are in neither).
const SPANISH: &str = "hola buenos buenas buen dias tardes noches quiero quisiera queria \
    necesito turno turnos gracias el la los las de del que para por con una un mi es esta \
    estoy tengo puedo como cuando donde hay si manana hoy y pero medico obra social sacar \
    cancelar hablar persona trabajan aceptan favor soy llamo semana proximo tarde lunes \
    martes miercoles jueves viernes sabado domingo en al dale nombre ayuda usted ustedes \
    cual chau adios tienen atienden abren queda llego puede podes pasas hasta luego muchas";
const ENGLISH: &str = "hello hi hey good morning afternoon evening i want need would like to \
    the an my is are you do can could please thanks thank appointment book cancel with for \
    on at today tomorrow next what which when where how yes yeah sure of and have it this \
    that doctor insurance speak talk human monday tuesday wednesday thursday friday \
    saturday sunday name help your does bye goodbye see there open close located hours \
    accept take";

static SPANISH_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| SPANISH.split_whitespace().collect());
static ENGLISH_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| ENGLISH.split_whitespace().collect());

/// The message's language when its function words say so clearly.
pub fn detect_lang(n: &Normalized) -> Option<crate::lang::Lang> {
    let (mut es, mut en) = (0, 0);
    for t in n.tokens.iter().take(MAX_TOKENS) {
        let w = t.text.as_str();
        es += usize::from(SPANISH_WORDS.contains(w));
        en += usize::from(ENGLISH_WORDS.contains(w));
    }
    match es.cmp(&en) {
        std::cmp::Ordering::Greater => Some(crate::lang::Lang::Es),
        std::cmp::Ordering::Less => Some(crate::lang::Lang::En),
        std::cmp::Ordering::Equal => None,
    }
}

// Ways of declining a question that can be skipped ("¿Me deja un email? … o diga «no»"), as
// the first words of the message; `DECLINE_REST` may follow ("no tengo mail", "prefiero no
// darlo", "skip it"). Compared after squeezing, like the yes/no lexicons.
const DECLINES: &str = "no|nop|nope|nah|no tengo|no uso|no quiero|prefiero no|mejor no|paso|saltear|salteo|\
    omitir|sin|ninguno|ninguna|no hace falta|no es necesario|no necesito|dejalo|deja|asi esta bien|\
    por ahora no|ahora no|skip|pass|none|no thanks|i don t have|i dont have|don t have|dont have|\
    i d rather not|id rather not|rather not|not now|no need|i don t use|i dont use|nothing|without";
const DECLINE_REST: &str = "mail|email|mails|emails|e|correo|electronico|mi|un|uno|una|el|lo|darlo|decirlo|\
    pasarlo|dejarlo|gracias|muchas|por|favor|ahora|tampoco|it|one|an|a|this|time|thanks|thank|you|please|\
    address|that|de|momento|siguiente|seguimos|sigamos|any|tengo|uso|quiero";

static DECLINE_LEXICON: LazyLock<(Vec<Vec<String>>, HashSet<String>)> = LazyLock::new(|| {
    let mut phrases: Vec<Vec<String>> = DECLINES
        .split('|')
        .map(|p| p.split(' ').map(squeeze).collect())
        .collect();
    phrases.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let rest = DECLINE_REST.split('|').map(squeeze).collect();
    (phrases, rest)
});

/// Whether the message declines a question that can be skipped: it starts with a way of
/// saying no ("no", "no tengo", "prefiero no", "paso", "skip", "I don't have one") and says
/// nothing else but what such an answer carries ("… mail, gracias").
pub fn declines(n: &Normalized) -> bool {
    let toks: Vec<String> = n.tokens.iter().take(MAX_TOKENS).map(|t| squeeze(&t.text)).collect();
    if toks.is_empty() {
        return matches!(emoji_yes_no(&n.original), Some(Polarity::Deny));
    }
    let (phrases, rest) = &*DECLINE_LEXICON;
    let Some(phrase) = phrases
        .iter()
        .find(|p| toks.get(..p.len()).is_some_and(|w| w == p.as_slice()))
    else {
        return false;
    };
    toks[phrase.len()..]
        .iter()
        .all(|t| rest.contains(t) || phrases.iter().any(|p| p.len() == 1 && p[0] == *t))
}

/// Builds the static patterns now, so the first patient does not wait for them.
pub fn warm_up() {
    LazyLock::force(&LEXICON);
    LazyLock::force(&SPANISH_WORDS);
    LazyLock::force(&ENGLISH_WORDS);
    LazyLock::force(&DECLINE_LEXICON);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;

    fn yn(s: &str) -> Option<(Polarity, bool)> {
        yes_no(&Normalized::new(s), &[]).map(|y| (y.polarity, y.exact))
    }

    #[test]
    fn yes_no_lexicons() {
        use Polarity::*;
        for s in ["sí", "si", "Siii", "dale", "ok", "de acuerdo", "perfecto", "confirmo"] {
            assert_eq!(yn(s), Some((Affirm, true)), "{s}");
        }
        for s in ["correcto", "yes", "sure", "yeah", "Sí, perfecto", "si gracias", "👍"] {
            assert_eq!(yn(s), Some((Affirm, true)), "{s}");
        }
        for s in [
            "no",
            "nop",
            "para nada",
            "no gracias",
            "No, gracias!",
            "nope",
            "no thanks",
        ] {
            assert_eq!(yn(s), Some((Deny, true)), "{s}");
        }
        assert_eq!(yn("si, el martes"), Some((Affirm, false)));
        assert_eq!(yn("no puedo ese día"), Some((Deny, false)));
        assert_eq!(yn("si no"), Some((Affirm, false)));
        assert_eq!(yn("gracias"), None);
        assert_eq!(yn("nosotros"), None);
        assert_eq!(yn(""), None);
    }

    #[test]
    fn a_claimed_first_word_is_not_a_no() {
        let n = Normalized::new("no tengo obra social");
        assert_eq!(yes_no(&n, &[Span::new(0, 20)]), None);
    }

    #[test]
    fn declining_a_question_that_can_be_skipped() {
        let d = |s: &str| declines(&Normalized::new(s));
        for s in [
            "no",
            "No, gracias",
            "no tengo",
            "no tengo mail",
            "No tengo correo electrónico",
            "prefiero no",
            "prefiero no darlo",
            "paso",
            "sin mail",
            "skip",
            "Skip it",
            "no thanks",
            "I don't have one",
            "I'd rather not",
            "👎",
        ] {
            assert!(d(s), "{s}");
        }
        for s in [
            "ana@example.com",
            "no sé cuál es",
            "sí",
            "quiero un turno",
            "no puedo el jueves",
            "nosotros",
            "",
        ] {
            assert!(!d(s), "{s}");
        }
    }

    #[test]
    fn languages() {
        let l = |s: &str| detect_lang(&Normalized::new(s));
        assert_eq!(l("hola, quiero un turno"), Some(Lang::Es));
        assert_eq!(l("Hello, I want to book an appointment"), Some(Lang::En));
        assert_eq!(l("hello"), Some(Lang::En));
        assert_eq!(l("María López"), None);
        assert_eq!(l("12345678"), None);
        assert_eq!(l("ok"), None);
    }
}
