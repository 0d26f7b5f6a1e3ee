//! `ai-extract`: reads supplier invoices with an LLM (any OpenAI-compatible chat
//! completions API, as `examples/invoice/SYSTEMS.md` describes) and learns from people's
//! corrections: the latest ones go into the prompt as few-shot examples. See README.md.
//!
//! The plugin's logic is plain functions over JSON, unit-tested natively: building the
//! prompt ([`examples_from`], [`messages`], [`request_body`]), reading the answer
//! ([`content_of`], [`parse_content`], [`read`]) and judging it ([`assess`]).

use baton_sdk::feedback::{self, Correction};
use baton_sdk::http::{Method, Request, Response, endpoint};
use baton_sdk::prelude::*;
use baton_sdk::{config, log};
use serde_json::{Value, json};

baton_sdk::connector! {
    name: "ai-extract", version: "0.1.0",
    description: "Reads supplier invoices with an LLM, learning from people's corrections",
    hosts: ["*"], secrets: ["api-key"],
    actions: {
        "extract-invoice" => extract_invoice: "Read an invoice document into structured fields, with a confidence",
    }
}

/// The action whose corrections become few-shot examples.
const ACTION: &str = "extract-invoice";
/// How failure messages name the far end.
const SERVICE: &str = "the LLM";
/// The model unless config `model` names another.
const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// Few-shot examples unless config `examples` says otherwise.
const DEFAULT_EXAMPLES: u32 = 3;
/// At most this many examples, whatever the config says (prompts cost money).
const MAX_EXAMPLES: u32 = 20;
/// The confidence when the model gives none.
const UNSTATED_CONFIDENCE: f64 = 0.5;
/// What each failed check multiplies the confidence by.
const PENALTY: f64 = 0.5;
/// How far lines + tax + shipping may be from the total.
const TOLERANCE: f64 = 0.01;

/// The instructions: the extracted invoice of SYSTEMS.md, and how to fill it.
pub const SYSTEM_PROMPT: &str = r#"You read supplier invoices. The user sends the text of one invoice document. Answer with one JSON object and nothing else, with exactly these fields:
{"vendor": string, "invoice_number": string, "date": "YYYY-MM-DD", "po_number": string, "currency": "ISO 4217 code, e.g. EUR", "lines": [{"sku": string, "description": string, "quantity": number, "unit_price": number}], "tax": number, "shipping": number, "total": number, "confidence": number}
Rules:
- Copy names and identifiers (vendor, invoice_number, po_number, sku) exactly as the document writes them.
- Numbers are plain JSON numbers: no currency symbols, no thousands separators.
- One entry in "lines" per invoiced item, in the document's order.
- Use 0 for tax or shipping the document does not show; use null for any other field the document does not contain. Never guess.
- "total" is the amount due as printed, even if the figures do not add up.
- "confidence" is how sure you are, from 0 to 1, that every field is right.
Earlier answers in this conversation were checked and corrected by people: read documents the way they show."#;

/// An invoice to read.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExtractIn {
    /// The invoice document as plain text.
    pub document: String,
}

/// The invoice as read. A field the document (or the model) did not give is null, and
/// lowers the confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExtractedInvoice {
    /// The vendor's name as written on the invoice.
    pub vendor: Option<String>,
    /// The vendor's invoice number, e.g. `INV-1001`.
    pub invoice_number: Option<String>,
    /// The invoice date, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// The purchase order the invoice bills, e.g. `PO-5001`.
    pub po_number: Option<String>,
    /// ISO 4217 currency code, e.g. `EUR`.
    pub currency: Option<String>,
    /// The invoiced items.
    pub lines: Vec<InvoiceLine>,
    /// Tax (0 when the invoice shows none).
    pub tax: f64,
    /// Shipping (0 when the invoice shows none).
    pub shipping: f64,
    /// The amount due as printed.
    pub total: Option<f64>,
    /// 0 to 1: how far to trust this reading (see README.md for the rule).
    pub confidence: f64,
}

/// One invoiced item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceLine {
    /// The article number.
    pub sku: String,
    /// What the article is.
    pub description: String,
    /// Units invoiced.
    pub quantity: f64,
    /// Price per unit.
    pub unit_price: f64,
}

/// A past document and how a person said it reads: one user/assistant pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The document of the corrected call.
    pub document: String,
    /// The corrected extraction, JSON text.
    pub answer: String,
}

/// The admin's settings.
struct Settings {
    base_url: String,
    model: String,
    examples: u32,
    api_key: Option<String>,
}

