//! Abuse limits: message rates per sender, per conversation and per clinic (governor's GCRA,
//! in memory per replica), and the daily LLM budget per clinic.
//!
//! Channels check [`RateLimits::check`] before a turn: the API answers 429 with Retry-After,
//! Twilio channels answer the first refused message politely and then stay silent until the
//! sender is allowed again. The service consults [`LlmBudget`] before each LLM call: once the
//! day's calls or tokens are spent, the rules answer alone.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::lang::Lang;

/// The time the limiters run on: the system's, or one a test advances by hand (no sleeps).
#[derive(Clone)]
pub enum LimitClock {
    System(std::time::Instant),
    Fake(FakeRelativeClock),
}

impl Clock for LimitClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match self {
            LimitClock::System(start) => start.elapsed().into(),
            LimitClock::Fake(clock) => clock.now(),
        }
    }
}

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, LimitClock, NoOpMiddleware<Nanos>>;
type Direct = RateLimiter<NotKeyed, InMemoryState, LimitClock, NoOpMiddleware<Nanos>>;

/// A rate: at most `count` messages per `per`, which is also the burst allowed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// `20/min`, `5/s`, `1000/h`; `off` (or `0`) is no limit (None).
    pub fn parse(s: &str) -> Result<Option<Rate>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s == "0" {
            return Ok(None);
        }
        let bad = || format!("`{s}` is not a rate like 20/min, 5/s or 1000/h (or `off`)");
        let (n, unit) = s.split_once('/').ok_or_else(bad)?;
        let count = n.trim().parse::<u32>().ok().and_then(NonZeroU32::new).ok_or_else(bad)?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Some(Rate { count, per }))
    }

    fn quota(self) -> Quota {
        // Replenishes one message every per/count, up to count at once.
        Quota::with_period(self.per / self.count.get())
            .unwrap_or_else(|| Quota::per_second(self.count))
            .allow_burst(self.count)
    }
}

/// The limits in force (`CLINICFLOW_LIMIT_SENDER`, `_CONVERSATION`, `_CLINIC`).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Per patient address (a phone number, an API `user`). Default 20/min.
    pub sender: Option<Rate>,
    /// Per conversation. Default 30/min.
    pub conversation: Option<Rate>,
    /// All messages of the clinic together. Default 3000/min.
    pub clinic: Option<Rate>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let rate = |count: u32| {
            NonZeroU32::new(count).map(|count| Rate {
                count,
                per: Duration::from_secs(60),
            })
        };
        LimitsConfig {
            sender: rate(20),
            conversation: rate(30),
            clinic: rate(3000),
        }
    }
}

impl LimitsConfig {
    /// No limits at all (benchmarks, tests that send many messages).
    pub fn off() -> Self {
        LimitsConfig {
            sender: None,
            conversation: None,
            clinic: None,
        }
    }

    /// Reads the environment through `get`; unset variables keep the defaults.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut c = LimitsConfig::default();
        for (var, slot) in [
            ("CLINICFLOW_LIMIT_SENDER", &mut c.sender),
            ("CLINICFLOW_LIMIT_CONVERSATION", &mut c.conversation),
            ("CLINICFLOW_LIMIT_CLINIC", &mut c.clinic),
        ] {
            if let Some(v) = get(var).filter(|v| !v.trim().is_empty()) {
                *slot = Rate::parse(&v).map_err(|e| format!("{var}: {e}"))?;
            }
        }
        Ok(c)
    }
}

/// Which limit refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Sender,
    Conversation,
    Clinic,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Sender => "sender",
            Scope::Conversation => "conversation",
            Scope::Clinic => "clinic",
        }
    }
}

/// The answer of [`RateLimits::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited {
        scope: Scope,
        /// When a message will be allowed again.
        retry_after: Duration,
        /// The first refusal since this sender was last allowed: Twilio channels answer this
        /// one (politely), and none after it.
        first: bool,
    },
}

/// The limiters of one clinic (one per process; replicas each keep their own).
pub struct RateLimits {
    clock: LimitClock,
    sender: Option<Keyed>,
    conversation: Option<Keyed>,
    clinic: Option<Direct>,
    /// Senders refused since they were last allowed (told once).
    warned: Mutex<HashSet<String>>,
    checks: AtomicU64,
}

/// Keyed limiters forget idle keys every this many checks, so memory follows the senders
/// active in the last window, not every sender ever seen.
const SWEEP_EVERY: u64 = 4096;
/// Never remember more refused senders than this (a flood of fake numbers).
const MAX_WARNED: usize = 100_000;

