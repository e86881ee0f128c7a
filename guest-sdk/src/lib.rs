//! SDK for writing airlock platform adapters and message filters.
//!
//! An airlock guest is a WebAssembly component built for the
//! `wasm32-wasip2` target. It implements one of the two worlds of the
//! `airlock:channel@0.1.0` WIT package:
//!
//! * `adapter`: connects a chat platform. Implement [`Adapter`] and export it
//!   with [`export_adapter!`].
//! * `filter`: judges each message on its way in or out. Implement [`Filter`]
//!   and export it with [`export_filter!`].
//!
//! The crate also provides the host's imports at friendly paths ([`log`],
//! [`kv`], [`clock`], [`websocket`]), the WIT records in [`types`], and a
//! small blocking HTTP client over `wasi:http` in [`http`]. A guest crate
//! needs no other dependency: no `wit-bindgen`, no `cargo-component`.
//!
//! # A complete adapter in one file
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "echo-adapter"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! airlock-guest = { path = "../guest-sdk" }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use airlock_guest::types::{
//!     AdapterError, Chat, ChatKind, ChunkMode, Description, EventBatch, Features,
//!     HttpResponse, InboundEvent, InboundMessage, IncomingReply, IncomingRequest, Limits,
//!     OutboundMessage, Sender, Sent, Settings,
//! };
//! use airlock_guest::{Adapter, http, log, setting};
//! use std::sync::Mutex;
//!
//! /// Where replies go; set by `start`.
//! static REPLY_URL: Mutex<Option<String>> = Mutex::new(None);
//!
//! struct Echo;
//!
//! impl Adapter for Echo {
//!     fn describe() -> Description {
//!         Description {
//!             platform: "echo".into(),
//!             limits: Limits {
//!                 max_text_len: 2000,
//!                 chunk_mode: ChunkMode::Newline,
//!                 max_files: 0,
//!                 max_file_bytes: 0,
//!             },
//!             features: Features::empty(),
//!             instructions: vec!["You are talking through the echo adapter.".into()],
//!         }
//!     }
//!
//!     fn start(settings: Settings) -> Result<(), AdapterError> {
//!         let url = setting(&settings, "reply_url")
//!             .ok_or_else(|| AdapterError::Fatal("set `reply_url` in the config".into()))?;
//!         *REPLY_URL.lock().unwrap() = Some(url.to_string());
//!         log::info("echo adapter started");
//!         Ok(())
//!     }
//!
//!     // Each POST to the adapter's inbound route becomes one message.
//!     fn on_http_request(request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
//!         let text = String::from_utf8_lossy(&request.body).into_owned();
//!         let message = InboundMessage {
//!             chat: Chat { id: "main".into(), kind: ChatKind::Direct, title: None, parent_id: None },
//!             sender: Sender { id: "caller".into(), handle: None, display_name: None, is_bot: false },
//!             message_id: airlock_guest::now_ms().to_string(),
//!             text,
//!             ts_ms: airlock_guest::now_ms(),
//!             reply_to: None,
//!             mentions_bot: true,
//!             attachments: Vec::new(),
//!             edited: false,
//!         };
//!         Ok(IncomingReply {
//!             response: HttpResponse { status: 202, headers: Vec::new(), body: Vec::new() },
//!             batch: EventBatch { events: vec![InboundEvent::Message(message)], cursor: None },
//!         })
//!     }
//!
//!     fn send(message: OutboundMessage) -> Result<Sent, AdapterError> {
//!         let url = REPLY_URL.lock().unwrap().clone()
//!             .ok_or_else(|| AdapterError::Fatal("not started".into()))?;
//!         let response = http::Request::post(&url).body(message.text).send()?;
//!         if !response.is_success() {
//!             return Err(AdapterError::Platform(format!("HTTP {}", response.status)));
//!         }
//!         Ok(Sent { message_ids: vec![response.text()] })
//!     }
//! }
//!
//! airlock_guest::export_adapter!(Echo);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the
//! component is `target/wasm32-wasip2/release/echo_adapter.wasm`. Every
//! method of [`Adapter`] besides `describe` and `send` has a default, so an
//! adapter implements only the entry points its platform uses.
//!
//! # A filter
//!
//! ```no_run
//! use airlock_guest::Filter;
//! use airlock_guest::types::{OutboundMessage, OutboundVerdict};
//!
//! struct NoShouting;
//!
//! impl Filter for NoShouting {
//!     fn filter_outbound(message: OutboundMessage) -> OutboundVerdict {
//!         if message.text.len() > 3 && message.text == message.text.to_uppercase() {
//!             OutboundVerdict::Drop("the bot does not shout".into())
//!         } else {
//!             OutboundVerdict::Pass
//!         }
//!     }
//! }
//!
//! airlock_guest::export_filter!(NoShouting);
//! ```
//!
//! # Capabilities
//!
//! The host links an import only when the operator's grant allows it:
//! `websocket` needs a websocket grant, `wasi:http` an `outbound_http` grant,
//! `kv` a quota. A component imports only the interfaces it calls (unused
//! imports are dropped when the component is linked), so an adapter that
//! never touches [`kv`] needs no kv quota. Filters may use [`log`] and [`kv`]
//! but not [`clock`], [`websocket`] or [`http`]: the `filter` world does not
//! import them, and the host refuses a filter component that does.
//!
//! # Native builds
//!
//! The crate compiles on every target so that guest crates can be unit tested
//! and linted natively; on targets other than `wasm32` the host imports are
//! stubs that panic when called.
#![deny(missing_docs)]

// The generated bindings name this crate by its external name, so the
// export macros also work from guest crates.
extern crate self as airlock_guest;

mod adapter;
pub mod clock;
mod filter;
pub mod http;
pub mod kv;
pub mod log;
pub mod multipart;
pub mod types;
pub mod websocket;

pub use adapter::{Adapter, AdapterExport};
pub use clock::now_ms;
pub use filter::{Filter, FilterExport};
pub use types::{setting, url_setting, warn_unknown_settings};

/// Re-exported so guest crates can use JSON without their own dependency.
pub use serde_json;

/// Bindings generated from the `adapter` world. Not a stable interface: use
/// the re-exports in [`types`], [`log`], [`kv`], [`clock`] and [`websocket`].
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod adapter_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "adapter",
        pub_export_macro: true,
        export_macro_name: "__export_adapter",
        default_bindings_module: "airlock_guest::adapter_bindings",
        runtime_path: "airlock_guest::__rt",
    });
}

