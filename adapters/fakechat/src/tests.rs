use super::*;
use airlock_guest::percent::decode_form as percent_decode;
use airlock_guest::types::TextFormat;

fn request(method: &str, path: &str, body: &[u8]) -> IncomingRequest {
    IncomingRequest {
        method: method.into(),
        path: path.into(),
        headers: Vec::new(),
        body: body.to_vec(),
    }
}

fn post_text(state: &mut State, text: &str) -> IncomingReply {
    let body = json!({ "text": text }).to_string();
    state.handle_request(&request("POST", "/api/send", body.as_bytes()), 1000)
}

fn body_json(reply: &IncomingReply) -> Value {
    serde_json::from_slice(&reply.response.body).unwrap()
}

fn list(state: &mut State, after: u64) -> Vec<Value> {
    let reply = state.handle_request(
        &request("GET", &format!("/api/messages?after={after}"), b""),
        0,
    );
    assert_eq!(reply.response.status, 200);
    assert!(reply.batch.events.is_empty());
    body_json(&reply).as_array().unwrap().clone()
}

fn bot(text: &str) -> OutboundMessage {
    OutboundMessage {
        chat_id: CHAT_ID.into(),
        text: text.into(),
        reply_to: None,
        format: TextFormat::Plain,
        buttons: Vec::new(),
        files: Vec::new(),
    }
}

