//! Every redb table Baton uses, defined in one place.
//!
//! Values are JSON-encoded records (see `store::records`) unless noted; keys are chosen
//! so that the range scans the store needs are prefix scans.

use redb::TableDefinition;

/// Component bytes by digest (`sha256:<hex>`). Content-addressed: many plugin versions
/// (and plugins) may share one blob.
pub const PLUGIN_BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugin_blobs");

/// Native code compiled from a blob, by (digest, engine compatibility key). A new
/// wasmtime or different engine settings give a new key, so stale code is never loaded.
pub const COMPILED_ARTIFACTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("compiled_artifacts");

/// Installed plugin versions by (name, version) → `PluginRecord`.
pub const PLUGIN_VERSIONS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("plugin_versions");

/// What the admin granted a plugin (all its versions) by name → `GrantRecord`.
pub const PLUGIN_GRANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugin_grants");

/// Secret values granted to a plugin, by (plugin name, secret name) → value. Kept apart
/// from grants so no code path that serialises a grant can leak a value.
pub const PLUGIN_SECRETS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("plugin_secrets");

/// Human corrections of plugin outputs by (plugin, action, sequence) → `CorrectionRecord`.
/// The sequence grows, so a reverse scan yields the newest first.
pub const CORRECTIONS: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("corrections");
