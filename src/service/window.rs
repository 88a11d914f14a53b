//! A channel that waits a bounded time for a turn's replies (Twilio gives a webhook 15 s)
//! and the turn settle, before the turn commits, who delivers them: the channel, in its
//! answer, or the outbox, in the turn's own transaction. Deciding before the commit is what
//! makes a late reply as durable as any other outbound message: it is either in the answer
//! the channel gives or in an outbox row committed with the turn, never neither, never both.

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The channel still waits.
    Open,
    /// The turn is committing replies the channel will answer with: the channel waits for
    /// them (a commit is one round trip) or for the commit to fail.
    Committing,
    /// The channel answered without the replies: the turn queues them in the outbox.
    Closed,
}

/// Shared by a channel and the turn it waits for (cheap to clone).
#[derive(Clone)]
pub struct ReplyWindow(Arc<watch::Sender<State>>);

impl Default for ReplyWindow {
    fn default() -> Self {
        ReplyWindow(Arc::new(watch::Sender::new(State::Open)))
    }
}

impl ReplyWindow {
    pub fn new() -> Self {
        Self::default()
    }

    /// The turn, about to commit: true when the channel still waits (the replies go back in
    /// its answer), false when it answered already (the replies go in the outbox).
    pub(crate) fn commit_inline(&self) -> bool {
        let mut inline = false;
        self.0.send_modify(|s| {
            if *s != State::Closed {
                *s = State::Committing;
                inline = true;
            }
        });
        inline
    }

    /// The turn's commit failed (it runs again, or reports the error): the channel may stop
    /// waiting again.
    pub(crate) fn commit_failed(&self) {
        self.0.send_if_modified(|s| {
            let was = *s == State::Committing;
            if was {
                *s = State::Open;
            }
            was
        });
    }

    /// The channel stops waiting: true when it may answer without the replies (the turn will
    /// queue them); false while the turn commits them inline (wait for [`Self::settled`]
    /// or the replies, then try again).
    pub fn close(&self) -> bool {
        let mut closed = false;
        self.0.send_if_modified(|s| {
            match *s {
                State::Open => {
                    *s = State::Closed;
                    closed = true;
                }
                State::Closed => closed = true,
                State::Committing => {}
            }
            closed
        });
        closed
    }

    /// Resolves once the turn is not committing any more (its commit failed).
    pub async fn settled(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|s| *s != State::Committing).await;
    }

    /// Whether the channel gave up waiting.
    pub fn is_closed(&self) -> bool {
        *self.0.borrow() == State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_and_the_turn_never_both_deliver() {
        let w = ReplyWindow::new();
        assert!(w.close());
        assert!(!w.commit_inline(), "closed: the turn queues");

        let w = ReplyWindow::new();
        assert!(w.commit_inline());
        assert!(!w.close(), "committing: the channel waits");
        w.commit_failed();
        assert!(w.close(), "the commit failed: the channel may give up");
        assert!(!w.commit_inline());
    }
}
