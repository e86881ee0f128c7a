//! The host websocket capability: a real guest (`wsecho`) against a real
//! websocket server on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock::runtime::actor::AdapterHandle;
use airlock::runtime::call_error::CallError;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::support::*;

const SECRET: &str = "MTIz.SUPERSECRET-gateway_token";

/// The secret as a server might spell it back, one frame each (sent for
/// `leak-encoded`): base64, hex, reversed, JSON `\u` escapes, and in halves.
fn encoded_leaks() -> Vec<String> {
    let (first, second) = SECRET.split_at(SECRET.len() / 2);
    vec![
        format!("b64={}", crate::secrets::base64(SECRET.as_bytes())),
        format!(
            "hex={}",
            SECRET
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        format!("rev={}", SECRET.chars().rev().collect::<String>()),
        format!(
            "json={}",
            SECRET
                .chars()
                .map(|c| format!("\\u{:04x}", u32::from(c)))
                .collect::<String>()
        ),
        format!("half1={first}"),
        format!("half2={second}"),
    ]
}

/// Frames the server sends for `flood`.
const FLOOD: usize = 200;

/// A websocket server on 127.0.0.1 that records every text frame and
/// connection. It answers each text frame `F` with `echo:F`, except `leak`,
/// which it answers with the secret in a text and a binary frame,
/// `leak-encoded`, with [`encoded_leaks`], `flood`,
/// with [`FLOOD`] frames `n:0`, `n:1`, … at once, and `bye`, by closing with
/// 4000 "bye".
struct WsServer {
    port: u16,
    frames: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<usize>>,
    ended: Arc<Mutex<usize>>,
}

impl WsServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frames = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let ended = Arc::new(Mutex::new(0));
        let (f, c, e) = (frames.clone(), connections.clone(), ended.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                *c.lock().unwrap() += 1;
                let frames = f.clone();
                let ended = e.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let _ended = Ended(ended);
                    while let Some(Ok(message)) = ws.next().await {
                        let Message::Text(text) = message else {
                            continue;
                        };
                        frames.lock().unwrap().push(text.to_string());
                        let sent = match text.as_str() {
                            "leak" => {
                                let _ = ws.send(Message::text(format!("token={SECRET}"))).await;
                                ws.send(Message::binary(format!("bin={SECRET}").into_bytes()))
                                    .await
                            }
                            "leak-encoded" => {
                                let mut r = Ok(());
                                for leak in encoded_leaks() {
                                    r = r.and(ws.feed(Message::text(leak)).await);
                                }
                                r.and(ws.flush().await)
                            }
                            "flood" => {
                                let mut r = Ok(());
                                for i in 0..FLOOD {
                                    r = r.and(ws.feed(Message::text(format!("n:{i}"))).await);
                                }
                                r.and(ws.flush().await)
                            }
                            "bye" => {
                                ws.close(Some(CloseFrame {
                                    code: 4000.into(),
                                    reason: "bye".into(),
                                }))
                                .await
                            }
                            other => ws.send(Message::text(format!("echo:{other}"))).await,
                        };
                        if sent.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        WsServer {
            port,
            frames,
            connections,
            ended,
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn frames(&self) -> Vec<String> {
        self.frames.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }

    fn ended(&self) -> usize {
        *self.ended.lock().unwrap()
    }
}

/// Counts a server-side connection as ended when its task ends.
struct Ended(Arc<Mutex<usize>>);

impl Drop for Ended {
    fn drop(&mut self) {
        *self.0.lock().unwrap() += 1;
    }
}

/// Drop in `wsecho` with `manifest_extra` and `grant` lines; start it.
async fn start_wsecho(
    home: &TempHome,
    manifest_extra: &str,
    grant: &str,
) -> (airlock::host::Host, AdapterHandle) {
    home.drop_in(
        "wsecho",
        &fixture_wasm("wsecho"),
        &manifest("wsecho", manifest_extra),
    );
    home.config(&format!("[components.wsecho.grant]\n{grant}\n"));
    start_adapter(home, "wsecho").await
}

/// Drop in `wsecho` asking for websocket destination `dest` (not started).
fn drop_in_wsecho_for(home: &TempHome, dest: &str) {
    home.drop_in(
        "wsecho",
        &fixture_wasm("wsecho"),
        &manifest("wsecho", &format!("websocket = [\"{dest}\"]")),
    );
}

/// `wsecho` asking for `dest`, which the operator grants as a local destination.
async fn start_granted(home: &TempHome, dest: &str) -> (airlock::host::Host, AdapterHandle) {
    start_wsecho(
        home,
        &format!("websocket = [\"{dest}\"]"),
        &format!("local = [\"{dest}\"]"),
    )
    .await
}

async fn run(guest: &AdapterHandle, text: &str) -> Result<Vec<String>, String> {
    match guest.send(command(text)).await {
        Ok(sent) => Ok(sent.message_ids),
        Err(CallError::Adapter { error, .. }) => Err(error.to_string()),
        Err(other) => panic!("{text}: {other}"),
    }
}

/// Collects the guest's recorded events until one satisfies `done`.
async fn events_until(guest: &AdapterHandle, seen: &mut Vec<String>, done: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let new = run(guest, "events").await.unwrap();
        let hit = new.iter().any(|e| done(e));
        seen.extend(new);
        if hit {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; events so far: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_undeclared_websocket_destination_is_denied_and_never_contacted() {
    let server = WsServer::start().await;
    let home = TempHome::new();
    let (_h, guest) = start_wsecho(
        &home,
        "websocket = [\"wss://gateway.example.com\"]",
        "local = []",
    )
    .await;
    let err = run(&guest, &format!("connect {}", server.url()))
        .await
        .unwrap_err();
    assert!(err.contains("denied"), "{err}");
    // Scheme, host and port must all match.
    for url in [
        "ws://gateway.example.com",
        "wss://gateway.example.com:8443",
        "https://gateway.example.com",
    ] {
        let err = run(&guest, &format!("connect {url}")).await.unwrap_err();
        assert!(err.contains("denied"), "{url}: {err}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_loopback_websocket_is_denied_unless_granted_local() {
    let server = WsServer::start().await;
    let home = TempHome::new();
    let dest = server.url();
    let (_h, guest) = start_wsecho(&home, &format!("websocket = [\"{dest}\"]"), "").await;
    let err = run(&guest, &format!("connect {dest}/gateway"))
        .await
        .unwrap_err();
    assert!(err.contains("denied"), "{err}");
    assert!(err.contains("local"), "the refusal names the fix: {err}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_granted_local_websocket_carries_frames_both_ways() {
    let server = WsServer::start().await;
    let home = TempHome::new();
    let dest = server.url();
    let (_h, guest) = start_granted(&home, &dest).await;
    let id = run(&guest, &format!("connect {dest}/gateway?v=10"))
        .await
        .unwrap()
        .remove(0);
    run(&guest, &format!("send {id} hello there"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    events_until(&guest, &mut seen, |e| e.contains("echo:hello there")).await;
    assert_eq!(
        seen,
        [
            format!("{id} opened"),
            format!("{id} text echo:hello there")
        ]
    );
    assert_eq!(server.frames(), ["hello there"]);

    // Frames over the cap are refused before they are queued.
    let err = run(&guest, &format!("big {id} {}", (1 << 20) + 1))
        .await
        .unwrap_err();
    assert!(err.contains("too-large"), "{err}");

    // A burst larger than the host's window of undelivered events arrives
    // whole and in order (the connection waits for the guest, it drops nothing).
    run(&guest, &format!("send {id} flood")).await.unwrap();
    let mut seen = Vec::new();
    let last = format!("n:{}", FLOOD - 1);
    events_until(&guest, &mut seen, |e| e.ends_with(&last)).await;
    let expected: Vec<String> = (0..FLOOD).map(|i| format!("{id} text n:{i}")).collect();
    assert_eq!(seen, expected);

    // The server closes: the guest hears the code and reason, and the
    // connection is gone.
    run(&guest, &format!("send {id} bye")).await.unwrap();
    let mut seen = Vec::new();
    events_until(&guest, &mut seen, |e| e.contains("closed")).await;
    assert_eq!(seen, [format!("{id} closed 4000 bye")]);
    let err = run(&guest, &format!("send {id} again")).await.unwrap_err();
    assert!(err.contains("closed"), "{err}");

    // The guest closes.
    let id = run(&guest, &format!("connect {dest}"))
        .await
        .unwrap()
        .remove(0);
    run(&guest, &format!("close {id} 1000 done")).await.unwrap();
    let mut seen = Vec::new();
    events_until(&guest, &mut seen, |e| e.contains("closed")).await;
    assert_eq!(seen.first().unwrap(), &format!("{id} opened"));
    assert!(
        seen.last()
            .unwrap()
            .starts_with(&format!("{id} closed 1000")),
        "{seen:?}"
    );

    // At most a few connections at once.
    let mut ids = Vec::new();
    let err = loop {
        match run(&guest, &format!("connect {dest}")).await {
            Ok(id) => ids.push(id),
            Err(e) => break e,
        }
        assert!(ids.len() <= 4, "more than 4 connections were opened");
    };
    assert!(err.contains("at most"), "{err}");
    assert!(ids.len() >= 3, "{ids:?}");
}

/// The wsecho fixture connected to a fresh server, with `SECRET` bound to the
/// `d.token` field of its first frame there: the server, the state directory,
/// the host, the guest and the connection id.
async fn connected_with_secret() -> (
    WsServer,
    TempHome,
    airlock::host::Host,
    AdapterHandle,
    String,
) {
    let server = WsServer::start().await;
    let home = TempHome::new();
    home.secret("GATEWAY_TOKEN", SECRET);
    let dest = server.url();
    let (h, guest) = start_wsecho(
        &home,
        &format!(
            "websocket = [\"{dest}\"]\n[[secrets]]\nname = \"GATEWAY_TOKEN\"\ndestination = \"{dest}\"\nws_json_field = \"d.token\""
        ),
        &format!("local = [\"{dest}\"]\nsecrets = [\"GATEWAY_TOKEN\"]"),
    )
    .await;
    let id = run(&guest, &format!("connect {dest}"))
        .await
        .unwrap()
        .remove(0);
    (server, home, h, guest, id)
}

#[tokio::test]
async fn the_secret_lands_only_in_the_first_frames_json_field_and_is_scrubbed() {
    let (server, _home, _h, guest, id) = connected_with_secret().await;
    // Compact, keys in order: the host re-serialises the frame it injects into.
    let identify = r#"{"d":{"intents":513,"token":"{secret}"},"op":2}"#;
    let second = r#"{"d":{"intents":513,"token":"{secret}"},"op":2,"t":"${GATEWAY_TOKEN}"}"#;
    run(&guest, &format!("send {id} {identify}")).await.unwrap();
    run(&guest, &format!("send {id} {second}")).await.unwrap();
    run(&guest, &format!("send {id} leak")).await.unwrap();
    let mut seen = Vec::new();
    events_until(&guest, &mut seen, |e| e.contains("binary")).await;

    let frames = server.frames();
    assert_eq!(
        frames[0],
        format!(r#"{{"d":{{"intents":513,"token":"{SECRET}"}},"op":2}}"#),
        "the first frame carries the secret, byte for byte"
    );
    assert_eq!(frames[1], second, "later frames are sent as they are");
    assert_eq!(frames[2], "leak");
    assert_eq!(frames.len(), 3);

    let guest_text = seen.join("\n");
    assert!(!guest_text.contains(SECRET), "the guest saw the secret");
    assert!(!guest_text.contains("SUPERSECRET"), "{guest_text}");
    assert!(
        seen.contains(&format!("{id} text token=[redacted]")),
        "{seen:?}"
    );
    assert!(
        seen.contains(&format!("{id} binary bin=[redacted]")),
        "{seen:?}"
    );
    // The echo of the first frame (which the server saw with the secret in it)
    // reached the guest scrubbed.
    assert!(
        seen.iter().any(|e| e.contains(r#""token":"[redacted]""#)),
        "{seen:?}"
    );

    // Each connection's first frame gets it; a first frame without the field
    // is sent unchanged, without the secret.
    let id2 = run(&guest, &format!("connect {}", server.url()))
        .await
        .unwrap()
        .remove(0);
    run(&guest, &format!("send {id2} {{\"op\":1,\"d\":null}}"))
        .await
        .unwrap();
    run(&guest, &format!("send {id2} {identify}"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    events_until(&guest, &mut seen, |e| e.contains(r#"echo:{"d":{"intents"#)).await;
    let frames = server.frames();
    assert_eq!(frames[3], r#"{"op":1,"d":null}"#);
    assert_eq!(frames[4], identify);
    assert!(!frames[3..].iter().any(|f| f.contains(SECRET)));
}

#[tokio::test]
async fn connections_die_with_their_instance() {
    let server = WsServer::start().await;
    let home = TempHome::new();
    let dest = server.url();
    let (_h, guest) = start_granted(&home, &dest).await;
    let id = run(&guest, &format!("connect {dest}"))
        .await
        .unwrap()
        .remove(0);
    run(&guest, &format!("send {id} ping")).await.unwrap();
    let mut seen = Vec::new();
    events_until(&guest, &mut seen, |e| e.contains("echo:ping")).await;
    assert_eq!(server.ended(), 0);

    let err = guest.send(command("crash")).await.unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.ended() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection outlived its instance"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next instance hears nothing of the old connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(run(&guest, "events").await.unwrap(), Vec::<String>::new());
    let err = run(&guest, &format!("send {id} again")).await.unwrap_err();
    assert!(err.contains("closed"), "{err}");
}

/// A server spelling the secret back encoded or in halves reaches the guest
/// scrubbed, frame by frame; a guest that holds the secret (given here by the
/// test) cannot send it in a frame, raw, encoded or a piece of it, nor as a
/// close reason.
#[tokio::test]
async fn encoded_or_split_secrets_are_scrubbed_from_frames_and_never_sent() {
    let (server, _home, _h, guest, id) = connected_with_secret().await;
    run(
        &guest,
        &format!("send {id} {{\"d\":{{\"token\":\"{{secret}}\"}}}}"),
    )
    .await
    .unwrap();
    run(&guest, &format!("send {id} leak-encoded"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    events_until(&guest, &mut seen, |e| e.contains("half2=")).await;
    for (leak, name) in encoded_leaks()
        .iter()
        .zip(["b64", "hex", "rev", "json", "half1", "half2"])
    {
        let frame = seen
            .iter()
            .find(|e| e.contains(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} frame in {seen:?}"));
        assert_eq!(frame, &format!("{id} text {name}=[redacted]"), "{leak}");
    }
    assert_eq!(
        server.frames()[0],
        format!(r#"{{"d":{{"token":"{SECRET}"}}}}"#)
    );

    let b64 = crate::secrets::base64(SECRET.as_bytes());
    for frame in [
        SECRET.to_string(),
        format!("x {b64}"),
        SECRET[3..20].to_string(),
    ] {
        let err = run(&guest, &format!("send {id} {frame}"))
            .await
            .unwrap_err();
        assert!(err.contains("secret"), "{err}");
    }
    let err = run(&guest, &format!("close {id} 1000 {SECRET}"))
        .await
        .unwrap_err();
    assert!(err.contains("secret"), "{err}");
    run(&guest, &format!("send {id} still-open")).await.unwrap();
    let mut seen = Vec::new();
    events_until(&guest, &mut seen, |e| e.contains("echo:still-open")).await;
    let frames = server.frames();
    assert!(
        !frames[1..]
            .iter()
            .any(|f| f.contains("SUPERSECRET") || f.contains(&b64[..16])),
        "{frames:?}"
    );
}

/// A frame held with `send-text-after-commit` leaves only when whoever
/// stores the call's batch releases it (`serve`'s pump does once the batch
/// is stored); it travels with that batch, and `send`, which returns no
/// batch, may not hold one.
#[tokio::test]
async fn a_held_frame_waits_for_its_batch_to_be_stored() {
    let server = WsServer::start().await;
    let home = TempHome::new();
    let dest = server.url();
    drop_in_wsecho_for(&home, &dest);
    home.config(&format!(
        "[components.wsecho.grant]\nlocal = [\"{dest}\"]\n"
    ));
    let (_host, guest, mut batches) = start_adapter_unsolicited(&home, "wsecho").await;

    let id = run(&guest, &format!("connect {dest}")).await.unwrap()[0].clone();
    let refused = run(&guest, &format!("hold {id} too soon"))
        .await
        .unwrap_err();
    assert!(
        refused.contains("returns no batch, so use send-text"),
        "{refused}"
    );

    // The server echoes `hold one`; the guest holds `held:one` for the
    // batch of that frame's on-ws-event.
    run(&guest, &format!("send {id} hold one")).await.unwrap();
    let held = loop {
        let u = tokio::time::timeout(Duration::from_secs(10), batches.recv())
            .await
            .expect("the batch of the echoed frame")
            .unwrap();
        if !u.held.is_empty() {
            break u;
        }
    };
    assert_eq!(held.held.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.frames().iter().any(|f| f == "held:one"),
        "sent before its batch was released: {:?}",
        server.frames()
    );
    for frame in held.held {
        assert!(frame.release());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !server.frames().iter().any(|f| f == "held:one") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            server.frames()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Through `airlock serve`: the pump sends a held frame once it has stored
/// the batch of the call that held it.
#[tokio::test]
async fn serve_sends_a_held_frame_once_its_batch_is_stored() {
    use crate::session::{Session, outcome, sent_id};
    let server = WsServer::start().await;
    let home = TempHome::new();
    let dest = server.url();
    drop_in_wsecho_for(&home, &dest);
    home.config(&format!(
        "[components.wsecho]\nenabled = true\ngrant = {{ local = [\"{dest}\"] }}\n"
    ));
    crate::session::cli_ok(&home, &["adapters", "approve", "wsecho"]).await;
    // The session may write to an open group.
    crate::session::cli_ok(&home, &["access", "group", "open", "wsecho", "c"]).await;
    let session = Session::start(&home).await;
    let say = |text: String| {
        let session = &session;
        async move {
            let (is_error, said) = outcome(
                &session
                    .call(
                        "reply",
                        serde_json::json!({"chat_id": "wsecho:c", "text": text}),
                    )
                    .await,
            );
            assert!(!is_error, "{said}");
            sent_id(&said)
        }
    };
    let id = say(format!("connect {dest}")).await;
    say(format!("send {id} hold two")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !server.frames().iter().any(|f| f == "held:two") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never sent: {:?}\n{}",
            server.frames(),
            session.log.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    session.close().await;
}
