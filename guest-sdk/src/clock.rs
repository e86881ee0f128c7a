//! Wall time and host-owned timers (adapters only: the `filter` world does
//! not import the clock).
//!
//! A timer fires by calling [`Adapter::on_timer`](crate::Adapter::on_timer);
//! the adapter never blocks waiting.

use crate::adapter_bindings::airlock::channel::clock;

/// Milliseconds since the Unix epoch, from the host's clock.
pub fn now_ms() -> u64 {
    clock::now_ms()
}

/// Fires `on_timer(name)` after `after_ms` milliseconds; replaces a pending
/// timer of that name.
pub fn set_timer(name: &str, after_ms: u64) {
    clock::set_timer(name, after_ms);
}

/// Forgets a pending timer; does nothing if there is none.
pub fn cancel_timer(name: &str) {
    clock::cancel_timer(name);
}
