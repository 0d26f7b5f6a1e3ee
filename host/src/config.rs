//! The server configuration file (`baton.toml` in the data directory by default).
//!
//! ```toml
//! # Install plugins that carry no signature (development only).
//! allow_unsigned = false
//!
//! # Publishers whose signatures install plugins.
//! [[trusted_keys]]
//! name = "acme"
//! public_key = "ed25519:3q2+7w..."
//!
//! # Sandbox defaults for every plugin version (each may be overridden per version).
//! [limits]
//! memory_mb = 64
//! timeout_ms = 10000
//! fuel = 1000000000      # rules only
//! max_input_kb = 1024
//! max_output_kb = 1024
//!
//! # The HTTP server (`baton serve`); --listen and BATON_LISTEN override `listen`.
//! [server]
//! listen = "127.0.0.1:8080"
//! max_body_kb = 8192
//! # A client address may get this many 4xx refusals for malformed requests at once,
//! # refilled per second; beyond that it gets 429 until the budget refills. 0 turns
//! # the budget off (do that behind a reverse proxy, where clients share an address).
//! bad_request_burst = 200
//! bad_request_rate = 50
//! # A request's headers must arrive within this time, which also closes a kept-alive
//! # connection idle for that long (slowloris clients are cut off).
//! header_timeout_ms = 10000
//! # Connections one client address may hold open; more are closed at once. 0 turns
//! # the cap off (behind a reverse proxy, as for the bad-request budget).
//! max_connections_per_address = 256
//! ```

use crate::store::LimitSettings;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Name of the config file inside the data directory.
pub const CONFIG_FILE: &str = "baton.toml";

/// Errors reading the config file; the message names the file and, for syntax errors,
/// the line and column.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
}

/// A publisher key the admin trusts to sign plugins.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// A name for people: shown as the signer of the plugins it signed.
    pub name: String,
    /// `ed25519:<base64 of 32 bytes>`, as printed by `baton keygen`.
    pub public_key: String,
}

/// Everything in `baton.toml`. Every field has a default, so a missing file is a
/// valid (and strict) configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Install plugins without a signature. Off by default.
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Publisher keys whose signatures are accepted.
    #[serde(default)]
    pub trusted_keys: Vec<TrustedKey>,
    /// Default sandbox limits.
    #[serde(default)]
    pub limits: LimitSettings,
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerSettings,
}

/// `[server]` in `baton.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: String,
    /// Largest request body, KiB (a plugin upload may be up to 64 MiB whatever this says).
    pub max_body_kb: usize,
    /// Malformed requests a client address may send at once; 0 turns the budget off.
    pub bad_request_burst: u32,
    /// Malformed requests per second the budget refills.
    pub bad_request_rate: u32,
    /// Time a client has to send a request's headers, ms.
    pub header_timeout_ms: u64,
    /// Connections one client address may hold open; 0 turns the cap off.
    pub max_connections_per_address: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        let connections = crate::api::listen::ConnectionLimits::default();
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            max_body_kb: 8192,
            bad_request_burst: crate::api::guard::BadRequestBudget::default().burst,
            bad_request_rate: crate::api::guard::BadRequestBudget::default().per_second,
            header_timeout_ms: connections.header_timeout.as_millis() as u64,
            max_connections_per_address: connections.per_address,
        }
    }
}

impl Config {
    /// Reads `path`; a file that does not exist gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses config text; the error is toml's, which names the line and the key.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_and_limits() {
        let config = Config::parse(
            r#"
            allow_unsigned = true
            [[trusted_keys]]
            name = "acme"
            public_key = "ed25519:AAAA"
            [limits]
            memory_mb = 32
            "#,
        )
        .unwrap();
        assert!(config.allow_unsigned);
        assert_eq!(config.trusted_keys[0].name, "acme");
        assert_eq!(config.limits.memory_mb, Some(32));
        assert_eq!(config.limits.timeout_ms, None);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Config::parse("allow_unsigned = true\nallow_unsinged = false\n").unwrap_err();
        assert!(err.contains("allow_unsinged"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn missing_file_gives_strict_defaults() {
        let config = Config::load(Path::new("/nonexistent/baton.toml")).unwrap();
        assert!(!config.allow_unsigned);
        assert!(config.trusted_keys.is_empty());
    }
}
