//! `airlock:channel/kv`: a per-component key/value namespace with a quota.
//!
//! Rows live in the host database keyed by (component, key); a component can
//! only name keys, never another component, so namespaces cannot overlap.
//! Usage is counted as key bytes plus value bytes and checked before every
//! write.

use std::sync::atomic::AtomicU32;

use rusqlite::{OptionalExtension, params};

use crate::bindings::kv::{self, KvError};
use crate::db::Db;
use crate::warn_budget::{Admit, MAX_LOGGED, admit};

/// Longest key, in bytes.
pub const MAX_KEY: usize = 256;
/// Bytes every entry costs on top of its key and value, so that a flood of
/// empty entries still meets the quota.
pub const ENTRY_OVERHEAD: u64 = 64;

/// One component's namespace.
#[derive(Clone, Debug)]
pub struct KvNamespace {
    db: Db,
    component: String,
    quota_bytes: u64,
}

impl KvNamespace {
    /// The namespace of `component`, bounded by `quota_bytes`.
    pub fn new(db: Db, component: impl Into<String>, quota_bytes: u64) -> Self {
        Self {
            db,
            component: component.into(),
            quota_bytes,
        }
    }

    fn check_key(key: &str) -> Result<(), KvError> {
        if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
            Err(KvError::InvalidKey)
        } else {
            Ok(())
        }
    }

    /// Value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Self::check_key(key)?;
        self.db
            .lock()
            .query_row(
                "SELECT value FROM kv WHERE component = ?1 AND key = ?2",
                params![self.component, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(store_err)
    }

    /// Set `key`, if the quota allows.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        Self::check_key(key)?;
        // A component never holds a loaded secret; one that got hold of a value may not keep it.
        if crate::secrets::loaded::holds(key.as_bytes()) || crate::secrets::loaded::holds(value) {
            crate::secrets::loaded::log_refusal(&self.component, "a kv write");
            return Err(KvError::Store(
                "refused: the entry holds a secret the host has loaded; components may not store secrets".into(),
            ));
        }
        let conn = self.db.lock();
        let used: i64 = conn
            .query_row(
                "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB)) + ?3), 0)
                 FROM kv WHERE component = ?1 AND key != ?2",
                params![self.component, key, ENTRY_OVERHEAD as i64],
                |r| r.get(0),
            )
            .map_err(store_err)?;
        if used as u64 + (key.len() + value.len()) as u64 + ENTRY_OVERHEAD > self.quota_bytes {
            return Err(KvError::QuotaExceeded);
        }
        conn.execute(
            "INSERT INTO kv (component, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT(component, key) DO UPDATE SET value = excluded.value",
            params![self.component, key, value],
        )
        .map_err(store_err)?;
        Ok(())
    }

    /// Remove `key`.
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        Self::check_key(key)?;
        self.db
            .lock()
            .execute(
                "DELETE FROM kv WHERE component = ?1 AND key = ?2",
                params![self.component, key],
            )
            .map_err(store_err)?;
        Ok(())
    }

    /// Keys starting with `prefix`, sorted.
    pub fn list_keys(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare(
                "SELECT key FROM kv WHERE component = ?1
                 AND substr(CAST(key AS BLOB), 1, ?3) = CAST(?2 AS BLOB) ORDER BY key",
            )
            .map_err(store_err)?;
        let rows = stmt
            .query_map(params![self.component, prefix, prefix.len() as i64], |r| {
                r.get(0)
            })
            .map_err(store_err)?;
        rows.collect::<Result<_, _>>().map_err(store_err)
    }
}

/// Store failures logged so far, process-wide: a component can repeat a
/// failing call in a loop, so past the first few they are only counted.
static STORE_FAILURES: AtomicU32 = AtomicU32::new(0);

fn store_err(e: rusqlite::Error) -> KvError {
    match admit(&STORE_FAILURES, MAX_LOGGED) {
        Admit::Log => tracing::warn!("component key/value store failed: {e}"),
        Admit::Fold => tracing::warn!(
            "component key/value store failed {MAX_LOGGED} times; further failures are not logged (is the disk of the state directory full?)"
        ),
        Admit::Quiet => {}
    }
    KvError::Store(e.to_string())
}

/// One instance's kv capability: its namespace, when kv is granted.
#[derive(Debug, Default)]
pub struct KvCtx {
    namespace: Option<KvNamespace>,
}

