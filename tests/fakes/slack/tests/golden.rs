//! The fake's frames beside real ones that others captured
//! (`fixtures/`, see `fixtures/NOTICE.md`): for each kind, every field the
//! real one has is in the fake's too, but for the few listed as left out,
//! and the fake sends no field the real one lacks, but for the few listed
//! as sent by Slack and absent from that capture.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{APP, BOT, connect, next_json};
use fake_slack::{BOT_USER_ID, FakeSlack, button_blocks};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `fake` against `real` at `what`: the same fields, give or take the
/// listed ones.
fn same_shape(what: &str, fake: &Value, real: &Value, left_out: &[&str], extra: &[&str]) {
    let (fake, real) = (keys(fake), keys(real));
    let missing: Vec<_> = real
        .difference(&fake)
        .filter(|k| !left_out.contains(&k.as_str()))
        .collect();
    let invented: Vec<_> = fake
        .difference(&real)
        .filter(|k| !extra.contains(&k.as_str()))
        .collect();
    assert!(
        missing.is_empty() && invented.is_empty(),
        "{what}: missing {missing:?}, not in the capture {invented:?}"
    );
}

/// Fields of a capture that the fake does not make: rich-text `blocks`
/// built from a message's text, Enterprise Grid and shared-channel
/// context, and a workspace's profile details.
const NOT_MADE: &[&str] = &[
    "blocks",
    "enterprise_id",
    "context_enterprise_id",
    "context_team_id",
    "source_team",
    "user_team",
    "user_profile",
];

#[tokio::test]
async fn envelopes_and_events_have_the_shapes_slack_sends() {
    let fake = FakeSlack::start(APP, BOT).await;
    fake.add_channel("C1", "general");
    fake.add_dm("D1", "U1");
    let hello = {
        let opened = common::open_url(&fake, APP).await;
        let url = opened["url"].as_str().unwrap().to_owned();
        let mut ws = tokio_tungstenite::connect_async(url).await.unwrap().0;
        next_json(&mut ws).await
    };
    same_shape("hello", &hello, &fixture("sm-hello.json"), &[], &[]);
    same_shape(
        "hello.debug_info",
        &hello["debug_info"],
        &fixture("sm-hello.json")["debug_info"],
        &[],
        &[],
    );
    let mut ws = connect(&fake).await;

    // A channel message that mentions the bot: `message`, then `app_mention`.
    fake.post_as_user("C1", "U1", &format!("<@{BOT_USER_ID}> Hi here!"), None);
    let message = next_json(&mut ws).await;
    let real = fixture("sm-events_api-message-channel.json");
    same_shape("envelope", &message, &real, &[], &[]);
    same_shape(
        "event_callback",
        &message["payload"],
        &real["payload"],
        &[],
        &[],
    );
    same_shape(
        "message",
        &message["payload"]["event"],
        &real["payload"]["event"],
        NOT_MADE,
        &[],
    );
    let mention = next_json(&mut ws).await;
    let real = fixture("sm-events_api-app_mention.json");
    same_shape(
        "app_mention",
        &mention["payload"]["event"],
        &real["payload"]["event"],
        NOT_MADE,
        &[],
    );

    // A thread reply in a DM.
    let parent = fake.post_as_user("D1", "U1", "first", None);
    next_json(&mut ws).await;
    fake.post_as_user("D1", "U1", "in the thread", Some(&parent));
    let reply = next_json(&mut ws).await;
    same_shape(
        "thread reply",
        &reply["payload"]["event"],
        &fixture("event-message-im-thread-reply.event-only.json"),
        NOT_MADE,
        &["client_msg_id"],
    );

    // An edit.
    fake.edit_as_user("C1", &parent_ts(&fake, "C1"), "edited");
    let edit = next_json(&mut ws).await;
    let real = fixture("event-message_changed.json");
    same_shape(
        "message_changed",
        &edit["payload"]["event"],
        &real["event"],
        NOT_MADE,
        &[],
    );
    same_shape(
        "message_changed.message",
        &edit["payload"]["event"]["message"],
        &real["event"]["message"],
        NOT_MADE,
        &[],
    );

    // A reaction.
    fake.react_as_user("C1", &parent_ts(&fake, "C1"), "U1", "thumbsup");
    let reaction = next_json(&mut ws).await;
    let real = fixture("event-reaction_added.json");
    same_shape(
        "reaction_added",
        &reaction["payload"]["event"],
        &real["event"],
        &[],
        &[],
    );
    same_shape(
        "reaction_added.item",
        &reaction["payload"]["event"]["item"],
        &real["event"]["item"],
        &[],
        &[],
    );

    // A shared file.
    fake.share_file("C1", "U1", "here", "notes.txt", "text/plain", b"hello");
    let shared = next_json(&mut ws).await;
    let real = fixture("event-message-file_share.json");
    same_shape(
        "file_share",
        &shared["payload"]["event"],
        &real["event"],
        NOT_MADE,
        &[],
    );
    // Of a file's many fields, the fake sends some; each of them is Slack's.
    let fake_file = keys(&shared["payload"]["event"]["files"][0]);
    let real_file = keys(&real["event"]["files"][0]);
    assert!(
        fake_file.is_subset(&real_file),
        "{:?}",
        fake_file.difference(&real_file)
    );

    // The bot's own message, as every app receives it back.
    let posted = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/api/chat.postMessage", fake.base_url()))
        .bearer_auth(BOT)
        .json(&json!({"channel": "C1", "text": "Deploy?", "blocks": button_blocks("Deploy?", &[&[("Yes", "yes", "deploy:yes")]])}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let own = next_json(&mut ws).await;
    let real = fixture("event-message-bot_profile.json");
    // `app_id` is on every message an app posts; the capture left it out.
    same_shape(
        "bot message",
        &own["payload"]["event"],
        &real["event"],
        NOT_MADE,
        &["app_id", "blocks"],
    );

    // A button press on it.
    fake.press_button("C1", posted["ts"].as_str().unwrap(), "U1", "yes")
        .expect("the button is there");
    let press = next_json(&mut ws).await;
    assert_eq!(press["type"], "interactive");
    let real = fixture("interactive-block_actions-button.payload-only.json");
    // The capture is of an ephemeral message, which has no `message`.
    same_shape("block_actions", &press["payload"], &real, &[], &["message"]);
    same_shape(
        "block_actions.actions[0]",
        &press["payload"]["actions"][0],
        &real["actions"][0],
        &[],
        &[],
    );
    same_shape(
        "block_actions.container",
        &press["payload"]["container"],
        &real["container"],
        &[],
        &[],
    );
}

/// The first message of `channel`.
fn parent_ts(fake: &FakeSlack, channel: &str) -> String {
    fake.messages(channel)[0]["ts"].as_str().unwrap().to_owned()
}
