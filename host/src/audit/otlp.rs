//! Shipping the record to an OpenTelemetry collector (`[audit.otlp]`).
//!
//! A record kept only on the machine it describes can be rewritten by whoever
//! controls that machine; a copy in the security team's own system, in the
//! form that system already ingests, cannot. So every row becomes one OTLP
//! log record: the summary is its body, its time the row's, and every other
//! field (the chain's `id`, `prev_hash` and `hash` included) an attribute
//! named after its column, so that what the collector holds can be checked
//! against the chain like an export. Checkpoint rows go the same way, which
//! puts the chain's head outside the machine.
//!
//! Delivery is at least once, in order, and never in the way of messages: a
//! task of its own reads the rows after the last one the collector accepted
//! (`AuditStore::exported`, kept in `airlock.db`) off the async threads, sends
//! up to [`BATCH`] of them as one OTLP/HTTP request (protobuf) through the
//! SDK's `LogExporter`, and moves that mark only once the collector answered
//! with success. On a failure the rows stay where they are and the request is
//! tried again with the host's backoff, through restarts too; the exporter's
//! own retries are off, so there is one loop, one backoff, one warning per
//! outage and one line when it ends. Rows that retention deletes before they
//! were shipped are named in a warning, never skipped quietly.
//!
//! Headers a hosted collector wants (an API key) come from the standard
//! `OTEL_EXPORTER_OTLP_HEADERS` or `OTEL_EXPORTER_OTLP_LOGS_HEADERS`
//! variables, which the exporter reads, so no secret has to sit in
//! `airlock.toml`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{
    LogExporter, Protocol, RetryPolicy, WithExportConfig as _, WithHttpConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter as _, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};

use super::AuditStore;
use super::chain::Record;
use crate::backoff::Backoff;
use crate::manifest::OtlpConfig;

/// Rows sent in one request at most.
pub const BATCH: usize = 512;
/// How often the task looks for new rows while it is caught up.
const POLL: Duration = Duration::from_secs(1);
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The instrumentation scope (and event name) of every record.
const SCOPE: &str = "airlock.audit";
/// Spreads this loop's retries apart from the host's other loops.
const BACKOFF_SEED: u64 = 0x6f74_6c70;

/// The collector's logs URL: the configured base with `/v1/logs` added
/// (unless it is already there).
pub fn logs_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/logs") {
        base.to_owned()
    } else {
        format!("{base}/v1/logs")
    }
}

/// Ships rows after the last shipped one until aborted (spawned by `serve`
/// when `[audit.otlp]` is set).
pub fn spawn(audit: AuditStore, config: &OtlpConfig) -> tokio::task::JoinHandle<()> {
    let url = logs_url(&config.endpoint);
    tokio::spawn(async move {
        match Shipper::new(audit, url.clone()) {
            Ok(mut shipper) => shipper.run().await,
            Err(e) => tracing::error!(
                target: "airlock::audit",
                "the audit trail is not shipped to {url}: {e}; rows wait in airlock.db until \
                 it is"
            ),
        }
    })
}

