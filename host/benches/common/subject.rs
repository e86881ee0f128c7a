//! A process under measurement, driven over its stdio: airlock (as Claude
//! Code drives it, JSON-RPC over stdio) or a native bridge (JSON lines: one
//! `{"message_id":…}` per inbound message; `{"chat_id":…,"text":…}` in,
//! `{"sent":…}` or `{"error":…}` out). Shared by the platform benchmarks.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Which program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `airlock serve`.
    Airlock,
    /// The native bridge.
    Bridge,
}

/// A running subject.
pub struct Subject {
    pub kind: Kind,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: i64,
}

const PATIENCE: Duration = Duration::from_secs(30);

impl Subject {
    /// `airlock serve` on `home`.
    pub fn airlock(home: &Path) -> Self {
        Self::airlock_with(home, &[])
    }

    /// `airlock serve` on `home` with `args` after `serve` (such as
    /// `--session NAME`).
    pub fn airlock_with(home: &Path, args: &[&str]) -> Self {
        // `BENCH_WRAP="strace -f -tt -o trace.txt"` runs airlock under a tool.
        let mut cmd = match std::env::var("BENCH_WRAP") {
            Ok(wrap) if !wrap.trim().is_empty() => {
                let mut words = wrap.split_whitespace();
                let mut cmd = Command::new(words.next().unwrap());
                cmd.args(words).arg(env!("CARGO_BIN_EXE_airlock"));
                cmd
            }
            _ => Command::new(env!("CARGO_BIN_EXE_airlock")),
        };
        cmd.arg("serve").args(args).env("AIRLOCK_HOME", home);
        // For looking inside: `BENCH_AIRLOCK_LOG=airlock=trace` logs to
        // `bench-airlock.log` in the working directory.
        match std::env::var("BENCH_AIRLOCK_LOG") {
            Ok(filter) => {
                let log = std::fs::File::create("bench-airlock.log").expect("log file");
                cmd.env("AIRLOCK_LOG", filter).stderr(log);
            }
            Err(_) => {
                cmd.env_remove("AIRLOCK_LOG");
            }
        }
        Self::spawn(Kind::Airlock, cmd)
    }

    /// The benchmark's own executable as the bridge, with `args` after `--bridge`.
    pub fn bridge(args: &[&str]) -> Self {
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.arg("--bridge").args(args);
        Self::spawn(Kind::Bridge, cmd)
    }

