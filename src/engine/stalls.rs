//! Going round in circles. Whatever the waiting state (collect, expect, a choice among options),
//! a turn that leaves the conversation exactly where it was (same flows, states and slots) and
//! gets exactly the reply of the turn before is a stall. After the fallback's `max_attempts`
//! stalls in a row the conversation is handed over instead of repeating itself: a patient never
//! gets the same reply three times in a row. Only hashes are kept (no patient text).

use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use super::session::Frame;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// Where the conversation was when the current turn began. (Hashes are 32-bit: the
    /// store keeps numbers as JSON, where a u64 beyond 2^53 would not survive.)
    start: u32,
    /// The replies of the current turn so far.
    replies: u32,
    /// The replies of the previous turn.
    last: u32,
    /// Stalls in a row.
    pub stalls: u32,
    /// A turn is being watched (false while staff has the conversation).
    active: bool,
}

const NO_REPLY: u32 = 0;

fn position(stack: &[Frame]) -> u32 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(stack).unwrap_or_default().hash(&mut h);
    short(h.finish())
}

fn short(h: u64) -> u32 {
    (h >> 32) as u32 ^ h as u32
}

impl Watch {
    /// A patient message arrives.
    pub fn begin(&mut self, stack: &[Frame], active: bool) {
        self.start = position(stack);
        self.replies = NO_REPLY;
        self.active = active;
    }

    /// Replies said by one step of the turn.
    pub fn add(&mut self, replies: &[String]) {
        for r in replies {
            let mut h = DefaultHasher::new();
            (self.replies, r).hash(&mut h);
            self.replies = short(h.finish()).max(1);
        }
    }

    /// The turn is over (nothing pending): returns the stalls in a row, counting this turn.
    pub fn end(&mut self, stack: &[Frame]) -> u32 {
        if !self.active {
            return 0;
        }
        self.active = false;
        let stalled = self.replies != NO_REPLY && self.replies == self.last && position(stack) == self.start;
        self.stalls = if stalled { self.stalls + 1 } else { 0 };
        self.last = self.replies;
        self.stalls
    }

    /// The conversation moved on in some other way (handed over, restarted).
    pub fn reset(&mut self) {
        *self = Watch::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_reply_in_the_same_place_is_a_stall() {
        let mut w = Watch::default();
        let r = vec!["¿Cuál prefiere?".to_string()];
        for expected in [0, 1, 2] {
            w.begin(&[], true);
            w.add(&r);
            assert_eq!(w.end(&[]), expected);
        }
        w.begin(&[], true);
        w.add(&["otra cosa".to_string()]);
        assert_eq!(w.end(&[]), 0);
    }

    #[test]
    fn unwatched_turns_do_not_count() {
        let mut w = Watch::default();
        let r = vec!["x".to_string()];
        for _ in 0..3 {
            w.begin(&[], false);
            w.add(&r);
            assert_eq!(w.end(&[]), 0);
        }
    }
}
