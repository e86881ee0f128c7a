//! `airlock doctor`: check the set-up and say exactly what to fix.
//!
//! Every check is one line on stdout: `ok   …`, `WARN …` or `FAIL …`, the
//! fix on the same line. Then the commands that connect airlock to Claude
//! Code, and the sharp edges of doing so. Exit 0 if nothing failed, 1 if
//! something did.
//!
//! Doctor does not go through [`Host::open`], which stops at the first
//! problem (a config that does not parse, say): it opens the state
//! directory, the database and the config one by one, so it can report each.
//! Secrets are loaded only to see that they are there; a value is never
//! printed, only the name.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::catalog::{Candidate, Origin, Standing};
use crate::db::Db;
use crate::home::{ADAPTERS_DIR, AirlockHome, CACHE_DIR};
use crate::host::Host;
use crate::manifest::{Config, ConfigError, Kind};
use crate::runtime::cache::ComponentCache;
use crate::runtime::engine::new_engines;
use crate::secrets::load_secret_in;
use crate::serve::{DEFAULT_ADAPTER, enabled, inbound_port};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but probably not as meant.
    Warn,
    /// Stops airlock (or a component) from working.
    Fail,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// How it came out.
    pub level: Level,
    /// What was found, and on WARN/FAIL the fix.
    pub text: String,
}

impl Check {
    fn ok(text: impl Into<String>) -> Self {
        Self {
            level: Level::Ok,
            text: text.into(),
        }
    }

    fn warn(text: impl Into<String>) -> Self {
        Self {
            level: Level::Warn,
            text: text.into(),
        }
    }

    fn fail(text: impl Into<String>) -> Self {
        Self {
            level: Level::Fail,
            text: text.into(),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        // Manifest errors and file names come from outside: one line, no escapes.
        write!(f, "{tag} {}", crate::text::one_line(&self.text, 4000))
    }
}

/// Run every check, print the report and the connection commands.
pub fn run() -> ExitCode {
    let env_home = std::env::var_os("AIRLOCK_HOME").filter(|v| !v.is_empty());
    let path = AirlockHome::default_path();
    let mut checks = examine(&path);
    checks.push(check_on_path(std::env::var_os("PATH")));
    checks.extend(check_claude_env(|var| std::env::var_os(var)));
    for c in &checks {
        println!("{c}");
    }
    println!();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("airlock"));
    let home_for_claude = env_home.map(|_| std::fs::canonicalize(&path).unwrap_or(path.clone()));
    print!("{}", connect_text(&exe, home_for_claude.as_deref()));
    println!();
    print!("{SHARP_EDGES}");
    exit_code(&checks)
}

