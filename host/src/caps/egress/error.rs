//! Why egress refused or failed a request, and what a component sees of it.

use std::time::Duration;

use crate::net::resolve::ResolveError;

/// A phase of an exchange that can time out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Phase {
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
pub(crate) enum EgressError {
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
    /// Resolving the destination failed, or it resolved to an address the component may not
    /// reach.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
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
        /// The limit ([`EgressPolicy::in_flight`](super::EgressPolicy::in_flight)).
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
    pub(crate) fn is_denial(&self) -> bool {
        matches!(
            self,
            EgressError::NotAllowed { .. }
                | EgressError::UnsupportedScheme { .. }
                | EgressError::InvalidUri { .. }
                | EgressError::Resolve(ResolveError::Restricted { .. })
                | EgressError::ResponseTooLarge { .. }
                | EgressError::ConnectionLimitReached { .. }
                | EgressError::SecretInRequest { .. }
                | EgressError::UnsupportedEncoding { .. }
        )
    }

    /// One line for an alert about this refusal of `component`'s request: what was refused, why,
    /// and what became of it. Names the destination (`scheme://host[:port]`), never a path, a
    /// header value or a body.
    pub(crate) fn alert_text(&self, component: &str) -> String {
        let not_sent = "the request did not go out";
        let dropped = "the response was dropped";
        match self {
            EgressError::NotAllowed { destination, .. } => {
                format!(
                    "{component} was refused egress to {destination} (not in its grant); {not_sent}"
                )
            }
            EgressError::UnsupportedScheme { scheme, .. } => format!(
                "{component} was refused egress to a {}:// URL (egress carries only http and https); {not_sent}",
                crate::text::one_line(scheme, 20)
            ),
            EgressError::InvalidUri { why, .. } => format!(
                "{component} was refused egress: its request URI cannot be checked ({why}); {not_sent}"
            ),
            EgressError::Resolve(ResolveError::Restricted {
                destination,
                addr,
                reason,
                ..
            }) => format!(
                "{component} was refused egress to {destination} (it resolves to {addr}, a {reason} address, and is not granted for local use); {not_sent}"
            ),
            EgressError::ConnectionLimitReached {
                destination, limit, ..
            } => format!(
                "{component} was refused egress to {destination} (already {limit} requests in flight, its limit); {not_sent}"
            ),
            EgressError::SecretInRequest {
                destination, place, ..
            } => format!(
                "{component} was refused egress to {destination} (a secret the host holds was in {place}); the secret was not sent"
            ),
            EgressError::ResponseTooLarge {
                destination, limit, ..
            } => format!(
                "{component} was refused a response from {destination} (larger than its limit of {limit} bytes); {dropped}"
            ),
            EgressError::UnsupportedEncoding { destination, .. } => format!(
                "{component} was refused a response from {destination} (in a content coding airlock cannot decode to scrub); {dropped}"
            ),
            other => format!(
                "{component}'s request to {} failed",
                other.destination().unwrap_or("a destination")
            ),
        }
    }

    /// The `scheme://host[:port]` involved, when known.
    pub(crate) fn destination(&self) -> Option<&str> {
        match self {
            EgressError::NotAllowed { destination, .. }
            | EgressError::Connect { destination, .. }
            | EgressError::Tls { destination, .. }
            | EgressError::Timeout { destination, .. }
            | EgressError::ResponseTooLarge { destination, .. }
            | EgressError::Http { destination, .. }
            | EgressError::Injection { destination, .. }
            | EgressError::SecretInRequest { destination, .. }
            | EgressError::UnsupportedEncoding { destination, .. }
            | EgressError::ConnectionLimitReached { destination, .. } => Some(destination),
            EgressError::Resolve(e) => Some(e.destination()),
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
            EgressError::Resolve(e) => match e {
                ResolveError::Restricted { .. } => E::DestinationIpProhibited,
                ResolveError::Lookup { .. } => E::DnsError {
                    rcode: None,
                    info_code: None,
                },
                ResolveError::NoAddress { .. } => E::DestinationNotFound,
                ResolveError::Timeout { .. } => E::DnsTimeout,
            },
            EgressError::Connect { source, .. } => E::Connect(source),
            EgressError::Tls { source, .. } => E::Tls(source),
            EgressError::Timeout { phase, .. } => match phase {
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
mod tests {
    use super::*;

    #[test]
    fn a_resolution_error_keeps_its_words_and_destination() {
        let destination = || "https://api.example:8443".to_owned();
        let errors = || {
            [
                ResolveError::Timeout {
                    component: "c".into(),
                    destination: destination(),
                    after: Duration::from_secs(3),
                },
                ResolveError::Lookup {
                    destination: destination(),
                    source: std::io::Error::other("no such host"),
                },
                ResolveError::NoAddress {
                    destination: destination(),
                },
                ResolveError::Restricted {
                    component: "c".into(),
                    destination: destination(),
                    addr: "10.0.0.1".parse().unwrap(),
                    reason: "private",
                },
            ]
        };
        for (err, words) in errors().into_iter().zip(errors().map(|e| e.to_string())) {
            let egress = EgressError::from(err);
            assert_eq!(egress.to_string(), words);
            assert_eq!(egress.destination(), Some(destination().as_str()));
        }
    }
}
