//! `payments`: schedules supplier payments at the payment service of
//! `examples/invoice/SYSTEMS.md`, exactly once per workflow step (the step's idempotency
//! key travels as `Idempotency-Key`). See README.md.

use baton_sdk::config;
use baton_sdk::http::{Method, Request, Response, endpoint};
use baton_sdk::prelude::*;
use serde_json::json;

baton_sdk::connector! {
    name: "payments", version: "0.1.0",
    description: "Payment service connector: schedule supplier payments exactly once",
    hosts: ["*"], secrets: ["api-key"],
    actions: {
        "schedule-payment" => schedule_payment: "Schedule a payment to a vendor, exactly once per workflow step",
    }
}

/// How failure messages name the far end.
const SERVICE: &str = "the payment service";

/// A payment to schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentIn {
    /// Who is paid.
    pub payee: Payee,
    /// The amount, greater than 0.
    pub amount: f64,
    /// ISO 4217 currency code, e.g. `EUR`.
    pub currency: String,
    /// What the payee sees on their statement, e.g. the invoice number.
    pub reference: String,
    /// When to pay, `YYYY-MM-DD`; the service's default (as soon as possible) if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
}

/// The receiving vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Payee {
    /// The vendor's id in the ERP, e.g. `V-001`.
    pub vendor_id: String,
    /// The vendor's name.
    pub name: String,
    /// The vendor's bank account.
    pub iban: String,
}

/// The scheduled payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentOut {
    /// The payment service's id, e.g. `PAY-000001`.
    pub id: String,
    /// `scheduled`.
    pub status: String,
    /// The amount scheduled.
    pub amount: f64,
    /// Its currency.
    pub currency: String,
}

fn schedule_payment(ctx: &Call, input: PaymentIn) -> Result<PaymentOut, Failure> {
    check(ctx, &input)?;
    let base_url = config::require_str("base_url")?;
    let api_key = config::require_secret("api-key")?;
    let response = Request::new(Method::Post, endpoint(&base_url, "/v1/payments"))
        .bearer(&api_key)
        .header("Idempotency-Key", &ctx.idempotency_key)
        .json(&input)
        .send()
        .map_err(|e| e.upstream_failure(SERVICE))?;
    scheduled(&input, &response)
}

/// What must hold before money moves: a key that makes retries safe, and a sane payment.
fn check(ctx: &Call, input: &PaymentIn) -> Result<(), Failure> {
    if ctx.idempotency_key.trim().is_empty() {
        return Err(Failure::new(
            "missing_idempotency_key",
            "the call has no idempotency key; without one a retry could pay twice, so no \
             payment was scheduled (run this action from a workflow step)",
        ));
    }
    if !(input.amount.is_finite() && input.amount > 0.0) {
        return Err(Failure::invalid_input(format!(
            "`amount` must be greater than 0, got {}",
            input.amount
        )));
    }
    for (field, value) in [
        ("payee.vendor_id", &input.payee.vendor_id),
        ("payee.iban", &input.payee.iban),
        ("currency", &input.currency),
        ("reference", &input.reference),
    ] {
        if value.trim().is_empty() {
            return Err(Failure::invalid_input(format!(
                "`{field}` must not be empty"
            )));
        }
    }
    Ok(())
}

