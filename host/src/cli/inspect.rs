//! `airlock inspect FILE.wasm`: the verdict on a component, before it runs.
//!
//! Everything the operator should weigh before approving is shown: what the
//! component imports and asks for, what it would be granted, what granting a
//! secret hands over, and, for an adapter, the lines it would add to the
//! session's prompt (its `describe()`, run in a sandbox like any call).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use wasmtime::{Engine, Precompiled};

use crate::catalog::{Candidate, Origin};
use crate::host::Host;
use crate::manifest::{Effective, InboundHttpSpec, Kind, Manifest, SignedRoute};
use crate::mcp::instructions;
use crate::runtime::imports;
use crate::runtime::load::Loaded;
use crate::runtime::load::{export_names, import_names};

/// What is being inspected.
pub struct Subject {
    /// Component name (file stem, or bundled name).
    pub name: String,
    /// Where it came from, for the report.
    pub label: String,
    /// The bytes.
    pub wasm: Vec<u8>,
    /// Manifest text, or why there is none.
    pub manifest_text: Result<String, String>,
    /// Bundled with airlock.
    pub bundled: bool,
}

impl Subject {
    /// `target` is a path to a `.wasm` (manifest beside it unless given), or
    /// the name of a bundled component.
    pub fn find(target: &str, manifest: Option<&Path>) -> anyhow::Result<Self> {
        let path = Path::new(target);
        if path.exists() {
            let wasm = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let manifest_path = manifest
                .map(Path::to_path_buf)
                .unwrap_or_else(|| path.with_extension("toml"));
            let manifest_text = std::fs::read_to_string(&manifest_path).map_err(|_| {
                format!(
                    "no manifest: put {} beside the component (or pass --manifest FILE)",
                    manifest_path.display()
                )
            });
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            return Ok(Self {
                name,
                label: path.display().to_string(),
                wasm,
                manifest_text,
                bundled: false,
            });
        }
        match crate::catalog::bundled().iter().find(|b| b.name == target) {
            Some(b) => Ok(Self {
                name: b.name.into(),
                label: "bundled with airlock".into(),
                wasm: b.wasm.to_vec(),
                manifest_text: Ok(b.manifest.into()),
                bundled: true,
            }),
            None => {
                let names: Vec<&str> = crate::catalog::bundled().iter().map(|b| b.name).collect();
                anyhow::bail!(
                    "{target} is neither a file nor a bundled component (bundled: {})",
                    names.join(", ")
                )
            }
        }
    }
}

