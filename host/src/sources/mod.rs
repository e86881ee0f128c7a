//! Host-owned loops that feed adapters raw input: the local HTTP listener
//! and the long-poll. They drive an adapter through its actor handle, so they
//! live here and not in `caps`, which only implements what a component
//! imports.

pub mod inbound_http;
pub mod poll;
