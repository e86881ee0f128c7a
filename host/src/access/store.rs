//! The access tables: allowlists with roles, opened groups, recent drops,
//! and chats delivered from. In static mode the allowlists and groups come
//! from `airlock.toml` instead ([`super::statics`]); everything else stays
//! here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, params};

use super::error::AccessError;
use super::gate::{self, Decision, Facts, GroupPolicy, SenderRef};
use super::known::Known;
use super::lockdown::Lockdown;
use super::role::Role;
use super::statics::StaticAccess;
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
    /// What they may do.
    pub role: Role,
    /// Seconds since the epoch (0 for entries of a static config).
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
    /// Why it was dropped (a `gate::reason`).
    pub reason: String,
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
    roles: HashMap<(String, String), Option<Role>>,
    groups: HashMap<(String, String), Option<GroupPolicy>>,
    recorded: HashSet<(String, String, String)>,
    lockdown: Option<Option<Lockdown>>,
    /// The access revision this batch read, under which lookups may come
    /// from what the store already knows; `None` reads everything.
    rev: Option<i64>,
    /// Drops of this batch by (adapter, reason), written at [`AccessStore::tally`].
    drops: HashMap<(String, &'static str), i64>,
}

/// Whether a tool may write to a chat now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// Lockdown is in force: nothing is sent anywhere.
    Locked(Lockdown),
    /// The chat is open to the session.
    Open,
    /// Nobody allowed was delivered from it, and no open group holds it.
    Closed,
}

/// Direct chats by (adapter, chat id), with the senders recorded in each.
type DirectChats = HashMap<(String, String), HashSet<String>>;

