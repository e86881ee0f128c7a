//! What this process has read of the access tables, valid while the access
//! revision stays the one it was read under.
//!
//! Every change to the allowlists, the groups or lockdown bumps the
//! revision in the same transaction (triggers in `db.rs`), whichever process
//! makes it. A decision reads the revision first, in the query it needs
//! anyway (`begin_batch`, `outbound`); while it is unchanged, roles and
//! group policies come from here instead of one read transaction each. When
//! it moves, everything here is forgotten before the decision goes on, so a
//! change in another terminal applies to the next message or send exactly
//! as before. An entry read just after a change but filed under the older
//! revision is dropped at the next read, which sees the newer one.

use std::collections::HashMap;

use super::gate::GroupPolicy;
use super::role::Role;

/// Lookups filed under one access revision.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// The revision the entries were read under.
    rev: Option<i64>,
    roles: Entries<Option<Role>>,
    groups: Entries<Option<GroupPolicy>>,
}

/// Entries kept at most; past it the map starts again (a bot with more
/// senders than this pays one read per sender, as without the cache).
const MAX_ENTRIES: usize = 4096;

/// One kind of lookup, by adapter and platform id.
#[derive(Debug)]
struct Entries<V>(HashMap<(String, String), V>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<V: Copy> Entries<V> {
    fn get(&self, adapter: &str, id: &str) -> Option<V> {
        self.0.get(&(adapter.to_owned(), id.to_owned())).copied()
    }

    fn set(&mut self, adapter: &str, id: &str, value: V) {
        if self.0.len() >= MAX_ENTRIES {
            self.0.clear();
        }
        self.0.insert((adapter.to_owned(), id.to_owned()), value);
    }
}

impl Known {
    /// The revision is `rev` now: forgets everything read under another.
    /// True when it differs from the one known (the first one included).
    pub(super) fn at(&mut self, rev: i64) -> bool {
        if self.rev == Some(rev) {
            return false;
        }
        self.rev = Some(rev);
        self.roles.0.clear();
        self.groups.0.clear();
        true
    }

    /// Whether entries filed under `rev` hold now.
    fn holds(&self, rev: i64) -> bool {
        self.rev == Some(rev)
    }

    /// The role of `sender_id` on `adapter`, if known under `rev`.
    pub(super) fn role(&self, rev: i64, adapter: &str, sender_id: &str) -> Option<Option<Role>> {
        self.holds(rev)
            .then(|| self.roles.get(adapter, sender_id))
            .flatten()
    }

    /// Files the role read for `sender_id` under `rev`.
    pub(super) fn set_role(
        &mut self,
        rev: i64,
        adapter: &str,
        sender_id: &str,
        role: Option<Role>,
    ) {
        if self.holds(rev) {
            self.roles.set(adapter, sender_id, role);
        }
    }

    /// The policy of group `chat_id` on `adapter`, if known under `rev`.
    pub(super) fn group(
        &self,
        rev: i64,
        adapter: &str,
        chat_id: &str,
    ) -> Option<Option<GroupPolicy>> {
        self.holds(rev)
            .then(|| self.groups.get(adapter, chat_id))
            .flatten()
    }

    /// Files the policy read for `chat_id` under `rev`.
    pub(super) fn set_group(
        &mut self,
        rev: i64,
        adapter: &str,
        chat_id: &str,
        policy: Option<GroupPolicy>,
    ) {
        if self.holds(rev) {
            self.groups.set(adapter, chat_id, policy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hold_only_under_the_revision_they_were_read_under() {
        const POLICY: GroupPolicy = GroupPolicy {
            any_sender: true,
            require_mention: false,
        };
        type Case = (&'static str, fn(&mut Known) -> bool);
        let cases: &[Case] = &[
            ("nothing is known before a revision is read", |k| {
                k.role(1, "tg", "7").is_none()
            }),
            ("a role filed under 1 is known under 1", |k| {
                k.at(1);
                k.set_role(1, "tg", "7", Some(Role::Owner));
                k.role(1, "tg", "7") == Some(Some(Role::Owner))
            }),
            ("an absence is known too", |k| {
                k.at(1);
                k.set_role(1, "tg", "8", None);
                k.role(1, "tg", "8") == Some(None)
            }),
            ("not under another revision", |k| {
                k.at(1);
                k.set_role(1, "tg", "7", Some(Role::Owner));
                k.role(2, "tg", "7").is_none()
            }),
            ("a move forgets everything", |k| {
                k.at(1);
                k.set_role(1, "tg", "7", Some(Role::Owner));
                k.set_group(1, "tg", "-5", None);
                k.at(2) && k.role(2, "tg", "7").is_none() && k.group(2, "tg", "-5").is_none()
            }),
            ("the first revision counts as a move", |k| k.at(3)),
            ("the same revision again is not a move", |k| {
                k.at(3);
                !k.at(3)
            }),
            ("a read filed under a stale revision is not kept", |k| {
                k.at(2);
                k.set_role(1, "tg", "7", Some(Role::Owner));
                k.role(2, "tg", "7").is_none()
            }),
            ("groups likewise", |k| {
                k.at(1);
                k.set_group(1, "tg", "-5", Some(POLICY));
                k.group(1, "tg", "-5") == Some(Some(POLICY)) && k.group(1, "dc", "-5").is_none()
            }),
            ("a full map starts again", |k| {
                k.at(1);
                for i in 0..MAX_ENTRIES + 1 {
                    k.set_role(1, "tg", &i.to_string(), None);
                }
                k.roles.0.len() == 1
            }),
        ];
        for (what, case) in cases {
            assert!(case(&mut Known::default()), "{what}");
        }
    }
}
