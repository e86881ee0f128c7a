//! Egress: the only way a component's HTTP requests leave the machine.
//!
//! Every request, whether a component makes it through `wasi:http/outgoing-handler` (via
//! [`EgressHooks`]) or the host makes it on a component's behalf (a long-poll, via
//! [`send_buffered`]), takes the same path:
//!
//! 1. **Allowlist.** The request's `scheme://host:port` must be one of the component's granted
//!    destinations ([`EgressPolicy::check`]); an empty list denies everything. Nothing is
//!    resolved or connected before this passes.
//! 2. **Host-set headers.** Headers that frame or route the request
//!    ([`HOST_SET_HEADERS`]: `Host`, `Connection`, `Transfer-Encoding`, `Upgrade`, …) and those
//!    that carry secrets are dropped, whoever built the request; the connector sets `Host` and
//!    hyper frames the body. `Content-Length` is dropped too, except for a streaming body it
//!    describes (see [`EgressPolicy::drop_host_set_headers`]).
//! 3. **In-flight limit.** At most [`EgressPolicy::in_flight`] requests of one component are
//!    under way at once, each holding its slot until its response is buffered and scrubbed; a
//!    request beyond that waits for a slot, at most its connect timeout, and then fails with
//!    [`EgressError::ConnectionLimitReached`].
//! 4. **Resolved-address check.** The host is resolved once, and if *any* address is restricted
//!    ([`ip_policy`](crate::net::ip_policy): loopback, private, link-local, cloud metadata, …) the
//!    request is refused unless the operator granted that destination for local use (the
//!    grant's `local`, [`EgressPolicy::local_ok`] here). The connection goes to the checked
//!    addresses only; there is no second lookup a rebinding DNS server could answer
//!    differently.
//! 5. **Secret injection.** Secrets bound to *this* destination are put at their declared
//!    position: a header, or a path prefix. Never into a body or a query, so that a component
//!    cannot have a platform echo a token back to it. Headers that carry secrets belong to the
//!    host: components may not set them (see [`EgressHooks`]'s forbidden-header filter), and any
//!    value already present is removed.
//! 6. **Bounded exchange.** TLS with the host name as SNI, HTTP/1.1, no redirects followed,
//!    each phase's timeout clamped to the policy's maximum, the response buffered up to a byte
//!    cap. Steps 4 to 7 together must also end within one total deadline
//!    ([`EgressPolicy::exchange_deadline`]), so that a server trickling a byte now and then
//!    cannot keep a request (and its buffer) alive.
//! 7. **Scrubbing.** Every bound secret, and every other secret the host has loaded, is
//!    replaced with `[redacted]` in the response headers and body before anyone sees them: the
//!    raw value, its encodings and its pieces (see [`Scrubber`]), and the exact bytes it was
//!    injected as ([`BoundSecret::scrub_forms`]).
//!
//! Two more rules keep a secret from coming back in a form scrubbing cannot see, or from
//! leaving by another way:
//!
//! * **The host controls the transfer to a destination with a bound secret**
//!   ([`EgressPolicy::control_transfer`]): it asks for `Accept-Encoding: identity` and drops the
//!   requester's `Accept-Encoding`, `Range` and `If-Range` (`TE` is host-set anyway), so a
//!   reflected secret can be neither compressed nor cut in pieces; a response that is encoded
//!   anyway is decoded (gzip, deflate; within the response cap) before it is scrubbed, and one
//!   in any other coding is refused ([`decode`]).
//! * **No request carries a loaded secret.** Before injection, the request URI, headers and
//!   body (as it streams, see [`screen`]) are checked for every spelling of every loaded
//!   secret; a request that holds one is refused with [`EgressError::SecretInRequest`]. A secret
//!   bound to one destination can so never be sent to another, nor anywhere by a component.
//!
//! Refusals are logged with `tracing::warn!`, naming the component and the destination (never a
//! path, which may hold a secret), and say which manifest or grant entry would allow the
//! request.

mod connector;
mod decode;
mod pool;
mod screen;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::uri::PathAndQuery;
use http::{HeaderName, Uri};
use http_body_util::{BodyExt, Full};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks,
};

use crate::manifest::{HOST_SET_HEADERS, SecretPosition};
use crate::net::destination::{Destination, Scheme, UriPartsError, request_parts};
use crate::secrets::{BoundSecret, Scrubber, loaded};
use crate::warn_budget::{self, Admit};

