//! The first-party connectors of the invoice flow (`ai-extract`, `erp`, `payments`,
//! `notify`) as the real components, installed into a real registry and called through
//! the runtime, against the real stand-ins of `examples/invoice/SYSTEMS.md`
//! (`baton-standins`).

use baton::registry::{CallReport, GrantChange};
use baton::runtime::{CallContext, Failure};
use baton::store::CorrectionRecord;
use baton_tests::TestRegistry;
use baton_tests::standins::{StandIns, get_json};
use serde_json::{Value, json};

/// The key the stand-ins accept (their default `--api-key`).
const KEY: &str = "demo-key";

/// INV-1001 of SYSTEMS.md: 10 × 12.50 + 4 × 100.00 + 99.75 + 10.00 = 634.75.
const ACME_INVOICE: &str = "INVOICE
Vendor: Acme Supplies Ltd.
Invoice number: INV-1001
Date: 2026-11-02
PO number: PO-5001
Currency: EUR
Lines:
WID-1 | Widgets, blue | 10 | 12.50
GAD-2 | Gadget        | 4  | 100.00
Tax: 99.75
Shipping: 10.00
Total: 634.75
";

/// An earlier Acme invoice, as a person corrected it.
const ACME_EARLIER: &str = "INVOICE
Vendor: Acme Supplies Ltd.
Invoice number: INV-0990
Date: 2026-10-01
PO number: PO-5001
Currency: EUR
Lines:
WID-1 | Widgets, blue | 2 | 12.50
Tax: 4.75
Shipping: 0.00
Total: 29.75
";

