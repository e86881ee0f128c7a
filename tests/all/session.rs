//! The session's side of `airlock serve`, shared by the channel tests: the
//! rmcp client over the child's stdio (as Claude Code holds it), and the
//! binary driven by hand, JSON line by JSON line, for hostile input and for
//! killing it mid-stream.

use std::process::Stdio;
use std::time::Duration;

use rmcp::ClientHandler;
use rmcp::model::{CallToolRequestParams, CustomNotification};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RoleClient, RunningService,
};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

use crate::support::*;

pub const CHANNEL: &str = "notifications/claude/channel";
/// How Claude Code relays a permission prompt.
pub const PERMISSION_REQUEST: &str = "notifications/claude/channel/permission_request";
/// How a channel server answers one.
pub const PERMISSION: &str = "notifications/claude/channel/permission";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Run `airlock ARGS` on the same state directory, as an operator would.
pub async fn cli(home: &TempHome, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(
        SOON,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .env("AIRLOCK_HOME", home.path())
            .env_remove("AIRLOCK_LOG")
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("airlock {args:?} did not finish"))
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `airlock ARGS` on `home`, which must succeed; its stdout.
pub async fn cli_ok(home: &TempHome, args: &[&str]) -> String {
    let (code, out, err) = cli(home, args).await;
    assert_eq!(code, Some(0), "airlock {args:?}:\n{out}{err}");
    out
}

/// `airlock ARGS --json` on `home`, which must succeed; its stdout parsed.
pub async fn cli_json(home: &TempHome, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cli_ok(home, &all).await;
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("airlock {all:?} is not JSON ({e}):\n{out}"))
}

/// A tool result as `(is_error, first text)`.
pub fn outcome(result: &Value) -> (bool, String) {
    let is_error = result["isError"].as_bool().unwrap_or(false);
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {result}"))
        .to_string();
    (is_error, text)
}

/// The message id in a `reply` result (`sent (id: 42)`).
pub fn sent_id(text: &str) -> String {
    text.strip_prefix("sent (id: ")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a single sent message: {text:?}"))
        .to_owned()
}

pub fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// `YYYY-MM-DDTHH:MM:SS(.fff)Z`.
pub fn is_iso8601_utc(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b.ends_with(b"Z")
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1) && b.len() > 21))
}

/// Waits until `session`'s stderr holds `text`.
pub async fn logged(session: &Session, text: &str) {
    let deadline = std::time::Instant::now() + STARTUP;
    while !session.log.text().contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {text:?} on stderr:\n{}",
            session.log.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Forwards every channel notification's params, and every permission
/// verdict's.
pub struct Notifier(
    pub mpsc::UnboundedSender<Value>,
    pub mpsc::UnboundedSender<Value>,
);

impl ClientHandler for Notifier {
    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        let params = notification.params.unwrap_or(Value::Null);
        if notification.method == CHANNEL {
            let _ = self.0.send(params);
        } else if notification.method == PERMISSION {
            let _ = self.1.send(params);
        }
    }
}

/// A session as Claude Code holds it: the rmcp client over the child's stdio.
pub struct Session {
    pub client: RunningService<RoleClient, Notifier>,
    pub events: mpsc::UnboundedReceiver<Value>,
    /// Params of each `notifications/claude/channel/permission`.
    pub verdicts: mpsc::UnboundedReceiver<Value>,
    pub log: Log,
}

impl Session {
    /// The `instructions` the server gave in its handshake.
    pub fn instructions(&self) -> String {
        self.client
            .peer_info()
            .and_then(|i| i.instructions.clone())
            .expect("instructions")
    }

    /// Spawn `airlock serve` and complete the handshake `lifecycle` asks for.
    pub async fn start_with(home: &TempHome, lifecycle: ClientLifecycleMode) -> Self {
        Self::start_command(serve_command(home), lifecycle).await
    }

