//! One actor per adapter: it owns the instance and its store, and runs calls
//! one at a time.
//!
//! A WASI 0.2 store has no concurrency of its own, so serialising calls here
//! is both correct and simple (the model of Zed's extension host). A call that
//! traps, runs out of CPU budget or overruns its wall-clock timeout discards
//! the instance; the next call re-instantiates from the pre-instantiated
//! component after a backoff. Too many crashes in a window quarantine the
//! adapter: calls then fail at once with the reason, a `quarantined` alert is
//! raised, and the rest of the host is unaffected.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use wasmtime::{Engine, Store};

use super::budget;
use super::call_error::{AdapterErrorText, CallError, Spent, classify};
use super::state::{ComponentState, InstanceSpec};
use crate::alert::Kind;
use crate::backoff::Backoff;
use crate::bindings::types::{
    AdapterError, AttachmentData, AttachmentRequest, Description, EditRequest, EventBatch,
    HistoryEntry, HistoryRequest, HttpRequest, HttpResponse, IncomingReply, IncomingRequest,
    OutboundMessage, ReactRequest, Sent, WsConnection, WsEvent,
};
use crate::bindings::{Adapter, AdapterPre};
use crate::caps::websocket::HeldFrame;
use crate::host_event::HostEvent;
use crate::manifest::EffectiveLimits;

/// Crashes within [`CRASH_WINDOW`] that quarantine an adapter.
pub const MAX_CRASHES: usize = 5;
/// The window crashes are counted in.
pub const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// First restart delay; doubles with each crash in the window
/// (`Backoff::exact`).
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest restart delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Health of an adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// An instance is live (or will be created on the next call).
    Running {
        /// Crashes counted in the current window.
        recent_crashes: usize,
    },
    /// Stopped for crashing too often.
    Quarantined(String),
}

/// Reads the last committed cursor of the adapter it was made for (the
/// queue's, which the runtime does not know). An error is said on stderr and
/// the adapter gets `none`.
pub type CursorSource = Arc<dyn Fn() -> Result<Option<String>, String> + Send + Sync>;

/// Events an adapter produced outside a tool call (timers, websocket frames).
#[derive(Debug)]
pub struct Unsolicited {
    /// Component.
    pub component: Arc<str>,
    /// The batch.
    pub batch: EventBatch,
    /// Frames to send once the batch is stored (`send-text-after-commit`),
    /// and to drop if it cannot be.
    pub held: Vec<HeldFrame>,
}

impl Unsolicited {
    /// A batch with no frames held for it.
    pub fn new(component: Arc<str>, batch: EventBatch) -> Self {
        Unsolicited {
            component,
            batch,
            held: Vec::new(),
        }
    }
}

type CallFn<R> = Box<
    dyn for<'a> FnOnce(
            &'a Adapter,
            &'a mut Store<ComponentState>,
        ) -> BoxFuture<'a, wasmtime::Result<R>>
        + Send,
>;
type Job = Box<dyn for<'a> FnOnce(&'a mut Actor) -> BoxFuture<'a, ()> + Send>;

/// A [`CallFn`] for one export of the adapter interface:
/// `export!(call_send(&message))` calls `call_send(store, &message)` on the
/// instance. The call owns what its arguments name (they are moved in), and
/// the actor runs it under the instance's budget and timeout. Where the
/// closure's type is not known from context, bind it through a `CallFn`.
macro_rules! export {
    ($call:ident($($arg:expr),* $(,)?)) => {
        Box::new(move |adapter, store| {
            Box::pin(async move {
                adapter
                    .airlock_channel_channel_adapter()
                    .$call(store, $($arg),*)
                    .await
            })
        })
    };
}

/// A handle on a running adapter actor; cheap to clone.
#[derive(Clone, Debug)]
pub struct AdapterHandle {
    name: Arc<str>,
    tx: mpsc::Sender<Job>,
    wall: Duration,
}

struct Live {
    store: Store<ComponentState>,
    adapter: Adapter,
}

