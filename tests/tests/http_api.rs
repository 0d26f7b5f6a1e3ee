//! The HTTP API of the real `baton serve`: the first start's admin token, roles,
//! workflows applied over HTTP, idempotent synchronous and asynchronous triggers, JSON
//! errors (401, 403, 404, 405, 400 naming the field, 413, 422), graceful shutdown.

use baton_tests::baton_ok;
use baton_tests::http::{Server, is_private};
use serde_json::Value;

const GREET: &str = "name: greet\nkey: .input.id\nsteps:\n  - id: hello\n    call: echo/echo\n    input: { message: '\"hi \" + .input.id' }\n";

fn token(server: &Server, user: &str, role: &str) -> String {
    let (out, _) = baton_ok(
        &server.data(),
        server.dir.path(),
        &["token", "create", "--user", user, "--role", role],
    );
    out.trim().to_owned()
}

#[test]
fn the_first_start_writes_a_private_admin_token_once() {
    let server = Server::start(&[]);
    let file = server.data().join("admin.token");
    assert!(server.admin.starts_with("bt_"), "{}", server.admin);
    assert!(is_private(&file));
    let health = server.request("GET", "/healthz", None, &[], b"");
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, "ok".into())
    );
    assert_eq!(server.admin("GET", "/v1/workflows", "").status, 200);

    // A second start keeps the first token and writes no new one.
    let before = std::fs::read_to_string(&file).unwrap();
    let server = server.restart();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(server.admin("GET", "/v1/workflows", "").status, 200);
}