impl RateLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        Self::with_clock(config, LimitClock::System(std::time::Instant::now()))
    }

    /// Limits on a clock the caller controls (tests advance a `FakeRelativeClock`).
    pub fn with_clock(config: &LimitsConfig, clock: LimitClock) -> Self {
        let keyed =
            |r: Option<Rate>| r.map(|r| RateLimiter::new(r.quota(), DefaultKeyedStateStore::default(), clock.clone()));
        RateLimits {
            sender: keyed(config.sender),
            conversation: keyed(config.conversation),
            clinic: config
                .clinic
                .map(|r| RateLimiter::direct_with_clock(r.quota(), clock.clone())),
            clock,
            warned: Mutex::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one message from `sender` in `conversation` on `channel`, or says which limit
    /// refuses it and for how long. A refused message is not counted against the others.
    pub fn check(&self, channel: &str, sender: &str, conversation: &str) -> Verdict {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            for l in [&self.sender, &self.conversation].into_iter().flatten() {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        let now = self.clock.now();
        let refused = if let Some(Err(n)) = self.sender.as_ref().map(|l| l.check_key(&sender.to_string())) {
            Some((Scope::Sender, n.wait_time_from(now)))
        } else if let Some(Err(n)) = self
            .conversation
            .as_ref()
            .map(|l| l.check_key(&conversation.to_string()))
        {
            Some((Scope::Conversation, n.wait_time_from(now)))
        } else if let Some(Err(n)) = self.clinic.as_ref().map(|l| l.check()) {
            Some((Scope::Clinic, n.wait_time_from(now)))
        } else {
            None
        };
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        match refused {
            None => {
                warned.remove(sender);
                Verdict::Allowed
            }
            Some((scope, retry_after)) => {
                if warned.len() >= MAX_WARNED {
                    warned.clear();
                }
                let first = warned.insert(sender.to_string());
                metrics::counter!("clinicflow_rate_limited_total", "scope" => scope.as_str(), "channel" => channel.to_string())
                    .increment(1);
                if first {
                    tracing::warn!(
                        channel,
                        sender = %crate::service::redact(sender),
                        scope = scope.as_str(),
                        retry_after_s = retry_after.as_secs_f64().ceil() as u64,
                        "over the {} rate limit: messages are refused until the window passes",
                        scope.as_str()
                    );
                }
                Verdict::Limited {
                    scope,
                    retry_after,
                    first,
                }
            }
        }
    }
}

/// What a patient over the limit is told, once.
pub fn slow_down(lang: Lang) -> &'static str {
    match lang {
        Lang::Es => {
            "Recibí muchos mensajes seguidos. Para atenderlo bien, espere un minuto y vuelva a escribirme, por favor."
        }
        Lang::En => "I have received many messages in a row. Please wait a minute and write to me again.",
    }
}

/// The clinic's daily LLM allowance (`CLINICFLOW_LLM_DAILY_CALLS`, `CLINICFLOW_LLM_DAILY_TOKENS`;
/// unset: no limit), counted per clinic-local day in this process. Once either is spent the
/// rules answer alone until the day ends; a log line says so once a day, and
/// `clinicflow_llm_budget_exhausted_total` counts the turns that went without the LLM.
#[derive(Debug)]
pub struct LlmBudget {
    pub max_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    day: Mutex<Spent>,
}

#[derive(Debug, Default)]
struct Spent {
    date: Option<jiff::civil::Date>,
    calls: u64,
    tokens: u64,
    told: bool,
}

impl LlmBudget {
    pub fn new(max_calls: Option<u64>, max_tokens: Option<u64>) -> Self {
        LlmBudget {
            max_calls,
            max_tokens,
            day: Mutex::default(),
        }
    }

    /// None when neither variable is set.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let read = |var: &str| -> Result<Option<u64>, String> {
            match get(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{var}: `{v}` is not a whole number")),
            }
        };
        let (calls, tokens) = (
            read("CLINICFLOW_LLM_DAILY_CALLS")?,
            read("CLINICFLOW_LLM_DAILY_TOKENS")?,
        );
        Ok((calls.is_some() || tokens.is_some()).then(|| LlmBudget::new(calls, tokens)))
    }

    fn today(&self, date: jiff::civil::Date) -> std::sync::MutexGuard<'_, Spent> {
        let mut spent = self.day.lock().unwrap_or_else(|p| p.into_inner());
        if spent.date != Some(date) {
            *spent = Spent {
                date: Some(date),
                ..Spent::default()
            };
        }
        spent
    }

    /// Whether the LLM may be asked on `date` (clinic-local). When it may not, the turn is
    /// counted and the first one of the day logged.
    pub fn allows(&self, date: jiff::civil::Date) -> bool {
        let mut spent = self.today(date);
        let over =
            self.max_calls.is_some_and(|m| spent.calls >= m) || self.max_tokens.is_some_and(|m| spent.tokens >= m);
        if over {
            metrics::counter!("clinicflow_llm_budget_exhausted_total").increment(1);
            if !spent.told {
                spent.told = true;
                tracing::warn!(
                    calls = spent.calls,
                    tokens = spent.tokens,
                    "the daily LLM budget is spent (CLINICFLOW_LLM_DAILY_CALLS / _TOKENS): the rules answer alone until tomorrow"
                );
            }
        }
        !over
    }

    /// Counts what a turn used.
    pub fn spend(&self, date: jiff::civil::Date, calls: u64, tokens: u64) {
        let mut spent = self.today(date);
        spent.calls += calls;
        spent.tokens += tokens;
        metrics::gauge!("clinicflow_llm_budget_calls_today").set(spent.calls as f64);
        metrics::gauge!("clinicflow_llm_budget_tokens_today").set(spent.tokens as f64);
    }
}

