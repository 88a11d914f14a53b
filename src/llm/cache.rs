//! Validated NLU answers, reused for the same message in the same state for a short while
//! (people resend, and many patients write the same words at the same step). Bounded.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::answer::Checked;

/// Most answers kept; the oldest go first.
const CAPACITY: usize = 2_048;

pub struct Cache {
    ttl: Duration,
    map: Mutex<HashMap<u64, (Instant, Checked)>>,
}

/// What makes two NLU requests the same: the bot (its identity and its answer schema), where
/// the conversation is, the day (relative dates), the language and the normalized message.
pub fn key(bot_id: usize, schema: &str, position: &str, day: &str, lang: &str, text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (bot_id, schema, position, day, lang, normalize(text)).hash(&mut h);
    h.finish()
}

/// Lower case, single spaces, no surrounding punctuation: "Quiero  un turno!" = "quiero un turno".
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    words
        .join(" ")
        .trim_matches(|c: char| c.is_ascii_punctuation() || c == '¿' || c == '¡')
        .to_string()
}

impl Cache {
    pub fn new(ttl: Duration) -> Cache {
        Cache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: u64) -> Option<Checked> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, c)| c.clone())
    }

    pub fn put(&self, key: u64, value: Checked) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CAPACITY {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        if map.len() >= CAPACITY
            && let Some(oldest) = map.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(key, (Instant::now(), value));
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(i: &str) -> Checked {
        Checked {
            intent: Some(i.into()),
            ..Default::default()
        }
    }

    #[test]
    fn same_words_same_key_other_state_other_key() {
        let a = key(1, "s", "book.details", "2026-11-23", "es", "Quiero  un turno!");
        assert_eq!(a, key(1, "s", "book.details", "2026-11-23", "es", "quiero un turno"));
        assert_ne!(a, key(1, "s", "book.confirm", "2026-11-23", "es", "quiero un turno"));
        assert_ne!(a, key(1, "s", "book.details", "2026-11-24", "es", "quiero un turno"));
        assert_ne!(a, key(2, "s", "book.details", "2026-11-23", "es", "quiero un turno"));
    }

    #[tokio::test(start_paused = true)]
    async fn answers_expire() {
        let c = Cache::new(Duration::from_secs(300));
        c.put(1, answer("greet"));
        assert_eq!(c.get(1), Some(answer("greet")));
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(c.get(1), None);
    }

    #[tokio::test(start_paused = true)]
    async fn stays_bounded_dropping_the_oldest() {
        let c = Cache::new(Duration::from_secs(300));
        for k in 0..(CAPACITY as u64 + 10) {
            c.put(k, answer("x"));
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(c.len(), CAPACITY);
        assert_eq!(c.get(0), None);
        assert!(c.get(CAPACITY as u64 + 9).is_some());
    }

    #[test]
    fn zero_ttl_disables_it() {
        let c = Cache::new(Duration::ZERO);
        c.put(1, answer("x"));
        assert!(c.is_empty());
    }
}