pub use connector::resolve_checked;
pub(crate) use connector::{TLS_CONFIG, server_name};
pub use pool::ConnectionPool;

/// What one component may reach over HTTP, and with which secrets.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// Granted destinations (manifest `outbound_http` ∩ operator grant). Empty denies all.
    pub allow: Vec<Destination>,
    /// Destinations the operator granted for local use: their hosts may resolve to restricted
    /// addresses (loopback, private, …). Only meaningful for entries also in `allow`.
    pub local_ok: Vec<Destination>,
    /// Secrets injected into requests to their bound destinations.
    pub secrets: Vec<BoundSecret>,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
    /// Upper bound for the connect, first-byte and between-bytes timeouts.
    pub max_timeout: Duration,
    /// Longest a whole exchange may take: DNS, connect, sending, the response head and the
    /// whole body. `None` means [`max_timeout`](Self::max_timeout).
    pub max_exchange: Option<Duration>,
    /// How many requests of this component may be in flight at once. Clones of the policy
    /// share it, so one policy per component makes it a per-component limit.
    pub in_flight: InFlightLimit,
    /// How many refusals of this component were logged; past
    /// [`MAX_LOGGED_REFUSALS`] they are counted but not logged, so a component
    /// looping on denied requests cannot flood the log.
    pub refusals_logged: Arc<AtomicU32>,
    /// The component's name, for errors and logs.
    pub component: String,
    /// Its kept connections (clones share them).
    pub pool: ConnectionPool,
}

/// Refusals logged per component before they are only counted.
pub const MAX_LOGGED_REFUSALS: u32 = 50;

/// A limit on the requests one component has in flight, each of which may buffer up to
/// [`EgressPolicy::max_response_bytes`] on the host. Clones share the count.
#[derive(Debug, Clone)]
pub struct InFlightLimit {
    limit: usize,
    slots: Arc<Semaphore>,
}

