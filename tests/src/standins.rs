//! The real `baton-standins` binary (the ERP, LLM, payment service and chat/mail sink of
//! `examples/invoice/SYSTEMS.md`) for end-to-end tests.

use crate::fresh_bin;
use crate::http::{Response, request};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The bearer key the stand-ins accept unless started with `--api-key`.
pub const DEFAULT_KEY: &str = "demo-key";

/// A running `baton-standins`; killed when dropped. It also exits by itself when this
/// process dies (it runs with `--exit-with-stdin`, and only the child holds the pipe).
pub struct StandIns {
    /// ERP base URL, `http://127.0.0.1:PORT`.
    pub erp: String,
    /// LLM base URL, `http://127.0.0.1:PORT/v1`.
    pub llm: String,
    /// Payment service base URL.
    pub payments: String,
    /// Chat and mail sink base URL.
    pub sink: String,
    /// The bearer key they accept.
    pub key: String,
    child: Child,
}

/// The `baton-standins` binary, built here if it is missing or older than its sources.
pub fn standins_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| fresh_bin("baton-standins", "baton-standins", &["standins/src"]))
        .clone()
}

impl StandIns {
    /// Starts the stand-ins with `args` (e.g. `["--misread", "Acme:total=600"]`) on
    /// ports the OS picks, and waits until all four listen.
    pub fn start(args: &[&str]) -> StandIns {
        let mut child = Command::new(standins_bin())
            .args(args)
            .arg("--exit-with-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("baton-standins starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("baton-standins prints its URLs");
        let urls: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("baton-standins printed no URLs ({e}): {line:?}"));
        let url = |name: &str| {
            urls[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {line}"))
                .to_owned()
        };
        let key = args
            .iter()
            .position(|a| *a == "--api-key")
            .and_then(|i| args.get(i + 1))
            .map_or(DEFAULT_KEY, |k| k)
            .to_owned();
        StandIns {
            erp: url("erp"),
            llm: url("llm"),
            payments: url("payments"),
            sink: url("sink"),
            key,
            child,
        }
    }

    /// A request to `url` with the stand-ins' key (ignored where none is needed).
    pub fn call(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Response {
        call(method, url, Some(&self.key), headers, body)
    }

    /// GET `url` with the key; panics unless the answer is 200 and JSON.
    pub fn get_json(&self, url: &str) -> Value {
        let response = self.call("GET", url, &[], "");
        assert_eq!(response.status, 200, "GET {url}: {}", response.body);
        response.json()
    }

    /// POST JSON `body` to `url` with the key; returns the response.
    pub fn post_json(&self, url: &str, headers: &[(&str, &str)], body: &Value) -> Response {
        let mut headers = headers.to_vec();
        headers.push(("Content-Type", "application/json"));
        self.call("POST", url, &headers, &body.to_string())
    }

    /// The server root of the LLM (its URL without `/v1`), where `/control` lives.
    pub fn llm_root(&self) -> &str {
        self.llm.trim_end_matches("/v1")
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request to a full `http://HOST:PORT/path` URL.
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
    let (address, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    request(address, method, path, token, headers, body.as_bytes())
}

/// GET `url` without a key (the stand-ins' `/messages` and `/control` need none);
/// panics unless the answer is 200 and JSON.
pub fn get_json(url: &str) -> Value {
    let response = call("GET", url, None, &[], "");
    assert_eq!(response.status, 200, "GET {url}: {}", response.body);
    response.json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn starts_answers_and_goes_away() {
        let standins = StandIns::start(&["--api-key", "k"]);
        assert_eq!(standins.key, "k");
        let posted = standins.post_json(
            &format!("{}/mail/v3/mail/send", standins.sink),
            &[],
            &json!({ "personalizations": [{ "to": [{ "email": "a@example.com" }] }],
                     "from": { "email": "b@example.com" }, "subject": "s",
                     "content": [{ "type": "text/plain", "value": "v" }] }),
        );
        assert_eq!(posted.status, 202, "{}", posted.body);
        let messages = get_json(&format!("{}/messages", standins.sink));
        assert_eq!(messages["messages"][0]["to"], "a@example.com");
        let requests = get_json(&format!("{}/control/requests", standins.llm_root()));
        assert_eq!(requests["requests"], json!([]));
        let address = standins.sink.trim_start_matches("http://").to_owned();
        drop(standins);
        assert!(
            std::net::TcpStream::connect(address).is_err(),
            "the child is gone"
        );
    }
}
