//! Lockdown: everything stops at once, from everyone, owners included, and
//! `unlock` puts back what it closed.
//!
//! Lockdown is a row in the database, so every airlock sharing the state
//! directory sees it before its next delivery or send. It closes every open
//! group (remembered, and reopened by `unlock`) and cancels every invite
//! (not restored: issue new ones). Senders stay on their allowlists; the
//! gate drops everything while the row exists.

use rusqlite::{OptionalExtension, params};

use super::gate::GroupPolicy;
use super::store::{AccessStore, OpenGroup, now};
use crate::db::DbError;

/// Lockdown in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockdown {
    /// Seconds since the epoch.
    pub since: i64,
    /// What the operator said.
    pub reason: Option<String>,
}

/// What `lockdown` changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedDown {
    /// Lockdown was already in force (nothing changed).
    pub already: bool,
    /// Lockdown as it stands.
    pub state: Lockdown,
    /// Groups closed (reopened by `unlock`).
    pub closed_groups: Vec<OpenGroup>,
    /// Invites cancelled.
    pub cancelled_invites: usize,
}

/// What `unlock` changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unlocked {
    /// The lockdown that ended.
    pub ended: Lockdown,
    /// Groups reopened.
    pub reopened_groups: Vec<OpenGroup>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedGroup {
    adapter: String,
    chat_id: String,
    any_sender: bool,
    require_mention: bool,
    opened_by: Option<String>,
}

impl AccessStore {
    /// Lockdown, if in force.
    pub fn lockdown(&self) -> Result<Option<Lockdown>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached("SELECT since, reason FROM lockdown WHERE id = 0")?
            .query_row([], |r| {
                Ok(Lockdown {
                    since: r.get(0)?,
                    reason: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// Locks down: works in static mode too, and whatever state access is in.
    pub fn lock_down(&self, reason: Option<&str>) -> Result<LockedDown, DbError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let existing: Option<(i64, Option<String>)> = tx
            .query_row("SELECT since, reason FROM lockdown WHERE id = 0", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((since, reason)) = existing {
            return Ok(LockedDown {
                already: true,
                state: Lockdown { since, reason },
                closed_groups: Vec::new(),
                cancelled_invites: 0,
            });
        }
        let saved: Vec<SavedGroup> = {
            let mut stmt = tx.prepare(
                "SELECT adapter, chat_id, any_sender, require_mention, opened_by FROM groups
                 ORDER BY adapter, chat_id",
            )?;
            stmt.query_map([], |r| {
                Ok(SavedGroup {
                    adapter: r.get(0)?,
                    chat_id: r.get(1)?,
                    any_sender: r.get(2)?,
                    require_mention: r.get(3)?,
                    opened_by: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?
        };
        let since = now();
        let json = serde_json::to_string(&saved).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO lockdown (id, since, reason, closed_groups) VALUES (0, ?1, ?2, ?3)",
            params![since, reason, json],
        )?;
        tx.execute("DELETE FROM groups", [])?;
        let cancelled_invites = tx.execute("DELETE FROM invites", [])?;
        tx.commit()?;
        Ok(LockedDown {
            already: false,
            state: Lockdown {
                since,
                reason: reason.map(str::to_owned),
            },
            closed_groups: saved.into_iter().map(open_group).collect(),
            cancelled_invites,
        })
    }

    /// Ends lockdown and reopens the groups it closed (those opened again
    /// meanwhile keep how they are now). `None`: there was no lockdown.
    pub fn unlock(&self) -> Result<Option<Unlocked>, DbError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let row: Option<(i64, Option<String>, String)> = tx
            .query_row(
                "SELECT since, reason, closed_groups FROM lockdown WHERE id = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((since, reason, json)) = row else {
            return Ok(None);
        };
        let saved: Vec<SavedGroup> = serde_json::from_str(&json).unwrap_or_default();
        let mut reopened = Vec::new();
        for g in saved {
            let n = tx.execute(
                "INSERT INTO groups (adapter, chat_id, any_sender, require_mention, added_at, opened_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![g.adapter, g.chat_id, g.any_sender, g.require_mention, now(), g.opened_by],
            )?;
            if n > 0 {
                reopened.push(open_group(g));
            }
        }
        tx.execute("DELETE FROM lockdown WHERE id = 0", [])?;
        tx.commit()?;
        Ok(Some(Unlocked {
            ended: Lockdown { since, reason },
            reopened_groups: reopened,
        }))
    }
}

fn open_group(g: SavedGroup) -> OpenGroup {
    OpenGroup {
        adapter: g.adapter,
        chat_id: g.chat_id,
        policy: GroupPolicy {
            any_sender: g.any_sender,
            require_mention: g.require_mention,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Decision, Role, gate};
    use crate::db::Db;

    #[test]
    fn lockdown_closes_and_unlock_restores() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        a.allow("tg", "1", Role::Owner).unwrap();
        let mention = GroupPolicy {
            any_sender: false,
            require_mention: true,
        };
        a.open_group("tg", "-100", mention).unwrap();
        a.invite("tg", Role::Member, false, 600).unwrap();
        let rev = a.revision().unwrap();
        assert_eq!(a.lockdown().unwrap(), None);
        let mut memo = crate::access::Memo::default();
        assert_eq!(a.begin_batch(&mut memo).unwrap(), rev);
        assert_eq!(a.lockdown_with(&mut memo).unwrap(), None);

        let done = a.lock_down(Some("token leaked")).unwrap();
        assert!(!done.already);
        assert_eq!(done.closed_groups.len(), 1);
        assert_eq!(done.cancelled_invites, 1);
        assert!(
            a.revision().unwrap() > rev,
            "lockdown is a change of access"
        );
        assert!(a.groups().unwrap().is_empty());
        assert!(a.invites().unwrap().is_empty());
        let owner = crate::access::Inbound {
            sender: crate::access::SenderRef {
                adapter: "tg",
                sender_id: "1",
            },
            is_bot: false,
            handle: None,
            chat_id: "1",
            room: crate::access::Room::Direct,
            mentions_bot: true,
            text: "hi",
        };
        assert_eq!(
            a.admit(&owner).unwrap(),
            Decision::Drop(gate::reason::LOCKED),
            "owners too"
        );
        assert_eq!(a.dropped().unwrap()[0].reason, gate::reason::LOCKED);
        let again = a.lock_down(None).unwrap();
        assert!(again.already);
        assert_eq!(again.state.reason.as_deref(), Some("token leaked"));

        let undone = a.unlock().unwrap().unwrap();
        assert_eq!(undone.reopened_groups.len(), 1);
        assert_eq!(a.groups().unwrap()[0].policy, mention);
        assert_eq!(a.admit(&owner).unwrap(), Decision::Deliver);
        assert_eq!(a.unlock().unwrap(), None);
    }
}
