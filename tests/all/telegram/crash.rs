//! `kill -9` at random moments while updates keep arriving: after the last
//! restart, every message has reached a session exactly once (see
//! `crate::crash`).

use std::sync::Arc;

use fake_telegram::FakeTelegram;

use super::*;
use crate::crash::{self, Platform};

struct Telegram {
    fake: Arc<FakeTelegram>,
    home: TempHome,
}

impl Platform for Telegram {
    fn inject(&self, n: i64) -> bool {
        // The Bot API keeps updates until they are fetched.
        self.fake
            .inject_update(from_alice(n, &format!("message {n}")));
        true
    }

    fn serve(&self) -> tokio::process::Command {
        // Debug logging makes every step slower, which widens any window.
        serve_logging(&self.home, "airlock=debug")
    }

    fn connected(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(polling(&self.fake))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_and_repeats_nothing() {
    let fake = Arc::new(FakeTelegram::start(TOKEN).await);
    let home = telegram_home(&fake, NO_SENDER_LIMIT);
    allow_alice(&home).await;
    crash::run(Arc::new(Telegram { fake, home }), |id| id.parse().ok()).await;
}
