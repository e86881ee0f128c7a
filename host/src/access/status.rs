//! `airlock access status`: per adapter, who may reach the session, what is
//! open, what is pending, and what was dropped or alerted on in the last
//! day. The JSON form is for scripts and keeps its field names.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::alert_log::Recorded;
use super::pairing::Invite;
use super::role::Role;
use super::store::{AccessStore, now};
use crate::db::DbError;

/// The last day, in seconds.
pub const DAY: i64 = 24 * 3600;

/// Access as it stands.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// `[access] static = true`: airlock.toml is the only source.
    pub static_access: bool,
    /// Lockdown, if in force.
    pub lockdown: Option<LockdownStatus>,
    /// Per adapter.
    pub adapters: BTreeMap<String, AdapterStatus>,
    /// Alerts of the last day that concern every adapter (lockdown, unlock).
    pub alerts_24h: Vec<Recorded>,
}

/// Lockdown in force.
#[derive(Clone, Debug, Serialize)]
pub struct LockdownStatus {
    /// Seconds since the epoch.
    pub since: i64,
    /// What the operator said.
    pub reason: Option<String>,
}

/// One adapter's access.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AdapterStatus {
    /// Owners' sender ids.
    pub owners: Vec<String>,
    /// Members' sender ids.
    pub members: Vec<String>,
    /// Open groups.
    pub groups: Vec<GroupStatus>,
    /// Live invites (never their codes).
    pub invites: Vec<Invite>,
    /// Messages dropped in the last day, by reason.
    pub drops_24h: BTreeMap<String, u64>,
    /// Alerts of the last day, newest first.
    pub alerts_24h: Vec<Recorded>,
    /// Pairing codes ignored after too many wrong ones: from one sender, or
    /// (`sender_id` null) on the whole adapter.
    pub pairing_blocked: Vec<PairingBlock>,
    /// What needs the operator's attention (`no owner`).
    pub warnings: Vec<String>,
}

/// An open group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupStatus {
    /// Its platform chat id.
    pub chat_id: String,
    /// Any member may write, not only allowed senders.
    pub any_sender: bool,
    /// Only messages that mention the bot pass.
    pub require_mention: bool,
}

/// Code messages ignored until a time.
#[derive(Clone, Debug, Serialize)]
pub struct PairingBlock {
    /// The sender; `None`: everyone on the adapter.
    pub sender_id: Option<String>,
    /// Seconds since the epoch.
    pub until: i64,
}

/// The warning for an adapter without an owner.
pub const NO_OWNER: &str = "no owner: nobody receives its alerts or answers permission prompts; \
                            add one with `airlock access invite ADAPTER --owner`";

impl AccessStore {
    /// Access as it stands; `adapters` are listed even with nothing in them
    /// (those that run).
    pub fn status(&self, adapters: &[String]) -> Result<Status, DbError> {
        let mut out: BTreeMap<String, AdapterStatus> = adapters
            .iter()
            .map(|a| (a.clone(), AdapterStatus::default()))
            .collect();
        for a in self.allowed()? {
            let entry = out.entry(a.adapter).or_default();
            match a.role {
                Role::Owner => entry.owners.push(a.sender_id),
                Role::Member => entry.members.push(a.sender_id),
            }
        }
        for g in self.groups()? {
            out.entry(g.adapter).or_default().groups.push(GroupStatus {
                chat_id: g.chat_id,
                any_sender: g.policy.any_sender,
                require_mention: g.policy.require_mention,
            });
        }
        for i in self.invites()? {
            out.entry(i.adapter.clone()).or_default().invites.push(i);
        }
        let since = now() - DAY;
        let drops = self.triples(
            "SELECT adapter, reason, SUM(n) FROM drop_tally WHERE hour >= ?1
             GROUP BY adapter, reason ORDER BY adapter, reason",
            since / 3600,
        )?;
        for (adapter, reason, n) in drops {
            out.entry(adapter)
                .or_default()
                .drops_24h
                .insert(reason, n as u64);
        }
        let blocks = self.triples(
            "SELECT adapter, sender_id, until FROM pairing_blocks WHERE until > ?1
             ORDER BY adapter, sender_id",
            now(),
        )?;
        for (adapter, sender, until) in blocks {
            out.entry(adapter)
                .or_default()
                .pairing_blocked
                .push(PairingBlock {
                    sender_id: (!sender.is_empty()).then_some(sender),
                    until,
                });
        }
        let mut general = Vec::new();
        for alert in self.alerts_since(since)? {
            match alert.adapter.clone() {
                Some(a) => out.entry(a).or_default().alerts_24h.push(alert),
                None => general.push(alert),
            }
        }
        for (name, a) in &mut out {
            // fakechat's local page: the person at this computer.
            if super::gate::implicit_allow(&super::SenderRef {
                adapter: name,
                sender_id: "web",
            }) {
                a.owners.insert(0, "web".into());
            }
            if a.owners.is_empty() {
                a.warnings.push(NO_OWNER.replace("ADAPTER", name));
            }
            for owner in &a.owners {
                if owner != "web" && self.owner_chat(name, owner)?.is_none() {
                    a.warnings.push(format!(
                        "owner {} has not written to the bot yet, so its alerts cannot reach them; \
                         ask them to send it any message",
                        crate::text::one_line(owner, 100)
                    ));
                }
            }
        }
        Ok(Status {
            static_access: self.is_static(),
            lockdown: self.lockdown()?.map(|l| LockdownStatus {
                since: l.since,
                reason: l.reason,
            }),
            adapters: out,
            alerts_24h: general,
        })
    }

