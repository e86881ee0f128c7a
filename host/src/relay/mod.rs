//! The permission relay: Claude Code's permission prompts answered from
//! chat, by owners only.
//!
//! Claude Code asks a channel server that declares
//! `claude/channel/permission` whenever a tool call needs approval; the
//! terminal dialog stays open and the first answer wins. This module holds
//! what the relay decides and keeps, apart from who runs it: the request's
//! checks (`request.rs`), the verdict's wire shape, the text path and the
//! buttons' data (`verdict.rs`), what owners read, inert whatever the
//! request held (`render.rs`), which tools a rule may cover (`policy.rs`),
//! and the prompts, copies and rules in SQLite (`store.rs`). The router
//! sends and edits the messages; the MCP server carries requests in and
//! verdicts out.

pub mod notice;
pub mod policy;
pub mod render;
pub mod request;
pub mod store;
pub mod verdict;

pub use request::PermissionRequest;
pub use store::RelayStore;
