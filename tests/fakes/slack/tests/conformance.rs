//! The fake checked by an independent client: Slack's own Python SDK
//! (`slack_sdk`, pinned), its `WebClient` and built-in `SocketModeClient`,
//! run by `conformance.py` against a fake started here.
//!
//! slack_sdk comes from PyPI, into a virtual environment under `target/`.
//! Where Python or the registry is missing the test says so and skips;
//! under `AIRLOCK_REQUIRE_PYTHON=1` (set by `.ci/run`) it fails instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fake_slack::FakeSlack;

const SDK: &str = "slack_sdk==3.48.0";
const APP_TOKEN: &str = "xapp-1-A0FAKE0001-1-0a1b2c3d4e5f";
const BOT_TOKEN: &str = "xoxb-1-2-0f1e2d3c4b5a";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// A Python with slack_sdk, or why there is none.
fn python_with_sdk() -> Result<PathBuf, String> {
    let venv = workspace().join("target/python-slack");
    let python = venv.join("bin/python");
    let has_sdk = || {
        Command::new(&python)
            .args([
                "-c",
                "import slack_sdk.version as v; assert v.__version__ == '3.48.0'",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_sdk() {
        return Ok(python);
    }
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        SDK,
    ]))?;
    if has_sdk() {
        Ok(python)
    } else {
        Err(format!("{SDK} did not install into {}", venv.display()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_sdk_works_against_the_fake() {
    let python = match python_with_sdk() {
        Ok(python) => python,
        Err(why) if std::env::var_os("AIRLOCK_REQUIRE_PYTHON").is_some_and(|v| v == "1") => {
            panic!("AIRLOCK_REQUIRE_PYTHON=1, and {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED slack_sdk conformance: {why}");
            return;
        }
    };
    let fake = FakeSlack::start(APP_TOKEN, BOT_TOKEN).await;
    fake.add_channel("C0GENERAL1", "general");
    fake.add_user("U0PERSON01", "ada", "Ada Lovelace");
    fake.add_dm("D0PERSON01", "U0PERSON01");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance.py");
    let child = tokio::process::Command::new(python)
        .arg(script)
        .args([fake.base_url().as_str(), APP_TOKEN, BOT_TOKEN])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start conformance.py");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("conformance.py did not finish within 2 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "conformance.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    println!("{stdout}");

    // What the SDK did, as the fake saw it: every Web API call carried the
    // right one of the two tokens.
    for call in fake.calls() {
        if call.method.starts_with('/') || call.fault.is_some() {
            continue;
        }
        let expected = if call.method == "apps.connections.open" {
            APP_TOKEN
        } else {
            BOT_TOKEN
        };
        if call.token.as_deref() != Some(expected) {
            // The script's deliberate mistakes are the only others.
            assert!(
                matches!(
                    call.token.as_deref(),
                    Some("xoxb-wrong") | Some(APP_TOKEN) | Some(BOT_TOKEN)
                ),
                "{call:?}"
            );
        }
    }
}
