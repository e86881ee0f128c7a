//! The [`Adapter`] trait and its bridge to the generated `channel-adapter`
//! export.
//!
//! The SDK owns the adapter's one instance: [`export_adapter!`](crate::export_adapter)
//! declares the slot that holds it, `start` fills it with what
//! [`Adapter::start`] returns, and every handler borrows it. An adapter
//! therefore keeps its state in `self`, with no statics or locks of its own,
//! and never has to answer a call that arrives before `start`: the SDK does.

use core::marker::PhantomData;

use serde::de::{self, DeserializeOwned};

use crate::adapter_bindings::exports::airlock::channel::channel_adapter::Guest;
use crate::settings::SettingsError;
use crate::types::{
    AdapterError, AttachmentData, AttachmentRequest, Connection, Description, EditRequest,
    EventBatch, HistoryEntry, HistoryRequest, HttpRequest, HttpResponse, IncomingReply,
    IncomingRequest, OutboundMessage, ReactRequest, Sent, Settings, WsEvent,
};

/// A chat-platform adapter: the `channel-adapter` interface of the
/// `airlock:channel` WIT package.
///
/// The host keeps one instance of the component per adapter. The SDK turns
/// the operator's settings into [`Adapter::Settings`], calls
/// [`start`](Adapter::start), keeps the value it returns, and hands it to
/// every later handler as `&mut self`. A call that reaches the component
/// before `start` succeeded is answered by the SDK: `fatal("the NAME adapter
/// was not started")`, or `None` from [`poll_request`](Adapter::poll_request).
/// The host starts every adapter before it calls anything else, and starts
/// a replacement instance with the same settings after a crash.
///
/// The host may also call `start` again on a running component, to change
/// the instance's [`Role`]: when another process owns the platform
/// connection the host starts this one as [`Role::Outbound`], and starts it
/// again as [`Role::Owner`] when it takes the connection over. Each
/// successful start replaces the instance (the old one is dropped); see
/// [`start_with_role`](Adapter::start_with_role).
///
/// The host owns every loop (long-poll, websocket, inbound HTTP, timers) and
/// calls these short handlers; each call runs under a CPU budget and a
/// wall-clock timeout, so never block for long.
///
/// [`describe`](Adapter::describe), [`start`](Adapter::start) and
/// [`send`](Adapter::send) are required. The defaults are:
///
/// * [`poll_request`](Adapter::poll_request): `None` (the adapter does not
///   long-poll).
/// * The event handlers [`on_poll_response`](Adapter::on_poll_response),
///   [`on_ws_event`](Adapter::on_ws_event),
///   [`on_http_request`](Adapter::on_http_request) and
///   [`on_timer`](Adapter::on_timer): `Err(AdapterError::Unsupported(..))`.
///   The host calls them only for sources the adapter set up itself (a poll
///   request, a websocket, a timer) or for an inbound route its manifest
///   declares, so reaching a default is an adapter bug; an error makes it
///   visible, where an empty batch would silently drop input.
/// * The optional operations [`react`](Adapter::react),
///   [`edit`](Adapter::edit), [`typing`](Adapter::typing),
///   [`fetch_history`](Adapter::fetch_history) and
///   [`download_attachment`](Adapter::download_attachment):
///   `Err(AdapterError::Unsupported(..))` naming the operation. Advertise the
///   ones you implement in [`Description::features`].
pub trait Adapter: Sized + 'static {
    /// The settings the adapter reads: a `serde` struct marked
    /// `#[serde(deny_unknown_fields)]`, so that a key the adapter does not
    /// know is refused at start, by name (see [`crate::settings`]). Use
    /// [`NoSettings`](crate::settings::NoSettings) for none.
    type Settings: DeserializeOwned;

    /// Name, limits, features and instruction lines. Must not do I/O; the
    /// host also calls it on an instance that was never started.
    fn describe() -> Description;

    /// Builds the instance from the operator's settings; called before any
    /// handler but `describe`. The adapter may open websockets, set timers
    /// and call its platform here. An error leaves the previous instance (if
    /// any) in place and is reported to the operator; say what to fix.
    fn start(settings: Self::Settings) -> Result<Self, AdapterError>;

    /// Builds the instance for `role`; this is what the SDK calls. The
    /// default ignores the role and calls [`start`](Adapter::start), which
    /// suits an adapter whose inbound connection the host drives (a
    /// long-poll, an inbound route): the host simply does not drive it for
    /// an outbound instance.
    ///
    /// Override it when `start` opens the connection itself (a websocket):
    /// for [`Role::Outbound`], set up what sending needs and open nothing
    /// inbound. The host calls `start` again with [`Role::Owner`] if this
    /// process takes the connection over, and that new instance opens it.
    fn start_with_role(settings: Self::Settings, role: Role) -> Result<Self, AdapterError> {
        let _ = role;
        Self::start(settings)
    }

    /// The next long-poll request, given the last committed cursor; `None`
    /// means this adapter does not poll (the default).
    ///
    /// The host also calls it once right after every successful
    /// [`start`](Adapter::start) of an instance, with the last cursor stored
    /// for this adapter, before any websocket event or timer reaches the
    /// instance; the answer is dropped. An adapter that does not poll but
    /// returns a cursor with its batches (a gateway session's id and
    /// sequence number) learns here where the previous process stopped, and
    /// can resume from it. Keep what was learned when a later call passes
    /// `None`.
    fn poll_request(&mut self, cursor: Option<String>) -> Option<HttpRequest> {
        let _ = cursor;
        None
    }

    /// Decodes a long-poll response into events and the cursor to commit.
    /// Default: `Unsupported`.
    fn on_poll_response(&mut self, response: HttpResponse) -> Result<EventBatch, AdapterError> {
        let _ = response;
        Err(unsupported("on_poll_response"))
    }

    /// A frame or state change on a websocket the adapter opened.
    /// Default: `Unsupported`.
    fn on_ws_event(
        &mut self,
        conn: Connection,
        event: WsEvent,
    ) -> Result<EventBatch, AdapterError> {
        let _ = (conn, event);
        Err(unsupported("on_ws_event"))
    }

    /// A request on the adapter's inbound HTTP route. The reply's response
    /// goes back to the caller; its batch is delivered. Default: `Unsupported`.
    fn on_http_request(&mut self, request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
        let _ = request;
        Err(unsupported("on_http_request"))
    }

    /// A timer set with [`crate::clock::set_timer`] fired. Default: `Unsupported`.
    fn on_timer(&mut self, name: String) -> Result<EventBatch, AdapterError> {
        let _ = name;
        Err(unsupported("on_timer"))
    }

    /// Sends a message (already chunked to the adapter's limits and passed
    /// through the host's outbound gate and filters); returns the ids of the
    /// platform messages it produced.
    fn send(&mut self, message: OutboundMessage) -> Result<Sent, AdapterError>;

    /// Adds a reaction to a message. Default: `Unsupported`.
    fn react(&mut self, request: ReactRequest) -> Result<(), AdapterError> {
        let _ = request;
        Err(unsupported("react"))
    }

    /// Replaces the text of a message the bot sent. Default: `Unsupported`.
    fn edit(&mut self, request: EditRequest) -> Result<(), AdapterError> {
        let _ = request;
        Err(unsupported("edit"))
    }

    /// Shows a typing indicator in a chat. Default: `Unsupported`.
    fn typing(&mut self, chat_id: String) -> Result<(), AdapterError> {
        let _ = chat_id;
        Err(unsupported("typing"))
    }

    /// Recent messages of a chat, oldest first. Default: `Unsupported`.
    fn fetch_history(
        &mut self,
        request: HistoryRequest,
    ) -> Result<Vec<HistoryEntry>, AdapterError> {
        let _ = request;
        Err(unsupported("fetch_history"))
    }

    /// The bytes of an inbound attachment. Default: `Unsupported`.
    fn download_attachment(
        &mut self,
        request: AttachmentRequest,
    ) -> Result<AttachmentData, AdapterError> {
        let _ = request;
        Err(unsupported("download_attachment"))
    }
}

