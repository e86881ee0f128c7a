//! The hub on Telegram: several `airlock serve` processes, one poller among
//! them, chats bound to sessions with `/session`, held and away events, a
//! kill -9 of the poller mid-burst, the connection holder killed at random
//! moments again and again, tools kept to a session's own chats, and the
//! permission relay with request ids that collide across sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use super::*;
use crate::relay::request;
use crate::telegram::{
    ALICE, TOKEN, from_alice, polling, private, telegram_home, text_update, until, user,
};

/// A second allowed user; his direct chat has the same id.
const BOB: i64 = 222;

/// A direct text message from `from` (whose direct chat has the same id).
fn dm(message_id: i64, from: i64, name: &str, text: &str) -> Value {
    text_update(message_id, user(from, name), private(from, name), text)
}

/// A direct text message from Bob.
fn from_bob(message_id: i64, text: &str) -> Value {
    dm(message_id, BOB, "Bob", text)
}

/// Every sendMessage text the fake received for chat `chat`, in order.
fn texts_to(fake: &FakeTelegram, chat: i64) -> Vec<String> {
    fake.calls_to("sendMessage")
        .iter()
        .filter(|c| c.param("chat_id") == Some(&json!(chat)))
        .filter_map(|c| c.param("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// How many texts sent to `chat` contain `needle`.
fn count_to(fake: &FakeTelegram, chat: i64, needle: &str) -> usize {
    texts_to(fake, chat)
        .iter()
        .filter(|t| t.contains(needle))
        .count()
}

/// A home on `fake` (with `extra` config lines) where Alice and Bob may write.
async fn alice_and_bob(fake: &FakeTelegram, extra: &str) -> TempHome {
    let home = telegram_home(fake, extra);
    for id in [ALICE, BOB] {
        cli_ok(&home, &["access", "allow", "telegram", &id.to_string()]).await;
    }
    home
}

/// The first session: it starts first, so it polls.
async fn first(home: &TempHome, fake: &FakeTelegram, name: &str) -> Session {
    let session = session_as(home, name, "warn").await;
    polling(fake).await;
    session
}

/// `/session NAME` typed in `chat` (the direct chat of `from`); returns once
/// the confirmation reached the chat.
async fn bind(fake: &FakeTelegram, message_id: i64, from: i64, who: &str, name: &str) {
    fake.inject_update(dm(message_id, from, who, &format!("/session {name}")));
    let said = format!("This chat now goes to session {name} (");
    until(&format!("the binding of chat {from} to {name}"), || {
        count_to(fake, from, &said) == 1
    })
    .await;
}

/// Waits until the fake handed over every update and airlock confirmed
/// them (each was gated, and stored or dropped).
async fn consumed(fake: &FakeTelegram) {
    until("every update to be confirmed", || {
        fake.pending_updates() == 0
    })
    .await;
}

/// Two sessions, `api` (the poller) and `web`; Alice's chat bound to `api`
/// and Bob's to `web`, and one message of each delivered (so each chat is
/// one the tools may write to).
async fn two_bound(fake: &FakeTelegram, home: &TempHome) -> (Session, Session) {
    let mut api = first(home, fake, "api").await;
    let mut web = session_as(home, "web", "warn").await;
    bind(fake, 1, ALICE, "Alice", "api").await;
    bind(fake, 2, BOB, "Bob", "web").await;
    fake.inject_update(from_alice(3, "alice: hello"));
    fake.inject_update(from_bob(4, "bob: hello"));
    let e = api.event().await;
    assert_eq!(
        (session_of(&e), e["content"].as_str()),
        ("api", Some("alice: hello")),
        "{e}"
    );
    let e = web.event().await;
    assert_eq!(
        (session_of(&e), e["content"].as_str()),
        ("web", Some("bob: hello")),
        "{e}"
    );
    (api, web)
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_chats_bound_to_two_sessions_each_reach_only_their_own() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, "").await;
    let (mut api, mut web) = two_bound(&fake, &home).await;

    // Interleaved, as two people write at once.
    for i in 0..3 {
        fake.inject_update(from_alice(10 + 2 * i, &format!("alice {i}")));
        fake.inject_update(from_bob(11 + 2 * i, &format!("bob {i}")));
    }
    let to_api = events(&mut api, "api", 3).await;
    let to_web = events(&mut web, "web", 3).await;
    assert_eq!(contents(&to_api), ["alice 0", "alice 1", "alice 2"]);
    assert_eq!(contents(&to_web), ["bob 0", "bob 1", "bob 2"]);
    for e in &to_api {
        assert_eq!(session_of(e), "api", "{e}");
        assert_eq!(e["meta"]["chat_id"], format!("telegram:{ALICE}"), "{e}");
    }
    for e in &to_web {
        assert_eq!(session_of(e), "web", "{e}");
        assert_eq!(e["meta"]["chat_id"], format!("telegram:{BOB}"), "{e}");
    }
    nothing_for(&mut api, "api").await;
    nothing_for(&mut web, "web").await;
    // Neither chat was asked to pick: both were bound before they wrote.
    for chat in [ALICE, BOB] {
        assert_eq!(
            count_to(&fake, chat, "/session "),
            0,
            "{:?}",
            texts_to(&fake, chat)
        );
    }
    api.close().await;
    web.close().await;
}

#[tokio::test]
async fn an_unbound_chat_is_held_with_one_pick_reply_and_routed_by_session() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, "").await;
    let mut api = first(&home, &fake, "api").await;
    let mut web = session_as(&home, "web", "warn").await;

    fake.inject_update(from_alice(1, "first"));
    fake.inject_update(from_alice(2, "second"));
    consumed(&fake).await;
    until("the reply asking Alice to pick", || {
        count_to(&fake, ALICE, "/session ") > 0
    })
    .await;
    nothing_for(&mut api, "api").await;
    nothing_for(&mut web, "web").await;
    let texts = texts_to(&fake, ALICE);
    assert_eq!(texts.len(), 1, "one reply for two held messages: {texts:?}");
    assert!(
        texts[0].contains("/session api") && texts[0].contains("/session web"),
        "{texts:?}"
    );

    bind(&fake, 3, ALICE, "Alice", "web").await;
    let got = events(&mut web, "web", 2).await;
    assert_eq!(contents(&got), ["first", "second"], "in the order written");
    assert!(got.iter().all(|e| session_of(e) == "web"), "{got:?}");
    // And what she writes now goes straight there.
    fake.inject_update(from_alice(4, "third"));
    assert_eq!(web.event().await["content"], "third");
    nothing_for(&mut api, "api").await;
    nothing_for(&mut web, "web").await;
    assert_eq!(
        count_to(&fake, ALICE, "/session api"),
        1,
        "{:?}",
        texts_to(&fake, ALICE)
    );
    api.close().await;
    web.close().await;
}

