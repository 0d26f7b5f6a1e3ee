"""A small blocking HTTP client over `wasi:http/outgoing-handler`. Connectors only.

    from baton_sdk import http

    r = http.get("https://erp.example.com/po/PO-1", headers={"X-Api-Key": key})
    if not r.ok:
        raise r.failure("the ERP")            # 401/403/404/429/5xx -> a typed Failure
    po = r.json()                              # or Failure `invalid_response`

    created = http.post(
        http.endpoint(base_url, "/invoices"), json=po, bearer=token,
        headers={"Idempotency-Key": call.idempotency_key},
    )

A request leaves the sandbox only if its host is requested by the plugin (`hosts`) and
granted by an admin. Every status code is a response; only failing to get one raises an
`HttpError` (a `Failure`, so an action can simply let it propagate):

| what happened | code | retryable |
|---|---|---|
| host not granted (the host refused the request) | `host_denied` | no (as in the Rust SDK; the host adds which grant would allow it) |
| DNS, connection, TLS trouble, timeouts | `unreachable` | yes |
| a malformed URL, header or method | `invalid_request` | no |
| the response could not be read; `.json()` on a body that is not JSON | `invalid_response` | no |

`HttpError.kind` tells them apart (`denied`, `timeout`, `connection`, `invalid_request`,
`invalid_response`) and `HttpError.host` names the host.
"""

import json as _json
from urllib.parse import urlencode, urlsplit

from . import _wit
from ._types import Failure

__all__ = [
    "HttpError", "Response", "request", "get", "post", "put", "patch", "delete",
    "endpoint",
]

class HttpError(Failure):
    """No response: the host refused the request, the network failed, the request was
    malformed, or the response could not be read."""

    _CODES = {
        "denied": ("host_denied", False),
        "timeout": ("unreachable", True),
        "connection": ("unreachable", True),
        "invalid_request": ("invalid_request", False),
        "invalid_response": ("invalid_response", False),
    }

    def __init__(self, kind, message, host=None):
        code, retryable = self._CODES[kind]
        details = {"host": host} if host else None
        super().__init__(code, message, retryable=retryable, details=details)
        self.kind = kind
        self.host = host


class Response:
    """A response, body read to the end: `status` (int), `headers` (a list of
    `(name, value)`, names lowercase as the host gives them), `body` (bytes)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self):
        return f"Response(status={self.status}, body={len(self.body)} bytes)"

    @property
    def ok(self):
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name):
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    @property
    def text(self):
        """The body as text (invalid UTF-8 replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON, or an `HttpError` `invalid_response`."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise HttpError(
                "invalid_response",
                f"the body (status {self.status}) is not the JSON expected: {e}",
            ) from None

    @property
    def retryable_status(self):
        """Whether asking again may get another answer: 408, 429 and 5xx."""
        return self.status in (408, 429) or self.status >= 500

    def error_message(self):
        """The error a service explained in the body: the text of `{"error": "..."}`,
        `{"error": {"message": "..."}}`, `{"message": "..."}` or `{"detail": "..."}`;
        otherwise the body as text, trimmed and cut at 500 characters."""
        try:
            body = _json.loads(self.body)
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error")
            for found in (
                error,
                error.get("message") if isinstance(error, dict) else None,
                body.get("message"),
                body.get("detail"),
            ):
                if isinstance(found, str):
                    return found
        text = self.text.strip()
        return text[:500] + "…" if len(text) > 500 else text

    def failure(self, service="the service"):
        """The conventional Failure for a non-2xx answer from `service` (a name for
        people, e.g. "the ERP"): 401/403 `unauthorized`, 404 `not_found`, 408/429/5xx
        `upstream_unavailable` (retryable), any other `upstream_error`. The message names
        the service, the status and `error_message()`; details are
        `{"status": N, "error": "..."}`."""
        if self.status in (401, 403):
            code = "unauthorized"
        elif self.status == 404:
            code = "not_found"
        elif self.retryable_status:
            code = "upstream_unavailable"
        else:
            code = "upstream_error"
        error = self.error_message()
        message = f"{service} answered {self.status}"
        if error:
            message += f": {error}"
        if code == "unauthorized":
            message += " (check the API key granted to this plugin)"
        return Failure(code, message, retryable=self.retryable_status,
                       details={"status": self.status, "error": error})

    def raise_for_status(self, service="the service"):
        """This response if it is 2xx; else raise `failure(service)`."""
        if not self.ok:
            raise self.failure(service)
        return self