    /// Spawn `command` (an `airlock serve`) and complete the handshake.
    pub async fn start_command(
        command: tokio::process::Command,
        lifecycle: ClientLifecycleMode,
    ) -> Self {
        let (transport, stderr) = TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Log::drain(stderr.unwrap());
        let (tx, events) = mpsc::unbounded_channel();
        let (verdict_tx, verdicts) = mpsc::unbounded_channel();
        let handshake = Notifier(tx, verdict_tx).serve_with_lifecycle(transport, lifecycle);
        let client = match tokio::time::timeout(STARTUP, handshake).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("handshake failed: {e}; stderr:\n{}", log.text()),
            Err(_) => panic!("no handshake; stderr:\n{}", log.text()),
        };
        Self {
            client,
            events,
            verdicts,
            log,
        }
    }

    /// Spawn with the plain `initialize` handshake.
    pub async fn start(home: &TempHome) -> Self {
        Self::start_with(home, ClientLifecycleMode::Initialize).await
    }

    /// The next channel notification, if one comes within `within`.
    pub async fn event_within(&mut self, within: Duration) -> Option<Value> {
        tokio::time::timeout(within, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next channel notification; fails the test if none comes.
    pub async fn event(&mut self) -> Value {
        match self.event_within(SOON).await {
            Some(e) => e,
            None => panic!("no channel notification; stderr:\n{}", self.log.text()),
        }
    }

    /// Whether the server declared `claude/channel/permission`.
    pub fn declares_relay(&self) -> bool {
        self.client
            .peer_info()
            .and_then(|i| i.capabilities.experimental.clone())
            .is_some_and(|e| e.contains_key("claude/channel/permission"))
    }

    /// Relay a permission prompt, as Claude Code does.
    pub async fn permission_request(&self, params: Value) {
        let notification = CustomNotification::new(PERMISSION_REQUEST, Some(params));
        self.client
            .send_notification(rmcp::model::ClientNotification::CustomNotification(
                notification,
            ))
            .await
            .expect("the permission request was sent");
    }

    /// The next verdict, if one comes within `within`.
    pub async fn verdict_within(&mut self, within: Duration) -> Option<Value> {
        tokio::time::timeout(within, self.verdicts.recv())
            .await
            .ok()
            .flatten()
    }

    /// Call a tool; the result as JSON.
    pub async fn call(&self, name: &'static str, arguments: Value) -> Value {
        let params = CallToolRequestParams::new(name).with_arguments(args(arguments));
        let result = tokio::time::timeout(SOON, self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{name} did not answer"))
            .unwrap_or_else(|e| panic!("{name} failed at the protocol level: {e}"));
        serde_json::to_value(result).unwrap()
    }

    pub async fn tool_names(&self) -> Vec<String> {
        tokio::time::timeout(SOON, self.client.list_all_tools())
            .await
            .expect("tools/list did not answer")
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    pub async fn close(self) {
        let _ = tokio::time::timeout(SOON, self.client.cancel()).await;
    }
}

/// The binary driven by hand: JSON lines in, JSON lines out.
pub struct Raw {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub log: Log,
    pub next_id: i64,
}

impl Raw {
    pub fn start(home: &TempHome) -> Self {
        Self::start_command(serve_command(home))
    }

    /// Spawn `command` (an `airlock serve`) with piped stdio.
    pub fn start_command(mut command: tokio::process::Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Log::drain(child.stderr.take().unwrap());
        Self {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
            log,
            next_id: 100,
        }
    }

    pub async fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
    }

    pub async fn send(&mut self, message: Value) {
        self.send_line(&message.to_string()).await;
    }

    /// The next message on stdout, if one comes within `within`. Every line
    /// must be JSON: stdout carries JSON-RPC only.
    pub async fn next_within(&mut self, within: Duration) -> Option<Value> {
        let line = tokio::time::timeout(within, self.stdout.next_line())
            .await
            .ok()?
            .unwrap()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "stdout carried a non-JSON line ({e}): {:?}",
                &line[..line.len().min(300)]
            )
        }))
    }

    pub async fn next(&mut self) -> Value {
        match self.next_within(STARTUP).await {
            Some(m) => m,
            None => panic!("nothing on stdout; stderr:\n{}", self.log.text()),
        }
    }

    /// Send a request and wait for its response (notifications in between
    /// are set aside in `skipped`).
    pub async fn request(
        &mut self,
        method: &str,
        params: Value,
        skipped: &mut Vec<Value>,
    ) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let m = self.next().await;
            if m["id"] == json!(id) {
                return m;
            }
            skipped.push(m);
        }
    }

    pub async fn initialize(&mut self) -> Value {
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "channel-test", "version": "1"},
        });
        let response = self.request("initialize", params, &mut Vec::new()).await;
        assert!(response["result"].is_object(), "{response}");
        response
    }

    pub async fn initialized(&mut self) {
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
    }

    /// `tools/call`; the result object (a tool error is still a result).
    pub async fn call(&mut self, name: &str, arguments: Value, skipped: &mut Vec<Value>) -> Value {
        let response = self
            .request(
                "tools/call",
                json!({"name": name, "arguments": arguments}),
                skipped,
            )
            .await;
        assert!(
            response.get("error").is_none(),
            "{name}: a protocol error instead of a tool result: {response}"
        );
        response["result"].clone()
    }
}
