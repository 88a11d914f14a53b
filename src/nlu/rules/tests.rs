use std::collections::BTreeMap;

use serde_json::json;

use super::RulesNlu;
use crate::flow::clinic::{Clinic, Coverage, Specialty};
use crate::lang::Lang;
use crate::nlu::{EntityKind, IntentDef, NluContext, Understand, Understanding};

pub(super) fn clinic() -> Clinic {
    let spec = |name: &str, en: &str, syn: &[&str]| Specialty {
        name: name.to_string(),
        name_en: Some(en.to_string()),
        synonyms: syn.iter().map(|s| s.to_string()).collect(),
        professionals: Vec::new(),
    };
    let cov = |name: &str, syn: &[&str]| Coverage {
        name: name.to_string(),
        synonyms: syn.iter().map(|s| s.to_string()).collect(),
        plans: Vec::new(),
    };
    Clinic {
        name: "Clínica Demo".into(),
        tz: jiff::tz::TimeZone::get("America/Argentina/Buenos_Aires").expect("tz"),
        tz_name: "America/Argentina/Buenos_Aires".into(),
        language: Lang::Es,
        address: None,
        phone: None,
        email: None,
        website: None,
        hours: BTreeMap::new(),
        appointment_minutes: 30,
        booking_horizon_days: 60,
        holidays: Vec::new(),
        specialties: vec![
            spec("Cardiología", "Cardiology", &["corazón"]),
            spec("Clínica Médica", "General Medicine", &["médico de cabecera"]),
            spec("Dermatología", "Dermatology", &["piel"]),
            spec("Ginecología", "Gynecology", &[]),
            spec("Odontología", "Dentistry", &["dentista", "dientes", "muelas"]),
            spec("Oftalmología", "Ophthalmology", &["oculista", "ojos"]),
            spec("Pediatría", "Pediatrics", &[]),
            spec("Traumatología", "Orthopedics", &[]),
        ],
        coverages: vec![
            cov("OSDE", &[]),
            cov("Swiss Medical", &["swiss"]),
            cov("Galeno", &[]),
            cov("Medifé", &[]),
            cov("IOMA", &["obra social de la provincia"]),
            cov("PAMI", &[]),
        ],
        private_patients: true,
        email_confirmations: false,
        whatsapp: Default::default(),
        voice: Default::default(),
        llm: Default::default(),
        identity: Default::default(),
        turn_days: None,
        calendars: Default::default(),
        web_origins: Vec::new(),
        numbers: Default::default(),
        value: serde_json::Value::Null,
    }
}

pub(super) fn intents() -> Vec<IntentDef> {
    let def = |name: &str, examples: &[(Lang, &str)]| IntentDef {
        name: name.to_string(),
        description: String::new(),
        examples: examples.iter().map(|(l, e)| (*l, e.to_string())).collect(),
    };
    use Lang::{En, Es};
    vec![
        def(
            "book_appointment",
            &[
                (Es, "quiero sacar un turno"),
                (Es, "necesito un turno"),
                (Es, "quiero un turno con cardiología"),
                (En, "I want to book an appointment"),
            ],
        ),
        def(
            "cancel_appointment",
            &[(Es, "quiero cancelar mi turno"), (En, "cancel my appointment")],
        ),
        def(
            "faq_coverage",
            &[
                (Es, "¿trabajan con OSDE?"),
                (Es, "¿qué obras sociales aceptan?"),
                (En, "do you take OSDE?"),
            ],
        ),
        def("thanks", &[(Es, "gracias"), (Es, "muchas gracias"), (En, "thanks")]),
        def("greet", &[(Es, "hola"), (Es, "buenos días"), (En, "hello")]),
        def(
            "human",
            &[(Es, "quiero hablar con una persona"), (En, "I want to talk to a human")],
        ),
    ]
}

pub(super) fn nlu() -> RulesNlu {
    RulesNlu::new(&clinic(), &intents())
}

/// Sunday 2026-11-22 10:00 in Buenos Aires.
pub(super) fn now() -> jiff::Zoned {
    jiff::civil::date(2026, 11, 22)
        .at(10, 0, 0, 0)
        .in_tz("America/Argentina/Buenos_Aires")
        .expect("zoned")
}

fn run(text: &str, ctx: &NluContext) -> Understanding {
    nlu().understand(text, ctx, &now())
}

