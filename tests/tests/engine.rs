//! The workflow engine on real plugin components and a real redb file: every step kind,
//! retries, timeouts, escalation, operator controls, pinning and idempotent starts.

use baton::engine::state::{InboxMessage, RunStatus, StepStatus};
use baton::engine::task::{Decision, Person};
use baton::engine::{Committed, EngineError, StartRun, audit};
use baton_tests::stand_in::{Reply, StandIn};
use baton_tests::{INVOICE_CHECK, TestEngine, invoice_check_effect_free, matching_invoice, step};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An operator cancels run `id`.
async fn cancel(t: &TestEngine, id: &str) {
    let cancel = InboxMessage::Cancel {
        actor: "ops".into(),
        reason: None,
    };
    t.engine.command(id, cancel).await.unwrap();
}

fn assert_chains_intact(t: &TestEngine) {
    let report = audit::verify(t.engine.store()).unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_chain_their_outputs_through_mappings() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: chain
key: .input.id
steps:
  - id: first
    call: echo/echo
    input: { message: '"hello " + .input.name' }
  - id: second
    call: echo/echo
    input: { message: '.steps.first.output.message + "!"' }
  - id: context
    call: echo/context
    input: {}
"#,
    );
    let view = t.run("chain", json!({"id": "K-1", "name": "Ada"})).await;
    assert_eq!(view.run.status, RunStatus::Succeeded);
    assert_eq!(view.run.key.as_deref(), Some("K-1"));
    assert_eq!(
        step(&view, "second").output,
        Some(json!({"message": "hello Ada!"}))
    );
    // The run's output defaults to the last step's; the call context carries the
    // stable idempotency key of the step.
    let output = view.run.output.clone().unwrap();
    assert_eq!(output["step_id"], "context");
    assert_eq!(
        output["idempotency_key"],
        format!("{}/context/0", view.run.id)
    );
    assert_eq!(step(&view, "first").plugin.as_deref(), Some("echo@0.1.0"));
    assert_chains_intact(&t);
}

/// Inputs made only of plain paths are read straight from the run, not through jq:
/// they must give what jq gives, and leave what only jq can answer (an error) to jq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_path_inputs_read_as_jq_would() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: paths
key: .input.id
steps:
  - id: first
    call: echo/echo
    input: { message: .input.person.name }
  - id: second
    call: echo/echo
    input: { message: .steps.first.output.message }
  - id: keyed
    call: echo/echo
    input: { message: .key }
  - id: later
    call: echo/echo
    input: { message: .steps.never.output.message }
"#,
    );
    let view = t
        .run("paths", json!({"id": "K-7", "person": {"name": "Ada"}}))
        .await;
    assert_eq!(step(&view, "first").input, Some(json!({"message": "Ada"})));
    assert_eq!(step(&view, "second").input, Some(json!({"message": "Ada"})));
    assert_eq!(step(&view, "keyed").input, Some(json!({"message": "K-7"})));
    // A step that has not run reads as null, which the action's schema refuses.
    assert_eq!(step(&view, "later").input, Some(json!({"message": null})));
    assert_eq!(view.run.failure.as_ref().unwrap().code, "invalid_input");

    // Indexing a string is jq's error, named as jq names it.
    let view = t.run("paths", json!({"id": "K-8", "person": "Ada"})).await;
    let failure = view.run.failure.as_ref().unwrap();
    assert_eq!(failure.code, "input_mapping", "{failure:?}");
    assert!(
        failure.message.contains(".input.person.name"),
        "{failure:?}"
    );
    assert!(failure.message.contains("cannot index"), "{failure:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_routes_on_its_outcome() {
    let t = TestEngine::with_plugins(&["invoice_rules"]).await;
    t.apply(
        r#"
name: match
steps:
  - id: check
    rule: invoice-rules/three-way-match
    input: { invoice: .input.invoice, po: .input.po, receipt: .input.receipt }
    next: { approve: ok, review: look, reject: no }
  - id: ok
    end: '"approved"'
  - id: look
    end: '{review: .steps.check.output.reasons}'
  - id: no
    fail: { code: rejected, message: '.steps.check.output.reasons | join("; ")' }
"#,
    );
    let line = |price: f64| json!({"sku": "A", "quantity": 10, "unit_price": price});
    let input = |price: f64| {
        json!({
            "invoice": {"vendor": "V", "currency": "EUR", "lines": [line(price)], "total": price * 10.0},
            "po": {"vendor": "V", "currency": "EUR", "lines": [line(10.0)]},
            "receipt": {"lines": [{"sku": "A", "quantity": 10}]}
        })
    };
    let approved = t.run("match", input(10.0)).await;
    assert_eq!(approved.run.output, Some(json!("approved")));
    let review = t.run("match", input(10.5)).await;
    assert!(review.run.output.unwrap()["review"].is_array());
    let rejected = t.run("match", input(20.0)).await;
    assert_eq!(rejected.run.status, RunStatus::Failed);
    let failure = rejected.run.failure.unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.step.as_deref()),
        ("rejected", Some("no"))
    );
    assert!(failure.message.contains('A'), "{}", failure.message);
}

