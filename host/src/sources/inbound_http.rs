//! `inbound_http`: the host side of an adapter's inbound route.
//!
//! The host binds the socket (a component never does). A route is
//! authenticated one of two ways ([`Auth`]).
//!
//! **Signed** (a webhook, [`signature`]): the manifest declares how the
//! sender signs each request and the host holds the secret. Every request
//! must carry a valid signature, within its timestamp window when the scheme
//! has one, and not be one already let through; otherwise it is answered 401
//! before the adapter sees it, counted, and a sender that keeps failing
//! raises an alert. The signature header is withheld from the adapter. Such a
//! route may listen beyond loopback when the operator grants it (`bind`),
//! and takes any `Host` (a tunnel or a reverse proxy keeps the public name):
//! nobody without the secret gets a request through, browser or not.
//!
//! **Token** (a local page such as fakechat's): loopback only, and a request
//! reaches the adapter's `on-http-request` export only when:
//!
//! * the `Host` header (and an absolute request target's authority) names
//!   this listener: `127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT`, which
//!   defeats DNS rebinding (403 otherwise);
//! * an `Origin` header, when present, is `http://127.0.0.1:PORT`,
//!   `http://localhost:PORT` or `http://[::1]:PORT`, so no other web page in
//!   the operator's browser can post into the session (403 otherwise);
//! * the query carries `token=<the per-run access token>`, compared in
//!   constant time (401 otherwise). The token is removed from the query
//!   before the adapter sees the request;
//! * the body is at most [`MAX_BODY_BYTES`] (413 otherwise, refused before it
//!   is read when `Content-Length` says so).
//!
//! Sockets are cheap for any local process to open and hold, so the listener
//! never waits for a free slot: it accepts every connection at once, and
//! when a source address holds [`MAX_PER_SOURCE`] connections (or the
//! listener [`MAX_CONNECTIONS`]), it closes the oldest one that is not in
//! the middle of a request to make room, or refuses the new one when all are.
//! A connection must send a request's headers within [`HEADER_TIMEOUT`],
//! which also bounds how long a kept-alive connection may sit idle.
//!
//! Either way, the body is at most [`MAX_BODY_BYTES`], and the adapter gets
//! the method, the path with the remaining query, the headers whose values
//! are UTF-8 (minus `cookie` and the authorization headers, which belong to
//! whatever else runs on localhost, and a signed route's signature header)
//! and the body.
//! Events in its reply's batch go to the host's unsolicited-event channel.
//! Its response keeps only the headers in [`ALLOWED_RESPONSE_HEADERS`], and
//! every response gets `nosniff`, `no-referrer`, `no-store`, a strict
//! content security policy and `frame-ancestors 'none'`. An adapter failure
//! is a 502 with a short text; the details go to the log.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

pub mod signature;

use crate::bindings::types::{IncomingReply, IncomingRequest};
use crate::runtime::actor::{AdapterHandle, Unsolicited};
use crate::warn_budget::WarnBudget;
use signature::{Mac, Verifier};

/// Largest request body handed to an adapter.
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// Connections open at once; past it the oldest idle one is closed for a new one.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections open at once from one source address.
pub const MAX_PER_SOURCE: usize = 16;
/// How long a client may take to send a request's headers, counted from when
/// the connection opens or its last response was sent (so it is also the
/// idle timeout of a kept-alive connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// The query parameter that carries the access token.
pub const TOKEN_PARAM: &str = "token";

/// Adapter response headers passed on to the client; all others are dropped.
pub const ALLOWED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-disposition",
    "content-language",
    "allow",
    "retry-after",
    "etag",
    "last-modified",
    "vary",
];

/// Request headers never handed to an adapter: they belong to other software
/// on localhost (cookies are not isolated by port) or carry credentials.
const WITHHELD_REQUEST_HEADERS: &[&str] = &["cookie", "authorization", "proxy-authorization"];

/// The content security policy of every response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboundError {
    /// Only a signed route may listen beyond loopback.
    #[error(
        "refusing to listen on {addr}: a route reached with the access token binds loopback \
         addresses only (127.0.0.1 or ::1), so nothing outside this machine can reach a \
         component; only a route whose requests are signed may listen beyond it"
    )]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Something else listens on the port.
    #[error(
        "port {port} on the loopback address is already in use (another airlock, or the \
         official fakechat plugin?); pick another port with the component's `port` setting \
         in airlock.toml, e.g. `[components.fakechat] settings = {{ port = \"8788\" }}`"
    )]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// Binding failed for another reason.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A per-run secret that every inbound request must carry: 128 random bits
