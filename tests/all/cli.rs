//! The command line, driven as a user would: `inspect` and `adapters`.

use crate::support::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Copy a fixture and a manifest into a scratch dir, as a user would have it.
fn scratch(home: &TempHome, name: &str, manifest_text: &str) -> std::path::PathBuf {
    let dir = home.dir.path().join("work");
    std::fs::create_dir_all(&dir).unwrap();
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::copy(fixture_wasm(&name.replace('-', "_")), &wasm).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), manifest_text).unwrap();
    wasm
}

#[test]
fn inspect_refuses_sockets_with_the_import_named() {
    let home = TempHome::new();
    let wasm = scratch(&home, "sockets", &manifest("sockets", ""));
    let out = home.airlock(&["inspect", wasm.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("REFUSED   wasi:sockets/"), "{text}");
    assert!(text.contains("raw sockets are never granted"), "{text}");
    assert!(text.contains("verdict     REFUSED"), "{text}");
}

#[test]
fn inspect_refuses_filesystem_preopens() {
    let home = TempHome::new();
    let wasm = scratch(&home, "preopens", &manifest("preopens", ""));
    let out = home.airlock(&["inspect", wasm.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REFUSED   wasi:filesystem/preopens"),
        "{text}"
    );
    assert!(text.contains("components get no filesystem"), "{text}");
}

#[test]
fn inspect_names_the_manifest_entry_for_http() {
    let home = TempHome::new();
    let wasm = scratch(&home, "egress", &manifest("egress", ""));
    let text = stdout(&home.airlock(&["inspect", wasm.to_str().unwrap()]));
    assert!(
        text.contains("REFUSED   wasi:http/outgoing-handler"),
        "{text}"
    );
    assert!(
        text.contains("outbound_http = [\"https://host\"]"),
        "{text}"
    );

    let granted = manifest(
        "egress",
        "outbound_http = [\"https://api.example.com\"]\n[[secrets]]\nname = \"EXAMPLE_TOKEN\"\ndestination = \"https://api.example.com\"\nheader = \"Authorization\"\nvalue = \"Bearer {secret}\"",
    );
    let wasm = scratch(&home, "egress", &granted);
    let out = home.airlock(&["inspect", wasm.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ok        wasi:http/outgoing-handler"),
        "{text}"
    );
    assert!(text.contains("secret         EXAMPLE_TOKEN → https://api.example.com as header Authorization: Bearer {secret}"), "{text}");
    assert!(text.contains("verdict     LOADS"), "{text}");
}

#[test]
fn inspect_refuses_a_precompiled_artefact() {
    let home = TempHome::new();
    let host = home.host();
    let engine = host.engine.clone();
    let wasm = std::fs::read(fixture_wasm("busy_loop")).unwrap();
    let cwasm = engine.precompile_component(&wasm).unwrap();
    let path = home.dir.path().join("busy-loop.wasm");
    std::fs::write(&path, cwasm).unwrap();
    drop(host);
    let out = home.airlock(&["inspect", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("precompiled"), "{text}");
}

#[test]
fn drop_in_needs_approval_and_a_change_needs_it_again() {
    let home = TempHome::new();
    home.drop_in(
        "busy-loop",
        &fixture_wasm("busy_loop"),
        &manifest("busy-loop", ""),
    );
    let list = stdout(&home.airlock(&["adapters", "list"]));
    assert!(
        list.contains("busy-loop") && list.contains("not approved"),
        "{list}"
    );
    assert!(
        list.contains("airlock adapters approve busy-loop"),
        "{list}"
    );

    let out = home.airlock(&["adapters", "approve", "busy-loop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = stdout(&home.airlock(&["adapters", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("busy-loop") && l.ends_with("approved")),
        "{list}"
    );

    // Swap the wasm for another component under the same name.
    std::fs::copy(
        fixture_wasm("probe"),
        home.path().join("adapters/busy-loop.wasm"),
    )
    .unwrap();
    let list = stdout(&home.airlock(&["adapters", "list"]));
    assert!(
        list.contains("REFUSED: its wasm changed since it was approved"),
        "{list}"
    );
    let host = home.host();
    let (candidates, _) = host.candidates().unwrap();
    let c = candidates.iter().find(|c| c.name == "busy-loop").unwrap();
    let err = host
        .load(c)
        .err()
        .expect("changed wasm must not load")
        .to_string();
    assert!(err.contains("airlock adapters approve busy-loop"), "{err}");
    drop(host);

    // A widened manifest is a change too.
    home.airlock(&["adapters", "approve", "busy-loop"]);
    std::fs::write(
        home.path().join("adapters/busy-loop.toml"),
        manifest("busy-loop", "kv_quota_bytes = 1000000"),
    )
    .unwrap();
    let list = stdout(&home.airlock(&["adapters", "list"]));
    assert!(list.contains("its manifest changed"), "{list}");

    let out = home.airlock(&["adapters", "remove", "busy-loop"]);
    assert!(out.status.success());
    assert!(!home.path().join("adapters/busy-loop.wasm").exists());
    let list = stdout(&home.airlock(&["adapters", "list"]));
    assert!(!list.contains("busy-loop"), "{list}");
}

#[test]
fn approve_refuses_a_component_that_could_not_load() {
    let home = TempHome::new();
    home.drop_in(
        "sockets",
        &fixture_wasm("sockets"),
        &manifest("sockets", ""),
    );
    let out = home.airlock(&["adapters", "approve", "sockets"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wasi:sockets"), "{err}");
}

#[test]
fn a_dropped_in_cwasm_is_listed_as_refused() {
    let home = TempHome::new();
    std::fs::create_dir_all(home.path().join("adapters")).unwrap();
    std::fs::write(home.path().join("adapters/fast.cwasm"), b"whatever").unwrap();
    let list = stdout(&home.airlock(&["adapters", "list"]));
    assert!(
        list.contains("fast.cwasm") && list.contains("precompiled artefacts are refused"),
        "{list}"
    );
}

#[test]
fn bundled_components_are_listed_and_load() {
    let home = TempHome::new();
    let list = stdout(&home.airlock(&["adapters", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("webhook") && l.contains("bundled")),
        "{list}"
    );
    let host = home.host();
    for c in airlock::catalog::bundled_candidates() {
        host.load(&c)
            .unwrap_or_else(|e| panic!("bundled {} does not load: {e}", c.name));
    }
}

#[test]
fn inspect_gives_every_fixture_a_verdict() {
    let home = TempHome::new();
    for entry in std::fs::read_dir(root().join("tests/fixtures")).unwrap() {
        // A component's name: `tests/fixtures/busy_loop` is `busy-loop`.
        let name = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .replace('_', "-");
        // Every fixture is an adapter but `redirect` and `amnesia`, filters.
        let declared = match name.as_str() {
            "redirect" | "amnesia" => {
                format!("name = \"{name}\"\nkind = \"filter\"\napi = \"0.1\"\n")
            }
            _ => manifest(&name, ""),
        };
        let wasm = scratch(&home, &name, &declared);
        let text = stdout(&home.airlock(&["inspect", wasm.to_str().unwrap()]));
        let verdict = text
            .lines()
            .find(|l| l.starts_with("verdict"))
            .unwrap_or_else(|| panic!("{name}: {text}"));
        // These import what an empty manifest does not grant.
        let expected_refused = matches!(
            name.as_str(),
            "sockets" | "preopens" | "egress" | "stateful" | "wsecho"
        );
        assert_eq!(
            verdict.contains("REFUSED"),
            expected_refused,
            "{name}: {verdict}"
        );
    }
}

#[test]
fn inspect_by_bundled_name() {
    let home = TempHome::new();
    let out = home.airlock(&["inspect", "webhook"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("approval    bundled with airlock"), "{text}");
    assert!(text.contains("verdict     LOADS"), "{text}");
    let out = home.airlock(&["inspect", "no-such-thing"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bundled: "));
}

#[test]
fn inspect_output_cannot_be_forged_by_the_manifest() {
    let home = TempHome::new();
    // A manifest that tries to clear the screen and print its own verdict.
    let evil = "name = \"busy-loop\"\nkind = \"adapter\"\napi = \"0.1\"\ndescription = \"ok\\u001b[2J\\nverdict     LOADS\"\n";
    let wasm = scratch(&home, "busy-loop", evil);
    let out = home.airlock(&["inspect", wasm.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines().filter(|l| l.starts_with("verdict")).count() == 1,
        "{text}"
    );
    assert!(text.contains("description must be one line"), "{text}");
}

#[test]
fn approve_can_insist_on_the_reviewed_digest() {
    let home = TempHome::new();
    home.drop_in(
        "busy-loop",
        &fixture_wasm("busy_loop"),
        &manifest("busy-loop", ""),
    );
    let out = home.airlock(&[
        "adapters",
        "approve",
        "busy-loop",
        "--sha256",
        &"0".repeat(64),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inspect it again"));
    let digest =
        airlock::runtime::cache::sha256_hex(&std::fs::read(fixture_wasm("busy_loop")).unwrap());
    let out = home.airlock(&["adapters", "approve", "busy-loop", "--sha256", &digest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
