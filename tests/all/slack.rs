//! The bundled Slack adapter through the real binary, against the fake
//! Slack (`tests/fakes/slack`: Web API and Socket Mode on loopback): the
//! session's view over stdio, Slack's in what the fake received.

use std::time::Duration;

use fake_slack::{BOT_USER_ID, FakeSlack, Fault};
use serde_json::{Value, json};

use crate::session::*;
use crate::support::*;
use crate::telegram::{serve_logging, until};

const APP_TOKEN: &str = "xapp-1-A0FAKE0001-77-SlackAppTokenSecret0a1b";
const BOT_TOKEN: &str = "xoxb-77-88-SlackBotTokenSecret2c3d";
const ALICE: &str = "U0ALICE001";
const ALICE_DM: &str = "D0ALICE001";
const GENERAL: &str = "C0GENERAL1";

async fn fake() -> FakeSlack {
    let fake = FakeSlack::start(APP_TOKEN, BOT_TOKEN).await;
    fake.add_user(ALICE, "alice", "Alice Example");
    fake.add_dm(ALICE_DM, ALICE);
    fake.add_channel(GENERAL, "general");
    fake
}

/// A state directory wired to `fake`: both tokens, Alice allowed, the
/// channel open.
async fn slack_home(fake: &FakeSlack) -> TempHome {
    let home = TempHome::new();
    home.secret("SLACK_APP_TOKEN", APP_TOKEN);
    home.secret("SLACK_BOT_TOKEN", BOT_TOKEN);
    let (web, ws) = (fake.base_url(), fake.socket_base());
    home.config(&format!(
        r#"[components.slack]
enabled = true
settings = {{ api_base = "{web}" }}

[components.slack.grant]
local = ["{web}", "{ws}"]

[components.slack.grant.rebind]
"https://slack.com" = "{web}"
"https://files.slack.com" = "{web}"
"wss://wss-primary.slack.com" = "{ws}"
"#
    ));
    cli_ok(&home, &["access", "allow", "slack", ALICE]).await;
    cli_ok(&home, &["access", "group", "open", "slack", GENERAL]).await;
    home
}

async fn start(home: &TempHome, fake: &FakeSlack) -> Session {
    let session = Session::start_command(
        serve_logging(home, "info"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    until("airlock to open Socket Mode", || fake.connected()).await;
    session
}

async fn call_ok(session: &Session, tool: &'static str, args: Value) -> String {
    let (is_error, text) = outcome(&session.call(tool, args).await);
    assert!(!is_error, "{tool}: {text}");
    text
}

/// What the bot posted in `channel`, oldest first.
fn bot_posts(fake: &FakeSlack, channel: &str) -> Vec<Value> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m["user"] == BOT_USER_ID)
        .collect()
}

