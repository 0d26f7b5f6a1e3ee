//! HTTP benchmark: a synchronous three-step run triggered over HTTP (`POST
//! /v1/workflows/invoice-check/runs?wait=10s`): a connector that makes one outbound HTTP call to
//! a local stand-in (`echo/fetch`), a rule (`invoice-rules/three-way-match`) and `echo`.
//! The same workflow with `echo` declared `effects: none` (so it shares the commit of the
//! step that fed it: two durable commits per run instead of three) is measured beside it,
//! rounds alternating. The server is the real API router and engine on loopback, in this
//! process; the load generator is 32 threads, each with one keep-alive connection. A lone client is also
//! measured while four threads from 127.0.0.2 flood the server with malformed requests,
//! with the bad-request budget on and off.
//!
//! `cargo bench -p baton-tests --bench http` measures (targets: p50 <= 2 ms, >= 3,000
//! runs/s at concurrency 32); `cargo test -p baton-tests --benches` runs a smoke round.

use baton::api::auth::{Role, Tokens};
use baton::api::guard::BadRequestBudget;
use baton::api::{self, ApiLimits, AppState};
use baton::engine::Engine;
use baton_tests::http::request_from;
use baton_tests::stand_in::{Reply, StandIn};
use baton_tests::{INVOICE_CHECK, TestEngine, invoice_check_effect_free, matching_invoice};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;

/// What the load generator sends: triggers of one workflow, to one server.
#[derive(Clone)]
struct Load {
    address: String,
    token: String,
    workflow: &'static str,
    body: String,
}

/// One keep-alive connection to the server.
struct Connection {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
}

impl Connection {
    fn open(load: &Load) -> Connection {
        let Load {
            address,
            token,
            workflow,
            body,
        } = load;
        let stream = TcpStream::connect(address).expect("the server accepts connections");
        stream.set_nodelay(true).unwrap();
        let request = format!(
            "POST /v1/workflows/{workflow}/runs?wait=10s HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        Connection {
            reader: BufReader::new(stream),
            request,
        }
    }

    /// Sends one trigger and reads the answer; returns its status.
    fn trigger(&mut self) -> u16 {
        self.reader.get_mut().write_all(&self.request).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        assert!(
            String::from_utf8_lossy(&body).contains("\"status\":\"succeeded\""),
            "{}",
            String::from_utf8_lossy(&body)
        );
        status
    }
}

/// Runs `total` triggers over `concurrency` connections; returns each latency (sorted)
/// and the wall time.
fn round(load: &Load, total: usize, concurrency: usize) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let per_connection = total / concurrency;
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let load = load.clone();
            std::thread::spawn(move || {
                let mut connection = Connection::open(&load);
                (0..per_connection)
                    .map(|_| {
                        let sent = Instant::now();
                        assert_eq!(connection.trigger(), 201);
                        sent.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a load thread"))
        .collect();
    latencies.sort();
    (latencies, started.elapsed())
}

/// Serves the API on a loopback port the OS picks; returns its address.
async fn serve(engine: Engine, tokens: Tokens, limits: ApiLimits) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (close, closing) = tokio::sync::watch::channel(false);
    let state = AppState::new(engine, tokens, closing);
    let router = api::router(state, &limits);
    tokio::spawn(async move {
        api::serve(listener, router, &limits, close, std::future::pending()).await
    });
    address
}

/// Threads sending malformed requests from 127.0.0.2, each on a new connection: no
/// token, broken JSON in a 64 KiB body, unknown routes.
struct Flood {
    stop: Arc<AtomicBool>,
    started: Instant,
    threads: Vec<std::thread::JoinHandle<(usize, usize)>>,
}

impl Flood {
    const THREADS: usize = 4;

    fn start(address: &str) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..Self::THREADS)
            .map(|i| {
                let (address, stop) = (address.to_owned(), stop.clone());
                std::thread::spawn(move || {
                    let from = Ipv4Addr::new(127, 0, 0, 2);
                    let garbage = vec![b'{'; 64 << 10];
                    let (mut sent, mut refused) = (0, 0);
                    while !stop.load(Ordering::Relaxed) {
                        let answer = match (i + sent) % 3 {
                            0 => request_from(from, &address, "GET", "/v1/runs", None, &[], b""),
                            1 => request_from(
                                from,
                                &address,
                                "POST",
                                "/v1/workflows/invoice-check/runs",
                                Some("bt_not_a_token"),
                                &[("Content-Type", "application/json")],
                                &garbage,
                            ),
                            _ => request_from(
                                from,
                                &address,
                                "GET",
                                "/v1/no/such/route",
                                None,
                                &[],
                                b"",
                            ),
                        };
                        sent += 1;
                        refused += usize::from(answer.status == 429);
                    }
                    (sent, refused)
                })
            })
            .collect();
        Flood {
            stop,
            started: Instant::now(),
            threads,
        }
    }

    /// Stops the flood; returns requests sent, how many got 429, and its seconds.
    fn stop(self) -> (usize, usize, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let (sent, refused) = self
            .threads
            .into_iter()
            .map(|t| t.join().expect("a flood thread"))
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        (sent, refused, self.started.elapsed().as_secs_f64())
    }
}

