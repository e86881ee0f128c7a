//! The attachment inbox keeps a bounded amount per adapter: the oldest files
//! go first, and a file over the whole quota is refused with a reason.

use std::time::Duration;

use serde_json::json;

use crate::session::*;
use crate::support::*;

#[tokio::test]
async fn the_inbox_stays_under_its_quota_and_keeps_the_newest_files() {
    let (home, port) = fakechat_home();
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n\n[inbox]\nquota_mib = 1\n"
    ));
    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;
    let upload = |name: String, body: Vec<u8>| {
        let token = token.clone();
        async move {
            let reply = http(
                port,
                "POST",
                &format!("/api/upload?name={name}&text={name}&token={token}"),
                &[("Content-Type", "application/octet-stream")],
                &body,
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    };

    // Six files of 300 KiB: three fit in 1 MiB.
    let mut paths = Vec::new();
    for i in 0..6u8 {
        upload(format!("f{i}.bin"), vec![b'0' + i; 300 << 10]).await;
        let event = session.event().await;
        let path = event["meta"]["attachment_path"]
            .as_str()
            .unwrap_or_else(|| panic!("no path: {event}"))
            .to_string();
        paths.push(path);
        // Distinct modification times, in upload order.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inbox = home.path().join("inbox");
    let total: u64 = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= 1 << 20, "the inbox holds {total} bytes");
    for (i, path) in paths.iter().enumerate() {
        let kept = std::fs::read(path).ok();
        if i < 3 {
            assert_eq!(kept, None, "{path} should have been removed");
        } else {
            assert_eq!(kept, Some(vec![b'0' + i as u8; 300 << 10]), "{path}");
        }
    }

    // One file larger than the whole quota is not fetched at once, and
    // download_attachment says why and how to allow it.
    upload("big.bin".into(), vec![b'x'; (1 << 20) + 1]).await;
    let event = session.event().await;
    assert!(event["meta"].get("attachment_path").is_none(), "{event}");
    let id = event["meta"]["attachment_ids"]
        .as_str()
        .unwrap()
        .to_string();
    let r = session
        .call(
            "download_attachment",
            json!({"chat_id": "fakechat:web", "attachment_id": id}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error, "{text}");
    assert!(
        text.contains("quota_mib") && text.contains("[inbox]"),
        "{text}"
    );
    // Refusing it removed nothing.
    for path in &paths[3..] {
        assert!(std::path::Path::new(path).exists(), "{path}");
    }
    session.close().await;
}