impl InFlightLimit {
    /// At most `limit` requests at once (at least one).
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        InFlightLimit {
            limit,
            slots: Arc::new(Semaphore::new(limit)),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many more requests could start now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Waits up to `patience` for a slot; the request holds it until the permit is dropped.
    async fn acquire(&self, patience: Duration) -> Option<OwnedSemaphorePermit> {
        match tokio::time::timeout(patience, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            // The semaphore is never closed; a timeout is the only way to get here.
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

impl Default for InFlightLimit {
    fn default() -> Self {
        InFlightLimit::new(EgressPolicy::DEFAULT_MAX_IN_FLIGHT)
    }
}

/// The timeouts a request runs under, after clamping to [`EgressPolicy::max_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// DNS resolution plus TCP connect plus TLS handshake, each.
    pub connect: Duration,
    /// From sending the request to the response head.
    pub first_byte: Duration,
    /// Between two frames of the response body.
    pub between_bytes: Duration,
}

impl EgressPolicy {
    /// Default cap on response bodies: 16 MiB.
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
    /// Default cap on each timeout, and on a whole exchange: 90 s (above the long-poll
    /// timeouts platforms use).
    pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(90);
    /// Default number of requests one component may have in flight at once.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;

    /// A policy for `component` that denies everything, with the default limits.
    pub fn deny_all(component: impl Into<String>) -> Self {
        EgressPolicy {
            allow: Vec::new(),
            local_ok: Vec::new(),
            secrets: Vec::new(),
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
            max_timeout: Self::DEFAULT_MAX_TIMEOUT,
            max_exchange: None,
            in_flight: InFlightLimit::default(),
            refusals_logged: Arc::default(),
            component: component.into(),
            pool: ConnectionPool::default(),
        }
    }

    /// The total deadline of one exchange: [`max_exchange`](Self::max_exchange), or else
    /// [`max_timeout`](Self::max_timeout).
    pub fn exchange_deadline(&self) -> Duration {
        self.max_exchange.unwrap_or(self.max_timeout)
    }

    /// The granted destination a request to `uri` goes to, or why it may not be sent.
    ///
    /// Only absolute `http://` and `https://` URIs without userinfo can pass.
    pub fn check(&self, uri: &Uri) -> Result<&Destination, EgressError> {
        let invalid = |why| EgressError::InvalidUri {
            component: self.component.clone(),
            why,
        };
        let (scheme, host, port) = match request_parts(uri) {
            Ok(parts @ (Scheme::Http | Scheme::Https, _, _)) => parts,
            Ok(_) | Err(UriPartsError::UnsupportedScheme) => {
                return Err(EgressError::UnsupportedScheme {
                    component: self.component.clone(),
                    scheme: uri.scheme_str().unwrap_or_default().to_owned(),
                });
            }
            Err(UriPartsError::NoScheme) => return Err(invalid("it has no scheme")),
            Err(UriPartsError::NoHost) => return Err(invalid("it has no host")),
            Err(UriPartsError::Userinfo) => {
                return Err(invalid(
                    "it carries userinfo (user:password@); credentials belong in `secrets`",
                ));
            }
        };
        let component = || self.component.clone();
        self.allow
            .iter()
            .find(|d| d.matches(scheme, host, port))
            .ok_or_else(|| EgressError::NotAllowed {
                component: component(),
                destination: describe(scheme, host, port),
            })
    }

    /// Whether the operator granted `destination` for local use.
    pub fn is_local_ok(&self, destination: &Destination) -> bool {
        self.local_ok.contains(destination)
    }

    /// Headers that carry a secret for any destination. Components may not set them.
    pub fn reserved_headers(&self) -> Vec<HeaderName> {
        let mut names: Vec<HeaderName> = self
            .secrets
            .iter()
            .filter_map(|s| match &s.binding().position {
                SecretPosition::Header { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        names
    }

    /// Removes the [`HOST_SET_HEADERS`] a requester put into `request`, and every header that
    /// carries a secret: the connector sets `Host`, hyper frames the body, and injection sets
    /// the secret headers of the destination.
    ///
    /// `Content-Length` is kept only where hyper cannot frame the body from its own size: a
    /// streaming body (a component's `wasi:http` body, whose declared length wasmtime already
    /// holds it to) with one well-formed value its size hint does not contradict. A body of
    /// known size is always sent with its real length.
    pub fn drop_host_set_headers<B: hyper::body::Body>(&self, request: &mut http::Request<B>) {
        let hint = request.body().size_hint();
        let headers = request.headers_mut();
        let declared = {
            let mut values = headers.get_all(CONTENT_LENGTH).iter();
            match (values.next(), values.next()) {
                (Some(value), None) => value
                    .to_str()
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok()),
                _ => None,
            }
        };
        let keep_length = hint.exact().is_none()
            && declared.is_some_and(|n| n >= hint.lower() && hint.upper().is_none_or(|u| n <= u));
        for name in HOST_SET_HEADERS {
            if name != CONTENT_LENGTH.as_str() || !keep_length {
                headers.remove(name);
            }
        }
        for name in self.reserved_headers() {
            headers.remove(name);
        }
    }

    /// Clamps a request's timeouts to [`max_timeout`](Self::max_timeout); unset ones get it.
    pub fn clamp(&self, options: Option<RequestOptions>) -> Timeouts {
        let options = options.unwrap_or_default();
        let clamp = |t: Option<Duration>| t.map_or(self.max_timeout, |t| t.min(self.max_timeout));
        Timeouts {
            connect: clamp(options.connect_timeout),
            first_byte: clamp(options.first_byte_timeout),
            between_bytes: clamp(options.between_bytes_timeout),
        }
    }

    /// Puts the secrets bound to `destination` into `request`: removes every reserved header
    /// first, then sets each header-bound secret and puts the one path-prefix secret whose scope
    /// fits the path best at the start of the path (see [`SecretPosition::PathPrefix`]).
    /// Bodies and queries are never touched.
    ///
    /// `destination` must be the one [`check`](Self::check) returned for this request.
    pub fn inject<B>(
        &self,
        destination: &Destination,
        request: &mut http::Request<B>,
    ) -> Result<(), EgressError> {
        for name in self.reserved_headers() {
            request.headers_mut().remove(name);
        }
        let bound: Vec<&BoundSecret> = self
            .secrets
            .iter()
            .filter(|s| &s.binding().destination == destination)
            .collect();
        for secret in &bound {
            if let Some((name, value)) = secret.header() {
                request.headers_mut().insert(name, value);
            }
        }
        // One path prefix per request: the binding whose `under` matches most closely.
        let uri = request.uri().clone();
        let path = match uri.path() {
            "" => "/",
            path => path,
        };
        let chosen = bound
            .iter()
            .filter_map(|s| s.binding().position.path_match(path).map(|n| (n, *s)))
            .max_by_key(|(n, _)| *n);
        if let Some((under_len, secret)) = chosen
            && let Some(prefix) = secret.path_prefix()
        {
            let prefix = prefix.expose();
            let rest = &path.as_bytes()[under_len..];
            let mut path_and_query = Vec::with_capacity(prefix.len() + path.len() + 64);
            path_and_query.extend_from_slice(prefix);
            if prefix.ends_with(b"/") && rest.starts_with(b"/") {
                path_and_query.extend_from_slice(&rest[1..]);
            } else {
                path_and_query.extend_from_slice(rest);
            }
            if let Some(query) = uri.query() {
                path_and_query.push(b'?');
                path_and_query.extend_from_slice(query.as_bytes());
            }
            let injection_failed = || EgressError::Injection {
                name: secret.binding().name.clone(),
                destination: destination.to_string(),
            };
            let path_and_query =
                PathAndQuery::try_from(path_and_query).map_err(|_| injection_failed())?;
            let mut parts = uri.into_parts();
            parts.path_and_query = Some(path_and_query);
            *request.uri_mut() = Uri::from_parts(parts).map_err(|_| injection_failed())?;
        }
        Ok(())
    }

    /// What responses are scrubbed with, and requests checked against: every spelling of every
    /// bound secret, including the exact bytes [`inject`](Self::inject) writes, and of every
    /// other secret the host has loaded.
    pub fn scrubber(&self) -> Scrubber {
        loaded::scrubber_with(&self.secrets)
    }

    /// Whether a secret is bound to `destination`: then the host controls how its responses
    /// are transferred ([`control_transfer`](Self::control_transfer)).
    pub fn has_secret_for(&self, destination: &Destination) -> bool {
        self.secrets
            .iter()
            .any(|s| &s.binding().destination == destination)
    }

    /// For a destination with a bound secret: asks for the response unencoded and whole
    /// (`Accept-Encoding: identity`), dropping whatever the requester asked for instead
    /// (`Accept-Encoding`, `Range`, `If-Range`; `TE` is one of the [`HOST_SET_HEADERS`]). A
    /// server reflecting the secret could otherwise compress it, which no scrubbing sees, or
    /// cut it into pieces across several responses. Other destinations are left alone.
    pub fn control_transfer<B>(&self, destination: &Destination, request: &mut http::Request<B>) {
        if !self.has_secret_for(destination) {
            return;
        }
        let headers = request.headers_mut();
        for name in TRANSFER_HEADERS {
            headers.remove(name);
        }
        headers.insert(
            http::header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("identity"),
        );
    }

    /// Refuses a request whose URI or headers hold a spelling of a loaded secret (checked
    /// before injection: nothing a requester sends may carry one).
    pub fn check_no_secret<B>(
        &self,
        destination: &Destination,
        request: &http::Request<B>,
        scrubber: &Scrubber,
    ) -> Result<(), EgressError> {
        let refused = |place| EgressError::SecretInRequest {
            component: self.component.clone(),
            destination: destination.to_string(),
            place,
        };
        let uri = request.uri();
        if scrubber.finds(uri.path_and_query().map_or("", |p| p.as_str()).as_bytes()) {
            return Err(refused("its URL"));
        }
        for (name, value) in request.headers() {
            if scrubber.finds(name.as_str().as_bytes()) || scrubber.finds(value.as_bytes()) {
                return Err(refused("a header"));
            }
        }
        Ok(())
    }
}

/// Request headers the host replaces for destinations with a bound secret
/// ([`EgressPolicy::control_transfer`]).
pub const TRANSFER_HEADERS: [&str; 4] = ["accept-encoding", "range", "if-range", "te"];

/// `scheme://host[:port]` for messages, never with a path.
fn describe(scheme: Scheme, host: &str, port: u16) -> String {
    match Destination::new(scheme, host, port) {
        Ok(destination) => destination.to_string(),
        Err(_) => format!("{scheme}://{host}:{port}"),
    }
}

/// Sends a request the host makes on a component's behalf, under that component's policy.
///
/// The same checks, injection, limits and scrubbing apply as for the component's own requests.
pub async fn send_buffered(
    policy: &EgressPolicy,
    request: http::Request<Bytes>,
) -> Result<http::Response<Bytes>, EgressError> {
    execute(policy, request.map(Full::new), None).await
}

/// Like [`send_buffered`], with the caller's timeouts (clamped like a component's): a long
/// poll asks for a first-byte timeout longer than its poll.
pub async fn send_buffered_with(
    policy: &EgressPolicy,
    request: http::Request<Bytes>,
    options: RequestOptions,
) -> Result<http::Response<Bytes>, EgressError> {
    execute(policy, request.map(Full::new), Some(options)).await
}

/// The whole egress path; logs refusals.
async fn execute<B>(
    policy: &EgressPolicy,
    request: http::Request<B>,
    options: Option<RequestOptions>,
) -> Result<http::Response<Bytes>, EgressError>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let result = execute_unlogged(policy, request, options).await;
    if let Err(err) = &result {
        if err.is_denial() {
            match warn_budget::admit(&policy.refusals_logged, MAX_LOGGED_REFUSALS) {
                Admit::Log => tracing::warn!(
                    component = %policy.component,
                    destination = err.destination().unwrap_or("-"),
                    "egress refused: {err}"
                ),
                Admit::Fold => tracing::warn!(
                    component = %policy.component,
                    "egress refused {MAX_LOGGED_REFUSALS} requests; further refusals are not logged"
                ),
                Admit::Quiet => {}
            }
        } else {
            tracing::debug!(
                component = %policy.component,
                destination = err.destination().unwrap_or("-"),
                "egress failed: {err}"
            );
        }
    }
    result
}

async fn execute_unlogged<B>(
    policy: &EgressPolicy,
    mut request: http::Request<B>,
    options: Option<RequestOptions>,
) -> Result<http::Response<Bytes>, EgressError>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let destination = policy.check(request.uri())?.clone();
    let timeouts = policy.clamp(options);
    policy.drop_host_set_headers(&mut request);
    let scrubber = policy.scrubber();
    policy.check_no_secret(&destination, &request, &scrubber)?;
    policy.control_transfer(&destination, &mut request);
    let found = screen::Found::default();
    let request = request.map(|body| screen::Screened::new(body, scrubber, found.clone()));

    // Held until the response is buffered and scrubbed: the slot stands for that buffer.
    let waiting = Instant::now();
    let Some(_slot) = policy.in_flight.acquire(timeouts.connect).await else {
        return Err(EgressError::ConnectionLimitReached {
            component: policy.component.clone(),
            destination: destination.to_string(),
            limit: policy.in_flight.limit(),
            waited: waiting.elapsed(),
        });
    };

    let deadline = policy.exchange_deadline();
    let mut request = request;
    let exchange = async {
        // Put in the request only; it leaves on a connection to checked addresses alone.
        policy.inject(&destination, &mut request)?;
        connector::exchange(policy, &destination, request, timeouts).await
    };
    let result = tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| EgressError::Timeout {
            component: policy.component.clone(),
            destination: destination.to_string(),
            phase: Phase::Exchange,
            after: deadline,
        })?;
    // A body that held a secret was cut off before it; whatever the exchange made of that,
    // the reason is the secret.
    if found.is_set() {
        return Err(EgressError::SecretInRequest {
            component: policy.component.clone(),
            destination: destination.to_string(),
            place: "its body",
        });
    }
    result
}

/// [`WasiHttpHooks`] that send every `wasi:http` request of one component through egress.
///
/// Its forbidden-header filter adds every header that carries a secret (for any destination) to
/// wasmtime's default forbidden set, so a component cannot set `Authorization` itself when a
/// secret uses it. (Whatever passes this filter still goes through
/// [`EgressPolicy::drop_host_set_headers`].) Refusals reach the component as
/// `HTTP-request-denied` (not granted), `destination-IP-prohibited` (restricted address),
/// `HTTP-response-body-size` (too large), `connection-limit-reached` (too many requests in
/// flight) or `HTTP-response-timeout` (past the total deadline).
pub struct EgressHooks {
    policy: Arc<EgressPolicy>,
    forbidden: ForbiddenHeaderFilter,
}

impl EgressHooks {
    /// Hooks enforcing `policy`.
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        let reserved = policy.reserved_headers();
        let forbidden: ForbiddenHeaderFilter = Arc::new(move |name: &HeaderName| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name) || reserved.contains(name)
        });
        EgressHooks { policy, forbidden }
    }

    /// The policy enforced.
    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }
}

