//! `http`: a generic REST connector. One action, `request`, sends any HTTP request to a
//! host the admin granted; see README.md.

use std::collections::BTreeMap;

use baton_sdk::config;
use baton_sdk::http::{Method, Request};
use baton_sdk::prelude::*;
use serde_json::Value;

baton_sdk::connector! {
    name: "http", version: "0.1.0", description: "Generic REST connector: call any granted host",
    hosts: ["*"], secrets: ["token"],
    actions: {
        "request" => request: "Send an HTTP request and return the response",
    }
}

/// An HTTP request.
#[derive(Deserialize, JsonSchema)]
pub struct RequestIn {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, `OPTIONS` or another method.
    pub method: String,
    /// An `http://` or `https://` URL on a granted host.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, sent with `content-type: application/json` (unless set in `headers`).
    #[serde(default)]
    pub body: Option<Value>,
    /// Name of a granted secret to send as `Authorization: Bearer <secret>`.
    #[serde(default)]
    pub bearer_secret: Option<String>,
}

/// An HTTP response with a 2xx status.
#[derive(Serialize, JsonSchema)]
pub struct RequestOut {
    /// The status code.
    pub status: u16,
    /// Response headers (lowercase names; repeated headers joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body: parsed JSON if the response is JSON, otherwise text (null if empty).
    pub body: Value,
}

fn request(ctx: &Call, input: RequestIn) -> Result<RequestOut, Failure> {
    let method = Method::parse(&input.method);
    let safe = matches!(method, Method::Get | Method::Head | Method::Options);
    let mut req = Request::new(method, input.url.as_str());
    let mut has_content_type = false;
    for (name, value) in &input.headers {
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        req = req.header(name.as_str(), value);
    }
    if let Some(name) = &input.bearer_secret {
        let token = config::secret(name).ok_or_else(|| {
            Failure::new(
                "secret_not_granted",
                format!(
                    "secret `{name}` is not granted to this plugin (the http plugin requests \
                     only `token`; an admin must grant it)"
                ),
            )
        })?;
        req = req.bearer(&token);
    }
    // Unsafe methods carry the step's idempotency key, so retries are exactly-once at
    // the far end (when it honours the header), unless the caller set one.
    if !safe
        && !ctx.idempotency_key.is_empty()
        && !input
            .headers
            .keys()
            .any(|n| n.eq_ignore_ascii_case("idempotency-key"))
    {
        req = req.header("idempotency-key", &ctx.idempotency_key);
    }
    if let Some(body) = &input.body {
        req = match body {
            // With an explicit content type, a JSON string is sent as it is (XML, forms).
            Value::String(text) if has_content_type => req.body(text.as_bytes()),
            _ if has_content_type => req.body(body.to_string()),
            _ => req.json(body),
        };
    }
    let response = req.send()?;

    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &response.headers {
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    let is_json = response
        .header("content-type")
        .map(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json")
        })
        .unwrap_or(false);
    let body = if response.body.is_empty() {
        Value::Null
    } else if is_json {
        response
            .json::<Value>()
            .unwrap_or_else(|_| Value::String(response.text()))
    } else {
        Value::String(response.text())
    };

    if !response.is_success() {
        let status = response.status;
        let retryable = response.is_retryable_status();
        return Err(Failure::new(
            "http_status",
            format!(
                "{} {} answered with status {status}",
                input.method.to_ascii_uppercase(),
                input.url
            ),
        )
        .with_retryable(retryable)
        .with_details(serde_json::json!({ "status": status, "body": body })));
    }
    Ok(RequestOut {
        status: response.status,
        headers,
        body,
    })
}
