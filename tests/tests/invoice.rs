//! The invoice demo end to end: the real `invoice-demo` binary builds and starts the
//! stand-ins and `baton serve`, installs the signed first-party plugins and submits the
//! sample batch; the test then acts as the people of the demo over HTTP and checks every
//! invoice's final state, who acted, what was paid and which messages went out.

use baton_tests::http::{Response, request};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const WORKFLOW: &str = "invoice-approval";
const STANDIN_KEY: &str = "demo-key";

/// A running `invoice-demo`, and what it printed about where things are.
struct Demo {
    child: Child,
    data: PathBuf,
    /// `127.0.0.1:PORT` of `baton serve`.
    api: String,
    baton_pid: u32,
    /// `127.0.0.1:PORT` of each stand-in, by system.
    standins: BTreeMap<String, String>,
    /// Everything it printed up to "Serving until Ctrl-C." (or its exit).
    printed: String,
}

impl Demo {
    /// Starts the demo on `data` and reads its output until it serves.
    fn start(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Demo {
        Demo::start_until(data, extra, env, "Serving until Ctrl-C.")
    }

    /// Starts the demo on `data` and reads its output up to the line `until` (or its end).
    fn start_until(data: &Path, extra: &[&str], env: &[(&str, &str)], until: &str) -> Demo {
        // The demo's own `cargo build` selects fewer packages than `cargo test
        // --workspace`, so features unify differently and it would rebuild the host: the
        // test builds what the demo needs the test's way and says so with --no-build.
        baton_tests::baton_bin();
        baton_tests::standins::standins_bin();
        baton_tests::plugin_wasm("ai_extract");
        let mut child = Command::new(baton_tests::demo_bin())
            .arg("--no-build")
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("invoice-demo starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut demo = Demo {
            child,
            data: data.to_owned(),
            api: String::new(),
            baton_pid: 0,
            standins: BTreeMap::new(),
            printed: String::new(),
        };
        for line in lines.by_ref() {
            let line = line.unwrap();
            demo.printed.push_str(&line);
            demo.printed.push('\n');
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["baton", "serve:", url, "(pid", pid, ..] => {
                    demo.api = address(url);
                    demo.baton_pid = pid.trim_end_matches(',').parse().unwrap();
                }
                [system @ ("erp" | "llm" | "payments" | "sink"), url] => {
                    demo.standins.insert(system.to_string(), address(url));
                }
                _ if line == until => break,
                _ => {}
            }
        }
        std::thread::spawn(move || for _ in lines {});
        demo
    }

    fn token(&self, user: &str) -> String {
        let file = if user == "admin" {
            self.data.join("admin.token")
        } else {
            self.data.join(format!("demo/people/{user}.token"))
        };
        std::fs::read_to_string(file).unwrap().trim().to_owned()
    }

    /// A request to `baton serve` as `user`.
    fn call(&self, user: &str, method: &str, path: &str, body: &Value) -> Response {
        let body = body_text(body);
        request(
            &self.api,
            method,
            path,
            Some(&self.token(user)),
            &[],
            body.as_bytes(),
        )
    }

    fn get(&self, path: &str) -> Value {
        let response = self.call("admin", "GET", path, &Value::Null);
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.json()
    }

    /// A stand-in's JSON at `path`.
    fn standin(&self, system: &str, method: &str, path: &str, body: &Value) -> Value {
        let body = body_text(body);
        let response = request(
            &self.standins[system],
            method,
            path,
            Some(STANDIN_KEY),
            &[],
            body.as_bytes(),
        );
        assert!(
            response.status < 300,
            "{system} {path}: {} {}",
            response.status,
            response.body
        );
        response.json()
    }

