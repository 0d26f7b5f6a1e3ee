//! Workflow engine benchmarks on the real engine, real `echo` components and a redb
//! file on disk (every transition committed durably).
//!
//! `cargo bench -p baton-tests --bench engine` measures; `cargo test -p baton-tests
//! --benches` runs the same code in a short smoke mode (small sizes, no targets checked).
//!
//! - chain-40: one run of 40 sequential `echo` steps, end to end (target <= 20 ms);
//! - lone step: a one-step run, start to finish, and its durable step (target p50 <= 0.5 ms);
//! - throughput: 1,000 concurrent runs of a 10-step chain (target >= 20,000 steps/s);
//! - parked: 100,000 runs parked on an event wait; process RSS per parked run
//!   (target <= 4 KiB).

use baton::engine::state::RunStatus;
use baton::engine::{Engine, StartRun};
use baton_tests::TestEngine;
use serde_json::json;
use std::time::{Duration, Instant};

struct Sizes {
    repeats: usize,
    concurrent_runs: usize,
    /// Rounds of the throughput benchmark.
    rounds: usize,
    parked_runs: usize,
    /// Names given on the command line: run only the benchmarks whose name contains one.
    filters: Vec<String>,
}

impl Sizes {
    fn wants(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }
}

fn chain(name: &str, steps: usize) -> String {
    let mut yaml = format!("name: {name}\nsteps:\n");
    for i in 0..steps {
        yaml.push_str(&format!(
            "  - id: s{i}\n    call: echo/echo\n    input: {{ message: .input.m }}\n"
        ));
    }
    yaml
}

async fn run_to_end(engine: &Engine, workflow: &str) -> (String, Duration) {
    let started = Instant::now();
    let id = engine
        .start_run(StartRun {
            workflow: workflow.into(),
            input: json!({"m": "x"}),
            ..Default::default()
        })
        .await
        .unwrap()
        .run_id;
    let run = engine
        .wait_for(&id, Duration::from_secs(60))
        .await
        .unwrap()
        .run;
    let took = started.elapsed();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.failure);
    (id, took)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>, target: &str) {
    samples.sort();
    println!(
        "{name:<28} p50 {:>9.3} ms   p90 {:>9.3} ms   min {:>9.3} ms   ({} samples; target {target})",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.9).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples.len()
    );
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The floor under every durable step: a bare redb commit of one small write, on the
/// same disk, now (disks vary from hour to hour; every figure should be read beside it).
fn commit_floor(dir: &std::path::Path, repeats: usize) {
    const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("floor");
    let db = redb::Database::create(dir.join("floor.redb")).unwrap();
    let value = [7u8; 300];
    let mut samples = Vec::new();
    for i in 0..repeats as u64 {
        let started = Instant::now();
        let txn = db.begin_write().unwrap();
        txn.open_table(TABLE)
            .unwrap()
            .insert(i, value.as_slice())
            .unwrap();
        txn.commit().unwrap();
        samples.push(started.elapsed());
    }
    report(
        "bare redb commit (floor)",
        samples,
        "the disk's cost of one durable step",
    );
}

async fn benchmarks(sizes: Sizes) {
    let t = TestEngine::with_plugins(&["echo"]).await;
    commit_floor(t.dir.path(), sizes.repeats.max(10) * 2);
    t.apply(&chain("chain-40", 40));
    t.apply(&chain("chain-10", 10));
    t.apply(&chain("lone", 1));
    t.apply("name: parked\nsteps:\n  - id: hold\n    wait: { event: go, key: .input.m }\n");

    // Warm up: load the plugin, compile the workflows.
    for _ in 0..3 {
        run_to_end(&t.engine, "chain-40").await;
        run_to_end(&t.engine, "lone").await;
    }

    if sizes.wants("chain-40") {
        chain_40(&t, &sizes).await;
    }
    if sizes.wants("lone") {
        lone_step(&t, &sizes).await;
    }
    if sizes.wants("throughput") {
        throughput(&t, &sizes).await;
    }
    if sizes.wants("parked") {
        parked(&t, &sizes).await;
    }
}

