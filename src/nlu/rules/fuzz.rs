//! `understand` must never panic, whatever arrives from a channel.

use std::time::Instant;

use super::tests::{nlu, now};
use crate::nlu::{EntityKind, NluContext, Understand};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "a las ",
    "10",
    ":",
    "30",
    "/",
    "11",
    "-",
    ".",
    "26",
    " de ",
    "noviembre",
    "mañana",
    "la ",
    "el ",
    "martes",
    " y media",
    " menos cuarto",
    "hs",
    "pm",
    "am",
    "12.345.678",
    "OSDE",
    "cardiólogo",
    "sí",
    "no",
    "/ayuda",
    "¿",
    "?",
    "😀",
    "👍",
    "\u{202E}",
    "\u{200F}",
    "\u{0}",
    "\u{301}",
    "\u{301}\u{301}\u{301}",
    "مرحبا",
    "שלום",
    "İ",
    "ß",
    "ǅ",
    "\u{FEFF}",
    "\r\n",
    "\t",
    " ",
    "9999",
    "0",
    "00:00",
    "99:99",
    "31/02/9999",
    "1/1/0",
    "٣",
    "１２",
    "º",
    "ª",
    "°",
    "me llamo ",
    "María",
    "opción ",
    "the second",
    "🇦🇷",
    "\u{1F3FB}",
    "ｱ",
    "\u{10FFFF}",
];

fn random_string(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(24) {
        if rng.below(4) == 0 {
            // Any scalar value, including unassigned and private-use ones.
            let c = char::from_u32(rng.next() as u32 % 0x11_0000).unwrap_or('\u{FFFD}');
            s.push(c);
        } else {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    s
}

fn contexts() -> Vec<NluContext> {
    let mut v = vec![NluContext::default()];
    for k in EntityKind::ALL {
        v.push(NluContext {
            asking: Some(k),
            in_scope: EntityKind::ALL.to_vec(),
            expecting: vec!["affirm".into(), "deny".into()],
            ..NluContext::default()
        });
    }
    v
}

#[test]
fn random_and_adversarial_inputs_never_panic() {
    let nlu = nlu();
    let now = now();
    let ctxs = contexts();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..3_000 {
        let s = random_string(&mut rng);
        let ctx = &ctxs[i % ctxs.len()];
        let u = nlu.understand(&s, ctx, &now);
        assert_eq!(u.source, "rules");
        if let Some(intent) = &u.intent {
            assert!((0.0..=1.0).contains(&intent.confidence), "{s:?}");
        }
    }
}

#[test]
fn huge_inputs_are_capped() {
    let nlu = nlu();
    let now = now();
    let big = [
        "a".repeat(1 << 20),
        "1".repeat(1 << 20),
        "a las 10 ".repeat(120_000),
        "\u{301}".repeat(300_000),
        "ñ".repeat(500_000),
        "😀".repeat(300_000),
        "12.345.678 ".repeat(100_000),
    ];
    for s in &big {
        for ctx in contexts() {
            let start = Instant::now();
            let u = nlu.understand(s, &ctx, &now);
            assert_eq!(u.source, "rules");
            // Generous: debug build on a shared machine; the cap keeps this in milliseconds.
            assert!(
                start.elapsed().as_secs() < 2,
                "{} bytes took {:?}",
                s.len(),
                start.elapsed()
            );
            if let Some(t) = u.entity(EntityKind::Text) {
                assert!(t.value.as_str().is_some_and(|v| v.chars().count() <= 2_000));
            }
        }
    }
}

#[test]
fn edge_strings_never_panic() {
    let nlu = nlu();
    let now = now();
    let edges = [
        "",
        " ",
        "/",
        "//",
        "\u{0}",
        "\u{301}",
        "a\u{301}",
        "👍🏻",
        "👎",
        "İstanbul",
        "ﬃ",
        "\u{202E}olleh",
        "9:",
        ":30",
        "a las",
        "a las 99",
        "el",
        "el 0",
        "00/00",
        "0.0.0",
        "y media",
        "menos cuarto",
        "10 y",
        "10 menos",
        "p.m.",
        "1º",
        "º",
        "99999999999999999999999",
        "la 99999999999999999999999",
        "el 99999999999",
        "me llamo",
        "soy",
        "my name is",
    ];
    for s in edges {
        for ctx in contexts() {
            let u = nlu.understand(s, &ctx, &now);
            assert_eq!(u.source, "rules");
        }
    }
}