/// as lowercase hex. `Debug` does not show it.
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    /// A fresh token from the operating system's random source.
    pub fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| std::io::Error::other(format!("no randomness for the token: {e}")))?;
        Ok(Self(hex::encode(bytes)))
    }

    /// The token itself, to build the URL printed for the operator.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, compared in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(candidate.as_bytes()))
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl Drop for AccessToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// How a route's requests are authenticated.
#[derive(Clone, Debug)]
pub enum Auth {
    /// The per-run token in the query; loopback only.
    Token(AccessToken),
    /// A signature by the scheme and secret the verifier holds.
    Signed(Arc<Verifier>),
}

/// A running inbound listener for one adapter; stops when dropped.
#[derive(Debug)]
pub struct InboundListener {
    addr: SocketAddr,
    auth: Auth,
    task: JoinHandle<()>,
}

/// What every connection of a listener shares.
struct Shared {
    adapter: AdapterHandle,
    auth: Auth,
    port: u16,
    events: mpsc::UnboundedSender<Unsolicited>,
    /// Warnings the adapter causes by its answers, bounded.
    warnings: WarnBudget,
}

impl InboundListener {
    /// Binds `addr` (loopback only, unless requests are signed; port 0 picks
    /// a free port) and serves `adapter`'s inbound route there until
    /// dropped. Events from the adapter's replies go to `events`.
    pub async fn bind(
        addr: SocketAddr,
        adapter: AdapterHandle,
        auth: Auth,
        events: mpsc::UnboundedSender<Unsolicited>,
    ) -> Result<Self, InboundError> {
        if !addr.ip().is_loopback() && matches!(auth, Auth::Token(_)) {
            return Err(InboundError::NotLoopback { addr });
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::AddrInUse {
                InboundError::PortInUse { port: addr.port() }
            } else {
                InboundError::Bind { addr, source }
            }
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| InboundError::Bind { addr, source })?;
        let adapter_name = adapter.name().clone();
        let shared = Arc::new(Shared {
            adapter,
            auth: auth.clone(),
            port: addr.port(),
            events,
            warnings: WarnBudget::new(adapter_name),
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(Self { addr, auth, task })
    }

    /// The address actually bound.
    #[cfg(test)]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to print for the operator: the page with the access token,
    /// or a signed route's address.
    pub fn url(&self) -> String {
        match &self.auth {
            Auth::Token(token) => {
                format!("http://{}/?{TOKEN_PARAM}={}", self.addr, token.secret())
            }
            Auth::Signed(_) => format!("http://{}/", self.addr),
        }
    }
}

impl Drop for InboundListener {
    fn drop(&mut self) {
        // Aborting the accept loop drops its `JoinSet`, which aborts every
        // connection task with it.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    // Open connections, oldest first.
    let mut open: Vec<Tracked> = Vec::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Typically out of file descriptors; do not spin.
                tracing::warn!(component = %shared.adapter.name(), "inbound accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        open.retain(|c| !c.abort.is_finished());
        let source = peer.ip();
        if !make_room(&mut open, source) {
            tracing::debug!(%source, "inbound connection refused: all of its connections are busy");
            continue;
        }
        let state = Arc::new(AtomicU8::new(IDLE));
        let abort = connections.spawn(serve_connection(
            stream,
            source,
            shared.clone(),
            state.clone(),
        ));
        open.push(Tracked {
            source,
            state,
            abort,
        });
    }
}

/// A connection is waiting for a request (and may be closed to make room).
const IDLE: u8 = 0;
/// A connection is serving a request.
const BUSY: u8 = 1;
/// A connection is being closed to make room.
const CLOSING: u8 = 2;

/// An open connection, as the accept loop sees it.
struct Tracked {
    source: IpAddr,
    state: Arc<AtomicU8>,
    abort: AbortHandle,
}

/// What to do for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admission {
    /// Serve it.
    Admit,
    /// Close the open connection at this index first (then decide again).
    Close(usize),
    /// Close the new one: every connection that would have to go is busy.
    Refuse,
}

/// Whether a connection from `source` fits among `open` connections (their
/// source and whether they are idle, oldest first), at most `per_source` from
/// one address and `total` in all; when it does not, the oldest idle one that
/// is in the way goes.
fn admission(
    open: &[(IpAddr, bool)],
    source: IpAddr,
    per_source: usize,
    total: usize,
) -> Admission {
    let oldest_idle = |mine: bool| {
        open.iter()
            .position(|&(ip, idle)| idle && (!mine || ip == source))
            .map_or(Admission::Refuse, Admission::Close)
    };
    if open.iter().filter(|(ip, _)| *ip == source).count() >= per_source {
        oldest_idle(true)
    } else if open.len() >= total {
        oldest_idle(false)
    } else {
        Admission::Admit
    }
}

/// Close idle connections until one more from `source` fits; false when it
/// cannot.
fn make_room(open: &mut Vec<Tracked>, source: IpAddr) -> bool {
    loop {
        let view: Vec<(IpAddr, bool)> = open
            .iter()
            .map(|c| (c.source, c.state.load(Ordering::Acquire) == IDLE))
            .collect();
        match admission(&view, source, MAX_PER_SOURCE, MAX_CONNECTIONS) {
            Admission::Admit => return true,
            Admission::Refuse => return false,
            Admission::Close(i) => {
                // Only if it is still idle: a request that just arrived is served.
                if open[i]
                    .state
                    .compare_exchange(IDLE, CLOSING, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    open.remove(i).abort.abort();
                }
            }
        }
    }
}

/// Serve one connection; `state` says whether a request is in progress.
async fn serve_connection(
    stream: TcpStream,
    peer: IpAddr,
    shared: Arc<Shared>,
    state: Arc<AtomicU8>,
) {
    let service = service_fn(move |request| {
        let shared = shared.clone();
        let state = state.clone();
        async move {
            if state
                .compare_exchange(IDLE, BUSY, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // Being closed to make room for a newer connection.
                let mut response = plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many connections; try again\n",
                );
                secure(response.headers_mut());
                return Ok::<_, Infallible>(response);
            }
            let response = shared.serve(request, peer).await;
            let _ = state.compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire);
            Ok(response)
        }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!("inbound connection ended: {e}");
    }
}

type Reply = Response<Full<Bytes>>;

impl Shared {
    async fn serve(&self, request: Request<Incoming>, peer: IpAddr) -> Reply {
        let mut response = self.answer(request, peer).await;
        secure(response.headers_mut());
        response
    }

