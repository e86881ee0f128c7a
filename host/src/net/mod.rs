//! Network policy: may this component reach this address?
//!
//! Every protocol a component is granted (outbound HTTP in `caps::egress`, websockets in
//! `caps::websocket`) asks the same questions in the same order, so the answers live here
//! once: which destinations a grant names ([`destination`]), which resolved addresses are
//! restricted ([`ip_policy`]), resolving a destination and checking every address before a
//! connection is made (`resolve`), and the one TLS client configuration (`tls`). The protocols
//! depend on this module and never on each other.
//!
//! This module is policy and plumbing for it only: it imports no other top-level module.

pub mod destination;
pub mod ip_policy;
pub(crate) mod resolve;
pub(crate) mod tls;
