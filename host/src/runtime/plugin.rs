//! A prepared plugin version and its calls: a fresh store per call, limits, the call
//! itself, and the translation of whatever happened into an [`Invocation`].

use super::bindings::connector::{ConnectorPre, baton::plugin::types as wit};
use super::bindings::rule::RulePre;
use super::call::{CallState, LogBuffer, MemoryLimiter};
use super::capture::Capture;
use super::failure::{plugin_failure, refuse_oversized_input, sandbox_failure, wrong_world};
use super::outbound::ConnectionPool;
use super::redact::{Redact, redact_invocation};
use super::{
    CallContext, Decision, Failure, Grants, Invocation, Limits, Redactor, RuntimeError, net,
};
use crate::manifest::{ActionSpec, Capabilities, PluginKind, PluginManifest};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

/// Captured stdout and stderr per call.
const MAX_STDIO_BYTES: usize = 256 * 1024;

pub(super) enum Prepared {
    Connector(ConnectorPre<CallState>),
    Rule(RulePre<CallState>),
}

/// A plugin version compiled and linked, ready to be instantiated for each call.
pub struct PreparedPlugin {
    engine: Engine,
    prepared: Prepared,
    slots: Arc<Semaphore>,
    connections: Arc<ConnectionPool>,
}

impl PreparedPlugin {
    pub(super) fn new(
        engine: Engine,
        prepared: Prepared,
        slots: Arc<Semaphore>,
        connections: Arc<ConnectionPool>,
    ) -> PreparedPlugin {
        PreparedPlugin {
            engine,
            prepared,
            slots,
            connections,
        }
    }

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
        if let Some(early) = refuse_oversized_input(&grants, limits, input) {
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
        if let Some(early) = refuse_oversized_input(&grants, limits, input) {
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
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the slot semaphore stays open");
        let started = Instant::now();
        // Truncation must not leave the start of a secret behind at the cut.
        let longest_secret = grants.secrets.values().map(String::len).max().unwrap_or(0);
        let stdout = Capture::new(MAX_STDIO_BYTES, longest_secret);
        let stderr = Capture::new(MAX_STDIO_BYTES, longest_secret);
        let kind = self.kind();
        let mut store = self.new_store(kind, grants.clone(), limits, &stdout, &stderr, started);

        // The epoch callback stops a guest that computes past its deadline; this stops
        // one that waits past it in the host (a sleep, a slow server).
        let outcome = match tokio::time::timeout(limits.timeout, f(&mut store)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                store.data_mut().timed_out = true;
                Err(wasmtime::format_err!(
                    "the call passed its deadline while waiting"
                ))
            }
        };

        let fuel_used = (kind == PluginKind::Rule)
            .then(|| limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)));
        let stdout = stdout.text();
        let stderr = stderr.text();
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
        stdout: &Capture,
        stderr: &Capture,
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
            pool: self.connections.clone(),
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
