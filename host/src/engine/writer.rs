//! The one thread that writes runs to redb. It takes every job queued since its last
//! commit and applies them in one transaction (group commit): durable throughput is
//! bounded by the disk's commit rate per batch, not per step.

use super::state::{InboxMessage, RunStatus, StepQueue};
use crate::store::{RunBatch, RunIndex, Store, StoreError, StoredEvent, TimerEntry};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use tokio::sync::{broadcast, oneshot};

/// Most jobs in one transaction; beyond this, the rest wait for the next commit.
const MAX_BATCH: usize = 4096;

/// JSON already encoded by the caller, so the writer thread only copies bytes.
pub type Encoded = Box<serde_json::value::RawValue>;

/// Encodes a record for a job.
pub fn encode<T: serde::Serialize>(value: &T) -> Encoded {
    serde_json::value::to_raw_value(value).expect("records are plain data")
}

/// A new run with its first transition, written only if its idempotency key is unused.
pub struct StartJob {
    pub workflow: String,
    pub key: Option<String>,
    pub idempotency_key: Option<String>,
    pub status: &'static str,
    pub run: Encoded,
    pub first: TransitionJob,
}

/// One run's transition: everything that changed in one step of the interpreter.
#[derive(Default)]
pub struct TransitionJob {
    pub run_id: String,
    /// (old status, new status, record) when the run record changed.
    pub run: Option<(&'static str, &'static str, Encoded)>,
    pub steps: Vec<(String, Encoded)>,
    /// (step path, queue it left, queue it joined) for steps that changed queue.
    pub queue_moves: Vec<(String, Option<StepQueue>, Option<StepQueue>)>,
    pub events: Vec<StoredEvent>,
    pub timers_set: Vec<TimerEntry>,
    pub timers_cleared: Vec<TimerEntry>,
    /// (event name, key, step path) to wait for.
    pub waits: Vec<(String, String, String)>,
    pub waits_cancelled: Vec<(String, String, String)>,
    /// Inbox messages this transition handled.
    pub inbox_done: Vec<u64>,
    /// Reviews of plugin outputs decided, for the review counts and corrections ledger.
    pub reviews: Vec<ReviewJob>,
}

/// A person's verdict on a plugin action's output.
pub struct ReviewJob {
    pub plugin: String,
    pub action: String,
    /// The encoded `CorrectionRecord` when they changed the output.
    pub correction: Option<Encoded>,
}

/// An external event kept until a step waits for it.
#[derive(serde::Serialize, serde::Deserialize)]
struct BufferedEvent {
    payload: serde_json::Value,
    #[serde(default)]
    actor: Option<String>,
}

impl BufferedEvent {
    /// Marks the row format; JSON never starts with this byte, and rows written before
    /// events carried their actor hold the bare payload.
    const FORMAT: u8 = 1;

    fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![Self::FORMAT];
        serde_json::to_writer(&mut bytes, self).expect("JSON values serialise");
        bytes
    }

    fn decode(bytes: &[u8]) -> Self {
        match bytes.split_first() {
            Some((&Self::FORMAT, json)) => serde_json::from_slice(json).ok(),
            _ => None,
        }
        .unwrap_or_else(|| BufferedEvent {
            payload: serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null),
            actor: None,
        })
    }
}

/// What a committed transition found on the way.
#[derive(Debug, Default)]
pub struct TransitionOutcome {
    /// An event was already buffered for a wait; it is now in the run's inbox.
    pub inbox_filled: bool,
}