struct Actor {
    name: Arc<str>,
    engine: Engine,
    pre: AdapterPre<ComponentState>,
    spec: InstanceSpec,
    limits: EffectiveLimits,
    live: Option<Live>,
    settings: Option<Vec<(String, String)>>,
    crashes: VecDeque<Instant>,
    /// Restart delays, by the number of crashes in the window.
    restarts: Backoff,
    next_start: Option<Instant>,
    quarantined: Option<String>,
    generation: u64,
    cursor: Option<CursorSource>,
}

impl AdapterHandle {
    /// Start the actor for an adapter. Timer and websocket events are turned
    /// into `on-timer` and `on-ws-event` calls and their batches sent to
    /// `unsolicited`.
    pub fn spawn(
        engine: Engine,
        pre: AdapterPre<ComponentState>,
        spec: InstanceSpec,
        unsolicited: Option<mpsc::UnboundedSender<Unsolicited>>,
    ) -> Self {
        Self::spawn_with_cursor(engine, pre, spec, unsolicited, None)
    }

    /// [`spawn`](Self::spawn), and after every successful `start` of an
    /// instance, before any timer or websocket event reaches it, hand it the
    /// last committed cursor from `cursor` through `poll-request` (its answer
    /// is dropped). That is how an adapter that is not a poller (a gateway
    /// session) learns where the previous process stopped.
    pub fn spawn_with_cursor(
        engine: Engine,
        pre: AdapterPre<ComponentState>,
        mut spec: InstanceSpec,
        unsolicited: Option<mpsc::UnboundedSender<Unsolicited>>,
        cursor: Option<CursorSource>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(64);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        spec.events = Some(ev_tx);
        let name = spec.name.clone();
        let wall = spec.effective.limits.wall;
        let actor = Actor {
            name: name.clone(),
            engine,
            pre,
            limits: spec.effective.limits,
            spec,
            live: None,
            settings: None,
            crashes: VecDeque::new(),
            restarts: Backoff::exact(BACKOFF_BASE, BACKOFF_MAX),
            next_start: None,
            quarantined: None,
            generation: 0,
            cursor,
        };
        tokio::spawn(actor.run(rx, ev_rx, unsolicited));
        Self { name, tx, wall }
    }