impl std::fmt::Debug for EgressHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressHooks")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for EgressHooks {
    fn is_forbidden_header(&mut self, name: &HeaderName) -> bool {
        (self.forbidden)(name)
    }

    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        self.forbidden.clone()
    }

    fn is_supported_scheme(&mut self, scheme: &http::uri::Scheme) -> bool {
        *scheme == http::uri::Scheme::HTTP || *scheme == http::uri::Scheme::HTTPS
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> Box<
        dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
            + Send,
    > {
        // The response is fully buffered before it is returned, so there is no response
        // processing to report on.
        drop(fut);
        let policy = self.policy.clone();
        Box::new(async move {
            let response = execute(&policy, request, options).await?;
            let response =
                response.map(|body| Full::new(body).map_err(|n| match n {}).boxed_unsync());
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

/// A phase of an exchange that can time out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Resolving the host.
    Dns,
    /// TCP connect and TLS handshake.
    Connect,
    /// Waiting for the response head.
    FirstByte,
    /// Waiting for the next piece of the response body.
    BetweenBytes,
    /// The whole exchange, from resolving the host to the last byte of the body.
    Exchange,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Dns => "DNS answer",
            Phase::Connect => "connection",
            Phase::FirstByte => "response",
            Phase::BetweenBytes => "further response data",
            Phase::Exchange => "complete response",
        })
    }
}

