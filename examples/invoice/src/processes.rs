//! The demo's child processes: the stand-ins and `baton serve`, with their logs in
//! DATA/demo.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The API key every stand-in accepts; granted to the plugins as their secret.
pub const STANDIN_API_KEY: &str = "demo-key";

/// The running stand-ins. They exit when this is dropped (their stdin closes).
pub struct StandIns {
    child: Child,
    _stdin: ChildStdin,
    pub erp: String,
    pub llm: String,
    pub payments: String,
    pub sink: String,
}

/// The stand-ins' ports; 0 lets the OS pick.
#[derive(Default, Serialize, Deserialize)]
struct Ports {
    erp: u16,
    llm: u16,
    payments: u16,
    sink: u16,
}

/// `HOST:PORT` of an `http://HOST:PORT/...` URL.
pub fn host_of(url: &str) -> Option<&str> {
    url.strip_prefix("http://")?.split('/').next()
}

/// The port of `http://HOST:PORT/...` (0 if it has none).
fn port_of(url: &str) -> u16 {
    host_of(url)
        .and_then(|host| host.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct Listening {
    erp: String,
    llm: String,
    payments: String,
    sink: String,
}

impl StandIns {
    /// Starts `baton-standins` with the example's ERP data and its scripted faults: the
    /// AI misreads Umbrella Logistics' PO numbers, and the ERP is down for PO-5019.
    ///
    /// The ports of the last start are reused when they are free, so the URLs granted
    /// to the plugins stay right across demo runs: a run the restarted server resumes
    /// before the demo re-grants does not call a stale port.
    pub fn start(bin: &Path, demo: &Path, example: &Path) -> Result<StandIns> {
        let ports_file = demo.join("standin-ports.json");
        let last: Option<Ports> = std::fs::read_to_string(&ports_file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        let standins = match last {
            Some(ports) => Self::spawn(bin, demo, example, &ports)
                .or_else(|_| Self::spawn(bin, demo, example, &Ports::default()))?,
            None => Self::spawn(bin, demo, example, &Ports::default())?,
        };
        let ports = Ports {
            erp: port_of(&standins.erp),
            llm: port_of(&standins.llm),
            payments: port_of(&standins.payments),
            sink: port_of(&standins.sink),
        };
        std::fs::write(&ports_file, serde_json::to_string(&ports)?)?;
        Ok(standins)
    }

    fn spawn(bin: &Path, demo: &Path, example: &Path, ports: &Ports) -> Result<StandIns> {
        let log = File::create(demo.join("standins.log"))?;
        let mut child = Command::new(bin)
            .arg("--state")
            .arg(demo.join("standins"))
            .arg("--erp-seed")
            .arg(example.join("erp-seed.json"))
            .args(["--misread", "Umbrella Logistics BV:po_number=PO-5O20"])
            .args(["--erp-outage", "PO-5019"])
            .args(["--api-key", STANDIN_API_KEY, "--exit-with-stdin"])
            .args(["--erp-port", &ports.erp.to_string()])
            .args(["--llm-port", &ports.llm.to_string()])
            .args(["--payments-port", &ports.payments.to_string()])
            .args(["--sink-port", &ports.sink.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let urls: Listening = match serde_json::from_str(&line) {
            Ok(urls) => urls,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the stand-ins did not say where they listen (see {})",
                    demo.join("standins.log").display()
                );
            }
        };
        Ok(StandIns {
            child,
            _stdin: stdin,
            erp: urls.erp,
            llm: urls.llm,
            payments: urls.payments,
            sink: urls.sink,
        })
    }

    /// (system, URL) of each stand-in, for people to look at.
    pub fn urls(&self) -> [(&'static str, &str); 4] {
        [
            ("erp", &self.erp),
            ("llm", &self.llm),
            ("payments", &self.payments),
            ("sink", &self.sink),
        ]
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `baton serve`.
pub struct Server {
    child: Child,
    /// `http://HOST:PORT`
    pub url: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Server {
    /// Starts `baton serve` on `data`, and waits until it says where it listens.
    pub fn start(bin: &Path, data: &Path, listen: &str, demo: &Path) -> Result<Server> {
        let log_path = demo.join("baton.log");
        let log = File::options().create(true).append(true).open(&log_path)?;
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .env_remove("BATON_LISTEN")
            .env_remove("BATON_CONFIG")
            .stdout(Stdio::piped())
            .stderr(log.try_clone()?);
        stop_with_parent(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut log = log;
        let mut url = None;
        for line in lines.by_ref() {
            let line = line?;
            writeln!(log, "{line}")?;
            if let Some(address) = line.strip_prefix("listening on ") {
                url = Some(address.trim().to_owned());
                break;
            }
        }
        // Keep copying its output to the log so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        let Some(url) = url else {
            let _ = child.wait();
            bail!(
                "`baton serve` stopped before it listened; see {} (is {listen} in use? \
                 pass --listen 127.0.0.1:0 to let the OS pick a port)",
                log_path.display()
            );
        };
        Ok(Server {
            child,
            url,
            log: log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the server has exited (crashed, or was killed).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "`baton serve` exited ({status}); see {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// Stops the server gracefully (SIGTERM), waits up to 10 s for it, then kills it.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on our own child's pid, which it cannot have reused
            // before we wait for it.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    /// Whatever ends the demo (an error, a panic), the server does not outlive it.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes the child get SIGTERM when the demo dies, however it dies (Linux), so no
/// `baton serve` is left holding the port and the data directory.
fn stop_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Blocks until Ctrl-C or SIGTERM, or until the server exits by itself. A server that
/// stops cleanly counts as a stop: a Ctrl-C in a terminal reaches it too, and it may
/// notice first.
pub fn wait_for_stop(server: &mut Server) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                biased;
                _ = interrupt.recv() => return Ok(()),
                _ = terminate.recv() => return Ok(()),
                _ = tick.tick() => {
                    if let Some(status) = server.child.try_wait()? {
                        if status.success() {
                            return Ok(());
                        }
                        server.check_alive()?;
                    }
                }
            }
        }
    })
}
