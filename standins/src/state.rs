//! What the stand-ins remember: posted invoices, payments and messages, each optionally
//! kept in a JSON file under `--state DIR` so a restarted process answers as before.

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The ERP's posted invoices.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ErpBook {
    /// Every posted invoice as answered (`id`, `status` and the request body), in order.
    pub invoices: Vec<Value>,
    /// Idempotency key → id of the invoice its first request posted.
    pub keys: BTreeMap<String, String>,
}

/// The payment service's payments.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PaymentBook {
    /// Every scheduled payment as answered, in order.
    pub payments: Vec<Value>,
    /// Idempotency key → the request that used it first and the payment it made.
    pub keys: BTreeMap<String, KeyUse>,
    /// How many authorised `POST /v1/payments` arrived, repeats and refusals included.
    pub requests: u64,
}

/// The first use of a payment idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyUse {
    pub request: Value,
    pub payment_id: String,
}

/// The chat and mail sink's messages.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Mailbox {
    pub messages: Vec<Message>,
}

/// One chat or mail message as `GET /messages` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// `chat` or `mail`.
    pub kind: String,
    /// The channel for chat; the recipients, comma-separated, for mail.
    pub to: String,
    /// The mail subject; `null` for chat.
    pub subject: Option<String>,
    pub text: String,
    /// Arrival, Unix milliseconds.
    pub at: u64,
}

/// All state of one stand-in process.
pub struct State {
    pub erp: Persisted<ErpBook>,
    pub payments: Persisted<PaymentBook>,
    pub messages: Persisted<Mailbox>,
}

impl State {
    /// Loads the state from `dir` (creating it), or starts empty and in memory only.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<State> {
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating state directory {}", dir.display()))?;
        }
        Ok(State {
            erp: Persisted::load(dir, "erp.json")?,
            payments: Persisted::load(dir, "payments.json")?,
            messages: Persisted::load(dir, "messages.json")?,
        })
    }
}

/// What a change to a [`Persisted`] value did: `Save` writes the file, `Keep` does not.
pub enum Step<R> {
    Keep(R),
    Save(R),
}

/// A value behind a lock, written to its file (if it has one) after every change.
pub struct Persisted<T> {
    path: Option<PathBuf>,
    value: Mutex<T>,
}

impl<T: Serialize + DeserializeOwned + Default> Persisted<T> {
    /// Reads `dir/file` if both exist; a missing file is an empty value.
    fn load(dir: Option<&Path>, file: &str) -> anyhow::Result<Persisted<T>> {
        let path = dir.map(|d| d.join(file));
        let value = match &path {
            Some(path) if path.exists() => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not valid state", path.display()))?
            }
            _ => T::default(),
        };
        Ok(Persisted {
            path,
            value: Mutex::new(value),
        })
    }

    /// Runs `f` on the value.
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock())
    }

    /// Runs `f` on the value; if it answers [`Step::Save`], writes the file before the
    /// lock is released, so the file never lags an answer already given.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> Step<R>) -> anyhow::Result<R> {
        let mut value = self.lock();
        match f(&mut value) {
            Step::Keep(out) => Ok(out),
            Step::Save(out) => {
                if let Some(path) = &self.path {
                    write_atomically(path, &*value)?;
                }
                Ok(out)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, T> {
        // A panicking handler leaves the value consistent (changes are whole), so go on.
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes `value` as JSON through a temporary file and a rename, so a crash mid-write
/// leaves the previous file rather than a torn one.
fn write_atomically(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let temp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value)?;
    std::fs::write(&temp, bytes).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
