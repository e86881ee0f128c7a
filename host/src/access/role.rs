//! What an allowed sender may do.

use std::fmt;

/// An allowed sender's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// May talk to the session.
    Member,
    /// May also answer permission prompts, receive alerts and use the
    /// owner-only chat commands.
    Owner,
}

impl Role {
    /// The stable name (`owner`, `member`), as stored and as printed.
    pub fn name(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Owner => "owner",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "member" => Some(Role::Member),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_owner_outranks_member() {
        for r in [Role::Member, Role::Owner] {
            assert_eq!(Role::parse(r.name()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::parse("Owner"), None);
        assert!(Role::Owner > Role::Member);
    }
}
