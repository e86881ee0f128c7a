//! `kill -9` at random moments while messages keep arriving on the gateway:
//! after the last restart, every message has reached a session exactly once
//! (see `crate::crash`). What makes it hold on Discord: each batch's gateway
//! position is stored with its events, and the next process resumes from
//! it, so Discord replays what the dead one never stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_discord::FakeDiscord;

use super::*;
use crate::crash::{self, Platform};

/// Message `n` has id `ID_BASE + n` (a snowflake none of the fake's own ids
/// reach).
const ID_BASE: u64 = 1_300_000_000_000_000_000;

fn message_id(n: i64) -> String {
    (ID_BASE + n as u64).to_string()
}

/// The message number of a delivered id; the warm-up message 0 is none.
fn number_of(id: &str) -> Option<i64> {
    let n = id.parse::<u64>().ok()?.checked_sub(ID_BASE)?;
    i64::try_from(n).ok().filter(|n| *n >= 1)
}

struct Discord {
    fake: Arc<FakeDiscord>,
    home: TempHome,
    /// Identifies and resumes the fake had accepted when the last process started.
    handshakes_at_start: AtomicUsize,
}

impl Discord {
    fn handshakes(&self) -> usize {
        self.fake.identifies() + self.fake.resumes()
    }
}

impl Platform for Discord {
    fn inject(&self, n: i64) -> bool {
        // Dispatched into the session, which keeps it for a Resume while no
        // client is connected.
        self.fake.dispatch(
            "MESSAGE_CREATE",
            dm_from_alice(&message_id(n), &format!("message {n}")),
        );
        true
    }

    fn serve(&self) -> tokio::process::Command {
        self.handshakes_at_start
            .store(self.handshakes(), Ordering::SeqCst);
        // Debug logging makes every step slower, which widens any window.
        serve_logging(&self.home, "airlock=debug")
    }

    fn connected(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {
            let before = self.handshakes_at_start.load(Ordering::SeqCst);
            until("the new airlock to identify or resume", || {
                self.handshakes() > before && self.fake.is_ready()
            })
            .await;
        })
    }
}

/// Runs airlock until a message has gone through (so its session's position
/// is stored), then kills it: a session to resume, as after any earlier run.
/// (Before the very first READY is stored there is nothing to resume: a kill
/// in that window costs what Discord dispatched in it, as the README says.)
async fn first_run(fake: &FakeDiscord, home: &TempHome) {
    let mut raw = Raw::start_command(serve_logging(home, "airlock=debug"));
    raw.initialize().await;
    raw.initialized().await;
    ready(fake).await;
    fake.dispatch("MESSAGE_CREATE", dm_from_alice(&message_id(0), "warm-up"));
    loop {
        let m = raw.next().await;
        if m["params"]["meta"]["message_id"] == message_id(0) {
            break;
        }
    }
    let _ = raw.child.start_kill();
    let _ = raw.child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_and_repeats_nothing() {
    let fake = Arc::new(fake().await);
    let home = discord_home(&fake, NO_SENDER_LIMIT);
    allow_alice(&home).await;
    first_run(&fake, &home).await;
    let platform = Arc::new(Discord {
        fake: fake.clone(),
        home,
        handshakes_at_start: AtomicUsize::new(0),
    });
    crash::run(platform, number_of).await;
    eprintln!(
        "discord crash test: {} identifies, {} resumes over {} connections",
        fake.identifies(),
        fake.resumes(),
        fake.connections()
    );
    assert_eq!(
        fake.identifies(),
        1,
        "every restart resumed the first session"
    );
}

/// The deterministic case: messages dispatched while no airlock runs, and
/// one the dead process had received but maybe not stored, arrive after the
/// restart, through a Resume of the same session.
#[tokio::test]
async fn a_restart_resumes_the_session_and_gets_what_was_sent_meanwhile() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    first_run(&fake, &home).await;
    let session = fake.session_id();
    for n in 1..=3 {
        fake.dispatch(
            "MESSAGE_CREATE",
            dm_from_alice(&message_id(n), &format!("while away {n}")),
        );
    }
    let mut session_two = start(&home, &fake, "airlock=info").await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let e = event_in(&mut session_two, ALICE_DM).await;
        got.push(e["content"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(got, ["while away 1", "while away 2", "while away 3"]);
    assert_eq!(fake.identifies(), 1, "no second Identify");
    assert_eq!(fake.resumes(), 1);
    assert_eq!(fake.session_id(), session);
    let resume = fake.last_resume().unwrap();
    assert_eq!(resume["d"]["session_id"].as_str(), session.as_deref());
    assert!(
        resume["d"]["seq"].as_u64().is_some_and(|s| s >= 2),
        "{resume}"
    );
    // Nothing more: the warm-up message is not delivered again.
    assert!(
        session_two
            .event_within(Duration::from_millis(1500))
            .await
            .is_none()
    );
    session_two.close().await;
}

/// A session Discord no longer has (invalidated while airlock was away):
/// the adapter identifies afresh and says what that may cost.
#[tokio::test]
async fn a_session_discord_dropped_is_replaced_with_a_warning() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    first_run(&fake, &home).await;
    // Discord forgets the session (it expired); the next Resume gets op 9 false.
    fake.invalidate_session(false);
    let session = Session::start_command(
        serve_logging(&home, "airlock=info"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    until("a fresh Identify", || {
        fake.identifies() == 2 && fake.is_ready()
    })
    .await;
    until("the warning about missed messages", || {
        session.log.text().contains("would not resume")
    })
    .await;
    let log = session.log.text();
    assert!(log.contains("fetch_messages"), "{log}");
    assert_eq!(log.matches("would not resume").count(), 1, "{log}");
    session.close().await;
}

/// Two airlocks on one token: the second does not connect to the gateway
/// while the first holds the token's lock (two connections would resume the
/// one session from each other, endlessly), and takes over, resuming the
/// session, when the first dies.
#[tokio::test]
async fn a_second_airlock_on_the_same_token_waits_and_takes_over() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    first_run(&fake, &home).await;
    let mut first = Raw::start_command(serve_logging(&home, "airlock=info"));
    first.initialize().await;
    first.initialized().await;
    ready(&fake).await;
    // While it is the only session, the unbound chat is its.
    let delivered = |m: &Value, n: i64| m["params"]["meta"]["message_id"] == message_id(n);
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice(&message_id(1), "to the first"),
    );
    while !delivered(&first.next().await, 1) {}
    let connections = fake.connections();
    let mut second = Raw::start_command(serve_logging(&home, "airlock=info"));
    second.initialize().await;
    second.initialized().await;
    until("the second airlock to say it waits", || {
        second.log.text().contains("this one connects")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        fake.connections(),
        connections,
        "the second one stayed off the gateway"
    );

    let _ = first.child.start_kill();
    let _ = first.child.wait().await;
    let resumes = fake.resumes();
    until("the second airlock to resume", || {
        fake.resumes() > resumes && fake.is_ready()
    })
    .await;
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice(&message_id(2), "to the second"),
    );
    let mut got = Vec::new();
    while let Some(m) = second.next_within(Duration::from_secs(3)).await {
        if let Some(id) = m["params"]["meta"]["message_id"].as_str() {
            got.push(number_of(id));
        }
    }
    assert_eq!(got, [Some(2)], "the second gets what is new, once");
    assert_eq!(fake.identifies(), 1);
    let _ = second.child.start_kill();
}