/// What a caller over the limit hears, once, before the call is hung up.
pub fn slow_down_call(lang: Lang) -> &'static str {
    match lang {
        Lang::Es => "Recibimos muchas llamadas seguidas de este número. Por favor, vuelva a llamar en unos minutos.",
        Lang::En => "We have received many calls in a row from this number. Please call again in a few minutes.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(config: &LimitsConfig) -> (RateLimits, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (RateLimits::with_clock(config, LimitClock::Fake(clock.clone())), clock)
    }

    #[test]
    fn rates_parse_and_typos_are_explained() {
        let r = Rate::parse("20/min").unwrap().unwrap();
        assert_eq!((r.count.get(), r.per), (20, Duration::from_secs(60)));
        assert_eq!(Rate::parse(" 5/s ").unwrap().unwrap().per, Duration::from_secs(1));
        assert_eq!(Rate::parse("off").unwrap(), None);
        assert!(Rate::parse("20 per minute").unwrap_err().contains("like 20/min"));
        assert!(Rate::parse("-1/min").is_err() && Rate::parse("5/day").is_err());
        let env = |k: &str| (k == "CLINICFLOW_LIMIT_CLINIC").then(|| "off".to_string());
        let c = LimitsConfig::from_lookup(env).unwrap();
        assert_eq!((c.clinic, c.sender), (None, LimitsConfig::default().sender));
        let err = LimitsConfig::from_lookup(|_| Some("x".into())).unwrap_err();
        assert!(err.starts_with("CLINICFLOW_LIMIT_SENDER"), "{err}");
    }

    #[test]
    fn a_sender_gets_its_burst_then_one_polite_refusal_then_silence_until_the_window_passes() {
        let (limits, clock) = fake(&LimitsConfig::default());
        for i in 0..20 {
            assert_eq!(limits.check("sms", "+54911", "c1"), Verdict::Allowed, "{i}");
        }
        let Verdict::Limited {
            scope,
            retry_after,
            first,
        } = limits.check("sms", "+54911", "c1")
        else {
            panic!("the 21st message passed");
        };
        assert_eq!((scope, first), (Scope::Sender, true));
        assert_eq!(retry_after, Duration::from_secs(3));
        assert!(matches!(
            limits.check("sms", "+54911", "c1"),
            Verdict::Limited { first: false, .. }
        ));
        // Another sender is not affected.
        assert_eq!(limits.check("sms", "+54922", "c2"), Verdict::Allowed);
        clock.advance(Duration::from_secs(3));
        assert_eq!(limits.check("sms", "+54911", "c1"), Verdict::Allowed);
        // Told again only after being allowed in between.
        assert!(matches!(
            limits.check("sms", "+54911", "c1"),
            Verdict::Limited { first: true, .. }
        ));
    }

    #[test]
    fn conversation_and_clinic_limits_catch_many_senders() {
        let one = NonZeroU32::new(2).map(|count| Rate {
            count,
            per: Duration::from_secs(60),
        });
        let (limits, _) = fake(&LimitsConfig {
            sender: None,
            conversation: one,
            clinic: None,
        });
        assert_eq!(limits.check("api", "a", "c"), Verdict::Allowed);
        assert_eq!(limits.check("api", "b", "c"), Verdict::Allowed);
        assert!(matches!(
            limits.check("api", "c", "c"),
            Verdict::Limited {
                scope: Scope::Conversation,
                ..
            }
        ));
        let (limits, _) = fake(&LimitsConfig {
            sender: None,
            conversation: None,
            clinic: one,
        });
        limits.check("api", "a", "1");
        limits.check("api", "b", "2");
        assert!(matches!(
            limits.check("api", "c", "3"),
            Verdict::Limited {
                scope: Scope::Clinic,
                ..
            }
        ));
        let (off, _) = fake(&LimitsConfig::off());
        assert!((0..1000).all(|i| off.check("api", "a", &i.to_string()) == Verdict::Allowed));
    }

    #[test]
    fn the_llm_budget_is_daily() {
        let day: jiff::civil::Date = "2026-11-23".parse().unwrap();
        let b = LlmBudget::new(Some(2), Some(1000));
        assert!(b.allows(day));
        b.spend(day, 1, 100);
        assert!(b.allows(day));
        b.spend(day, 1, 100);
        assert!(!b.allows(day), "two calls are the day's allowance");
        assert!(b.allows(day.tomorrow().unwrap()), "a new day starts afresh");
        let t = LlmBudget::new(None, Some(500));
        t.spend(day, 1, 600);
        assert!(!t.allows(day));
        assert!(LlmBudget::from_lookup(|_| None).unwrap().is_none());
        let err = LlmBudget::from_lookup(|_| Some("many".into())).unwrap_err();
        assert!(err.contains("not a whole number"), "{err}");
    }
}
