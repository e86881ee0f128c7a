//! What flows from the router to the session: one sanitized [`ChannelEvent`] per inbound
//! message, and the JSON-RPC line it becomes.
//!
//! Both sides need these types: the router builds events and stores their lines in the queue,
//! MCP delivers the lines and names the method. Kept apart from both, so that the router never
//! imports `mcp` and `mcp` imports the router only for tool calls. Everything here is pure.

mod channel_event;
pub mod notification;
pub mod sanitize;

pub use channel_event::ChannelEvent;
