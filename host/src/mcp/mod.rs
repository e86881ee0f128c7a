//! The MCP side: Claude Code's channel contract over stdio.
//!
//! airlock declares `experimental["claude/channel"]`, pushes inbound chat
//! messages as `notifications/claude/channel`, and serves `reply`,
//! `edit_message` and (where an adapter can) `react` as tools. When an owner
//! can answer, it also declares `claude/channel/permission`: permission
//! requests go to the router's relay and verdicts come back through the one
//! writer of stdout. It negotiates
//! a protocol revision no newer than 2025-11-25 and refuses `server/discover`,
//! because Claude Code does not register a server that completes the newer
//! handshake as a channel.

pub mod instructions;
pub mod ledger;
mod pipe_probe;
mod server;
pub mod stdin;
pub mod stdio;
mod tool_record;
pub mod tools;
pub mod writer;

pub use server::ChannelServer;
