//! Golden payloads: everything the fake builds or sends must deserialise
//! with serenity 0.12's own model types. serenity drops a dispatch whose
//! data does not parse with nothing but a log line, so drift in a payload
//! would otherwise show up as a test that waits forever.

mod common;

use common::*;
use fake_discord::{BOT_ID, FakeDiscord, GUILD_ID, payloads};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use serenity::model::application::{ComponentInteractionDataKind, Interaction};
use serenity::model::channel::{Channel, Message, MessageType, Reaction, ReactionType};
use serenity::model::event::{Event, GatewayEvent};
use serenity::model::gateway::{BotGateway, Ready};
use serenity::model::user::{CurrentUser, User};

const ALICE: &str = "5000000000000000001";
const GENERAL: &str = "4000000000000000001";
const DM: &str = "4100000000000000001";

fn parse<T: DeserializeOwned>(value: &Value) -> T {
    match serde_json::from_value(value.clone()) {
        Ok(parsed) => parsed,
        Err(e) => panic!(
            "{} does not parse: {e}\n{value:#}",
            std::any::type_name::<T>()
        ),
    }
}

fn frame(value: &Value) -> GatewayEvent {
    parse(value)
}

fn alice() -> Value {
    payloads::user(ALICE, "alice")
}

#[test]
fn users() {
    let user: User = parse(&alice());
    assert_eq!(user.id.get().to_string(), ALICE);
    assert_eq!(user.name, "alice");
    assert!(!user.bot);
    let bot: CurrentUser = parse(&payloads::bot_user());
    assert_eq!(bot.id.get().to_string(), BOT_ID);
    assert!(bot.bot);
    let same: User = parse(&payloads::user(BOT_ID, "ignored"));
    assert_eq!(same.name, fake_discord::BOT_USERNAME);
}

#[test]
fn dm_message() {
    let d = payloads::dm_message("3000000000000000011", DM, alice(), "hi there");
    let message: Message = parse(&d);
    assert_eq!(message.content, "hi there");
    assert_eq!(message.author.id.get().to_string(), ALICE);
    assert_eq!(message.guild_id, None);
    assert!(message.member.is_none());
    assert_eq!(d["channel_type"], 1);
}

#[tokio::test]
async fn guild_message_with_mention_reply_and_attachment() {
    let fake = FakeDiscord::start(TOKEN).await;
    let mut d = payloads::guild_message(
        "3000000000000000012",
        GENERAL,
        alice(),
        "<@1000000000000000001> see this",
    );
    let mut mentioned = payloads::bot_user();
    mentioned["member"] = payloads::partial_member();
    d["mentions"] = json!([mentioned]);
    d["type"] = json!(19);
    d["message_reference"] = json!({"type": 0, "message_id": "3000000000000000010", "channel_id": GENERAL, "guild_id": GUILD_ID});
    d["referenced_message"] = payloads::guild_message(
        "3000000000000000010",
        GENERAL,
        payloads::bot_user(),
        "earlier",
    );
    d["attachments"] = json!([fake.add_attachment(
        GENERAL,
        "notes.txt",
        "text/plain; charset=utf-8",
        b"hello".to_vec()
    )]);

    let message: Message = parse(&d);
    assert_eq!(
        message.guild_id.map(|g| g.get().to_string()).as_deref(),
        Some(GUILD_ID)
    );
    assert!(message.member.is_some());
    assert_eq!(message.kind, MessageType::InlineReply);
    assert_eq!(message.mentions[0].id.get().to_string(), BOT_ID);
    assert_eq!(message.referenced_message.unwrap().content, "earlier");
    let attachment = &message.attachments[0];
    assert_eq!(attachment.filename, "notes.txt");
    assert_eq!(attachment.size, 5);
    assert!(attachment.url.starts_with(&fake.api_base()));
}

#[test]
fn button_interactions() {
    for guild in [true, false] {
        let channel = if guild { GENERAL } else { DM };
        let mut bot_message = payloads::guild_message(
            "3000000000000000020",
            channel,
            payloads::bot_user(),
            "Pick one",
        );
        bot_message["components"] = json!([{"type": 1, "id": 1, "components": [
            {"type": 2, "id": 2, "style": 1, "label": "Yes", "custom_id": "vote:yes"}
        ]}]);
        let d = payloads::button_interaction(
            "7000000000000000001",
            channel,
            alice(),
            "vote:yes",
            bot_message,
            guild,
        );
        let Interaction::Component(click) = parse::<Interaction>(&d) else {
            panic!("a component interaction expected");
        };
        assert_eq!(click.data.custom_id, "vote:yes");
        assert!(matches!(
            click.data.kind,
            ComponentInteractionDataKind::Button
        ));
        assert_eq!(click.user.id.get().to_string(), ALICE);
        assert_eq!(
            click.token,
            payloads::interaction_token("7000000000000000001")
        );
        assert_eq!(click.message.content, "Pick one");
        assert_eq!(click.guild_id.is_some(), guild);
        assert_eq!(click.member.is_some(), guild);
    }
}

#[test]
fn reactions() {
    for guild in [true, false] {
        let d = payloads::reaction_add(
            alice(),
            GENERAL,
            "3000000000000000010",
            payloads::unicode_emoji("👍"),
            guild,
        );
        let reaction: Reaction = parse(&d);
        assert_eq!(reaction.emoji, ReactionType::Unicode("👍".into()));
        assert_eq!(reaction.member.is_some(), guild);
    }
    let d = payloads::reaction_add(
        alice(),
        GENERAL,
        "3000000000000000010",
        payloads::custom_emoji("blob", "123456789012345678"),
        true,
    );
    let reaction: Reaction = parse(&d);
    assert!(matches!(reaction.emoji, ReactionType::Custom { .. }));
}

