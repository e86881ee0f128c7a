//! The runtime's promises that are not about hostility: caching, budgets
//! that ignore host waits, wall-clock limits, bundled components at work.

use std::time::Duration;

use airlock::bindings::message_filter::OutboundVerdict;
use airlock::bindings::types::{InboundEvent, IncomingRequest};
use airlock::runtime::cache::CacheOutcome;
use airlock::runtime::call_error::CallError;

use crate::support::*;

#[test]
fn a_second_start_loads_from_the_cache() {
    let home = TempHome::new();
    let c = &airlock::catalog::bundled_candidates()[0];
    assert_eq!(home.host().load(c).unwrap().cache, CacheOutcome::Compiled);
    // A new host process would open the same state directory.
    assert_eq!(home.host().load(c).unwrap().cache, CacheOutcome::Hit);
    let entries = std::fs::read_dir(home.path().join("cache"))
        .unwrap()
        .count();
    assert!(entries >= 1);
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let home = TempHome::new();
    let c = &airlock::catalog::bundled_candidates()[0];
    home.host().load(c).unwrap();
    for e in std::fs::read_dir(home.path().join("cache")).unwrap() {
        std::fs::write(e.unwrap().path(), b"garbage").unwrap();
    }
    assert_eq!(home.host().load(c).unwrap().cache, CacheOutcome::Compiled);
}

#[tokio::test]
async fn waiting_on_the_host_does_not_spend_cpu_budget() {
    // The server takes 600 ms; the guest's CPU budget is 50 ms.
    let server = Recorder::start_with(Duration::from_millis(600), None).await;
    let home = TempHome::new();
    let (_h, guest) = start_egress(
        &home,
        &[server.url()],
        "[limits]\ncpu_ms = 50\nwall_ms = 10000",
        "",
    )
    .await;
    let sent = guest
        .send(command(&format!("get {}/slow", server.url())))
        .await
        .unwrap();
    assert_eq!(sent.message_ids[0], "200");
}

#[tokio::test]
async fn a_call_past_its_wall_clock_is_stopped() {
    let server = Recorder::start_with(Duration::from_secs(30), None).await;
    let home = TempHome::new();
    let (_h, guest) = start_egress(&home, &[server.url()], "[limits]\nwall_ms = 500", "").await;
    let err = guest
        .send(command(&format!("get {}/hang", server.url())))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err}");
    assert!(
        err.to_string().contains("did not finish within 500ms"),
        "{err}"
    );
}

