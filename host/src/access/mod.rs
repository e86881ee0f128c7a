//! Who may reach the session, and which chats the session may answer.
//!
//! Default closed: a message is delivered only if its sender is allowed on
//! the adapter, as an owner or a member. Everyone else is dropped silently,
//! and the drop is remembered (without its content beyond the first words)
//! so the operator can allow the right sender from the terminal. The bot
//! never answers a stranger, and never hands out a code: the terminal
//! issues invites (`pairing`), and a person pairs by sending one to the bot.
//!
//! Access lives in the database and is read on every decision, so a change
//! in another process (`airlock access …`) applies before the next message
//! is delivered or sent; each change bumps a revision, and an event stored
//! before a change is checked again when it is delivered. No MCP tool can
//! change access. In static mode (`[access] static = true`) the allowlists
//! and groups come from `airlock.toml` alone (`statics`); lockdown works in
//! both modes.
//!
//! Groups are closed until the operator opens one from the terminal or a
//! group invite, for allowed senders or any member, with or without the
//! rule that a message must mention the bot.

mod alert_log;
mod error;
pub(crate) mod gate;
pub(crate) mod guess;
pub(crate) mod invite;
mod known;
mod lockdown;
mod pairing;
mod revoke;
mod role;
mod statics;
mod status;
mod store;

pub use alert_log::Recorded;
pub use error::AccessError;
pub use gate::{Decision, GroupPolicy, SenderRef, implicit_allow};
pub use lockdown::{Lockdown, LockedDown, Unlocked};
pub use pairing::{DEFAULT_TTL, GROUP_DEFAULT, Invite, Issued, MAX_INVITES, MAX_TTL, Pairing};
pub use revoke::Revoked;
pub use role::Role;
pub use status::{AdapterStatus, GroupStatus, LockdownStatus, NO_OWNER, PairingBlock, Status};
pub(crate) use store::now;
pub use store::{AccessStore, Allowed, Dropped, Inbound, Memo, OpenGroup, Outbound, Room};