fn only_message(reply: &IncomingReply) -> &InboundMessage {
    assert_eq!(reply.batch.events.len(), 1);
    match &reply.batch.events[0] {
        InboundEvent::Message(m) => m,
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn the_page_is_self_contained_and_uses_text_content() {
    let mut state = State::new();
    let reply = state.handle_request(&request("GET", "/", b""), 0);
    assert_eq!(reply.response.status, 200);
    assert!(reply.batch.events.is_empty());
    assert_eq!(
        reply.response.headers,
        [(
            "content-type".to_string(),
            "text/html; charset=utf-8".to_string()
        )]
    );
    let page = String::from_utf8(reply.response.body).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(!page.contains("innerHTML"));
    assert!(
        !page.contains("src=\"http"),
        "no external scripts or images"
    );
    assert!(!page.contains("href=\"http"), "no external stylesheets");
    assert!(page.contains("location.search"));
    assert!(page.contains("searchParams.set(\"token\""));
    // The page is also served with a query (the host strips only the token).
    let reply = state.handle_request(&request("GET", "/?lang=en", b""), 0);
    assert_eq!(reply.response.status, 200);
}

#[test]
fn routing_404_and_405() {
    let mut state = State::new();
    for path in ["/nope", "/api", "/api/sendx", "/index.html"] {
        let reply = state.handle_request(&request("GET", path, b""), 0);
        assert_eq!(reply.response.status, 404, "{path}");
    }
    for (method, path, allow) in [
        ("POST", "/", "GET"),
        ("GET", "/api/send", "POST"),
        ("PUT", "/api/upload", "POST"),
        ("DELETE", "/api/messages", "GET"),
        ("POST", "/api/files/f1", "GET"),
        ("GET", "/api/press", "POST"),
    ] {
        let reply = state.handle_request(&request(method, path, b"{}"), 0);
        assert_eq!(reply.response.status, 405, "{method} {path}");
        assert!(
            reply
                .response
                .headers
                .contains(&("allow".to_string(), allow.to_string()))
        );
        assert!(reply.batch.events.is_empty());
    }
    assert_eq!(state.seq, 0, "nothing was stored");
}

#[test]
fn send_delivers_one_inbound_message() {
    let mut state = State::new();
    let reply = post_text(&mut state, "hello <b>bot</b>");
    assert_eq!(reply.response.status, 200);
    assert_eq!(body_json(&reply), json!({ "id": "1" }));
    let m = only_message(&reply);
    assert_eq!(m.chat.id, "web");
    assert_eq!(m.chat.kind, ChatKind::Direct);
    assert_eq!(m.sender.id, "web");
    assert_eq!(m.sender.handle.as_deref(), Some("web"));
    assert!(!m.sender.is_bot);
    assert!(m.mentions_bot);
    assert_eq!(m.message_id, "1");
    assert_eq!(m.text, "hello <b>bot</b>");
    assert_eq!(m.ts_ms, 1000);
    assert!(m.attachments.is_empty());
    assert!(!m.edited);

    // Ids increase; reply_to must name a known message.
    let body = json!({ "text": "again", "reply_to": "1" }).to_string();
    let reply = state.handle_request(&request("POST", "/api/send", body.as_bytes()), 2000);
    assert_eq!(reply.response.status, 200);
    let m = only_message(&reply);
    assert_eq!(m.message_id, "2");
    assert_eq!(m.reply_to.as_deref(), Some("1"));
}

#[test]
fn send_validation() {
    let mut state = State::new();
    let too_long = "x".repeat(MAX_INBOUND_TEXT_BYTES + 1);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "not valid JSON"),
        (b"[1]".to_vec(), "JSON object"),
        (b"{}".to_vec(), "`text` is missing"),
        (br#"{"text": 5}"#.to_vec(), "must be a string"),
        (br#"{"text": ""}"#.to_vec(), "empty"),
        (br#"{"text": " \n "}"#.to_vec(), "empty"),
        (
            json!({ "text": too_long }).to_string().into_bytes(),
            "longer than 64 KiB",
        ),
        (
            br#"{"text": "hi", "reply_to": "99"}"#.to_vec(),
            "no known message",
        ),
        (
            br#"{"text": "hi", "reply_to": true}"#.to_vec(),
            "`reply_to` must be",
        ),
    ];
    for (body, want) in cases {
        let reply = state.handle_request(&request("POST", "/api/send", &body), 0);
        assert_eq!(reply.response.status, 400, "{want}");
        assert!(reply.batch.events.is_empty());
        let error = body_json(&reply)["error"].as_str().unwrap().to_string();
        assert!(error.contains(want), "{want}: {error}");
    }
    // Exactly at the limit is fine.
    let at_limit = "y".repeat(MAX_INBOUND_TEXT_BYTES);
    assert_eq!(post_text(&mut state, &at_limit).response.status, 200);
}

#[test]
fn messages_after_n_pages_and_sees_edits() {
    let mut state = State::new();
    post_text(&mut state, "one");
    let sent = state.send(bot("two"), 5).unwrap();
    assert_eq!(sent.message_ids, ["2"]);
    post_text(&mut state, "three");

    let all = list(&mut state, 0);
    assert_eq!(all.len(), 3);
    assert_eq!(all[1]["from"], "bot");
    assert_eq!(all[1]["text"], "two");
    assert_eq!(all[1]["ts"], 5);
    assert_eq!(all[0]["from"], "user");
    assert_eq!(all[0]["reply_to"], Value::Null);
    let seqs: Vec<u64> = all.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(list(&mut state, 2).len(), 1);
    assert_eq!(list(&mut state, 3).len(), 0);

    // An edit moves the message past the cursor.
    state
        .edit(&EditRequest {
            chat_id: "web".into(),
            message_id: "2".into(),
            text: "two, edited".into(),
            format: TextFormat::Plain,
        })
        .unwrap();
    let changed = list(&mut state, 3);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["id"], "2");
    assert_eq!(changed[0]["seq"], 4);
    assert_eq!(changed[0]["text"], "two, edited");
    assert_eq!(changed[0]["edited"], true);
    // In seq order, the edited message comes last.
    let ids: Vec<String> = list(&mut state, 0)
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["1", "3", "2"]);

    // A cursor from a previous instance lists everything again.
    assert_eq!(list(&mut state, 1000).len(), 3);
    // A bad cursor is a 400.
    let reply = state.handle_request(&request("GET", "/api/messages?after=-1", b""), 0);
    assert_eq!(reply.response.status, 400);
    // No cursor: everything.
    let reply = state.handle_request(&request("GET", "/api/messages", b""), 0);
    assert_eq!(body_json(&reply).as_array().unwrap().len(), 3);
}

#[test]
fn edit_rules() {
    let mut state = State::new();
    post_text(&mut state, "user message");
    state.send(bot("bot message"), 0).unwrap();
    let edit = |state: &mut State, chat: &str, id: &str| {
        state.edit(&EditRequest {
            chat_id: chat.into(),
            message_id: id.into(),
            text: "new".into(),
            format: TextFormat::Plain,
        })
    };
    assert!(matches!(
        edit(&mut state, "web", "99"),
        Err(AdapterError::InvalidInput(_))
    ));
    assert!(matches!(
        edit(&mut state, "web", "abc"),
        Err(AdapterError::InvalidInput(_))
    ));
    match edit(&mut state, "web", "1") {
        Err(AdapterError::InvalidInput(m)) => assert!(m.contains("only messages the bot"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        edit(&mut state, "other", "2"),
        Err(AdapterError::InvalidInput(_))
    ));
    edit(&mut state, "web", "2").unwrap();
    assert_eq!(state.message("2").unwrap().text, "new");
    assert_eq!(state.text_bytes, "user message".len() + "new".len());
}

#[test]
fn outbound_send_rules_and_files() {
    let mut state = State::new();
    let mut wrong = bot("hi");
    wrong.chat_id = "elsewhere".into();
    assert!(matches!(
        state.send(wrong, 0),
        Err(AdapterError::InvalidInput(_))
    ));
    assert!(matches!(
        state.send(bot("  "), 0),
        Err(AdapterError::InvalidInput(_))
    ));
    let long = "é".repeat(MAX_TEXT_LEN as usize + 1);
    assert!(matches!(
        state.send(bot(&long), 0),
        Err(AdapterError::InvalidInput(_))
    ));
    assert!(
        state
            .send(bot(&"é".repeat(MAX_TEXT_LEN as usize)), 0)
            .is_ok()
    );

    let mut with_file = bot("see attached");
    with_file.reply_to = Some("1".into());
    with_file.files.push(OutboundFile {
        name: "../../report.txt".into(),
        mime: "text/plain".into(),
        data: b"numbers".to_vec(),
    });
    let id = state.send(with_file, 7).unwrap().message_ids.remove(0);
    let listed = list(&mut state, 0);
    let m = listed.iter().find(|m| m["id"] == id.as_str()).unwrap();
    assert_eq!(m["from"], "bot");
    assert_eq!(m["reply_to"], "1");
    assert_eq!(m["files"][0]["name"], "report.txt");
    assert_eq!(m["files"][0]["size"], 7);
    let file_id = m["files"][0]["id"].as_str().unwrap().to_string();

    // The page downloads it, never rendered inline.
    let reply = state.handle_request(&request("GET", &format!("/api/files/{file_id}"), b""), 0);
    assert_eq!(reply.response.status, 200);
    assert_eq!(reply.response.body, b"numbers");
    assert!(reply.response.headers.contains(&(
        "content-type".to_string(),
        "application/octet-stream".to_string()
    )));
    let disposition = &reply
        .response
        .headers
        .iter()
        .find(|(k, _)| k == "content-disposition")
        .unwrap()
        .1;
    assert!(disposition.starts_with("attachment; filename=\"report.txt\""));
    assert_eq!(
        state
            .handle_request(&request("GET", "/api/files/f999", b""), 0)
            .response
            .status,
        404
    );
}

#[test]
fn upload_stores_bytes_and_delivers_an_attachment() {
    let mut state = State::new();
    let mut req = request(
        "POST",
        "/api/upload?name=cat%20photo.png&text=look+at+this",
        b"\x89PNG",
    );
    req.headers
        .push(("Content-Type".into(), "image/png".into()));
    let reply = state.handle_request(&req, 42);
    assert_eq!(reply.response.status, 200, "{:?}", body_json(&reply));
    let m = only_message(&reply);
    assert_eq!(m.text, "look at this");
    assert_eq!(m.ts_ms, 42);
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(a.kind, AttachmentKind::Photo);
    assert_eq!(a.name.as_deref(), Some("cat photo.png"));
    assert_eq!(a.mime.as_deref(), Some("image/png"));
    assert_eq!(a.size, Some(4));
    assert_eq!(body_json(&reply)["attachment"], a.id.as_str());

    let data = state
        .download(&AttachmentRequest {
            chat_id: "web".into(),
            message_id: Some(m.message_id.clone()),
            attachment_id: a.id.clone(),
        })
        .unwrap();
    assert_eq!(data.data, b"\x89PNG");
    assert_eq!(data.name, "cat photo.png");
    assert_eq!(data.mime.as_deref(), Some("image/png"));

    // No content-type: guessed from the name; not an image: a document.
    let reply = state.handle_request(&request("POST", "/api/upload?name=notes.pdf", b"%PDF"), 0);
    let a = &only_message(&reply).attachments[0];
    assert_eq!(a.kind, AttachmentKind::Document);
    assert_eq!(a.mime.as_deref(), Some("application/pdf"));
    assert_eq!(only_message(&reply).text, "");

    // Empty and oversized files are refused.
    let reply = state.handle_request(&request("POST", "/api/upload?name=x", b""), 0);
    assert_eq!(reply.response.status, 400);
    assert!(reply.batch.events.is_empty());
    let big = vec![0u8; MAX_FILE_BYTES + 1];
    let reply = state.handle_request(&request("POST", "/api/upload?name=x", &big), 0);
    assert_eq!(reply.response.status, 413);
    assert!(reply.batch.events.is_empty());
    // Unknown attachment.
    assert!(matches!(
        state.download(&AttachmentRequest {
            chat_id: "web".into(),
            message_id: None,
            attachment_id: "f999".into(),
        }),
        Err(AdapterError::InvalidInput(_))
    ));
}

#[test]
fn uploads_evict_the_oldest_files() {
    let mut state = State::new();
    let chunk = MAX_FILE_BYTES; // two fit in the store, a third evicts the first
    let mut ids = Vec::new();
    for i in 0..3 {
        let reply = state.handle_request(
            &request(
                "POST",
                &format!("/api/upload?name=f{i}.bin"),
                &vec![i as u8; chunk],
            ),
            0,
        );
        assert_eq!(reply.response.status, 200);
        ids.push(only_message(&reply).attachments[0].id.clone());
    }
    assert!(state.file_bytes <= MAX_STORED_FILE_BYTES);
    assert_eq!(state.files.len(), 2);
    let get = |state: &State, id: &str| {
        state.download(&AttachmentRequest {
            chat_id: "web".into(),
            message_id: None,
            attachment_id: id.into(),
        })
    };
    assert!(get(&state, &ids[0]).is_err());
    assert_eq!(get(&state, &ids[1]).unwrap().data[0], 1);
    assert_eq!(get(&state, &ids[2]).unwrap().data[0], 2);
    // The message that carried the evicted file is still listed.
    assert_eq!(list(&mut state, 0).len(), 3);
}

#[test]
fn old_messages_are_forgotten() {
    let mut state = State::new();
    for i in 0..MAX_MESSAGES + 10 {
        post_text(&mut state, &format!("m{i}"));
    }
    assert_eq!(state.messages.len(), MAX_MESSAGES);
    assert_eq!(state.messages.front().unwrap().id, 11);
    let total: usize = state.messages.iter().map(|m| m.text.len()).sum();
    assert_eq!(state.text_bytes, total);
}

#[test]
fn an_edit_makes_room_as_a_new_message_does() {
    let mut state = State::new();
    state.send(bot("ok"), 0).unwrap();
    let long = "x".repeat(MAX_TEXT_LEN as usize);
    let fill = (MAX_STORED_TEXT_BYTES - 2) / long.len();
    for _ in 0..fill {
        state.send(bot(&long), 0).unwrap();
    }
    assert_eq!(state.messages.len(), 1 + fill, "all kept before the edit");
    // 10,000 two-byte characters: 20,000 bytes where there were 2.
    let text = "\u{e9}".repeat(MAX_TEXT_LEN as usize);
    state
        .edit(&EditRequest {
            chat_id: CHAT_ID.into(),
            message_id: "1".into(),
            text: text.clone(),
            format: TextFormat::Plain,
        })
        .unwrap();
    assert!(
        state.text_bytes <= MAX_STORED_TEXT_BYTES,
        "{}",
        state.text_bytes
    );
    let total: usize = state.messages.iter().map(Message::stored_bytes).sum();
    assert_eq!(state.text_bytes, total);
    // The edited message stays, though it is the oldest; the oldest others go.
    assert_eq!(state.message("1").unwrap().text, text);
    assert!(state.message("2").is_none() && state.message("3").is_none());
    assert_eq!(state.messages.len(), fill - 1);
    assert_eq!(state.messages[1].id, 4);
}

#[test]
fn history_is_oldest_first_and_limited() {
    let mut state = State::new();
    post_text(&mut state, "a");
    state.send(bot("b"), 0).unwrap();
    post_text(&mut state, "c");
    let history = |limit, before: Option<&str>| {
        state
            .history(&HistoryRequest {
                chat_id: "web".into(),
                limit,
                before: before.map(String::from),
            })
            .unwrap()
    };
    let h = history(2, None);
    let texts: Vec<&str> = h.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["b", "c"]);
    assert!(h[0].sender.is_bot);
    assert_eq!(h[1].sender.id, "web");
    let h = history(10, Some("3"));
    let ids: Vec<&str> = h.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["1", "2"]);
    assert!(history(0, None).is_empty());
    assert!(
        state
            .history(&HistoryRequest {
                chat_id: "x".into(),
                limit: 1,
                before: None
            })
            .is_err()
    );
}

