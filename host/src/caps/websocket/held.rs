//! Frames held until what they acknowledge is stored.
//!
//! A platform that redelivers what was not acknowledged (Slack's Socket
//! Mode) must not get the acknowledgement before the host has stored the
//! events: a crash in between would lose them. The guest queues such a
//! frame with `send-text-after-commit` during the call whose batch it
//! acknowledges; the actor takes the frames with that batch, and whoever
//! stores the batch releases them once it is stored, or drops them.

use tokio::sync::mpsc;

use super::Command;

/// A frame waiting for its batch to be stored.
#[derive(Debug)]
pub struct HeldFrame {
    commands: mpsc::Sender<Command>,
    text: String,
}

impl HeldFrame {
    pub(super) fn new(commands: mpsc::Sender<Command>, text: String) -> Self {
        HeldFrame { commands, text }
    }

    /// Sends the frame on its connection; `false` when the connection is
    /// gone or its queue is full (the frame is then dropped, and the
    /// platform redelivers).
    pub fn release(self) -> bool {
        self.commands.try_send(Command::Text(self.text)).is_ok()
    }
}
