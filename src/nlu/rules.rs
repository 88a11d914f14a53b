//! The deterministic rules NLU: lexicons, regexes and example similarity; no network.
//!
//! Everything that depends only on the clinic and the intents (phrase indexes, example
//! tokens, token weights) is built in `new`; `understand` only reads.

use std::collections::HashSet;

use jiff::civil::Date;

use super::dates::find_dates;
use super::entities::{PhraseIndex, extract_name, find_documents, find_emails, find_number};
use super::intents::{IntentIndex, content_tokens, without_greetings};
use super::lexicons::{Polarity, YesNo, declines, detect_lang, yes_no};
use super::normalize::{Normalized, Span, is_claimed, is_stop_word, tokens_of};
use super::times::find_times;
use super::windows::{find_bounds, find_dayparts};
use super::{Entity, EntityKind, IntentDef, IntentGuess, NluContext, Understand, Understanding};
use crate::flow::clinic::Clinic;

/// An intent this confident, with no rival within `MARGIN`, needs no LLM.
const SURE: f32 = 0.75;
const MARGIN: f32 = 0.15;
/// Below this an intent guess is noise and is not reported.
const MIN_INTENT: f32 = 0.4;
/// A would-be name that scores this much as an intent ("hablar con una persona") is not one.
const NAME_MAX_INTENT: f32 = 0.6;
/// A sentence of a longer message this clear about another intent is a second request.
const SECOND_REQUEST: f32 = 0.6;

pub struct RulesNlu {
    specialties: PhraseIndex,
    coverages: PhraseIndex,
    intents: IntentIndex,
}

/// Entities found in one message, with where they were.
struct Extracted {
    entities: Vec<(Span, Entity)>,
    claimed: Vec<Span>,
}

impl Extracted {
    fn marks(&self) -> Vec<(Span, &'static str)> {
        self.entities.iter().map(|(s, e)| (*s, e.kind.as_str())).collect()
    }
}

impl RulesNlu {
    pub fn new(clinic: &Clinic, intents: &[IntentDef]) -> Self {
        super::dates::warm_up();
        super::times::warm_up();
        super::windows::warm_up();
        super::entities::warm_up();
        super::lexicons::warm_up();
        // Words the admin used in examples are real words, never typos of a specialty.
        let real_words: HashSet<String> = intents
            .iter()
            .flat_map(|def| def.examples.iter())
            .flat_map(|(_, ex)| tokens_of(ex))
            .collect();
        let mut nlu = RulesNlu {
            specialties: PhraseIndex::specialties(clinic, &real_words),
            coverages: PhraseIndex::coverages(clinic, &real_words),
            intents: IntentIndex::default(),
        };
        // Examples are tokenized exactly like messages, so entities in them ("con OSDE")
        // become the same placeholders; the date only matters for what counts as a date.
        let any_day = jiff::civil::date(2000, 1, 1);
        let ctx = NluContext::default();
        let examples = intents
            .iter()
            .flat_map(|def| def.examples.iter().map(move |(_, ex)| (def.name.clone(), ex)))
            .map(|(name, ex)| {
                let n = Normalized::new(ex);
                let found = nlu.extract(&n, any_day, &ctx);
                (name, content_tokens(&n, &found.marks()))
            })
            .collect();
        nlu.intents = IntentIndex::new(examples);
        nlu
    }

