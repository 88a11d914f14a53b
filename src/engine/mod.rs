//! The interpreter. `step(bot, session, input, now) -> Outcome` is pure: no I/O, no clock.
//! Actions are *requested* in the outcome (`pending`); the service performs them and calls
//! `step` again with their result, so every decision stays inside this module and testable.

mod choice;
pub mod context;
mod options;
mod reminder_reply;
pub mod session;
mod slots;
mod stalls;
mod step;

pub use context::now_value;
pub use reminder_reply::{REPLY_FLOW, await_answer};
pub use slots::target_slot;
pub use step::{HandoffReason, Input, Outcome, ensure_reply, nlu_context, step};

#[cfg(test)]
mod tests;