#[test]
fn runs_are_triggered_idempotently_and_synchronously() {
    let server = Server::start(&["echo"]);
    let applied = server.admin("POST", "/v1/workflows?file=greet.yaml", GREET);
    assert_eq!(applied.status, 201, "{}", applied.body);
    assert_eq!(applied.json()["version"], 1);
    // The same text again adds no version.
    assert_eq!(server.admin("POST", "/v1/workflows", GREET).status, 200);

    let key = [("Idempotency-Key", "order-17")];
    let first = server.request(
        "POST",
        "/v1/workflows/greet/runs?wait=10s",
        Some(&server.admin),
        &key,
        br#"{"id":"A-1"}"#,
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let run = first.json();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["output"]["message"], "hi A-1");
    assert_eq!(run["key"], "A-1");
    assert_eq!(run["started_by"], "user:admin");
    assert_eq!(run["steps"][0]["status"], "completed");
    // The synchronous answer is the finished run as stored, not a draft of it.
    let stored = server.admin(
        "GET",
        &format!("/v1/runs/{}", run["id"].as_str().unwrap()),
        "",
    );
    assert_eq!(stored.json(), run);

    // The same key returns the same run and starts nothing.
    let again = server.request(
        "POST",
        "/v1/workflows/greet/runs",
        Some(&server.admin),
        &key,
        br#"{"id":"A-2"}"#,
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["id"], run["id"]);

    // Without a wait the answer comes at once; the run finishes on its own.
    let later = server.admin("POST", "/v1/workflows/greet/runs", r#"{"id":"B-1"}"#);
    assert_eq!(later.status, 201, "{}", later.body);
    let id = later.json()["id"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..200 {
        status = server.admin("GET", &format!("/v1/runs/{id}"), "").json()["status"].clone();
        if status == "succeeded" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(status, "succeeded");

    let listed = server.admin("GET", "/v1/runs?workflow=greet&status=succeeded", "");
    assert_eq!(
        listed.json().as_array().unwrap().len(),
        2,
        "{}",
        listed.body
    );
    let by_key = server.admin("GET", "/v1/runs?key=B-1", "").json();
    assert_eq!(by_key[0]["id"], id.as_str());
}

#[test]
fn errors_are_json_with_a_code_and_the_field() {
    let server = Server::start(&["echo"]);
    server.admin("POST", "/v1/workflows", GREET);

    let bad_json = server.admin("POST", "/v1/workflows/greet/runs", r#"{"id":"#);
    assert_eq!(
        (bad_json.status, bad_json.code()),
        (400, "invalid_json".into())
    );
    assert_eq!(bad_json.json()["error"]["field"], "input");

    let unknown = server.admin("POST", "/v1/workflows/nope/runs", "{}");
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "unknown_workflow".into())
    );

    let bad_wait = server.admin("POST", "/v1/workflows/greet/runs?wait=soon", "{}");
    assert_eq!(bad_wait.status, 400);
    assert_eq!(bad_wait.json()["error"]["field"], "wait");

    let bad_status = server.admin("GET", "/v1/runs?status=done", "");
    assert_eq!(bad_status.json()["error"]["field"], "status");

    let invalid = server.admin(
        "POST",
        "/v1/workflows?file=broken.yaml",
        "name: broken\nsteps:\n  - id: a\n    call: nope/x\n",
    );
    assert_eq!(
        (invalid.status, invalid.code()),
        (422, "invalid_definition".into())
    );
    let problem = &invalid.json()["error"]["details"][0];
    assert_eq!(problem["step"], "a");
    assert_eq!(problem["field"], "call");
    assert_eq!(problem["line"], 4);
    assert!(invalid.body.contains("broken.yaml"), "{}", invalid.body);

    let route = server.admin("GET", "/v1/nothing-here", "");
    assert_eq!((route.status, route.code()), (404, "not_found".into()));
    let method = server.admin("DELETE", "/v1/workflows", "");
    assert_eq!(
        (method.status, method.code()),
        (405, "method_not_allowed".into())
    );

    let big = vec![b' '; 1100 * 1024];
    let too_big = server.request(
        "POST",
        "/v1/workflows/greet/runs",
        Some(&server.admin),
        &[],
        &big,
    );
    assert_eq!(
        (too_big.status, too_big.code()),
        (413, "body_too_large".into())
    );

    // None of the refused requests started a run.
    assert_eq!(
        server.admin("GET", "/v1/runs", "").json(),
        serde_json::json!([])
    );
}

#[test]
fn roles_decide_what_a_token_may_do() {
    let mut server = Server::start(&["echo"]);
    server.admin("POST", "/v1/workflows", GREET);
    assert!(server.stop(), "SIGTERM stops the server cleanly");
    // Tokens are managed with the server stopped (the data directory has one owner).
    let viewer = token(&server, "vera", "viewer");
    let client = token(&server, "erp-system", "trigger");
    let gone = token(&server, "old-client", "trigger");
    let listed = baton_ok(
        &server.data(),
        server.dir.path(),
        &["token", "list", "--json"],
    )
    .0;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let gone_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == "old-client")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !listed.to_string().contains(&gone),
        "tokens are never listed"
    );
    baton_ok(
        &server.data(),
        server.dir.path(),
        &["token", "revoke", &gone_id],
    );
    let server = server.restart();

    let missing = server.request("GET", "/v1/runs", None, &[], b"");
    assert_eq!(
        (missing.status, missing.code()),
        (401, "unauthorized".into())
    );
    let wrong = server.request("GET", "/v1/runs", Some("bt_not-a-token"), &[], b"");
    assert_eq!(wrong.status, 401);
    let revoked = server.request("GET", "/v1/runs", Some(&gone), &[], b"");
    assert_eq!(revoked.status, 401);

    // A trigger token starts runs, and the run records who started it.
    let started = server.request(
        "POST",
        "/v1/workflows/greet/runs?wait=10s",
        Some(&client),
        &[],
        br#"{"id":"C-1"}"#,
    );
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.json()["started_by"], "user:erp-system");
    // ...but applies no workflows.
    let apply = server.request(
        "POST",
        "/v1/workflows",
        Some(&client),
        &[],
        GREET.as_bytes(),
    );
    assert_eq!((apply.status, apply.code()), (403, "forbidden".into()));
    assert!(apply.body.contains("trigger"), "{}", apply.body);

    // A viewer reads but starts nothing.
    assert_eq!(
        server
            .request("GET", "/v1/runs", Some(&viewer), &[], b"")
            .status,
        200
    );
    let refused = server.request(
        "POST",
        "/v1/workflows/greet/runs",
        Some(&viewer),
        &[],
        br#"{"id":"V-1"}"#,
    );
    assert_eq!(refused.status, 403);
    assert_eq!(
        server
            .admin("GET", "/v1/runs", "")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_synchronous_trigger_that_outlasts_its_wait_answers_202_with_the_running_run() {
    let server = Server::start(&["hostile"]);
    let nap = "name: nap\nsteps:\n  - id: nap\n    call: hostile/sleep\n    input: {}\n";
    assert_eq!(server.admin("POST", "/v1/workflows", nap).status, 201);

    let asked = std::time::Instant::now();
    let answer = server.admin("POST", "/v1/workflows/nap/runs?wait=300ms", "{}");
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert!(asked.elapsed() >= std::time::Duration::from_millis(300));
    let run = answer.json();
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(run["steps"][0]["status"], "running", "{run}");
    // The run goes on after the answer: it is there to fetch, still running.
    let id = run["id"].as_str().unwrap();
    let later = server.admin("GET", &format!("/v1/runs/{id}"), "").json();
    assert_eq!(later["status"], "running", "{later}");
}

const HOLD: &str = "name: hold\nkey: .input.id\nsteps:\n  - id: wait\n    wait: { event: go, key: .input.id }\n  - id: after\n    call: echo/echo\n    input: { message: '\"done \" + .input.id' }\n";

#[test]
fn events_wake_waiting_runs_and_operators_steer_them() {
    let server = Server::start(&["echo"]);
    server.admin("POST", "/v1/workflows", HOLD);

    let a = server.admin("POST", "/v1/workflows/hold/runs?wait=5s", r#"{"id":"A"}"#);
    assert_eq!(a.json()["status"], "waiting", "{}", a.body);
    let a = a.json()["id"].as_str().unwrap().to_owned();
    let sent = server
        .admin("POST", "/v1/events/go/A", r#"{"ok":true}"#)
        .json();
    assert_eq!(sent["delivered_to"], serde_json::json!([a]));
    let done = server.status_becomes(&a, "succeeded");
    assert_eq!(done["output"]["message"], "done A");

    // An event nobody waits for yet is kept for the run that will.
    let early = server.admin("POST", "/v1/events/go/C", "").json();
    assert_eq!(early["buffered"], true);
    let c = server.admin("POST", "/v1/workflows/hold/runs?wait=5s", r#"{"id":"C"}"#);
    assert_eq!(c.json()["status"], "succeeded", "{}", c.body);
    // Who sent each event is in the run's log, for a buffered one too.
    for run in [a.clone(), c.json()["id"].as_str().unwrap().to_owned()] {
        let received = server
            .admin(
                "GET",
                &format!("/v1/audit?run={run}&type=event_received"),
                "",
            )
            .json();
        assert_eq!(received[0]["actor"], "user:admin", "{received}");
    }

    // Operators cancel; bad commands are refused with the reason.
    let b = server.admin("POST", "/v1/workflows/hold/runs?wait=5s", r#"{"id":"B"}"#);
    let b = b.json()["id"].as_str().unwrap().to_owned();
    let unknown = server.admin("POST", &format!("/v1/runs/{b}/explode"), "");
    assert_eq!(unknown.status, 404);
    let no_step = server.admin("POST", &format!("/v1/runs/{b}/retry"), "{}");
    assert_eq!(no_step.status, 400);
    assert_eq!(no_step.json()["error"]["field"], "step");
    let cancel = server.admin(
        "POST",
        &format!("/v1/runs/{b}/cancel"),
        r#"{"reason":"customer withdrew"}"#,
    );
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    server.status_becomes(&b, "cancelled");
    let again = server.admin("POST", &format!("/v1/runs/{b}/pause"), "");
    assert_eq!((again.status, again.code()), (409, "conflict".into()));
    let missing = server.admin("POST", "/v1/runs/01NOSUCHRUN/cancel", "");
    assert_eq!(
        (missing.status, missing.code()),
        (404, "unknown_run".into())
    );
}

#[test]
fn admins_manage_tokens_over_http() {
    let server = Server::start(&[]);
    let created = server.admin(
        "POST",
        "/v1/tokens",
        r#"{"user":"ops-anna","role":"operator"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let anna = created.json()["token"].as_str().unwrap().to_owned();
    let anna_id = created.json()["record"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .request("GET", "/v1/runs", Some(&anna), &[], b"")
            .status,
        200
    );
    // An operator manages no tokens.
    let refused = server.request("GET", "/v1/tokens", Some(&anna), &[], b"");
    assert_eq!(refused.status, 403);

    let listed = server.admin("GET", "/v1/tokens", "");
    assert_eq!(listed.json().as_array().unwrap().len(), 2);
    assert!(!listed.body.contains(&anna), "tokens are never listed");

    let bad_role = server.admin("POST", "/v1/tokens", r#"{"user":"x","role":"boss"}"#);
    assert_eq!(bad_role.json()["error"]["field"], "role");
    let bad_user = server.admin(
        "POST",
        "/v1/tokens",
        r#"{"user":"no spaces","role":"viewer"}"#,
    );
    assert_eq!(bad_user.json()["error"]["field"], "user");

    let revoked = server.admin("DELETE", &format!("/v1/tokens/{anna_id}"), "");
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.json()["revoked_ms"].is_u64());
    assert_eq!(
        server
            .request("GET", "/v1/runs", Some(&anna), &[], b"")
            .status,
        401
    );
    let unknown = server.admin("DELETE", "/v1/tokens/nope", "");
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "unknown_token".into())
    );

    // The last admin token cannot lock everyone out.
    let admin_id = server
        .admin("GET", "/v1/tokens", "")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let last = server.admin("DELETE", &format!("/v1/tokens/{admin_id}"), "");
    assert_eq!((last.status, last.code()), (409, "last_admin".into()));
    assert_eq!(server.admin("GET", "/v1/tokens", "").status, 200);
}

const FIX: &str = r#"name: fix
key: .input.vendor
steps:
  - id: lookup
    call: echo/fail
    input: { code: '"unknown_vendor"', message: '"vendor " + .input.vendor + " unknown"', retryable: false, details: { vendor: .input.vendor } }
    on_error: escalate
  - id: after
    end: '{vendor: .steps.lookup.output}'
"#;

const SIGN: &str =
    "name: sign\nkey: .input.id\nsteps:\n  - id: hello\n    human: { title: Sign }\n";

/// The server's database, opened directly (the server stopped).
fn database(server: &Server) -> redb::Database {
    redb::Database::open(server.data().join("baton.redb")).unwrap()
}

/// The rows of the step queue index in the server's database (the server stopped).
fn step_queues(server: &Server) -> Vec<(String, String, String)> {
    use redb::{ReadableDatabase, ReadableTable};
    let db = database(server);
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(STEP_QUEUES).unwrap();
    table
        .iter()
        .unwrap()
        .map(|row| {
            let (key, _) = row.unwrap();
            let (q, run, path) = key.value();
            (q.to_owned(), run.to_owned(), path.to_owned())
        })
        .collect()
}

const STEP_QUEUES: redb::TableDefinition<(&str, &str, &str), ()> =
    redb::TableDefinition::new("step_queues");

#[test]
fn tasks_and_exceptions_are_indexed_and_an_older_database_gets_the_index() {
    let mut server = Server::start(&["echo"]);
    for definition in [FIX, SIGN, GREET] {
        assert_eq!(
            server.admin("POST", "/v1/workflows", definition).status,
            201
        );
    }
    let start = |workflow: &str, input: &str| {
        let started = server.admin(
            "POST",
            &format!("/v1/workflows/{workflow}/runs?wait=10s"),
            input,
        );
        assert_eq!(started.status, 201, "{}", started.body);
        started.json()["id"].as_str().unwrap().to_owned()
    };
    let fixed = start("fix", r#"{"vendor":"V1"}"#);
    let broken = start("fix", r#"{"vendor":"V2"}"#);
    let sign = start("sign", r#"{"id":"S1"}"#);
    start("greet", r#"{"id":"G1"}"#);
    let resolved = server.admin(
        "POST",
        &format!("/v1/exceptions/{fixed}/lookup/resolve"),
        r#"{"output":{"id":"ACME"}}"#,
    );
    assert_eq!(resolved.status, 202, "{}", resolved.body);
    server.status_becomes(&fixed, "succeeded");

    // The index holds what waits for a person, and nothing that left its queue.
    let expected = vec![
        ("exception".to_owned(), broken.clone(), "lookup".to_owned()),
        ("task".to_owned(), sign.clone(), "hello".to_owned()),
    ];
    assert!(server.stop());
    assert_eq!(step_queues(&server), expected);

    // A database from before the index: no rows, no mark that it was built.
    {
        let db = database(&server);
        let txn = db.begin_write().unwrap();
        txn.delete_table(STEP_QUEUES).unwrap();
        let mut meta = txn
            .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
            .unwrap();
        assert!(meta.remove("built:step_queues").unwrap().is_some());
        drop(meta);
        txn.commit().unwrap();
    }
    let mut server = server.restart();
    let exceptions = server.admin("GET", "/v1/exceptions", "").json();
    assert_eq!(exceptions.as_array().unwrap().len(), 1, "{exceptions}");
    assert_eq!(exceptions[0]["run_id"], broken.as_str());
    let tasks = server.admin("GET", "/v1/tasks?all=true", "").json();
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    assert_eq!(tasks[0]["run_id"], sign.as_str());
    assert!(server.stop());
    assert_eq!(step_queues(&server), expected);
}

#[test]
fn people_work_the_exception_queue() {
    let server = Server::start(&["echo"]);
    let applied = server.admin("POST", "/v1/workflows", FIX);
    assert_eq!(applied.status, 201, "{}", applied.body);
    let mut runs = Vec::new();
    for vendor in ["V1", "V2", "V3"] {
        let started = server.admin(
            "POST",
            "/v1/workflows/fix/runs?wait=10s",
            &format!(r#"{{"vendor":"{vendor}"}}"#),
        );
        assert_eq!(started.json()["status"], "waiting", "{}", started.body);
        runs.push(started.json()["id"].as_str().unwrap().to_owned());
    }

    let queue = server.admin("GET", "/v1/exceptions", "").json();
    let queue = queue.as_array().unwrap();
    assert_eq!(queue.len(), 3, "{queue:?}");
    assert_eq!(queue[0]["run_id"], runs[0].as_str());
    assert_eq!(queue[0]["path"], "lookup");
    assert_eq!(queue[0]["key"], "V1");
    assert_eq!(queue[0]["failure"]["code"], "unknown_vendor");
    assert_eq!(queue[0]["failure"]["details"]["vendor"], "V1");
    assert_eq!(queue[0]["input"]["details"]["vendor"], "V1");
    assert_eq!(queue[0]["attempts"].as_array().unwrap().len(), 1);

    // A person supplies the output by hand, skips, or aborts.
    let url = |run: &str, action: &str| format!("/v1/exceptions/{run}/lookup/{action}");
    let missing = server.admin("POST", &url(&runs[0], "resolve"), "{}");
    assert_eq!(missing.json()["error"]["field"], "output");
    let resolved = server.admin(
        "POST",
        &url(&runs[0], "resolve"),
        r#"{"output":{"id":"ACME"}}"#,
    );
    assert_eq!(resolved.status, 202, "{}", resolved.body);
    let done = server.status_becomes(&runs[0], "succeeded");
    assert_eq!(done["output"]["vendor"]["id"], "ACME");

    server.admin("POST", &url(&runs[1], "skip"), "");
    let skipped = server.status_becomes(&runs[1], "succeeded");
    assert_eq!(skipped["output"]["vendor"], Value::Null);

    let aborted = server.admin("POST", &url(&runs[2], "abort"), r#"{"reason":"fraud"}"#);
    assert_eq!(aborted.status, 202);
    server.status_becomes(&runs[2], "cancelled");

    assert_eq!(
        server.admin("GET", "/v1/exceptions", "").json(),
        serde_json::json!([])
    );
    // A step that is not (or no longer) in the queue is refused.
    let stale = server.admin("POST", &url(&runs[0], "retry"), "");
    assert_eq!(
        (stale.status, stale.code()),
        (409, "not_an_exception".into())
    );

    // Prometheus sees the same: runs by status, the failed calls, the completed steps.
    let metrics = server.admin("GET", "/metrics", "");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    for line in [
        "baton_runs{status=\"succeeded\"} 2",
        "baton_runs{status=\"cancelled\"} 1",
        "baton_runs{status=\"waiting\"} 0",
        "baton_plugin_call_failures_total{plugin=\"echo\",code=\"unknown_vendor\"} 3",
        "baton_plugin_call_duration_seconds_count{plugin=\"echo\"} 3",
        "baton_queue_depth{queue=\"writer\"}",
    ] {
        assert!(metrics.body.contains(line), "{line} in\n{}", metrics.body);
    }
    assert!(
        metrics
            .body
            .contains("baton_step_duration_seconds_bucket{kind=\"call\",le=\"+Inf\"}")
    );
    assert_eq!(
        server.request("GET", "/metrics", None, &[], b"").status,
        401
    );
}

#[test]
fn a_flood_of_malformed_requests_is_turned_away_and_other_clients_are_served() {
    use baton_tests::http::request_from;
    use std::net::Ipv4Addr;
    let server = Server::start_with(
        "allow_unsigned = true\n[server]\nbad_request_burst = 20\nbad_request_rate = 1\n",
        &["echo"],
    );
    assert_eq!(server.admin("POST", "/v1/workflows", GREET).status, 201);
    let flooder = Ipv4Addr::new(127, 0, 0, 2);
    let started = std::time::Instant::now();
    // Four threads from 127.0.0.2: no token, broken JSON, unknown routes.
    let flood: Vec<_> = (0..4)
        .map(|i| {
            let address = server.address.clone();
            let admin = server.admin.clone();
            std::thread::spawn(move || {
                (0..60)
                    .map(|n| {
                        let answer = match (i + n) % 3 {
                            0 => request_from(flooder, &address, "GET", "/v1/runs", None, &[], b""),
                            1 => request_from(
                                flooder,
                                &address,
                                "POST",
                                "/v1/workflows/greet/runs",
                                Some(&admin),
                                &[("Content-Type", "application/json")],
                                b"{not json",
                            ),
                            _ => request_from(
                                flooder,
                                &address,
                                "GET",
                                "/v1/nope",
                                Some(&admin),
                                &[],
                                b"",
                            ),
                        };
                        (answer.status, answer)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Meanwhile a well-behaved client from 127.0.0.1 is served every time.
    for n in 0..30 {
        let run = server.admin(
            "POST",
            "/v1/workflows/greet/runs?wait=5s",
            &format!(r#"{{"id":"F-{n}"}}"#),
        );
        assert_eq!(run.status, 201, "{}", run.body);
        assert_eq!(run.json()["status"], "succeeded");
    }
    let answers: Vec<_> = flood.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let refused = answers.iter().filter(|(s, _)| *s == 429).count();
    let heard = answers.len() - refused;
    assert!(
        answers
            .iter()
            .all(|(s, _)| [400, 401, 404, 429].contains(s)),
        "only refusals: {:?}",
        answers.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    // The budget: 20 at once, 1 a second, plus the four requests in flight.
    assert!(
        (heard as f64) <= 20.0 + elapsed + 4.0,
        "{heard} refusals were worked through in {elapsed:.1} s"
    );
    assert!(refused > 100, "{refused} of 240 were turned away");
    let (_, turned_away) = answers.iter().find(|(s, _)| *s == 429).unwrap();
    assert_eq!(turned_away.code(), "too_many_bad_requests");
    assert!(
        turned_away.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.2")
    );
    let wait: u64 = turned_away.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&wait), "Retry-After: {wait}");

    // The budget belongs to the address: even a good request waits, then is heard.
    let good = |from| {
        request_from(
            from,
            &server.address,
            "GET",
            "/v1/runs",
            Some(&server.admin),
            &[],
            b"",
        )
    };
    // Spend what refilled since the flood, then even a good request is turned away.
    let spent = (0..30).any(|_| {
        request_from(flooder, &server.address, "GET", "/v1/nope", None, &[], b"").status == 429
    });
    assert!(spent);
    assert_eq!(good(flooder).status, 429);
    std::thread::sleep(std::time::Duration::from_secs(wait));
    assert_eq!(good(flooder).status, 200);
    assert_eq!(good(Ipv4Addr::new(127, 0, 0, 3)).status, 200);
}

#[test]
fn slow_and_greedy_clients_are_cut_off_and_others_are_served() {
    use baton_tests::http::{connect_from, request_from};
    use std::io::{Read, Write};
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};
    let server = Server::start_with(
        "allow_unsigned = true\n[server]\nheader_timeout_ms = 600\nmax_connections_per_address = 3\n",
        &["echo"],
    );
    let healthy = |from: Ipv4Addr| {
        let answer = request_from(from, &server.address, "GET", "/healthz", None, &[], b"");
        answer.status == 200
    };
    // Whether the server closed `stream`: a read sees the end (or a reset) within `wait`.
    let closed_within = |stream: &mut std::net::TcpStream, wait: Duration| {
        stream.set_read_timeout(Some(wait)).unwrap();
        let mut buffer = [0u8; 512];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => return true,
                Ok(_) => continue, // a 408 or similar before closing is fine
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false, // timed out: still open
            }
        }
    };

    // A slowloris client: its headers come a byte every 100 ms and never end.
    let slow = Ipv4Addr::new(127, 0, 0, 2);
    let mut loris = connect_from(slow, &server.address);
    loris
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    while started.elapsed() < Duration::from_secs(5) {
        if loris.write_all(b"a").is_err() || closed_within(&mut loris, Duration::from_millis(100)) {
            cut_off = true;
            break;
        }
        // Other clients are served while it trickles.
        assert!(healthy(Ipv4Addr::new(127, 0, 0, 1)));
    }
    let took = started.elapsed();
    assert!(
        cut_off,
        "a client still sending headers after 5 s was not cut off"
    );
    assert!(
        took >= Duration::from_millis(500),
        "cut off after {took:?}, before its time"
    );

    // A client that opens connections and sends nothing holds at most three; a fourth
    // is closed at once, and the three are closed once their header time is up.
    let greedy = Ipv4Addr::new(127, 0, 0, 3);
    let mut held: Vec<_> = (0..3)
        .map(|_| connect_from(greedy, &server.address))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut fourth = connect_from(greedy, &server.address);
    assert!(
        closed_within(&mut fourth, Duration::from_millis(300)),
        "a fourth connection was kept"
    );
    assert!(
        !closed_within(&mut held[0], Duration::from_millis(100)),
        "a held connection was closed early"
    );
    assert!(
        healthy(Ipv4Addr::new(127, 0, 0, 1)),
        "another address is not capped"
    );
    for stream in &mut held {
        assert!(
            closed_within(stream, Duration::from_secs(3)),
            "an idle connection was kept past its header time"
        );
    }
    // Their slots came back: the same address is served again.
    assert!(healthy(greedy));
}
