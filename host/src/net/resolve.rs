//! Checked resolution: a destination's host is resolved once, every address is checked, and
//! the caller connects to exactly those addresses.
//!
//! wasmtime's default HTTP sender and tungstenite's `connect` both resolve by name and never
//! show the addresses to a policy. Egress and websockets resolve here instead, so that the
//! addresses checked are the addresses connected to: there is no second lookup a rebinding DNS
//! server could answer differently.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::timeout;

use super::destination::Destination;
use super::ip_policy;

/// Which resolved addresses a destination may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressScope {
    /// Public addresses only: one restricted answer refuses the destination.
    Public,
    /// Any address: the operator granted the destination for local use (the grant's `local`).
    Local,
}

impl AddressScope {
    /// [`Local`](Self::Local) if `destination` is one of the operator's `local` grants, else
    /// [`Public`](Self::Public).
    pub(crate) fn of(destination: &Destination, local: &[Destination]) -> Self {
        if local.contains(destination) {
            AddressScope::Local
        } else {
            AddressScope::Public
        }
    }
}

/// Why a destination's addresses were not handed out. Each protocol maps it into its own error;
/// the messages name the component and the destination, never a path.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    /// The resolver did not answer in time.
    #[error(
        "no DNS answer from {destination} within {after:?} (the limit for component {component})"
    )]
    Timeout {
        /// The component.
        component: String,
        /// The destination.
        destination: String,
        /// The time allowed.
        after: Duration,
    },
    /// Resolving the host failed.
    #[error("cannot resolve {destination}: {source}")]
    Lookup {
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
    /// The host resolved to a restricted address and the destination is not granted for local
    /// use.
    #[error(
        "{destination} resolves to {addr}, a {reason} address, which component {component} \
         may not reach; if it is a local service meant for this component, the operator can \
         grant it for local use in airlock.toml: \
         [components.{component}.grant] local = [\"{destination}\"]"
    )]
    Restricted {
        /// The component.
        component: String,
        /// The destination.
        destination: String,
        /// The first restricted address found.
        addr: IpAddr,
        /// Which rule it falls under (see [`ip_policy`]).
        reason: &'static str,
    },
}

impl ResolveError {
    /// `scheme://host[:port]` of the destination that was resolved.
    pub(crate) fn destination(&self) -> &str {
        match self {
            ResolveError::Timeout { destination, .. }
            | ResolveError::Lookup { destination, .. }
            | ResolveError::NoAddress { destination }
            | ResolveError::Restricted { destination, .. } => destination,
        }
    }
}

/// Resolves `destination` for `component` within `limit` and checks every address against
/// [`ip_policy`], unless `scope` is [`AddressScope::Local`].
///
/// Returns the addresses to connect to; connecting anywhere else (or resolving again) would undo
/// the check. IP-literal hosts are not looked up.
pub(crate) async fn resolve_checked(
    component: &str,
    destination: &Destination,
    scope: AddressScope,
    limit: Duration,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let name = || destination.to_string();
    let port = destination.port();
    let addrs: Vec<SocketAddr> = match destination.host().parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((destination.host(), port));
            let found = timeout(limit, lookup)
                .await
                .map_err(|_| ResolveError::Timeout {
                    component: component.to_owned(),
                    destination: name(),
                    after: limit,
                })?
                .map_err(|source| ResolveError::Lookup {
                    destination: name(),
                    source,
                })?;
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for addr in found {
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            addrs
        }
    };
    if addrs.is_empty() {
        return Err(ResolveError::NoAddress {
            destination: name(),
        });
    }
    if scope == AddressScope::Public {
        // One restricted answer refuses the whole destination: a name that mixes public and
        // private addresses is either misconfigured or an attack, and silently dropping the
        // private ones would hide both.
        if let Some((addr, reason)) = addrs
            .iter()
            .find_map(|a| ip_policy::restriction(a.ip()).map(|why| (a.ip(), why)))
        {
            return Err(ResolveError::Restricted {
                component: component.to_owned(),
                destination: name(),
                addr,
                reason,
            });
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(s: &str) -> Destination {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_restricted_literal_is_refused_unless_granted_local() {
        let d = destination("http://127.0.0.1:8080");
        let limit = Duration::from_secs(5);
        let err = resolve_checked("c", &d, AddressScope::Public, limit)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ResolveError::Restricted {
                    reason: "loopback",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("[components.c.grant] local"),
            "{err}"
        );
        let local = AddressScope::of(&d, std::slice::from_ref(&d));
        assert_eq!(local, AddressScope::Local);
        let addrs = resolve_checked("c", &d, local, limit).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:8080".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_public_literal_passes_without_a_lookup() {
        let d = destination("https://1.1.1.1");
        let addrs = resolve_checked("c", &d, AddressScope::Public, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(addrs, vec!["1.1.1.1:443".parse().unwrap()]);
    }

    #[test]
    fn only_the_listed_destinations_are_local() {
        let d = destination("http://127.0.0.1:8080");
        let other = destination("http://127.0.0.1:8081");
        assert_eq!(AddressScope::of(&d, &[other]), AddressScope::Public);
        assert_eq!(AddressScope::of(&d, &[]), AddressScope::Public);
    }
}
