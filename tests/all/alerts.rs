//! Alerts that components cause, through the real binary: a request the
//! grant refuses and a component whose imports the grant refuses are raised
//! in a running `airlock serve`, logged, and recorded where `airlock access
//! status --json` shows them.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::session::*;
use crate::support::*;

/// The bot token airlock holds; the refused requests never carry it.
const TOKEN: &str = "123456789:AAEkAlertTestTokenNeverSentAnywhere1";

/// `airlock access status --json` on `home`.
async fn status(home: &TempHome) -> Value {
    let (code, out, err) = cli(home, &["access", "status", "--json"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The first alert of `kind` in `alerts` (an `alerts_24h` array) for which
/// `pick` holds.
fn find(alerts: &Value, kind: &str, pick: impl Fn(&str) -> bool) -> Option<Value> {
    alerts.as_array()?.iter().find_map(|a| {
        (a["kind"] == kind && a["text"].as_str().is_some_and(&pick)).then(|| a.clone())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_egress_and_refused_imports_are_alerts_in_access_status() {
    let home = TempHome::new();
    home.secret("TELEGRAM_BOT_TOKEN", TOKEN);
    // Telegram's API base is a destination its grant does not allow: every
    // request it makes (the host's long poll on its behalf) is refused.
    // `sockets` imports raw sockets, which no grant allows.
    home.config(
        "[components.telegram]\nenabled = true\n\
         settings = { api_base = \"https://evil.example\", poll_timeout_s = \"2\" }\n\
         [components.sockets]\nenabled = true\n",
    );
    home.drop_in(
        "sockets",
        &fixture_wasm("sockets"),
        &manifest("sockets", ""),
    );
    {
        let host = home.host();
        let (candidates, _) = host.candidates().unwrap();
        let c = candidates.iter().find(|c| c.name == "sockets").unwrap();
        airlock::approvals::approve(&host.db, "sockets", &c.wasm_sha256(), &c.manifest_sha256())
            .unwrap();
    }
    let session = Session::start(&home).await;

    // The dispatcher records an alert some 2 s after it is raised.
    let deadline = Instant::now() + STARTUP;
    let (egress, imports) = loop {
        let s = status(&home).await;
        let egress = find(
            &s["adapters"]["telegram"]["alerts_24h"],
            "capability_denied",
            |t| t.contains("egress"),
        );
        let imports = find(&s["alerts_24h"], "capability_denied", |t| {
            t.starts_with("sockets ")
        });
        if let (Some(e), Some(i)) = (&egress, &imports) {
            break (e.clone(), i.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no capability_denied alerts yet: {s:#}\nstderr:\n{}",
            session.log.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    assert_eq!(egress["adapter"], "telegram", "{egress}");
    assert_eq!(
        egress["text"],
        "telegram was refused egress to https://evil.example (not in its grant); \
         the request did not go out",
        "{egress}"
    );
    assert!(egress["count"].as_u64().unwrap() >= 1, "{egress}");
    // A component that did not start concerns every adapter's owners.
    assert!(imports["adapter"].is_null(), "{imports}");
    let text = imports["text"].as_str().unwrap();
    assert!(
        text.starts_with("sockets was not started: its grant refuses what it imports (")
            && text.contains("wasi:sockets/"),
        "{text}"
    );

    let log = session.log.text();
    assert!(
        log.contains("ALERT: telegram was refused egress to https://evil.example"),
        "{log}"
    );
    assert!(
        !log.contains("AlertTestToken"),
        "the token reached stderr:\n{log}"
    );
    session.close().await;
}