/// What this process has used so far: CPU time (user and system, every thread: server,
/// load generator and stand-in) and bytes it caused to be written to storage, from /proc
/// (zero where there is none); and the engine's commits.
#[derive(Clone, Copy)]
struct Usage {
    cpu: Duration,
    /// Minor page faults: fresh memory the kernel had to map (and zero).
    faults: u64,
    written: u64,
    commits: u64,
}

impl Usage {
    fn now(engine: &Engine) -> Usage {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command name (which may hold spaces): minflt is the 8th, utime
        // and stime are the 12th and 13th, in clock ticks of 1/100 s on Linux.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let ticks: u64 = fields
            .get(11..13)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        let faults = fields.get(7).and_then(|f| f.parse().ok()).unwrap_or(0);
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let written = io
            .lines()
            .find_map(|l| l.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Usage {
            cpu: Duration::from_millis(ticks * 10),
            faults,
            written,
            commits: engine.commits(),
        }
    }

    /// What was used between `self` and `later`.
    fn until(self, later: Usage) -> Usage {
        Usage {
            cpu: later.cpu.saturating_sub(self.cpu),
            faults: later.faults.saturating_sub(self.faults),
            written: later.written.saturating_sub(self.written),
            commits: later.commits.saturating_sub(self.commits),
        }
    }
}

/// Prints one round's figures, with what it used per run; returns its p50 and rate.
fn report(
    latencies: &[Duration],
    wall: Duration,
    used: Usage,
    concurrency: usize,
) -> (Duration, f64) {
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let rate = latencies.len() as f64 / wall.as_secs_f64();
    println!(
        "http sync 3-step run    p50 {:>7.3} ms   p90 {:>7.3} ms   p99 {:>7.3} ms   {:>6.0} runs/s   CPU {:>4.0} us/run   {:>4.1} page faults/run   {:.2} commits/run   {:>4.1} KiB written/run   ({} runs, concurrency {concurrency})",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        rate,
        used.cpu.as_secs_f64() * 1e6 / latencies.len() as f64,
        used.faults as f64 / latencies.len() as f64,
        used.commits as f64 / latencies.len() as f64,
        used.written as f64 / 1024.0 / latencies.len() as f64,
        latencies.len()
    );
    (at(0.5), rate)
}

/// `round`, measured: its latencies, wall time and usage.
fn measured_round(
    engine: &Engine,
    load: &Load,
    total: usize,
    concurrency: usize,
) -> (Vec<Duration>, Duration, Usage) {
    let before = Usage::now(engine);
    let (latencies, wall) = round(load, total, concurrency);
    (latencies, wall, before.until(Usage::now(engine)))
}

fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (rounds, per_round) = if measure { (5, 6_400) } else { (1, 64) };
    if !measure {
        println!("smoke mode (cargo test): one small round of a debug build, not a measurement");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let stand_in = StandIn::start(|_| Reply::json(200, json!({"vendor": "ACME", "ok": true})));
    let ((address, unguarded), token, test) = runtime.block_on(async {
        let t = TestEngine::with_plugins(&["echo", "invoice_rules"]).await;
        t.allow("echo", &stand_in);
        t.apply(INVOICE_CHECK);
        t.apply(&invoice_check_effect_free());
        let tokens = Tokens::new(t.registry.store().clone());
        let (token, _) = tokens.create("bench", Role::Trigger).unwrap();
        let serve = |limits| serve(t.engine.clone(), tokens.clone(), limits);
        let address = serve(ApiLimits::default()).await;
        // The same API with the bad-request budget off, to show what it saves.
        let unguarded = serve(ApiLimits {
            bad_requests: BadRequestBudget {
                burst: 0,
                per_second: 0,
            },
            ..ApiLimits::default()
        })
        .await;
        ((address, unguarded), token, t)
    });
    // The workflow as written, and with `echo` (which reaches nothing outside Baton)
    // declared `effects: none`, so it shares the commit of the step that fed it.
    let as_written = Load {
        address,
        token,
        workflow: "invoice-check",
        body: matching_invoice(&stand_in.url("/vendor")).to_string(),
    };
    let variants = [
        ("as written", as_written.clone()),
        (
            "echo effect-free",
            Load {
                workflow: "invoice-check-effect-free",
                ..as_written.clone()
            },
        ),
    ];

    // Warm-up: compiled components cached, connections and pools filled.
    for (_, load) in &variants {
        round(load, CONCURRENCY * 4, CONCURRENCY);
    }
    // One client alone: the latency of a run that queues behind no other.
    for (name, load) in &variants {
        let (latencies, wall, used) = measured_round(&test.engine, load, per_round / 16, 1);
        print!("{name:<24} ");
        report(&latencies, wall, used, 1);
    }
    // The same lone client while another address floods the server with malformed
    // requests, with the bad-request budget on and off.
    let unguarded = Load {
        address: unguarded,
        ..as_written.clone()
    };
    for (name, load) in [("guarded", &as_written), ("unguarded", &unguarded)] {
        let flood = Flood::start(&load.address);
        let (latencies, wall, used) = measured_round(&test.engine, load, per_round / 16, 1);
        let (sent, refused, seconds) = flood.stop();
        print!("under a flood, {name:<9} ");
        report(&latencies, wall, used, 1);
        println!(
            "  flood from 127.0.0.2: {:.0} malformed requests/s, {:.0}% answered 429",
            sent as f64 / seconds,
            100.0 * refused as f64 / sent.max(1) as f64
        );
    }
    // Rounds of the two variants alternate, so both see the same phases of the machine
    // and the same growing database.
    let mut medians = variants.each_ref().map(|_| (Vec::new(), Vec::new()));
    for _ in 0..rounds {
        for ((name, load), (p50s, rates)) in variants.iter().zip(&mut medians) {
            let (latencies, wall, used) =
                measured_round(&test.engine, load, per_round, CONCURRENCY);
            print!("{name:<24} ");
            let (p50, rate) = report(&latencies, wall, used, CONCURRENCY);
            p50s.push(p50);
            rates.push(rate);
        }
    }
    for ((name, _), (mut p50s, mut rates)) in variants.iter().zip(medians) {
        p50s.sort();
        rates.sort_by(f64::total_cmp);
        println!(
            "{name}: median of {rounds} rounds: p50 {:.3} ms, {:.0} runs/s (targets: p50 <= 2 ms, >= 3,000 runs/s)",
            p50s[p50s.len() / 2].as_secs_f64() * 1e3,
            rates[rates.len() / 2]
        );
    }
}