/// What an adapter instance does with the platform connection, as the host
/// says in the reserved setting [`airlock.role`](crate::settings::ROLE_KEY).
///
/// Several airlock processes may share one bot. Exactly one of them owns
/// the platform connection (it polls, holds the gateway, serves the port);
/// the others still send through their own instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Holds the platform connection: receives and sends. What an instance
    /// is when the host names no role (`airlock.role` absent or `owner`).
    #[default]
    Owner,
    /// Sends only (`airlock.role = "outbound"`): messages, edits, reactions,
    /// typing, history and downloads work; the instance opens no inbound
    /// connection, because another process holds it.
    Outbound,
}

impl Role {
    /// The role the host's settings give; an unknown value or a repeated
    /// key is refused, since an instance cannot honour a role it does not
    /// know.
    pub fn from_settings(settings: &Settings) -> Result<Role, SettingsError> {
        let mut given = settings
            .iter()
            .filter(|(key, _)| key == crate::settings::ROLE_KEY);
        let role = match given.next() {
            None => return Ok(Role::Owner),
            Some((_, value)) => match value.trim() {
                "owner" => Role::Owner,
                "outbound" => Role::Outbound,
                other => {
                    return Err(de::Error::custom(format!(
                        "setting `{}`: unknown role {other:?}; the roles are `owner`, `outbound`",
                        crate::settings::ROLE_KEY
                    )));
                }
            },
        };
        if given.next().is_some() {
            return Err(de::Error::duplicate_field(crate::settings::ROLE_KEY));
        }
        Ok(role)
    }
}