    async fn answer(&self, request: Request<Incoming>, peer: IpAddr) -> Reply {
        let (query, verifier) = match &self.auth {
            Auth::Token(token) => match self.check_local(&request, token) {
                Ok(query) => (query, None),
                Err((status, why)) => return plain(status, why),
            },
            Auth::Signed(verifier) => (
                request.uri().query().unwrap_or_default().to_string(),
                Some(verifier),
            ),
        };
        if declared_length(request.headers()).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return too_large();
        }

        let path = match query.as_str() {
            "" => request.uri().path().to_string(),
            q => format!("{}?{q}", request.uri().path()),
        };
        let method = request.method().as_str().to_string();
        let (parts, request_body) = request.into_parts();
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| !WITHHELD_REQUEST_HEADERS.contains(&name.as_str()))
            .filter(|(name, _)| verifier.is_none_or(|v| name.as_str() != v.header()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let body = match read_body(request_body, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => return too_large(),
            Err(BodyError::Timeout) => {
                return plain(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body took too long\n",
                );
            }
            Err(BodyError::Io) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read\n",
                );
            }
        };

        let mut passed: Option<Mac> = None;
        if let Some(verifier) = verifier {
            match verifier.admit(&parts.headers, &body) {
                Ok(mac) => passed = Some(mac),
                Err(why) => {
                    verifier.refused(why, peer);
                    return unauthorized(why);
                }
            }
        }