#[tokio::test]
async fn a_chat_whose_session_is_away_waits_is_told_once_and_is_delivered_on_return() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, "").await;
    let mut api = first(&home, &fake, "api").await;
    let mut web = session_as(&home, "web", "warn").await;
    bind(&fake, 1, ALICE, "Alice", "web").await;
    fake.inject_update(from_alice(2, "before"));
    assert_eq!(web.event().await["content"], "before");

    close_and_wait(&home, "web", web).await;
    for i in 0..5 {
        fake.inject_update(from_alice(10 + i, &format!("while away {i}")));
    }
    consumed(&fake).await;
    until("the away notice", || count_to(&fake, ALICE, "is away") > 0).await;
    nothing_for(&mut api, "api").await;
    assert_eq!(
        count_to(&fake, ALICE, "is away"),
        1,
        "told once for five messages: {:?}",
        texts_to(&fake, ALICE)
    );
    assert!(
        texts_to(&fake, ALICE)
            .iter()
            .any(|t| t.contains("Session web is away")),
        "{:?}",
        texts_to(&fake, ALICE)
    );

    let mut web = session_as(&home, "web", "warn").await;
    let got = events(&mut web, "web", 5).await;
    assert_eq!(
        contents(&got),
        (0..5)
            .map(|i| format!("while away {i}"))
            .collect::<Vec<_>>(),
        "all of them, in order"
    );
    assert!(got.iter().all(|e| session_of(e) == "web"), "{got:?}");
    nothing_for(&mut web, "web").await;
    nothing_for(&mut api, "api").await;
    // Back: the next message goes straight to it, and nobody is told again.
    fake.inject_update(from_alice(20, "welcome back"));
    assert_eq!(web.event().await["content"], "welcome back");
    assert_eq!(
        count_to(&fake, ALICE, "is away"),
        1,
        "{:?}",
        texts_to(&fake, ALICE)
    );
    api.close().await;
    web.close().await;
}

// ---------------------------------------------------------------------------
// The poller killed
// ---------------------------------------------------------------------------

