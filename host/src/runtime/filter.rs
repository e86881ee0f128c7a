//! Running message filters.
//!
//! Filters keep no state between messages, so each message gets a fresh
//! instance from the pre-instantiated component: one message can never see
//! another's data, and a filter that traps only loses that one call.
//!
//! Instances come from the pooled filter engine when the filter fits it
//! ([`super::filter_pool`]): a slot is reset, not remapped, between messages,
//! and making an instance is cheap enough to do when the message comes.
//! A filter too large for a slot runs on the general engine, where mapping
//! an instance costs more than most calls: for it the runner keeps one
//! instance ready ahead of time ("the spare"), which a message takes and uses
//! once while the next is prepared in the background. Either way each
//! instance sees exactly one message.

use std::sync::{Arc, Mutex};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;

use super::budget;
use super::call_error::{CallError, Spent, classify};
use super::filter_pool::FilterPool;
use super::state::{ComponentState, InstanceSpec};
use crate::bindings::FilterPre;
use crate::bindings::message_filter::{InboundVerdict, OutboundVerdict};
use crate::bindings::types::{InboundMessage, OutboundMessage};
use crate::text::one_line;

/// A prepared filter and its settings.
#[derive(Clone)]
pub struct FilterRunner {
    /// The pool `pre` was compiled for, if it fits one.
    pool: Option<FilterPool>,
    pre: FilterPre<ComponentState>,
    spec: InstanceSpec,
    settings: Arc<Vec<(String, String)>>,
    spare: Arc<Mutex<Option<Ready>>>,
}

/// An instance, configured, that has seen no message.
struct Ready {
    store: Store<ComponentState>,
    filter: crate::bindings::Filter,
    /// The pool slot, given back after the store (fields drop in order).
    _slot: Option<OwnedSemaphorePermit>,
}

/// Why an instance could not be made ready.
enum NotReady {
    /// Instantiating or configuring failed.
    Failed(wasmtime::Error, Spent),
    /// `configure` refused the settings.
    Refused(String),
    /// It took longer than the wall-clock limit.
    Slow,
}

impl FilterRunner {
    /// A runner for `pre` with the operator's `settings`; `pool` is the
    /// filter pool when `pre` was compiled for its engine.
    pub fn new(
        pre: FilterPre<ComponentState>,
        pool: Option<FilterPool>,
        spec: InstanceSpec,
        settings: Vec<(String, String)>,
    ) -> Self {
        Self {
            pool,
            pre,
            spec,
            settings: Arc::new(settings),
            spare: Arc::default(),
        }
    }

    /// Whether instances come from the filter pool (the filter fits a slot).
    pub fn pooled(&self) -> bool {
        self.pool.is_some()
    }

    /// A fresh instance, configured with the settings.
    async fn make_ready(&self) -> Result<Ready, NotReady> {
        let slot = match &self.pool {
            Some(pool) => Some(pool.slot().await),
            None => None,
        };
        let limits = self.spec.effective.limits;
        let mut store = self.spec.new_store(self.pre.engine(), 0);
        budget::arm(&mut store, limits.cpu, limits.wall);
        let work = async {
            let filter = self.pre.instantiate_async(&mut store).await?;
            let configured = filter
                .airlock_channel_message_filter()
                .call_configure(&mut store, &self.settings)
                .await?;
            Ok::<_, wasmtime::Error>((filter, configured))
        };
        match tokio::time::timeout(limits.wall, work).await {
            Err(_) => Err(NotReady::Slow),
            Ok(Err(e)) => {
                let spent = store.data_mut().spent();
                Err(NotReady::Failed(e, spent))
            }
            Ok(Ok((_, Err(msg)))) => Err(NotReady::Refused(msg)),
            Ok(Ok((filter, Ok(())))) => Ok(Ready {
                store,
                filter,
                _slot: slot,
            }),
        }
    }

    /// A new pooled instance; unpooled, the spare if there is one, else a
    /// new instance, and a new spare is then prepared in the background.
    async fn take_ready(&self) -> Result<Ready, NotReady> {
        if self.pool.is_some() {
            // A pooled instance is cheap to make; a spare prepared beside
            // the message only competed with it (the burst measured 18 %
            // faster without one).
            return self.make_ready().await;
        }
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).take();
        let ready = match spare {
            Some(r) => Ok(r),
            None => self.make_ready().await,
        };
        let runner = self.clone();
        tokio::spawn(async move {
            if let Ok(next) = runner.make_ready().await {
                let mut slot = runner.spare.lock().unwrap_or_else(|e| e.into_inner());
                if slot.is_none() {
                    *slot = Some(next);
                }
            }
        });
        ready
    }

    /// Verdict on an inbound message.
    pub async fn inbound(&self, message: &InboundMessage) -> Result<InboundVerdict, CallError> {
        let message = message.clone();
        self.run("filter-inbound", move |f, s| {
            Box::pin(async move {
                f.airlock_channel_message_filter()
                    .call_filter_inbound(s, &message)
                    .await
            })
        })
        .await
    }

    /// Verdict on an outbound message.
    pub async fn outbound(&self, message: &OutboundMessage) -> Result<OutboundVerdict, CallError> {
        let message = message.clone();
        self.run("filter-outbound", move |f, s| {
            Box::pin(async move {
                f.airlock_channel_message_filter()
                    .call_filter_outbound(s, &message)
                    .await
            })
        })
        .await
    }

    async fn run<R>(
        &self,
        op: &'static str,
        call: impl for<'a> FnOnce(
            &'a crate::bindings::Filter,
            &'a mut wasmtime::Store<ComponentState>,
        ) -> futures::future::BoxFuture<'a, wasmtime::Result<R>>,
    ) -> Result<R, CallError> {
        let name = self.spec.name.clone();
        let limits = self.spec.effective.limits;
        let mut ready = match self.take_ready().await {
            Ok(r) => r,
            Err(NotReady::Slow) => {
                return Err(CallError::Timeout {
                    component: name,
                    op,
                    wall: limits.wall,
                });
            }
            Err(NotReady::Refused(msg)) => {
                return Err(CallError::Trap {
                    component: name,
                    op: "configure",
                    reason: format!("refused its settings: {}", one_line(&msg, 500)),
                });
            }
            Err(NotReady::Failed(e, spent)) => {
                return Err(classify(&name, op, e, spent, &limits));
            }
        };
        budget::arm(&mut ready.store, limits.cpu, limits.wall);
        let outcome =
            tokio::time::timeout(limits.wall, call(&ready.filter, &mut ready.store)).await;
        match outcome {
            Err(_) => Err(CallError::Timeout {
                component: name,
                op,
                wall: limits.wall,
            }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(
                &name,
                op,
                e,
                ready.store.data_mut().spent(),
                &limits,
            )),
        }
    }
}
