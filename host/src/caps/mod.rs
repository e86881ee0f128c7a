//! Capabilities a component may be granted.
