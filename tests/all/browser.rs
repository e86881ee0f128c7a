//! The fakechat page in a real browser: `airlock serve` (the real binary)
//! with an MCP client that echoes every channel event back through the
//! `reply` tool, and Debian's headless Chromium driven over W3C WebDriver
//! (chromedriver, spoken to with `fantoccini`) typing into the page and
//! waiting for the echo to show up in it. A second test relays a permission
//! request to the page, photographs the prompt for the README
//! (`docs/relay-prompt.png`) and answers it with a real click.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use rmcp::ClientHandler;
use rmcp::model::{CallToolRequestParams, CustomNotification};
use rmcp::service::{NotificationContext, RoleClient, ServiceExt};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use crate::session::Session;
use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHANNEL: &str = "notifications/claude/channel";
/// How long the echo may take to appear in the page.
const ECHO: Duration = Duration::from_secs(15);
/// Upper bound for one WebDriver command (a new session starts Chromium).
const COMMAND: Duration = Duration::from_secs(60);

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
// chromedriver
// ---------------------------------------------------------------------------

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

/// chromedriver on a loopback port; killed on drop.
struct ChromeDriver {
    port: u16,
    process: std::process::Child,
    /// Chromium's profile and chromedriver's log.
    scratch: tempfile::TempDir,
}

