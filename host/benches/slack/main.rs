//! airlock's Slack adapter against a minimal native Socket Mode bridge,
//! side by side in one run: both processes run at once, each on its own
//! fake Slack (Web API and Socket Mode) on loopback, and their samples are
//! taken in alternation, so that whatever else the machine does falls on
//! both alike. The same figures as the Telegram and Discord benchmarks:
//!
//! * inbound latency, p50 and p99: a person's DM posted on the fake until
//!   its line is read from the subject's stdout (airlock: the
//!   `notifications/claude/channel` a session receives);
//! * burst: 500 messages at once, until the 500th line (median of bursts);
//! * reply round trip, p50: a `reply` tool call (airlock) or a JSON line
//!   (bridge) until the answer after `chat.postMessage`;
//! * resident memory, idle and after the bursts;
//! * start-up: process spawn until the fake accepts the Socket Mode
//!   connection (airlock with a cold and a warm compiled-component cache).
//!
//! The bridge acknowledges each envelope as it arrives; airlock only once
//! its events are stored (`send_text_after_commit`), which is part of what
//! its figures pay for.
//!
//! Run with `cargo bench -p airlock --bench slack`. Ratios are taken within
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

use fake_slack::FakeSlack;
use figures::{Figures, report, until};
use phases::BURST;
use serde_json::json;
use subject::{Kind, Subject};

const APP_TOKEN: &str = "xapp-1-A0FAKE0001-1-BenchAppToken0123456789";
const BOT_TOKEN: &str = "xoxb-1-2-BenchBotToken0123456789";
const ALICE: &str = "U0ALICE001";
const DM: &str = "D0ALICE001";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bridge") {
        bridge::run(&args[2], &args[3], &args[4]);
        return;
    }
    subject::block_on(run());
}

/// A state directory for airlock wired to `fake`, with Alice allowed.
fn airlock_home(home: &Path, fake: &FakeSlack) -> PathBuf {
    subject::secret(home, "SLACK_APP_TOKEN", APP_TOKEN);
    subject::secret(home, "SLACK_BOT_TOKEN", BOT_TOKEN);
    let (web, ws) = (fake.base_url(), fake.socket_base());
    let mut config = format!(
        "[components.slack]\nenabled = true\nsettings = {{ api_base = \"{web}\" }}\n\
         [components.slack.grant]\nlocal = [\"{web}\", \"{ws}\"]\n\
         [components.slack.grant.rebind]\n\"https://slack.com\" = \"{web}\"\n\
         \"https://files.slack.com\" = \"{web}\"\n\"wss://wss-primary.slack.com\" = \"{ws}\"\n"
    );
    config.push_str(&subject::uncapped());
    subject::write_home(home, &config, &[("slack", ALICE)]);
    home.to_path_buf()
}

/// One subject and its fake.
struct Side {
    kind: Kind,
    fake: FakeSlack,
    home: PathBuf,
    figures: Figures,
}

impl Side {
    fn spawn_at(&self, home: &Path) -> Subject {
        match self.kind {
            Kind::Airlock => Subject::airlock(home),
            Kind::Bridge => Subject::bridge(&[&self.fake.base_url(), APP_TOKEN, BOT_TOKEN]),
        }
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

    /// Spawn until the fake accepts a Socket Mode connection.
    async fn start_time(&self, home: &Path) -> Duration {
        let before = self.fake.connections();
        let started = Instant::now();
        let subject = self.spawn_at(home);
        until(|| self.fake.connections() > before).await;
        let took = started.elapsed();
        subject.stop().await;
        took
    }

    async fn latency(&mut self, s: &mut Subject) -> Duration {
        let t = Instant::now();
        let ts = self.fake.post_as_user(DM, ALICE, "ping", None);
        let got = s.event().await;
        let took = t.elapsed();
        assert_eq!(got, ts);
        took
    }

    async fn burst(&mut self, s: &mut Subject) -> f64 {
        let t = Instant::now();
        for _ in 0..BURST {
            self.fake.post_as_user(DM, ALICE, "burst", None);
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
        let fake = FakeSlack::start(APP_TOKEN, BOT_TOKEN).await;
        fake.add_dm(DM, ALICE);
        let home = tmp.path().join(format!("{kind:?}"));
        if kind == Kind::Airlock {
            airlock_home(&home, &fake);
        }
        sides.push(Side {
            kind,
            fake,
            home,
            figures: Figures::default(),
        });
    }

    phases::start_up(&mut sides, |i, side| {
        airlock_home(&tmp.path().join(format!("cold-{i}")), &side.fake)
    })
    .await;

    let mut subjects = Vec::new();
    for side in &sides {
        let before = side.fake.connections();
        let mut s = side.spawn_at(&side.home);
        s.handshake().await;
        until(|| side.fake.connections() > before && side.fake.connected()).await;
        subjects.push(s);
    }
    phases::measure(&mut sides, subjects, (&format!("slack:{DM}"), json!(DM))).await;
    report(
        &sides[0].figures,
        &sides[1].figures,
        ("native bridge", "to the Socket Mode connection", "-"),
    );
}
