//! The workflow engine: definitions, the interpreter, the scheduler and durable state.
//!
//! - [`definition`] parses YAML/JSON, [`workflow`] checks and compiles it (jq through
//!   [`expr`]);
//! - [`run`] interprets one run: a task per live run, parked (out of memory) while it
//!   only waits;
//! - [`writer`] is the single redb writer that group-commits the transitions of many
//!   runs per transaction; reads go to MVCC snapshots directly;
//! - [`timers`] wakes runs whose retries, waits and timeouts are due;
//! - [`audit`] keeps and checks each run's hash-chained event log.
//!
//! Invariants (DESIGN.md, "Durability"): a transition is committed before anything that
//! depends on it happens; a step whose completion was committed never runs again, one
//! that started but did not commit runs again with the same idempotency key; timers,
//! waits and tasks are rows in redb, not tasks in memory.

pub mod audit;
pub mod definition;
pub mod duration;
pub mod expr;
pub mod fault;
mod run;
pub mod state;
pub mod task;
mod timers;
pub mod workflow;
mod writer;

use crate::registry::{PluginRef, Registry, RegistryError};
use crate::store::{RunQuery, Store, StoreError, StoredEvent};
use definition::Format;
use duration::now_ms;
use run::{Live, WAKE_INBOX, WAKE_TIMER};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use state::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};
use workflow::{ActionInfo, Catalog, InvalidDefinition, Workflow};
use writer::{Job, StartJob, Writer, encode};

pub use run::key_string;
pub use writer::Committed;

