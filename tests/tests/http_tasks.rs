//! People in the loop over HTTP, against the real `baton serve`: the task inbox,
//! approval by a second identity, segregation of duties, claims, N-of-M approval, SLA
//! escalation on a durable timer, and reviews whose corrections reach the plugin.

use baton_tests::http::{Response, Server};
use serde_json::{Value, json};

const EXPENSE: &str = r#"
name: expense
key: .input.id
steps:
  - id: approve
    input: { amount: .input.amount, manager: .input.manager }
    human:
      title: Approve the expense
      assignees: [role:operator]
      not_by: [requester, .input.manager]
      form:
        type: object
        required: [reason]
        properties: { reason: { type: string, minLength: 3 } }
    next: { approved: pay, rejected: end }
  - id: pay
    call: echo/echo
    input: { message: '"paid " + .input.id + " because " + .steps.approve.output.data.reason' }
"#;

const BOARD: &str = r#"
name: board
key: .input.id
steps:
  - id: vote
    human:
      title: Board approval
      approvals: 2
    next: { approved: end, rejected: refuse }
  - id: refuse
    fail: { code: refused }
"#;

const URGENT: &str = r#"
name: urgent
key: .input.id
steps:
  - id: sign
    human:
      title: Sign within the SLA
      assignees: [ana]
      due: 300ms
      escalate_to: [role:viewer]
"#;

fn start(server: &Server, token: &str, workflow: &str, input: Value) -> String {
    let started = server.as_user(
        token,
        "POST",
        &format!("/v1/workflows/{workflow}/runs?wait=10s"),
        &input.to_string(),
    );
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.json()["status"], "waiting", "{}", started.body);
    started.json()["id"].as_str().unwrap().to_owned()
}

fn act(server: &Server, token: &str, run: &str, step: &str, action: &str, body: Value) -> Response {
    server.as_user(
        token,
        "POST",
        &format!("/v1/tasks/{run}/{step}/{action}"),
        &body.to_string(),
    )
}

fn inbox(server: &Server, token: &str) -> Vec<Value> {
    let listed = server.as_user(token, "GET", "/v1/tasks", "");
    assert_eq!(listed.status, 200, "{}", listed.body);
    listed.json().as_array().unwrap().clone()
}

