//! API tokens: stored by the hash of the token, so the database never holds one.

use super::tables::{API_TOKENS, HOOK_SECRETS};
use super::{Result, Store, decode, encode};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Serialize, de::DeserializeOwned};

impl Store {
    /// Stores a token record under `hash`.
    pub fn put_token(&self, hash: &str, record: &impl Serialize) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(API_TOKENS)?
            .insert(hash, encode(record).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Stores a token record under `hash` only if no token exists at all; `false` if
    /// one did (so two processes starting at once cannot both create a first token).
    pub fn put_first_token(&self, hash: &str, record: &impl Serialize) -> Result<bool> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(API_TOKENS)?;
            if table.len()? > 0 {
                return Ok(false);
            }
            table.insert(hash, encode(record).as_slice())?;
        }
        txn.commit()?;
        Ok(true)
    }

    /// The record stored under `hash`.
    pub fn token<T: DeserializeOwned>(&self, hash: &str) -> Result<Option<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(API_TOKENS)?;
        table
            .get(hash)?
            .map(|v| decode("api_tokens", hash, v.value()))
            .transpose()
    }

    /// Every token record with its hash.
    pub fn tokens<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(API_TOKENS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let hash = key.value();
            out.push((hash.to_owned(), decode("api_tokens", hash, value.value())?));
        }
        Ok(out)
    }
}

impl Store {
    /// Sets (or replaces) the inbound webhook secret of `workflow`.
    pub fn set_hook_secret(&self, workflow: &str, secret: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(HOOK_SECRETS)?.insert(workflow, secret)?;
        txn.commit()?;
        Ok(())
    }

    /// Removes `workflow`'s inbound webhook secret; `false` if it had none.
    pub fn remove_hook_secret(&self, workflow: &str) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let removed = txn.open_table(HOOK_SECRETS)?.remove(workflow)?.is_some();
        txn.commit()?;
        Ok(removed)
    }

    /// The inbound webhook secret of `workflow`.
    pub fn hook_secret(&self, workflow: &str) -> Result<Option<String>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HOOK_SECRETS)?;
        Ok(table.get(workflow)?.map(|v| v.value().to_owned()))
    }
}