fn unsupported(operation: &str) -> AdapterError {
    AdapterError::Unsupported(format!("{operation} is not implemented by this adapter"))
}

/// The slot that holds a component's one adapter instance. Implemented by
/// [`export_adapter!`](crate::export_adapter) for a type of its own, over a
/// static it declares; not meant to be implemented by hand.
#[doc(hidden)]
pub trait AdapterSlot: 'static {
    /// The adapter the slot holds.
    type Adapter: Adapter;

    /// Runs `f` on the slot (`None` until `start` filled it).
    fn with<R>(f: impl FnOnce(&mut Option<Self::Adapter>) -> R) -> R;
}

/// Runs `f` on the instance in slot `S`; `None` when `start` has not made
/// one.
fn with_instance<S: AdapterSlot, R>(f: impl FnOnce(&mut S::Adapter) -> R) -> Option<R> {
    S::with(|slot| slot.as_mut().map(f))
}

/// Like [`with_instance`] for a handler with an error: "not started" when
/// there is no instance.
fn with_started<S: AdapterSlot, R>(
    f: impl FnOnce(&mut S::Adapter) -> Result<R, AdapterError>,
) -> Result<R, AdapterError> {
    with_instance::<S, _>(f).unwrap_or_else(|| {
        Err(AdapterError::Fatal(format!(
            "the {} adapter was not started",
            S::Adapter::describe().platform
        )))
    })
}

/// Bridges the adapter in slot `S` to the generated export trait. Used by
/// [`export_adapter!`](crate::export_adapter); not meant to be named directly.
#[doc(hidden)]
pub struct AdapterExport<S>(PhantomData<fn() -> S>);

