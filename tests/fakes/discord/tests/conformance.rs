//! The fake against a real client: serenity 0.12.5, unpatched, pointed at
//! the fake's REST base (`HttpBuilder::proxy` with the rate limiter off) and
//! at its gateway URL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TOKEN, eventually, http};
use fake_discord::{BOT_ID, FakeDiscord, Fault, GUILD_ID, payloads};
use serde_json::Value;
use serenity::all::{
    ChannelId, ComponentInteractionDataKind, CreateActionRow, CreateAttachment, CreateButton,
    CreateInteractionResponse, CreateInteractionResponseMessage, CreateMessage, EditMessage,
    EmojiId, GetMessages, Interaction, MessageId, ReactionType, UserId,
};
use serenity::async_trait;
use serenity::client::{ClientBuilder, Context, EventHandler};
use serenity::gateway::ShardManager;
use serenity::http::{Http, HttpBuilder, HttpError};
use serenity::model::channel::{Channel, Message, Reaction};
use serenity::model::event::{MessageUpdateEvent, ResumedEvent};
use serenity::model::gateway::Ready;
use serenity::prelude::GatewayIntents;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const ALICE: &str = "5000000000000000001";
const GENERAL: &str = "4000000000000000001";
const DM: &str = "4100000000000000001";
const THREAD: &str = "4200000000000000001";
/// How long a test waits for one event.
const WAIT: Duration = Duration::from_secs(10);

fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
        | GatewayIntents::GUILD_MESSAGE_REACTIONS
}

fn id(s: &str) -> u64 {
    s.parse().expect("snowflake")
}

fn alice() -> Value {
    payloads::user(ALICE, "alice")
}

/// What the event handler saw.
#[derive(Debug)]
enum Seen {
    Ready(Box<Ready>),
    Message(Box<Message>),
    Update(Box<MessageUpdateEvent>),
    Reaction(Box<Reaction>),
    Resumed,
    Interaction(Box<Interaction>),
}

struct Forward(mpsc::UnboundedSender<Seen>);

#[async_trait]
impl EventHandler for Forward {
    async fn ready(&self, _: Context, ready: Ready) {
        let _ = self.0.send(Seen::Ready(Box::new(ready)));
    }
    async fn message(&self, _: Context, message: Message) {
        let _ = self.0.send(Seen::Message(Box::new(message)));
    }
    async fn message_update(
        &self,
        _: Context,
        _: Option<Message>,
        _: Option<Message>,
        event: MessageUpdateEvent,
    ) {
        let _ = self.0.send(Seen::Update(Box::new(event)));
    }
    async fn reaction_add(&self, _: Context, reaction: Reaction) {
        let _ = self.0.send(Seen::Reaction(Box::new(reaction)));
    }
    async fn resume(&self, _: Context, _: ResumedEvent) {
        let _ = self.0.send(Seen::Resumed);
    }
    async fn interaction_create(&self, _: Context, interaction: Interaction) {
        let _ = self.0.send(Seen::Interaction(Box::new(interaction)));
    }
}

/// A serenity client running against the fake.
struct Bot {
    http: Arc<Http>,
    seen: mpsc::UnboundedReceiver<Seen>,
    shards: Arc<ShardManager>,
    run: JoinHandle<Result<(), serenity::Error>>,
}

impl Bot {
    async fn start(fake: &FakeDiscord, intents: GatewayIntents) -> Bot {
        let http = HttpBuilder::new(TOKEN)
            .proxy(fake.api_base())
            .ratelimiter_disabled(true)
            .client(http())
            .build();
        let (tx, seen) = mpsc::unbounded_channel();
        // Not `.token()` afterwards: that would build a new Http.
        let mut client = ClientBuilder::new_with_http(http, intents)
            .event_handler(Forward(tx))
            .await
            .expect("client");
        *client.ws_url.lock().await = fake.gateway_url();
        let http = client.http.clone();
        let shards = client.shard_manager.clone();
        let run = tokio::spawn(async move { client.start().await });
        Bot {
            http,
            seen,
            shards,
            run,
        }
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("an event in time")
            .expect("the client is running")
    }

    async fn ready(&mut self) -> Ready {
        match self.next().await {
            Seen::Ready(ready) => *ready,
            other => panic!("READY expected, got {other:?}"),
        }
    }

