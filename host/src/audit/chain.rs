//! The hash chain: what a row's hash covers, and the walk that checks it.
//!
//! `hash = SHA-256(prev_hash ‖ canonical row)`, both hex, where the
//! canonical row is the JSON array of every stored field but the two hashes,
//! in a fixed order, with the row's id first: editing a field, deleting a
//! row or swapping two changes some hash the next row depends on. The first
//! row's `prev_hash` is [`GENESIS`], unless retention removed the rows
//! before it; then an anchor names the hash it follows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first row ever.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A stored row, as read back and as exported (one JSON object a line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the chain.
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The kind's name.
    pub kind: String,
    /// Adapter.
    pub adapter: Option<String>,
    /// Chat.
    pub chat: Option<String>,
    /// Sender id.
    pub sender_id: Option<String>,
    /// Sender handle.
    pub sender_handle: Option<String>,
    /// The airlock process that wrote it (`serve 1234`), or `terminal`.
    pub session: Option<String>,
    /// One line.
    pub summary: String,
    /// The text, with `content = "full"`.
    pub content: Option<String>,
    /// The keyed digest of the text, with `content = "digest"`.
    pub content_digest: Option<String>,
    /// The text's length in characters, with `full` or `digest`.
    pub content_len: Option<i64>,
    /// JSON detail, as stored.
    pub detail: String,
    /// The hash of the row before.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

impl Record {
    /// The bytes the hash covers after `prev_hash`.
    pub fn canonical(&self) -> String {
        serde_json::to_string(&(
            self.id,
            self.at_ms,
            &self.kind,
            &self.adapter,
            &self.chat,
            &self.sender_id,
            &self.sender_handle,
            &self.session,
            &self.summary,
            &self.content,
            &self.content_digest,
            self.content_len,
            &self.detail,
        ))
        .unwrap_or_default()
    }

    /// The hash this row must carry.
    pub fn expected_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(self.canonical().as_bytes());
        hex::encode(h.finalize())
    }

    /// Fill in `prev_hash` and `hash`.
    pub fn seal(&mut self, prev_hash: &str) {
        self.prev_hash = prev_hash.to_owned();
        self.hash = self.expected_hash();
    }
}

/// What a walk of the chain found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Every row matched.
    Verified {
        /// Rows checked.
        rows: u64,
        /// The last row's hash and id, if any row.
        head: Option<(String, i64)>,
        /// The first row's id, when rows before it were removed by retention.
        anchored_at: Option<i64>,
    },
    /// The first row that does not match, and why.
    Broken {
        /// Rows that matched before it.
        rows: u64,
        /// Its id (or the id where one was expected).
        id: i64,
        /// What is wrong.
        why: String,
    },
}

/// Checks rows in order as they come. `anchor` is the hash the first row
/// follows when it is not the chain's first (retention, or an export that
/// starts later): `Some((first_id, prev_hash))`. With a `head` (`HASH@N`
/// kept outside the machine), row N must be among the rows, with that hash.
#[derive(Debug)]
pub struct Walker {
    expect_prev: String,
    expect_id: Option<i64>,
    rows: u64,
    first: Option<i64>,
    head: Option<(String, i64)>,
    head_seen: bool,
    last: Option<(String, i64)>,
    anchored_at: Option<i64>,
    broken: Option<(i64, String)>,
}

impl Walker {
    /// A walk from the chain's start, or from an anchor.
    pub fn new(anchor: Option<(i64, String)>) -> Self {
        let (expect_id, expect_prev, anchored_at) = match anchor {
            Some((id, prev)) => (Some(id), prev, Some(id)),
            None => (Some(1), GENESIS.to_owned(), None),
        };
        Self {
            expect_prev,
            expect_id,
            rows: 0,
            first: None,
            head: None,
            head_seen: false,
            last: None,
            anchored_at,
            broken: None,
        }
    }

    /// Also check a head kept elsewhere.
    pub fn with_head(mut self, head: Option<(String, i64)>) -> Self {
        self.head = head;
        self
    }

