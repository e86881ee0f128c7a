//! Pairing by invite: the terminal issues a one-time code, the person sends
//! it to the bot, and is paired. The bot never offers a code to anyone.
//!
//! | who sends a code-like message | where | what happens |
//! |---|---|---|
//! | a stranger | a direct chat | a live direct invite matches: allowed with its role; otherwise a wrong guess ([`super::guess`]) |
//! | an allowed sender | a direct chat | a live owner invite matches: made owner; otherwise delivered as usual |
//! | an allowed sender | a group nobody opened | a live group invite matches: the group opens with the default rule |
//! | anyone else | a group | nothing: dropped like any message there |
//!
//! A redeemed invite is deleted in the same transaction that allows the
//! sender, so a code works once even if two messages race.

use rusqlite::{OptionalExtension, params};

use super::error::AccessError;
use super::gate::GroupPolicy;
use super::guess::{self, Blocks};
use super::invite;
use super::role::Role;
use super::store::{AccessStore, Inbound, Room, now};
use crate::db::DbError;

/// Live invites per adapter, at most.
pub const MAX_INVITES: usize = 3;
/// Default time to live of an invite, in seconds.
pub const DEFAULT_TTL: i64 = 600;
/// Longest time to live of an invite, in seconds.
pub const MAX_TTL: i64 = 3600;

/// A freshly issued invite: the only time its code exists in clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The code, as printed (`ABCD-EFGH`).
    pub code: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

/// A live invite, as listed (without its code).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Invite {
    /// Its number, for the listing.
    pub id: i64,
    /// The adapter it pairs on.
    pub adapter: String,
    /// The role it gives.
    pub role: Role,
    /// It opens a group rather than pairing a sender.
    pub for_group: bool,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

/// What a code-like message did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// Not a code, or not one for this kind of chat: the gate decides as usual.
    NotACode,
    /// An allowed sender's message matched no invite: the gate decides as usual.
    Unmatched,
    /// Paired: the sender now has `role` (or the group is open). The message
    /// is not delivered.
    Paired {
        /// The role given (for a group: the sender's).
        role: Role,
        /// A group was opened.
        group: bool,
    },
    /// A stranger's wrong (or expired, or used) code; `blocked` says which
    /// limits this one reached.
    Wrong {
        /// The blocks that start now.
        blocked: Blocks,
    },
    /// From a sender, or on an adapter, past the guess limits: ignored.
    Ignored,
}

impl AccessStore {
    /// Issues an invite on `adapter`: a direct one giving `role`, or a
    /// group one. `ttl` in seconds, at most [`MAX_TTL`].
    pub fn invite(
        &self,
        adapter: &str,
        role: Role,
        for_group: bool,
        ttl: i64,
    ) -> Result<Issued, AccessError> {
        self.writable()?;
        if self.lockdown()?.is_some() {
            return Err(AccessError::Locked);
        }
        let code = invite::generate().map_err(|e| AccessError::Random(e.to_string()))?;
        let salt = invite::salt().map_err(|e| AccessError::Random(e.to_string()))?;
        let hash = invite::hash(&salt, &code);
        let at = now();
        let expires_at = at + ttl.clamp(1, MAX_TTL);
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        // Expired invites stay until a running airlock records their expiry
        // (`take_expired_invites`); they no longer count.
        let live: i64 = tx.query_row(
            "SELECT COUNT(*) FROM invites WHERE adapter = ?1 AND expires_at > ?2",
            params![adapter, at],
            |r| r.get(0),
        )?;
        if live as usize >= MAX_INVITES {
            return Err(AccessError::TooManyInvites {
                adapter: adapter.into(),
                max: MAX_INVITES,
            });
        }
        tx.execute(
            "INSERT INTO invites (adapter, salt, code_hash, role, for_group, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![adapter, &salt[..], &hash[..], role.name(), for_group, at, expires_at],
        )?;
        tx.commit()?;
        Ok(Issued {
            code: invite::display(&code),
            expires_at,
        })
    }

