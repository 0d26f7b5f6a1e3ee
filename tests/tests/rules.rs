//! Rules through the host: the invoice three-way match, and the determinism guarantees
//! (fuel, frozen clock, fixed-seed randomness).

use baton::config::Config;
use baton::runtime::CallContext;
use baton::store::LimitSettings;
use baton_tests::TestRegistry;
use serde_json::{Value, json};

async fn evaluate(
    t: &TestRegistry,
    plugin: &str,
    rule: &str,
    input: Value,
) -> baton::registry::CallReport {
    t.registry
        .call(
            &plugin.parse().unwrap(),
            rule,
            &input.to_string(),
            &CallContext::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{plugin}/{rule}: {e}"))
}

fn invoice(vendor: &str, unit_price: f64) -> Value {
    json!({
        "invoice": {"vendor": vendor, "currency": "EUR", "total": 10.0 * unit_price,
                    "lines": [{"sku": "BOLT-M8", "quantity": 10, "unit_price": unit_price}]},
        "po": {"vendor": "Acme GmbH", "currency": "EUR",
               "lines": [{"sku": "BOLT-M8", "quantity": 10, "unit_price": 2.0}]},
        "receipt": {"lines": [{"sku": "BOLT-M8", "quantity": 10}]}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn three_way_match_approves_reviews_and_rejects_with_reasons() {
    let t = TestRegistry::unsigned();
    let installed = t.install("invoice_rules").await;
    let rule = installed
        .plugin
        .record
        .manifest
        .action("three-way-match")
        .unwrap();
    assert_eq!(rule.outcomes, ["approve", "review", "reject"]);

    let r = evaluate(
        &t,
        "invoice-rules",
        "three-way-match",
        invoice("Acme GmbH", 2.0),
    )
    .await;
    assert_eq!(r.result.unwrap()["outcome"], "approve");
    assert!(r.fuel_used.unwrap() > 0);

    // 2.15 is 7.5% over the PO price (1.50 on the line): beyond the 2% and 1.00 tolerances,
    // within the 10% review band.
    let r = evaluate(
        &t,
        "invoice-rules",
        "three-way-match",
        invoice("Acme GmbH", 2.15),
    )
    .await;
    let decision = r.result.unwrap();
    assert_eq!(decision["outcome"], "review");
    let reasons = decision["reasons"].to_string();
    assert!(reasons.contains("BOLT-M8"), "{reasons}");

    let r = evaluate(
        &t,
        "invoice-rules",
        "three-way-match",
        invoice("Initech", 2.0),
    )
    .await;
    let decision = r.result.unwrap();
    assert_eq!(decision["outcome"], "reject");
    assert!(
        decision["reasons"].to_string().contains("Initech"),
        "{decision}"
    );

    // The schema is checked before the rule runs, naming the field.
    let err = t
        .registry
        .call(
            &"invoice-rules".parse().unwrap(),
            "three-way-match",
            r#"{"invoice": {}}"#,
            &CallContext::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"po\" is a required property"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_are_deterministic_and_run_on_fuel() {
    let t = TestRegistry::with_config(Config {
        allow_unsigned: true,
        limits: LimitSettings {
            fuel: Some(50_000_000),
            ..Default::default()
        },
        ..Default::default()
    });
    t.install("hostile_rule").await;

    let first = evaluate(&t, "hostile-rule", "clock", json!({}))
        .await
        .result
        .unwrap();
    let second = evaluate(&t, "hostile-rule", "clock", json!({}))
        .await
        .result
        .unwrap();
    assert_eq!(first, second, "same input, same decision");
    // The wall clock is frozen at the Unix epoch.
    assert!(
        first["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("wall clock: 0"),
        "{first}"
    );

    let r = evaluate(&t, "hostile-rule", "loop", json!({})).await;
    let f = r.result.unwrap_err();
    assert_eq!(f.code, "fuel_exhausted");
    assert!(f.message.contains("50000000 units"), "{}", f.message);
    assert_eq!(r.fuel_used, Some(50_000_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_that_imports_the_network_is_refused_at_install() {
    let t = TestRegistry::unsigned();
    let err = t
        .registry
        .install(baton::registry::InstallRequest {
            component: baton_tests::plugin_bytes("networked_rule"),
            ..Default::default()
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Baton does not provide to a rule"), "{err}");
    assert!(err.contains("wasi:http/"), "{err}");
    assert!(err.contains("a rule must be deterministic"), "{err}");
    assert!(t.registry.list().unwrap().is_empty());
}
