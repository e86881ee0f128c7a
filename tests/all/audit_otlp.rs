//! The audit trail shipped by `airlock serve` to a real OTLP/HTTP receiver
//! (mock-collector, protobuf): rows arrive as log records carrying every
//! field, so the copy outside the machine verifies as a chain on its own;
//! rows written while the receiver was down arrive once it is back, none
//! missing; and the head printed at shutdown arrives with the next start.
//! A loaded secret planted where a session and a platform can put it
//! reaches neither a received record nor a byte sent to the collector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use mock_collector::{MockCollector, MockServer, Protocol, ServerHandle, TestLogRecord};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::RwLock;

use crate::audit_rows::stop;
use crate::session::*;
use crate::support::*;

/// What every received record is checked against: the chain's start.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// What serve prints on stderr when it stops.
const SHUTDOWN_HEAD: &str = "audit trail head at shutdown: ";
/// The one warning of an outage, and the line that ends it.
const OUTAGE: &str = "cannot ship the audit trail to ";
const RECOVERED: &str = "the audit trail is shipped to ";

type Seen = Arc<RwLock<MockCollector>>;

/// An OTLP/HTTP (protobuf) receiver on `port`, keeping what it gets in `seen`.
async fn receiver(port: u16, seen: &Seen) -> ServerHandle {
    MockServer::builder()
        .protocol(Protocol::HttpBinary)
        .port(port)
        .collector(seen.clone())
        .start()
        .await
        .unwrap()
}

fn json_of(value: &Option<AnyValue>) -> Value {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::IntValue(i)) => json!(i),
        other => panic!("an attribute of another type: {other:?}"),
    }
}

/// One received record: its body, time, resource and attributes.
#[derive(Clone, Debug, PartialEq)]
struct Shipped {
    body: Value,
    time_unix_nano: u64,
    service: Option<Value>,
    attrs: BTreeMap<String, Value>,
}

impl Shipped {
    fn id(&self) -> i64 {
        self.attrs["id"].as_i64().unwrap()
    }

    fn str(&self, key: &str) -> &str {
        self.attrs
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {key}: {self:?}"))
    }

    /// The hash the row must carry, from what the collector holds alone:
    /// `SHA-256(prev_hash ‖ canonical row)`, the canonical row being the
    /// JSON array of its fields in the chain's order.
    fn expected_hash(&self) -> String {
        let field = |k: &str| self.attrs.get(k).cloned().unwrap_or(Value::Null);
        let canonical = json!([
            field("id"),
            field("at_ms"),
            field("kind"),
            field("adapter"),
            field("chat"),
            field("sender_id"),
            field("sender_handle"),
            field("session"),
            self.body,
            field("content"),
            field("content_digest"),
            field("content_len"),
            field("detail"),
        ]);
        let mut h = Sha256::new();
        h.update(self.str("prev_hash").as_bytes());
        h.update(canonical.to_string().as_bytes());
        hex::encode(h.finalize())
    }
}

/// Every record received so far, by id (a row sent twice must be the same).
async fn received(seen: &Seen) -> BTreeMap<i64, Shipped> {
    let mut rows = BTreeMap::new();
    for log in seen.read().await.logs() {
        let r = log.log_record();
        let shipped = Shipped {
            body: json_of(&r.body),
            time_unix_nano: r.time_unix_nano,
            service: log
                .resource_attrs()
                .iter()
                .find(|a| a.key == "service.name")
                .map(|a| json_of(&a.value)),
            attrs: r
                .attributes
                .iter()
                .map(|a| (a.key.clone(), json_of(&a.value)))
                .collect(),
        };
        if let Some(before) = rows.insert(shipped.id(), shipped.clone()) {
            assert_eq!(
                before,
                shipped,
                "row {} sent twice, differently",
                shipped.id()
            );
        }
    }
    rows
}

/// Checks that `rows` are rows 1 to N of one chain, every hash recomputed
/// from the record's own fields; returns N.
fn verify(rows: &BTreeMap<i64, Shipped>) -> i64 {
    let mut prev = GENESIS.to_owned();
    for (n, (id, r)) in rows.iter().enumerate() {
        assert_eq!(*id, n as i64 + 1, "rows missing before {id}");
        assert_eq!(
            r.str("prev_hash"),
            prev,
            "row {id} does not follow row {}",
            id - 1
        );
        assert_eq!(r.str("hash"), r.expected_hash(), "row {id}: {r:?}");
        let at_ms = r.attrs["at_ms"].as_i64().unwrap();
        assert_eq!(r.time_unix_nano, at_ms as u64 * 1_000_000, "row {id}");
        assert_eq!(r.service, Some(json!("airlock")), "row {id}");
        prev = r.str("hash").to_owned();
    }
    rows.len() as i64
}