/// Ships what is left, within `within` (at shutdown, after the last
/// checkpoint, so that the head leaves the machine with the process).
/// What does not make it waits in the database for the next start.
pub async fn flush(audit: AuditStore, config: &OtlpConfig, within: Duration) {
    let url = logs_url(&config.endpoint);
    let Ok(mut shipper) = Shipper::new(audit, url.clone()) else {
        return;
    };
    let drain = async {
        loop {
            match shipper.step().await {
                Ok(n) if n < BATCH => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(target: "airlock::audit", "{e}; the rest is sent at the next start");
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(within, drain).await.is_err() {
        tracing::warn!(
            target: "airlock::audit",
            "the audit trail was not all shipped to {url} before shutdown; the rest is sent at \
             the next start"
        );
    }
}

/// The instant a row was written.
fn at(at_ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(at_ms).unwrap_or(0))
}

/// One row as one OTLP log record: body the summary, time the row's, every
/// other field an attribute named after its column (absent when empty).
pub fn log_record(logger: &SdkLogger, r: &Record) -> SdkLogRecord {
    let mut log = logger.create_log_record();
    log.set_event_name(SCOPE);
    log.set_timestamp(at(r.at_ms));
    log.set_observed_timestamp(SystemTime::now());
    log.set_severity_number(Severity::Info);
    log.set_severity_text("INFO");
    log.set_body(AnyValue::from(r.summary.clone()));
    log.add_attribute("id", r.id);
    log.add_attribute("at_ms", r.at_ms);
    log.add_attribute("kind", r.kind.clone());
    let optional = [
        ("adapter", &r.adapter),
        ("chat", &r.chat),
        ("sender_id", &r.sender_id),
        ("sender_handle", &r.sender_handle),
        ("session", &r.session),
        ("content", &r.content),
        ("content_digest", &r.content_digest),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            log.add_attribute(key, v.clone());
        }
    }
    if let Some(len) = r.content_len {
        log.add_attribute("content_len", len);
    }
    log.add_attribute("detail", r.detail.clone());
    log.add_attribute("prev_hash", r.prev_hash.clone());
    log.add_attribute("hash", r.hash.clone());
    log
}

/// What every record names as its source.
fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("airlock")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The last transport error of a request, with its causes.
type LastError = Arc<Mutex<Option<String>>>;

/// hyper (rustls for https), keeping the last transport error: the exporter
/// reports only "network error", where an operator needs to read
/// "connection refused" or what was wrong with the certificate.
#[derive(Clone, Debug)]
struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>>,
    last_error: LastError,
}

impl HttpClient for Client {
    fn send_bytes<'a, 'f>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'f>>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let out = self.inner.send_bytes(request).await;
            if let Err(e) = &out {
                let mut why = e.to_string();
                let mut cause = e.source();
                while let Some(c) = cause {
                    why = format!("{why}: {c}");
                    cause = c.source();
                }
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
            }
            out
        })
    }
}

/// The OTLP/HTTP protobuf exporter to `url`, with its own retries off; the
/// client's last transport error lands in `last_error`.
fn exporter(url: &str, last_error: LastError) -> Result<LogExporter, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .build();
    let client = Client {
        inner: HyperClient::new(connector, TIMEOUT, None),
        last_error,
    };
    let mut exporter = LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(TIMEOUT)
        .with_http_client(client)
        .with_retry_policy(RetryPolicy::disabled())
        .build()
        .map_err(|e| e.to_string())?;
    exporter.set_resource(&resource());
    Ok(exporter)
}

/// The exporting loop's state.
struct Shipper {
    audit: AuditStore,
    url: String,
    exporter: LogExporter,
    last_error: LastError,
    logger: SdkLogger,
    scope: InstrumentationScope,
    backoff: Backoff,
    /// The first id of the last gap warned about.
    gap_warned: i64,
}

impl Shipper {
    fn new(audit: AuditStore, url: String) -> Result<Self, String> {
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        // Only a factory for records: it has no processor, and what it makes
        // goes to the exporter directly, batch by batch.
        let logger = SdkLoggerProvider::builder()
            .build()
            .logger_with_scope(scope.clone());
        let last_error = LastError::default();
        Ok(Self {
            exporter: exporter(&url, last_error.clone())?,
            last_error,
            audit,
            url,
            logger,
            scope,
            backoff: Backoff::new(BACKOFF_SEED),
            gap_warned: 0,
        })
    }

    async fn run(&mut self) {
        loop {
            match self.step().await {
                Ok(sent) => {
                    let failures = self.backoff.succeeded();
                    if failures > 0 {
                        tracing::info!(
                            target: "airlock::audit",
                            "the audit trail is shipped to {} again (after {failures} failed tries)",
                            self.url
                        );
                    }
                    if sent < BATCH {
                        tokio::time::sleep(POLL).await;
                    }
                }
                Err(e) => {
                    if self.backoff.failures() == 0 {
                        tracing::warn!(
                            target: "airlock::audit",
                            "{e}; the rows wait in airlock.db and are sent when it works again"
                        );
                    } else {
                        tracing::debug!(target: "airlock::audit", "{e}");
                    }
                    tokio::time::sleep(self.backoff.failed()).await;
                }
            }
        }
    }