impl KvCtx {
    /// The capability over `namespace` (none: every call answers "not granted").
    pub fn new(namespace: Option<KvNamespace>) -> Self {
        Self { namespace }
    }
}

/// Used when kv is not granted: never linked, but the context must answer.
fn not_granted() -> KvError {
    KvError::Store("key/value storage is not granted to this component".into())
}

impl kv::Host for KvCtx {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, KvError>> {
        Ok(self
            .namespace
            .as_ref()
            .ok_or_else(not_granted)
            .and_then(|k| k.get(&key)))
    }
    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), KvError>> {
        Ok(self
            .namespace
            .as_ref()
            .ok_or_else(not_granted)
            .and_then(|k| k.set(&key, &value)))
    }
    fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), KvError>> {
        Ok(self
            .namespace
            .as_ref()
            .ok_or_else(not_granted)
            .and_then(|k| k.delete(&key)))
    }
    fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, KvError>> {
        Ok(self
            .namespace
            .as_ref()
            .ok_or_else(not_granted)
            .and_then(|k| k.list_keys(&prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_keys_holding_a_loaded_secret_are_refused() {
        use crate::manifest::SecretBinding;
        use crate::secrets::{BoundSecret, SecretValue, register};
        let value = "737373:KV-and-OUTBOUND-test_value";
        let binding = SecretBinding {
            name: "KV_BOUNDARY_TEST".into(),
            destination: "https://b.example".parse().unwrap(),
            position: "X-Key: {secret}".parse().unwrap(),
        };
        register(&BoundSecret::new(binding, SecretValue::new(value)).unwrap());
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();

        let kv = KvNamespace::new(Db::in_memory().unwrap(), "k", 1 << 20);
        for (key, stored) in [
            ("plain", "nothing secret".to_string()),
            ("raw", value.to_string()),
            ("hex", hex.clone()),
            (value, "x".to_string()),
        ] {
            let result = kv.set(key, stored.as_bytes());
            assert_eq!(result.is_ok(), key == "plain", "{key}: {result:?}");
        }
    }

    #[test]
    fn keys_are_counted_in_bytes_and_must_be_printable() {
        let db = Db::in_memory().unwrap();
        let k = KvNamespace::new(db, "k", 10 * ENTRY_OVERHEAD);
        assert!(matches!(k.set("\0hidden", b""), Err(KvError::InvalidKey)));
        assert!(matches!(k.set("a\nb", b""), Err(KvError::InvalidKey)));
        // Empty entries still cost their overhead: at most 10 of them.
        let stored = (0..100)
            .take_while(|i| k.set(&format!("{i}"), b"").is_ok())
            .count();
        assert!(stored < 10, "{stored}");
        let db = Db::in_memory().unwrap();
        let u = KvNamespace::new(db, "u", 10_000);
        u.set("éa", b"1").unwrap();
        u.set("éb", b"2").unwrap();
        u.set("e", b"3").unwrap();
        assert_eq!(u.list_keys("é").unwrap(), vec!["éa", "éb"]);
    }

    #[test]
    fn quota_namespaces_and_prefixes() {
        let db = Db::in_memory().unwrap();
        let a = KvNamespace::new(db.clone(), "a", 20 + ENTRY_OVERHEAD);
        let b = KvNamespace::new(db, "b", 1000);
        a.set("k1", b"0123456789").unwrap(); // 12 bytes + overhead
        assert!(matches!(
            a.set("k2", b"0123456789"),
            Err(KvError::QuotaExceeded)
        ));
        a.set("k1", b"012345678901234567").unwrap(); // replacing counts once: 20 bytes + overhead
        assert!(matches!(
            a.set("k1", b"0123456789012345678"),
            Err(KvError::QuotaExceeded)
        ));
        assert_eq!(b.get("k1").unwrap(), None);
        b.set("p/1", b"x").unwrap();
        b.set("p/2", b"y").unwrap();
        b.set("q", b"z").unwrap();
        assert_eq!(b.list_keys("p/").unwrap(), vec!["p/1", "p/2"]);
        assert_eq!(b.list_keys("%").unwrap(), Vec::<String>::new());
        b.delete("p/1").unwrap();
        assert_eq!(b.list_keys("").unwrap(), vec!["p/2", "q"]);
        assert!(matches!(b.set("", b"x"), Err(KvError::InvalidKey)));
        assert!(matches!(
            b.get(&"k".repeat(MAX_KEY + 1)),
            Err(KvError::InvalidKey)
        ));
    }
}
