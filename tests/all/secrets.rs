//! Red-team findings 2 and 3 of issue 9: a secret must not come back to a
//! component in any encoding or in pieces, a component that holds one must
//! not be able to send it anywhere, and no text the session sends or gets
//! back may carry one.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use fake_telegram::FakeTelegram;
use serde_json::json;

use crate::session::*;
use crate::support::*;
use crate::telegram::{
    ALICE, TOKEN, TOKEN_PART, allow_alice, event_from, from_alice, sent_texts, start, telegram_home,
};

const SECRET: &str = "123456:SUPERSECRET-token_value";

/// A loopback server that answers with the request's path (which carries the
/// injected `/bot{secret}` prefix) encoded as `?enc=` says, compressed when
/// the request accepts gzip (or always, for `?force=gzip`/`?force=br`), and cut
/// to a `Range` when one is asked for: an honest server that reflects what it
/// is sent. Records the request headers it saw.
struct Reflector {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

/// Standard base64 with padding (shared with the websocket tests).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for g in bytes.chunks(3) {
        let n = g
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= g.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// `text` as encoding `enc` spells it.
fn encode(enc: &str, text: &str) -> String {
    match enc {
        "base64" => base64(text.as_bytes()),
        "hex" => text.bytes().map(|b| format!("{b:02X}")).collect(),
        "reversed" => text.chars().rev().collect(),
        "upper" => text.to_uppercase(),
        "percent" => text.bytes().map(|b| format!("%{b:02x}")).collect(),
        "unicode" => text
            .chars()
            .map(|c| format!("\\u{:04X}", u32::from(c)))
            .collect(),
        "html" => text
            .chars()
            .map(|c| format!("&#{};", u32::from(c)))
            .collect(),
        _ => text.to_string(),
    }
}

/// The shortest run of `enc`'s output that stands for 12 bytes of input.
fn run_of(enc: &str) -> usize {
    match enc {
        "base64" => 16,
        "hex" => 24,
        "percent" => 36,
        "unicode" => 72,
        "html" => 60,
        _ => 12,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

impl Reflector {
    async fn start() -> Self {
        let seen: Arc<Mutex<Vec<BTreeMap<String, String>>>> = Arc::default();
        let log = seen.clone();
        let addr = serve_http(move |req| {
            let log = log.clone();
            async move {
                let headers: BTreeMap<String, String> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                    .collect();
                log.lock().unwrap().push(headers.clone());
                let query = req.uri().query().unwrap_or_default().to_string();
                let param = |name: &str| {
                    query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                        .unwrap_or_default()
                        .to_string()
                };
                let path = req.uri().path().to_string();
                let enc = param("enc");
                let mut response = hyper::Response::builder().status(200);
                let mut body = if enc == "halves" {
                    let (a, b) = path.split_at(path.len() / 2);
                    response = response.header("x-first", a).header("x-second", b);
                    b"see the headers".to_vec()
                } else {
                    format!("not found: {}", encode(&enc, &path)).into_bytes()
                };
                if let Some(range) = headers.get("range").and_then(|r| r.strip_prefix("bytes=")) {
                    let (from, to) = range.split_once('-').unwrap();
                    let from: usize = from.parse().unwrap();
                    let to: usize = to.parse::<usize>().unwrap().min(body.len() - 1);
                    body = body[from..=to].to_vec();
                    response = response.status(206);
                }
                let accepts_gzip = headers
                    .get("accept-encoding")
                    .is_some_and(|a| a.contains("gzip"));
                match param("force").as_str() {
                    "br" => response = response.header("content-encoding", "br"),
                    force if force == "gzip" || accepts_gzip => {
                        body = gzip(&body);
                        response = response.header("content-encoding", "gzip");
                    }
                    _ => {}
                }
                response
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap()
            }
        })
        .await;
        Reflector { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The `egress` fixture with `SECRET` bound as a path prefix to `bound`,
/// also granted `others`.
async fn guest_with_secret(
    home: &TempHome,
    bound: &str,
    others: &[String],
) -> (airlock::host::Host, airlock::runtime::actor::AdapterHandle) {
    home.secret("TELEGRAM_BOT_TOKEN", SECRET);
    let secret = format!(
        "[[secrets]]\nname = \"TELEGRAM_BOT_TOKEN\"\ndestination = \"{bound}\"\npath_prefix = \"/bot{{secret}}\""
    );
    let mut all = vec![bound.to_string()];
    all.extend_from_slice(others);
    start_egress(home, &all, &secret, "secrets = [\"TELEGRAM_BOT_TOKEN\"]").await
}

/// Every way the reflecting server spells the path back: compressed because
/// the guest asked, compressed anyway, cut to a range, and encoded. The
/// server is asked for no encoding and no range, whatever the guest sets; what
/// the guest gets holds no run of the secret in the encoding used.
#[tokio::test]
async fn a_reflected_secret_comes_back_in_no_encoding_and_no_pieces() {
    let server = Reflector::start().await;
    let home = TempHome::new();
    let (_h, guest) = guest_with_secret(&home, &server.url(), &[]).await;
    let path = format!("/bot{SECRET}/x");
    // (query, headers the guest sets, encoding of the body)
    let cases = [
        ("enc=raw", "Accept-Encoding: gzip, br", "raw"),
        ("enc=raw&force=gzip", "", "raw"),
        ("enc=raw", "Range: bytes=0-20\nIf-Range: \"x\"", "raw"),
        ("enc=raw", "Range: bytes=21-60", "raw"),
        ("enc=base64", "Accept-Encoding: gzip", "base64"),
        ("enc=hex", "", "hex"),
        ("enc=reversed", "", "reversed"),
        ("enc=upper", "", "upper"),
        ("enc=percent", "", "percent"),
        ("enc=unicode", "", "unicode"),
        ("enc=html", "", "html"),
        ("enc=halves", "", "raw"),
    ];
    for (query, headers, enc) in cases {
        let before = server.seen.lock().unwrap().len();
        let sent = guest
            .send(command(&format!(
                "fetch {}/x?{query}\n{headers}",
                server.url()
            )))
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let seen = server.seen.lock().unwrap()[before].clone();
        assert_eq!(
            seen.get("accept-encoding").map(String::as_str),
            Some("identity"),
            "{query}"
        );
        assert!(
            !seen.contains_key("range") && !seen.contains_key("if-range"),
            "{query}: {seen:?}"
        );
        let got = sent.message_ids.join("\n");
        assert!(got.contains("[redacted]"), "{query}: {got}");
        let spelled = encode(enc, &path);
        let run = run_of(enc);
        let leak = (0..=spelled.len() - run)
            .map(|i| &spelled[i..i + run])
            .find(|w| got.contains(w));
        assert!(leak.is_none(), "{query}: {leak:?} in {got}");
        assert!(!got.contains("SUPERSECRET"), "{query}: {got}");
    }
    // A coding the host cannot decode is refused, not handed on.
    let err = guest
        .send(command(&format!(
            "fetch {}/x?enc=raw&force=br",
            server.url()
        )))
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("SUPERSECRET"), "{err}");
}

/// A guest that holds the secret (here: given it by the test, as if it had
/// decoded it from somewhere) cannot send it: not to another granted host,
/// not to the bound one outside its position, not in the URL, a header or the
/// body, not encoded.
#[tokio::test]
async fn a_component_cannot_send_a_loaded_secret_anywhere() {
    let bound = Reflector::start().await;
    let other = Recorder::start().await;
    let home = TempHome::new();
    let (_h, guest) = guest_with_secret(&home, &bound.url(), &[other.url()]).await;
    let b64 = base64(SECRET.as_bytes());
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let attempts = [
        format!("post {}/x {SECRET}", other.url()),
        format!("post {}/x data={b64}", other.url()),
        format!("post {}/x {}", other.url(), &SECRET[5..20]),
        format!("get {}/x?t={hex}", other.url()),
        format!("fetch {}/x\nX-Leak: {b64}", other.url()),
        format!("post {}/x {SECRET}", bound.url()),
    ];
    for attempt in &attempts {
        let result = guest.send(command(attempt)).await;
        assert!(result.is_err(), "{attempt}: {result:?}");
    }
    for r in other.requests() {
        let text = r.all_text();
        assert!(
            !text.contains("SUPERSECRET")
                && !text.contains(&b64[..16])
                && !text.contains(&hex[..24]),
            "{r:?}"
        );
    }
    // Other requests still go through.
    let sent = guest
        .send(command(&format!("post {}/x hello", other.url())))
        .await
        .unwrap();
    assert_eq!(sent.message_ids[0], "200");
}

/// A guest that holds a loaded secret (given by the test) cannot keep it in
/// its kv namespace, raw or encoded; other values are stored.
#[tokio::test]
async fn a_component_cannot_store_a_loaded_secret_in_kv() {
    // Loading a component with the secret is what puts it on the host's list.
    let bound = Reflector::start().await;
    let home = TempHome::new();
    let (_h, _egress) = guest_with_secret(&home, &bound.url(), &[]).await;
    let other = TempHome::new();
    other.drop_in(
        "stateful",
        &fixture_wasm("stateful"),
        &manifest("stateful", "kv_quota_bytes = 8192"),
    );
    let (_h2, guest) = start_adapter_with(&other, "stateful", QUIET_TIMER).await;
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    for value in [
        SECRET.to_string(),
        base64(SECRET.as_bytes()),
        hex,
        SECRET[4..20].to_string(),
    ] {
        let err = guest
            .send(command(&format!("keep {value}")))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refused") && !err.contains("SUPERSECRET"),
            "{value}: {err}"
        );
    }
    let kept = guest.send(command("keep an ordinary note")).await.unwrap();
    assert_eq!(kept.message_ids, ["kept"]);
}

/// Finding 3 through the real binary: the session's reply text and buttons
/// reach Telegram with the loaded token redacted; an error that would echo
/// an argument holding the token comes back without it; an inbound message
/// quoting the token reaches the session redacted.
#[tokio::test]
async fn no_text_to_or_from_the_session_carries_the_loaded_token() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;
    fake.inject_update(from_alice(30, &format!("my token is {TOKEN}, keep it")));
    let e = event_from(&mut session, ALICE).await;
    let content = e["content"].as_str().unwrap();
    assert_eq!(content, "my token is [redacted], keep it", "{e}");

    let r = session
        .call(
            "reply",
            json!({"chat_id": "telegram:111", "text": format!("the token: {TOKEN} (and again {TOKEN_PART})"),
                "buttons": [[{"label": format!("use {TOKEN}"), "data": "x"}]]}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    let texts = sent_texts(&fake);
    assert_eq!(
        texts.last().unwrap(),
        "the token: [redacted] (and again [redacted])"
    );
    let markup = fake
        .calls_to("sendMessage")
        .pop()
        .unwrap()
        .param("reply_markup")
        .cloned();
    assert_eq!(
        markup,
        Some(json!({"inline_keyboard": [[{"text": "use [redacted]", "callback_data": "x"}]]}))
    );

    let r = session
        .call(
            "reply",
            json!({"chat_id": "telegram:111", "text": "file", "files": [format!("/nonexistent/{TOKEN}.txt")]}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error, "{text}");
    assert!(
        !text.contains(TOKEN_PART) && text.contains("[redacted]"),
        "{text}"
    );

    // A file that holds the token is not sent (an adapter holding it could
    // re-encode it past every scrubber); one without it is.
    let scratch = tempfile::tempdir().unwrap();
    let env = scratch.path().join("env.sh");
    std::fs::write(&env, format!("export TELEGRAM_TOKEN={TOKEN}\n")).unwrap();
    let plain = scratch.path().join("notes.txt");
    std::fs::write(&plain, "nothing secret\n").unwrap();
    let before = fake.calls_to("sendDocument").len();
    let r = session
        .call(
            "reply",
            json!({"chat_id": "telegram:111", "text": "env", "files": [env.display().to_string()]}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error && text.contains("holds a secret"), "{text}");
    assert!(!text.contains(TOKEN_PART), "{text}");
    assert_eq!(fake.calls_to("sendDocument").len(), before);
    let r = session
        .call(
            "reply",
            json!({"chat_id": "telegram:111", "text": "notes", "files": [plain.display().to_string()]}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    assert_eq!(fake.calls_to("sendDocument").len(), before + 1);
    session.close().await;
}
