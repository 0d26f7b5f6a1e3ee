//! What a connector costs by the language it is written in: Rust (`http`), JavaScript
//! (`fx-rates`, componentize-js) and Python (`vendor-master`, componentize-py).
//!
//! For each: component size; install time (verify, compile to native code, `describe`,
//! store: what `baton plugin install` waits for); the load of the cached native code a
//! restart pays instead; and the latency of one action that makes one HTTP GET to a
//! local stand-in, through the registry (schema checks, grants, a fresh instance).
//!
//! `cargo bench -p baton-tests --bench languages` measures (5 installs, 500 calls each);
//! `cargo test --benches` runs it once as a smoke test. Figures: BENCHMARKS.md.

use baton::config::Config;
use baton::manifest::PluginKind;
use baton::registry::{GrantChange, InstallRequest};
use baton::runtime::CallContext;
use baton_tests::polyglot::{Lang, plugin_wasm};
use baton_tests::stand_in::{Reply, StandIn};
use baton_tests::{open_registry, plugin_bytes, runtime};
use serde_json::json;
use std::time::{Duration, Instant};

struct Subject {
    language: &'static str,
    plugin: &'static str,
    component: Vec<u8>,
    action: &'static str,
    /// The input, given the stand-in's base URL.
    input: fn(&str) -> serde_json::Value,
}

fn subjects() -> Vec<Subject> {
    let polyglot = |lang, name| std::fs::read(plugin_wasm(lang, name)).unwrap();
    vec![
        Subject {
            language: "Rust",
            plugin: "http",
            component: plugin_bytes("http"),
            action: "request",
            input: |base| json!({"method": "GET", "url": format!("{base}/vendors/V-100"), "bearer_secret": "token"}),
        },
        Subject {
            language: "JavaScript",
            plugin: "fx-rates",
            component: polyglot(Lang::JavaScript, "fx-rates"),
            action: "convert",
            input: |_| json!({"amount": 100, "from": "EUR", "to": "USD"}),
        },
        Subject {
            language: "Python",
            plugin: "vendor-master",
            component: polyglot(Lang::Python, "vendor-master"),
            action: "lookup-vendor",
            input: |_| json!({"vendor_id": "V-100"}),
        },
    ]
}

fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (installs, calls) = if measure { (5, 500) } else { (1, 3) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // One upstream for all three: every answer is a small JSON document.
    let upstream = StandIn::start(|r| {
        let body = if r.path.starts_with("/latest") {
            json!({"amount": 1.0, "base": "EUR", "date": "2026-11-24", "rates": {"USD": 1.0835}})
        } else {
            json!({"id": "V-100", "name": "Acme Supplies Ltd.", "country": "DE", "status": "active",
                   "iban": "DE89370400440532013000", "payment_terms_days": 30})
        };
        Reply::json(200, body)
    });
    let base = upstream.url("");
    let config = Config {
        allow_unsigned: true,
        ..Default::default()
    };

    println!(
        "{:<11} {:<14} {:>9} {:>12} {:>12} {:>10} {:>10}",
        "language", "plugin", "size", "install p50", "load p50", "call p50", "call p95"
    );
    for subject in subjects() {
        let grant = GrantChange {
            add_hosts: vec![upstream.addr.to_string()],
            set_secrets: ["token", "api_key"]
                .map(|s| (s.to_owned(), "bench-key".to_owned()))
                .to_vec(),
            set_config: vec![("base_url".into(), json!(base))],
            ..Default::default()
        };
        // A fresh database per install, so each one compiles.
        let mut install_times = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..installs {
            let dir = tempfile::tempdir().unwrap();
            let registry = open_registry(dir.path(), config.clone());
            let started = Instant::now();
            let report = rt
                .block_on(registry.install(InstallRequest {
                    component: subject.component.clone(),
                    grant: grant.clone(),
                    ..Default::default()
                }))
                .unwrap();
            install_times.push(started.elapsed());
            dirs.push((dir, registry, report.plugin.record.digest));
        }
        let (_dir, registry, digest) = dirs.pop().unwrap();

        // The native code the install cached: what a restart loads (compiling it again
        // here would cost a CI smoke run another compile of each large component).
        let artifact = registry
            .store()
            .compiled_artifact(&digest, runtime().engine_key(PluginKind::Connector))
            .unwrap()
            .expect("the install cached its native code");
        let mut load_times: Vec<Duration> = (0..installs)
            .map(|_| {
                let started = Instant::now();
                runtime().load(PluginKind::Connector, &artifact).unwrap();
                started.elapsed()
            })
            .collect();

        let target = subject.plugin.parse().unwrap();
        let input = (subject.input)(&base).to_string();
        let context = CallContext::default();
        let mut call_times = Vec::new();
        for i in 0..calls + 5 {
            let started = Instant::now();
            let report = rt
                .block_on(registry.call(&target, subject.action, &input, &context))
                .unwrap();
            let elapsed = started.elapsed();
            if let Err(f) = &report.result {
                panic!("{} {}: {f:?}", subject.plugin, subject.action);
            }
            if i >= 5 {
                call_times.push(elapsed); // the first calls warm caches and connections
            }
        }

        println!(
            "{:<11} {:<14} {:>7.1}MB {:>12} {:>12} {:>10} {:>10}",
            subject.language,
            subject.plugin,
            subject.component.len() as f64 / 1e6,
            ms(percentile(&mut install_times, 50)),
            ms(percentile(&mut load_times, 50)),
            ms(percentile(&mut call_times, 50)),
            ms(percentile(&mut call_times, 95)),
        );
    }
}

fn percentile(times: &mut [Duration], p: usize) -> Duration {
    times.sort();
    times[(times.len() - 1) * p / 100]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
