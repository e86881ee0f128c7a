//! `reply` with files the host must not read for the session: the kernel's
//! live state, devices, FIFOs, airlock's own files reached by another path.
//! Each is a tool error that names the file and why, never its contents; the
//! server keeps serving and a good file still goes out.

use serde_json::json;

use crate::session::*;
use crate::support::*;

/// The bot's messages on the page: text and file names of each.
async fn bot_messages(port: u16, token: &str) -> Vec<(String, Vec<String>)> {
    page_messages(port, token)
        .await
        .iter()
        .filter(|m| m["from"] == "bot")
        .map(|m| {
            let names = m["files"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .map(|f| f["name"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            (m["text"].as_str().unwrap_or_default().to_string(), names)
        })
        .collect()
}

#[tokio::test]
async fn reply_refuses_what_is_not_a_file_on_disk_and_airlocks_own_files() {
    let (home, port) = fakechat_home();
    let secret_value = "123456:AAE-not-to-be-sent-anywhere";
    home.secret("TELEGRAM_BOT_TOKEN", secret_value);
    let secret = home.path().join("secrets/TELEGRAM_BOT_TOKEN");
    let scratch = home.dir.path();
    // A hard link outside the state directory to its secret, and links to
    // that link and to the secret itself.
    let hard = scratch.join("notes.txt");
    std::fs::hard_link(&secret, &hard).unwrap();
    let to_hard = scratch.join("to-notes.txt");
    std::os::unix::fs::symlink(&hard, &to_hard).unwrap();
    let to_secret = scratch.join("to-secret.txt");
    std::os::unix::fs::symlink(&secret, &to_secret).unwrap();
    let fifo = scratch.join("pipe");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();

    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;
    page_send(port, &token, "send me something").await;
    session.event().await;

    let cases = [
        ("/proc/self/environ".to_string(), "procfs"),
        ("/proc/self/pagemap".to_string(), "procfs"),
        ("/dev/zero".to_string(), "/dev"),
        (fifo.display().to_string(), "FIFO"),
        (hard.display().to_string(), "hard link"),
        (to_hard.display().to_string(), "hard link"),
        (to_secret.display().to_string(), "state directory"),
        (scratch.display().to_string(), "directory"),
    ];
    for (path, why) in &cases {
        let result = session
            .call(
                "reply",
                json!({"chat_id": "fakechat:web", "text": "here", "files": [path]}),
            )
            .await;
        let (is_error, text) = outcome(&result);
        assert!(is_error, "{path}: {text}");
        assert!(text.contains(path.as_str()), "names the file: {text}");
        assert!(text.contains(why), "{path}: {text}");
        // Nothing of the file: neither the secret nor the environment.
        assert!(!text.contains(secret_value), "{text}");
        assert!(!text.contains("AIRLOCK_HOME"), "{text}");
    }
    assert!(
        bot_messages(port, &token).await.is_empty(),
        "nothing was sent"
    );

    // The server is still there, and a regular file goes out.
    let good = scratch.join("report.txt");
    std::fs::write(&good, "all is well").unwrap();
    let result = session
        .call(
            "reply",
            json!({"chat_id": "fakechat:web", "text": "the report", "files": [good]}),
        )
        .await;
    let (is_error, text) = outcome(&result);
    assert!(!is_error, "{text}");
    assert_eq!(
        bot_messages(port, &token).await,
        [("the report".to_string(), vec!["report.txt".to_string()])]
    );
    let log = session.log.text();
    assert!(!log.contains(secret_value), "{log}");
    session.close().await;
}

#[tokio::test]
async fn files_allow_limits_where_attachments_come_from() {
    let home = TempHome::new();
    let [port] = free_ports();
    let allowed = home.dir.path().join("outbox");
    std::fs::create_dir_all(&allowed).unwrap();
    let inside = allowed.join("ok.txt");
    std::fs::write(&inside, "ok").unwrap();
    let outside = home.dir.path().join("elsewhere.txt");
    std::fs::write(&outside, "not from here").unwrap();
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n\n[files]\nallow = [{:?}]\n",
        allowed.display().to_string()
    ));

    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;
    page_send(port, &token, "hi").await;
    session.event().await;

    let result = session
        .call(
            "reply",
            json!({"chat_id": "fakechat:web", "text": "x", "files": [outside]}),
        )
        .await;
    let (is_error, text) = outcome(&result);
    assert!(is_error, "{text}");
    assert!(
        text.contains("[files] allow") && text.contains(&allowed.display().to_string()),
        "{text}"
    );
    assert!(!text.contains("not from here"), "{text}");

    let result = session
        .call(
            "reply",
            json!({"chat_id": "fakechat:web", "text": "y", "files": [inside]}),
        )
        .await;
    let (is_error, text) = outcome(&result);
    assert!(!is_error, "{text}");
    assert_eq!(
        bot_messages(port, &token).await,
        [("y".to_string(), vec!["ok.txt".to_string()])]
    );
    session.close().await;
}
