//! `airlock inspect FILE.wasm`: the verdict on a component, before it runs.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use wasmtime::{Engine, Precompiled};

use crate::catalog::{Candidate, Origin};
use crate::host::Host;
use crate::manifest::{Effective, Manifest};
use crate::runtime::imports;
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
    let component = match wasmtime::component::Component::from_binary(&host.engine, &wasm) {
        Ok(c) => c,
        Err(e) => {
            writeln!(
                w,
                "verdict     REFUSED: not a valid WebAssembly component: {e:#}"
            )?;
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
    } else {
        format!(
            "copy it and its manifest into {}/ and run `airlock adapters approve {name}`",
            adapters_dir.display()
        )
    };
    writeln!(w, "approval    {approval}")?;
    let loads = match host.load_unchecked(&candidate) {
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
        if m.inbound_http { "yes" } else { "no" }
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
            (Some(h), Some(v), _, _) => format!("header {h}: {v}"),
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
        if e.inbound_http { "yes" } else { "no" }
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
