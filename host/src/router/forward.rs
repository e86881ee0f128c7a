//! Adapter calls that must run in the process holding the adapter's
//! connection.
//!
//! Most adapters send from any session: each session calls the platform
//! through its own sandboxed instance. An adapter whose platform *is* its
//! instance cannot: fakechat's chat (messages, files) lives in the memory of
//! the instance that serves its page, so a reply sent through another
//! session's instance would land there and never show, a silent loss.
//! Such an adapter (an inbound page and no bound secrets, so no platform of
//! its own to reach) has its calls handed, in a session that does not hold
//! its connection, to the process that does.
//!
//! The hand-over goes through the hub's store: the caller writes the call
//! ([`HubStore::put_call`](crate::hub::HubStore::put_call)) and rings the
//! holder's session; the holder's runner ([`spawn`]) takes it, runs it
//! through its own instance, writes the answer and rings the caller back;
//! the caller, woken (or looking every 20 ms), reads it. The caller gets
//! what a local call would have given: the value, or the same
//! [`CallError`] (see [`super::forward_wire`]). A holder that does not
//! answer within [`ANSWER_WAIT`] is a [`ToolError::NoAnswer`] that says
//! whether the call may have run.
//!
//! All of the router's checks (lockdown, the open chat, the session's
//! route, filters, redaction, chunking, retries) run in the caller, as for
//! a local call; the holder runs the one adapter call it is handed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::forward_wire::{
    Answer, Attachment, Call, Edit, Entry, Failure, History, Message, React,
};
use super::{Active, Router, ToolError};
use crate::bindings::types::{
    AttachmentData, AttachmentRequest, EditRequest, HistoryEntry, HistoryRequest, OutboundMessage,
    ReactRequest, Sent,
};
use crate::hub::Hub;
use crate::hub::store::Withdrawn;
use crate::runtime::actor::AdapterHandle;

/// How long a caller waits for the holder's answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How often a caller looks for its answer between wake-ups.
const LOOK_EVERY: Duration = Duration::from_millis(20);
/// How often the holder looks for calls between wake-ups.
const RUN_EVERY: Duration = Duration::from_secs(1);
/// Runs of the holder between two prunes of calls nobody waits for.
const PRUNE_EVERY_RUNS: u32 = 60;
/// Age past which a call is forgotten, whatever became of it (seconds).
const FORGET_AFTER_SECS: i64 = 300;

/// Which adapters' calls go to another process, and which this process
/// runs for the others.
#[derive(Debug, Default)]
pub struct Forwarding {
    /// Adapters whose connection another process holds: calls go there.
    to_holder: Mutex<BTreeSet<String>>,
    /// Adapters whose connection this process holds: it runs their calls.
    serving: Mutex<BTreeSet<String>>,
    /// Calls may wait for this process to run them.
    asked: Notify,
    /// Answers may wait for callers in this process.
    answered: Notify,
}

fn lock(set: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    set.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where an adapter's calls go: its instance here, or the holder of its
/// connection.
#[derive(Clone)]
pub(super) enum Platform {
    /// This process's own instance.
    Local(AdapterHandle),
    /// The process that holds the connection.
    Holder(Forwarder),
}

/// Hands calls of one adapter to the process that holds its connection.
#[derive(Clone)]
pub(super) struct Forwarder {
    hub: Arc<Hub>,
    forwarding: Arc<Forwarding>,
    adapter: String,
}

impl Router {
    /// `adapter`'s connection is held by another process: from now on its
    /// calls go there.
    pub fn forward_to_holder(&self, adapter: &str) {
        lock(&self.forwarding.serving).remove(adapter);
        lock(&self.forwarding.to_holder).insert(adapter.to_owned());
    }

    /// This process holds `adapter`'s connection: its calls stay here, and
    /// it runs those other sessions hand over.
    pub fn serve_calls(&self, adapter: &str) {
        lock(&self.forwarding.to_holder).remove(adapter);
        lock(&self.forwarding.serving).insert(adapter.to_owned());
        self.forwarding.asked.notify_one();
    }

    /// Another process rang this session (or a second passed): handed calls
    /// are looked for, and callers look for their answers.
    pub fn hub_woken(&self) {
        self.forwarding.asked.notify_one();
        self.forwarding.answered.notify_waiters();
    }

    /// Where calls of `adapter` (running as `active`) go.
    pub(super) fn platform(&self, adapter: &str, active: &Active) -> Platform {
        if lock(&self.forwarding.to_holder).contains(adapter) {
            Platform::Holder(Forwarder {
                hub: self.hub.clone(),
                forwarding: self.forwarding.clone(),
                adapter: adapter.to_owned(),
            })
        } else {
            Platform::Local(active.handle.clone())
        }
    }

    /// Runs the calls other sessions handed to this process, for the
    /// adapters whose connection it holds, oldest first; how many ran.
    pub async fn run_handed_calls(&self) -> usize {
        let serving: Vec<String> = lock(&self.forwarding.serving).iter().cloned().collect();
        if serving.is_empty() {
            return 0;
        }
        let store = self.hub.store();
        let since = unix_now() - ANSWER_WAIT.as_secs() as i64;
        let calls = match store.take_calls(&serving, since) {
            Ok(calls) => calls,
            Err(e) => {
                tracing::warn!("cannot read the calls other sessions hand over: {e}");
                return 0;
            }
        };
        let ran = calls.len();
        for call in calls {
            let answer = match self.adapters.get(&call.adapter) {
                Some(active) => run(&active.handle, &call.adapter, &call.call).await,
                None => Answer::Refused(format!("{} is not running here", call.adapter)),
            };
            let text = serde_json::to_string(&answer).unwrap_or_else(|e| {
                serde_json::to_string(&Answer::Refused(format!("cannot write the answer: {e}")))
                    .unwrap_or_default()
            });
            match store.finish_call(call.id, &text) {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    adapter = call.adapter,
                    "ran a call of session {} after it stopped waiting; it was told the call \
                     may have gone out",
                    call.caller
                ),
                Err(e) => tracing::warn!(
                    adapter = call.adapter,
                    "cannot write the answer to a call of session {}: {e}",
                    call.caller
                ),
            }
            self.hub.wake(&call.caller);
        }
        if ran > 0 {
            // Callers in this process (its own calls, handed over before it
            // took the connection) are not rung.
            self.forwarding.answered.notify_waiters();
        }
        ran
    }
}

