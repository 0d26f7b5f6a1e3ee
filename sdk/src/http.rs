//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//! **Connectors only**: the rule world has no network.
//!
//! A request leaves the sandbox only if its host is both requested by the plugin (the
//! `hosts` of [`connector!`](crate::connector)) and granted by the admin; otherwise it
//! fails with [`HttpError::Denied`], which becomes a `host_denied` [`Failure`].
//!
//! ```no_run
//! use baton_sdk::http::{self, Method, Request};
//! # fn main() -> Result<(), baton_sdk::Failure> {
//! let po: serde_json::Value = http::get("https://erp.example.com/po/PO-1")?.json()?;
//! let created = Request::new(Method::Post, "https://erp.example.com/invoices")
//!     .bearer("token")
//!     .header("Idempotency-Key", "run-1/post")
//!     .json(&po)
//!     .send()?;
//! assert!(created.is_success());
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Failure;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// Any other method, e.g. `PROPFIND`.
    Other(String),
}

impl Method {
    /// Parse a method name, case-insensitively for the standard ones.
    pub fn parse(name: &str) -> Method {
        match name.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other(name.to_string()),
        }
    }

    /// The method's name, e.g. `GET`.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(name) => name,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The host refused the request: the target host was not granted to this plugin.
    Denied {
        /// The host (with its port, if the URL has one) the request was for.
        host: String,
    },
    /// The request timed out (DNS, connect, first byte or between bytes).
    Timeout(String),
    /// The connection failed: DNS, refused, reset, TLS, incomplete response.
    Connection(String),
    /// The request itself is invalid: bad URL, header, method or body.
    InvalidRequest(String),
    /// The response could not be read or decoded (for example, not the JSON expected).
    InvalidResponse(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied { host } => write!(
                f,
                "the host refused the request to `{host}`: `{host}` was not granted to this \
                 plugin (the plugin must request it and an admin must grant it)"
            ),
            HttpError::Timeout(m) => write!(f, "request timed out: {m}"),
            HttpError::Connection(m) => write!(f, "connection failed: {m}"),
            HttpError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            HttpError::InvalidResponse(m) => write!(f, "invalid response: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl HttpError {
    /// The failure code this error maps to.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::Denied { .. } => "host_denied",
            HttpError::Timeout(_) | HttpError::Connection(_) => "unreachable",
            HttpError::InvalidRequest(_) => "invalid_request",
            HttpError::InvalidResponse(_) => "invalid_response",
        }
    }

    /// Whether another attempt may succeed (timeouts and connection errors).
    pub fn is_retryable(&self) -> bool {
        matches!(self, HttpError::Timeout(_) | HttpError::Connection(_))
    }

    /// This error as the failure of a call to `service` (a name for people, e.g. `"the
    /// ERP"`): timeouts and connection errors become `upstream_unavailable` (retryable,
    /// the message names the service); the rest map as `From<HttpError> for Failure`
    /// (`host_denied`, `invalid_request`, `invalid_response`). Pairs with
    /// [`Response::failure`].
    pub fn upstream_failure(self, service: &str) -> Failure {
        if self.is_retryable() {
            Failure::new(
                "upstream_unavailable",
                format!("{service} is unreachable: {self}"),
            )
            .retryable()
        } else {
            self.into()
        }
    }
}

/// `Denied` → `host_denied` (not retryable); `Timeout`/`Connection` → `unreachable`
/// (retryable); `InvalidRequest` → `invalid_request`; `InvalidResponse` →
/// `invalid_response` (neither retryable).
impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Self {
        let failure = Failure::new(e.code(), e.to_string()).with_retryable(e.is_retryable());
        match &e {
            HttpError::Denied { host } => failure.with_details(serde_json::json!({ "host": host })),
            _ => failure,
        }
    }
}