/// The answer to `POST /v1/payments`: 201 (scheduled) or 200 (the same key and body
/// again: the same payment); 422 means the key was used for another payment or, when
/// the error does not mention the idempotency key, that the request was invalid.
fn scheduled(input: &PaymentIn, response: &Response) -> Result<PaymentOut, Failure> {
    if response.status == 422 {
        let error = response.error_message();
        if !error.to_ascii_lowercase().contains("idempotency") {
            return Err(Failure::new(
                "invalid_payment",
                format!("the payment service refused the payment: {error}"),
            )
            .with_details(json!({ "status": 422, "error": error })));
        }
        return Err(Failure::new(
            "idempotency_conflict",
            format!(
                "the payment service refused payment `{}`: {error} (the step's idempotency key \
                 already scheduled a different payment)",
                input.reference
            ),
        )
        .with_details(json!({ "status": 422, "error": error, "reference": input.reference })));
    }
    Ok(response.success(SERVICE)?.json()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(key: &str) -> Call {
        Call {
            run_id: "run-1".into(),
            step_id: "pay".into(),
            attempt: 1,
            idempotency_key: key.into(),
        }
    }

    fn payment() -> PaymentIn {
        serde_json::from_value(json!({
            "payee": {"vendor_id": "V-001", "name": "Acme Supplies Ltd.", "iban": "DE89370400440532013000"},
            "amount": 634.75, "currency": "EUR", "reference": "INV-1001"
        }))
        .unwrap()
    }

    fn response(status: u16, body: serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn no_key_no_payment() {
        let f = check(&call(""), &payment()).unwrap_err();
        assert_eq!(f.code, "missing_idempotency_key");
        assert!(!f.retryable);
        // Through the exported entry point too, before config is even looked at.
        let f = BatonPlugin::invoke(
            &call(" "),
            "schedule-payment",
            &serde_json::to_string(&payment()).unwrap(),
        )
        .unwrap_err();
        assert_eq!(f.code, "missing_idempotency_key");
        assert!(check(&call("run-1/pay"), &payment()).is_ok());
    }

    #[test]
    fn nonsense_payments_are_refused() {
        let mut p = payment();
        p.amount = 0.0;
        assert_eq!(check(&call("k"), &p).unwrap_err().code, "invalid_input");
        let mut p = payment();
        p.payee.iban = " ".into();
        let f = check(&call("k"), &p).unwrap_err();
        assert!(f.message.contains("payee.iban"), "{f}");
    }

    #[test]
    fn the_body_is_the_contracts() {
        let body = serde_json::to_value(payment()).unwrap();
        assert_eq!(body["payee"]["iban"], "DE89370400440532013000");
        assert!(body.get("due_date").is_none(), "absent stays absent");
        let mut p = payment();
        p.due_date = Some("2026-12-01".into());
        assert_eq!(serde_json::to_value(p).unwrap()["due_date"], "2026-12-01");
    }

    #[test]
    fn answers_map_to_outputs_and_failures() {
        let ok = response(
            201,
            json!({"id": "PAY-000001", "status": "scheduled", "amount": 634.75, "currency": "EUR",
                   "payee": {"vendor_id": "V-001"}, "reference": "INV-1001"}),
        );
        let out = scheduled(&payment(), &ok).unwrap();
        assert_eq!(out.id, "PAY-000001");
        assert_eq!(out.amount, 634.75);

        let conflict = response(
            422,
            json!({"error": "idempotency key reused with a different request"}),
        );
        let f = scheduled(&payment(), &conflict).unwrap_err();
        assert_eq!(
            (f.code.as_str(), f.retryable),
            ("idempotency_conflict", false)
        );
        assert_eq!(f.details.unwrap()["reference"], "INV-1001");

        let invalid = response(422, json!({"error": "payee.iban is required"}));
        let f = scheduled(&payment(), &invalid).unwrap_err();
        assert_eq!((f.code.as_str(), f.retryable), ("invalid_payment", false));

        let f = scheduled(&payment(), &response(503, json!({"error": "down"}))).unwrap_err();
        assert_eq!(
            (f.code.as_str(), f.retryable),
            ("upstream_unavailable", true)
        );
        let f = scheduled(&payment(), &response(429, json!({}))).unwrap_err();
        assert!(f.retryable);
        let f =
            scheduled(&payment(), &response(401, json!({"error": "unauthorized"}))).unwrap_err();
        assert_eq!((f.code.as_str(), f.retryable), ("unauthorized", false));
    }

    #[test]
    fn a_missing_base_url_is_named() {
        let f = BatonPlugin::invoke(
            &call("run-1/pay"),
            "schedule-payment",
            &serde_json::to_string(&payment()).unwrap(),
        )
        .unwrap_err();
        assert_eq!(f.code, "invalid_config");
        assert!(f.message.contains("`base_url`"), "{f}");
    }
}
