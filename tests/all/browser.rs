//! The fakechat page in a real browser: `airlock serve` (the real binary)
//! with an MCP client that echoes every channel event back through the
//! `reply` tool, and Debian's headless Chromium driven over W3C WebDriver
//! (chromedriver, spoken to by the small client below) typing into the page
//! and waiting for the echo to show up in it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ClientHandler;
use rmcp::model::{CallToolRequestParams, CustomNotification};
use rmcp::service::{NotificationContext, RoleClient, ServiceExt};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHANNEL: &str = "notifications/claude/channel";
/// How long the echo may take to appear in the page.
const ECHO: Duration = Duration::from_secs(15);
/// Upper bound for one WebDriver command (a new session starts Chromium).
const COMMAND: Duration = Duration::from_secs(60);
/// W3C WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---------------------------------------------------------------------------
// The session: echoes every event back to its chat
// ---------------------------------------------------------------------------

/// Answers each channel notification with `reply` to its `chat_id`, text
/// `echo: <content>`; keeps each tool result (or failure) for diagnosis.
#[derive(Clone, Default)]
struct Echo {
    outcomes: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Echo {
    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleClient>,
    ) {
        if notification.method != CHANNEL {
            return;
        }
        let params = notification.params.unwrap_or(Value::Null);
        let chat_id = params["meta"]["chat_id"].as_str().unwrap_or("").to_string();
        let content = params["content"].as_str().unwrap_or("").to_string();
        let arguments = json!({"chat_id": chat_id, "text": format!("echo: {content}")});
        let outcomes = self.outcomes.clone();
        // Called from a task of its own: the handler must not wait on a
        // response its own service loop delivers.
        tokio::spawn(async move {
            let call = CallToolRequestParams::new("reply")
                .with_arguments(arguments.as_object().unwrap().clone());
            let outcome = match tokio::time::timeout(SOON, context.peer.call_tool(call)).await {
                Ok(Ok(result)) => serde_json::to_value(result).unwrap().to_string(),
                Ok(Err(e)) => format!("reply failed: {e}"),
                Err(_) => "reply did not answer".to_string(),
            };
            outcomes.lock().unwrap().push(outcome);
        });
    }
}

// ---------------------------------------------------------------------------
// A minimal W3C WebDriver client (HTTP/1.1 over a TcpStream)
// ---------------------------------------------------------------------------

/// One HTTP/1.1 exchange with `127.0.0.1:port`: status and body.
fn http_blocking(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(COMMAND))?;
    stream.set_write_timeout(Some(COMMAND))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;

    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse::<usize>().ok();
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut data = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| std::io::Error::other(format!("bad chunk size: {e}")))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            data.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        data.resize(n, 0);
        reader.read_exact(&mut data)?;
    } else {
        reader.read_to_end(&mut data)?;
    }
    Ok((status, data))
}

/// Fails the test, saying what to install, unless Debian's Chromium and
/// chromedriver are there. Never a skip: CI installs them (`.ci/run`).
fn require_browser() {
    for (file, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(file).exists(),
            "{file} is missing: this test drives a real browser. Install it with \
             `apt-get install -y --no-install-recommends chromium chromium-driver` \
             (package {package}), as .ci/run does."
        );
    }
}

/// chromedriver on a loopback port, with at most one browser session. On
/// drop the session is deleted (closing Chromium) and chromedriver killed.
struct WebDriver {
    port: u16,
    process: std::process::Child,
    session: Option<String>,
    /// Chromium's profile and chromedriver's log.
    scratch: tempfile::TempDir,
}