/// 1 if any check failed, else 0.
pub fn exit_code(checks: &[Check]) -> ExitCode {
    if checks.iter().any(|c| c.level == Level::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Every check on the state directory at `path` and what it holds.
pub fn examine(path: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let home = match AirlockHome::open(path) {
        Ok(h) => h,
        Err(e) => {
            checks.push(Check::fail(e.to_string()));
            return checks;
        }
    };
    checks.push(match std::fs::metadata(home.path()) {
        Ok(meta) => check_home_mode(home.path(), meta.permissions().mode()),
        Err(e) => Check::fail(format!(
            "cannot read the state directory {}: {e}",
            home.path().display()
        )),
    });
    let db = match Db::open(&home.db_path()) {
        Ok(db) => {
            checks.push(Check::ok(format!(
                "database {} opens",
                home.db_path().display()
            )));
            Some(db)
        }
        Err(e) => {
            checks.push(Check::fail(e.to_string()));
            None
        }
    };
    let (check, config) = check_config(&home.config_path());
    checks.push(check);
    let engine = match new_engines() {
        Ok(e) => Some(e),
        Err(e) => {
            checks.push(Check::fail(format!("cannot start the wasm engine: {e}")));
            None
        }
    };
    let cache = match home.sub(CACHE_DIR) {
        Ok(dir) => Some(ComponentCache::new(dir)),
        Err(e) => {
            checks.push(Check::fail(e.to_string()));
            None
        }
    };
    let (Some(db), Some((engine, filters)), Some(cache)) = (db, engine, cache) else {
        checks.push(Check::warn(
            "components not checked: fix the FAIL lines above, then run `airlock doctor` again",
        ));
        return checks;
    };
    let config_ok = config.is_some();
    let host = Host {
        home,
        db,
        config: config.unwrap_or_default(),
        engine,
        filters,
        cache,
    };
    checks.extend(check_components(&host, config_ok));
    checks.extend(check_access(&host));
    checks.push(check_relay(&host));
    checks.extend(check_sessions(&host));
    checks
}

/// The hub: which sessions run, who holds each platform connection, which
/// chats are bound, and events waiting for a session that is not there.
fn check_sessions(host: &Host) -> Vec<Check> {
    let store = crate::hub::SqliteHub::new(host.db.clone());
    match super::sessions::gather(host, &store) {
        Ok(listing) => sessions_checks(&listing, &super::access::running_adapters(host)),
        Err(e) => vec![Check::fail(format!("cannot read the sessions: {e:#}"))],
    }
}

/// Bound chats named one by one, at most.
const CHATS_NAMED: usize = 8;

/// [`check_sessions`] on what was read; `running` are the adapters enabled
/// here (a connection of another is history).
fn sessions_checks(l: &super::sessions_view::Listing, running: &[String]) -> Vec<Check> {
    use super::sessions_view::{chat_name, events, wait};
    if l.sessions.is_empty() && l.routes.is_empty() && l.held == 0 {
        return vec![Check::ok(
            "no session has run yet: each `airlock serve` is one session, and those sharing this \
             state directory form a hub",
        )];
    }
    let mut checks = Vec::new();
    let names = |live: bool| {
        let n: Vec<&str> = l
            .sessions
            .iter()
            .filter(|s| s.live == live)
            .map(|s| s.row.name.as_str())
            .collect();
        let state = super::sessions_view::state(live);
        if n.is_empty() {
            format!("none {state}")
        } else {
            format!("{} {state} ({})", n.len(), n.join(", "))
        }
    };
    checks.push(Check::ok(format!(
        "sessions: {}, {}",
        names(true),
        names(false)
    )));
    let any_live = l.sessions.iter().any(|s| s.live);
    for c in l
        .connections
        .iter()
        .filter(|c| running.contains(&c.row.adapter))
    {
        let (adapter, session) = (&c.row.adapter, &c.row.session);
        checks.push(if c.held {
            Check::ok(format!(
                "{adapter}: connection held by session {session} (pid {})",
                c.row.pid
            ))
        } else if any_live {
            Check::warn(format!(
                "{adapter}: the connection was last held by session {session}, which no longer \
                 runs, and no live session has taken it over, so nothing arrives from {adapter}: \
                 run `airlock doctor` again in a few seconds; if it stays, restart a live session \
                 and read its log"
            ))
        } else {
            Check::ok(format!(
                "{adapter}: no session runs, so nothing receives it now (last held by {session})"
            ))
        });
    }
    if l.routes.is_empty() {
        checks.push(Check::ok(
            "no chat is bound: an unbound chat goes to the only live session, or is held while \
             several run until its sender types /session NAME",
        ));
    } else {
        let mut named: Vec<String> = l
            .routes
            .iter()
            .take(CHATS_NAMED)
            .map(|r| format!("{} → {}", chat_name(&r.adapter, &r.chat), r.session))
            .collect();
        if l.routes.len() > CHATS_NAMED {
            named.push(format!(
                "and {} more (`airlock sessions` lists them)",
                l.routes.len() - CHATS_NAMED
            ));
        }
        checks.push(Check::ok(format!(
            "{} bound: {}",
            if l.routes.len() == 1 {
                "1 chat".to_string()
            } else {
                format!("{} chats", l.routes.len())
            },
            named.join(", ")
        )));
    }
    for s in l.sessions.iter().filter(|s| !s.live && s.row.waiting > 0) {
        checks.push(Check::warn(format!(
            "{} for session {}, which is away: start its Claude Code again (it last ran in {}) \
             and they are delivered",
            wait(s.row.waiting),
            s.row.name,
            shell_quote(&s.row.cwd)
        )));
    }
    for u in l.unstarted.iter().filter(|u| u.waiting > 0) {
        checks.push(Check::warn(format!(
            "{} for session {}, which has never run: start a session under that name \
             (`airlock serve --session {}`); binding its chats elsewhere moves only their next \
             messages",
            wait(u.waiting),
            u.name,
            u.name
        )));
    }
    if l.held > 0 {
        checks.push(Check::warn(format!(
            "{} held for chats bound to no session while several run ({}): each sender was \
             asked to pick one with /session NAME; or bind a chat here with \
             `airlock sessions route ADAPTER:CHAT NAME` (`airlock sessions` lists the sessions)",
            events(l.held),
            super::sessions_view::held_list(&l.held_chats)
        )));
    }
    checks
}

/// Lockdown, static mode, and adapters nobody owns (their alerts reach no
/// one, and nobody can answer their permission prompts).
fn check_access(host: &Host) -> Vec<Check> {
    let access = crate::access::AccessStore::with_config(host.db.clone(), &host.config.access);
    let running = super::access::running_adapters(host);
    let status = match access.status(&running) {
        Ok(s) => s,
        Err(e) => return vec![Check::fail(format!("cannot read access: {e}"))],
    };
    let mut checks = Vec::new();
    if let Some(l) = &status.lockdown {
        checks.push(Check::warn(format!(
            "airlock is locked down since {}: nothing reaches the session; `airlock access unlock` ends it",
            super::access_view::when(l.since)
        )));
    }
    if status.static_access {
        checks.push(Check::ok(
            "access is static: [access.ADAPTER] in airlock.toml is its only source",
        ));
        for name in host.config.access.adapters.keys() {
            if !running.contains(name) {
                checks.push(Check::warn(format!(
                    "[access.{name}] in airlock.toml names an adapter that does not run; check the spelling \
                     (running: {})",
                    running.join(", ")
                )));
            }
        }
    }
    for name in &running {
        let a = &status.adapters[name];
        if a.owners.is_empty() {
            checks.push(Check::warn(format!(
                "{name} has no owner: nobody receives its alerts; `airlock access invite {name} --owner` \
                 issues a code to pair one"
            )));
        } else {
            for w in a.warnings.iter().filter(|w| w.starts_with("owner ")) {
                checks.push(Check::warn(format!("{name}: {w}")));
            }
            checks.push(Check::ok(format!(
                "{name}: {} owner(s), {} member(s)",
                a.owners.len(),
                a.members.len()
            )));
        }
    }
    checks
}

/// Whether permission prompts will reach an owner in chat.
fn check_relay(host: &Host) -> Check {
    let relay = &host.config.relay;
    if !relay.enabled {
        return Check::ok(
            "permission relay off ([relay] enabled = false): prompts stay in the terminal",
        );
    }
    let access = crate::access::AccessStore::with_config(host.db.clone(), &host.config.access);
    let owned: Vec<String> = super::access::running_adapters(host)
        .into_iter()
        .filter(|a| access.has_owner(a).unwrap_or(false))
        .collect();
    if owned.is_empty() {
        return Check::warn(
            "permission relay not offered: no running adapter has an owner, so prompts stay in the \
             terminal; `airlock access invite ADAPTER --owner` pairs one",
        );
    }
    let rules = match (relay.rules, relay.rules_for_bash) {
        (false, _) => "rules off",
        (true, false) => "rules on (never Bash)",
        (true, true) => "rules on, Bash included",
    };
    Check::ok(format!(
        "permission relay on: owners on {} answer prompts; ttl {}, {rules}",
        owned.join(", "),
        crate::manifest::duration::show(relay.ttl_secs)
    ))
}

/// The state directory's mode must be 0700. (Opening it already took group
/// and other bits away; what is left to find is an owner who lacks some.)
pub fn check_home_mode(path: &Path, mode: u32) -> Check {
    let mode = mode & 0o777;
    if mode == 0o700 {
        Check::ok(format!("state directory {} (mode 0700)", path.display()))
    } else {
        Check::fail(format!(
            "state directory {} has mode {mode:04o}; airlock needs it to be 0700: chmod 700 {}",
            path.display(),
            shell_quote(&path.display().to_string())
        ))
    }
}

/// Whether `airlock.toml` reads and parses; the config if it does.
pub fn check_config(path: &Path) -> (Check, Option<Config>) {
    let shown = path.display();
    match crate::home::load_config(path) {
        Ok(config) if path.exists() => (Check::ok(format!("{shown} parses")), Some(config)),
        Ok(config) => (
            Check::ok(format!(
                "no {shown}: the defaults apply (fakechat and the bundled filters)"
            )),
            Some(config),
        ),
        Err(ConfigError::Parse { source, .. }) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let quoted = shell_quote(&shown.to_string());
            (
                Check::fail(format!(
                    "{shown} does not parse, so `airlock serve` will not start: {}; \
                     fix that line, or move the file aside to start from the defaults: \
                     mv {quoted} {quoted}.bak",
                    describe_toml_error(&text, &source)
                )),
                None,
            )
        }
        Err(e) => (Check::fail(e.to_string()), None),
    }
}

/// A TOML error as one line: `line L, column C: message`.
pub fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match err.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The drop-in directory, then each enabled component: loads, standing,
/// secrets, port.
fn check_components(host: &Host, config_ok: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    let adapters_dir = host.home.path().join(ADAPTERS_DIR);
    let (candidates, problems) = match host.candidates() {
        Ok(found) => found,
        Err(e) => {
            checks.push(Check::fail(format!(
                "cannot read the drop-in directory {}: {e:#}",
                adapters_dir.display()
            )));
            return checks;
        }
    };
    for p in &problems {
        checks.push(Check::warn(format!(
            "drop-in {} is ignored: {}",
            adapters_dir.join(&p.file).display(),
            p.problem
        )));
    }
    if !config_ok {
        checks.push(Check::warn(
            "components not checked: airlock.toml must parse first",
        ));
        return checks;
    }
    for (name, section) in &host.config.components {
        if section.enabled == Some(true) && !candidates.iter().any(|c| &c.name == name) {
            checks.push(Check::fail(format!(
                "{} enables {name}, but there is no component {name}: drop in {} with its manifest {}, \
                 or remove [components.{name}]",
                host.home.config_path().display(),
                adapters_dir.join(format!("{name}.wasm")).display(),
                adapters_dir.join(format!("{name}.toml")).display(),
            )));
        }
    }
    let chosen = enabled(host, &candidates);
    let is_adapter = |c: &Candidate| matches!(&c.manifest, Ok(m) if m.kind == Kind::Adapter);
    if !chosen.iter().any(|c| is_adapter(c)) {
        checks.push(Check::fail(format!(
            "no adapter is enabled, so no message can arrive: remove `enabled = false` from \
             [components.{DEFAULT_ADAPTER}] in {}, or enable another adapter with `enabled = true`",
            host.home.config_path().display()
        )));
    }
    let mut ports: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for c in &chosen {
        checks.extend(check_component(host, c, &mut ports));
    }
    for (port, names) in &ports {
        if names.len() > 1 && *port != 0 {
            checks.push(Check::fail(format!(
                "{} all want port {port}: give each its own `port` setting in {}",
                names.join(" and "),
                host.home.config_path().display()
            )));
        }
    }
    for c in candidates
        .iter()
        .filter(|c| c.origin == Origin::DropIn && !chosen.iter().any(|e| e.name == c.name))
    {
        checks.push(Check::ok(format!(
            "{} (drop-in) is not enabled; to run it, add `enabled = true` under [components.{}]",
            c.name, c.name
        )));
    }
    checks
}

/// One enabled component. Records the port it will listen on in `ports`.
fn check_component(
    host: &Host,
    c: &Candidate,
    ports: &mut BTreeMap<u16, Vec<String>>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let name = &c.name;
    let manifest = match &c.manifest {
        Ok(m) => m,
        Err(e) => {
            checks.push(Check::fail(format!("{name}: its manifest is refused: {e}")));
            return checks;
        }
    };
    let origin = match c.origin {
        Origin::Bundled => "bundled",
        Origin::DropIn => "drop-in",
    };
    let label = format!("{name} ({}, {origin})", manifest.kind);
    let approved = match c.standing(&host.db) {
        Ok(standing) => {
            if c.origin == Origin::DropIn {
                checks.push(check_standing(
                    &label,
                    name,
                    &host.home.path().join(ADAPTERS_DIR),
                    &standing,
                ));
            }
            standing.may_load()
        }
        Err(e) => {
            checks.push(Check::fail(format!("{label}: {e}")));
            false
        }
    };
    let loaded = if approved {
        host.load(c)
    } else {
        host.load_unchecked(c)
    };
    match loaded {
        Ok(_) if approved => checks.push(Check::ok(format!("{label} loads"))),
        Ok(_) => {}
        Err(e) => checks.push(Check::fail(format!("{label} does not load: {e}"))),
    }
    let Ok(eff) = host.effective(c) else {
        // Already reported: loading computes the same grant.
        return checks;
    };
    let mut seen = BTreeSet::new();
    for binding in &eff.secrets {
        if !seen.insert(binding.name.clone()) {
            continue;
        }
        checks.push(
            match load_secret_in(&binding.name, host.home.dir(), host.home.path()) {
                // The value is dropped here, unprinted.
                Ok(_) => Check::ok(format!("{name}: secret {} is set", binding.name)),
                Err(e) => Check::fail(format!("{name}: {e}")),
            },
        );
    }
    for spec in &manifest.secrets {
        if eff.secrets.iter().any(|b| b.name == spec.name) {
            continue;
        }
        let prefix = format!("secret {}:", spec.name);
        if let Some(why) = eff.refused.iter().find(|r| r.starts_with(&prefix)) {
            checks.push(Check::warn(format!(
                "{name}: asks for {why}; without it, requests that need it will be refused by the platform"
            )));
        }
    }
    if let Some(route) = &eff.inbound_signature {
        checks.push(
            match load_secret_in(&route.secret, host.home.dir(), host.home.path()) {
                Ok(_) => Check::ok(format!("{name}: signature secret {} is set", route.secret)),
                Err(e) => Check::fail(format!(
                    "{name}: its inbound route cannot check signatures: {e}"
                )),
            },
        );
    } else if let Some(why) = eff
        .refused
        .iter()
        .find(|r| r.starts_with("inbound_http: its signature"))
    {
        checks.push(Check::warn(format!(
            "{name}: {why}; its inbound route is not served"
        )));
    }
    if manifest.kind == Kind::Adapter && eff.inbound_http {
        let settings = host.config.component(name).settings;
        match inbound_port(name, &settings) {
            Ok(port) => {
                ports.entry(port).or_default().push(name.clone());
                checks.push(if page_served(host, name) {
                    // A session of this state directory serves it: the port
                    // is taken by airlock itself, as it should be.
                    Check::ok(format!(
                        "{name}: port {port} is served by a running session of this state \
                         directory (`airlock sessions` says which)"
                    ))
                } else {
                    check_port(name, port, &host.home.config_path())
                });
            }
            Err(why) => checks.push(Check::fail(why)),
        }
    }
    checks
}

/// A drop-in's approval, with the fix when it may not load.
fn check_standing(label: &str, name: &str, adapters_dir: &Path, standing: &Standing) -> Check {
    let wasm = shell_quote(
        &adapters_dir
            .join(format!("{name}.wasm"))
            .display()
            .to_string(),
    );
    match standing {
        Standing::Bundled | Standing::Approved => Check::ok(format!("{label}: approved")),
        Standing::NotApproved => Check::fail(format!(
            "{label}: not approved, so it does not run: review it with `airlock inspect {wasm}`, \
             then run `airlock adapters approve {name}`"
        )),
        Standing::Changed { what } => Check::fail(format!(
            "{label}: its {what} changed since it was approved, so it does not run: review it \
             with `airlock inspect {wasm}`, then run `airlock adapters approve {name}` again"
        )),
    }
}

/// Whether a running `airlock serve` of this state directory holds
/// `adapter`'s page (its connection lock).
fn page_served(host: &Host, adapter: &str) -> bool {
    host.home
        .sub(crate::platform_lock::LOCKS_DIR)
        .is_ok_and(|dir| {
            crate::pid_lock::PidLock::is_held(&dir, &crate::platform_lock::lock_name(adapter, &[]))
        })
}

/// Whether `port` is free on 127.0.0.1 (bound and released at once).
pub fn check_port(adapter: &str, port: u16, config_path: &Path) -> Check {
    if port == 0 {
        return Check::ok(format!(
            "{adapter}: port 0, a free port is picked at each start (the page URL is logged)"
        ));
    }
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(listener) => {
            drop(listener);
            Check::ok(format!("{adapter}: port {port} on 127.0.0.1 is free"))
        }
        Err(e) => {
            let other = free_port_after(port)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "8790".into());
            let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                "is in use: another airlock (in another Claude Code session) or the official \
                 fakechat plugin may be running"
                    .to_string()
            } else {
                format!("cannot be bound: {e}")
            };
            Check::fail(format!(
                "{adapter}: port {port} on 127.0.0.1 {why}; stop that, or pick another port: \
                 set port = \"{other}\" in the settings of [components.{adapter}] in {} \
                 (e.g. settings = {{ port = \"{other}\" }})",
                config_path.display()
            ))
        }
    }
}