/// Polls the task of the first step of `run` until `done` holds (the run applies a
/// claim or an approval just after the request is stored).
fn task_when(server: &Server, run: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut task = Value::Null;
    for _ in 0..250 {
        task =
            server.admin("GET", &format!("/v1/runs/{run}"), "").json()["steps"][0]["task"].take();
        if done(&task) {
            return task;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the task of run {run} did not change as expected: {task}");
}

fn refused(response: &Response) -> (u16, String) {
    (response.status, response.code())
}

#[test]
fn a_second_person_approves_and_the_requester_may_not() {
    let server = Server::start(&["echo"]);
    assert_eq!(server.admin("POST", "/v1/workflows", EXPENSE).status, 201);
    let ana = server.token("ana", "operator");
    let bob = server.token("bob", "operator");
    let carol = server.token("carol", "operator");
    let vera = server.token("vera", "viewer");

    let run = start(
        &server,
        &ana,
        "expense",
        json!({"id": "E-1", "amount": 120, "manager": "carol"}),
    );
    // The inbox shows a task only to those who could decide it.
    assert!(
        inbox(&server, &ana).is_empty(),
        "the requester sees nothing"
    );
    assert!(inbox(&server, &carol).is_empty(), "nor does the manager");
    assert!(
        inbox(&server, &vera).is_empty(),
        "viewers are not assignees"
    );
    let tasks = inbox(&server, &bob);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["run_id"], run.as_str());
    assert_eq!(tasks[0]["title"], "Approve the expense");
    assert_eq!(
        tasks[0]["input"],
        json!({"amount": 120, "manager": "carol"})
    );
    assert_eq!(tasks[0]["outcomes"], json!(["approved", "rejected"]));
    assert_eq!(tasks[0]["form"]["required"], json!(["reason"]));
    assert_eq!(tasks[0]["excluded"], json!(["ana", "carol"]));

    let approve = json!({"outcome": "approved", "data": {"reason": "within budget"}});
    for (who, code) in [
        (&ana, "segregation_of_duties"),
        (&carol, "segregation_of_duties"),
        (&vera, "not_assignee"),
    ] {
        let answer = act(&server, who, &run, "approve", "complete", approve.clone());
        assert_eq!(refused(&answer), (403, code.into()), "{}", answer.body);
    }

    // Bob claims it; nobody else may decide while he holds it.
    assert_eq!(
        act(&server, &bob, &run, "approve", "claim", json!({})).status,
        202
    );
    task_when(&server, &run, |task| task["claimed_by"] == "bob");
    let admin = server.admin.clone();
    assert_eq!(
        refused(&act(
            &server,
            &admin,
            &run,
            "approve",
            "complete",
            approve.clone()
        )),
        (409, "claimed_by_other".into())
    );

    // The form and the outcomes are checked, and the field named.
    let bad = act(
        &server,
        &bob,
        &run,
        "approve",
        "complete",
        json!({"outcome": "approved", "data": {"reason": "ok"}}),
    );
    assert_eq!(refused(&bad), (422, "invalid_data".into()));
    assert_eq!(bad.json()["error"]["field"], "data");
    let bad = act(
        &server,
        &bob,
        &run,
        "approve",
        "complete",
        json!({"outcome": "maybe"}),
    );
    assert_eq!(refused(&bad), (422, "invalid_outcome".into()));
    assert_eq!(bad.json()["error"]["field"], "outcome");

    let done = act(&server, &bob, &run, "approve", "complete", approve);
    assert_eq!(done.status, 202, "{}", done.body);
    let run_view = server.status_becomes(&run, "succeeded");
    assert_eq!(
        run_view["output"]["message"],
        "paid E-1 because within budget"
    );
    assert_eq!(run_view["steps"][0]["decided_by"], "user:bob");
    assert!(inbox(&server, &bob).is_empty());
    // A decided task is no longer there to act on.
    let late = act(&server, &carol, &run, "approve", "claim", json!({}));
    assert_eq!(refused(&late), (409, "not_a_task".into()));

    // The audit trail names every actor, and every chain verifies.
    let trail = server
        .admin("GET", &format!("/v1/audit?run={run}"), "")
        .json();
    let acted: Vec<(String, String)> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"].is_string())
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    let pair = |t: &str, a: &str| (t.to_owned(), a.to_owned());
    assert_eq!(
        acted,
        [
            pair("run_started", "user:ana"),
            pair("task_claimed", "user:bob"),
            pair("decision", "user:bob"),
        ]
    );
    let bobs = server.admin("GET", "/v1/audit?actor=user:bob", "").json();
    assert_eq!(bobs.as_array().unwrap().len(), 2, "{bobs}");
    let admin_log = server
        .admin("GET", "/v1/audit?run=system&type=admin", "")
        .json();
    let admin_actions: Vec<(&str, &str)> = admin_log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    // The test installed the plugin with the CLI, before the server started.
    assert_eq!(admin_actions[0], ("plugin_installed", "echo@0.1.0"));
    assert!(admin_log[0]["actor"].as_str().unwrap().starts_with("cli"));
    assert_eq!(admin_actions[1], ("workflow_applied", "expense@1"));
    assert_eq!(admin_actions.len(), 6, "and four tokens: {admin_log}");
    let by_admin = &admin_log.as_array().unwrap()[1..];
    assert!(by_admin.iter().all(|e| e["actor"] == "user:admin"));
    let verified = server.admin("GET", "/v1/audit/verify", "").json();
    assert_eq!(verified["ok"], true, "{verified}");
    let export = server.admin("GET", &format!("/v1/audit/export?run={run}"), "");
    assert_eq!(export.body.lines().count(), trail.as_array().unwrap().len());
    assert!(export.body.lines().all(|l| l.contains("\"hash\":")));
}

#[test]
fn n_of_m_needs_distinct_approvers_and_one_rejection_decides() {
    let server = Server::start(&[]);
    assert_eq!(server.admin("POST", "/v1/workflows", BOARD).status, 201);
    let ana = server.token("ana", "operator");
    let bob = server.token("bob", "operator");
    let approve = json!({"outcome": "approved", "comment": "fine"});

    let run = start(&server, &server.admin, "board", json!({"id": "B-1"}));
    assert_eq!(
        refused(&act(&server, &ana, &run, "vote", "claim", json!({}))),
        (409, "not_claimable".into())
    );
    assert_eq!(
        act(&server, &ana, &run, "vote", "complete", approve.clone()).status,
        202
    );
    // One approval of two: still waiting, and ana may not approve twice.
    let task = task_when(&server, &run, |task| task["votes"].is_array());
    assert_eq!(task["votes"][0]["user"], "ana", "{task}");
    assert!(inbox(&server, &ana).is_empty());
    assert_eq!(inbox(&server, &bob).len(), 1);
    assert_eq!(
        refused(&act(
            &server,
            &ana,
            &run,
            "vote",
            "complete",
            approve.clone()
        )),
        (409, "already_voted".into())
    );
    assert_eq!(
        act(&server, &bob, &run, "vote", "complete", approve.clone()).status,
        202
    );
    let done = server.status_becomes(&run, "succeeded");
    let output = &done["steps"][0]["output"];
    assert_eq!(output["outcome"], "approved");
    assert_eq!(output["votes"].as_array().unwrap().len(), 2, "{output}");

    // Any other outcome is a veto.
    let vetoed = start(&server, &server.admin, "board", json!({"id": "B-2"}));
    act(&server, &ana, &vetoed, "vote", "complete", approve);
    act(
        &server,
        &bob,
        &vetoed,
        "vote",
        "complete",
        json!({"outcome": "rejected"}),
    );
    let failed = server.status_becomes(&vetoed, "failed");
    assert_eq!(failed["failure"]["code"], "refused");
}

#[test]
fn an_overdue_task_escalates_on_its_durable_timer() {
    let mut server = Server::start(&[]);
    assert_eq!(server.admin("POST", "/v1/workflows", URGENT).status, 201);
    let vera = server.token("vera", "viewer");
    let run = start(&server, &server.admin, "urgent", json!({"id": "U-1"}));
    assert!(
        inbox(&server, &vera).is_empty(),
        "not hers before it is due"
    );

    // The due time passes while the server is down: the timer survives the restart.
    assert!(server.stop());
    std::thread::sleep(std::time::Duration::from_millis(400));
    let server = server.restart();
    let mut tasks = Vec::new();
    for _ in 0..250 {
        tasks = inbox(&server, &vera);
        if !tasks.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(tasks.len(), 1, "escalated to role:viewer");
    assert_eq!(tasks[0]["escalated"], true);
    assert_eq!(tasks[0]["assignees"], json!(["ana", "role:viewer"]));
    let signed = act(
        &server,
        &vera,
        &run,
        "sign",
        "complete",
        json!({"outcome": "approved"}),
    );
    assert_eq!(signed.status, 202, "{}", signed.body);
    server.status_becomes(&run, "succeeded");
}

#[test]
fn review_corrections_are_filed_counted_and_served_to_the_plugin() {
    let server = Server::start(&["echo"]);
    assert_eq!(
        server
            .admin("POST", "/v1/workflows", baton_tests::READING)
            .status,
        201
    );
    let admin = server.admin.clone();

    let first = start(
        &server,
        &admin,
        "reading",
        json!({"id": "X-1", "text": "Acme Inc"}),
    );
    let tasks = inbox(&server, &admin);
    assert_eq!(tasks[0]["review"]["output"], json!({"message": "Acme Inc"}));
    assert_eq!(tasks[0]["review"]["plugin"], "echo");
    let corrected = json!({"outcome": "approved", "output": {"message": "ACME Incorporated"}});
    assert_eq!(
        act(&server, &admin, &first, "check", "complete", corrected).status,
        202
    );
    let done = server.status_becomes(&first, "succeeded");
    assert_eq!(done["output"]["message"], "ACME Incorporated");

    // Accepted unchanged: counted, but nothing to file.
    let second = start(
        &server,
        &admin,
        "reading",
        json!({"id": "X-2", "text": "Globex"}),
    );
    act(
        &server,
        &admin,
        &second,
        "check",
        "complete",
        json!({"outcome": "approved"}),
    );
    assert_eq!(
        server.status_becomes(&second, "succeeded")["output"]["message"],
        "Globex"
    );

    let rates = server.admin("GET", "/v1/feedback", "").json();
    assert_eq!(
        rates,
        json!([{"plugin": "echo", "action": "echo", "reviewed": 2, "corrected": 1, "acceptance_rate": 0.5}])
    );
    let export = server.admin("GET", "/v1/feedback/corrections?plugin=echo", "");
    assert_eq!(export.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = export
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", export.body);
    assert_eq!(lines[0]["original"], json!({"message": "Acme Inc"}));
    assert_eq!(
        lines[0]["corrected"],
        json!({"message": "ACME Incorporated"})
    );
    assert_eq!(lines[0]["input"], json!({"message": "Acme Inc"}));
    assert_eq!(lines[0]["actor"], "user:admin");
    assert!(
        lines[0]["plugin_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    // The plugin reads the correction through its `feedback` import.
    let learn = "name: learn\nsteps:\n  - id: ask\n    call: echo/feedback\n    input: { action: '\"echo\"', limit: 5 }\n";
    let applied = server.admin("POST", "/v1/workflows", learn);
    assert_eq!(applied.status, 201, "{}", applied.body);
    let learned = server.admin("POST", "/v1/workflows/learn/runs?wait=10s", "{}");
    let corrections = &learned.json()["output"]["corrections"];
    assert_eq!(
        corrections.as_array().map(Vec::len),
        Some(1),
        "{}",
        learned.body
    );
    assert!(
        corrections[0]["corrected"]
            .to_string()
            .contains("ACME Incorporated"),
        "{corrections}"
    );
}