    fn why(&self, r: &Record) -> Option<(i64, String)> {
        if let Some((hash, n)) = &self.head
            && r.id == *n
            && &r.hash != hash
        {
            return Some((
                *n,
                format!(
                    "row {n} has hash {}, but the checkpoint kept elsewhere says {}: the chain \
                     was rewritten",
                    short(&r.hash),
                    short(hash)
                ),
            ));
        }
        if let Some(want) = self.expect_id
            && r.id != want
        {
            return Some(if r.id > want {
                (
                    want,
                    format!("row {want} is missing (the next row is {})", r.id),
                )
            } else {
                (
                    r.id,
                    format!("row {} is out of order (expected row {want})", r.id),
                )
            });
        }
        if r.prev_hash != self.expect_prev {
            return Some((
                r.id,
                format!(
                    "row {} does not follow the row before it (its prev_hash {} is not {}): a row \
                     was deleted, inserted or reordered",
                    r.id,
                    short(&r.prev_hash),
                    short(&self.expect_prev)
                ),
            ));
        }
        let expected = r.expected_hash();
        (r.hash != expected).then(|| {
            (
                r.id,
                format!(
                    "row {} was changed after it was written (its hash {} does not match its \
                     content, which hashes to {})",
                    r.id,
                    short(&r.hash),
                    short(&expected)
                ),
            )
        })
    }

    /// Check the next row. False once the chain broke (stop then).
    pub fn step(&mut self, r: &Record) -> bool {
        if self.broken.is_some() {
            return false;
        }
        if let Some(b) = self.why(r) {
            self.broken = Some(b);
            return false;
        }
        self.first.get_or_insert(r.id);
        self.head_seen |= self.head.as_ref().is_some_and(|h| h.1 == r.id);
        self.rows += 1;
        self.expect_prev = r.hash.clone();
        self.expect_id = Some(r.id + 1);
        self.last = Some((r.hash.clone(), r.id));
        true
    }

    /// What the walk found.
    pub fn finish(self) -> Walk {
        if let Some((id, why)) = self.broken {
            return Walk::Broken {
                rows: self.rows,
                id,
                why,
            };
        }
        if let Some((_, n)) = &self.head
            && !self.head_seen
        {
            let last = self.last.as_ref().map_or(0, |l| l.1);
            let why = match self.first {
                Some(f) if *n < f => format!(
                    "the checkpoint kept elsewhere names row {n}, but these rows start at row \
                     {f}; check from further back (an export without --since)"
                ),
                _ if *n > last => format!(
                    "the checkpoint kept elsewhere names row {n}, but the chain ends at row \
                     {last}: its tail was cut off"
                ),
                _ => format!("row {n}, named by the checkpoint kept elsewhere, is gone"),
            };
            return Walk::Broken {
                rows: 0,
                id: *n,
                why,
            };
        }
        Walk::Verified {
            rows: self.rows,
            head: self.last,
            anchored_at: self.anchored_at,
        }
    }
}

/// The first 12 hex digits, for messages.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// `HASH@N`, as checkpoints print it and `verify --head` takes it.
pub fn parse_head(text: &str) -> Result<(String, i64), String> {
    let (hash, n) = text.trim().split_once('@').ok_or_else(|| {
        format!("{text:?} is not HASH@N (a checkpoint's head, like 3fa4…c1@1000)")
    })?;
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{text:?}: {n:?} after @ is not a row number"))?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?}: the hash must be 64 hex digits"));
    }
    Ok((hash.to_ascii_lowercase(), n))
}

