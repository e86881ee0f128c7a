//! Where components come from, and whether they may load.
//!
//! Two sources: components bundled into the `airlock` binary at build time
//! (trusted, granted what their manifests ask), and third-party drop-ins in
//! `$AIRLOCK_HOME/adapters/NAME.wasm` with `NAME.toml` beside it, which load
//! only while pinned by an operator approval. Drop-ins are read through the
//! directory handle, so a crafted name cannot reach outside it.

use std::borrow::Cow;

use cap_std::fs::Dir;
use wasmtime::{Engine, Precompiled};

use crate::approvals::{self, Approval};
use crate::db::{Db, DbError};
use crate::manifest::{Manifest, ManifestError};
use crate::runtime::cache::sha256_hex;

/// A component compiled into the binary.
#[derive(Debug)]
pub struct Bundled {
    /// Name (also the manifest's `name`).
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
    /// Its manifest text.
    pub manifest: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The bundled components.
pub fn bundled() -> &'static [Bundled] {
    BUNDLED
}

/// Where a candidate came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the binary.
    Bundled,
    /// `$AIRLOCK_HOME/adapters/`.
    DropIn,
}

/// A component found in one of the sources, not yet loaded.
#[derive(Debug)]
pub struct Candidate {
    /// Name (file stem for drop-ins).
    pub name: String,
    /// Source.
    pub origin: Origin,
    /// The bytes.
    pub wasm: Cow<'static, [u8]>,
    /// Manifest text.
    pub manifest_text: Cow<'static, str>,
    /// The parsed manifest.
    pub manifest: Result<Manifest, String>,
}

/// Whether a candidate may load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Bundled: trusted.
    Bundled,
    /// Approved at exactly these bytes.
    Approved,
    /// Never approved.
    NotApproved,
    /// Approved once, but the wasm or manifest changed since.
    Changed {
        /// What changed: "wasm", "manifest" or both.
        what: &'static str,
    },
}

impl Standing {
    /// Whether the component may load.
    pub fn may_load(&self) -> bool {
        matches!(self, Standing::Bundled | Standing::Approved)
    }

    /// Human-readable, with the fix.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Standing::Bundled => "bundled with airlock".into(),
            Standing::Approved => "approved".into(),
            Standing::NotApproved => format!(
                "not approved; review it with `airlock inspect`, then run `airlock adapters approve {name}`"
            ),
            Standing::Changed { what } => format!(
                "REFUSED: its {what} changed since it was approved; review it, then run `airlock adapters approve {name}` again"
            ),
        }
    }
}

/// Problems with the drop-in directory itself.
#[derive(Debug)]
pub struct DropInProblem {
    /// File name.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

impl Candidate {
    fn from_parts(
        name: String,
        origin: Origin,
        wasm: Cow<'static, [u8]>,
        manifest_text: Cow<'static, str>,
    ) -> Self {
        let manifest = manifest_text
            .parse::<Manifest>()
            .map_err(|e: ManifestError| e.to_string())
            .and_then(|m| {
                if m.name == name {
                    Ok(m)
                } else {
                    Err(format!(
                        "manifest name {:?} does not match the file name {name:?}",
                        m.name
                    ))
                }
            });
        Self {
            name,
            origin,
            wasm,
            manifest_text,
            manifest,
        }
    }

    /// sha256 of the wasm.
    pub fn wasm_sha256(&self) -> String {
        sha256_hex(&self.wasm)
    }

    /// sha256 of the manifest text.
    pub fn manifest_sha256(&self) -> String {
        sha256_hex(self.manifest_text.as_bytes())
    }