def endpoint(base_url, path):
    """`base_url` (with or without a trailing `/`) joined with `path`."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def get(url, **kwargs):
    """`request("GET", url, ...)`."""
    return request("GET", url, **kwargs)


def post(url, **kwargs):
    """`request("POST", url, ...)`."""
    return request("POST", url, **kwargs)


def put(url, **kwargs):
    """`request("PUT", url, ...)`."""
    return request("PUT", url, **kwargs)


def patch(url, **kwargs):
    """`request("PATCH", url, ...)`."""
    return request("PATCH", url, **kwargs)


def delete(url, **kwargs):
    """`request("DELETE", url, ...)`."""
    return request("DELETE", url, **kwargs)


def request(method, url, headers=None, json=None, body=None, bearer=None,
            params=None, timeout=None):
    """Send a request and read the whole response; blocks until done.

    `headers`: a dict or a list of `(name, value)` pairs. `json`: a value (not None)
    sent as the JSON body (with `content-type: application/json`); `body`: raw bytes or
    str instead.
    `bearer`: a token sent as `Authorization: Bearer ...`. `params`: a dict (or pairs)
    appended to the URL as a percent-encoded query string. `timeout`: seconds, for
    connecting, the first byte and between bytes (where the host supports it; the
    host's own per-call deadline always applies).
    """
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if bearer is not None:
        pairs.append(("authorization", f"Bearer {bearer}"))
    if json is not None:
        try:
            body = _json.dumps(json).encode()
        except (TypeError, ValueError) as e:
            raise HttpError(
                "invalid_request", f"the body could not be serialised as JSON: {e}"
            ) from None
        if not any(n.lower() == "content-type" for n, _ in pairs):
            pairs.append(("content-type", "application/json"))
    if isinstance(body, str):
        body = body.encode()
    if body is not None and not any(n.lower() == "content-length" for n, _ in pairs):
        pairs.append(("content-length", str(len(body))))
    if params:
        query = urlencode(params, doseq=True)
        url += ("&" if "?" in url else "?") + query
    scheme, authority, path_with_query = _split(url)
    if not _wit.in_component or _wit.outgoing_handler is None:
        raise HttpError(
            "connection",
            f"no network outside a Baton component (and none in a rule): {method} {url}",
            host=authority,
        )
    return _send(str(method).upper(), scheme, authority, path_with_query, pairs, body,
                 timeout, url)


def _split(url):
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        raise HttpError("invalid_request",
                        f"URL `{url}` has no scheme (expected http:// or https://)")
    if not parts.netloc:
        raise HttpError("invalid_request", f"URL `{url}` has no host")
    if "@" in parts.netloc:
        raise HttpError("invalid_request",
                        f"URL `{url}` contains credentials; send them in a header instead")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme.lower(), parts.netloc, path


# --- wasi:http ---------------------------------------------------------------------

_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]


def _drop(resource):
    if resource is not None:
        resource.__exit__(None, None, None)


def _send(method, scheme, authority, path_with_query, pairs, body, timeout, url):
    h = _wit.http_types
    Err = _wit.Err

    def bad(what):
        return HttpError("invalid_request", f"invalid {what} in {method} {url}", authority)

    try:
        fields = h.Fields.from_list([(str(n), str(v).encode()) for n, v in pairs])
    except Err as e:
        raise HttpError(
            "invalid_request",
            f"invalid header ({type(e.value).__name__.split('_')[-1]}) in {method} {url}",
            authority,
        ) from None
    request = h.OutgoingRequest(fields)
    if method in _METHODS:
        wasi_method = getattr(h, "Method_" + method.capitalize())()
    else:
        wasi_method = h.Method_Other(method)
    if scheme == "http":
        wasi_scheme = h.Scheme_Http()
    elif scheme == "https":
        wasi_scheme = h.Scheme_Https()
    else:
        wasi_scheme = h.Scheme_Other(scheme)
    for setter, value, what in (
        (request.set_method, wasi_method, "method"),
        (request.set_scheme, wasi_scheme, "scheme"),
        (request.set_authority, authority, "host"),
        (request.set_path_with_query, path_with_query, "path"),
    ):
        try:
            setter(value)
        except Err:
            raise bad(what) from None
    outgoing_body = request.body()

    options = None
    if timeout is not None:
        nanos = int(timeout * 1_000_000_000)
        options = h.RequestOptions()
        for setter in (options.set_connect_timeout, options.set_first_byte_timeout,
                       options.set_between_bytes_timeout):
            try:  # a host that does not support a timeout refuses it; its deadline rules
                setter(nanos)
            except Err:
                pass

    try:
        future = _wit.outgoing_handler.handle(request, options)
    except Err as e:
        raise _map_error(e.value, authority) from None

    # A server may answer (and close) before reading the whole body: its answer then
    # wins over the write error; so does the reason a request failed (a denied host
    # closes the body stream too).
    write_error = None
    if body:
        stream = outgoing_body.write()
        try:
            for i in range(0, len(body), 4096):
                stream.blocking_write_and_flush(body[i:i + 4096])
        except Err as e:
            write_error = _stream_error(e.value, authority)
        _drop(stream)
    if write_error is None:
        try:
            h.OutgoingBody.finish(outgoing_body, None)
        except Err as e:
            write_error = _map_error(e.value, authority)
    else:
        _drop(outgoing_body)

    while True:
        result = future.get()
        if result is None:
            pollable = future.subscribe()
            pollable.block()
            _drop(pollable)
            continue
        break
    _drop(future)
    if isinstance(result, Err):
        raise HttpError("invalid_response", "the response was already taken", authority)
    inner = result.value
    if isinstance(inner, Err):
        raise _map_error(inner.value, authority)
    response = inner.value

    status = response.status()
    header_fields = response.headers()
    headers = [(n, v.decode("utf-8", errors="replace")) for n, v in header_fields.entries()]
    _drop(header_fields)
    incoming_body = response.consume()
    stream = incoming_body.stream()
    chunks = []
    error = None
    while True:
        try:
            chunks.append(stream.blocking_read(64 * 1024))
        except Err as e:
            if not isinstance(e.value, _wit.streams.StreamError_Closed):
                error = _stream_error(e.value, authority)
            break
    # Children before parents, or the host traps.
    _drop(stream)
    _drop(incoming_body)
    _drop(response)
    if error is not None:
        raise error
    return Response(status, headers, b"".join(chunks))


def _stream_error(e, authority):
    s = _wit.streams
    if isinstance(e, s.StreamError_LastOperationFailed):
        code = _wit.http_types.http_error_code(e.value)
        if code is not None:
            return _map_error(code, authority)
        return HttpError("connection", f"{e.value.to_debug_string()} ({authority})",
                         authority)
    return HttpError("connection", f"the connection was closed early ({authority})",
                     authority)


_ERROR_TEXT = {
    "DnsTimeout": ("timeout", "DNS lookup timed out"),
    "DnsError": ("connection", "DNS lookup failed"),
    "DestinationNotFound": ("connection", "host not found"),
    "DestinationUnavailable": ("connection", "host unavailable"),
    "DestinationIpProhibited": ("connection", "the host's IP address is prohibited"),
    "DestinationIpUnroutable": ("connection", "the host's IP address is unroutable"),
    "ConnectionRefused": ("connection", "connection refused"),
    "ConnectionTerminated": ("connection", "connection closed unexpectedly"),
    "ConnectionTimeout": ("timeout", "connecting timed out"),
    "ConnectionReadTimeout": ("timeout", "reading the response timed out"),
    "ConnectionWriteTimeout": ("timeout", "sending the request timed out"),
    "ConnectionLimitReached": ("connection", "too many connections"),
    "TlsProtocolError": ("connection", "TLS error"),
    "TlsCertificateError": ("connection", "invalid TLS certificate"),
    "TlsAlertReceived": ("connection", "TLS alert received"),
    "HttpResponseIncomplete": ("connection", "incomplete response"),
    "HttpResponseTimeout": ("timeout", "the response timed out"),
    "InternalError": ("connection", "internal error"),
}

_INVALID_REQUEST = {
    "HttpRequestLengthRequired", "HttpRequestBodySize", "HttpRequestMethodInvalid",
    "HttpRequestUriInvalid", "HttpRequestUriTooLong", "HttpRequestHeaderSectionSize",
    "HttpRequestHeaderSize", "HttpRequestTrailerSectionSize", "HttpRequestTrailerSize",
    "LoopDetected", "ConfigurationError",
}


def _map_error(code, authority):
    name = type(code).__name__.replace("ErrorCode_", "")
    if name == "HttpRequestDenied":
        return HttpError(
            "denied",
            f"the host refused the request to `{authority}`: `{authority}` may not be "
            f"granted to this plugin (the plugin must request it in `hosts` and an admin "
            f"must grant it)",
            authority,
        )
    kind, text = _ERROR_TEXT.get(name, (None, None))
    if name == "InternalError" and getattr(code, "value", None):
        text = code.value
    if kind is None:
        kind = "invalid_request" if name in _INVALID_REQUEST else "invalid_response"
        text = name
    prefix = {"timeout": "request timed out", "connection": "connection failed",
              "invalid_request": "invalid request",
              "invalid_response": "invalid response"}[kind]
    return HttpError(kind, f"{prefix}: {text} ({authority})", authority)
