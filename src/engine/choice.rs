//! Numbered answers: in an `expect` state marked `numbered: true`, a message that is only a
//! number picks that option, "2" meaning the second intent of `expect`. Questions that list
//! numbered options (a reminder's "1 confirmo · 2 cancelo · 3 quiero cambiarlo") need it.

use super::session::{Session, Wait};
use crate::flow::bot::{Bot, StateKind};
use crate::nlu::{EntityKind, Understanding};

/// The intent a bare number stands for where the conversation is, if any. Anything else
/// (no number, more than a number, a number beyond the list) is understood as usual.
pub(super) fn numbered(bot: &Bot, session: &Session, nlu: &Understanding) -> Option<String> {
    let frame = session.top()?;
    if frame.wait != Wait::Intent || nlu.entities.len() != 1 {
        return None;
    }
    let state = bot.flow(&frame.flow)?.state(&frame.state)?;
    let StateKind::Expect(list) = &state.kind else {
        return None;
    };
    if !state.numbered {
        return None;
    }
    let number = nlu.entity(EntityKind::Number)?.value.as_u64()?;
    let index = usize::try_from(number).ok()?.checked_sub(1)?;
    list.get(index).cloned()
}