#[test]
fn describe_advertises_what_is_implemented() {
    let d = Fakechat::describe();
    assert_eq!(d.platform, "fakechat");
    assert_eq!(d.limits.max_text_len, 10_000);
    assert_eq!(d.limits.chunk_mode, ChunkMode::Newline);
    assert_eq!(
        d.features,
        Features::EDIT
            | Features::DOWNLOAD
            | Features::FILES
            | Features::TYPING
            | Features::HISTORY
            | Features::BUTTONS
    );
    assert!(!d.features.contains(Features::REACT));
    assert_eq!(d.instructions.len(), 1);
    let mut fakechat = Fakechat::start(Settings { port: None }).expect("starts without settings");
    assert!(fakechat.typing("web".into()).is_ok());
    assert!(fakechat.typing("other".into()).is_err());
}

#[test]
fn helpers() {
    assert_eq!(percent_decode("a%20b+c%zz%4"), "a b c%zz%4");
    assert_eq!(percent_decode("%C3%A9"), "é");
    assert_eq!(
        query_param("x=1&name=a%26b&name=second", "name").as_deref(),
        Some("a&b")
    );
    assert_eq!(query_param("flag&x=1", "flag").as_deref(), Some(""));
    assert_eq!(query_param("", "x"), None);
    assert_eq!(safe_name("C:\\Users\\me\\photo.jpg"), "photo.jpg");
    assert_eq!(safe_name("..."), "file");
    assert_eq!(safe_name(".bashrc"), "bashrc");
    assert_eq!(safe_name("a\u{0}b\nc"), "abc");
    assert_eq!(safe_name(&"n".repeat(500)).len(), MAX_NAME_CHARS);
    assert_eq!(mime_of(Some("Image/JPEG; q=1"), "x"), "image/jpeg");
    assert_eq!(mime_of(Some("bogus"), "x.png"), "image/png");
    assert_eq!(
        mime_of(Some("application/octet-stream"), "x.gif"),
        "image/gif"
    );
    assert_eq!(mime_of(None, "x"), "application/octet-stream");
    assert_eq!(
        content_disposition("résumé \"1\".pdf"),
        "attachment; filename=\"r_sum_ _1_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.pdf"
    );
}