fn plain(text: &str) -> Understanding {
    run(text, &NluContext::default())
}

fn asking(text: &str, kind: EntityKind) -> Understanding {
    run(
        text,
        &NluContext {
            asking: Some(kind),
            ..NluContext::default()
        },
    )
}

fn value(u: &Understanding, kind: EntityKind) -> Option<serde_json::Value> {
    u.entity(kind).map(|e| e.value.clone())
}

#[track_caller]
fn assert_entity(text: &str, kind: EntityKind, expected: serde_json::Value) {
    let u = plain(text);
    assert_eq!(value(&u, kind), Some(expected), "{text:?}: {u:?}");
    assert_eq!(u.source, "rules");
}

#[test]
fn every_date_phrase() {
    use EntityKind::Date;
    let cases = [
        ("hoy", "2026-11-22"),
        ("mañana", "2026-11-23"),
        ("pasado mañana", "2026-11-24"),
        ("el martes", "2026-11-24"),
        ("el próximo martes", "2026-11-24"),
        ("el martes que viene", "2026-11-24"),
        ("26/11", "2026-11-26"),
        ("26/11/2026", "2026-11-26"),
        ("26-11", "2026-11-26"),
        ("26 de noviembre", "2026-11-26"),
        ("el 26", "2026-11-26"),
        ("today", "2026-11-22"),
        ("tomorrow", "2026-11-23"),
        ("next tuesday", "2026-11-24"),
        ("on tuesday", "2026-11-24"),
        ("november 26", "2026-11-26"),
        ("26th november", "2026-11-26"),
        ("11/26", "2026-11-26"),
        ("el 5 de enero", "2027-01-05"),
    ];
    for (text, date) in cases {
        assert_entity(text, Date, json!(date));
    }
}

#[test]
fn morning_is_a_time_of_day_not_a_date() {
    let u = plain("a la mañana");
    assert_eq!(u.entity(EntityKind::Date), None);
    let u = plain("por la mañana a las 9");
    assert_eq!(u.entity(EntityKind::Date), None);
    assert_eq!(value(&u, EntityKind::Time), Some(json!("09:00")));
}

#[test]
fn every_time_phrase() {
    use EntityKind::Time;
    let cases = [
        ("a las 10", "10:00"),
        ("a las 3", "15:00"),
        ("10:30", "10:30"),
        ("10.30", "10:30"),
        ("10 y media", "10:30"),
        ("10 y cuarto", "10:15"),
        ("11 menos cuarto", "10:45"),
        ("3 de la tarde", "15:00"),
        ("9 de la mañana", "09:00"),
        ("15 hs", "15:00"),
        ("15 h", "15:00"),
        ("15hs", "15:00"),
        ("10am", "10:00"),
        ("3 pm", "15:00"),
        ("at 10", "10:00"),
        ("mediodía", "12:00"),
        ("good morning, at 3", "15:00"),
    ];
    for (text, time) in cases {
        assert_entity(text, Time, json!(time));
    }
}

#[test]
fn a_bare_number_is_a_time_only_when_asked() {
    assert_eq!(plain("10").entity(EntityKind::Time), None);
    let u = asking("10", EntityKind::Time);
    assert_eq!(value(&u, EntityKind::Time), Some(json!("10:00")));
    assert!(u.sure);
    assert_eq!(plain("26/11").entity(EntityKind::Time), None);
}

#[test]
fn date_and_time_together() {
    let u = plain("quiero un turno para el martes a las 10 y media");
    assert_eq!(value(&u, EntityKind::Date), Some(json!("2026-11-24")));
    assert_eq!(value(&u, EntityKind::Time), Some(json!("10:30")));
    assert_eq!(
        u.entity(EntityKind::Time).map(|e| e.text.as_str()),
        Some("a las 10 y media")
    );
}

