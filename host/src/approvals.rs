//! Operator approvals of third-party components, pinned by digest.
//!
//! A drop-in `adapters/NAME.wasm` loads only while its sha256, and that of its
//! manifest `NAME.toml`, equal the ones recorded by `airlock adapters approve
//! NAME`. Pinning the manifest too matters: otherwise a component could widen
//! its own requests after approval without touching the wasm.

use rusqlite::{OptionalExtension, params};

use crate::db::{Db, DbError};

/// One recorded approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// Component name.
    pub name: String,
    /// Hex sha256 of the approved `.wasm`.
    pub wasm_sha256: String,
    /// Hex sha256 of the approved manifest.
    pub manifest_sha256: String,
    /// Seconds since the Unix epoch.
    pub approved_at: i64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        name: r.get(0)?,
        wasm_sha256: r.get(1)?,
        manifest_sha256: r.get(2)?,
        approved_at: r.get(3)?,
    })
}

/// Record (or replace) the approval of `name`.
pub fn approve(
    db: &Db,
    name: &str,
    wasm_sha256: &str,
    manifest_sha256: &str,
) -> Result<(), DbError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    db.lock().execute(
        "INSERT INTO approvals (name, wasm_sha256, manifest_sha256, approved_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET wasm_sha256 = excluded.wasm_sha256,
             manifest_sha256 = excluded.manifest_sha256, approved_at = excluded.approved_at",
        params![name, wasm_sha256, manifest_sha256, now],
    )?;
    Ok(())
}

/// Forget the approval of `name`; true if there was one.
pub fn revoke(db: &Db, name: &str) -> Result<bool, DbError> {
    Ok(db
        .lock()
        .execute("DELETE FROM approvals WHERE name = ?1", params![name])?
        > 0)
}

/// The approval of `name`, if any.
pub fn get(db: &Db, name: &str) -> Result<Option<Approval>, DbError> {
    Ok(db
        .lock()
        .query_row(
            "SELECT name, wasm_sha256, manifest_sha256, approved_at FROM approvals WHERE name = ?1",
            params![name],
            row,
        )
        .optional()?)
}

/// Every approval, by name.
pub fn list(db: &Db) -> Result<Vec<Approval>, DbError> {
    let conn = db.lock();
    let mut stmt = conn.prepare(
        "SELECT name, wasm_sha256, manifest_sha256, approved_at FROM approvals ORDER BY name",
    )?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approve_replace_revoke() {
        let db = Db::in_memory().unwrap();
        assert_eq!(get(&db, "x").unwrap(), None);
        approve(&db, "x", "aa", "m1").unwrap();
        approve(&db, "x", "bb", "m2").unwrap();
        let a = get(&db, "x").unwrap().unwrap();
        assert_eq!(
            (a.wasm_sha256.as_str(), a.manifest_sha256.as_str()),
            ("bb", "m2")
        );
        assert_eq!(list(&db).unwrap().len(), 1);
        assert!(revoke(&db, "x").unwrap());
        assert!(!revoke(&db, "x").unwrap());
    }
}
