//! The listener against the real bundled fakechat component, over real
//! loopback sockets with raw HTTP/1.1.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::*;
use crate::bindings::types::InboundEvent;
use crate::home::AirlockHome;
use crate::host::Host;

struct Fixture {
    listener: InboundListener,
    token: String,
    events: mpsc::UnboundedReceiver<Unsolicited>,
    adapter: AdapterHandle,
    _host: Host,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::open(AirlockHome::open(dir.path().join("home")).unwrap()).unwrap();
        let candidate = crate::catalog::bundled_candidates()
            .into_iter()
            .find(|c| c.name == "fakechat")
            .expect("fakechat is bundled");
        let loaded = host.load(&candidate).unwrap();
        let adapter = host.spawn_adapter(&loaded, None).unwrap();
        adapter.start(Vec::new()).await.unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let token = AccessToken::generate().unwrap();
        let listener = InboundListener::bind(
            "127.0.0.1:0".parse().unwrap(),
            adapter.clone(),
            Auth::Token(token.clone()),
            tx,
        )
        .await
        .unwrap();
        Self {
            listener,
            token: token.secret().to_string(),
            events,
            adapter,
            _host: host,
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    fn host_header(&self) -> String {
        format!("127.0.0.1:{}", self.addr().port())
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr().port())
    }

    /// `target` with `&token=...` (or `?token=...`) appended.
    fn with_token(&self, target: &str) -> String {
        let sep = if target.contains('?') { '&' } else { '?' };
        format!("{target}{sep}token={}", self.token)
    }

    /// A request with the right Host header and no Origin.
    async fn send(&self, method: &str, target: &str, body: &[u8]) -> Answer {
        let host = self.host_header();
        self.raw(method, target, &[("host", &host)], body).await
    }

