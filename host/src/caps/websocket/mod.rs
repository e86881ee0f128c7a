//! `airlock:channel/websocket`: host-owned websocket connections.
//!
//! Linked only for adapters granted `websocket` destinations. The host owns every socket; the
//! guest holds a connection id and gets frames through its `on-ws-event` export.
//!
//! 1. **Allowlist.** `connect(url)` is refused ([`WsError::Denied`]) unless the URL's exact
//!    `ws`/`wss` scheme, host and port are one of the component's effective `websocket`
//!    destinations. Nothing is resolved before this passes.
//! 2. **Resolved-address check.** The host is resolved once by the network policy's checked
//!    resolution (`net::resolve`, as for egress): a restricted address (loopback, private,
//!    metadata, …) is refused ([`WsError::Denied`]) unless the operator granted the destination
//!    in `local`. The socket goes to the checked addresses only; nothing is resolved again.
//! 3. **A task per connection.** `connect` returns the id at once after the check; a tokio task
//!    connects (TLS with webpki roots for `wss`, the network policy's one client configuration
//!    in `net::tls`), runs the handshake and owns the socket, with frames and messages capped
//!    at [`MAX_MESSAGE`]. It posts [`HostEvent::Ws`] tagged with the instance's generation;
//!    the actor turns them into `on-ws-event` calls (`opened`, `text`, `binary`, then one
//!    `closed`). At most [`MAX_UNDELIVERED`] events of a connection wait for the guest; then
//!    the task stops reading the socket. At most [`MAX_CONNECTIONS`] per instance; every task
//!    is aborted when the instance is dropped. After connections that ended before the server
//!    sent a single frame, the next one waits out the host's [`backoff`](crate::backoff) first,
//!    so an adapter that reconnects on every `closed` cannot hammer a dead server.
//! 4. **Secrets.** A secret bound to the destination at a `json:` position is put into the
//!    *first* text frame the guest sends on each connection, at that dotted field, replacing
//!    what the guest put there; a first frame without that field (or not a JSON object) is sent
//!    unchanged, without the secret, and a warning is logged. Later frames never get it. A
//!    secret bound to a header of the destination goes into the handshake request. Every frame
//!    received (and the close reason) is scrubbed of every secret of the component before the
//!    guest sees it.
//!
//! Every refusal (a destination not granted or restricted, text that held a secret) is also
//! raised as a `capability_denied` alert while the instance's warning budget still admits it.

mod connection;
mod held;

pub use held::HeldFrame;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;

use crate::alert::Kind;
use crate::bindings::types::WsConnection as Connection;
use crate::bindings::websocket::{self, WsError};
use crate::caps::alerts::ComponentAlerts;
use crate::caps::log::{GuestLog, Source};
use crate::host_event::HostEvent;
use crate::net::destination::{Destination, Scheme, request_parts};
use crate::net::resolve::{AddressScope, ResolveError, resolve_checked};
use crate::secrets::{BoundSecret, Scrubber, loaded};
use crate::warn_budget::WarnBudget;

/// Largest frame or message, sent or received: 1 MiB.
pub const MAX_MESSAGE: usize = 1 << 20;
/// Most connections one instance may have open (or opening) at once.
pub const MAX_CONNECTIONS: usize = 4;
/// Frames the guest may queue on one connection before `send-text` fails.
pub const MAX_QUEUED: usize = 64;
/// Events of one connection posted and not yet handed to the guest; past it the connection
/// stops reading its socket until the guest catches up.
pub const MAX_UNDELIVERED: usize = 16;
/// Longest DNS lookup, TCP connect, TLS handshake and websocket handshake, each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest close reason the guest may send (a close frame's payload is at most 125 bytes).
const MAX_CLOSE_REASON: usize = 123;

/// What one component may reach over websockets, and with which secrets.
#[derive(Debug)]
pub struct WsPolicy {
    /// Granted destinations (manifest `websocket` ∩ grant). Empty denies all.
    pub allow: Vec<Destination>,
    /// Secrets bound to websocket destinations: injected at their positions.
    pub secrets: Vec<BoundSecret>,
    /// Every secret value received frames are scrubbed of (these and the HTTP ones).
    pub scrubber: Scrubber,
    /// The component's name, for errors and logs.
    component: String,
    /// Destinations the operator granted for local use (the grant's `local`): they may resolve
    /// to restricted addresses.
    local_ok: Vec<Destination>,
}