/// `plugin` installed and granted the loopback hosts, `config` and `secrets`.
async fn connector(
    plugin: &str,
    config: &[(&str, Value)],
    secrets: &[(&str, &str)],
) -> TestRegistry {
    let t = TestRegistry::unsigned();
    // The component file is named after the crate: `ai-extract` is `ai_extract.wasm`.
    t.install(&plugin.replace('-', "_")).await;
    t.registry
        .grant(
            plugin,
            &GrantChange {
                add_hosts: vec!["127.0.0.1:*".into()],
                set_config: config
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                set_secrets: secrets
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
        )
        .unwrap();
    t
}

/// The context of attempt `attempt` of a workflow step whose idempotency key is `key`.
fn step(key: &str, attempt: u32) -> CallContext {
    CallContext {
        run_id: "run-1".into(),
        step_id: "step".into(),
        attempt,
        idempotency_key: key.into(),
    }
}

async fn call_with(
    t: &TestRegistry,
    plugin: &str,
    action: &str,
    input: Value,
    context: &CallContext,
) -> CallReport {
    t.registry
        .call(
            &plugin.parse().unwrap(),
            action,
            &input.to_string(),
            context,
        )
        .await
        .unwrap_or_else(|e| panic!("{plugin} {action}: {e}"))
}

/// The output of a call expected to succeed.
async fn ok(t: &TestRegistry, plugin: &str, action: &str, input: Value, key: &str) -> Value {
    let report = call_with(t, plugin, action, input, &step(key, 1)).await;
    match report.result {
        Ok(out) => out,
        Err(f) => panic!("{plugin} {action} failed: {f:?}\nlogs: {:?}", report.logs),
    }
}

/// The failure of a call expected to fail.
async fn fails(t: &TestRegistry, plugin: &str, action: &str, input: Value, key: &str) -> Failure {
    let report = call_with(t, plugin, action, input, &step(key, 1)).await;
    match report.result {
        Ok(out) => panic!("{plugin} {action} should fail, returned {out}"),
        Err(f) => f,
    }
}

// ---------------------------------------------------------------- ai-extract

async fn ai_extract(s: &StandIns, extra: &[(&str, Value)]) -> TestRegistry {
    let mut config = vec![("base_url", json!(s.llm))];
    config.extend(extra.iter().cloned());
    connector("ai-extract", &config, &[("api-key", KEY)]).await
}

fn correction(input: Value, corrected: Value, at: u64) -> CorrectionRecord {
    CorrectionRecord {
        input,
        original: json!({"vendor": "?"}),
        corrected,
        actor: "alice".into(),
        plugin_digest: String::new(),
        created_at_ms: at,
    }
}

/// The requests (prompts) the LLM stand-in received, oldest first.
fn prompts(s: &StandIns) -> Vec<Value> {
    let answer = get_json(&format!("{}/control/requests", s.llm_root()));
    answer["requests"].as_array().unwrap().clone()
}

/// The LLM stand-in answers the next `times` completions with `status`.
fn llm_fails(s: &StandIns, status: u16, times: u32) {
    let url = format!("{}/control/fail", s.llm_root());
    let r = s.post_json(&url, &[], &json!({"status": status, "times": times}));
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Takes the ERP down (or up again) for purchase order `po_number`.
fn erp_outage(s: &StandIns, po_number: &str, down: bool) {
    let url = format!("{}/control/outage", s.erp);
    let r = s.post_json(&url, &[], &json!({"po_number": po_number, "down": down}));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_extract_reads_a_sample_invoice() {
    let s = StandIns::start(&[]);
    let t = ai_extract(&s, &[]).await;
    let out = ok(
        &t,
        "ai-extract",
        "extract-invoice",
        json!({"document": ACME_INVOICE}),
        "k1",
    )
    .await;
    assert_eq!(out["vendor"], "Acme Supplies Ltd.");
    assert_eq!(out["invoice_number"], "INV-1001");
    assert_eq!(out["date"], "2026-11-02");
    assert_eq!(out["po_number"], "PO-5001");
    assert_eq!(out["currency"], "EUR");
    assert_eq!(out["lines"].as_array().unwrap().len(), 2);
    assert_eq!(out["lines"][1]["sku"], "GAD-2");
    assert_eq!(out["lines"][1]["quantity"], 4.0);
    assert_eq!(out["lines"][0]["unit_price"], 12.5);
    assert_eq!(
        (out["tax"].as_f64(), out["shipping"].as_f64()),
        (Some(99.75), Some(10.0))
    );
    assert_eq!(out["total"], 634.75);
    assert_eq!(
        out["confidence"], 0.97,
        "a clean reading keeps the model's confidence"
    );

    // What went over the wire is the request of SYSTEMS.md.
    let sent = prompts(&s);
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(request["model"], "gpt-4o-mini");
    assert_eq!(request["temperature"], 0);
    assert_eq!(request["response_format"], json!({"type": "json_object"}));
    let messages = request["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "no corrections yet, no examples");
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("invoice_number")
    );
    assert_eq!(
        messages[1],
        json!({"role": "user", "content": ACME_INVOICE})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misread_is_cured_by_a_correction_in_the_prompt() {
    let s = StandIns::start(&["--misread", "Acme Supplies Ltd.:total=600"]);
    let t = ai_extract(&s, &[("model", json!("standin-1"))]).await;
    let input = json!({"document": ACME_INVOICE});

    // Misread: the total does not add up, so the confidence is lowered below the
    // stand-in's 0.62 (halved: lines + tax + shipping = 634.75, not 600).
    let out = ok(&t, "ai-extract", "extract-invoice", input.clone(), "k1").await;
    assert_eq!(out["total"], 600.0);
    assert_eq!(out["confidence"], 0.31);

    // A person corrected an earlier Acme invoice; another correction has no document
    // and one is for another action: neither may reach the prompt.
    let store = t.registry.store();
    let corrected = json!({"vendor": "Acme Supplies Ltd.", "invoice_number": "INV-0990",
        "date": "2026-10-01", "po_number": "PO-5001", "currency": "EUR",
        "lines": [{"sku": "WID-1", "description": "Widgets, blue", "quantity": 2, "unit_price": 12.5}],
        "tax": 4.75, "shipping": 0.0, "total": 29.75, "confidence": 0.62});
    store
        .add_correction(
            "ai-extract",
            "extract-invoice",
            &correction(json!({"document": ACME_EARLIER}), corrected.clone(), 1_000),
        )
        .unwrap();
    store
        .add_correction(
            "ai-extract",
            "extract-invoice",
            &correction(
                json!({"text": "no document here"}),
                json!({"vendor": "Umbrella"}),
                2_000,
            ),
        )
        .unwrap();
    store
        .add_correction(
            "ai-extract",
            "other-action",
            &correction(
                json!({"document": "other"}),
                json!({"vendor": "Other"}),
                3_000,
            ),
        )
        .unwrap();

    let out = ok(&t, "ai-extract", "extract-invoice", input.clone(), "k2").await;
    assert_eq!(
        out["total"], 634.75,
        "the example of the vendor cures the misread"
    );
    assert_eq!(out["confidence"], 0.97);

    let sent = prompts(&s);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["model"], "standin-1");
    let messages = sent[1]["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(messages[1]["content"], ACME_EARLIER);
    let example: Value = serde_json::from_str(messages[2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(example, corrected);
    assert_eq!(messages[3]["content"], ACME_INVOICE);
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_come_oldest_first_and_can_be_turned_off() {
    let s = StandIns::start(&["--misread", "Acme Supplies Ltd.:po_number=PO-0000"]);
    let t = ai_extract(&s, &[("examples", json!(2))]).await;
    let store = t.registry.store();
    for (i, vendor) in [
        "Globex Office GmbH",
        "Initech Parts Inc.",
        "Acme Supplies Ltd.",
    ]
    .iter()
    .enumerate()
    {
        store
            .add_correction(
                "ai-extract",
                "extract-invoice",
                &correction(
                    json!({"document": format!("doc {i}")}),
                    json!({"vendor": vendor}),
                    1_000 + i as u64,
                ),
            )
            .unwrap();
    }
    let out = ok(
        &t,
        "ai-extract",
        "extract-invoice",
        json!({"document": ACME_INVOICE}),
        "k",
    )
    .await;
    assert_eq!(out["po_number"], "PO-5001");
    let sent = prompts(&s);
    let contents: Vec<&str> = sent[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    // The two newest, the newest nearest the document.
    assert_eq!(
        contents[1..5],
        [
            "doc 1",
            r#"{"vendor":"Initech Parts Inc."}"#,
            "doc 2",
            r#"{"vendor":"Acme Supplies Ltd."}"#
        ]
    );

    // With examples turned off the misread stays, at the stand-in's 0.62 (nothing is
    // missing and the sum adds up, so the plugin lowers nothing).
    t.registry
        .grant(
            "ai-extract",
            &GrantChange {
                set_config: vec![("examples".into(), json!(0))],
                ..Default::default()
            },
        )
        .unwrap();
    let out = ok(
        &t,
        "ai-extract",
        "extract-invoice",
        json!({"document": ACME_INVOICE}),
        "k",
    )
    .await;
    assert_eq!(out["po_number"], "PO-0000");
    assert_eq!(out["confidence"], 0.62);
    assert_eq!(prompts(&s)[1]["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_extract_failures_are_typed() {
    let s = StandIns::start(&[]);
    let input = json!({"document": ACME_INVOICE});

    let t = ai_extract(&s, &[]).await;
    llm_fails(&s, 503, 1);
    let f = fails(&t, "ai-extract", "extract-invoice", input.clone(), "k").await;
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("upstream_unavailable", true),
        "{f:?}"
    );
    llm_fails(&s, 429, 1);
    let f = fails(&t, "ai-extract", "extract-invoice", input.clone(), "k").await;
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("upstream_unavailable", true),
        "{f:?}"
    );
    // The injected failures are used up: the next call reads.
    ok(&t, "ai-extract", "extract-invoice", input.clone(), "k").await;

    let wrong_key = connector(
        "ai-extract",
        &[("base_url", json!(s.llm))],
        &[("api-key", "nope")],
    )
    .await;
    let f = fails(
        &wrong_key,
        "ai-extract",
        "extract-invoice",
        input.clone(),
        "k",
    )
    .await;
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("unauthorized", false),
        "{f:?}"
    );

    let unconfigured = connector("ai-extract", &[], &[("api-key", KEY)]).await;
    let f = fails(&unconfigured, "ai-extract", "extract-invoice", input, "k").await;
    assert_eq!(f.code, "invalid_config");
    assert!(f.message.contains("`base_url`"), "{}", f.message);
    assert_eq!(f.details, Some(json!({"key": "base_url"})));
}

// ---------------------------------------------------------------- erp

async fn erp(s: &StandIns) -> TestRegistry {
    connector("erp", &[("base_url", json!(s.erp))], &[("api-key", KEY)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn erp_looks_up_vendors_orders_and_receipts() {
    let s = StandIns::start(&[]);
    let t = erp(&s).await;

    let v = ok(
        &t,
        "erp",
        "find-vendor",
        json!({"name": "acme supplies ltd"}),
        "k",
    )
    .await;
    assert_eq!(
        v,
        json!({"id": "V-001", "name": "Acme Supplies Ltd.", "iban": "DE89370400440532013000", "status": "active"})
    );

    let f = fails(
        &t,
        "erp",
        "find-vendor",
        json!({"name": "Nobody GmbH"}),
        "k",
    )
    .await;
    assert_eq!((f.code.as_str(), f.retryable), ("unknown_vendor", false));
    assert_eq!(f.details, Some(json!({"name": "Nobody GmbH"})));

    let f = fails(
        &t,
        "erp",
        "find-vendor",
        json!({"name": "Initech Parts Inc."}),
        "k",
    )
    .await;
    assert_eq!((f.code.as_str(), f.retryable), ("vendor_blocked", false));
    assert_eq!(f.details.unwrap()["status"], "blocked");

    let po = ok(
        &t,
        "erp",
        "get-purchase-order",
        json!({"po_number": "PO-5001"}),
        "k",
    )
    .await;
    assert_eq!(po["number"], "PO-5001");
    assert_eq!(po["vendor_id"], "V-001");
    assert_eq!(po["currency"], "EUR");
    assert_eq!(
        po["lines"][0],
        json!({"sku": "WID-1", "description": "Widgets, blue", "quantity": 10.0, "unit_price": 12.5})
    );

    let f = fails(
        &t,
        "erp",
        "get-purchase-order",
        json!({"po_number": "PO-9"}),
        "k",
    )
    .await;
    assert_eq!((f.code.as_str(), f.retryable), ("not_found", false));
    assert_eq!(f.details.unwrap()["po_number"], "PO-9");
    let f = fails(
        &t,
        "erp",
        "get-goods-receipt",
        json!({"po_number": "PO-9"}),
        "k",
    )
    .await;
    assert_eq!(f.code, "not_found");

    // Two receipts of PO-5001, summed per SKU.
    let r = ok(
        &t,
        "erp",
        "get-goods-receipt",
        json!({"po_number": "PO-5001"}),
        "k",
    )
    .await;
    assert_eq!(
        r,
        json!({"po_number": "PO-5001", "lines": [{"sku": "WID-1", "quantity": 10.0}, {"sku": "GAD-2", "quantity": 4.0}]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erp_outage_is_retryable_and_ends() {
    let s = StandIns::start(&["--erp-outage", "PO-5002"]);
    let t = erp(&s).await;
    for action in ["get-purchase-order", "get-goods-receipt"] {
        let f = fails(&t, "erp", action, json!({"po_number": "PO-5002"}), "k").await;
        assert_eq!(
            (f.code.as_str(), f.retryable),
            ("upstream_unavailable", true),
            "{action}"
        );
        assert!(f.message.contains("ERP unavailable"), "{}", f.message);
        assert_eq!(f.details.unwrap()["status"], 503);
    }
    // Other orders are served meanwhile, and the order itself once the outage ends.
    ok(
        &t,
        "erp",
        "get-purchase-order",
        json!({"po_number": "PO-5001"}),
        "k",
    )
    .await;
    erp_outage(&s, "PO-5002", false);
    let po = ok(
        &t,
        "erp",
        "get-purchase-order",
        json!({"po_number": "PO-5002"}),
        "k",
    )
    .await;
    assert_eq!(po["vendor_id"], "V-002");

    // Nobody listening at all is retryable too.
    let (closed_url, _held) = closed_url();
    let closed = connector(
        "erp",
        &[("base_url", json!(closed_url))],
        &[("api-key", KEY)],
    )
    .await;
    let f = fails(
        &closed,
        "erp",
        "get-purchase-order",
        json!({"po_number": "PO-5001"}),
        "k",
    )
    .await;
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("upstream_unavailable", true),
        "{f:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn erp_credentials_and_config_are_checked() {
    let s = StandIns::start(&[]);
    let wrong = connector(
        "erp",
        &[("base_url", json!(s.erp))],
        &[("api-key", "wrong")],
    )
    .await;
    let f = fails(&wrong, "erp", "find-vendor", json!({"name": "Acme"}), "k").await;
    assert_eq!((f.code.as_str(), f.retryable), ("unauthorized", false));

    let unconfigured = connector("erp", &[], &[("api-key", KEY)]).await;
    let f = fails(
        &unconfigured,
        "erp",
        "find-vendor",
        json!({"name": "Acme"}),
        "k",
    )
    .await;
    assert_eq!(f.code, "invalid_config");
    assert!(f.message.contains("`base_url`"), "{}", f.message);
}

fn invoice() -> Value {
    json!({
        "vendor_id": "V-001", "invoice_number": "INV-1001", "po_number": "PO-5001",
        "date": "2026-11-02", "currency": "EUR", "total": 634.75, "tax": 99.75, "shipping": 10.0,
        "vendor": "Acme Supplies Ltd.",
        "lines": [
            {"sku": "WID-1", "description": "Widgets, blue", "quantity": 10, "unit_price": 12.5},
            {"sku": "GAD-2", "description": "Gadget", "quantity": 4, "unit_price": 100.0}
        ]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn post_invoice_is_exactly_once_per_step() {
    let s = StandIns::start(&[]);
    let t = erp(&s).await;

    let first = ok(&t, "erp", "post-invoice", invoice(), "run-1/post").await;
    assert_eq!(first["status"], "posted");
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ERP-INV-"), "{id}");

    // A retry of the same step (same key) gets the same posting back.
    let report = call_with(&t, "erp", "post-invoice", invoice(), &step("run-1/post", 2)).await;
    assert_eq!(report.result.unwrap(), first);

    // Another step posting the same invoice is refused, naming the first posting.
    let f = fails(&t, "erp", "post-invoice", invoice(), "run-2/post").await;
    assert_eq!((f.code.as_str(), f.retryable), ("duplicate_invoice", false));
    let details = f.details.unwrap();
    assert_eq!(details["existing_id"], id.as_str());
    assert_eq!(details["invoice_number"], "INV-1001");

    // No key: refused before anything is sent.
    let mut other = invoice();
    other["invoice_number"] = json!("INV-1002");
    let f = fails(&t, "erp", "post-invoice", other.clone(), "").await;
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("missing_idempotency_key", false)
    );

    // An outage of the order's ERP records is retryable, and the retry posts once.
    erp_outage(&s, "PO-5001", true);
    let f = fails(&t, "erp", "post-invoice", other.clone(), "run-3/post").await;
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("upstream_unavailable", true),
        "{f:?}"
    );
    erp_outage(&s, "PO-5001", false);
    let second = ok(&t, "erp", "post-invoice", other, "run-3/post").await;
    assert_ne!(second["id"], first["id"]);

    let posted = s.get_json(&format!("{}/api/invoices", s.erp));
    assert_eq!(posted["invoices"].as_array().unwrap().len(), 2, "{posted}");
    assert_eq!(posted["invoices"][0]["total"], 634.75);
    assert_eq!(posted["invoices"][1]["invoice_number"], "INV-1002");
    assert!(
        posted["invoices"][0].get("vendor").is_none(),
        "only the contract's fields are sent"
    );
}

// ---------------------------------------------------------------- payments

fn payment(amount: f64) -> Value {
    json!({
        "payee": {"vendor_id": "V-001", "name": "Acme Supplies Ltd.", "iban": "DE89370400440532013000"},
        "amount": amount, "currency": "EUR", "reference": "INV-1001"
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn payments_are_deduplicated_by_the_steps_idempotency_key() {
    let s = StandIns::start(&[]);
    let t = connector(
        "payments",
        &[("base_url", json!(s.payments))],
        &[("api-key", KEY)],
    )
    .await;

    let first = ok(
        &t,
        "payments",
        "schedule-payment",
        payment(634.75),
        "run-1/pay",
    )
    .await;
    assert_eq!(first["status"], "scheduled");
    assert_eq!(
        (first["amount"].as_f64(), first["currency"].as_str()),
        (Some(634.75), Some("EUR"))
    );
    let report = call_with(
        &t,
        "payments",
        "schedule-payment",
        payment(634.75),
        &step("run-1/pay", 2),
    )
    .await;
    assert_eq!(
        report.result.unwrap()["id"],
        first["id"],
        "a retry pays nothing twice"
    );

    let book = s.get_json(&format!("{}/v1/payments", s.payments));
    assert_eq!(book["requests"], 2);
    assert_eq!(book["payments"].as_array().unwrap().len(), 1);

    // The same key for another payment is a conflict, not a second payment.
    let f = fails(
        &t,
        "payments",
        "schedule-payment",
        payment(1.0),
        "run-1/pay",
    )
    .await;
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("idempotency_conflict", false)
    );

    // Another step is another payment.
    let other = ok(
        &t,
        "payments",
        "schedule-payment",
        payment(634.75),
        "run-2/pay",
    )
    .await;
    assert_ne!(other["id"], first["id"]);

    // No key: refused before anything is sent.
    let f = fails(&t, "payments", "schedule-payment", payment(634.75), "").await;
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("missing_idempotency_key", false)
    );
    let book = s.get_json(&format!("{}/v1/payments", s.payments));
    assert_eq!(book["requests"], 4);
    assert_eq!(book["payments"].as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------- notify

#[tokio::test(flavor = "multi_thread")]
async fn notify_sends_chat_and_mail_to_the_sink() {
    let s = StandIns::start(&[]);
    let t = connector(
        "notify",
        &[
            (
                "chat_webhook_url",
                json!(format!("{}/chat/finance", s.sink)),
            ),
            ("mail_base_url", json!(format!("{}/mail", s.sink))),
            ("mail_from", json!("Baton <baton@example.com>")),
        ],
        &[("mail-api-key", KEY)],
    )
    .await;
    let out = ok(
        &t,
        "notify",
        "send-chat",
        json!({"text": "Invoice INV-1001 posted."}),
        "k",
    )
    .await;
    assert_eq!(out, json!({"delivered": true}));
    let out = ok(
        &t,
        "notify",
        "send-email",
        json!({"to": "alice@example.com", "subject": "Invoice INV-1002 was rejected", "text": "Prices differ."}),
        "k",
    )
    .await;
    assert_eq!(out, json!({"accepted": true}));

    let messages = s.get_json(&format!("{}/messages", s.sink))["messages"].clone();
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["kind"], "chat");
    assert_eq!(messages[0]["to"], "finance");
    assert_eq!(messages[0]["text"], "Invoice INV-1001 posted.");
    assert_eq!(messages[1]["kind"], "mail");
    assert_eq!(messages[1]["to"], "alice@example.com");
    assert_eq!(messages[1]["subject"], "Invoice INV-1002 was rejected");
    assert_eq!(messages[1]["text"], "Prices differ.");
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_names_missing_config_and_refused_keys() {
    let s = StandIns::start(&[]);
    let t = connector(
        "notify",
        &[("mail_base_url", json!(format!("{}/mail", s.sink)))],
        &[("mail-api-key", "wrong")],
    )
    .await;
    let f = fails(&t, "notify", "send-chat", json!({"text": "hi"}), "k").await;
    assert_eq!(f.code, "invalid_config");
    assert_eq!(f.details, Some(json!({"key": "chat_webhook_url"})));
    let mail = json!({"to": "alice@example.com", "subject": "s", "text": "t"});
    let f = fails(&t, "notify", "send-email", mail.clone(), "k").await;
    assert_eq!(f.code, "invalid_config");
    assert!(f.message.contains("`mail_from`"), "{}", f.message);

    t.registry
        .grant(
            "notify",
            &GrantChange {
                set_config: vec![("mail_from".into(), json!("baton@example.com"))],
                ..Default::default()
            },
        )
        .unwrap();
    let f = fails(&t, "notify", "send-email", mail, "k").await;
    assert_eq!((f.code.as_str(), f.retryable), ("unauthorized", false));
    assert!(
        s.get_json(&format!("{}/messages", s.sink))["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A loopback URL nobody listens on, and the socket that keeps it so: the port stays
/// bound (never listening, so connections are refused) while the socket lives. A port
/// merely freed could be taken by a server another test starts meanwhile, which CI saw
/// answer 404 where a refusal was expected.
fn closed_url() -> (String, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (format!("http://127.0.0.1:{port}"), socket)
}
