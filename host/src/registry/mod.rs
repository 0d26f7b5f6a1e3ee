//! Plugin install, verify, grant, upgrade, remove and call.
//!
//! Every operation an admin or a plugin author performs on plugins lives here once; the
//! CLI (and later the HTTP API) only parse arguments and print results.
//!
//! Grants belong to a plugin *name* and apply to all its versions. What a version may use
//! is what it requests intersected with the grant, so an upgrade that requests more runs
//! without the extra capabilities until the admin grants them.

mod grants;
mod loaded;
pub(crate) mod schema;
pub mod signing;
mod validate;

use grants::grant_addresses;
pub use grants::{GrantChange, resolve_grants, resolve_limits};
pub use loaded::{CallReport, LoadSource, LoadedPlugin};
pub use signing::SignatureError;
pub use validate::{name_problem, validate_manifest};

use crate::config::Config;
use crate::runtime::{
    CallContext, Correction, FeedbackSource, Grants, Limits, Network, Runtime, RuntimeError,
};
use crate::store::{
    CorrectionRecord, GrantRecord, InstallResult, LimitSettings, PluginRecord, Signer, Store,
    StoreError,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything that can go wrong with a plugin operation; each message names the plugin,
/// action or field and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("signature check failed: {0}")]
    Signature(#[from] SignatureError),
    #[error("plugin {plugin} describes itself incorrectly: {}", problems.join("; "))]
    InvalidManifest {
        plugin: String,
        problems: Vec<String>,
    },
    #[error(
        "no plugin named {name} is installed{}",
        list_hint("installed", installed)
    )]
    UnknownPlugin {
        name: String,
        installed: Vec<String>,
    },
    #[error(
        "plugin {name} has no version {version}{}",
        list_hint("installed versions", available)
    )]
    UnknownVersion {
        name: String,
        version: String,
        available: Vec<String>,
    },
    #[error(
        "plugin {plugin} has no action {action}{}",
        list_hint("its actions", available)
    )]
    UnknownAction {
        plugin: String,
        action: String,
        available: Vec<String>,
    },
    #[error("input for {plugin} action {action} is invalid: {}", problems.join("; "))]
    InvalidInput {
        plugin: String,
        action: String,
        problems: Vec<String>,
    },
    #[error("invalid grant for {plugin}: {reason}")]
    InvalidGrant { plugin: String, reason: String },
    #[error(
        "plugin {plugin} {installed} is published by {installed_by}, but this component is \
         {signed_by}; a different publisher cannot take over a plugin name and its grants \
         (remove the installed versions first with `baton plugin remove {plugin}` if the \
         change is intended)"
    )]
    PublisherChanged {
        plugin: String,
        installed: String,
        installed_by: String,
        signed_by: String,
    },
    #[error("invalid plugin reference `{0}`: expected NAME or NAME@VERSION")]
    InvalidReference(String),
    #[error(
        "{plugin} is not the build this run was started with (it expects {expected}, the installed \
         one is {found}); it was removed and installed again with other bytes"
    )]
    PinChanged {
        plugin: String,
        expected: String,
        found: String,
    },
}

impl RegistryError {
    /// A stable, machine-readable name for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Runtime(_) => "runtime",
            RegistryError::Store(_) => "storage",
            RegistryError::Signature(_) => "signature",
            RegistryError::InvalidManifest { .. } => "invalid_manifest",
            RegistryError::UnknownPlugin { .. } => "unknown_plugin",
            RegistryError::UnknownVersion { .. } => "unknown_version",
            RegistryError::UnknownAction { .. } => "unknown_action",
            RegistryError::InvalidInput { .. } => "invalid_input",
            RegistryError::InvalidGrant { .. } => "invalid_grant",
            RegistryError::PublisherChanged { .. } => "publisher_changed",
            RegistryError::InvalidReference(_) => "invalid_reference",
            RegistryError::PinChanged { .. } => "plugin_changed",
        }
    }
}

fn list_hint(label: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(" ({label}: {})", items.join(", "))
    }
}

/// `NAME` (latest version) or `NAME@VERSION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginRef {
    pub name: String,
    pub version: Option<String>,
}

