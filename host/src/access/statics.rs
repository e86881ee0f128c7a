//! Static mode: the allowlists and groups of `airlock.toml`, read once when
//! airlock starts, the only source of access. Nothing at run time can add to
//! them; lockdown, kept in the database, still stops everything.

use std::collections::HashMap;

use super::gate::GroupPolicy;
use super::role::Role;
use super::store::{Allowed, OpenGroup};
use crate::manifest::AccessConfig;

/// The `[access.ADAPTER]` tables of a static config.
#[derive(Debug, Default)]
pub(crate) struct StaticAccess {
    roles: HashMap<(String, String), Role>,
    groups: HashMap<(String, String), GroupPolicy>,
}

impl StaticAccess {
    /// What `config` allows.
    pub(crate) fn from_config(config: &AccessConfig) -> Self {
        let mut out = Self::default();
        for (adapter, a) in &config.adapters {
            for id in &a.members {
                out.roles
                    .insert((adapter.clone(), id.clone()), Role::Member);
            }
            for id in &a.owners {
                out.roles.insert((adapter.clone(), id.clone()), Role::Owner);
            }
            for g in &a.groups {
                out.groups.insert(
                    (adapter.clone(), g.chat_id.clone()),
                    GroupPolicy {
                        any_sender: g.any_sender,
                        require_mention: g.require_mention,
                    },
                );
            }
        }
        out
    }

    pub(crate) fn role(&self, adapter: &str, sender_id: &str) -> Option<Role> {
        self.roles
            .get(&(adapter.to_owned(), sender_id.to_owned()))
            .copied()
    }

    pub(crate) fn group(&self, adapter: &str, chat_id: &str) -> Option<GroupPolicy> {
        self.groups
            .get(&(adapter.to_owned(), chat_id.to_owned()))
            .copied()
    }

    pub(crate) fn allowed(&self) -> Vec<Allowed> {
        let mut out: Vec<Allowed> = self
            .roles
            .iter()
            .map(|((adapter, sender_id), role)| Allowed {
                adapter: adapter.clone(),
                sender_id: sender_id.clone(),
                role: *role,
                added_at: 0,
            })
            .collect();
        out.sort_by(|a, b| (&a.adapter, &a.sender_id).cmp(&(&b.adapter, &b.sender_id)));
        out
    }

    pub(crate) fn groups(&self) -> Vec<OpenGroup> {
        let mut out: Vec<OpenGroup> = self
            .groups
            .iter()
            .map(|((adapter, chat_id), policy)| OpenGroup {
                adapter: adapter.clone(),
                chat_id: chat_id.clone(),
                policy: *policy,
            })
            .collect();
        out.sort_by(|a, b| (&a.adapter, &a.chat_id).cmp(&(&b.adapter, &b.chat_id)));
        out
    }
}