/// The holder's runner: runs handed calls when rung ([`Router::hub_woken`],
/// [`Router::serve_calls`]) and every second, and forgets old ones.
pub fn spawn(router: Arc<Router>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut runs = 0u32;
        loop {
            let _ = tokio::time::timeout(RUN_EVERY, router.forwarding.asked.notified()).await;
            router.run_handed_calls().await;
            runs = runs.wrapping_add(1);
            if runs.is_multiple_of(PRUNE_EVERY_RUNS)
                && !lock(&router.forwarding.serving).is_empty()
                && let Err(e) = router
                    .hub
                    .store()
                    .prune_calls(unix_now() - FORGET_AFTER_SECS)
            {
                tracing::debug!("cannot forget old handed calls: {e}");
            }
        }
    })
}

/// Runs one handed call (`text`, as the caller wrote it) of `adapter`
/// through `handle`.
async fn run(handle: &AdapterHandle, adapter: &str, text: &str) -> Answer {
    let call: Call = match serde_json::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            return Answer::Refused(format!(
                "the session holding the {adapter} connection cannot read the call ({e}); run \
                 the same airlock version in every session"
            ));
        }
    };
    let failed = |e: crate::runtime::call_error::CallError| Answer::Failed(Failure::from(&e));
    match call {
        Call::Send(m) => match m.into_binding() {
            Ok(m) => handle
                .send(m)
                .await
                .map_or_else(failed, |s| Answer::from(&s)),
            Err(e) => Answer::Refused(e),
        },
        Call::Edit(r) => handle
            .edit(r.into())
            .await
            .map_or_else(failed, |()| Answer::Done),
        Call::React(r) => handle
            .react(r.into())
            .await
            .map_or_else(failed, |()| Answer::Done),
        Call::FetchHistory(r) => handle
            .fetch_history(r.into())
            .await
            .map_or_else(failed, |h| {
                Answer::History(h.iter().map(Entry::from).collect())
            }),
        Call::DownloadAttachment(r) => handle
            .download_attachment(r.into())
            .await
            .map_or_else(failed, |d| Answer::Attachment((&d).into())),
    }
}

impl Platform {
    /// `send`.
    pub(super) async fn send(&self, message: OutboundMessage) -> Result<Sent, ToolError> {
        match self {
            Platform::Local(h) => Ok(h.send(message).await?),
            Platform::Holder(f) => match f.call(Call::Send(Message::from(&message))).await? {
                Answer::Sent { message_ids } => Ok(Sent { message_ids }),
                other => Err(f.unexpected(&other)),
            },
        }
    }

    /// `edit`.
    pub(super) async fn edit(&self, request: EditRequest) -> Result<(), ToolError> {
        match self {
            Platform::Local(h) => Ok(h.edit(request).await?),
            Platform::Holder(f) => f.done(Call::Edit(Edit::from(&request))).await,
        }
    }

    /// `react`.
    pub(super) async fn react(&self, request: ReactRequest) -> Result<(), ToolError> {
        match self {
            Platform::Local(h) => Ok(h.react(request).await?),
            Platform::Holder(f) => f.done(Call::React(React::from(&request))).await,
        }
    }

