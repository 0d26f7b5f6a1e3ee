//! wasmtime: compile, limit, invoke.
//!
//! The runtime knows plugins only as component bytes, compiled artifacts and the WIT
//! contract. It never sees redb or workflows: the registry hands it bytes and grants,
//! and gets back [`Invocation`]s.
//!
//! - One [`wasmtime::Engine`] per plugin class: connectors, and rules (with fuel and
//!   NaN canonicalisation, so they are deterministic), each on the pooling allocator.
//! - One [`PreparedPlugin`] (an `InstancePre`) per installed plugin version.
//! - A fresh `Store` per call: nothing survives from one call to the next.
//! - Limits per call: wall-clock deadline (epoch interruption), memory cap, fuel (rules),
//!   input and output size.

mod bindings;
mod call;
mod classify;
pub mod net;
mod redact;

pub use net::{Denial, DenyReason, HostPattern, HostPatternError, HostPolicy};
pub use redact::Redactor;

use crate::manifest::{ActionSpec, Capabilities, PluginKind, PluginManifest};
use bindings::connector::{ConnectorPre, baton::plugin::types as wit};
use bindings::rule::RulePre;
use call::{CallState, LogBuffer, MemoryLimiter};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// How often the epoch advances; also how long a busy guest runs before it yields to
/// other calls on the same thread.
const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Dirty memory (per linear memory and table) reset in place between calls rather than
/// returned to the kernel.
const RESIDENT_BYTES: usize = 1 << 20;

/// Captured stdout and stderr per call.
const MAX_STDIO_BYTES: usize = 256 * 1024;

/// Errors that stop a plugin from being loaded or described. (A failing *call* is not
/// an error: it is an [`Invocation`] whose result is a [`Failure`].)
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("not a WebAssembly file (it does not start with the `\\0asm` magic number)")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component; build the plugin for the \
         wasm32-wasip2 target (`cargo build --target wasm32-wasip2`), which produces a component"
    )]
    CoreModule,
    #[error("the WebAssembly file is malformed: {0}")]
    Malformed(String),
    #[error(
        "the component implements neither baton:plugin world: a connector exports `describe` \
         and `invoke`, a rule exports `describe` and `evaluate` (it exports: {})",
        if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
    )]
    NotAPlugin { exports: Vec<String> },
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error("the compiled artifact cannot be loaded (it will be recompiled): {0}")]
    Artifact(String),
    #[error("the component needs imports Baton does not provide to a {kind}: {message}")]
    Link { kind: PluginKind, message: String },
    #[error("describe() failed: {0}")]
    Describe(String),
    #[error("the runtime could not start: {0}")]
    Setup(String),
}

/// Limits for one call, resolved from server defaults and per-version overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: usize,
    pub timeout: Duration,
    /// Rules only: instructions (roughly) a rule may execute.
    pub fuel: u64,
    pub max_input_bytes: usize,
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(10),
            fuel: 1_000_000_000,
            max_input_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
        }
    }
}

/// Where a call comes from; see `call-context` in the WIT.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    pub run_id: String,
    pub step_id: String,
    pub attempt: u32,
    pub idempotency_key: String,
}

/// A past human correction, as served to plugins through the `feedback` import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    pub input: String,
    pub original: String,
    pub corrected: String,
    pub actor: String,
    pub created_at_ms: u64,
}

/// Where `feedback.corrections` reads from (the store, in the server).
pub trait FeedbackSource: Send + Sync {
    fn corrections(&self, plugin: &str, action: &str, limit: usize) -> Vec<Correction>;
}

/// What one plugin version may use during a call: the intersection of what it
/// requested and what the admin granted, resolved by the registry.
#[derive(Clone, Default)]
pub struct Grants {
    /// `name@version`, for messages.
    pub plugin: String,
    /// `name`, the key of grants and corrections.
    pub plugin_name: String,
    pub hosts: Arc<HostPolicy>,
    /// Granted secret values by name (only those the plugin requested).
    pub secrets: BTreeMap<String, String>,
    /// Admin-set configuration values (JSON text) by key.
    pub config: BTreeMap<String, String>,
    pub feedback: Option<Arc<dyn FeedbackSource>>,
}

