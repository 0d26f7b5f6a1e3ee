//! Workflow definitions and runs: their tables, keys and indexes.
//!
//! The engine owns the record types (the store only needs them to be serde types); the
//! store owns where they live. All writes to runs go through [`RunBatch`], inside one
//! transaction the engine's writer group-commits for many runs at once.

use super::feedback::{append_correction, count_review};
use super::tables::*;
use super::{Result, Store, StoreError, decode, encode};
use redb::{
    Key, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, Value, WriteTransaction,
};
use serde::{Serialize, de::DeserializeOwned};

/// The chain head of a run's event log: the last sequence number and its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// One stored event: its hash and the exact bytes it was computed over.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub seq: u64,
    pub hash: [u8; 32],
    pub body: Vec<u8>,
}

/// A timer: at `due_ms`, wake `run` for the step at `path`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerEntry {
    pub due_ms: u64,
    pub run: String,
    pub path: String,
}

/// Which runs to list. Empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub key: Option<String>,
    pub limit: usize,
}

/// A run's identity as the indexes see it.
#[derive(Clone, Copy, Debug)]
pub struct RunIndex<'a> {
    pub id: &'a str,
    pub workflow: &'a str,
    pub key: Option<&'a str>,
}

/// The tables a batch of run transitions writes to, in one write transaction. Each is
/// opened on first use: a commit opens only the tables its jobs touch (opening all
/// fifteen for every commit showed in profiles).
pub struct RunBatch<'t> {
    runs: Lazy<'t, &'static str, &'static [u8]>,
    log: Lazy<'t, (&'static str, &'static [u8]), &'static [u8]>,
    by_status: Lazy<'t, (&'static str, &'static str), ()>,
    by_workflow: Lazy<'t, (&'static str, &'static str), ()>,
    by_key: Lazy<'t, (&'static str, &'static str), ()>,
    queues: Lazy<'t, (&'static str, &'static str, &'static str), ()>,
    idempotency: Lazy<'t, (&'static str, &'static str), &'static str>,
    timers: Lazy<'t, (u64, &'static str, &'static str), ()>,
    waits: Lazy<'t, (&'static str, &'static str, &'static str, &'static str), ()>,
    buffer: Lazy<'t, (&'static str, &'static str, u64), &'static [u8]>,
    inbox: Lazy<'t, (&'static str, u64), &'static [u8]>,
    corrections: Lazy<'t, (&'static str, &'static str, u64), &'static [u8]>,
    review_counts: Lazy<'t, (&'static str, &'static str), (u64, u64)>,
    webhooks: Lazy<'t, &'static str, &'static [u8]>,
    to_announce: Lazy<'t, &'static str, ()>,
}

/// A table of a [`RunBatch`], opened when first used.
struct Lazy<'t, K: Key + 'static, V: Value + 'static> {
    txn: &'t WriteTransaction,
    definition: TableDefinition<'static, K, V>,
    table: Option<Table<'t, K, V>>,
}

impl<'t, K: Key + 'static, V: Value + 'static> Lazy<'t, K, V> {
    fn new(txn: &'t WriteTransaction, definition: TableDefinition<'static, K, V>) -> Self {
        Lazy {
            txn,
            definition,
            table: None,
        }
    }

    /// The table, opened (and created, if it does not exist yet) on the first call.
    fn open(&mut self) -> Result<&mut Table<'t, K, V>> {
        if self.table.is_none() {
            self.table = Some(self.txn.open_table(self.definition)?);
        }
        Ok(self.table.as_mut().expect("opened above"))
    }
}

