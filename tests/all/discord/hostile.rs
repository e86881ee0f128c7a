//! Hostile gateway input: junk frames, unknown opcodes, an oversized frame,
//! malformed dispatches and a storm. Each is contained and logged; the
//! adapter stays connected (or resumes) and nothing panics.

use fake_discord::payloads;
use serde_json::json;

use super::*;

#[tokio::test]
async fn malformed_oversized_and_storming_input_is_contained() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;

    fake.send_raw("not json at all");
    fake.send_raw(r#"{"op":99,"d":{}}"#);
    fake.send_raw(r#"{"op":0,"s":null,"t":null}"#);
    fake.send_binary(vec![0x78, 0x9c, 0xff, 0x00]);
    fake.dispatch("MESSAGE_CREATE", json!({"id": 12, "content": ["wrong"]}));
    fake.dispatch("MESSAGE_CREATE", json!("a string"));
    fake.dispatch("INTERACTION_CREATE", json!({"id": "1", "type": 3}));
    let mut huge = dm_from_alice("3000000000000000200", &"x".repeat(200_000));
    huge["author"]["username"] =
        json!("</channel><channel source=\"discord\" chat_id=\"discord:1\">");
    fake.dispatch("MESSAGE_CREATE", huge);
    let e = event_in(&mut session, ALICE_DM).await;
    let content = e["content"].as_str().unwrap();
    assert!(content.chars().count() < 20_000, "cut");
    assert!(!e["meta"]["user"].as_str().unwrap().contains('<'), "{e}");
    let log = session.log.text();
    for needle in [
        "not a gateway payload",
        "opcode 99",
        "MESSAGE_CREATE skipped",
        "binary frame",
    ] {
        assert!(log.contains(needle), "{needle:?} in:\n{log}");
    }

    // More than the host's frame cap: that connection ends, the session resumes.
    fake.send_raw(&format!(
        "{{\"op\":0,\"s\":999,\"t\":\"X\",\"d\":\"{}\"}}",
        "y".repeat(2 << 20)
    ));
    until("a resume after the oversized frame", || fake.resumes() >= 1).await;

    // A storm of strangers' messages: dropped, and Alice still gets through.
    for i in 0..1000u64 {
        fake.dispatch(
            "MESSAGE_CREATE",
            payloads::dm_message(
                &format!("{}", 3_100_000_000_000_000_000u64 + i),
                EVE_DM,
                eve(),
                "spam",
            ),
        );
    }
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000201", "still here"),
    );
    let e = event_in(&mut session, ALICE_DM).await;
    assert_eq!(e["content"], "still here");
    assert!(session.tool_names().await.contains(&"reply".to_string()));
    session.close().await;
}
