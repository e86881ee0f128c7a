//! The [`Filter`] trait and its bridge to the generated `message-filter` export.

use core::marker::PhantomData;

use crate::filter_bindings::exports::airlock::channel::message_filter::Guest;
use crate::types::{InboundMessage, InboundVerdict, OutboundMessage, OutboundVerdict, Settings};

/// A message filter: the `message-filter` interface of the `airlock:channel`
/// WIT package, as associated functions.
///
/// The host runs inbound filters after its access gate and outbound filters
/// before the adapter. Filters keep no state between messages: the host may
/// use a fresh instance for any call, and gives the settings again through
/// [`configure`](Filter::configure) before every message.
///
/// Every method has a default: `configure` accepts any settings and both
/// verdicts are [`Pass`](InboundVerdict::Pass), so a filter implements only
/// the direction it cares about.
pub trait Filter {
    /// Settings from the operator's config, given before every message.
    /// Return `Err` with a readable reason to reject them. Default: `Ok(())`.
    fn configure(settings: Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Decision on an inbound message. Default: [`InboundVerdict::Pass`].
    fn filter_inbound(message: InboundMessage) -> InboundVerdict {
        let _ = message;
        InboundVerdict::Pass
    }

    /// Decision on an outbound message. Default: [`OutboundVerdict::Pass`].
    fn filter_outbound(message: OutboundMessage) -> OutboundVerdict {
        let _ = message;
        OutboundVerdict::Pass
    }
}

/// Bridges a [`Filter`] to the generated export trait. Used by
/// [`export_filter!`](crate::export_filter); not meant to be named directly.
pub struct FilterExport<T>(PhantomData<fn() -> T>);

impl<T: Filter> Guest for FilterExport<T> {
    fn configure(settings: Settings) -> Result<(), String> {
        T::configure(settings)
    }
    fn filter_inbound(message: InboundMessage) -> InboundVerdict {
        T::filter_inbound(message)
    }
    fn filter_outbound(message: OutboundMessage) -> OutboundVerdict {
        T::filter_outbound(message)
    }
}