    /// The next message event for which `pick` holds; others are skipped.
    async fn message(&mut self, pick: impl Fn(&Message) -> bool) -> Message {
        loop {
            if let Seen::Message(m) = self.next().await
                && pick(&m)
            {
                return *m;
            }
        }
    }

    async fn stop(self) {
        self.shards.shutdown_all().await;
        self.run.abort();
    }
}

fn status_and_code(error: &serenity::Error) -> (u16, isize) {
    match error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(e)) => {
            (e.status_code.as_u16(), e.error.code)
        }
        other => panic!("an unsuccessful request expected, got {other:?}"),
    }
}

#[tokio::test]
async fn handshake_messages_reactions_edits_history() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    fake.add_thread(THREAD, GENERAL, "side");
    fake.add_dm(DM, alice());
    let mut bot = Bot::start(&fake, intents()).await;

    // Handshake.
    let ready = bot.ready().await;
    assert_eq!(ready.user.id.get(), id(BOT_ID));
    assert_eq!(ready.application.id.get(), id(BOT_ID));
    assert_eq!(fake.identifies(), 1);
    assert!(fake.is_ready());
    let identify = fake.last_identify().expect("identify");
    assert_eq!(identify["d"]["intents"], 38401);
    assert_eq!(identify["d"]["token"], format!("Bot {TOKEN}"));
    assert_eq!(fake.gateway_queries(), vec![Some("v=10".to_owned())]);
    // Client::builder asked for the gateway URL first.
    assert_eq!(fake.calls_to("GET", "/gateway").len(), 1);

    // A user's message comes in.
    let incoming = payloads::guild_message(
        "3000000000000000010",
        GENERAL,
        alice(),
        "<@1000000000000000001> hello bot",
    );
    fake.dispatch("MESSAGE_CREATE", incoming);
    let got = bot.message(|_| true).await;
    assert_eq!(got.content, "<@1000000000000000001> hello bot");
    assert_eq!(got.author.id.get(), id(ALICE));
    assert_eq!(got.author.name, "alice");
    assert_eq!(got.guild_id.map(|g| g.get()), Some(id(GUILD_ID)));

    // say(): POST /channels/{id}/messages, stored, echoed on the gateway.
    let http = bot.http.clone();
    let sent = ChannelId::new(id(GENERAL))
        .say(&http, "hi")
        .await
        .expect("say");
    assert_eq!(sent.content, "hi");
    assert_eq!(sent.author.id.get(), id(BOT_ID));
    let call = fake
        .calls_to("POST", "/channels/{}/messages")
        .pop()
        .expect("call");
    assert_eq!(call.path, format!("/channels/{GENERAL}/messages"));
    assert_eq!(call.json.as_ref().unwrap()["content"], "hi");
    assert_eq!(call.header("authorization"), Some(&*format!("Bot {TOKEN}")));
    assert!(call.header("user-agent").unwrap().contains("serenity"));
    let echo = bot.message(|m| m.id == sent.id).await;
    assert_eq!(echo.author.id.get(), id(BOT_ID));

    // A reply with buttons and a file.
    let buttons = CreateActionRow::Buttons(vec![
        CreateButton::new("vote:yes").label("Yes"),
        CreateButton::new_link("https://example.org").label("Docs"),
    ]);
    let reply = CreateMessage::new()
        .content("Pick one")
        .reference_message(&got)
        .components(vec![buttons])
        .add_file(CreateAttachment::bytes(b"hello file".to_vec(), "notes.txt"));
    let reply = ChannelId::new(id(GENERAL))
        .send_message(&http, reply)
        .await
        .expect("send_message");
    assert_eq!(
        reply.referenced_message.as_ref().map(|m| m.id),
        Some(got.id)
    );
    assert_eq!(reply.components[0].components.len(), 2);
    let attachment = &reply.attachments[0];
    assert_eq!(attachment.filename, "notes.txt");
    let call = fake
        .calls_to("POST", "/channels/{}/messages")
        .pop()
        .expect("call");
    assert_eq!(call.files.len(), 1);
    assert_eq!(call.files[0].field, "files[0]");
    assert_eq!(call.files[0].bytes, b"hello file");
    assert_eq!(
        call.json.as_ref().unwrap()["message_reference"]["message_id"],
        "3000000000000000010"
    );
    let download = common::http()
        .get(&attachment.url)
        .send()
        .await
        .expect("download");
    assert_eq!(&download.bytes().await.unwrap()[..], b"hello file");

    // Reactions: Unicode and custom.
    sent.react(&http, '👍').await.expect("unicode reaction");
    let custom = ReactionType::Custom {
        animated: false,
        id: EmojiId::new(123_456_789_012_345_678),
        name: Some("blob".into()),
    };
    http.create_reaction(sent.channel_id, sent.id, &custom)
        .await
        .expect("custom reaction");
    let reactions = fake.calls_to("PUT", "/channels/{}/messages/{}/reactions/{}/@me");
    assert_eq!(reactions.len(), 2);
    assert!(reactions[0].path.ends_with("/reactions/👍/@me"));
    assert!(reactions[0].raw_path.contains("%F0%9F%91%8D"));
    assert!(
        reactions[1]
            .path
            .ends_with("/reactions/blob:123456789012345678/@me")
    );
    let mut emojis = Vec::new();
    while emojis.len() < 2 {
        if let Seen::Reaction(r) = bot.next().await {
            assert_eq!(r.user_id.map(|u| u.get()), Some(id(BOT_ID)));
            emojis.push(r.emoji.clone());
        }
    }
    assert_eq!(emojis[0], ReactionType::Unicode("👍".into()));
    assert_eq!(emojis[1], custom);

    // Edit.
    let mut edited = sent.clone();
    edited
        .edit(&http, EditMessage::new().content("hi (edited)"))
        .await
        .expect("edit");
    assert_eq!(edited.content, "hi (edited)");
    assert!(edited.edited_timestamp.is_some());
    loop {
        if let Seen::Update(update) = bot.next().await {
            assert_eq!(update.id, sent.id);
            assert_eq!(update.content.as_deref(), Some("hi (edited)"));
            break;
        }
    }

    // History, newest first; the edit and the reactions are in it.
    let history = ChannelId::new(id(GENERAL))
        .messages(&http, GetMessages::new().limit(10))
        .await
        .expect("history");
    let contents: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        contents,
        [
            "Pick one",
            "hi (edited)",
            "<@1000000000000000001> hello bot"
        ]
    );
    assert_eq!(history[1].reactions.len(), 2);
    let call = fake
        .calls_to("GET", "/channels/{}/messages")
        .pop()
        .expect("call");
    assert_eq!(call.query_param("limit"), Some("10"));
    let stored = fake.messages_in(GENERAL);
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0]["author"]["id"], ALICE);
    assert_eq!(stored[1]["content"], "hi (edited)");

    // Typing, DMs, channels.
    ChannelId::new(id(DM))
        .broadcast_typing(&http)
        .await
        .expect("typing");
    assert_eq!(fake.calls_to("POST", "/channels/{}/typing").len(), 1);
    let dm = UserId::new(id(ALICE))
        .create_dm_channel(&http)
        .await
        .expect("DM");
    assert_eq!(dm.id.get(), id(DM));
    assert_eq!(dm.recipient.id.get(), id(ALICE));
    let Channel::Guild(thread) = http
        .get_channel(ChannelId::new(id(THREAD)))
        .await
        .expect("thread")
    else {
        panic!("a guild channel expected");
    };
    assert_eq!(thread.parent_id.map(|p| p.get()), Some(id(GENERAL)));

    // Errors come back in Discord's shape.
    let missing = ChannelId::new(999).say(&http, "x").await.unwrap_err();
    assert_eq!(status_and_code(&missing), (404, 10003));
    let missing = http
        .get_message(ChannelId::new(id(GENERAL)), MessageId::new(1))
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&missing), (404, 10008));
    // serenity refuses an over-long message itself, before any request.
    let before = fake.calls().len();
    assert!(
        ChannelId::new(id(GENERAL))
            .say(&http, "x".repeat(2001))
            .await
            .is_err()
    );
    assert_eq!(fake.calls().len(), before);

    bot.stop().await;
}

