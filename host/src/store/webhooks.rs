//! Outbound webhooks and their delivery outbox.

use super::tables::{WEBHOOK_FAILED, WEBHOOK_OUTBOX, WEBHOOKS};
use super::{Result, Store, decode, encode};
use redb::{ReadableDatabase, ReadableTable};
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

    /// Queues deliveries `(due ms, id, record)` in one transaction.
    pub fn queue_deliveries(&self, deliveries: &[(u64, String, Vec<u8>)]) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut outbox = txn.open_table(WEBHOOK_OUTBOX)?;
            for (due, id, record) in deliveries {
                outbox.insert((*due, id.as_str()), record.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
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

/// What becomes of a delivery after an attempt (records JSON-encoded by the caller).
pub enum DeliveryNext {
    Done,
    /// Try again at this time (unix ms), with the updated record.
    Retry(u64, Vec<u8>),
    Failed(Vec<u8>),
}