    /// Ships the next batch, if any; how many rows it held.
    async fn step(&mut self) -> Result<usize, String> {
        let audit = self.audit.clone();
        let (from, rows) = tokio::task::spawn_blocking(move || {
            let from = audit.exported()?;
            Ok::<_, crate::db::DbError>((from, audit.after(from, BATCH)?))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot read the audit trail to ship it: {e}"))?;
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(0);
        };
        let first = rows[0].id;
        if first > from + 1 && self.gap_warned != from + 1 {
            self.gap_warned = from + 1;
            tracing::warn!(
                target: "airlock::audit",
                "audit rows {} to {} were deleted by retention before they were shipped to {}",
                from + 1,
                first - 1,
                self.url
            );
        }
        self.ship(&rows)
            .await
            .map_err(|e| format!("cannot ship the audit trail to {}: {e}", self.url))?;
        let audit = self.audit.clone();
        tokio::task::spawn_blocking(move || audit.set_exported(last))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| {
                format!("cannot note which audit rows were shipped ({e}); they will be sent again")
            })?;
        Ok(rows.len())
    }

    /// One request with `rows`; Ok once the collector accepted it.
    async fn ship(&self, rows: &[Record]) -> Result<(), String> {
        let records: Vec<SdkLogRecord> = rows.iter().map(|r| log_record(&self.logger, r)).collect();
        let batch: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|r| (r, &self.scope)).collect();
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match tokio::time::timeout(
            TIMEOUT + Duration::from_secs(1),
            self.exporter.export(LogBatch::new(&batch)),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(
                match self
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                {
                    Some(why) => why,
                    None => e.to_string(),
                },
            ),
            Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use opentelemetry::Key;

    use super::*;
    use crate::audit::{Entry, Kind};
    use crate::db::Db;
    use crate::manifest::{AuditConfig, ContentMode};

    fn record() -> Record {
        Record {
            id: 7,
            at_ms: 1_700_000_000_123,
            kind: "inbound".into(),
            adapter: Some("telegram".into()),
            chat: Some("42".into()),
            sender_id: Some("1001".into()),
            sender_handle: Some("alice".into()),
            session: Some("serve 99".into()),
            summary: "queued a message from alice for the session".into(),
            content: None,
            content_digest: Some("d1ge57".into()),
            content_len: Some(5),
            detail: r#"{"outcome":"queued","seq":3}"#.into(),
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
        }
    }

    fn attributes(log: &SdkLogRecord) -> BTreeMap<String, AnyValue> {
        log.attributes_iter()
            .map(|(k, v): &(Key, AnyValue)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_row_is_one_log_record_with_every_field() {
        let logger = SdkLoggerProvider::builder().build().logger(SCOPE);
        let r = record();
        let log = log_record(&logger, &r);
        assert_eq!(log.body(), Some(&AnyValue::from(r.summary.clone())));
        assert_eq!(
            log.timestamp(),
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123))
        );
        assert_eq!(log.severity_number(), Some(Severity::Info));
        assert_eq!(log.event_name(), Some(SCOPE));
        let s = |v: &str| AnyValue::from(v.to_owned());
        let want: BTreeMap<String, AnyValue> = [
            ("id", AnyValue::from(7_i64)),
            ("at_ms", AnyValue::from(1_700_000_000_123_i64)),
            ("kind", s("inbound")),
            ("adapter", s("telegram")),
            ("chat", s("42")),
            ("sender_id", s("1001")),
            ("sender_handle", s("alice")),
            ("session", s("serve 99")),
            ("content_digest", s("d1ge57")),
            ("content_len", AnyValue::from(5_i64)),
            ("detail", s(r#"{"outcome":"queued","seq":3}"#)),
            ("prev_hash", s(&"a".repeat(64))),
            ("hash", s(&"b".repeat(64))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(attributes(&log), want, "no `content`: the row has none");

        // A checkpoint: no sender, no content; the head is in its detail.
        let cp = Record {
            kind: "checkpoint".into(),
            adapter: None,
            chat: None,
            sender_id: None,
            sender_handle: None,
            content_digest: None,
            content_len: None,
            content: None,
            detail: r#"{"head":"x","head_id":6}"#.into(),
            ..record()
        };
        let keys: Vec<String> = attributes(&log_record(&logger, &cp)).into_keys().collect();
        assert_eq!(
            keys,
            [
                "at_ms",
                "detail",
                "hash",
                "id",
                "kind",
                "prev_hash",
                "session"
            ]
        );
    }

    #[test]
    fn the_logs_path_is_added_once() {
        assert_eq!(
            logs_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(
            logs_url("https://otel.example.org/"),
            "https://otel.example.org/v1/logs"
        );
        assert_eq!(logs_url("http://c:4318/v1/logs"), "http://c:4318/v1/logs");
        assert_eq!(
            logs_url("http://c:4318/prefix"),
            "http://c:4318/prefix/v1/logs"
        );
    }

    fn store() -> AuditStore {
        AuditStore::new(
            Db::in_memory().unwrap(),
            &AuditConfig {
                content: ContentMode::Full,
                ..AuditConfig::default()
            },
            Some("serve 1".into()),
        )
    }

    fn append(s: &AuditStore, n: usize) {
        for i in 0..n {
            s.append(&[Entry::new(Kind::Inbound, format!("message {i}"))
                .adapter("fakechat")
                .text(&format!("text {i}"))])
                .unwrap();
        }
    }

    /// A free loopback port.
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    async fn collector(
        port: u16,
        seen: &Arc<tokio::sync::RwLock<mock_collector::MockCollector>>,
    ) -> mock_collector::ServerHandle {
        mock_collector::MockServer::builder()
            .protocol(mock_collector::Protocol::HttpBinary)
            .port(port)
            .collector(seen.clone())
            .start()
            .await
            .unwrap()
    }

    /// The `id` attribute of every record the collector holds.
    async fn ids(seen: &tokio::sync::RwLock<mock_collector::MockCollector>) -> Vec<i64> {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        seen.read()
            .await
            .logs()
            .iter()
            .map(|l| {
                let id = l.log_record().attributes.iter().find(|a| a.key == "id");
                match id.and_then(|a| a.value.as_ref()?.value.as_ref()) {
                    Some(Value::IntValue(i)) => *i,
                    other => panic!("no id: {other:?}"),
                }
            })
            .collect()
    }

    async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done().await {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn rows_wait_while_the_collector_is_down_and_none_is_lost() {
        let s = store();
        append(&s, 3);
        let port = free_port();
        let seen = Arc::new(tokio::sync::RwLock::new(
            mock_collector::MockCollector::new(),
        ));
        let task = spawn(
            s.clone(),
            &OtlpConfig {
                endpoint: format!("http://127.0.0.1:{port}"),
            },
        );
        // Nobody listens yet: nothing is marked shipped.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(s.exported().unwrap(), 0);
        append(&s, 2);
        let server = collector(port, &seen).await;
        until("the five rows arrive", async || s.exported().unwrap() == 5).await;
        assert_eq!(ids(&seen).await, [1, 2, 3, 4, 5]);
        // Down again, rows written meanwhile, back up: they all arrive, once.
        server.shutdown().await.unwrap();
        append(&s, BATCH + 10);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(s.exported().unwrap(), 5);
        let _server = collector(port, &seen).await;
        let head = s.status().unwrap().head.unwrap().0;
        until("the rest arrives", async || s.exported().unwrap() == head).await;
        let got = ids(&seen).await;
        assert_eq!(got, (1..=head).collect::<Vec<_>>(), "in order, none twice");
        let collected = seen.read().await;
        let resource = collected.logs()[0].resource_attrs();
        assert!(
            resource.iter().any(
                |a| a.key == "service.name" && format!("{:?}", a.value).contains("\"airlock\"")
            ),
            "{resource:?}"
        );
        task.abort();
    }
}