/// Waits until `done` holds for what the receiver has.
async fn until_received(seen: &Seen, what: &str, done: impl Fn(&BTreeMap<i64, Shipped>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = received(seen).await;
        if done(&rows) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}; received: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a row holding `text` as its content arrived.
fn holds(rows: &BTreeMap<i64, Shipped>, text: &str) -> bool {
    rows.values()
        .any(|r| r.attrs.get("content") == Some(&json!(text)))
}

/// `airlock audit status --json`, once the export lag is 0.
async fn until_caught_up(home: &TempHome) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = cli_json(home, &["audit", "status"]).await;
        if status["export_lag"] == 0 {
            assert_eq!(status["exported_id"], status["head_id"], "{status}");
            return status;
        }
        assert!(Instant::now() < deadline, "still behind: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `airlock serve` on `home` with the exporter's lines on stderr.
async fn start_serve(home: &TempHome) -> Session {
    let mut command = serve_command(home);
    command.env("AIRLOCK_LOG", "warn,airlock::audit=info");
    Session::start_command(command, ClientLifecycleMode::Initialize).await
}

/// Types each of `texts` on the page; each is delivered.
async fn send(session: &mut Session, port: u16, token: &str, texts: &[&str]) {
    for text in texts {
        page_send(port, token, text).await;
        assert_eq!(session.event().await["content"], *text);
    }
}

#[tokio::test]
async fn rows_reach_the_collector_as_a_chain_and_none_is_lost_while_it_is_down() {
    let [otlp] = free_ports();
    let seen: Seen = Arc::new(RwLock::new(MockCollector::new()));
    let up = receiver(otlp, &seen).await;
    let home = TempHome::new();
    let [port] = free_ports();
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n\n[audit]\ncontent = \
         \"full\"\n\n[audit.otlp]\nendpoint = \"http://127.0.0.1:{otlp}\"\n"
    ));
    let mut first = start_serve(&home).await;
    let token = first.log.token(port).await;

    // Rows arrive, each with every field: the copy verifies on its own.
    send(&mut first, port, &token, &["one", "two", "three"]).await;
    until_received(&seen, "the three messages arrive", |rows| {
        holds(rows, "three")
    })
    .await;
    let rows = received(&seen).await;
    verify(&rows);
    let kinds: Vec<&str> = rows.values().map(|r| r.str("kind")).collect();
    assert!(
        kinds.contains(&"server") && kinds.contains(&"inbound"),
        "{kinds:?}"
    );
    let one = rows
        .values()
        .find(|r| r.attrs.get("content") == Some(&json!("one")))
        .unwrap();
    assert_eq!(one.attrs["adapter"], "fakechat", "{one:?}");
    assert!(
        one.body.as_str().unwrap().starts_with("queued a message"),
        "{one:?}"
    );
    assert_eq!(one.attrs["content_len"], 3, "{one:?}");
    until_caught_up(&home).await;

    // The receiver goes away; messages are still delivered, and their rows
    // wait in the database: one warning, a growing lag, nothing dropped.
    up.shutdown().await.unwrap();
    let before = received(&seen).await.len();
    send(&mut first, port, &token, &["four", "five", "six"]).await;
    let deadline = Instant::now() + SOON;
    while !first.log.text().contains(OUTAGE) {
        assert!(
            Instant::now() < deadline,
            "no warning:\n{}",
            first.log.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Retries go on (0.5 s, 1 s, ...) without another warning.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let status = cli_json(&home, &["audit", "status"]).await;
    assert!(status["export_lag"].as_i64().unwrap() >= 3, "{status}");
    assert_eq!(received(&seen).await.len(), before);
    let log = first.log.text();
    assert_eq!(
        log.matches(OUTAGE).count(),
        1,
        "one warning per outage:\n{log}"
    );
    assert!(
        log.contains(&format!("{OUTAGE}http://127.0.0.1:{otlp}/v1/logs")),
        "{log}"
    );

    // Back on the same port: everything written meanwhile arrives.
    let _up = receiver(otlp, &seen).await;
    until_received(&seen, "the rows written while it was down arrive", |rows| {
        holds(rows, "six")
    })
    .await;
    let status = until_caught_up(&home).await;
    let rows = received(&seen).await;
    assert_eq!(verify(&rows), status["head_id"].as_i64().unwrap());
    for text in ["four", "five", "six"] {
        assert!(holds(&rows, text), "{text}");
    }
    let log = first.log.text();
    assert!(log.contains(RECOVERED), "the outage's end is said:\n{log}");

    // The head printed at shutdown is a row not yet shipped when serve
    // stopped; the next start sends it, so it lives outside the machine.
    let log = first.log.clone();
    first.close().await;
    let head = {
        let deadline = Instant::now() + SOON;
        loop {
            let text = log.text();
            if let Some(at) = text.find(SHUTDOWN_HEAD) {
                break text[at + SHUTDOWN_HEAD.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
            }
            assert!(Instant::now() < deadline, "no head at shutdown:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (hash, id) = head.split_once('@').unwrap();
    let id: i64 = id.parse().unwrap();
    let second = start_serve(&home).await;
    until_received(&seen, "the shutdown checkpoint arrives", |rows| {
        rows.contains_key(&id)
    })
    .await;
    let status = until_caught_up(&home).await;
    let rows = received(&seen).await;
    assert_eq!(verify(&rows), status["head_id"].as_i64().unwrap());
    assert_eq!(rows[&id].str("kind"), "checkpoint");
    assert_eq!(rows[&id].str("hash"), hash);
    second.close().await;
}

/// What airlock sent towards the collector: every byte, one buffer per
/// connection.
type Wire = Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// A TCP relay on a free loopback port to the receiver on `to`, recording
/// what the client sends before passing it on. mock-collector keeps only
/// the decoded records, not the request bodies, so the bytes on the wire
/// are taken here. Returns the relay's port and the record.
async fn recording_relay(to: u16) -> (u16, Wire) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let wire = Wire::default();
    let record = wire.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", to)).await else {
                    return;
                };
                let index = {
                    let mut all = record.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_upstream, mut to_upstream) = upstream.into_split();
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                        record.lock().unwrap()[index].extend_from_slice(&buf[..n]);
                        if to_upstream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_upstream.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut from_upstream, &mut to_client).await;
                    let _ = to_client.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (port, wire)
}

/// The HTTP/1.1 requests in one connection's bytes: each head (checked to
/// be a plain, unencoded OTLP logs request with a length) and its body.
fn requests(stream: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("an unfinished head: {}", String::from_utf8_lossy(rest)));
        let head = String::from_utf8_lossy(&rest[..end]).to_lowercase();
        assert!(head.starts_with("post /v1/logs "), "{head}");
        assert!(
            !head.contains("transfer-encoding") && !head.contains("content-encoding"),
            "the body must be plain bytes to be searched: {head}"
        );
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .unwrap_or_else(|| panic!("no length: {head}"))
            .trim()
            .parse()
            .unwrap();
        let body = &rest[end + 4..];
        assert!(body.len() >= len, "a body cut short: {head}");
        out.push((head, &body[..len]));
        rest = &body[len..];
    }
    out
}

/// The secret and every 12-byte piece of it.
fn pieces(secret: &str) -> Vec<&str> {
    let mut all = vec![secret];
    all.extend((0..=secret.len() - 12).map(|i| &secret[i..i + 12]));
    all
}

/// The pieces of `secret` that occur in `haystack`.
fn leaked<'a>(haystack: &[u8], secret: &'a str) -> Vec<&'a str> {
    pieces(secret)
        .into_iter()
        .filter(|p| haystack.windows(p.len()).any(|w| w == p.as_bytes()))
        .collect()
}