    /// The adapter's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    async fn call<R: Send + 'static>(
        &self,
        op: &'static str,
        f: CallFn<R>,
    ) -> Result<R, CallError> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |actor: &mut Actor| {
            Box::pin(async move {
                let _ = reply.send(actor.invoke(op, f).await);
            })
        });
        let stopped = || CallError::Stopped {
            component: self.name.clone(),
        };
        // The caller's own deadline: the call's wall clock, plus room for a
        // restart (backoff and the replayed `start`) and one call queued ahead.
        let outer = self.wall.saturating_mul(3).saturating_add(BACKOFF_MAX);
        let waited = async {
            self.tx.send(job).await.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        };
        match tokio::time::timeout(outer, waited).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout {
                component: self.name.clone(),
                op,
                wall: outer,
            }),
        }
    }

    async fn call_fallible<R: Send + 'static>(
        &self,
        op: &'static str,
        f: CallFn<Result<R, AdapterError>>,
    ) -> Result<R, CallError> {
        self.call(op, f)
            .await?
            .map_err(|error| adapter_error(&self.name, op, error))
    }

    /// Current health.
    pub async fn health(&self) -> Health {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |actor: &mut Actor| {
            Box::pin(async move {
                let _ = reply.send(actor.health());
            })
        });
        if self.tx.send(job).await.is_err() {
            return Health::Quarantined("stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Health::Quarantined("stopped".into()))
    }

    /// Bytes of linear memory the live instance holds (what its memory
    /// limit is counted against); `None` when no instance is live.
    pub async fn memory_bytes(&self) -> Option<usize> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |actor: &mut Actor| {
            Box::pin(async move {
                let used = actor.live.as_ref().map(|l| l.store.data().memory_used());
                let _ = reply.send(used);
            })
        });
        self.tx.send(job).await.ok()?;
        rx.await.ok().flatten()
    }

    /// `describe`.
    pub async fn describe(&self) -> Result<Description, CallError> {
        self.call("describe", export!(call_describe())).await
    }

    /// `start`; the settings are kept and replayed after every restart.
    pub async fn start(&self, settings: Vec<(String, String)>) -> Result<(), CallError> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |actor: &mut Actor| {
            Box::pin(async move {
                actor.settings = Some(settings.clone());
                let r = if actor.live.is_some() {
                    match actor.invoke("start", start_fn(settings)).await {
                        Ok(Ok(())) => actor.hand_cursor().await.map(Ok),
                        other => other,
                    }
                } else {
                    // Instantiating replays `start` with the stored settings.
                    actor.ensure_live().await.map(|()| Ok(()))
                };
                let _ = reply.send(r);
            })
        });
        let stopped = || CallError::Stopped {
            component: self.name.clone(),
        };
        self.tx.send(job).await.map_err(|_| stopped())?;
        rx.await
            .map_err(|_| stopped())??
            .map_err(|error| adapter_error(&self.name, "start", error))
    }

    /// `poll-request`.
    pub async fn poll_request(
        &self,
        cursor: Option<String>,
    ) -> Result<Option<HttpRequest>, CallError> {
        self.call("poll-request", poll_request_fn(cursor)).await
    }

    /// `on-poll-response`.
    pub async fn on_poll_response(&self, response: HttpResponse) -> Result<EventBatch, CallError> {
        self.call_fallible(
            "on-poll-response",
            export!(call_on_poll_response(&response)),
        )
        .await
    }

    /// `on-http-request`.
    pub async fn on_http_request(
        &self,
        request: IncomingRequest,
    ) -> Result<IncomingReply, CallError> {
        self.call_fallible("on-http-request", export!(call_on_http_request(&request)))
            .await
    }

    /// `send`.
    pub async fn send(&self, message: OutboundMessage) -> Result<Sent, CallError> {
        self.call_fallible("send", export!(call_send(&message)))
            .await
    }

    /// `react`.
    pub async fn react(&self, request: ReactRequest) -> Result<(), CallError> {
        self.call_fallible("react", export!(call_react(&request)))
            .await
    }

    /// `edit`.
    pub async fn edit(&self, request: EditRequest) -> Result<(), CallError> {
        self.call_fallible("edit", export!(call_edit(&request)))
            .await
    }

    /// `typing`.
    pub async fn typing(&self, chat_id: String) -> Result<(), CallError> {
        self.call_fallible("typing", export!(call_typing(&chat_id)))
            .await
    }

    /// `fetch-history`.
    pub async fn fetch_history(
        &self,
        request: HistoryRequest,
    ) -> Result<Vec<HistoryEntry>, CallError> {
        self.call_fallible("fetch-history", export!(call_fetch_history(&request)))
            .await
    }

    /// `download-attachment`.
    pub async fn download_attachment(
        &self,
        request: AttachmentRequest,
    ) -> Result<AttachmentData, CallError> {
        self.call_fallible(
            "download-attachment",
            export!(call_download_attachment(&request)),
        )
        .await
    }
}

/// What kind of crash `err` was, in a few words of the host's own (an alert
/// quotes no guest text).
fn crash_kind(err: &CallError) -> &'static str {
    match err {
        CallError::CpuBudget { .. } => "over its CPU budget",
        CallError::Timeout { .. } => "over its time limit",
        CallError::Trap { .. } => "a trap",
        _ => "an error",
    }
}

/// The error for an export that ran and returned the adapter's error.
fn adapter_error(component: &Arc<str>, op: &'static str, error: AdapterError) -> CallError {
    CallError::Adapter {
        component: component.clone(),
        op,
        error: AdapterErrorText(error),
    }
}

fn start_fn(settings: Vec<(String, String)>) -> CallFn<Result<(), AdapterError>> {
    export!(call_start(&settings))
}

fn poll_request_fn(cursor: Option<String>) -> CallFn<Option<HttpRequest>> {
    export!(call_poll_request(cursor.as_deref()))
}

fn on_timer_fn(name: String) -> CallFn<Result<EventBatch, AdapterError>> {
    export!(call_on_timer(&name))
}