/// A response, body read to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Header names (lowercase, as the host gives them) and values (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::InvalidResponse(format!("body is not the JSON expected: {e}")))
    }

    /// The body as text (invalid UTF-8 replaced with `�`).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether asking again may get another answer: 408, 429 and 5xx.
    pub fn is_retryable_status(&self) -> bool {
        self.status == 408 || self.status == 429 || self.status >= 500
    }

    /// The error a service explained in the body: the text of `{"error": "..."}`,
    /// `{"error": {"message": "..."}}` (OpenAI style), `{"message": "..."}` or
    /// `{"detail": "..."}`; otherwise the body as text, trimmed and cut at 500
    /// characters (empty for an empty body).
    pub fn error_message(&self) -> String {
        if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            let found = [
                &body["error"],
                &body["error"]["message"],
                &body["message"],
                &body["detail"],
            ]
            .into_iter()
            .find_map(|v| v.as_str());
            if let Some(text) = found {
                return text.to_string();
            }
        }
        let text = self.text();
        let text = text.trim();
        match text.char_indices().nth(500) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_string(),
        }
    }

    /// This response if its status is 2xx, else [`Response::failure`] for `service`.
    pub fn success(&self, service: &str) -> Result<&Response, Failure> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.failure(service))
        }
    }

    /// The conventional failure for a non-2xx answer from `service` (a name for people,
    /// e.g. `"the ERP"`), for the statuses a connector has no more specific code for:
    ///
    /// | status | code | retryable |
    /// |---|---|---|
    /// | 401, 403 | `unauthorized` | no |
    /// | 404 | `not_found` | no |
    /// | 408, 429, 5xx | `upstream_unavailable` | yes |
    /// | any other | `upstream_error` | no |
    ///
    /// The message names the service, the status and [`error_message`](Self::error_message);
    /// the details are `{"status": N, "error": "<error_message>"}`.
    ///
    /// ```
    /// let r = baton_sdk::http::Response {
    ///     status: 503,
    ///     headers: vec![],
    ///     body: br#"{"error": "ERP unavailable"}"#.to_vec(),
    /// };
    /// let f = r.failure("the ERP");
    /// assert_eq!((f.code.as_str(), f.retryable), ("upstream_unavailable", true));
    /// assert_eq!(f.message, "the ERP answered 503: ERP unavailable");
    /// ```
    pub fn failure(&self, service: &str) -> Failure {
        let code = match self.status {
            401 | 403 => "unauthorized",
            404 => "not_found",
            _ if self.is_retryable_status() => "upstream_unavailable",
            _ => "upstream_error",
        };
        let error = self.error_message();
        let mut message = format!("{service} answered {}", self.status);
        if !error.is_empty() {
            message.push_str(": ");
            message.push_str(&error);
        }
        if code == "unauthorized" {
            message.push_str(" (check the API key granted to this plugin)");
        }
        Failure::new(code, message)
            .with_retryable(self.is_retryable_status())
            .with_details(serde_json::json!({ "status": self.status, "error": error }))
    }
}

/// `base_url` (with or without a trailing `/`) joined with `path` (starting with `/`):
/// admins write base URLs either way.
pub fn endpoint(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new(Method::Get, url).send()
}

/// `POST url` with `value` as a JSON body.
pub fn post_json<T: Serialize + ?Sized>(url: &str, value: &T) -> Result<Response, HttpError> {
    Request::new(Method::Post, url).json(value).send()
}

/// A request builder; [`send`](Self::send) blocks until the whole response is read.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    error: Option<HttpError>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: None,
            error: None,
        }
    }

    /// Add a header (repeating a name adds another value).
    pub fn header(mut self, name: impl Into<String>, value: impl AsRef<str>) -> Self {
        self.headers
            .push((name.into(), value.as_ref().as_bytes().to_vec()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// A JSON body, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                self.body = Some(bytes);
                self.header("content-type", "application/json")
            }
            Err(e) => {
                self.error = Some(HttpError::InvalidRequest(format!(
                    "body could not be serialised as JSON: {e}"
                )));
                self
            }
        }
    }

    /// A raw body (set `content-type` yourself).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some(bytes.into());
        self
    }

    /// Give up after `timeout` for connecting, for the first byte, and between bytes
    /// (where the host supports it; the host's own per-call deadline always applies).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Send the request and read the whole response.
    ///
    /// Any status code is a response (check [`Response::is_success`]); only failing
    /// to get a response is an [`HttpError`].
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let url = Url::parse(&self.url)?;
        send(
            &self.method,
            &url,
            &self.headers,
            self.body.as_deref(),
            self.timeout,
        )
    }
}

