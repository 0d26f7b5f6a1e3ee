//! The state of one call: the data of a fresh `Store`, and the host side of the
//! `log`, `config` and `feedback` imports.

use super::bindings::{config, feedback, log, types};
use super::net::{Denial, NetGuard};
use super::{Grants, LogLevel, LogLine};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Everything a guest can reach during one call. Built per call and dropped after it,
/// so nothing leaks from one call to the next.
pub(crate) struct CallState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub net: NetGuard,
    pub grants: Arc<Grants>,
    pub limiter: MemoryLimiter,
    pub logs: LogBuffer,
    /// Set by the epoch callback when the wall-clock deadline passed.
    pub deadline: Instant,
    pub timed_out: bool,
}

impl CallState {
    pub fn denials(&self) -> Vec<Denial> {
        self.net.denials.lock().expect("denials lock").clone()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.net,
        }
    }
}

/// Enforces the plugin's memory cap and remembers that it was hit, so the failure
/// says "memory limit" rather than whatever the guest's allocator did next.
pub(crate) struct MemoryLimiter {
    pub max_bytes: usize,
    pub refused: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Captured `log` calls, bounded so a chatty plugin cannot exhaust the host.
#[derive(Default)]
pub(crate) struct LogBuffer {
    pub lines: Vec<LogLine>,
    bytes: usize,
    dropped: usize,
    started: Option<Instant>,
}

/// Total bytes of log messages kept per call; later lines are counted, not kept.
const MAX_LOG_BYTES: usize = 64 * 1024;

impl LogBuffer {
    pub fn new(started: Instant) -> Self {
        LogBuffer {
            started: Some(started),
            ..Default::default()
        }
    }

    fn push(&mut self, level: LogLevel, message: String) {
        if self.bytes + message.len() > MAX_LOG_BYTES {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        let at_us = self.started.map_or(0, |s| s.elapsed().as_micros() as u64);
        self.lines.push(LogLine {
            level,
            message,
            at_us,
        });
    }

    /// The kept lines, plus a note of how many were dropped.
    pub fn finish(mut self) -> Vec<LogLine> {
        if self.dropped > 0 {
            let at_us = self.started.map_or(0, |s| s.elapsed().as_micros() as u64);
            self.lines.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "{} more log lines dropped: a call keeps at most {} KiB of logs",
                    self.dropped,
                    MAX_LOG_BYTES / 1024
                ),
                at_us,
            });
        }
        self.lines
    }
}

impl types::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.logs.push(level, message);
    }
}

impl config::Host for CallState {
    fn get(&mut self, key: String) -> Option<String> {
        self.grants.config.get(&key).cloned()
    }

    fn secret(&mut self, name: String) -> Option<String> {
        self.grants.secrets.get(&name).cloned()
    }
}

impl feedback::Host for CallState {
    fn corrections(&mut self, action: String, limit: u32) -> Vec<feedback::Correction> {
        let Some(source) = &self.grants.feedback else {
            return Vec::new();
        };
        source
            .corrections(&self.grants.plugin_name, &action, limit.min(100) as usize)
            .into_iter()
            .map(|c| feedback::Correction {
                input: c.input,
                original: c.original,
                corrected: c.corrected,
                actor: c.actor,
                created_at: c.created_at_ms,
            })
            .collect()
    }
}
