//! Signed inbound routes through the real binary: a drop-in that shows what
//! it is handed (fixture `hooksee`) behind a GitHub-style route granted a
//! non-loopback address, and behind a Slack-style route with a timestamp.
//! Signatures are made here with an HMAC written from the definition over
//! `sha2`, not with the host's implementation.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::session::*;
use crate::support::*;

const SECRET: &str = "whsec-4f1d9a7c2e8b6053";

/// HMAC-SHA256 (RFC 2104) of `message` under [`SECRET`], as hex.
fn hmac_hex(message: &[u8]) -> String {
    let mut key = [0u8; 64];
    key[..SECRET.len()].copy_from_slice(SECRET.as_bytes());
    let pad = |byte: u8| key.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    hex::encode(outer)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A state directory with `hooksee` dropped in as `gh` (GitHub-style, bound
/// to every address) and as `sl` (Slack-style, loopback), both approved,
/// sender 42 allowed on each.
async fn home_with_signed_routes() -> (TempHome, u16, u16) {
    let home = TempHome::new();
    let wasm = fixture_wasm("hooksee");
    for (name, scheme) in [("gh", "github"), ("sl", "slack")] {
        home.drop_in(
            name,
            &wasm,
            &manifest(
                name,
                &format!("[inbound_http]\nsignature = \"{scheme}\"\nsecret = \"HOOK_SECRET\"\n"),
            ),
        );
    }
    home.secret("HOOK_SECRET", SECRET);
    let [gh, sl] = free_ports();
    home.config(&format!(
        "[components.gh]\nenabled = true\nsettings = {{ port = \"{gh}\" }}\n\
         grant = {{ secrets = [\"HOOK_SECRET\"], bind = \"0.0.0.0\" }}\n\
         [components.sl]\nenabled = true\nsettings = {{ port = \"{sl}\" }}\n\
         grant = {{ secrets = [\"HOOK_SECRET\"] }}\n"
    ));
    for name in ["gh", "sl"] {
        cli_ok(&home, &["adapters", "approve", name]).await;
        cli_ok(&home, &["access", "allow", name, "42"]).await;
    }
    (home, gh, sl)
}

#[tokio::test]
async fn only_signed_fresh_unreplayed_requests_reach_the_adapter_and_it_never_sees_the_secret() {
    let (home, gh, sl) = home_with_signed_routes().await;
    let mut session = Session::start(&home).await;
    logged(&session, &format!("at http://0.0.0.0:{gh}/")).await;
    logged(&session, &format!("at http://127.0.0.1:{sl}/")).await;

    // GitHub style, with a public host name (as through a tunnel): accepted
    // once, and what the adapter saw reaches the session.
    let body = br#"{"zen":"Design for failure.","hook_id":1}"#;
    let signature = format!("sha256={}", hmac_hex(body));
    let signed = [
        ("Host", "hooks.example.com"),
        ("X-GitHub-Event", "ping"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    let reply = http(gh, "POST", "/payload?x=1", &signed, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(seen["path"], "/payload?x=1");
    assert_eq!(seen["body"], String::from_utf8_lossy(body).as_ref());
    let names: Vec<&str> = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert!(names.contains(&"x-github-event"), "{names:?}");
    assert!(
        !names.contains(&"x-hub-signature-256"),
        "the signature is withheld: {names:?}"
    );
    let event = session.event().await;
    assert_eq!(event["meta"]["chat_id"], "gh:hook", "{event}");
    assert!(
        event["content"]
            .as_str()
            .unwrap()
            .contains("Design for failure."),
        "{event}"
    );

    // The same request again is a replay; a changed body, a wrong key, no
    // header, a malformed one: each 401, with what failed.
    let wrong = format!("sha256={}", "0".repeat(64));
    for (headers, body, says) in [
        (signed.to_vec(), &body[..], "already accepted"),
        (
            signed.to_vec(),
            br#"{"zen":"Design for success.","hook_id":1}"#,
            "does not match",
        ),
        (
            vec![("X-Hub-Signature-256", wrong.as_str())],
            body,
            "does not match",
        ),
        (
            vec![("X-GitHub-Event", "ping")],
            body,
            "no signature header",
        ),
        (vec![("X-Hub-Signature-256", "sha1=abc")], body, "malformed"),
    ] {
        let reply = http(gh, "POST", "/", &headers, body).await;
        assert_eq!(reply.status, 401, "{headers:?}: {}", reply.body);
        assert!(reply.body.contains(says), "{headers:?}: {}", reply.body);
    }
    // Five failures within a minute raise an alert.
    logged(&session, "ALERT: 5 requests to the gh webhook failed").await;

    // Slack style: fresh and signed is taken; stale, or its timestamp
    // moved, is not.
    let body = b"token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&text=hi";
    let slack = |ts: u64, body: &[u8]| {
        let ts = ts.to_string();
        let mut message = format!("v0:{ts}:").into_bytes();
        message.extend_from_slice(body);
        (ts, format!("v0={}", hmac_hex(&message)))
    };
    let (ts, sig) = slack(unix_now(), body);
    let fresh = [
        ("X-Slack-Request-Timestamp", ts.as_str()),
        ("X-Slack-Signature", sig.as_str()),
    ];
    assert_eq!(http(sl, "POST", "/", &fresh, body).await.status, 200);
    let event = session.event().await;
    assert_eq!(event["meta"]["chat_id"], "sl:hook", "{event}");
    let (old_ts, old_sig) = slack(unix_now() - 600, body);
    let later = (unix_now() + 1).to_string();
    for (headers, says) in [
        (
            vec![
                ("X-Slack-Request-Timestamp", old_ts.as_str()),
                ("X-Slack-Signature", old_sig.as_str()),
            ],
            "too old",
        ),
        (
            vec![
                ("X-Slack-Request-Timestamp", later.as_str()),
                ("X-Slack-Signature", sig.as_str()),
            ],
            "does not match",
        ),
        (
            vec![("X-Slack-Signature", sig.as_str())],
            "no valid timestamp",
        ),
        (fresh.to_vec(), "already accepted"),
    ] {
        let reply = http(sl, "POST", "/", &headers, body).await;
        assert_eq!(reply.status, 401, "{headers:?}: {}", reply.body);
        assert!(reply.body.contains(says), "{headers:?}: {}", reply.body);
    }

    // A request the adapter did not take may be sent again.
    let (ts, sig) = slack(unix_now(), b"fail");
    let failing = [
        ("X-Slack-Request-Timestamp", ts.as_str()),
        ("X-Slack-Signature", sig.as_str()),
    ];
    assert_eq!(http(sl, "POST", "/", &failing, b"fail").await.status, 500);
    assert_eq!(
        http(sl, "POST", "/", &failing, b"fail").await.status,
        500,
        "a retry is no replay"
    );

    // The secret is nowhere the adapter or the session could see it, nor in
    // the log or the database.
    let log = session.log.text();
    session.close().await;
    assert!(!log.contains(SECRET), "{log}");
    for entry in walk(&home.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        let in_file = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
        let is_secret_file = entry.ends_with("secrets/HOOK_SECRET");
        assert_eq!(in_file, is_secret_file, "{}", entry.display());
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn an_unsigned_route_may_not_listen_beyond_loopback() {
    let home = TempHome::new();
    home.drop_in(
        "open",
        &fixture_wasm("hooksee"),
        &manifest("open", "inbound_http = true"),
    );
    let [port] = free_ports();
    home.config(&format!(
        "[components.open]\nenabled = true\nsettings = {{ port = \"{port}\" }}\n\
         grant = {{ bind = \"0.0.0.0\" }}\n"
    ));
    // Refused at approval, with the reason and the fix; nothing listens.
    let (code, out, err) = cli(&home, &["adapters", "approve", "open"]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("bind = \"0.0.0.0\" would open its inbound route"),
        "{err}"
    );
    assert!(err.contains("remove `bind`"), "{err}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // `inspect` says the same before anything runs.
    let wasm = home.path().join("adapters/open.wasm");
    let out = home.airlock(&["inspect", wasm.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("would open its inbound route beyond this machine"),
        "{text}"
    );
}

/// The bundled webhook adapter as `github` (examples/github-webhook): GitHub's
/// own payloads, signed, become messages from the user who caused them.
#[tokio::test]
async fn githubs_deliveries_reach_the_session_through_the_bundled_webhook_adapter() {
    let home = TempHome::new();
    home.drop_in_webhook("github", |_| {
        std::fs::read_to_string(root().join("examples/github-webhook/github.toml")).unwrap()
    });
    home.secret("GITHUB_WEBHOOK_SECRET", SECRET);
    let [port] = free_ports();
    home.config(&format!(
        "[components.github]\nenabled = true\n\
         settings = {{ port = \"{port}\", format = \"github\" }}\n\
         grant = {{ secrets = [\"GITHUB_WEBHOOK_SECRET\"], bind = \"0.0.0.0\" }}\n"
    ));
    cli_ok(&home, &["adapters", "approve", "github"]).await;
    cli_ok(&home, &["access", "allow", "github", "21031067"]).await;
    let mut session = Session::start(&home).await;
    logged(&session, &format!("at http://0.0.0.0:{port}/")).await;

    let payload = |name: &str| {
        std::fs::read(root().join(format!("adapters/webhook/tests/github/{name}.json"))).unwrap()
    };
    let deliver = |event: &'static str, id: &'static str, body: Vec<u8>| async move {
        let signature = format!("sha256={}", hmac_hex(&body));
        let headers = [
            ("Host", "hooks.example.com"),
            ("Content-Type", "application/json"),
            ("User-Agent", "GitHub-Hookshot/044aadd"),
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", id),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        http(port, "POST", "/", &headers, &body).await
    };
    let ping = deliver(
        "ping",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        payload("ping"),
    )
    .await;
    assert_eq!(ping.status, 200, "{}", ping.body);
    assert!(
        session
            .event_within(std::time::Duration::from_millis(300))
            .await
            .is_none()
    );

    let id = "9a2c4f2e-0b7e-11ee-8f0b-7a1d3c5e9f10";
    let opened = deliver("issues", id, payload("issues-opened")).await;
    assert_eq!(opened.status, 202, "{}", opened.body);
    let event = session.event().await;
    assert_eq!(
        event["meta"]["chat_id"], "github:Codertocat/Hello-World",
        "{event}"
    );
    assert_eq!(event["meta"]["user"], "Codertocat", "{event}");
    assert_eq!(
        event["content"],
        "opened issue #1: Spelling error in the README file\n\
         It looks like you accidently spelled 'commit' with two 't's.\n\
         https://github.com/Codertocat/Hello-World/issues/1",
        "{event}"
    );
    // The same delivery again is a replay, refused before the adapter.
    let again = deliver("issues", id, payload("issues-opened")).await;
    assert_eq!(again.status, 401, "{}", again.body);
    session.close().await;
}