impl ChromeDriver {
    /// Start chromedriver and wait until it accepts connections.
    async fn start() -> Self {
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
            scratch,
        };
        let deadline = Instant::now() + SOON;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port}:\n{}",
                driver.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A new headless Chromium session.
    async fn new_session(&self) -> Client {
        let profile = self.scratch.path().join("profile");
        let capabilities = json!({
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
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let connect = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await;
        match connect {
            Ok(client) => client,
            Err(e) => panic!("WebDriver new session: {e}\n{}", self.log()),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A WebDriver command's result, or a panic naming the command and the
/// error; bounded by [`COMMAND`].
async fn wd<T, E: std::fmt::Display>(what: &str, command: impl Future<Output = Result<T, E>>) -> T {
    match tokio::time::timeout(COMMAND, command).await {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => panic!("WebDriver {what}: {e}"),
        Err(_) => panic!("WebDriver {what}: no answer within {COMMAND:?}"),
    }
}

/// The rendered texts of all elements matching `css`.
async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in wd(css, client.find_all(Locator::Css(css))).await {
        texts.push(wd(css, element.text()).await);
    }
    texts
}

/// Where the screenshot goes, for humans to look at.
fn screenshot_path() -> PathBuf {
    root().join("target").join("browser-test.png")
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

/// The page: it connects, a message typed and sent comes back as the
/// session's echo, and the page ends up showing exactly those two messages.
async fn drive(client: Client, page: String, outcomes: Arc<Mutex<Vec<String>>>) {
    wd("navigate", client.goto(&page)).await;
    assert_eq!(wd("title", client.title()).await, "airlock fakechat");

    // The page's first poll succeeded.
    let status = wd("#status", client.find(Locator::Css("#status"))).await;
    let deadline = Instant::now() + SOON;
    loop {
        let text = wd("#status", status.text()).await;
        if text == "connected" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page never connected; its status: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Type and press the Send button.
    let text_box = wd("#text", client.find(Locator::Css("#text"))).await;
    wd("type", text_box.send_keys("hello from the browser")).await;
    let send = wd("#send", client.find(Locator::Css("#send"))).await;
    wd("click", send.click()).await;

    // The echo arrives through the session's `reply` and the page shows it.
    let deadline = Instant::now() + ECHO;
    loop {
        let bot = texts(&client, ".msg.bot .text").await;
        if bot.iter().any(|t| t == "echo: hello from the browser") {
            break;
        }
        if Instant::now() >= deadline {
            let log = wd("#log", client.find(Locator::Css("#log"))).await;
            panic!(
                "no echo in the page within {ECHO:?}.\npage: {:?}\nstatus: {:?}\n\
                 reply results: {:?}",
                wd("#log", log.text()).await,
                wd("#status", status.text()).await,
                outcomes.lock().unwrap(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        texts(&client, ".msg.user .text").await,
        ["hello from the browser"]
    );
    assert_eq!(
        texts(&client, ".msg.bot .text").await,
        ["echo: hello from the browser"]
    );
    assert_eq!(
        wd("value", text_box.prop("value")).await.as_deref(),
        Some(""),
        "the text box was cleared"
    );
    assert_eq!(wd("#status", status.text()).await, "connected");

    let png = wd("screenshot", client.screenshot()).await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let file = screenshot_path();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, png).unwrap();
}

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

    // The browser, driven from a task of its own so that a failure still
    // ends the WebDriver session (closing Chromium) before chromedriver is
    // killed.
    let driver = ChromeDriver::start().await;
    let browser = driver.new_session().await;
    let run = tokio::spawn(drive(browser.clone(), page, echo.outcomes.clone()));
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = tokio::time::timeout(SOON, browser.close()).await;
    let chromedriver_log = driver.log();
    drop(driver);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!(
                "airlock serve stderr:\n{}\nchromedriver log:\n{chromedriver_log}",
                serve_log.text()
            );
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

// ---------------------------------------------------------------------------
// The permission relay's prompt on the page
// ---------------------------------------------------------------------------

/// Where the screenshot of a prompt goes. Every run writes one under
/// `target/`; `AIRLOCK_UPDATE_DOCS=1` writes the one the README shows,
/// `docs/relay-prompt.png` (its clock changes each run, so ordinary runs
/// leave the committed picture alone).
fn prompt_screenshot_path() -> PathBuf {
    if std::env::var_os("AIRLOCK_UPDATE_DOCS").is_some_and(|v| v == "1") {
        root().join("docs").join("relay-prompt.png")
    } else {
        root().join("target").join("relay-prompt.png")
    }
}

/// The newest bot message as the page renders it: `{id, text, labels}`, or
/// null before there is one. Read in one script, so a re-render between
/// WebDriver commands cannot leave a stale element.
async fn newest_bot_message(client: &Client) -> Value {
    const SCRIPT: &str = r#"
        const all = document.querySelectorAll(".msg.bot");
        const m = all[all.length - 1];
        if (!m) return null;
        const text = m.querySelector(".text");
        return {
            id: m.dataset.id,
            text: text ? text.textContent : "",
            labels: Array.from(m.querySelectorAll(".msg-button"), (b) => b.dataset.label),
        };
    "#;
    wd("newest bot message", client.execute(SCRIPT, Vec::new())).await
}

/// Waits until the newest bot message satisfies `pred`; returns it.
async fn until_newest(client: &Client, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + ECHO;
    loop {
        let m = newest_bot_message(client).await;
        if !m.is_null() && pred(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {what}; its newest bot message: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page: the prompt shows with its buttons, is photographed, Allow is
/// clicked, Claude Code gets the verdict and the page shows the prompt
/// closed. Owns the session so that it can wait for the verdict.
async fn drive_prompt(client: Client, page: String, mut session: Session) -> Session {
    wd("navigate", client.goto(&page)).await;
    let status = wd("#status", client.find(Locator::Css("#status"))).await;
    let deadline = Instant::now() + SOON;
    while wd("#status", status.text()).await != "connected" {
        assert!(Instant::now() < deadline, "the page never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    session
        .permission_request(json!({
            "request_id": "brwsr",
            "tool_name": "Bash",
            "description": "Run the test suite",
            "input_preview": "{\"command\":\"cargo test --workspace\"}",
        }))
        .await;
    let prompt = until_newest(&client, "the prompt with its buttons", |m| {
        m["labels"]
            .as_array()
            .is_some_and(|l| l.contains(&json!("Allow")))
    })
    .await;
    let text = prompt["text"].as_str().unwrap();
    assert!(
        text.starts_with("🔐 Claude Code asks to use Bash\nRun the test suite\n")
            && text.contains("{\"command\":\"cargo test --workspace\"}")
            && text.contains("type \"yes brwsr\" or \"no brwsr\""),
        "{text}"
    );
    assert_eq!(prompt["labels"], json!(["Allow", "Deny", "Details"]));

    let png = wd("screenshot", client.screenshot()).await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let file = prompt_screenshot_path();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, png).unwrap();

    let id = prompt["id"].as_str().unwrap().to_owned();
    let allow = format!(".msg.bot[data-id=\"{id}\"] .msg-button[data-label=\"Allow\"]");
    let button = wd("the Allow button", client.find(Locator::Css(&allow))).await;
    wd("click Allow", button.click()).await;

    let verdict = session.verdict_within(SOON).await.unwrap_or_else(|| {
        panic!(
            "no verdict after the click; stderr:\n{}",
            session.log.text()
        )
    });
    assert_eq!(verdict, json!({"request_id": "brwsr", "behavior": "allow"}));
    let closed = until_newest(&client, "the prompt closed", |m| {
        m["id"] == id.as_str()
            && m["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("✅ Allowed by web on fakechat"))
    })
    .await;
    assert_eq!(
        closed["labels"],
        json!([]),
        "the buttons are gone: {closed}"
    );
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_prompt_shows_in_the_page_and_its_allow_button_answers_claude_code() {
    require_browser();
    let (home, port) = fakechat_home();
    let session = Session::start(&home).await;
    assert!(session.declares_relay(), "the page's user is an owner");
    let token = session.log.token(port).await;
    let serve_log = session.log.clone();
    let page = format!("http://127.0.0.1:{port}/?token={token}");

    let driver = ChromeDriver::start().await;
    let browser = driver.new_session().await;
    let run = tokio::spawn(drive_prompt(browser.clone(), page, session));
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = tokio::time::timeout(SOON, browser.close()).await;
    let chromedriver_log = driver.log();
    drop(driver);
    let mut session = match outcome {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => {
            eprintln!(
                "airlock serve stderr:\n{}\nchromedriver log:\n{chromedriver_log}",
                serve_log.text()
            );
            std::panic::resume_unwind(e.into_panic());
        }
        Err(_) => panic!(
            "the browser run did not finish; stderr:\n{}",
            serve_log.text()
        ),
    };

    // What the page showed is what the adapter holds: the prompt, edited.
    let messages = page_messages(port, &token).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["edited"], true, "{messages:#?}");
    assert_eq!(messages[0]["buttons"], json!([]), "{messages:#?}");
    assert_eq!(
        session.verdict_within(Duration::from_millis(300)).await,
        None,
        "one click, one verdict"
    );
    session.close().await;
}
