//! Host-owned loops that feed adapters raw input: the local HTTP listener
//! and the long-poll; and the pump that stores what adapters produce on
//! their own. They drive an adapter through its actor handle, so they
//! live here and not in `caps`, which only implements what a component
//! imports.

pub mod inbound_http;
pub mod poll;
pub mod pump;