/// Why egress refused or failed a request. Messages never contain a secret or a request path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The destination is not granted.
    #[error(
        "{destination} is not in outbound_http of component {component}; \
         add it to the manifest and grant it"
    )]
    NotAllowed {
        /// The component.
        component: String,
        /// `scheme://host[:port]` of the request.
        destination: String,
    },
    /// The scheme is not `http` or `https`.
    #[error(
        "component {component} asked for a {scheme}:// request; egress carries only \
         http:// and https:// (websockets have their own grant, `websocket`)"
    )]
    UnsupportedScheme {
        /// The component.
        component: String,
        /// The scheme requested.
        scheme: String,
    },
    /// The URI cannot be checked.
    #[error("component {component} sent a request URI egress cannot accept: {why}")]
    InvalidUri {
        /// The component.
        component: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The host resolved to a restricted address and the destination is not granted for local
    /// use.
    #[error(
        "{destination} resolves to {addr}, a {reason} address, which component {component} \
         may not reach; if it is a local service meant for this component, the operator can \
         grant it for local use in airlock.toml: \
         [components.{component}.grant] local = [\"{destination}\"]"
    )]
    RestrictedAddress {
        /// The component.
        component: String,
        /// The granted destination.
        destination: String,
        /// The first restricted address found.
        addr: IpAddr,
        /// Which rule it falls under (see [`ip_policy`](crate::net::ip_policy)).
        reason: &'static str,
    },
    /// Resolving the host failed.
    #[error("cannot resolve {destination}: {source}")]
    Dns {
        /// The destination.
        destination: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The host resolved to nothing.
    #[error("{destination} resolves to no address")]
    NoAddress {
        /// The destination.
        destination: String,
    },
    /// TCP connect failed.
    #[error("cannot connect to {destination}: {source}")]
    Connect {
        /// The destination.
        destination: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS with {destination} failed: {source}")]
    Tls {
        /// The destination.
        destination: String,
        /// The TLS error.
        source: std::io::Error,
    },
    /// The component already has as many requests in flight as it may, and none finished while
    /// this one waited.
    #[error(
        "component {component} already has {limit} requests in flight, the most it may have; \
         the request to {destination} waited {waited:?} for one to finish and was given up"
    )]
    ConnectionLimitReached {
        /// The component.
        component: String,
        /// The destination of the request given up.
        destination: String,
        /// The limit ([`EgressPolicy::in_flight`]).
        limit: usize,
        /// How long the request waited.
        waited: Duration,
    },
    /// A phase took longer than allowed.
    #[error("no {phase} from {destination} within {after:?} (the limit for component {component})")]
    Timeout {
        /// The component.
        component: String,
        /// The destination.
        destination: String,
        /// What was awaited.
        phase: Phase,
        /// The clamped timeout.
        after: Duration,
    },
    /// The response body is larger than the cap.
    #[error(
        "the response from {destination} is larger than {limit} bytes, \
         the response limit of component {component}"
    )]
    ResponseTooLarge {
        /// The component.
        component: String,
        /// The destination.
        destination: String,
        /// The cap.
        limit: usize,
    },
    /// HTTP/1.1 protocol failure (also a failing request body).
    #[error("HTTP exchange with {destination} failed: {source}")]
    Http {
        /// The destination.
        destination: String,
        /// hyper's error.
        source: hyper::Error,
    },
    /// The request held a loaded secret (in any spelling). Requesters never have one, so this
    /// is a component that obtained a value and tried to send it on.
    #[error(
        "component {component} tried to send a secret the host holds to {destination} \
         (in {place}); requests may not carry secrets: a secret is sent only where the \
         manifest binds it, by the host"
    )]
    SecretInRequest {
        /// The component.
        component: String,
        /// The destination of the request.
        destination: String,
        /// Where in the request: `its URL`, `a header` or `its body`.
        place: &'static str,
    },
    /// The response came in a content coding the host cannot decode, so it cannot be scrubbed.
    #[error(
        "the response from {destination} is encoded as {encoding:?}, which airlock cannot \
         decode to scrub it (it decodes gzip and deflate, and asks for no encoding at all); \
         the server ignored `Accept-Encoding: identity`"
    )]
    UnsupportedEncoding {
        /// The component.
        component: String,
        /// The destination.
        destination: String,
        /// The coding named (cut short, printable characters only).
        encoding: String,
    },
    /// A secret could not be placed into the request.
    #[error("secret {name} could not be put into the request to {destination}")]
    Injection {
        /// The secret's name.
        name: String,
        /// The destination.
        destination: String,
    },
}

