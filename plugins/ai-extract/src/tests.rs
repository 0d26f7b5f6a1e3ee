use super::*;

const DOCUMENT: &str = "INVOICE\nVendor: Acme Supplies Ltd.\nInvoice number: INV-1001\n\
Date: 2026-11-02\nPO number: PO-5001\nCurrency: EUR\nLines:\n\
WID-1 | Widgets, blue | 10 | 12.50\nGAD-2 | Gadget | 4 | 100.00\n\
Tax: 99.75\nShipping: 10.00\nTotal: 634.75\n";

/// The model's answer for [`DOCUMENT`], as SYSTEMS.md shows it.
fn answer() -> Value {
    json!({
        "vendor": "Acme Supplies Ltd.", "invoice_number": "INV-1001", "date": "2026-11-02",
        "po_number": "PO-5001", "currency": "EUR",
        "lines": [
            {"sku": "WID-1", "description": "Widgets, blue", "quantity": 10, "unit_price": 12.5},
            {"sku": "GAD-2", "description": "Gadget", "quantity": 4, "unit_price": 100.0}
        ],
        "tax": 99.75, "shipping": 10.0, "total": 634.75, "confidence": 0.97
    })
}

fn correction(input: Value, vendor: &str, at: u64) -> Correction {
    Correction {
        input,
        original: json!({"vendor": "?"}),
        corrected: json!({"vendor": vendor}),
        actor: "alice".into(),
        created_at: at,
    }
}

fn response(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn corrections_become_examples_oldest_first() {
    // `feedback` serves the newest first.
    let examples = examples_from(vec![
        correction(json!({"document": "doc C"}), "Initech", 3),
        correction(json!({"text": "no document"}), "Umbrella", 2),
        correction(json!({"document": "doc A"}), "Acme", 1),
    ]);
    assert_eq!(
        examples,
        [
            Example {
                document: "doc A".into(),
                answer: r#"{"vendor":"Acme"}"#.into()
            },
            Example {
                document: "doc C".into(),
                answer: r#"{"vendor":"Initech"}"#.into()
            },
        ]
    );
    // A correction stored as text (not JSON) is used as it is.
    let mut c = correction(json!({"document": "doc"}), "x", 1);
    c.corrected = json!("vendor: Acme");
    assert_eq!(examples_from(vec![c])[0].answer, "vendor: Acme");
}

#[test]
fn the_prompt_is_instructions_then_examples_then_the_document() {
    let examples = [
        Example {
            document: "old doc".into(),
            answer: r#"{"vendor":"Acme"}"#.into(),
        },
        Example {
            document: "newer doc".into(),
            answer: r#"{"vendor":"Globex"}"#.into(),
        },
    ];
    let m = messages(DOCUMENT, &examples);
    let roles: Vec<&str> = m.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "user", "assistant", "user"]
    );
    assert_eq!(m[0]["content"], SYSTEM_PROMPT);
    assert_eq!(m[1]["content"], "old doc");
    assert_eq!(m[4]["content"], r#"{"vendor":"Globex"}"#);
    assert_eq!(
        m[5]["content"], DOCUMENT,
        "the document goes as it is, last"
    );

    let body = request_body("gpt-4o-mini", &messages(DOCUMENT, &[]));
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);
}

#[test]
fn the_system_prompt_names_every_field() {
    for field in [
        "vendor",
        "invoice_number",
        "date",
        "po_number",
        "currency",
        "lines",
        "sku",
        "description",
        "quantity",
        "unit_price",
        "tax",
        "shipping",
        "total",
        "confidence",
    ] {
        assert!(SYSTEM_PROMPT.contains(&format!("\"{field}\"")), "{field}");
    }
}

#[test]
fn content_is_parsed_plain_fenced_or_wrapped() {
    let plain = answer().to_string();
    assert_eq!(parse_content(&plain).unwrap(), answer());
    let fenced = format!("```json\n{plain}\n```");
    assert_eq!(parse_content(&fenced).unwrap(), answer());
    let bare_fence = format!("```\n{plain}\n```\n");
    assert_eq!(parse_content(&bare_fence).unwrap(), answer());
    let prose = format!("Here is the invoice:\n{plain}\nHope this helps.");
    assert_eq!(parse_content(&prose).unwrap(), answer());

    for bad in ["I cannot read this document.", "[1, 2]", "{\"vendor\": "] {
        let f = parse_content(bad).unwrap_err();
        assert_eq!(f.code, "unreadable_response", "{bad}");
        assert!(f.retryable);
        assert_eq!(f.details.unwrap()["content"], bad);
    }
}

#[test]
fn the_completion_envelope_is_checked() {
    let ok = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "{}"}}]});
    assert_eq!(content_of(&ok).unwrap(), "{}");
    let refusal =
        json!({"choices": [{"message": {"role": "assistant", "content": null, "refusal": "no"}}]});
    let f = content_of(&refusal).unwrap_err();
    assert_eq!(
        (f.code.as_str(), f.retryable),
        ("unreadable_response", true)
    );
    assert!(content_of(&json!({"choices": []})).is_err());

    let f = completion_content(&response(200, "<html>")).unwrap_err();
    assert_eq!(f.code, "unreadable_response");
    assert_eq!(
        completion_content(&response(200, &ok.to_string())).unwrap(),
        "{}"
    );
}

