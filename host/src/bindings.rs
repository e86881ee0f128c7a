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

/// Values of the contract's types for unit tests.
#[cfg(test)]
pub(crate) mod test_values {
    use super::types::{Chat, ChatKind, InboundMessage, Sender};

    /// A message `id` saying `text` in the direct chat `chat`, from sender
    /// `1`, mentioning the bot; no time, reply, attachment or edit.
    pub(crate) fn direct_message(chat: &str, id: &str, text: &str) -> InboundMessage {
        InboundMessage {
            chat: Chat {
                id: chat.into(),
                kind: ChatKind::Direct,
                title: None,
                parent_id: None,
            },
            sender: Sender {
                id: "1".into(),
                handle: None,
                display_name: None,
                is_bot: false,
            },
            message_id: id.into(),
            text: text.into(),
            ts_ms: 0,
            reply_to: None,
            mentions_bot: true,
            attachments: Vec::new(),
            edited: false,
        }
    }
}