/// Every text a value holds, however nested.
fn texts_of(value: &Option<AnyValue>, out: &mut Vec<String>) {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        None => {}
        Some(any_value::Value::StringValue(s)) => out.push(s.clone()),
        Some(any_value::Value::BytesValue(b)) => out.push(String::from_utf8_lossy(b).into_owned()),
        Some(any_value::Value::ArrayValue(a)) => {
            for v in &a.values {
                texts_of(&Some(v.clone()), out);
            }
        }
        Some(any_value::Value::KvlistValue(kv)) => texts_of_attrs(&kv.values, out),
        Some(other) => out.push(format!("{other:?}")),
    }
}

/// Every key and value of `attrs`.
fn texts_of_attrs(attrs: &[KeyValue], out: &mut Vec<String>) {
    for a in attrs {
        out.push(a.key.clone());
        texts_of(&a.value, out);
    }
}

/// Every text of a received record: body, names, each attribute's key and
/// value, and those of its resource and scope.
fn texts(log: &TestLogRecord) -> Vec<String> {
    let r = log.log_record();
    let mut out = vec![r.event_name.clone(), r.severity_text.clone()];
    texts_of(&r.body, &mut out);
    texts_of_attrs(&r.attributes, &mut out);
    texts_of_attrs(log.resource_attrs(), &mut out);
    texts_of_attrs(log.scope_attrs(), &mut out);
    out
}

