//! airlock: a capability-restricted host for chat-platform adapters.
pub mod caps;
pub mod manifest;