impl<'t> RunBatch<'t> {
    fn new(txn: &'t WriteTransaction) -> RunBatch<'t> {
        RunBatch {
            runs: Lazy::new(txn, RUNS),
            log: Lazy::new(txn, RUN_LOG),
            by_status: Lazy::new(txn, RUNS_BY_STATUS),
            by_workflow: Lazy::new(txn, RUNS_BY_WORKFLOW),
            by_key: Lazy::new(txn, RUNS_BY_KEY),
            queues: Lazy::new(txn, STEP_QUEUES),
            idempotency: Lazy::new(txn, IDEMPOTENCY_KEYS),
            timers: Lazy::new(txn, TIMERS),
            waits: Lazy::new(txn, EVENT_WAITS),
            buffer: Lazy::new(txn, EVENT_BUFFER),
            inbox: Lazy::new(txn, RUN_INBOX),
            corrections: Lazy::new(txn, CORRECTIONS),
            review_counts: Lazy::new(txn, REVIEW_COUNTS),
            webhooks: Lazy::new(txn, WEBHOOKS),
            to_announce: Lazy::new(txn, RUNS_TO_ANNOUNCE),
        }
    }

    /// Creates every run table that does not exist yet.
    pub(super) fn create_tables(txn: &'t WriteTransaction) -> Result<()> {
        let mut batch = Self::new(txn);
        batch.runs.open()?;
        batch.log.open()?;
        batch.by_status.open()?;
        batch.by_workflow.open()?;
        batch.by_key.open()?;
        batch.queues.open()?;
        batch.idempotency.open()?;
        batch.timers.open()?;
        batch.waits.open()?;
        batch.buffer.open()?;
        batch.inbox.open()?;
        batch.corrections.open()?;
        batch.review_counts.open()?;
        batch.webhooks.open()?;
        batch.to_announce.open()?;
        Ok(())
    }

    /// The run that already holds `(workflow, key)`, or `None` after reserving it for `run`.
    pub fn claim_idempotency_key(
        &mut self,
        workflow: &str,
        key: &str,
        run: &str,
    ) -> Result<Option<String>> {
        let keys = self.idempotency.open()?;
        if let Some(existing) = keys.get((workflow, key))? {
            return Ok(Some(existing.value().to_owned()));
        }
        keys.insert((workflow, key), run)?;
        Ok(None)
    }

    /// Marks `run` as finished for the webhook dispatcher; nothing when no webhook
    /// is registered.
    pub fn announce_finished(&mut self, run: &str) -> Result<()> {
        if !self.webhooks.open()?.is_empty()? {
            self.to_announce.open()?.insert(run, ())?;
        }
        Ok(())
    }

    /// Records a new run and indexes it by status, workflow and business key.
    pub fn insert_run(
        &mut self,
        index: RunIndex<'_>,
        status: &str,
        record: &impl Serialize,
    ) -> Result<()> {
        self.runs
            .open()?
            .insert(index.id, encode(record).as_slice())?;
        self.by_status.open()?.insert((status, index.id), ())?;
        self.by_workflow
            .open()?
            .insert((index.workflow, index.id), ())?;
        if let Some(key) = index.key {
            self.by_key.open()?.insert((key, index.id), ())?;
        }
        Ok(())
    }

    /// Rewrites a run's record, moving it in the status index.
    pub fn update_run(
        &mut self,
        id: &str,
        old_status: &str,
        new_status: &str,
        record: &impl Serialize,
    ) -> Result<()> {
        self.runs.open()?.insert(id, encode(record).as_slice())?;
        if old_status != new_status {
            let by_status = self.by_status.open()?;
            by_status.remove((old_status, id))?;
            by_status.insert((new_status, id), ())?;
        }
        Ok(())
    }

    /// Moves the step at `path` in `run` from queue `from` to queue `to` (see
    /// [`STEP_QUEUES`]); `None` is no queue.
    pub fn move_step(
        &mut self,
        run: &str,
        path: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<()> {
        if let Some(from) = from {
            self.queues.open()?.remove((from, run, path))?;
        }
        if let Some(to) = to {
            self.queues.open()?.insert((to, run, path), ())?;
        }
        Ok(())
    }

    /// Writes the state of the step at `path` in `run`.
    pub fn put_step(&mut self, run: &str, path: &str, record: &impl Serialize) -> Result<()> {
        self.log.open()?.insert(
            (run, run_log::step(path).as_slice()),
            encode(record).as_slice(),
        )?;
        Ok(())
    }

    /// Appends events to a run's log, in one row, and moves the chain head to the last.
    /// The events' sequences must follow on from each other. The engine computes each
    /// `hash` over its `body`; the store keeps both exactly as given.
    pub fn append_events(&mut self, run: &str, events: &[StoredEvent]) -> Result<()> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let size = events.iter().map(|e| 36 + e.body.len()).sum();
        let mut value = Vec::with_capacity(size);
        for event in events {
            let len = u32::try_from(event.body.len()).expect("an event is under 4 GiB");
            value.extend_from_slice(&len.to_be_bytes());
            value.extend_from_slice(&event.hash);
            value.extend_from_slice(&event.body);
        }
        let log = self.log.open()?;
        log.insert(
            (run, run_log::event(run_log::EVENTS, first.seq).as_slice()),
            value.as_slice(),
        )?;
        let mut head = [0u8; 40];
        head[..8].copy_from_slice(&last.seq.to_be_bytes());
        head[8..].copy_from_slice(&last.hash);
        log.insert((run, run_log::HEAD), head.as_slice())?;
        Ok(())
    }

    pub fn set_timer(&mut self, timer: &TimerEntry) -> Result<()> {
        self.timers
            .open()?
            .insert((timer.due_ms, timer.run.as_str(), timer.path.as_str()), ())?;
        Ok(())
    }

    pub fn clear_timer(&mut self, timer: &TimerEntry) -> Result<()> {
        self.timers
            .open()?
            .remove((timer.due_ms, timer.run.as_str(), timer.path.as_str()))?;
        Ok(())
    }

    /// Registers `run`'s step at `path` as waiting for event `name` with business key
    /// `key`, unless such an event is already buffered: then that event is taken from the
    /// buffer and returned instead, and no wait is registered.
    pub fn wait_for_event(
        &mut self,
        name: &str,
        key: &str,
        run: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>> {
        let buffered = match self
            .buffer
            .open()?
            .range((name, key, 0)..=(name, key, u64::MAX))?
            .next()
        {
            Some(entry) => {
                let (k, v) = entry?;
                Some((k.value().2, v.value().to_vec()))
            }
            None => None,
        };
        if let Some((seq, payload)) = buffered {
            self.buffer.open()?.remove((name, key, seq))?;
            return Ok(Some(payload));
        }
        self.waits.open()?.insert((name, key, run, path), ())?;
        Ok(None)
    }

    pub fn cancel_wait(&mut self, name: &str, key: &str, run: &str, path: &str) -> Result<()> {
        self.waits.open()?.remove((name, key, run, path))?;
        Ok(())
    }

    /// Hands an external event to every step waiting for `(name, key)` (removing their
    /// waits), or buffers it when none waits. Returns the `(run, path)` pairs it reached.
    pub fn deliver_event(
        &mut self,
        name: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<Vec<(String, String)>> {
        let mut reached = Vec::new();
        for entry in self.waits.open()?.range((name, key, "", "")..)? {
            let (k, _) = entry?;
            let (n, k2, run, path) = k.value();
            if n != name || k2 != key {
                break;
            }
            reached.push((run.to_owned(), path.to_owned()));
        }
        for (run, path) in &reached {
            self.waits
                .open()?
                .remove((name, key, run.as_str(), path.as_str()))?;
        }
        if reached.is_empty() {
            let next = match self
                .buffer
                .open()?
                .range((name, key, 0)..=(name, key, u64::MAX))?
                .next_back()
            {
                Some(last) => last?.0.value().2 + 1,
                None => 0,
            };
            self.buffer.open()?.insert((name, key, next), payload)?;
        }
        Ok(reached)
    }

    /// Queues a message (operator command, decision, event) for `run`; returns its number.
    pub fn push_inbox(&mut self, run: &str, message: &impl Serialize) -> Result<u64> {
        let next = match self
            .inbox
            .open()?
            .range((run, 0)..=(run, u64::MAX))?
            .next_back()
        {
            Some(last) => last?.0.value().1 + 1,
            None => 0,
        };
        self.inbox
            .open()?
            .insert((run, next), encode(message).as_slice())?;
        Ok(next)
    }

    /// Removes a handled inbox message.
    pub fn remove_inbox(&mut self, run: &str, seq: u64) -> Result<()> {
        self.inbox.open()?.remove((run, seq))?;
        Ok(())
    }

    /// Files a person's correction of a plugin output (encoded `CorrectionRecord`).
    pub fn add_correction(&mut self, plugin: &str, action: &str, record: &[u8]) -> Result<()> {
        append_correction(self.corrections.open()?, plugin, action, record)
    }

    /// Counts a review of a plugin action's output.
    pub fn count_review(&mut self, plugin: &str, action: &str, corrected: bool) -> Result<()> {
        count_review(self.review_counts.open()?, plugin, action, corrected)
    }

    /// The chain head of log `run`.
    pub fn log_head(&mut self, run: &str) -> Result<Option<EventHead>> {
        self.log
            .open()?
            .get((run, run_log::HEAD))?
            .map(|v| decode_head(run, v.value()))
            .transpose()
    }

    /// Whether `run` exists.
    pub fn run_exists(&mut self, run: &str) -> Result<bool> {
        Ok(self.runs.open()?.get(run)?.is_some())
    }
}

impl Store {
    /// Runs `f` on the run tables inside one write transaction and commits it
    /// (durably: the commit returns after the data is on disk).
    pub fn write_runs<R>(&self, f: impl FnOnce(&mut RunBatch<'_>) -> Result<R>) -> Result<R> {
        let txn = self.db.begin_write()?;
        let out = {
            let mut batch = RunBatch::new(&txn);
            f(&mut batch)?
        };
        txn.commit()?;
        Ok(out)
    }

    /// Runs `f` on the run tables once in the database's life: its writes commit with a
    /// mark named `name`, and once the mark is there this does nothing and returns false.
    /// For an index added after databases were created: `f` fills it from what is there.
    pub fn write_runs_once(
        &self,
        name: &str,
        f: impl FnOnce(&mut RunBatch<'_>) -> Result<()>,
    ) -> Result<bool> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let mark = format!("built:{name}");
            if meta.get(mark.as_str())?.is_some() {
                return Ok(false);
            }
            meta.insert(mark.as_str(), [].as_slice())?;
            f(&mut RunBatch::new(&txn))?;
        }
        txn.commit()?;
        Ok(true)
    }

    // ---- workflow definitions ----

    /// Every version of workflow `name`, oldest first.
    pub fn workflow_versions<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WORKFLOWS)?;
        let mut out = Vec::new();
        for entry in table.range((name, 0)..=(name, u32::MAX))? {
            let (key, value) = entry?;
            let (n, v) = key.value();
            out.push(decode("workflows", &format!("{n}@{v}"), value.value())?);
        }
        Ok(out)
    }

    /// The newest version of every workflow, ordered by name.
    pub fn latest_workflows<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WORKFLOWS)?;
        let mut out: Vec<(String, T)> = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (n, v) = key.value();
            let record = decode("workflows", &format!("{n}@{v}"), value.value())?;
            match out.last_mut() {
                Some((last, slot)) if last == n => *slot = record,
                _ => out.push((n.to_owned(), record)),
            }
        }
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// Version `version` of workflow `name`.
    pub fn workflow<T: DeserializeOwned>(&self, name: &str, version: u32) -> Result<Option<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WORKFLOWS)?;
        table
            .get((name, version))?
            .map(|v| decode("workflows", &format!("{name}@{version}"), v.value()))
            .transpose()
    }

    /// Stores a new version of workflow `name` unless `same` says the newest one already
    /// equals it. Returns the version that now holds the definition and whether it is new.
    pub fn add_workflow_version<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        same: impl Fn(&T) -> bool,
        make: impl FnOnce(u32) -> T,
    ) -> Result<(u32, bool)> {
        let txn = self.db.begin_write()?;
        let result = {
            let mut table = txn.open_table(WORKFLOWS)?;
            let latest = match table.range((name, 0)..=(name, u32::MAX))?.next_back() {
                Some(entry) => {
                    let (key, value) = entry?;
                    let version = key.value().1;
                    let record: T =
                        decode("workflows", &format!("{name}@{version}"), value.value())?;
                    Some((version, record))
                }
                None => None,
            };
            match latest {
                Some((version, record)) if same(&record) => (version, false),
                latest => {
                    let version = latest.map_or(1, |(v, _)| v + 1);
                    table.insert((name, version), encode(&make(version)).as_slice())?;
                    (version, true)
                }
            }
        };
        txn.commit()?;
        Ok(result)
    }

    // ---- runs ----

    /// A run's record.
    pub fn run<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RUNS)?;
        table
            .get(id)?
            .map(|v| decode("runs", id, v.value()))
            .transpose()
    }

    /// A run's record, all its steps by path, and its event chain head, from one
    /// snapshot.
    #[allow(clippy::type_complexity)]
    pub fn run_state<R: DeserializeOwned, S: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<(R, Vec<(String, S)>, Option<EventHead>)>> {
        let txn = self.db.begin_read()?;
        let runs = txn.open_table(RUNS)?;
        let Some(run) = runs.get(id)? else {
            return Ok(None);
        };
        let run = decode("runs", id, run.value())?;
        let log = txn.open_table(RUN_LOG)?;
        let (first, end) = run_log::section(run_log::STEP);
        let mut steps = Vec::new();
        for entry in log.range((id, first.as_slice())..(id, end.as_slice()))? {
            let (key, value) = entry?;
            let path =
                std::str::from_utf8(&key.value().1[1..]).map_err(|_| StoreError::Malformed {
                    table: "run_log",
                    key: format!("{id}/step"),
                })?;
            steps.push((
                path.to_owned(),
                decode("run_log", &format!("{id}/{path}"), value.value())?,
            ));
        }
        let head = read_head(&log, id)?;
        Ok(Some((run, steps, head)))
    }

    /// Ids of runs with `status`, oldest first.
    pub fn runs_with_status(&self, status: &str) -> Result<Vec<String>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RUNS_BY_STATUS)?;
        let mut out = Vec::new();
        for entry in table.range((status, "")..)? {
            let (key, _) = entry?;
            let (s, id) = key.value();
            if s != status {
                break;
            }
            out.push(id.to_owned());
        }
        Ok(out)
    }

    /// Ids of runs with a step in `queue` (see [`STEP_QUEUES`]), oldest first.
    pub fn runs_in_queue(&self, queue: &str) -> Result<Vec<String>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STEP_QUEUES)?;
        let mut out: Vec<String> = Vec::new();
        for entry in table.range((queue, "", "")..)? {
            let (key, _) = entry?;
            let (q, run, _) = key.value();
            if q != queue {
                break;
            }
            if out.last().map(String::as_str) != Some(run) {
                out.push(run.to_owned());
            }
        }
        Ok(out)
    }

    /// How many runs have each status (statuses with none are left out).
    pub fn count_by_status(&self) -> Result<Vec<(String, u64)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RUNS_BY_STATUS)?;
        let mut out: Vec<(String, u64)> = Vec::new();
        for entry in table.iter()? {
            let (key, _) = entry?;
            let status = key.value().0;
            match out.last_mut() {
                Some((last, n)) if last == status => *n += 1,
                _ => out.push((status.to_owned(), 1)),
            }
        }
        Ok(out)
    }

    /// Runs matching `query`, newest first, at most `query.limit` (0: no limit).
    /// `matches` filters the decoded records on the fields the chosen index did not cover.
    pub fn list_runs<T: DeserializeOwned>(
        &self,
        query: &RunQuery,
        matches: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>> {
        let txn = self.db.begin_read()?;
        let runs = txn.open_table(RUNS)?;
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        let mut out = Vec::new();
        let mut take = |id: &str| -> Result<bool> {
            if let Some(value) = runs.get(id)? {
                let record: T = decode("runs", id, value.value())?;
                if matches(&record) {
                    out.push(record);
                }
            }
            Ok(out.len() < limit)
        };
        // The most selective index first; run ids sort by start time.
        let index = match (&query.key, &query.workflow, &query.status) {
            (Some(key), _, _) => Some((RUNS_BY_KEY, key)),
            (None, Some(workflow), _) => Some((RUNS_BY_WORKFLOW, workflow)),
            (None, None, Some(status)) => Some((RUNS_BY_STATUS, status)),
            (None, None, None) => None,
        };
        match index {
            Some((table, prefix)) => {
                let table = txn.open_table(table)?;
                for entry in table
                    .range((prefix.as_str(), "")..=(prefix.as_str(), "\u{10FFFF}"))?
                    .rev()
                {
                    let (key, _) = entry?;
                    let (p, id) = key.value();
                    if p == prefix && !take(id)? {
                        break;
                    }
                }
            }
            None => {
                for entry in runs.iter()?.rev() {
                    let (key, _) = entry?;
                    if !take(key.value())? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Messages waiting in `run`'s inbox, oldest first.
    pub fn inbox<T: DeserializeOwned>(&self, run: &str) -> Result<Vec<(u64, T)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RUN_INBOX)?;
        let mut out = Vec::new();
        for entry in table.range((run, 0)..=(run, u64::MAX))? {
            let (key, value) = entry?;
            let seq = key.value().1;
            out.push((
                seq,
                decode("run_inbox", &format!("{run}/{seq}"), value.value())?,
            ));
        }
        Ok(out)
    }

    /// Whether `run` has a message it has not handled yet.
    pub fn has_inbox(&self, run: &str) -> Result<bool> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RUN_INBOX)?;
        Ok(table.range((run, 0)..=(run, u64::MAX))?.next().is_some())
    }

    /// Runs with at least one inbox message.
    pub fn runs_with_inbox(&self) -> Result<Vec<String>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RUN_INBOX)?;
        let mut out: Vec<String> = Vec::new();
        for entry in table.iter()? {
            let (key, _) = entry?;
            let run = key.value().0;
            if out.last().map(String::as_str) != Some(run) {
                out.push(run.to_owned());
            }
        }
        Ok(out)
    }

    /// Whether any timer is pending.
    pub fn has_timers(&self) -> Result<bool> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(TIMERS)?.first()?.is_some())
    }

    /// Every pending timer, earliest first.
    pub fn timers(&self) -> Result<Vec<TimerEntry>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TIMERS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, _) = entry?;
            let (due_ms, run, path) = key.value();
            out.push(TimerEntry {
                due_ms,
                run: run.to_owned(),
                path: path.to_owned(),
            });
        }
        Ok(out)
    }

    /// Appends one event to log `log` in a transaction of its own; `make` builds it on
    /// the log's current head, inside the transaction, so concurrent appends chain.
    pub fn append_event(
        &self,
        log: &str,
        make: impl FnOnce(Option<&EventHead>) -> StoredEvent,
    ) -> Result<()> {
        self.write_runs(|batch| {
            let head = batch.log_head(log)?;
            batch.append_events(log, &[make(head.as_ref())])
        })
    }

    /// One run's event log, in order, with its recorded chain head.
    pub fn run_events(&self, run: &str) -> Result<(Vec<StoredEvent>, Option<EventHead>)> {
        let txn = self.db.begin_read()?;
        read_log(&txn.open_table(RUN_LOG)?, run)
    }

    /// Calls `f` with every run's id, event log and chain head, one run at a time, from
    /// one snapshot. Runs whose record is gone but whose events remain are included.
    /// Stops at the first error `f` returns.
    pub fn each_event_log<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(&str, Vec<StoredEvent>, Option<EventHead>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let txn = self.db.begin_read().map_err(StoreError::from)?;
        let runs = txn.open_table(RUNS).map_err(StoreError::from)?;
        let log = txn.open_table(RUN_LOG).map_err(StoreError::from)?;
        let mut ids: Vec<String> = Vec::new();
        for entry in runs.iter().map_err(StoreError::from)? {
            ids.push(entry.map_err(StoreError::from)?.0.value().to_owned());
        }
        for entry in log.iter().map_err(StoreError::from)? {
            let (key, _) = entry.map_err(StoreError::from)?;
            let run = key.value().0;
            if ids.last().map(String::as_str) != Some(run) {
                ids.push(run.to_owned());
            }
        }
        ids.sort();
        ids.dedup();
        for run in &ids {
            let (events, head) = read_log(&log, run)?;
            f(run, events, head)?;
        }
        Ok(ids.len())
    }
}