    /// Rows of (text, text, number) that `sql` selects for `arg`.
    fn triples(&self, sql: &str, arg: i64) -> Result<Vec<(String, String, i64)>, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(params![arg], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Owners' direct chats on `adapter`: where its alerts go.
    pub fn owner_chats(&self, adapter: &str) -> Result<Vec<String>, DbError> {
        let mut chats = Vec::new();
        for a in self.allowed()? {
            if a.adapter == adapter
                && a.role == Role::Owner
                && let Some(chat) = self.owner_chat(adapter, &a.sender_id)?
            {
                chats.push(chat);
            }
        }
        if super::gate::implicit_allow(&super::SenderRef {
            adapter,
            sender_id: "web",
        }) {
            chats.push("web".into());
        }
        Ok(chats)
    }

    /// Whether `adapter` has an owner (its local user counts, on fakechat).
    pub fn has_owner(&self, adapter: &str) -> Result<bool, DbError> {
        if super::gate::implicit_allow(&super::SenderRef {
            adapter,
            sender_id: "web",
        }) {
            return Ok(true);
        }
        Ok(self
            .allowed()?
            .iter()
            .any(|a| a.adapter == adapter && a.role == Role::Owner))
    }

    /// The direct chat `owner` last wrote from (or paired in), if any.
    fn owner_chat(&self, adapter: &str, owner: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached(
                "SELECT chat_id FROM delivered_chats WHERE adapter = ?1 AND sender_id = ?2
                 ORDER BY at DESC LIMIT 1",
            )?
            .query_row(params![adapter, owner], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Inbound, Room, SenderRef};
    use crate::db::Db;

    #[test]
    fn status_shows_roles_invites_drops_and_the_missing_owner() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        a.allow("tg", "1", Role::Member).unwrap();
        a.invite("tg", Role::Owner, false, 600).unwrap();
        let stranger = Inbound {
            sender: SenderRef {
                adapter: "tg",
                sender_id: "9",
            },
            is_bot: false,
            handle: None,
            chat_id: "9",
            room: Room::Direct,
            mentions_bot: true,
            text: "hi",
        };
        let mut memo = crate::access::Memo::default();
        for _ in 0..3 {
            a.admit_with(&stranger, &mut memo).unwrap();
        }
        a.tally(&mut memo).unwrap();
        for _ in 0..5 {
            a.pair(
                &Inbound {
                    text: "ZZZZ-ZZZZ",
                    ..stranger.clone()
                },
                None,
            )
            .unwrap();
        }
        let s = a.status(&["dc".to_string()]).unwrap();
        let tg = &s.adapters["tg"];
        assert_eq!(tg.members, ["1"]);
        assert!(tg.owners.is_empty());
        assert_eq!(tg.invites.len(), 1);
        assert_eq!(tg.drops_24h[crate::access::gate::reason::NOT_ALLOWED], 3);
        assert!(tg.warnings[0].starts_with("no owner"), "{:?}", tg.warnings);
        assert_eq!(tg.pairing_blocked.len(), 1);
        assert_eq!(tg.pairing_blocked[0].sender_id.as_deref(), Some("9"));
        assert!(s.adapters["dc"].warnings[0].contains("invite dc --owner"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["adapters"]["tg"]["invites"][0]["role"], "owner");
        assert!(json["adapters"]["tg"]["invites"][0].get("code").is_none());

        // Alerts reach an owner's direct chat once they have one.
        a.allow("tg", "2", Role::Owner).unwrap();
        assert!(a.owner_chats("tg").unwrap().is_empty());
        let warned = a.status(&[]).unwrap().adapters["tg"].warnings.clone();
        assert!(
            warned
                .iter()
                .any(|w| w.starts_with("owner 2 has not written")),
            "{warned:?}"
        );
        let owner_dm = Inbound {
            sender: SenderRef {
                adapter: "tg",
                sender_id: "2",
            },
            chat_id: "2",
            ..stranger
        };
        a.admit(&owner_dm).unwrap();
        assert_eq!(a.owner_chats("tg").unwrap(), ["2"]);
        assert!(a.status(&[]).unwrap().adapters["tg"].warnings.is_empty());
        assert_eq!(a.owner_chats("fakechat").unwrap(), ["web"]);
    }
}
