use airlock::catalog::bundled_candidates;
use airlock::home::AirlockHome;
use airlock::host::Host;
use airlock::runtime::bindings::types::HttpResponse;
use std::time::Instant;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let fake = fake_telegram::FakeTelegram::start("1:AAAA").await;
    let base = fake.base_url();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("secrets")).unwrap();
    let f = home.join("secrets/TELEGRAM_BOT_TOKEN");
    std::fs::write(&f, "1:AAAA").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(home.join("airlock.toml"), format!("[components.telegram]\nsettings = {{ api_base = \"{base}\" }}\n[components.telegram.grant]\nlocal = [\"{base}\"]\n[components.telegram.grant.rebind]\n\"https://api.telegram.org\" = \"{base}\"\n")).unwrap();
    let host = Host::open(AirlockHome::open(&home).unwrap()).unwrap();
    let c = bundled_candidates()
        .into_iter()
        .find(|c| c.name == "telegram")
        .unwrap();
    let loaded = host.load(&c).unwrap();
    let handle = host.spawn_adapter(&loaded, None).unwrap();
    let _ = handle.start(host.settings("telegram")).await;
    let body = br#"{"ok":true,"result":[{"update_id":5,"message":{"message_id":7,"date":1717243290,"from":{"id":111,"is_bot":false,"first_name":"Alice","username":"alice"},"chat":{"id":111,"type":"private","first_name":"Alice","username":"alice"},"text":"ping"}}]}"#.to_vec();
    let resp = HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    };
    for round in 0..3 {
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            let b = handle.on_poll_response(resp.clone()).await.unwrap();
            assert_eq!(b.events.len(), 1);
        }
        println!(
            "round {round}: on_poll_response {:.1} us/call",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        let t = Instant::now();
        for _ in 0..n {
            let r = handle.poll_request(Some("6".into())).await.unwrap();
            assert!(r.is_some());
        }
        println!(
            "round {round}: poll_request {:.1} us/call",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
