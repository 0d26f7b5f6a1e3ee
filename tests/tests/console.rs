//! The web console in a real browser (headless Chromium over WebDriver) against the
//! real `baton serve`: sign in, watch a run appear live, approve a task and watch the
//! run finish, fix an exception with edited input, and a viewer refused an action.
//! Every page's screenshot goes to `target/console-screenshots/`.

use baton_tests::browser::Browser;
use baton_tests::http::Server;
use baton_tests::workspace_root;
use std::path::PathBuf;

const EXPENSE: &str = r#"
name: expense
description: Approve an expense, then pay it after a short cool-off
key: .input.id
steps:
  - id: approve
    input: { amount: .input.amount, text: .input.text }
    human:
      title: Approve the expense
      form:
        type: object
        required: [reason]
        properties: { reason: { type: string, minLength: 3, title: Reason } }
    next: { approved: cool-off, rejected: refused }
  - id: cool-off
    wait: { for: 1500ms }
  - id: pay
    call: echo/echo
    input: { message: '"paid " + .input.id + ": " + .steps.approve.output.data.reason' }
    next: done
  - id: refused
    fail: { code: refused }
  - id: done
    end: '{paid: .steps.pay.output.message}'
"#;

/// The step's input has no `message` when the run's input lacks `text`: the plugin
/// refuses it, and the step waits in the exception queue for a person.
const NOTIFY: &str = r#"
name: notify
key: .input.id
steps:
  - id: say
    call: echo/echo
    input: { message: .input.text }
    on_error: escalate
"#;

/// A person checks what a plugin produced; their correction is what later steps use.
fn shots() -> PathBuf {
    workspace_root().join("target/console-screenshots")
}

fn start() -> Server {
    let server = Server::start(&["echo"]);
    for workflow in [EXPENSE, NOTIFY, baton_tests::READING] {
        let applied = server.admin("POST", "/v1/workflows", workflow);
        assert_eq!(applied.status, 201, "{}", applied.body);
    }
    server
}

fn trigger(server: &Server, workflow: &str, body: &str) -> String {
    let started = server.admin("POST", &format!("/v1/workflows/{workflow}/runs"), body);
    assert!(started.status < 300, "{}", started.body);
    started.json()["id"].as_str().unwrap().to_owned()
}

