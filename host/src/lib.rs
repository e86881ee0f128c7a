//! airlock: a Claude Code channel server whose platform adapters and message
//! filters run as capability-restricted WebAssembly components.
//!
//! The trusted core (this crate) owns all I/O, policy and state; components
//! get exactly the interfaces their grant allows. See `ARCHITECTURE.md` for
//! the map.
#![warn(missing_docs)]

pub mod access;
pub mod approvals;
pub mod backoff;
pub mod bindings;
pub mod caps;
pub mod catalog;
pub mod cli;
pub mod db;
pub mod event;
pub mod home;
pub mod host;
pub mod host_event;
pub mod logging;
pub mod manifest;
pub mod mcp;
pub mod net;
pub mod platform_lock;
pub mod queue;
pub mod router;
pub mod runtime;
pub mod secrets;
pub mod serve;
pub mod sources;
pub mod text;
pub(crate) mod warn_budget;