pub enum Job {
    /// Replies with the run that already holds the idempotency key, or the outcome of
    /// the new run's first transition.
    Start(
        StartJob,
        oneshot::Sender<Result<Result<TransitionOutcome, String>, String>>,
    ),
    Transition(
        TransitionJob,
        oneshot::Sender<Result<TransitionOutcome, String>>,
    ),
    /// Put a message in a run's inbox.
    Inbox {
        run_id: String,
        message: InboxMessage,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Deliver an external event to the steps waiting for it, or buffer it.
    Event {
        name: String,
        key: String,
        payload: serde_json::Value,
        actor: String,
        reply: oneshot::Sender<Result<Vec<String>, String>>,
    },
}

/// Events one transition appended to a run's log, as published after their commit.
#[derive(Debug)]
pub struct Committed {
    pub run_id: String,
    pub events: Vec<StoredEvent>,
}

/// Where committed events are published (to live streams); nothing is sent, or
/// copied, while nobody listens.
pub type Feed = broadcast::Sender<Arc<Committed>>;

/// The sending side of the writer.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Jobs sent and not yet taken into a transaction.
    queued: Arc<AtomicUsize>,
    /// Transactions committed since the writer started.
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer thread on `store`. It stops when every `Writer` is dropped.
    pub fn start(store: Store, feed: Feed) -> Writer {
        let (jobs, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let commits = Arc::new(AtomicU64::new(0));
        let (taken, committed) = (queued.clone(), commits.clone());
        thread::Builder::new()
            .name("baton-writer".into())
            .spawn(move || run(store, rx, Published { feed, committed }, &taken))
            .expect("spawning the writer thread");
        Writer {
            jobs,
            queued,
            commits,
        }
    }

    /// Queues `job`; `false` if the writer has stopped.
    pub fn send(&self, job: Job) -> bool {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.jobs.send(job).is_ok()
    }

    /// Jobs waiting for the next transaction.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Transactions committed since the writer started. Each is counted before its
    /// events are published, and whether anyone listens is checked after that, so a
    /// subscriber that reads this count after subscribing misses no commit: either the
    /// count has moved or the commit's events reach it.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }
}

/// Where the writer reports what it committed.
struct Published {
    feed: Feed,
    committed: Arc<AtomicU64>,
}

impl Published {
    /// Counts one commit; then the live streams, if any listen now.
    fn committed(&self) -> Option<&Feed> {
        self.committed.fetch_add(1, Ordering::SeqCst);
        (self.feed.receiver_count() > 0).then_some(&self.feed)
    }
}

fn run(store: Store, rx: mpsc::Receiver<Job>, published: Published, queued: &AtomicUsize) {
    // One batch buffer for the thread's life: growing a new one per commit showed in
    // profiles.
    let mut jobs = Vec::new();
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        queued.fetch_sub(1, Ordering::Relaxed);
        take_waiting(&rx, &mut jobs, queued);
        commit(&store, &mut jobs, &published, |jobs| {
            take_waiting(&rx, jobs, queued)
        });
    }
}

/// Moves the jobs already waiting in `rx` into `jobs` (up to [`MAX_BATCH`]); whether
/// there were any.
fn take_waiting(rx: &mpsc::Receiver<Job>, jobs: &mut Vec<Job>, queued: &AtomicUsize) -> bool {
    let before = jobs.len();
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    queued.fetch_sub(jobs.len() - before, Ordering::Relaxed);
    jobs.len() > before
}

/// Commits `jobs` in one transaction, leaving the buffer empty. Before committing it
/// applies what `more` adds to `jobs` too, until it adds nothing: jobs that arrived
/// while the others were applied would otherwise wait for this commit's `fdatasync`
/// and then for one of their own. If the transaction fails, each job is tried alone,
/// so one bad job cannot fail the others.
fn commit(
    store: &Store,
    jobs: &mut Vec<Job>,
    published: &Published,
    mut more: impl FnMut(&mut Vec<Job>) -> bool,
) {
    let together: Result<Vec<Applied>, StoreError> = store.write_runs(|batch| {
        let mut outcomes = Vec::with_capacity(jobs.len());
        loop {
            for job in &jobs[outcomes.len()..] {
                outcomes.push(apply(batch, job)?);
            }
            if !more(jobs) {
                return Ok(outcomes);
            }
        }
    });
    match together {
        Ok(outcomes) => {
            let feed = published.committed();
            for (mut job, outcome) in jobs.drain(..).zip(outcomes) {
                publish(feed, &mut job, &outcome);
                reply(job, Ok(outcome));
            }
        }
        Err(_) if jobs.len() > 1 => {
            for mut job in jobs.drain(..) {
                let outcome = store.write_runs(|batch| apply(batch, &job));
                if let Ok(applied) = &outcome {
                    publish(published.committed(), &mut job, applied);
                }
                reply(job, outcome.map_err(|e| e.to_string()));
            }
        }
        Err(e) => {
            for job in jobs.drain(..) {
                reply(job, Err(e.to_string()));
            }
        }
    }
}

/// Hands a committed job's new events to the live streams, if any listen.
fn publish(feed: Option<&Feed>, job: &mut Job, applied: &Applied) {
    let Some(feed) = feed else {
        return;
    };
    let transition = match (job, applied) {
        (Job::Start(start, _), Applied::Start(Ok(_))) => &mut start.first,
        (Job::Transition(t, _), _) => t,
        _ => return,
    };
    if !transition.events.is_empty() {
        // No receiver left between the check and the send only drops the batch.
        let _ = feed.send(Arc::new(Committed {
            run_id: transition.run_id.clone(),
            events: std::mem::take(&mut transition.events),
        }));
    }
}

/// What applying one job produced, before it is sent back.
enum Applied {
    Start(Result<TransitionOutcome, String>),
    Transition(TransitionOutcome),
    Inbox,
    Event(Vec<String>),
}