/// `n` sealed rows from the chain's start, for tests.
#[cfg(test)]
pub(crate) fn sample_chain(n: i64) -> Vec<Record> {
    let mut prev = GENESIS.to_owned();
    (1..=n)
        .map(|id| {
            let mut r = Record {
                id,
                at_ms: id * 1000,
                kind: "inbound".into(),
                adapter: Some("telegram".into()),
                chat: Some("42".into()),
                sender_id: Some("7".into()),
                sender_handle: None,
                session: Some("serve 1".into()),
                summary: format!("message {id}"),
                content: None,
                content_digest: None,
                content_len: None,
                detail: "{}".into(),
                prev_hash: String::new(),
                hash: String::new(),
            };
            r.seal(&prev);
            prev = r.hash.clone();
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Record> {
        sample_chain(n)
    }

    fn walk(rows: &[Record], anchor: Option<(i64, String)>) -> Walk {
        let mut w = Walker::new(anchor);
        for r in rows {
            if !w.step(r) {
                break;
            }
        }
        w.finish()
    }

    #[test]
    fn an_intact_chain_verifies_to_its_head() {
        let rows = chain(5);
        assert_eq!(
            walk(&rows, None),
            Walk::Verified {
                rows: 5,
                head: Some((rows[4].hash.clone(), 5)),
                anchored_at: None
            }
        );
        assert_eq!(
            walk(&rows[2..], Some((3, rows[1].hash.clone()))),
            Walk::Verified {
                rows: 3,
                head: Some((rows[4].hash.clone(), 5)),
                anchored_at: Some(3)
            }
        );
    }

    #[test]
    fn an_edit_a_deletion_and_a_swap_are_each_found_at_their_row() {
        let rows = chain(5);
        let mut edited = rows.clone();
        edited[2].summary = "nothing to see".into();
        let Walk::Broken { id, why, rows: ok } = walk(&edited, None) else {
            panic!()
        };
        assert_eq!((id, ok), (3, 2));
        assert!(why.contains("changed after it was written"), "{why}");

        let mut deleted = rows.clone();
        deleted.remove(2);
        let Walk::Broken { id, why, .. } = walk(&deleted, None) else {
            panic!()
        };
        assert_eq!(id, 3);
        assert!(why.contains("row 3 is missing"), "{why}");

        // Renumbered after a delete: the ids line up, the hashes do not.
        let mut renumbered = deleted.clone();
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.id = i as i64 + 1;
        }
        let Walk::Broken { id, .. } = walk(&renumbered, None) else {
            panic!()
        };
        assert_eq!(id, 3);

        let mut swapped = rows.clone();
        swapped.swap(1, 3);
        let (a, b) = (swapped[1].id, swapped[3].id);
        swapped[1].id = b;
        swapped[3].id = a;
        let Walk::Broken { id, .. } = walk(&swapped, None) else {
            panic!()
        };
        assert_eq!(id, 2);

        // Swapping whole rows, ids and all, puts them out of order.
        let mut reordered = rows.clone();
        reordered.swap(1, 2);
        let Walk::Broken { id, why, .. } = walk(&reordered, None) else {
            panic!()
        };
        assert_eq!(id, 2, "{why}");
        assert!(why.contains("row 2 is missing") || why.contains("out of order"));
    }

    #[test]
    fn a_head_kept_elsewhere_finds_a_rewrite_and_a_cut_tail() {
        let rows = chain(5);
        let head = |n: usize| Some((rows[n - 1].hash.clone(), n as i64));
        let walk_with = |rows: &[Record], h| {
            let mut w = Walker::new(None).with_head(h);
            for r in rows {
                if !w.step(r) {
                    break;
                }
            }
            w.finish()
        };
        assert!(matches!(
            walk_with(&rows, head(4)),
            Walk::Verified { rows: 5, .. }
        ));
        let Walk::Broken { id, why, .. } = walk_with(&rows[..3], head(4)) else {
            panic!()
        };
        assert_eq!(id, 4);
        assert!(why.contains("tail was cut off"), "{why}");
        let other = chain(6);
        let Walk::Broken { why, .. } = walk_with(&rows, Some((other[5].hash.clone(), 2))) else {
            panic!()
        };
        assert!(why.contains("was rewritten"), "{why}");
    }

    #[test]
    fn heads_parse() {
        let h = "ab".repeat(32);
        assert_eq!(parse_head(&format!("{h}@1000")), Ok((h.clone(), 1000)));
        assert!(parse_head("abc@1").unwrap_err().contains("64 hex"));
        assert!(
            parse_head(&format!("{h}@x"))
                .unwrap_err()
                .contains("not a row number")
        );
        assert!(parse_head(&h).unwrap_err().contains("HASH@N"));
    }
}
