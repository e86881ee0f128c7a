//! The session's side of the soak: one task reads airlock's stdout while the
//! load loop writes `reply` calls, so a notification that arrives while a
//! call is outstanding is counted, not skipped. Every inbound message is
//! tallied by its `message_id` (each id is injected once, so a second arrival
//! is a duplicate), every call by its JSON-RPC id.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// What has been sent and seen so far.
#[derive(Default)]
pub struct Tally {
    /// Messages injected into the fakes.
    pub injected: u64,
    /// Injected and not yet seen, with when they were injected.
    waiting: HashMap<String, Instant>,
    /// Every message id seen on stdout.
    seen: HashSet<String>,
    /// Channel notifications read (duplicates included).
    pub received: u64,
    /// Notifications whose id had been seen before.
    pub duplicates: u64,
    /// Notifications whose id was never injected.
    pub unexpected: u64,
    /// Chats (`meta.chat_id`) something was delivered from, so a reply to
    /// them is allowed.
    pub delivered_chats: BTreeSet<String>,
    /// `reply` calls written.
    pub replies_sent: u64,
    /// Calls answered without `isError`.
    pub replies_ok: u64,
    /// Calls answered with an error, or with `isError`.
    pub replies_failed: u64,
    /// The first few failures, for the summary.
    pub failures: Vec<String>,
    /// Calls not answered yet, with when they were written.
    calls: HashMap<i64, Instant>,
    /// Injection to notification, since the last [`Tally::take_latencies`].
    inbound: Vec<Duration>,
    /// Call to answer, since the last [`Tally::take_latencies`].
    replies: Vec<Duration>,
    /// Whether airlock closed its stdout (it exited).
    pub closed: bool,
}

impl Tally {
    /// Notes an injected message.
    pub fn injected(&mut self, message_id: String) {
        self.injected += 1;
        self.waiting.insert(message_id, Instant::now());
    }

    /// Injected messages not seen yet.
    pub fn missing(&self) -> usize {
        self.waiting.len()
    }

    /// A few of the ids not seen yet, for the summary.
    pub fn some_missing(&self) -> Vec<String> {
        let mut ids: Vec<_> = self.waiting.keys().cloned().collect();
        ids.sort();
        ids.truncate(10);
        ids
    }

    /// Calls not answered yet.
    pub fn unanswered(&self) -> usize {
        self.calls.len()
    }

    /// Latencies (inbound, reply) gathered since the last call.
    pub fn take_latencies(&mut self) -> (Vec<Duration>, Vec<Duration>) {
        (
            std::mem::take(&mut self.inbound),
            std::mem::take(&mut self.replies),
        )
    }

    fn notification(&mut self, params: &Value) {
        self.received += 1;
        let meta = &params["meta"];
        let id = meta["message_id"].as_str().unwrap_or_default().to_owned();
        if let Some(chat) = meta["chat_id"].as_str()
            && !self.delivered_chats.contains(chat)
        {
            self.delivered_chats.insert(chat.to_owned());
        }
        if !self.seen.insert(id.clone()) {
            self.duplicates += 1;
        } else if let Some(at) = self.waiting.remove(&id) {
            self.inbound.push(at.elapsed());
        } else {
            self.unexpected += 1;
        }
    }

    fn answer(&mut self, id: i64, message: &Value) {
        let Some(at) = self.calls.remove(&id) else {
            return;
        };
        self.replies.push(at.elapsed());
        if message["result"]["isError"] == json!(false) {
            self.replies_ok += 1;
        } else {
            self.replies_failed += 1;
            if self.failures.len() < 5 {
                self.failures.push(message.to_string());
            }
        }
    }
}

/// A shared [`Tally`].
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Tally>>);

impl Shared {
    /// The tally, locked.
    pub fn lock(&self) -> MutexGuard<'_, Tally> {
        self.0.lock().expect("tally lock")
    }
}

/// airlock's stdin and the process, with a reader task on its stdout.
pub struct Session {
    child: Child,
    stdin: ChildStdin,
    next_id: i64,
    tally: Shared,
}

impl Session {
    /// Takes over a subject that has done its handshake; `first_id` is above
    /// every JSON-RPC id it used.
    pub fn start(
        (child, stdin, stdout): (Child, ChildStdin, Lines<BufReader<ChildStdout>>),
        first_id: i64,
        tally: Shared,
    ) -> Self {
        tokio::spawn(read(stdout, tally.clone()));
        Self {
            child,
            stdin,
            next_id: first_id,
            tally,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("airlock is running")
    }

    /// Writes a `reply` call to `chat_id`; its answer is tallied when it
    /// arrives.
    pub async fn reply(&mut self, chat_id: &str, text: &str) {
        let id = self.next_id;
        self.next_id += 1;
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "reply", "arguments": {"chat_id": chat_id, "text": text}}});
        let mut line = call.to_string().into_bytes();
        line.push(b'\n');
        {
            let mut tally = self.tally.lock();
            tally.replies_sent += 1;
            tally.calls.insert(id, Instant::now());
        }
        if let Err(e) = self.stdin.write_all(&line).await {
            let mut tally = self.tally.lock();
            tally.calls.remove(&id);
            tally.replies_failed += 1;
            tally.failures.push(format!("writing a call: {e}"));
        }
    }

    /// Closes stdin, as a session ending does, and waits for airlock to exit
    /// (killing it after `patience`). Returns its exit status, if it exited
    /// by itself.
    pub async fn stop(self, patience: Duration) -> Option<std::process::ExitStatus> {
        let Session {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        match tokio::time::timeout(patience, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = child.kill().await;
                None
            }
        }
    }
}

async fn read(mut stdout: Lines<BufReader<ChildStdout>>, tally: Shared) {
    while let Ok(Some(line)) = stdout.next_line().await {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            let mut tally = tally.lock();
            if tally.failures.len() < 5 {
                tally.failures.push(format!("not JSON on stdout: {line}"));
            }
            continue;
        };
        let mut tally = tally.lock();
        if message["method"] == "notifications/claude/channel" {
            tally.notification(&message["params"]);
        } else if let Some(id) = message["id"].as_i64()
            && message.get("method").is_none()
        {
            tally.answer(id, &message);
        }
    }
    tally.lock().closed = true;
}
