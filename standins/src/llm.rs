//! The LLM stand-in: an OpenAI-compatible `POST /v1/chat/completions` that "reads" the
//! invoice document in the last user message with plain parsing, and can be told to
//! misread a field for a vendor until a few-shot example of that vendor is in the prompt.

use crate::http::{self, Auth, ErrorStyle, json, openai_error};
use crate::invoice_text::{self, name_key};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Confidence of a clean reading.
const CONFIDENT: f64 = 0.97;
/// Confidence of a misread.
const MISREAD: f64 = 0.62;
/// Confidence when the document lacked what an invoice needs.
const GUESS: f64 = 0.3;

/// A field to misread for a vendor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Misread {
    pub vendor: String,
    /// A top-level field of the extracted invoice, or a dotted path into it
    /// (`lines.0.quantity`).
    pub field: String,
    pub value: Value,
}

impl std::str::FromStr for Misread {
    type Err = String;

    /// `VENDOR:FIELD=VALUE`: the vendor ends at the last `:` before the first `=`, so
    /// vendor names may hold colons and values may hold anything. VALUE is JSON if it
    /// parses as JSON (`600`, `true`, `"x"`), else the text itself.
    fn from_str(spec: &str) -> Result<Misread, String> {
        let bad = || format!("expected VENDOR:FIELD=VALUE, got {spec:?}");
        let (target, value) = spec.split_once('=').ok_or_else(bad)?;
        let (vendor, field) = target.rsplit_once(':').ok_or_else(bad)?;
        let (vendor, field) = (vendor.trim(), field.trim());
        if vendor.is_empty() || field.is_empty() {
            return Err(bad());
        }
        Ok(Misread {
            vendor: vendor.to_owned(),
            field: field.to_owned(),
            value: serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into())),
        })
    }
}

/// Injected failures: the next `times` completions answer `status`.
#[derive(Debug, Default, Deserialize)]
struct Failure {
    status: u16,
    #[serde(default = "once")]
    times: u32,
}

fn once() -> u32 {
    1
}

/// The LLM's state: what to misread, what failures to inject, and every request.
pub struct Llm {
    misreads: Mutex<Vec<Misread>>,
    failure: Mutex<Failure>,
    requests: Mutex<Vec<Value>>,
    answered: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Llm {
    /// An LLM that misreads as `misreads` say.
    pub fn new(misreads: Vec<Misread>) -> Llm {
        Llm {
            misreads: Mutex::new(misreads),
            failure: Mutex::new(Failure::default()),
            requests: Mutex::new(Vec::new()),
            answered: AtomicU64::new(0),
        }
    }

    /// Reads the document of `messages`' last user message; `None` without one.
    fn extract(&self, messages: &[Value]) -> Option<Value> {
        let last_user = messages.iter().rposition(|m| m["role"] == "user")?;
        let parsed = invoice_text::parse(&content_text(&messages[last_user]["content"]));
        let mut extracted = parsed.to_json();
        let mut confidence = if parsed.is_complete() {
            CONFIDENT
        } else {
            GUESS
        };
        if let Some(vendor) = parsed.vendor.as_deref().map(name_key) {
            // A correction of this vendor among the few-shot examples cures the misread.
            let taught = messages[..last_user]
                .iter()
                .filter(|m| m["role"] == "assistant")
                .filter_map(|m| serde_json::from_str::<Value>(&content_text(&m["content"])).ok())
                .any(|example| example["vendor"].as_str().map(name_key) == Some(vendor.clone()));
            if !taught {
                for misread in lock(&self.misreads)
                    .iter()
                    .filter(|m| name_key(&m.vendor) == vendor)
                {
                    set_path(&mut extracted, &misread.field, misread.value.clone());
                    confidence = confidence.min(MISREAD);
                }
            }
        }
        extracted["confidence"] = confidence.into();
        Some(extracted)
    }

    /// The injected failure status for this request, if one is pending.
    fn take_failure(&self) -> Option<StatusCode> {
        let mut failure = lock(&self.failure);
        if failure.times == 0 {
            return None;
        }
        failure.times -= 1;
        StatusCode::from_u16(failure.status).ok()
    }
}

/// The text of a message's `content`: a string, or the text parts of an array of parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Sets the field at dotted `path` (object keys and array indexes); a path that leads
/// nowhere changes nothing.
fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut target = root;
    for part in path.split('.') {
        target = match target {
            Value::Object(map) => map.entry(part).or_insert(Value::Null),
            Value::Array(items) => {
                match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => return,
                }
            }
            _ => return,
        };
    }
    *target = value;
}