impl WsPolicy {
    /// A policy for `component`: `allow` websocket destinations, `local_ok` those of the
    /// grant's `local`, `secrets` bound to websocket destinations, and `also_scrub` (the
    /// component's other secrets).
    pub fn new(
        component: impl Into<String>,
        allow: Vec<Destination>,
        local_ok: Vec<Destination>,
        secrets: Vec<BoundSecret>,
        also_scrub: &[BoundSecret],
    ) -> Self {
        let all: Vec<BoundSecret> = secrets.iter().chain(also_scrub).cloned().collect();
        let scrubber = loaded::scrubber_with(&all);
        WsPolicy {
            allow,
            secrets,
            scrubber,
            component: component.into(),
            local_ok,
        }
    }

    /// The component's name.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Which addresses `destination` may resolve to: restricted ones only if it is granted for
    /// local use.
    fn address_scope(&self, destination: &Destination) -> AddressScope {
        AddressScope::of(destination, &self.local_ok)
    }

    /// Whether `text` from the component holds a spelling of a secret: this component's or any
    /// other the host has loaded. Such text is refused, never sent (the host's own first-frame
    /// injection happens after this check).
    fn holds_secret(&self, text: &str) -> bool {
        self.scrubber.finds(text.as_bytes()) || loaded::holds(text.as_bytes())
    }

    /// The granted destination `url` names, if any: exact scheme (`ws`/`wss`), host and port.
    fn check(&self, url: &str) -> Option<(&Destination, http::Uri)> {
        let uri = url.parse::<http::Uri>().ok()?;
        let (scheme, _, _) = request_parts(&uri).ok()?;
        if !matches!(scheme, Scheme::Ws | Scheme::Wss) {
            return None;
        }
        let destination = self.allow.iter().find(|d| d.allows(&uri))?;
        Some((destination, uri))
    }
}

/// `scheme://host[:port]` of a URL a component asked for, for an alert: never its path or query.
fn destination_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| {
            let (scheme, host, port) = request_parts(&uri).ok()?;
            Destination::new(scheme, host, port).ok()
        })
        .map_or_else(
            || "a URL that names no destination".into(),
            |d| d.to_string(),
        )
}

/// Commands from the guest to a connection's task.
#[derive(Debug)]
pub(crate) enum Command {
    Text(String),
    Close(u16, String),
}

struct Conn {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    closing: bool,
}

/// One instance's websocket capability: its connections, the policy they are checked
/// against, and where their events go. Dropping it aborts every connection.
pub struct WsConnections {
    policy: Option<Arc<WsPolicy>>,
    events: Option<UnboundedSender<HostEvent>>,
    generation: u64,
    next_id: Connection,
    open: HashMap<Connection, Conn>,
    /// Connections in a row that ended before the server sent a frame.
    failures: Arc<AtomicU32>,
    /// The instance's log, for what the guest should see as its own warning.
    log: GuestLog,
    /// The instance's budget of host warnings.
    warnings: WarnBudget,
    /// Where refusals are raised as alerts, while the budget still logs them.
    alerts: ComponentAlerts,
    /// Frames held until the current call's batch is stored; `None`
    /// outside a call whose batch the host stores.
    holding: Option<Vec<HeldFrame>>,
}

impl std::fmt::Debug for WsConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConnections")
            .field("open", &self.open.len())
            .field("generation", &self.generation)
            .finish()
    }
}

impl WsConnections {
    /// Connections under `policy` (none: every connect is denied) whose events go to `events`
    /// (none: connects fail, as there is no one to deliver frames to), tagged with `generation`;
    /// refusals are logged to `log`, warnings counted against `warnings`, and refusals within
    /// that budget raised through `alerts`.
    pub(crate) fn new(
        policy: Option<Arc<WsPolicy>>,
        events: Option<UnboundedSender<HostEvent>>,
        generation: u64,
        log: GuestLog,
        warnings: WarnBudget,
        alerts: ComponentAlerts,
    ) -> Self {
        WsConnections {
            policy,
            events,
            generation,
            next_id: 0,
            open: HashMap::new(),
            failures: Arc::default(),
            log,
            warnings,
            alerts,
            holding: None,
        }
    }