#[test]
fn ready_data() {
    let ready: Ready = parse(&payloads::ready("0123456789abcdef", "ws://127.0.0.1:1"));
    assert_eq!(ready.version, 10);
    assert_eq!(ready.user.id.get().to_string(), BOT_ID);
    assert_eq!(ready.application.id.get().to_string(), BOT_ID);
    assert_eq!(ready.guilds[0].id.get().to_string(), GUILD_ID);
    assert_eq!(ready.resume_gateway_url, "ws://127.0.0.1:1");
}

/// Every kind of frame the gateway sends, as received off the wire.
#[tokio::test]
async fn gateway_frames() {
    let fake = FakeDiscord::start(TOKEN).await;
    let mut ws = connect(&fake).await;
    let hello = next_json(&mut ws).await;
    assert!(matches!(frame(&hello), GatewayEvent::Hello(41_250)));
    send(&mut ws, identify_payload(TOKEN, INTENTS)).await;
    let ready = next_json(&mut ws).await;
    let GatewayEvent::Dispatch(1, Event::Ready(ready)) = frame(&ready) else {
        panic!("READY expected: {ready}");
    };
    let session = ready.ready.session_id.clone();
    assert_eq!(ready.ready.resume_gateway_url, fake.gateway_url());

    send(&mut ws, json!({"op": 1, "d": 1})).await;
    assert!(matches!(
        frame(&next_json(&mut ws).await),
        GatewayEvent::HeartbeatAck
    ));
    fake.request_heartbeat();
    assert!(matches!(
        frame(&next_json(&mut ws).await),
        GatewayEvent::Heartbeat(..)
    ));

    let samples = [
        (
            "MESSAGE_CREATE",
            payloads::guild_message("3000000000000000010", GENERAL, alice(), "hi"),
        ),
        (
            "MESSAGE_CREATE",
            payloads::dm_message("3000000000000000011", DM, alice(), "hi"),
        ),
        (
            "MESSAGE_REACTION_ADD",
            payloads::reaction_add(
                alice(),
                GENERAL,
                "3000000000000000010",
                payloads::unicode_emoji("👍"),
                true,
            ),
        ),
        (
            "INTERACTION_CREATE",
            payloads::button_interaction(
                "7000000000000000001",
                GENERAL,
                alice(),
                "go",
                payloads::guild_message("3000000000000000021", GENERAL, payloads::bot_user(), "x"),
                true,
            ),
        ),
    ];
    for (t, d) in samples {
        fake.dispatch(t, d);
        let sent = next_json(&mut ws).await;
        match frame(&sent) {
            GatewayEvent::Dispatch(_, Event::Unknown(_)) => panic!("{t} not understood: {sent}"),
            GatewayEvent::Dispatch(..) => {}
            _ => panic!("a dispatch expected: {sent}"),
        }
    }

    fake.send_reconnect();
    assert!(matches!(
        frame(&next_json(&mut ws).await),
        GatewayEvent::Reconnect
    ));
    fake.invalidate_session(true);
    assert!(matches!(
        frame(&next_json(&mut ws).await),
        GatewayEvent::InvalidateSession(true)
    ));

    let mut ws = connect(&fake).await;
    next_json(&mut ws).await;
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 5}}),
    )
    .await;
    let resumed = next_json(&mut ws).await;
    assert!(
        matches!(
            frame(&resumed),
            GatewayEvent::Dispatch(_, Event::Resumed(_))
        ),
        "{resumed}"
    );
}

/// REST answers the fake gives, parsed as serenity parses them.
#[tokio::test]
async fn rest_answers() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    fake.add_thread("4200000000000000001", GENERAL, "side");
    fake.add_dm(DM, alice());

    let (_, _, me) = rest(&fake, "GET", "/users/@me", None).await;
    let _: CurrentUser = parse(&me);
    let (_, _, gateway) = rest(&fake, "GET", "/gateway/bot", None).await;
    let gateway: BotGateway = parse(&gateway);
    assert_eq!(gateway.url, fake.gateway_url());
    for id in [GENERAL, "4200000000000000001", DM] {
        let (_, _, channel) = rest(&fake, "GET", &format!("/channels/{id}"), None).await;
        let channel: Channel = parse(&channel);
        assert_eq!(channel.id().get().to_string(), id);
    }
    let (_, _, dm) = rest(
        &fake,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": "5000000000000000002"})),
    )
    .await;
    let Channel::Private(dm) = parse::<Channel>(&dm) else {
        panic!("a DM channel expected");
    };
    assert_eq!(dm.recipient.id.get().to_string(), "5000000000000000002");

    let body = json!({"content": "Pick one", "tts": false, "embeds": [{"title": "T", "description": "D"}], "sticker_ids": [], "attachments": [], "enforce_nonce": false,
        "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "Yes", "custom_id": "vote:yes"},
            {"type": 2, "style": 5, "label": "Docs", "url": "https://example.org"}]}]});
    let (_, _, sent) = rest(
        &fake,
        "POST",
        &format!("/channels/{GENERAL}/messages"),
        Some(body),
    )
    .await;
    let message: Message = parse(&sent);
    assert_eq!(message.components[0].components.len(), 2);
    assert_eq!(message.embeds[0].title.as_deref(), Some("T"));
    let (_, _, history) = rest(&fake, "GET", &format!("/channels/{GENERAL}/messages"), None).await;
    let _: Vec<Message> = parse(&history);

    let (_, _, error) = rest(
        &fake,
        "POST",
        &format!("/channels/{GENERAL}/messages"),
        Some(json!({"content": "x".repeat(2001)})),
    )
    .await;
    let error: serenity::http::DiscordJsonError = parse(&error);
    assert_eq!(error.code, 50035);
    assert_eq!(error.errors[0].path, "content");
}