#[tokio::test]
async fn a_conversation_in_dms_channels_threads_and_buttons() {
    let fake = fake().await;
    let home = slack_home(&fake).await;
    let mut session = start(&home, &fake).await;

    // A DM, answered in its thread, in mrkdwn.
    let ts = fake.post_as_user(ALICE_DM, ALICE, "hello from Slack", None);
    let e = session.event().await;
    assert_eq!(e["meta"]["chat_id"], format!("slack:{ALICE_DM}"), "{e}");
    assert_eq!(e["meta"]["message_id"], ts.as_str());
    assert_eq!(e["content"], "hello from Slack");
    let sent = call_ok(
        &session,
        "reply",
        json!({"chat_id": format!("slack:{ALICE_DM}"), "text": "**hi** & welcome", "reply_to": ts, "format": "markdown"}),
    )
    .await;
    let posted = bot_posts(&fake, ALICE_DM).pop().unwrap();
    assert_eq!(sent_id(&sent), posted["ts"].as_str().unwrap());
    assert_eq!(posted["text"], "*hi* &amp; welcome");
    assert_eq!(posted["thread_ts"], ts.as_str());

    // A channel message that mentions the bot arrives once (its `message`
    // and `app_mention` events are the same message).
    let mention = fake.post_as_user(GENERAL, ALICE, &format!("<@{BOT_USER_ID}> status?"), None);
    let e = session.event().await;
    assert_eq!(e["meta"]["chat_id"], format!("slack:{GENERAL}"), "{e}");
    assert_eq!(e["meta"]["message_id"], mention.as_str());
    // A reply in the thread of that message, without a mention, is part of
    // the conversation the bot is in once the bot has answered there.
    call_ok(
        &session,
        "reply",
        json!({"chat_id": format!("slack:{GENERAL}"), "text": "all green", "reply_to": mention}),
    )
    .await;
    let in_thread = fake.post_as_user(GENERAL, ALICE, "thanks, and the logs?", Some(&mention));
    let e = session.event().await;
    assert_eq!(e["meta"]["message_id"], in_thread.as_str(), "{e}");
    assert_eq!(e["meta"]["reply_to"], mention.as_str(), "{e}");
    // Answering the reply stays in the thread of the first message.
    call_ok(
        &session,
        "reply",
        json!({"chat_id": format!("slack:{GENERAL}"), "text": "attached", "reply_to": in_thread}),
    )
    .await;
    assert_eq!(
        bot_posts(&fake, GENERAL).pop().unwrap()["thread_ts"],
        mention.as_str()
    );

    // Buttons, pressed.
    let sent = call_ok(
        &session,
        "reply",
        json!({"chat_id": format!("slack:{ALICE_DM}"), "text": "Deploy?",
               "buttons": [[{"label": "Yes", "data": "deploy:yes"}, {"label": "No", "data": "deploy:no"}]]}),
    )
    .await;
    let prompt = sent_id(&sent);
    let pressed = bot_posts(&fake, ALICE_DM).pop().unwrap();
    let action = pressed["blocks"][1]["elements"][1]["action_id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.press_button(ALICE_DM, &prompt, ALICE, &action)
        .expect("a button");
    let e = session.event().await;
    assert_eq!(e["meta"]["button"], "deploy:no", "{e}");
    assert_eq!(e["meta"]["message_id"], prompt.as_str(), "{e}");

    // Edits and reactions, both ways.
    fake.edit_as_user(ALICE_DM, &ts, "hello from Slack, edited");
    let e = session.event().await;
    assert_eq!(e["content"], "hello from Slack, edited", "{e}");
    fake.react_as_user(ALICE_DM, &prompt, ALICE, "eyes");
    let e = session.event().await;
    assert!(e.to_string().contains(":eyes:"), "{e}");
    call_ok(
        &session,
        "edit_message",
        json!({"chat_id": format!("slack:{ALICE_DM}"), "message_id": prompt, "text": "Deployed."}),
    )
    .await;
    let edited = fake
        .messages(ALICE_DM)
        .into_iter()
        .find(|m| m["ts"] == prompt.as_str())
        .unwrap();
    assert_eq!(edited["text"], "Deployed.");
    assert!(
        !edited.to_string().contains("deploy:yes"),
        "the buttons are gone: {edited}"
    );
    call_ok(
        &session,
        "react",
        json!({"chat_id": format!("slack:{ALICE_DM}"), "message_id": ts, "emoji": "👍"}),
    )
    .await;
    let reacted = fake
        .messages(ALICE_DM)
        .into_iter()
        .find(|m| m["ts"] == ts.as_str())
        .unwrap();
    assert_eq!(reacted["reactions"][0]["name"], "+1", "{reacted}");

    // History: the channel's messages oldest first (thread replies stay in
    // their threads, as Slack keeps them).
    call_ok(
        &session,
        "reply",
        json!({"chat_id": format!("slack:{GENERAL}"), "text": "news for all"}),
    )
    .await;
    let history = call_ok(
        &session,
        "fetch_messages",
        json!({"chat_id": format!("slack:{GENERAL}"), "limit": 10}),
    )
    .await;
    let first = history.find("status?").expect(&history);
    let later = history.find("news for all").expect(&history);
    assert!(first < later && !history.contains("all green"), "{history}");

    // Every Slack call carried the right token, and neither token is
    // anywhere the session or the log could show.
    for call in fake.calls() {
        let want = match call.method.as_str() {
            "apps.connections.open" => Some(APP_TOKEN),
            m if m.starts_with("/upload/") => None,
            _ => Some(BOT_TOKEN),
        };
        if want.is_some() {
            assert_eq!(call.token.as_deref(), want, "{call:?}");
        }
    }
    let log = session.log.text();
    for part in ["SlackAppTokenSecret", "SlackBotTokenSecret"] {
        assert!(
            !log.contains(part) && !history.contains(part),
            "{part} leaked"
        );
    }
    assert!(
        fake.pending().is_empty(),
        "unacknowledged: {:?}",
        fake.pending()
    );
    session.close().await;
}

#[tokio::test]
async fn files_go_up_through_the_external_flow_and_come_down_into_the_inbox() {
    let fake = fake().await;
    let home = slack_home(&fake).await;
    let mut session = start(&home, &fake).await;

    let (ts, file) = fake.share_file(
        ALICE_DM,
        ALICE,
        "the log",
        "run.log",
        "text/plain",
        b"line 1\nline 2\n",
    );
    let e = session.event().await;
    assert_eq!(e["meta"]["message_id"], ts.as_str(), "{e}");
    assert!(e.to_string().contains(&file), "{e}");
    let saved = call_ok(
        &session,
        "download_attachment",
        json!({"chat_id": format!("slack:{ALICE_DM}"), "attachment_id": file}),
    )
    .await;
    let path = saved.strip_prefix("saved to ").expect(&saved);
    assert_eq!(std::fs::read(path).unwrap(), b"line 1\nline 2\n");

    let report = home.dir.path().join("report.txt");
    std::fs::write(&report, "all green\n").unwrap();
    let sent = call_ok(
        &session,
        "reply",
        json!({"chat_id": format!("slack:{ALICE_DM}"), "text": "the report", "files": [report.display().to_string()]}),
    )
    .await;
    assert!(sent.contains("sent"), "{sent}");
    let shared = bot_posts(&fake, ALICE_DM)
        .into_iter()
        .find(|m| m["files"].is_array())
        .expect("a message sharing the file");
    let id = shared["files"][0]["id"].as_str().unwrap();
    assert_eq!(fake.file_bytes(id).unwrap(), b"all green\n");
    for method in ["files.getUploadURLExternal", "files.completeUploadExternal"] {
        assert_eq!(fake.calls_to(method).len(), 1, "{method}");
    }
    session.close().await;
}

#[tokio::test]
async fn a_disconnect_mid_stream_loses_nothing_and_faults_are_said() {
    let fake = fake().await;
    let home = slack_home(&fake).await;
    let mut session = start(&home, &fake).await;

    // Slack recycles the connection while messages keep coming.
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(fake.post_as_user(ALICE_DM, ALICE, &format!("before {i}"), None));
    }
    fake.disconnect("refresh_requested", Duration::from_millis(300));
    for i in 0..5 {
        sent.push(fake.post_as_user(ALICE_DM, ALICE, &format!("during {i}"), None));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    until("a second connection", || {
        fake.connections() >= 2 && fake.connected()
    })
    .await;
    for i in 0..5 {
        sent.push(fake.post_as_user(ALICE_DM, ALICE, &format!("after {i}"), None));
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let e = session.event().await;
        got.push(e["meta"]["message_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, sent, "every message once, in order");
    assert!(
        session
            .event_within(Duration::from_millis(500))
            .await
            .is_none()
    );
    until("every envelope acknowledged", || fake.pending().is_empty()).await;
    assert!(
        session
            .log
            .text()
            .contains("Slack asked to reconnect (refresh_requested)")
    );

    // Rate limited: waited out, then sent.
    fake.fail_next("chat.postMessage", Fault::RateLimited { retry_after: 1 }, 1);
    call_ok(
        &session,
        "reply",
        json!({"chat_id": format!("slack:{ALICE_DM}"), "text": "after the wait"}),
    )
    .await;
    assert_eq!(
        bot_posts(&fake, ALICE_DM).pop().unwrap()["text"],
        "after the wait"
    );

    // A scope the app lacks is named, with the fix.
    fake.fail_next(
        "reactions.add",
        Fault::MissingScope {
            needed: "reactions:write".into(),
            provided: "chat:write".into(),
        },
        1,
    );
    let (is_error, text) = outcome(
        &session
            .call("react", json!({"chat_id": format!("slack:{ALICE_DM}"), "message_id": sent[0], "emoji": "eyes"}))
            .await,
    );
    assert!(
        is_error && text.contains("reactions:write") && text.contains("reinstall"),
        "{text}"
    );
    session.close().await;

    // Tokens Slack refuses: the start stops with which token and the fix.
    fake.revoke_tokens();
    let session = Session::start_command(
        serve_logging(&home, "info"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !session.log.text().contains("invalid_auth") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            session.log.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = session.log.text();
    assert!(
        log.contains("SLACK_BOT_TOKEN") && log.contains("set it again"),
        "{log}"
    );
    assert!(!log.contains("SlackBotTokenSecret"), "{log}");
    session.close().await;
}

/// Which message number each posted `ts` is (the crash harness maps
/// delivered ids to numbers through a plain function).
static NUMBER_OF_TS: std::sync::Mutex<std::collections::BTreeMap<String, i64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn number_of(ts: &str) -> Option<i64> {
    NUMBER_OF_TS.lock().unwrap().get(ts).copied()
}

/// Slack under the crash harness: Alice's DMs keep coming (the fake keeps
/// every envelope not acknowledged and sends it again to the next
/// connection, as Slack does).
struct Crashing {
    fake: std::sync::Arc<FakeSlack>,
    home: TempHome,
    connections_at_start: std::sync::atomic::AtomicUsize,
}

impl crate::crash::Platform for Crashing {
    fn inject(&self, n: i64) -> bool {
        // Held across the post: the event can reach a session before
        // `post_as_user` returns, and its reader must find its number.
        let mut numbers = NUMBER_OF_TS.lock().unwrap();
        let ts = self
            .fake
            .post_as_user(ALICE_DM, ALICE, &format!("message {n}"), None);
        numbers.insert(ts, n);
        true
    }

    fn serve(&self) -> tokio::process::Command {
        self.connections_at_start
            .store(self.fake.connections(), std::sync::atomic::Ordering::SeqCst);
        // Debug logging makes every step slower, which widens any window.
        serve_logging(&self.home, "airlock=debug")
    }

    fn connected(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {
            let before = self
                .connections_at_start
                .load(std::sync::atomic::Ordering::SeqCst);
            until("the new airlock to open Socket Mode", || {
                self.fake.connections() > before && self.fake.connected()
            })
            .await;
        })
    }
}

/// `kill -9` at random moments while Alice's DMs keep arriving: after the
/// last restart every message has reached a session exactly once. What
/// makes it hold: an envelope is acknowledged only once its events are
/// stored, so Slack sends again what a dead process had not stored, and
/// the host recognises what it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_and_repeats_nothing() {
    let fake = std::sync::Arc::new(fake().await);
    let home = slack_home(&fake).await;
    home.config(&format!(
        "{}\n{NO_SENDER_LIMIT}",
        std::fs::read_to_string(home.path().join("airlock.toml")).unwrap()
    ));
    let platform = std::sync::Arc::new(Crashing {
        fake: fake.clone(),
        home,
        connections_at_start: std::sync::atomic::AtomicUsize::new(0),
    });
    crate::crash::run(platform, number_of).await;
    eprintln!(
        "slack crash test: {} connections, {} acknowledgements, {} still pending",
        fake.connections(),
        fake.acks().len(),
        fake.pending().len()
    );
}
