//! Owners hear of every call a rule allowed, folded to at most one message
//! a minute: the first at once, then what gathered since, each minute.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// At most one notice per this long.
pub const EVERY: Duration = Duration::from_secs(60);

/// Calls of one tool a rule allowed since the last notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The tool.
    pub tool_name: String,
    /// How many calls.
    pub count: u32,
    /// When its rule ends (Unix seconds).
    pub until: i64,
}

/// Gathers auto-allowed calls between notices.
#[derive(Debug, Default)]
pub struct Gather {
    last_sent: Option<Instant>,
    pending: BTreeMap<String, (u32, i64)>,
}

impl Gather {
    /// A call of `tool_name` was allowed by its rule (ending at `until`).
    pub fn add(&mut self, tool_name: &str, until: i64) {
        let e = self
            .pending
            .entry(tool_name.to_owned())
            .or_insert((0, until));
        e.0 += 1;
        e.1 = until;
    }

    /// What to tell owners now, if a notice is due.
    pub fn due(&mut self, now: Instant) -> Option<Vec<Allowed>> {
        if self.pending.is_empty() || self.last_sent.is_some_and(|t| now < t + EVERY) {
            return None;
        }
        self.last_sent = Some(now);
        Some(
            std::mem::take(&mut self.pending)
                .into_iter()
                .map(|(tool_name, (count, until))| Allowed {
                    tool_name,
                    count,
                    until,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_at_once_then_one_a_minute() {
        let t0 = Instant::now();
        let mut g = Gather::default();
        assert_eq!(g.due(t0), None, "nothing to say");
        g.add("Write", 100);
        let first = g.due(t0).unwrap();
        assert_eq!((first[0].tool_name.as_str(), first[0].count), ("Write", 1));
        for _ in 0..5 {
            g.add("Write", 200);
        }
        g.add("Edit", 300);
        assert_eq!(g.due(t0 + Duration::from_secs(59)), None);
        let folded = g.due(t0 + EVERY).unwrap();
        assert_eq!(
            folded,
            vec![
                Allowed {
                    tool_name: "Edit".into(),
                    count: 1,
                    until: 300
                },
                Allowed {
                    tool_name: "Write".into(),
                    count: 5,
                    until: 200
                }
            ]
        );
        assert_eq!(g.due(t0 + EVERY * 3), None);
    }
}