impl Settings {
    fn from_config() -> Result<Settings, Failure> {
        Ok(Settings {
            base_url: config::require_str("base_url")?,
            model: config::get_as::<String>("model")?
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_MODEL.into()),
            examples: config::get_as::<u32>("examples")?
                .unwrap_or(DEFAULT_EXAMPLES)
                .min(MAX_EXAMPLES),
            // Optional: local OpenAI-compatible servers often need no key.
            api_key: config::secret("api-key"),
        })
    }
}

fn extract_invoice(_ctx: &Call, input: ExtractIn) -> Result<ExtractedInvoice, Failure> {
    if input.document.trim().is_empty() {
        return Err(Failure::invalid_input("`document` must not be empty"));
    }
    let settings = Settings::from_config()?;
    let examples = if settings.examples == 0 {
        Vec::new()
    } else {
        examples_from(feedback::corrections(ACTION, settings.examples))
    };
    let body = request_body(&settings.model, &messages(&input.document, &examples));
    log::info(&format!(
        "asking {} with {} few-shot example(s)",
        settings.model,
        examples.len()
    ));

    let mut request = Request::new(
        Method::Post,
        endpoint(&settings.base_url, "/chat/completions"),
    )
    .json(&body);
    if let Some(key) = &settings.api_key {
        request = request.bearer(key);
    }
    let response = request.send().map_err(|e| e.upstream_failure(SERVICE))?;
    let content = completion_content(&response)?;
    let (invoice, doubts) = read(&parse_content(&content)?);
    for doubt in &doubts {
        log::warn(&format!("confidence lowered: {doubt}"));
    }
    Ok(invoice)
}

/// The model's object as the output: [`invoice_from`], its confidence from [`assess`],
/// and missing line numbers reported as 0. Also returns the doubts.
pub fn read(value: &Value) -> (ExtractedInvoice, Vec<String>) {
    let mut invoice = invoice_from(value);
    let (confidence, doubts) = assess(&invoice, stated_confidence(value));
    invoice.confidence = confidence;
    for line in &mut invoice.lines {
        line.quantity = zero_nan(line.quantity);
        line.unit_price = zero_nan(line.unit_price);
    }
    (invoice, doubts)
}

/// Few-shot examples from corrections (newest first, as `feedback` serves them):
/// oldest first, so the newest is nearest the question. Corrections whose input has no
/// `document` string are skipped.
pub fn examples_from(corrections: Vec<Correction>) -> Vec<Example> {
    let mut examples: Vec<Example> = corrections
        .into_iter()
        .filter_map(|c| {
            let document = c.input.get("document")?.as_str()?.to_string();
            let answer = match c.corrected {
                Value::String(text) => text,
                other => other.to_string(),
            };
            Some(Example { document, answer })
        })
        .collect();
    examples.reverse();
    examples
}

/// The chat: instructions, the examples as user/assistant pairs, then the document.
pub fn messages(document: &str, examples: &[Example]) -> Vec<Value> {
    let mut messages = vec![json!({ "role": "system", "content": SYSTEM_PROMPT })];
    for example in examples {
        messages.push(json!({ "role": "user", "content": example.document }));
        messages.push(json!({ "role": "assistant", "content": example.answer }));
    }
    messages.push(json!({ "role": "user", "content": document }));
    messages
}

/// The chat-completions request: deterministic, JSON out.
pub fn request_body(model: &str, messages: &[Value]) -> Value {
    json!({
        "model": model,
        "temperature": 0,
        "response_format": { "type": "json_object" },
        "messages": messages,
    })
}

/// The model's answer text from a chat-completions response, or the failure.
fn completion_content(response: &Response) -> Result<String, Failure> {
    response.success(SERVICE)?;
    let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
        unreadable(
            format!("the LLM's response is not JSON: {e}"),
            &response.text(),
        )
    })?;
    content_of(&body).map(str::to_string)
}

/// `choices[0].message.content` (a string, or the text of content parts).
pub fn content_of(body: &Value) -> Result<&str, Failure> {
    let message = &body["choices"][0]["message"];
    match &message["content"] {
        Value::String(text) => Ok(text),
        _ => Err(unreadable(
            "the LLM's response has no `choices[0].message.content` text".to_string(),
            &body.to_string(),
        )),
    }
}

/// The model's JSON object, tolerating a Markdown fence (```json ... ```) or words
/// around it.
pub fn parse_content(content: &str) -> Result<Value, Failure> {
    let text = strip_fence(content.trim());
    let parsed = serde_json::from_str::<Value>(text).or_else(|e| {
        // Prose around the object: try from the first `{` to the last `}`.
        match (text.find('{'), text.rfind('}')) {
            (Some(start), Some(end)) if start < end => {
                serde_json::from_str::<Value>(&text[start..=end]).map_err(|_| e)
            }
            _ => Err(e),
        }
    });
    match parsed {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(unreadable(
            "the LLM answered JSON that is not an object".to_string(),
            content,
        )),
        Err(e) => Err(unreadable(
            format!("the LLM's answer is not JSON: {e}"),
            content,
        )),
    }
}

