//! Shared test helpers: building guest fixtures, temporary state
//! directories, running the binary, a recording HTTP server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use airlock::home::AirlockHome;
use airlock::host::Host;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

include!("../../host/guest_build.rs");

/// Build every crate under `tests/fixtures` for wasm32-wasip2 (once per
/// test process) and return the directory holding the `.wasm` files.
pub fn fixtures_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = root();
        let target = root.join("target").join("guests");
        let mut packages = Vec::new();
        for entry in std::fs::read_dir(root.join("tests").join("fixtures")).unwrap() {
            let dir = entry.unwrap().path();
            if dir.join("Cargo.toml").exists() {
                // `tests/fixtures/busy_loop` is package `fixture-busy-loop`.
                packages.push(format!(
                    "fixture-{}",
                    dir.file_name().unwrap().to_string_lossy().replace('_', "-")
                ));
            }
        }
        let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
        let out = build_guests(&root, &target, &packages);
        assert!(
            out.status.success(),
            "building fixtures failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("wasm32-wasip2").join("release")
    })
}

/// Path of a built fixture's wasm.
pub fn fixture_wasm(name: &str) -> PathBuf {
    fixtures_dir().join(format!("fixture_{name}.wasm"))
}

/// A temporary state directory, removed on drop.
pub struct TempHome {
    pub dir: tempfile::TempDir,
}

impl TempHome {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Open a host on it (creating the directory).
    pub fn host(&self) -> Host {
        Host::open(AirlockHome::open(self.path()).unwrap()).unwrap()
    }

    /// Drop a component in as `name` with `manifest`.
    pub fn drop_in(&self, name: &str, wasm: &Path, manifest: &str) {
        let dir = self.path().join("adapters");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
        std::fs::write(dir.join(format!("{name}.toml")), manifest).unwrap();
    }

    /// Drop the bundled webhook adapter's component in as `name`, with
    /// `manifest` (given the bundled manifest, which names it `webhook`).
    pub fn drop_in_webhook(&self, name: &str, manifest: impl FnOnce(&str) -> String) {
        let webhook = airlock::catalog::bundled()
            .iter()
            .find(|b| b.name == "webhook")
            .expect("bundled webhook");
        let wasm = self.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&wasm, webhook.wasm).unwrap();
        self.drop_in(name, &wasm, &manifest(webhook.manifest));
    }

    /// Write the operator config.
    pub fn config(&self, text: &str) {
        std::fs::create_dir_all(self.path()).unwrap();
        std::fs::write(self.path().join("airlock.toml"), text).unwrap();
    }

    /// Store a secret file, owner-only.
    pub fn secret(&self, name: &str, value: &str) {
        let dir = self.path().join("secrets");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(name);
        std::fs::write(&file, value).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Run the real binary with this state directory.
    pub fn airlock(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .env("AIRLOCK_HOME", self.path())
            .env_remove("AIRLOCK_LOG")
            .output()
            .unwrap()
    }
}

/// A minimal adapter manifest for fixture `name`, with extra TOML lines.
pub fn manifest(name: &str, extra: &str) -> String {
    format!("name = \"{name}\"\nkind = \"adapter\"\napi = \"0.1\"\n{extra}\n")
}

/// Load and start drop-in `name` (approving it first).
pub async fn start_adapter(
    home: &TempHome,
    name: &str,
) -> (Host, airlock::runtime::actor::AdapterHandle) {
    start_adapter_with(home, name, &[]).await
}

/// Settings for the `stateful` fixture whose timer does not fire during a
/// test (its `start` arms one; the default is every 20 ms).
pub const QUIET_TIMER: &[(&str, &str)] = &[("tick_ms", "86400000")];

/// [`start_adapter`] with these settings.
pub async fn start_adapter_with(
    home: &TempHome,
    name: &str,
    settings: &[(&str, &str)],
) -> (Host, airlock::runtime::actor::AdapterHandle) {
    let (host, handle) = spawn_approved(home, name, None);
    let settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    handle
        .start(settings)
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    (host, handle)
}