impl EgressError {
    /// Whether this is a policy refusal (as opposed to a network failure).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            EgressError::NotAllowed { .. }
                | EgressError::UnsupportedScheme { .. }
                | EgressError::InvalidUri { .. }
                | EgressError::RestrictedAddress { .. }
                | EgressError::ResponseTooLarge { .. }
                | EgressError::ConnectionLimitReached { .. }
                | EgressError::SecretInRequest { .. }
                | EgressError::UnsupportedEncoding { .. }
        )
    }

    /// The `scheme://host[:port]` involved, when known.
    pub fn destination(&self) -> Option<&str> {
        match self {
            EgressError::NotAllowed { destination, .. }
            | EgressError::RestrictedAddress { destination, .. }
            | EgressError::Dns { destination, .. }
            | EgressError::NoAddress { destination }
            | EgressError::Connect { destination, .. }
            | EgressError::Tls { destination, .. }
            | EgressError::Timeout { destination, .. }
            | EgressError::ResponseTooLarge { destination, .. }
            | EgressError::Http { destination, .. }
            | EgressError::Injection { destination, .. }
            | EgressError::SecretInRequest { destination, .. }
            | EgressError::UnsupportedEncoding { destination, .. }
            | EgressError::ConnectionLimitReached { destination, .. } => Some(destination),
            EgressError::UnsupportedScheme { .. } | EgressError::InvalidUri { .. } => None,
        }
    }
}

