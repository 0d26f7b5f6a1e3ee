//! The `baton` CLI as a client of a running server (`--server`): workflows, runs, tokens,
//! the task inbox, the exception queue and the audit log, all over HTTP while the server
//! holds the database.

use baton_tests::http::Server;
use baton_tests::{baton_fails, baton_ok};
use serde_json::Value;

const FLOW: &str = r#"
name: invoice
key: .input.id
steps:
  - id: lookup
    call: echo/fail
    input: { code: '"unknown_vendor"', message: '"no vendor " + .input.id', retryable: false }
    on_error: escalate
  - id: approve
    human: { title: Approve the invoice }
  - id: book
    call: echo/echo
    input: { message: '"booked " + .steps.lookup.output.id' }
"#;

struct Client<'a> {
    server: &'a Server,
    url: String,
}

impl Client<'_> {
    fn args<'b>(&'b self, args: &[&'b str]) -> Vec<&'b str> {
        let mut all = vec!["--server", self.url.as_str()];
        all.extend_from_slice(args);
        all
    }

    fn ok(&self, args: &[&str]) -> String {
        baton_ok(
            &self.server.data(),
            self.server.dir.path(),
            &self.args(args),
        )
        .0
    }

    fn fails(&self, args: &[&str]) -> String {
        baton_fails(
            &self.server.data(),
            self.server.dir.path(),
            &self.args(args),
        )
        .1
    }
}

#[test]
fn the_cli_works_a_running_server_over_http() {
    let server = Server::start(&["echo"]);
    let cli = Client {
        server: &server,
        url: format!("http://{}", server.address),
    };
    std::fs::write(server.dir.path().join("invoice.yaml"), FLOW).unwrap();

    // The token defaults to DATA/admin.token: the admin.
    let applied = cli.ok(&["workflow", "apply", "invoice.yaml"]);
    assert!(
        applied.starts_with("applied invoice version 1"),
        "{applied}"
    );
    assert!(cli.ok(&["workflow", "list"]).contains("invoice"));
    assert!(cli.ok(&["plugin", "list"]).contains("echo"));

    // Tokens are managed while the server runs.
    let bob = cli.ok(&["token", "create", "--user", "bob", "--role", "operator"]);
    std::fs::write(server.dir.path().join("bob.token"), bob.trim()).unwrap();
    let as_bob = |args: &[&str]| {
        let mut all = vec!["--token-file", "bob.token"];
        all.extend_from_slice(args);
        cli.ok(&all)
    };

    let started = cli.ok(&[
        "run",
        "start",
        "invoice",
        "--input",
        r#"{"id":"V-7"}"#,
        "--wait",
        "--json",
    ]);
    let run: Value = serde_json::from_str(&started).unwrap();
    assert_eq!(run["status"], "waiting", "{run}");
    let id = run["id"].as_str().unwrap().to_owned();

    // The exception queue: the vendor is unknown; a person supplies it.
    let queue = cli.ok(&["exception", "list"]);
    assert!(
        queue.contains(&id) && queue.contains("unknown_vendor"),
        "{queue}"
    );
    cli.ok(&[
        "exception",
        "resolve",
        &id,
        "lookup",
        "--output",
        r#"{"id":"ACME"}"#,
    ]);

    // The task inbox, as bob.
    let mut inbox = String::new();
    for _ in 0..250 {
        inbox = as_bob(&["task", "list"]);
        if inbox.contains(&id) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(inbox.contains("Approve the invoice"), "{inbox}");
    as_bob(&["task", "claim", &id, "approve"]);
    as_bob(&[
        "task",
        "complete",
        &id,
        "approve",
        "approved",
        "--comment",
        "fine",
    ]);
    let done = server.status_becomes(&id, "succeeded");
    assert_eq!(done["output"]["message"], "booked ACME");
    let shown = cli.ok(&["run", "show", &id]);
    assert!(shown.contains("succeeded"), "{shown}");
    let listed: Value =
        serde_json::from_str(&cli.ok(&["run", "list", "--json", "--status", "succeeded"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // The audit log: verified, and exported with bob in it.
    assert!(cli.ok(&["audit", "verify"]).starts_with("ok: 1 runs"));
    let export = cli.ok(&["audit", "export", "--run", &id]);
    assert!(
        export
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
    assert!(export.contains("\"actor\":\"user:bob\""), "{export}");

    // Errors name what went wrong.
    let err = cli.fails(&["--token-file", "invoice.yaml", "run", "list"]);
    assert!(err.contains("is not a token"), "{err}");
    std::fs::write(server.dir.path().join("wrong.token"), "bt_nope\n").unwrap();
    let err = cli.fails(&["--token-file", "wrong.token", "run", "list"]);
    assert!(
        err.contains("unknown or revoked (HTTP 401, unauthorized"),
        "{err}"
    );
    let err = cli.fails(&[
        "run",
        "start",
        "invoice",
        "--input",
        r#"{"id":"V-8"}"#,
        "--version",
        "9",
    ]);
    assert!(err.contains("no version 9"), "{err}");
    let err = baton_fails(
        &server.data(),
        server.dir.path(),
        &["--server", "http://127.0.0.1:9", "run", "list"],
    )
    .1;
    assert!(err.contains("cannot reach the Baton server"), "{err}");
}
