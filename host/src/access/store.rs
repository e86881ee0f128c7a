//! The access tables: allowlists, opened groups, recent drops, and chats
//! delivered from.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, params};

use super::gate::{self, Decision, Facts, GroupPolicy, SenderRef};
use crate::db::{Db, DbError};

/// How many recent drops are kept (oldest forgotten first).
pub const KEEP_DROPS: i64 = 50;
/// How many characters of a dropped message are kept.
pub const FIRST_WORDS: usize = 40;

/// An allowlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// Adapter.
    pub adapter: String,
    /// Sender id.
    pub sender_id: String,
    /// Seconds since the epoch.
    pub added_at: i64,
}

/// A group the operator opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenGroup {
    /// Adapter.
    pub adapter: String,
    /// The group's platform chat id.
    pub chat_id: String,
    /// How it was opened.
    pub policy: GroupPolicy,
}

/// A remembered drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Adapter.
    pub adapter: String,
    /// Sender id.
    pub sender_id: String,
    /// Handle, if the platform gave one.
    pub handle: Option<String>,
    /// Seconds since the epoch.
    pub at: i64,
    /// The start of the message.
    pub first_words: String,
    /// For a message in a group nobody opened: the group.
    pub closed_group: Option<String>,
}

/// Where an inbound message was said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Room<'a> {
    /// A one-to-one chat with the bot.
    Direct,
    /// A group, broadcast channel or guild channel.
    Group,
    /// A thread of the group `parent`.
    Thread {
        /// The parent group's chat id.
        parent: &'a str,
    },
}

/// An inbound message as the gate needs it.
#[derive(Clone, Debug)]
pub struct Inbound<'a> {
    /// Who.
    pub sender: SenderRef<'a>,
    /// The platform marks the sender as a bot.
    pub is_bot: bool,
    /// The sender's handle, for the drop list.
    pub handle: Option<&'a str>,
    /// The platform chat id.
    pub chat_id: &'a str,
    /// What kind of chat.
    pub room: Room<'a>,
    /// The message addresses the bot.
    pub mentions_bot: bool,
    /// The text, of which a drop keeps the first words.
    pub text: &'a str,
}

/// Lookups remembered for one batch of inbound events: the store is still
/// read for every batch (so a change from the terminal applies to the next
/// one), but not once per message of a burst.
#[derive(Debug, Default)]
pub struct Memo {
    listed: HashSet<(String, String)>,
    unlisted: HashSet<(String, String)>,
    groups: std::collections::HashMap<(String, String), Option<GroupPolicy>>,
    recorded: HashSet<(String, String, String)>,
}

