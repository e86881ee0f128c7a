//! The relay's state in SQLite: prompts, their copies in chats, and rules.
//!
//! A prompt belongs to the process that relayed it (its `pid`): only that
//! process can tell its Claude Code the verdict. Any process may decide it
//! (the press may reach the airlock that polls the bot), and the decision is
//! one conditional update, so the first verdict wins whoever races. A
//! verdict decided elsewhere waits with `notified = 0` until its owner sends
//! it. Rules live here so that they outlast a restart until they expire.

use rusqlite::{OptionalExtension, Row, params};

use super::render::PromptView;
use super::request::PermissionRequest;
use super::verdict::Behavior;
use crate::db::{Db, DbError};

/// Where a prompt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for a verdict.
    Pending,
    /// An owner allowed it.
    Allowed,
    /// An owner denied it.
    Denied,
    /// Nobody answered in time.
    Expired,
    /// Its airlock stopped before anyone answered.
    Restarted,
    /// Lockdown closed it.
    LockedDown,
    /// A rule allowed it; it was never shown.
    AutoAllowed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Allowed => "allowed",
            State::Denied => "denied",
            State::Expired => "expired",
            State::Restarted => "restarted",
            State::LockedDown => "locked",
            State::AutoAllowed => "auto",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "pending" => State::Pending,
            "allowed" => State::Allowed,
            "denied" => State::Denied,
            "expired" => State::Expired,
            "restarted" => State::Restarted,
            "auto" => State::AutoAllowed,
            _ => State::LockedDown,
        }
    }
}

/// A stored prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// Its random token (what its buttons carry).
    pub token: String,
    /// Claude Code's request id.
    pub request_id: String,
    /// The process that relayed it.
    pub pid: i64,
    /// The tool.
    pub tool_name: String,
    /// The description as kept.
    pub description: String,
    /// The preview as kept.
    pub input_preview: String,
    /// Characters of the preview not kept.
    pub preview_cut: usize,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
    /// Where it stands.
    pub state: State,
    /// The session that relayed it.
    pub session: String,
}

impl Prompt {
    /// What its messages show.
    pub fn view(&self) -> PromptView<'_> {
        PromptView {
            request_id: &self.request_id,
            tool_name: &self.tool_name,
            description: &self.description,
            input_preview: &self.input_preview,
            preview_cut: self.preview_cut,
            expires_at: self.expires_at,
            session: &self.session,
        }
    }

    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            token: r.get(0)?,
            request_id: r.get(1)?,
            pid: r.get(2)?,
            tool_name: r.get(3)?,
            description: r.get(4)?,
            input_preview: r.get(5)?,
            preview_cut: r.get::<_, i64>(6)?.max(0) as usize,
            expires_at: r.get(7)?,
            state: State::parse(&r.get::<_, String>(8)?),
            session: r.get(9)?,
        })
    }
}

const PROMPT_COLUMNS: &str = "token, request_id, pid, tool_name, description, input_preview, \
                              preview_cut, expires_at, state, session";

/// One message that shows a prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// Adapter name.
    pub adapter: String,
    /// Platform chat id.
    pub chat_id: String,
    /// Platform message id.
    pub message_id: String,
}

/// An owner's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    /// Allow or deny.
    pub behavior: Behavior,
    /// Who answered.
    pub by: &'a str,
    /// On which adapter.
    pub on: &'a str,
    /// When (Unix seconds).
    pub at: i64,
    /// A rule made with it lasts until then.
    pub rule_until: Option<i64>,
}

/// A time-boxed rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// The tool it allows.
    pub tool_name: String,
    /// Until when (Unix seconds).
    pub until: i64,
    /// Who made it (`telegram:alice`, `terminal`).
    pub created_by: String,
    /// When.
    pub created_at: i64,
    /// Calls it allowed so far.
    pub uses: i64,
}

/// The relay's tables.
#[derive(Clone, Debug)]
pub struct RelayStore {
    db: Db,
    session: String,
}

