//! A real guest making real requests through the egress policy, against
//! loopback servers the operator granted.

use airlock::runtime::call_error::CallError;

use crate::support::*;

const SECRET: &str = "123456:SUPERSECRET-token_value";

fn platform_error(e: &CallError) -> String {
    match e {
        CallError::Adapter { error, .. } => error.to_string(),
        other => panic!("expected an adapter error, got {other}"),
    }
}

#[tokio::test]
async fn an_undeclared_host_is_denied_and_never_contacted() {
    let server = Recorder::start().await;
    let home = TempHome::new();
    home.drop_in(
        "egress",
        &fixture_wasm("egress"),
        &manifest("egress", "outbound_http = [\"https://api.example.com\"]"),
    );
    let (_h, guest) = start_adapter(&home, "egress").await;
    let err = guest
        .send(command(&format!("get {}/x", server.url())))
        .await
        .unwrap_err();
    assert!(platform_error(&err).contains("denied"), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_denied_unless_granted() {
    let server = Recorder::start().await;
    let dest = format!("http://localhost:{}", server.addr.port());
    let home = TempHome::new();
    home.drop_in(
        "egress",
        &fixture_wasm("egress"),
        &manifest("egress", &format!("outbound_http = [\"{dest}\"]")),
    );
    let (_h, guest) = start_adapter(&home, "egress").await;
    let err = guest
        .send(command(&format!("get {dest}/x")))
        .await
        .unwrap_err();
    assert!(platform_error(&err).contains("denied"), "{err}");
    assert!(server.requests().is_empty(), "the server was contacted");

    // The operator grants that exact destination for local use.
    let home = TempHome::new();
    home.drop_in(
        "egress",
        &fixture_wasm("egress"),
        &manifest("egress", &format!("outbound_http = [\"{dest}\"]")),
    );
    home.config(&format!(
        "[components.egress.grant]\nlocal = [\"{dest}\"]\n"
    ));
    let (_h, guest) = start_adapter(&home, "egress").await;
    let sent = guest
        .send(command(&format!("get {dest}/granted")))
        .await
        .unwrap();
    assert_eq!(sent.message_ids[0], "200");
    assert_eq!(server.requests()[0].path_and_query, "/granted");
}

#[tokio::test]
async fn the_metadata_address_is_denied() {
    let home = TempHome::new();
    home.drop_in(
        "egress",
        &fixture_wasm("egress"),
        &manifest("egress", "outbound_http = [\"http://169.254.169.254\"]"),
    );
    let (_h, guest) = start_adapter(&home, "egress").await;
    let err = guest
        .send(command("get http://169.254.169.254/latest/meta-data/"))
        .await
        .unwrap_err();
    assert!(platform_error(&err).contains("denied"), "{err}");
}

/// The guest tries every trick to obtain or leak the token; the token only
/// ever appears where it is bound (one header, one destination), and never in
/// anything the guest gets back.
#[tokio::test]
async fn a_header_secret_cannot_be_exfiltrated() {
    let bound = Recorder::start().await;
    let other = Recorder::start().await;
    let home = TempHome::new();
    home.secret("TELEGRAM_BOT_TOKEN", SECRET);
    let secret = format!(
        "[[secrets]]\nname = \"TELEGRAM_BOT_TOKEN\"\ndestination = \"{}\"\nheader = \"Authorization\"\nvalue = \"Bot {{secret}}\"",
        bound.url()
    );
    let (_h, guest) = start_egress(
        &home,
        &[bound.url(), other.url()],
        &secret,
        "secrets = [\"TELEGRAM_BOT_TOKEN\"]",
    )
    .await;

    let mut seen_by_guest = Vec::new();
    for url in [bound.url(), other.url()] {
        match guest.send(command(&format!("exfil {url}/leak?q=1"))).await {
            Ok(sent) => seen_by_guest.extend(sent.message_ids),
            Err(e) => seen_by_guest.push(e.to_string()),
        }
    }
    let guest_text = seen_by_guest.join("\n");
    assert!(!guest_text.contains(SECRET), "the guest saw the secret");
    assert!(
        !guest_text.contains("SUPERSECRET"),
        "the guest saw part of the secret"
    );

    let at_bound = bound.requests();
    assert!(
        !at_bound.is_empty(),
        "exfil made no request to the bound destination"
    );
    for r in &at_bound {
        // Byte for byte, exactly once, in the bound header.
        assert_eq!(
            r.headers.get("authorization"),
            Some(&vec![format!("Bot {SECRET}")]),
            "{r:?}"
        );
        let mut rest = r.clone();
        rest.headers.remove("authorization");
        assert!(
            !rest.all_text().contains("SUPERSECRET"),
            "secret outside its header: {r:?}"
        );
    }
    for r in other.requests() {
        assert!(
            !r.all_text().contains("SUPERSECRET"),
            "secret sent to another destination: {r:?}"
        );
        assert!(
            r.headers
                .get("authorization")
                .is_none_or(|v| !v.iter().any(|v| v.contains("SUPERSECRET")))
        );
    }
}

#[tokio::test]
async fn a_path_prefix_secret_lands_only_at_the_start_of_the_path() {
    let bound = Recorder::start().await;
    let home = TempHome::new();
    home.secret("TELEGRAM_BOT_TOKEN", SECRET);
    let secret = format!(
        "[[secrets]]\nname = \"TELEGRAM_BOT_TOKEN\"\ndestination = \"{}\"\npath_prefix = \"/bot{{secret}}\"",
        bound.url()
    );
    let (_h, guest) = start_egress(
        &home,
        &[bound.url()],
        &secret,
        "secrets = [\"TELEGRAM_BOT_TOKEN\"]",
    )
    .await;
    let sent = guest
        .send(command(&format!("get {}/getMe", bound.url())))
        .await
        .unwrap();
    assert_eq!(sent.message_ids[0], "200");
    assert!(
        !sent.message_ids.join(" ").contains("SUPERSECRET"),
        "{:?}",
        sent.message_ids
    );
    let r = &bound.requests()[0];
    assert_eq!(r.path_and_query, format!("/bot{SECRET}/getMe"));

    let exfil = guest
        .send(command(&format!("exfil {}/x", bound.url())))
        .await;
    let text = match exfil {
        Ok(s) => s.message_ids.join("\n"),
        Err(e) => e.to_string(),
    };
    assert!(!text.contains("SUPERSECRET"));
    for r in bound.requests() {
        let path = r.path_and_query.split('?').next().unwrap().to_string();
        assert!(path.starts_with(&format!("/bot{SECRET}/")), "{r:?}");
        let after = r.all_text().replacen(&format!("/bot{SECRET}/"), "/", 1);
        assert!(
            !after.contains("SUPERSECRET"),
            "secret outside the path prefix: {r:?}"
        );
    }
}

/// Two tokens for one destination's `Authorization` header, told apart by
/// path (Slack's app token for `apps.connections.open`, its bot token for
/// the rest): each request carries exactly the one scoped closest to its
/// path, whatever the guest tried to set, and neither token reaches the
/// guest.
#[tokio::test]
async fn two_tokens_on_one_header_each_go_only_to_their_own_paths() {
    const APP: &str = "xapp-1-A0SUPERSECRETAPP-1234";
    const BOT: &str = "xoxb-1-SUPERSECRETBOT-5678";
    let api = Recorder::start().await;
    let home = TempHome::new();
    home.secret("SLACK_APP_TOKEN", APP);
    home.secret("SLACK_BOT_TOKEN", BOT);
    let secrets = format!(
        "[[secrets]]\nname = \"SLACK_APP_TOKEN\"\ndestination = \"{url}\"\nheader = \"Authorization\"\n\
         value = \"Bearer {{secret}}\"\nunder = \"/api/apps.connections.open\"\n\
         [[secrets]]\nname = \"SLACK_BOT_TOKEN\"\ndestination = \"{url}\"\nheader = \"Authorization\"\n\
         value = \"Bearer {{secret}}\"\n",
        url = api.url()
    );
    let (_h, guest) = start_egress(
        &home,
        &[api.url()],
        &secrets,
        "secrets = [\"SLACK_APP_TOKEN\", \"SLACK_BOT_TOKEN\"]",
    )
    .await;

    let mut seen_by_guest = Vec::new();
    for path in [
        "/api/apps.connections.open",
        "/api/chat.postMessage",
        "/api/apps.connections.open?x=1",
        "/api/apps.connections.openly",
    ] {
        let sent = guest
            .send(command(&format!("get {}{path}", api.url())))
            .await
            .unwrap();
        seen_by_guest.extend(sent.message_ids);
    }
    // The guest's own Authorization header is replaced, not sent beside.
    match guest
        .send(command(&format!(
            "exfil {}/api/apps.connections.open",
            api.url()
        )))
        .await
    {
        Ok(sent) => seen_by_guest.extend(sent.message_ids),
        Err(e) => seen_by_guest.push(e.to_string()),
    }
    let guest_text = seen_by_guest.join("\n");
    assert!(!guest_text.contains("SUPERSECRET"), "{guest_text}");

    let requests = api.requests();
    let carried: Vec<(String, Vec<String>)> = requests
        .iter()
        .map(|r| {
            (
                r.path_and_query.clone(),
                r.headers.get("authorization").cloned().unwrap_or_default(),
            )
        })
        .collect();
    let app = vec![format!("Bearer {APP}")];
    let bot = vec![format!("Bearer {BOT}")];
    assert_eq!(
        carried[..4],
        [
            ("/api/apps.connections.open".to_string(), app.clone()),
            ("/api/chat.postMessage".to_string(), bot.clone()),
            ("/api/apps.connections.open?x=1".to_string(), app.clone()),
            ("/api/apps.connections.openly".to_string(), bot.clone()),
        ]
    );
    for (r, (path, auth)) in requests.iter().zip(&carried).skip(4) {
        if path.starts_with("/api/apps.connections.open") {
            assert_eq!(auth, &app, "{r:?}");
            let mut rest = r.clone();
            rest.headers.remove("authorization");
            assert!(!rest.all_text().contains("SUPERSECRET"), "{r:?}");
        }
    }
}

#[tokio::test]
async fn a_missing_secret_stops_the_component_with_the_fix() {
    let home = TempHome::new();
    home.drop_in(
        "egress",
        &fixture_wasm("egress"),
        &manifest(
            "egress",
            "outbound_http = [\"https://api.example.com\"]\n[[secrets]]\nname = \"AIRLOCK_TEST_ABSENT_TOKEN\"\ndestination = \"https://api.example.com\"\npath_prefix = \"/bot{secret}\"",
        ),
    );
    home.config("[components.egress.grant]\nsecrets = [\"AIRLOCK_TEST_ABSENT_TOKEN\"]\n");
    let host = home.host();
    let (candidates, _) = host.candidates().unwrap();
    let c = candidates.iter().find(|c| c.name == "egress").unwrap();
    airlock::approvals::approve(&host.db, "egress", &c.wasm_sha256(), &c.manifest_sha256())
        .unwrap();
    let loaded = host.load(c).unwrap();
    let err = host.spawn_adapter(&loaded, None).unwrap_err().to_string();
    assert!(err.contains("AIRLOCK_TEST_ABSENT_TOKEN"), "{err}");

    // A secret file others can read is refused, with the chmod that fixes it.
    home.secret("AIRLOCK_TEST_ABSENT_TOKEN", "x");
    let file = home.path().join("secrets/AIRLOCK_TEST_ABSENT_TOKEN");
    std::fs::set_permissions(
        &file,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
    )
    .unwrap();
    let err = host.spawn_adapter(&loaded, None).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
}

/// A drop-in's manifest can name any environment variable and bind it to
/// its author's server; without the operator naming it, nothing is sent.
#[tokio::test]
async fn a_third_party_secret_is_not_injected_unless_the_operator_names_it() {
    let server = Recorder::start().await;
    let home = TempHome::new();
    home.secret("TELEGRAM_BOT_TOKEN", SECRET);
    let secret = format!(
        "[[secrets]]\nname = \"TELEGRAM_BOT_TOKEN\"\ndestination = \"{}\"\nheader = \"X-Token\"\nvalue = \"{{secret}}\"",
        server.url()
    );
    // No `secrets = [...]` in the grant.
    let (_h, guest) = start_egress(&home, &[server.url()], &secret, "").await;
    let sent = guest
        .send(command(&format!("get {}/x", server.url())))
        .await
        .unwrap();
    assert_eq!(sent.message_ids[0], "200");
    let r = &server.requests()[0];
    assert!(!r.all_text().contains("SUPERSECRET"), "{r:?}");
    assert!(!r.headers.contains_key("x-token"), "{r:?}");
}

/// One instance makes many requests, as an adapter does over a day: every
/// resource a request takes (request, body, streams, pollables, response,
/// trailers) is given back, so the instance's resource table (capped at
/// 4096 entries) never fills. Each round both sends a body and reads one;
/// 5000 rounds is more than the cap, so one leaked entry a request fails it.
/// The second half makes each request with a timeout, so with
/// `request-options`, which the guest hands over and wasmtime-wasi-http 48
/// never deleted (found by the soak: an adapter crashed every ~4,000
/// replies); airlock's outgoing handler gives them back.
#[tokio::test]
async fn thousands_of_requests_leak_no_resource() {
    let server = Recorder::start().await;
    let home = TempHome::new();
    let (_h, guest) = start_egress(&home, &[server.url()], "", "").await;
    for i in 0..5000 {
        let sent = guest
            .send(command(&format!("post {}/n{i} body {i}", server.url())))
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(sent.message_ids[0], "200", "request {i}");
    }
    for i in 0..5000 {
        let sent = guest
            .send(command(&format!("timed {}/t{i}", server.url())))
            .await
            .unwrap_or_else(|e| panic!("request {i} with a timeout: {e}"));
        assert_eq!(sent.message_ids[0], "200", "request {i} with a timeout");
    }
}