    /// Every run of the workflow by invoice id (its business key).
    fn runs(&self) -> BTreeMap<String, Value> {
        let list = self.get(&format!("/v1/runs?workflow={WORKFLOW}&limit=1000"));
        let list = list.as_array().unwrap();
        let runs: BTreeMap<String, Value> = list
            .iter()
            .map(|run| (run["key"].as_str().unwrap().to_owned(), run.clone()))
            .collect();
        assert_eq!(runs.len(), list.len(), "one run per invoice: {list:?}");
        runs
    }

    fn run_of(&self, invoice: &str) -> Value {
        let id = self.runs()[invoice]["id"].as_str().unwrap().to_owned();
        self.get(&format!("/v1/runs/{id}"))
    }

    /// Polls until the invoice's run has `status` (up to 30 s).
    fn status_becomes(&self, invoice: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let run = self.run_of(invoice);
            if run["status"] == status {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "{invoice} did not become {status}: {run}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls the inbox until the invoice's task at `step` is open (up to 30 s).
    fn task_opens(&self, invoice: &str, step: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let tasks = self.get("/v1/tasks?all=true");
            let open = tasks
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["key"] == invoice && t["path"] == step);
            if open {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{invoice} never waited at {step}: {tasks}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Decides the invoice's waiting task as `user`.
    fn decide(&self, user: &str, invoice: &str, step: &str, decision: &Value) -> Response {
        let run = self.runs()[invoice]["id"].as_str().unwrap().to_owned();
        self.call(
            user,
            "POST",
            &format!("/v1/tasks/{run}/{step}/complete"),
            decision,
        )
    }

    /// Stops the demo with Ctrl-C (SIGINT) and waits for it.
    fn interrupt(mut self) -> ExitStatus {
        signal("INT", self.child.id());
        self.child.wait().unwrap()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal("INT", self.child.id());
            let _ = self.child.wait();
        }
    }
}

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A request body: `null` sends none.
fn body_text(body: &Value) -> String {
    if body.is_null() {
        String::new()
    } else {
        body.to_string()
    }
}

/// `127.0.0.1:PORT` of `http://127.0.0.1:PORT/...`.
fn address(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.split('/').next().unwrap().to_owned()
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("run has no step {id}: {run}"))
}

/// The count on the summary line `label` of the demo's output.
fn summary_count(printed: &str, label: &str) -> Option<usize> {
    let summary = &printed[printed.find("== Summary")?..];
    summary.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(label)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn feedback_for_extract(demo: &Demo) -> Value {
    let feedback = demo.get("/v1/feedback");
    feedback
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["plugin"] == "ai-extract" && f["action"] == "extract-invoice")
        .cloned()
        .unwrap_or_else(|| panic!("no feedback for ai-extract/extract-invoice: {feedback}"))
}

#[test]
fn the_sample_batch_flows_stops_for_people_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = Demo::start(&data, &[], &[]);
    assert!(
        !demo.api.is_empty(),
        "the demo did not start:\n{}",
        demo.printed
    );

