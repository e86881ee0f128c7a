//! Events host-owned machinery raises for an adapter instance.

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
}
