//! `airlock try`: the channel as the session sees it, in a terminal.
//!
//! Starts the same machinery as `airlock serve` (fakechat by default, or the
//! adapter under development given with `--adapter`), prints every event
//! exactly as the session would receive it, and sends what the user types
//! back through the same `reply` path the session's tool calls take.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

use crate::bindings::types::TextFormat;
use crate::catalog::{self, Candidate, Origin};
use crate::event::ChannelEvent;
use crate::host::Host;
use crate::router::outbound::Reply;
use crate::serve::Approval;

const HELP: &str = "\
Type a line to reply to the chat of the last message (as the session's `reply` tool would).
  /chat CHAT_ID          reply to another chat from now on
  /edit MESSAGE_ID TEXT  edit a message you sent
  /quit                  stop";

/// Run until `/quit`, end of input, or Ctrl-C.
pub fn run(host: Host, adapter: Option<&Path>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(session(host, adapter));
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome.map(|()| ExitCode::SUCCESS)
}

/// The event a stored notification line carries.
fn parse_line(line: &str) -> Option<ChannelEvent> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let params = v.get("params")?;
    Some(ChannelEvent {
        content: params.get("content")?.as_str()?.to_string(),
        meta: serde_json::from_value(params.get("meta")?.clone()).ok()?,
    })
}

/// How the session sees an event: the `<channel>` tag and its body.
pub fn render(event: &ChannelEvent) -> String {
    let escape = |v: &str| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
    };
    let attrs: String = event
        .meta
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", escape(v)))
        .collect();
    format!(
        "<channel source=\"airlock\"{attrs}>\n{}\n</channel>",
        event.content
    )
}

async fn session(mut host: Host, adapter: Option<&Path>) -> anyhow::Result<()> {
    // The terminal is a session of its own, that no other session sees.
    let hub = std::sync::Arc::new(crate::hub::Hub::alone(
        "try",
        std::sync::Arc::new(crate::hub::SqliteHub::new(host.db.clone())),
        crate::queue::DEFAULT_BACKLOG,
    ));
    let running = match adapter {
        None => crate::serve::start(&host, hub).await?,
        Some(file) => {
            let dev = dev_candidate(file)?;
            give_a_port(&mut host, &dev)?;
            let bundled = catalog::bundled_candidates();
            let mut chosen: Vec<&Candidate> = vec![&dev];
            chosen.extend(
                crate::serve::enabled(&host, &bundled)
                    .into_iter()
                    .filter(|c| {
                        c.manifest
                            .as_ref()
                            .is_ok_and(|m| m.kind == crate::manifest::Kind::Filter)
                    }),
            );
            println!(
                "running {} without approval (development mode)",
                file.display()
            );
            crate::serve::start_with(&host, &chosen, Approval::Development, hub).await?
        }
    };
    if running.router.adapters().is_empty() {
        anyhow::bail!("no adapter started; the log above says why (or run `airlock doctor`)");
    }
    for (name, url) in &running.urls {
        println!("{name}: open {url}");
    }
    println!("{HELP}\n");
    let mut chat: Option<String> = None;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // This terminal is the session: it reads the queue as `serve` would.
    running.router.session().set_connected(true);
    let mut reader = crate::queue::Reader::new(running.router.queue().clone());
    loop {
        tokio::select! {
            batch = reader.next(1) => {
                let batch = batch?;
                for queued in &batch {
                    let Some(event) = parse_line(&queued.line) else { continue };
                    chat = event.meta.get("chat_id").cloned().or(chat);
                    println!("{}\n", render(&event));
                }
                reader.done(&batch);
            }
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                if line == "/quit" {
                    break;
                }
                if let Some(id) = line.strip_prefix("/chat ") {
                    chat = Some(id.trim().to_string());
                    println!("replying to {}", id.trim());
                    continue;
                }
                let Some(chat_id) = chat.clone() else {
                    println!("no chat yet: wait for a message, or pick one with /chat CHAT_ID");
                    continue;
                };
                let outcome = if let Some(rest) = line.strip_prefix("/edit ") {
                    match rest.trim().split_once(' ') {
                        Some((id, text)) => running.router.edit(&chat_id, id, text.to_string(), TextFormat::Plain).await,
                        None => {
                            println!("usage: /edit MESSAGE_ID TEXT");
                            continue;
                        }
                    }
                } else {
                    running
                        .router
                        .reply(Reply {
                            chat_id: chat_id.clone(),
                            text: line.to_string(),
                            reply_to: None,
                            files: Vec::new(),
                            format: TextFormat::Plain,
                            buttons: Vec::new(),
                        })
                        .await
                };
                match outcome {
                    Ok(text) => println!("→ {chat_id}: {text}"),
                    Err(e) => println!("→ {chat_id}: error: {e}"),
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}

/// An adapter under development that asks for an inbound route but has no
/// `port` setting in `airlock.toml` gets a free loopback port for this run,
/// said on stdout, rather than the error `serve` would give.
fn give_a_port(host: &mut Host, dev: &Candidate) -> anyhow::Result<()> {
    let wants_route = dev.manifest.as_ref().is_ok_and(|m| m.inbound_http.wanted());
    let section = host.config.components.entry(dev.name.clone()).or_default();
    if !wants_route || section.settings.contains_key("port") {
        return Ok(());
    }
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| anyhow::anyhow!("cannot find a free port for {}'s route: {e}", dev.name))?
        .port();
    section.settings.insert("port".into(), port.to_string());
    println!(
        "{} has no `port` setting; its route listens on {port} for this run \
         (set one under [components.{}] in airlock.toml to keep it)",
        dev.name, dev.name
    );
    Ok(())
}

/// A component file under development, with the manifest beside it.
fn dev_candidate(file: &Path) -> anyhow::Result<Candidate> {
    let built;
    let file = if file.is_dir() {
        built = build_crate(file)?;
        built.as_path()
    } else {
        file
    };
    let wasm =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let manifest_path = file.with_extension("toml");
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        anyhow::anyhow!("cannot read the manifest {}: {e}", manifest_path.display())
    })?;
    let manifest = text
        .parse::<crate::manifest::Manifest>()
        .map_err(|e| e.to_string());
    let name = match &manifest {
        Ok(m) => m.name.clone(),
        Err(e) => anyhow::bail!("{}: {e}", manifest_path.display()),
    };
    Ok(Candidate {
        name,
        origin: Origin::DropIn,
        wasm: wasm.into(),
        manifest_text: text.into(),
        manifest,
    })
}

