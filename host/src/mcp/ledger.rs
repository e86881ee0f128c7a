//! The writer's [`Ledger`]: the process's [`FileLedger`], with the queue's
//! database catching up in bulk.

use std::os::fd::BorrowedFd;

use super::writer::{Ledger, Sent};
use crate::queue::Queue;
use crate::queue::ledger::{Delivery, FileLedger};

/// Written events applied to the database at once, at most; the rest wait
/// for the next pause in output.
pub const APPLY_EVERY: usize = 256;

/// Records deliveries in this process's [`FileLedger`] and applies them to
/// the queue.
pub struct QueueLedger {
    ledger: FileLedger,
    queue: Queue,
}

impl QueueLedger {
    /// The writer's ledger over `ledger`, applying to `queue`.
    pub fn new(ledger: FileLedger, queue: Queue) -> Self {
        Self { ledger, queue }
    }
}

impl Ledger for QueueLedger {
    fn deliver(&mut self, out: BorrowedFd<'_>, seqs: &[i64], lines: &[u8]) -> Sent {
        match self.ledger.deliver(out, seqs, lines) {
            Delivery::Written => {
                if self.ledger.pending() >= APPLY_EVERY {
                    self.ledger.apply(&self.queue);
                }
                Sent::Written
            }
            Delivery::NotRecorded(e) => {
                tracing::error!(
                    "cannot record {} events as delivered ({e}); they wait, not written",
                    seqs.len()
                );
                Sent::Held
            }
            Delivery::Failed(e) => {
                tracing::debug!("writing to the session failed ({e}); what did not go out waits");
                // What went out is marked; the rest stays waiting.
                self.ledger.apply(&self.queue);
                Sent::Failed
            }
        }
    }

    fn behind(&self) -> bool {
        self.ledger.pending() > 0
    }

    fn idle(&mut self) {
        if self.ledger.pending() > 0 {
            self.ledger.apply(&self.queue);
        }
    }
}
