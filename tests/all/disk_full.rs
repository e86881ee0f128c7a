//! A full disk and a read-only state directory, on a real filesystem: the
//! state directory is a small tmpfs mounted for the test, filled with a
//! filler file until SQLite's writes fail, then freed.
//!
//! What must hold while the disk is full: nothing is confirmed to the
//! platform (Telegram's offset stays), stderr says what is wrong and how to
//! fix it (once, not per retry), and the session keeps its MCP connection.
//! Once space returns, every update is delivered, exactly once, without a
//! restart. A read-only state directory stops `airlock serve` at start.
//!
//! Mounting needs root (CI runs as root); elsewhere each test prints why it
//! is skipped and passes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use serde_json::json;

use crate::session::*;
use crate::support::*;
use crate::telegram::{
    ALICE, TOKEN, allow_alice, config, from_alice, polling, sent_texts, serve_logging,
};

/// A tmpfs mounted at a path for the test's lifetime; unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) at `path`,
    /// or says why it cannot and returns `None`.
    fn mount(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self {
                path: path.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    /// Remounts it read-only.
    fn read_only(&self) {
        let out = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount ro: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Fills it: a filler file grows until nothing more fits, in smaller
    /// and smaller writes, so that no byte is left.
    fn fill(&self) -> Filler {
        let path = self.path.join("filler");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut chunk = 1 << 16;
        let zeros = vec![0u8; chunk];
        while chunk > 0 {
            match file.write(&zeros[..chunk]) {
                Ok(n) if n == chunk => {}
                Ok(_) | Err(_) => chunk /= 2,
            }
        }
        Filler { path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a child that is still exiting must not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The filler file; [`Filler::free`] deletes it.
struct Filler {
    path: PathBuf,
}

impl Filler {
    fn free(self) {
        std::fs::remove_file(&self.path).unwrap();
    }
}

/// A Telegram state directory on a fresh tmpfs of `size`, or `None` (and
/// the reason printed) where mounting is not allowed.
fn telegram_on_tmpfs(fake: &FakeTelegram, size: &str) -> Option<(TempHome, Tmpfs)> {
    let home = TempHome::new();
    let fs = Tmpfs::mount(&home.path(), size)?;
    home.secret("TELEGRAM_BOT_TOKEN", TOKEN);
    home.config(&config(fake, ""));
    Some((home, fs))
}

/// `airlock serve` (warnings logged) on an 8 MB tmpfs with Telegram, Alice
/// allowed, once it polls the fake; `None` where no tmpfs can be mounted.
async fn serving_on_tmpfs(fake: &FakeTelegram) -> Option<(TempHome, Tmpfs, Session)> {
    let (home, fs) = telegram_on_tmpfs(fake, "8m")?;
    allow_alice(&home).await;
    let session = Session::start_command(
        serve_logging(&home, "warn"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    polling(fake).await;
    Some((home, fs, session))
}

/// Waits until each of `texts` has reached the session, then a second more,
/// and asserts that each arrived exactly once and nothing else did.
async fn each_arrives_once(session: &mut Session, texts: &[&str]) {
    let mut counts = BTreeMap::new();
    let deadline = Instant::now() + SOON;
    while counts.len() < texts.len() && Instant::now() < deadline {
        collect(session, &mut counts, Duration::from_millis(200)).await;
    }
    collect(session, &mut counts, Duration::from_secs(1)).await;
    let expected: BTreeMap<String, usize> = texts.iter().map(|t| (t.to_string(), 1)).collect();
    assert_eq!(counts, expected, "stderr:\n{}", session.log.text());
}

/// The offset of each getUpdates the fake received, in order.
fn offsets(fake: &FakeTelegram) -> Vec<Option<i64>> {
    fake.calls_to("getUpdates")
        .iter()
        .map(|c| c.param("offset").and_then(serde_json::Value::as_i64))
        .collect()
}

/// Events the session receives within `within` of each other, by content.
async fn collect(session: &mut Session, counts: &mut BTreeMap<String, usize>, within: Duration) {
    while let Some(e) = session.event_within(within).await {
        let text = e["content"].as_str().unwrap_or_default().to_owned();
        *counts.entry(text).or_default() += 1;
    }
}

/// Injects probes one at a time until storing one fails (SQLite's WAL may
/// have had room left after the filler), telling that from a slow delivery
/// by what airlock says: the `n`th episode of a full disk. Returns the
/// texts sent, the last one stuck, and its update_id.
async fn probe_until_stuck(
    fake: &FakeTelegram,
    session: &mut Session,
    first_id: i64,
    said: &str,
    n: usize,
) -> (Vec<String>, i64) {
    let mut sent = Vec::new();
    for i in 0..100 {
        let text = format!("probe {i}");
        let update_id = fake.inject_update(from_alice(first_id + i, &text));
        sent.push(text.clone());
        let deadline = Instant::now() + SOON;
        loop {
            if let Some(e) = session.event_within(Duration::from_millis(100)).await {
                assert_eq!(e["content"], text.as_str());
                break;
            }
            if session.log.text().matches(said).count() >= n {
                return (sent, update_id);
            }
            assert!(
                Instant::now() < deadline,
                "{text} neither delivered nor refused:\n{}",
                session.log.text()
            );
        }
    }
    panic!("the database never filled; stderr:\n{}", session.log.text());
}

/// How many warnings and errors `log` holds.
fn warnings(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .count()
}

/// What airlock says once per episode of a full disk.
const FULL: &str = "free space there; airlock retries every 2s and nothing is acknowledged";
/// What it says when the episode ends.
const ROOM_AGAIN: &str = "the disk has room again: telegram updates are stored";

#[tokio::test]
async fn a_full_disk_confirms_nothing_says_so_once_and_delivery_resumes_once_freed() {
    let fake = FakeTelegram::start(TOKEN).await;
    let Some((home, fs, mut session)) = serving_on_tmpfs(&fake).await else {
        return;
    };
    fake.inject_update(from_alice(1, "before"));
    assert_eq!(session.event().await["content"], "before");

    let filler = fs.fill();
    let lines_before = warnings(&session.log.text());
    let (probes, stuck_id) = probe_until_stuck(&fake, &mut session, 100, FULL, 1).await;
    let stuck = probes.last().unwrap().clone();
    logged(&session, FULL).await;
    let log = session.log.text();
    let said = log.lines().find(|l| l.contains(FULL)).unwrap();
    assert!(
        said.contains("cannot store 1 telegram update(s): the disk holding AIRLOCK_HOME (")
            && said.contains(&format!("{}) is full", home.path().display())),
        "{said}"
    );
    let more = ["while full 1", "while full 2"];
    for (i, text) in more.iter().enumerate() {
        fake.inject_update(from_alice(200 + i as i64, text));
    }
    // Past one retry: nothing delivered, nothing confirmed, said once.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(
        session
            .event_within(Duration::from_millis(100))
            .await
            .is_none()
    );
    assert_eq!(fake.pending_updates(), 3, "the updates stay unconfirmed");
    let polled = offsets(&fake);
    assert_eq!(
        polled.last(),
        Some(&Some(stuck_id)),
        "the last getUpdates before the disk filled asked from the stuck update"
    );
    let log = session.log.text();
    assert_eq!(log.matches(FULL).count(), 1, "said once:\n{log}");
    assert!(
        log.matches("cannot mark").count() <= 1,
        "marking failures said once:\n{log}"
    );

    // MCP still answers, and a reply still goes out (its audit row cannot
    // be written: stderr says so, the reply is not failed for it).
    assert!(session.tool_names().await.contains(&"reply".to_string()));
    let sent = session
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{ALICE}"), "text": "still here"}),
        )
        .await;
    assert!(!outcome(&sent).0, "{sent}");
    assert!(sent_texts(&fake).contains(&"still here".to_string()));
    // A few lines for the whole episode (the store, the marking of what was
    // delivered, the search index, the reply's audit row), however many
    // retries it held.
    let log = session.log.text();
    assert!(
        warnings(&log) - lines_before <= 5,
        "too much said while full:\n{log}"
    );

    filler.free();
    each_arrives_once(&mut session, &[stuck.as_str(), more[0], more[1]]).await;
    // The first getUpdates after the disk had room asked from the same
    // update again; then all three were confirmed.
    assert_eq!(offsets(&fake).get(polled.len()), Some(&Some(stuck_id)));
    until_true("the updates to be confirmed", || {
        fake.pending_updates() == 0
    })
    .await;
    logged(&session, ROOM_AGAIN).await;
    session.close().await;
}

/// Waits until `cond` holds, failing with `what` after [`SOON`].
async fn until_true(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn fill_and_free_cycles_at_different_moments_lose_and_repeat_nothing() {
    let fake = FakeTelegram::start(TOKEN).await;
    let Some((_home, fs, mut session)) = serving_on_tmpfs(&fake).await else {
        return;
    };
    let mut counts = BTreeMap::new();
    let mut expected = BTreeMap::new();
    let mut id = 1;
    let mut inject = |fake: &FakeTelegram, expected: &mut BTreeMap<String, usize>, what: &str| {
        let text = format!("{what} {id}");
        fake.inject_update(from_alice(id, &text));
        expected.insert(text, 1);
        id += 1;
    };
    // Where each cycle frees the disk, after the store first failed.
    let holds = [0, 700, 2300];
    for (cycle, hold) in holds.iter().enumerate() {
        // A burst just before the disk fills: stored or held back, whichever
        // the race gives, and delivered once either way.
        for _ in 0..3 {
            inject(&fake, &mut expected, "burst");
        }
        let filler = fs.fill();
        let deadline = Instant::now() + SOON;
        while session.log.text().matches(FULL).count() <= cycle {
            assert!(
                Instant::now() < deadline,
                "the store never failed:\n{}",
                session.log.text()
            );
            inject(&fake, &mut expected, "probe");
            collect(&mut session, &mut counts, Duration::from_millis(300)).await;
        }
        inject(&fake, &mut expected, "while full");
        tokio::time::sleep(Duration::from_millis(*hold)).await;
        collect(&mut session, &mut counts, Duration::from_millis(100)).await;
        filler.free();
        let deadline = Instant::now() + SOON;
        while counts.len() < expected.len() && Instant::now() < deadline {
            collect(&mut session, &mut counts, Duration::from_millis(200)).await;
        }
        assert_eq!(
            session.log.text().matches(ROOM_AGAIN).count(),
            cycle + 1,
            "{}",
            session.log.text()
        );
    }
    collect(&mut session, &mut counts, Duration::from_secs(1)).await;
    assert_eq!(counts, expected, "stderr:\n{}", session.log.text());
    until_true("every update to be confirmed", || {
        fake.pending_updates() == 0
    })
    .await;
    session.close().await;
}

#[tokio::test]
async fn a_read_only_state_directory_stops_serve_at_start_with_the_cause() {
    let fake = FakeTelegram::start(TOKEN).await;
    let Some((home, fs)) = telegram_on_tmpfs(&fake, "8m") else {
        return;
    };
    // A state directory that was in use: database, cache, ledgers.
    allow_alice(&home).await;
    fs.read_only();
    let out = tokio::time::timeout(
        SOON,
        serve_logging(&home, "warn")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("serve did not stop")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert_eq!(stderr.trim().lines().count(), 1, "one line:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "the state directory {} cannot be written (",
            home.path().display()
        )) && stderr.contains("Read-only file system")
            && stderr.contains("remount it read-write"),
        "{stderr}"
    );
    assert!(fake.calls_to("getUpdates").is_empty(), "no poll");
}

/// The Discord cursor airlock committed (`None` before the first).
fn discord_cursor(home: &TempHome) -> Option<String> {
    let db = rusqlite::Connection::open_with_flags(
        home.path().join("airlock.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.busy_timeout(SOON).unwrap();
    db.query_row(
        "SELECT cursor FROM cursors WHERE adapter = 'discord'",
        [],
        |r| r.get(0),
    )
    .ok()
}

#[tokio::test]
async fn discord_events_are_held_while_the_disk_is_full_and_their_sequence_is_not_stored() {
    use crate::discord::{TOKEN as DISCORD_TOKEN, dm_from_alice};
    let fake = crate::discord::fake().await;
    let home = TempHome::new();
    let Some(fs) = Tmpfs::mount(&home.path(), "8m") else {
        return;
    };
    home.secret("DISCORD_BOT_TOKEN", DISCORD_TOKEN);
    home.config(&crate::discord::config(&fake));
    crate::discord::allow_alice(&home).await;
    let mut session = crate::discord::start(&home, &fake, "warn").await;
    let mut id = 3_000_000_000_000_000_001u64;
    let mut dm = |text: &str| {
        fake.dispatch("MESSAGE_CREATE", dm_from_alice(&id.to_string(), text));
        id += 1;
    };
    dm("before");
    assert_eq!(session.event().await["content"], "before");
    let mut cursor = discord_cursor(&home);
    assert!(cursor.is_some(), "a sequence is stored once events are");

    let filler = fs.fill();
    let said = "airlock holds them and what follows, retries every 2s";
    let mut stuck = None;
    'probes: for i in 0..100 {
        let text = format!("probe {i}");
        dm(&text);
        let deadline = Instant::now() + SOON;
        loop {
            if let Some(e) = session.event_within(Duration::from_millis(100)).await {
                assert_eq!(e["content"], text.as_str());
                cursor = discord_cursor(&home);
                break;
            }
            if session.log.text().contains(said) {
                stuck = Some(text);
                break 'probes;
            }
            assert!(
                Instant::now() < deadline,
                "{text} neither delivered nor held"
            );
        }
    }
    let stuck = stuck.expect("the database never filled");
    let more = ["while full 1", "while full 2"];
    for text in more {
        dm(text);
    }
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(
        session
            .event_within(Duration::from_millis(100))
            .await
            .is_none()
    );
    assert_eq!(
        discord_cursor(&home),
        cursor,
        "no sequence stored while full"
    );
    assert_eq!(session.log.text().matches(said).count(), 1, "said once");
    assert!(session.tool_names().await.contains(&"reply".to_string()));

    filler.free();
    each_arrives_once(&mut session, &[stuck.as_str(), more[0], more[1]]).await;
    assert_ne!(
        discord_cursor(&home),
        cursor,
        "the sequence moves on once stored"
    );
    logged(
        &session,
        "the disk has room again: discord events are stored again",
    )
    .await;
    session.close().await;
}
