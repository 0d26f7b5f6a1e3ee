//! The payment service stand-in: schedules payments, de-duplicated by `Idempotency-Key`,
//! and counts every request so a test can tell a retry from a second payment.

use crate::http::{self, Auth, Kind, check_fields, error, idempotency_key, json};
use crate::state::{KeyUse, PaymentBook, Persisted, Step};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;

/// The fields a payment must carry.
const PAYMENT_FIELDS: &[(&str, Kind)] = &[
    ("payee", Kind::Obj),
    ("amount", Kind::Num),
    ("currency", Kind::Str),
    ("reference", Kind::Str),
];

/// The fields of `payee`.
const PAYEE_FIELDS: &[(&str, Kind)] = &[
    ("vendor_id", Kind::Str),
    ("name", Kind::Str),
    ("iban", Kind::Str),
];

/// The payment service's routes, all behind the bearer key.
pub fn router(book: Arc<Persisted<PaymentBook>>, auth: &Auth) -> Router {
    let api = Router::new().route("/v1/payments", post(create).get(list));
    auth.guard(api).fallback(http::not_found).with_state(book)
}

/// Schedules a payment. Every request is counted first; then: key present (400), body
/// JSON (400), key seen (200 with the same body, else 422), fields (422), 201.
async fn create(
    State(book): State<Arc<Persisted<PaymentBook>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = idempotency_key(&headers);
    let body = http::object_body(&body);
    let answer = book.update(|book| {
        book.requests += 1;
        Step::Save(answer(book, key, body))
    });
    answer.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))
}

fn answer(
    book: &mut PaymentBook,
    key: Option<String>,
    body: Result<serde_json::Map<String, Value>, String>,
) -> Response {
    let Some(key) = key else {
        return error(
            StatusCode::BAD_REQUEST,
            "the Idempotency-Key header is required",
        );
    };
    let body = match body {
        Ok(body) => Value::Object(body),
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Some(used) = book.keys.get(&key) {
        if used.request != body {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency key reused with a different request",
            );
        }
        let payment = book
            .payments
            .iter()
            .find(|p| p["id"] == used.payment_id.as_str())
            .cloned();
        return json(StatusCode::OK, payment.unwrap_or(Value::Null));
    }
    if let Some(problem) = problem(&body) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, problem);
    }
    let id = format!("PAY-{:06}", book.payments.len() + 1);
    let mut payment = body.clone();
    payment["id"] = id.clone().into();
    payment["status"] = "scheduled".into();
    book.payments.push(payment.clone());
    book.keys.insert(
        key,
        KeyUse {
            request: body,
            payment_id: id,
        },
    );
    json(StatusCode::CREATED, payment)
}

/// What is wrong with a payment request, naming the field.
fn problem(body: &Value) -> Option<String> {
    let map = body.as_object()?;
    if let Some(problem) = check_fields(map, PAYMENT_FIELDS) {
        return Some(problem);
    }
    if let Some(problem) = check_fields(map["payee"].as_object()?, PAYEE_FIELDS) {
        return Some(format!("payee: {problem}"));
    }
    if map["amount"].as_f64().is_none_or(|a| a <= 0.0) {
        return Some("amount must be positive".into());
    }
    match map.get("due_date") {
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(_) => Some("due_date must be a string".into()),
    }
}

async fn list(State(book): State<Arc<Persisted<PaymentBook>>>) -> Response {
    let (payments, requests) = book.read(|b| (b.payments.clone(), b.requests));
    json(
        StatusCode::OK,
        json!({ "payments": payments, "requests": requests }),
    )
}
