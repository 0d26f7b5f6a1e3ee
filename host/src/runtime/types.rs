//! The plain data a call takes and returns.

use super::HostPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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

impl Grants {
    /// The same grants with the network closed: every request is refused.
    pub fn closed(&self) -> Grants {
        Grants {
            hosts: Arc::new(HostPolicy {
                closed: true,
                ..(*self.hosts).clone()
            }),
            ..self.clone()
        }
    }
}

/// Severity of a captured log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One `log` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    /// Microseconds since the call started.
    pub at_us: u64,
}

/// Who decided a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureOrigin {
    /// The plugin returned a typed failure.
    Plugin,
    /// The sandbox stopped it: deadline, memory, fuel, trap, size limits, denials.
    Sandbox,
    /// The workflow engine: an expression that failed, a step timeout, a `fail` step.
    Engine,
}

/// Why a call did not produce an output. Plugin failures and sandbox failures share
/// one shape so workflows can route on `code` and `retryable` alike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    pub origin: FailureOrigin,
}

impl Failure {
    /// A failure the workflow engine decided on (not the plugin, not the sandbox).
    pub fn engine(code: &str, message: impl Into<String>, retryable: bool) -> Failure {
        Failure {
            code: code.to_owned(),
            message: message.into(),
            retryable,
            details: None,
            origin: FailureOrigin::Engine,
        }
    }

    pub(crate) fn sandbox(code: &str, message: String, retryable: bool) -> Failure {
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
