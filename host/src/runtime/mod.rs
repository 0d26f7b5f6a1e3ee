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
mod capture;
mod classify;
mod failure;
pub mod net;
mod outbound;
mod plugin;
mod redact;
mod types;

pub use classify::{ComponentWorld, component_world};
pub use failure::refuse_oversized_input;
pub use net::{Denial, DenyReason, HostPattern, HostPatternError, HostPolicy, Network};
pub use plugin::PreparedPlugin;
pub use redact::Redactor;
pub use types::{
    CallContext, Correction, Decision, Failure, FailureOrigin, FeedbackSource, Grants, Invocation,
    Limits, LogLevel, LogLine,
};

use crate::manifest::PluginKind;
use bindings::connector::ConnectorPre;
use bindings::rule::RulePre;
use call::CallState;
use plugin::Prepared;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; also how long a busy guest runs before it yields to
/// other calls on the same thread.
const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Dirty memory (per linear memory and table) reset in place between calls rather than
/// returned to the kernel.
const RESIDENT_BYTES: usize = 1 << 20;

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
    #[error(
        "the component's exports do not match the baton:plugin/{kind} world (built against \
         another version of wit/plugin.wit?): {message}"
    )]
    Exports { kind: PluginKind, message: String },
    #[error("describe() failed: {0}")]
    Describe(String),
    #[error("the runtime could not start: {0}")]
    Setup(String),
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
    /// One permit per instance slot of the pool: calls beyond the pool's size wait for
    /// a slot instead of failing.
    slots: Arc<tokio::sync::Semaphore>,
    /// Kept-alive outbound connections, shared by every plugin of the runtime.
    connections: Arc<outbound::ConnectionPool>,
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
        let connections = Arc::new(outbound::ConnectionPool::default());
        let connectors = Flavor::new(PluginKind::Connector, config, connections.clone())?;
        let rules = Flavor::new(PluginKind::Rule, config, connections)?;
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
    fn new(
        kind: PluginKind,
        settings: &RuntimeConfig,
        connections: Arc<outbound::ConnectionPool>,
    ) -> Result<Flavor, RuntimeError> {
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
            slots: Arc::new(tokio::sync::Semaphore::new(calls as usize)),
            connections,
        })
    }

    fn prepare(&self, component: &Component) -> Result<PreparedPlugin, RuntimeError> {
        let link = |e: wasmtime::Error| RuntimeError::Link {
            kind: self.kind,
            message: match self.kind {
                PluginKind::Connector => format!("{e:#}"),
                PluginKind::Rule => format!(
                    "{e:#}; a rule must be deterministic, so it may import only baton:plugin/log \
                     (no wasi:http, config or feedback)"
                ),
            },
        };
        let exports = |e: wasmtime::Error| RuntimeError::Exports {
            kind: self.kind,
            message: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(component).map_err(link)?;
        let prepared = match self.kind {
            PluginKind::Connector => Prepared::Connector(ConnectorPre::new(pre).map_err(exports)?),
            PluginKind::Rule => Prepared::Rule(RulePre::new(pre).map_err(exports)?),
        };
        Ok(PreparedPlugin::new(
            self.engine.clone(),
            prepared,
            self.slots.clone(),
            self.connections.clone(),
        ))
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