fn button(label: &str, data: &str) -> Button {
    Button {
        label: label.into(),
        data: data.into(),
    }
}

/// A bot message with the relay's prompt buttons; returns its id.
fn prompt(state: &mut State) -> String {
    let mut message = bot("Claude wants to run Bash");
    message.buttons = vec![
        vec![
            button("Allow", "airlock:allow:abcde"),
            button("Deny", "airlock:deny:abcde"),
        ],
        vec![],
        vec![button("Details", "airlock:details:abcde")],
    ];
    state.send(message, 0).unwrap().message_ids.remove(0)
}

fn press(state: &mut State, body: &Value) -> IncomingReply {
    state.handle_request(
        &request("POST", "/api/press", body.to_string().as_bytes()),
        0,
    )
}

fn error_of(reply: &IncomingReply) -> String {
    body_json(reply)["error"].as_str().unwrap().to_string()
}

#[test]
fn buttons_are_listed_as_labels_only() {
    let mut state = State::new();
    post_text(&mut state, "hi");
    let id = prompt(&mut state);
    let listed = list(&mut state, 0);
    assert_eq!(listed[0]["buttons"], json!([]), "a user message has none");
    let m = listed.iter().find(|m| m["id"] == id.as_str()).unwrap();
    // The empty row is dropped; the data never reaches the page.
    assert_eq!(m["buttons"], json!([["Allow", "Deny"], ["Details"]]));
    assert!(!m.to_string().contains("airlock:"), "{m}");
    // A message sent without buttons lists an empty array.
    state.send(bot("plain"), 0).unwrap();
    assert_eq!(list(&mut state, 0)[2]["buttons"], json!([]));
    // Labels and data count against the store's cap.
    let bytes = "hi".len()
        + "Claude wants to run Bash".len()
        + "plain".len()
        + ["Allow", "Deny", "Details"]
            .map(str::len)
            .iter()
            .sum::<usize>()
        + [
            "airlock:allow:abcde",
            "airlock:deny:abcde",
            "airlock:details:abcde",
        ]
        .map(str::len)
        .iter()
        .sum::<usize>();
    assert_eq!(state.text_bytes, bytes);
}

