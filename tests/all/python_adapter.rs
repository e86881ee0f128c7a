//! The adapter written in Python (`examples/python-adapter`), built here
//! with componentize-py and run through the same sandbox as any drop-in:
//! inspected, approved, and driven end to end through the real binary.
//!
//! componentize-py comes from PyPI (`build.sh` installs it into a virtual
//! environment under `target/`). Where Python or the registry is missing
//! the test says so and skips; `.ci/run` sets `AIRLOCK_REQUIRE_PYTHON=1`,
//! which turns that skip into a failure, so CI always runs it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::session::*;
use crate::support::*;

/// The built component, or why it could not be built here.
fn build() -> Result<PathBuf, String> {
    let out = root().join("target/python-adapter/pyinbox.wasm");
    let run = Command::new(root().join("examples/python-adapter/build.sh"))
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run examples/python-adapter/build.sh: {e}"))?;
    if run.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "examples/python-adapter/build.sh failed:\n{}",
            String::from_utf8_lossy(&run.stderr)
        ))
    }
}

/// The component, or `None` after saying why the test is skipped.
fn built_or_skip() -> Option<PathBuf> {
    match build() {
        Ok(wasm) => Some(wasm),
        Err(why) if std::env::var_os("AIRLOCK_REQUIRE_PYTHON").is_some_and(|v| v == "1") => {
            panic!("AIRLOCK_REQUIRE_PYTHON=1, and {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED python_adapter: {why}");
            None
        }
    }
}

#[tokio::test]
async fn a_python_adapter_is_inspected_approved_and_carries_messages_both_ways() {
    let Some(wasm) = built_or_skip() else {
        return;
    };
    let home = TempHome::new();
    let manifest =
        std::fs::read_to_string(root().join("examples/python-adapter/pyinbox.toml")).unwrap();
    home.drop_in("pyinbox", &wasm, &manifest);
    let [port] = free_ports();
    home.config(&format!(
        "[components.pyinbox]\nenabled = true\nsettings = {{ port = \"{port}\" }}\n"
    ));

    // Inspected like any third-party component: what it imports (no
    // websocket, no WASI), what it would be granted, and its instructions,
    // which come from running its describe() in the sandbox.
    let dropped = home.path().join("adapters/pyinbox.wasm");
    let inspect = home.airlock(&["inspect", dropped.to_str().unwrap()]);
    let report = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        report.contains("verdict     LOADS once approved"),
        "{report}"
    );
    assert!(
        report.contains("ok        airlock:channel/kv@0.1.0"),
        "{report}"
    );
    assert!(!report.contains("websocket@"), "{report}");
    assert!(!report.contains("wasi:"), "{report}");
    assert!(report.contains("kv             1048576 bytes"), "{report}");
    assert!(
        report.contains("[pyinbox] pyinbox chats are HTTP clients"),
        "{report}"
    );
    cli_ok(&home, &["adapters", "approve", "pyinbox"]).await;
    cli_ok(&home, &["access", "allow", "pyinbox", "42"]).await;

    let mut session = Session::start(&home).await;
    assert!(
        session
            .instructions()
            .contains("pyinbox chats are HTTP clients"),
        "{}",
        session.instructions()
    );
    let token = session.log.token(port).await;
    let post = |body: Value| {
        let token = token.clone();
        async move {
            http(
                port,
                "POST",
                &format!("/?token={token}"),
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await
        }
    };

    // In: a posted message reaches the session, from the sender it names.
    let accepted =
        post(json!({"chat": "ops", "user_id": "42", "user": "Ada", "text": "hello from a client"}))
            .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    assert_eq!(accepted.json()["id"], "m1");
    let event = session.event().await;
    assert_eq!(event["meta"]["chat_id"], "pyinbox:ops", "{event}");
    assert_eq!(event["meta"]["message_id"], "m1", "{event}");
    assert_eq!(event["meta"]["user"], "Ada", "{event}");
    assert_eq!(event["content"], "hello from a client", "{event}");

    // Bad input gets a 400 that says what is wrong, from the Python code.
    for (body, says) in [
        (json!("just a string"), "expected a JSON object"),
        (
            json!({"chat": "ops", "user_id": 42, "text": "x"}),
            "must all be strings",
        ),
        (
            json!({"chat": "", "user_id": "42", "text": "x"}),
            "must not be empty",
        ),
    ] {
        let refused = post(body.clone()).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert!(
            refused.json()["error"].as_str().unwrap().contains(says),
            "{}",
            refused.body
        );
    }
    // A sender nobody allowed is dropped by the host before the session.
    assert_eq!(
        post(json!({"chat": "ops", "user_id": "99", "text": "let me in"}))
            .await
            .status,
        202
    );

    // Out: a reply waits in the adapter's store until the client collects
    // it, once.
    let (is_error, text) = outcome(
        &session
            .call(
                "reply",
                json!({"chat_id": "pyinbox:ops", "text": "hello back", "reply_to": "m1"}),
            )
            .await,
    );
    assert!(!is_error, "{text}");
    let replies_of = format!("/replies?chat=ops&token={token}");
    let collect = || http(port, "GET", &replies_of, &[], b"");
    let collected = collect().await;
    assert_eq!(collected.status, 200, "{}", collected.body);
    assert_eq!(
        collected.json()["replies"],
        json!([{"id": "r1", "text": "hello back", "reply_to": "m1", "format": "plain"}])
    );
    assert_eq!(collect().await.json()["replies"], json!([]));
    // Another chat's replies are its own.
    let other = http(
        port,
        "GET",
        &format!("/replies?chat=op&token={token}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(other.json()["replies"], json!([]));

    // The route's token still guards every request.
    let anonymous = http(port, "GET", "/replies?chat=ops", &[], b"").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);

    // What it does not do (its describe() lists no features), the host
    // refuses by its name before calling it.
    let (is_error, text) = outcome(
        &session
            .call(
                "reply",
                json!({"chat_id": "pyinbox:ops", "text": "pick", "buttons": [[{"label": "a", "data": "a"}]]}),
            )
            .await,
    );
    assert!(is_error, "{text}");
    assert!(text.contains("pyinbox does not support buttons"), "{text}");

    // Only the allowed sender's message reached the session.
    assert!(
        session
            .event_within(std::time::Duration::from_millis(300))
            .await
            .is_none()
    );
    session.close().await;
}
