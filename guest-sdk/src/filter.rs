//! The [`Filter`] trait and its bridge to the generated `message-filter`
//! export.
//!
//! As for adapters, the SDK owns the filter's instance:
//! [`export_filter!`](crate::export_filter) declares the slot, `configure`
//! fills it with what [`Filter::configure`] returns, and the verdicts borrow
//! it.

use core::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::filter_bindings::exports::airlock::channel::message_filter::Guest;
use crate::types::{InboundMessage, InboundVerdict, OutboundMessage, OutboundVerdict, Settings};

/// A message filter: the `message-filter` interface of the `airlock:channel`
/// WIT package.
///
/// The host runs inbound filters after its access gate and outbound filters
/// before the adapter. Filters keep no state between messages: the host uses
/// a fresh instance for every message, and configures it with the
/// operator's settings first. The SDK decodes them into
/// [`Filter::Settings`], calls [`configure`](Filter::configure), and hands
/// the value it returns to the verdicts. Should a verdict be asked for
/// before `configure` succeeded, the SDK drops the message (failing closed)
/// with the reason "not configured".
///
/// Both verdicts default to [`Pass`](InboundVerdict::Pass), so a filter
/// implements only the direction it cares about.
pub trait Filter: Sized + 'static {
    /// The settings the filter reads: a `serde` struct marked
    /// `#[serde(deny_unknown_fields)]` (see [`crate::settings`]), or
    /// [`NoSettings`](crate::settings::NoSettings).
    type Settings: DeserializeOwned;

    /// Builds the filter from the operator's settings, given before every
    /// message. Return `Err` with a readable reason to reject them.
    fn configure(settings: Self::Settings) -> Result<Self, String>;

    /// Decision on an inbound message. Default: [`InboundVerdict::Pass`].
    fn filter_inbound(&self, message: InboundMessage) -> InboundVerdict {
        let _ = message;
        InboundVerdict::Pass
    }

    /// Decision on an outbound message. Default: [`OutboundVerdict::Pass`].
    fn filter_outbound(&self, message: OutboundMessage) -> OutboundVerdict {
        let _ = message;
        OutboundVerdict::Pass
    }
}

/// The slot that holds a component's filter instance. Implemented by
/// [`export_filter!`](crate::export_filter); not meant to be implemented by
/// hand.
#[doc(hidden)]
pub trait FilterSlot: 'static {
    /// The filter the slot holds.
    type Filter: Filter;

    /// Runs `f` on the slot (`None` until `configure` filled it).
    fn with<R>(f: impl FnOnce(&mut Option<Self::Filter>) -> R) -> R;
}

/// What a verdict asked for before `configure` says.
const NOT_CONFIGURED: &str = "the filter was not configured";

/// Bridges the filter in slot `S` to the generated export trait. Used by
/// [`export_filter!`](crate::export_filter); not meant to be named directly.
#[doc(hidden)]
pub struct FilterExport<S>(PhantomData<fn() -> S>);

impl<S: FilterSlot> Guest for FilterExport<S> {
    fn configure(settings: Settings) -> Result<(), String> {
        let settings = crate::settings::decode(&settings).map_err(|e| e.to_string())?;
        let filter = S::Filter::configure(settings)?;
        S::with(|slot| *slot = Some(filter));
        Ok(())
    }
    fn filter_inbound(message: InboundMessage) -> InboundVerdict {
        S::with(|slot| match slot {
            Some(filter) => filter.filter_inbound(message),
            None => InboundVerdict::Drop(NOT_CONFIGURED.into()),
        })
    }
    fn filter_outbound(message: OutboundMessage) -> OutboundVerdict {
        S::with(|slot| match slot {
            Some(filter) => filter.filter_outbound(message),
            None => OutboundVerdict::Drop(NOT_CONFIGURED.into()),
        })
    }
}