/// A session driven by hand (so it can be killed); its handshake done.
async fn raw_as(home: &TempHome, name: &str) -> Raw {
    let mut raw = Raw::start_command(serve_as(home, name, "warn"));
    raw.initialize().await;
    raw.initialized().await;
    raw
}

/// `session`'s events until it has `n` (or [`SOON`] passes with none new),
/// with the moment the `n`th came; then any more that come within
/// [`QUIET`]. Each must be routed to `name`.
async fn collect(session: &mut Session, name: &str, n: usize) -> (Vec<Value>, Instant) {
    let mut got = Vec::new();
    while got.len() < n {
        match session.event_within(SOON).await {
            Some(e) => got.push(e),
            None => break,
        }
    }
    let at = Instant::now();
    while let Some(e) = session.event_within(QUIET).await {
        got.push(e);
    }
    for e in &got {
        assert_eq!(session_of(e), name, "{e}");
    }
    (got, at)
}

#[tokio::test]
async fn the_poller_killed_mid_burst_is_replaced_and_every_message_arrives_exactly_once() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, NO_SENDER_LIMIT).await;
    let mut poller = raw_as(&home, "poller").await;
    polling(&fake).await;
    let mut api = session_as(&home, "api", "warn").await;
    let mut web = session_as(&home, "web", "warn").await;
    bind(&fake, 1, ALICE, "Alice", "api").await;
    bind(&fake, 2, BOB, "Bob", "web").await;

    // 60 messages, Alice's and Bob's in turn; the poller dies a third of
    // the way in, once it has stored some of them, while more come.
    const BURST: i64 = 60;
    let mut killed_at = None;
    for i in 0..BURST {
        let id = 100 + i;
        if i % 2 == 0 {
            fake.inject_update(from_alice(id, &format!("m{id}")));
        } else {
            fake.inject_update(from_bob(id, &format!("m{id}")));
        }
        if i == BURST / 3 {
            until("the poller to confirm part of the burst", || {
                fake.pending_updates() < (i + 1) as usize
            })
            .await;
            poller.child.start_kill().expect("kill -9 the poller");
            killed_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let status = poller.child.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status:?}"
    );
    assert!(
        !poller.log.text().contains("panicked"),
        "{}",
        poller.log.text()
    );

    let ((to_api, api_done), (to_web, web_done)) = tokio::join!(
        collect(&mut api, "api", (BURST / 2) as usize),
        collect(&mut web, "web", (BURST / 2) as usize)
    );
    let all_in = api_done.max(web_done) - killed_at.unwrap();
    let ids = |got: &[Value]| -> Vec<i64> {
        got.iter()
            .map(|e| e["meta"]["message_id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (api_ids, web_ids) = (ids(&to_api), ids(&to_web));
    let mut all: Vec<i64> = api_ids.iter().chain(&web_ids).copied().collect();
    all.sort();
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    let duplicates: Vec<i64> = all
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    let missing: Vec<i64> = (100..100 + BURST).filter(|i| !unique.contains(i)).collect();
    assert!(
        duplicates.is_empty() && missing.is_empty(),
        "exactly once: duplicated {duplicates:?}, missing {missing:?}\napi got {api_ids:?}\nweb \
         got {web_ids:?}\napi stderr:\n{}\nweb stderr:\n{}",
        api.log.text(),
        web.log.text()
    );
    // Each chat reached its own session, in the order written.
    let evens: Vec<i64> = (100..100 + BURST).step_by(2).collect();
    let odds: Vec<i64> = (101..100 + BURST).step_by(2).collect();
    assert_eq!(api_ids, evens, "Alice's messages, to api, in order");
    assert_eq!(web_ids, odds, "Bob's messages, to web, in order");

    // Each message was stored once, some by the poller before it died and
    // the rest by the survivor that took over.
    let export = cli_ok(&home, &["audit", "export", "--jsonl"]).await;
    let mut stored_by: Vec<(i64, String)> = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["kind"] == "inbound")
        .filter_map(|r| {
            let detail: Value = serde_json::from_str(r["detail"].as_str()?).ok()?;
            let id: i64 = detail["message_id"].as_str()?.parse().ok()?;
            let by = r["session"].as_str()?.split(" (pid").next()?.to_owned();
            (detail["outcome"] == "queued" && id >= 100).then_some((id, by))
        })
        .collect();
    stored_by.sort();
    let ids_stored: Vec<i64> = stored_by.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids_stored,
        (100..100 + BURST).collect::<Vec<_>>(),
        "each stored once: {stored_by:?}"
    );
    let by_poller = stored_by.iter().filter(|(_, by)| by == "poller").count();
    assert!(
        by_poller > 0 && by_poller < BURST as usize,
        "the poller died mid-burst: {stored_by:?}"
    );

    // One of the survivors holds the connection now, and took it soon.
    let conn = rusqlite::Connection::open(home.path().join("airlock.db")).unwrap();
    conn.busy_timeout(SOON).unwrap();
    let holder: String = conn
        .query_row(
            "SELECT session FROM hub_connections WHERE adapter = 'telegram'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(holder == "api" || holder == "web", "{holder}");
    assert!(fake.is_polling(), "someone polls again");
    assert!(
        all_in < Duration::from_secs(3),
        "the last message arrived {all_in:?} after the kill"
    );
    eprintln!("every message arrived once, the last {all_in:?} after the kill");
    api.close().await;
    web.close().await;
}

// ---------------------------------------------------------------------------
// The connection holder killed again and again
// ---------------------------------------------------------------------------

/// How many times the connection holder is killed in one run.
const HOLDER_KILLS: usize = 10;
/// Messages injected around each kill, Alice's and Bob's in turn.
const PER_KILL: i64 = 30;
/// The pause between two injected messages; a burst lasts `PER_KILL` of them.
const GAP: Duration = Duration::from_millis(8);
/// The level the processes log at: takeovers are logged at info.
const HOLDER_LOG: &str = "warn,airlock=info";

/// One channel event as a process wrote it.
#[derive(Debug)]
struct Delivery {
    id: i64,
    session: String,
    chat: String,
}

/// What one process wrote to stdout until it ended.
#[derive(Debug, Default)]
struct Written {
    deliveries: Vec<Delivery>,
    /// A last line cut short by the kill (not JSON): not delivered.
    torn: Option<String>,
    /// Lines that are wrong wherever they are (a cut line that was not the
    /// last, stdout that could not be read).
    bad: Vec<String>,
}

/// One `airlock serve --session NAME` process, its stdout read to the end
/// by a background task as Claude Code reads it: whatever it wrote before a
/// kill counts as delivered.
struct Member {
    name: &'static str,
    /// Which start of this name it is (0 for the first).
    run: usize,
    pid: u32,
    child: tokio::process::Child,
    log: Log,
    ready: Option<tokio::sync::oneshot::Receiver<()>>,
    task: tokio::task::JoinHandle<Written>,
}

impl Member {
    /// Starts session `name` on `home`; each message id it delivers is
    /// counted in `seen`.
    fn start(
        home: &TempHome,
        name: &'static str,
        run: usize,
        seen: &Arc<Mutex<BTreeMap<i64, u32>>>,
    ) -> Self {
        use tokio::io::AsyncWriteExt;
        let Raw {
            child,
            mut stdin,
            mut stdout,
            log,
            ..
        } = Raw::start_command(serve_as(home, name, HOLDER_LOG));
        let pid = child.id().expect("a running child has a pid");
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let seen = seen.clone();
        let task = tokio::spawn(async move {
            let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "holder-kill-test", "version": "1"}}});
            // Writes to a process that is already dead fail: that is fine.
            if let Some(stdin) = stdin.as_mut() {
                let _ = stdin.write_all(format!("{init}\n").as_bytes()).await;
            }
            let mut ready_tx = Some(ready_tx);
            let mut w = Written::default();
            loop {
                let line = match stdout.next_line().await {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(e) => {
                        w.bad.push(format!("stdout unreadable: {e}"));
                        break;
                    }
                };
                if let Some(cut) = w.torn.take() {
                    w.bad.push(format!("a line that is not JSON: {cut:?}"));
                }
                let Ok(m) = serde_json::from_str::<Value>(&line) else {
                    w.torn = Some(line);
                    continue;
                };
                if m["id"] == 1 {
                    if let Some(stdin) = stdin.as_mut() {
                        let line =
                            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
                        let _ = stdin.write_all(line.as_bytes()).await;
                    }
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                    continue;
                }
                if m["method"] != CHANNEL {
                    continue;
                }
                let meta = &m["params"]["meta"];
                let Some(id) = meta["message_id"].as_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                *seen.lock().unwrap().entry(id).or_default() += 1;
                w.deliveries.push(Delivery {
                    id,
                    session: meta["session"].as_str().unwrap_or_default().to_owned(),
                    chat: meta["chat_id"].as_str().unwrap_or_default().to_owned(),
                });
            }
            w
        });
        Self {
            name,
            run,
            pid,
            child,
            log,
            ready: Some(ready),
            task,
        }
    }

    /// Waits for its handshake.
    async fn ready(&mut self) {
        let ready = self.ready.take().expect("waited for once");
        if !matches!(tokio::time::timeout(STARTUP, ready).await, Ok(Ok(()))) {
            panic!(
                "session {} (start {}) did not finish its handshake; stderr:\n{}",
                self.name,
                self.run,
                self.log.text()
            );
        }
    }

    /// `kill -9`, and waits until the process is gone.
    async fn kill(&mut self) {
        self.child.start_kill().expect("kill -9");
        let status = self.child.wait().await.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "session {} (start {}) ended before the kill: {status:?}\n{}",
            self.name,
            self.run,
            self.log.text()
        );
    }
}

