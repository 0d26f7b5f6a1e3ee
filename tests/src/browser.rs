//! A small W3C WebDriver client: a real headless Chromium, driven through Debian's
//! `chromedriver`, for end-to-end tests of pages served on loopback.
//!
//! Each command is one HTTP/1.1 request on a new connection. [`crate::http::request`]
//! is not used: chromedriver answers `Connection: close` but keeps the socket open, so
//! reading to the end of the stream would hang; here the body is read by its
//! `Content-Length` instead.

use base64::Engine as _;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key under which W3C WebDriver puts an element's id.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long `find`, `wait_for` and `wait_for_text` wait.
const WAIT: Duration = Duration::from_secs(10);

/// How often they look again.
const POLL: Duration = Duration::from_millis(50);

/// A headless Chromium driven over WebDriver; the driver and browser stop when dropped.
pub struct Browser {
    session: Session,
    shots: PathBuf,
    // Dropped after `Browser::drop` has ended the session, so Chromium quits cleanly
    // before its driver is killed.
    _driver: Driver,
}

/// A chromedriver process, in its own process group; the group is killed when dropped
/// (also when `Browser::start` fails half-way).
struct Driver {
    child: Child,
    /// Holds chromedriver's stderr, `stderr.log`.
    logs: tempfile::TempDir,
    port: u16,
}

/// Where a WebDriver session lives: enough for an [`Element`] to send commands alone.
#[derive(Debug, Clone)]
struct Session {
    /// `127.0.0.1:PORT` of chromedriver.
    address: String,
    id: String,
}

/// A WebDriver error answer, or a transport failure (`error` is then `"transport"`).
#[derive(Debug)]
struct WebDriverError {
    error: String,
    message: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a new headless session (window 1366x900).
    /// Screenshots go to `shots` (created if missing).
    pub fn start(shots: &Path) -> Browser {
        std::fs::create_dir_all(shots)
            .unwrap_or_else(|e| panic!("creating {}: {e}", shots.display()));
        let driver = Driver::start();
        let address = driver.address();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1366,900",
                ],
            },
        }}});
        let created = send(&address, "POST", "/session", Some(&capabilities)).unwrap_or_else(|e| {
            panic!(
                "WebDriver POST /session: {}: {}\nchromedriver said:\n{}",
                e.error,
                e.message,
                driver.log()
            )
        });
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {created}"))
            .to_owned();
        let session = Session { address, id };
        // Bounded page loads and scripts, so a broken page fails a test instead of
        // hanging it (chromedriver's page-load default is 300 s).
        session.cmd(
            "POST",
            "/timeouts",
            Some(json!({"pageLoad": 30_000, "script": 30_000})),
        );
        Browser {
            session,
            shots: shots.to_owned(),
            _driver: driver,
        }
    }

    /// Opens `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.session
            .cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current page's URL.
    pub fn url(&self) -> String {
        self.session.url()
    }

    /// The first element matching the CSS selector, waiting up to 10 s for it to exist;
    /// panics with the selector and the page's URL and visible text if it never does.
    pub fn find(&self, css: &str) -> Element {
        self.session.find_from("", css)
    }

    /// Every element matching now (no wait).
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.session.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .into_iter()
            .flatten()
            .map(|reference| self.session.element(reference))
            .collect()
    }

    /// Waits up to 10 s until the page's visible text (`document.body.innerText`)
    /// contains `text`; panics with the text it saw otherwise.
    pub fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self.session.visible_text();
            if seen.contains(text) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{text:?} did not appear within {WAIT:?} on {}; the page shows:\n{seen}",
                    self.session.url()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits up to 10 s until `css` matches an element whose innerText contains `text`;
    /// returns it.
    pub fn wait_for(&self, css: &str, text: &str) -> Element {
        // One script looks at every match at once, so no element can go stale between
        // being found and being read.
        const PICK: &str = "for (const e of document.querySelectorAll(arguments[0])) \
                            { if (e.innerText.includes(arguments[1])) return e; } \
                            return null;";
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self.script(PICK, vec![json!(css), json!(text)]);
            if !found.is_null() {
                return self.session.element(&found);
            }
            if Instant::now() > deadline {
                panic!(
                    "no {css:?} containing {text:?} within {WAIT:?} on {}; the page shows:\n{}",
                    self.session.url(),
                    self.session.visible_text()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs a JS function body with `arguments` and returns its JSON result.
    pub fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.session.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": args})),
        )
    }

    /// Saves a PNG screenshot of the viewport as `<shots>/<name>.png` and returns the
    /// path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.session.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot {name}: not base64: {e}"));
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Lets Chromium quit and remove its profile; errors do not matter, the driver's
        // process group is killed next anyway.
        let path = format!("/session/{}", self.session.id);
        let _ = send(&self.session.address, "DELETE", &path, None);
    }
}

/// An element of the page, by its W3C element id.
#[derive(Debug, Clone)]
pub struct Element {
    session: Session,
    id: String,
}

