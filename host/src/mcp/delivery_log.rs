//! The writer's [`DeliveryLog`]: the delivery ledger, with the database
//! catching up in bulk.

use super::writer::DeliveryLog;
use crate::queue::Queue;
use crate::queue::ledger::Ledger;

/// Written events applied to the database at once, at most; the rest wait
/// for the next pause in output.
pub const APPLY_EVERY: usize = 256;

/// Records deliveries in this process's ledger.
pub struct LedgerLog {
    ledger: Ledger,
    queue: Queue,
}

impl LedgerLog {
    /// A log over `ledger`, applying to `queue`.
    pub fn new(ledger: Ledger, queue: Queue) -> Self {
        Self { ledger, queue }
    }
}

impl DeliveryLog for LedgerLog {
    fn record(&mut self, seqs: &[i64]) -> bool {
        match self.ledger.record(seqs) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(
                    "cannot record {} events as delivered ({e}); they wait, not written",
                    seqs.len()
                );
                false
            }
        }
    }

    fn written(&mut self, seqs: &[i64]) {
        self.ledger.written(seqs);
        if self.ledger.pending() >= APPLY_EVERY {
            self.ledger.apply(&self.queue);
        }
    }

    fn failed(&mut self, _seqs: &[i64]) {
        // Applying empties the ledger: the failed batch, recorded but not
        // written, goes from it and stays waiting in the database.
        self.ledger.apply(&self.queue);
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