#[test]
fn a_press_delivers_the_button_data() {
    let mut state = State::new();
    post_text(&mut state, "hi");
    let id = prompt(&mut state);
    let seq = state.seq;
    for (row, col, data) in [
        (0, 0, "airlock:allow:abcde"),
        (0, 1, "airlock:deny:abcde"),
        (1, 0, "airlock:details:abcde"),
    ] {
        let reply = press(&mut state, &json!({"id": id, "row": row, "col": col}));
        assert_eq!(reply.response.status, 200, "{}", error_of(&reply));
        assert_eq!(body_json(&reply), json!({ "ok": true }));
        assert_eq!(reply.batch.events.len(), 1);
        let InboundEvent::Button(p) = &reply.batch.events[0] else {
            panic!("not a button press: {:?}", reply.batch.events[0]);
        };
        assert_eq!(p.data, data);
        assert_eq!(p.message_id.as_deref(), Some(id.as_str()));
        // The same chat and sender as the user's messages.
        let user = inbound(state.message("1").unwrap(), Vec::new());
        assert_eq!(format!("{:?}", p.chat), format!("{:?}", user.chat));
        assert_eq!(format!("{:?}", p.sender), format!("{:?}", user.sender));
        assert_eq!(p.chat.kind, ChatKind::Direct);
        assert_eq!(p.sender.id, USER_ID);
    }
    assert_eq!(state.seq, seq, "a press stores nothing");
    // A numeric id is taken too.
    let reply = press(
        &mut state,
        &json!({"id": id.parse::<u64>().unwrap(), "row": 0, "col": 0}),
    );
    assert_eq!(reply.response.status, 200);
}

