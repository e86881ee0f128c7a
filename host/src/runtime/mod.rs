//! The component runtime: one engine, a compiled-component cache, linkers
//! built per grant, and an actor per adapter instance.
//!
//! Loading goes: bytes → refuse precompiled artefacts → compile or load from
//! cache → check every import against the grant → link exactly what the grant
//! allows → pre-instantiate once. Calls then run on the actor, each under a
//! CPU budget and a wall-clock timeout; a trap discards the instance.

pub mod actor;
pub(crate) mod budget;
pub mod cache;
pub mod call_error;
pub(crate) mod engine;
pub(crate) mod filter;
pub(crate) mod filter_pool;
pub(crate) mod heap;
pub(crate) mod imports;
pub(crate) mod limiter;
pub(crate) mod linker;
pub(crate) mod load;
pub(crate) mod state;
