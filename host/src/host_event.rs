//! Events host-owned machinery raises for an adapter instance.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::bindings::types::{WsConnection, WsEvent};

/// Something the host must hand to the adapter through an export.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEvent {
    /// A timer set with `clock.set-timer` fired.
    Timer {
        /// The instance that set it; events of a discarded instance are ignored.
        generation: u64,
        /// The timer's name.
        name: String,
    },
    /// Something happened on a websocket the adapter opened.
    Ws {
        /// The instance that opened it; events of a discarded instance are ignored.
        generation: u64,
        /// The connection.
        conn: WsConnection,
        /// What happened (frames already scrubbed of secrets).
        event: WsEvent,
        /// Held until the guest has been handed the event.
        delivery: Delivery,
    },
}

/// A slot in a connection's window of events not yet handed to the guest, released when the
/// event is dropped. A connection waits for a slot before posting, and so stops reading its
/// socket while the guest lags: a flooding server backs up into TCP, not into host memory.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    // Only ever dropped: that is what frees the slot.
    _slot: Option<Arc<OwnedSemaphorePermit>>,
}

impl Delivery {
    /// A delivery holding `permit`.
    pub fn new(permit: OwnedSemaphorePermit) -> Self {
        Delivery {
            _slot: Some(Arc::new(permit)),
        }
    }
}

/// Every delivery is alike: the slot is bookkeeping, not part of the event.
impl PartialEq for Delivery {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Delivery {}