async fn chain_40(t: &TestEngine, sizes: &Sizes) {
    let mut chain40 = Vec::new();
    let mut per_step = Vec::new();
    for _ in 0..sizes.repeats {
        let (_, took) = run_to_end(&t.engine, "chain-40").await;
        chain40.push(took);
        per_step.push(took / 40);
    }
    report("chain-40 (end to end)", chain40, "<= 20 ms");
    report("chain-40 per step", per_step, "p50 <= 0.5 ms");
}

async fn lone_step(t: &TestEngine, sizes: &Sizes) {
    let mut lone = Vec::new();
    for _ in 0..sizes.repeats {
        lone.push(run_to_end(&t.engine, "lone").await.1);
    }
    report("lone one-step run", lone, "start + step + finish");
}

async fn throughput(t: &TestEngine, sizes: &Sizes) {
    // Every run started at once, each a 10-step chain; several rounds, as one round is
    // short enough for the machine's noise to show.
    let mut rates = Vec::new();
    for _ in 0..sizes.rounds {
        let started = Instant::now();
        let mut starts = tokio::task::JoinSet::new();
        for _ in 0..sizes.concurrent_runs {
            let engine = t.engine.clone();
            starts.spawn(async move { run_to_end(&engine, "chain-10").await });
        }
        while let Some(done) = starts.join_next().await {
            done.unwrap();
        }
        rates.push((sizes.concurrent_runs * 10) as f64 / started.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "{:<28} {:>9.0} steps/s median, {:.0} best   ({} rounds of {} runs x 10 steps; target >= 20,000 steps/s)",
        "throughput",
        rates[rates.len() / 2],
        rates[rates.len() - 1],
        sizes.rounds,
        sizes.concurrent_runs,
    );
}

async fn parked(t: &TestEngine, sizes: &Sizes) {
    // Parked runs: started, each parks on its wait and leaves memory.
    let before = rss_bytes();
    let started = Instant::now();
    let mut batch = tokio::task::JoinSet::new();
    for i in 0..sizes.parked_runs {
        let engine = t.engine.clone();
        batch.spawn(async move {
            engine
                .start_run(StartRun {
                    workflow: "parked".into(),
                    input: json!({"m": format!("k{i}")}),
                    ..Default::default()
                })
                .await
                .unwrap()
        });
        if batch.len() >= 2000 {
            while batch.join_next().await.is_some() {}
        }
    }
    while batch.join_next().await.is_some() {}
    while t.engine.live_runs() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = rss_bytes();
    let waiting = t
        .engine
        .runs(Some(RunStatus::Waiting), Some("parked"), None, 0)
        .unwrap()
        .len();
    assert_eq!(waiting, sizes.parked_runs);
    println!(
        "{:<28} {:>9.0} bytes RSS per parked run   ({} runs parked in {:.1} s, RSS {} -> {} MiB; target <= 4096)",
        "parked runs",
        after.saturating_sub(before) as f64 / sizes.parked_runs as f64,
        sizes.parked_runs,
        started.elapsed().as_secs_f64(),
        before >> 20,
        after >> 20
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: a smoke run.
    let measure = std::env::args().any(|a| a == "--bench");
    let filters = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sizes = if measure {
        Sizes {
            repeats: 200,
            concurrent_runs: 1000,
            rounds: 7,
            parked_runs: 100_000,
            filters,
        }
    } else {
        Sizes {
            repeats: 3,
            concurrent_runs: 50,
            rounds: 1,
            parked_runs: 200,
            filters,
        }
    };
    if !measure {
        println!(
            "smoke mode (cargo test): small sizes, and a debug build: these are not measurements"
        );
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(benchmarks(sizes));
}
