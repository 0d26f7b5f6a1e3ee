//! The WIT contract end to end: real components built with the SDK, installed into a
//! real registry on a real redb file, called through the runtime.

use baton::registry::{GrantChange, RegistryError};
use baton::runtime::{CallContext, FailureOrigin, LogLevel};
use baton::store::CorrectionRecord;
use baton_tests::TestRegistry;
use serde_json::{Value, json};

fn context() -> CallContext {
    CallContext {
        run_id: "run-1".into(),
        step_id: "extract".into(),
        attempt: 3,
        idempotency_key: "run-1/extract".into(),
    }
}

async fn call(
    t: &TestRegistry,
    plugin: &str,
    action: &str,
    input: Value,
) -> baton::registry::CallReport {
    t.registry
        .call(
            &plugin.parse().unwrap(),
            action,
            &input.to_string(),
            &context(),
        )
        .await
        .unwrap_or_else(|e| panic!("{plugin} {action}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_returns_its_input_and_sees_the_call_context() {
    let t = TestRegistry::unsigned();
    let report = t.install("echo").await;
    assert!(report.newly_installed);
    assert_eq!(report.plugin.record.manifest.name, "echo");

    let r = call(&t, "echo", "echo", json!({"message": "hello"})).await;
    assert_eq!(r.result.unwrap(), json!({"message": "hello"}));

    let r = call(&t, "echo", "context", json!({})).await;
    assert_eq!(
        r.result.unwrap(),
        json!({"run_id": "run-1", "step_id": "extract", "attempt": 3, "idempotency_key": "run-1/extract"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_stdout_and_stderr_are_captured_per_call() {
    let t = TestRegistry::unsigned();
    t.install("echo").await;
    let r = call(&t, "echo", "log", json!({"message": "seen"})).await;
    assert_eq!(r.result.unwrap(), json!({"logged": true}));
    assert_eq!(r.logs.len(), 1);
    assert_eq!(r.logs[0].level, LogLevel::Info);
    assert_eq!(r.logs[0].message, "seen");
    assert_eq!(r.stdout.trim(), "stdout: seen");
    assert_eq!(r.stderr.trim(), "stderr: seen");

    // The next call starts from nothing: no output of the previous call carries over.
    let r = call(&t, "echo", "echo", json!({"message": "x"})).await;
    assert!(r.logs.is_empty() && r.stdout.is_empty() && r.stderr.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn config_values_and_secrets_come_from_the_grant() {
    let t = TestRegistry::unsigned();
    t.install("echo").await;
    let r = call(&t, "echo", "config", json!({"key": "region"})).await;
    assert_eq!(
        r.result.unwrap(),
        json!({"value": null, "secret_granted": false})
    );

    t.registry
        .grant(
            "echo",
            &GrantChange {
                set_config: vec![("region".into(), json!("eu-west"))],
                set_secrets: vec![("token".into(), "tok-123456".into())],
                ..Default::default()
            },
        )
        .unwrap();
    let r = call(&t, "echo", "config", json!({"key": "region"})).await;
    assert_eq!(
        r.result.unwrap(),
        json!({"value": "eu-west", "secret_granted": true})
    );

    // Secret values are never part of what the registry shows.
    let view = t.registry.show(&"echo".parse().unwrap()).unwrap();
    assert_eq!(view.granted_secrets, ["token"]);
    assert!(!serde_json::to_string(&view).unwrap().contains("tok-123456"));
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_serves_the_newest_corrections_for_the_action() {
    let t = TestRegistry::unsigned();
    let installed = t.install("echo").await;
    for (i, vendor) in ["Acme", "Globex", "Initech"].iter().enumerate() {
        t.registry
            .store()
            .add_correction(
                "echo",
                "extract",
                &CorrectionRecord {
                    input: json!({"doc": i}),
                    original: json!({"vendor": "?"}),
                    corrected: json!({"vendor": vendor}),
                    actor: "alice".into(),
                    plugin_digest: installed.plugin.record.digest.clone(),
                    created_at_ms: 1000 + i as u64,
                },
            )
            .unwrap();
    }
    let r = call(
        &t,
        "echo",
        "feedback",
        json!({"action": "extract", "limit": 2}),
    )
    .await;
    let corrections = r.result.unwrap()["corrections"].as_array().unwrap().clone();
    assert_eq!(corrections.len(), 2);
    assert_eq!(corrections[0]["corrected"], json!({"vendor": "Initech"}));
    assert_eq!(corrections[1]["corrected"], json!({"vendor": "Globex"}));
    assert_eq!(corrections[0]["actor"], "alice");

    let r = call(
        &t,
        "echo",
        "feedback",
        json!({"action": "other", "limit": 5}),
    )
    .await;
    assert_eq!(r.result.unwrap(), json!({"corrections": []}));
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_failures_pass_through_unchanged() {
    let t = TestRegistry::unsigned();
    t.install("echo").await;
    let r = call(
        &t,
        "echo",
        "fail",
        json!({"code": "vendor_unknown", "message": "no vendor 42", "retryable": false, "details": {"vendor": 42}}),
    )
    .await;
    let f = r.result.unwrap_err();
    assert_eq!(f.code, "vendor_unknown");
    assert_eq!(f.message, "no vendor 42");
    assert!(!f.retryable);
    assert_eq!(f.details, Some(json!({"vendor": 42})));
    assert_eq!(f.origin, FailureOrigin::Plugin);

    let r = call(
        &t,
        "echo",
        "fail",
        json!({"code": "erp_down", "message": "503", "retryable": true}),
    )
    .await;
    assert!(r.result.unwrap_err().retryable);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_calls_are_refused_before_the_plugin_runs() {
    let t = TestRegistry::unsigned();
    t.install("echo").await;
    let echo = "echo".parse().unwrap();
    let err = t
        .registry
        .call(&echo, "ech0", "{}", &context())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::UnknownAction { .. }));
    let text = err.to_string();
    assert!(
        text.contains("ech0") && text.contains("echo, context"),
        "{text}"
    );

    let err = t
        .registry
        .call(&echo, "echo", "{\"message\": ", &context())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not valid JSON") && err.contains("line 1 column"),
        "{err}"
    );

    let err = t
        .registry
        .call(&echo, "echo", r#"{"message": 7}"#, &context())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("at /message"), "{err}");

    let err = t
        .registry
        .call(&"nope".parse().unwrap(), "echo", "{}", &context())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no plugin named nope") && err.contains("installed: echo"),
        "{err}"
    );

    let err = t
        .registry
        .call(&"echo@9.9.9".parse().unwrap(), "echo", "{}", &context())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no version 9.9.9") && err.contains("0.1.0"),
        "{err}"
    );
}
