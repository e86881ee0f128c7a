//! Running message filters.
//!
//! Filters keep no state between messages, so each message gets a fresh
//! instance from the pre-instantiated component: one message can never see
//! another's data, and a filter that traps only loses that one call.

use std::sync::Arc;

use wasmtime::Engine;

use super::actor::{CallError, classify, one_line};
use super::bindings::FilterPre;
use super::bindings::message_filter::{InboundVerdict, OutboundVerdict};
use super::bindings::types::{InboundMessage, OutboundMessage};
use super::budget::{self, HasCpuBudget};
use super::state::{ComponentState, InstanceSpec};

/// A prepared filter and its settings.
#[derive(Clone)]
pub struct FilterRunner {
    engine: Engine,
    pre: FilterPre<ComponentState>,
    spec: InstanceSpec,
    settings: Arc<Vec<(String, String)>>,
}

impl FilterRunner {
    /// A runner for `pre` with the operator's `settings`.
    pub fn new(
        engine: Engine,
        pre: FilterPre<ComponentState>,
        spec: InstanceSpec,
        settings: Vec<(String, String)>,
    ) -> Self {
        Self {
            engine,
            pre,
            spec,
            settings: Arc::new(settings),
        }
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
            &'a super::bindings::Filter,
            &'a mut wasmtime::Store<ComponentState>,
        ) -> futures::future::BoxFuture<'a, wasmtime::Result<R>>,
    ) -> Result<R, CallError> {
        let name = self.spec.name.clone();
        let limits = self.spec.effective.limits;
        let mut store = self.spec.new_store(&self.engine, 0);
        budget::arm(&mut store, limits.cpu, limits.wall);
        let work = async {
            let filter = self.pre.instantiate_async(&mut store).await?;
            let configured = filter
                .airlock_channel_message_filter()
                .call_configure(&mut store, &self.settings)
                .await?;
            if let Err(msg) = configured {
                return Ok(Err(msg));
            }
            budget::arm(&mut store, limits.cpu, limits.wall);
            call(&filter, &mut store).await.map(Ok)
        };
        let outcome = tokio::time::timeout(limits.wall, work).await;
        match outcome {
            Err(_) => Err(CallError::Timeout {
                component: name,
                op,
                wall: limits.wall,
            }),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(msg))) => Err(CallError::Trap {
                component: name,
                op: "configure",
                reason: format!("refused its settings: {}", one_line(&msg, 500)),
            }),
            Ok(Err(e)) => Err(classify(
                &name,
                op,
                e,
                store.data_mut().cpu().exhausted(),
                &limits,
            )),
        }
    }
}