#[test]
fn a_press_after_an_edit_is_a_conflict() {
    let mut state = State::new();
    let id = prompt(&mut state);
    let seq = state.seq;
    state
        .edit(&EditRequest {
            chat_id: CHAT_ID.into(),
            message_id: id.clone(),
            text: "Allowed by you".into(),
            format: TextFormat::Plain,
        })
        .unwrap();
    // The edit is listed, without buttons.
    let changed = list(&mut state, seq);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["buttons"], json!([]));
    assert_eq!(changed[0]["text"], "Allowed by you");
    assert_eq!(state.text_bytes, "Allowed by you".len());

    let reply = press(&mut state, &json!({"id": id, "row": 0, "col": 0}));
    assert_eq!(reply.response.status, 409);
    assert!(reply.batch.events.is_empty());
    assert_eq!(
        error_of(&reply),
        "that message has no such button (it may have been answered)"
    );
}

#[test]
fn press_refusals() {
    let mut state = State::new();
    post_text(&mut state, "a user message");
    let id = prompt(&mut state);
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"not json".to_vec(), 400, "not valid JSON"),
        (b"[0, 0]".to_vec(), 400, "JSON object"),
        (br#"{"row": 0, "col": 0}"#.to_vec(), 400, "`id` is missing"),
        (
            br#"{"id": true, "row": 0, "col": 0}"#.to_vec(),
            400,
            "`id` must be",
        ),
        (
            json!({"id": id, "col": 0}).to_string().into_bytes(),
            400,
            "`row` is missing",
        ),
        (
            json!({"id": id, "row": 0}).to_string().into_bytes(),
            400,
            "`col` is missing",
        ),
        (
            json!({"id": id, "row": -1, "col": 0})
                .to_string()
                .into_bytes(),
            400,
            "`row` must be a non-negative integer",
        ),
        (
            json!({"id": id, "row": 0, "col": "0"})
                .to_string()
                .into_bytes(),
            400,
            "`col` must be a non-negative integer",
        ),
        (
            json!({"id": id, "row": 0.5, "col": 0})
                .to_string()
                .into_bytes(),
            400,
            "`row` must be",
        ),
        (
            br#"{"id": "99", "row": 0, "col": 0}"#.to_vec(),
            404,
            "no such message",
        ),
        (
            br#"{"id": "abc", "row": 0, "col": 0}"#.to_vec(),
            404,
            "no such message",
        ),
        // A user message has no buttons; nor has a bot message at that place.
        (
            br#"{"id": "1", "row": 0, "col": 0}"#.to_vec(),
            409,
            "no such button",
        ),
        (
            json!({"id": id, "row": 0, "col": 2})
                .to_string()
                .into_bytes(),
            409,
            "no such button",
        ),
        (
            json!({"id": id, "row": 2, "col": 0})
                .to_string()
                .into_bytes(),
            409,
            "no such button",
        ),
        (
            json!({"id": id, "row": u64::MAX, "col": 0})
                .to_string()
                .into_bytes(),
            409,
            "no such button",
        ),
    ];
    for (body, status, want) in cases {
        let reply = state.handle_request(&request("POST", "/api/press", &body), 0);
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(reply.response.status, status, "{text}");
        assert!(reply.batch.events.is_empty(), "{text}");
        let error = error_of(&reply);
        assert!(error.contains(want), "{text}: {error}");
    }
}

