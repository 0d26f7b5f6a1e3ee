//! The real `baton serve` on a temporary data directory, and a minimal HTTP/1.1 client
//! for talking to it (one connection per request, so a test sees exactly what a
//! client would).

use crate::{baton_bin, baton_ok, plugin_wasm};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `baton serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub address: String,
    /// The admin token the first start wrote.
    pub admin: String,
}

impl Server {
    /// Installs `plugins` (unsigned plugins allowed) and starts the server on a port
    /// the OS picks.
    pub fn start(plugins: &[&str]) -> Server {
        Server::start_with("allow_unsigned = true\n", plugins)
    }

    /// Like [`Server::start`], with `config` as `baton.toml` instead of allowing
    /// unsigned plugins. Without a `[server]` table of its own, the body limit is 1 MiB.
    pub fn start_with(config: &str, plugins: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        // A body limit above a plugin component and small enough to exceed cheaply.
        let server = if config.contains("[server]") {
            ""
        } else {
            "\n[server]\nmax_body_kb = 1024\n"
        };
        std::fs::write(data.join("baton.toml"), format!("{config}{server}")).unwrap();
        for plugin in plugins {
            baton_ok(
                &data,
                dir.path(),
                &["plugin", "install", plugin_wasm(plugin).to_str().unwrap()],
            );
        }
        let (child, address) = launch(&data);
        let admin = std::fs::read_to_string(data.join("admin.token"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        Server {
            child,
            dir,
            address,
            admin,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// Starts `baton serve` on `data` and a port the OS picks; returns it and its address.
fn launch(data: &Path) -> (Child, String) {
    let mut child = Command::new(baton_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env_remove("BATON_LISTEN")
        .env_remove("BATON_CONFIG")
        .stdout(Stdio::piped())
        .spawn()
        .expect("baton serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut address = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("listening on http://") {
            address = Some(a.to_owned());
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, address.expect("the server says where it listens"))
}

impl Server {
    /// Stops the server with SIGTERM and waits for it; `true` if it exited cleanly.
    pub fn stop(&mut self) -> bool {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.success();
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Stops the server if it runs and starts it again on the same data directory.
    pub fn restart(mut self) -> Server {
        self.stop();
        (self.child, self.address) = launch(&self.data());
        self
    }

    /// A request with the admin token.
    pub fn admin(&self, method: &str, path: &str, body: &str) -> Response {
        self.request(method, path, Some(&self.admin), &[], body.as_bytes())
    }

    /// A request; `token` becomes `Authorization: Bearer`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(&self.address, method, path, token, headers, body)
    }

    /// A JSON request with `token`.
    pub fn as_user(&self, token: &str, method: &str, path: &str, body: &str) -> Response {
        self.request(method, path, Some(token), &[], body.as_bytes())
    }

    /// Creates a token over HTTP (as the admin) and returns it.
    pub fn token(&self, user: &str, role: &str) -> String {
        let created = self.admin(
            "POST",
            "/v1/tokens",
            &format!(r#"{{"user":"{user}","role":"{role}"}}"#),
        );
        assert_eq!(created.status, 201, "{}", created.body);
        created.json()["token"].as_str().unwrap().to_owned()
    }

    /// Opens an event stream with the admin token.
    pub fn events(&self, path: &str, headers: &[(&str, &str)]) -> EventStream {
        EventStream::open(&self.address, path, &self.admin, headers)
    }

    /// Polls run `id` until its status is `want` (for up to 5 s); returns the run.
    pub fn status_becomes(&self, id: &str, want: &str) -> Value {
        let mut run = Value::Null;
        for _ in 0..250 {
            run = self.admin("GET", &format!("/v1/runs/{id}"), "").json();
            if run["status"] == want {
                return run;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("run {id} did not become {want}: {run}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `error.code` of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// An open Server-Sent Events stream.
pub struct EventStream {
    pub status: u16,
    reader: BufReader<TcpStream>,
}

/// One SSE event.
#[derive(Debug, Default, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: Value,
}

impl EventStream {
    /// Opens `path` as an event stream. HTTP/1.0, so the body is not chunked.
    pub fn open(address: &str, path: &str, token: &str, headers: &[(&str, &str)]) -> EventStream {
        let stream = TcpStream::connect(address).expect("the server accepts connections");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut head = format!(
            "GET {path} HTTP/1.0\r\nHost: {address}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n"
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        (&stream).write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
        }
        EventStream { status, reader }
    }
}

impl Iterator for EventStream {
    type Item = SseEvent;

    /// The next event (comments and keep-alives skipped); `None` when the stream ends.
    /// Panics after 10 s of silence.
    fn next(&mut self) -> Option<SseEvent> {
        let mut event = SseEvent::default();
        let mut data = String::new();
        loop {
            let mut line = String::new();
            if self
                .reader
                .read_line(&mut line)
                .expect("an event within 10 s")
                == 0
            {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                event.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(event);
            }
            match line.split_once(':') {
                Some(("event", v)) => event.event = v.trim_start().to_owned(),
                Some(("id", v)) => event.id = v.trim_start().to_owned(),
                Some(("data", v)) => data.push_str(v.strip_prefix(' ').unwrap_or(v)),
                _ => {}
            }
        }
    }
}

/// One HTTP/1.1 request on a new connection to `address`.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let stream = TcpStream::connect(address).expect("the server accepts connections");
    exchange(stream, address, method, path, token, headers, body)
}

/// [`request`] from the loopback address `source` (any 127.x.y.z is a distinct client).
pub fn request_from(
    source: std::net::Ipv4Addr,
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let stream = connect_from(source, address);
    exchange(stream, address, method, path, token, headers, body)
}

/// A connection to `address` from the loopback address `source`.
pub fn connect_from(source: std::net::Ipv4Addr, address: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from((source, 0)).into())
        .unwrap();
    let server: std::net::SocketAddr = address.parse().expect("an IP address and port");
    socket
        .connect(&server.into())
        .expect("the server accepts connections");
    socket.into()
}

fn exchange(
    mut stream: TcpStream,
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading all of a large body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// Whether `path` is readable and writable by its owner only.
pub fn is_private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 == 0)
        .unwrap_or(false)
}
