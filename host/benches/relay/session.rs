//! The session's side of `airlock serve`: an rmcp client over the child's
//! stdio, as Claude Code holds it. Each channel event and each permission
//! verdict is stamped the moment the client has read it, so that the time a
//! figure ends at does not wait on whoever takes it from the queue.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::ClientHandler;
use rmcp::model::{ClientNotification, CustomNotification};
use rmcp::service::{NotificationContext, RoleClient, RunningService, ServiceExt};
use rmcp::transport::TokioChildProcess;
use serde_json::Value;
use tokio::sync::mpsc;

/// A channel event, as Claude Code receives one.
const CHANNEL: &str = "notifications/claude/channel";
/// How Claude Code relays a permission prompt.
const PERMISSION_REQUEST: &str = "notifications/claude/channel/permission_request";
/// How airlock answers one.
const PERMISSION: &str = "notifications/claude/channel/permission";
/// How long anything may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// A notification's params and when the client read it.
pub struct Stamped {
    pub at: Instant,
    pub params: Value,
}

/// Forwards channel events and verdicts, stamped.
struct Forward {
    events: mpsc::UnboundedSender<Stamped>,
    verdicts: mpsc::UnboundedSender<Stamped>,
}

impl ClientHandler for Forward {
    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        let at = Instant::now();
        let params = notification.params.unwrap_or(Value::Null);
        let to = match notification.method.as_str() {
            CHANNEL => &self.events,
            PERMISSION => &self.verdicts,
            _ => return,
        };
        let _ = to.send(Stamped { at, params });
    }
}

/// `airlock serve` with a session attached.
pub struct Session {
    client: RunningService<RoleClient, Forward>,
    events: mpsc::UnboundedReceiver<Stamped>,
    verdicts: mpsc::UnboundedReceiver<Stamped>,
}

impl Session {
    /// Spawns `airlock serve` on `home` and completes the handshake. Its
    /// stderr is dropped, unless `BENCH_AIRLOCK_LOG` names a filter: then it
    /// goes to `bench-airlock.log` in the working directory.
    pub async fn start(home: &Path) -> Self {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_airlock"));
        cmd.arg("serve").env("AIRLOCK_HOME", home);
        let stderr = match std::env::var("BENCH_AIRLOCK_LOG") {
            Ok(filter) => {
                cmd.env("AIRLOCK_LOG", filter);
                Stdio::from(std::fs::File::create("bench-airlock.log").expect("log file"))
            }
            Err(_) => {
                cmd.env_remove("AIRLOCK_LOG");
                Stdio::null()
            }
        };
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(stderr)
            .spawn()
            .expect("spawn airlock serve");
        let (events_tx, events) = mpsc::unbounded_channel();
        let (verdicts_tx, verdicts) = mpsc::unbounded_channel();
        let forward = Forward {
            events: events_tx,
            verdicts: verdicts_tx,
        };
        let client = tokio::time::timeout(PATIENCE, forward.serve(transport))
            .await
            .expect("no handshake")
            .expect("handshake failed");
        Self {
            client,
            events,
            verdicts,
        }
    }

    /// Whether the server declared `claude/channel/permission`.
    pub fn declares_relay(&self) -> bool {
        self.client
            .peer_info()
            .and_then(|i| i.capabilities.experimental.clone())
            .is_some_and(|e| e.contains_key("claude/channel/permission"))
    }

    /// Relays a permission prompt, as Claude Code does.
    pub async fn permission_request(&self, params: Value) {
        let notification = CustomNotification::new(PERMISSION_REQUEST, Some(params));
        self.client
            .send_notification(ClientNotification::CustomNotification(notification))
            .await
            .expect("the permission request was sent");
    }

    /// The next channel event.
    pub async fn event(&mut self) -> Stamped {
        tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .expect("no channel event")
            .expect("the session ended")
    }

    /// The next verdict, if one comes within `within`.
    pub async fn verdict_within(&mut self, within: Duration) -> Option<Stamped> {
        tokio::time::timeout(within, self.verdicts.recv())
            .await
            .ok()
            .flatten()
    }

    /// Ends the session (airlock exits when its stdin closes).
    pub async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.cancel()).await;
    }
}
