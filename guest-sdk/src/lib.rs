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
//! The SDK owns the component's instance: `start` (or a filter's
//! `configure`) decodes the operator's settings into the component's own
//! settings struct ([`settings`]), builds the adapter from them, and every
//! later call borrows it as `&mut self`. Calls that arrive before `start`
//! are answered by the SDK. Setting keys that start with `airlock.` are the
//! host's, not the operator's: decoding skips them, and the one the SDK
//! reads, `airlock.role`, reaches the adapter as a [`Role`] through
//! [`Adapter::start_with_role`] (an instance that only sends, while another
//! process holds the platform connection).
//!
//! The crate also provides the host's imports at friendly paths ([`log`],
//! [`kv`], [`clock`], [`websocket`]), the WIT records in [`types`], a small
//! blocking HTTP client over `wasi:http` in [`http`], and the helpers most
//! adapters need: [`percent`]-encoding, one-line excerpts in [`text`], and
//! multipart bodies in [`multipart`]. A guest crate needs `serde` (for its
//! settings struct) and nothing else: no `wit-bindgen`, no
//! `cargo-component`.
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
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use airlock_guest::settings::HttpUrl;
//! use airlock_guest::types::{
//!     AdapterError, Chat, ChatKind, ChunkMode, Description, EventBatch, Features,
//!     HttpResponse, InboundEvent, InboundMessage, IncomingReply, IncomingRequest, Limits,
//!     OutboundMessage, Sender, Sent,
//! };
//! use airlock_guest::{Adapter, http, log};
//!
//! /// What the operator may set: `settings = { reply_url = "https://…" }`.
//! /// Any other key is refused at start, by name.
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     reply_url: HttpUrl,
//! }
//!
//! /// The one instance; the SDK keeps it between calls.
//! struct Echo {
//!     reply_url: HttpUrl,
//! }
//!
//! impl Adapter for Echo {
//!     type Settings = Settings;
//!
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
//!     fn start(settings: Settings) -> Result<Self, AdapterError> {
//!         log::info("echo adapter started");
//!         Ok(Echo { reply_url: settings.reply_url })
//!     }
//!
//!     // Each POST to the adapter's inbound route becomes one message.
//!     fn on_http_request(&mut self, request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
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
//!     fn send(&mut self, message: OutboundMessage) -> Result<Sent, AdapterError> {
//!         let response = http::Request::post(self.reply_url.as_str()).body(message.text).send()?;
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
//! handler of [`Adapter`] besides `send` has a default, so an adapter
//! implements only the entry points its platform uses.
//!
//! A reply URL that needs a credential gets it from the host, not from the
//! adapter: the component's manifest binds a secret to the destination
//! (`[[secrets]]` with, say, `header = "Authorization"` and
//! `value = "Bearer {secret}"`), and the host adds the header to requests for
//! that destination. `{secret}` is the manifest's template for the value;
//! the adapter never writes it and never sees the secret.
//!
//! # A filter
//!
//! ```no_run
//! use airlock_guest::Filter;
//! use airlock_guest::settings::NoSettings;
//! use airlock_guest::types::{OutboundMessage, OutboundVerdict};
//!
//! struct NoShouting;
//!
//! impl Filter for NoShouting {
//!     type Settings = NoSettings;
//!
//!     fn configure(_: NoSettings) -> Result<Self, String> {
//!         Ok(NoShouting)
//!     }
//!
//!     fn filter_outbound(&self, message: OutboundMessage) -> OutboundVerdict {
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
pub mod percent;
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod saved_inputs;
pub mod settings;
pub mod text;
pub mod types;
pub mod websocket;

pub use adapter::{Adapter, Role};
#[doc(hidden)]
pub use adapter::{AdapterExport, AdapterSlot};
pub use clock::now_ms;
pub use filter::Filter;
#[doc(hidden)]
pub use filter::{FilterExport, FilterSlot};

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
/// `channel-adapter` interface, and declares the one slot that holds its
/// instance between calls.
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
            /// The component's adapter instance (components run on one thread).
            struct __AirlockSlot;
            ::std::thread_local! {
                static __AIRLOCK_INSTANCE: ::core::cell::RefCell<::core::option::Option<$adapter>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }
            impl $crate::AdapterSlot for __AirlockSlot {
                type Adapter = $adapter;
                fn with<R>(f: impl FnOnce(&mut ::core::option::Option<$adapter>) -> R) -> R {
                    __AIRLOCK_INSTANCE.with_borrow_mut(f)
                }
            }
            type __AirlockAdapterExport = $crate::AdapterExport<__AirlockSlot>;
            $crate::adapter_bindings::__export_adapter!(
                __AirlockAdapterExport with_types_in $crate::adapter_bindings
            );
        };
    };
}

/// Exports a type implementing [`Filter`] as the component's
/// `message-filter` interface, and declares the slot that holds its
/// configured instance.
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
            /// The component's filter instance (components run on one thread).
            struct __AirlockSlot;
            ::std::thread_local! {
                static __AIRLOCK_INSTANCE: ::core::cell::RefCell<::core::option::Option<$filter>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }
            impl $crate::FilterSlot for __AirlockSlot {
                type Filter = $filter;
                fn with<R>(f: impl FnOnce(&mut ::core::option::Option<$filter>) -> R) -> R {
                    __AIRLOCK_INSTANCE.with_borrow_mut(f)
                }
            }
            type __AirlockFilterExport = $crate::FilterExport<__AirlockSlot>;
            $crate::filter_bindings::__export_filter!(
                __AirlockFilterExport with_types_in $crate::filter_bindings
            );
        };
    };
}
