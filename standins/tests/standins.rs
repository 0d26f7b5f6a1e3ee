//! The real `baton-standins` binary over real HTTP: what SYSTEMS.md promises the
//! connectors.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "demo-key";

const ACME_DOCUMENT: &str = "INVOICE
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

const GLOBEX_DOCUMENT: &str = "INVOICE
Vendor: Globex Office GmbH
Invoice number: G-77
PO number: PO-5002
Currency: EUR
Lines:
PAP-A4 | Paper, A4, box | 20 | 24.00
Tax: 0
Shipping: 0
Total: 480.00
";

/// A running `baton-standins`; killed when dropped.
struct StandIns {
    child: Child,
    erp: String,
    llm: String,
    payments: String,
    sink: String,
}

impl StandIns {
    fn start(args: &[&str]) -> StandIns {
        let mut child = Command::new(env!("CARGO_BIN_EXE_baton-standins"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the stand-ins start");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let urls: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not the JSON line ({e}): {line:?}"));
        let url = |name: &str| urls[name].as_str().expect("a URL").to_owned();
        StandIns {
            erp: url("erp"),
            llm: url("llm"),
            payments: url("payments"),
            sink: url("sink"),
            child,
        }
    }

    /// Stops the process with SIGTERM; whether it exited cleanly.
    fn terminate(&mut self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap().success()
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A status and a body: JSON when it parses, else a string.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("the request completes");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, body }
}

/// GET with `key` as the bearer key (none for `None`).
fn get(url: &str, key: Option<&str>) -> Answer {
    let mut request = agent().get(url);
    if let Some(key) = key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    answer(request.call())
}

/// POST `body` with `key` and extra `headers`.
fn post(url: &str, key: Option<&str>, headers: &[(&str, &str)], body: &Value) -> Answer {
    let mut request = agent().post(url);
    if let Some(key) = key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.send_json(body))
}

fn invoice(number: &str, po: &str) -> Value {
    json!({
        "vendor_id": "V-001", "invoice_number": number, "po_number": po,
        "date": "2026-11-02", "currency": "EUR", "total": 634.75, "tax": 99.75,
        "shipping": 10.0,
        "lines": [{ "sku": "WID-1", "description": "Widgets, blue", "quantity": 10, "unit_price": 12.5 }]
    })
}

fn payment(amount: f64) -> Value {
    json!({
        "payee": { "vendor_id": "V-001", "name": "Acme Supplies Ltd.", "iban": "DE89370400440532013000" },
        "amount": amount, "currency": "EUR", "reference": "INV-1001"
    })
}

fn chat_request(messages: Value) -> Value {
    json!({ "model": "gpt-4o-mini", "temperature": 0,
            "response_format": { "type": "json_object" }, "messages": messages })
}

/// Sends one completion request; answers the extracted invoice it returned.
fn extract(s: &StandIns, messages: Value) -> Value {
    let a = post(
        &format!("{}/chat/completions", s.llm),
        Some(KEY),
        &[],
        &chat_request(messages),
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["object"], "chat.completion");
    assert_eq!(a.body["choices"][0]["message"]["role"], "assistant");
    let content = a.body["choices"][0]["message"]["content"].as_str().unwrap();
    serde_json::from_str(content).expect("the content is JSON text")
}

fn user(text: &str) -> Value {
    json!({ "role": "user", "content": text })
}

#[test]
fn announces_four_distinct_loopback_urls() {
    let s = StandIns::start(&[]);
    let urls = [&s.erp, &s.llm, &s.payments, &s.sink];
    for url in urls {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }
    assert!(s.llm.ends_with("/v1"));
    let mut ports: Vec<&str> = urls
        .iter()
        .map(|u| u[17..].split('/').next().unwrap())
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4, "{urls:?}");
}