#[test]
fn specialties_by_name_synonym_and_professional() {
    use EntityKind::Specialty;
    let cases = [
        ("cardiología", "Cardiología"),
        ("CARDIOLOGIA", "Cardiología"),
        ("cardiólogo", "Cardiología"),
        ("cardióloga", "Cardiología"),
        ("cardiologo", "Cardiología"),
        ("cardiolgia", "Cardiología"),
        ("Cardiology", "Cardiología"),
        ("a cardiologist", "Cardiología"),
        ("dentista", "Odontología"),
        ("me duelen las muelas", "Odontología"),
        ("dermatólogo", "Dermatología"),
        ("ginecólogo", "Ginecología"),
        ("oftalmólogo", "Oftalmología"),
        ("el oculista", "Oftalmología"),
        ("traumatólogo", "Traumatología"),
        ("pediatra", "Pediatría"),
        ("un médico clínico", "Clínica Médica"),
        ("médico de cabecera", "Clínica Médica"),
        ("clínica médica", "Clínica Médica"),
    ];
    for (text, name) in cases {
        assert_entity(text, Specialty, json!(name));
    }
    assert_eq!(plain("la clínica abre el sábado?").entity(Specialty), None);
}

#[test]
fn coverages() {
    use EntityKind::Coverage;
    let cases = [
        ("OSDE", "OSDE"),
        ("tengo swiss medical", "Swiss Medical"),
        ("Galeno", "Galeno"),
        ("medife", "Medifé"),
        ("Medifé", "Medifé"),
        ("IOMA", "IOMA"),
        ("la obra social de la provincia", "IOMA"),
        ("pami", "PAMI"),
        ("particular", "Particular"),
        ("privado", "Particular"),
        ("sin obra social", "Particular"),
        ("private", "Particular"),
        ("no tengo obra social", "Particular"),
    ];
    for (text, name) in cases {
        assert_entity(text, Coverage, json!(name));
    }
    // The "no" belongs to the coverage, not a refusal.
    let u = plain("no tengo obra social");
    assert_ne!(u.intent_name(), Some("deny"));
}

#[test]
fn documents() {
    use EntityKind::Document;
    assert_entity("12.345.678", Document, json!("12345678"));
    assert_entity("12345678", Document, json!("12345678"));
    assert_entity("DNI 12345678", Document, json!("12345678"));
    assert_entity("mi dni es 1.234.567", Document, json!("1234567"));
    assert_eq!(plain("123").entity(Document), None);
    assert_eq!(plain("1234567890").entity(Document), None);
    let u = asking("123", Document);
    assert_eq!(value(&u, Document), Some(json!("123")));
    let u = asking("es el 1234567890", Document);
    assert_eq!(value(&u, Document), Some(json!("1234567890")));
    assert!(u.sure);
}

#[test]
fn names_only_when_asked() {
    use EntityKind::Name;
    assert_eq!(plain("María López").entity(Name), None);
    let cases = [
        ("maría lópez", "María López"),
        ("me llamo juan pérez", "Juan Pérez"),
        ("Soy Ana García", "Ana García"),
        ("mi nombre es MARÍA DE LOS ÁNGELES", "María de los Ángeles"),
        ("my name is john smith", "John Smith"),
        ("Hola, soy Pedro", "Pedro"),
        ("José-Luis O'Brien", "José-Luis O'Brien"),
    ];
    for (text, name) in cases {
        let u = asking(text, Name);
        assert_eq!(value(&u, Name), Some(json!(name)), "{text}");
        assert!(u.sure, "{text}");
    }
    let u = asking("Hola, soy Pedro", Name);
    assert_eq!(u.intent, None, "the name is the answer, not the greeting");
    for text in [
        "sí",
        "no",
        "12345678",
        "quiero cancelar mi turno",
        "uno dos tres cuatro cinco seis siete",
    ] {
        assert_eq!(asking(text, Name).entity(Name), None, "{text}");
    }
}

#[test]
fn numbers() {
    use EntityKind::Number;
    for (text, n) in [
        ("2", 2),
        ("la primera", 1),
        ("la 2", 2),
        ("opción 3", 3),
        ("the second", 2),
        ("20", 20),
    ] {
        assert_entity(text, Number, json!(n));
    }
    assert_eq!(plain("21").entity(Number), None);
    assert_eq!(plain("quiero 2 turnos").entity(Number), None);
    let u = asking("quiero la opción 3 por favor", Number);
    assert_eq!(value(&u, Number), Some(json!(3)));
    assert!(u.sure);
    assert_eq!(value(&asking("45", Number), Number), Some(json!(45)));
}

#[test]
fn free_text_only_when_asked() {
    assert_eq!(plain("me duele la cabeza").entity(EntityKind::Text), None);
    let u = asking("  me duele la cabeza hace días  ", EntityKind::Text);
    assert_eq!(value(&u, EntityKind::Text), Some(json!("me duele la cabeza hace días")));
    assert!(u.sure);
}