type RunLog = ReadOnlyTable<(&'static str, &'static [u8]), &'static [u8]>;

/// One run's events in order, and its recorded chain head.
fn read_log(log: &RunLog, run: &str) -> Result<(Vec<StoredEvent>, Option<EventHead>)> {
    let mut events = Vec::new();
    for kind in [run_log::EVENTS, run_log::EVENT] {
        let (first, end) = run_log::section(kind);
        for entry in log.range((run, first.as_slice())..(run, end.as_slice()))? {
            let (key, value) = entry?;
            let seq = <[u8; 8]>::try_from(&key.value().1[1..])
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Malformed {
                    table: "run_log",
                    key: format!("{run}/event"),
                })?;
            let row = value.value();
            let decoded = if kind == run_log::EVENTS {
                decode_events(seq, row, &mut events)
            } else if let Some(event) = stored_event(seq, row) {
                events.push(event);
                Ok(())
            } else {
                Err(seq)
            };
            decoded.map_err(|seq| StoreError::Malformed {
                table: "run_log",
                key: format!("{run}/{seq}"),
            })?;
        }
    }
    // Logs written before and after rows held several events have both kinds of row.
    events.sort_by_key(|e| e.seq);
    Ok((events, read_head(log, run)?))
}

/// Appends the events of a row of several ([`run_log::EVENTS`]), the first numbered
/// `seq`, to `events`; on a row cut short, the sequence of the event it cuts.
fn decode_events(
    mut seq: u64,
    mut row: &[u8],
    events: &mut Vec<StoredEvent>,
) -> std::result::Result<(), u64> {
    while !row.is_empty() {
        let (len, rest) = row.split_first_chunk::<4>().ok_or(seq)?;
        let len = 32 + u32::from_be_bytes(*len) as usize;
        let event = rest
            .get(..len)
            .and_then(|e| stored_event(seq, e))
            .ok_or(seq)?;
        events.push(event);
        row = &rest[len..];
        seq += 1;
    }
    Ok(())
}

