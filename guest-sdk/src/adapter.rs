//! The [`Adapter`] trait and its bridge to the generated `channel-adapter` export.

use core::marker::PhantomData;

use crate::adapter_bindings::exports::airlock::channel::channel_adapter::Guest;
use crate::types::{
    AdapterError, AttachmentData, AttachmentRequest, Connection, Description, EditRequest,
    EventBatch, HistoryEntry, HistoryRequest, HttpRequest, HttpResponse, IncomingReply,
    IncomingRequest, OutboundMessage, ReactRequest, Sent, Settings, WsEvent,
};

/// A chat-platform adapter: the `channel-adapter` interface of the
/// `airlock:channel` WIT package, as associated functions (the host keeps one
/// instance per adapter; keep state in statics or in [`crate::kv`]).
///
/// The host owns every loop (long-poll, websocket, inbound HTTP, timers) and
/// calls these short handlers; each call runs under a CPU budget and a
/// wall-clock timeout, so never block for long.
///
/// Only [`describe`](Adapter::describe) and [`send`](Adapter::send) are
/// required. The defaults are:
///
/// * [`start`](Adapter::start): `Ok(())`.
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
pub trait Adapter {
    /// Name, limits, features and instruction lines. Must not do I/O.
    fn describe() -> Description;

    /// Called once per instance with the operator's settings, before any
    /// other handler but `describe`. The adapter may open websockets, set
    /// timers and call its platform here. Default: `Ok(())`.
    fn start(settings: Settings) -> Result<(), AdapterError> {
        let _ = settings;
        Ok(())
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
    fn poll_request(cursor: Option<String>) -> Option<HttpRequest> {
        let _ = cursor;
        None
    }

    /// Decodes a long-poll response into events and the cursor to commit.
    /// Default: `Unsupported`.
    fn on_poll_response(response: HttpResponse) -> Result<EventBatch, AdapterError> {
        let _ = response;
        Err(unsupported("on_poll_response"))
    }

    /// A frame or state change on a websocket the adapter opened.
    /// Default: `Unsupported`.
    fn on_ws_event(conn: Connection, event: WsEvent) -> Result<EventBatch, AdapterError> {
        let _ = (conn, event);
        Err(unsupported("on_ws_event"))
    }

    /// A request on the adapter's inbound HTTP route. The reply's response
    /// goes back to the caller; its batch is delivered. Default: `Unsupported`.
    fn on_http_request(request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
        let _ = request;
        Err(unsupported("on_http_request"))
    }

    /// A timer set with [`crate::clock::set_timer`] fired. Default: `Unsupported`.
    fn on_timer(name: String) -> Result<EventBatch, AdapterError> {
        let _ = name;
        Err(unsupported("on_timer"))
    }

    /// Sends a message (already chunked to the adapter's limits and passed
    /// through the host's outbound gate and filters); returns the ids of the
    /// platform messages it produced.
    fn send(message: OutboundMessage) -> Result<Sent, AdapterError>;

    /// Adds a reaction to a message. Default: `Unsupported`.
    fn react(request: ReactRequest) -> Result<(), AdapterError> {
        let _ = request;
        Err(unsupported("react"))
    }

    /// Replaces the text of a message the bot sent. Default: `Unsupported`.
    fn edit(request: EditRequest) -> Result<(), AdapterError> {
        let _ = request;
        Err(unsupported("edit"))
    }

    /// Shows a typing indicator in a chat. Default: `Unsupported`.
    fn typing(chat_id: String) -> Result<(), AdapterError> {
        let _ = chat_id;
        Err(unsupported("typing"))
    }

    /// Recent messages of a chat, oldest first. Default: `Unsupported`.
    fn fetch_history(request: HistoryRequest) -> Result<Vec<HistoryEntry>, AdapterError> {
        let _ = request;
        Err(unsupported("fetch_history"))
    }

    /// The bytes of an inbound attachment. Default: `Unsupported`.
    fn download_attachment(request: AttachmentRequest) -> Result<AttachmentData, AdapterError> {
        let _ = request;
        Err(unsupported("download_attachment"))
    }
}

fn unsupported(operation: &str) -> AdapterError {
    AdapterError::Unsupported(format!("{operation} is not implemented by this adapter"))
}

/// Bridges an [`Adapter`] to the generated export trait. Used by
/// [`export_adapter!`](crate::export_adapter); not meant to be named directly.
pub struct AdapterExport<T>(PhantomData<fn() -> T>);

impl<T: Adapter> Guest for AdapterExport<T> {
    fn describe() -> Description {
        T::describe()
    }
    fn start(settings: Settings) -> Result<(), AdapterError> {
        T::start(settings)
    }
    fn poll_request(cursor: Option<String>) -> Option<HttpRequest> {
        T::poll_request(cursor)
    }
    fn on_poll_response(response: HttpResponse) -> Result<EventBatch, AdapterError> {
        T::on_poll_response(response)
    }
    fn on_ws_event(conn: Connection, event: WsEvent) -> Result<EventBatch, AdapterError> {
        T::on_ws_event(conn, event)
    }
    fn on_http_request(request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
        T::on_http_request(request)
    }
    fn on_timer(name: String) -> Result<EventBatch, AdapterError> {
        T::on_timer(name)
    }
    fn send(message: OutboundMessage) -> Result<Sent, AdapterError> {
        T::send(message)
    }
    fn react(request: ReactRequest) -> Result<(), AdapterError> {
        T::react(request)
    }
    fn edit(request: EditRequest) -> Result<(), AdapterError> {
        T::edit(request)
    }
    fn typing(chat_id: String) -> Result<(), AdapterError> {
        T::typing(chat_id)
    }
    fn fetch_history(request: HistoryRequest) -> Result<Vec<HistoryEntry>, AdapterError> {
        T::fetch_history(request)
    }
    fn download_attachment(request: AttachmentRequest) -> Result<AttachmentData, AdapterError> {
        T::download_attachment(request)
    }
}
