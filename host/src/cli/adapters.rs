//! `airlock adapters list|approve|remove`.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;

use crate::approvals;
use crate::catalog::{self, Origin};
use crate::home::ADAPTERS_DIR;
use crate::host::Host;

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Bundled and dropped-in components, and whether each may load.
    List,
    /// Approve a drop-in at its current digest (wasm and manifest).
    Approve {
        /// Component name (`$AIRLOCK_HOME/adapters/NAME.wasm`).
        name: String,
        /// Approve only if the wasm's sha256 is this one (as `airlock inspect` printed it).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Revoke the approval and delete the drop-in's files.
    Remove {
        /// Component name.
        name: String,
    },
}

/// Run one action.
pub fn run(host: &Host, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::List => {
            print!("{}", super::inspect::printable(&list(host)?));
            Ok(ExitCode::SUCCESS)
        }
        Action::Approve { name, sha256 } => approve(host, &name, sha256.as_deref()),
        Action::Remove { name } => remove(host, &name),
    }
}

fn list(host: &Host) -> anyhow::Result<String> {
    let (candidates, problems) = host.candidates()?;
    let mut out = String::new();
    for c in &candidates {
        let kind = c
            .manifest
            .as_ref()
            .map(|m| m.kind.to_string())
            .unwrap_or_else(|_| "?".into());
        let origin = match c.origin {
            Origin::Bundled => "bundled",
            Origin::DropIn => "drop-in",
        };
        let standing = match &c.manifest {
            Err(e) => format!("REFUSED: {e}"),
            Ok(_) => c.standing(&host.db)?.describe(&c.name),
        };
        writeln!(out, "{:<20} {:<8} {:<8} {}", c.name, kind, origin, standing)?;
    }
    for p in &problems {
        writeln!(
            out,
            "{:<20} {:<8} {:<8} REFUSED: {}",
            p.file, "?", "drop-in", p.problem
        )?;
    }
    for a in approvals::list(&host.db)? {
        if !candidates.iter().any(|c| c.name == a.name) {
            writeln!(
                out,
                "{:<20} {:<8} {:<8} approved, but its files are gone (`airlock adapters remove {}` forgets it)",
                a.name, "?", "missing", a.name
            )?;
        }
    }
    if out.is_empty() {
        out.push_str("no components\n");
    }
    Ok(out)
}

fn approve(host: &Host, name: &str, expected: Option<&str>) -> anyhow::Result<ExitCode> {
    if catalog::bundled().iter().any(|b| b.name == name) {
        println!("{name} is bundled with airlock and needs no approval");
        return Ok(ExitCode::SUCCESS);
    }
    let dir = host.home.sub(ADAPTERS_DIR)?;
    let candidate = catalog::load_drop_in(&dir, name).map_err(|e| {
        anyhow::anyhow!(
            "{e}\n(drop-ins live in {})",
            host.home.path().join(ADAPTERS_DIR).display()
        )
    })?;
    if let Some(expected) = expected
        && !expected.eq_ignore_ascii_case(&candidate.wasm_sha256())
    {
        eprintln!(
            "airlock: not approved: {name}.wasm has sha256 {}, not the {expected} you reviewed; inspect it again",
            candidate.wasm_sha256()
        );
        return Ok(ExitCode::from(1));
    }
    // Refuse to approve what could not run anyway, and say why.
    if let Err(e) = host.load_unchecked(&candidate) {
        eprintln!("airlock: not approved: {e}");
        return Ok(ExitCode::from(1));
    }
    approvals::approve(
        &host.db,
        name,
        &candidate.wasm_sha256(),
        &candidate.manifest_sha256(),
    )?;
    println!(
        "approved {name} at wasm sha256 {} and manifest sha256 {}",
        candidate.wasm_sha256(),
        candidate.manifest_sha256()
    );
    super::record::change(
        &host.db,
        &host.config.audit,
        crate::audit::Kind::Component,
        &format!(
            "drop-in approved (wasm sha256 {}, manifest sha256 {})",
            candidate.wasm_sha256(),
            candidate.manifest_sha256()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

fn remove(host: &Host, name: &str) -> anyhow::Result<ExitCode> {
    if !crate::manifest::valid_name(name) {
        anyhow::bail!("{name:?} is not a component name");
    }
    let dir = host.home.sub(ADAPTERS_DIR)?;
    let revoked = approvals::revoke(&host.db, name)?;
    let mut removed = Vec::new();
    for file in [format!("{name}.wasm"), format!("{name}.toml")] {
        if dir.remove_file(&file).is_ok() {
            removed.push(file);
        }
    }
    if !revoked && removed.is_empty() {
        eprintln!("airlock: no drop-in or approval named {name}");
        return Ok(ExitCode::from(1));
    }
    println!(
        "removed {name}: {}{}",
        if revoked {
            "approval revoked"
        } else {
            "no approval"
        },
        if removed.is_empty() {
            String::new()
        } else {
            format!(", deleted {}", removed.join(" and "))
        }
    );
    super::record::change(
        &host.db,
        &host.config.audit,
        crate::audit::Kind::Component,
        "drop-in removed",
    );
    Ok(ExitCode::SUCCESS)
}
