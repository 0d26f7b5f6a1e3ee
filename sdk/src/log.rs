//! Structured logging. Lines are captured per call and shown with the step in the run's
//! timeline. Available to connectors and rules.
//!
//! ```no_run
//! baton_sdk::log::info("fetched 3 purchase order lines");
//! ```
//!
//! Never log secrets: the host redacts granted secret values, but a transformed secret
//! (hashed, split, base64) cannot be recognised.

/// Log levels, most verbose first.
pub use crate::bindings::wit::log::Level;

/// Log `message` at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::wit::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Log at level `trace`.
pub fn trace(message: &str) {
    log(Level::Trace, message)
}

/// Log at level `debug`.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Log at level `info`.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Log at level `warn`.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Log at level `error`.
pub fn error(message: &str) {
    log(Level::Error, message)
}