    /// Compare against the recorded approval.
    pub fn standing(&self, db: &Db) -> Result<Standing, DbError> {
        if self.origin == Origin::Bundled {
            return Ok(Standing::Bundled);
        }
        Ok(standing_against(
            approvals::get(db, &self.name)?.as_ref(),
            &self.wasm_sha256(),
            &self.manifest_sha256(),
        ))
    }
}

/// Compare digests with an approval (pure, for tests).
pub fn standing_against(
    approval: Option<&Approval>,
    wasm_sha: &str,
    manifest_sha: &str,
) -> Standing {
    match approval {
        None => Standing::NotApproved,
        Some(a) => match (a.wasm_sha256 == wasm_sha, a.manifest_sha256 == manifest_sha) {
            (true, true) => Standing::Approved,
            (false, true) => Standing::Changed { what: "wasm" },
            (true, false) => Standing::Changed { what: "manifest" },
            (false, false) => Standing::Changed {
                what: "wasm and manifest",
            },
        },
    }
}

/// The bundled components as candidates.
pub fn bundled_candidates() -> Vec<Candidate> {
    bundled()
        .iter()
        .map(|b| {
            Candidate::from_parts(
                b.name.into(),
                Origin::Bundled,
                Cow::Borrowed(b.wasm),
                Cow::Borrowed(b.manifest),
            )
        })
        .collect()
}

/// Drop-ins in `dir`, plus files there that are refused outright.
pub fn drop_ins(dir: &Dir) -> std::io::Result<(Vec<Candidate>, Vec<DropInProblem>)> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let mut names: Vec<String> = dir
        .entries()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for file in names {
        if let Some(stem) = file.strip_suffix(".cwasm") {
            problems.push(DropInProblem {
                file: file.clone(),
                problem: format!(
                    "precompiled artefacts are refused; drop in {stem}.wasm (a WebAssembly component) and airlock compiles it"
                ),
            });
            continue;
        }
        let Some(stem) = file.strip_suffix(".wasm") else {
            continue;
        };
        if !crate::manifest::valid_name(stem) {
            problems.push(DropInProblem {
                file: file.clone(),
                problem: "name must be lowercase letters, digits or '-', starting with a letter"
                    .into(),
            });
            continue;
        }
        match load_drop_in(dir, stem) {
            Ok(c) => found.push(c),
            Err(problem) => problems.push(DropInProblem { file, problem }),
        }
    }
    Ok((found, problems))
}

/// Read one drop-in by name.
pub fn load_drop_in(dir: &Dir, name: &str) -> Result<Candidate, String> {
    let wasm = dir
        .read(format!("{name}.wasm"))
        .map_err(|e| format!("cannot read {name}.wasm: {e}"))?;
    if matches!(
        Engine::detect_precompiled(&wasm),
        Some(Precompiled::Component | Precompiled::Module)
    ) {
        return Err(format!(
            "{name}.wasm is a precompiled artefact; only WebAssembly components are accepted"
        ));
    }
    let manifest = dir
        .read_to_string(format!("{name}.toml"))
        .map_err(|e| format!("cannot read the manifest {name}.toml next to {name}.wasm: {e}"))?;
    Ok(Candidate::from_parts(
        name.into(),
        Origin::DropIn,
        Cow::Owned(wasm),
        Cow::Owned(manifest),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standing_table() {
        let a = Approval {
            name: "x".into(),
            wasm_sha256: "w".into(),
            manifest_sha256: "m".into(),
            approved_at: 0,
        };
        assert_eq!(standing_against(None, "w", "m"), Standing::NotApproved);
        assert_eq!(standing_against(Some(&a), "w", "m"), Standing::Approved);
        assert_eq!(
            standing_against(Some(&a), "w2", "m"),
            Standing::Changed { what: "wasm" }
        );
        assert_eq!(
            standing_against(Some(&a), "w", "m2"),
            Standing::Changed { what: "manifest" }
        );
        assert_eq!(
            standing_against(Some(&a), "w2", "m2"),
            Standing::Changed {
                what: "wasm and manifest"
            }
        );
        assert!(!Standing::Changed { what: "wasm" }.may_load());
        assert!(Standing::Approved.may_load());
    }

    #[test]
    fn bundled_manifests_parse() {
        for c in bundled_candidates() {
            assert!(c.manifest.is_ok(), "{}: {:?}", c.name, c.manifest);
        }
    }

    #[test]
    fn drop_in_dir_refuses_precompiled_and_bad_names() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("evil.cwasm"), b"x").unwrap();
        std::fs::write(tmp.path().join("Bad Name.wasm"), b"x").unwrap();
        std::fs::write(tmp.path().join("lonely.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let (found, problems) = drop_ins(&dir).unwrap();
        assert!(found.is_empty());
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.file == "lonely.wasm" && p.problem.contains("manifest"))
        );
    }
}