impl FromStr for PluginRef {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (s, None),
        };
        if name.is_empty() || version.as_deref() == Some("") {
            return Err(RegistryError::InvalidReference(s.to_owned()));
        }
        Ok(PluginRef {
            name: name.to_owned(),
            version,
        })
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An install: the component, its detached signature, and grants to apply with it.
#[derive(Default)]
pub struct InstallRequest {
    pub component: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    pub grant: GrantChange,
    pub limits: LimitSettings,
}

/// What an install did.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct InstallReport {
    pub plugin: PluginView,
    /// False when the same bytes were already installed under this name and version.
    pub newly_installed: bool,
    /// Milliseconds spent compiling the component to native code.
    #[serde(serialize_with = "millis")]
    #[schemars(with = "f64")]
    pub compile_time: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// One plugin version as an admin sees it: what it is, who signed it, and what it asks
/// for beside what it has been granted. Secret *values* are never part of it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PluginView {
    #[serde(flatten)]
    pub record: PluginRecord,
    /// Hosts the admin granted to this plugin name.
    pub granted_hosts: Vec<String>,
    /// Names of secrets the admin set for this plugin.
    pub granted_secrets: Vec<String>,
    /// Admin-set configuration values.
    pub config: BTreeMap<String, serde_json::Value>,
    /// Requested hosts that no grant covers yet.
    pub pending_hosts: Vec<String>,
    /// Requested secrets that have no value yet.
    pub pending_secrets: Vec<String>,
}

/// The plugin registry: install and manage plugins, and call them.
pub struct Registry {
    store: Store,
    runtime: Arc<Runtime>,
    config: Config,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    /// What `call` needs per plugin reference. This process is the database's only
    /// writer (redb locks the file), so clearing it on every change keeps it exact.
    callables: Mutex<HashMap<String, Arc<Callable>>>,
    /// Bumped by every change, so a resolution that raced with one is not cached.
    generation: AtomicU64,
}

/// One exact build of a plugin: `name@version` with `digest`.
#[derive(Clone, Copy, Debug)]
pub struct Pin<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub digest: &'a str,
}

/// A resolved plugin reference: code, effective grants and limits.
struct Callable {
    plugin: Arc<LoadedPlugin>,
    grants: Arc<Grants>,
    /// `grants` with the network closed, for steps that declare `effects: none`.
    closed: Arc<Grants>,
    limits: Limits,
}

