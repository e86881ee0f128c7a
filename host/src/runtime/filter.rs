//! Running message filters.
//!
//! Filters keep no state between messages, so each message gets a fresh
//! instance from the pre-instantiated component: one message can never see
//! another's data, and a filter that traps only loses that one call.
//!
//! The runner keeps one instance ready ahead of time ("the spare"), which a
//! message takes and uses once. Instances come from the pooled filter engine
//! when the filter fits it ([`super::filter_pool`]): a slot is reset, not
//! remapped, between messages. There the used instance comes back to the
//! caller as [`Used`], to be dropped, and the next spare made, when it suits
//! the caller: a reply does it once the session has its answer, so that
//! neither is part of the reply. A filter too large for a slot runs on the
//! general engine, where mapping an instance costs more than most calls: its
//! next spare is prepared in the background as soon as one is taken. Either
//! way each instance sees exactly one message.

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

    /// The spare if there is one, else a new instance. Unpooled, a new
    /// spare is then prepared in the background; pooled, by [`Used::tidy`]
    /// (a spare prepared beside the message only competed with it: the
    /// burst measured 18 % faster without one).
    async fn take_ready(&self) -> Result<Ready, NotReady> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).take();
        let ready = match spare {
            Some(r) => Ok(r),
            None => self.make_ready().await,
        };
        if self.pool.is_none() {
            tokio::spawn(self.clone().refill());
        }
        ready
    }

    /// Makes a spare if there is none.
    async fn refill(self) {
        if self
            .spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return;
        }
        if let Ok(next) = self.make_ready().await {
            let mut slot = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(next);
            }
        }
    }

    /// Verdict on an inbound message. The instance is dropped at once: an
    /// inbound batch holds no instance while it is stored and written.
    pub async fn inbound(&self, message: &InboundMessage) -> Result<InboundVerdict, CallError> {
        let message = message.clone();
        let (verdict, _used) = self
            .run("filter-inbound", move |f, s| {
                Box::pin(async move {
                    f.airlock_channel_message_filter()
                        .call_filter_inbound(s, &message)
                        .await
                })
            })
            .await;
        verdict
    }

    /// Verdict on an outbound message, and the instance that gave it, for
    /// the caller to [`tidy`](Used::tidy) once the reply is answered.
    pub async fn outbound(
        &self,
        message: &OutboundMessage,
    ) -> (Result<OutboundVerdict, CallError>, Used) {
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
    ) -> (Result<R, CallError>, Used) {
        let name = self.spec.name.clone();
        let limits = self.spec.effective.limits;
        let mut used = Used {
            runner: self.clone(),
            instance: None,
        };
        let mut ready = match self.take_ready().await {
            Ok(r) => r,
            Err(NotReady::Slow) => {
                let e = CallError::Timeout {
                    component: name,
                    op,
                    wall: limits.wall,
                };
                return (Err(e), used);
            }
            Err(NotReady::Refused(msg)) => {
                let e = CallError::Trap {
                    component: name,
                    op: "configure",
                    reason: format!("refused its settings: {}", one_line(&msg, 500)),
                };
                return (Err(e), used);
            }
            Err(NotReady::Failed(e, spent)) => {
                return (Err(classify(&name, op, e, spent, &limits)), used);
            }
        };
        budget::arm(&mut ready.store, limits.cpu, limits.wall);
        let outcome =
            tokio::time::timeout(limits.wall, call(&ready.filter, &mut ready.store)).await;
        let verdict = match outcome {
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
        };
        used.instance = Some(ready);
        (verdict, used)
    }
}

/// An instance that has seen its one message, and its runner. Dropping it
/// drops the instance; [`tidy`](Self::tidy) also prepares the next spare.
pub struct Used {
    runner: FilterRunner,
    instance: Option<Ready>,
}

impl Used {
    /// Whether the instance should go at once: its pool has no free slot,
    /// so another message may be waiting for this one's.
    pub fn wanted_now(&self) -> bool {
        self.instance.is_some() && self.runner.pool.as_ref().is_some_and(FilterPool::exhausted)
    }

    /// Drops the instance (giving its pool slot back), then, for a pooled
    /// filter, makes a spare if there is none.
    pub async fn tidy(self) {
        let Used { runner, instance } = self;
        drop(instance);
        if runner.pool.is_some() {
            runner.refill().await;
        }
    }
}
