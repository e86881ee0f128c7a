//! The Claude Code plugin: its manifests agree with each other and with the
//! bundled adapters, and its launcher either runs airlock or, when there is
//! no binary, answers the MCP handshake with the way to build one (driven by
//! the rmcp client, as Claude Code would hold it).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rmcp::model::CallToolRequestParams;
use rmcp::service::ClientLifecycleMode;
use serde_json::Value;

use crate::session::Session;
use crate::support::*;

fn json(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The launcher copied into a fresh plugin folder (so that no release build
/// of this checkout is found beside it), and a command that runs it with
/// nothing of this machine's environment but the system's PATH.
fn launcher_in(dir: &Path) -> tokio::process::Command {
    let bin = dir.join("plugin").join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let launcher = bin.join("airlock-launch");
    std::fs::copy(root().join("bin/airlock-launch"), &launcher).unwrap();
    let home = dir.join("user");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = tokio::process::Command::new(launcher);
    cmd.arg("serve")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn without_a_binary_the_launcher_says_how_to_build_one_through_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let session =
        Session::start_command(launcher_in(dir.path()), ClientLifecycleMode::Initialize).await;
    let instructions = session.instructions();
    assert!(
        instructions.contains("airlock is not built"),
        "{instructions}"
    );
    assert!(
        instructions.contains("cargo install --locked --path"),
        "{instructions}"
    );
    assert!(session.tool_names().await.is_empty());
    let call = CallToolRequestParams::new("reply");
    let refused = tokio::time::timeout(SOON, session.client.call_tool(call))
        .await
        .expect("tools/call did not answer")
        .expect_err("a tool of an airlock that is not built cannot succeed");
    assert!(refused.to_string().contains("cargo install"), "{refused}");
    let log = session.log.clone();
    session.close().await;
    assert!(
        log.text()
            .contains("airlock: not started: no airlock binary on PATH"),
        "{}",
        log.text()
    );
}

#[tokio::test]
async fn a_binary_named_in_airlock_bin_is_not_answered_for_but_run() {
    let dir = tempfile::tempdir().unwrap();
    let home = TempHome::new();
    let mut cmd = launcher_in(dir.path());
    cmd.env("AIRLOCK_BIN", env!("CARGO_BIN_EXE_airlock"))
        .env("AIRLOCK_HOME", home.path())
        .env("NO_COLOR", "1");
    let session = Session::start_command(cmd, ClientLifecycleMode::Initialize).await;
    assert!(!session.instructions().contains("not built"));
    assert!(session.tool_names().await.contains(&"reply".to_string()));
    session.close().await;
}

#[tokio::test]
async fn a_binary_on_path_is_found_and_a_bad_airlock_bin_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let on_path = dir.path().join("path");
    std::fs::create_dir_all(&on_path).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_airlock"), on_path.join("airlock")).unwrap();
    let home = TempHome::new();
    let mut cmd = launcher_in(dir.path());
    cmd.env("PATH", format!("{}:/usr/bin:/bin", on_path.display()))
        .env("AIRLOCK_HOME", home.path())
        .env("NO_COLOR", "1");
    let session = Session::start_command(cmd, ClientLifecycleMode::Initialize).await;
    assert!(session.tool_names().await.contains(&"reply".to_string()));
    session.close().await;

    // An AIRLOCK_BIN that is not there is said, not skipped silently.
    let mut cmd = launcher_in(dir.path());
    cmd.env("AIRLOCK_BIN", dir.path().join("missing"));
    let session = Session::start_command(cmd, ClientLifecycleMode::Initialize).await;
    let instructions = session.instructions();
    assert!(
        instructions.contains("is not an executable file"),
        "{instructions}"
    );
    let log = session.log.clone();
    session.close().await;
    assert!(
        log.text().contains("missing is not an executable file"),
        "{}",
        log.text()
    );
}

#[test]
fn the_plugin_files_agree_with_each_other_and_with_the_bundled_adapters() {
    let plugin = json(".claude-plugin/plugin.json");
    let marketplace = json(".claude-plugin/marketplace.json");
    let mcp = json(".mcp.json");

    // One server, started by the launcher, which ships executable.
    let server = &mcp["mcpServers"]["airlock"];
    let command = server["command"].as_str().unwrap();
    let relative = command
        .strip_prefix("${CLAUDE_PLUGIN_ROOT:-.}/")
        .unwrap_or_else(|| panic!("{command} is not relative to the plugin"));
    let mode = std::fs::metadata(root().join(relative))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "{relative} is not executable");
    assert!(
        plugin.get("mcpServers").is_none(),
        "a second definition of the server"
    );
    assert_eq!(plugin["channels"][0]["server"], "airlock");

    // The marketplace lists this plugin, at this folder, with its version.
    let listed = &marketplace["plugins"][0];
    assert_eq!(listed["name"], plugin["name"]);
    assert_eq!(listed["source"], "./");
    assert_eq!(listed["version"], plugin["version"]);

    // The licence the workspace names is there in full.
    assert_eq!(plugin["license"], "Apache-2.0");
    let licence = std::fs::read_to_string(root().join("LICENSE")).unwrap();
    assert!(licence.trim_start().starts_with("Apache License") && licence.contains("Version 2.0"));

    // The icon is a square PNG of 512 to 2048 pixels, under 2 MB.
    let icon = std::fs::read(root().join(".claude-plugin/icon.png")).unwrap();
    assert!(icon.len() < 2 << 20);
    assert_eq!(&icon[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&icon[12..16], b"IHDR");
    let width = u32::from_be_bytes(icon[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(icon[20..24].try_into().unwrap());
    assert!(
        width == height && (512..=2048).contains(&width),
        "{width}x{height}"
    );

    // Every host a bundled adapter may reach is declared, the same in both files.
    let hosts = |v: &Value| -> Vec<String> {
        v["network"]["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect()
    };
    let declared = hosts(&plugin);
    assert_eq!(declared, hosts(server));
    for entry in std::fs::read_dir(root().join("adapters")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest: toml::Value =
            toml::from_str(&std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap())
                .unwrap();
        for key in ["outbound_http", "websocket"] {
            for destination in manifest
                .get(key)
                .and_then(|d| d.as_array())
                .into_iter()
                .flatten()
            {
                let url = destination.as_str().unwrap();
                let host = url.split_once("://").unwrap().1;
                if host.ends_with(".invalid") {
                    continue;
                }
                assert!(
                    declared.iter().any(|d| d == host),
                    "{name}: {host} is not under network.hosts"
                );
            }
        }
    }
    let fakechat = format!("127.0.0.1:{}", airlock::serve::FAKECHAT_PORT);
    assert!(
        declared.contains(&fakechat),
        "fakechat's page {fakechat} is not declared"
    );
}
