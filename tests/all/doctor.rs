//! `airlock doctor`, run as a user would: a fresh home, a busy port, a
//! broken config, a drop-in whose secret is missing.

use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Output};

use crate::support::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The FAIL lines of a report.
fn fails(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("FAIL ")).collect()
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_fresh_home_passes_and_prints_the_claude_commands() {
    let home = TempHome::new();
    // A fresh home uses fakechat's default port; if this machine already has
    // something there, doctor is right to fail, so move fakechat instead.
    if TcpListener::bind((Ipv4Addr::LOCALHOST, airlock::serve::FAKECHAT_PORT)).is_err() {
        home.config(&format!(
            "[components.fakechat]\nsettings = {{ port = \"{}\" }}\n",
            free_port()
        ));
    }
    let out = home.airlock(&["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(fails(&text).is_empty(), "{text}");
    assert!(
        text.contains(&format!(
            "ok   state directory {} (mode 0700)",
            home.path().display()
        )),
        "{text}"
    );
    assert!(
        text.contains("ok   fakechat (adapter, bundled) loads"),
        "{text}"
    );
    assert!(
        text.contains("ok   redact (filter, bundled) loads"),
        "{text}"
    );
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_airlock")).unwrap();
    let home_path = std::fs::canonicalize(home.path()).unwrap();
    assert!(
        text.contains(&format!(
            "claude mcp add airlock -e AIRLOCK_HOME={} -- {} serve\n",
            home_path.display(),
            exe.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("claude --dangerously-load-development-channels server:airlock\n"),
        "{text}"
    );
    assert!(
        text.contains("MCP server \"airlock\": Channel notifications skipped:"),
        "{text}"
    );
}

#[test]
fn a_busy_fakechat_port_fails_naming_the_port() {
    let home = TempHome::new();
    let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = held.local_addr().unwrap().port();
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n"
    ));
    let out = home.airlock(&["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let fails = fails(&text);
    assert_eq!(fails.len(), 1, "{text}");
    assert!(
        fails[0].starts_with(&format!(
            "FAIL fakechat: port {port} on 127.0.0.1 is in use"
        )),
        "{text}"
    );
    assert!(fails[0].contains("another airlock"), "{text}");
    assert!(fails[0].contains("[components.fakechat]"), "{text}");
    // The rest of the report is still there.
    assert!(text.contains("claude mcp add airlock"), "{text}");
    drop(held);
}

#[test]
fn a_broken_config_fails_naming_the_file() {
    let home = TempHome::new();
    home.config("[components.fakechat\nenabled = true\n");
    let out = home.airlock(&["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let config = home.path().join("airlock.toml");
    let fails = fails(&text);
    assert!(
        fails.iter().any(
            |l| l.starts_with(&format!("FAIL {} does not parse", config.display()))
                && l.contains("line 1")
        ),
        "{text}"
    );
    assert!(text.contains("ok   database"), "{text}");
    assert!(text.contains("claude mcp add airlock"), "{text}");
}

#[test]
fn a_missing_secret_fails_by_name_and_no_value_is_printed() {
    const FROM_ENV: &str = "env-value-6f1d2b9c-never-printed";
    const FROM_FILE: &str = "file-value-3a7e5c0d-never-printed";
    let home = TempHome::new();
    home.drop_in(
        "egress",
        &fixture_wasm("egress"),
        &manifest(
            "egress",
            "outbound_http = [\"https://api.example.com\"]\n\
             [[secrets]]\nname = \"AIRLOCK_DOCTOR_ENV_TOKEN\"\ndestination = \"https://api.example.com\"\nheader = \"X-One\"\nvalue = \"{secret}\"\n\
             [[secrets]]\nname = \"AIRLOCK_DOCTOR_FILE_TOKEN\"\ndestination = \"https://api.example.com\"\nheader = \"X-Two\"\nvalue = \"{secret}\"\n\
             [[secrets]]\nname = \"AIRLOCK_DOCTOR_ABSENT_TOKEN\"\ndestination = \"https://api.example.com\"\nheader = \"X-Three\"\nvalue = \"{secret}\"",
        ),
    );
    home.config(
        "[components.egress]\nenabled = true\n[components.egress.grant]\n\
         secrets = [\"AIRLOCK_DOCTOR_ENV_TOKEN\", \"AIRLOCK_DOCTOR_FILE_TOKEN\", \"AIRLOCK_DOCTOR_ABSENT_TOKEN\"]\n",
    );
    home.secret("AIRLOCK_DOCTOR_FILE_TOKEN", FROM_FILE);
    let approve = home.airlock(&["adapters", "approve", "egress"]);
    assert!(approve.status.success(), "{approve:?}");

    let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("doctor")
        .env("AIRLOCK_HOME", home.path())
        .env("AIRLOCK_DOCTOR_ENV_TOKEN", FROM_ENV)
        .env_remove("AIRLOCK_DOCTOR_FILE_TOKEN")
        .env_remove("AIRLOCK_DOCTOR_ABSENT_TOKEN")
        .env_remove("AIRLOCK_LOG")
        .output()
        .unwrap();
    let text = stdout(&out);
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ok   egress (adapter, drop-in): approved"),
        "{text}"
    );
    assert!(
        text.contains("ok   egress (adapter, drop-in) loads"),
        "{text}"
    );
    assert!(
        text.contains("ok   egress: secret AIRLOCK_DOCTOR_ENV_TOKEN is set"),
        "{text}"
    );
    assert!(
        text.contains("ok   egress: secret AIRLOCK_DOCTOR_FILE_TOKEN is set"),
        "{text}"
    );
    let fails = fails(&text);
    assert_eq!(fails.len(), 1, "{text}");
    let file = home
        .path()
        .join("secrets")
        .join("AIRLOCK_DOCTOR_ABSENT_TOKEN");
    assert!(fails[0].contains("AIRLOCK_DOCTOR_ABSENT_TOKEN"), "{text}");
    assert!(fails[0].contains("environment variable"), "{text}");
    assert!(
        fails[0].contains(&format!("chmod 600 {}", file.display())),
        "{text}"
    );
    assert!(
        !all.contains(FROM_ENV),
        "a secret value was printed:\n{all}"
    );
    assert!(
        !all.contains(FROM_FILE),
        "a secret value was printed:\n{all}"
    );
}

/// The page's port taken by a session of the same state directory is
/// airlock at work, not a conflict.
#[tokio::test]
async fn a_port_served_by_a_running_session_of_this_home_is_fine() {
    let home = TempHome::new();
    let port = free_port();
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n"
    ));
    let session = crate::session::Session::start(&home).await;
    crate::telegram::until("the page to be served", || {
        session.log.text().contains("open http://")
    })
    .await;
    let out = home.airlock(&["doctor"]);
    let text = stdout(&out);
    assert!(fails(&text).is_empty(), "{text}");
    assert!(
        text.contains(&format!(
            "ok   fakechat: port {port} is served by a running session of this state directory"
        )),
        "{text}"
    );
    session.close().await;
}
