//! How much guessing at pairing codes is tolerated.
//!
//! A wrong code from a stranger counts against them and against the adapter.
//! Past [`PER_SENDER`] in [`WINDOW`] from one sender, or [`PER_ADAPTER`] on
//! one adapter, code messages from that sender (or on that adapter) are
//! ignored for [`BLOCK`], right codes included, and an alert fires. With
//! 31⁸ codes and at most 3 live, 20 guesses per 10 minutes give an attacker
//! about one chance in 14 billion per window.

/// Wrong codes from one sender within [`WINDOW`] before they are blocked.
pub const PER_SENDER: u32 = 5;
/// Wrong codes on one adapter within [`WINDOW`] before it is blocked.
pub const PER_ADAPTER: u32 = 20;
/// Seconds over which wrong codes are counted.
pub const WINDOW: i64 = 600;
/// Seconds a block lasts.
pub const BLOCK: i64 = 600;

/// Which blocks a wrong code sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Blocks {
    /// The sender reached [`PER_SENDER`].
    pub sender: bool,
    /// The adapter reached [`PER_ADAPTER`].
    pub adapter: bool,
}

/// After a wrong code, with `by_sender` and `on_adapter` wrong codes (this
/// one included) within the window: which blocks start now.
pub fn after_wrong(by_sender: u32, on_adapter: u32) -> Blocks {
    Blocks {
        sender: by_sender >= PER_SENDER,
        adapter: on_adapter >= PER_ADAPTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_table() {
        let none = Blocks::default();
        let sender = Blocks {
            sender: true,
            adapter: false,
        };
        let adapter = Blocks {
            sender: false,
            adapter: true,
        };
        let both = Blocks {
            sender: true,
            adapter: true,
        };
        let rows = [
            (1, 1, none),
            (4, 4, none),
            (5, 5, sender),
            (6, 6, sender),
            (1, 19, none),
            (1, 20, adapter),
            (4, 25, adapter),
            (5, 20, both),
        ];
        for (by_sender, on_adapter, want) in rows {
            assert_eq!(
                after_wrong(by_sender, on_adapter),
                want,
                "{by_sender} {on_adapter}"
            );
        }
    }
}