#[test]
fn erp_finds_vendors_purchase_orders_and_receipts() {
    let s = StandIns::start(&[]);
    let found = get(
        &format!("{}/api/vendors?name=ACME%20supplies,%20ltd", s.erp),
        Some(KEY),
    );
    assert_eq!(found.status, 200);
    assert_eq!(found.body["vendors"][0]["id"], "V-001");
    assert_eq!(found.body["vendors"].as_array().unwrap().len(), 1);
    let none = get(&format!("{}/api/vendors?name=Nobody", s.erp), Some(KEY));
    assert_eq!(none.body, json!({ "vendors": [] }));

    let po = get(&format!("{}/api/purchase-orders/PO-5001", s.erp), Some(KEY));
    assert_eq!(po.status, 200);
    assert_eq!(po.body["vendor_id"], "V-001");
    assert_eq!(po.body["vendor"], "Acme Supplies Ltd.");
    assert_eq!(po.body["status"], "open");
    assert_eq!(po.body["lines"][1]["sku"], "GAD-2");
    assert_eq!(po.body["lines"][1]["quantity"], 4);

    // Two receipts of GAD-2 (2 + 2) are summed.
    let receipts = get(
        &format!("{}/api/purchase-orders/PO-5001/receipts", s.erp),
        Some(KEY),
    );
    assert_eq!(
        receipts.body,
        json!({ "po_number": "PO-5001", "lines": [
            { "sku": "WID-1", "quantity": 10 }, { "sku": "GAD-2", "quantity": 4 } ] })
    );
    let nothing = get(
        &format!("{}/api/purchase-orders/PO-5003/receipts", s.erp),
        Some(KEY),
    );
    assert_eq!(nothing.body["lines"], json!([]));

    for path in ["PO-9", "PO-9/receipts"] {
        let missing = get(&format!("{}/api/purchase-orders/{path}", s.erp), Some(KEY));
        assert_eq!(missing.status, 404);
        assert_eq!(
            missing.body,
            json!({ "error": "purchase order PO-9 not found" })
        );
    }
}

#[test]
fn erp_reads_a_seed_file() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(
        &seed,
        json!({
            "vendors": [{ "id": "V-9", "name": "Tiny Co", "iban": "NL91ABNA0417164300" }],
            "purchase_orders": [{ "number": "PO-1", "vendor_id": "V-9", "currency": "EUR",
                                  "lines": [{ "sku": "A", "description": "a", "quantity": 1, "unit_price": 2.5 }] }],
            "receipts": []
        })
        .to_string(),
    )
    .unwrap();
    let s = StandIns::start(&["--erp-seed", seed.to_str().unwrap()]);
    let vendors = get(&format!("{}/api/vendors", s.erp), Some(KEY));
    assert_eq!(
        vendors.body["vendors"],
        json!([{ "id": "V-9", "name": "Tiny Co", "iban": "NL91ABNA0417164300", "status": "active" }])
    );
    let po = get(&format!("{}/api/purchase-orders/PO-1", s.erp), Some(KEY));
    assert_eq!(po.body["vendor"], "Tiny Co");
    let demo = get(&format!("{}/api/purchase-orders/PO-5001", s.erp), Some(KEY));
    assert_eq!(demo.status, 404, "the built-in seed is replaced");
}