/// The first of the next few ports that binds on 127.0.0.1.
fn free_port_after(port: u16) -> Option<u16> {
    (1..=20)
        .filter_map(|i| port.checked_add(i))
        .find(|&p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
}

/// Whether an `airlock` executable is on `path_var`, where the plugin's
/// launcher looks first.
pub fn check_on_path(path_var: Option<OsString>) -> Check {
    let found = path_var.iter().flat_map(std::env::split_paths).find(|dir| {
        std::fs::metadata(dir.join("airlock"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    match found {
        Some(dir) => Check::ok(format!(
            "airlock is on PATH ({}), where the plugin's launcher finds it",
            dir.join("airlock").display()
        )),
        None => Check::warn(
            "airlock is not on PATH: cargo install --path host puts it there (the plugin's \
             launcher also looks in ~/.cargo/bin; the `claude mcp add` command below uses the \
             full path and needs no PATH)",
        ),
    }
}

/// Environment variables that keep Claude Code from registering any channel.
pub fn check_claude_env(get: impl Fn(&str) -> Option<OsString>) -> Vec<Check> {
    [
        "DISABLE_TELEMETRY",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    ]
    .into_iter()
    .filter(|var| get(var).is_some_and(|v| !v.is_empty()))
    .map(|var| {
        Check::warn(format!(
            "{var} is set here; with it, Claude Code has been seen to report channels as \
                 not currently available: launch claude without it (env -u {var} claude …)"
        ))
    })
    .collect()
}

/// The commands that register airlock with Claude Code and start a session
/// with its channel. `home` is given when `AIRLOCK_HOME` is set.
pub fn connect_text(exe: &Path, home: Option<&Path>) -> String {
    let env = home
        .map(|h| {
            format!(
                " -e {}",
                shell_quote(&format!("AIRLOCK_HOME={}", h.display()))
            )
        })
        .unwrap_or_default();
    format!(
        "Connect Claude Code (once; add --scope user after `airlock` to use it in every project):\n  \
         claude mcp add airlock{env} -- {} serve\n\
         Start a session with the channel (at every launch):\n  \
         claude --dangerously-load-development-channels server:airlock\n",
        shell_quote(&exe.display().to_string())
    )
}

const SHARP_EDGES: &str = "\
Sharp edges:
  - The channel flag is needed at every launch, and Claude Code asks you to confirm it each time.
    Without it airlock still runs as an MCP server (its tools work), but no message arrives.
    In print mode (-p) there is no confirmation, so the channel is dropped.
  - `--channels server:airlock` is skipped (not on the allowlist); use the flag above.
  - .mcp.json (or `claude mcp add`) alone registers the MCP server; it does not enable it as a channel.
  - Messages do not arrive? Start claude with --debug and look in ~/.claude/debug/latest for
      MCP server \"airlock\": Channel notifications skipped: <reason>
    The reason says why the channel was not registered.
";

/// `s` as one shell word: unchanged if it is plain, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_their_tag_and_no_control_characters() {
        assert_eq!(Check::ok("fine").to_string(), "ok   fine");
        assert_eq!(Check::warn("hm").to_string(), "WARN hm");
        assert_eq!(
            Check::fail("bad\n\u{1b}[2Jthing").to_string(),
            "FAIL bad  [2Jthing"
        );
        assert_eq!(
            exit_code(&[Check::ok("a"), Check::warn("b")]),
            ExitCode::SUCCESS
        );
        assert_eq!(
            exit_code(&[Check::ok("a"), Check::fail("b")]),
            ExitCode::from(1)
        );
    }

    #[test]
    fn a_busy_port_fails_with_the_way_out() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let c = check_port("fakechat", port, Path::new("/h/airlock.toml"));
        assert_eq!(c.level, Level::Fail, "{c}");
        assert!(c.text.contains(&format!("port {port}")), "{c}");
        assert!(c.text.contains("another airlock"), "{c}");
        assert!(c.text.contains("fakechat plugin"), "{c}");
        assert!(c.text.contains("[components.fakechat]"), "{c}");
        assert!(c.text.contains("/h/airlock.toml"), "{c}");
        drop(held);
        let c = check_port("fakechat", port, Path::new("/h/airlock.toml"));
        assert_eq!(c.level, Level::Ok, "{c}");
        assert_eq!(
            check_port("x", 0, Path::new("/h/airlock.toml")).level,
            Level::Ok
        );
    }

    #[test]
    fn ports_follow_the_serve_rules() {
        let settings = |p: Option<&str>| {
            p.map(|p| BTreeMap::from([("port".to_string(), p.to_string())]))
                .unwrap_or_default()
        };
        assert_eq!(
            inbound_port("fakechat", &settings(None)),
            Ok(crate::serve::FAKECHAT_PORT)
        );
        assert_eq!(inbound_port("fakechat", &settings(Some("9001"))), Ok(9001));
        assert_eq!(inbound_port("webhook", &settings(Some("9002"))), Ok(9002));
        let err = inbound_port("webhook", &settings(None)).unwrap_err();
        assert!(err.contains("[components.webhook]"), "{err}");
        let err = inbound_port("fakechat", &settings(Some("http"))).unwrap_err();
        assert!(err.contains("not a port number"), "{err}");
        assert!(inbound_port("fakechat", &settings(Some("70000"))).is_err());
    }

    #[test]
    fn home_mode() {
        let p = Path::new("/h");
        assert_eq!(check_home_mode(p, 0o40700).level, Level::Ok);
        assert!(check_home_mode(p, 0o700).text.contains("mode 0700"));
        let c = check_home_mode(p, 0o500);
        assert_eq!(c.level, Level::Fail);
        assert!(c.text.contains("chmod 700 /h"), "{c}");
        assert_eq!(check_home_mode(p, 0o755).level, Level::Fail);
    }

    #[test]
    fn config_missing_fine_and_broken() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("airlock.toml");
        let (c, config) = check_config(&path);
        assert_eq!(c.level, Level::Ok, "{c}");
        assert!(c.text.contains("defaults"), "{c}");
        assert_eq!(config, Some(Config::default()));

        std::fs::write(&path, "[components.fakechat]\nenabled = true\n").unwrap();
        let (c, config) = check_config(&path);
        assert_eq!(c.level, Level::Ok, "{c}");
        assert_eq!(config.unwrap().components["fakechat"].enabled, Some(true));

        std::fs::write(
            &path,
            "[components.fakechat]\nenabled = true\nsurprise = 1\n",
        )
        .unwrap();
        let (c, config) = check_config(&path);
        assert_eq!(c.level, Level::Fail, "{c}");
        assert!(config.is_none());
        assert!(c.text.contains(&path.display().to_string()), "{c}");
        assert!(c.text.contains("line 3, column 1"), "{c}");
        assert!(c.text.contains("unknown field"), "{c}");
        assert!(!c.to_string().contains('\n'));
    }

    #[test]
    fn sessions_are_summed_up_and_what_waits_is_a_warning() {
        use super::super::sessions_view::{Connection, Listing, Session, Unstarted};
        use crate::hub::store::{ConnectionRow, RouteRow, SessionRow};
        let session = |name: &str, live: bool, waiting: usize| Session {
            row: SessionRow {
                name: name.into(),
                cwd: format!("/srv/{name}"),
                pid: 7,
                started_at: 0,
                stopped_at: None,
                waiting,
            },
            live,
            owns: vec![],
            chats: vec![],
        };
        let connection = |adapter: &str, held: bool| Connection {
            row: ConnectionRow {
                adapter: adapter.into(),
                session: "api".into(),
                pid: 7,
                since: 0,
            },
            held,
        };
        let empty = Listing {
            sessions: vec![],
            connections: vec![],
            routes: vec![],
            held: 0,
            held_chats: Vec::new(),
            unstarted: vec![],
        };
        let checks = sessions_checks(&empty, &[]);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].level, Level::Ok);
        assert!(checks[0].text.starts_with("no session has run yet"));

        let running = ["telegram".to_string(), "discord".to_string()];
        let l = Listing {
            sessions: vec![session("api", true, 0), session("web", false, 3)],
            connections: vec![
                connection("telegram", true),
                connection("discord", false),
                connection("gone", false),
            ],
            routes: vec![RouteRow {
                adapter: "telegram".into(),
                chat: "5".into(),
                session: "web".into(),
                at: 0,
                by: "terminal".into(),
            }],
            held: 2,
            held_chats: vec![("telegram:9".into(), 2)],
            unstarted: vec![Unstarted {
                name: "docs".into(),
                waiting: 1,
            }],
        };
        let text: Vec<String> = sessions_checks(&l, &running)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(text[0], "ok   sessions: 1 live (api), 1 away (web)");
        assert_eq!(
            text[1],
            "ok   telegram: connection held by session api (pid 7)"
        );
        assert!(
            text[2].starts_with("WARN discord: the connection was last held by session api"),
            "{text:#?}"
        );
        assert_eq!(text[3], "ok   1 chat bound: telegram:5 → web");
        assert!(
            text[4].starts_with("WARN 3 events wait for session web, which is away")
                && text[4].contains("/srv/web"),
            "{text:#?}"
        );
        assert!(
            text[5].starts_with("WARN 1 event waits for session docs, which has never run")
                && text[5].contains("airlock serve --session docs"),
            "{text:#?}"
        );
        assert!(
            text[6].starts_with("WARN 2 events held for chats bound to no session")
                && text[6].contains("airlock sessions route ADAPTER:CHAT NAME"),
            "{text:#?}"
        );
        assert_eq!(text.len(), 7, "the gone adapter's connection is history");
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
        assert_eq!(line_column("é\nx", 1), (1, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
    }

    #[test]
    fn connect_commands() {
        let text = connect_text(Path::new("/opt/air lock/airlock"), None);
        assert!(
            text.contains("claude mcp add airlock -- '/opt/air lock/airlock' serve\n"),
            "{text}"
        );
        assert!(!text.contains("AIRLOCK_HOME"), "{text}");
        assert!(
            text.contains("claude --dangerously-load-development-channels server:airlock\n"),
            "{text}"
        );
        let text = connect_text(Path::new("/usr/bin/airlock"), Some(Path::new("/srv/a")));
        assert!(
            text.contains(
                "claude mcp add airlock -e AIRLOCK_HOME=/srv/a -- /usr/bin/airlock serve"
            ),
            "{text}"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/usr/bin/airlock"), "/usr/bin/airlock");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn airlock_on_path() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(check_on_path(None).level, Level::Warn);
        let var = std::env::join_paths([tmp.path()]).unwrap();
        assert_eq!(check_on_path(Some(var.clone())).level, Level::Warn);
        let exe = tmp.path().join("airlock");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        assert_eq!(
            check_on_path(Some(var.clone())).level,
            Level::Warn,
            "not executable"
        );
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = check_on_path(Some(var));
        assert_eq!(c.level, Level::Ok, "{c}");
        assert!(c.text.contains(&exe.display().to_string()), "{c}");
    }

    #[test]
    fn claude_environment() {
        assert!(check_claude_env(|_| None).is_empty());
        let checks = check_claude_env(|v| (v == "DISABLE_TELEMETRY").then(|| "1".into()));
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].level, Level::Warn);
        assert!(checks[0].text.contains("DISABLE_TELEMETRY"));
        assert!(check_claude_env(|_| Some(OsString::new())).is_empty());
    }

    #[test]
    fn a_fresh_home_passes_and_a_missing_component_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("home");
        let port = {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            root.join("airlock.toml"),
            format!("[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n"),
        )
        .unwrap();
        let checks = examine(&root);
        assert!(checks.iter().all(|c| c.level == Level::Ok), "{checks:#?}");
        assert!(
            checks
                .iter()
                .any(|c| c.text == "fakechat (adapter, bundled) loads")
        );

        std::fs::write(
            root.join("airlock.toml"),
            "[components.matrix]\nenabled = true\n",
        )
        .unwrap();
        let checks = examine(&root);
        assert!(
            checks
                .iter()
                .any(|c| c.level == Level::Fail && c.text.contains("no component matrix")),
            "{checks:#?}"
        );
    }
}