fn read_head(log: &RunLog, run: &str) -> Result<Option<EventHead>> {
    log.get((run, run_log::HEAD))?
        .map(|v| decode_head(run, v.value()))
        .transpose()
}

/// Event `seq` from its hash ++ body; `None` if too short for the hash.
fn stored_event(seq: u64, value: &[u8]) -> Option<StoredEvent> {
    let (hash, body) = value.split_first_chunk::<32>()?;
    Some(StoredEvent {
        seq,
        hash: *hash,
        body: body.to_vec(),
    })
}

fn decode_head(run: &str, value: &[u8]) -> Result<EventHead> {
    if value.len() != 40 {
        return Err(StoreError::Malformed {
            table: "run_log",
            key: run.to_owned(),
        });
    }
    Ok(EventHead {
        seq: u64::from_be_bytes(value[..8].try_into().expect("8 bytes")),
        hash: value[8..].try_into().expect("32 bytes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, body: &str) -> StoredEvent {
        StoredEvent {
            seq,
            hash: [seq as u8; 32],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_log_reads_back_from_rows_of_one_event_and_rows_of_many() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        // What an older build wrote: one event per row.
        let txn = store.db.begin_write().unwrap();
        {
            let mut log = txn.open_table(RUN_LOG).unwrap();
            for e in [event(0, "{\"a\":0}"), event(1, "")] {
                let mut value = e.hash.to_vec();
                value.extend_from_slice(&e.body);
                let key = run_log::event(run_log::EVENT, e.seq);
                log.insert(("r1", key.as_slice()), value.as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
        // This build: a row per transition.
        let appended = [
            vec![event(2, "{\"b\":2}"), event(3, "{}"), event(4, "x")],
            vec![event(5, "{\"c\":5}")],
        ];
        for events in &appended {
            store
                .write_runs(|batch| batch.append_events("r1", events))
                .unwrap();
        }
        store
            .write_runs(|batch| batch.append_events("r2", &[event(0, "other")]))
            .unwrap();

        let (events, head) = store.run_events("r1").unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5]);
        for e in &events {
            assert_eq!(e.hash, [e.seq as u8; 32]);
        }
        let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
        assert_eq!(
            bodies,
            [
                &b"{\"a\":0}"[..],
                b"",
                b"{\"b\":2}",
                b"{}",
                b"x",
                b"{\"c\":5}"
            ]
        );
        let head = head.unwrap();
        assert_eq!((head.seq, head.hash), (5, [5; 32]));
        assert_eq!(store.run_events("r2").unwrap().0.len(), 1);
    }

    #[test]
    fn a_cut_short_row_of_events_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store
            .write_runs(|batch| batch.append_events("r1", &[event(0, "{}"), event(1, "{}")]))
            .unwrap();
        let txn = store.db.begin_write().unwrap();
        {
            let mut log = txn.open_table(RUN_LOG).unwrap();
            let key = run_log::event(run_log::EVENTS, 0);
            let row = log
                .get(("r1", key.as_slice()))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            log.insert(("r1", key.as_slice()), &row[..row.len() - 1])
                .unwrap();
        }
        txn.commit().unwrap();
        let err = store.run_events("r1").unwrap_err().to_string();
        assert!(err.contains("r1/1"), "{err}");
    }
}
