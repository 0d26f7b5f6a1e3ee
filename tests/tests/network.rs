//! Outbound HTTP through wasi:http: allowed only where requested and granted, with the
//! generic `http` connector talking to a local stand-in server.

use baton::registry::GrantChange;
use baton::runtime::CallContext;
use baton_tests::TestRegistry;
use baton_tests::stand_in::{Reply, StandIn};
use serde_json::{Value, json};

const TOKEN: &str = "erp-token-0123456789";

async fn request(t: &TestRegistry, input: Value) -> baton::registry::CallReport {
    t.registry
        .call(
            &"http".parse().unwrap(),
            "request",
            &input.to_string(),
            &CallContext::default(),
        )
        .await
        .unwrap()
}

/// The `http` connector installed with `grant`.
async fn http_plugin(grant: GrantChange) -> TestRegistry {
    let t = TestRegistry::unsigned();
    t.install("http").await;
    t.registry.grant("http", &grant).unwrap();
    t
}

fn stand_in() -> StandIn {
    StandIn::start(|req| match req.path.as_str() {
        "/po/42" => Reply::json(200, json!({"po_number": "42", "total": 100.5})),
        "/down" => Reply::json(503, json!({"error": "maintenance"})),
        "/bye" => Reply::json(200, json!({"bye": true})).hang_up(),
        _ => Reply::json(201, json!({"echo": String::from_utf8_lossy(&req.body)})),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn granted_hosts_are_reachable_with_the_secret_as_bearer_token() {
    let erp = stand_in();
    let t = http_plugin(GrantChange {
        add_hosts: vec!["127.0.0.1:*".into()],
        set_secrets: vec![("token".into(), TOKEN.into())],
        ..Default::default()
    })
    .await;

    let r = request(
        &t,
        json!({"method": "GET", "url": erp.url("/po/42"), "bearer_secret": "token"}),
    )
    .await;
    let out = r.result.unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"], json!({"po_number": "42", "total": 100.5}));

    let r = request(
        &t,
        json!({"method": "POST", "url": erp.url("/invoices"), "body": {"amount": 7}, "headers": {"x-trace": "abc"}}),
    )
    .await;
    let out = r.result.unwrap();
    assert_eq!(out["status"], 201);
    assert_eq!(out["body"]["echo"], json!({"amount": 7}).to_string());

    let seen = erp.requests();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].headers.get("authorization").map(String::as_str),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(seen[1].method, "POST");
    assert_eq!(
        seen[1].headers.get("x-trace").map(String::as_str),
        Some("abc")
    );
    assert!(!seen[1].headers.contains_key("authorization"));

    let r = request(&t, json!({"method": "GET", "url": erp.url("/down")})).await;
    let f = r.result.unwrap_err();
    assert_eq!(f.code, "http_status");
    assert!(f.retryable, "a 503 is worth retrying");
    assert_eq!(f.details.unwrap()["status"], 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_was_not_granted_is_denied_with_the_grant_that_would_allow_it() {
    let erp = stand_in();
    // Granted a different host, and this host on its default ports only.
    let t = http_plugin(GrantChange {
        add_hosts: vec!["erp.example.com".into(), "127.0.0.1".into()],
        ..Default::default()
    })
    .await;
    let r = request(&t, json!({"method": "GET", "url": erp.url("/po/42")})).await;
    let f = r.result.unwrap_err();
    assert_eq!(f.code, "host_denied");
    let port = erp.addr.port();
    assert!(
        f.message.contains(&format!(
            "plugin http@0.1.0 may not reach host 127.0.0.1:{port}"
        )),
        "{}",
        f.message
    );
    assert!(
        f.message
            .contains(&format!("baton plugin grant http --host 127.0.0.1:{port}")),
        "{}",
        f.message
    );
    // A request with a body too: the denial, not the body stream it closed, is the reason.
    let r = request(
        &t,
        json!({"method": "POST", "url": erp.url("/po"), "body": "x".repeat(20_000)}),
    )
    .await;
    let f = r.result.unwrap_err();
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("host_denied", false),
        "{f:?}"
    );
    assert!(erp.requests().is_empty(), "the request must not leave");
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_to_one_host_reuse_a_kept_alive_connection() {
    let erp = stand_in();
    let t = http_plugin(GrantChange {
        add_hosts: vec!["127.0.0.1:*".into()],
        ..Default::default()
    })
    .await;
    let ok = async |input: Value| {
        let r = request(&t, input).await;
        r.result.unwrap_or_else(|f| panic!("{f:?}"))
    };

    // Five calls, each a separate plugin instance, and a POST with a body: one connection.
    for _ in 0..5 {
        let out = ok(json!({"method": "GET", "url": erp.url("/po/42")})).await;
        assert_eq!(out["body"]["po_number"], "42");
    }
    let out = ok(json!({"method": "POST", "url": erp.url("/x"), "body": {"n": 1}})).await;
    assert_eq!(out["status"], 201);
    assert_eq!(erp.connections(), 1);
    assert_eq!(erp.requests().len(), 6);

    // The server drops the connection after answering, as one closing an idle
    // keep-alive connection does: the next call goes out on a new one.
    ok(json!({"method": "GET", "url": erp.url("/bye")})).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let out = ok(json!({"method": "GET", "url": erp.url("/po/42")})).await;
    assert_eq!(out["status"], 200);
    assert_eq!(erp.connections(), 2);

    // Calls at once need a connection each (one was idle, so at most three new ones);
    // afterwards they are reused: without the pool, 16 requests would be 16 connections.
    let get = || ok(json!({"method": "GET", "url": erp.url("/po/42")}));
    for _ in 0..2 {
        tokio::join!(get(), get(), get(), get());
    }
    assert!(erp.connections() <= 5, "{} connections", erp.connections());
    assert_eq!(erp.requests().len(), 16);
}