    fn extract(&self, n: &Normalized, today: Date, ctx: &NluContext) -> Extracted {
        let asking = |k: EntityKind| ctx.asking == Some(k);
        let mut claimed = Vec::new();
        let mut entities: Vec<(Span, Entity)> = Vec::new();
        let mut push = |span: Span, kind: EntityKind, value: serde_json::Value| {
            let dup = entities.iter().any(|(_, e)| e.kind == kind && e.value == value);
            if !dup {
                let text = n.original_of(span).to_string();
                entities.push((span, Entity { kind, value, text }));
            }
        };
        // Ranges and bounds ("de 10 a 12", "después de las 17") before dates and times, so
        // their numbers are never a day or an exact time; a part of the day only without a time.
        // (Dates look for them apart: "el jueves" right before "después de las 17" is a date.)
        // Emails first: their digits and words are never a date, a document or a specialty.
        let emails = find_emails(n, asking(EntityKind::Email));
        let email_spans: Vec<Span> = emails.iter().map(|e| e.span).collect();
        claimed.extend(email_spans.iter().copied());
        let mut bound_spans = Vec::new();
        let mut windows = find_bounds(n, &mut bound_spans);
        windows.retain(|w| !is_claimed(&email_spans, w.span));
        bound_spans.retain(|b| !is_claimed(&email_spans, *b));
        let mut dates = find_dates(n, today, asking(EntityKind::Date), ctx.past_dates, &mut claimed);
        dates.retain(|d| !is_claimed(&bound_spans, d.span));
        claimed.retain(|c| !is_claimed(&bound_spans, *c));
        claimed.extend(bound_spans);
        let times = find_times(n, asking(EntityKind::Time), &mut claimed);
        if times.is_empty() {
            windows.extend(find_dayparts(n, &mut claimed));
        }
        if asking(EntityKind::Number) && times.is_empty() {
            // Asked to choose, "el 2" is option 2, not the 2nd of the month.
            dates.retain(|d| {
                let text = super::normalize::fold(n.original_of(d.span));
                let bare = text.trim_start_matches("el ").trim();
                let choice = bare.len() <= 2 && bare.parse::<u8>().is_ok_and(|v| (1..=20).contains(&v));
                if choice {
                    claimed.retain(|c| *c != d.span);
                }
                !choice
            });
        }
        let specialties = self.specialties.find(n, &mut claimed);
        let coverages = self.coverages.find(n, &mut claimed);
        let documents = find_documents(n, &claimed, asking(EntityKind::Document));
        claimed.extend(documents.iter().map(|d| d.span));

        for f in specialties {
            push(f.span, EntityKind::Specialty, f.value.into());
        }
        for f in coverages {
            push(f.span, EntityKind::Coverage, f.value.into());
        }
        for f in dates {
            push(f.span, EntityKind::Date, f.value.to_string().into());
        }
        for f in times {
            let hhmm = format!("{:02}:{:02}", f.value.hour(), f.value.minute());
            push(f.span, EntityKind::Time, hhmm.into());
        }
        // A window is a value only where a flow can search with one (the booking flow; any
        // flow when nothing is going on, as a request starts).
        let windows_wanted = ctx.in_scope.is_empty() || ctx.in_scope.contains(&EntityKind::Window);
        if let Some(f) = windows.first().filter(|_| windows_wanted) {
            push(f.span, EntityKind::Window, f.value.to_json());
        }
        for f in documents {
            push(f.span, EntityKind::Document, f.value.into());
        }
        for f in emails {
            push(f.span, EntityKind::Email, f.value.into());
        }
        if let Some(f) = find_number(n, asking(EntityKind::Number), &claimed) {
            push(f.span, EntityKind::Number, f.value.into());
        }
        Extracted { entities, claimed }
    }

    fn is_request(&self, words: &str) -> bool {
        let n = Normalized::new(words);
        let tokens = content_tokens(&n, &[]);
        self.intents
            .score(&tokens)
            .first()
            .is_some_and(|(_, s)| *s >= NAME_MAX_INTENT)
    }

