//! Telegram and Discord in one airlock: one session, qualified chat ids,
//! replies to the right platform.

use fake_telegram::FakeTelegram;
use serde_json::json;

use super::*;
use crate::telegram;

#[tokio::test]
async fn both_platforms_reach_one_session_and_replies_go_back_to_their_own() {
    let tg = FakeTelegram::start(telegram::TOKEN).await;
    let dc = fake().await;
    let home = TempHome::new();
    home.secret("TELEGRAM_BOT_TOKEN", telegram::TOKEN);
    home.secret("DISCORD_BOT_TOKEN", TOKEN);
    home.config(&format!("{}\n{}", telegram::config(&tg, ""), config(&dc)));
    telegram::allow_alice(&home).await;
    allow_alice(&home).await;
    let mut session = start(&home, &dc, "warn").await;
    telegram::polling(&tg).await;

    tg.inject_update(telegram::from_alice(1, "from telegram"));
    dc.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000300", "from discord"),
    );
    let mut got = Vec::new();
    for _ in 0..2 {
        let e = session.event().await;
        got.push((
            e["meta"]["chat_id"].as_str().unwrap().to_owned(),
            e["content"].as_str().unwrap().to_owned(),
        ));
    }
    got.sort();
    assert_eq!(
        got,
        [
            (format!("discord:{ALICE_DM}"), "from discord".to_string()),
            (
                format!("telegram:{}", telegram::ALICE),
                "from telegram".to_string()
            ),
        ]
    );

    for (chat, text) in [
        (format!("telegram:{}", telegram::ALICE), "to telegram"),
        (format!("discord:{ALICE_DM}"), "to discord"),
    ] {
        let r = session
            .call("reply", json!({"chat_id": chat, "text": text}))
            .await;
        let (is_error, out) = outcome(&r);
        assert!(!is_error, "{out}");
    }
    assert_eq!(telegram::sent_texts(&tg), ["to telegram"]);
    assert_eq!(sent_in(&dc, ALICE_DM), ["to discord"]);
    session.close().await;
}
