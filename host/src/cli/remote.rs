//! The CLI as a client of a running `baton serve` (`--server URL`): every request goes
//! over HTTP with a bearer token, and the server's JSON errors become the CLI's errors.

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Where a token comes from when neither `--token-file` nor `BATON_TOKEN` names one.
const DEFAULT_TOKEN_FILE: &str = "admin.token";
/// Largest response read (an audit export can be long).
const MAX_RESPONSE: u64 = 1 << 30;

/// A Baton server and the token to talk to it with.
pub struct Remote {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// A request body.
pub enum Body<'a> {
    None,
    Json(&'a Value),
    /// Raw bytes with their content type.
    Bytes(&'a [u8], &'a str),
}

impl Remote {
    /// Connects to `server` with the token from `BATON_TOKEN`, else `token_file`, else
    /// `DATA/admin.token`.
    pub fn new(server: &str, token_file: Option<&Path>, data: &Path) -> Result<Remote> {
        let token = match std::env::var("BATON_TOKEN") {
            Ok(token) if !token.trim().is_empty() => token,
            _ => {
                let default = data.join(DEFAULT_TOKEN_FILE);
                let file = token_file.unwrap_or(&default);
                std::fs::read_to_string(file).with_context(|| {
                    format!(
                        "no token to talk to {server}: set BATON_TOKEN, or --token-file FILE \
                         (cannot read {})",
                        file.display()
                    )
                })?
            }
        };
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            bail!(
                "the token for {server} is not a token (one line, like `bt_…`; check BATON_TOKEN or --token-file)"
            );
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Ok(Remote {
            base: server.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            agent,
        })
    }

    /// GETs `path` and decodes the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        decode(path, &self.send("GET", path, Body::None, &[])?)
    }

    /// POSTs to `path` and decodes the JSON answer.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Body<'_>,
        headers: &[(&str, &str)],
    ) -> Result<T> {
        decode(path, &self.send("POST", path, body, headers)?)
    }

    /// DELETEs `path` and decodes the JSON answer.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        decode(path, &self.send("DELETE", path, Body::None, &[])?)
    }

    /// GETs `path` as text (JSON Lines).
    pub fn text(&self, path: &str) -> Result<String> {
        self.send("GET", path, Body::None, &[])
    }

    /// Sends one request; a 4xx or 5xx becomes an error with the server's code,
    /// message and field.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Body<'_>,
        headers: &[(&str, &str)],
    ) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let json;
        let (bytes, content_type): (&[u8], &str) = match body {
            Body::None => (b"", "application/json"),
            Body::Json(value) => {
                json = serde_json::to_vec(value)?;
                (&json, "application/json")
            }
            Body::Bytes(bytes, content_type) => (bytes, content_type),
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", auth)
            .header("Content-Type", content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(bytes.to_vec())
            .with_context(|| format!("bad request to {url}"))?;
        let mut response = self.agent.run(request).with_context(|| {
            format!(
                "cannot reach the Baton server at {} (is `baton serve` running there?)",
                self.base
            )
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .with_context(|| format!("cannot read the answer to {method} {path}"))?;
        if status >= 400 {
            bail!("{}", server_error(status, &text));
        }
        Ok(text)
    }
}

fn decode<T: DeserializeOwned>(path: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .with_context(|| format!("the server's answer to {path} is not what this CLI expects"))
}

/// The server's JSON error as a sentence: message, then code and field.
fn server_error(status: u16, text: &str) -> String {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let error = &body["error"];
    match error["message"].as_str() {
        Some(message) => {
            let mut out = format!(
                "{message} (HTTP {status}, {}",
                error["code"].as_str().unwrap_or("error")
            );
            if let Some(field) = error["field"].as_str() {
                out.push_str(&format!(", field `{field}`"));
            }
            out.push(')');
            out
        }
        None => format!("the server answered HTTP {status}: {text}"),
    }
}

pub use baton::url::segment;

/// A query string from the pairs whose value is set (`?a=1&b=2`, or empty).
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_are_encoded() {
        assert_eq!(segment("lines[3].check"), "lines%5B3%5D.check");
        assert_eq!(
            query(&[
                ("key", Some("a b".into())),
                ("x", None),
                ("wait", Some("5s".into()))
            ]),
            "?key=a%20b&wait=5s"
        );
        assert_eq!(query(&[("x", None)]), "");
    }

    #[test]
    fn server_errors_read_as_sentences() {
        let text = r#"{"error":{"code":"invalid_json","message":"input is not valid JSON","field":"input"}}"#;
        assert_eq!(
            server_error(400, text),
            "input is not valid JSON (HTTP 400, invalid_json, field `input`)"
        );
        assert_eq!(
            server_error(502, "gateway"),
            "the server answered HTTP 502: gateway"
        );
    }
}
