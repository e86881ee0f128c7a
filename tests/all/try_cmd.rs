//! `airlock try` in a terminal: the real binary under a pseudo-terminal
//! (util-linux `script`), with the fakechat page reached over real HTTP and
//! the user's replies typed into the terminal.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};

use crate::support::*;

const SCRIPT: &str = "/usr/bin/script";

/// `airlock try` running under a pseudo-terminal; killed (and with it the
/// terminal, which hangs up on `airlock`) when dropped.
struct Terminal {
    child: Child,
    keyboard: ChildStdin,
    /// Everything the terminal showed, `\r` removed.
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(home: &TempHome) -> Self {
        Self::start_with(home, &[], &[])
    }

    /// `airlock try ARGS` with `env` added.
    fn start_with(home: &TempHome, args: &[&str], env: &[(&str, &Path)]) -> Self {
        assert!(
            Path::new(SCRIPT).exists(),
            "{SCRIPT} is missing (util-linux, package bsdutils)"
        );
        let airlock = env!("CARGO_BIN_EXE_airlock");
        let mut command = format!("exec '{airlock}' try");
        for arg in args {
            command.push_str(&format!(" '{arg}'"));
        }
        assert!(!command.contains("''"), "{command}");
        let mut child = tokio::process::Command::new(SCRIPT)
            .args(["-q", "-f", "-e", "-c"])
            .arg(command)
            .arg("/dev/null")
            .envs(env.iter().copied())
            .env("AIRLOCK_HOME", home.path())
            .env_remove("AIRLOCK_LOG")
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let screen: Arc<Mutex<Vec<u8>>> = Arc::default();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = screen.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .extend(buf[..n].iter().filter(|&&b| b != b'\r'));
                }
            });
        }
        Self {
            keyboard: child.stdin.take().unwrap(),
            child,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Wait until `found` picks something out of the screen.
    async fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        found: impl Fn(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if let Some(t) = found(&screen) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}; the terminal showed:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Type a line and press Enter.
    async fn type_line(&mut self, line: &str) {
        let typing = async {
            self.keyboard.write_all(line.as_bytes()).await?;
            self.keyboard.write_all(b"\n").await?;
            self.keyboard.flush().await
        };
        tokio::time::timeout(SOON, typing)
            .await
            .expect("the terminal took no input")
            .unwrap();
    }
}

/// The token in `fakechat: open http://127.0.0.1:PORT/?token=HEX`.
fn url_token(screen: &str, port: u16) -> Option<String> {
    let marker = format!("fakechat: open http://127.0.0.1:{port}/?token=");
    let line = screen.lines().find(|l| l.starts_with(&marker))?;
    let token = &line[marker.len()..];
    assert!(
        token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "a 128-bit hex token: {line:?}"
    );
    Some(token.to_string())
}

/// The event for message `id` as the session sees it: the opening tag, the
/// text, the closing tag, each on its own line.
fn rendered_event(screen: &str, id: &str) -> Option<(String, Vec<String>)> {
    let lines: Vec<&str> = screen.lines().collect();
    let start = lines.iter().position(|l| {
        l.starts_with("<channel source=\"airlock\" chat_id=\"fakechat:web\"")
            && l.contains(&format!(" message_id=\"{id}\""))
    })?;
    let end = start + lines[start..].iter().position(|l| *l == "</channel>")?;
    let body = lines[start + 1..end]
        .iter()
        .map(|l| l.to_string())
        .collect();
    Some((lines[start].to_string(), body))
}

/// N in `→ fakechat:web: sent (id: N)`.
fn sent_id(screen: &str) -> Option<String> {
    screen.lines().find_map(|l| {
        let id = l
            .strip_prefix("→ fakechat:web: sent (id: ")?
            .strip_suffix(')')?;
        Some(id.to_string())
    })
}

