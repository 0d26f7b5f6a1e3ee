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

fn stand_in() -> StandIn {
    StandIn::start(|req| match req.path.as_str() {
        "/po/42" => Reply::json(200, json!({"po_number": "42", "total": 100.5})),
        "/down" => Reply::json(503, json!({"error": "maintenance"})),
        _ => Reply::json(201, json!({"echo": String::from_utf8_lossy(&req.body)})),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn granted_hosts_are_reachable_with_the_secret_as_bearer_token() {
    let erp = stand_in();
    let t = TestRegistry::unsigned();
    t.install("http").await;
    t.registry
        .grant(
            "http",
            &GrantChange {
                add_hosts: vec!["127.0.0.1:*".into()],
                set_secrets: vec![("token".into(), TOKEN.into())],
                ..Default::default()
            },
        )
        .unwrap();

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
    let t = TestRegistry::unsigned();
    t.install("http").await;
    // Granted a different host, and this host on its default ports only.
    t.registry
        .grant(
            "http",
            &GrantChange {
                add_hosts: vec!["erp.example.com".into(), "127.0.0.1".into()],
                ..Default::default()
            },
        )
        .unwrap();
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
