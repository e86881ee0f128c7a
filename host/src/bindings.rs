//! Host-side bindings generated from `wit/`.
//!
//! Kept in one place so the rest of the host names WIT types through stable
//! paths (`bindings::types::*`), as wasmtime's own `p2::bindings` does.
#![allow(missing_docs)]

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "adapter",
        imports: {
            // Resolves (and checks) the destination before returning an id.
            "airlock:channel/websocket.connect": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

mod filter_generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "filter",
        imports: { default: trappable },
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
        with: {
            "airlock:channel/types": super::generated::airlock::channel::types,
            "airlock:channel/log": super::generated::airlock::channel::log,
            "airlock:channel/kv": super::generated::airlock::channel::kv,
        },
    });
}

pub use filter_generated::exports::airlock::channel::message_filter;
pub use filter_generated::{Filter, FilterPre};
pub use generated::airlock::channel::{clock, kv, log, types, websocket};
pub use generated::exports::airlock::channel::channel_adapter;
pub use generated::{Adapter, AdapterPre};
