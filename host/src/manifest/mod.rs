//! Manifests and operator grants.