/// The `wasi:http` error a component sees.
impl From<EgressError> for wasmtime_wasi_http::Error {
    fn from(err: EgressError) -> Self {
        use wasmtime_wasi_http::Error as E;
        match err {
            EgressError::NotAllowed { .. }
            | EgressError::UnsupportedScheme { .. }
            | EgressError::SecretInRequest { .. } => E::HttpRequestDenied,
            EgressError::UnsupportedEncoding { .. } => E::HttpProtocolError,
            EgressError::InvalidUri { .. } => E::HttpRequestUriInvalid,
            EgressError::RestrictedAddress { .. } => E::DestinationIpProhibited,
            EgressError::Dns { .. } => E::DnsError {
                rcode: None,
                info_code: None,
            },
            EgressError::NoAddress { .. } => E::DestinationNotFound,
            EgressError::Connect { source, .. } => E::Connect(source),
            EgressError::Tls { source, .. } => E::Tls(source),
            EgressError::Timeout { phase, .. } => match phase {
                Phase::Dns => E::DnsTimeout,
                Phase::Connect => E::ConnectionTimeout,
                Phase::FirstByte | Phase::BetweenBytes => E::ConnectionReadTimeout,
                Phase::Exchange => E::HttpResponseTimeout,
            },
            EgressError::ConnectionLimitReached { .. } => E::ConnectionLimitReached,
            EgressError::ResponseTooLarge { limit, .. } => {
                E::HttpResponseBodySize(Some(limit as u64))
            }
            EgressError::Http { source, .. } => E::Hyper(source),
            EgressError::Injection { .. } => E::InternalError(Some(
                "a secret could not be injected into the request".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