/// A URL split into what `wasi:http` wants.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    full: &'a str,
    scheme: &'a str,
    authority: &'a str,
    path_with_query: String,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Url<'a>, HttpError> {
        let invalid = |why: &str| HttpError::InvalidRequest(format!("URL `{url}` {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("has no scheme (expected http:// or https://)"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty() {
            return Err(invalid("has no host"));
        }
        if authority.contains('@') {
            return Err(invalid(
                "contains credentials; send them in a header instead",
            ));
        }
        let mut path = &rest[end..];
        if let Some(hash) = path.find('#') {
            path = &path[..hash];
        }
        let path_with_query = match path.chars().next() {
            None => "/".to_string(),
            Some('/') => path.to_string(),
            Some(_) => format!("/{path}"),
        };
        Ok(Url {
            full: url,
            scheme,
            authority,
            path_with_query,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn send(
    _method: &Method,
    _url: &Url<'_>,
    _headers: &[(String, Vec<u8>)],
    _body: Option<&[u8]>,
    _timeout: Option<Duration>,
) -> Result<Response, HttpError> {
    Err(HttpError::Connection(
        "wasi:http is only available when the plugin runs inside Baton".into(),
    ))
}

#[cfg(target_arch = "wasm32")]
fn send(
    method: &Method,
    url: &Url<'_>,
    headers: &[(String, Vec<u8>)],
    body: Option<&[u8]>,
    timeout: Option<Duration>,
) -> Result<Response, HttpError> {
    use crate::bindings::connector::wasi::http::outgoing_handler;
    use crate::bindings::connector::wasi::http::types as t;
    use crate::bindings::connector::wasi::io::streams::StreamError;

    let authority = url.authority;
    let mut headers = headers.to_vec();
    if let Some(bytes) = body {
        let has_length = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if !has_length {
            let length = bytes.len().to_string().into_bytes();
            headers.push(("content-length".into(), length));
        }
    }
    let fields = t::Fields::from_list(&headers)
        .map_err(|e| HttpError::InvalidRequest(format!("invalid header: {e:?}")))?;
    let request = t::OutgoingRequest::new(fields);
    let wasi_method = match method {
        Method::Get => t::Method::Get,
        Method::Head => t::Method::Head,
        Method::Post => t::Method::Post,
        Method::Put => t::Method::Put,
        Method::Patch => t::Method::Patch,
        Method::Delete => t::Method::Delete,
        Method::Options => t::Method::Options,
        Method::Other(name) => t::Method::Other(name.clone()),
    };
    let scheme = match url.scheme.to_ascii_lowercase().as_str() {
        "http" => t::Scheme::Http,
        "https" => t::Scheme::Https,
        other => t::Scheme::Other(other.to_string()),
    };
    let bad = |what: &str| HttpError::InvalidRequest(format!("invalid {what} in {}", url.full));
    request
        .set_method(&wasi_method)
        .map_err(|()| bad("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| bad("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| bad("host"))?;
    request
        .set_path_with_query(Some(&url.path_with_query))
        .map_err(|()| bad("path"))?;
    let outgoing_body = request.body().map_err(|()| bad("body"))?;

    let options = timeout.map(|d| {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let options = t::RequestOptions::new();
        // A host that does not support a timeout refuses to set it; its own deadline rules.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });

    let future = outgoing_handler::handle(request, options).map_err(|e| map_error(e, authority))?;

    let stream_error = |e: StreamError| match e {
        StreamError::LastOperationFailed(err) => match t::http_error_code(&err) {
            Some(code) => map_error(code, authority),
            None => HttpError::Connection(format!("{} ({authority})", err.to_debug_string())),
        },
        StreamError::Closed => {
            HttpError::Connection(format!("the connection was closed early ({authority})"))
        }
    };

    // A failed write is not the story: a server may answer (and close) before reading the
    // whole body, and a refused host closes the stream too. The response, or the reason
    // the request failed, comes from the future below.
    let mut body_written = true;
    if let Some(bytes) = body {
        let stream = outgoing_body.write().map_err(|()| bad("body"))?;
        body_written = bytes
            .chunks(4096)
            .all(|chunk| stream.blocking_write_and_flush(chunk).is_ok());
        drop(stream);
    }
    if body_written {
        // Finishing fails only when the body broke its content-length; the future then
        // fails with the reason.
        let _ = t::OutgoingBody::finish(outgoing_body, None);
    } else {
        drop(outgoing_body);
    }

    let response = loop {
        match future.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => {
                return Err(map_error(code, authority));
            }
            Some(Err(())) => {
                return Err(HttpError::InvalidResponse(
                    "the response was already taken".into(),
                ));
            }
            None => future.subscribe().block(),
        }
    };
    drop(future);

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let taken = || HttpError::InvalidResponse("the body was already taken".into());
    let incoming_body = response.consume().map_err(|()| taken())?;
    let stream = incoming_body.stream().map_err(|()| taken())?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_error(e)),
        }
    }
    // Children before parents, or the host traps.
    drop(stream);
    drop(incoming_body);
    drop(response);
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(target_arch = "wasm32")]
fn map_error(
    code: crate::bindings::connector::wasi::http::types::ErrorCode,
    authority: &str,
) -> HttpError {
    use crate::bindings::connector::wasi::http::types::ErrorCode as E;
    let what = match &code {
        E::HttpRequestDenied => {
            return HttpError::Denied {
                host: authority.to_string(),
            };
        }
        E::DnsTimeout => "DNS lookup timed out".to_string(),
        E::DnsError(_) => "DNS lookup failed".to_string(),
        E::DestinationNotFound => "host not found".to_string(),
        E::DestinationUnavailable => "host unavailable".to_string(),
        E::DestinationIpProhibited => "the host's IP address is prohibited".to_string(),
        E::DestinationIpUnroutable => "the host's IP address is unroutable".to_string(),
        E::ConnectionRefused => "connection refused".to_string(),
        E::ConnectionTerminated => "connection closed unexpectedly".to_string(),
        E::ConnectionTimeout => "connecting timed out".to_string(),
        E::ConnectionReadTimeout => "reading the response timed out".to_string(),
        E::ConnectionWriteTimeout => "sending the request timed out".to_string(),
        E::ConnectionLimitReached => "too many connections".to_string(),
        E::TlsProtocolError => "TLS error".to_string(),
        E::TlsCertificateError => "invalid TLS certificate".to_string(),
        E::TlsAlertReceived(_) => "TLS alert received".to_string(),
        E::HttpResponseIncomplete => "incomplete response".to_string(),
        E::HttpResponseTimeout => "the response timed out".to_string(),
        E::InternalError(Some(m)) => m.clone(),
        other => format!("{other:?}"),
    };
    let text = format!("{what} ({authority})");
    match code {
        E::DnsTimeout
        | E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => HttpError::Timeout(text),
        E::DnsError(_)
        | E::DestinationNotFound
        | E::DestinationUnavailable
        | E::DestinationIpProhibited
        | E::DestinationIpUnroutable
        | E::ConnectionRefused
        | E::ConnectionTerminated
        | E::ConnectionLimitReached
        | E::TlsProtocolError
        | E::TlsCertificateError
        | E::TlsAlertReceived(_)
        | E::HttpResponseIncomplete
        | E::InternalError(_) => HttpError::Connection(text),
        E::HttpRequestLengthRequired
        | E::HttpRequestBodySize(_)
        | E::HttpRequestMethodInvalid
        | E::HttpRequestUriInvalid
        | E::HttpRequestUriTooLong
        | E::HttpRequestHeaderSectionSize(_)
        | E::HttpRequestHeaderSize(_)
        | E::HttpRequestTrailerSectionSize(_)
        | E::HttpRequestTrailerSize(_)
        | E::LoopDetected
        | E::ConfigurationError => HttpError::InvalidRequest(text),
        _ => HttpError::InvalidResponse(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = Url::parse("https://api.example.com:8443/v1/x?a=1#frag").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.authority, "api.example.com:8443");
        assert_eq!(u.path_with_query, "/v1/x?a=1");
        let u = Url::parse("http://example.com?q").unwrap();
        assert_eq!(u.path_with_query, "/?q");
        let u = Url::parse("http://[::1]:80").unwrap();
        assert_eq!(u.authority, "[::1]:80");
        assert_eq!(u.path_with_query, "/");
        assert!(Url::parse("example.com/x").is_err());
        assert!(Url::parse("http://user:pw@example.com/").is_err());
        assert!(Url::parse("http:///x").is_err());
    }

    #[test]
    fn errors_become_failures() {
        let f: Failure = HttpError::Denied {
            host: "evil.test".into(),
        }
        .into();
        assert_eq!(f.code, "host_denied");
        assert!(!f.retryable);
        assert!(f.message.contains("not granted to this plugin"));
        let f: Failure = HttpError::Timeout("x".into()).into();
        assert_eq!((f.code.as_str(), f.retryable), ("unreachable", true));
    }

    #[test]
    fn errors_become_upstream_failures() {
        let f =
            HttpError::Connection("connection refused (erp:80)".into()).upstream_failure("the ERP");
        assert_eq!(
            (f.code.as_str(), f.retryable),
            ("upstream_unavailable", true)
        );
        assert!(f.message.starts_with("the ERP is unreachable: "), "{f}");
        let f = HttpError::Denied { host: "erp".into() }.upstream_failure("the ERP");
        assert_eq!((f.code.as_str(), f.retryable), ("host_denied", false));
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn endpoints_join_base_urls_with_or_without_a_slash() {
        assert_eq!(endpoint("http://erp:1/", "/api/x"), "http://erp:1/api/x");
        assert_eq!(endpoint("http://erp:1", "/api/x"), "http://erp:1/api/x");
    }

    #[test]
    fn only_a_2xx_is_a_success() {
        assert!(response(200, "").success("x").is_ok());
        assert!(response(204, "").success("x").is_ok());
        let f = response(503, "").success("the ERP").unwrap_err();
        assert_eq!(
            (f.code.as_str(), f.retryable),
            ("upstream_unavailable", true)
        );
    }

    #[test]
    fn statuses_become_failures() {
        for (status, code, retryable) in [
            (401, "unauthorized", false),
            (403, "unauthorized", false),
            (404, "not_found", false),
            (408, "upstream_unavailable", true),
            (429, "upstream_unavailable", true),
            (500, "upstream_unavailable", true),
            (503, "upstream_unavailable", true),
            (400, "upstream_error", false),
            (422, "upstream_error", false),
        ] {
            let f = response(status, "").failure("svc");
            assert_eq!(
                (f.code.as_str(), f.retryable),
                (code, retryable),
                "{status}"
            );
            assert_eq!(
                f.details,
                Some(serde_json::json!({ "status": status, "error": "" }))
            );
        }
        let f = response(404, r#"{"error": "purchase order PO-9 not found"}"#).failure("the ERP");
        assert_eq!(
            f.message,
            "the ERP answered 404: purchase order PO-9 not found"
        );
        assert_eq!(f.details.unwrap()["error"], "purchase order PO-9 not found");
    }

    #[test]
    fn error_messages_are_found_in_common_shapes() {
        let msg = |body: &str| response(500, body).error_message();
        assert_eq!(msg(r#"{"error": "down"}"#), "down");
        assert_eq!(
            msg(r#"{"error": {"message": "slow down", "type": "rate_limit"}}"#),
            "slow down"
        );
        assert_eq!(msg(r#"{"message": "nope"}"#), "nope");
        assert_eq!(msg(r#"{"detail": "bad"}"#), "bad");
        assert_eq!(msg("  <h1>Bad gateway</h1>\n"), "<h1>Bad gateway</h1>");
        assert_eq!(msg(r#"{"other": 1}"#), r#"{"other": 1}"#);
        let long = msg(&"é".repeat(600));
        assert_eq!(long.chars().count(), 501);
        assert!(long.ends_with('…'));
    }
}