    /// Opens a call whose batch the host stores: `send-text-after-commit`
    /// may hold frames until [`take_held`](Self::take_held).
    pub(crate) fn hold_frames(&mut self) {
        self.holding = Some(Vec::new());
    }

    /// Ends the call: the frames it held, for release once its batch is
    /// stored.
    pub(crate) fn take_held(&mut self) -> Vec<HeldFrame> {
        self.holding.take().unwrap_or_default()
    }

    fn prune(&mut self) {
        self.open.retain(|_, c| !c.task.is_finished());
    }

    fn live(&mut self, conn: Connection) -> Result<&mut Conn, WsError> {
        self.prune();
        match self.open.get_mut(&conn) {
            Some(c) if !c.closing => Ok(c),
            _ => Err(WsError::Closed),
        }
    }
}

impl Drop for WsConnections {
    fn drop(&mut self) {
        for c in self.open.values() {
            c.task.abort();
        }
    }
}

impl WsConnections {
    /// Raises a refusal as an alert if the instance's warning budget still admits it (a guest
    /// refused in a loop raises a bounded few).
    fn raise(&self, text: String) {
        if self.warnings.admit() {
            self.alerts.raise(Kind::CapabilityDenied, text);
        }
    }

    /// The error for `text` (from the component, for `what`) if it holds a loaded secret, after
    /// logging the refusal (never the text).
    fn refuse_secret(&self, text: &str, what: &str) -> Option<WsError> {
        let holds = match &self.policy {
            Some(policy) => policy.holds_secret(text),
            None => loaded::holds(text.as_bytes()),
        };
        if !holds {
            return None;
        }
        loaded::log_refusal(self.warnings.component(), what);
        self.raise(format!(
            "{} was refused sending {what} that held a secret the host holds; it was not sent",
            self.warnings.component()
        ));
        Some(WsError::Denied(format!(
            "{what} held a secret the host holds; components may not send secrets (the host \
             puts a bound secret into the first frame itself)"
        )))
    }
}

impl websocket::Host for WsConnections {
    async fn connect(&mut self, url: String) -> wasmtime::Result<Result<Connection, WsError>> {
        if let Some(refused) = self.refuse_secret(&url, "a websocket URL") {
            return Ok(Err(refused));
        }
        let policy = self.policy.clone();
        let checked = policy
            .as_ref()
            .and_then(|p| p.check(&url).map(|(d, uri)| (p, d, uri)));
        let Some((policy, destination, uri)) = checked else {
            self.raise(format!(
                "{} was refused a websocket to {} (not in its grant); no connection was made",
                self.warnings.component(),
                destination_of(&url)
            ));
            let url = crate::text::one_line(&url, 200);
            self.log.line(
                Source::Log(crate::bindings::log::Level::Warn),
                &format!("websocket destination {url} is not granted"),
            );
            return Ok(Err(WsError::Denied(format!(
                "{url} is not among this component's websocket destinations; add it to `websocket` in the manifest and approve the component"
            ))));
        };
        let Some(events) = self.events.clone() else {
            return Ok(Err(WsError::Io(
                "this instance cannot receive websocket events".into(),
            )));
        };
        self.prune();
        if self.open.len() >= MAX_CONNECTIONS {
            return Ok(Err(WsError::Io(format!(
                "at most {MAX_CONNECTIONS} websocket connections may be open at once; close one first"
            ))));
        }
        let scope = policy.address_scope(destination);
        let resolved = resolve_checked(policy.component(), destination, scope, CONNECT_TIMEOUT);
        let addrs = match resolved.await {
            Ok(addrs) => addrs,
            Err(e @ ResolveError::Restricted { addr, reason, .. }) => {
                if self.warnings.admit() {
                    tracing::warn!(component = %self.warnings.component(), "websocket refused: {e}");
                    self.alerts.raise(
                        Kind::CapabilityDenied,
                        format!(
                            "{} was refused a websocket to {destination} (it resolves to {addr}, a {reason} address, and is not granted for local use); no connection was made",
                            self.warnings.component()
                        ),
                    );
                }
                return Ok(Err(WsError::Denied(e.to_string())));
            }
            Err(e) => return Ok(Err(WsError::Io(e.to_string()))),
        };
        let mut id = self.next_id;
        while self.open.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        let failures = self.failures.load(Ordering::Relaxed);
        let delay = match failures {
            0 => Duration::ZERO,
            n => crate::backoff::delay(n, u64::from(id)),
        };
        // A guest can close and reopen in a loop: through its warning budget.
        if !delay.is_zero() && self.warnings.admit() {
            tracing::info!(
                component = %self.warnings.component(),
                %destination,
                "websocket: {failures} connections in a row ended before the server said anything; connecting again in {delay:?}"
            );
        }
        let task = tokio::spawn(connection::run(connection::Session {
            delay,
            failures: self.failures.clone(),
            heard: false,
            policy: policy.clone(),
            destination: destination.clone(),
            uri,
            addrs,
            commands: rx,
            events,
            generation: self.generation,
            conn: id,
        }));
        self.open.insert(
            id,
            Conn {
                commands: tx,
                task,
                closing: false,
            },
        );
        Ok(Ok(id))
    }