#[test]
fn a_bad_seed_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(
        &seed,
        r#"{"vendors": [], "purchase_orders": [{"number": "PO-1", "vendor_id": "V-404", "currency": "EUR"}]}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_baton-standins"))
        .args(["--erp-seed", seed.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no URLs are announced");
    assert!(String::from_utf8_lossy(&out.stderr).contains("V-404"));
}

#[test]
fn invoices_post_once_per_key_and_once_per_vendor_and_number() {
    let s = StandIns::start(&[]);
    let url = format!("{}/api/invoices", s.erp);
    let first = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "k-1")],
        &invoice("INV-1001", "PO-5001"),
    );
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["id"], "ERP-INV-000001");
    assert_eq!(first.body["status"], "posted");
    assert_eq!(first.body["total"], 634.75);

    // A retry with the same key: the same answer, nothing new posted.
    let again = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "k-1")],
        &invoice("INV-1001", "PO-5001"),
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);

    let duplicate = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "k-2")],
        &invoice("INV-1001", "PO-5001"),
    );
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.body["error"],
        "invoice INV-1001 of V-001 is already posted as ERP-INV-000001"
    );

    let mut incomplete = invoice("INV-1002", "PO-5001");
    incomplete.as_object_mut().unwrap().remove("currency");
    let refused = post(&url, Some(KEY), &[("Idempotency-Key", "k-3")], &incomplete);
    assert_eq!(refused.status, 422);
    assert!(refused.body["error"].as_str().unwrap().contains("currency"));

    let keyless = post(&url, Some(KEY), &[], &invoice("INV-1003", "PO-5001"));
    assert_eq!(keyless.status, 400);

    let second = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "k-4")],
        &invoice("INV-1002", "PO-5001"),
    );
    assert_eq!(second.body["id"], "ERP-INV-000002", "ids are sequential");

    let all = get(&url, Some(KEY));
    let numbers: Vec<&Value> = all.body["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["invoice_number"])
        .collect();
    assert_eq!(numbers, [&json!("INV-1001"), &json!("INV-1002")]);
}

#[test]
fn an_outage_fails_requests_naming_the_po_until_cleared() {
    let s = StandIns::start(&["--erp-outage", "PO-5001"]);
    let po = format!("{}/api/purchase-orders/PO-5001", s.erp);
    let down = get(&po, Some(KEY));
    assert_eq!(down.status, 503);
    assert_eq!(down.body, json!({ "error": "ERP unavailable" }));
    assert_eq!(get(&format!("{po}/receipts"), Some(KEY)).status, 503);
    let posted = post(
        &format!("{}/api/invoices", s.erp),
        Some(KEY),
        &[("Idempotency-Key", "k-1")],
        &invoice("INV-1001", "PO-5001"),
    );
    assert_eq!(posted.status, 503);
    // Other POs and vendor lookups still work.
    assert_eq!(
        get(&format!("{}/api/purchase-orders/PO-5002", s.erp), Some(KEY)).status,
        200
    );
    assert_eq!(
        get(&format!("{}/api/vendors?name=Acme", s.erp), Some(KEY)).status,
        200
    );

    let cleared = post(
        &format!("{}/control/outage", s.erp),
        None,
        &[],
        &json!({ "po_number": "PO-5001", "down": false }),
    );
    assert_eq!(cleared.status, 200);
    assert_eq!(get(&po, Some(KEY)).status, 200);

    // And down again at run time.
    post(
        &format!("{}/control/outage", s.erp),
        None,
        &[],
        &json!({ "po_number": "PO-5002", "down": true }),
    );
    assert_eq!(
        get(&format!("{}/api/purchase-orders/PO-5002", s.erp), Some(KEY)).status,
        503
    );
}

#[test]
fn payments_are_deduplicated_by_idempotency_key() {
    let s = StandIns::start(&[]);
    let url = format!("{}/v1/payments", s.payments);
    let keyless = post(&url, Some(KEY), &[], &payment(634.75));
    assert_eq!(keyless.status, 400);

    let first = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "pay-1")],
        &payment(634.75),
    );
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["id"], "PAY-000001");
    assert_eq!(first.body["status"], "scheduled");
    assert_eq!(first.body["payee"]["iban"], "DE89370400440532013000");

    let retry = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "pay-1")],
        &payment(634.75),
    );
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body, first.body);

    let reused = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "pay-1")],
        &payment(1.0),
    );
    assert_eq!(reused.status, 422);
    assert_eq!(
        reused.body["error"],
        "idempotency key reused with a different request"
    );

    let second = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "pay-2")],
        &payment(5.0),
    );
    assert_eq!(second.body["id"], "PAY-000002");

    let listed = get(&url, Some(KEY));
    assert_eq!(listed.body["payments"].as_array().unwrap().len(), 2);
    assert_eq!(
        listed.body["requests"], 5,
        "every POST counts, repeats included"
    );
}