#[test]
fn intents_from_examples() {
    let cases = [
        ("quiero sacar un turno", "book_appointment"),
        ("Necesito un turno", "book_appointment"),
        ("hola, quiero sacar un turno para cardiología", "book_appointment"),
        ("quisiera sacar turno con el dermatólogo", "book_appointment"),
        ("quero sacar un turno", "book_appointment"),
        ("I want to book an appointment", "book_appointment"),
        ("quiero cancelar mi turno", "cancel_appointment"),
        ("¿trabajan con OSDE?", "faq_coverage"),
        ("trabajan con galeno?", "faq_coverage"),
        ("¿Qué obras sociales aceptan?", "faq_coverage"),
        ("hola", "greet"),
        ("Buenos días!", "greet"),
        ("hello", "greet"),
        ("quiero hablar con una persona", "human"),
    ];
    for (text, intent) in cases {
        let u = plain(text);
        assert_eq!(u.intent_name(), Some(intent), "{text:?}: {u:?}");
        assert!(u.sure, "{text:?}: {u:?}");
        let conf = u.intent.as_ref().map_or(0.0, |i| i.confidence);
        assert!((0.75..=1.0).contains(&conf), "{text:?}: {conf}");
    }
}

#[test]
fn weak_or_unknown_messages_are_not_sure() {
    let u = plain("el perro de mi vecino ladra mucho");
    assert!(!u.sure, "{u:?}");
    assert!(u.intent.as_ref().is_none_or(|i| i.confidence < 0.75), "{u:?}");
    let u = plain("");
    assert_eq!(
        u,
        crate::nlu::Understanding {
            source: "rules".into(),
            ..Default::default()
        }
    );
    assert!(!plain("   ").sure);
}

#[test]
fn yes_no_while_expecting_is_sure() {
    let ctx = NluContext {
        expecting: vec!["affirm".into(), "deny".into()],
        ..NluContext::default()
    };
    for text in [
        "sí",
        "si",
        "dale",
        "ok",
        "de acuerdo",
        "perfecto",
        "confirmo",
        "correcto",
        "yes",
        "sure",
        "yeah",
    ] {
        let u = run(text, &ctx);
        assert_eq!(u.intent_name(), Some("affirm"), "{text}");
        assert_eq!(u.intent.as_ref().map(|i| i.confidence), Some(1.0));
        assert!(u.sure, "{text}");
    }
    for text in ["no", "nop", "para nada", "no gracias", "nope", "no thanks"] {
        let u = run(text, &ctx);
        assert_eq!(u.intent_name(), Some("deny"), "{text}");
        assert!(u.sure, "{text}");
    }
    let u = run("si, pero el jueves", &ctx);
    assert_eq!(u.intent_name(), Some("affirm"));
    assert_eq!(value(&u, EntityKind::Date), Some(json!("2026-11-26")));
    assert!(!u.sure);
}

#[test]
fn thanks_with_a_yes_is_a_thank_you_unless_a_yes_is_expected() {
    let u = plain("perfecto, muchas gracias");
    assert_eq!(u.intent_name(), Some("thanks"), "{u:?}");
    let ctx = NluContext {
        expecting: vec!["affirm".into(), "deny".into()],
        ..NluContext::default()
    };
    let u = run("perfecto, muchas gracias", &ctx);
    assert_eq!(u.intent_name(), Some("affirm"));
    assert!(u.sure);
    let u = plain("sí");
    assert_eq!(u.intent_name(), Some("affirm"));
    assert_eq!(u.intent.as_ref().map(|i| i.confidence), Some(0.9));
    assert!(u.sure);
}

#[test]
fn a_request_after_no_wins_over_the_no() {
    let u = plain("no, quiero cancelar mi turno");
    assert_eq!(u.intent_name(), Some("cancel_appointment"));
}

#[test]
fn slash_commands_are_left_to_the_engine() {
    let u = plain("/ayuda");
    assert_eq!(u.intent, None);
    assert!(u.entities.is_empty());
    assert!(u.sure);
    assert_eq!(u.source, "rules");
}

