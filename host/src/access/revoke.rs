//! Revoking a sender: off the allowlist, and every way back to them closed.
//!
//! `remove` takes a sender off the allowlist; `revoke` also forgets the
//! direct chats they were delivered from and closes the groups they opened
//! with a group invite, so that no chat stays open only through them. Both
//! stop their waiting events: delivery checks the gate again.

use rusqlite::params;

use super::SenderRef;
use super::error::AccessError;
use super::role::Role;
use super::store::AccessStore;

/// What `revoke` changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Their role before; `None`: they were not on the allowlist.
    pub role: Option<Role>,
    /// Direct chats forgotten.
    pub chats: Vec<String>,
    /// Groups closed (they had opened them with an invite).
    pub groups: Vec<String>,
}

impl AccessStore {
    /// Revokes `sender_id` on `adapter`.
    pub fn revoke(&self, adapter: &str, sender_id: &str) -> Result<Revoked, AccessError> {
        self.writable()?;
        let role = self.role(&SenderRef { adapter, sender_id })?;
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let list = |sql: &str| -> Result<Vec<String>, rusqlite::Error> {
            let mut stmt = tx.prepare(sql)?;
            stmt.query_map(params![adapter, sender_id], |r| r.get(0))?
                .collect()
        };
        let chats = list(
            "SELECT chat_id FROM delivered_chats WHERE adapter = ?1 AND sender_id = ?2 ORDER BY chat_id",
        )?;
        let groups = list(
            "SELECT chat_id FROM groups WHERE adapter = ?1 AND opened_by = ?2 ORDER BY chat_id",
        )?;
        tx.execute(
            "DELETE FROM allowlist WHERE adapter = ?1 AND sender_id = ?2",
            params![adapter, sender_id],
        )?;
        tx.execute(
            "DELETE FROM delivered_chats WHERE adapter = ?1 AND sender_id = ?2",
            params![adapter, sender_id],
        )?;
        tx.execute(
            "DELETE FROM groups WHERE adapter = ?1 AND opened_by = ?2",
            params![adapter, sender_id],
        )?;
        tx.commit()?;
        drop(conn);
        self.forget_recorded(adapter, sender_id);
        Ok(Revoked {
            role,
            chats,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::pairing::GROUP_DEFAULT;
    use crate::access::{Inbound, Room};
    use crate::db::Db;

    #[test]
    fn revoking_closes_what_was_open_only_through_them() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        a.allow("tg", "1", Role::Owner).unwrap();
        a.allow("tg", "2", Role::Member).unwrap();
        let dm = |sender_id: &'static str, chat_id: &'static str| Inbound {
            sender: SenderRef {
                adapter: "tg",
                sender_id,
            },
            is_bot: false,
            handle: None,
            chat_id,
            room: Room::Direct,
            mentions_bot: true,
            text: "hi",
        };
        a.admit(&dm("1", "1")).unwrap();
        // A chat both were delivered from stays open through the other.
        a.admit(&dm("1", "shared")).unwrap();
        a.admit(&dm("2", "shared")).unwrap();
        a.open_group_by("tg", "-100", GROUP_DEFAULT, Some("1"))
            .unwrap();
        a.open_group("tg", "-200", GROUP_DEFAULT).unwrap();

        let r = a.revoke("tg", "1").unwrap();
        assert_eq!(r.role, Some(Role::Owner));
        assert_eq!(r.chats, ["1", "shared"]);
        assert_eq!(r.groups, ["-100"]);
        assert!(!a.may_send("tg", "1").unwrap());
        assert!(a.may_send("tg", "shared").unwrap());
        assert!(!a.may_send("tg", "-100").unwrap());
        assert!(
            a.may_send("tg", "-200").unwrap(),
            "opened from the terminal"
        );
        assert_eq!(a.revoke("tg", "1").unwrap(), Revoked::default());
    }
}