#[test]
fn buttons_are_checked_like_a_platform_would() {
    let mut state = State::new();
    let with = |rows: Vec<Vec<Button>>| {
        let mut m = bot("pick one");
        m.buttons = rows;
        m
    };
    let b = |label: &str, data: &str| button(label, data);
    let at_limit = vec![
        vec![
            b(
                &"é".repeat(MAX_BUTTON_LABEL_CHARS),
                &"d".repeat(MAX_BUTTON_DATA_BYTES)
            );
            MAX_BUTTONS
        ];
        MAX_BUTTONS
    ];
    let refused: Vec<(Vec<Vec<Button>>, &str)> = vec![
        (
            vec![vec![b("a", "a")]; MAX_BUTTONS + 1],
            "at most 5 rows of at most 5 buttons",
        ),
        (
            vec![vec![b("a", "a"); MAX_BUTTONS + 1]],
            "at most 5 rows of at most 5 buttons",
        ),
        (vec![vec![b("", "a")]], "1 to 80 characters"),
        (vec![vec![b("  ", "a")]], "not be blank"),
        (
            vec![vec![b(&"l".repeat(MAX_BUTTON_LABEL_CHARS + 1), "a")]],
            "1 to 80 characters",
        ),
        (vec![vec![b("a", "")]], "1 to 100 bytes"),
        // 51 two-byte characters: 102 bytes.
        (vec![vec![b("a", &"é".repeat(51))]], "1 to 100 bytes"),
    ];
    for (rows, want) in refused {
        match state.send(with(rows), 0) {
            Err(AdapterError::InvalidInput(m)) => assert!(m.contains(want), "{want}: {m}"),
            other => panic!("{want}: {other:?}"),
        }
    }
    assert_eq!(state.seq, 0, "nothing was stored");
    assert!(state.files.is_empty());

    let id = state.send(with(at_limit), 0).unwrap().message_ids.remove(0);
    let m = state.message(&id).unwrap();
    assert_eq!(m.buttons.len(), MAX_BUTTONS);
    assert!(m.buttons.iter().all(|row| row.len() == MAX_BUTTONS));
    // Only empty rows: no buttons at all.
    let id = state
        .send(with(vec![vec![], vec![]]), 0)
        .unwrap()
        .message_ids
        .remove(0);
    assert!(state.message(&id).unwrap().buttons.is_empty());
}