/// Severity of a captured log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One `log` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    /// Microseconds since the call started.
    pub at_us: u64,
}

/// Who decided a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureOrigin {
    /// The plugin returned a typed failure.
    Plugin,
    /// The sandbox stopped it: deadline, memory, fuel, trap, size limits, denials.
    Sandbox,
}

/// Why a call did not produce an output. Plugin failures and sandbox failures share
/// one shape so workflows can route on `code` and `retryable` alike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    pub origin: FailureOrigin,
}

impl Failure {
    fn sandbox(code: &str, message: String, retryable: bool) -> Failure {
        Failure {
            code: code.to_owned(),
            message,
            retryable,
            details: None,
            origin: FailureOrigin::Sandbox,
        }
    }
}

/// A rule's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: String,
    pub reasons: Vec<String>,
}

/// The full account of one call: its result and everything the plugin said on the way.
/// Secret values have been redacted from every field.
#[derive(Clone, Debug, Serialize)]
pub struct Invocation<T> {
    pub result: Result<T, Failure>,
    pub logs: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    /// Requests the network gate refused, each explained.
    pub denied: Vec<String>,
    #[serde(with = "duration_us")]
    pub duration: Duration,
    /// Rules only.
    pub fuel_used: Option<u64>,
}

impl<T> Invocation<T> {
    /// Chains a further check or conversion onto a successful result.
    pub fn and_then<U>(self, f: impl FnOnce(T) -> Result<U, Failure>) -> Invocation<U> {
        Invocation {
            result: self.result.and_then(f),
            logs: self.logs,
            stdout: self.stdout,
            stderr: self.stderr,
            denied: self.denied,
            duration: self.duration,
            fuel_used: self.fuel_used,
        }
    }
}

mod duration_us {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }
}

/// Sizing of the runtime's instance pools.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// How many calls (per plugin class) may run at once.
    pub max_concurrent_calls: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_concurrent_calls: 256,
        }
    }
}

/// One plugin class: its engine, linker and artifact compatibility key.
struct Flavor {
    kind: PluginKind,
    engine: Engine,
    linker: Arc<Linker<CallState>>,
    key: String,
}

