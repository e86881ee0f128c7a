//! The audit trail: what happened, who asked, and what the session did.
//!
//! One append-only table in `airlock.db`, each row chained to the one before
//! by SHA-256 (`chain.rs`), so that an edited, deleted or reordered row is
//! found by `airlock audit verify`, and a cut tail too when a checkpoint
//! kept elsewhere is given. What callers record is an [`Entry`]
//! (`entry.rs`); the store (`store.rs`) stamps it, scrubs every loaded
//! secret out of every field, keeps message text as `[audit] content` says
//! (`content.rs`), and chains it inside the writing transaction, which on
//! the hot path is the queue's own. Rows are shipped to an OpenTelemetry
//! collector when one is configured (`otlp.rs`).

pub mod chain;
pub mod content;
pub mod entry;
pub mod otlp;
pub mod store;

pub use entry::{Entry, Kind};
pub use store::AuditStore;