#[test]
fn language_of_the_message() {
    assert_eq!(plain("hola, quiero un turno").lang, Some(Lang::Es));
    assert_eq!(plain("Hi, I need an appointment tomorrow").lang, Some(Lang::En));
    assert_eq!(plain("12345678").lang, None);
    assert_eq!(asking("María López", EntityKind::Name).lang, None);
}

#[test]
fn sure_when_the_asked_entity_is_found() {
    let u = asking("cardiología", EntityKind::Specialty);
    assert_eq!(value(&u, EntityKind::Specialty), Some(json!("Cardiología")));
    assert!(u.sure);
    assert!(!asking("no sé", EntityKind::Specialty).sure);
    // A bare slot value while booking needs no LLM either.
    let ctx = NluContext {
        in_scope: vec![EntityKind::Specialty, EntityKind::Date],
        ..NluContext::default()
    };
    assert!(run("el martes", &ctx).sure);
}

#[test]
fn entity_text_quotes_the_original() {
    let u = plain("Turno con CARDIÓLOGO el 26 de Noviembre");
    assert_eq!(
        u.entity(EntityKind::Specialty).map(|e| e.text.as_str()),
        Some("CARDIÓLOGO")
    );
    assert_eq!(
        u.entity(EntityKind::Date).map(|e| e.text.as_str()),
        Some("26 de Noviembre")
    );
}

/// The demo bot's own intents and clinic (flows/intents.yaml, flows/clinic.yaml).
fn demo_nlu() -> RulesNlu {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    match crate::flow::compile::compile_dir(dir) {
        Ok(bot) => RulesNlu::new(&bot.clinic, &bot.intents),
        Err(d) => panic!("demo bot: {d:?}"),
    }
}

#[test]
fn seeing_a_doctor_is_booking_not_listing_appointments() {
    let nlu = demo_nlu();
    let u = nlu.understand(
        "quisiera ver al cardiólogo el jueves tipo 10 y media",
        &NluContext::default(),
        &now(),
    );
    assert_eq!(
        u.intent.as_ref().map(|i| i.name.as_str()),
        Some("book_appointment"),
        "{u:?}"
    );
    assert_eq!(value(&u, EntityKind::Specialty), Some(json!("Cardiología")));
    assert_eq!(
        value(&u, EntityKind::Date),
        Some(json!("2026-11-26")),
        "the coming Thursday"
    );
    assert_eq!(value(&u, EntityKind::Time), Some(json!("10:30")));
    // Not only the example's own wording.
    for text in [
        "me gustaría ver a la pediatra el lunes",
        "quiero ver al traumatólogo mañana a las 11",
    ] {
        let u = nlu.understand(text, &NluContext::default(), &now());
        let name = u.intent.as_ref().map(|i| i.name.as_str());
        assert!(name == Some("book_appointment") || !u.sure, "{text}: {u:?}");
        assert_ne!(name, Some("my_appointments"), "{text}: {u:?}");
    }
    // Seeing one's appointments is still that.
    let u = nlu.understand("quiero ver mis turnos", &NluContext::default(), &now());
    assert_eq!(
        u.intent.as_ref().map(|i| i.name.as_str()),
        Some("my_appointments"),
        "{u:?}"
    );
}

#[test]
fn windows_are_preferences_not_times() {
    use serde_json::json;
    let u = plain("I need an appointment with cardiology on thursday after 5 pm");
    assert_eq!(
        value(&u, EntityKind::Window),
        Some(json!({"from": "17:00", "to": "23:59"})),
        "{u:?}"
    );
    assert_eq!(value(&u, EntityKind::Date), Some(json!("2026-11-26")), "{u:?}");
    assert_eq!(u.entity(EntityKind::Time), None);
    let u = plain("turno con cardiologia el jueves a la tarde");
    assert_eq!(
        value(&u, EntityKind::Window),
        Some(json!({"from": "12:00", "to": "19:00"}))
    );
    assert_eq!(value(&u, EntityKind::Date), Some(json!("2026-11-26")));
    let u = plain("el jueves entre las 10 y las 12");
    assert_eq!(
        value(&u, EntityKind::Window),
        Some(json!({"from": "10:00", "to": "12:00"}))
    );
    assert_eq!(u.entity(EntityKind::Time), None);
    let u = plain("el jueves a las 10");
    assert_eq!(u.entity(EntityKind::Window), None);
    assert_eq!(value(&u, EntityKind::Time), Some(json!("10:00")));
}