/// The wasmtime side of Baton. Create one per process and share it.
pub struct Runtime {
    connectors: Flavor,
    rules: Flavor,
    stop_ticker: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds both engines and starts the epoch ticker.
    pub fn new(config: &RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let connectors = Flavor::new(PluginKind::Connector, config)?;
        let rules = Flavor::new(PluginKind::Rule, config)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let engines = [connectors.engine.clone(), rules.engine.clone()];
        let stop = stop_ticker.clone();
        std::thread::Builder::new()
            .name("baton-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engines.iter().for_each(Engine::increment_epoch);
                }
            })
            .map_err(|e| RuntimeError::Setup(format!("cannot start the epoch thread: {e}")))?;
        Ok(Runtime {
            connectors,
            rules,
            stop_ticker,
        })
    }

    /// Which world `bytes` implements, without compiling it.
    pub fn classify(bytes: &[u8]) -> Result<PluginKind, RuntimeError> {
        classify::classify(bytes)
    }

    /// Identifies the native code this runtime produces for `kind`: artifacts cached
    /// under another key were made by another wasmtime or other settings.
    pub fn engine_key(&self, kind: PluginKind) -> &str {
        &self.flavor(kind).key
    }

    /// Compiles a component to native code (the slow part of install).
    pub fn compile(&self, kind: PluginKind, bytes: &[u8]) -> Result<Vec<u8>, RuntimeError> {
        self.flavor(kind)
            .engine
            .precompile_component(bytes)
            .map_err(|e| RuntimeError::Compile(format!("{e:#}")))
    }

    /// Loads native code produced by [`Runtime::compile`] and links it.
    pub fn load(&self, kind: PluginKind, artifact: &[u8]) -> Result<PreparedPlugin, RuntimeError> {
        let flavor = self.flavor(kind);
        // SAFETY: artifacts come only from `compile` with this engine configuration (the
        // store keys them by `engine_key`), and the store is Baton's own database.
        let component = unsafe { Component::deserialize(&flavor.engine, artifact) }
            .map_err(|e| RuntimeError::Artifact(format!("{e:#}")))?;
        flavor.prepare(&component)
    }

    /// Compiles and links in memory, without caching: for one-off local invocations.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<PreparedPlugin, RuntimeError> {
        let kind = Self::classify(bytes)?;
        let flavor = self.flavor(kind);
        let component = Component::new(&flavor.engine, bytes)
            .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
        flavor.prepare(&component)
    }

    fn flavor(&self, kind: PluginKind) -> &Flavor {
        match kind {
            PluginKind::Connector => &self.connectors,
            PluginKind::Rule => &self.rules,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Flavor {
    fn new(kind: PluginKind, settings: &RuntimeConfig) -> Result<Flavor, RuntimeError> {
        let setup = |e: wasmtime::Error| RuntimeError::Setup(format!("{e:#}"));
        let calls = settings.max_concurrent_calls.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(calls)
            .total_core_instances(calls * 8)
            .total_memories(calls * 2)
            .total_tables(calls * 8)
            .total_stacks(calls)
            .max_memories_per_component(4)
            .max_core_instances_per_component(32)
            .max_tables_per_component(32)
            // Reset only the pages a call dirtied, with memset, instead of dropping the
            // whole memory with madvise: the next call on the slot takes no page faults.
            // (PAGEMAP_SCAN needs Linux 6.7+; elsewhere this falls back to madvise.)
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(RESIDENT_BYTES)
            .table_keep_resident(RESIDENT_BYTES);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if kind == PluginKind::Rule {
            config
                .consume_fuel(true)
                .cranelift_nan_canonicalization(true);
        }
        let engine = Engine::new(&config).map_err(setup)?;

        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(setup)?;
        bindings::types::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)
            .map_err(setup)?;
        bindings::log::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s).map_err(setup)?;
        if kind == PluginKind::Connector {
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(setup)?;
            bindings::config::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)
                .map_err(setup)?;
            bindings::feedback::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)
                .map_err(setup)?;
        }

        let mut hasher = HashWriter(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let key = format!("{kind}-{}", hex::encode(&hasher.0.finalize()[..16]));
        Ok(Flavor {
            kind,
            engine,
            linker: Arc::new(linker),
            key,
        })
    }

    fn prepare(&self, component: &Component) -> Result<PreparedPlugin, RuntimeError> {
        let link = |e: wasmtime::Error| RuntimeError::Link {
            kind: self.kind,
            message: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(component).map_err(link)?;
        let prepared = match self.kind {
            PluginKind::Connector => Prepared::Connector(ConnectorPre::new(pre).map_err(link)?),
            PluginKind::Rule => Prepared::Rule(RulePre::new(pre).map_err(link)?),
        };
        Ok(PreparedPlugin {
            engine: self.engine.clone(),
            prepared,
        })
    }
}

/// Feeds `Hash` output into SHA-256, for a key that is stable across processes.
struct HashWriter(Sha256);

impl std::hash::Hasher for HashWriter {
    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 state is read")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

enum Prepared {
    Connector(ConnectorPre<CallState>),
    Rule(RulePre<CallState>),
}

/// A plugin version compiled and linked, ready to be instantiated for each call.
pub struct PreparedPlugin {
    engine: Engine,
    prepared: Prepared,
}

impl PreparedPlugin {
    /// Which world it implements.
    pub fn kind(&self) -> PluginKind {
        match self.prepared {
            Prepared::Connector(_) => PluginKind::Connector,
            Prepared::Rule(_) => PluginKind::Rule,
        }
    }