    /// `fetch-history`.
    pub(super) async fn fetch_history(
        &self,
        request: HistoryRequest,
    ) -> Result<Vec<HistoryEntry>, ToolError> {
        match self {
            Platform::Local(h) => Ok(h.fetch_history(request).await?),
            Platform::Holder(f) => match f.call(Call::FetchHistory(History::from(&request))).await?
            {
                Answer::History(entries) => Ok(entries.into_iter().map(Into::into).collect()),
                other => Err(f.unexpected(&other)),
            },
        }
    }

    /// `download-attachment`.
    pub(super) async fn download_attachment(
        &self,
        request: AttachmentRequest,
    ) -> Result<AttachmentData, ToolError> {
        match self {
            Platform::Local(h) => Ok(h.download_attachment(request).await?),
            Platform::Holder(f) => {
                match f
                    .call(Call::DownloadAttachment(Attachment::from(&request)))
                    .await?
                {
                    Answer::Attachment(file) => file.into_binding().map_err(ToolError::Internal),
                    other => Err(f.unexpected(&other)),
                }
            }
        }
    }
}

impl Forwarder {
    /// A call with no value.
    async fn done(&self, call: Call) -> Result<(), ToolError> {
        match self.call(call).await? {
            Answer::Done => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Hands `call` to the holder and waits for its answer; a failure
    /// comes back as the error a local call would have returned.
    async fn call(&self, call: Call) -> Result<Answer, ToolError> {
        let op = call.op();
        let internal = |e: &dyn std::fmt::Display| ToolError::Internal(e.to_string());
        let text = serde_json::to_string(&call).map_err(|e| internal(&e))?;
        let store = self.hub.store();
        let id = store
            .put_call(&self.adapter, self.hub.me(), &text)
            .map_err(|e| internal(&e))?;
        let holder = self.holder();
        if let Some(h) = &holder {
            self.hub.wake(h);
        }
        // This process may have taken the connection meanwhile.
        self.forwarding.asked.notify_one();
        let deadline = Instant::now() + ANSWER_WAIT;
        let result = loop {
            // Made before looking, so an answer rung in between is not missed.
            let rung = self.forwarding.answered.notified();
            if let Some(r) = store.take_result(id).map_err(|e| internal(&e))? {
                break r;
            }
            if Instant::now() >= deadline {
                let taken = match store.withdraw_call(id).map_err(|e| internal(&e))? {
                    Withdrawn::Answered(r) => break r,
                    Withdrawn::NeverRan => false,
                    Withdrawn::Taken => true,
                };
                return Err(ToolError::NoAnswer {
                    adapter: self.adapter.clone(),
                    holder: holder.unwrap_or_else(|| "another session".into()),
                    secs: ANSWER_WAIT.as_secs(),
                    taken,
                });
            }
            tokio::select! {
                () = rung => {}
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
        };
        match serde_json::from_str::<Answer>(&result) {
            Ok(Answer::Failed(f)) => Err(ToolError::Adapter(f.into_call_error(op))),
            Ok(Answer::Refused(why)) => Err(ToolError::Internal(why)),
            Ok(answer) => Ok(answer),
            Err(e) => Err(ToolError::Internal(format!(
                "cannot read the answer of the session holding the {} connection ({e}); run \
                 the same airlock version in every session",
                self.adapter
            ))),
        }
    }

    /// The session whose process holds the connection, as last recorded.
    fn holder(&self) -> Option<String> {
        self.hub
            .store()
            .connections()
            .ok()?
            .into_iter()
            .find(|c| c.adapter == self.adapter)
            .map(|c| c.session)
    }

    fn unexpected(&self, answer: &Answer) -> ToolError {
        ToolError::Internal(format!(
            "the session holding the {} connection answered with something else: {answer:?}",
            self.adapter
        ))
    }
}

/// The text of [`ToolError::NoAnswer`].
pub(super) fn no_answer(adapter: &str, holder: &str, secs: &u64, taken: &bool) -> String {
    let fate = if *taken {
        "it took the call but never said what became of it, so it may have gone out; look \
         before you retry"
    } else {
        "nothing was sent"
    };
    format!(
        "session {holder} holds the {adapter} connection and runs this session's {adapter} \
         calls, but it did not answer within {secs} s: {fate}. If it keeps happening, tell the \
         user in the terminal: that session may be stuck, and restarting it hands the \
         connection to another"
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_nobody_answered_says_whether_it_may_have_run() {
        let never = ToolError::NoAnswer {
            adapter: "fakechat".into(),
            holder: "api".into(),
            secs: 30,
            taken: false,
        }
        .to_string();
        assert!(
            never.starts_with(
                "session api holds the fakechat connection and runs this session's fakechat \
                 calls, but it did not answer within 30 s: nothing was sent."
            ),
            "{never}"
        );
        let taken = ToolError::NoAnswer {
            adapter: "fakechat".into(),
            holder: "api".into(),
            secs: 30,
            taken: true,
        }
        .to_string();
        assert!(taken.contains("it may have gone out"), "{taken}");
    }
}