#[test]
fn the_llm_reads_the_last_user_message() {
    let s = StandIns::start(&[]);
    let extracted = extract(
        &s,
        json!([
            { "role": "system", "content": "Return the invoice as JSON." },
            user(GLOBEX_DOCUMENT), { "role": "assistant", "content": "{}" },
            user(ACME_DOCUMENT)
        ]),
    );
    assert_eq!(
        extracted,
        json!({ "vendor": "Acme Supplies Ltd.", "invoice_number": "INV-1001", "date": "2026-11-02",
                "po_number": "PO-5001", "currency": "EUR",
                "lines": [
                    { "sku": "WID-1", "description": "Widgets, blue", "quantity": 10, "unit_price": 12.5 },
                    { "sku": "GAD-2", "description": "Gadget", "quantity": 4, "unit_price": 100.0 } ],
                "tax": 99.75, "shipping": 10.0, "total": 634.75, "confidence": 0.97 })
    );

    // A document it cannot make sense of still gets an answer, with low confidence.
    let guess = extract(&s, json!([user("Dear customer,\nTotal: 12.00\nRegards")]));
    assert_eq!(guess["vendor"], Value::Null);
    assert_eq!(guess["total"], 12.0);
    assert_eq!(guess["confidence"], 0.3);

    let requests = get(
        &format!("{}/control/requests", s.llm.trim_end_matches("/v1")),
        None,
    );
    let requests = requests.body["requests"].as_array().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["messages"][3]["content"], ACME_DOCUMENT);
}

#[test]
fn a_misread_is_cured_by_a_few_shot_example_of_its_vendor() {
    let s = StandIns::start(&["--misread", "Acme Supplies Ltd.:total=600"]);
    let misread = extract(&s, json!([user(ACME_DOCUMENT)]));
    assert_eq!(misread["total"], 600);
    assert_eq!(misread["confidence"], 0.62);
    assert_eq!(misread["invoice_number"], "INV-1001");

    // Other vendors read correctly.
    let globex = extract(&s, json!([user(GLOBEX_DOCUMENT)]));
    assert_eq!(globex["total"], 480.0);
    assert_eq!(globex["confidence"], 0.97);

    // An example of another vendor does not help.
    let globex_example = json!({ "vendor": "Globex Office GmbH", "total": 480.0 }).to_string();
    let still = extract(
        &s,
        json!([
            user(GLOBEX_DOCUMENT), { "role": "assistant", "content": globex_example },
            user(ACME_DOCUMENT)
        ]),
    );
    assert_eq!(still["total"], 600);

    // A correction of this vendor, spelt differently, cures it.
    let correction =
        json!({ "vendor": "ACME supplies ltd", "invoice_number": "INV-0999", "total": 100.0 })
            .to_string();
    let cured = extract(
        &s,
        json!([
            { "role": "system", "content": "Return the invoice as JSON." },
            user("an older Acme invoice"), { "role": "assistant", "content": correction },
            user(ACME_DOCUMENT)
        ]),
    );
    assert_eq!(cured["total"], 634.75);
    assert_eq!(cured["confidence"], 0.97);
}

#[test]
fn misreads_can_be_set_at_run_time_and_reach_into_lines() {
    let s = StandIns::start(&[]);
    let set = post(
        &format!("{}/control/misread", s.llm),
        None,
        &[],
        &json!({ "vendor": "Globex Office GmbH", "field": "lines.0.quantity", "value": 200 }),
    );
    assert_eq!(set.status, 200, "{:?}", set.body);
    let misread = extract(&s, json!([user(GLOBEX_DOCUMENT)]));
    assert_eq!(misread["lines"][0]["quantity"], 200);
    assert_eq!(misread["confidence"], 0.62);
    assert_eq!(
        extract(&s, json!([user(ACME_DOCUMENT)]))["confidence"],
        0.97
    );
}

