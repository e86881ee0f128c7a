//! Who may reach the session, and which chats the session may answer.
//!
//! Default closed: a message is delivered only if its sender is on the
//! adapter's allowlist. Everyone else is dropped silently, and the drop is
//! remembered (without its content beyond the first words) so the operator
//! can allow the right sender from the terminal. The allowlist lives in the
//! database and is read on every decision, so `airlock access allow` in
//! another process takes effect at once. No MCP tool can change it.
//!
//! Groups are closed until the operator opens one from the terminal
//! (`airlock access group open`), for allowlisted senders or any member,
//! with or without the rule that a message must mention the bot.
//!
//! Built to grow: pairing and owners come later as further rules in
//! `gate` and further tables here.

pub(crate) mod gate;
mod store;

pub use gate::{Decision, GroupPolicy, SenderRef, implicit_allow};
pub use store::{AccessStore, Allowed, Dropped, Inbound, Memo, OpenGroup, Room};