fn on_ws_event_fn(conn: WsConnection, event: WsEvent) -> CallFn<Result<EventBatch, AdapterError>> {
    export!(call_on_ws_event(conn, &event))
}

impl Actor {
    async fn run(
        mut self,
        mut jobs: mpsc::Receiver<Job>,
        mut events: mpsc::UnboundedReceiver<HostEvent>,
        unsolicited: Option<mpsc::UnboundedSender<Unsolicited>>,
    ) {
        loop {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => job(&mut self).await,
                    None => break,
                },
                Some(event) = events.recv() => {
                    // `_delivery` frees the connection's slot once the call is over.
                    let (generation, op, f, _delivery) = match event {
                        HostEvent::Timer { generation, name } => (generation, "on-timer", on_timer_fn(name), None),
                        HostEvent::Ws { generation, conn, event, delivery } => (generation, "on-ws-event", on_ws_event_fn(conn, event), Some(delivery)),
                    };
                    // An event of a discarded instance: that instance is gone (its
                    // connections with it), and its replacement sets its own timers
                    // and opens its own connections in `start`.
                    if generation != self.generation || self.live.is_none() {
                        continue;
                    }
                    // Frames this call holds go out only once its batch is stored.
                    if let Some(live) = self.live.as_mut() {
                        live.store.data_mut().ws.hold_frames();
                    }
                    let outcome = self.invoke(op, f).await;
                    let held = self
                        .live
                        .as_mut()
                        .map(|l| l.store.data_mut().ws.take_held())
                        .unwrap_or_default();
                    match outcome {
                        Ok(Ok(batch)) => {
                            if let Some(tx) = &unsolicited {
                                let _ = tx.send(Unsolicited { component: self.name.clone(), batch, held });
                            }
                        }
                        // The adapter can answer every timer with an error: those
                        // lines go through its instance's warning budget.
                        Ok(Err(_)) if !self.live.as_ref().is_none_or(|l| l.store.data().warnings.admit()) => {}
                        // A fatal error is the adapter giving up until the operator acts.
                        Ok(Err(e @ AdapterError::Fatal(_))) => tracing::error!(component = %self.name, "{op}: {}", AdapterErrorText(e)),
                        Ok(Err(e)) => tracing::warn!(component = %self.name, "{op} failed: {}", AdapterErrorText(e)),
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
            }
        }
    }

    fn health(&mut self) -> Health {
        match &self.quarantined {
            Some(r) => Health::Quarantined(r.clone()),
            None => {
                self.forget_old_crashes();
                Health::Running {
                    recent_crashes: self.crashes.len(),
                }
            }
        }
    }

    fn forget_old_crashes(&mut self) {
        while self
            .crashes
            .front()
            .is_some_and(|t| t.elapsed() > CRASH_WINDOW)
        {
            self.crashes.pop_front();
        }
    }

    /// Make sure an instance exists, waiting out any backoff.
    async fn ensure_live(&mut self) -> Result<(), CallError> {
        if let Some(reason) = &self.quarantined {
            return Err(CallError::Quarantined {
                component: self.name.clone(),
                reason: reason.clone(),
            });
        }
        if self.live.is_some() {
            return Ok(());
        }
        if let Some(at) = self.next_start.take() {
            tokio::time::sleep_until(at.into()).await;
        }
        self.generation += 1;
        let mut store = self.spec.new_store(&self.engine, self.generation);
        budget::arm(&mut store, self.limits.cpu, self.limits.wall);
        let adapter =
            match tokio::time::timeout(self.limits.wall, self.pre.instantiate_async(&mut store))
                .await
            {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => {
                    let err = self.classify("instantiate", e, store.data_mut().spent());
                    self.crashed(&err);
                    return Err(err);
                }
                Err(_) => {
                    let err = CallError::Timeout {
                        component: self.name.clone(),
                        op: "instantiate",
                        wall: self.limits.wall,
                    };
                    self.crashed(&err);
                    return Err(err);
                }
            };
        self.live = Some(Live { store, adapter });
        if let Some(settings) = self.settings.clone() {
            match self.run_on_live("start", start_fn(settings)).await? {
                Ok(()) => self.hand_cursor().await?,
                Err(e) => {
                    // The instance is healthy but refused to start; keep it and report.
                    tracing::warn!(component = %self.name, "start failed: {}", AdapterErrorText(e.clone()));
                    return Err(adapter_error(&self.name, "start", e));
                }
            }
        }
        Ok(())
    }

