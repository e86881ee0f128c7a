//! airlock: a Claude Code channel server whose platform adapters and message
//! filters run as capability-restricted WebAssembly components.
//!
//! The trusted core (this crate) owns all I/O, policy and state; components
//! get exactly the interfaces their grant allows. See `ARCHITECTURE.md` for
//! the map.
#![warn(missing_docs)]

pub mod access;
pub(crate) mod alert;
pub mod approvals;
pub(crate) mod audit;
pub(crate) mod backoff;
pub mod bindings;
pub mod caps;
pub mod catalog;
pub mod cli;
pub(crate) mod db;
pub(crate) mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod home;
pub mod host;
pub(crate) mod host_event;
pub(crate) mod hub;
pub(crate) mod logging;
pub(crate) mod manifest;
pub(crate) mod mcp;
pub(crate) mod net;
pub(crate) mod pid_lock;
pub(crate) mod platform_lock;
pub(crate) mod queue;
pub(crate) mod relay;
pub(crate) mod router;
pub mod runtime;
pub mod secrets;
pub mod serve;
pub(crate) mod sources;
pub(crate) mod text;
pub(crate) mod warn_budget;
