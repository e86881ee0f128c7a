//! Folding repeated alerts: at most one message per kind and adapter per
//! window, carrying the count of what was folded into it.
//!
//! A burst is gathered before its first message goes out, so that a flood
//! of a thousand stranger messages is one alert that says a thousand, not
//! one that says one and a summary ten minutes later: the message waits
//! until the burst has been quiet for [`GATHER`], and never longer than
//! [`MAX_GATHER`]. After a message, the same kind on the same adapter waits
//! out the window; what arrives meanwhile goes out as one summary when it
//! ends.
//!
//! | step | what happens |
//! |---|---|
//! | first alert of a (kind, adapter) | due after [`GATHER`] of quiet, at most [`MAX_GATHER`] |
//! | more before it is due | counted into it, and the quiet starts again |
//! | due | one message with the count; the window starts |
//! | more within the window | counted; due when the window ends |
//! | nothing within the window | nothing more is sent |
//!
//! Pure: time is passed in, so the table tests need no clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Alert, Kind};

/// At most one message per kind and adapter per this long.
pub const WINDOW: Duration = Duration::from_secs(600);
/// How long a burst must be quiet before its first message goes out.
pub const GATHER: Duration = Duration::from_secs(2);
/// The longest the first message of a burst waits for its end.
pub const MAX_GATHER: Duration = Duration::from_secs(30);

/// A message to send: the alert, and how many were folded into it
/// (itself included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The first alert of those folded.
    pub alert: Alert,
    /// How many occurrences it stands for.
    pub count: u64,
    /// Its first occurrence was logged when raised (it opened a window).
    pub announced: bool,
}

impl Notice {
    /// The message text owners receive.
    pub fn message(&self) -> String {
        let adapter = self.alert.adapter.as_deref().unwrap_or("all adapters");
        let times = if self.count > 1 {
            format!(
                " ({} times in the last {} minutes)",
                self.count,
                WINDOW.as_secs() / 60
            )
        } else {
            String::new()
        };
        format!(
            "⚠ airlock alert ({}, {adapter}): {}{times}",
            self.alert.kind, self.alert.text
        )
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The first alert waiting, and how many wait.
    waiting: Option<(Alert, u64)>,
    /// When the first of those arrived.
    started: Option<Instant>,
    /// When the last of those arrived.
    last: Option<Instant>,
    /// When the last message went out.
    sent_at: Option<Instant>,
    /// The waiting alert opened a window (and was logged when raised).
    announced: bool,
}

impl Slot {
    fn due(&self) -> Option<Instant> {
        self.waiting.as_ref()?;
        let gathered = (self.started? + MAX_GATHER).min(self.last? + GATHER);
        Some(match self.sent_at {
            Some(s) => gathered.max(s + WINDOW),
            None => gathered,
        })
    }
}

/// Folds alerts by (kind, adapter).
#[derive(Debug, Default)]
pub struct Folder {
    slots: BTreeMap<(Kind, Option<String>), Slot>,
}

impl Folder {
    /// Takes `alert` at `now`. Returns true when it opens a new window (the
    /// caller logs it at once; what is folded into it is logged when the
    /// notice goes).
    pub fn raise(&mut self, alert: Alert, now: Instant) -> bool {
        let slot = self
            .slots
            .entry((alert.kind, alert.adapter.clone()))
            .or_default();
        slot.last = Some(now);
        if let Some((_, n)) = &mut slot.waiting {
            *n += 1;
            return false;
        }
        slot.waiting = Some((alert, 1));
        slot.started = Some(now);
        slot.announced = slot
            .sent_at
            .is_none_or(|s| now.saturating_duration_since(s) >= WINDOW);
        slot.announced
    }

    /// When the next notice is due, if any waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.slots.values().filter_map(Slot::due).min()
    }