impl WebDriver {
    /// Start chromedriver and wait until it is ready.
    fn start() -> Self {
        require_browser();
        let scratch = tempfile::tempdir().unwrap();
        let [port] = free_ports();
        let log = std::fs::File::create(scratch.path().join("chromedriver.log")).unwrap();
        let process = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e}"));
        let driver = Self {
            port,
            process,
            session: None,
            scratch,
        };
        let deadline = Instant::now() + SOON;
        loop {
            if let Ok((200, body)) = http_blocking(port, "GET", "/status", None)
                && serde_json::from_slice::<Value>(&body)
                    .is_ok_and(|v| v["value"]["ready"] == json!(true))
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}:\n{}",
                driver.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A WebDriver command; its `value`, or a panic naming the error.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, data) = http_blocking(self.port, method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}\n{}", self.log()));
        let reply: Value = serde_json::from_slice(&data).unwrap_or_else(|e| {
            panic!(
                "WebDriver {method} {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&data)
            )
        });
        assert_eq!(status, 200, "WebDriver {method} {path}: {reply}");
        reply["value"].clone()
    }

    /// A command on the current session (`path` relative to it).
    fn session_command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let id = self.session.as_deref().expect("a session");
        self.command(method, &format!("/session/{id}{path}"), body)
    }

    /// A new headless Chromium session.
    fn new_session(&mut self) {
        let profile = self.scratch.path().join("profile");
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--no-first-run",
                            "--window-size=1000,700",
                            format!("--user-data-dir={}", profile.display()),
                        ],
                    },
                },
            },
        });
        let value = self.command("POST", "/session", Some(capabilities));
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id: {value}"));
        self.session = Some(id.to_string());
    }

    fn navigate(&self, url: &str) {
        self.session_command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Element references for a CSS selector (possibly none).
    fn find_all(&self, css: &str) -> Vec<String> {
        let value = self.session_command(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        value
            .as_array()
            .unwrap_or_else(|| panic!("elements {css}: {value}"))
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    /// The one element for a CSS selector.
    fn find(&self, css: &str) -> String {
        let value = self.session_command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        value[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("element {css}: {value}"))
            .to_string()
    }

    /// An element's rendered text.
    fn text(&self, element: &str) -> String {
        let value = self.session_command("GET", &format!("/element/{element}/text"), None);
        value.as_str().unwrap_or_default().to_string()
    }

    /// The rendered texts of all elements matching `css`.
    fn texts(&self, css: &str) -> Vec<String> {
        self.find_all(css).iter().map(|e| self.text(e)).collect()
    }

    fn property(&self, element: &str, name: &str) -> Value {
        self.session_command("GET", &format!("/element/{element}/property/{name}"), None)
    }

    fn send_keys(&self, element: &str, text: &str) {
        self.session_command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, element: &str) {
        self.session_command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// A PNG of the viewport.
    fn screenshot(&self) -> Vec<u8> {
        let value = self.session_command("GET", "/screenshot", None);
        base64_decode(value.as_str().expect("base64 PNG"))
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            let _ = http_blocking(self.port, "DELETE", &format!("/session/{id}"), None);
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Standard base64 (with or without padding) to bytes.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", c as char),
        }
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | value(c) << (18 - 6 * i));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8h"), b"hello!");
    assert_eq!(base64_decode("aGk"), b"hi");
    assert_eq!(base64_decode(""), b"");
}

/// Where the screenshot goes, for humans to look at.
fn screenshot_path() -> PathBuf {
    root().join("target").join("browser-test.png")
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_typed_in_the_page_comes_back_as_the_sessions_reply() {
    // Fail (not skip) before anything is started when the browser is missing.
    require_browser();

    // `airlock serve` with a session that echoes.
    let (home, port) = fakechat_home();
    let (transport, stderr) = TokioChildProcess::builder(serve_command(&home))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let serve_log = Log::drain(stderr.unwrap());
    let echo = Echo::default();
    let client = match tokio::time::timeout(STARTUP, echo.clone().serve(transport)).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!("handshake failed: {e}; stderr:\n{}", serve_log.text()),
        Err(_) => panic!("no handshake; stderr:\n{}", serve_log.text()),
    };
    let token = serve_log.token(port).await;
    let page = format!("http://127.0.0.1:{port}/?token={token}");

    // The browser, driven from a blocking thread (WebDriver calls block).
    let outcomes = echo.outcomes.clone();
    let browser = tokio::task::spawn_blocking(move || {
        let mut driver = WebDriver::start();
        driver.new_session();
        driver.navigate(&page);
        let title = driver.session_command("GET", "/title", None);
        assert_eq!(title, "airlock fakechat");

        // The page's first poll succeeded.
        let status = driver.find("#status");
        let deadline = Instant::now() + SOON;
        while driver.text(&status) != "connected" {
            assert!(
                Instant::now() < deadline,
                "the page never connected; its status: {:?}",
                driver.text(&status)
            );
            std::thread::sleep(Duration::from_millis(100));
        }

        // Type and press the Send button.
        let text_box = driver.find("#text");
        driver.send_keys(&text_box, "hello from the browser");
        driver.click(&driver.find("#send"));

        // The echo arrives through the session's `reply` and the page shows it.
        let deadline = Instant::now() + ECHO;
        loop {
            let bot = driver.texts(".msg.bot .text");
            if bot.iter().any(|t| t == "echo: hello from the browser") {
                break;
            }
            if Instant::now() >= deadline {
                let log = driver.find("#log");
                panic!(
                    "no echo in the page within {ECHO:?}.\npage: {:?}\nstatus: {:?}\n\
                     reply results: {:?}",
                    driver.text(&log),
                    driver.text(&status),
                    outcomes.lock().unwrap(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(driver.texts(".msg.user .text"), ["hello from the browser"]);
        assert_eq!(
            driver.texts(".msg.bot .text"),
            ["echo: hello from the browser"]
        );
        assert_eq!(
            driver.property(&text_box, "value"),
            "",
            "the text box was cleared"
        );
        assert_eq!(driver.text(&status), "connected");

        let png = driver.screenshot();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        let file = screenshot_path();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, png).unwrap();
        // `driver` drops here: the session is deleted, chromedriver killed.
    });
    let outcome = tokio::time::timeout(Duration::from_secs(120), browser).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("airlock serve stderr:\n{}", serve_log.text());
            std::panic::resume_unwind(e.into_panic());
        }
        Err(_) => panic!(
            "the browser run did not finish; stderr:\n{}",
            serve_log.text()
        ),
    }

    // What the page showed is what the adapter holds.
    let messages = page_messages(port, &token).await;
    let listed: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| (m["from"].as_str().unwrap(), m["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("user", "hello from the browser"),
            ("bot", "echo: hello from the browser")
        ]
    );
    let outcomes = echo.outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(outcomes[0].contains("sent (id: "), "{outcomes:?}");
    let _ = tokio::time::timeout(SOON, client.cancel()).await;
}