    /// Calls `describe()` in a sandbox with no grants.
    pub async fn describe(&self, limits: &Limits) -> Result<PluginManifest, RuntimeError> {
        let grants = Arc::new(Grants {
            plugin: "(being described)".into(),
            ..Default::default()
        });
        let kind = self.kind();
        let call = self
            .run(grants, limits, async |store| match &self.prepared {
                Prepared::Connector(pre) => {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance.call_describe(&mut *store).await.map(Ok)
                }
                Prepared::Rule(pre) => {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance.call_describe(&mut *store).await.map(Ok)
                }
            })
            .await;
        let info = call.result.map_err(|f| RuntimeError::Describe(f.message))?;
        manifest_from_wit(kind, info)
    }

    /// Runs connector `action` on `input` (JSON text).
    pub async fn invoke(
        &self,
        grants: Arc<Grants>,
        limits: &Limits,
        context: &CallContext,
        action: &str,
        input: &str,
    ) -> Invocation<String> {
        let Prepared::Connector(pre) = &self.prepared else {
            return wrong_world(&grants, "invoke", "a rule");
        };
        if let Some(early) = check_input(&grants, limits, input) {
            return early;
        }
        let ctx = wit::CallContext {
            run_id: context.run_id.clone(),
            step_id: context.step_id.clone(),
            attempt: context.attempt,
            idempotency_key: context.idempotency_key.clone(),
        };
        let max_output = limits.max_output_bytes;
        let plugin = grants.plugin.clone();
        self.run(grants, limits, async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            instance.call_invoke(&mut *store, &ctx, action, input).await
        })
        .await
        .and_then(|output| {
            if output.len() <= max_output {
                return Ok(output);
            }
            Err(Failure::sandbox(
                "output_too_large",
                format!(
                    "plugin {plugin} returned {} bytes from action {action}, over its output limit of {max_output} bytes",
                    output.len(),
                ),
                false,
            ))
        })
    }

    /// Evaluates rule `rule` on `input` (JSON text).
    pub async fn evaluate(
        &self,
        grants: Arc<Grants>,
        limits: &Limits,
        rule: &str,
        input: &str,
    ) -> Invocation<Decision> {
        let Prepared::Rule(pre) = &self.prepared else {
            return wrong_world(&grants, "evaluate", "a connector");
        };
        if let Some(early) = check_input(&grants, limits, input) {
            return early;
        }
        self.run(grants, limits, async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            instance.call_evaluate(&mut *store, rule, input).await
        })
        .await
        .and_then(|d| {
            Ok(Decision {
                outcome: d.outcome,
                reasons: d.reasons,
            })
        })
    }

    /// The plumbing every call shares: a fresh store with limits, the call itself,
    /// mapping sandbox stops to failures, and redaction of everything reported.
    async fn run<T, F>(&self, grants: Arc<Grants>, limits: &Limits, f: F) -> Invocation<T>
    where
        T: Redact,
        F: AsyncFnOnce(&mut Store<CallState>) -> wasmtime::Result<Result<T, wit::Failure>>,
    {
        let started = Instant::now();
        let stdout = MemoryOutputPipe::new(MAX_STDIO_BYTES);
        let stderr = MemoryOutputPipe::new(MAX_STDIO_BYTES);
        let kind = self.kind();
        let mut store = self.new_store(kind, grants.clone(), limits, &stdout, &stderr, started);

        let outcome = f(&mut store).await;

        let fuel_used = (kind == PluginKind::Rule)
            .then(|| limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)));
        let stdout = String::from_utf8_lossy(&stdout.contents()).into_owned();
        let stderr = String::from_utf8_lossy(&stderr.contents()).into_owned();
        let state = store.data();
        let denied: Vec<String> = state.denials().iter().map(|d| d.to_string()).collect();
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(f)) => Err(plugin_failure(f, &denied)),
            Err(err) => Err(sandbox_failure(err, state, limits, &stderr)),
        };
        let logs = std::mem::take(&mut store.data_mut().logs);
        drop(store);

        let redactor = Redactor::new(grants.secrets.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut call = Invocation {
            result,
            logs: logs.finish(),
            stdout,
            stderr,
            denied,
            duration: started.elapsed(),
            fuel_used,
        };
        if !redactor.is_empty() {
            redact_invocation(&mut call, &redactor);
        }
        call
    }

    fn new_store(
        &self,
        kind: PluginKind,
        grants: Arc<Grants>,
        limits: &Limits,
        stdout: &MemoryOutputPipe,
        stderr: &MemoryOutputPipe,
        started: Instant,
    ) -> Store<CallState> {
        // No preopened directories, no environment, no arguments, no sockets (outbound
        // HTTP goes through wasi:http and the NetGuard only), stdio captured.
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if kind == PluginKind::Rule {
            // Rules are replayable: the same input must give the same decision, so the
            // clock is frozen and "randomness" is a fixed sequence.
            wasi.wall_clock(FrozenClock)
                .monotonic_clock(FrozenClock)
                .secure_random(wasmtime_wasi::Deterministic::new(vec![
                    0x5a, 0xc3, 0x1e, 0x77,
                ]))
                .insecure_random(wasmtime_wasi::Deterministic::new(vec![
                    0x3c, 0x96, 0xe1, 0x0f,
                ]))
                .insecure_random_seed(0);
        }
        let net = net::NetGuard {
            plugin: grants.plugin.as_str().into(),
            plugin_name: grants.plugin_name.as_str().into(),
            policy: grants.hosts.clone(),
            denials: Default::default(),
            request_timeout: limits.timeout,
        };
        let state = CallState {
            wasi: wasi.build(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            table: wasmtime::component::ResourceTable::new(),
            net,
            grants,
            limiter: MemoryLimiter {
                max_bytes: limits.memory_bytes,
                refused: None,
            },
            logs: LogBuffer::new(started),
            deadline: started + limits.timeout,
            timed_out: false,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if Instant::now() >= state.deadline {
                state.timed_out = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            // Let other calls on this thread run between slices.
            Ok(UpdateDeadline::Yield(1))
        });
        if kind == PluginKind::Rule {
            store
                .set_fuel(limits.fuel)
                .expect("rules engine consumes fuel");
            store
                .fuel_async_yield_interval(Some(10_000_000))
                .expect("rules engine consumes fuel");
        }
        store
    }
}