/// The access store.
#[derive(Clone, Debug)]
pub struct AccessStore {
    pub(super) db: Db,
    /// In static mode, the allowlists and groups of `airlock.toml`.
    pub(super) statics: Option<Arc<StaticAccess>>,
    /// Direct chats recorded in `delivered_chats` by this process, so the
    /// table is written once per chat and sender, not once per message:
    /// (adapter, chat) to its senders.
    recorded: Arc<Mutex<DirectChats>>,
    /// Threads recorded in `threads` by this process, likewise.
    threads: Arc<Mutex<HashSet<(String, String)>>>,
    /// Roles and groups read under the current access revision.
    known: Arc<Mutex<Known>>,
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
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
            statics: None,
            recorded: Arc::default(),
            threads: Arc::default(),
            known: Arc::default(),
        }
    }

    /// The store over `db` as `[access]` of `airlock.toml` says: in static
    /// mode, its allowlists and groups are the only ones.
    pub fn with_config(db: Db, config: &crate::manifest::AccessConfig) -> Self {
        let mut store = Self::new(db);
        if config.static_access {
            store.statics = Some(Arc::new(StaticAccess::from_config(config)));
        }
        store
    }

    /// Whether access comes from `airlock.toml` alone.
    pub fn is_static(&self) -> bool {
        self.statics.is_some()
    }

    /// Refuses a change to who may reach the session in static mode.
    pub(super) fn writable(&self) -> Result<(), AccessError> {
        if self.is_static() {
            return Err(AccessError::Static);
        }
        Ok(())
    }

    /// The revision of access: it changes with every change to the
    /// allowlists, the groups or lockdown, whichever process makes it.
    pub fn revision(&self) -> Result<i64, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached("SELECT rev FROM access_revision WHERE id = 0")?
            .query_row([], |r| r.get(0))?)
    }

    /// The role of `sender`, if they are allowed at all.
    pub fn role(&self, sender: &SenderRef<'_>) -> Result<Option<Role>, DbError> {
        if gate::implicit_allow(sender) {
            return Ok(Some(Role::Owner));
        }
        if let Some(statics) = &self.statics {
            return Ok(statics.role(sender.adapter, sender.sender_id));
        }
        let role: Option<String> = self
            .db
            .lock()
            .prepare_cached("SELECT role FROM allowlist WHERE adapter = ?1 AND sender_id = ?2")?
            .query_row(params![sender.adapter, sender.sender_id], |r| r.get(0))
            .optional()?;
        Ok(role.map(|r| Role::parse(&r).unwrap_or(Role::Member)))
    }

    /// Whether `sender` is allowed (on the allowlist, or implicitly).
    pub fn listed(&self, sender: &SenderRef<'_>) -> Result<bool, DbError> {
        Ok(self.role(sender)?.is_some())
    }

    /// How `chat_id` of `adapter` was opened, if it was.
    pub fn group(&self, adapter: &str, chat_id: &str) -> Result<Option<GroupPolicy>, DbError> {
        if let Some(statics) = &self.statics {
            return Ok(statics.group(adapter, chat_id));
        }
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

    /// The role of `sender`, remembered for the batch.
    pub fn role_with(
        &self,
        sender: &SenderRef<'_>,
        memo: &mut Memo,
    ) -> Result<Option<Role>, DbError> {
        let key = (sender.adapter.to_owned(), sender.sender_id.to_owned());
        if let Some(role) = memo.roles.get(&key) {
            return Ok(*role);
        }
        let known = memo
            .rev
            .and_then(|rev| self.known().role(rev, sender.adapter, sender.sender_id));
        let role = match known {
            Some(role) => role,
            None => {
                let role = self.role(sender)?;
                if let Some(rev) = memo.rev {
                    self.known()
                        .set_role(rev, sender.adapter, sender.sender_id, role);
                }
                role
            }
        };
        memo.roles.insert(key, role);
        Ok(role)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The access revision is `rev`: what was read under another is
    /// forgotten, and so are this process's notes of chats and threads it
    /// recorded (a change elsewhere may have deleted their rows; the next
    /// delivery writes them again).
    fn sync(&self, rev: i64) {
        if self.known().at(rev) {
            self.recorded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            self.threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    /// Starts a batch: reads the access revision and lockdown in one query,
    /// remembering lockdown in `memo`; returns the revision the batch is
    /// admitted under.
    pub fn begin_batch(&self, memo: &mut Memo) -> Result<i64, DbError> {
        let (rev, lockdown) = self
            .db
            .lock()
            .prepare_cached(
                "SELECT r.rev, l.since, l.reason FROM access_revision r
                 LEFT JOIN lockdown l ON l.id = 0 WHERE r.id = 0",
            )?
            .query_row([], |r| {
                let since: Option<i64> = r.get(1)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    since.map(|since| Lockdown {
                        since,
                        reason: r.get(2).ok().flatten(),
                    }),
                ))
            })?;
        memo.lockdown = Some(lockdown);
        self.sync(rev);
        memo.rev = Some(rev);
        Ok(rev)
    }

    /// Lockdown, read once per batch.
    pub fn lockdown_with(&self, memo: &mut Memo) -> Result<Option<Lockdown>, DbError> {
        if let Some(known) = &memo.lockdown {
            return Ok(known.clone());
        }
        let state = self.lockdown()?;
        memo.lockdown = Some(state.clone());
        Ok(state)
    }

    /// Forgets what `memo` knows of `sender_id` and of `chat_id` (a pairing
    /// just changed a role, or opened a group).
    pub fn forget(memo: &mut Memo, adapter: &str, sender_id: &str, chat_id: &str) {
        memo.roles
            .remove(&(adapter.to_owned(), sender_id.to_owned()));
        memo.groups
            .remove(&(adapter.to_owned(), chat_id.to_owned()));
        // The change bumped the revision this batch read: from here on it
        // reads what it needs.
        memo.rev = None;
    }

    /// Counts a drop of this batch; written by [`tally`](Self::tally).
    pub fn count_drop(memo: &mut Memo, adapter: &str, reason: &'static str) {
        *memo.drops.entry((adapter.to_owned(), reason)).or_default() += 1;
    }

    /// Writes the drop counts of a batch (for `airlock access status`).
    pub fn tally(&self, memo: &mut Memo) -> Result<(), DbError> {
        if memo.drops.is_empty() {
            return Ok(());
        }
        let hour = now() / 3600;
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        {
            let mut up = tx.prepare_cached(
                "INSERT INTO drop_tally (adapter, hour, reason, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(adapter, hour, reason) DO UPDATE SET n = n + excluded.n",
            )?;
            for ((adapter, reason), n) in memo.drops.drain() {
                up.execute(params![adapter, hour, reason, n])?;
            }
            tx.execute(
                "DELETE FROM drop_tally WHERE hour < ?1",
                params![hour - 24 * 8],
            )?;
        }
        tx.commit()?;
        Ok(())
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
        let known = memo
            .rev
            .and_then(|rev| self.known().group(rev, adapter, chat_id));
        let policy = match known {
            Some(policy) => policy,
            None => {
                let policy = self.group(adapter, chat_id)?;
                if let Some(rev) = memo.rev {
                    self.known().set_group(rev, adapter, chat_id, policy);
                }
                policy
            }
        };
        memo.groups.insert(key, policy);
        Ok(policy)
    }

    /// [`admit`](Self::admit), with the lookups of this batch remembered in
    /// `memo`.
    pub fn admit_with(&self, m: &Inbound<'_>, memo: &mut Memo) -> Result<Decision, DbError> {
        let locked = self.lockdown_with(memo)?.is_some();
        let allowed = self.role_with(&m.sender, memo)?.is_some();
        let group = match m.room {
            Room::Direct => None,
            Room::Group => Some(self.group_with(m.sender.adapter, m.chat_id, memo)?),
            Room::Thread { parent } => Some(self.group_with(m.sender.adapter, parent, memo)?),
        };
        let decision = gate::inbound(&Facts {
            locked,
            allowed,
            is_bot: m.is_bot,
            group,
            mentions_bot: m.mentions_bot,
        });
        if let Decision::Drop(reason) = decision {
            Self::count_drop(memo, m.sender.adapter, reason);
        }
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
        } else if let Decision::Drop(reason) = decision
            && gate::remember(&decision)
        {
            // A code someone typed is never kept, even a wrong one.
            let first: String = if super::invite::normalize(m.text).is_some() {
                "(a pairing code)".into()
            } else {
                m.text.chars().take(FIRST_WORDS).collect()
            };
            let group_id = match m.room {
                Room::Thread { parent } => parent,
                _ => m.chat_id,
            };
            let closed_group = (reason == gate::reason::GROUP_CLOSED).then_some(group_id);
            self.remember_drop(m, &first, closed_group, reason)?;
        }
        Ok(decision)
    }

    /// The gate again, for a stored event of `sender_id` (in `group`, if
    /// it came from one) about to be delivered.
    pub fn redeliver(
        &self,
        adapter: &str,
        sender_id: &str,
        group: Option<&str>,
    ) -> Result<Decision, DbError> {
        let locked = self.lockdown()?.is_some();
        let allowed = self.listed(&SenderRef { adapter, sender_id })?;
        let group = match group {
            Some(g) => Some(self.group(adapter, g)?),
            None => None,
        };
        Ok(gate::redeliver(locked, allowed, group))
    }

    /// Keeps a drop for `airlock access list`, the newest [`KEEP_DROPS`].
    pub(super) fn remember_drop(
        &self,
        m: &Inbound<'_>,
        first_words: &str,
        closed_group: Option<&str>,
        reason: &str,
    ) -> Result<(), DbError> {
        let conn = self.db.lock();
        conn.prepare_cached(
            "INSERT INTO drops (adapter, sender_id, handle, at, first_words, chat_id, group_chat, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            m.sender.adapter,
            m.sender.sender_id,
            m.handle,
            now(),
            first_words,
            closed_group,
            closed_group.is_some(),
            reason
        ])?;
        conn.prepare_cached(
            "DELETE FROM drops WHERE rowid NOT IN (SELECT rowid FROM drops ORDER BY rowid DESC LIMIT ?1)",
        )?
        .execute(params![KEEP_DROPS])?;
        Ok(())
    }

    pub(super) fn record_direct(&self, m: &Inbound<'_>) -> Result<(), DbError> {
        let chat = (m.sender.adapter.to_owned(), m.chat_id.to_owned());
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if recorded
            .get(&chat)
            .is_some_and(|senders| senders.contains(m.sender.sender_id))
        {
            return Ok(());
        }
        self.db.lock().prepare_cached(
            "INSERT INTO delivered_chats (adapter, chat_id, sender_id, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(adapter, chat_id, sender_id) DO UPDATE SET at = excluded.at",
        )?
        .execute(params![chat.0, chat.1, m.sender.sender_id, now()])?;
        recorded
            .entry(chat)
            .or_default()
            .insert(m.sender.sender_id.to_owned());
        Ok(())
    }

    /// Forgets this process's note that `sender_id`'s chats were recorded
    /// (they were just deleted), so the next delivery records them again.
    pub(super) fn forget_recorded(&self, adapter: &str, sender_id: &str) {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(a, _), senders| {
                if a == adapter {
                    senders.remove(sender_id);
                }
                !senders.is_empty()
            });
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
        self.may_send_with(adapter, chat_id, &mut Memo::default())
    }

    /// Lockdown and [`may_send`](Self::may_send) together, as a tool asks
    /// before it writes: one read of the revision and lockdown, and the
    /// rest from what is known under that revision where it can.
    pub fn outbound(&self, adapter: &str, chat_id: &str) -> Result<Outbound, DbError> {
        let mut memo = Memo::default();
        self.begin_batch(&mut memo)?;
        if let Some(Some(locked)) = memo.lockdown.take() {
            return Ok(Outbound::Locked(locked));
        }
        Ok(if self.may_send_with(adapter, chat_id, &mut memo)? {
            Outbound::Open
        } else {
            Outbound::Closed
        })
    }

    fn may_send_with(
        &self,
        adapter: &str,
        chat_id: &str,
        memo: &mut Memo,
    ) -> Result<bool, DbError> {
        if self.group_with(adapter, chat_id, memo)?.is_some() {
            return Ok(gate::outbound(true, false));
        }
        // A direct chat this process recorded since the revision was read
        // (`sync` forgets them when it moves): its row is there.
        if memo.rev.is_some() {
            let senders: Vec<String> = self
                .recorded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(adapter.to_owned(), chat_id.to_owned()))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            if self.any_listed(adapter, &senders, memo)? {
                return Ok(gate::outbound(false, true));
            }
        }
        if let Some(parent) = self.thread_parent(adapter, chat_id)?
            && self.group_with(adapter, &parent, memo)?.is_some()
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
        let listed = self.any_listed(adapter, &senders, memo)?;
        Ok(gate::outbound(false, listed))
    }

    /// Whether any of `senders` of `adapter` is allowed.
    fn any_listed(
        &self,
        adapter: &str,
        senders: &[String],
        memo: &mut Memo,
    ) -> Result<bool, DbError> {
        for sender_id in senders {
            let s = SenderRef { adapter, sender_id };
            if self.role_with(&s, memo)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Puts `sender_id` on `adapter`'s allowlist with `role`; returns the
    /// role they had before, if any.
    pub fn allow(
        &self,
        adapter: &str,
        sender_id: &str,
        role: Role,
    ) -> Result<Option<Role>, AccessError> {
        self.writable()?;
        let before = self.role(&SenderRef { adapter, sender_id })?;
        self.write_role(adapter, sender_id, role, before)?;
        Ok(before)
    }

    /// Changes the role of a sender already allowed; returns the role
    /// before, or `None` when they are not on the allowlist.
    pub fn set_role(
        &self,
        adapter: &str,
        sender_id: &str,
        role: Role,
    ) -> Result<Option<Role>, AccessError> {
        self.writable()?;
        let before = self.role(&SenderRef { adapter, sender_id })?;
        if before.is_some() {
            self.write_role(adapter, sender_id, role, before)?;
        }
        Ok(before)
    }

    /// Stores `role` for `sender_id` unless it is `before` already.
    fn write_role(
        &self,
        adapter: &str,
        sender_id: &str,
        role: Role,
        before: Option<Role>,
    ) -> Result<(), AccessError> {
        if before != Some(role) {
            self.db.lock().execute(
                "INSERT INTO allowlist (adapter, sender_id, added_at, role) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(adapter, sender_id) DO UPDATE SET role = excluded.role",
                params![adapter, sender_id, now(), role.name()],
            )?;
        }
        Ok(())
    }

    /// Removes `sender_id` from `adapter`'s allowlist: their waiting
    /// events are not delivered, and chats open only through them close.
    pub fn remove(&self, adapter: &str, sender_id: &str) -> Result<bool, AccessError> {
        self.writable()?;
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
    ) -> Result<bool, AccessError> {
        self.open_group_by(adapter, chat_id, policy, None)
    }

    /// [`open_group`](Self::open_group), remembering who opened it (with a
    /// group invite), so that revoking them closes it.
    pub(super) fn open_group_by(
        &self,
        adapter: &str,
        chat_id: &str,
        policy: GroupPolicy,
        opened_by: Option<&str>,
    ) -> Result<bool, AccessError> {
        self.writable()?;
        let was_open = self.group(adapter, chat_id)?.is_some();
        self.db.lock().execute(
            "INSERT INTO groups (adapter, chat_id, any_sender, require_mention, added_at, opened_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(adapter, chat_id) DO UPDATE SET any_sender = excluded.any_sender,
                 require_mention = excluded.require_mention, opened_by = excluded.opened_by",
            params![
                adapter,
                chat_id,
                policy.any_sender,
                policy.require_mention,
                now(),
                opened_by
            ],
        )?;
        Ok(!was_open)
    }

    /// Close group `chat_id` of `adapter`; whether it was open.
    pub fn close_group(&self, adapter: &str, chat_id: &str) -> Result<bool, AccessError> {
        self.writable()?;
        Ok(self.db.lock().execute(
            "DELETE FROM groups WHERE adapter = ?1 AND chat_id = ?2",
            params![adapter, chat_id],
        )? > 0)
    }

    /// Every open group.
    pub fn groups(&self) -> Result<Vec<OpenGroup>, DbError> {
        if let Some(statics) = &self.statics {
            return Ok(statics.groups());
        }
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
        if let Some(statics) = &self.statics {
            return Ok(statics.allowed());
        }
        let conn = self.db.lock();
        let mut stmt = conn.prepare(
            "SELECT adapter, sender_id, added_at, role FROM allowlist ORDER BY adapter, sender_id",
        )?;
        let rows = stmt.query_map([], |r| {
            let role: String = r.get(3)?;
            Ok(Allowed {
                adapter: r.get(0)?,
                sender_id: r.get(1)?,
                added_at: r.get(2)?,
                role: Role::parse(&role).unwrap_or(Role::Member),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recent drops, newest first.
    pub fn dropped(&self) -> Result<Vec<Dropped>, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare(
            "SELECT adapter, sender_id, handle, at, first_words, chat_id, group_chat, reason
             FROM drops ORDER BY rowid DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            let group_chat: bool = r.get(6)?;
            let reason: Option<String> = r.get(7)?;
            Ok(Dropped {
                adapter: r.get(0)?,
                sender_id: r.get(1)?,
                handle: r.get(2)?,
                at: r.get(3)?,
                first_words: r.get(4)?,
                closed_group: if group_chat { r.get(5)? } else { None },
                reason: reason.unwrap_or_else(|| gate::reason::NOT_ALLOWED.into()),
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

        assert_eq!(a.allow("tg", "42", Role::Member).unwrap(), None);
        assert_eq!(
            a.allow("tg", "42", Role::Member).unwrap(),
            Some(Role::Member),
            "idempotent"
        );
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
        a.allow("tg", "7", Role::Member).unwrap();
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
