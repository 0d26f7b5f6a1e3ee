//! redb: the only module that knows table layouts and keys.
//!
//! Every other layer talks to [`Store`] in terms of records; nothing outside this module
//! builds a key or opens a table.

mod feedback;
mod file;
mod records;
mod runs;
mod tables;
mod tokens;
mod webhooks;

pub use feedback::{ReviewCount, StoredCorrection};
pub use records::{CorrectionRecord, GrantRecord, LimitSettings, PluginRecord, Signer};
pub use runs::{EventHead, RunBatch, RunIndex, RunQuery, StoredEvent, TimerEntry};
pub use webhooks::{Announced, DeliveryNext};

/// The layout version this build writes. A database with a higher version was written
/// by a newer Baton and is refused rather than misread. Version 1 (development builds
/// before the run log merged steps and events into one table) is refused too: no
/// release wrote it, so it is not migrated.
pub const FORMAT_VERSION: u32 = 2;

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tables::*;

/// Errors from the store. Storage errors carry redb's explanation; a record that cannot
/// be decoded names its table and key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error(
        "database {path} is in use by another baton process (a running `baton worker` or \
         `baton serve`?); stop it, or point --data at another directory"
    )]
    InUse { path: PathBuf },
    #[error("database error: {0}")]
    Redb(#[from] redb::Error),
    #[error("record {key} in table {table} is unreadable: {source}")]
    Corrupt {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0} is already installed with a different digest; publish a new version instead")]
    VersionConflict(String),
    #[error("record {key} in table {table} is malformed")]
    Malformed { table: &'static str, key: String },
    #[error(
        "database {path} was written by a newer Baton (format version {found}); this build \
         reads format version {supported} and older: upgrade baton, or point --data at another directory"
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "database {path} was written by a development build of Baton (format version \
         {found}), which is not migrated; point --data at a new directory and install and \
         apply again"
    )]
    OlderFormat { path: PathBuf, found: u32 },
}