#[tokio::test]
async fn script_gives_the_command_a_terminal() {
    // The harness itself: what runs under `script` has a tty on stdin and
    // stdout, even though the test talks to `script` through pipes.
    let mut child = tokio::process::Command::new(SCRIPT)
        .args([
            "-q",
            "-f",
            "-e",
            "-c",
            "test -t 0 && test -t 1 && tty",
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Kept open, as in the real test: `script` does not see end of input.
    let _keyboard = child.stdin.take();
    let out = tokio::time::timeout(SOON, child.wait_with_output())
        .await
        .expect("script did not finish")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim().starts_with("/dev/pts/"),
        "{}: {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn try_shows_events_as_the_session_sees_them_and_sends_typed_replies() {
    let (home, port) = fakechat_home();
    let mut terminal = Terminal::start(&home);
    let token = terminal
        .wait_for("page URL", STARTUP, |s| url_token(s, port))
        .await;

    // A message from the page shows up as the `<channel>` event.
    let id = page_send(port, &token, "hello from the page").await;
    let (tag, body) = terminal
        .wait_for("rendered event", SOON, |s| rendered_event(s, &id))
        .await;
    assert!(tag.ends_with('>'), "{tag}");
    assert!(tag.contains(" user=\"web\""), "{tag}");
    assert_eq!(body, ["hello from the page"], "{tag}");

    // A typed line goes out through `reply` to the chat of that message.
    terminal.type_line("hi from the terminal").await;
    let sent = terminal
        .wait_for("`→ fakechat:web: sent (id: N)`", SOON, sent_id)
        .await;
    let messages = page_messages(port, &token).await;
    assert!(
        messages.iter().any(|m| m["from"] == "bot"
            && m["text"] == "hi from the terminal"
            && m["id"] == sent.as_str()),
        "no bot message {sent} with the typed text: {messages:?}"
    );

    // `/quit` ends it at once.
    terminal.type_line("/quit").await;
    let quit = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(2), terminal.child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "still running 2 s after /quit; the terminal showed:\n{}",
                terminal.screen()
            )
        })
        .unwrap();
    assert!(
        status.success(),
        "{status} after {:?}; the terminal showed:\n{}",
        quit.elapsed(),
        terminal.screen()
    );
}

/// `airlock new adapter` writes a crate that `airlock try --adapter DIR`
/// builds and runs at once: a message posted to its route shows up as the
/// session would see it, and a typed line goes out through its `send`.
#[tokio::test]
async fn a_new_adapter_is_built_and_tried_at_once() {
    let home = TempHome::new();
    let parent = tempfile::tempdir().unwrap();
    let scaffold = || {
        home.airlock(&[
            "new",
            "adapter",
            "my-chat",
            "--dir",
            parent.path().to_str().unwrap(),
        ])
    };
    let out = scaffold();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = parent.path().join("my-chat");
    assert!(
        text.contains(&format!("airlock try --adapter {}", dir.display())),
        "{text}"
    );
    for file in [
        "Cargo.toml",
        "rust-toolchain.toml",
        "my-chat.toml",
        "src/lib.rs",
        "README.md",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing; it said:\n{text}");
    }
    // Again: refused, nothing overwritten.
    let again = scaffold();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    assert!(text.contains("airlock access allow my-chat 42"), "{text}");
    let allowed = home.airlock(&["access", "allow", "my-chat", "42"]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    // No `port` setting: `try` picks a free one for the run and says so.
    // A target folder kept between runs, so only the first builds from scratch.
    let target = root().join("target").join("scaffold");
    let mut terminal = Terminal::start_with(
        &home,
        &["--adapter", dir.to_str().unwrap()],
        &[("CARGO_TARGET_DIR", &target)],
    );
    let marker = "my-chat: open http://127.0.0.1:";
    let (port, token) = terminal
        .wait_for(
            "the route's URL after the build",
            Duration::from_secs(600),
            |s| {
                let line = s.lines().find(|l| l.starts_with(marker))?;
                let (port, token) = line[marker.len()..].split_once("/?token=")?;
                Some((port.parse::<u16>().ok()?, token.trim().to_string()))
            },
        )
        .await;
    assert!(
        terminal.screen().contains(&format!(
            "my-chat has no `port` setting; its route listens on {port} for this run"
        )),
        "{}",
        terminal.screen()
    );
    assert!(
        terminal.screen().contains("building my-chat"),
        "{}",
        terminal.screen()
    );

    let body = serde_json::json!({"chat": "ops", "user_id": "42", "text": "hello from curl"});
    webhook_post(port, &token, body).await;
    terminal
        .wait_for("the rendered event", SOON, |s| {
            let at = s.find("<channel source=\"airlock\" chat_id=\"my-chat:ops\"")?;
            s[at..].contains("hello from curl").then_some(())
        })
        .await;
    terminal.type_line("hi back").await;
    terminal
        .wait_for("`→ my-chat:ops: sent (id: my-chat-1)`", SOON, |s| {
            s.contains("→ my-chat:ops: sent (id: my-chat-1)")
                .then_some(())
        })
        .await;
    terminal.type_line("/quit").await;
    let status = tokio::time::timeout(Duration::from_secs(5), terminal.child.wait())
        .await
        .expect("still running after /quit")
        .unwrap();
    assert!(status.success(), "{}", terminal.screen());
}