/// Errors from the engine, each saying what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    InvalidDefinition(#[from] InvalidDefinition),
    #[error("no workflow named `{name}` is applied{}", hint(.applied))]
    UnknownWorkflow { name: String, applied: Vec<String> },
    #[error("workflow `{name}` has no version {version} (versions 1 to {latest})")]
    UnknownVersion {
        name: String,
        version: u32,
        latest: u32,
    },
    #[error("the input does not match the input_schema of workflow `{workflow}`:\n  {}", .problems.join("\n  "))]
    InvalidInput {
        workflow: String,
        problems: Vec<String>,
    },
    #[error("the business key of workflow `{workflow}` (`{expr}`): {message}")]
    InvalidKey {
        workflow: String,
        expr: String,
        message: String,
    },
    #[error("workflow `{workflow}` calls plugin `{plugin}`, which cannot be used: {source}")]
    PluginUnavailable {
        workflow: String,
        plugin: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("no run {0}")]
    UnknownRun(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Task(#[from] task::TaskRefusal),
    #[error("timed out after {0:?} waiting for the run")]
    WaitTimedOut(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the engine cannot write: {0}")]
    Writer(String),
}

fn hint(applied: &[String]) -> String {
    if applied.is_empty() {
        " (none is applied yet: `baton workflow apply FILE`)".into()
    } else {
        format!(" (applied: {})", applied.join(", "))
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Applied {
    pub name: String,
    pub version: u32,
    /// False when the same text was already the newest version.
    pub created: bool,
    pub steps: usize,
    pub plugins: Vec<String>,
}

/// A request to start a run.
#[derive(Debug, Clone, Default)]
pub struct StartRun {
    pub workflow: String,
    /// `None`: the newest version.
    pub version: Option<u32>,
    pub input: Value,
    /// The business key; `None`: computed by the workflow's `key` expression.
    pub key: Option<String>,
    pub idempotency_key: Option<String>,
    pub actor: Option<String>,
    /// Only record the run; an engine started with [`Recovery::ResumeAll`] runs it.
    pub defer: bool,
}

/// Which runs an engine drives when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Every run that was in flight, and every timer (a server or a worker).
    ResumeAll,
    /// Only runs this process starts or sends commands to (one-shot CLI commands).
    OnDemand,
}

/// A started (or, for a used idempotency key, an existing) run.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub run_id: String,
    /// True when the idempotency key was used before: nothing new was started.
    pub existing: bool,
}

/// A change of a run's status, as broadcast to watchers.
#[derive(Debug, Clone)]
pub struct RunUpdate {
    pub run_id: String,
    pub status: RunStatus,
}

/// State shared by the engine's handle and every live run.
pub(crate) struct Inner {
    store: Store,
    registry: Arc<Registry>,
    writer: Writer,
    timers: timers::Timers,
    live: Mutex<HashMap<String, Arc<Live>>>,
    workflows: Mutex<HashMap<(String, u32), Arc<Workflow>>>,
    latest: Mutex<HashMap<String, u32>>,
    updates: broadcast::Sender<RunUpdate>,
    /// Every run's events, just after they are committed.
    feed: writer::Feed,
    metrics: crate::metrics::Metrics,
    /// Callers waiting for one run's status to change; a run that finishes hands them
    /// its final view, so they need not read it back.
    waiters: Mutex<HashMap<String, Vec<Waiter>>>,
}

/// The workflow engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts the engine on the registry's store: the writer, the timers and, with
    /// [`Recovery::ResumeAll`], every run that was in flight when the process last
    /// stopped. Must be called inside a tokio runtime.
    pub fn start(registry: Arc<Registry>, recovery: Recovery) -> Result<Engine, EngineError> {
        fault::warn_if_set();
        let store = registry.store().clone();
        index_step_queues(&store)?;
        let (updates, _) = broadcast::channel(4096);
        let (feed, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            writer: Writer::start(store.clone(), feed.clone()),
            feed,
            metrics: Default::default(),
            store,
            registry,
            timers: timers::Timers::default(),
            live: Mutex::new(HashMap::new()),
            workflows: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
            updates,
            waiters: Mutex::new(HashMap::new()),
        });
        if recovery == Recovery::ResumeAll {
            for timer in inner.store.timers()? {
                inner.timers.add(timer.due_ms, &timer.run);
            }
            let mut resume = inner.store.runs_with_status(RunStatus::Running.as_str())?;
            resume.extend(inner.store.runs_with_inbox()?);
            for run in resume {
                inner.wake(&run, WAKE_INBOX);
            }
        }
        tokio::spawn(fire_timers(Arc::downgrade(&inner)));
        Ok(Engine { inner })
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// What the engine counts: step latencies, plugin call durations and failures.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Queue depths: transitions waiting for the writer, runs in memory, pending timers.
    pub fn queues(&self) -> (usize, usize, usize) {
        (
            self.inner.writer.queued(),
            self.live_runs(),
            self.inner.timers.len(),
        )
    }

    /// The plugin registry the engine calls.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    // ---- definitions ----

    /// Checks and stores a definition. `file` names it in errors and decides the format
    /// (`.json` is JSON, anything else YAML). Identical text adds no new version.
    pub fn apply(&self, file: &str, source: &str) -> Result<Applied, EngineError> {
        let format = Format::from_file_name(file);
        let catalog = Installed(&self.inner.registry);
        let compiled = workflow::compile(file, source, format, 0, Some(&catalog))?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(source.as_bytes())));
        let name = compiled.name.clone();
        let (version, created) = self.inner.store.add_workflow_version(
            &name,
            |existing: &WorkflowRecord| existing.source_digest == digest,
            |version| WorkflowRecord {
                name: name.clone(),
                version,
                file: file.to_owned(),
                format,
                source: source.to_owned(),
                source_digest: digest.clone(),
                applied_at_ms: now_ms(),
            },
        )?;
        let applied = Applied {
            name: name.clone(),
            version,
            created,
            steps: compiled.steps.len(),
            plugins: compiled.plugins.iter().cloned().collect(),
        };
        let compiled = Workflow {
            version,
            ..compiled
        };
        self.inner
            .workflows
            .lock()
            .expect("workflows lock")
            .insert((name.clone(), version), Arc::new(compiled));
        self.inner
            .latest
            .lock()
            .expect("latest lock")
            .insert(name, version);
        Ok(applied)
    }

    /// The newest version of every workflow.
    pub fn workflows(&self) -> Result<Vec<WorkflowRecord>, EngineError> {
        Ok(self.inner.store.latest_workflows()?)
    }

    /// Every version of workflow `name`, oldest first.
    pub fn workflow_versions(&self, name: &str) -> Result<Vec<WorkflowRecord>, EngineError> {
        let versions: Vec<WorkflowRecord> = self.inner.store.workflow_versions(name)?;
        if versions.is_empty() {
            return Err(self.inner.unknown_workflow(name));
        }
        Ok(versions)
    }

    // ---- runs ----

    /// Starts a run. The input is checked against the workflow's schema and the business
    /// key computed before anything is written; a used idempotency key returns the run
    /// that used it.
    pub async fn start_run(&self, request: StartRun) -> Result<Started, EngineError> {
        Ok(self.launch_run(request, false).await?.0)
    }

    /// Starts a run as [`Engine::start_run`] does, then waits up to `limit` for it to
    /// settle as [`Engine::wait_for`] does; `None` if it has not settled by then. A new
    /// run is watched from before its actor starts, so its final view comes from memory
    /// with no read of the store.
    pub async fn start_run_and_wait(
        &self,
        request: StartRun,
        limit: Duration,
    ) -> Result<(Started, Option<RunView>), EngineError> {
        let deadline = tokio::time::Instant::now() + limit;
        let (started, watched) = self.launch_run(request, true).await?;
        match self
            .settle_by(&started.run_id, deadline, limit, watched)
            .await
        {
            Ok(view) => Ok((started, Some(view))),
            Err(EngineError::WaitTimedOut(_)) => Ok((started, None)),
            Err(e) => Err(e),
        }
    }

    /// Starts a run; with `watch`, also the first change of a new run's status that
    /// follows its first commit (see [`Inner::tell_waiters`]), where that change is sure
    /// to be announced: a run that is running, or finished at once.
    async fn launch_run(
        &self,
        request: StartRun,
        watch: bool,
    ) -> Result<(Started, Option<oneshot::Receiver<Option<RunView>>>), EngineError> {
        let inner = &self.inner;
        let workflow = inner.workflow(&request.workflow, request.version)?;
        if let Some(schema) = &workflow.input_schema {
            let problems = crate::registry::schema::violations(schema, &request.input);
            if !problems.is_empty() {
                return Err(EngineError::InvalidInput {
                    workflow: workflow.name.clone(),
                    problems,
                });
            }
        }
        let key = match (&request.key, &workflow.key) {
            (Some(key), _) => Some(key.clone()),
            (None, None) => None,
            (None, Some(expr)) => {
                let context = expr::object([(expr::string("input"), expr::to_val(&request.input))]);
                let invalid = |message: String| EngineError::InvalidKey {
                    workflow: workflow.name.clone(),
                    expr: expr.source().to_owned(),
                    message,
                };
                let value = expr
                    .eval(&context)
                    .and_then(|v| expr::to_json(&v))
                    .map_err(invalid)?;
                match value {
                    Value::Null => None,
                    value => Some(key_string(&value).map_err(invalid)?),
                }
            }
        };
        let mut plugins = BTreeMap::new();
        for reference in &workflow.plugins {
            let unavailable = |source| EngineError::PluginUnavailable {
                workflow: workflow.name.clone(),
                plugin: reference.clone(),
                source: Box::new(source),
            };
            let target: PluginRef = reference.parse().map_err(unavailable)?;
            let (version, digest) = inner.registry.pin(&target).map_err(unavailable)?;
            plugins.insert(reference.clone(), PinnedPlugin { version, digest });
        }
        let now = now_ms();
        let run = RunRecord {
            id: new_run_id(now),
            workflow: workflow.name.clone(),
            version: workflow.version,
            key,
            status: RunStatus::Running,
            input: request.input,
            output: None,
            failure: None,
            plugins,
            idempotency_key: request.idempotency_key.clone(),
            started_by: request.actor.clone(),
            created_ms: now,
            finished_ms: None,
        };
        let mut new_run = run::NewRun::new(
            inner.clone(),
            workflow.clone(),
            run,
            request.actor,
            request.defer,
        );
        let (record, first) = new_run.changes();
        let job = StartJob {
            workflow: record.workflow.clone(),
            key: record.key.clone(),
            idempotency_key: request.idempotency_key,
            status: record.status.as_str(),
            run: encode(record),
            first,
        };
        let run_id = record.id.clone();
        if !request.defer {
            inner.adopt(&run_id, new_run.handle());
        }
        let (tx, rx) = oneshot::channel();
        let submitted = inner.submit(Job::Start(job, tx), rx).await;
        if !matches!(submitted, Ok(Ok(_))) {
            // Nothing was started: the run must not stay registered as live.
            inner.forget(&run_id, &new_run.handle());
        }
        let outcome = match submitted? {
            Ok(outcome) => outcome,
            Err(existing) => {
                let started = Started {
                    run_id: existing,
                    existing: true,
                };
                return Ok((started, None));
            }
        };
        let mut watched = None;
        if !request.defer {
            // A parked run announces nothing until it moves again: `wait_for` handles it.
            let status = new_run.status();
            if watch && (status == RunStatus::Running || status.is_finished()) {
                watched = Some(inner.add_waiter(&run_id));
            }
            new_run.spawn(outcome.inbox_filled);
        }
        let started = Started {
            run_id,
            existing: false,
        };
        Ok((started, watched))
    }

    /// A run with all its steps.
    pub fn run(&self, id: &str) -> Result<RunView, EngineError> {
        let (run, steps, _) = self
            .inner
            .store
            .run_state::<RunRecord, StepRecord>(id)?
            .ok_or_else(|| EngineError::UnknownRun(id.to_owned()))?;
        Ok(RunView::new(run, steps))
    }

    /// Runs matching the filters, newest first.
    pub fn runs(
        &self,
        status: Option<RunStatus>,
        workflow: Option<&str>,
        key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, EngineError> {
        let query = RunQuery {
            status: status.map(|s| s.as_str().to_owned()),
            workflow: workflow.map(str::to_owned),
            key: key.map(str::to_owned),
            limit,
        };
        Ok(self.inner.store.list_runs(&query, |r: &RunRecord| {
            status.is_none_or(|s| r.status == s)
                && workflow.is_none_or(|w| r.workflow == w)
                && key.is_none_or(|k| r.key.as_deref() == Some(k))
        })?)
    }

    /// How many runs have each status, every status listed.
    pub fn run_counts(&self) -> Result<Vec<(RunStatus, u64)>, EngineError> {
        let counts = self.inner.store.count_by_status()?;
        Ok(RunStatus::ALL
            .into_iter()
            .map(|status| {
                let n = counts
                    .iter()
                    .find(|(name, _)| name == status.as_str())
                    .map_or(0, |(_, n)| *n);
                (status, n)
            })
            .collect())
    }

    /// Every run with a step in `queue`, with its steps, oldest first.
    fn runs_in_queue(&self, queue: StepQueue) -> Result<Vec<RunView>, EngineError> {
        self.inner
            .store
            .runs_in_queue(queue.as_str())?
            .iter()
            .map(|id| self.run(id))
            .collect()
    }

    /// The exception queue: every escalated step, oldest run first.
    pub fn exceptions(&self) -> Result<Vec<ExceptionView>, EngineError> {
        let mut out = Vec::new();
        for RunView { run, steps } in self.runs_in_queue(StepQueue::Exception)? {
            for step in steps {
                if step.record.status == StepStatus::Escalated {
                    out.push(ExceptionView {
                        run_id: run.id.clone(),
                        workflow: run.workflow.clone(),
                        key: run.key.clone(),
                        path: step.path,
                        step: step.record,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Waits until run `id` is no longer running (finished, or waiting or paused with no
    /// message left to handle).
    pub async fn wait_for(&self, id: &str, limit: Duration) -> Result<RunView, EngineError> {
        let deadline = tokio::time::Instant::now() + limit;
        self.settle_by(id, deadline, limit, None).await
    }

    /// [`Engine::wait_for`] until `deadline`. `watched`: a waiter registered while the
    /// run was known to be unsettled, so the first look needs no read of the store.
    async fn settle_by(
        &self,
        id: &str,
        deadline: tokio::time::Instant,
        limit: Duration,
        mut watched: Option<oneshot::Receiver<Option<RunView>>>,
    ) -> Result<RunView, EngineError> {
        loop {
            let rx = match watched.take() {
                Some(rx) => rx,
                None => {
                    // Register before reading, so a change between the two is not missed.
                    let rx = self.inner.add_waiter(id);
                    let run: RunRecord = self
                        .inner
                        .store
                        .run(id)?
                        .ok_or_else(|| EngineError::UnknownRun(id.to_owned()))?;
                    // A parked run with a message waiting (an event that was already
                    // buffered, a resume) is about to go on.
                    let settled = run.status != RunStatus::Running
                        && (run.status.is_finished() || !self.inner.store.has_inbox(id)?);
                    if settled {
                        return self.run(id);
                    }
                    rx
                }
            };
            match tokio::time::timeout_at(deadline, rx).await {
                Err(_) => return Err(EngineError::WaitTimedOut(limit)),
                Ok(Ok(Some(finished))) => return Ok(finished),
                Ok(_) => {}
            }
        }
    }

    /// Status changes of every run, as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<RunUpdate> {
        self.inner.updates.subscribe()
    }

    /// How many transactions the writer has committed since the engine started; every
    /// change to a run is in one of them. A view read when the count was N is current
    /// while the count is N (a commit that changed no run also moves it, so a stale
    /// verdict can be spurious, never missing); subscribe to [`Engine::events`] first,
    /// then compare, and no commit in between is missed.
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    /// Events of every run, published as soon as they are committed, in commit order
    /// (each run's in sequence). A receiver that falls too far behind is told it lagged
    /// and can read what it missed from [`Engine::run_log`].
    pub fn events(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.inner.feed.subscribe()
    }

    /// Run `id`'s event log as stored, oldest first.
    pub fn run_log(&self, id: &str) -> Result<Vec<StoredEvent>, EngineError> {
        let (events, _) = self.inner.store.run_events(id)?;
        if events.is_empty() && self.inner.store.run::<RunRecord>(id)?.is_none() {
            return Err(EngineError::UnknownRun(id.to_owned()));
        }
        Ok(events)
    }

    /// Resolves when no run is live and no timer is pending.
    pub async fn until_idle(&self) -> Result<(), EngineError> {
        loop {
            let idle = self.inner.live.lock().expect("live lock").is_empty()
                && !self.inner.store.has_timers()?;
            if idle {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Resolves when run `id` is out of memory: finished, or parked until something
    /// (a timer, an event, a person) wakes it.
    pub async fn settle(&self, id: &str) {
        while self.inner.live.lock().expect("live lock").contains_key(id) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// How many runs are in memory now (the others are parked on disk).
    pub fn live_runs(&self) -> usize {
        self.inner.live.lock().expect("live lock").len()
    }

    // ---- events, decisions and operator commands ----

    /// Delivers an external event from `actor` to the steps waiting for `(name, key)`,
    /// or buffers it for the first step that will. Returns the runs it reached.
    pub async fn send_event(
        &self,
        name: &str,
        key: &str,
        payload: Value,
        actor: &str,
    ) -> Result<Vec<String>, EngineError> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Event {
            name: name.to_owned(),
            key: key.to_owned(),
            payload,
            actor: actor.to_owned(),
            reply: tx,
        };
        let runs = self.inner.submit(job, rx).await?;
        for run in &runs {
            self.inner.wake(run, WAKE_INBOX);
        }
        Ok(runs)
    }

    /// Records a person's decision on the human task at `path`: checked now against the
    /// task as stored (and again by the run when it acts on it).
    pub async fn decide(
        &self,
        run: &str,
        path: &str,
        person: task::Person,
        decision: task::Decision,
    ) -> Result<(), EngineError> {
        let (id, task, workflow) = self.waiting_task(run, path)?;
        let workflow::StepKind::Human(human) = &workflow.steps[&id].kind else {
            return Err(task::TaskRefusal::NotATask(path.to_owned()).into());
        };
        task.check_decision(&person, &decision, &human.outcomes)?;
        if let Some(form) = &human.form {
            // The form compiled when the definition was applied.
            let problems = crate::registry::schema::compile(form)
                .map(|v| crate::registry::schema::violations(&v, &decision.data))
                .unwrap_or_default();
            if !problems.is_empty() {
                return Err(task::TaskRefusal::InvalidData(problems).into());
            }
        }
        let path = path.to_owned();
        self.command(
            run,
            InboxMessage::Decision {
                path,
                person,
                decision,
            },
        )
        .await
    }

    /// Claims the human task at `path` for `person`, or with `claim == false` releases it.
    pub async fn claim(
        &self,
        run: &str,
        path: &str,
        person: task::Person,
        claim: bool,
    ) -> Result<(), EngineError> {
        let (_, mut task, _) = self.waiting_task(run, path)?;
        let path = path.to_owned();
        let message = if claim {
            task.claim(&person)?;
            InboxMessage::Claim { path, person }
        } else {
            task.unclaim(&person)?;
            InboxMessage::Unclaim { path, person }
        };
        self.command(run, message).await
    }

    /// The step id and task of the human step waiting at `path`, and the workflow
    /// version the run follows.
    fn waiting_task(
        &self,
        run: &str,
        path: &str,
    ) -> Result<(String, task::TaskState, Arc<Workflow>), EngineError> {
        let view = self.run(run)?;
        let step =
            view.steps.into_iter().find(|s| s.path == path).filter(|s| {
                s.record.status == StepStatus::Waiting && !view.run.status.is_finished()
            });
        let Some(StepView {
            record:
                StepRecord {
                    id,
                    task: Some(task),
                    ..
                },
            ..
        }) = step
        else {
            return Err(task::TaskRefusal::NotATask(path.to_owned()).into());
        };
        let workflow = self
            .inner
            .workflow(&view.run.workflow, Some(view.run.version))?;
        Ok((id, task, workflow))
    }

    /// Every waiting human task, oldest run first; with `person`, only those they could
    /// decide now (assigned to them, not barred by segregation of duties, not claimed by
    /// someone else, not already approved by them).
    pub fn tasks(&self, person: Option<&task::Person>) -> Result<Vec<TaskView>, EngineError> {
        let mut out = Vec::new();
        for RunView { run, steps } in self.runs_in_queue(StepQueue::Task)? {
            let workflow = self.inner.workflow(&run.workflow, Some(run.version))?;
            for step in steps {
                let (StepStatus::Waiting, Some(task)) = (step.record.status, step.record.task)
                else {
                    continue;
                };
                if person.is_some_and(|p| !task.actionable_by(p)) {
                    continue;
                }
                let Some(workflow::StepKind::Human(human)) =
                    workflow.steps.get(&step.record.id).map(|s| &s.kind)
                else {
                    continue;
                };
                let review_schema = task
                    .review
                    .as_ref()
                    .and_then(|review| self.review_schema(&run, review));
                out.push(TaskView {
                    run_id: run.id.clone(),
                    workflow: run.workflow.clone(),
                    key: run.key.clone(),
                    path: step.path,
                    outcomes: human.outcomes.clone(),
                    form: human.form.clone(),
                    review_schema,
                    input: step.record.input,
                    opened_ms: step.record.scheduled_ms,
                    task,
                });
            }
        }
        Ok(out)
    }

    /// The JSON Schema of a reviewed output: the action's, in the plugin version the run
    /// pinned. `None` if that version is gone.
    fn review_schema(&self, run: &RunRecord, review: &task::Review) -> Option<serde_json::Value> {
        let pinned = run.plugins.get(&review.plugin)?;
        let target: PluginRef = format!("{}@{}", review.plugin, pinned.version)
            .parse()
            .ok()?;
        let record = self.inner.registry.resolve(&target).ok()?;
        Some(
            record
                .manifest
                .action(&review.action)?
                .output_schema
                .clone(),
        )
    }

    /// Sends an operator command (cancel, pause, resume, retry, resolve, restart) to a
    /// run. The command is stored before the run acts on it; one the run can no longer
    /// act on is recorded in its log as refused.
    pub async fn command(&self, run: &str, message: InboxMessage) -> Result<(), EngineError> {
        let record: RunRecord = self
            .inner
            .store
            .run(run)?
            .ok_or_else(|| EngineError::UnknownRun(run.to_owned()))?;
        check_command(&record, &message)?;
        let (tx, rx) = oneshot::channel();
        let job = Job::Inbox {
            run_id: run.to_owned(),
            message,
            reply: tx,
        };
        self.inner.submit(job, rx).await?;
        self.inner.wake(run, WAKE_INBOX);
        Ok(())
    }
}

/// Fills the step queue index from the unfinished runs, once per database: databases
/// made before the index have tasks and exceptions in them that it does not list (a
/// finished run has closed every step). Runs before the writer starts, so nothing else
/// writes meanwhile.
fn index_step_queues(store: &Store) -> Result<(), EngineError> {
    let unfinished = RunStatus::ALL.into_iter().filter(|s| !s.is_finished());
    store.write_runs_once("step_queues", |batch| {
        for status in unfinished {
            for id in store.runs_with_status(status.as_str())? {
                let Some((_, steps, _)) = store.run_state::<RunRecord, StepRecord>(&id)? else {
                    continue;
                };
                for (path, step) in steps {
                    batch.move_step(&id, &path, None, step.queue().map(StepQueue::as_str))?;
                }
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Refuses commands that cannot apply to a run in its current status, before anything
/// is stored. (The run checks again when it acts: its state may have moved on.)
fn check_command(run: &RunRecord, message: &InboxMessage) -> Result<(), EngineError> {
    let command = match message {
        InboxMessage::Cancel { .. } => "cancel",
        InboxMessage::Pause { .. } => "pause",
        InboxMessage::Resume { .. } => "resume",
        InboxMessage::Restart { .. } => "restart",
        _ => return Ok(()),
    };
    match command_refusal(run.status, command) {
        Some(why) => Err(EngineError::Conflict(format!(
            "run {} is {}; {why}",
            run.id, run.status
        ))),
        None => Ok(()),
    }
}

/// Why a run with `status` refuses the steering `command` (`cancel`, `pause`,
/// `resume`, `restart`), if it does. (A retry depends on the step, not the run.)
pub fn command_refusal(status: RunStatus, command: &str) -> Option<&'static str> {
    match command {
        "cancel" if status.is_finished() => Some("only an unfinished run can be cancelled"),
        "pause" if status.is_finished() || status == RunStatus::Paused => {
            Some("only a running or waiting run can be paused")
        }
        "resume" if status != RunStatus::Paused => Some("only a paused run can be resumed"),
        "restart" if status == RunStatus::Cancelled => Some("a cancelled run cannot be restarted"),
        _ => None,
    }
}

impl Inner {
    /// Sends a job to the writer and waits for its commit.
    async fn submit<T>(
        &self,
        job: Job,
        rx: oneshot::Receiver<Result<T, String>>,
    ) -> Result<T, EngineError> {
        if !self.writer.send(job) {
            return Err(EngineError::Writer("the writer has stopped".into()));
        }
        rx.await
            .map_err(|_| EngineError::Writer("the writer has stopped".into()))?
            .map_err(EngineError::Writer)
    }

    /// Makes sure run `id` is live and tells it why it was woken.
    fn wake(self: &Arc<Self>, id: &str, flags: u8) {
        let mut live = self.live.lock().expect("live lock");
        if let Some(handle) = live.get(id) {
            handle.wake(flags);
            return;
        }
        let handle = Arc::new(Live::new(flags));
        live.insert(id.to_owned(), handle.clone());
        drop(live);
        tokio::spawn(run::drive(self.clone(), id.to_owned(), handle));
    }

    /// Registers a run being created as live, before its start is committed, so a wake
    /// that arrives in between reaches its actor instead of starting a second one.
    fn adopt(&self, id: &str, handle: Arc<Live>) {
        self.live
            .lock()
            .expect("live lock")
            .insert(id.to_owned(), handle);
    }

    /// Takes a run out of memory unless it was woken meanwhile. True if it may stop.
    fn park(&self, id: &str, handle: &Arc<Live>) -> bool {
        let mut live = self.live.lock().expect("live lock");
        if handle.pending() {
            return false;
        }
        remove_own(&mut live, id, handle);
        true
    }

    /// Forgets a run whose actor stops without parking (it stays as last committed).
    fn forget(&self, id: &str, handle: &Arc<Live>) {
        remove_own(&mut self.live.lock().expect("live lock"), id, handle);
    }

    /// Tells the status streams that run `id` has a new status.
    fn announce(&self, id: &str, status: RunStatus) {
        if self.updates.receiver_count() > 0 {
            let _ = self.updates.send(RunUpdate {
                run_id: id.to_owned(),
                status,
            });
        }
    }

    /// Registers a caller waiting for run `id`'s next change; see [`Inner::tell_waiters`].
    fn add_waiter(&self, id: &str) -> oneshot::Receiver<Option<RunView>> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters lock")
            .entry(id.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    /// Tells `wait_for` callers of run `id` to look again.
    fn wake_waiters(&self, id: &str) {
        tell(self.take_waiters(id), None);
    }

    /// Takes the `wait_for` callers of run `id` out of the list, to be told by the
    /// caller (with [`tell`]).
    fn take_waiters(&self, id: &str) -> Vec<Waiter> {
        self.waiters
            .lock()
            .expect("waiters lock")
            .remove(id)
            .unwrap_or_default()
    }

    fn unknown_workflow(&self, name: &str) -> EngineError {
        let applied = self
            .store
            .latest_workflows::<WorkflowRecord>()
            .map(|all| all.into_iter().map(|w| w.name).collect())
            .unwrap_or_default();
        EngineError::UnknownWorkflow {
            name: name.to_owned(),
            applied,
        }
    }

    /// A compiled workflow version (`None`: the newest), from memory or the store.
    fn workflow(&self, name: &str, version: Option<u32>) -> Result<Arc<Workflow>, EngineError> {
        let version = match version {
            Some(v) => v,
            None => {
                let cached = self.latest.lock().expect("latest lock").get(name).copied();
                match cached {
                    Some(v) => v,
                    None => {
                        let versions: Vec<WorkflowRecord> = self.store.workflow_versions(name)?;
                        let latest = versions
                            .last()
                            .ok_or_else(|| self.unknown_workflow(name))?
                            .version;
                        self.latest
                            .lock()
                            .expect("latest lock")
                            .insert(name.to_owned(), latest);
                        latest
                    }
                }
            }
        };
        let key = (name.to_owned(), version);
        if let Some(w) = self.workflows.lock().expect("workflows lock").get(&key) {
            return Ok(w.clone());
        }
        let record: WorkflowRecord = match self.store.workflow(name, version)? {
            Some(r) => r,
            None => {
                let versions: Vec<WorkflowRecord> = self.store.workflow_versions(name)?;
                return Err(match versions.last() {
                    Some(last) => EngineError::UnknownVersion {
                        name: name.to_owned(),
                        version,
                        latest: last.version,
                    },
                    None => self.unknown_workflow(name),
                });
            }
        };
        // Checked against the plugins when it was applied; runs call pinned versions.
        let compiled = Arc::new(workflow::compile(
            &record.file,
            &record.source,
            record.format,
            version,
            None,
        )?);
        self.workflows
            .lock()
            .expect("workflows lock")
            .insert(key, compiled.clone());
        Ok(compiled)
    }
}

/// A `wait_for` caller: told the final view of a finished run, or `None` (look again).
type Waiter = oneshot::Sender<Option<RunView>>;

/// Tells `waiters` what `view` is. Usually there is one (a synchronous trigger): the
/// last gets the view itself, not a copy. A waiter that gave up has dropped its
/// receiver.
fn tell(waiters: Vec<Waiter>, view: Option<RunView>) {
    let mut waiters = waiters.into_iter();
    let last = waiters.next_back();
    for waiter in waiters {
        let _ = waiter.send(view.clone());
    }
    if let Some(waiter) = last {
        let _ = waiter.send(view);
    }
}

/// Removes `id`'s entry only if it is `handle`: never another actor's.
fn remove_own(live: &mut HashMap<String, Arc<Live>>, id: &str, handle: &Arc<Live>) {
    if live.get(id).is_some_and(|h| Arc::ptr_eq(h, handle)) {
        live.remove(id);
    }
}

/// Wakes runs as their timers fall due. Ends with the engine.
async fn fire_timers(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let (due, next) = strong.timers.take_due(now_ms());
        for run in due {
            strong.wake(&run, WAKE_TIMER);
        }
        let wait = next.map_or(Duration::from_secs(1), |at| {
            Duration::from_millis(at.saturating_sub(now_ms()).clamp(1, 1000))
        });
        let changed = async {
            strong.timers.changed().await;
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed => {}
        }
    }
}

/// The registry as the workflow compiler's catalog of installed actions.
struct Installed<'a>(&'a Registry);

impl Catalog for Installed<'_> {
    fn action(&self, plugin: &str, action: &str) -> Result<ActionInfo, String> {
        let target: PluginRef = plugin.parse().map_err(|e: RegistryError| e.to_string())?;
        let record = self.0.resolve(&target).map_err(|e| e.to_string())?;
        let spec = record
            .manifest
            .actions
            .iter()
            .find(|a| a.name == action)
            .ok_or_else(|| {
                let actions: Vec<&str> = record
                    .manifest
                    .actions
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect();
                format!(
                    "plugin `{plugin}` has no action `{action}` (its actions: {})",
                    actions.join(", ")
                )
            })?;
        Ok(ActionInfo {
            kind: record.manifest.kind,
            input_schema: spec.input_schema.clone(),
            outcomes: spec.outcomes.clone(),
        })
    }
}

/// A run id: 48 bits of milliseconds and 80 random bits in Crockford base32 (a ULID), so
/// ids sort by start time.
fn new_run_id(now_ms: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let random = u128::from(getrandom::u64().unwrap_or(0)) << 16
        | u128::from(getrandom::u32().unwrap_or(0) & 0xFFFF);
    let value = (u128::from(now_ms & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1u128 << 80) - 1));
    (0..26)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id(1_000);
        let b = new_run_id(2_000);
        assert_eq!(a.len(), 26);
        assert!(a < b);
    }
}