/// Drop-in `name`, approved, loaded and spawned (not started), its timer
/// and websocket batches going to `unsolicited`.
fn spawn_approved(
    home: &TempHome,
    name: &str,
    unsolicited: Option<tokio::sync::mpsc::UnboundedSender<airlock::runtime::actor::Unsolicited>>,
) -> (Host, airlock::runtime::actor::AdapterHandle) {
    let host = home.host();
    let (candidates, _) = host.candidates().unwrap();
    let c = candidates
        .iter()
        .find(|c| c.name == name)
        .expect("candidate");
    airlock::approvals::approve(&host.db, name, &c.wasm_sha256(), &c.manifest_sha256()).unwrap();
    let loaded = host.load(c).unwrap_or_else(|e| panic!("load {name}: {e}"));
    let handle = host.spawn_adapter(&loaded, unsolicited).unwrap();
    (host, handle)
}

/// Drop-in `name` started with no settings, its timer and websocket
/// batches (with the frames held for them) arriving on the receiver.
pub async fn start_adapter_unsolicited(
    home: &TempHome,
    name: &str,
) -> (
    Host,
    airlock::runtime::actor::AdapterHandle,
    tokio::sync::mpsc::UnboundedReceiver<airlock::runtime::actor::Unsolicited>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (host, handle) = spawn_approved(home, name, Some(tx));
    handle
        .start(Vec::new())
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    (host, handle, rx)
}

/// An outbound message whose text is a fixture command.
pub fn command(text: &str) -> airlock::bindings::types::OutboundMessage {
    airlock::bindings::types::OutboundMessage {
        chat_id: "test".into(),
        text: text.into(),
        reply_to: None,
        format: airlock::bindings::types::TextFormat::Plain,
        buttons: vec![],
        files: vec![],
    }
}

/// One request as the recording server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: Vec<u8>,
}

