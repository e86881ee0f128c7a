//! airlock's Discord adapter against a minimal native serenity bridge, side
//! by side in one run: both processes run at once, each on its own fake
//! Discord (REST and gateway) on loopback, and their samples are taken in
//! alternation, so that whatever else the machine does falls on both alike.
//!
//! * inbound latency, p50 and p99: a MESSAGE_CREATE dispatched on the fake's
//!   gateway until its line is read from the subject's stdout (airlock: the
//!   `notifications/claude/channel` a session receives);
//! * burst: 500 dispatches at once, until the 500th line (median of bursts);
//! * reply round trip, p50: a `reply` tool call (airlock) or a JSON line
//!   (bridge) until the answer after `POST /channels/{id}/messages`;
//! * resident memory, idle and after the bursts, and airlock idle with both
//!   the Discord and the Telegram adapter loaded;
//! * start-up: process spawn until the fake accepts Identify or Resume (airlock with a
//!   cold and a warm compiled-component cache).
//!
//! Run with `cargo bench -p airlock --bench discord`. Ratios are taken within
//! the run; absolute figures move with the machine.

mod bridge;
#[path = "../common/figures.rs"]
mod figures;
#[path = "../common/phases.rs"]
mod phases;
#[path = "../common/profile.rs"]
mod profile;
#[path = "../common/subject.rs"]
mod subject;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fake_discord::{FakeDiscord, payloads};
use fake_telegram::FakeTelegram;
use figures::{Figures, report, until};
use phases::BURST;
use serde_json::json;
use subject::{Kind, Subject};

const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GdBench.AirlockBenchDiscordToken12";
const TELEGRAM_TOKEN: &str = "123456789:AAEkBenchTokenForAirlockFakeBotApi12";
const ALICE: &str = "5000000000000000001";
const DM: &str = "4100000000000000001";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bridge") {
        bridge::run(&args[2], &args[3], &args[4]);
        return;
    }
    subject::block_on(run());
}

/// A state directory for airlock wired to `fake` (and to `telegram`, when
/// given), with Alice allowed.
fn airlock_home(home: &Path, fake: &FakeDiscord, telegram: Option<&FakeTelegram>) -> PathBuf {
    subject::secret(home, "DISCORD_BOT_TOKEN", TOKEN);
    let mut config = subject::discord_config(&fake.api_base(), &fake.gateway_url());
    if let Some(tg) = telegram {
        subject::secret(home, "TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN);
        config.push_str(&subject::telegram_config(&tg.base_url()));
    }
    config.push_str(&subject::uncapped());
    subject::write_home(home, &config, &[("discord", ALICE)]);
    home.to_path_buf()
}

/// One subject and its fake.
struct Side {
    kind: Kind,
    fake: FakeDiscord,
    home: PathBuf,
    figures: Figures,
    next_id: u64,
}

impl Side {
    fn spawn_at(&self, home: &Path) -> Subject {
        match self.kind {
            Kind::Airlock => Subject::airlock(home),
            Kind::Bridge => {
                Subject::bridge(&[&self.fake.api_base(), &self.fake.gateway_url(), TOKEN])
            }
        }
    }

    fn message(&mut self, text: &str) -> (String, serde_json::Value) {
        let id = (3_000_000_000_000_000_000 + self.next_id).to_string();
        self.next_id += 1;
        let m = payloads::dm_message(&id, DM, payloads::user(ALICE, "alice"), text);
        (id, m)
    }
}

impl phases::Side for Side {
    fn kind(&self) -> Kind {
        self.kind
    }

    fn home(&self) -> &Path {
        &self.home
    }

    fn figures(&mut self) -> &mut Figures {
        &mut self.figures
    }

    /// Spawn until the fake accepts an Identify (or, for an airlock that ran
    /// before in that home, a Resume).
    async fn start_time(&self, home: &Path) -> Duration {
        // A restarted airlock resumes its stored session instead of
        // identifying: either handshake counts.
        let handshakes = || self.fake.identifies() + self.fake.resumes();
        let before = handshakes();
        let started = Instant::now();
        let subject = self.spawn_at(home);
        until(|| handshakes() > before).await;
        let took = started.elapsed();
        subject.stop().await;
        took
    }

    async fn latency(&mut self, s: &mut Subject) -> Duration {
        let (id, m) = self.message("ping");
        let t = Instant::now();
        self.fake.dispatch("MESSAGE_CREATE", m);
        let got = s.event().await;
        let took = t.elapsed();
        assert_eq!(got, id);
        took
    }

    async fn burst(&mut self, s: &mut Subject) -> f64 {
        let burst: Vec<_> = (0..BURST).map(|_| self.message("burst").1).collect();
        let t = Instant::now();
        for m in burst {
            self.fake.dispatch("MESSAGE_CREATE", m);
        }
        for _ in 0..BURST {
            s.event().await;
        }
        BURST as f64 / t.elapsed().as_secs_f64()
    }
}

async fn run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut sides = Vec::new();
    for kind in [Kind::Airlock, Kind::Bridge] {
        let fake = FakeDiscord::start(TOKEN).await;
        fake.add_dm(DM, payloads::user(ALICE, "alice"));
        let home = tmp.path().join(format!("{kind:?}"));
        if kind == Kind::Airlock {
            airlock_home(&home, &fake, None);
        }
        sides.push(Side {
            kind,
            fake,
            home,
            figures: Figures::default(),
            next_id: 1,
        });
    }

    phases::start_up(&mut sides, |i, side| {
        airlock_home(&tmp.path().join(format!("cold-{i}")), &side.fake, None)
    })
    .await;

    // Airlock with both adapters, idle, on a warm cache (the first start
    // compiles the Telegram component).
    let telegram = FakeTelegram::start(TELEGRAM_TOKEN).await;
    let both_home = airlock_home(&tmp.path().join("both"), &sides[0].fake, Some(&telegram));
    for _ in 0..2 {
        let before = sides[0].fake.identifies() + sides[0].fake.resumes();
        let mut both = Subject::airlock(&both_home);
        both.handshake().await;
        until(|| {
            sides[0].fake.identifies() + sides[0].fake.resumes() > before && telegram.is_polling()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        sides[0].figures.rss_both_kb = both.rss_kb();
        both.stop().await;
    }

    let mut subjects = Vec::new();
    for side in &sides {
        let before = side.fake.identifies() + side.fake.resumes();
        let mut s = side.spawn_at(&side.home);
        s.handshake().await;
        until(|| side.fake.identifies() + side.fake.resumes() > before && side.fake.is_ready())
            .await;
        subjects.push(s);
    }
    phases::measure(&mut sides, subjects, (&format!("discord:{DM}"), json!(DM))).await;
    report(
        &sides[0].figures,
        &sides[1].figures,
        ("serenity", "to Identify or Resume", "Discord + Telegram"),
    );
}
