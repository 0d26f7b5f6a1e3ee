//! Records the store persists (as JSON inside redb values).

use crate::manifest::PluginManifest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who vouched for a plugin's bytes at install time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Signer {
    /// A detached ed25519 signature by a trusted publisher key.
    Key {
        /// The name the admin gave the key in the server config.
        name: String,
        /// `ed25519:<base64>`.
        public_key: String,
    },
    /// Installed without a signature because the server allows unsigned plugins.
    Unsigned,
}

/// Sandbox limits. In the server config they are the defaults; on a plugin version they
/// are the admin's overrides. `None` means "inherit".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_kb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_kb: Option<u64>,
}

/// One installed plugin version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PluginRecord {
    pub manifest: PluginManifest,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    pub size_bytes: u64,
    pub signer: Signer,
    /// Unix milliseconds.
    pub installed_at_ms: u64,
    #[serde(default)]
    pub limits: LimitSettings,
}

/// What the admin granted a plugin; applies to every version of it. The effective
/// capability of a version is what it requests intersected with this.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Host patterns the plugin may reach (if it also requests them).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Admin-set configuration values, read by the plugin through `config.get`.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
}

/// A person's correction of a plugin's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorrectionRecord {
    pub input: serde_json::Value,
    pub original: serde_json::Value,
    pub corrected: serde_json::Value,
    pub actor: String,
    /// The digest of the plugin version that produced `original`.
    pub plugin_digest: String,
    /// Unix milliseconds.
    pub created_at_ms: u64,
}

impl LimitSettings {
    /// Each field of `self`, or of `fallback` where `self` has none.
    pub fn or(&self, fallback: &LimitSettings) -> LimitSettings {
        LimitSettings {
            memory_mb: self.memory_mb.or(fallback.memory_mb),
            timeout_ms: self.timeout_ms.or(fallback.timeout_ms),
            fuel: self.fuel.or(fallback.fuel),
            max_input_kb: self.max_input_kb.or(fallback.max_input_kb),
            max_output_kb: self.max_output_kb.or(fallback.max_output_kb),
        }
    }
}
