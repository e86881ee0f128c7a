//! `kill -9` in the middle of a burst: after a restart, every message has
//! reached a session exactly once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;

use super::*;

/// Messages in the burst.
const BURST: i64 = 400;

/// Reads channel events off `raw` into `seen` (message id → count) until
/// `stop` says so or stdout ends; returns whether stdout ended.
async fn read_events(
    raw: &mut Raw,
    seen: &mut BTreeMap<i64, u32>,
    stop: impl Fn(&BTreeMap<i64, u32>) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop(seen) {
        assert!(
            Instant::now() < deadline,
            "stalled at {} events; stderr:\n{}",
            seen.len(),
            raw.log.text()
        );
        let Some(m) = raw.next_within(Duration::from_secs(10)).await else {
            return true;
        };
        if m["method"] != CHANNEL {
            continue;
        }
        let id: i64 = m["params"]["meta"]["message_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        *seen.entry(id).or_default() += 1;
    }
    false
}

async fn handshake(home: &TempHome) -> Raw {
    let mut raw = Raw::start_command(serve_logging(home, "warn"));
    raw.initialize().await;
    raw.initialized().await;
    raw
}

#[tokio::test]
async fn a_kill_9_mid_burst_loses_nothing_and_repeats_nothing() {
    let fake = Arc::new(FakeTelegram::start(TOKEN).await);
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut first = handshake(&home).await;
    polling(&fake).await;

    let injector = {
        let fake = fake.clone();
        tokio::spawn(async move {
            for i in 1..=BURST {
                fake.inject_update(from_alice(i, &format!("burst {i}")));
                if i % 25 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    let mut seen = BTreeMap::new();
    read_events(&mut first, &mut seen, |s| s.len() as i64 >= BURST / 3).await;
    first.child.start_kill().unwrap();
    // What was already written before the kill is still in the pipe.
    let ended = read_events(&mut first, &mut seen, |_| false).await;
    assert!(ended);
    first.child.wait().await.unwrap();
    let before_restart = seen.len();
    assert!(
        (before_restart as i64) < BURST,
        "the kill came too late to test anything"
    );
    injector.await.unwrap();

    let mut second = handshake(&home).await;
    read_events(&mut second, &mut seen, |s| s.len() as i64 >= BURST).await;
    // Anything delivered twice would arrive now.
    let _ = tokio::time::timeout(Duration::from_millis(700), async {
        read_events(&mut second, &mut seen, |_| false).await
    })
    .await;

    let twice: Vec<(&i64, &u32)> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let missing: Vec<i64> = (1..=BURST).filter(|i| !seen.contains_key(i)).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert!(before_restart > 0);
}
