//! The corrections ledger (people's edits of plugin outputs) and how often each plugin
//! action's output was reviewed and corrected.

use super::records::CorrectionRecord;
use super::tables::{CORRECTIONS, REVIEW_COUNTS};
use super::{Result, Store, decode, encode};
use redb::{ReadableDatabase, ReadableTable, Table};
use serde::Serialize;

/// A correction with where it is filed.
#[derive(Clone, Debug, Serialize)]
pub struct StoredCorrection {
    pub plugin: String,
    pub action: String,
    pub seq: u64,
    #[serde(flatten)]
    pub record: CorrectionRecord,
}

/// Review figures of one plugin action.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ReviewCount {
    pub plugin: String,
    pub action: String,
    /// Outputs people reviewed.
    pub reviewed: u64,
    /// Of those, outputs they changed.
    pub corrected: u64,
    /// The share accepted unchanged, 0 to 1.
    pub acceptance_rate: f64,
}

pub(super) type CorrectionsTable<'t> = Table<'t, (&'static str, &'static str, u64), &'static [u8]>;
pub(super) type ReviewCountsTable<'t> = Table<'t, (&'static str, &'static str), (u64, u64)>;

/// Appends an encoded correction of `plugin`'s `action` under the next sequence number.
pub(super) fn append_correction(
    table: &mut CorrectionsTable<'_>,
    plugin: &str,
    action: &str,
    record: &[u8],
) -> Result<()> {
    let next = match table
        .range((plugin, action, 0)..=(plugin, action, u64::MAX))?
        .next_back()
    {
        Some(last) => last?.0.value().2 + 1,
        None => 0,
    };
    table.insert((plugin, action, next), record)?;
    Ok(())
}

/// Counts one review of `plugin`'s `action`.
pub(super) fn count_review(
    table: &mut ReviewCountsTable<'_>,
    plugin: &str,
    action: &str,
    corrected: bool,
) -> Result<()> {
    let (reviewed, changed) = table.get((plugin, action))?.map_or((0, 0), |v| v.value());
    table.insert(
        (plugin, action),
        (reviewed + 1, changed + u64::from(corrected)),
    )?;
    Ok(())
}

impl Store {
    /// Appends a correction of `plugin`'s output for `action`.
    pub fn add_correction(
        &self,
        plugin: &str,
        action: &str,
        record: &CorrectionRecord,
    ) -> Result<()> {
        let txn = self.db.begin_write()?;
        append_correction(
            &mut txn.open_table(CORRECTIONS)?,
            plugin,
            action,
            &encode(record),
        )?;
        txn.commit()?;
        Ok(())
    }

    /// The newest `limit` corrections of `plugin`'s `action`, newest first.
    pub fn corrections(
        &self,
        plugin: &str,
        action: &str,
        limit: usize,
    ) -> Result<Vec<CorrectionRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CORRECTIONS)?;
        let mut out = Vec::new();
        for entry in table
            .range((plugin, action, 0)..=(plugin, action, u64::MAX))?
            .rev()
            .take(limit)
        {
            let (key, value) = entry?;
            let seq = key.value().2;
            out.push(decode(
                "corrections",
                &format!("{plugin}/{action}/{seq}"),
                value.value(),
            )?);
        }
        Ok(out)
    }

    /// Every correction, oldest first per action, optionally of one plugin (and action).
    pub fn all_corrections(
        &self,
        plugin: Option<&str>,
        action: Option<&str>,
    ) -> Result<Vec<StoredCorrection>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CORRECTIONS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (p, a, seq) = key.value();
            if plugin.is_some_and(|x| x != p) || action.is_some_and(|x| x != a) {
                continue;
            }
            out.push(StoredCorrection {
                plugin: p.to_owned(),
                action: a.to_owned(),
                seq,
                record: decode("corrections", &format!("{p}/{a}/{seq}"), value.value())?,
            });
        }
        Ok(out)
    }

    /// Review figures of every plugin action people have reviewed.
    pub fn review_counts(&self) -> Result<Vec<ReviewCount>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(REVIEW_COUNTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (plugin, action) = key.value();
            let (reviewed, corrected) = value.value();
            out.push(ReviewCount {
                plugin: plugin.to_owned(),
                action: action.to_owned(),
                reviewed,
                corrected,
                acceptance_rate: if reviewed == 0 {
                    0.0
                } else {
                    (reviewed - corrected) as f64 / reviewed as f64
                },
            });
        }
        Ok(out)
    }
}
