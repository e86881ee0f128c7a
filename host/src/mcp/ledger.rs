//! The writer's [`Ledger`]: the process's [`FileLedger`], with the queue's
//! database catching up in bulk, and the gate asked again for events
//! admitted before the last change of access.

use std::os::fd::BorrowedFd;

use super::writer::{Ledger, Sent};
use crate::queue::Queue;
use crate::queue::ledger::{Delivery, FileLedger};
use crate::router::Redelivery;

/// Written events applied to the database at once, at most; the rest wait
/// for the next pause in output.
pub const APPLY_EVERY: usize = 256;

/// Records deliveries in this process's [`FileLedger`] and applies them to
/// the queue.
pub struct QueueLedger {
    ledger: FileLedger,
    queue: Queue,
    gate: Redelivery,
}

impl QueueLedger {
    /// The writer's ledger over `ledger`, applying to `queue`, with `gate`
    /// asked again before events go out.
    pub fn new(ledger: FileLedger, queue: Queue, gate: Redelivery) -> Self {
        Self {
            ledger,
            queue,
            gate,
        }
    }
}

/// `lines` without the lines of the events `refused` (of `seqs`, in order).
fn without(seqs: &[i64], lines: &[u8], refused: &[i64]) -> (Vec<i64>, Vec<u8>) {
    let mut kept_seqs = Vec::with_capacity(seqs.len());
    let mut kept = Vec::with_capacity(lines.len());
    for (seq, line) in seqs.iter().zip(lines.split_inclusive(|b| *b == b'\n')) {
        if !refused.contains(seq) {
            kept_seqs.push(*seq);
            kept.extend_from_slice(line);
        }
    }
    (kept_seqs, kept)
}

impl Ledger for QueueLedger {
    fn deliver(&mut self, out: BorrowedFd<'_>, seqs: &[i64], lines: &[u8], admitted: i64) -> Sent {
        let check = self.gate.check(seqs, admitted);
        if check.hold {
            return Sent::Held;
        }
        let kept;
        let (seqs, lines) = if check.refused.is_empty() {
            (seqs, lines)
        } else {
            kept = without(seqs, lines, &check.refused);
            if kept.0.is_empty() {
                return Sent::Written;
            }
            (kept.0.as_slice(), kept.1.as_slice())
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_lines_are_cut_out() {
        let lines = b"a\nbb\nccc\n";
        assert_eq!(
            without(&[1, 2, 3], lines, &[2]),
            (vec![1, 3], b"a\nccc\n".to_vec())
        );
        assert_eq!(
            without(&[1, 2, 3], lines, &[1, 3]),
            (vec![2], b"bb\n".to_vec())
        );
        assert_eq!(without(&[1, 2, 3], lines, &[1, 2, 3]), (vec![], vec![]));
    }
}