/// The LLM's routes: the API under `/v1` (bearer key, OpenAI error shapes), control
/// under `/control` and, for callers that only know the base URL, `/v1/control`.
pub fn router(llm: Arc<Llm>, key: Arc<str>) -> Router {
    let auth = Auth {
        key,
        style: ErrorStyle::OpenAi,
    };
    let mut router = auth.guard(Router::new().route("/v1/chat/completions", post(completions)));
    for prefix in ["/control", "/v1/control"] {
        router = router
            .route(
                &format!("{prefix}/misread"),
                get(list_misreads).post(add_misread).delete(clear_misreads),
            )
            .route(
                &format!("{prefix}/requests"),
                get(list_requests).delete(clear_requests),
            )
            .route(&format!("{prefix}/fail"), post(set_failure));
    }
    router.fallback(http::not_found).with_state(llm)
}

async fn completions(State(llm): State<Arc<Llm>>, body: Bytes) -> Response {
    let invalid =
        |message: &str| openai_error(StatusCode::BAD_REQUEST, "invalid_request_error", message);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    lock(&llm.requests).push(request.clone());
    if let Some(status) = llm.take_failure() {
        let kind = if status == StatusCode::TOO_MANY_REQUESTS {
            "rate_limit_error"
        } else {
            "server_error"
        };
        return openai_error(status, kind, "injected failure");
    }
    let Some(messages) = request["messages"].as_array() else {
        return invalid("messages is required");
    };
    let Some(extracted) = llm.extract(messages) else {
        return invalid("no user message to answer");
    };
    let content = extracted.to_string();
    let n = llm.answered.fetch_add(1, Ordering::Relaxed) + 1;
    // Token counts are rough (four characters a token); nothing depends on them.
    let prompt_tokens: usize = messages
        .iter()
        .map(|m| content_text(&m["content"]).len() / 4 + 1)
        .sum();
    let completion_tokens = content.len() / 4 + 1;
    json(
        StatusCode::OK,
        json!({
            "id": format!("chatcmpl-{n:06}"),
            "object": "chat.completion",
            "created": crate::state::now_ms() / 1000,
            "model": request["model"].as_str().unwrap_or("baton-standin"),
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content },
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }),
    )
}

async fn list_misreads(State(llm): State<Arc<Llm>>) -> Response {
    let misreads = lock(&llm.misreads).clone();
    json(StatusCode::OK, json!({ "misreads": misreads }))
}

/// Adds a misread, replacing one of the same vendor and field.
async fn add_misread(State(llm): State<Arc<Llm>>, body: Bytes) -> Response {
    let misread: Misread = match serde_json::from_slice(&body) {
        Ok(misread) => misread,
        Err(e) => {
            return http::error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"vendor\", \"field\", \"value\"}}: {e}"),
            );
        }
    };
    let mut misreads = lock(&llm.misreads);
    misreads.retain(|m| {
        !(name_key(&m.vendor) == name_key(&misread.vendor) && m.field == misread.field)
    });
    misreads.push(misread);
    json(StatusCode::OK, json!({ "misreads": *misreads }))
}

async fn clear_misreads(State(llm): State<Arc<Llm>>) -> Response {
    lock(&llm.misreads).clear();
    json(StatusCode::OK, json!({ "misreads": [] }))
}

async fn list_requests(State(llm): State<Arc<Llm>>) -> Response {
    let requests = lock(&llm.requests).clone();
    json(StatusCode::OK, json!({ "requests": requests }))
}

async fn clear_requests(State(llm): State<Arc<Llm>>) -> Response {
    lock(&llm.requests).clear();
    json(StatusCode::OK, json!({ "requests": [] }))
}

/// `POST /control/fail {"status": 429, "times": 1}`: the next `times` completions
/// answer `status` (4xx or 5xx) in OpenAI's error shape.
async fn set_failure(State(llm): State<Arc<Llm>>, body: Bytes) -> Response {
    let failure: Failure = match serde_json::from_slice(&body) {
        Ok(failure) => failure,
        Err(e) => {
            return http::error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"status\", \"times\"}}: {e}"),
            );
        }
    };
    if !(400..=599).contains(&failure.status) {
        return http::error(StatusCode::BAD_REQUEST, "status must be 4xx or 5xx");
    }
    let answer = json!({ "status": failure.status, "times": failure.times });
    *lock(&llm.failure) = failure;
    json(StatusCode::OK, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misread_specs_split_at_the_right_places() {
        let m: Misread = "Acme: Ltd.:total=600".parse().unwrap();
        assert_eq!(
            (m.vendor.as_str(), m.field.as_str()),
            ("Acme: Ltd.", "total")
        );
        assert_eq!(m.value, json!(600));
        let m: Misread = "Acme:invoice_number=INV=1".parse().unwrap();
        assert_eq!(m.value, json!("INV=1"));
        assert!("no field here".parse::<Misread>().is_err());
    }

    #[test]
    fn dotted_paths_reach_into_lines() {
        let mut v = json!({ "lines": [{ "quantity": 1 }] });
        set_path(&mut v, "lines.0.quantity", json!(9));
        set_path(&mut v, "lines.5.quantity", json!(9));
        assert_eq!(v, json!({ "lines": [{ "quantity": 9 }] }));
    }
}