macro_rules! redb_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        }
    )*};
}
redb_err!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What [`Store::install_plugin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallResult {
    /// A new version was recorded.
    Installed,
    /// The same name, version and digest were already installed; nothing changed.
    AlreadyInstalled,
}

/// Handle to the embedded database. Cheap to clone; all clones share one redb file.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

/// Opens or creates the redb file at `path` on [`file::PrefilledFile`].
fn open_database(path: &Path) -> std::result::Result<Database, redb::DatabaseError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    Database::builder().create_with_backend(file::PrefilledFile::new(file)?)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Self> {
        let db = open_database(path).map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: path.to_owned(),
            },
            source => StoreError::Open {
                path: path.to_owned(),
                source,
            },
        })?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta
                .get("format_version")?
                .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
                .map(u32::from_be_bytes);
            match found {
                Some(found) if found > FORMAT_VERSION => {
                    return Err(StoreError::NewerFormat {
                        path: path.to_owned(),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                Some(found) if found < FORMAT_VERSION => {
                    return Err(StoreError::OlderFormat {
                        path: path.to_owned(),
                        found,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert("format_version", FORMAT_VERSION.to_be_bytes().as_slice())?;
                }
            }
        }
        txn.open_table(PLUGIN_BLOBS)?;
        txn.open_table(COMPILED_ARTIFACTS)?;
        txn.open_table(PLUGIN_VERSIONS)?;
        txn.open_table(PLUGIN_GRANTS)?;
        txn.open_table(PLUGIN_SECRETS)?;
        txn.open_table(CORRECTIONS)?;
        txn.open_table(REVIEW_COUNTS)?;
        txn.open_table(WORKFLOWS)?;
        txn.open_table(API_TOKENS)?;
        txn.open_table(HOOK_SECRETS)?;
        txn.open_table(WEBHOOKS)?;
        txn.open_table(WEBHOOK_OUTBOX)?;
        txn.open_table(WEBHOOK_FAILED)?;
        // Opening the run tables creates them, so readers never meet a missing table.
        RunBatch::create_tables(&txn)?;
        txn.commit()?;
        Ok(Store { db: Arc::new(db) })
    }

    // ---- plugin code ----

    /// The component bytes with this digest.
    pub fn plugin_blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PLUGIN_BLOBS)?;
        Ok(table.get(digest)?.map(|v| v.value().to_vec()))
    }

    /// Native code compiled from `digest` by an engine with compatibility key `engine_key`.
    pub fn compiled_artifact(&self, digest: &str, engine_key: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(COMPILED_ARTIFACTS)?;
        Ok(table.get((digest, engine_key))?.map(|v| v.value().to_vec()))
    }

    /// Caches native code for `digest` (after an engine upgrade made the old one stale).
    pub fn put_compiled_artifact(&self, digest: &str, engine_key: &str, code: &[u8]) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(COMPILED_ARTIFACTS)?
            .insert((digest, engine_key), code)?;
        txn.commit()?;
        Ok(())
    }

    // ---- plugin versions ----

    /// Records a new plugin version with its bytes and compiled code, atomically.
    /// Re-installing identical bytes under the same name and version is a no-op; other
    /// bytes under an existing name and version are refused.
    pub fn install_plugin(
        &self,
        record: &PluginRecord,
        blob: &[u8],
        engine_key: &str,
        code: &[u8],
    ) -> Result<InstallResult> {
        let name = record.manifest.name.as_str();
        let version = record.manifest.version.as_str();
        let txn = self.db.begin_write()?;
        {
            let mut versions = txn.open_table(PLUGIN_VERSIONS)?;
            if let Some(existing) = versions.get((name, version))? {
                let existing: PluginRecord =
                    decode("plugin_versions", &record.manifest.id(), existing.value())?;
                return if existing.digest == record.digest {
                    Ok(InstallResult::AlreadyInstalled)
                } else {
                    Err(StoreError::VersionConflict(record.manifest.id()))
                };
            }
            versions.insert((name, version), encode(record).as_slice())?;
            txn.open_table(PLUGIN_BLOBS)?
                .insert(record.digest.as_str(), blob)?;
            txn.open_table(COMPILED_ARTIFACTS)?
                .insert((record.digest.as_str(), engine_key), code)?;
        }
        txn.commit()?;
        Ok(InstallResult::Installed)
    }

    /// One installed version.
    pub fn plugin_version(&self, name: &str, version: &str) -> Result<Option<PluginRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PLUGIN_VERSIONS)?;
        table
            .get((name, version))?
            .map(|v| decode("plugin_versions", &format!("{name}@{version}"), v.value()))
            .transpose()
    }

    /// Every installed version of `name` (any order; callers sort by semver).
    pub fn plugin_versions(&self, name: &str) -> Result<Vec<PluginRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PLUGIN_VERSIONS)?;
        let mut out = Vec::new();
        for entry in table.range((name, "")..)? {
            let (key, value) = entry?;
            let (n, v) = key.value();
            if n != name {
                break;
            }
            out.push(decode(
                "plugin_versions",
                &format!("{n}@{v}"),
                value.value(),
            )?);
        }
        Ok(out)
    }

    /// Every installed version of every plugin, ordered by name.
    pub fn all_plugins(&self) -> Result<Vec<PluginRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PLUGIN_VERSIONS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (n, v) = key.value();
            out.push(decode(
                "plugin_versions",
                &format!("{n}@{v}"),
                value.value(),
            )?);
        }
        Ok(out)
    }

    /// Removes one version. Its bytes and compiled code go when no other version shares
    /// the digest; the plugin's grants and secrets go with its last version.
    pub fn remove_plugin_version(&self, name: &str, version: &str) -> Result<Option<PluginRecord>> {
        let txn = self.db.begin_write()?;
        let removed = {
            let mut versions = txn.open_table(PLUGIN_VERSIONS)?;
            let removed: PluginRecord = match versions.remove((name, version))? {
                Some(bytes) => decode(
                    "plugin_versions",
                    &format!("{name}@{version}"),
                    bytes.value(),
                )?,
                None => return Ok(None),
            };
            let mut digest_in_use = false;
            let mut name_in_use = false;
            for entry in versions.iter()? {
                let (key, value) = entry?;
                let (n, v) = key.value();
                let other: PluginRecord =
                    decode("plugin_versions", &format!("{n}@{v}"), value.value())?;
                digest_in_use |= other.digest == removed.digest;
                name_in_use |= n == name;
            }
            if !digest_in_use {
                txn.open_table(PLUGIN_BLOBS)?
                    .remove(removed.digest.as_str())?;
                let mut artifacts = txn.open_table(COMPILED_ARTIFACTS)?;
                let digest = removed.digest.as_str();
                artifacts.retain_in((digest, "")..=(digest, "\u{10FFFF}"), |_, _| false)?;
            }
            if !name_in_use {
                txn.open_table(PLUGIN_GRANTS)?.remove(name)?;
                txn.open_table(PLUGIN_SECRETS)?
                    .retain_in((name, "")..=(name, "\u{10FFFF}"), |_, _| false)?;
            }
            removed
        };
        txn.commit()?;
        Ok(Some(removed))
    }

    // ---- grants and secrets ----

    /// What the admin granted `name` (empty if nothing yet).
    pub fn grant(&self, name: &str) -> Result<GrantRecord> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PLUGIN_GRANTS)?;
        Ok(match table.get(name)? {
            Some(v) => decode("plugin_grants", name, v.value())?,
            None => GrantRecord::default(),
        })
    }

    /// Changes a plugin's grant and secrets in one transaction: `edit` gets the current
    /// grant; `set_secrets` are written and `remove_secrets` deleted.
    pub fn update_grant(
        &self,
        name: &str,
        edit: impl FnOnce(&mut GrantRecord),
        set_secrets: &[(String, String)],
        remove_secrets: &[String],
    ) -> Result<GrantRecord> {
        let txn = self.db.begin_write()?;
        let grant = {
            let mut grants = txn.open_table(PLUGIN_GRANTS)?;
            let mut grant = match grants.get(name)? {
                Some(v) => decode("plugin_grants", name, v.value())?,
                None => GrantRecord::default(),
            };
            edit(&mut grant);
            grants.insert(name, encode(&grant).as_slice())?;
            let mut secrets = txn.open_table(PLUGIN_SECRETS)?;
            for (secret, value) in set_secrets {
                secrets.insert((name, secret.as_str()), value.as_str())?;
            }
            for secret in remove_secrets {
                secrets.remove((name, secret.as_str()))?;
            }
            grant
        };
        txn.commit()?;
        Ok(grant)
    }

    /// Secret values granted to `name`, by secret name.
    pub fn secrets(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PLUGIN_SECRETS)?;
        let mut out = BTreeMap::new();
        for entry in table.range((name, "")..)? {
            let (key, value) = entry?;
            let (plugin, secret) = key.value();
            if plugin != name {
                break;
            }
            out.insert(secret.to_owned(), value.value().to_owned());
        }
        Ok(out)
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records are plain data and always serialise")
}

fn decode<T: DeserializeOwned>(table: &'static str, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        source,
    })
}
