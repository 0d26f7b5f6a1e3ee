//! Outbound webhooks and their delivery outbox.

use super::tables::{RUNS, RUNS_TO_ANNOUNCE, WEBHOOK_FAILED, WEBHOOK_OUTBOX, WEBHOOKS};
use super::{Result, Store, decode, encode};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Serialize, de::DeserializeOwned};

impl Store {
    /// Stores webhook `id`.
    pub fn put_webhook(&self, id: &str, record: &impl Serialize) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(WEBHOOKS)?
            .insert(id, encode(record).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Removes webhook `id`; `false` if there was none.
    pub fn remove_webhook(&self, id: &str) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let removed = txn.open_table(WEBHOOKS)?.remove(id)?.is_some();
        txn.commit()?;
        Ok(removed)
    }

    /// Every webhook.
    pub fn webhooks<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WEBHOOKS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            out.push(decode("webhooks", key.value(), value.value())?);
        }
        Ok(out)
    }

    /// Turns up to `limit` runs announced as finished into deliveries, in one
    /// transaction. `build` gets a run's record and every webhook and returns the
    /// deliveries `(due ms, id, record)` to queue. A record that cannot be read is
    /// skipped (and named in the result) rather than left to block the rest.
    pub fn queue_announced_runs<R: DeserializeOwned, W: DeserializeOwned>(
        &self,
        limit: usize,
        build: impl Fn(R, &[W]) -> Vec<(u64, String, Vec<u8>)>,
    ) -> Result<Announced> {
        // Most calls find nothing: a read costs no commit.
        if self
            .db
            .begin_read()?
            .open_table(RUNS_TO_ANNOUNCE)?
            .is_empty()?
        {
            return Ok(Announced::default());
        }
        let txn = self.db.begin_write()?;
        let mut done = Announced::default();
        {
            let mut announced = txn.open_table(RUNS_TO_ANNOUNCE)?;
            let runs = txn.open_table(RUNS)?;
            let mut outbox = txn.open_table(WEBHOOK_OUTBOX)?;
            let mut hooks: Vec<W> = Vec::new();
            for entry in txn.open_table(WEBHOOKS)?.iter()? {
                let (key, value) = entry?;
                match decode("webhooks", key.value(), value.value()) {
                    Ok(hook) => hooks.push(hook),
                    Err(e) => done.unreadable.push(e.to_string()),
                }
            }
            let ids: Vec<String> = announced
                .iter()?
                .take(limit)
                .map(|e| e.map(|(k, _)| k.value().to_owned()))
                .collect::<std::result::Result<_, _>>()?;
            for id in &ids {
                announced.remove(id.as_str())?;
                let Some(record) = runs.get(id.as_str())? else {
                    continue;
                };
                let run: R = match decode("runs", id, record.value()) {
                    Ok(run) => run,
                    Err(e) => {
                        done.unreadable.push(e.to_string());
                        continue;
                    }
                };
                for (due, delivery, body) in build(run, &hooks) {
                    outbox.insert((due, delivery.as_str()), body.as_slice())?;
                    done.deliveries += 1;
                }
            }
            done.runs = ids.len();
        }
        txn.commit()?;
        Ok(done)
    }

    /// Deliveries in the outbox, soonest first: `(due ms, id, record)`.
    pub fn outbox<T: DeserializeOwned>(&self) -> Result<Vec<(u64, String, T)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WEBHOOK_OUTBOX)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (due, id) = key.value();
            out.push((
                due,
                id.to_owned(),
                decode("webhook_outbox", id, value.value())?,
            ));
        }
        Ok(out)
    }

    /// Settles an attempt of delivery `id` due at `due`: gone when delivered, moved to
    /// `next` when it will be tried again, or filed as failed.
    pub fn settle_delivery(&self, due: u64, id: &str, next: DeliveryNext) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut outbox = txn.open_table(WEBHOOK_OUTBOX)?;
            outbox.remove((due, id))?;
            match next {
                DeliveryNext::Done => {}
                DeliveryNext::Retry(at, record) => {
                    outbox.insert((at, id), record.as_slice())?;
                }
                DeliveryNext::Failed(record) => {
                    txn.open_table(WEBHOOK_FAILED)?
                        .insert(id, record.as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Deliveries that failed every attempt.
    pub fn failed_deliveries<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WEBHOOK_FAILED)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            out.push(decode("webhook_failed", key.value(), value.value())?);
        }
        Ok(out)
    }
}

/// What one pass over the announced runs did.
#[derive(Debug, Default)]
pub struct Announced {
    /// Runs taken off the announced list.
    pub runs: usize,
    /// Deliveries queued for them.
    pub deliveries: usize,
    /// Records that could not be read, each described; they were skipped.
    pub unreadable: Vec<String>,
}

/// What becomes of a delivery after an attempt (records JSON-encoded by the caller).
pub enum DeliveryNext {
    Done,
    /// Try again at this time (unix ms), with the updated record.
    Retry(u64, Vec<u8>),
    Failed(Vec<u8>),
}