/// The access store.
#[derive(Clone, Debug)]
pub struct AccessStore {
    db: Db,
    /// Direct chats recorded in `delivered_chats` by this process, so the
    /// table is written once per chat and sender, not once per message.
    recorded: Arc<Mutex<HashSet<(String, String, String)>>>,
    /// Threads recorded in `threads` by this process, likewise.
    threads: Arc<Mutex<HashSet<(String, String)>>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl AccessStore {
    /// The store over `db`.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            recorded: Arc::default(),
            threads: Arc::default(),
        }
    }

    /// Whether `sender` is on its adapter's allowlist.
    pub fn listed(&self, sender: &SenderRef<'_>) -> Result<bool, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached("SELECT 1 FROM allowlist WHERE adapter = ?1 AND sender_id = ?2")?
            .query_row(params![sender.adapter, sender.sender_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// How `chat_id` of `adapter` was opened, if it was.
    pub fn group(&self, adapter: &str, chat_id: &str) -> Result<Option<GroupPolicy>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached(
                "SELECT any_sender, require_mention FROM groups WHERE adapter = ?1 AND chat_id = ?2",
            )?
            .query_row(params![adapter, chat_id], |r| {
                Ok(GroupPolicy {
                    any_sender: r.get(0)?,
                    require_mention: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// Decide on an inbound message, remembering a drop or the chat.
    pub fn admit(&self, m: &Inbound<'_>) -> Result<Decision, DbError> {
        self.admit_with(m, &mut Memo::default())
    }

    fn listed_with(&self, sender: &SenderRef<'_>, memo: &mut Memo) -> Result<bool, DbError> {
        let key = (sender.adapter.to_owned(), sender.sender_id.to_owned());
        if memo.listed.contains(&key) {
            return Ok(true);
        }
        if memo.unlisted.contains(&key) {
            return Ok(false);
        }
        let listed = self.listed(sender)?;
        if listed {
            memo.listed.insert(key);
        } else {
            memo.unlisted.insert(key);
        }
        Ok(listed)
    }

    fn group_with(
        &self,
        adapter: &str,
        chat_id: &str,
        memo: &mut Memo,
    ) -> Result<Option<GroupPolicy>, DbError> {
        let key = (adapter.to_owned(), chat_id.to_owned());
        if let Some(known) = memo.groups.get(&key) {
            return Ok(*known);
        }
        let policy = self.group(adapter, chat_id)?;
        memo.groups.insert(key, policy);
        Ok(policy)
    }

    /// [`admit`](Self::admit), with the lookups of this batch remembered in
    /// `memo`.
    pub fn admit_with(&self, m: &Inbound<'_>, memo: &mut Memo) -> Result<Decision, DbError> {
        let allowed = gate::implicit_allow(&m.sender) || self.listed_with(&m.sender, memo)?;
        let group = match m.room {
            Room::Direct => None,
            Room::Group => Some(self.group_with(m.sender.adapter, m.chat_id, memo)?),
            Room::Thread { parent } => Some(self.group_with(m.sender.adapter, parent, memo)?),
        };
        let decision = gate::inbound(&Facts {
            allowed,
            is_bot: m.is_bot,
            group,
            mentions_bot: m.mentions_bot,
        });
        if decision == Decision::Deliver && m.room == Room::Direct {
            let key = (
                m.sender.adapter.to_owned(),
                m.chat_id.to_owned(),
                m.sender.sender_id.to_owned(),
            );
            if !memo.recorded.contains(&key) {
                self.record_direct(m)?;
                memo.recorded.insert(key);
            }
        } else if let (Decision::Deliver, Room::Thread { parent }) = (&decision, m.room) {
            self.record_thread(m.sender.adapter, m.chat_id, parent)?;
        } else if gate::remember(&decision) {
            let first: String = m.text.chars().take(FIRST_WORDS).collect();
            let group_id = match m.room {
                Room::Thread { parent } => parent,
                _ => m.chat_id,
            };
            let closed_group =
                (decision == Decision::Drop(gate::reason::GROUP_CLOSED)).then_some(group_id);
            let conn = self.db.lock();
            conn.execute(
                "INSERT INTO drops (adapter, sender_id, handle, at, first_words, chat_id, group_chat)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    m.sender.adapter,
                    m.sender.sender_id,
                    m.handle,
                    now(),
                    first,
                    closed_group,
                    closed_group.is_some()
                ],
            )?;
            conn.execute(
                "DELETE FROM drops WHERE rowid NOT IN (SELECT rowid FROM drops ORDER BY rowid DESC LIMIT ?1)",
                params![KEEP_DROPS],
            )?;
        }
        Ok(decision)
    }

    fn record_direct(&self, m: &Inbound<'_>) -> Result<(), DbError> {
        let key = (
            m.sender.adapter.to_owned(),
            m.chat_id.to_owned(),
            m.sender.sender_id.to_owned(),
        );
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if recorded.contains(&key) {
            return Ok(());
        }
        self.db.lock().prepare_cached(
            "INSERT INTO delivered_chats (adapter, chat_id, sender_id, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(adapter, chat_id, sender_id) DO UPDATE SET at = excluded.at",
        )?
        .execute(params![key.0, key.1, key.2, now()])?;
        recorded.insert(key);
        Ok(())
    }

    /// Remember that `thread` (under `parent`) was delivered from.
    fn record_thread(&self, adapter: &str, thread: &str, parent: &str) -> Result<(), DbError> {
        let key = (adapter.to_owned(), thread.to_owned());
        let mut recorded = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if recorded.contains(&key) {
            return Ok(());
        }
        self.db.lock().prepare_cached(
            "INSERT INTO threads (adapter, thread_id, parent_id, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(adapter, thread_id) DO UPDATE SET parent_id = excluded.parent_id, at = excluded.at",
        )?
        .execute(params![adapter, thread, parent, now()])?;
        recorded.insert(key);
        Ok(())
    }

    /// The parent of `chat_id` when it is a thread delivered from.
    fn thread_parent(&self, adapter: &str, chat_id: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached("SELECT parent_id FROM threads WHERE adapter = ?1 AND thread_id = ?2")?
            .query_row(params![adapter, chat_id], |r| r.get(0))
            .optional()?)
    }

    /// Whether a tool may target `chat_id` of `adapter`: an open group, a
    /// thread delivered from whose parent is an open group, or a direct chat
    /// an allowed sender was delivered from.
    pub fn may_send(&self, adapter: &str, chat_id: &str) -> Result<bool, DbError> {
        if self.group(adapter, chat_id)?.is_some() {
            return Ok(gate::outbound(true, false));
        }
        if let Some(parent) = self.thread_parent(adapter, chat_id)?
            && self.group(adapter, &parent)?.is_some()
        {
            return Ok(gate::outbound(true, false));
        }
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT sender_id FROM delivered_chats WHERE adapter = ?1 AND chat_id = ?2",
        )?;
        let senders: Vec<String> = stmt
            .query_map(params![adapter, chat_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        drop(conn);
        for sender_id in senders {
            let s = SenderRef {
                adapter,
                sender_id: &sender_id,
            };
            if gate::implicit_allow(&s) || self.listed(&s)? {
                return Ok(gate::outbound(false, true));
            }
        }
        Ok(gate::outbound(false, false))
    }

    /// Add `sender_id` to `adapter`'s allowlist.
    pub fn allow(&self, adapter: &str, sender_id: &str) -> Result<bool, DbError> {
        Ok(self.db.lock().execute(
            "INSERT INTO allowlist (adapter, sender_id, added_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![adapter, sender_id, now()],
        )? > 0)
    }

    /// Remove `sender_id` from `adapter`'s allowlist.
    pub fn remove(&self, adapter: &str, sender_id: &str) -> Result<bool, DbError> {
        Ok(self.db.lock().execute(
            "DELETE FROM allowlist WHERE adapter = ?1 AND sender_id = ?2",
            params![adapter, sender_id],
        )? > 0)
    }

    /// Open group `chat_id` of `adapter` (or change how it is open). Returns
    /// whether it was closed before.
    pub fn open_group(
        &self,
        adapter: &str,
        chat_id: &str,
        policy: GroupPolicy,
    ) -> Result<bool, DbError> {
        let was_open = self.group(adapter, chat_id)?.is_some();
        self.db.lock().execute(
            "INSERT INTO groups (adapter, chat_id, any_sender, require_mention, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(adapter, chat_id) DO UPDATE SET any_sender = excluded.any_sender,
                 require_mention = excluded.require_mention",
            params![
                adapter,
                chat_id,
                policy.any_sender,
                policy.require_mention,
                now()
            ],
        )?;
        Ok(!was_open)
    }

    /// Close group `chat_id` of `adapter`; whether it was open.
    pub fn close_group(&self, adapter: &str, chat_id: &str) -> Result<bool, DbError> {
        Ok(self.db.lock().execute(
            "DELETE FROM groups WHERE adapter = ?1 AND chat_id = ?2",
            params![adapter, chat_id],
        )? > 0)
    }

    /// Every open group.
    pub fn groups(&self) -> Result<Vec<OpenGroup>, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare(
            "SELECT adapter, chat_id, any_sender, require_mention FROM groups ORDER BY adapter, chat_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OpenGroup {
                adapter: r.get(0)?,
                chat_id: r.get(1)?,
                policy: GroupPolicy {
                    any_sender: r.get(2)?,
                    require_mention: r.get(3)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every allowlist entry.
    pub fn allowed(&self) -> Result<Vec<Allowed>, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare(
            "SELECT adapter, sender_id, added_at FROM allowlist ORDER BY adapter, sender_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Allowed {
                adapter: r.get(0)?,
                sender_id: r.get(1)?,
                added_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recent drops, newest first.
    pub fn dropped(&self) -> Result<Vec<Dropped>, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare(
            "SELECT adapter, sender_id, handle, at, first_words, chat_id, group_chat
             FROM drops ORDER BY rowid DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            let group_chat: bool = r.get(6)?;
            Ok(Dropped {
                adapter: r.get(0)?,
                sender_id: r.get(1)?,
                handle: r.get(2)?,
                at: r.get(3)?,
                first_words: r.get(4)?,
                closed_group: if group_chat { r.get(5)? } else { None },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct<'a>(adapter: &'a str, sender_id: &'a str, text: &'a str) -> Inbound<'a> {
        Inbound {
            sender: SenderRef { adapter, sender_id },
            is_bot: false,
            handle: Some("eve"),
            chat_id: sender_id,
            room: Room::Direct,
            mentions_bot: true,
            text,
        }
    }

    #[test]
    fn allow_deliver_drop_remember_and_gate_outbound() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        assert_eq!(
            a.admit(&direct("tg", "42", "hello there, let me in"))
                .unwrap(),
            Decision::Drop(gate::reason::NOT_ALLOWED)
        );
        assert!(
            !a.may_send("tg", "42").unwrap(),
            "a dropped sender's chat is not a target"
        );
        let d = &a.dropped().unwrap()[0];
        assert_eq!(
            (
                d.sender_id.as_str(),
                d.handle.as_deref(),
                d.closed_group.as_deref()
            ),
            ("42", Some("eve"), None)
        );

        assert!(a.allow("tg", "42").unwrap());
        assert!(!a.allow("tg", "42").unwrap(), "idempotent");
        assert_eq!(
            a.admit(&direct("tg", "42", "hi")).unwrap(),
            Decision::Deliver
        );
        assert!(a.may_send("tg", "42").unwrap());
        assert!(!a.may_send("tg", "43").unwrap());
        assert!(!a.may_send("other", "42").unwrap());

        // Removing the sender closes the chat again, without a restart.
        assert!(a.remove("tg", "42").unwrap());
        assert!(!a.may_send("tg", "42").unwrap());
        assert_eq!(
            a.admit(&direct("tg", "42", "hi")).unwrap(),
            Decision::Drop(gate::reason::NOT_ALLOWED)
        );
    }

    #[test]
    fn groups_open_close_and_gate_both_ways() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        a.allow("tg", "7").unwrap();
        let in_group = |sender_id, mentions_bot| Inbound {
            sender: SenderRef {
                adapter: "tg",
                sender_id,
            },
            is_bot: false,
            handle: None,
            chat_id: "-100",
            room: Room::Group,
            mentions_bot,
            text: "hello group",
        };
        // Closed: an allowed sender's mention is dropped, and the group is remembered.
        assert_eq!(
            a.admit(&in_group("7", true)).unwrap(),
            Decision::Drop(gate::reason::GROUP_CLOSED)
        );
        assert_eq!(
            a.dropped().unwrap()[0].closed_group.as_deref(),
            Some("-100")
        );
        assert!(!a.may_send("tg", "-100").unwrap());

        let mention_only = GroupPolicy {
            any_sender: false,
            require_mention: true,
        };
        assert!(a.open_group("tg", "-100", mention_only).unwrap());
        assert!(
            !a.open_group("tg", "-100", mention_only).unwrap(),
            "already open"
        );
        assert_eq!(a.admit(&in_group("7", true)).unwrap(), Decision::Deliver);
        assert_eq!(
            a.admit(&in_group("7", false)).unwrap(),
            Decision::Drop(gate::reason::NO_MENTION)
        );
        assert_eq!(
            a.admit(&in_group("8", true)).unwrap(),
            Decision::Drop(gate::reason::NOT_ALLOWED)
        );
        assert!(a.may_send("tg", "-100").unwrap());
        // A thread follows its parent.
        let thread = Inbound {
            chat_id: "-100/5",
            room: Room::Thread { parent: "-100" },
            ..in_group("7", true)
        };
        assert!(!a.may_send("tg", "-100/6").unwrap(), "an unknown thread");
        assert_eq!(a.admit(&thread).unwrap(), Decision::Deliver);
        assert!(
            a.may_send("tg", "-100/5").unwrap(),
            "a delivered thread is open"
        );

        assert_eq!(a.groups().unwrap()[0].policy, mention_only);
        assert!(a.close_group("tg", "-100").unwrap());
        assert!(!a.close_group("tg", "-100").unwrap());
        assert!(
            !a.may_send("tg", "-100").unwrap(),
            "closing closes it outbound too"
        );
        assert!(!a.may_send("tg", "-100/5").unwrap(), "and its threads");
    }

    #[test]
    fn drops_are_bounded_and_short() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        let long = "word ".repeat(100);
        for i in 0..KEEP_DROPS + 10 {
            let id = i.to_string();
            a.admit(&direct("tg", &id, &long)).unwrap();
        }
        let drops = a.dropped().unwrap();
        assert_eq!(drops.len() as i64, KEEP_DROPS);
        assert_eq!(drops[0].sender_id, (KEEP_DROPS + 9).to_string());
        assert!(drops[0].first_words.chars().count() <= FIRST_WORDS);
    }

    #[test]
    fn fakechat_local_user_is_allowed_by_default() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        assert_eq!(
            a.admit(&direct("fakechat", "web", "hi")).unwrap(),
            Decision::Deliver
        );
        assert!(a.may_send("fakechat", "web").unwrap());
    }
}
