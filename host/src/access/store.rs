//! The access tables: allowlists, recent drops, and chats delivered from.

use rusqlite::{OptionalExtension, params};

use super::gate::{self, Decision, SenderRef};
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
}

/// The access store.
#[derive(Clone, Debug)]
pub struct Access {
    db: Db,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Access {
    /// The store over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Whether `sender` is on its adapter's allowlist.
    pub fn listed(&self, sender: &SenderRef<'_>) -> Result<bool, DbError> {
        Ok(self
            .db
            .lock()
            .query_row(
                "SELECT 1 FROM allowlist WHERE adapter = ?1 AND sender_id = ?2",
                params![sender.adapter, sender.sender_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Decide on an inbound message, remembering a drop or the chat.
    pub fn admit(
        &self,
        sender: &SenderRef<'_>,
        is_bot: bool,
        chat_id: &str,
        handle: Option<&str>,
        text: &str,
    ) -> Result<Decision, DbError> {
        let decision = gate::inbound(sender, self.listed(sender)?, is_bot);
        let conn = self.db.lock();
        match decision {
            Decision::Deliver => {
                conn.execute(
                    "INSERT INTO delivered_chats (adapter, chat_id, sender_id, at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(adapter, chat_id, sender_id) DO UPDATE SET at = excluded.at",
                    params![sender.adapter, chat_id, sender.sender_id, now()],
                )?;
            }
            Decision::Drop(_) if !is_bot => {
                let first: String = text.chars().take(FIRST_WORDS).collect();
                conn.execute(
                    "INSERT INTO drops (adapter, sender_id, handle, at, first_words) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![sender.adapter, sender.sender_id, handle, now(), first],
                )?;
                conn.execute(
                    "DELETE FROM drops WHERE rowid NOT IN (SELECT rowid FROM drops ORDER BY rowid DESC LIMIT ?1)",
                    params![KEEP_DROPS],
                )?;
            }
            Decision::Drop(_) => {}
        }
        Ok(decision)
    }

    /// Whether a tool may target `chat_id` of `adapter`.
    pub fn may_send(&self, adapter: &str, chat_id: &str) -> Result<bool, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare("SELECT sender_id FROM delivered_chats WHERE adapter = ?1 AND chat_id = ?2")?;
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
                return Ok(gate::outbound(true));
            }
        }
        Ok(gate::outbound(false))
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
            "SELECT adapter, sender_id, handle, at, first_words FROM drops ORDER BY rowid DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Dropped {
                adapter: r.get(0)?,
                sender_id: r.get(1)?,
                handle: r.get(2)?,
                at: r.get(3)?,
                first_words: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s<'a>(adapter: &'a str, sender_id: &'a str) -> SenderRef<'a> {
        SenderRef { adapter, sender_id }
    }

    #[test]
    fn allow_deliver_drop_remember_and_gate_outbound() {
        let a = Access::new(Db::in_memory().unwrap());
        assert_eq!(
            a.admit(
                &s("tg", "42"),
                false,
                "42",
                Some("eve"),
                "hello there, let me in"
            )
            .unwrap(),
            Decision::Drop("sender is not on the allowlist")
        );
        assert!(
            !a.may_send("tg", "42").unwrap(),
            "a dropped sender's chat is not a target"
        );
        let d = &a.dropped().unwrap()[0];
        assert_eq!(
            (d.sender_id.as_str(), d.handle.as_deref()),
            ("42", Some("eve"))
        );

        assert!(a.allow("tg", "42").unwrap());
        assert!(!a.allow("tg", "42").unwrap(), "idempotent");
        assert_eq!(
            a.admit(&s("tg", "42"), false, "42", None, "hi").unwrap(),
            Decision::Deliver
        );
        assert!(a.may_send("tg", "42").unwrap());
        assert!(!a.may_send("tg", "43").unwrap());
        assert!(!a.may_send("other", "42").unwrap());

        // Removing the sender closes the chat again, without a restart.
        assert!(a.remove("tg", "42").unwrap());
        assert!(!a.may_send("tg", "42").unwrap());
        assert_eq!(
            a.admit(&s("tg", "42"), false, "42", None, "hi").unwrap(),
            Decision::Drop("sender is not on the allowlist")
        );
    }

    #[test]
    fn drops_are_bounded_and_short() {
        let a = Access::new(Db::in_memory().unwrap());
        for i in 0..KEEP_DROPS + 10 {
            a.admit(
                &s("tg", &i.to_string()),
                false,
                "c",
                None,
                &"word ".repeat(100),
            )
            .unwrap();
        }
        let drops = a.dropped().unwrap();
        assert_eq!(drops.len() as i64, KEEP_DROPS);
        assert_eq!(drops[0].sender_id, (KEEP_DROPS + 9).to_string());
        assert!(drops[0].first_words.chars().count() <= FIRST_WORDS);
    }

    #[test]
    fn fakechat_local_user_is_allowed_by_default() {
        let a = Access::new(Db::in_memory().unwrap());
        assert_eq!(
            a.admit(&s("fakechat", "web"), false, "web", None, "hi")
                .unwrap(),
            Decision::Deliver
        );
        assert!(a.may_send("fakechat", "web").unwrap());
    }
}
