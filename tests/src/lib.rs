//! Helpers shared by Baton's end-to-end tests and benchmarks: building the real plugin
//! components, locating the real `baton` binary, temporary data directories, and small
//! local servers that stand in for the outside world.

pub mod browser;
pub mod http;
pub mod polyglot;
pub mod stand_in;
pub mod standins;

use baton::config::Config;
use baton::engine::state::{RunView, StepRecord};
use baton::engine::{Applied, Engine, Recovery, StartRun};
use baton::registry::{InstallRequest, Registry};
use baton::runtime::{Runtime, RuntimeConfig};
use baton::store::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Every plugin package the tests use, with the file name of its component.
const PLUGINS: &[(&str, &str)] = &[
    ("plugin-echo", "echo"),
    ("plugin-http", "http"),
    ("plugin-invoice-rules", "invoice_rules"),
    ("plugin-ai-extract", "ai_extract"),
    ("plugin-erp", "erp"),
    ("plugin-payments", "payments"),
    ("plugin-notify", "notify"),
    ("plugin-hostile", "hostile"),
    ("plugin-hostile-rule", "hostile_rule"),
    ("plugin-echo-next", "echo_next"),
    ("plugin-networked-rule", "networked_rule"),
];

/// A workflow `reading`: `echo` reads `.input.text`, a person reviews that reading (the
/// `check` step), and the reviewed output is echoed again.
pub const READING: &str = r#"
name: reading
key: .input.id
steps:
  - id: read
    call: echo/echo
    input: { message: .input.text }
  - id: check
    human:
      title: Check what was read
      review: read
  - id: use
    call: echo/echo
    input: { message: .steps.check.output.output.message }
"#;

/// A workflow `invoice-check`, the HTTP benchmark's: `echo` fetches `.input.url` (one
/// outbound call), the `three-way-match` rule decides, and `echo` repeats the outcome.
pub const INVOICE_CHECK: &str = r#"
name: invoice-check
steps:
  - id: fetch
    call: echo/fetch
    input: { url: .input.url }
  - id: check
    rule: invoice-rules/three-way-match
    input: { invoice: .input.invoice, po: .input.po, receipt: .input.receipt }
    next: { approve: done, review: done, reject: done }
  - id: done
    call: echo/echo
    input: { message: .steps.check.output.outcome }
"#;

/// [`INVOICE_CHECK`] as `invoice-check-effect-free`, with its last call (`echo/echo`,
/// which reaches nothing outside Baton) declared `effects: none`.
pub fn invoice_check_effect_free() -> String {
    let workflow = INVOICE_CHECK
        .replace("name: invoice-check", "name: invoice-check-effect-free")
        .replace("call: echo/echo\n", "call: echo/echo\n    effects: none\n");
    assert!(
        workflow.contains("effects: none"),
        "INVOICE_CHECK changed shape"
    );
    workflow
}

/// An input for [`INVOICE_CHECK`] that fetches `url` and whose invoice matches its order
/// and receipt.
pub fn matching_invoice(url: &str) -> serde_json::Value {
    let line = serde_json::json!({"sku": "A", "quantity": 10, "unit_price": 10.0});
    serde_json::json!({
        "url": url,
        "invoice": {"vendor": "V", "currency": "EUR", "lines": [line], "total": 100.0},
        "po": {"vendor": "V", "currency": "EUR", "lines": [line]},
        "receipt": {"lines": [{"sku": "A", "quantity": 10}]}
    })
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Cargo's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Path of a first-party or test plugin component (e.g. `echo`), built for
/// wasm32-wasip2 on first use in this process (cargo makes later builds no-ops).
pub fn plugin_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cmd = cargo();
        cmd.args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "plugin",
        ]);
        for (package, _) in PLUGINS {
            cmd.args(["-p", package]);
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the plugin components failed");
    });
    assert!(
        PLUGINS.iter().any(|(_, file)| *file == name),
        "unknown test plugin {name}"
    );
    target_dir()
        .join("wasm32-wasip2/plugin")
        .join(format!("{name}.wasm"))
}

/// The bytes of a plugin component.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    std::fs::read(plugin_wasm(name)).expect("plugin component exists")
}

/// The `baton` binary. `cargo test` builds it (the host package has integration
/// tests); if it is missing or older than the host's sources, it is built here.
pub fn baton_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| fresh_bin("baton", "baton", &["host/src", "wit"]))
        .clone()
}

/// The `invoice-demo` binary (`examples/invoice`), built if missing or stale.
pub fn demo_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| fresh_bin("invoice-demo", "invoice-demo", &["examples/invoice/src"]))
        .clone()
}

/// The debug binary `bin` of `package`, built first if it is missing or older than
/// any file under `sources` (directories relative to the workspace root).
fn fresh_bin(package: &str, bin: &str, sources: &[&str]) -> PathBuf {
    let path = target_dir().join("debug").join(bin);
    if !is_fresh(&path, sources) {
        let status = cargo()
            .args(["build", "--quiet", "-p", package, "--bin", bin])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {bin} failed");
    }
    path
}

/// Whether `bin` exists and is newer than every file under `sources` (directories
/// relative to the workspace root).
fn is_fresh(bin: &Path, sources: &[&str]) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    fn newest(dir: &Path) -> std::time::SystemTime {
        let mut latest = std::time::SystemTime::UNIX_EPOCH;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let time = if path.is_dir() {
                newest(&path)
            } else {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(latest)
            };
            latest = latest.max(time);
        }
        latest
    }
    let root = workspace_root();
    let newest_source = sources
        .iter()
        .map(|dir| newest(&root.join(dir)))
        .max()
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    built >= newest_source
}