/// Print the report; exit 0 if the component would load, 1 if not.
pub fn run(host: &Host, subject: Subject) -> anyhow::Result<ExitCode> {
    let (text, loads) = report(host, subject)?;
    print!("{}", printable(&text));
    Ok(if loads {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The report text and whether the component would load.
pub fn report(host: &Host, subject: Subject) -> anyhow::Result<(String, bool)> {
    let Subject {
        name,
        label,
        wasm,
        manifest_text,
        bundled,
    } = subject;
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, "component   {name}  ({label})")?;
    writeln!(
        w,
        "sha256      {}",
        crate::runtime::cache::sha256_hex(&wasm)
    )?;
    if Engine::detect_precompiled(&wasm)
        .is_some_and(|p| matches!(p, Precompiled::Component | Precompiled::Module))
    {
        writeln!(
            w,
            "verdict     REFUSED: this is a precompiled wasmtime artefact; airlock accepts only .wasm components and compiles them itself"
        )?;
        return Ok((out, false));
    }
    // Through the host's cache: the describe() run below, and the serve
    // that follows an approval, then load what this compiled.
    let component = match host.cache.load(&host.engine, &name, &wasm) {
        Ok((c, _)) => c,
        Err(e) => {
            writeln!(w, "verdict     REFUSED: {e}")?;
            return Ok((out, false));
        }
    };

    let manifest: Result<Manifest, String> = manifest_text
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|t| t.parse::<Manifest>().map_err(|e| e.to_string()));
    let eff: Option<Effective> = manifest.as_ref().ok().and_then(|m| {
        let trust = if bundled {
            crate::manifest::Trust::Bundled
        } else {
            crate::manifest::Trust::ThirdParty
        };
        crate::manifest::effective(m, &host.config.component(&name).grant, trust).ok()
    });
    let linkable = eff.as_ref().map(Effective::linkable).unwrap_or_default();

    match &manifest {
        Ok(m) => writeln!(
            w,
            "kind        {}{}",
            m.kind,
            m.description
                .as_deref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default()
        )?,
        Err(e) => writeln!(w, "manifest    {e}")?,
    }

    writeln!(w, "imports")?;
    for import in import_names(&host.engine, &component) {
        match imports::allows(&import, linkable) {
            Ok(()) => writeln!(w, "  ok        {import}")?,
            Err(r) => writeln!(w, "  REFUSED   {import}: {}", r.reason)?,
        }
    }
    writeln!(w, "exports")?;
    for export in export_names(&host.engine, &component) {
        writeln!(w, "  {export}")?;
    }

    if let Ok(m) = &manifest {
        writeln!(w, "requests (manifest)")?;
        write_requests(w, m)?;
    }
    if let Some(e) = &eff {
        writeln!(w, "would be granted")?;
        write_effective(w, e)?;
    }
    if let Ok(m) = &manifest
        && !bundled
        && !m.secrets.is_empty()
    {
        writeln!(w, "granting secrets")?;
        for note in secret_notes(host, &name, m) {
            writeln!(w, "  {note}")?;
        }
    }

    // The full check: standing, grant, compile, imports, world.
    let candidate = Candidate {
        name: name.clone(),
        origin: if bundled {
            Origin::Bundled
        } else {
            Origin::DropIn
        },
        wasm: Cow::Owned(wasm),
        manifest_text: Cow::Owned(manifest_text.unwrap_or_default()),
        manifest: manifest.clone(),
    };
    let adapters_dir = host.home.path().join(crate::home::ADAPTERS_DIR);
    let in_home = Path::new(&label)
        .canonicalize()
        .ok()
        .zip(adapters_dir.canonicalize().ok())
        .is_some_and(|(f, d)| f.parent() == Some(d.as_path()));
    let standing = candidate.standing(&host.db)?;
    let approval = if bundled || in_home {
        standing.describe(&name)
    } else if !crate::manifest::valid_name(&name) {
        // The file name is whatever the download was called: never put it
        // in a command, and the catalog would not take it anyway.
        format!(
            "rename it (and its manifest) to a name of lowercase letters, digits and '-', copy both into {}/, then run `airlock adapters approve NAME`",
            adapters_dir.display()
        )
    } else {
        format!(
            "copy it and its manifest into {}/ and run `airlock adapters approve {}`",
            adapters_dir.display(),
            crate::text::shell_quote(&name)
        )
    };
    let load = host.load_unchecked(&candidate);
    if let Ok(loaded) = &load
        && loaded.manifest.kind == Kind::Adapter
    {
        write_instructions(w, host, loaded)?;
    }
    writeln!(w, "approval    {approval}")?;
    let loads = match load {
        Ok(_) => {
            writeln!(
                w,
                "verdict     LOADS{}",
                if in_home && !standing.may_load() {
                    " once approved"
                } else {
                    ""
                }
            )?;
            true
        }
        Err(e) => {
            writeln!(w, "verdict     REFUSED: {e}")?;
            false
        }
    };
    Ok((out, loads && (!in_home || standing.may_load())))
}

/// The lines the adapter adds to the session's instructions, as the prompt
/// would get them (cleaned and capped).
fn write_instructions(w: &mut String, host: &Host, loaded: &Loaded) -> std::fmt::Result {
    writeln!(w, "instructions (lines it adds to the session's prompt)")?;
    match describe(host, loaded) {
        Ok(lines) => {
            let kept = instructions::keep(&lines);
            if kept.lines.is_empty() {
                writeln!(w, "  none")?;
            }
            for line in &kept.lines {
                writeln!(w, "  [{}] {line}", loaded.name)?;
            }
            if let Some(cut) = kept.cut() {
                writeln!(w, "  CUT       {cut}")?;
            }
            Ok(())
        }
        Err(why) => writeln!(
            w,
            "  not shown: its describe() could not be run here ({why}); `airlock serve` shows them capped and cleaned"
        ),
    }
}

/// Run the adapter's `describe()` in a fresh sandboxed instance: no
/// settings, no `start`, and, as `describe` must not do I/O, no network and
/// no secrets (so it runs before the operator has set any).
fn describe(host: &Host, loaded: &Loaded) -> Result<Vec<String>, String> {
    let mut sealed = loaded.clone();
    let mut effective = (*loaded.effective).clone();
    effective.outbound_http.clear();
    effective.websocket.clear();
    effective.local.clear();
    effective.secrets.clear();
    sealed.effective = std::sync::Arc::new(effective);
    let loaded = &sealed;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err("inspect was called from inside an async runtime".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let handle = host
            .spawn_adapter(loaded, None)
            .map_err(|e| e.to_string())?;
        handle
            .describe()
            .await
            .map(|d| d.instructions)
            .map_err(|e| e.to_string())
    })
}