    fn send_text(
        &mut self,
        conn: Connection,
        text: String,
    ) -> wasmtime::Result<Result<(), WsError>> {
        if text.len() > MAX_MESSAGE {
            return Ok(Err(WsError::TooLarge));
        }
        if let Some(refused) = self.refuse_secret(&text, "a websocket frame") {
            return Ok(Err(refused));
        }
        let c = match self.live(conn) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match c.commands.try_send(Command::Text(text)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(WsError::Io(format!(
                "more than {MAX_QUEUED} frames are waiting to be sent on this connection"
            ))),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(WsError::Closed),
        })
    }

    fn send_text_after_commit(
        &mut self,
        conn: Connection,
        text: String,
    ) -> wasmtime::Result<Result<(), WsError>> {
        let Some(held) = self.holding.as_ref().map(Vec::len) else {
            return Ok(Err(WsError::Io(
                "send-text-after-commit holds a frame until the batch of the current \
                 on-ws-event or on-timer call is stored; this call returns no batch, so use \
                 send-text"
                    .into(),
            )));
        };
        if text.len() > MAX_MESSAGE {
            return Ok(Err(WsError::TooLarge));
        }
        if held >= MAX_QUEUED {
            return Ok(Err(WsError::Io(format!(
                "more than {MAX_QUEUED} frames are held for this call"
            ))));
        }
        if let Some(refused) = self.refuse_secret(&text, "a websocket frame") {
            return Ok(Err(refused));
        }
        let commands = match self.live(conn) {
            Ok(c) => c.commands.clone(),
            Err(e) => return Ok(Err(e)),
        };
        if let Some(frames) = self.holding.as_mut() {
            frames.push(HeldFrame::new(commands, text));
        }
        Ok(Ok(()))
    }

    fn close(
        &mut self,
        conn: Connection,
        code: u16,
        reason: String,
    ) -> wasmtime::Result<Result<(), WsError>> {
        if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
            return Ok(Err(WsError::Io(format!(
                "{code} is not a close code an endpoint may send"
            ))));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Ok(Err(WsError::TooLarge));
        }
        if let Some(refused) = self.refuse_secret(&reason, "a websocket close reason") {
            return Ok(Err(refused));
        }
        let c = match self.live(conn) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        c.closing = true;
        // A full queue cannot take the close: end the connection outright; `closed` follows.
        if c.commands.try_send(Command::Close(code, reason)).is_err() {
            c.task.abort();
            if let Some(events) = &self.events {
                let _ = events.send(HostEvent::Ws {
                    generation: self.generation,
                    conn,
                    event: crate::bindings::types::WsEvent::Closed((
                        1006,
                        "closed by the adapter with frames still queued".into(),
                    )),
                    delivery: Default::default(),
                });
            }
        }
        Ok(Ok(()))
    }
}