/// Runs the real `baton` binary on data directory `data`, in directory `cwd`, without
/// the `BATON_*` variables of the environment.
pub fn run_baton(data: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(baton_bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .current_dir(cwd)
        .env_remove("BATON_DATA")
        .env_remove("BATON_CONFIG")
        .env_remove("BATON_SERVER")
        .env_remove("BATON_TOKEN")
        .env_remove("BATON_TOKEN_FILE")
        .output()
        .expect("baton runs")
}

/// [`run_baton`], expecting success; returns stdout and stderr.
pub fn baton_ok(data: &Path, cwd: &Path, args: &[&str]) -> (String, String) {
    let out = run_baton(data, cwd, args);
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "baton {args:?} failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

/// [`run_baton`], expecting failure; returns stdout and stderr.
pub fn baton_fails(data: &Path, cwd: &Path, args: &[&str]) -> (String, String) {
    let out = run_baton(data, cwd, args);
    assert!(!out.status.success(), "baton {args:?} should fail");
    texts(&out)
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A shared runtime with small pools (tests create many registries).
pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Arc::new(
                Runtime::new(&RuntimeConfig {
                    max_concurrent_calls: 64,
                })
                .expect("runtime starts"),
            )
        })
        .clone()
}

/// A registry over a fresh redb file in a temporary directory.
pub struct TestRegistry {
    pub dir: tempfile::TempDir,
    pub registry: Registry,
}

impl TestRegistry {
    /// A registry that accepts unsigned plugins (most tests are not about signing).
    pub fn unsigned() -> TestRegistry {
        Self::with_config(Config {
            allow_unsigned: true,
            ..Default::default()
        })
    }

    pub fn with_config(config: Config) -> TestRegistry {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = open_registry(dir.path(), config);
        TestRegistry { dir, registry }
    }

    /// Opens the same database again, as a restarted process would.
    pub fn reopen(&self, config: Config) -> Registry {
        open_registry(self.dir.path(), config)
    }

    /// Installs a test plugin by component name, unsigned.
    pub async fn install(&self, name: &str) -> baton::registry::InstallReport {
        self.registry
            .install(InstallRequest {
                component: plugin_bytes(name),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("installing {name}: {e}"))
    }
}

/// Opens a registry on `dir/baton.redb` with the shared runtime.
pub fn open_registry(dir: &Path, config: Config) -> Registry {
    let store = Store::open(&dir.join("baton.redb")).expect("store opens");
    Registry::new(store, runtime(), config)
}

/// A workflow engine on a fresh data directory, with test plugins installed.
pub struct TestEngine {
    pub dir: tempfile::TempDir,
    pub registry: Arc<Registry>,
    pub engine: Engine,
}

impl TestEngine {
    /// Grants `plugin` the host and port of `server`.
    pub fn allow(&self, plugin: &str, server: &stand_in::StandIn) {
        let change = baton::registry::GrantChange {
            add_hosts: vec![format!("127.0.0.1:{}", server.addr.port())],
            ..Default::default()
        };
        self.registry.grant(plugin, &change).unwrap();
    }

    /// Installs `plugins` (component names, unsigned) and starts the engine.
    pub async fn with_plugins(plugins: &[&str]) -> TestEngine {
        let test = TestRegistry::unsigned();
        for plugin in plugins {
            test.install(plugin).await;
        }
        let registry = Arc::new(test.registry);
        let engine = Engine::start(registry.clone(), Recovery::ResumeAll).expect("engine starts");
        TestEngine {
            dir: test.dir,
            registry,
            engine,
        }
    }

    /// Applies a YAML definition; panics with the problems if it is refused.
    pub fn apply(&self, yaml: &str) -> Applied {
        self.engine
            .apply("test.yaml", yaml)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a run and returns its id.
    pub async fn start(&self, workflow: &str, input: serde_json::Value) -> String {
        self.engine
            .start_run(StartRun {
                workflow: workflow.into(),
                input,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .run_id
    }

    /// Waits until run `id` stops running (finished, or waiting for the outside) and is
    /// out of memory, then returns it.
    pub async fn settled(&self, id: &str) -> RunView {
        self.engine
            .wait_for(id, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("run {id}: {e}"));
        self.engine.settle(id).await;
        self.engine.run(id).unwrap()
    }

    /// Starts a run and waits for it to settle.
    pub async fn run(&self, workflow: &str, input: serde_json::Value) -> RunView {
        let id = self.start(workflow, input).await;
        self.settled(&id).await
    }
}

/// The fenced code blocks of `language` inside the Markdown section titled `section`
/// (`## section`) of `readme`, unindented as far as a list item indents them.
pub fn code_blocks(readme: &str, section: &str, language: &str) -> Vec<String> {
    let start = readme
        .find(&format!("## {section}"))
        .expect("section exists");
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + 3 + e);
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[start..end].lines() {
        let trimmed = line.trim_start();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(lang)) if lang == language => current = Some(String::new()),
            (Some(block), Some("")) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line.strip_prefix("   ").unwrap_or(line));
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

/// The record of step `path` in a run.
pub fn step<'a>(view: &'a RunView, path: &str) -> &'a StepRecord {
    &view
        .steps
        .iter()
        .find(|s| s.path == path)
        .unwrap_or_else(|| {
            let paths: Vec<&str> = view.steps.iter().map(|s| s.path.as_str()).collect();
            panic!("no step {path} in run {} (steps: {paths:?})", view.run.id)
        })
        .record
}