    fn spawn(kind: Kind, mut cmd: Command) -> Self {
        if std::env::var_os("BENCH_AIRLOCK_LOG").is_none() || kind == Kind::Bridge {
            cmd.stderr(Stdio::null());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        Self {
            kind,
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
            next_id: 0,
        }
    }

    /// Closes stdin (a session ending) and waits for the process to exit,
    /// killing it if it takes longer than a second.
    pub async fn stop(self) {
        let Subject {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(1), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }

    /// The process and its two pipes, for a driver that writes requests
    /// while it reads notifications (the soak benchmark); `handshake` first.
    #[allow(dead_code)] // Only the soak benchmark takes a subject apart.
    pub fn into_parts(self) -> (Child, ChildStdin, Lines<BufReader<ChildStdout>>) {
        (self.child, self.stdin, self.stdout)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Resident set size, kB.
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    async fn send(&mut self, value: &Value) {
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .expect("the subject went quiet")
            .unwrap()
            .expect("the subject closed stdout");
        serde_json::from_str(&line).expect("JSON on stdout")
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let m = self.line().await;
            if m["id"] == json!(id) {
                return m;
            }
        }
    }

    /// What a session does first (airlock only).
    pub async fn handshake(&mut self) {
        if self.kind == Kind::Bridge {
            return;
        }
        let params = json!({"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}});
        let r = self.request("initialize", params).await;
        assert!(r["result"].is_object(), "{r}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
    }

    /// The message id of the next inbound message.
    pub async fn event(&mut self) -> String {
        loop {
            let m = self.line().await;
            let id = match self.kind {
                Kind::Airlock if m["method"] == "notifications/claude/channel" => {
                    m["params"]["meta"]["message_id"].clone()
                }
                Kind::Bridge if m.get("message_id").is_some() => m["message_id"].clone(),
                _ => continue,
            };
            return id.as_str().unwrap_or_default().to_owned();
        }
    }

    /// Sends `text` to a chat (`qualified` for airlock, `native` for the
    /// bridge) and waits for the platform's answer.
    pub async fn reply(&mut self, qualified: &str, native: Value, text: &str) {
        match self.kind {
            Kind::Airlock => {
                let r = self
                    .request(
                        "tools/call",
                        json!({"name": "reply", "arguments": {"chat_id": qualified, "text": text}}),
                    )
                    .await;
                assert_eq!(r["result"]["isError"], json!(false), "{r}");
            }
            Kind::Bridge => {
                self.send(&json!({"chat_id": native, "text": text})).await;
                loop {
                    let m = self.line().await;
                    if m.get("sent").is_some() {
                        return;
                    }
                    assert!(m.get("error").is_none(), "{m}");
                }
            }
        }
    }
}

/// The `airlock.toml` section that runs the bundled Telegram adapter
/// against a fake Bot API at `base`, granted and rebound to it.
#[allow(dead_code)] // The Slack benchmark runs no Telegram.
pub fn telegram_config(base: &str) -> String {
    format!(
        "[components.telegram]\nenabled = true\nsettings = {{ api_base = \"{base}\" }}\n\
         [components.telegram.grant]\nlocal = [\"{base}\"]\n\
         [components.telegram.grant.rebind]\n\"https://api.telegram.org\" = \"{base}\"\n"
    )
}

/// The `airlock.toml` section that runs the bundled Discord adapter against
/// a fake REST API at `api` and gateway at `gw`, granted and rebound to them.
#[allow(dead_code)] // Only the Discord and soak benchmarks run Discord.
pub fn discord_config(api: &str, gw: &str) -> String {
    format!(
        "[components.discord]\nenabled = true\n\
         settings = {{ api_base = \"{api}\", gateway_url = \"{gw}\" }}\n\
         [components.discord.grant]\nlocal = [\"{api}\", \"{gw}\"]\n\
         [components.discord.grant.rebind]\n\"https://discord.com\" = \"{api}\"\n\
         \"wss://gateway.discord.gg\" = \"{gw}\"\n"
    )
}

/// Stores secret `name` in the state directory `home`, owner-only, as an
/// operator would.
pub fn secret(home: &Path, name: &str, value: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(home.join("secrets")).unwrap();
    let path = home.join("secrets").join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `airlock.toml` lines that lift the per-adapter flood ceiling (`[delivery]
/// max_per_second`, 1000 by default) and the per-sender limit (`[access]
/// sender_per_minute`, 30 by default; a burst comes from one sender), so
/// that a burst measures the pipeline rather than the ceilings.
/// `BENCH_DEFAULT_CEILING=1` leaves the flood ceiling at its default, and
/// `BENCH_PRE_ACCESS=1` leaves out the `[access]` section (for a binary
/// from before it existed).
pub fn uncapped() -> String {
    let mut lines = String::new();
    if std::env::var_os("BENCH_DEFAULT_CEILING").is_none() {
        lines.push_str("[delivery]\nmax_per_second = 1000000\n");
    }
    if std::env::var_os("BENCH_PRE_ACCESS").is_none() {
        lines.push_str("[access]\nsender_per_minute = 100000\n");
    }
    lines
}

/// Writes `config` as the `airlock.toml` of the state directory `home`, and
/// lets each `(adapter, sender)` of `allowed` in as a member.
pub fn write_home(home: &Path, config: &str, allowed: &[(&str, &str)]) {
    std::fs::write(home.join("airlock.toml"), config).unwrap();
    if allowed.is_empty() {
        return;
    }
    let host = airlock::host::Host::open(airlock::home::AirlockHome::open(home).unwrap()).unwrap();
    let access = airlock::access::AccessStore::new(host.db.clone());
    for (adapter, sender) in allowed {
        access
            .allow(adapter, sender, airlock::access::Role::Member)
            .unwrap();
    }
}

/// Runs a benchmark's `bench` on a multi-threaded runtime.
pub fn block_on(bench: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench);
}
