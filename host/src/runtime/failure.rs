//! Turning what stopped a call into a [`Failure`] a person can act on.

use super::bindings::connector::baton::plugin::types as wit;
use super::call::CallState;
use super::{Failure, FailureOrigin, Grants, Invocation, Limits};
use std::time::Duration;
use wasmtime::Trap;

/// A report refusing `input` if it is over the size limit; the plugin does not run.
pub fn refuse_oversized_input<T>(
    grants: &Grants,
    limits: &Limits,
    input: &str,
) -> Option<Invocation<T>> {
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

pub(super) fn wrong_world<T>(grants: &Grants, export: &str, what: &str) -> Invocation<T> {
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

pub(super) fn plugin_failure(f: wit::Failure, denied: &[String]) -> Failure {
    let details = f
        .details
        .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d)));
    // A plugin that failed because the gate refused its request (the SDK reports that as
    // `host_denied`) gets the gate's explanation, which names the grant that would allow
    // it. Any other failure is the plugin's own, even if some request was refused on the
    // way: the refusals are listed in the report's `denied`.
    match denied.first() {
        Some(denial) if f.code == "host_denied" => Failure {
            code: f.code,
            message: denial.clone(),
            retryable: false,
            details,
            origin: FailureOrigin::Sandbox,
        },
        _ => Failure {
            code: f.code,
            message: f.message,
            retryable: f.retryable,
            details,
            origin: FailureOrigin::Plugin,
        },
    }
}

pub(super) fn sandbox_failure(
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