impl Registry {
    /// A registry over `store`, running plugins on `runtime`, configured by `config`.
    pub fn new(store: Store, runtime: Arc<Runtime>, config: Config) -> Registry {
        Registry {
            store,
            runtime,
            config,
            loaded: Mutex::new(HashMap::new()),
            callables: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The store this registry writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Verifies, compiles, describes and records a plugin version. Nothing is stored
    /// unless every check passes.
    pub async fn install(&self, request: InstallRequest) -> Result<InstallReport, RegistryError> {
        let bytes = &request.component;
        let kind = Runtime::classify(bytes)?;
        let digest = signing::digest(bytes);
        let signer = signing::verify(
            &digest,
            request.signature.as_deref(),
            &self.config.trusted_keys,
            self.config.allow_unsigned,
        )?;

        let engine_key = self.runtime.engine_key(kind).to_owned();
        let started = Instant::now();
        let artifact = match self.store.compiled_artifact(&digest, &engine_key)? {
            Some(artifact) => artifact,
            None => self.runtime.compile(kind, bytes)?,
        };
        let compile_time = started.elapsed();
        let prepared = self.runtime.load(kind, &artifact)?;
        let manifest = prepared.describe(&self.limits(&request.limits)).await?;
        validate_manifest(&manifest)?;
        request.grant.validate(&manifest.name)?;

        let name = &manifest.name;
        if let Some(other) = self
            .store
            .plugin_versions(name)?
            .into_iter()
            .find(|r| !same_publisher(&r.signer, &signer))
        {
            return Err(RegistryError::PublisherChanged {
                plugin: name.clone(),
                installed: other.manifest.version,
                installed_by: publisher(&other.signer),
                signed_by: publisher(&signer),
            });
        }

        let record = PluginRecord {
            manifest,
            digest: digest.clone(),
            size_bytes: bytes.len() as u64,
            signer,
            installed_at_ms: now_ms(),
            limits: request.limits,
        };
        let result = self
            .store
            .install_plugin(&record, bytes, &engine_key, &artifact)?;
        // Re-installing identical bytes changes nothing: report what is stored.
        let record = match result {
            InstallResult::Installed => record,
            InstallResult::AlreadyInstalled => self
                .store
                .plugin_version(&record.manifest.name, &record.manifest.version)?
                .unwrap_or(record),
        };
        self.changed();
        if !request.grant.is_empty() {
            self.apply_grant(&record.manifest.name, &request.grant)?;
        }
        self.remember(LoadedPlugin::new(
            record.manifest.clone(),
            digest,
            prepared,
            LoadSource::Compiled,
        )?);
        Ok(InstallReport {
            plugin: self.view(record)?,
            newly_installed: result == InstallResult::Installed,
            compile_time,
        })
    }

    /// Changes what `name` is granted (all its versions).
    pub fn grant(
        &self,
        name: &str,
        change: &GrantChange,
    ) -> Result<Vec<PluginView>, RegistryError> {
        let versions = self.versions(name)?;
        change.validate(name)?;
        self.apply_grant(name, change)?;
        versions.into_iter().map(|r| self.view(r)).collect()
    }

    fn apply_grant(&self, name: &str, change: &GrantChange) -> Result<GrantRecord, RegistryError> {
        let grant = self.store.update_grant(
            name,
            |grant| change.apply_to(grant),
            &change.set_secrets,
            &change.remove_secrets,
        )?;
        self.changed();
        Ok(grant)
    }

    /// Every installed version of every plugin, by name then by version (newest last).
    pub fn list(&self) -> Result<Vec<PluginView>, RegistryError> {
        let mut records = self.store.all_plugins()?;
        records.sort_by(|a, b| {
            a.manifest
                .name
                .cmp(&b.manifest.name)
                .then_with(|| semver_cmp(&a.manifest.version, &b.manifest.version))
        });
        records.into_iter().map(|r| self.view(r)).collect()
    }

    /// One version (the newest if none is named).
    pub fn show(&self, target: &PluginRef) -> Result<PluginView, RegistryError> {
        let record = self.resolve(target)?;
        self.view(record)
    }

    /// Removes one version, or every version when none is named. Returns what went.
    pub fn remove(&self, target: &PluginRef) -> Result<Vec<PluginRecord>, RegistryError> {
        let doomed = match &target.version {
            Some(_) => vec![self.resolve(target)?],
            None => self.versions(&target.name)?,
        };
        let mut removed = Vec::new();
        for record in doomed {
            if let Some(r) = self
                .store
                .remove_plugin_version(&record.manifest.name, &record.manifest.version)?
            {
                self.loaded.lock().expect("loaded lock").remove(&r.digest);
                removed.push(r);
            }
        }
        self.changed();
        Ok(removed)
    }

    /// Calls `action` of an installed plugin with its granted capabilities.
    pub async fn call(
        &self,
        target: &PluginRef,
        action: &str,
        input: &str,
        context: &CallContext,
    ) -> Result<CallReport, RegistryError> {
        self.call_checked(target, None, action, input, context, Network::Granted)
            .await
    }

    /// Calls `action` of exactly the build `pin` names (a workflow run calls the plugin
    /// versions it started with), with the network its step allows.
    pub async fn call_pinned(
        &self,
        pin: Pin<'_>,
        action: &str,
        input: &str,
        context: &CallContext,
        network: Network,
    ) -> Result<CallReport, RegistryError> {
        let target = PluginRef {
            name: pin.name.to_owned(),
            version: Some(pin.version.to_owned()),
        };
        self.call_checked(&target, Some(pin.digest), action, input, context, network)
            .await
    }

    async fn call_checked(
        &self,
        target: &PluginRef,
        digest: Option<&str>,
        action: &str,
        input: &str,
        context: &CallContext,
        network: Network,
    ) -> Result<CallReport, RegistryError> {
        let callable = self.callable(target)?;
        if let Some(expected) = digest
            && callable.plugin.digest != expected
        {
            return Err(RegistryError::PinChanged {
                plugin: target.to_string(),
                expected: expected.to_owned(),
                found: callable.plugin.digest.clone(),
            });
        }
        let grants = match network {
            Network::Granted => &callable.grants,
            Network::Closed => &callable.closed,
        };
        callable
            .plugin
            .call(grants.clone(), &callable.limits, context, action, input)
            .await
    }

    /// The version and digest `target` resolves to now, what a new run pins. Served
    /// from the same cache as calls: starting a run reads no plugin record.
    pub fn pin(&self, target: &PluginRef) -> Result<(String, String), RegistryError> {
        let callable = self.callable(target)?;
        Ok((
            callable.plugin.manifest.version.clone(),
            callable.plugin.digest.clone(),
        ))
    }

    fn callable(&self, target: &PluginRef) -> Result<Arc<Callable>, RegistryError> {
        let key = target.to_string();
        if let Some(callable) = self.callables.lock().expect("callables lock").get(&key) {
            return Ok(callable.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let record = self.resolve(target)?;
        let grants = self.grants_for(&record)?;
        let callable = Arc::new(Callable {
            plugin: self.load(&record)?,
            closed: Arc::new(grants.closed()),
            grants: Arc::new(grants),
            limits: self.limits(&record.limits),
        });
        let mut callables = self.callables.lock().expect("callables lock");
        if self.generation.load(Ordering::Acquire) == generation {
            callables.insert(key, callable.clone());
        }
        Ok(callable)
    }

    /// Forgets resolved references after any change to plugins or grants.
    fn changed(&self) {
        let mut callables = self.callables.lock().expect("callables lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        callables.clear();
    }

    /// Loads an installed version, from the artifact cache when possible.
    pub fn load(&self, record: &PluginRecord) -> Result<Arc<LoadedPlugin>, RegistryError> {
        if let Some(loaded) = self.loaded.lock().expect("loaded lock").get(&record.digest) {
            return Ok(loaded.clone());
        }
        let kind = record.manifest.kind;
        let key = self.runtime.engine_key(kind).to_owned();
        let cached = self.store.compiled_artifact(&record.digest, &key)?;
        let (prepared, source) = match cached.map(|a| self.runtime.load(kind, &a)) {
            Some(Ok(prepared)) => (prepared, LoadSource::CachedArtifact),
            // No artifact for this engine (or an unreadable one): compile from the blob.
            _ => {
                let blob = self.store.plugin_blob(&record.digest)?.ok_or_else(|| {
                    RegistryError::UnknownVersion {
                        name: record.manifest.name.clone(),
                        version: record.manifest.version.clone(),
                        available: vec![],
                    }
                })?;
                let artifact = self.runtime.compile(kind, &blob)?;
                self.store
                    .put_compiled_artifact(&record.digest, &key, &artifact)?;
                (self.runtime.load(kind, &artifact)?, LoadSource::Compiled)
            }
        };
        Ok(self.remember(LoadedPlugin::new(
            record.manifest.clone(),
            record.digest.clone(),
            prepared,
            source,
        )?))
    }

    fn remember(&self, plugin: LoadedPlugin) -> Arc<LoadedPlugin> {
        let plugin = Arc::new(plugin);
        self.loaded
            .lock()
            .expect("loaded lock")
            .insert(plugin.digest.clone(), plugin.clone());
        plugin
    }

    /// Resolves `NAME[@VERSION]` to an installed version (newest by semver if unnamed).
    pub fn resolve(&self, target: &PluginRef) -> Result<PluginRecord, RegistryError> {
        let mut versions = self.versions(&target.name)?;
        match &target.version {
            None => {
                versions.sort_by(|a, b| semver_cmp(&a.manifest.version, &b.manifest.version));
                Ok(versions.pop().expect("versions() is never empty"))
            }
            Some(version) => match versions.iter().position(|r| &r.manifest.version == version) {
                Some(i) => Ok(versions.swap_remove(i)),
                None => Err(RegistryError::UnknownVersion {
                    name: target.name.clone(),
                    version: version.clone(),
                    available: versions.into_iter().map(|r| r.manifest.version).collect(),
                }),
            },
        }
    }

    fn versions(&self, name: &str) -> Result<Vec<PluginRecord>, RegistryError> {
        let versions = self.store.plugin_versions(name)?;
        if versions.is_empty() {
            let mut installed: Vec<String> = self
                .store
                .all_plugins()?
                .into_iter()
                .map(|r| r.manifest.name)
                .collect();
            installed.dedup();
            return Err(RegistryError::UnknownPlugin {
                name: name.to_owned(),
                installed,
            });
        }
        Ok(versions)
    }

    /// The capabilities `record` may use: requested ∩ granted.
    fn grants_for(&self, record: &PluginRecord) -> Result<Grants, RegistryError> {
        let name = &record.manifest.name;
        let grant = self.store.grant(name)?;
        let secrets = self.store.secrets(name)?;
        Ok(resolve_grants(
            &record.manifest,
            &grant.hosts,
            secrets,
            grant.config,
            Some(Arc::new(StoreFeedback(self.store.clone()))),
        ))
    }

    /// Server default limits with `overrides` applied.
    pub fn limits(&self, overrides: &LimitSettings) -> Limits {
        resolve_limits(&overrides.or(&self.config.limits))
    }

    fn view(&self, record: PluginRecord) -> Result<PluginView, RegistryError> {
        let name = &record.manifest.name;
        let grant = self.store.grant(name)?;
        let secrets = self.store.secrets(name)?;
        let pending_hosts = record
            .manifest
            .capabilities
            .hosts
            .iter()
            .filter(|requested| !grant_addresses(requested, &grant.hosts))
            .cloned()
            .collect();
        let pending_secrets = record
            .manifest
            .capabilities
            .secrets
            .iter()
            .filter(|s| !secrets.contains_key(*s))
            .cloned()
            .collect();
        Ok(PluginView {
            granted_hosts: grant.hosts,
            granted_secrets: secrets.into_keys().collect(),
            config: grant.config,
            pending_hosts,
            pending_secrets,
            record,
        })
    }
}

/// Loads a component straight from its bytes, without installing it: for plugin authors
/// running `baton plugin invoke FILE.wasm`. No signature is required and nothing is stored.
pub async fn load_local(
    runtime: &Runtime,
    component: &[u8],
) -> Result<LoadedPlugin, RegistryError> {
    let prepared = runtime.load_bytes(component)?;
    let manifest = prepared.describe(&Limits::default()).await?;
    validate_manifest(&manifest)?;
    LoadedPlugin::new(
        manifest,
        signing::digest(component),
        prepared,
        LoadSource::Compiled,
    )
}

/// Whether two versions come from the same publisher (the same key, or both unsigned).
fn same_publisher(a: &Signer, b: &Signer) -> bool {
    match (a, b) {
        (Signer::Key { public_key: x, .. }, Signer::Key { public_key: y, .. }) => x == y,
        (Signer::Unsigned, Signer::Unsigned) => true,
        _ => false,
    }
}

fn publisher(signer: &Signer) -> String {
    match signer {
        Signer::Key { name, public_key } => format!("key {name} ({public_key})"),
        Signer::Unsigned => "unsigned".into(),
    }
}

fn semver_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Serves `feedback.corrections` from the store's corrections ledger.
struct StoreFeedback(Store);

impl FeedbackSource for StoreFeedback {
    fn corrections(&self, plugin: &str, action: &str, limit: usize) -> Vec<Correction> {
        // A storage error here must not fail the plugin's call: it just gets no examples.
        self.0
            .corrections(plugin, action, limit)
            .unwrap_or_default()
            .into_iter()
            .map(|c: CorrectionRecord| Correction {
                input: c.input.to_string(),
                original: c.original.to_string(),
                corrected: c.corrected.to_string(),
                actor: c.actor,
                created_at_ms: c.created_at_ms,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_refs_parse() {
        assert_eq!(
            "echo@0.1.0".parse::<PluginRef>().unwrap(),
            PluginRef {
                name: "echo".into(),
                version: Some("0.1.0".into())
            }
        );
        assert!("echo@".parse::<PluginRef>().is_err());
        assert!("@1".parse::<PluginRef>().is_err());
    }
}
