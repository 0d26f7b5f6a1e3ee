//! Pieces every stand-in server shares: JSON answers, bearer-key checks, request bodies.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, middleware};
use serde_json::{Value, json};
use std::sync::Arc;

/// A JSON answer.
pub fn json(status: StatusCode, value: Value) -> Response {
    (status, Json(value)).into_response()
}

/// `{"error": message}` with `status`, the error shape of the ERP and the payment service.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, json!({ "error": message.into() }))
}

/// How a server words its errors.
#[derive(Clone, Copy)]
pub enum ErrorStyle {
    /// `{"error": "message"}`
    Plain,
    /// OpenAI's `{"error": {"message", "type"}}`.
    OpenAi,
}

/// The key a server expects as `Authorization: Bearer <key>`.
#[derive(Clone)]
pub struct Auth {
    pub key: Arc<str>,
    pub style: ErrorStyle,
}

impl Auth {
    /// Adds the key check to every route of `router` added so far.
    pub fn guard<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        router.route_layer(middleware::from_fn_with_state(self.clone(), require_key))
    }
}

async fn require_key(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if presented == Some(&*auth.key) {
        return next.run(request).await;
    }
    match auth.style {
        ErrorStyle::Plain => error(StatusCode::UNAUTHORIZED, "unauthorized"),
        ErrorStyle::OpenAi => openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided",
        ),
    }
}

/// The largest request body a stand-in reads.
const MAX_BODY: usize = 16 << 20;

/// Reads the whole request body before any handler answers, as nginx's lingering close
/// does. Answering early (a rejected key, an injected outage) and closing a connection
/// with unread bytes makes the kernel send a reset, and a client still writing its body
/// may then lose the response and see a protocol error instead of the status.
pub async fn read_whole_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => next.run(Request::from_parts(parts, bytes.into())).await,
        Err(e) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body could not be read (at most {MAX_BODY} bytes): {e}"),
        ),
    }
}

/// An error in OpenAI's shape.
pub fn openai_error(status: StatusCode, kind: &str, message: &str) -> Response {
    json(
        status,
        json!({ "error": { "message": message, "type": kind, "code": null } }),
    )
}

/// The answer to a path no stand-in serves.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such path")
}

/// The `Idempotency-Key` header, if present and not blank.
pub fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// The body as a JSON object, or the message saying why it is not one. Read by hand
/// rather than with `Json<T>` so the error says what is wrong in the stand-in's shape.
pub fn object_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

/// Which required fields of `body` are missing or of the wrong type: the first problem,
/// as a message naming the field.
pub fn check_fields(
    body: &serde_json::Map<String, Value>,
    fields: &[(&str, Kind)],
) -> Option<String> {
    for (name, kind) in fields {
        match body.get(*name) {
            None | Some(Value::Null) => return Some(format!("missing field {name}")),
            Some(value) if !kind.matches(value) => {
                return Some(format!("{name} must be {}", kind.describe()));
            }
            _ => {}
        }
    }
    None
}

/// The JSON type a field must have.
#[derive(Clone, Copy)]
pub enum Kind {
    Str,
    Num,
    Arr,
    Obj,
}

impl Kind {
    fn matches(self, value: &Value) -> bool {
        match self {
            Kind::Str => value.as_str().is_some_and(|s| !s.trim().is_empty()),
            Kind::Num => value.is_number(),
            Kind::Arr => value.is_array(),
            Kind::Obj => value.is_object(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Str => "a non-empty string",
            Kind::Num => "a number",
            Kind::Arr => "an array",
            Kind::Obj => "an object",
        }
    }
}

/// `f` as a JSON number, an integer when it is a whole one (so `10` reads as `10`, not
/// `10.0`).
pub fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}
