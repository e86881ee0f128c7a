//! The hub on Discord: two sessions, one gateway connection between them;
//! each bound DM reaches only its session, and the session without the
//! gateway still sends through REST.

use fake_discord::{FakeDiscord, payloads};
use serde_json::{Value, json};

use super::*;
use crate::discord::{ALICE, ALICE_DM, TOKEN, alice, discord_home, dm_from_alice, ready, sent_in};
use crate::telegram::until;

/// A second allowed user, and his DM channel.
const BOB: &str = "5000000000000000002";
const BOB_DM: &str = "4100000000000000002";

fn bob() -> Value {
    payloads::user(BOB, "bob")
}

/// A DM from Bob.
fn dm_from_bob(id: &str, text: &str) -> Value {
    payloads::dm_message(id, BOB_DM, bob(), text)
}

/// Message ids of this test: snowflakes, increasing.
fn id(n: u64) -> String {
    (3_000_000_000_000_000_000 + n).to_string()
}

/// `/session NAME` typed in `channel` (a DM, written by `message`); returns
/// once the confirmation reached it.
async fn bind(fake: &FakeDiscord, channel: &str, message: Value, name: &str) {
    fake.dispatch("MESSAGE_CREATE", message);
    let said = format!("This chat now goes to session {name} (");
    until(&format!("the binding of {channel} to {name}"), || {
        sent_in(fake, channel).iter().any(|t| t.starts_with(&said))
    })
    .await;
}

#[tokio::test]
async fn two_dms_bound_to_two_sessions_each_reach_only_their_own_and_both_send() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_dm(ALICE_DM, alice());
    fake.add_dm(BOB_DM, bob());
    let home = discord_home(&fake, "");
    for user in [ALICE, BOB] {
        cli_ok(&home, &["access", "allow", "discord", user]).await;
    }
    let mut api = session_as(&home, "api", "warn").await;
    ready(&fake).await;
    let mut web = session_as(&home, "web", "warn").await;

    bind(
        &fake,
        ALICE_DM,
        dm_from_alice(&id(1), "/session api"),
        "api",
    )
    .await;
    bind(&fake, BOB_DM, dm_from_bob(&id(2), "/session web"), "web").await;
    for n in 0..2 {
        fake.dispatch(
            "MESSAGE_CREATE",
            dm_from_alice(&id(10 + 2 * n), &format!("alice {n}")),
        );
        fake.dispatch(
            "MESSAGE_CREATE",
            dm_from_bob(&id(11 + 2 * n), &format!("bob {n}")),
        );
    }
    let to_api = events(&mut api, "api", 2).await;
    let to_web = events(&mut web, "web", 2).await;
    assert_eq!(contents(&to_api), ["alice 0", "alice 1"]);
    assert_eq!(contents(&to_web), ["bob 0", "bob 1"]);
    for (got, session, chat) in [(&to_api, "api", ALICE_DM), (&to_web, "web", BOB_DM)] {
        for e in got {
            assert_eq!(session_of(e), session, "{e}");
            assert_eq!(e["meta"]["chat_id"], format!("discord:{chat}"), "{e}");
        }
    }
    nothing_for(&mut api, "api").await;
    nothing_for(&mut web, "web").await;

    // web has no gateway; it still sends, through its own REST instance.
    let r = web
        .call(
            "reply",
            json!({"chat_id": format!("discord:{BOB_DM}"), "text": "from web"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}\nweb stderr:\n{}", web.log.text());
    let sent = sent_id(&text);
    assert_eq!(
        sent_in(&fake, BOB_DM).last().map(String::as_str),
        Some("from web")
    );
    assert!(
        fake.message(BOB_DM, &sent).is_some(),
        "the id it returned is the platform's"
    );
    let r = api
        .call(
            "reply",
            json!({"chat_id": format!("discord:{ALICE_DM}"), "text": "from api"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    assert_eq!(
        sent_in(&fake, ALICE_DM).last().map(String::as_str),
        Some("from api")
    );
    // And neither reaches the other's chat.
    let r = web
        .call(
            "reply",
            json!({"chat_id": format!("discord:{ALICE_DM}"), "text": "web to alice"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(
        is_error && text.contains("belongs to session api"),
        "{text}"
    );
    assert!(!sent_in(&fake, ALICE_DM).contains(&"web to alice".to_string()));

    assert_eq!(
        fake.connections(),
        1,
        "one gateway connection for the two sessions"
    );
    api.close().await;
    web.close().await;
}