        let incoming = IncomingRequest {
            method,
            path,
            headers,
            body,
        };
        let answered = self.adapter.on_http_request(incoming).await;
        // A request the adapter did not take (no event, no 2xx) may be sent
        // again.
        let taken = matches!(&answered, Ok(r)
            if (200..300).contains(&r.response.status) || !r.batch.events.is_empty());
        if let (Some(verifier), Some(mac), false) = (verifier, passed, taken) {
            verifier.forget(&mac);
        }
        match answered {
            Ok(reply) => self.deliver(reply),
            Err(e) => {
                if self.warnings.admit() {
                    tracing::warn!(component = %self.adapter.name(), "inbound request failed: {e}");
                }
                plain(
                    StatusCode::BAD_GATEWAY,
                    "the adapter failed to handle this request; see airlock's log\n",
                )
            }
        }
    }

    /// Hands the reply's events on and turns its response into ours.
    fn deliver(&self, reply: IncomingReply) -> Reply {
        let IncomingReply { response, batch } = reply;
        if !batch.events.is_empty() {
            let sent = self
                .events
                .send(Unsolicited::new(self.adapter.name().clone(), batch));
            if sent.is_err() {
                tracing::warn!(component = %self.adapter.name(), "inbound events dropped: the host is shutting down");
            }
        }
        let status = match StatusCode::from_u16(response.status) {
            Ok(s) if !s.is_informational() => s,
            _ => {
                if self.warnings.admit() {
                    tracing::warn!(component = %self.adapter.name(), status = response.status, "adapter answered with an invalid HTTP status");
                }
                return plain(
                    StatusCode::BAD_GATEWAY,
                    "the adapter gave an invalid answer; see airlock's log\n",
                );
            }
        };
        let mut out = Response::new(Full::new(Bytes::from(response.body)));
        *out.status_mut() = status;
        for (name, value) in response.headers {
            let Ok(name) = HeaderName::try_from(name.as_str()) else {
                continue;
            };
            if !ALLOWED_RESPONSE_HEADERS.contains(&name.as_str()) {
                continue;
            }
            if let Ok(value) = HeaderValue::try_from(value.as_str()) {
                out.headers_mut().append(name, value);
            }
        }
        out
    }

    /// A token route's checks: the host, the origin and the token; the query
    /// without the token, or the status and text that refuse the request.
    fn check_local(
        &self,
        request: &Request<Incoming>,
        token: &AccessToken,
    ) -> Result<String, (StatusCode, &'static str)> {
        self.check_host(request)
            .map_err(|why| (StatusCode::FORBIDDEN, why))?;
        if let Some(origin) = request.headers().get(header::ORIGIN)
            && !self.allowed_origin(origin)
        {
            return Err((
                StatusCode::FORBIDDEN,
                "forbidden: requests from other web pages are refused\n",
            ));
        }
        strip_token(request.uri().query(), token).ok_or((
            StatusCode::UNAUTHORIZED,
            "unauthorized: open the URL airlock printed on stderr; it carries the access token (?token=...)\n",
        ))
    }

    fn allowed_authority(&self, authority: &str) -> bool {
        let Some((host, port)) = authority.rsplit_once(':') else {
            return false;
        };
        port == self.port.to_string()
            && (host == "127.0.0.1" || host == "[::1]" || host.eq_ignore_ascii_case("localhost"))
    }

    fn check_host(&self, request: &Request<Incoming>) -> Result<(), &'static str> {
        let refused =
            "forbidden: the Host must be 127.0.0.1 or localhost with this listener's port\n";
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or(refused)?;
        if !self.allowed_authority(host) {
            return Err(refused);
        }
        if let Some(authority) = request.uri().authority()
            && !self.allowed_authority(authority.as_str())
        {
            return Err(refused);
        }
        Ok(())
    }

    fn allowed_origin(&self, origin: &HeaderValue) -> bool {
        let port = self.port;
        let origin = origin.as_bytes();
        [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ]
        .iter()
        .any(|allowed| allowed.as_bytes() == origin)
    }
}

/// The query without the access token, if it carried the right one (every
/// `token` parameter must match, and there must be one).
fn strip_token(query: Option<&str>, token: &AccessToken) -> Option<String> {
    let mut found = false;
    let mut rest = Vec::new();
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some((TOKEN_PARAM, value)) => {
                if !token.matches(value) {
                    return None;
                }
                found = true;
            }
            _ if pair == TOKEN_PARAM => return None,
            _ if pair.is_empty() => {}
            _ => rest.push(pair),
        }
    }
    found.then(|| rest.join("&"))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

enum BodyError {
    TooLarge,
    Timeout,
    Io,
}

/// Reads a body of at most `cap` bytes, giving up at the first byte over.
async fn read_body<B>(body: B, cap: usize) -> Result<Vec<u8>, BodyError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, cap).collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Io),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The 401 of a signed route: what failed, for the sender's operator to fix.
fn unauthorized(why: signature::Refusal) -> Reply {
    use signature::Refusal::*;
    plain(
        StatusCode::UNAUTHORIZED,
        match why {
            MissingSignature => "unauthorized: the request carries no signature header\n",
            MalformedSignature => "unauthorized: the signature header is malformed\n",
            BadSignature => {
                "unauthorized: the signature does not match; the sender's secret must be the one airlock holds\n"
            }
            MissingTimestamp => "unauthorized: the request carries no valid timestamp header\n",
            Stale => {
                "unauthorized: the request's timestamp is too old or too far ahead; check both clocks\n"
            }
            Replayed => "unauthorized: this request was already accepted once\n",
        },
    )
}

fn too_large() -> Reply {
    let mut response = plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is larger than airlock accepts (16 MiB)\n",
    );
    // The rest of the body is not read, so the connection cannot be reused.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Adds the headers every response carries.
fn secure(headers: &mut HeaderMap) {
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests;