#[tokio::test]
async fn button_click_and_interaction_response() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    let mut bot = Bot::start(&fake, intents()).await;
    bot.ready().await;
    let http = bot.http.clone();
    let buttons = CreateActionRow::Buttons(vec![CreateButton::new("vote:yes").label("Yes")]);
    let question = ChannelId::new(id(GENERAL))
        .send_message(
            &http,
            CreateMessage::new()
                .content("Vote?")
                .components(vec![buttons]),
        )
        .await
        .expect("send");
    let stored = fake.messages_in(GENERAL).pop().expect("stored");

    fake.dispatch(
        "INTERACTION_CREATE",
        payloads::button_interaction(
            "7000000000000000001",
            GENERAL,
            alice(),
            "vote:yes",
            stored,
            true,
        ),
    );
    let click = loop {
        if let Seen::Interaction(i) = bot.next().await {
            match *i {
                Interaction::Component(c) => break c,
                other => panic!("a component interaction expected, got {other:?}"),
            }
        }
    };
    assert_eq!(click.data.custom_id, "vote:yes");
    assert!(matches!(
        click.data.kind,
        ComponentInteractionDataKind::Button
    ));
    assert_eq!(click.user.id.get(), id(ALICE));
    assert_eq!(click.message.id, question.id);

    let update = CreateInteractionResponse::UpdateMessage(
        CreateInteractionResponseMessage::new()
            .content("Thanks for voting")
            .components(vec![]),
    );
    click
        .create_response(&http, update)
        .await
        .expect("callback");
    let call = fake
        .calls_to("POST", "/interactions/{}/{}/callback")
        .pop()
        .expect("call");
    assert_eq!(call.json.as_ref().unwrap()["type"], 7);
    loop {
        if let Seen::Update(update) = bot.next().await {
            assert_eq!(update.content.as_deref(), Some("Thanks for voting"));
            break;
        }
    }
    assert_eq!(fake.messages_in(GENERAL)[0]["content"], "Thanks for voting");

    let again = click
        .create_response(&http, CreateInteractionResponse::Acknowledge)
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&again), (400, 40060));
    bot.stop().await;
}

