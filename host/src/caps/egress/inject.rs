//! What the host takes out of a request and what it puts in: the headers that belong to the
//! host are dropped (step 2), a request holding a loaded secret is refused, the transfer to a
//! destination with a bound secret is the host's to shape, and the secrets bound to the
//! destination are injected at their positions (step 5). Here too is the scrubber that
//! requests are checked with and responses cleaned with.

use http::header::CONTENT_LENGTH;
use http::uri::PathAndQuery;
use http::{HeaderName, Uri};

use super::{EgressError, EgressPolicy};
use crate::manifest::{HOST_SET_HEADERS, SecretPosition};
use crate::net::destination::Destination;
use crate::secrets::{Scrubber, header_secrets, loaded, path_prefix_secret};

impl EgressPolicy {
    /// Headers that carry a secret for any destination. Components may not set them.
    pub(crate) fn reserved_headers(&self) -> Vec<HeaderName> {
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
    pub(crate) fn drop_host_set_headers<B: hyper::body::Body>(
        &self,
        request: &mut http::Request<B>,
    ) {
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

    /// Puts the secrets bound to `destination` into `request`: removes every reserved header
    /// first, then sets, for each header, the header-bound secret whose scope fits the path
    /// best, and puts the one path-prefix secret whose scope fits the path best at the start of
    /// the path (see [`SecretPosition`]).
    /// Bodies and queries are never touched.
    ///
    /// `destination` must be the one [`check`](Self::check) returned for this request.
    pub(crate) fn inject<B>(
        &self,
        destination: &Destination,
        request: &mut http::Request<B>,
    ) -> Result<(), EgressError> {
        for name in self.reserved_headers() {
            request.headers_mut().remove(name);
        }
        let uri = request.uri().clone();
        let path = match uri.path() {
            "" => "/",
            path => path,
        };
        // Per header, and for the one path prefix: the binding whose `under` matches most
        // closely.
        for (name, value) in header_secrets(&self.secrets, destination, path) {
            request.headers_mut().insert(name, value);
        }
        if let Some((under_len, secret)) = path_prefix_secret(&self.secrets, destination, path)
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
    pub(crate) fn scrubber(&self) -> Scrubber {
        loaded::scrubber_with(&self.secrets)
    }

    /// Whether a secret is bound to `destination`: then the host controls how its responses
    /// are transferred ([`control_transfer`](Self::control_transfer)).
    pub(crate) fn has_secret_for(&self, destination: &Destination) -> bool {
        self.secrets
            .iter()
            .any(|s| &s.binding().destination == destination)
    }

    /// For a destination with a bound secret: asks for the response unencoded and whole
    /// (`Accept-Encoding: identity`), dropping whatever the requester asked for instead
    /// (`Accept-Encoding`, `Range`, `If-Range`; `TE` is one of the [`HOST_SET_HEADERS`]). A
    /// server reflecting the secret could otherwise compress it, which no scrubbing sees, or
    /// cut it into pieces across several responses. Other destinations are left alone.
    pub(crate) fn control_transfer<B>(
        &self,
        destination: &Destination,
        request: &mut http::Request<B>,
    ) {
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
    pub(crate) fn check_no_secret<B>(
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
pub(crate) const TRANSFER_HEADERS: [&str; 4] = ["accept-encoding", "range", "if-range", "te"];
