//! Capabilities a component may be granted.
//!
//! Each module here is one capability the host can link into a component, together with the
//! policy that bounds it. Policy is enforced on the host side of the boundary: a component
//! only ever sees the interfaces it was granted, and every call through them is checked.

pub(crate) mod alerts;
pub(crate) mod clock;
pub(crate) mod egress;
pub(crate) mod kv;
pub mod log;
pub(crate) mod websocket;