#[tokio::test]
async fn heartbeats_keep_the_connection() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_dm(DM, alice());
    fake.set_heartbeat_interval(700);
    let mut bot = Bot::start(&fake, intents()).await;
    bot.ready().await;
    eventually("three heartbeats", || fake.heartbeats() >= 3).await;
    // Still the first connection and session, and still delivering.
    assert!(fake.is_ready());
    assert_eq!(fake.connections(), 1);
    assert_eq!(fake.identifies(), 1);
    assert_eq!(fake.resumes(), 0);
    let beats: Vec<Value> = fake
        .client_frames()
        .into_iter()
        .filter(|f| f["op"] == 1)
        .collect();
    // serenity heartbeats with the last sequence number it saw: READY's 1.
    assert_eq!(beats[0]["d"], 1);
    fake.dispatch(
        "MESSAGE_CREATE",
        payloads::dm_message("3000000000000000011", DM, alice(), "still there?"),
    );
    assert_eq!(bot.message(|_| true).await.content, "still there?");
    bot.stop().await;
}

#[tokio::test]
async fn reconnect_resumes_and_replays() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_dm(DM, alice());
    let mut bot = Bot::start(&fake, intents()).await;
    let ready = bot.ready().await;
    fake.dispatch(
        "MESSAGE_CREATE",
        payloads::dm_message("3000000000000000011", DM, alice(), "before"),
    );
    assert_eq!(bot.message(|_| true).await.content, "before");

    // op 7, and a message while serenity is reconnecting: it comes with the
    // replay.
    fake.send_reconnect();
    fake.dispatch(
        "MESSAGE_CREATE",
        payloads::dm_message("3000000000000000012", DM, alice(), "during"),
    );
    assert_eq!(bot.message(|_| true).await.content, "during");
    loop {
        if let Seen::Resumed = bot.next().await {
            break;
        }
    }
    assert_eq!(fake.resumes(), 1);
    assert_eq!(fake.identifies(), 1);
    assert_eq!(fake.connections(), 2);
    let resume = fake.last_resume().expect("resume");
    assert_eq!(resume["d"]["session_id"], ready.session_id.as_str());
    assert_eq!(resume["d"]["seq"], 2);
    assert_eq!(resume["d"]["token"], format!("Bot {TOKEN}"));

    fake.dispatch(
        "MESSAGE_CREATE",
        payloads::dm_message("3000000000000000013", DM, alice(), "after"),
    );
    assert_eq!(bot.message(|_| true).await.content, "after");
    bot.stop().await;
}