    /// The best example-based intent and the best score of any other intent.
    fn scored_intent(&self, tokens: &[String], ctx: &NluContext) -> (Option<(String, f32)>, f32) {
        let mut raw = self.intents.score(tokens);
        // "Buen día, quisiera un turno…": the request is the intent, the greeting a preamble.
        if let Some(rest) = without_greetings(tokens) {
            let s = self.intents.score(&rest);
            if s.first().is_some_and(|(_, x)| *x >= MIN_INTENT) {
                raw = s;
            }
        }
        let mut scored: Vec<(String, f32)> = raw
            .into_iter()
            .map(|(i, s)| {
                let name = self.intents.name(i).to_string();
                // A state that expects an intent makes it a little more likely.
                let boost = if ctx.expecting.contains(&name) { 0.05 } else { 0.0 };
                (name, (s + boost).min(1.0))
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let second = scored.get(1).map_or(0.0, |s| s.1);
        (scored.into_iter().next(), second)
    }
}

impl Understand for RulesNlu {
    fn understand(&self, text: &str, ctx: &NluContext, now: &jiff::Zoned) -> Understanding {
        let mut u = Understanding {
            source: "rules".to_string(),
            ..Understanding::default()
        };
        // The engine matches slash commands itself.
        if text.trim_start().starts_with('/') {
            u.sure = true;
            return u;
        }
        let n = Normalized::new(text);
        let found = self.extract(&n, now.date(), ctx);
        u.lang = detect_lang(&n);

        let yn = yes_no(&n, &found.claimed);
        let marks = found.marks();
        let tokens = content_tokens(&n, &marks);
        let (scored, mut second) = self.scored_intent(&tokens, ctx);
        let expecting_yn = ctx.expecting.iter().any(|e| e == "affirm" || e == "deny");

        let mut intent = scored.filter(|(_, s)| *s >= MIN_INTENT);
        // An exact yes/no is sure when it is the answer to a yes/no question, or alone.
        let mut exact_yn = false;
        if let Some(YesNo {
            polarity,
            exact,
            polite,
        }) = yn
        {
            let conf = match (exact, expecting_yn) {
                (true, true) => 1.0,
                // "ok, gracias" out of the blue is as likely a thank-you.
                (true, false) if polite => 0.75,
                (true, false) => 0.9,
                (false, true) => 0.7,
                (false, false) => 0.6,
            };
            // At a yes/no question, "no … cancelo" / "no, dejalo" is a no to the question, not
            // a new request to cancel or to stop.
            let negative_request = intent
                .as_ref()
                .is_some_and(|(name, _)| matches!(name.as_str(), "cancel_appointment" | "stop"));
            let forced = (exact || (negative_request && polarity == Polarity::Deny)) && expecting_yn;
            if forced || intent.as_ref().is_none_or(|(_, s)| conf >= *s) {
                if let Some((_, s)) = &intent {
                    second = second.max(*s);
                }
                intent = Some((polarity.intent().to_string(), conf));
                exact_yn = exact && conf >= 0.9;
            } else {
                second = second.max(conf);
            }
        }
        // A question that can be skipped, declined ("no tengo", "prefiero no", "skip"): a no.
        let declined = ctx.optional
            && ctx
                .asking
                .is_some_and(|k| !found.entities.iter().any(|(_, e)| e.kind == k))
            && declines(&n);
        if declined {
            if let Some((name, s)) = &intent
                && name != "deny"
            {
                second = second.max(*s);
            }
            intent = Some(("deny".to_string(), 1.0));
            exact_yn = true;
        }
        let intent_conf = intent.as_ref().map_or(0.0, |(_, s)| *s);

        let mut entities = found.entities;
        if ctx.asking == Some(EntityKind::Name)
            && yn.is_none()
            && !entities.iter().any(|(_, e)| e.kind == EntityKind::Window)
            && let Some(name) = extract_name(&n.original)
            && !self.is_request(&name)
        {
            let span = Span::new(0, n.text.len());
            let text = n.original.trim().to_string();
            let entity = Entity {
                kind: EntityKind::Name,
                value: name.into(),
                text,
            };
            entities.push((span, entity));
        }
        if ctx.asking == Some(EntityKind::Text) {
            let whole = n.original.trim();
            if !whole.is_empty() {
                let entity = Entity {
                    kind: EntityKind::Text,
                    value: whole.into(),
                    text: whole.to_string(),
                };
                entities.push((Span::new(0, n.text.len()), entity));
            }
        }
        entities.sort_by_key(|(s, e)| (kind_order(e.kind), s.start));
        u.entities = entities.into_iter().map(|(_, e)| e).collect();

        // A time, a day or a window answers "which option?" too ("la de las 15", "el jueves",
        // "a la tarde").
        let asked_found = ctx.asking.is_some_and(|k| {
            u.entity(k).is_some()
                || (k == EntityKind::Number
                    && [EntityKind::Time, EntityKind::Date, EntityKind::Window]
                        .iter()
                        .any(|k| u.entity(*k).is_some()))
        });
        let intent_sure = intent_conf >= SURE && intent_conf - second >= MARGIN;
        // The answer to the question wins over a weak side guess ("Hola, soy Pedro" is a name,
        // not a greeting).
        // "tengo PAMI", "uso OSDE", "soy Juan Pérez": the asked value with a verb that only
        // introduces it is the answer, however sure the words look like a request.
        let introduces =
            |t: &String| t.starts_with('@') || matches!(t.as_str(), "tengo" | "uso" | "soy" | "seria" | "tenemos");
        let plain_answer = asked_found && !tokens.is_empty() && tokens.iter().all(introduces);
        if asked_found && (!intent_sure || plain_answer) && !exact_yn {
            intent = None;
        }
        // Nothing but values for this flow ("mejor el viernes", "el lunes a las 10"): a weak
        // guess from the placeholders alone is no intent.
        let only_values = !tokens.is_empty()
            && tokens.iter().all(|t| t.starts_with('@'))
            && u.entities.iter().all(|e| ctx.in_scope.contains(&e.kind));
        if only_values && !intent_sure && !exact_yn {
            intent = None;
        }
        // "cardiología" while booking: nothing but a value for a slot in scope.
        let only_slot_values = intent.is_none()
            && !u.entities.is_empty()
            && u.entities.iter().all(|e| ctx.in_scope.contains(&e.kind))
            && tokens.iter().all(|t| t.starts_with('@') || is_stop_word(t));
        u.sure = exact_yn || asked_found || intent_sure || only_slot_values;
        u.intent = intent.map(|(name, confidence)| IntentGuess {
            name,
            confidence: confidence.clamp(0.0, 1.0),
        });
        u.also = self.second_request(&n, now.date(), ctx, u.intent_name());
        u
    }
}

impl RulesNlu {
    /// A message of several sentences ("¿aceptan IOMA? necesito turno con el oftalmólogo"):
    /// the clearest intent of a sentence that is not `main`, if one is clear enough.
    fn second_request(&self, n: &Normalized, today: Date, ctx: &NluContext, main: Option<&str>) -> Option<IntentGuess> {
        let parts: Vec<&str> = n
            .original
            .split(['?', '!', '.', ';', '\n', '¿', '¡'])
            .map(str::trim)
            .filter(|p| p.split_whitespace().count() >= 2)
            .collect();
        if parts.len() < 2 {
            return None;
        }
        let mut best: Option<(String, f32)> = None;
        let mut labels: Vec<Option<String>> = Vec::new();
        for part in parts {
            let pn = Normalized::new(part);
            let found = self.extract(&pn, today, ctx);
            let tokens = content_tokens(&pn, &found.marks());
            let (scored, second) = self.scored_intent(&tokens, ctx);
            let Some((name, score)) = scored.filter(|(_, s)| *s >= MIN_INTENT) else {
                labels.push(None);
                continue;
            };
            labels.push(Some(name.clone()));
            let clear = score >= SECOND_REQUEST && score - second >= MARGIN / 2.0;
            let yes_no = matches!(name.as_str(), "affirm" | "deny" | "greet" | "thanks");
            if clear && !yes_no && best.as_ref().is_none_or(|(_, b)| score > *b) {
                best = Some((name, score));
            }
        }
        // Worth reporting only when the sentences want different things: another intent than
        // the message's, or the message's own intent next to a sentence that only answers
        // ("mejor el lunes. ¿dónde queda la clínica?").
        let (name, confidence) = best?;
        let mixed = labels.iter().any(|l| l.as_deref() != Some(name.as_str()));
        (mixed || Some(name.as_str()) != main).then_some(IntentGuess { name, confidence })
    }
}

fn kind_order(k: EntityKind) -> usize {
    EntityKind::ALL.iter().position(|x| *x == k).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