#[test]
fn the_llm_fails_on_request() {
    let s = StandIns::start(&[]);
    let base = s.llm.trim_end_matches("/v1");
    post(
        &format!("{base}/control/fail"),
        None,
        &[],
        &json!({ "status": 429, "times": 1 }),
    );
    let url = format!("{}/chat/completions", s.llm);
    let limited = post(
        &url,
        Some(KEY),
        &[],
        &chat_request(json!([user(ACME_DOCUMENT)])),
    );
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["error"]["type"], "rate_limit_error");
    let next = post(
        &url,
        Some(KEY),
        &[],
        &chat_request(json!([user(ACME_DOCUMENT)])),
    );
    assert_eq!(next.status, 200, "only `times` requests fail");
}

#[test]
fn every_system_but_the_chat_webhook_wants_the_key() {
    let s = StandIns::start(&["--api-key", "s3cret"]);
    let cases = [
        format!("{}/api/vendors?name=Acme", s.erp),
        format!("{}/api/invoices", s.erp),
        format!("{}/v1/payments", s.payments),
    ];
    for url in &cases {
        assert_eq!(get(url, None).status, 401, "{url}");
        let wrong = get(url, Some(KEY));
        assert_eq!(wrong.status, 401, "{url}");
        assert_eq!(wrong.body, json!({ "error": "unauthorized" }));
        assert_eq!(get(url, Some("s3cret")).status, 200, "{url}");
    }
    let completion = chat_request(json!([user(ACME_DOCUMENT)]));
    let refused = post(
        &format!("{}/chat/completions", s.llm),
        Some(KEY),
        &[],
        &completion,
    );
    assert_eq!(refused.status, 401);
    assert!(
        refused.body["error"]["message"].is_string(),
        "OpenAI's error shape"
    );
    let allowed = post(
        &format!("{}/chat/completions", s.llm),
        Some("s3cret"),
        &[],
        &completion,
    );
    assert_eq!(allowed.status, 200);

    let mail = post(
        &format!("{}/mail/v3/mail/send", s.sink),
        None,
        &[],
        &mail_body(),
    );
    assert_eq!(mail.status, 401);
    let chat = post(
        &format!("{}/chat/ap", s.sink),
        None,
        &[],
        &json!({ "text": "hi" }),
    );
    assert_eq!(chat.status, 200);
    assert_eq!(chat.body, "ok");
}

fn mail_body() -> Value {
    json!({
        "personalizations": [{ "to": [{ "email": "ap@example.com" }] }],
        "from": { "email": "baton@example.com", "name": "Baton" },
        "subject": "Invoice INV-1001 needs a look",
        "content": [{ "type": "text/plain", "value": "The total does not match PO-5001." }]
    })
}

#[test]
fn chat_and_mail_are_recorded_in_order() {
    let s = StandIns::start(&[]);
    let chat = post(
        &format!("{}/chat/finance-alerts", s.sink),
        None,
        &[],
        &json!({ "text": "INV-1001 paid", "blocks": [] }),
    );
    assert_eq!(chat.status, 200);
    let mail = post(
        &format!("{}/mail/v3/mail/send", s.sink),
        Some(KEY),
        &[],
        &mail_body(),
    );
    assert_eq!(mail.status, 202);
    assert_eq!(mail.body, "", "an empty body");
    let bad = post(&format!("{}/chat/x", s.sink), None, &[], &json!({}));
    assert_eq!(bad.status, 400, "a chat message needs text");

    let messages = get(&format!("{}/messages", s.sink), None).body["messages"].clone();
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["kind"], "chat");
    assert_eq!(messages[0]["to"], "finance-alerts");
    assert_eq!(messages[0]["text"], "INV-1001 paid");
    assert_eq!(messages[1]["kind"], "mail");
    assert_eq!(messages[1]["to"], "ap@example.com");
    assert_eq!(messages[1]["subject"], "Invoice INV-1001 needs a look");
    assert_eq!(messages[1]["text"], "The total does not match PO-5001.");
    assert!(messages[1]["at"].as_u64().unwrap() >= messages[0]["at"].as_u64().unwrap());
}

