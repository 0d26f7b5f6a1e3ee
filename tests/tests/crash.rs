//! Durability under kill -9: hundreds of runs of a multi-step workflow (with a for-each,
//! a timer and an outbound HTTP call) in flight in the real `baton` binary, which is
//! SIGKILLed at random moments and restarted, over and over.
//!
//! It proves: every run finishes; each step's completion is recorded exactly once;
//! outputs equal those of the same runs without crashes; every event chain verifies;
//! no started run is lost; and a call interrupted by a kill is made again with the
//! same idempotency key.

use baton::engine::audit::{Event, EventKind};
use baton::engine::state::{RunRecord, RunStatus};
use baton::store::Store;
use baton_tests::stand_in::{Reply, StandIn};
use baton_tests::{baton_bin, baton_ok, plugin_wasm};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 500;

fn ok(data: &Path, args: &[&str]) -> String {
    baton_ok(data, data, args).0
}

/// A data directory with the plugins installed, the workflow applied and every run
/// started (recorded, not yet driven).
fn prepare(root: &Path, name: &str, server: &StandIn) -> PathBuf {
    let data = root.join(name);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("baton.toml"), "allow_unsigned = true\n").unwrap();
    for plugin in ["echo", "http"] {
        let path = plugin_wasm(plugin);
        ok(&data, &["plugin", "install", path.to_str().unwrap()]);
    }
    let host = format!("127.0.0.1:{}", server.addr.port());
    ok(&data, &["plugin", "grant", "http", "--host", &host]);
    let workflow = root.join("crashy.yaml");
    std::fs::write(
        &workflow,
        format!(
            r##"
name: crashy
key: .input.id
steps:
  - id: first
    call: echo/echo
    input: {{ message: .input.id }}
  - id: lines
    for_each: .input.items
    concurrency: 2
    steps:
      - id: up
        call: echo/echo
        input: {{ message: '.item + "#" + (.index | tostring)' }}
  - id: nap
    wait: {{ for: 400ms }}
  - id: post
    call: http/request
    input: {{ method: '"POST"', url: '"{url}"', body: {{ id: .input.id }} }}
  - id: summary
    call: echo/echo
    input: {{ message: '.steps.first.output.message + ":" + ([.steps.lines.output[].message] | join(","))' }}
  - id: size
    branch:
      - if: (.input.items | length) > 2
        next: big
    else: small
  - id: big
    end: '{{id: .input.id, summary: .steps.summary.output.message, size: "big", posted: .steps.post.output.body.ok}}'
  - id: small
    end: '{{id: .input.id, summary: .steps.summary.output.message, size: "small", posted: .steps.post.output.body.ok}}'
"##,
            url = server.url("/post")
        ),
    )
    .unwrap();
    ok(&data, &["workflow", "apply", workflow.to_str().unwrap()]);
    let inputs: String = (0..RUNS)
        .map(|i| {
            let items: Vec<String> = (0..(i % 5)).map(|j| format!("i{i}-{j}")).collect();
            format!("{}\n", json!({"id": format!("R{i:04}"), "items": items}))
        })
        .collect();
    let file = root.join(format!("{name}.jsonl"));
    std::fs::write(&file, inputs).unwrap();
    let started = ok(
        &data,
        &["run", "start", "crashy", "--inputs", file.to_str().unwrap()],
    );
    assert_eq!(started.lines().count(), RUNS);
    data
}

/// A tiny deterministic generator, so a failing kill schedule can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn runs(data: &Path) -> Vec<RunRecord> {
    serde_json::from_str(&ok(data, &["run", "list", "--json", "--limit", "0"])).unwrap()
}

fn outputs_by_key(data: &Path) -> BTreeMap<String, Value> {
    runs(data)
        .into_iter()
        .map(|r| {
            assert_eq!(
                r.status,
                RunStatus::Succeeded,
                "run {} is {}: {:?}",
                r.id,
                r.status,
                r.failure
            );
            (r.key.unwrap(), r.output.unwrap())
        })
        .collect()
}

#[test]
fn runs_survive_sigkill_at_random_moments() {
    let server = StandIn::start(|_| Reply::json(200, json!({"ok": true})));
    let root = tempfile::tempdir().unwrap();

    // The reference: the same runs, driven once without interruption.
    let calm = prepare(root.path(), "calm", &server);
    let clock = Instant::now();
    ok(&calm, &["worker"]);
    println!("{RUNS} runs without crashes: {:?}", clock.elapsed());
    let expected = outputs_by_key(&calm);
    assert_eq!(expected.len(), RUNS);
    let calm_posts = server.requests().len();
    assert_eq!(calm_posts, RUNS, "without crashes every run posts once");

    let data = prepare(root.path(), "crashy", &server);
    let mut rng = Lcg(0x5EED);
    let mut kills = 0;
    let started = Instant::now();
    for _ in 0..60 {
        let mut worker = Command::new(baton_bin())
            .arg("--data")
            .arg(&data)
            .arg("worker")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // From during start-up and recovery to well into the work.
        let delay = 10 + rng.next(250);
        std::thread::sleep(Duration::from_millis(delay));
        if worker.try_wait().unwrap().is_some() {
            break;
        }
        worker.kill().unwrap(); // SIGKILL
        worker.wait().unwrap();
        kills += 1;
    }
    assert!(
        kills >= 15,
        "the workers were killed {kills} times; the test needs more kill points"
    );
    ok(&data, &["worker"]);
    let crash_time = started.elapsed();

    // Every started run finished, with the same output as without crashes.
    let actual = outputs_by_key(&data);
    assert_eq!(actual, expected);

    // Every chain verifies.
    let verify = ok(&data, &["audit", "verify"]);
    assert!(verify.starts_with("ok:"), "{verify}");

    // Each step's completion is recorded exactly once; interrupted attempts were re-run.
    let all = runs(&data);
    let store = Store::open(&data.join("baton.redb")).unwrap();
    let mut interrupted = 0;
    for run in &all {
        let (events, _) = store.run_events(&run.id).unwrap();
        let mut completions: HashMap<String, usize> = HashMap::new();
        for stored in events {
            let event: Event = serde_json::from_slice(&stored.body).unwrap();
            match event.kind {
                EventKind::StepCompleted { path, .. } => *completions.entry(path).or_default() += 1,
                EventKind::AttemptFailed { failure, .. } if failure.code == "interrupted" => {
                    interrupted += 1
                }
                _ => {}
            }
        }
        let items = run.input["items"].as_array().unwrap().len();
        // first, lines, the items, nap, post, summary, size, big|small.
        assert_eq!(
            completions.len(),
            7 + items,
            "run {}: {completions:?}",
            run.id
        );
        for (path, count) in completions {
            assert_eq!(
                count, 1,
                "run {}: step {path} completed {count} times",
                run.id
            );
        }
    }

    // The outbound call: at least once per run, always with that run's one key.
    let mut keys: HashMap<String, usize> = HashMap::new();
    for request in &server.requests()[calm_posts..] {
        *keys
            .entry(request.headers["idempotency-key"].clone())
            .or_default() += 1;
    }
    assert_eq!(keys.len(), RUNS, "one idempotency key per run");
    for run in &all {
        assert!(
            keys.contains_key(&format!("{}/post/0", run.id)),
            "run {} never posted",
            run.id
        );
    }
    let repeated: usize = keys.values().map(|n| n - 1).sum();
    println!(
        "{RUNS} runs, {kills} kills in {crash_time:?}: {interrupted} attempts interrupted, {repeated} posts repeated with the same key"
    );
}