/// A clock stopped at the Unix epoch (wall) and at zero (monotonic).
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

fn check_input<T>(grants: &Grants, limits: &Limits, input: &str) -> Option<Invocation<T>> {
    (input.len() > limits.max_input_bytes).then(|| {
        not_run(Failure::sandbox(
            "input_too_large",
            format!(
                "input is {} bytes, over plugin {}'s input limit of {} bytes",
                input.len(),
                grants.plugin,
                limits.max_input_bytes
            ),
            false,
        ))
    })
}

fn wrong_world<T>(grants: &Grants, export: &str, what: &str) -> Invocation<T> {
    not_run(Failure::sandbox(
        "wrong_world",
        format!(
            "plugin {} is {what}; it has no `{export}` export",
            grants.plugin
        ),
        false,
    ))
}

/// The report of a call refused before the plugin ran.
fn not_run<T>(failure: Failure) -> Invocation<T> {
    Invocation {
        result: Err(failure),
        logs: Vec::new(),
        stdout: String::new(),
        stderr: String::new(),
        denied: Vec::new(),
        duration: Duration::ZERO,
        fuel_used: None,
    }
}

fn plugin_failure(f: wit::Failure, denied: &[String]) -> Failure {
    // A plugin that failed because the gate refused its request gets the gate's
    // explanation, which names the grant that would allow it.
    let (code, message, retryable) = match denied.first() {
        Some(denial) => ("host_denied".to_owned(), denial.clone(), false),
        None => (f.code, f.message, f.retryable),
    };
    Failure {
        code,
        message,
        retryable,
        details: f
            .details
            .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
        origin: if denied.is_empty() {
            FailureOrigin::Plugin
        } else {
            FailureOrigin::Sandbox
        },
    }
}