    /// Hands a started instance its last committed cursor (see
    /// [`AdapterHandle::spawn_with_cursor`]). Runs inside the job or event
    /// that started the instance, so nothing else reaches it first.
    async fn hand_cursor(&mut self) -> Result<(), CallError> {
        let Some(read) = &self.cursor else {
            return Ok(());
        };
        let cursor = read().unwrap_or_else(|e| {
            tracing::error!(component = %self.name, "cannot read the last cursor ({e}); the adapter starts without it");
            None
        });
        self.run_on_live("poll-request", poll_request_fn(cursor))
            .await
            .map(drop)
    }

    async fn invoke<R>(&mut self, op: &'static str, f: CallFn<R>) -> Result<R, CallError> {
        match self.ensure_live().await {
            Ok(()) => {}
            // A refused start leaves a live instance that can still serve.
            Err(CallError::Adapter { .. }) if self.live.is_some() => {}
            Err(e) => return Err(e),
        }
        self.run_on_live(op, f).await
    }

    async fn run_on_live<R>(&mut self, op: &'static str, f: CallFn<R>) -> Result<R, CallError> {
        let Some(live) = self.live.as_mut() else {
            return Err(CallError::Stopped {
                component: self.name.clone(),
            });
        };
        budget::arm(&mut live.store, self.limits.cpu, self.limits.wall);
        let outcome =
            tokio::time::timeout(self.limits.wall, f(&live.adapter, &mut live.store)).await;
        let err = match outcome {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                let spent = live.store.data_mut().spent();
                self.classify(op, e, spent)
            }
            Err(_) => CallError::Timeout {
                component: self.name.clone(),
                op,
                wall: self.limits.wall,
            },
        };
        self.crashed(&err);
        Err(err)
    }

    fn classify(&self, op: &'static str, e: wasmtime::Error, spent: Spent) -> CallError {
        classify(&self.name, op, e, spent, &self.limits)
    }

    /// Discard the instance and schedule (or refuse) the next one.
    fn crashed(&mut self, err: &CallError) {
        self.live = None;
        self.forget_old_crashes();
        self.crashes.push_back(Instant::now());
        let n = self.crashes.len();
        if n >= MAX_CRASHES {
            let reason = format!(
                "crashed {n} times within {}s, last: {err}; it stays stopped until airlock restarts (fix the component or `airlock adapters remove {}`)",
                CRASH_WINDOW.as_secs(),
                self.name
            );
            tracing::error!(component = %self.name, "quarantined: {reason}");
            // Once per actor: a quarantined adapter never crashes again.
            self.spec.alerts.raise(
                Kind::Quarantined,
                format!(
                    "{} was quarantined: it crashed {n} times within {}s (last: {}); it stays stopped until airlock restarts",
                    self.name,
                    CRASH_WINDOW.as_secs(),
                    crash_kind(err)
                ),
            );
            self.quarantined = Some(reason);
            return;
        }
        let delay = self.restarts.after(u32::try_from(n).unwrap_or(u32::MAX));
        self.spec.alerts.raise(
            Kind::Crashed,
            format!(
                "{} crashed ({}); restarted after {} ms ({n} within {}s; {MAX_CRASHES} quarantine it)",
                self.name,
                crash_kind(err),
                delay.as_millis(),
                CRASH_WINDOW.as_secs()
            ),
        );
        tracing::warn!(component = %self.name, "{err}; restarting in {delay:?} ({n} of {MAX_CRASHES} crashes allowed per {}s)", CRASH_WINDOW.as_secs());
        self.next_start = Some(Instant::now() + delay);
    }
}