fn strip_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    // Drop the info string (`json`) up to the end of the first line.
    let rest = rest.split_once('\n').map_or("", |(_, body)| body);
    let rest = rest.trim_end();
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// A retryable `unreadable_response` (a model may answer better next time), with what
/// it said, cut at 1,000 characters.
fn unreadable(message: String, content: &str) -> Failure {
    let shown: String = content.chars().take(1000).collect();
    Failure::new("unreadable_response", message)
        .retryable()
        .with_details(json!({ "content": shown }))
}

/// The extracted invoice from the model's object, leniently: numbers given as strings
/// (`"1,234.50"`) are read as numbers, and a missing field is null (tax and shipping:
/// 0; a line's quantity or unit price: NaN, for [`assess`] to see). The confidence is
/// left at 0 for [`assess`].
pub fn invoice_from(value: &Value) -> ExtractedInvoice {
    let lines = value["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|line| InvoiceLine {
                    sku: text(&line["sku"]).unwrap_or_default(),
                    description: text(&line["description"]).unwrap_or_default(),
                    quantity: number(&line["quantity"]).unwrap_or(f64::NAN),
                    unit_price: number(&line["unit_price"]).unwrap_or(f64::NAN),
                })
                .collect()
        })
        .unwrap_or_default();
    ExtractedInvoice {
        vendor: text(&value["vendor"]),
        invoice_number: text(&value["invoice_number"]),
        date: text(&value["date"]),
        po_number: text(&value["po_number"]),
        currency: text(&value["currency"]).map(|c| c.to_ascii_uppercase()),
        lines,
        tax: number(&value["tax"]).unwrap_or(0.0),
        shipping: number(&value["shipping"]).unwrap_or(0.0),
        total: number(&value["total"]),
        confidence: 0.0,
    }
}

/// The model's own `confidence`, if it gave a number.
fn stated_confidence(value: &Value) -> Option<f64> {
    number(&value["confidence"])
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ',')
            .collect::<String>()
            .parse()
            .ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

/// The confidence to report, and why it is lower than the model's.
///
/// Start from the model's stated confidence, clamped to 0..1 (0.5 if it stated none).
/// Halve it if a required field is missing (vendor, invoice_number, date, po_number,
/// currency, total, at least one line, each line's sku, quantity and unit_price); halve
/// it again if Σ quantity × unit_price + tax + shipping differs from total by more than
/// 0.01 (a missing quantity or unit price counts as 0). Rounded to three decimals.
pub fn assess(invoice: &ExtractedInvoice, stated: Option<f64>) -> (f64, Vec<String>) {
    let mut confidence = stated.map_or(UNSTATED_CONFIDENCE, |c| c.clamp(0.0, 1.0));
    let mut doubts = Vec::new();
    if stated.is_none() {
        doubts.push(format!(
            "the model stated no confidence ({UNSTATED_CONFIDENCE} assumed)"
        ));
    }

    let mut missing: Vec<String> = [
        ("vendor", invoice.vendor.is_none()),
        ("invoice_number", invoice.invoice_number.is_none()),
        ("date", invoice.date.is_none()),
        ("po_number", invoice.po_number.is_none()),
        ("currency", invoice.currency.is_none()),
        ("total", invoice.total.is_none()),
        ("lines", invoice.lines.is_empty()),
    ]
    .into_iter()
    .filter(|(_, absent)| *absent)
    .map(|(field, _)| field.to_string())
    .collect();
    for (i, line) in invoice.lines.iter().enumerate() {
        if line.sku.is_empty() {
            missing.push(format!("lines[{i}].sku"));
        }
        if line.quantity.is_nan() {
            missing.push(format!("lines[{i}].quantity"));
        }
        if line.unit_price.is_nan() {
            missing.push(format!("lines[{i}].unit_price"));
        }
    }
    if !missing.is_empty() {
        confidence *= PENALTY;
        doubts.push(format!("missing {}", missing.join(", ")));
    }

    let lines: f64 = invoice
        .lines
        .iter()
        .map(|l| zero_nan(l.quantity) * zero_nan(l.unit_price))
        .sum();
    let computed = lines + invoice.tax + invoice.shipping;
    if let Some(total) = invoice.total
        && (computed - total).abs() > TOLERANCE + 1e-9
    {
        confidence *= PENALTY;
        doubts.push(format!(
            "lines {lines:.2} + tax {:.2} + shipping {:.2} = {computed:.2}, but the total is {total:.2}",
            invoice.tax, invoice.shipping
        ));
    }
    ((confidence * 1000.0).round() / 1000.0, doubts)
}

fn zero_nan(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x }
}

#[cfg(test)]
mod tests;