fn sandbox_failure(
    err: wasmtime::Error,
    state: &CallState,
    limits: &Limits,
    stderr: &str,
) -> Failure {
    let plugin = &state.grants.plugin;
    if state.timed_out {
        return Failure::sandbox(
            "deadline_exceeded",
            format!(
                "plugin {plugin} did not finish within its {} ms deadline and was stopped",
                limits.timeout.as_millis()
            ),
            true,
        );
    }
    if let Some(wanted) = state.limiter.refused {
        return Failure::sandbox(
            "memory_limit",
            format!(
                "plugin {plugin} tried to grow its memory to {} MiB, over its limit of {} MiB, and was stopped",
                wanted.div_ceil(1 << 20),
                limits.memory_bytes >> 20
            ),
            false,
        );
    }
    let panic_line = stderr
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::sandbox(
            "fuel_exhausted",
            format!(
                "rule {plugin} used up its fuel ({} units) and was stopped: it may loop forever",
                limits.fuel
            ),
            false,
        ),
        Some(Trap::StackOverflow) => Failure::sandbox(
            "stack_overflow",
            format!("plugin {plugin} overflowed its stack (unbounded recursion?) and was stopped"),
            false,
        ),
        Some(Trap::MemoryOutOfBounds) if panic_line.is_empty() => Failure::sandbox(
            "trap",
            format!(
                "plugin {plugin} trapped: out of bounds memory access (in a Rust plugin this is \
                 usually a stack overflow: its stack ran past the start of linear memory)"
            ),
            false,
        ),
        Some(trap) if !panic_line.is_empty() => Failure::sandbox(
            "panic",
            format!("plugin {plugin} panicked: {panic_line} ({trap})"),
            false,
        ),
        Some(trap) => Failure::sandbox("trap", format!("plugin {plugin} trapped: {trap}"), false),
        None => Failure::sandbox("trap", format!("plugin {plugin} failed: {err:#}"), false),
    }
}

/// Anything a call returns that could carry a secret.
trait Redact {
    fn redact(&mut self, redactor: &Redactor);
}

impl Redact for String {
    fn redact(&mut self, redactor: &Redactor) {
        redactor.apply_in_place(self);
    }
}

impl Redact for wit::Decision {
    fn redact(&mut self, redactor: &Redactor) {
        self.reasons
            .iter_mut()
            .for_each(|r| redactor.apply_in_place(r));
    }
}

impl Redact for wit::PluginInfo {
    fn redact(&mut self, _: &Redactor) {}
}

fn redact_invocation<T: Redact>(call: &mut Invocation<T>, redactor: &Redactor) {
    match &mut call.result {
        Ok(value) => value.redact(redactor),
        Err(failure) => {
            redactor.apply_in_place(&mut failure.message);
            if let Some(details) = &mut failure.details {
                let text = redactor.apply(&details.to_string());
                *details = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            }
        }
    }
    call.logs
        .iter_mut()
        .for_each(|l| redactor.apply_in_place(&mut l.message));
    redactor.apply_in_place(&mut call.stdout);
    redactor.apply_in_place(&mut call.stderr);
}

fn manifest_from_wit(
    kind: PluginKind,
    info: wit::PluginInfo,
) -> Result<PluginManifest, RuntimeError> {
    let schema = |action: &str, field: &str, text: &str| {
        serde_json::from_str(text).map_err(|e| {
            RuntimeError::Describe(format!(
                "action {action}: {field} is not valid JSON ({e}); return a JSON Schema as text"
            ))
        })
    };
    let actions = info
        .actions
        .into_iter()
        .map(|a| {
            Ok(ActionSpec {
                input_schema: schema(&a.name, "input-schema", &a.input_schema)?,
                output_schema: schema(&a.name, "output-schema", &a.output_schema)?,
                name: a.name,
                description: a.description,
                outcomes: a.outcomes,
            })
        })
        .collect::<Result<_, RuntimeError>>()?;
    Ok(PluginManifest {
        name: info.name,
        version: info.version,
        kind,
        description: info.description,
        actions,
        capabilities: Capabilities {
            hosts: info.capabilities.hosts,
            secrets: info.capabilities.secrets,
        },
    })
}