#[tokio::test]
async fn dropped_socket_resumes_and_zombie_reidentifies() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_dm(DM, alice());
    fake.set_heartbeat_interval(600);
    let mut bot = Bot::start(&fake, intents()).await;
    let ready = bot.ready().await;

    // The TCP connection is reset: serenity resumes the session.
    fake.drop_socket();
    eventually("a resume after the reset", || fake.resumes() == 1).await;
    assert_eq!(
        fake.session_id().as_deref(),
        Some(ready.session_id.as_str())
    );

    // No more heartbeat ACKs: serenity gives up on the shard and restarts
    // it, which identifies anew (its queue keeps 5 s between identifies).
    fake.stop_acks(true);
    let ready = loop {
        if let Seen::Ready(ready) = bot.next().await {
            break ready;
        }
    };
    fake.stop_acks(false);
    assert_eq!(fake.identifies(), 2);
    assert_eq!(fake.resumes(), 1);
    assert_eq!(
        fake.session_id().as_deref(),
        Some(ready.session_id.as_str())
    );
    fake.dispatch(
        "MESSAGE_CREATE",
        payloads::dm_message("3000000000000000011", DM, alice(), "back"),
    );
    assert_eq!(bot.message(|_| true).await.content, "back");
    bot.stop().await;
}

#[tokio::test]
async fn revoked_token_stops_the_client() {
    let fake = FakeDiscord::start(TOKEN).await;
    let mut bot = Bot::start(&fake, intents()).await;
    bot.ready().await;
    fake.set_token("NEW.TOKEN");
    // REST with the old token: 401.
    let err = ChannelId::new(id(GENERAL))
        .say(&bot.http, "x")
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 401);
    // The gateway: 4000 makes serenity resume, and the Resume gets 4004.
    fake.close_with(4000, "Unknown error.");
    let run = tokio::time::timeout(WAIT, bot.run)
        .await
        .expect("the client stops")
        .expect("no panic");
    assert!(
        matches!(
            run,
            Err(serenity::Error::Gateway(
                serenity::gateway::GatewayError::InvalidAuthentication
            ))
        ),
        "{run:?}"
    );
    assert_eq!(
        fake.last_resume().unwrap()["d"]["token"],
        format!("Bot {TOKEN}")
    );
}

#[tokio::test]
async fn disallowed_intents_stop_the_client() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.set_privileged_intents(false);
    let bot = Bot::start(&fake, intents()).await;
    let run = tokio::time::timeout(WAIT, bot.run)
        .await
        .expect("the client stops")
        .expect("no panic");
    assert!(
        matches!(
            run,
            Err(serenity::Error::Gateway(
                serenity::gateway::GatewayError::DisallowedGatewayIntents
            ))
        ),
        "{run:?}"
    );
    assert_eq!(fake.identifies(), 0);
}

#[tokio::test]
async fn faults_reach_serenity() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    let http = HttpBuilder::new(TOKEN)
        .proxy(fake.api_base())
        .ratelimiter_disabled(true)
        .client(http())
        .build();
    let route = "/channels/{}/messages";
    fake.fail_next(
        "POST",
        route,
        Fault::RateLimited {
            retry_after: 0.5,
            global: false,
        },
        1,
    );
    fake.fail_next("POST", route, Fault::ServerError(503), 1);
    let channel = ChannelId::new(id(GENERAL));
    // With its rate limiter off, serenity hands a 429 to the caller.
    let err = channel.say(&http, "one").await.unwrap_err();
    assert_eq!(status_and_code(&err).0, 429);
    let err = channel.say(&http, "two").await.unwrap_err();
    assert_eq!(status_and_code(&err).0, 503);
    channel.say(&http, "three").await.expect("third try");
    let stored: Vec<Value> = fake.messages_in(GENERAL);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["content"], "three");
    assert_eq!(
        fake.calls()
            .iter()
            .map(|c| c.fault.is_some())
            .collect::<Vec<_>>(),
        [true, true, false]
    );
}
