//! The policy of one component: what it may reach, how long an exchange may take, how many
//! requests it may have in flight, and the first check of every request (the allowlist,
//! [`EgressPolicy::check`]).

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use http::Uri;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::RequestOptions;

use super::{ConnectionPool, EgressError};
use crate::caps::alerts::ComponentAlerts;
use crate::net::destination::{Destination, Scheme, UriPartsError, request_parts};
use crate::net::resolve::AddressScope;
use crate::secrets::BoundSecret;

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
    /// Where its refusals are raised as alerts, while they are still logged.
    pub(crate) alerts: ComponentAlerts,
}

/// Refusals logged per component before they are only counted.
pub(crate) const MAX_LOGGED_REFUSALS: u32 = 50;

/// A limit on the requests one component has in flight, each of which may buffer up to
/// [`EgressPolicy::max_response_bytes`] on the host. Clones share the count.
#[derive(Debug, Clone)]
pub struct InFlightLimit {
    limit: usize,
    pub(super) slots: Arc<Semaphore>,
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
    pub(super) async fn acquire(&self, patience: Duration) -> Option<OwnedSemaphorePermit> {
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
pub(crate) struct Timeouts {
    /// DNS resolution plus TCP connect plus TLS handshake, each.
    pub(crate) connect: Duration,
    /// From sending the request to the response head.
    pub(crate) first_byte: Duration,
    /// Between two frames of the response body.
    pub(crate) between_bytes: Duration,
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
            alerts: ComponentAlerts::log_only(),
        }
    }

    /// The total deadline of one exchange: [`max_exchange`](Self::max_exchange), or else
    /// [`max_timeout`](Self::max_timeout).
    pub(crate) fn exchange_deadline(&self) -> Duration {
        self.max_exchange.unwrap_or(self.max_timeout)
    }

    /// The granted destination a request to `uri` goes to, or why it may not be sent.
    ///
    /// Only absolute `http://` and `https://` URIs without userinfo can pass.
    pub(crate) fn check(&self, uri: &Uri) -> Result<&Destination, EgressError> {
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

    /// Which addresses `destination` may resolve to: restricted ones only if the operator
    /// granted it for local use ([`local_ok`](Self::local_ok)).
    pub(crate) fn address_scope(&self, destination: &Destination) -> AddressScope {
        AddressScope::of(destination, &self.local_ok)
    }

    /// Clamps a request's timeouts to [`max_timeout`](Self::max_timeout); unset ones get it.
    pub(crate) fn clamp(&self, options: Option<RequestOptions>) -> Timeouts {
        let options = options.unwrap_or_default();
        let clamp = |t: Option<Duration>| t.map_or(self.max_timeout, |t| t.min(self.max_timeout));
        Timeouts {
            connect: clamp(options.connect_timeout),
            first_byte: clamp(options.first_byte_timeout),
            between_bytes: clamp(options.between_bytes_timeout),
        }
    }
}

/// `scheme://host[:port]` for messages, never with a path.
fn describe(scheme: Scheme, host: &str, port: u16) -> String {
    match Destination::new(scheme, host, port) {
        Ok(destination) => destination.to_string(),
        Err(_) => format!("{scheme}://{host}:{port}"),
    }
}