/// Bindings generated from the `filter` world; its shared interfaces reuse
/// the adapter world's types so that one [`types::InboundMessage`] serves both.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod filter_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "filter",
        pub_export_macro: true,
        export_macro_name: "__export_filter",
        default_bindings_module: "airlock_guest::filter_bindings",
        runtime_path: "airlock_guest::__rt",
        with: {
            "airlock:channel/types@0.1.0": crate::adapter_bindings::airlock::channel::types,
            "airlock:channel/log@0.1.0": crate::adapter_bindings::airlock::channel::log,
            "airlock:channel/kv@0.1.0": crate::adapter_bindings::airlock::channel::kv,
        },
    });
}

/// The wit-bindgen runtime, reached by the generated code.
#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

/// Exports a type implementing [`Adapter`] as the component's
/// `channel-adapter` interface.
///
/// Invoke it once, at the root of the guest crate:
///
/// ```text
/// airlock_guest::export_adapter!(MyAdapter);
/// ```
///
/// The crate must be a `cdylib` built for `wasm32-wasip2`. The macro accepts
/// any type path, including generic instantiations.
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ty) => {
        const _: () = {
            type __AirlockAdapterExport = $crate::AdapterExport<$adapter>;
            $crate::adapter_bindings::__export_adapter!(
                __AirlockAdapterExport with_types_in $crate::adapter_bindings
            );
        };
    };
}

/// Exports a type implementing [`Filter`] as the component's
/// `message-filter` interface.
///
/// Invoke it once, at the root of the guest crate:
///
/// ```text
/// airlock_guest::export_filter!(MyFilter);
/// ```
///
/// The crate must be a `cdylib` built for `wasm32-wasip2`.
#[macro_export]
macro_rules! export_filter {
    ($filter:ty) => {
        const _: () = {
            type __AirlockFilterExport = $crate::FilterExport<$filter>;
            $crate::filter_bindings::__export_filter!(
                __AirlockFilterExport with_types_in $crate::filter_bindings
            );
        };
    };
}