    /// The notices due at `now`, in (kind, adapter) order.
    pub fn due(&mut self, now: Instant) -> Vec<Notice> {
        let mut out = Vec::new();
        for slot in self.slots.values_mut() {
            if slot.due().is_some_and(|d| d <= now)
                && let Some((alert, count)) = slot.waiting.take()
            {
                slot.sent_at = Some(now);
                slot.started = None;
                out.push(Notice {
                    alert,
                    count,
                    announced: slot.announced,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: Kind, adapter: &str, text: &str) -> Alert {
        Alert {
            kind,
            adapter: Some(adapter.into()),
            text: text.into(),
        }
    }

    #[test]
    fn folding_table() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let flood = |text| alert(Kind::StrangerFlood, "tg", text);
        let guess = |text| alert(Kind::PairingGuess, "tg", text);
        // (at, raise, opens a window) or (at, check due: [(text, count)])
        enum Step {
            Raise(Duration, Alert, bool),
            Due(Duration, Vec<(&'static str, u64)>),
        }
        use Step::*;
        let steps = vec![
            Raise(s(0), flood("first"), true),
            Raise(s(0), flood("second"), false),
            Due(s(1), vec![]),
            // Another kind, same adapter: its own slot.
            Raise(s(1), guess("g1"), true),
            // Another adapter: its own slot.
            Raise(s(1), alert(Kind::StrangerFlood, "dc", "d1"), true),
            Due(s(2), vec![("first", 2)]),
            Due(s(3), vec![("g1", 1), ("d1", 1)]),
            // Within the window: folded, not logged, due when it ends.
            Raise(s(60), flood("later"), false),
            Raise(s(61), flood("later2"), false),
            Due(s(300), vec![]),
            Due(s(602), vec![("later", 2)]),
            // A quiet window after that: the next one opens a fresh window.
            Raise(s(602 + 700), flood("again"), true),
            Due(s(602 + 701), vec![]),
            Due(s(602 + 702), vec![("again", 1)]),
        ];
        let mut folder = Folder::default();
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Raise(at, a, opens) => {
                    assert_eq!(folder.raise(a, t0 + at), opens, "step {i}");
                }
                Due(at, want) => {
                    let got: Vec<(String, u64)> = folder
                        .due(t0 + at)
                        .into_iter()
                        .map(|n| (n.alert.text, n.count))
                        .collect();
                    let want: Vec<(String, u64)> =
                        want.into_iter().map(|(t, n)| (t.to_string(), n)).collect();
                    assert_eq!(got, want, "step {i}");
                }
            }
        }
        assert_eq!(folder.next_due(), None);
    }

    #[test]
    fn a_thousand_become_one_message_with_the_count() {
        let t0 = Instant::now();
        let mut folder = Folder::default();
        let opened = (0..1000)
            .filter(|i| {
                folder.raise(
                    alert(Kind::StrangerFlood, "tg", "flood"),
                    t0 + Duration::from_millis(*i),
                )
            })
            .count();
        assert_eq!(opened, 1);
        let last = t0 + Duration::from_millis(999);
        assert_eq!(
            folder.next_due(),
            Some(last + GATHER),
            "after the burst's end"
        );
        assert!(folder.due(t0 + GATHER).is_empty(), "not while it lasts");
        let notices = folder.due(last + GATHER);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].count, 1000);
        let text = notices[0].message();
        assert!(
            text.contains("stranger_flood, tg") && text.contains("1000 times"),
            "{text}"
        );
        assert!(folder.due(t0 + WINDOW * 2).is_empty());
    }

    #[test]
    fn a_burst_that_never_pauses_is_still_told_after_the_longest_gather() {
        let t0 = Instant::now();
        let mut folder = Folder::default();
        for i in 0..100 {
            folder.raise(
                alert(Kind::StrangerFlood, "tg", "flood"),
                t0 + Duration::from_secs(i),
            );
        }
        assert_eq!(folder.next_due(), Some(t0 + MAX_GATHER));
    }
}