    /// Invites that expired unused, removed; each is returned once (for the
    /// audit trail).
    pub fn take_expired_invites(&self) -> Result<Vec<Invite>, DbError> {
        let mut conn = self.db.lock();
        // Called every second: look before taking the write lock.
        let any: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM invites WHERE expires_at <= ?1)")?
            .query_row(params![now()], |r| r.get(0))?;
        if !any {
            return Ok(Vec::new());
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let expired = {
            let mut stmt = tx.prepare(
                "SELECT id, adapter, role, for_group, created_at, expires_at FROM invites
                 WHERE expires_at <= ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![now()], invite_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for i in &expired {
            tx.execute("DELETE FROM invites WHERE id = ?1", params![i.id])?;
        }
        tx.commit()?;
        Ok(expired)
    }

    /// Live invites, soonest to expire first.
    pub fn invites(&self) -> Result<Vec<Invite>, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare(
            "SELECT id, adapter, role, for_group, created_at, expires_at FROM invites
             WHERE expires_at > ?1 ORDER BY expires_at, id",
        )?;
        let rows = stmt.query_map(params![now()], invite_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Withdraws the live invites of `adapter` (of every adapter for
    /// `None`); returns how many.
    pub fn cancel_invites(&self, adapter: Option<&str>) -> Result<usize, DbError> {
        let conn = self.db.lock();
        let n = match adapter {
            Some(a) => conn.execute(
                "DELETE FROM invites WHERE adapter = ?1 AND expires_at > ?2",
                params![a, now()],
            )?,
            None => conn.execute("DELETE FROM invites WHERE expires_at > ?1", params![now()])?,
        };
        conn.execute("DELETE FROM invites WHERE expires_at <= ?1", params![now()])?;
        Ok(n)
    }

    /// Whether code messages from `sender_id` on `adapter` are ignored now.
    fn blocked(&self, adapter: &str, sender_id: &str, at: i64) -> Result<bool, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached(
                "SELECT 1 FROM pairing_blocks WHERE adapter = ?1 AND sender_id IN (?2, '')
                 AND until > ?3",
            )?
            .query_row(params![adapter, sender_id, at], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Redeems `m` if it carries a live invite's code; counts a stranger's
    /// wrong code. `role` is the sender's role now.
    pub fn pair(&self, m: &Inbound<'_>, role: Option<Role>) -> Result<Pairing, AccessError> {
        let adapter = m.sender.adapter;
        let sender_id = m.sender.sender_id;
        let for_group = match (m.room, role) {
            (Room::Direct, _) => false,
            (Room::Group, Some(_)) => true,
            _ => return Ok(Pairing::NotACode),
        };
        if m.is_bot || self.is_static() {
            return Ok(Pairing::NotACode);
        }
        let Some(code) = invite::normalize(m.text) else {
            return Ok(Pairing::NotACode);
        };
        let at = now();
        if role.is_none() && self.blocked(adapter, sender_id, at)? {
            return Ok(Pairing::Ignored);
        }
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let stored: Vec<(i64, Vec<u8>, Vec<u8>, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, salt, code_hash, role FROM invites
                 WHERE adapter = ?1 AND for_group = ?2 AND expires_at > ?3 ORDER BY id",
            )?;
            stmt.query_map(params![adapter, for_group, at], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let found = invite::find(
            &code,
            stored
                .iter()
                .map(|(_, s, h, _)| (s.as_slice(), h.as_slice())),
        );
        let Some(i) = found else {
            if role.is_some() {
                return Ok(Pairing::Unmatched);
            }
            tx.execute(
                "INSERT INTO pairing_failures (adapter, sender_id, at) VALUES (?1, ?2, ?3)",
                params![adapter, sender_id, at],
            )?;
            tx.execute(
                "DELETE FROM pairing_failures WHERE at <= ?1",
                params![at - guess::WINDOW],
            )?;
            let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u32, rusqlite::Error> {
                tx.query_row(sql, p, |r| r.get::<_, i64>(0))
                    .map(|n| n as u32)
            };
            let by_sender = count(
                "SELECT COUNT(*) FROM pairing_failures WHERE adapter = ?1 AND sender_id = ?2",
                &[&adapter, &sender_id],
            )?;
            let on_adapter = count(
                "SELECT COUNT(*) FROM pairing_failures WHERE adapter = ?1",
                &[&adapter],
            )?;
            let blocked = guess::after_wrong(by_sender, on_adapter);
            let block = |who: &str| {
                tx.execute(
                    "INSERT INTO pairing_blocks (adapter, sender_id, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT(adapter, sender_id) DO UPDATE SET until = excluded.until",
                    params![adapter, who, at + guess::BLOCK],
                )
            };
            if blocked.sender {
                block(sender_id)?;
            }
            if blocked.adapter {
                block("")?;
            }
            tx.commit()?;
            return Ok(Pairing::Wrong { blocked });
        };
        let (id, _, _, invite_role) = &stored[i];
        let invite_role = Role::parse(invite_role).unwrap_or(Role::Member);
        tx.execute("DELETE FROM invites WHERE id = ?1", params![id])?;
        let given = if for_group {
            tx.execute(
                "INSERT INTO groups (adapter, chat_id, any_sender, require_mention, added_at, opened_by)
                 VALUES (?1, ?2, 0, 1, ?3, ?4)
                 ON CONFLICT(adapter, chat_id) DO NOTHING",
                params![adapter, m.chat_id, at, sender_id],
            )?;
            role.unwrap_or(Role::Member)
        } else {
            // Never a step down: an owner redeeming a member code stays owner.
            let given = role.map_or(invite_role, |r| r.max(invite_role));
            tx.execute(
                "INSERT INTO allowlist (adapter, sender_id, added_at, role) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(adapter, sender_id) DO UPDATE SET role = excluded.role",
                params![adapter, sender_id, at, given.name()],
            )?;
            tx.execute(
                "DELETE FROM pairing_failures WHERE adapter = ?1 AND sender_id = ?2",
                params![adapter, sender_id],
            )?;
            given
        };
        tx.commit()?;
        drop(conn);
        if !for_group {
            // So that alerts and replies can reach them before they write again.
            self.record_direct(m)?;
        }
        Ok(Pairing::Paired {
            role: given,
            group: for_group,
        })
    }
}

/// The policy a group invite opens a group with: allowed senders, when
/// they mention the bot.
pub const GROUP_DEFAULT: GroupPolicy = GroupPolicy {
    any_sender: false,
    require_mention: true,
};

/// An invite from `SELECT id, adapter, role, for_group, created_at, expires_at`.
fn invite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Invite> {
    let role: String = r.get(2)?;
    Ok(Invite {
        id: r.get(0)?,
        adapter: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        for_group: r.get(3)?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::SenderRef;
    use crate::db::Db;

    fn dm<'a>(sender_id: &'a str, text: &'a str) -> Inbound<'a> {
        Inbound {
            sender: SenderRef {
                adapter: "tg",
                sender_id,
            },
            is_bot: false,
            handle: None,
            chat_id: sender_id,
            room: Room::Direct,
            mentions_bot: true,
            text,
        }
    }

    #[test]
    fn an_invite_pairs_once_in_any_spelling_and_guesses_are_bounded() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        let issued = a.invite("tg", Role::Owner, false, 600).unwrap();
        assert_eq!(issued.code.len(), 9);
        let listed = a.invites().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].role, Role::Owner);
        // Typed back lowercase, with spaces.
        let typed = issued.code.to_lowercase().replace('-', " ");
        assert_eq!(a.pair(&dm("9", "hello"), None).unwrap(), Pairing::NotACode);
        assert_eq!(
            a.pair(&dm("9", &typed), None).unwrap(),
            Pairing::Paired {
                role: Role::Owner,
                group: false
            }
        );
        assert_eq!(
            a.role(&SenderRef {
                adapter: "tg",
                sender_id: "9"
            })
            .unwrap(),
            Some(Role::Owner)
        );
        assert!(a.may_send("tg", "9").unwrap(), "their chat is open");
        // Used: refused, and counted against the next stranger.
        let wrong = Pairing::Wrong {
            blocked: Blocks::default(),
        };
        assert_eq!(a.pair(&dm("66", &issued.code), None).unwrap(), wrong);
        for _ in 0..3 {
            assert_eq!(a.pair(&dm("66", "AAAA-AAAA"), None).unwrap(), wrong);
        }
        let fifth = a.pair(&dm("66", "AAAA-AAAA"), None).unwrap();
        assert_eq!(
            fifth,
            Pairing::Wrong {
                blocked: Blocks {
                    sender: true,
                    adapter: false
                }
            }
        );
        // Now even a right code from them is ignored.
        let fresh = a.invite("tg", Role::Member, false, 600).unwrap();
        assert_eq!(
            a.pair(&dm("66", &fresh.code), None).unwrap(),
            Pairing::Ignored
        );
        // Another stranger is not blocked by them.
        assert!(matches!(
            a.pair(&dm("77", &fresh.code), None).unwrap(),
            Pairing::Paired {
                role: Role::Member,
                ..
            }
        ));
    }

    #[test]
    fn the_adapter_is_blocked_after_twenty_and_invites_are_capped() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        let mut last = None;
        for i in 0..20 {
            let id = format!("s{}", i / 4);
            last = Some(a.pair(&dm(&id, "ZZZZ-ZZZZ"), None).unwrap());
        }
        assert_eq!(
            last,
            Some(Pairing::Wrong {
                blocked: Blocks {
                    sender: false,
                    adapter: true
                }
            })
        );
        let code = a.invite("tg", Role::Member, false, 600).unwrap().code;
        assert_eq!(a.pair(&dm("new", &code), None).unwrap(), Pairing::Ignored);
        a.invite("tg", Role::Member, false, 600).unwrap();
        a.invite("tg", Role::Member, true, 600).unwrap();
        assert!(matches!(
            a.invite("tg", Role::Member, false, 600),
            Err(AccessError::TooManyInvites { .. })
        ));
        assert!(
            a.invite("dc", Role::Member, false, 600).is_ok(),
            "per adapter"
        );
        assert_eq!(a.cancel_invites(Some("tg")).unwrap(), 3);
        assert_eq!(a.invites().unwrap().len(), 1);
        assert_eq!(a.cancel_invites(None).unwrap(), 1);
    }

    #[test]
    fn an_expired_code_is_wrong_and_a_group_code_opens_a_group() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        let code = a.invite("tg", Role::Member, false, 600).unwrap().code;
        a.db.lock()
            .execute("UPDATE invites SET expires_at = 1", [])
            .unwrap();
        assert!(a.invites().unwrap().is_empty());
        assert!(matches!(
            a.pair(&dm("5", &code), None).unwrap(),
            Pairing::Wrong { .. }
        ));

        a.allow("tg", "7", Role::Member).unwrap();
        let group_code = a.invite("tg", Role::Member, true, 600).unwrap().code;
        let in_group = |sender_id, text| Inbound {
            chat_id: "-100",
            room: Room::Group,
            ..dm(sender_id, text)
        };
        // A stranger in the group: nothing, not even a guess.
        assert_eq!(
            a.pair(&in_group("8", &group_code), None).unwrap(),
            Pairing::NotACode
        );
        // A group code sent directly is no direct invite.
        assert_eq!(
            a.pair(&dm("7", &group_code), Some(Role::Member)).unwrap(),
            Pairing::Unmatched
        );
        assert_eq!(
            a.pair(&in_group("7", &group_code), Some(Role::Member))
                .unwrap(),
            Pairing::Paired {
                role: Role::Member,
                group: true
            }
        );
        assert_eq!(a.group("tg", "-100").unwrap(), Some(GROUP_DEFAULT));
    }
}