/// What granting each secret `m` asks for would hand a third-party
/// component, in plain words: above all when the secret is a bundled
/// adapter's own credential, or already granted to another component.
fn secret_notes(host: &Host, name: &str, m: &Manifest) -> Vec<String> {
    let mut names: Vec<&str> = m.secrets.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|secret| {
            let owner = crate::catalog::bundled()
                .iter()
                .filter(|b| b.name != name)
                .find(|b| {
                    b.manifest
                        .parse::<Manifest>()
                        .is_ok_and(|bm| bm.secrets.iter().any(|s| s.name == secret))
                });
            let holders: Vec<&str> = host
                .config
                .components
                .iter()
                .filter(|(other, c)| {
                    other.as_str() != name
                        && c.grant
                            .secrets
                            .as_ref()
                            .is_some_and(|s| s.iter().any(|s| s == secret))
                })
                .map(|(other, _)| other.as_str())
                .collect();
            let (what, power) = if secret.ends_with("BOT_TOKEN") {
                ("bot token", "full control of that bot")
            } else {
                ("credential", "full use of that account")
            };
            if let Some(owner) = owner {
                format!(
                    "{secret} is the bundled {} adapter's {what}; granting it gives this component {power}",
                    owner.name
                )
            } else if !holders.is_empty() {
                format!(
                    "{secret} is already granted to {}; granting it here too gives this component the same use of it",
                    holders.join(", ")
                )
            } else {
                let to: Vec<String> = m
                    .secrets
                    .iter()
                    .filter(|s| s.name == secret)
                    .map(|s| s.destination.to_string())
                    .collect();
                format!(
                    "granting {secret} hands its value to this component's requests to {}",
                    to.join(", ")
                )
            }
        })
        .collect()
}

fn write_requests(w: &mut String, m: &Manifest) -> std::fmt::Result {
    list(
        w,
        "outbound_http",
        m.outbound_http.iter().map(ToString::to_string),
    )?;
    list(w, "websocket", m.websocket.iter().map(ToString::to_string))?;
    writeln!(
        w,
        "  inbound_http   {}",
        match &m.inbound_http {
            InboundHttpSpec::Off => "no".to_string(),
            InboundHttpSpec::Local => "yes, on loopback with the access token".to_string(),
            InboundHttpSpec::Signed(route) => signed(route),
        }
    )?;
    writeln!(
        w,
        "  kv             {}",
        m.kv_quota_bytes
            .map(|q| format!("{q} bytes"))
            .unwrap_or_else(|| "none".into())
    )?;
    for s in &m.secrets {
        let at = match (&s.header, &s.value, &s.path_prefix, &s.ws_json_field) {
            (Some(h), Some(v), _, _) => match &s.under {
                Some(u) => format!("header {h}: {v} (for paths under {u})"),
                None => format!("header {h}: {v}"),
            },
            (_, _, Some(p), _) => match &s.under {
                Some(u) => format!("path prefix {p} in place of {u} (for paths under {u})"),
                None => format!("path prefix {p}"),
            },
            (_, _, _, Some(f)) => format!("first-frame JSON field {f}"),
            _ => "?".into(),
        };
        writeln!(w, "  secret         {} → {} as {at}", s.name, s.destination)?;
    }
    Ok(())
}

/// How a signed route's requests are checked, in a few words.
fn signed(route: &SignedRoute) -> String {
    let scheme = &route.scheme;
    let time = match &scheme.timestamp_header {
        Some(h) => format!(", timestamped by {h} within {}s", scheme.max_age.as_secs()),
        None => String::new(),
    };
    format!(
        "signed: HMAC-SHA256 in {} with {}{time}",
        scheme.header, route.secret
    )
}

fn write_effective(w: &mut String, e: &Effective) -> std::fmt::Result {
    list(
        w,
        "outbound_http",
        e.outbound_http.iter().map(ToString::to_string),
    )?;
    list(w, "websocket", e.websocket.iter().map(ToString::to_string))?;
    list(w, "local", e.local.iter().map(ToString::to_string))?;
    writeln!(
        w,
        "  inbound_http   {}",
        match (&e.inbound_signature, e.inbound_http) {
            (_, false) => "no".to_string(),
            (None, true) => format!("yes, on {} with the access token", e.inbound_bind),
            (Some(route), true) => format!("yes, on {}, {}", e.inbound_bind, signed(route)),
        }
    )?;
    writeln!(
        w,
        "  kv             {}",
        e.kv_quota_bytes
            .map(|q| format!("{q} bytes"))
            .unwrap_or_else(|| "none".into())
    )?;
    for s in &e.secrets {
        writeln!(
            w,
            "  secret         {} → {} ({})",
            s.name, s.destination, s.position
        )?;
    }
    writeln!(
        w,
        "  limits         memory {} MiB, cpu {} ms per call, wall {} ms per call",
        e.limits.memory_bytes >> 20,
        e.limits.cpu.as_millis(),
        e.limits.wall.as_millis()
    )?;
    for r in &e.refused {
        writeln!(w, "  not granted    {r}")?;
    }
    Ok(())
}

fn list(w: &mut String, label: &str, items: impl Iterator<Item = String>) -> std::fmt::Result {
    let items: Vec<String> = items.collect();
    writeln!(
        w,
        "  {label:<14} {}",
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    )
}

/// The report with every line cleaned: the manifest and file under review
/// must not be able to hide or forge lines with control characters.
pub fn printable(text: &str) -> String {
    text.lines()
        .map(|l| crate::text::one_line(l, 4000) + "\n")
        .collect()
}
