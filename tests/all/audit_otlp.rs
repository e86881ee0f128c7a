//! The audit trail shipped by `airlock serve` to a real OTLP/HTTP receiver
//! (mock-collector, protobuf): rows arrive as log records carrying every
//! field, so the copy outside the machine verifies as a chain on its own;
//! rows written while the receiver was down arrive once it is back, none
//! missing; and the head printed at shutdown arrives with the next start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_collector::{MockCollector, MockServer, Protocol, ServerHandle};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

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
