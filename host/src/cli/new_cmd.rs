//! `airlock new adapter NAME`: a Rust adapter crate to start from.
//!
//! The crate builds on its own (its own `[workspace]`, a toolchain file that
//! brings the `wasm32-wasip2` target) against the guest SDK of the checkout
//! this airlock was built from, or the one `--sdk` names. It holds a working
//! adapter (an inbound route that turns a POSTed JSON message into a chat
//! message, and a `send` that logs), its manifest, a native unit test and a
//! README; `airlock try --adapter DIR` builds it and runs it at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::manifest::valid_name;

/// Where the guest SDK was when this binary was built.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Writes the crate for adapter `name` into `parent/name`; prints what it
/// made and what to run next.
pub fn run(name: &str, parent: &Path, sdk: Option<&Path>) -> anyhow::Result<ExitCode> {
    if !valid_name(name) {
        bail!(
            "{name:?} is not a component name: use 1-64 lowercase letters, digits or '-', \
             starting with a letter (e.g. `airlock new adapter my-chat`)"
        );
    }
    let sdk = find_sdk(sdk)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists; pick another name, or another place with --dir",
            dir.display()
        );
    }
    let files = files(name, &sdk);
    for (relative, text) in &files {
        let path = dir.join(relative);
        if let Some(up) = path.parent() {
            std::fs::create_dir_all(up)
                .with_context(|| format!("cannot create {}", up.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("created adapter {name} in {}:", dir.display());
    let width = files.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    for (relative, _) in &files {
        println!("  {relative:<width$}  {}", describe(relative));
    }
    println!();
    println!("next:");
    println!(
        "  airlock access allow {name} 42   # let the sample sender in (airlock drops strangers)"
    );
    println!(
        "  airlock try --adapter {}   # builds it and runs it in this terminal",
        crate::text::shell_quote(&dir.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

/// The SDK to build against: `--sdk`, else the one beside this binary's
/// source. The error says how to point at one.
fn find_sdk(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidate = given.map_or_else(|| PathBuf::from(BUILT_SDK), Path::to_path_buf);
    let manifest = candidate.join("Cargo.toml");
    let is_sdk =
        std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("name = \"airlock-guest\""));
    if !is_sdk {
        bail!(
            "no airlock guest SDK at {} (its Cargo.toml names no `airlock-guest`); pass \
             --sdk PATH/TO/airlock/guest-sdk from a checkout of airlock",
            candidate.display()
        );
    }
    candidate
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", candidate.display()))
}

/// One line on what each file is for.
fn describe(relative: &str) -> &'static str {
    match relative {
        "Cargo.toml" => "the crate (a cdylib, its own workspace)",
        "rust-toolchain.toml" => "brings the wasm32-wasip2 target",
        "src/lib.rs" => "the adapter, with a unit test",
        "README.md" => "how to build, try, test and install it",
        ".gitignore" => "keeps target/ out of git",
        _ if relative.ends_with(".toml") => "its manifest: what it asks the host for",
        _ => "",
    }
}

/// The crate's files, by path inside it.
fn files(name: &str, sdk: &Path) -> Vec<(String, String)> {
    let fill = |template: &str| {
        template
            .replace("{name}", name)
            .replace("{crate}", &name.replace('-', "_"))
            .replace("{sdk}", &sdk.display().to_string().replace('\\', "/"))
    };
    vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("rust-toolchain.toml".into(), fill(TOOLCHAIN)),
        (format!("{name}.toml"), fill(MANIFEST)),
        ("src/lib.rs".into(), fill(LIB_RS)),
        ("README.md".into(), fill(README)),
        (".gitignore".into(), "/target\n".into()),
    ]
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
airlock-guest = { path = "{sdk}" }
serde = { version = "1", features = ["derive"] }

[profile.release]
opt-level = "s"
lto = true
strip = true

# A crate of its own, even when created inside another workspace.
[workspace]
"#;

const TOOLCHAIN: &str = r#"[toolchain]
channel = "stable"
targets = ["wasm32-wasip2"]
"#;

const MANIFEST: &str = r#"# What the {name} adapter asks the host for. The operator's airlock.toml
# can only narrow it; see "Third-party components" in airlock's README.
name = "{name}"
kind = "adapter"
api = "0.1"
description = "{name}: messages POSTed to its inbound route"
inbound_http = true          # a route on the host's local listener
outbound_http = []           # add the platform's API here, e.g. "https://api.example.com"

[limits]
memory_mib = 32
cpu_ms = 100
wall_ms = 15000
"#;

const LIB_RS: &str = r##"//! The {name} adapter for airlock.
//!
//! Inbound: `POST /` on its route with `{"chat": "...", "user_id": "...",
//! "text": "..."}` becomes one message in a direct chat. Outbound: `send`
//! logs the reply and returns an id; make it call your platform's API (add
//! the API's address to `outbound_http` in {name}.toml, and its token as a
//! `[[secrets]]` entry, which the host injects: the adapter never sees it).

use airlock_guest::serde_json::{self, json};
use airlock_guest::types::{
    AdapterError, Chat, ChatKind, Description, EventBatch, HttpResponse, InboundEvent,
    InboundMessage, IncomingReply, IncomingRequest, OutboundMessage, Sender, Sent,
};
use airlock_guest::{Adapter, log};

/// The operator's settings (`[components.{name}] settings = { ... }`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The inbound route's port; the host binds it.
    pub port: Option<u16>,
}

/// One running instance.
#[derive(Debug, Default)]
pub struct Plugin {
    sent: u64,
}

impl Adapter for Plugin {
    type Settings = Settings;

    fn describe() -> Description {
        Description::text_only("{name}", 4000)
    }

    fn start(_settings: Settings) -> Result<Self, AdapterError> {
        log::info("{name} adapter started");
        Ok(Plugin::default())
    }

    fn on_http_request(&mut self, request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
        let (status, body, events) = match message_from(&request.body, airlock_guest::now_ms()) {
            Ok(message) => (202, json!({"accepted": true}), vec![InboundEvent::Message(message)]),
            Err(why) => (400, json!({"error": why}), Vec::new()),
        };
        Ok(IncomingReply {
            response: HttpResponse::new(status, "application/json", body.to_string()),
            batch: EventBatch { events, cursor: None },
        })
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent, AdapterError> {
        self.sent += 1;
        log::info(&format!("reply to {}: {}", message.chat_id, message.text));
        Ok(Sent::one(format!("{name}-{}", self.sent)))
    }
}

airlock_guest::export_adapter!(Plugin);

/// The fields a POSTed message carries.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Posted {
    chat: String,
    user_id: String,
    text: String,
}

/// The message a POSTed body becomes, or why it cannot.
fn message_from(body: &[u8], now_ms: u64) -> Result<InboundMessage, String> {
    let posted: Posted = serde_json::from_slice(body)
        .map_err(|e| format!("expected {{\"chat\", \"user_id\", \"text\"}}: {e}"))?;
    if posted.chat.is_empty() || posted.user_id.is_empty() {
        return Err("`chat` and `user_id` must not be empty".into());
    }
    Ok(InboundMessage {
        chat: Chat { id: posted.chat, kind: ChatKind::Direct, title: None, parent_id: None },
        sender: Sender { id: posted.user_id, handle: None, display_name: None, is_bot: false },
        message_id: now_ms.to_string(),
        text: posted.text,
        ts_ms: now_ms,
        reply_to: None,
        mentions_bot: true,
        attachments: Vec::new(),
        edited: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posted_message_becomes_a_chat_message_and_a_bad_one_says_why() {
        let m = message_from(br#"{"chat":"ops","user_id":"42","text":"hi"}"#, 7).unwrap();
        assert_eq!((m.chat.id.as_str(), m.sender.id.as_str(), m.text.as_str()), ("ops", "42", "hi"));
        assert_eq!(m.ts_ms, 7);
        for bad in [&b"not json"[..], br#"{"chat":"","user_id":"42","text":"x"}"#, br#"{"text":"x"}"#] {
            assert!(message_from(bad, 7).is_err());
        }
    }
}
"##;

const README: &str = r#"# {name}

An airlock adapter, built as a WebAssembly component that airlock runs in
its sandbox.

```sh
cargo test                                         # the unit tests, natively
airlock try --adapter .                            # build it and run it in this terminal
cargo build --release --target wasm32-wasip2       # just build: target/wasm32-wasip2/release/{crate}.wasm
```

`airlock try` prints the route's URL (with its access token). Post a
message to it and it shows up as the session would see it; a line typed in
the terminal goes back through `send`. airlock drops messages from senders
nobody let in, so allow the sample sender first
(`airlock access allow {name} 42`):

```sh
curl -X POST "http://127.0.0.1:PORT/?token=TOKEN" \
     -d '{"chat": "ops", "user_id": "42", "text": "hello"}'
```

To install it, copy the component and its manifest into the state
directory, look at what it asks for, and approve it:

```sh
cp target/wasm32-wasip2/release/{crate}.wasm ~/.airlock/adapters/{name}.wasm
cp {name}.toml ~/.airlock/adapters/{name}.toml
airlock inspect ~/.airlock/adapters/{name}.wasm
airlock adapters approve {name}
```

and enable it in `~/.airlock/airlock.toml`:

```toml
[components.{name}]
enabled = true
settings = { port = "8790" }
```

`{name}.toml` is what the adapter asks the host for: destinations, secrets
(injected by the host, never seen by the adapter), storage and limits.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_it_writes_parses_and_names_the_adapter() {
        let files = files("my-chat", Path::new("/sdk"));
        let manifest = &files.iter().find(|(p, _)| p == "my-chat.toml").unwrap().1;
        let parsed: crate::manifest::Manifest = manifest.parse().unwrap();
        assert_eq!(parsed.name, "my-chat");
        assert!(parsed.inbound_http.wanted());
        let cargo = &files.iter().find(|(p, _)| p == "Cargo.toml").unwrap().1;
        let cargo: toml::Value = toml::from_str(cargo).unwrap();
        assert_eq!(
            cargo["dependencies"]["airlock-guest"]["path"].as_str(),
            Some("/sdk")
        );
        let readme = &files.iter().find(|(p, _)| p == "README.md").unwrap().1;
        assert!(readme.contains("release/my_chat.wasm"), "{readme}");
        for (path, text) in &files {
            assert!(
                !text.contains("{name}") && !text.contains("{crate}"),
                "{path}"
            );
        }
    }

    #[test]
    fn bad_names_and_missing_sdks_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = run("My Chat", dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("airlock new adapter my-chat"), "{err}");
        let err = run("chat", dir.path(), Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--sdk"), "{err}");
    }
}