impl Element {
    /// Clicks the element's centre (scrolling it into view first).
    pub fn click(&self) {
        self.cmd("POST", "/click", Some(json!({})));
    }

    /// Clears the field, then types `text`.
    pub fn fill(&self, text: &str) {
        self.cmd("POST", "/clear", Some(json!({})));
        self.cmd("POST", "/value", Some(json!({ "text": text })));
    }

    /// The element's rendered text.
    pub fn text(&self) -> String {
        self.cmd("GET", "/text", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The HTML attribute `name` as written in the markup; `None` if absent. For an
    /// input, `attr("value")` stays the initial value after typing: see [`Self::property`].
    pub fn attr(&self, name: &str) -> Option<String> {
        text_or_none(self.cmd("GET", &format!("/attribute/{name}"), None))
    }

    /// The DOM property `name` (e.g. `value`, what a field holds now); `None` if it is
    /// undefined or null. Non-string values come as JSON text.
    pub fn property(&self, name: &str) -> Option<String> {
        text_or_none(self.cmd("GET", &format!("/property/{name}"), None))
    }

    /// The first descendant matching the CSS selector, waiting like [`Browser::find`].
    pub fn find(&self, css: &str) -> Element {
        self.session
            .find_from(&format!("/element/{}", self.id), css)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.session
            .cmd(method, &format!("/element/{}{path}", self.id), body)
    }
}

impl Session {
    /// Sends a command below `/session/{id}`; panics with the command and WebDriver's
    /// message if it fails. Returns the answer's `value`.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body).unwrap_or_else(|e| {
            panic!(
                "WebDriver {method} {path}: {}: {}",
                e.error,
                first_line(&e.message)
            )
        })
    }

    fn try_cmd(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let full = format!("/session/{}{path}", self.id);
        send(&self.address, method, &full, body.as_ref())
    }

    fn url(&self) -> String {
        self.try_cmd("GET", "/url", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "(unknown URL)".into())
    }

    /// `document.body.innerText`, or "" (it is only used to explain failures and polled).
    fn visible_text(&self) -> String {
        let script = json!({
            "script": "return document.body ? document.body.innerText : '';",
            "args": [],
        });
        self.try_cmd("POST", "/execute/sync", Some(script))
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The first match of `css` under `scope` ("" for the document, or
    /// `/element/{eid}`), waiting up to [`WAIT`] for one to exist.
    fn find_from(&self, scope: &str, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        let query = json!({"using": "css selector", "value": css});
        loop {
            match self.try_cmd("POST", &format!("{scope}/element"), Some(query.clone())) {
                Ok(reference) => return self.element(&reference),
                Err(e) if e.error == "no such element" && Instant::now() < deadline => {
                    std::thread::sleep(POLL)
                }
                Err(e) if e.error == "no such element" => panic!(
                    "no element matches {css:?} (within {WAIT:?}) on {}; the page shows:\n{}",
                    self.url(),
                    self.visible_text()
                ),
                Err(e) => panic!(
                    "WebDriver find {css:?}: {}: {}",
                    e.error,
                    first_line(&e.message)
                ),
            }
        }
    }

    /// The [`Element`] an element reference (`{"element-6066-…": id}`) names.
    fn element(&self, reference: &Value) -> Element {
        let id = reference[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {reference}"))
            .to_owned();
        Element {
            session: self.clone(),
            id,
        }
    }
}

fn text_or_none(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// WebDriver messages append chromedriver's session info on later lines.
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}

/// One WebDriver HTTP request to chromedriver at `address`; the answer's `value`, or
/// the error it reports.
fn send(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, WebDriverError> {
    let transport = |message: String| WebDriverError {
        error: "transport".into(),
        message,
    };
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream =
        TcpStream::connect(address).map_err(|e| transport(format!("connecting: {e}")))?;
    // Longer than the page-load timeout, so chromedriver reports that itself.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    request.push_str(&body);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| transport(format!("sending: {e}")))?;

    let mut reader = BufReader::new(stream);
    let mut length = None;
    let mut status = String::new();
    reader
        .read_line(&mut status)
        .map_err(|e| transport(format!("reading: {e}")))?;
    loop {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| transport(format!("reading: {e}")))?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut raw = Vec::new();
    match length {
        Some(n) => {
            raw.resize(n, 0);
            reader.read_exact(&mut raw)
        }
        None => reader.read_to_end(&mut raw).map(|_| ()),
    }
    .map_err(|e| transport(format!("reading the body: {e}")))?;

    let answer: Value = serde_json::from_slice(&raw).map_err(|e| {
        transport(format!(
            "{}: not JSON ({e}): {}",
            status.trim(),
            String::from_utf8_lossy(&raw)
        ))
    })?;
    let value = answer["value"].clone();
    match value["error"].as_str() {
        Some(error) => {
            // chromedriver starts its messages with the error's name: drop the repeat.
            let message = value["message"].as_str().unwrap_or_default();
            let message = message
                .strip_prefix(error)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(message);
            Err(WebDriverError {
                error: error.to_owned(),
                message: message.to_owned(),
            })
        }
        None => Ok(value),
    }
}

impl Driver {
    /// Starts chromedriver, trying again when the port it picked was taken: with
    /// `--port=0` it picks a port for IPv6 and then fails if that port is busy on IPv4,
    /// which happens when several tests start browsers at once.
    fn start() -> Driver {
        let mut failures = Vec::new();
        for _ in 0..5 {
            match Driver::try_start() {
                Ok(driver) => return driver,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("chromedriver did not start:\n{}", failures.join("\n---\n"))
    }

    /// Starts chromedriver on a port it picks, in a process group of its own so that
    /// dropping it also ends the Chromium it started.
    fn try_start() -> Result<Driver, String> {
        use std::os::unix::process::CommandExt;
        let logs = tempfile::tempdir().expect("temp dir");
        let stderr = std::fs::File::create(logs.path().join("stderr.log")).unwrap();
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting chromedriver (package chromium-driver): {e}"));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut driver = Driver {
            child,
            logs,
            port: 0,
        };
        // A thread reads stdout, so a silent driver cannot block the test forever, and
        // keeps draining it so the driver never blocks on a full pipe.
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut said = Vec::new();
            let mut port_tx = Some(port_tx);
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(tx) = &port_tx {
                    if let Some(port) = line
                        .strip_prefix("ChromeDriver was started successfully on port ")
                        .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
                    {
                        let _ = tx.send(Ok(port));
                        port_tx = None;
                    } else {
                        said.push(line);
                    }
                }
            }
            if let Some(tx) = port_tx {
                let _ = tx.send(Err(said.join("\n")));
            }
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(port)) => port,
            Ok(Err(stdout)) => {
                let status = driver.child.wait().ok();
                return Err(format!(
                    "exit {status:?}\nstdout:\n{stdout}\nstderr:\n{}",
                    driver.log()
                ));
            }
            Err(_) => panic!(
                "chromedriver did not say its port within 20 s\nstderr:\n{}",
                driver.log()
            ),
        };
        driver.port = port;
        Ok(driver)
    }

    /// `127.0.0.1:PORT` (chromedriver only accepts local connections).
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What chromedriver wrote to stderr so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (`process_group(0)`); the group also
        // holds the Chromium processes it started, which may outlive a driver that
        // already exited. Killing them by group needs no libc.
        let group = format!("-{}", self.child.id());
        let kill = |signal: &str| {
            let _ = Command::new("kill")
                .args(["-s", signal, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        kill("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill("KILL");
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const PAGE: &str = r#"<!doctype html>
<html><head><title>smoke</title></head><body>
<input id="name" value="placeholder">
<button id="add" onclick="const p = document.createElement('p');
  p.className = 'said'; p.textContent = 'Hello, ' + document.getElementById('name').value;
  document.getElementById('out').appendChild(p);">Add</button>
<div id="out"><p class="said">first</p></div>
<a id="link" href="/elsewhere" data-role="nav">Elsewhere</a>
</body></html>"#;

    /// Serves `PAGE` for every request, one connection at a time, until the test ends.
    fn serve() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
            }
        });
        address
    }

    #[test]
    fn drives_a_real_page() {
        let address = serve();
        let shots = tempfile::tempdir().unwrap();
        let browser = Browser::start(&shots.path().join("shots"));
        let url = format!("http://{address}/");
        browser.goto(&url);
        assert_eq!(browser.url(), url);

        let input = browser.find("#name");
        assert_eq!(input.attr("value").as_deref(), Some("placeholder"));
        input.fill("Ada");
        assert_eq!(input.property("value").as_deref(), Some("Ada"));
        assert_eq!(input.attr("value").as_deref(), Some("placeholder"));
        browser.find("#add").click();
        browser.wait_for_text("Hello, Ada");
        let said = browser.wait_for("#out .said", "Ada");
        assert_eq!(said.text(), "Hello, Ada");
        assert_eq!(browser.find_all("#out p").len(), 2);
        assert!(browser.find_all(".nothing").is_empty());
        assert_eq!(browser.find("#out").find("p").text(), "first");
        assert_eq!(
            browser.find("#link").attr("data-role").as_deref(),
            Some("nav")
        );
        assert_eq!(browser.find("#link").attr("missing"), None);

        let sum = browser.script(
            "return arguments[0] + arguments[1];",
            vec![json!(2), json!(40)],
        );
        assert_eq!(sum, json!(42));

        let shot = browser.screenshot("smoke");
        assert_eq!(shot, shots.path().join("shots/smoke.png"));
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

        // A WebDriver error answer panics with the command and WebDriver's message.
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            browser.find("#out[");
        }));
        let message = *refused.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("#out[") && message.contains("invalid selector"),
            "{message}"
        );
    }
}