#[tokio::test]
async fn the_bundled_webhook_adapter_receives_and_sends() {
    let endpoint = Recorder::start_with(Duration::ZERO, Some(r#"{"id": 42}"#)).await;
    let home = TempHome::new();
    // The manifest declares a stand-in destination; the operator rebinds it.
    home.config(&format!(
        "[components.webhook]\nsettings = {{ outbound_url = \"{url}/hook\" }}\n\
         [components.webhook.grant]\nlocal = [\"{url}\"]\n\
         [components.webhook.grant.rebind]\n\"https://webhook.invalid\" = \"{url}\"\n",
        url = endpoint.url()
    ));
    let host = home.host();
    let (candidates, _) = host.candidates().unwrap();
    let c = candidates.iter().find(|c| c.name == "webhook").unwrap();
    let loaded = host.load(c).unwrap();
    let webhook = host.spawn_adapter(&loaded, None).unwrap();
    webhook.start(host.settings("webhook")).await.unwrap();

    let reply = webhook
        .on_http_request(IncomingRequest {
            method: "POST".into(),
            path: "/".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"chat":"ci","user":"bot","user_id":"7","text":"build green"}"#.to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(reply.response.status, 202);
    let [InboundEvent::Message(m)] = reply.batch.events.as_slice() else {
        panic!("{:?}", reply.batch)
    };
    assert_eq!(
        (m.chat.id.as_str(), m.sender.id.as_str(), m.text.as_str()),
        ("ci", "7", "build green")
    );

    let bad = webhook
        .on_http_request(IncomingRequest {
            method: "POST".into(),
            path: "/".into(),
            headers: vec![],
            body: b"{".to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(bad.response.status, 400);
    assert!(bad.batch.events.is_empty());

    let sent = webhook.send(command("deployed")).await.unwrap();
    assert_eq!(sent.message_ids, vec!["42"]);
    let r = &endpoint.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path_and_query.as_str()),
        ("POST", "/hook")
    );
    assert!(String::from_utf8_lossy(&r.body).contains("deployed"));
}

#[tokio::test]
async fn the_bundled_redact_filter_rewrites_outbound_tokens() {
    let home = TempHome::new();
    let host = home.host();
    let (candidates, _) = host.candidates().unwrap();
    let c = candidates.iter().find(|c| c.name == "redact").unwrap();
    let redact = host.filter_runner(&host.load(c).unwrap()).unwrap();
    let token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
    match redact
        .outbound(&command(&format!("the token is {token}, keep it safe")))
        .await
        .0
        .unwrap()
    {
        OutboundVerdict::Rewrite(m) => {
            assert!(!m.text.contains(token), "{}", m.text);
            assert!(m.text.contains("[REDACTED]"), "{}", m.text);
        }
        other => panic!("expected a rewrite, got {other:?}"),
    }
    assert_eq!(
        redact
            .outbound(&command("nothing secret here"))
            .await
            .0
            .unwrap(),
        OutboundVerdict::Pass
    );
}

/// The pool has `SLOTS` (16) instances; more messages than that at once
/// wait for a slot, and every one still gets its own verdict.
#[tokio::test(flavor = "current_thread")]
async fn more_messages_at_once_than_the_filter_pool_has_slots_each_get_a_verdict() {
    let home = TempHome::new();
    let host = home.host();
    let (candidates, _) = host.candidates().unwrap();
    let c = candidates.iter().find(|c| c.name == "redact").unwrap();
    let redact = host.filter_runner(&host.load(c).unwrap()).unwrap();
    assert!(redact.pooled(), "the bundled filter fits a pool slot");
    let token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
    let calls = (0..64).map(|i| {
        let redact = redact.clone();
        async move {
            let text = if i % 2 == 0 {
                format!("message {i} carries {token}")
            } else {
                format!("message {i} is plain")
            };
            // The instance goes when the call is done, giving its slot back.
            let (verdict, _used) = redact.outbound(&command(&text)).await;
            (i, verdict)
        }
    });
    for (i, verdict) in futures::future::join_all(calls).await {
        match verdict.unwrap_or_else(|e| panic!("message {i}: {e}")) {
            OutboundVerdict::Rewrite(m) if i % 2 == 0 => {
                assert!(m.text.starts_with(&format!("message {i} ")), "{}", m.text);
                assert!(!m.text.contains(token), "{}", m.text);
            }
            OutboundVerdict::Pass if i % 2 == 1 => {}
            other => panic!("message {i}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn timers_fire_into_the_adapter_and_kv_persists_across_restarts() {
    let home = TempHome::new();
    home.drop_in(
        "stateful",
        &fixture_wasm("stateful"),
        &manifest("stateful", "kv_quota_bytes = 8192"),
    );
    let (_host, adapter, mut rx) = start_adapter_unsolicited(&home, "stateful").await;

    let fired = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*fired.component, "stateful");
    let [InboundEvent::Message(m)] = fired.batch.events.as_slice() else {
        panic!("{:?}", fired.batch)
    };
    assert_eq!(m.text, "tick 1");

    // A crash replaces the instance; the restart replays `start`, which sets
    // the timer again, and the count kept in kv carries on.
    assert!(matches!(
        adapter.send(command("crash")).await,
        Err(CallError::Trap { .. })
    ));
    assert_eq!(
        adapter.send(command("count")).await.unwrap().message_ids,
        vec!["1"]
    );
    let fired = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let [InboundEvent::Message(m)] = fired.batch.events.as_slice() else {
        panic!("{:?}", fired.batch)
    };
    assert_eq!(m.text, "tick 2");

    // The quota holds: 8 KiB in all, counting keys.
    let fill = adapter.send(command("fill")).await.unwrap().message_ids;
    let written: usize = fill[0].parse().unwrap();
    assert!((6 * 1024..=8192).contains(&written), "{fill:?}");
    assert!(fill[1].contains("QuotaExceeded"), "{fill:?}");
}

#[tokio::test]
async fn kv_is_not_linked_without_a_quota() {
    let home = TempHome::new();
    home.drop_in(
        "stateful",
        &fixture_wasm("stateful"),
        &manifest("stateful", ""),
    );
    let host = home.host();
    let (candidates, _) = host.candidates().unwrap();
    let c = candidates.iter().find(|c| c.name == "stateful").unwrap();
    let err = host.load_unchecked(c).err().expect("refused").to_string();
    assert!(
        err.contains("airlock:channel/kv") && err.contains("kv_quota_bytes"),
        "{err}"
    );
}