#[tokio::test]
async fn a_planted_secret_reaches_no_shipped_record_and_no_byte_sent_to_the_collector() {
    use crate::telegram::{TOKEN, allow_alice, start, telegram_home};
    // The collector behind a relay that keeps the bytes airlock sends.
    let [otlp, port] = free_ports();
    let seen: Seen = Arc::new(RwLock::new(MockCollector::new()));
    let _up = receiver(otlp, &seen).await;
    let (relay, wire) = recording_relay(otlp).await;
    // The bot token is loaded by serve (bound to the Telegram adapter); the
    // page is there too, message text is kept in full, and every row ships.
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(
        &fake,
        &format!(
            "[components.fakechat]\nenabled = true\nsettings = {{ port = \"{port}\" }}\n\n\
             [audit]\ncontent = \"full\"\n\n[audit.otlp]\nendpoint = \"http://127.0.0.1:{relay}\"\n"
        ),
    );
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn,airlock::audit=info").await;
    let page = session.log.token(port).await;

    let tool_calls = crate::audit_rows::plant_token(&home, &mut session, &fake, port, &page).await;

    // Serve ships the tail as it stops: every row up to the shutdown
    // checkpoint is at the collector, a chain on its own.
    let head = stop(&home, session).await;
    let (hash, id) = head.split_once('@').unwrap();
    let id: i64 = id.parse().unwrap();
    until_received(&seen, "every row up to the shutdown checkpoint", |rows| {
        rows.contains_key(&id)
    })
    .await;
    let shipped = received(&seen).await;
    assert_eq!(verify(&shipped), id);
    assert_eq!(shipped[&id].str("kind"), "checkpoint");
    assert_eq!(shipped[&id].str("hash"), hash);

    // The planted rows did arrive, scrubbed: the test reached every field.
    for kept in [
        "page says [redacted]",
        "alice says [redacted]",
        "eve says [redacted]",
    ] {
        assert!(holds(&shipped, kept), "{kept}: {shipped:#?}");
    }
    let detail = |r: &Shipped| -> Value { serde_json::from_str(r.str("detail")).unwrap() };
    let tools: Vec<&Shipped> = shipped
        .values()
        .filter(|r| r.str("kind") == "tool")
        .collect();
    assert_eq!(tools.len(), tool_calls, "{tools:#?}");
    assert!(
        tools
            .iter()
            .any(|r| r.attrs.get("chat") == Some(&json!("[redacted]"))),
        "the call to a secret chat: {tools:#?}"
    );
    assert!(
        tools
            .iter()
            .any(|r| detail(r)["files"][0]["name"] == "[redacted]"),
        "the call with a secret file: {tools:#?}"
    );
    let request = shipped
        .values()
        .find(|r| r.str("kind") == "relay" && detail(r)["event"] == "request")
        .unwrap_or_else(|| panic!("no relay request: {shipped:#?}"));
    assert!(request.str("content").contains("[redacted]"), "{request:?}");

    // No piece of the secret in any received record.
    let records = seen.read().await.logs().to_vec();
    assert!(records.len() as i64 >= id);
    for log in &records {
        for text in texts(log) {
            let found = leaked(text.as_bytes(), TOKEN);
            assert!(found.is_empty(), "{found:?} in a record: {log:?}");
        }
    }

    // Nor in any byte sent: heads and bodies, each connection whole, and
    // the bodies (plain protobuf, where strings are kept as they are) do
    // hold the scrubbed text, so the search reads what was shipped.
    let wire = wire.lock().unwrap().clone();
    let mut bodies = Vec::new();
    for stream in &wire {
        let found = leaked(stream, TOKEN);
        assert!(
            found.is_empty(),
            "{found:?} sent to the collector:\n{}",
            String::from_utf8_lossy(stream)
        );
        for (_, body) in requests(stream) {
            bodies.extend_from_slice(body);
        }
    }
    for kept in ["alice says [redacted]", "run with [redacted]", hash] {
        assert!(
            bodies.windows(kept.len()).any(|w| w == kept.as_bytes()),
            "{kept} was not on the wire"
        );
    }
}