impl<S: AdapterSlot> Guest for AdapterExport<S> {
    fn describe() -> Description {
        S::Adapter::describe()
    }
    fn start(settings: Settings) -> Result<(), AdapterError> {
        let fatal = |e: SettingsError| AdapterError::Fatal(e.to_string());
        let role = Role::from_settings(&settings).map_err(fatal)?;
        let settings = crate::settings::decode(&settings).map_err(fatal)?;
        let adapter = S::Adapter::start_with_role(settings, role)?;
        S::with(|slot| *slot = Some(adapter));
        Ok(())
    }
    fn poll_request(cursor: Option<String>) -> Option<HttpRequest> {
        with_instance::<S, _>(|a| a.poll_request(cursor)).flatten()
    }
    fn on_poll_response(response: HttpResponse) -> Result<EventBatch, AdapterError> {
        with_started::<S, _>(|a| a.on_poll_response(response))
    }
    fn on_ws_event(conn: Connection, event: WsEvent) -> Result<EventBatch, AdapterError> {
        with_started::<S, _>(|a| a.on_ws_event(conn, event))
    }
    fn on_http_request(request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
        with_started::<S, _>(|a| a.on_http_request(request))
    }
    fn on_timer(name: String) -> Result<EventBatch, AdapterError> {
        with_started::<S, _>(|a| a.on_timer(name))
    }
    fn send(message: OutboundMessage) -> Result<Sent, AdapterError> {
        with_started::<S, _>(|a| a.send(message))
    }
    fn react(request: ReactRequest) -> Result<(), AdapterError> {
        with_started::<S, _>(|a| a.react(request))
    }
    fn edit(request: EditRequest) -> Result<(), AdapterError> {
        with_started::<S, _>(|a| a.edit(request))
    }
    fn typing(chat_id: String) -> Result<(), AdapterError> {
        with_started::<S, _>(|a| a.typing(chat_id))
    }
    fn fetch_history(request: HistoryRequest) -> Result<Vec<HistoryEntry>, AdapterError> {
        with_started::<S, _>(|a| a.fetch_history(request))
    }
    fn download_attachment(request: AttachmentRequest) -> Result<AttachmentData, AdapterError> {
        with_started::<S, _>(|a| a.download_attachment(request))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Counts sends.
    struct Counter {
        sent: u32,
    }

    thread_local! {
        static SLOT: RefCell<Option<Counter>> = const { RefCell::new(None) };
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CounterSettings {
        first: Option<u32>,
    }

    impl Adapter for Counter {
        type Settings = CounterSettings;
        fn describe() -> Description {
            Description::text_only("counter", 100)
        }
        fn start(settings: CounterSettings) -> Result<Self, AdapterError> {
            match settings.first {
                Some(0) => Err(AdapterError::Fatal("zero".into())),
                first => Ok(Counter {
                    sent: first.unwrap_or(0),
                }),
            }
        }
        fn send(&mut self, _: OutboundMessage) -> Result<Sent, AdapterError> {
            self.sent += 1;
            Ok(Sent::one(self.sent.to_string()))
        }
    }

    struct Slot;
    impl AdapterSlot for Slot {
        type Adapter = Counter;
        fn with<R>(f: impl FnOnce(&mut Option<Counter>) -> R) -> R {
            SLOT.with_borrow_mut(f)
        }
    }

    type Export = AdapterExport<Slot>;

    fn message() -> OutboundMessage {
        OutboundMessage {
            chat_id: "c".into(),
            text: "t".into(),
            reply_to: None,
            format: crate::types::TextFormat::Plain,
            buttons: Vec::new(),
            files: Vec::new(),
        }
    }

    fn sent(result: Result<Sent, AdapterError>) -> String {
        result.unwrap().message_ids.concat()
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_sdk_holds_the_instance_and_answers_calls_before_start() {
        match Export::send(message()) {
            Err(AdapterError::Fatal(m)) => assert_eq!(m, "the counter adapter was not started"),
            other => panic!("{other:?}"),
        }
        assert!(Export::poll_request(None).is_none());
        assert!(matches!(
            Export::on_timer("t".into()),
            Err(AdapterError::Fatal(_))
        ));

        Export::start(settings(&[("first", "5")])).unwrap();
        assert_eq!(sent(Export::send(message())), "6");
        assert_eq!(sent(Export::send(message())), "7");
        assert!(matches!(
            Export::on_timer("t".into()),
            Err(AdapterError::Unsupported(_))
        ));

        // A refused start keeps the running instance.
        match Export::start(settings(&[("frist", "1")])) {
            Err(AdapterError::Fatal(m)) => {
                assert_eq!(m, "unknown setting `frist`; the settings are `first`")
            }
            other => panic!("{other:?}"),
        }
        assert!(Export::start(settings(&[("first", "0")])).is_err());
        assert_eq!(sent(Export::send(message())), "8");

        // A new start replaces it.
        Export::start(Vec::new()).unwrap();
        assert_eq!(sent(Export::send(message())), "1");

        // The host's reserved keys pass settings that deny unknown fields;
        // an adapter that ignores the role starts as it always does.
        Export::start(settings(&[("first", "2"), ("airlock.role", "outbound")])).unwrap();
        assert_eq!(sent(Export::send(message())), "3");
    }

    /// Remembers the role it was started with and how many starts it saw.
    struct Roles {
        role: Role,
        generation: u32,
    }

    thread_local! {
        static ROLES: RefCell<Option<Roles>> = const { RefCell::new(None) };
    }

    impl Adapter for Roles {
        type Settings = crate::settings::NoSettings;
        fn describe() -> Description {
            Description::text_only("roles", 100)
        }
        fn start(settings: Self::Settings) -> Result<Self, AdapterError> {
            Self::start_with_role(settings, Role::Owner)
        }
        fn start_with_role(_: Self::Settings, role: Role) -> Result<Self, AdapterError> {
            let generation = ROLES.with_borrow(|r| r.as_ref().map_or(0, |r| r.generation)) + 1;
            Ok(Roles { role, generation })
        }
        fn send(&mut self, _: OutboundMessage) -> Result<Sent, AdapterError> {
            Ok(Sent::one(format!("{:?} {}", self.role, self.generation)))
        }
    }

    struct RolesSlot;
    impl AdapterSlot for RolesSlot {
        type Adapter = Roles;
        fn with<R>(f: impl FnOnce(&mut Option<Roles>) -> R) -> R {
            ROLES.with_borrow_mut(f)
        }
    }

    type RolesExport = AdapterExport<RolesSlot>;

    #[test]
    fn the_role_is_read_from_the_reserved_key_and_a_second_start_replaces_the_instance() {
        RolesExport::start(settings(&[("airlock.role", "outbound")])).unwrap();
        assert_eq!(sent(RolesExport::send(message())), "Outbound 1");

        // Taking the connection over: started again with the operator's
        // settings only.
        RolesExport::start(Vec::new()).unwrap();
        assert_eq!(sent(RolesExport::send(message())), "Owner 2");

        RolesExport::start(settings(&[("airlock.role", " owner ")])).unwrap();
        assert_eq!(sent(RolesExport::send(message())), "Owner 3");

        // A role this SDK does not know is refused, and the instance stays.
        match RolesExport::start(settings(&[("airlock.role", "watcher")])) {
            Err(AdapterError::Fatal(m)) => assert_eq!(
                m,
                "setting `airlock.role`: unknown role \"watcher\"; the roles are `owner`, `outbound`"
            ),
            other => panic!("{other:?}"),
        }
        match RolesExport::start(settings(&[
            ("airlock.role", "outbound"),
            ("airlock.role", "owner"),
        ])) {
            Err(AdapterError::Fatal(m)) => {
                assert_eq!(m, "setting `airlock.role` is given twice")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sent(RolesExport::send(message())), "Owner 3");

        // Other reserved keys are the host's business: skipped.
        RolesExport::start(settings(&[
            ("airlock.session", "x"),
            ("airlock.role", "outbound"),
        ]))
        .unwrap();
        assert_eq!(sent(RolesExport::send(message())), "Outbound 4");
    }

    #[test]
    fn the_role_defaults_to_owner() {
        assert_eq!(Role::from_settings(&Vec::new()), Ok(Role::Owner));
        assert_eq!(
            Role::from_settings(&settings(&[("first", "1"), ("airlock.role", "outbound")])),
            Ok(Role::Outbound)
        );
        assert_eq!(Role::default(), Role::Owner);
    }
}
