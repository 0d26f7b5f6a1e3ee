//! Inbound webhooks against the real `baton serve`: a run started by a request signed
//! with the workflow's secret (HMAC-SHA256 over timestamp and body); wrong, stale or
//! unsigned requests refused and nothing started; rotation and removal.

use baton::webhooks::sign;
use baton_tests::http::Server;
use serde_json::Value;

const GREET: &str = "name: greet\nkey: .input.id\nsteps:\n  - id: hello\n    call: echo/echo\n    input: { message: '\"hi \" + .input.id' }\n";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn deliver(server: &Server, secret: &str, at: u64, body: &str) -> baton_tests::http::Response {
    let signature = sign(secret, at, body.as_bytes());
    let at = at.to_string();
    server.request(
        "POST",
        "/v1/hooks/greet?wait=5s",
        None,
        &[("Baton-Timestamp", &at), ("Baton-Signature", &signature)],
        body.as_bytes(),
    )
}

#[test]
fn signed_webhooks_start_runs_and_anything_else_is_refused() {
    let server = Server::start(&["echo"]);
    assert_eq!(server.admin("POST", "/v1/workflows", GREET).status, 201);
    let unconfigured = deliver(&server, "guess", now(), r#"{"id":"X"}"#);
    assert_eq!(
        (unconfigured.status, unconfigured.code()),
        (404, "no_hook".into())
    );

    let created = server.admin("POST", "/v1/hooks/greet/secret", "");
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.json()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let missing = server.admin("POST", "/v1/hooks/nosuch/secret", "");
    assert_eq!(missing.status, 404);

    let run = deliver(&server, &secret, now(), r#"{"id":"W-1"}"#);
    assert_eq!(run.status, 201, "{}", run.body);
    let run: Value = run.json();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["output"]["message"], "hi W-1");
    assert_eq!(run["started_by"], "hook:greet");

    let refused = |response: baton_tests::http::Response| {
        (
            response.status,
            response.code(),
            response.json()["error"]["field"].clone(),
        )
    };
    assert_eq!(
        refused(deliver(&server, "whsec_wrong", now(), r#"{"id":"W-2"}"#)),
        (401, "bad_signature".into(), "Baton-Signature".into())
    );
    assert_eq!(
        refused(deliver(&server, &secret, now() - 3600, r#"{"id":"W-2"}"#)),
        (401, "bad_signature".into(), "Baton-Timestamp".into())
    );
    let unsigned = server.request("POST", "/v1/hooks/greet", None, &[], br#"{"id":"W-2"}"#);
    assert_eq!(refused(unsigned).0, 401);
    // A signature for one body does not carry over to another.
    let signature = sign(&secret, now(), br#"{"id":"W-1"}"#);
    let at = now().to_string();
    let swapped = server.request(
        "POST",
        "/v1/hooks/greet",
        None,
        &[("Baton-Timestamp", &at), ("Baton-Signature", &signature)],
        br#"{"id":"W-9"}"#,
    );
    assert_eq!(swapped.status, 401);
    let runs = server.admin("GET", "/v1/runs", "").json();
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "refused requests started nothing"
    );

    // Rotation: the old secret stops working; removal turns the hook off.
    let rotated = server.admin("POST", "/v1/hooks/greet/secret", "").json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        deliver(&server, &secret, now(), r#"{"id":"W-3"}"#).status,
        401
    );
    assert_eq!(
        deliver(&server, &rotated, now(), r#"{"id":"W-3"}"#).status,
        201
    );
    assert_eq!(
        server.admin("DELETE", "/v1/hooks/greet/secret", "").status,
        200
    );
    assert_eq!(
        deliver(&server, &rotated, now(), r#"{"id":"W-4"}"#).status,
        404
    );
    let log = server
        .admin("GET", "/v1/audit?run=system&type=admin", "")
        .json();
    assert!(
        log.to_string().contains("hook_secret_set")
            && log.to_string().contains("hook_secret_removed")
    );
    assert!(
        !log.to_string().contains(&rotated),
        "secrets stay out of the audit log"
    );
}

#[test]
fn run_finished_callbacks_are_signed_and_retried_until_delivered() {
    use baton_tests::stand_in::{Reply, StandIn};
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The receiver is down for the first two attempts.
    let calls = AtomicUsize::new(0);
    let receiver = StandIn::start(move |_| {
        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::json(503, serde_json::json!({"down": true}))
        } else {
            Reply::json(200, serde_json::json!({"ok": true}))
        }
    });
    let server = Server::start(&["echo"]);
    assert_eq!(server.admin("POST", "/v1/workflows", GREET).status, 201);
    let bad = server.admin("POST", "/v1/webhooks", r#"{"url":"ftp://x"}"#);
    assert_eq!(bad.json()["error"]["field"], "url");
    let created = server.admin(
        "POST",
        "/v1/webhooks",
        &format!(
            r#"{{"url":"{}","workflow":"greet"}}"#,
            receiver.url("/baton")
        ),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.json()["secret"].as_str().unwrap().to_owned();
    let listed = server.admin("GET", "/v1/webhooks", "");
    assert!(
        !listed.body.contains(&secret),
        "secrets are shown once: {}",
        listed.body
    );

    let run = server.admin(
        "POST",
        "/v1/workflows/greet/runs?wait=5s",
        r#"{"id":"C-1"}"#,
    );
    let run_id = run.json()["id"].as_str().unwrap().to_owned();
    // Backoff: 1 s, then 2 s.
    let mut requests = Vec::new();
    for _ in 0..150 {
        requests = receiver.requests();
        if requests.len() >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(requests.len(), 3, "two failures, then delivered");
    let last = &requests[2];
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("POST", "/baton")
    );
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["event"], "run.finished");
    assert_eq!(body["run"]["id"], run_id.as_str());
    assert_eq!(body["run"]["status"], "succeeded");
    let at: u64 = last.headers["baton-timestamp"].parse().unwrap();
    assert_eq!(
        last.headers["baton-signature"],
        sign(&secret, at, &last.body)
    );
    assert_eq!(
        requests[0].headers["baton-delivery"], last.headers["baton-delivery"],
        "one delivery, three attempts"
    );
    let mut deliveries = Value::Null;
    for _ in 0..100 {
        deliveries = server.admin("GET", "/v1/webhooks/deliveries", "").json();
        if deliveries["pending"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(deliveries, serde_json::json!({"pending": [], "failed": []}));

    // A run that finishes where no dispatcher runs (the local CLI here, or a server
    // killed just after the run's commit) is announced in that commit, so the next
    // server still calls back.
    let mut server = server;
    assert!(server.stop());
    let data = server.data();
    let (out, _) = baton_tests::baton_ok(
        &data,
        &data,
        &[
            "run",
            "start",
            "greet",
            "--input",
            r#"{"id":"C-2"}"#,
            "--wait",
        ],
    );
    let server = server.restart();
    let mut offline = None;
    for _ in 0..200 {
        offline = receiver.requests().into_iter().find(|r| {
            serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| b["run"]["input"]["id"] == "C-2")
        });
        if offline.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let offline = offline.unwrap_or_else(|| panic!("no callback for the run started by: {out}"));
    let body: Value = serde_json::from_slice(&offline.body).unwrap();
    assert_eq!(body["run"]["status"], "succeeded");
    assert_eq!(
        receiver.requests().len(),
        4,
        "one callback per finished run"
    );

    // A run that finishes in the commit that starts it (its first step is `end`).
    let instant = "name: instant\nsteps:\n  - id: done\n    end: '{id: .input.id}'\n";
    assert_eq!(server.admin("POST", "/v1/workflows", instant).status, 201);
    server.admin(
        "POST",
        "/v1/webhooks",
        &format!(r#"{{"url":"{}"}}"#, receiver.url("/all")),
    );
    let run = server.admin("POST", "/v1/workflows/instant/runs", r#"{"id":"I-1"}"#);
    assert_eq!(run.json()["status"], "succeeded", "{}", run.body);
    let mut instant_callbacks = Vec::new();
    for _ in 0..200 {
        instant_callbacks = receiver
            .requests()
            .into_iter()
            .filter(|r| r.path == "/all")
            .collect();
        if !instant_callbacks.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        instant_callbacks.len(),
        1,
        "the instant run is called back once"
    );
    let body: Value = serde_json::from_slice(&instant_callbacks[0].body).unwrap();
    assert_eq!(body["run"]["output"], serde_json::json!({"id": "I-1"}));
    drop(server);
}
