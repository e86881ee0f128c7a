//! Egress: the only way a component's HTTP requests leave the machine.
//!
//! Every request, whether a component makes it through `wasi:http/outgoing-handler` (via
//! [`EgressHooks`]) or the host makes it on a component's behalf (a long-poll, via
//! [`send_buffered_with`]), takes the same path:
//!
//! 1. **Allowlist.** The request's `scheme://host:port` must be one of the component's granted
//!    destinations ([`EgressPolicy::check`]); an empty list denies everything. Nothing is
//!    resolved or connected before this passes.
//! 2. **Host-set headers.** Headers that frame or route the request
//!    ([`HOST_SET_HEADERS`](crate::manifest::HOST_SET_HEADERS): `Host`, `Connection`,
//!    `Transfer-Encoding`, `Upgrade`, …) and those that carry secrets are dropped, whoever built
//!    the request; the connector sets `Host` and hyper frames the body. `Content-Length` is
//!    dropped too, except for a streaming body it describes (see
//!    [`EgressPolicy::drop_host_set_headers`]).
//! 3. **In-flight limit.** At most [`EgressPolicy::in_flight`] requests of one component are
//!    under way at once, each holding its slot until its response is buffered and scrubbed; a
//!    request beyond that waits for a slot, at most its connect timeout, and then fails with
//!    [`EgressError::ConnectionLimitReached`].
//! 4. **Resolved-address check.** The host is resolved once (`net::resolve`, shared with
//!    websockets), and if *any* address is restricted ([`ip_policy`](crate::net::ip_policy):
//!    loopback, private, link-local, cloud metadata, …) the request is refused unless the
//!    operator granted that destination for local use (the grant's `local`,
//!    [`EgressPolicy::local_ok`] here). The connection goes to the checked addresses only; there
//!    is no second lookup a rebinding DNS server could answer differently.
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
//!    raw value, its encodings and its pieces (see [`Scrubber`](crate::secrets::Scrubber)), and
//!    the exact bytes it was injected as
//!    ([`BoundSecret::scrub_forms`](crate::secrets::BoundSecret::scrub_forms)).
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
//!
//! One concept a file: the policy and the allowlist (`policy.rs`), what the host takes out of a
//! request and puts in (`inject.rs`), the send pipeline (`send.rs`), the `wasi:http` hooks
//! (`hooks.rs`), the error (`error.rs`); below them the connector (`connector.rs`), the kept
//! connections (`pool.rs`), response decoding (`decode.rs`) and body screening (`screen.rs`).

mod connector;
mod decode;
mod error;
mod handler;
mod hooks;
mod inject;
mod policy;
mod pool;
mod screen;
mod send;

pub(crate) use error::{EgressError, Phase};
pub use handler::add_to_linker as add_outgoing_handler_to_linker;
pub(crate) use hooks::EgressHooks;
pub use policy::EgressPolicy;
#[cfg(test)]
use policy::InFlightLimit;
pub(crate) use policy::{MAX_LOGGED_REFUSALS, Timeouts};
pub use pool::ConnectionPool;
#[cfg(test)]
pub(crate) use send::send_buffered;
pub(crate) use send::send_buffered_with;

#[cfg(test)]
mod tests;
