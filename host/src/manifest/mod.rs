//! Manifests and operator grants.
//!
//! A component's manifest states what it asks for; the operator's grant states what it may
//! have. The effective capability is the intersection of the two.

pub mod destination;