/// Waits up to 10 s for `ready`.
fn until(mut ready: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits until the live page has not refreshed itself for half a second, so elements
/// found next are not replaced under the test.
fn settled(browser: &Browser) {
    let refreshed = || {
        browser.script(
            "return document.getElementById('main').dataset.refreshed || '';",
            vec![],
        )
    };
    let mut last = refreshed();
    let mut quiet_since = std::time::Instant::now();
    until(
        || {
            let now = refreshed();
            if now != last {
                last = now;
                quiet_since = std::time::Instant::now();
            }
            quiet_since.elapsed() > std::time::Duration::from_millis(500)
        },
        "the page stops refreshing",
    );
}

/// Signs in through the form, starting from `path` (which redirects to sign-in).
fn sign_in(browser: &Browser, server: &Server, token: &str, path: &str) {
    browser.goto(&format!("http://{}{path}", server.address));
    browser.find("#token").fill(token);
    browser.find("form button[type=submit]").click();
    browser.wait_for("header.top .who", "");
    assert!(
        browser.url().ends_with(path),
        "back to {path}: {}",
        browser.url()
    );
}

#[test]
fn an_operator_watches_runs_live_approves_and_fixes_an_exception() {
    let server = start();
    let olga = server.token("olga", "operator");
    let browser = Browser::start(&shots());

    // Signing in: a wrong token is refused with a message; the right one comes back
    // to the page asked for.
    browser.goto(&format!("http://{}/runs", server.address));
    assert!(
        browser.url().contains("/login?next=%2Fruns"),
        "{}",
        browser.url()
    );
    browser.find("#token").fill("bt_not-a-token");
    browser.find("form button[type=submit]").click();
    browser.wait_for("#login-error", "unknown or revoked");
    browser.screenshot("01-sign-in-refused");
    sign_in(&browser, &server, &olga, "/runs");
    browser.screenshot("02-runs-empty");

    // A run started elsewhere appears without a reload: the marker set on this page
    // survives, so the page was not loaded again.
    browser.script("window.__baton_marker = 42; return true;", vec![]);
    let run = trigger(
        &server,
        "expense",
        r#"{"id":"EXP-7","amount":120,"text":"taxi"}"#,
    );
    let row = browser.wait_for(&format!("tr[data-run='{run}']"), "waiting");
    assert!(row.text().contains("EXP-7"), "{}", row.text());
    assert_eq!(
        browser.script("return window.__baton_marker;", vec![]),
        42,
        "the list updated in place"
    );
    browser.wait_for("span.count[data-status=waiting]", "1");
    browser.screenshot("03-runs-live");

    // The task inbox: the form generated from the task's schema refuses a too-short
    // reason with the API's message, then approves.
    browser.goto(&format!("http://{}/tasks", server.address));
    browser.wait_for("article.task", "Approve the expense");
    settled(&browser);
    let card = browser.wait_for("article.task", "Approve the expense");
    assert!(card.text().contains("EXP-7"), "{}", card.text());
    browser.screenshot("04-task-inbox");
    card.find("input[name='data.reason']").fill("ok");
    card.find("button[value=approved]").click();
    browser.wait_for("article.task .form-status", "invalid_data");
    card.find("input[name='data.reason']").fill("client visit");
    card.find("textarea[name=comment]").fill("receipt attached");
    card.find("button[value=approved]").click();
    browser.wait_for("main", "Nothing waits for you.");

    // The run's timeline: the decision and who made it, then the run finishing live
    // after its cool-off.
    browser.goto(&format!("http://{}/runs/{run}", server.address));
    browser.wait_for("#step-approve", "decided by user:olga");
    browser.wait_for("h1", "succeeded");
    browser.wait_for("#step-pay", "completed");
    browser.wait_for("main", "paid EXP-7: client visit");
    browser.screenshot("05-run-finished");

    // An exception: the step's input is edited in the queue and retried; the run
    // resumes and finishes with the corrected input.
    let failing = trigger(&server, "notify", r#"{"id":"N-1"}"#);
    browser.goto(&format!("http://{}/exceptions", server.address));
    browser.wait_for("article.exception", "invalid_input");
    settled(&browser);
    let exception = browser.wait_for("article.exception", "invalid_input");
    assert!(exception.text().contains("N-1"), "{}", exception.text());
    browser.screenshot("06-exception-queue");
    let input = exception.find("textarea[name=input]");
    input.fill(r#"{"message": "fixed by hand"}"#);
    exception.find("form[data-api$='/retry'] button").click();
    browser.wait_for("main", "No exceptions");
    browser.goto(&format!("http://{}/runs/{failing}", server.address));
    browser.wait_for("h1", "succeeded");
    browser.wait_for("#step-say", "completed");
    browser.wait_for("main", "fixed by hand");
    browser.screenshot("07-exception-fixed");
    let done = server.status_becomes(&failing, "succeeded");
    assert_eq!(done["output"]["message"], "fixed by hand", "{done}");
    let log = server
        .admin("GET", &format!("/v1/audit?run={failing}"), "")
        .json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "user:olga"),
        "the retry is olga's: {log}"
    );

    // The other pages: plugins, a workflow's graph, and the audit log with a verify.
    browser.goto(&format!("http://{}/plugins", server.address));
    let plugin = browser.wait_for("article.plugin", "echo");
    assert!(plugin.text().contains("unsigned"), "{}", plugin.text());
    assert!(plugin.text().contains("calls"), "{}", plugin.text());
    browser.screenshot("08-plugins");
    browser.goto(&format!("http://{}/workflows/expense", server.address));
    for step in ["approve", "cool-off", "pay", "refused", "done"] {
        browser.wait_for("figure.graph", step);
    }
    browser.screenshot("09-workflow-graph");
    browser.goto(&format!("http://{}/audit?actor=user:olga", server.address));
    browser.wait_for("table.audit", &run);
    browser.find("#verify").click();
    browser.wait_for("#verify-result", "Intact");
    browser.screenshot("10-audit-verified");

    // An unknown page is a readable page, not a blank one.
    browser.goto(&format!("http://{}/runs/no-such-run", server.address));
    browser.wait_for("[role=alert]", "no run no-such-run");
    browser.screenshot("11-error");
}

#[test]
fn a_viewer_sees_everything_and_is_refused_every_action() {
    let server = start();
    let failing = trigger(&server, "notify", r#"{"id":"N-2"}"#);
    server.status_becomes(&failing, "waiting");
    let vic = server.token("vic", "viewer");
    let browser = Browser::start(&shots());
    sign_in(&browser, &server, &vic, "/exceptions");

    // The controls are there but disabled, saying why.
    let exception = browser.wait_for("article.exception", "N-2");
    let note = exception.find(".refusal");
    assert!(
        note.text()
            .contains("role viewer, which may not steer runs"),
        "{}",
        note.text()
    );
    browser.screenshot("12-viewer-exceptions");

    // Forced anyway (the disabled attribute removed), the server refuses it and the
    // page says so; the exception stays.
    browser.script(
        "document.querySelectorAll('fieldset').forEach(f => f.disabled = false); return true;",
        vec![],
    );
    exception.find("form[data-api$='/skip'] button").click();
    browser.wait_for(
        "form[data-api$='/skip'] .form-status",
        "may not steer runs or decide tasks [forbidden]",
    );
    browser.screenshot("13-viewer-refused");
    let queue = server.admin("GET", "/v1/exceptions", "").json();
    assert_eq!(queue.as_array().unwrap().len(), 1, "{queue}");

    // A viewer's inbox has no "everything" view, and signing out ends the session.
    browser.goto(&format!("http://{}/tasks?all=true", server.address));
    browser.wait_for("main", "Nothing waits for you.");
    browser.find("header.top .who button").click();
    browser.wait_for("h1", "Sign in");
    browser.goto(&format!("http://{}/runs", server.address));
    assert!(browser.url().contains("/login"), "{}", browser.url());
}

#[test]
fn a_reviewer_accepts_one_reading_and_corrects_another() {
    let server = start();
    let ana = server.token("ana", "operator");
    let accepted = trigger(&server, "reading", r#"{"id":"R-1","text":"ACME Corp"}"#);
    let corrected = trigger(&server, "reading", r#"{"id":"R-2","text":"G1obex"}"#);
    for run in [&accepted, &corrected] {
        server.status_becomes(run, "waiting");
    }
    let browser = Browser::start(&shots());
    sign_in(&browser, &server, &ana, "/tasks");

    // Each review shows a field per property of the action's output schema, filled
    // with what the plugin produced and showing it beside the field.
    let card = |key: &str| browser.wait_for("article.task", key);
    let first = card("R-1");
    let field = first.find("input[name='output.message']");
    assert_eq!(field.property("value").as_deref(), Some("ACME Corp"));
    assert!(
        first.text().contains("AI read: ACME Corp"),
        "{}",
        first.text()
    );
    browser.screenshot("14-review");
    first.find("button[value=approved]").click();
    server.status_becomes(&accepted, "succeeded");
    until(
        || browser.find_all("article.task").len() == 1,
        "R-1 leaves the inbox",
    );
    settled(&browser);

    let second = card("R-2");
    second.find("input[name='output.message']").fill("Globex");
    second.find("button[value=approved]").click();
    browser.wait_for("main", "Nothing waits for you.");

    assert_eq!(
        server.status_becomes(&accepted, "succeeded")["output"]["message"],
        "ACME Corp"
    );
    assert_eq!(
        server.status_becomes(&corrected, "succeeded")["output"]["message"],
        "Globex"
    );
    let rates = server.admin("GET", "/v1/feedback", "").json();
    assert_eq!(rates[0]["reviewed"], 2, "{rates}");
    assert_eq!(
        rates[0]["corrected"], 1,
        "only the changed reading: {rates}"
    );
}