#[test]
fn http_errors_map_to_failures() {
    let openai = |kind: &str| json!({"error": {"message": "nope", "type": kind}}).to_string();
    for (status, code, retryable) in [
        (429, "upstream_unavailable", true),
        (500, "upstream_unavailable", true),
        (503, "upstream_unavailable", true),
        (401, "unauthorized", false),
        (403, "unauthorized", false),
    ] {
        let f = completion_content(&response(status, &openai("x"))).unwrap_err();
        assert_eq!(
            (f.code.as_str(), f.retryable),
            (code, retryable),
            "{status}"
        );
        assert!(f.message.contains("the LLM answered") && f.message.contains("nope"));
    }
}

#[test]
fn a_consistent_complete_reading_keeps_the_models_confidence() {
    let (invoice, doubts) = read(&answer());
    assert!(doubts.is_empty(), "{doubts:?}");
    assert_eq!(invoice.confidence, 0.97);
    assert_eq!(invoice.vendor.as_deref(), Some("Acme Supplies Ltd."));
    assert_eq!(invoice.lines.len(), 2);
    assert_eq!(invoice.lines[0].unit_price, 12.5);
    assert_eq!(invoice.total, Some(634.75));
    // The output is the extracted invoice of SYSTEMS.md.
    let expected: ExtractedInvoice = serde_json::from_value(answer()).unwrap();
    assert_eq!(invoice, expected);
}

#[test]
fn totals_that_do_not_add_up_halve_the_confidence() {
    let mut a = answer();
    a["total"] = json!(600);
    let (invoice, doubts) = read(&a);
    assert_eq!(invoice.confidence, 0.485);
    assert!(
        doubts[0].contains("634.75") && doubts[0].contains("600.00"),
        "{doubts:?}"
    );
    // A cent off is tolerated; two are not.
    a["total"] = json!(634.76);
    assert_eq!(read(&a).0.confidence, 0.97);
    a["total"] = json!(634.77);
    assert_eq!(read(&a).0.confidence, 0.485);
}

#[test]
fn missing_fields_halve_the_confidence_and_are_null() {
    let mut a = answer();
    a["po_number"] = Value::Null;
    a.as_object_mut().unwrap().remove("date");
    let (invoice, doubts) = read(&a);
    assert_eq!(invoice.confidence, 0.485);
    assert_eq!(doubts, ["missing date, po_number"]);
    let out = serde_json::to_value(&invoice).unwrap();
    assert_eq!(out["po_number"], Value::Null);

    // A line without a price: reported as 0, and both checks fail.
    let mut a = answer();
    a["lines"][1].as_object_mut().unwrap().remove("unit_price");
    let (invoice, doubts) = read(&a);
    assert_eq!(invoice.lines[1].unit_price, 0.0);
    assert_eq!(invoice.confidence, 0.243);
    assert!(doubts[0].contains("lines[1].unit_price"), "{doubts:?}");

    // Nothing at all.
    let (invoice, _) = read(&json!({}));
    assert_eq!(
        invoice.confidence, 0.25,
        "no confidence stated, fields missing"
    );
    assert_eq!((invoice.tax, invoice.shipping), (0.0, 0.0));
}

#[test]
fn the_stated_confidence_is_clamped_or_assumed() {
    let mut a = answer();
    a["confidence"] = json!(1.7);
    assert_eq!(read(&a).0.confidence, 1.0);
    a["confidence"] = json!(-3);
    assert_eq!(read(&a).0.confidence, 0.0);
    a["confidence"] = json!("0.9");
    assert_eq!(read(&a).0.confidence, 0.9);
    a.as_object_mut().unwrap().remove("confidence");
    let (invoice, doubts) = read(&a);
    assert_eq!(invoice.confidence, 0.5);
    assert!(doubts[0].contains("no confidence"));
}

#[test]
fn numbers_written_as_text_are_read() {
    let mut a = answer();
    a["total"] = json!("634.75");
    a["tax"] = json!(" 99.75 ");
    a["lines"][0]["quantity"] = json!("10");
    a["lines"][1]["unit_price"] = json!("1,00.00");
    a["invoice_number"] = json!(1001);
    a["currency"] = json!("eur");
    let (invoice, doubts) = read(&a);
    assert!(doubts.is_empty(), "{doubts:?}");
    assert_eq!(invoice.invoice_number.as_deref(), Some("1001"));
    assert_eq!(invoice.currency.as_deref(), Some("EUR"));
    assert_eq!(invoice.lines[1].unit_price, 100.0);
}

#[test]
fn the_action_checks_input_then_config() {
    let call = Call::default();
    let f = BatonPlugin::invoke(&call, "extract-invoice", r#"{"document": "  "}"#).unwrap_err();
    assert_eq!(f.code, "invalid_input");
    let f =
        BatonPlugin::invoke(&call, "extract-invoice", r#"{"document": "INVOICE"}"#).unwrap_err();
    assert_eq!(f.code, "invalid_config");
    assert_eq!(f.details, Some(json!({"key": "base_url"})));
    let info = BatonPlugin::describe();
    assert_eq!(info.name, "ai-extract");
    assert_eq!(info.capabilities.hosts, ["*"]);
    assert!(info.actions[0].output_schema.contains("confidence"));
}