fn apply(batch: &mut RunBatch<'_>, job: &Job) -> Result<Applied, StoreError> {
    match job {
        Job::Start(start, _) => {
            let id = start.first.run_id.as_str();
            if let Some(key) = &start.idempotency_key
                && let Some(existing) = batch.claim_idempotency_key(&start.workflow, key, id)?
            {
                return Ok(Applied::Start(Err(existing)));
            }
            batch.insert_run(
                RunIndex {
                    id,
                    workflow: &start.workflow,
                    key: start.key.as_deref(),
                },
                start.status,
                &start.run,
            )?;
            if start.status.parse().is_ok_and(RunStatus::is_finished) {
                batch.announce_finished(id)?;
            }
            Ok(Applied::Start(Ok(apply_transition(batch, &start.first)?)))
        }
        Job::Transition(t, _) => Ok(Applied::Transition(apply_transition(batch, t)?)),

        Job::Inbox {
            run_id, message, ..
        } => {
            batch.push_inbox(run_id, message)?;
            Ok(Applied::Inbox)
        }
        Job::Event {
            name,
            key,
            payload,
            actor,
            ..
        } => {
            let buffered = BufferedEvent {
                payload: payload.clone(),
                actor: Some(actor.clone()),
            };
            let reached = batch.deliver_event(name, key, &buffered.encode())?;
            let mut runs = Vec::new();
            for (run, path) in reached {
                batch.push_inbox(
                    &run,
                    &InboxMessage::Event {
                        path,
                        name: name.clone(),
                        key: key.clone(),
                        payload: payload.clone(),
                        actor: Some(actor.clone()),
                    },
                )?;
                runs.push(run);
            }
            Ok(Applied::Event(runs))
        }
    }
}

/// Writes one run's transition.
fn apply_transition(
    batch: &mut RunBatch<'_>,
    t: &TransitionJob,
) -> Result<TransitionOutcome, StoreError> {
    let run = t.run_id.as_str();
    if let Some((old, new, record)) = &t.run {
        batch.update_run(run, old, new, record)?;
        if old != new && new.parse().is_ok_and(RunStatus::is_finished) {
            batch.announce_finished(run)?;
        }
    }
    for (path, step) in &t.steps {
        batch.put_step(run, path, step)?;
    }
    for (path, from, to) in &t.queue_moves {
        batch.move_step(
            run,
            path,
            from.map(StepQueue::as_str),
            to.map(StepQueue::as_str),
        )?;
    }
    batch.append_events(run, &t.events)?;
    for timer in &t.timers_cleared {
        batch.clear_timer(timer)?;
    }
    for timer in &t.timers_set {
        batch.set_timer(timer)?;
    }
    for (name, key, path) in &t.waits_cancelled {
        batch.cancel_wait(name, key, run, path)?;
    }
    let mut outcome = TransitionOutcome::default();
    for (name, key, path) in &t.waits {
        if let Some(bytes) = batch.wait_for_event(name, key, run, path)? {
            let BufferedEvent { payload, actor } = BufferedEvent::decode(&bytes);
            batch.push_inbox(
                run,
                &InboxMessage::Event {
                    path: path.clone(),
                    name: name.clone(),
                    key: key.clone(),
                    payload,
                    actor,
                },
            )?;
            outcome.inbox_filled = true;
        }
    }
    for seq in &t.inbox_done {
        batch.remove_inbox(run, *seq)?;
    }
    for review in &t.reviews {
        batch.count_review(&review.plugin, &review.action, review.correction.is_some())?;
        if let Some(correction) = &review.correction {
            batch.add_correction(&review.plugin, &review.action, correction.get().as_bytes())?;
        }
    }
    Ok(outcome)
}

fn reply(job: Job, outcome: Result<Applied, String>) {
    // A dropped receiver means the caller stopped waiting; the write stands regardless.
    match (job, outcome) {
        (Job::Start(_, tx), Ok(Applied::Start(started))) => drop(tx.send(Ok(started))),
        (Job::Transition(_, tx), Ok(Applied::Transition(o))) => drop(tx.send(Ok(o))),
        (Job::Inbox { reply, .. }, Ok(Applied::Inbox)) => drop(reply.send(Ok(()))),
        (Job::Event { reply, .. }, Ok(Applied::Event(runs))) => drop(reply.send(Ok(runs))),
        (Job::Start(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (Job::Transition(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (Job::Inbox { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
        (Job::Event { reply, .. }, Err(e)) => drop(reply.send(Err(e))),
        (_, Ok(_)) => unreachable!("each job gets its own kind of result"),
    }
}