impl Seen {
    /// Everything in the request, as one lossy string.
    pub fn all_text(&self) -> String {
        format!(
            "{} {} {:?} {}",
            self.method,
            self.path_and_query,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// An HTTP/1.1 server on a loopback port that answers every request with
/// `handler`; returns its address.
pub async fn serve_http<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>>
        + Send
        + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = handler(req);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A loopback HTTP server that records requests and answers with a dump of
/// each request (so a secret that reached it would travel back).
pub struct Recorder {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub async fn start() -> Self {
        Self::start_with(std::time::Duration::ZERO, None).await
    }

    /// Like [`Recorder::start`], but each answer waits `delay` first, and
    /// carries `reply` as its body instead of the dump, when given.
    pub async fn start_with(delay: std::time::Duration, reply: Option<&'static str>) -> Self {
        use http_body_util::BodyExt;
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let addr = serve_http(move |req| {
            let log = log.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes().to_vec())
                    .unwrap_or_default();
                let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (k, v) in &parts.headers {
                    headers
                        .entry(k.to_string())
                        .or_default()
                        .push(String::from_utf8_lossy(v.as_bytes()).into());
                }
                let seen = Seen {
                    method: parts.method.to_string(),
                    path_and_query: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    headers,
                    body,
                };
                let dump = seen.all_text();
                log.lock().unwrap().push(seen);
                tokio::time::sleep(delay).await;
                let echo = reply.map(String::from).unwrap_or_else(|| dump.clone());
                let echo_header = dump
                    .chars()
                    .filter(|c| c.is_ascii_graphic() || *c == ' ')
                    .take(4000)
                    .collect::<String>();
                hyper::Response::builder()
                    .status(200)
                    .header("x-echo", echo_header)
                    .body(http_body_util::Full::new(bytes::Bytes::from(echo)))
                    .unwrap()
            }
        })
        .await;
        Self { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------
// `airlock serve`/`airlock try` with the fakechat page, for the browser and
// terminal tests (the same helpers `channel.rs` keeps privately).
// ---------------------------------------------------------------------------

/// Config lines lifting the per-sender limit (30 messages a minute by
/// default), for tests that push thousands of messages from one allowed
/// sender on purpose (crash and flood tests).
pub const NO_SENDER_LIMIT: &str = "[access]\nsender_per_minute = 100000\n";

/// Upper bound for the server to start (components may be compiled cold).
pub const STARTUP: std::time::Duration = std::time::Duration::from_secs(30);
/// Upper bound for anything that should happen at once.
pub const SOON: std::time::Duration = std::time::Duration::from_secs(10);

/// `N` distinct loopback ports that were free a moment ago.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// A state directory whose fakechat page listens on its own port.
pub fn fakechat_home() -> (TempHome, u16) {
    let home = TempHome::new();
    let [port] = free_ports();
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n"
    ));
    (home, port)
}

/// `airlock serve` on `home`, killed when dropped.
pub fn serve_command(home: &TempHome) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.arg("serve")
        .env("AIRLOCK_HOME", home.path())
        .env_remove("AIRLOCK_LOG")
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    cmd
}

/// A child's output, drained continuously so it never blocks.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<String>>);

impl Log {
    pub fn drain(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Self {
        use tokio::io::AsyncBufReadExt;
        let log = Log::default();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.0.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        log
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// The access token of the listener on `port`, from the line
    /// `open http://127.0.0.1:PORT/?token=HEX in a browser`.
    pub async fn token(&self, port: u16) -> String {
        let marker = format!("open http://127.0.0.1:{port}/?token=");
        let deadline = std::time::Instant::now() + STARTUP;
        loop {
            let text = self.text();
            if let Some(line) = text.lines().find(|l| l.contains(&marker)) {
                let rest = &line[line.find(&marker).unwrap() + marker.len()..];
                let token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
                assert!(
                    rest[token.len()..].starts_with(" in a browser"),
                    "unexpected URL line: {line}"
                );
                assert_eq!(token.len(), 32, "a 128-bit hex token: {line}");
                return token;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no page URL for port {port} on stderr:\n{text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// An HTTP/1.1 answer.
pub struct HttpReply {
    pub status: u16,
    pub body: String,
}

impl HttpReply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Posts one webhook message on `port` with `token`; the listener must take it.
pub async fn webhook_post(port: u16, token: &str, body: serde_json::Value) {
    let reply = http(
        port,
        "POST",
        &format!("/?token={token}"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

/// One HTTP/1.1 request to `127.0.0.1:port` (connection closed after it).
pub async fn http(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(SOON, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {target} on port {port} did not answer"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    HttpReply {
        status,
        body: String::from_utf8_lossy(&raw[split + 4..]).into_owned(),
    }
}

/// What the local user types into the fakechat page: the new message id.
pub async fn page_send(port: u16, token: &str, text: &str) -> String {
    let body = serde_json::json!({ "text": text }).to_string();
    let reply = http(
        port,
        "POST",
        &format!("/api/send?token={token}"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_string()
}

/// Everything the page lists.
pub async fn page_messages(port: u16, token: &str) -> Vec<serde_json::Value> {
    let reply = http(
        port,
        "GET",
        &format!("/api/messages?after=0&token={token}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json().as_array().unwrap().clone()
}

/// Drop in the `egress` fixture asking for `destinations` (each also granted
/// as `local`, since test servers are on loopback), with `manifest_extra`
/// lines in its manifest and `grant_extra` lines under its grant; start it.
pub async fn start_egress(
    home: &TempHome,
    destinations: &[String],
    manifest_extra: &str,
    grant_extra: &str,
) -> (Host, airlock::runtime::actor::AdapterHandle) {
    let list = destinations
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ");
    home.drop_in(
        "egress",
        &fixture_wasm("egress"),
        &manifest(
            "egress",
            &format!("outbound_http = [{list}]\n{manifest_extra}"),
        ),
    );
    home.config(&format!(
        "[components.egress.grant]\nlocal = [{list}]\n{grant_extra}\n"
    ));
    start_adapter(home, "egress").await
}

/// The local user presses button (`row`, `col`) of message `id` on the
/// fakechat page; the HTTP status.
pub async fn page_press(port: u16, token: &str, id: &str, row: usize, col: usize) -> u16 {
    let body = serde_json::json!({ "id": id, "row": row, "col": col }).to_string();
    http(
        port,
        "POST",
        &format!("/api/press?token={token}"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
    .status
}