    // Where the batch stands once it settles, as the demo's summary says and the API shows.
    let runs = demo.runs();
    assert_eq!(runs.len(), 20, "{}", demo.printed);
    let straight: Vec<String> = (1001..=1012).map(|n| format!("INV-{n}")).collect();
    for invoice in &straight {
        assert_eq!(
            runs[invoice]["status"], "succeeded",
            "{invoice}: {}",
            runs[invoice]
        );
        assert_eq!(runs[invoice]["output"]["status"], "paid", "{invoice}");
    }
    assert_eq!(runs["INV-1017"]["output"]["status"], "rejected");
    let tasks = demo.get("/v1/tasks?all=true");
    let mut waiting: Vec<(String, String)> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_owned(),
                t["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    waiting.sort();
    assert_eq!(
        waiting,
        [
            ("INV-1013", "review-reading"),
            ("INV-1014", "review-reading"),
            ("INV-1015", "mismatch-review"),
            ("INV-1016", "mismatch-review"),
            ("INV-1020", "review-reading"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let exceptions = demo.get("/v1/exceptions");
    let codes: BTreeMap<String, String> = exceptions
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                format!(
                    "{} {}",
                    e["path"].as_str().unwrap(),
                    e["failure"]["code"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(codes["INV-1018"], "vendor unknown_vendor", "{exceptions}");
    assert_eq!(codes["INV-1019"], "po upstream_unavailable", "{exceptions}");
    assert_eq!(codes.len(), 2, "{exceptions}");
    for (label, count) in [
        ("paid straight through", 12),
        ("rejected (submitter emailed)", 1),
        ("waiting for a person", 5),
        ("in the exception queue", 2),
        ("failed", 0),
    ] {
        assert_eq!(
            summary_count(&demo.printed, label),
            Some(count),
            "{label}:\n{}",
            demo.printed
        );
    }

    // The AI misread Umbrella's PO number (0 read as O) with low confidence: alice corrects it.
    let misread = demo.run_of("INV-1020");
    let original = step(&misread, "extract")["output"].clone();
    assert_eq!(original["po_number"], "PO-5O20");
    assert!(original["confidence"].as_f64().unwrap() < 0.9);
    let mut corrected = original.clone();
    corrected["po_number"] = json!("PO-5020");
    let done = demo.decide(
        "alice",
        "INV-1020",
        "review-reading",
        &json!({"outcome": "confirmed", "output": corrected, "comment": "PO number misread"}),
    );
    assert_eq!(done.status, 202, "{}", done.body);
    demo.status_becomes("INV-1020", "succeeded");
    let rate_after_correction = feedback_for_extract(&demo);
    assert_eq!(
        rate_after_correction["corrected"], 1,
        "{rate_after_correction}"
    );

    // Large invoices: alice confirms the readings unchanged, so the acceptance rate rises.
    for invoice in ["INV-1013", "INV-1014"] {
        let run = demo.run_of(invoice);
        let reading = step(&run, "extract")["output"].clone();
        let done = demo.decide(
            "alice",
            invoice,
            "review-reading",
            &json!({"outcome": "confirmed", "output": reading}),
        );
        assert_eq!(done.status, 202, "{}", done.body);
    }
    // The decisions are committed once the next task has opened.
    demo.task_opens("INV-1013", "manager-approval");
    demo.task_opens("INV-1014", "manager-approval");
    let rate_now = feedback_for_extract(&demo);
    assert_eq!(rate_now["reviewed"], 3, "{rate_now}");
    assert!(
        rate_now["acceptance_rate"].as_f64().unwrap()
            > rate_after_correction["acceptance_rate"].as_f64().unwrap(),
        "{rate_after_correction} then {rate_now}"
    );

    // Manager approval: maria may not approve the invoice she submitted herself; omar may.
    let refused = demo.decide(
        "maria",
        "INV-1014",
        "manager-approval",
        &json!({"outcome": "approved"}),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.code(), "segregation_of_duties");
    for (user, invoice) in [("maria", "INV-1013"), ("omar", "INV-1014")] {
        let done = demo.decide(
            user,
            invoice,
            "manager-approval",
            &json!({"outcome": "approved", "comment": "ok"}),
        );
        assert_eq!(done.status, 202, "{}", done.body);
    }

    // Price mismatches: alice approves one and rejects the other.
    let done = demo.decide(
        "alice",
        "INV-1015",
        "mismatch-review",
        &json!({"outcome": "approved", "comment": "price rise agreed by phone"}),
    );
    assert_eq!(done.status, 202, "{}", done.body);
    let done = demo.decide(
        "alice",
        "INV-1016",
        "mismatch-review",
        &json!({"outcome": "rejected", "comment": "Not the agreed price."}),
    );
    assert_eq!(done.status, 202, "{}", done.body);

    // The unknown vendor is Soylent under another name: alice names the ERP's vendor.
    let vendor = demo.standin(
        "erp",
        "GET",
        "/api/vendors?name=Soylent%20Corporation",
        &Value::Null,
    )["vendors"][0]
        .clone();
    assert_eq!(vendor["id"], "V-006");
    let run = demo.runs()["INV-1018"]["id"].as_str().unwrap().to_owned();
    let done = demo.call(
        "alice",
        "POST",
        &format!("/v1/exceptions/{run}/vendor/resolve"),
        &json!({"output": vendor}),
    );
    assert_eq!(done.status, 202, "{}", done.body);

    // The ERP comes back; alice retries the step that escalated.
    demo.standin(
        "erp",
        "POST",
        "/control/outage",
        &json!({"po_number": "PO-5019", "down": false}),
    );
    let run = demo.runs()["INV-1019"]["id"].as_str().unwrap().to_owned();
    let done = demo.call(
        "alice",
        "POST",
        &format!("/v1/exceptions/{run}/po/retry"),
        &json!({}),
    );
    assert_eq!(done.status, 202, "{}", done.body);

    // The next invoice from the misread vendor is read right: the correction reached the prompt.
    let followup = std::fs::read_to_string(
        baton_tests::workspace_root().join("examples/invoice/followup/INV-1021.txt"),
    )
    .unwrap();
    let started = request(
        &demo.api,
        "POST",
        &format!("/v1/workflows/{WORKFLOW}/runs?wait=30s"),
        Some(&demo.token("intake")),
        &[("Idempotency-Key", "INV-1021")],
        json!({"invoice_id": "INV-1021", "document": followup, "submitted_by": "bob"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(started.status, 201, "{}", started.body);
    let run = demo.status_becomes("INV-1021", "succeeded");
    assert_eq!(step(&run, "extract")["output"]["po_number"], "PO-5021");
    assert_eq!(run["output"]["status"], "paid");
    let prompts = demo.standin("llm", "GET", "/control/requests", &Value::Null);
    let last = prompts
        .as_array()
        .or_else(|| prompts["requests"].as_array())
        .unwrap()
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.contains("PO-5020"),
        "the last prompt carries no correction: {last}"
    );

    // Final states.
    let paid: Vec<String> = straight
        .iter()
        .cloned()
        .chain(
            [
                "INV-1013", "INV-1014", "INV-1015", "INV-1018", "INV-1019", "INV-1020", "INV-1021",
            ]
            .map(String::from),
        )
        .collect();
    for invoice in &paid {
        let run = demo.status_becomes(invoice, "succeeded");
        assert_eq!(run["output"]["status"], "paid", "{invoice}: {run}");
    }
    for invoice in ["INV-1016", "INV-1017"] {
        let run = demo.status_becomes(invoice, "succeeded");
        assert_eq!(run["output"]["status"], "rejected", "{invoice}: {run}");
    }

    // Who acted.
    let actor = |invoice: &str, step_id: &str| {
        step(&demo.run_of(invoice), step_id)["output"]["actor"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(actor("INV-1020", "review-reading"), "user:alice");
    assert_eq!(actor("INV-1013", "manager-approval"), "user:maria");
    assert_eq!(actor("INV-1014", "manager-approval"), "user:omar");
    assert_eq!(actor("INV-1016", "mismatch-review"), "user:alice");
    for invoice in &paid {
        assert_eq!(demo.runs()[invoice]["started_by"], "user:intake");
    }
    let audit = demo
        .get("/v1/audit?actor=user:alice&limit=1000")
        .to_string();
    for invoice in ["INV-1018", "INV-1019", "INV-1020"] {
        let run = demo.runs()[invoice]["id"].as_str().unwrap().to_owned();
        assert!(audit.contains(&run), "alice's audit trail lacks {invoice}");
    }
    assert_eq!(demo.get("/v1/audit/verify")["ok"], true);

    // Exactly what was paid, posted and said.
    let payments = demo.standin("payments", "GET", "/v1/payments", &Value::Null);
    let mut references: Vec<String> = payments["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reference"].as_str().unwrap().to_owned())
        .collect();
    references.sort();
    assert_eq!(references, paid, "one payment per paid invoice: {payments}");
    let posted = demo.standin("erp", "GET", "/api/invoices", &Value::Null);
    assert_eq!(
        posted["invoices"].as_array().unwrap().len(),
        paid.len(),
        "{posted}"
    );
    let messages = demo.standin("sink", "GET", "/messages", &Value::Null)["messages"]
        .as_array()
        .unwrap()
        .clone();
    let chats = messages.iter().filter(|m| m["kind"] == "chat").count();
    assert_eq!(chats, paid.len(), "one chat message per paid invoice");
    let mails: Vec<(String, bool)> = messages
        .iter()
        .filter(|m| m["kind"] == "mail")
        .map(|m| {
            (
                m["to"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap().contains("Not the agreed price"),
            )
        })
        .collect();
    assert_eq!(mails.len(), 2, "{messages:?}");
    assert!(
        mails.contains(&("carol@example.com".into(), true)),
        "{mails:?}"
    );
    assert!(
        mails.iter().any(|(to, _)| to == "bob@example.com"),
        "{mails:?}"
    );

    // Ctrl-C stops it cleanly; a second demo reuses the data and duplicates nothing.
    assert!(demo.interrupt().success());
    let again = Demo::start(&data, &[], &[]);
    assert!(
        again.printed.contains("Summary of 20 invoices"),
        "{}",
        again.printed
    );
    assert_eq!(again.runs().len(), 21, "no run was started twice");
    let payments = again.standin("payments", "GET", "/v1/payments", &Value::Null);
    assert_eq!(
        payments["payments"].as_array().unwrap().len(),
        paid.len(),
        "no payment was made twice"
    );
    assert!(again.interrupt().success());
}

#[test]
fn a_payment_is_made_once_when_the_host_dies_after_paying() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Every pay call holds its result once the payment service has answered, so killing
    // the host then leaves a payment made and its completion not committed.
    let mut demo = Demo::start_until(
        &data,
        &["--invoices", "INV-1001", "--settle-timeout", "10m"],
        &[("BATON_FAULT_HOLD_AFTER_CALL", "payments/schedule-payment")],
        "== Submitting the batch",
    );
    let log = data.join("demo/baton.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("fault injection: holding the result of payments/schedule-payment")
    {
        assert!(
            Instant::now() < deadline,
            "the pay step never ran:\n{}",
            demo.printed
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let payments = demo.standin("payments", "GET", "/v1/payments", &Value::Null);
    assert_eq!(
        payments["payments"].as_array().unwrap().len(),
        1,
        "{payments}"
    );
    let run = demo.run_of("INV-1001");
    assert_eq!(
        run["status"], "running",
        "the completion is not committed: {run}"
    );
    signal("KILL", demo.baton_pid);
    assert!(
        !demo.child.wait().unwrap().success(),
        "the demo reports the dead server"
    );

    // After a restart the step runs again with the same idempotency key, and the payment
    // service still holds one payment for the invoice.
    let again = Demo::start(&data, &["--invoices", "INV-1001"], &[]);
    let run = again.status_becomes("INV-1001", "succeeded");
    assert_eq!(run["output"]["status"], "paid", "{run}");
    let pay = step(&run, "pay");
    assert_eq!(
        pay["output"]["id"], payments["payments"][0]["id"],
        "the same payment: {pay}"
    );
    let payments = again.standin("payments", "GET", "/v1/payments", &Value::Null);
    assert_eq!(
        payments["payments"].as_array().unwrap().len(),
        1,
        "{payments}"
    );
    assert_eq!(
        payments["requests"], 2,
        "the call was made again after the restart: {payments}"
    );
    let verified = again.get("/v1/audit/verify");
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(again.interrupt().success());
}