/// Each commit of run `run_id` received on `feed` so far, as `KIND PATH` per event.
fn commits_of(
    feed: &mut tokio::sync::broadcast::Receiver<Arc<Committed>>,
    run_id: &str,
) -> Vec<Vec<String>> {
    let mut commits = Vec::new();
    while let Ok(committed) = feed.try_recv() {
        if committed.run_id != run_id {
            continue;
        }
        commits.push(
            committed
                .events
                .iter()
                .map(|e| {
                    let event: audit::Event = serde_json::from_slice(&e.body).unwrap();
                    let kind = serde_json::to_value(&event.kind).unwrap();
                    format!(
                        "{} {}",
                        kind["type"].as_str().unwrap(),
                        kind["path"].as_str().unwrap_or("")
                    )
                })
                .collect(),
        );
    }
    commits
}

/// The position of event `what` in `commit`.
fn position(commit: &[String], what: &str) -> usize {
    commit
        .iter()
        .position(|e| e == what)
        .unwrap_or_else(|| panic!("no {what} in {commit:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_decision_shares_the_commit_of_the_step_that_fed_it() {
    let server = StandIn::start(|_| Reply::json(200, json!({"vendor": "V"})));
    let t = TestEngine::with_plugins(&["echo", "invoice_rules"]).await;
    t.allow("echo", &server);
    t.apply(INVOICE_CHECK);
    let input = matching_invoice(&server.url("/po"));
    let mut feed = t.engine.events();
    let view = t.run("invoice-check", input).await;
    assert_eq!(view.run.output, Some(json!({"message": "approve"})));

    // The start and fetch's attempt; fetch's completion with the rule's whole attempt
    // and done's start; done's completion and the finish. The rule's decision never
    // waits for a commit of its own.
    let commits = commits_of(&mut feed, &view.run.id);
    assert_eq!(commits.len(), 3, "{commits:#?}");
    let at = |what| position(&commits[1], what);
    assert!(at("step_completed fetch") < at("attempt_started check"));
    assert!(at("attempt_started check") < at("step_completed check"));
    assert!(at("step_completed check") < at("attempt_started done"));
    assert!(
        commits[2].contains(&"run_finished ".to_owned()),
        "{commits:#?}"
    );
}

/// A caller waiting for a run's end gets the final view when the end is committed,
/// even while a call the run no longer needs is still in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_hears_of_a_cancel_before_the_call_in_flight_returns() {
    let slow = StandIn::start(|_| {
        std::thread::sleep(Duration::from_secs(3));
        Reply::json(200, json!({"late": true}))
    });
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.allow("echo", &slow);
    t.apply(&format!(
        r#"
name: slow
steps:
  - id: fetch
    call: echo/fetch
    input: {{ url: '"{}"' }}
"#,
        slow.url("/slow")
    ));
    let id = t.start("slow", json!({})).await;
    let waiting = {
        let engine = t.engine.clone();
        let id = id.clone();
        tokio::spawn(async move { engine.wait_for(&id, Duration::from_secs(30)).await })
    };
    // The stand-in takes 3 s to answer: half a second in, the call is in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.engine.run(&id).unwrap().run.status, RunStatus::Running);
    let cancelled_at = Instant::now();
    cancel(&t, &id).await;
    let view = waiting.await.unwrap().unwrap();
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "told only after the call returned: {:?}",
        cancelled_at.elapsed()
    );
    assert_eq!(view.run.status, RunStatus::Cancelled);
    assert_eq!(step(&view, "fetch").status, StepStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_effect_free_call_shares_the_commit_and_has_no_network() {
    let server = StandIn::start(|_| Reply::json(200, json!({"vendor": "V"})));
    let t = TestEngine::with_plugins(&["echo", "invoice_rules"]).await;
    t.allow("echo", &server);
    // The benchmark's workflow with its last call declared effect-free.
    t.apply(&invoice_check_effect_free());
    let mut feed = t.engine.events();
    let input = matching_invoice(&server.url("/po"));
    let view = t.run("invoice-check-effect-free", input).await;
    assert_eq!(view.run.output, Some(json!({"message": "approve"})));
    // Two commits: the start with fetch's attempt; then fetch's completion, the rule,
    // the whole of `done` and the finish, in that order.
    let commits = commits_of(&mut feed, &view.run.id);
    assert_eq!(commits.len(), 2, "{commits:#?}");
    let at = |what| position(&commits[1], what);
    assert!(at("step_completed fetch") < at("step_completed check"));
    assert!(at("step_completed check") < at("attempt_started done"));
    assert!(at("attempt_started done") < at("step_completed done"));
    assert!(at("step_completed done") < at("run_finished "));

    // A call that declares no effects cannot reach even a host its plugin was granted.
    t.apply(&format!(
        r#"
name: claims-no-effects
steps:
  - id: fetch
    call: echo/fetch
    input: {{ url: '"{}"' }}
    effects: none
    retry: {{ attempts: 1 }}
"#,
        server.url("/po")
    ));
    let before = server.requests().len();
    let view = t.run("claims-no-effects", json!({})).await;
    assert_eq!(view.run.status, RunStatus::Failed);
    let attempt = &step(&view, "fetch").attempts[0];
    assert!(
        attempt
            .denied
            .iter()
            .any(|d| d.contains("`effects: none`") && d.contains("network closed")),
        "{attempt:#?}"
    );
    assert_eq!(server.requests().len(), before, "no request left Baton");

    // The field is checked when the definition is applied.
    for (step, problem) in [
        (
            "call: echo/echo\n    effects: some",
            "`some` is not a kind of effects: use none or external",
        ),
        (
            "rule: invoice-rules/three-way-match\n    effects: none",
            "a rule step does not take `effects`",
        ),
    ] {
        let refused = t
            .engine
            .apply(
                "bad.yaml",
                &format!("name: bad\nsteps:\n  - id: one\n    {step}\n"),
            )
            .unwrap_err()
            .to_string();
        assert!(refused.contains(problem), "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_pick_the_first_true_case_or_else() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: size
steps:
  - id: route
    branch:
      - if: .input.amount > 1000
        next: big
      - if: .input.amount > 100
        next: medium
    else: small
  - id: big
    end: '"big"'
  - id: medium
    end: '"medium"'
  - id: small
    end: '"small"'
"#,
    );
    for (amount, expected) in [(5000, "big"), (500, "medium"), (5, "small")] {
        let view = t.run("size", json!({"amount": amount})).await;
        assert_eq!(view.run.output, Some(json!(expected)), "amount {amount}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_branches_join_with_each_branch_output() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: fan
steps:
  - id: both
    parallel:
      left:
        - id: l1
          call: echo/echo
          input: { message: '"L"' }
        - id: l2
          call: echo/echo
          input: { message: '.steps.l1.output.message + "2"' }
      right:
        - id: r1
          call: echo/echo
          input: { message: '"R"' }
  - id: after
    end: '[.steps.both.output.left.message, .steps.both.output.right.message]'
"#,
    );
    let view = t.run("fan", json!({})).await;
    assert_eq!(
        view.run.status,
        RunStatus::Succeeded,
        "{:?}",
        view.run.failure
    );
    assert_eq!(view.run.output, Some(json!(["L2", "R"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_each_keeps_item_order_and_its_concurrency_limit() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (in_flight.clone(), peak.clone());
    let server = StandIn::start(move |request| {
        let now = f.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        // Later items answer faster, so completion order differs from item order.
        let n: u64 = request
            .path
            .trim_start_matches("/item/")
            .parse()
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(80 - n * 7));
        f.fetch_sub(1, Ordering::SeqCst);
        Reply::json(200, json!({"n": n}))
    });
    let t = http_engine(&server).await;
    t.apply(&format!(
        r#"
name: each
steps:
  - id: lines
    for_each: .input.items
    concurrency: 3
    steps:
      - id: fetch
        call: http/request
        input: {{ method: '"GET"', url: '"{base}/item/" + (.item | tostring)' }}
      - id: pick
        end: '{{index: .index, n: .steps.fetch.output.body.n}}'
"#,
        base = server.url("")
    ));
    let view = t
        .run("each", json!({"items": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}))
        .await;
    assert_eq!(
        view.run.status,
        RunStatus::Succeeded,
        "{:?}",
        view.run.failure
    );
    let expected: Vec<_> = (0..10).map(|i| json!({"index": i, "n": i})).collect();
    assert_eq!(step(&view, "lines").output, Some(json!(expected)));
    assert_eq!(
        peak.load(Ordering::SeqCst),
        3,
        "at most 3 items in flight, and 3 were"
    );
    assert_eq!(step(&view, "lines[7].fetch").status, StepStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_a_duration_and_until_a_time() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: sleepy
steps:
  - id: nap
    wait: { for: 300ms }
  - id: past
    wait: { until: '"2001-01-01T00:00:00Z"' }
  - id: done
    end: '"awake"'
"#,
    );
    let started = Instant::now();
    let view = t.run("sleepy", json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(view.run.output, Some(json!("awake")));
    let nap = step(&view, "nap");
    assert!(nap.finished_ms.unwrap() - nap.scheduled_ms >= 300);
    // A timer set and fired in one transition (a time already past) leaves no row behind.
    assert!(!t.engine.store().has_timers().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wake_waits_and_early_events_are_buffered() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: shipping
key: .input.order
steps:
  - id: shipped
    wait: { event: shipped }
  - id: paid
    wait: { event: paid, key: '"pay-" + .input.order', timeout: 300ms }
    on_error: { goto: unpaid }
  - id: done
    end: '{carrier: .steps.shipped.output.carrier}'
  - id: unpaid
    end: '{unpaid: .steps.paid.failure.code}'
"#,
    );
    // An event for order 2 arrives before its run exists: it is kept.
    assert!(
        t.engine
            .send_event("shipped", "O-2", json!({"carrier": "early"}), "ops:test")
            .await
            .unwrap()
            .is_empty()
    );

    let one = t.start("shipping", json!({"order": "O-1"})).await;
    let waiting = t.settled(&one).await;
    assert_eq!(waiting.run.status, RunStatus::Waiting);
    assert_eq!(step(&waiting, "shipped").status, StepStatus::Waiting);
    let reached = t
        .engine
        .send_event("shipped", "O-1", json!({"carrier": "DHL"}), "ops:test")
        .await
        .unwrap();
    assert_eq!(reached, vec![one.clone()]);
    t.settled(&one).await;
    t.engine
        .send_event("paid", "pay-O-1", json!({}), "ops:test")
        .await
        .unwrap();
    let done = t.settled(&one).await;
    assert_eq!(done.run.output, Some(json!({"carrier": "DHL"})));

    let two = t.start("shipping", json!({"order": "O-2"})).await;
    // The buffered `shipped` event completes the first wait at once; `paid` times out.
    let parked = t.settled(&two).await;
    assert_eq!(step(&parked, "paid").status, StepStatus::Waiting);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let timed_out = t.settled(&two).await;
    assert_eq!(
        timed_out.run.status,
        RunStatus::Succeeded,
        "{:?}",
        timed_out.run.failure
    );
    assert_eq!(
        timed_out.run.output,
        Some(json!({"unpaid": "wait_timeout"}))
    );
    assert_eq!(
        step(&timed_out, "shipped").output,
        Some(json!({"carrier": "early"}))
    );
    assert_chains_intact(&t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_task_parks_the_run_until_a_decision_routes_it() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: approve
steps:
  - id: ask
    human:
      title: Approve the invoice
      assignees: [role:finance]
    next: { approved: yes, rejected: no }
  - id: yes
    end: '{by: .steps.ask.output.actor, note: .steps.ask.output.data.note}'
  - id: no
    fail: { code: rejected }
"#,
    );
    let id = t.start("approve", json!({})).await;
    let parked = t.settled(&id).await;
    assert_eq!(parked.run.status, RunStatus::Waiting);
    assert_eq!(
        t.engine.live_runs(),
        0,
        "a parked run is not held in memory"
    );

    let ann = Person {
        actor: "ann".into(),
        user: "ann".into(),
        role: "finance".into(),
    };
    let decision = |outcome: &str| Decision {
        outcome: outcome.into(),
        data: json!({"note": "fine"}),
        comment: Some("ok".into()),
        output: None,
    };
    let wrong = t
        .engine
        .decide(&id, "ask", ann.clone(), decision("maybe"))
        .await;
    assert!(
        matches!(wrong, Err(EngineError::Task(ref r)) if r.to_string().contains("approved, rejected")),
        "{wrong:?}"
    );
    t.engine
        .decide(&id, "ask", ann, decision("approved"))
        .await
        .unwrap();
    let done = t.settled(&id).await;
    assert_eq!(done.run.output, Some(json!({"by": "ann", "note": "fine"})));
    assert_eq!(step(&done, "ask").decided_by.as_deref(), Some("ann"));
}

fn flaky_server(failures: usize) -> StandIn {
    let count = AtomicUsize::new(0);
    StandIn::start(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) < failures {
            Reply::json(503, json!({"error": "down"}))
        } else {
            Reply::json(200, json!({"ok": true}))
        }
    })
}

async fn http_engine(server: &StandIn) -> TestEngine {
    let t = TestEngine::with_plugins(&["http"]).await;
    t.allow("http", server);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_with_backoff_and_one_idempotency_key() {
    let server = flaky_server(2);
    let t = http_engine(&server).await;
    t.apply(&format!(
        r#"
name: post
steps:
  - id: send
    call: http/request
    input: {{ method: '"POST"', url: '"{}"', body: {{ a: 1 }} }}
    retry: {{ attempts: 4, backoff: 100ms, multiplier: 2, jitter: false }}
"#,
        server.url("/post")
    ));
    let view = t.run("post", json!({})).await;
    assert_eq!(
        view.run.status,
        RunStatus::Succeeded,
        "{:?}",
        view.run.failure
    );
    let send = step(&view, "send");
    assert_eq!(send.attempts.len(), 3);
    assert_eq!(
        send.attempts[0].failure.as_ref().unwrap().code,
        "http_status"
    );
    let gap = |a: usize| send.attempts[a + 1].started_ms - send.attempts[a].finished_ms.unwrap();
    assert!(
        gap(0) >= 100 && gap(0) < 1000,
        "first backoff {} ms",
        gap(0)
    );
    assert!(
        gap(1) >= 200 && gap(1) < 1000,
        "second backoff {} ms",
        gap(1)
    );
    let keys: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| *k == format!("{}/send/0", view.run.id)),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_and_exhausted_retries_fail_the_run() {
    let server = flaky_server(usize::MAX);
    let t = http_engine(&server).await;
    t.apply(&format!(
        r#"
name: down
steps:
  - id: send
    call: http/request
    input: {{ method: '"GET"', url: '"{}"' }}
    retry: {{ attempts: 2, backoff: 10ms }}
"#,
        server.url("/")
    ));
    let view = t.run("down", json!({})).await;
    assert_eq!(view.run.status, RunStatus::Failed);
    assert_eq!(step(&view, "send").attempts.len(), 2);
    assert_eq!(view.run.failure.unwrap().code, "http_status");

    let echo = TestEngine::with_plugins(&["echo"]).await;
    echo.apply(
        r#"
name: bad
steps:
  - id: boom
    call: echo/fail
    input: { code: '"unknown_vendor"', message: '"no such vendor"', retryable: false }
"#,
    );
    let view = echo.run("bad", json!({})).await;
    assert_eq!(
        step(&view, "boom").attempts.len(),
        1,
        "not retryable: one attempt"
    );
    assert_eq!(view.run.failure.unwrap().code, "unknown_vendor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_timeout_stops_a_slow_call() {
    let server = StandIn::start(|_| {
        std::thread::sleep(Duration::from_millis(1500));
        Reply::json(200, json!({}))
    });
    let t = http_engine(&server).await;
    t.apply(&format!(
        r#"
name: slow
steps:
  - id: send
    call: http/request
    input: {{ method: '"GET"', url: '"{}"' }}
    timeout: 200ms
    retry: {{ attempts: 2, backoff: 10ms }}
"#,
        server.url("/")
    ));
    let started = Instant::now();
    let view = t.run("slow", json!({})).await;
    assert!(started.elapsed() < Duration::from_millis(1400));
    let send = step(&view, "send");
    assert_eq!(send.attempts.len(), 2, "a timeout is retryable");
    assert_eq!(view.run.failure.unwrap().code, "step_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_parks_the_step_until_a_person_acts() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: fix
steps:
  - id: lookup
    call: echo/fail
    input: { code: '"unknown_vendor"', message: '"vendor " + .input.vendor + " unknown"', retryable: false, details: { vendor: .input.vendor } }
    on_error: escalate
  - id: after
    end: '{got: .steps.lookup.output}'
"#,
    );
    // Retry with edited input: the edited input makes the step succeed.
    let id = t.start("fix", json!({"vendor": "ACME"})).await;
    let parked = t.settled(&id).await;
    assert_eq!(parked.run.status, RunStatus::Waiting);
    let lookup = step(&parked, "lookup");
    assert_eq!(lookup.status, StepStatus::Escalated);
    let failure = lookup.failure.as_ref().unwrap();
    assert_eq!(failure.code, "unknown_vendor");
    assert_eq!(failure.details, Some(json!({"vendor": "ACME"})));
    assert_eq!(lookup.input.as_ref().unwrap()["details"]["vendor"], "ACME");

    // Supplying the output by hand completes the step and the run continues.
    t.engine
        .command(
            &id,
            InboxMessage::Resolve {
                path: "lookup".into(),
                output: Some(json!({"vendor_id": 7})),
                actor: "ops".into(),
            },
        )
        .await
        .unwrap();
    let done = t.settled(&id).await;
    assert_eq!(done.run.output, Some(json!({"got": {"vendor_id": 7}})));
    assert_eq!(step(&done, "lookup").decided_by.as_deref(), Some("ops"));

    // Skipping it continues with null.
    let skipped = t.start("fix", json!({"vendor": "X"})).await;
    t.settled(&skipped).await;
    t.engine
        .command(
            &skipped,
            InboxMessage::Resolve {
                path: "lookup".into(),
                output: None,
                actor: "ops".into(),
            },
        )
        .await
        .unwrap();
    let done = t.settled(&skipped).await;
    assert_eq!(done.run.output, Some(json!({"got": null})));
    assert_eq!(step(&done, "lookup").status, StepStatus::Skipped);
    assert_chains_intact(&t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_retry_with_edited_input_restart_pause_and_cancel() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: ops
steps:
  - id: check
    call: echo/echo
    input: { message: .input.text }
  - id: hold
    wait: { event: go, key: '"k"' }
  - id: done
    end: .steps.check.output
"#,
    );
    // A failed run (input mapping gave a number, not a string) is retried with input
    // an operator edited; the step gets a new generation (a new idempotency key).
    let id = t.start("ops", json!({"text": 42})).await;
    let failed = t.settled(&id).await;
    assert_eq!(failed.run.status, RunStatus::Failed);
    assert_eq!(failed.run.failure.as_ref().unwrap().code, "invalid_input");
    t.engine
        .command(
            &id,
            InboxMessage::Retry {
                path: "check".into(),
                input: Some(json!({"message": "fixed"})),
                actor: "ops".into(),
            },
        )
        .await
        .unwrap();
    let waiting = t.settled(&id).await;
    assert_eq!(waiting.run.status, RunStatus::Waiting);
    assert_eq!(step(&waiting, "check").generation, 1);
    assert_eq!(
        step(&waiting, "check").output,
        Some(json!({"message": "fixed"}))
    );

    // Pause, resume, then restart from the first step with replacement input.
    t.engine
        .command(
            &id,
            InboxMessage::Pause {
                actor: "ops".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(t.settled(&id).await.run.status, RunStatus::Paused);
    let resume_twice = t
        .engine
        .command(
            &id,
            InboxMessage::Pause {
                actor: "ops".into(),
            },
        )
        .await;
    assert!(matches!(resume_twice, Err(EngineError::Conflict(_))));
    t.engine
        .command(
            &id,
            InboxMessage::Resume {
                actor: "ops".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(t.settled(&id).await.run.status, RunStatus::Waiting);
    t.engine
        .command(
            &id,
            InboxMessage::Restart {
                step: "check".into(),
                input: Some(json!({"message": "again"})),
                actor: "ops".into(),
            },
        )
        .await
        .unwrap();
    let restarted = t.settled(&id).await;
    assert_eq!(
        step(&restarted, "check").output,
        Some(json!({"message": "again"}))
    );
    assert_eq!(step(&restarted, "check").generation, 2);

    // Cancel: the wait is dropped, the run is cancelled, and an event no longer reaches it.
    cancel(&t, &id).await;
    let cancelled = t.settled(&id).await;
    assert_eq!(cancelled.run.status, RunStatus::Cancelled);
    assert_eq!(step(&cancelled, "hold").status, StepStatus::Cancelled);
    assert!(
        t.engine
            .send_event("go", "k", json!(null), "ops:test")
            .await
            .unwrap()
            .is_empty()
    );
    assert_chains_intact(&t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_stay_pinned_to_their_definition_and_plugin_versions() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    let v1 = r#"
name: pinned
steps:
  - id: hold
    wait: { event: go, key: '"k"' }
  - id: who
    call: echo/echo
    input: { message: '"who"' }
  - id: done
    end: '"v1"'
"#;
    assert_eq!(t.apply(v1).version, 1);
    assert!(!t.apply(v1).created, "the same text adds no version");
    let old = t.start("pinned", json!({})).await;
    t.settled(&old).await;

    // Version 2 of the workflow, and a new version of the plugin, while the run waits.
    assert_eq!(t.apply(&v1.replace("\"v1\"", "\"v2\"")).version, 2);
    t.registry
        .install(baton::registry::InstallRequest {
            component: baton_tests::plugin_bytes("echo_next"),
            ..Default::default()
        })
        .await
        .unwrap();
    t.engine
        .send_event("go", "k", json!(null), "ops:test")
        .await
        .unwrap();
    let done = t.settled(&old).await;
    assert_eq!(done.run.output, Some(json!("v1")));
    assert_eq!(done.run.version, 1);
    assert_eq!(step(&done, "who").plugin.as_deref(), Some("echo@0.1.0"));

    let new = t.start("pinned", json!({})).await;
    t.settled(&new).await;
    t.engine
        .send_event("go", "k", json!(null), "ops:test")
        .await
        .unwrap();
    let done = t.settled(&new).await;
    assert_eq!(done.run.output, Some(json!("v2")));
    assert_eq!(step(&done, "who").plugin.as_deref(), Some("echo@0.2.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_returns_the_run_that_used_it() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        "name: once\nsteps:\n  - id: a\n    call: echo/echo\n    input: { message: .input.m }\n",
    );
    let start = |m: &str| StartRun {
        workflow: "once".into(),
        input: json!({"m": m}),
        idempotency_key: Some("order-7".into()),
        ..Default::default()
    };
    let first = t.engine.start_run(start("first")).await.unwrap();
    let second = t.engine.start_run(start("second")).await.unwrap();
    assert!(!first.existing && second.existing);
    assert_eq!(first.run_id, second.run_id);
    let view = t.settled(&first.run_id).await;
    assert_eq!(view.run.output, Some(json!({"message": "first"})));
    assert_eq!(t.engine.runs(None, Some("once"), None, 0).unwrap().len(), 1);

    // Runs are found by business keys of any shape, including ones that sort before
    // their run ids' characters.
    for key in ["-5", "000123", "#7", "Ünïcode"] {
        let id = t
            .engine
            .start_run(StartRun {
                workflow: "once".into(),
                input: json!({"m": key}),
                key: Some(key.into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .run_id;
        let found = t.engine.runs(None, None, Some(key), 0).unwrap();
        assert_eq!(
            found.iter().map(|r| &r.id).collect::<Vec<_>>(),
            vec![&id],
            "key {key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_bad_definitions_are_refused_and_change_nothing() {
    let t = TestEngine::with_plugins(&["echo"]).await;
    t.apply(
        r#"
name: strict
key: .input.id
input_schema:
  type: object
  required: [id]
  properties: { id: { type: string } }
steps:
  - id: a
    call: echo/echo
    input: { message: .input.id }
"#,
    );
    let err = t
        .engine
        .start_run(StartRun {
            workflow: "strict".into(),
            input: json!({"id": 5}),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at /id"), "{err}");
    let err = t
        .engine
        .start_run(StartRun {
            workflow: "nope".into(),
            input: json!({}),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("applied: strict"), "{err}");
    assert!(t.engine.runs(None, None, None, 0).unwrap().is_empty());

    let err = t
        .engine
        .apply(
            "flows/bad.yaml",
            "name: bad\nsteps:\n  - id: a\n    call: echo/nosuch\n  - id: b\n    call: echo/echo\n    input: { message: .x | }\n    next: c\n",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("flows/bad.yaml: the definition is invalid"),
        "{err}"
    );
    assert!(
        err.contains("line 4: step `a`: field `call`: plugin `echo` has no action `nosuch`"),
        "{err}"
    );
    assert!(
        err.contains("line 7: step `b`: field `input.message`: jq:"),
        "{err}"
    );
    assert!(
        err.contains("line 8: step `b`: field `next`: unknown step `c`"),
        "{err}"
    );
    assert_eq!(
        t.engine.workflows().unwrap().len(),
        1,
        "nothing stored for `bad`"
    );
}