/// Posts one of everything into a stand-in process with state in `dir`.
fn fill(s: &StandIns) {
    let posted = post(
        &format!("{}/api/invoices", s.erp),
        Some(KEY),
        &[("Idempotency-Key", "k-1")],
        &invoice("INV-1001", "PO-5001"),
    );
    assert_eq!(posted.status, 201);
    let paid = post(
        &format!("{}/v1/payments", s.payments),
        Some(KEY),
        &[("Idempotency-Key", "pay-1")],
        &payment(634.75),
    );
    assert_eq!(paid.status, 201);
    post(
        &format!("{}/chat/ap", s.sink),
        None,
        &[],
        &json!({ "text": "hello" }),
    );
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let args = ["--state", state.to_str().unwrap()];
    {
        let mut s = StandIns::start(&args);
        fill(&s);
        assert!(s.terminate(), "SIGTERM ends the stand-ins cleanly");
    }
    let s = StandIns::start(&args);
    let invoices = get(&format!("{}/api/invoices", s.erp), Some(KEY));
    assert_eq!(invoices.body["invoices"][0]["id"], "ERP-INV-000001");
    // The idempotency keys survived too: a retry is a replay, not a conflict.
    let retried = post(
        &format!("{}/api/invoices", s.erp),
        Some(KEY),
        &[("Idempotency-Key", "k-1")],
        &invoice("INV-1001", "PO-5001"),
    );
    assert_eq!(retried.status, 200);
    let next = post(
        &format!("{}/api/invoices", s.erp),
        Some(KEY),
        &[("Idempotency-Key", "k-2")],
        &invoice("INV-1002", "PO-5001"),
    );
    assert_eq!(next.body["id"], "ERP-INV-000002");

    let url = format!("{}/v1/payments", s.payments);
    let replay = post(
        &url,
        Some(KEY),
        &[("Idempotency-Key", "pay-1")],
        &payment(634.75),
    );
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body["id"], "PAY-000001");
    let listed = get(&url, Some(KEY));
    assert_eq!(listed.body["payments"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["requests"], 2);

    let messages = get(&format!("{}/messages", s.sink), None);
    assert_eq!(messages.body["messages"][0]["text"], "hello");
}

#[test]
fn without_state_a_restart_forgets() {
    let s = StandIns::start(&[]);
    fill(&s);
    drop(s);
    let s = StandIns::start(&[]);
    let invoices = get(&format!("{}/api/invoices", s.erp), Some(KEY));
    assert_eq!(invoices.body["invoices"], json!([]));
}

#[test]
fn exits_when_stdin_closes_if_asked() {
    let mut s = StandIns::start(&["--exit-with-stdin"]);
    drop(s.child.stdin.take());
    assert!(exits_within(&mut s.child, Duration::from_secs(5)));

    // Without the flag, a closed stdin changes nothing.
    let mut s = StandIns::start(&[]);
    drop(s.child.stdin.take());
    assert!(!exits_within(&mut s.child, Duration::from_millis(500)));
    assert_eq!(get(&format!("{}/messages", s.sink), None).status, 200);
}

fn exits_within(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn fixed_ports_are_honoured() {
    // Ask the OS for a free port, release it, and ask the stand-ins to use it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = StandIns::start(&["--sink-port", &port.to_string()]);
    assert_eq!(s.sink, format!("http://127.0.0.1:{port}"));
}