/// Builds the adapter crate in `dir` for wasm32-wasip2, with cargo's
/// progress on stderr, and puts its manifest beside the component: the
/// component's path.
fn build_crate(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).map_err(|e| {
        anyhow::anyhow!(
            "{} is a folder without a readable Cargo.toml ({e}); give an adapter crate's \
             folder, or FILE.wasm with FILE.toml beside it",
            dir.display()
        )
    })?;
    let package: toml::Value = toml::from_str(&cargo_toml)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join("Cargo.toml").display()))?;
    let Some(name) = package
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
    else {
        anyhow::bail!("{} names no package", dir.join("Cargo.toml").display());
    };
    let manifest = dir.join(format!("{name}.toml"));
    if !manifest.is_file() {
        anyhow::bail!(
            "{} has no manifest {name}.toml beside its Cargo.toml (`airlock new adapter` writes one)",
            dir.display()
        );
    }
    eprintln!("building {name} (cargo build --release --target wasm32-wasip2)…");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            anyhow::anyhow!("cannot run cargo ({e}); install Rust from https://rustup.rs")
        })?;
    if !status.success() {
        anyhow::bail!("building {name} failed; cargo's errors are above");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| dir.join("target"), std::path::PathBuf::from);
    let release = target.join("wasm32-wasip2").join("release");
    let wasm = release.join(format!("{}.wasm", name.replace('-', "_")));
    if !wasm.is_file() {
        anyhow::bail!(
            "cargo built {name}, but {} is not there; is it a cdylib?",
            wasm.display()
        );
    }
    // `dev_candidate` reads the manifest beside the component.
    let beside = wasm.with_extension("toml");
    std::fs::copy(&manifest, &beside)
        .map_err(|e| anyhow::anyhow!("cannot copy the manifest to {}: {e}", beside.display()))?;
    Ok(wasm)
}

/// Meta for tests of [`render`].
#[cfg(test)]
fn event(meta: &[(&str, &str)], content: &str) -> ChannelEvent {
    ChannelEvent {
        content: content.into(),
        meta: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_session_sees_it() {
        let e = event(&[("chat_id", "fakechat:web"), ("user", "a&b")], "hello");
        assert_eq!(
            render(&e),
            "<channel source=\"airlock\" chat_id=\"fakechat:web\" user=\"a&amp;b\">\nhello\n</channel>"
        );
    }
}
