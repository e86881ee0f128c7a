//! The alerts table: what was raised, for `airlock access status`, and the
//! way an alert raised in the terminal (lockdown, unlock) reaches the
//! running airlock that tells the owners.

use rusqlite::params;

use super::store::{AccessStore, now};
use crate::alert::{Alert, Kind};
use crate::db::DbError;

/// Alerts kept, at most (oldest forgotten first).
pub const KEEP_ALERTS: i64 = 500;

/// An alert as recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    /// Its number.
    pub id: i64,
    /// Seconds since the epoch.
    pub at: i64,
    /// What happened (a stable name).
    pub kind: String,
    /// The adapter; `None`: all.
    pub adapter: Option<String>,
    /// What it said.
    pub text: String,
    /// Occurrences folded into it.
    pub count: u64,
}

impl AccessStore {
    /// Records `alert`, folded from `count`. `from_terminal`: raised by a
    /// command, for a running airlock to pass on.
    pub fn record_alert(
        &self,
        alert: &Alert,
        count: u64,
        from_terminal: bool,
    ) -> Result<i64, DbError> {
        let conn = self.db.lock();
        conn.prepare_cached(
            "INSERT INTO alerts (at, adapter, kind, text, count, from_terminal)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            now(),
            alert.adapter,
            alert.kind.name(),
            alert.text,
            count as i64,
            from_terminal
        ])?;
        let id = conn.last_insert_rowid();
        conn.prepare_cached(
            "DELETE FROM alerts WHERE id NOT IN (SELECT id FROM alerts ORDER BY id DESC LIMIT ?1)",
        )?
        .execute(params![KEEP_ALERTS])?;
        Ok(id)
    }

    /// Alerts since `since` (seconds since the epoch), newest first.
    pub fn alerts_since(&self, since: i64) -> Result<Vec<Recorded>, DbError> {
        self.alerts_where("at >= ?1 ORDER BY id DESC", since)
    }

    /// The newest alert's number (0 when there is none).
    pub fn last_alert_id(&self) -> Result<i64, DbError> {
        Ok(self
            .db
            .lock()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM alerts", [], |r| r.get(0))?)
    }

    /// Alerts raised in the terminal after alert `after`, oldest first.
    pub fn terminal_alerts_after(&self, after: i64) -> Result<Vec<(i64, Alert)>, DbError> {
        Ok(self
            .alerts_where("id > ?1 AND from_terminal = 1 ORDER BY id", after)?
            .into_iter()
            .filter_map(|r| {
                Some((
                    r.id,
                    Alert {
                        kind: Kind::parse(&r.kind)?,
                        adapter: r.adapter,
                        text: r.text,
                    },
                ))
            })
            .collect())
    }

    fn alerts_where(&self, clause: &str, arg: i64) -> Result<Vec<Recorded>, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, at, kind, adapter, text, count FROM alerts WHERE {clause}"
        ))?;
        let rows = stmt.query_map(params![arg], |r| {
            Ok(Recorded {
                id: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                adapter: r.get(3)?,
                text: r.get(4)?,
                count: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn terminal_alerts_are_picked_up_once_and_all_are_listed() {
        let a = AccessStore::new(Db::in_memory().unwrap());
        let alert = |kind, text: &str| Alert {
            kind,
            adapter: None,
            text: text.into(),
        };
        let start = a.last_alert_id().unwrap();
        a.record_alert(&alert(Kind::StrangerFlood, "flood"), 40, false)
            .unwrap();
        let id = a
            .record_alert(&alert(Kind::Lockdown, "locked"), 1, true)
            .unwrap();
        let picked = a.terminal_alerts_after(start).unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].1.kind, Kind::Lockdown);
        assert!(a.terminal_alerts_after(id).unwrap().is_empty());
        let all = a.alerts_since(0).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[1].kind.as_str(), all[1].count), ("stranger_flood", 40));
    }
}