    async fn raw(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut head = format!("{method} {target} HTTP/1.1\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect(self.addr()).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
            .await
            .expect("the listener answers")
            .unwrap();
        Answer::parse(&raw)
    }

    async fn next_event(&mut self) -> Unsolicited {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("an event arrives")
            .expect("the channel is open")
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn parse(raw: &[u8]) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Self {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    fn assert_secured(&self) {
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("x-frame-options"), Some("DENY"));
        assert_eq!(
            self.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
    }
}

#[tokio::test]
async fn requests_without_the_right_token_get_401() {
    let f = Fixture::new().await;
    let wrong = "0".repeat(32);
    for target in [
        "/".to_string(),
        "/?token=".to_string(),
        "/?token".to_string(),
        format!("/?token={wrong}"),
        format!("/?token={}", &f.token[..31]),
        format!("/?token={}0", f.token),
        format!("/?token={}&token={wrong}", f.token),
        format!("/?TOKEN={}", f.token),
    ] {
        let answer = f.send("GET", &target, b"").await;
        assert_eq!(answer.status, 401, "{target}");
        assert!(answer.text().contains("stderr"), "{}", answer.text());
        assert!(!answer.text().contains(&f.token));
        answer.assert_secured();
    }
    // Nothing reached the adapter.
    let answer = f
        .send("GET", &f.with_token("/api/messages?after=0"), b"")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), serde_json::json!([]));
}

#[tokio::test]
async fn foreign_origins_get_403() {
    let f = Fixture::new().await;
    let host = f.host_header();
    let target = f.with_token("/api/send");
    let other_port = format!("http://127.0.0.1:{}", f.addr().port().wrapping_add(1));
    for origin in [
        "http://evil.example",
        "null",
        other_port.as_str(),
        &format!("https://127.0.0.1:{}", f.addr().port()),
        &format!("http://127.0.0.1:{}.evil.example", f.addr().port()),
    ] {
        let answer = f
            .raw(
                "POST",
                &target,
                &[("host", &host), ("origin", origin)],
                br#"{"text":"injected"}"#,
            )
            .await;
        assert_eq!(answer.status, 403, "{origin}");
        answer.assert_secured();
    }
    // The page's own origin, under either name, is fine.
    for origin in [f.origin(), format!("http://localhost:{}", f.addr().port())] {
        let answer = f
            .raw(
                "GET",
                &f.with_token("/api/messages"),
                &[("host", &host), ("origin", &origin)],
                b"",
            )
            .await;
        assert_eq!(answer.status, 200, "{origin}");
    }
}

#[tokio::test]
async fn bad_host_headers_get_403() {
    let f = Fixture::new().await;
    let port = f.addr().port();
    let target = f.with_token("/");
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        format!("127.0.0.1:+{port}"),
        format!("localhost.evil.example:{port}"),
    ] {
        let answer = f.raw("GET", &target, &[("host", &host)], b"").await;
        assert_eq!(answer.status, 403, "{host}");
        answer.assert_secured();
    }
    // No Host header at all.
    let answer = f.raw("GET", &target, &[], b"").await;
    assert_eq!(answer.status, 403);
    // An absolute target naming another authority.
    let absolute = format!("http://evil.example:{port}{target}");
    let answer = f
        .raw("GET", &absolute, &[("host", &f.host_header())], b"")
        .await;
    assert_eq!(answer.status, 403);
    // Both loopback names are accepted.
    for host in [
        f.host_header(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
    ] {
        let answer = f.raw("GET", &target, &[("host", &host)], b"").await;
        assert_eq!(answer.status, 200, "{host}");
    }
}

#[tokio::test]
async fn the_page_is_served_with_security_headers() {
    let f = Fixture::new().await;
    let answer = f.send("GET", &f.with_token("/"), b"").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    answer.assert_secured();
    assert!(answer.text().contains("<title>airlock fakechat</title>"));
    // The URL printed for the operator is the page with the token.
    assert_eq!(
        f.listener.url(),
        format!("http://127.0.0.1:{}/?token={}", f.addr().port(), f.token)
    );
    // Unknown paths come from the adapter, secured all the same.
    let answer = f.send("GET", &f.with_token("/nope"), b"").await;
    assert_eq!(answer.status, 404);
    answer.assert_secured();
}

#[tokio::test]
async fn send_delivers_an_unsolicited_event() {
    let mut f = Fixture::new().await;
    let host = f.host_header();
    let origin = f.origin();
    let answer = f
        .raw(
            "POST",
            &f.with_token("/api/send"),
            &[
                ("host", &host),
                ("origin", &origin),
                ("content-type", "application/json"),
                ("cookie", "session=from-another-app"),
            ],
            br#"{"text":"hello from the page"}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.assert_secured();
    assert_eq!(answer.json(), serde_json::json!({ "id": "1" }));
    let event = f.next_event().await;
    assert_eq!(&*event.component, "fakechat");
    assert_eq!(event.batch.events.len(), 1);
    let InboundEvent::Message(message) = &event.batch.events[0] else {
        panic!("not a message: {:?}", event.batch.events[0]);
    };
    assert_eq!(message.text, "hello from the page");
    assert_eq!(message.chat.id, "web");
    assert_eq!(message.message_id, "1");

    // The token is stripped and the rest of the query reaches the adapter:
    // `after=1` lists nothing, `after=0` the one message.
    let token_first = format!("/api/messages?token={}&after=1", f.token);
    let answer = f.send("GET", &token_first, b"").await;
    assert_eq!(answer.json(), serde_json::json!([]));
    let answer = f
        .send("GET", &f.with_token("/api/messages?after=0"), b"")
        .await;
    assert_eq!(answer.json()[0]["text"], "hello from the page");

    // A reply without events sends nothing on the channel.
    assert!(f.events.try_recv().is_err());
    // Outbound from the session appears on the page.
    let sent = f
        .adapter
        .send(crate::bindings::types::OutboundMessage {
            chat_id: "web".into(),
            text: "hi from Claude".into(),
            reply_to: Some("1".into()),
            format: crate::bindings::types::TextFormat::Plain,
            buttons: Vec::new(),
            files: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(sent.message_ids, ["2"]);
    let answer = f
        .send("GET", &f.with_token("/api/messages?after=1"), b"")
        .await;
    let listed = answer.json();
    assert_eq!(listed[0]["from"], "bot");
    assert_eq!(listed[0]["reply_to"], "1");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let f = Fixture::new().await;
    let host = f.host_header();
    let too_big = (MAX_BODY_BYTES + 1).to_string();
    // Refused on the declared length, before any of the body is sent.
    let answer = f
        .raw(
            "POST",
            &f.with_token("/api/upload?name=big.bin"),
            &[("host", &host), ("content-length", &too_big)],
            b"",
        )
        .await;
    assert_eq!(answer.status, 413);
    answer.assert_secured();
    // Within the host's cap but over fakechat's per-file limit: the adapter's 413.
    let body = vec![7u8; (8 << 20) + 1];
    let answer = f
        .send("POST", &f.with_token("/api/upload?name=big.bin"), &body)
        .await;
    assert_eq!(answer.status, 413);
    assert!(answer.json()["error"].as_str().unwrap().contains("MiB"));
}

#[tokio::test]
async fn uploads_reach_the_adapter_and_downloads_are_attachments() {
    let mut f = Fixture::new().await;
    let host = f.host_header();
    // Three files of fakechat's largest size: the store evicts, the
    // instance's memory holds.
    let mut ids = Vec::new();
    for i in 0..3u8 {
        let body = vec![i; 8 << 20];
        let answer = f
            .raw(
                "POST",
                &f.with_token(&format!("/api/upload?name=part{i}.png&text=file%20{i}")),
                &[("host", &host), ("content-type", "image/png")],
                &body,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        ids.push(answer.json()["attachment"].as_str().unwrap().to_string());
        let event = f.next_event().await;
        let InboundEvent::Message(message) = &event.batch.events[0] else {
            panic!("not a message");
        };
        assert_eq!(message.text, format!("file {i}"));
        assert_eq!(message.attachments[0].size, Some(8 << 20));
    }
    // The largest body the host lets through, refused by fakechat, then
    // another file: the instance survives the worst case of its memory use.
    let answer = f
        .send(
            "POST",
            &f.with_token("/api/upload?name=huge.bin"),
            &vec![9u8; MAX_BODY_BYTES],
        )
        .await;
    assert_eq!(answer.status, 413);
    let answer = f
        .send(
            "POST",
            &f.with_token("/api/upload?name=last.bin"),
            &vec![3u8; 8 << 20],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    f.next_event().await;
    assert_eq!(
        f.adapter.health().await,
        crate::runtime::actor::Health::Running { recent_crashes: 0 }
    );
    let answer = f
        .send("GET", &f.with_token(&format!("/api/files/{}", ids[2])), b"")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body.len(), 8 << 20);
    assert_eq!(
        answer.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(
        answer
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"part2.png\"")
    );
    answer.assert_secured();
    let answer = f
        .send("GET", &f.with_token(&format!("/api/files/{}", ids[0])), b"")
        .await;
    assert_eq!(answer.status, 404, "evicted");
}

#[tokio::test]
async fn bind_refusals() {
    let f = Fixture::new().await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let token = AccessToken::generate().unwrap();
    let err = InboundListener::bind(
        f.addr(),
        f.adapter.clone(),
        Auth::Token(token.clone()),
        tx.clone(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, InboundError::PortInUse { port } if port == f.addr().port()),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("already in use"), "{text}");
    assert!(
        text.contains("[components.fakechat] settings = { port = "),
        "{text}"
    );

    for addr in ["0.0.0.0:0", "192.0.2.1:8787", "[::]:0"] {
        let err = InboundListener::bind(
            addr.parse().unwrap(),
            f.adapter.clone(),
            Auth::Token(token.clone()),
            tx.clone(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, InboundError::NotLoopback { .. }),
            "{addr}: {err:?}"
        );
        assert!(err.to_string().contains("loopback"));
    }
}

#[tokio::test]
async fn dropping_the_listener_closes_the_port() {
    let f = Fixture::new().await;
    let addr = f.addr();
    drop(f.listener);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[test]
fn tokens() {
    let a = AccessToken::generate().unwrap();
    let b = AccessToken::generate().unwrap();
    assert_eq!(a.secret().len(), 32);
    assert!(
        a.secret()
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(a.secret(), b.secret());
    assert!(a.matches(a.secret()));
    assert!(!a.matches(b.secret()));
    assert!(!a.matches(""));
    assert!(!a.matches(&a.secret()[..31]));
    let debug = format!("{a:?}");
    assert!(!debug.contains(a.secret()), "{debug}");
}

#[test]
fn token_stripping() {
    let t = AccessToken::generate().unwrap();
    let s = t.secret();
    assert_eq!(
        strip_token(Some(&format!("token={s}")), &t).as_deref(),
        Some("")
    );
    assert_eq!(
        strip_token(Some(&format!("after=3&token={s}&x=%20y")), &t).as_deref(),
        Some("after=3&x=%20y")
    );
    assert_eq!(
        strip_token(Some(&format!("&token={s}&")), &t).as_deref(),
        Some("")
    );
    assert_eq!(strip_token(None, &t), None);
    assert_eq!(strip_token(Some("after=3"), &t), None);
    assert_eq!(strip_token(Some(&format!("token={s}&token")), &t), None);
    assert_eq!(strip_token(Some(&format!("token={s}&token=x")), &t), None);
}

#[tokio::test]
async fn body_reading_stops_at_the_cap() {
    let body = Full::new(Bytes::from(vec![0u8; 11]));
    assert!(matches!(
        read_body(body, 10).await,
        Err(BodyError::TooLarge)
    ));
    let body = Full::new(Bytes::from(vec![0u8; 10]));
    assert_eq!(read_body(body, 10).await.ok().map(|b| b.len()), Some(10));
}

#[test]
fn admission_closes_the_oldest_idle_connection_in_the_way() {
    let a: IpAddr = "127.0.0.1".parse().unwrap();
    let b: IpAddr = "127.0.0.2".parse().unwrap();
    // (open connections oldest first as (source, idle), new source, per source, total, outcome)
    type Case<'a> = (&'a [(IpAddr, bool)], IpAddr, usize, usize, Admission);
    let cases: &[Case] = &[
        (&[], a, 2, 3, Admission::Admit),
        (&[(a, true)], a, 2, 3, Admission::Admit),
        (&[(a, false), (a, true)], a, 2, 3, Admission::Close(1)),
        (&[(a, true), (a, true)], a, 2, 3, Admission::Close(0)),
        (&[(a, false), (a, false)], a, 2, 3, Admission::Refuse),
        // Another source is not held back by a's connections...
        (&[(a, false), (a, false)], b, 2, 3, Admission::Admit),
        // ...until the listener is full: then the oldest idle of any source goes.
        (
            &[(b, false), (a, true), (a, false)],
            b,
            2,
            3,
            Admission::Close(1),
        ),
        (
            &[(a, false), (a, false), (b, false)],
            b,
            2,
            3,
            Admission::Refuse,
        ),
        // At its own limit, a source loses its own idle connection, not another's.
        (
            &[(b, true), (a, false), (a, true)],
            a,
            2,
            5,
            Admission::Close(2),
        ),
    ];
    for (i, &(open, source, per_source, total, want)) in cases.iter().enumerate() {
        assert_eq!(admission(open, source, per_source, total), want, "case {i}");
    }
}

/// Whether the listener closed `stream` (EOF or reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(wait, read).await.is_ok()
}

#[tokio::test]
async fn idle_sockets_do_not_hold_up_a_request() {
    let f = Fixture::new().await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(f.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let answer = f.send("GET", &f.with_token("/"), b"").await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200);
    assert!(took < Duration::from_secs(2), "the request took {took:?}");
    // A source keeps at most MAX_PER_SOURCE connections: the oldest idle
    // ones were closed, the newest are still open.
    let (oldest, newest) = idle.split_at_mut(40 - (MAX_PER_SOURCE - 1));
    assert!(closed_within(&mut oldest[0], Duration::from_millis(500)).await);
    assert!(!closed_within(&mut newest[newest.len() - 1], Duration::from_millis(200)).await);
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed_after_the_header_timeout() {
    let f = Fixture::new().await;
    // Silent from the start.
    let mut silent = TcpStream::connect(f.addr()).await.unwrap();
    // Half a request head, then nothing.
    let mut partial = TcpStream::connect(f.addr()).await.unwrap();
    partial
        .write_all(b"GET / HTTP/1.1\r\nhost: ")
        .await
        .unwrap();
    // A whole request on a kept-alive connection, then nothing.
    let mut kept = TcpStream::connect(f.addr()).await.unwrap();
    let head = format!("GET / HTTP/1.1\r\nhost: {}\r\n\r\n", f.host_header());
    kept.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let limit = Duration::from_millis(6500);
    for stream in [&mut silent, &mut partial, &mut kept] {
        assert!(
            closed_within(stream, limit.saturating_sub(started.elapsed())).await,
            "still open after {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(500));
}