/// The index in `members` of the one holding the Telegram connection, as
/// `hub_connections` says: once the row names a running member (a dead
/// holder's row stays until another process takes over).
async fn holder(db: &rusqlite::Connection, members: &[Member]) -> usize {
    let deadline = Instant::now() + SOON;
    loop {
        let row: Option<(String, i64)> = db
            .query_row(
                "SELECT session, pid FROM hub_connections WHERE adapter = 'telegram'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        if let Some((session, pid)) = &row
            && let Some(i) = members.iter().position(|m| i64::from(m.pid) == *pid)
        {
            assert_eq!(session, members[i].name, "pid {pid}");
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "no running session took the connection: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Who writes message `id` (in a direct chat of the same id): Alice the
/// even ones, Bob the odd ones.
fn writer(id: i64) -> i64 {
    if id % 2 == 0 { ALICE } else { BOB }
}

/// Message `id`, from its [`writer`].
fn alternate(id: i64) -> Value {
    match writer(id) {
        ALICE => from_alice(id, &format!("m{id}")),
        _ => from_bob(id, &format!("m{id}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_holder_killed_at_random_moments_many_times_loses_and_repeats_nothing() {
    let started = Instant::now();
    let seed = crate::crash::seed();
    let mut rng = crate::crash::Rng(seed);
    eprintln!("holder kills: {HOLDER_KILLS} kills, AIRLOCK_CRASH_SEED={seed}");
    let fake = Arc::new(FakeTelegram::start(TOKEN).await);
    let home = alice_and_bob(&fake, NO_SENDER_LIMIT).await;
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    // `ops` starts first, so it holds the connection first; no chat is
    // bound to it. Alice's chat goes to `api` and Bob's to `web`.
    let mut members = Vec::new();
    for name in ["ops", "api", "web"] {
        let mut m = Member::start(&home, name, 0, &seen);
        m.ready().await;
        if name == "ops" {
            polling(&fake).await;
        }
        members.push(m);
    }
    bind(&fake, 1, ALICE, "Alice", "api").await;
    bind(&fake, 2, BOB, "Bob", "web").await;
    let db = rusqlite::Connection::open(home.path().join("airlock.db")).unwrap();
    db.busy_timeout(SOON).unwrap();

    // Each round: a burst begins, the holder of the moment is killed at a
    // random point in it, a survivor takes over, and the killed session is
    // started again under the same name (its chat's messages, if it has
    // one, wait for it meanwhile). The burst goes on throughout.
    const FIRST: i64 = 100;
    let burst_span = GAP * PER_KILL as u32;
    let mut next = FIRST;
    let mut dead = Vec::new();
    let mut kills = Vec::new();
    let mut takeovers = Vec::new();
    for _ in 0..HOLDER_KILLS {
        let h = holder(&db, &members).await;
        let ids = next..next + PER_KILL;
        next += PER_KILL;
        let burst = {
            let fake = fake.clone();
            tokio::spawn(async move {
                for id in ids {
                    fake.inject_update(alternate(id));
                    tokio::time::sleep(GAP).await;
                }
            })
        };
        let delay = rng.between((Duration::ZERO, burst_span));
        tokio::time::sleep(delay).await;
        let mut victim = members.swap_remove(h);
        victim.kill().await;
        // A survivor takes over before the killed session comes back (else
        // the new process, starting at once, would win the lock every time
        // and the sessions with chats would never be the holder).
        let killed_at = Instant::now();
        let successor = members[holder(&db, &members).await].name;
        takeovers.push(killed_at.elapsed());
        kills.push(format!(
            "{} after {}ms, then {successor}",
            victim.name,
            delay.as_millis()
        ));
        let mut back = Member::start(&home, victim.name, victim.run + 1, &seen);
        dead.push(victim);
        back.ready().await;
        members.push(back);
        burst.await.unwrap();
    }
    let injected = next - FIRST;

    // The live sessions deliver what is left; anything delivered twice
    // would come within the quiet spell after.
    let deadline = Instant::now() + SOON;
    while Instant::now() < deadline {
        let all_in = {
            let seen = seen.lock().unwrap();
            (FIRST..next).all(|id| seen.contains_key(&id))
        };
        if all_in {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    tokio::time::sleep(QUIET * 2).await;
    for m in &mut members {
        m.kill().await;
    }

    // What every process wrote, the killed ones' up to their death.
    let mut runs: Vec<(Member, Written)> = Vec::new();
    for mut m in dead.into_iter().chain(members) {
        let written = tokio::time::timeout(SOON, &mut m.task)
            .await
            .unwrap_or_else(|_| panic!("the stdout of {} (start {}) never ended", m.name, m.run))
            .unwrap();
        runs.push((m, written));
    }
    runs.sort_by_key(|(m, _)| (m.name, m.run));
    let report = |runs: &[(Member, Written)]| -> String {
        let mut text = format!("seed {seed} (AIRLOCK_CRASH_SEED={seed}); kills: {kills:?}\n");
        for (m, w) in runs {
            let ids: Vec<i64> = w.deliveries.iter().map(|d| d.id).collect();
            text += &format!(
                "--- {} start {} (pid {}): {} delivered {ids:?}, torn {:?}, bad {:?}\n{}",
                m.name,
                m.run,
                m.pid,
                ids.len(),
                w.torn,
                w.bad,
                m.log.text()
            );
        }
        text
    };

    let mut times: BTreeMap<i64, u32> = BTreeMap::new();
    for (_, w) in &runs {
        for d in &w.deliveries {
            *times.entry(d.id).or_default() += 1;
        }
    }
    let twice: Vec<(i64, u32)> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(i, n)| (*i, *n))
        .collect();
    let missing: Vec<i64> = (FIRST..next).filter(|i| !times.contains_key(i)).collect();
    let stray: Vec<i64> = times
        .keys()
        .filter(|i| !(FIRST..next).contains(*i))
        .copied()
        .collect();
    assert!(
        twice.is_empty() && missing.is_empty() && stray.is_empty(),
        "exactly once: delivered twice {twice:?}, missing {missing:?}, never sent {stray:?}\n{}",
        report(&runs)
    );
    for (m, w) in &runs {
        assert!(w.bad.is_empty(), "{}", report(&runs));
        assert!(
            !m.log.text().contains("panicked"),
            "{} (start {}) panicked\n{}",
            m.name,
            m.run,
            report(&runs)
        );
        for d in &w.deliveries {
            assert_eq!(
                d.session,
                m.name,
                "meta.session of {d:?}\n{}",
                report(&runs)
            );
        }
    }
    // Each chat reached its own session only, in the order written, over
    // the successive processes of that session.
    for (name, chat) in [("api", Some(ALICE)), ("web", Some(BOB)), ("ops", None)] {
        let got: Vec<(i64, &str)> = runs
            .iter()
            .filter(|(m, _)| m.name == name)
            .flat_map(|(_, w)| w.deliveries.iter().map(|d| (d.id, d.chat.as_str())))
            .collect();
        let chat_id = format!("telegram:{}", chat.unwrap_or_default());
        let expected: Vec<(i64, &str)> = (FIRST..next)
            .filter(|id| Some(writer(*id)) == chat)
            .map(|id| (id, chat_id.as_str()))
            .collect();
        assert_eq!(got, expected, "session {name}\n{}", report(&runs));
    }

    // Each message was stored once, by whichever process held the
    // connection at the time.
    let export = cli_ok(&home, &["audit", "export", "--jsonl"]).await;
    let mut stored_by: Vec<(i64, String)> = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["kind"] == "inbound")
        .filter_map(|r| {
            let detail: Value = serde_json::from_str(r["detail"].as_str()?).ok()?;
            let id: i64 = detail["message_id"].as_str()?.parse().ok()?;
            let by = r["session"].as_str()?.to_owned();
            (detail["outcome"] == "queued" && id >= FIRST).then_some((id, by))
        })
        .collect();
    stored_by.sort();
    let ids_stored: Vec<i64> = stored_by.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids_stored,
        (FIRST..next).collect::<Vec<_>>(),
        "each stored once: {stored_by:?}\n{}",
        report(&runs)
    );
    let storers: BTreeSet<&str> = stored_by.iter().map(|(_, by)| by.as_str()).collect();
    // Killed processes that had delivered some of their chat's messages.
    let by_killed = runs
        .iter()
        .filter(|(m, w)| {
            !w.deliveries.is_empty() && runs.iter().any(|(o, _)| o.name == m.name && o.run > m.run)
        })
        .count();
    eprintln!(
        "holder kills: {} kills ({kills:?}), {injected} messages, each delivered once; stored by \
         {} processes; {by_killed} killed processes had delivered some, {} were cut mid-line; \
         slowest takeover {:?}; all in after {drained:?}, {:?} in all",
        kills.len(),
        storers.len(),
        runs.iter().filter(|(_, w)| w.torn.is_some()).count(),
        takeovers.iter().max(),
        started.elapsed()
    );
    assert!(kills.len() >= 8);
    assert!(
        kills
            .iter()
            .any(|k| k.starts_with("api") || k.starts_with("web")),
        "a session with a chat was killed too: {kills:?}"
    );
    assert!(storers.len() > 2, "the holders stored in turn: {storers:?}");
}

// ---------------------------------------------------------------------------
// Isolation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_session_cannot_reply_into_another_sessions_chat() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, "").await;
    let (api, web) = two_bound(&fake, &home).await;
    let before_bob = texts_to(&fake, BOB);
    let before_alice = texts_to(&fake, ALICE);

    let r = api
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{BOB}"), "text": "api writes to bob"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error, "refused: {text}");
    assert!(text.contains("belongs to session web"), "{text}");
    let r = web
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{ALICE}"), "text": "web writes to alice"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error, "refused: {text}");
    assert!(text.contains("belongs to session api"), "{text}");

    // Its own chat works.
    let r = api
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{ALICE}"), "text": "api writes to alice"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    sent_id(&text);

    let mut expected_alice = before_alice;
    expected_alice.push("api writes to alice".into());
    assert_eq!(texts_to(&fake, ALICE), expected_alice);
    assert_eq!(texts_to(&fake, BOB), before_bob, "nothing reached Bob");
    api.close().await;
    web.close().await;
}

// ---------------------------------------------------------------------------
// The permission relay with colliding request ids
// ---------------------------------------------------------------------------

/// Whether `text` is a permission prompt for request `id`.
fn is_prompt(text: &str, id: &str) -> bool {
    text.starts_with("🔐 ") && text.contains(&format!("Request {id}: answer with the buttons"))
}

/// The bot's messages in `chat` that are prompts for request `id`, as they
/// are now.
fn prompts(fake: &FakeTelegram, chat: i64, id: &str) -> Vec<Value> {
    fake.bot_messages()
        .into_iter()
        .filter(|m| {
            m["chat"]["id"] == json!(chat) && m["text"].as_str().is_some_and(|t| is_prompt(t, id))
        })
        .collect()
}

/// The callback data of the button labelled `label` on `m`.
fn data_of(m: &Value, label: &str) -> String {
    m["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .find(|b| b["text"] == label)
        .and_then(|b| b["callback_data"].as_str())
        .unwrap_or_else(|| panic!("no {label:?} button on {m}"))
        .to_owned()
}

/// Alice presses the button labelled `label` on message `m`.
fn alice_presses(fake: &FakeTelegram, m: &Value, label: &str, press_id: &str) {
    fake.inject_update(json!({"callback_query": {
        "id": press_id, "from": user(ALICE, "Alice"), "message": m,
        "chat_instance": "-3214567890123456789", "data": data_of(m, label)}}));
}

/// The bot's message `message_id` in Alice's chat, as it is now.
fn alice_message(fake: &FakeTelegram, message_id: &Value) -> Value {
    fake.bot_messages()
        .into_iter()
        .find(|m| m["chat"]["id"] == json!(ALICE) && &m["message_id"] == message_id)
        .unwrap_or_else(|| panic!("no bot message {message_id}"))
}

/// Sessions `north` (the poller) and `south`; Alice, an owner, bound to
/// north and known to airlock; each session has asked about request
/// `abcde` (north for Write, south for Edit). Returns the sessions and
/// the two prompts: north's, south's (told apart by their tool).
async fn colliding_prompts(fake: &FakeTelegram) -> (TempHome, Session, Session, Value, Value) {
    let home = telegram_home(fake, "");
    cli_ok(
        &home,
        &["access", "allow", "telegram", &ALICE.to_string(), "--owner"],
    )
    .await;
    let mut north = first(&home, fake, "north").await;
    let south = session_as(&home, "south", "warn").await;
    assert!(north.declares_relay() && south.declares_relay());
    bind(fake, 1, ALICE, "Alice", "north").await;
    fake.inject_update(from_alice(2, "hello"));
    assert_eq!(north.event().await["content"], "hello");

    north
        .permission_request(request("abcde", "Write", "{\"file_path\":\"/tmp/n\"}"))
        .await;
    south
        .permission_request(request("abcde", "Edit", "{\"file_path\":\"/tmp/s\"}"))
        .await;
    until("a prompt from each session", || {
        prompts(fake, ALICE, "abcde").len() == 2
    })
    .await;
    let all = prompts(fake, ALICE, "abcde");
    let by_tool = |tool: &str| {
        all.iter()
            .find(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&format!("<code>{tool}</code>")))
            })
            .unwrap_or_else(|| panic!("no prompt for {tool}: {all:?}"))
            .clone()
    };
    let (of_north, of_south) = (by_tool("Write"), by_tool("Edit"));
    (home, north, south, of_north, of_south)
}

#[tokio::test]
async fn colliding_request_ids_get_a_prompt_per_session_and_a_press_answers_only_its_own() {
    let fake = FakeTelegram::start(TOKEN).await;
    let (_home, mut north, mut south, of_north, of_south) = colliding_prompts(&fake).await;

    // Each prompt names its session, and only its own.
    let (tn, ts) = (
        of_north["text"].as_str().unwrap(),
        of_south["text"].as_str().unwrap(),
    );
    assert!(
        tn.contains("From session <code>north</code>.") && !tn.contains("south"),
        "{tn}"
    );
    assert!(
        ts.contains("From session <code>south</code>.") && !ts.contains("north"),
        "{ts}"
    );

    // Allow on south's prompt: the verdict reaches south, not north.
    alice_presses(&fake, &of_south, "Allow", "hub-press-1");
    let verdict = south.verdict_within(SOON).await.expect("south's verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));
    assert_eq!(
        north.verdict_within(QUIET).await,
        None,
        "north's request is still open"
    );
    let still = alice_message(&fake, &of_north["message_id"]);
    assert_eq!(
        still.get("edit_date"),
        None,
        "north's prompt stays open: {still}"
    );
    assert_eq!(still["reply_markup"], of_north["reply_markup"]);

    // Deny on north's: north gets it, south nothing more.
    alice_presses(&fake, &of_north, "Deny", "hub-press-2");
    let verdict = north.verdict_within(SOON).await.expect("north's verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "deny"}));
    assert_eq!(south.verdict_within(QUIET).await, None);
    north.close().await;
    south.close().await;
}

#[tokio::test]
async fn a_typed_verdict_whose_id_two_sessions_wait_for_is_refused_and_asks_for_the_button() {
    let fake = FakeTelegram::start(TOKEN).await;
    let (_home, mut north, mut south, of_north, of_south) = colliding_prompts(&fake).await;
    let before = texts_to(&fake, ALICE).len();

    fake.inject_update(from_alice(3, "yes abcde"));
    fake.inject_update(from_alice(4, "after the answer"));
    let e = north.event().await;
    assert_eq!(
        e["content"], "after the answer",
        "the answer was not delivered: {e}"
    );
    assert_eq!(
        north.verdict_within(QUIET).await,
        None,
        "no verdict for north"
    );
    assert_eq!(
        south.verdict_within(Duration::ZERO).await,
        None,
        "nor for south"
    );
    let new: Vec<String> = texts_to(&fake, ALICE).split_off(before);
    assert_eq!(new.len(), 1, "one refusal: {new:?}");
    assert!(
        new[0].contains("buttons") && new[0].contains("north") && new[0].contains("south"),
        "names both sessions and asks for the button: {new:?}"
    );
    for p in [&of_north, &of_south] {
        let now = alice_message(&fake, &p["message_id"]);
        assert_eq!(now.get("edit_date"), None, "both prompts stay open: {now}");
    }

    // The buttons still answer.
    alice_presses(&fake, &of_north, "Allow", "hub-press-3");
    let verdict = north.verdict_within(SOON).await.expect("north's verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));
    assert_eq!(south.verdict_within(QUIET).await, None);
    north.close().await;
    south.close().await;
}