impl RelayStore {
    /// The store in `db`.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            session: String::new(),
        }
    }

    /// The same store, recording the prompts it opens as `session`'s.
    pub fn for_session(mut self, session: &str) -> Self {
        self.session = session.to_owned();
        self
    }

    /// Records a prompt for `request`, owned by `pid`.
    pub fn open(
        &self,
        request: &PermissionRequest,
        token: &str,
        pid: i64,
        now: i64,
        expires_at: i64,
        nudge_at: Option<i64>,
    ) -> Result<(), DbError> {
        self.insert(
            request,
            token,
            pid,
            now,
            expires_at,
            nudge_at,
            State::Pending,
        )
    }

    /// Records a call a rule allowed, and counts it on the rule.
    pub fn auto_allowed(
        &self,
        request: &PermissionRequest,
        token: &str,
        pid: i64,
        now: i64,
    ) -> Result<(), DbError> {
        self.insert(request, token, pid, now, now, None, State::AutoAllowed)?;
        self.db.lock().execute(
            "UPDATE relay_rules SET uses = uses + 1 WHERE tool_name = ?1",
            params![request.tool_name],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        r: &PermissionRequest,
        token: &str,
        pid: i64,
        now: i64,
        expires_at: i64,
        nudge_at: Option<i64>,
        state: State,
    ) -> Result<(), DbError> {
        self.db.lock().execute(
            "INSERT INTO relay_prompts (token, request_id, pid, tool_name, description,
                 input_preview, preview_cut, created_at, expires_at, nudge_at, state, notified,
                 session)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                token,
                r.request_id,
                pid,
                r.tool_name,
                r.description,
                r.input_preview,
                r.preview_cut as i64,
                now,
                expires_at,
                nudge_at,
                state.as_str(),
                state == State::AutoAllowed,
                self.session,
            ],
        )?;
        Ok(())
    }

    /// Remembers a message that shows the prompt.
    pub fn add_copy(&self, token: &str, copy: &Copy) -> Result<(), DbError> {
        self.db.lock().execute(
            "INSERT OR IGNORE INTO relay_copies (token, adapter, chat_id, message_id)
             VALUES (?1, ?2, ?3, ?4)",
            params![token, copy.adapter, copy.chat_id, copy.message_id],
        )?;
        Ok(())
    }

    /// The messages that show the prompt.
    pub fn copies(&self, token: &str) -> Result<Vec<Copy>, DbError> {
        let db = self.db.lock();
        let mut st = db.prepare_cached(
            "SELECT adapter, chat_id, message_id FROM relay_copies WHERE token = ?1
             ORDER BY adapter, chat_id",
        )?;
        let rows = st.query_map(params![token], |r| {
            Ok(Copy {
                adapter: r.get(0)?,
                chat_id: r.get(1)?,
                message_id: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The prompt with `token`.
    pub fn prompt(&self, token: &str) -> Result<Option<Prompt>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached(&format!(
                "SELECT {PROMPT_COLUMNS} FROM relay_prompts WHERE token = ?1"
            ))?
            .query_row(params![token], Prompt::from_row)
            .optional()?)
    }

    /// The prompt for `request_id`: the newest waiting one, else the newest
    /// of any state (auto-allowed calls have none).
    pub fn for_request(&self, request_id: &str) -> Result<Option<Prompt>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached(&format!(
                "SELECT {PROMPT_COLUMNS} FROM relay_prompts
                 WHERE request_id = ?1 AND state <> 'auto'
                 ORDER BY state = 'pending' DESC, created_at DESC, rowid DESC LIMIT 1"
            ))?
            .query_row(params![request_id], Prompt::from_row)
            .optional()?)
    }

    /// The sessions with a waiting prompt for `request_id`: Claude Code's ids
    /// are unique only within one session, so two may wait under one id.
    pub fn pending_sessions(&self, request_id: &str) -> Result<Vec<String>, DbError> {
        let db = self.db.lock();
        let mut st = db.prepare_cached(
            "SELECT DISTINCT session FROM relay_prompts
             WHERE request_id = ?1 AND state = 'pending' ORDER BY session",
        )?;
        let rows = st.query_map(params![request_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Decide the prompt if it still waits: true for the first verdict.
    /// `notified` says the caller tells Claude Code itself (it owns it).
    pub fn decide(&self, token: &str, d: &Decision<'_>, notified: bool) -> Result<bool, DbError> {
        let state = match d.behavior {
            Behavior::Allow => State::Allowed,
            Behavior::Deny => State::Denied,
        };
        let n = self.db.lock().execute(
            "UPDATE relay_prompts SET state = ?2, decided_by = ?3, decided_on = ?4,
                 decided_at = ?5, rule_until = ?6, notified = ?7, nudge_at = NULL
             WHERE token = ?1 AND state = 'pending'",
            params![
                token,
                state.as_str(),
                d.by,
                d.on,
                d.at,
                d.rule_until,
                notified
            ],
        )?;
        Ok(n == 1)
    }

    /// Close a waiting prompt without a verdict: true if it was waiting.
    pub fn close(&self, token: &str, state: State) -> Result<bool, DbError> {
        let n = self.db.lock().execute(
            "UPDATE relay_prompts SET state = ?2, nudge_at = NULL
             WHERE token = ?1 AND state = 'pending'",
            params![token, state.as_str()],
        )?;
        Ok(n == 1)
    }

    fn select(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Prompt>, DbError> {
        let db = self.db.lock();
        let mut st = db.prepare_cached(&format!(
            "SELECT {PROMPT_COLUMNS} FROM relay_prompts WHERE {sql}"
        ))?;
        let rows = st.query_map(args, Prompt::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// `pid`'s waiting prompts.
    pub fn pending(&self, pid: i64) -> Result<Vec<Prompt>, DbError> {
        self.select("state = 'pending' AND pid = ?1", params![pid])
    }

    /// Waiting prompts of other processes.
    pub fn pending_elsewhere(&self, pid: i64) -> Result<Vec<Prompt>, DbError> {
        self.select("state = 'pending' AND pid <> ?1", params![pid])
    }

    /// `pid`'s waiting prompts past their time.
    pub fn expired(&self, pid: i64, now: i64) -> Result<Vec<Prompt>, DbError> {
        self.select(
            "state = 'pending' AND pid = ?1 AND expires_at <= ?2",
            params![pid, now],
        )
    }

    /// `pid`'s waiting prompts due a reminder; each is returned once.
    pub fn take_nudges(&self, pid: i64, now: i64) -> Result<Vec<Prompt>, DbError> {
        let due = self.select(
            "state = 'pending' AND pid = ?1 AND nudge_at IS NOT NULL AND nudge_at <= ?2",
            params![pid, now],
        )?;
        for p in &due {
            self.db.lock().execute(
                "UPDATE relay_prompts SET nudge_at = NULL WHERE token = ?1",
                params![p.token],
            )?;
        }
        Ok(due)
    }

    /// Verdicts on `pid`'s prompts decided by another process and not yet
    /// sent; each is returned once.
    pub fn take_unsent(&self, pid: i64) -> Result<Vec<(Prompt, Behavior)>, DbError> {
        let found = self.select(
            "state IN ('allowed', 'denied') AND pid = ?1 AND notified = 0",
            params![pid],
        )?;
        let mut out = Vec::new();
        for p in found {
            let n = self.db.lock().execute(
                "UPDATE relay_prompts SET notified = 1 WHERE token = ?1 AND notified = 0",
                params![p.token],
            )?;
            if n == 1 {
                let behavior = if p.state == State::Allowed {
                    Behavior::Allow
                } else {
                    Behavior::Deny
                };
                out.push((p, behavior));
            }
        }
        Ok(out)
    }

    /// Forget prompts older than `before` (Unix seconds) and their copies.
    pub fn prune(&self, before: i64) -> Result<usize, DbError> {
        let db = self.db.lock();
        db.execute(
            "DELETE FROM relay_copies WHERE token IN
               (SELECT token FROM relay_prompts WHERE created_at < ?1 AND state <> 'pending')",
            params![before],
        )?;
        Ok(db.execute(
            "DELETE FROM relay_prompts WHERE created_at < ?1 AND state <> 'pending'",
            params![before],
        )?)
    }

    /// Make (or extend, or shorten) the rule for `tool_name`.
    pub fn add_rule(&self, tool_name: &str, until: i64, by: &str, now: i64) -> Result<(), DbError> {
        self.db.lock().execute(
            "INSERT INTO relay_rules (tool_name, until, created_by, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tool_name) DO UPDATE SET until = ?2, created_by = ?3, created_at = ?4, uses = 0",
            params![tool_name, until, by, now],
        )?;
        Ok(())
    }

    /// The live rule for `tool_name`, if any.
    pub fn rule(&self, tool_name: &str, now: i64) -> Result<Option<Rule>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached(
                "SELECT tool_name, until, created_by, created_at, uses FROM relay_rules
                 WHERE tool_name = ?1 AND until > ?2",
            )?
            .query_row(params![tool_name, now], rule_from_row)
            .optional()?)
    }

    /// Live rules, soonest to end first.
    pub fn rules(&self, now: i64) -> Result<Vec<Rule>, DbError> {
        let db = self.db.lock();
        let mut st = db.prepare_cached(
            "SELECT tool_name, until, created_by, created_at, uses FROM relay_rules
             WHERE until > ?1 ORDER BY until, tool_name",
        )?;
        let rows = st.query_map(params![now], rule_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// End the rule for `tool_name`: true if a live one ended.
    pub fn revoke(&self, tool_name: &str, now: i64) -> Result<bool, DbError> {
        let db = self.db.lock();
        let live = db.execute(
            "DELETE FROM relay_rules WHERE tool_name = ?1 AND until > ?2",
            params![tool_name, now],
        )?;
        db.execute(
            "DELETE FROM relay_rules WHERE tool_name = ?1",
            params![tool_name],
        )?;
        Ok(live == 1)
    }

    /// End every rule; the number of live ones ended.
    pub fn revoke_all(&self, now: i64) -> Result<usize, DbError> {
        let db = self.db.lock();
        let live = db.execute("DELETE FROM relay_rules WHERE until > ?1", params![now])?;
        db.execute("DELETE FROM relay_rules", [])?;
        Ok(live)
    }
}

fn rule_from_row(r: &Row<'_>) -> rusqlite::Result<Rule> {
    Ok(Rule {
        tool_name: r.get(0)?,
        until: r.get(1)?,
        created_by: r.get(2)?,
        created_at: r.get(3)?,
        uses: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, tool: &str) -> PermissionRequest {
        PermissionRequest {
            request_id: id.into(),
            tool_name: tool.into(),
            description: "d".into(),
            input_preview: "p".into(),
            preview_cut: 0,
        }
    }

    fn decision(behavior: Behavior, by: &str) -> Decision<'_> {
        Decision {
            behavior,
            by,
            on: "telegram",
            at: 5,
            rule_until: None,
        }
    }

    #[test]
    fn one_request_id_may_wait_in_two_sessions() {
        let db = Db::in_memory().unwrap();
        let api = RelayStore::new(db.clone()).for_session("api");
        let web = RelayStore::new(db).for_session("web");
        api.open(&request("abcde", "Bash"), "tok1", 7, 0, 600, None)
            .unwrap();
        assert_eq!(api.pending_sessions("abcde").unwrap(), ["api"]);
        web.open(&request("abcde", "Write"), "tok2", 8, 0, 600, None)
            .unwrap();
        assert_eq!(web.pending_sessions("abcde").unwrap(), ["api", "web"]);
        assert_eq!(api.prompt("tok2").unwrap().unwrap().session, "web");
        assert!(
            web.decide("tok2", &decision(Behavior::Deny, "alice"), true)
                .unwrap()
        );
        assert_eq!(api.pending_sessions("abcde").unwrap(), ["api"]);
        assert!(api.pending_sessions("zzzzz").unwrap().is_empty());
    }

    #[test]
    fn the_first_verdict_wins_and_a_closed_prompt_takes_none() {
        let s = RelayStore::new(Db::in_memory().unwrap());
        s.open(&request("abcde", "Bash"), "tok1", 7, 0, 600, Some(180))
            .unwrap();
        assert!(
            s.decide("tok1", &decision(Behavior::Allow, "alice"), true)
                .unwrap()
        );
        assert!(
            !s.decide("tok1", &decision(Behavior::Deny, "bob"), true)
                .unwrap()
        );
        assert_eq!(s.prompt("tok1").unwrap().unwrap().state, State::Allowed);
        assert!(!s.close("tok1", State::Expired).unwrap());
        s.open(&request("qrstu", "Write"), "tok2", 7, 0, 600, None)
            .unwrap();
        assert!(s.close("tok2", State::Expired).unwrap());
        assert!(
            !s.decide("tok2", &decision(Behavior::Allow, "alice"), true)
                .unwrap()
        );
        assert_eq!(
            s.for_request("qrstu").unwrap().unwrap().state,
            State::Expired
        );
        s.open(&request("qrstu", "Write"), "tok3", 8, 0, 600, None)
            .unwrap();
        assert_eq!(
            s.for_request("qrstu").unwrap().unwrap().token,
            "tok3",
            "the waiting one first"
        );
        assert_eq!(s.for_request("vwxyz").unwrap(), None);
    }

    #[test]
    fn deadlines_reminders_and_verdicts_decided_elsewhere() {
        let s = RelayStore::new(Db::in_memory().unwrap());
        s.open(&request("abcde", "Bash"), "tok1", 7, 0, 600, Some(180))
            .unwrap();
        s.open(&request("fghij", "Bash"), "tok2", 8, 0, 600, Some(180))
            .unwrap();
        assert!(s.take_nudges(7, 179).unwrap().is_empty());
        assert_eq!(s.take_nudges(7, 180).unwrap().len(), 1);
        assert!(s.take_nudges(7, 181).unwrap().is_empty(), "one reminder");
        assert!(s.expired(7, 599).unwrap().is_empty());
        assert_eq!(s.expired(7, 600).unwrap()[0].token, "tok1");
        assert_eq!(s.pending_elsewhere(7).unwrap()[0].token, "tok2");
        // Decided by process 7 for process 8: 8 sends it, once.
        assert!(
            s.decide("tok2", &decision(Behavior::Deny, "bob"), false)
                .unwrap()
        );
        assert!(s.take_unsent(7).unwrap().is_empty());
        let unsent = s.take_unsent(8).unwrap();
        assert_eq!(unsent.len(), 1);
        assert_eq!(unsent[0].1, Behavior::Deny);
        assert!(s.take_unsent(8).unwrap().is_empty());
    }

    #[test]
    fn rules_live_until_they_end_and_count_their_uses() {
        let s = RelayStore::new(Db::in_memory().unwrap());
        s.add_rule("Write", 1_800, "terminal", 0).unwrap();
        assert_eq!(
            s.rule("Write", 1_799).unwrap().unwrap().created_by,
            "terminal"
        );
        assert_eq!(s.rule("Write", 1_800).unwrap(), None, "ended");
        assert_eq!(s.rule("Edit", 0).unwrap(), None);
        s.auto_allowed(&request("abcde", "Write"), "tok", 7, 10)
            .unwrap();
        assert_eq!(s.rules(10).unwrap()[0].uses, 1);
        assert_eq!(
            s.for_request("abcde").unwrap(),
            None,
            "an auto-allow has no prompt"
        );
        assert!(s.revoke("Write", 10).unwrap());
        assert!(!s.revoke("Write", 10).unwrap());
        s.add_rule("Write", 100, "t", 0).unwrap();
        s.add_rule("Edit", 5, "t", 0).unwrap();
        assert_eq!(s.revoke_all(10).unwrap(), 1, "only the live one counts");
        assert!(s.rules(0).unwrap().is_empty());
    }

    #[test]
    fn copies_and_pruning() {
        let s = RelayStore::new(Db::in_memory().unwrap());
        s.open(&request("abcde", "Bash"), "tok1", 7, 0, 600, None)
            .unwrap();
        let copy = Copy {
            adapter: "telegram".into(),
            chat_id: "42".into(),
            message_id: "9".into(),
        };
        s.add_copy("tok1", &copy).unwrap();
        s.add_copy("tok1", &copy).unwrap();
        assert_eq!(s.copies("tok1").unwrap(), vec![copy]);
        assert_eq!(s.prune(100).unwrap(), 0, "a waiting prompt is kept");
        s.close("tok1", State::Expired).unwrap();
        assert_eq!(s.prune(100).unwrap(), 1);
        assert!(s.copies("tok1").unwrap().is_empty());
    }
}
