//! The interpreter of one run: walks the step graph from the persisted state, commits
//! every transition before acting on it, and parks (leaving memory) when all it can do
//! is wait.
//!
//! One task per live run owns that run's state; nothing else changes it. Commands from
//! outside (decisions, events, operator actions) arrive through the run's durable inbox.

use super::audit::{EventKind, chain, head_of};
use super::duration::{format_ms, now_ms, parse_time};
use super::expr::{
    Template, Val, field, object, set_nested_field, string, to_json, to_val, walk_json, with_field,
};
use super::state::*;
use super::task::{Decision, Person, Review, Tally, TaskRefusal, TaskState, user_of};
use super::workflow::{
    Effects, HumanTask, Next, NotBy, OnError, Step, StepKind, Target, WaitKind, Workflow,
};
use super::writer::{Job, ReviewJob, TransitionJob, TransitionOutcome, encode};
use super::{Inner, Waiter, tell};
use crate::registry::{CallReport, Pin};
use crate::runtime::{CallContext, Failure, Network};
use crate::store::CorrectionRecord;
use crate::store::{EventHead, TimerEntry};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::{Notify, oneshot};

/// Why a live run was woken.
pub const WAKE_INBOX: u8 = 1;
pub const WAKE_TIMER: u8 = 2;

/// The handle through which a live run is woken.
pub struct Live {
    flags: AtomicU8,
    notify: Notify,
}

impl Live {
    pub fn new(flags: u8) -> Live {
        Live {
            flags: AtomicU8::new(flags),
            notify: Notify::new(),
        }
    }

    pub fn wake(&self, flags: u8) {
        self.flags.fetch_or(flags, Ordering::AcqRel);
        self.notify.notify_one();
    }

    pub fn pending(&self) -> bool {
        self.flags.load(Ordering::Acquire) != 0
    }

    fn take(&self) -> u8 {
        self.flags.swap(0, Ordering::AcqRel)
    }
}

/// A run's persisted state, as loaded or as just created.
pub struct Loaded {
    pub run: RunRecord,
    pub steps: Vec<(String, StepRecord)>,
    pub head: Option<EventHead>,
}

/// A finished plugin call.
struct CallDone {
    path: String,
    generation: u32,
    attempt: u32,
    result: Result<CallReport, Failure>,
}

struct Actor {
    inner: Arc<Inner>,
    live: Arc<Live>,
    workflow: Arc<Workflow>,
    run: RunRecord,
    persisted_status: RunStatus,
    run_dirty: bool,
    steps: HashMap<String, StepRecord>,
    /// Paths of open steps.
    open: BTreeSet<String>,
    /// The queue each step waiting for a person is in, as committed.
    queued: HashMap<String, StepQueue>,
    head: Option<EventHead>,
    /// jq contexts by path prefix, built lazily.
    scopes: HashMap<String, Val>,
    job: TransitionJob,
    dirty: BTreeSet<String>,
    /// Attempts committed as started, to launch after the commit.
    launches: Vec<String>,
    new_timers: Vec<u64>,
    /// Plugin calls in flight, polled by this run's own task (no task per call).
    inflight: FuturesUnordered<BoxFuture<'static, CallDone>>,
    /// Inbox messages handled but not yet committed as handled.
    inbox_seen: BTreeSet<u64>,
    /// Callers waiting for the run's end when it was committed, still to be given the
    /// final view: by [`Actor::hand_over`] if the actor parks straight after, which
    /// moves the state instead of copying it; by [`Actor::tell_finished`] otherwise.
    finished_waiters: Vec<Waiter>,
}

/// A run being created: its first transitions are computed before anything is written,
/// so the run's creation and its first step's start share one commit.
pub struct NewRun {
    actor: Actor,
}

impl NewRun {
    /// Records `run` as started and schedules its first step; unless `defer`, starts
    /// that step too (in memory, to be committed with the run).
    pub fn new(
        inner: Arc<Inner>,
        workflow: Arc<Workflow>,
        run: RunRecord,
        actor: Option<String>,
        defer: bool,
    ) -> NewRun {
        let loaded = Loaded {
            run,
            steps: Vec::new(),
            head: None,
        };
        let mut actor_state = Actor::new(inner, Arc::new(Live::new(0)), workflow.clone(), loaded);
        actor_state.event(EventKind::RunStarted {
            workflow: actor_state.run.workflow.clone(),
            version: actor_state.run.version,
            key: actor_state.run.key.clone(),
            input: actor_state.run.input.clone(),
            actor,
        });
        actor_state.schedule(&workflow.first, None);
        if !defer {
            actor_state.advance();
        }
        NewRun { actor: actor_state }
    }

    /// The handle that wakes this run once it is live.
    pub fn handle(&self) -> Arc<Live> {
        self.actor.live.clone()
    }

    /// The run record, encoded, and its first transition.
    pub fn changes(&mut self) -> (&RunRecord, TransitionJob) {
        let (mut job, _) = self.actor.take_changes();
        job.run = None;
        (&self.actor.run, job)
    }

    /// The run's status after its first transition.
    pub fn status(&self) -> RunStatus {
        self.actor.run.status
    }

    /// After the commit: makes the run live and lets it go on (calls its first step).
    /// `inbox_filled`: the commit found a buffered event for the first step.
    pub fn spawn(mut self, inbox_filled: bool) {
        // A run can finish in its first transition (a branch straight to `end`).
        let finished = self.actor.run.status.is_finished();
        self.actor.committed(finished, false);
        if inbox_filled {
            self.actor.live.wake(WAKE_INBOX);
        }
        let mut actor = self.actor;
        actor.launch();
        tokio::spawn(actor.drive());
    }
}

/// Loads run `id` and drives it until it parks or finishes.
pub async fn drive(inner: Arc<Inner>, id: String, live: Arc<Live>) {
    let loaded = match inner.store.run_state::<RunRecord, StepRecord>(&id) {
        Ok(Some((run, steps, head))) => Loaded { run, steps, head },
        Ok(None) => return inner.forget(&id, &live),
        Err(e) => {
            eprintln!("baton: run {id}: cannot load its state: {e}");
            return inner.forget(&id, &live);
        }
    };
    let workflow = match inner.workflow(&loaded.run.workflow, Some(loaded.run.version)) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("baton: run {id}: cannot load its workflow: {e}");
            return inner.forget(&id, &live);
        }
    };
    Actor::new(inner, live, workflow, loaded).drive().await
}

impl Actor {
    fn new(inner: Arc<Inner>, live: Arc<Live>, workflow: Arc<Workflow>, loaded: Loaded) -> Actor {
        let open = loaded
            .steps
            .iter()
            .filter(|(_, s)| s.status.is_open())
            .map(|(p, _)| p.clone())
            .collect();
        let queued = loaded
            .steps
            .iter()
            .filter_map(|(p, s)| Some((p.clone(), s.queue()?)))
            .collect();
        let mut actor = Actor {
            inner,
            live,
            workflow,
            persisted_status: loaded.run.status,
            run: loaded.run,
            run_dirty: false,
            steps: loaded.steps.into_iter().collect(),
            open,
            queued,
            head: loaded.head,
            scopes: HashMap::new(),
            job: TransitionJob::default(),
            dirty: BTreeSet::new(),
            launches: Vec::new(),
            new_timers: Vec::new(),
            inflight: FuturesUnordered::new(),
            inbox_seen: BTreeSet::new(),
            finished_waiters: Vec::new(),
        };
        actor.recover_interrupted();
        actor
    }

    /// Runs until the run parks or finishes. A storage failure stops it; its state stays
    /// as last committed, and the next start of the engine resumes it from there.
    async fn drive(mut self) {
        match self.run().await {
            Ok(()) => self.hand_over(),
            Err(e) => self.stopped(&e),
        }
    }

    fn stopped(&mut self, e: &str) {
        let id = &self.run.id;
        eprintln!(
            "baton: run {id} stopped; it continues from its last committed state after a restart: {e}"
        );
        self.inflight.clear();
        self.inner.forget(id, &self.live);
        // Waiters not told see their channel close and read the run from the store.
    }

    /// After parking: gives the waiters of the run's end the final view, made of the
    /// actor's own state, which nothing needs any more.
    fn hand_over(mut self) {
        if self.finished_waiters.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.finished_waiters);
        tell(waiters, Some(RunView::new(self.run, self.steps)));
    }

    /// Gives the waiters of the run's end a copy of the final view, before the actor
    /// goes on (a message came in, or calls are still in flight).
    fn tell_finished(&mut self) {
        if self.finished_waiters.is_empty() {
            return;
        }
        let steps = self.steps.iter().map(|(p, s)| (p.clone(), s.clone()));
        let view = RunView::new(self.run.clone(), steps);
        tell(std::mem::take(&mut self.finished_waiters), Some(view));
    }

    async fn run(&mut self) -> Result<(), String> {
        loop {
            if self.live.take() & WAKE_INBOX != 0 {
                // The run's end is told as committed, before a message changes anything.
                self.tell_finished();
                self.absorb_inbox()?;
            }
            self.advance();
            self.decide_effect_free().await;
            if self.has_changes() {
                let outcome = self.commit().await?;
                if outcome.inbox_filled {
                    self.live.wake(WAKE_INBOX);
                }
            }
            self.launch();
            if self.inflight.is_empty()
                && !self.live.pending()
                && self.inner.park(&self.run.id, &self.live)
            {
                return Ok(());
            }
            self.tell_finished();
            if self.inflight.is_empty() {
                continue;
            }
            tokio::select! {
                Some(done) = self.inflight.next() => {
                    self.finish_call(done);
                    // Others that finished meanwhile go into the same commit.
                    while let Some(Some(done)) = self.inflight.next().now_or_never() {
                        self.finish_call(done);
                    }
                }
                _ = self.live.notify.notified() => {}
            }
        }
    }

    // ---- persistence ----

    fn has_changes(&self) -> bool {
        self.run_dirty
            || !self.dirty.is_empty()
            || !self.job.events.is_empty()
            || !self.job.inbox_done.is_empty()
    }

    fn event(&mut self, kind: EventKind) {
        let event = chain(self.head.as_ref(), now_ms(), kind);
        self.head = Some(head_of(&event));
        self.job.events.push(event);
    }

    async fn commit(&mut self) -> Result<TransitionOutcome, String> {
        let (job, status_changed) = self.take_changes();
        let handled_inbox = !job.inbox_done.is_empty();
        let (tx, rx) = oneshot::channel();
        if !self.inner.writer.send(Job::Transition(job, tx)) {
            return Err("the writer has stopped".into());
        }
        let outcome = rx
            .await
            .map_err(|_| "the writer has stopped".to_owned())??;
        self.committed(status_changed, handled_inbox);
        Ok(outcome)
    }

    /// Everything changed since the last commit, as one job; and whether the run's
    /// status changed.
    fn take_changes(&mut self) -> (TransitionJob, bool) {
        let mut job = std::mem::take(&mut self.job);
        job.run_id = self.run.id.clone();
        for path in std::mem::take(&mut self.dirty) {
            if let Some(step) = self.steps.get(&path) {
                let (was, is) = (self.queued.get(&path).copied(), step.queue());
                if was != is {
                    job.queue_moves.push((path.clone(), was, is));
                    match is {
                        Some(queue) => self.queued.insert(path.clone(), queue),
                        None => self.queued.remove(&path),
                    };
                }
                job.steps.push((path, encode(step)));
            }
        }
        let status_changed = self.run_dirty && self.persisted_status != self.run.status;
        if self.run_dirty {
            job.run = Some((
                self.persisted_status.as_str(),
                self.run.status.as_str(),
                encode(&self.run),
            ));
            self.persisted_status = self.run.status;
            self.run_dirty = false;
        }
        (job, status_changed)
    }

    /// What follows a commit: timers armed, watchers told.
    fn committed(&mut self, status_changed: bool, handled_inbox: bool) {
        self.inbox_seen.clear();
        for due in std::mem::take(&mut self.new_timers) {
            self.inner.timers.add(due, &self.run.id);
        }
        if status_changed {
            if self.run.status.is_finished() {
                let waiters = self.inner.take_waiters(&self.run.id);
                self.finished_waiters.extend(waiters);
            } else {
                self.inner.wake_waiters(&self.run.id);
            }
            self.inner.announce(&self.run.id, self.run.status);
        } else if handled_inbox {
            // `wait_for` holds off while a parked run has messages; now it has fewer.
            self.inner.wake_waiters(&self.run.id);
        }
    }

    fn touch(&mut self, path: &str) {
        self.dirty.insert(path.to_owned());
    }

    fn set_timer(&mut self, path: &str, due_ms: u64) {
        self.job.timers_set.push(TimerEntry {
            due_ms,
            run: self.run.id.clone(),
            path: path.to_owned(),
        });
        self.new_timers.push(due_ms);
    }

    fn clear_timer(&mut self, path: &str) {
        let step = self.steps.get_mut(path).expect("step exists");
        if let Some(due_ms) = step.wake_at_ms.take() {
            let timer = TimerEntry {
                due_ms,
                run: self.run.id.clone(),
                path: path.to_owned(),
            };
            // Set and cleared before any commit: it never reaches the store.
            match self.job.timers_set.iter().position(|t| *t == timer) {
                Some(i) => drop(self.job.timers_set.swap_remove(i)),
                None => self.job.timers_cleared.push(timer),
            }
        }
    }

    /// Stops waiting for an event (unless the wait was not committed yet).
    fn cancel_wait(&mut self, path: &str, wait: EventWait) {
        let entry = (wait.name, wait.key, path.to_owned());
        match self.job.waits.iter().position(|w| *w == entry) {
            Some(i) => drop(self.job.waits.swap_remove(i)),
            None => self.job.waits_cancelled.push(entry),
        }
    }

    // ---- recovery and the inbox ----

    /// Attempts that were running when the process stopped are run again (with the same
    /// idempotency key). An interruption does not use up the step's retries.
    fn recover_interrupted(&mut self) {
        let interrupted: Vec<String> = self
            .open
            .iter()
            .filter(|p| {
                let s = &self.steps[*p];
                s.status == StepStatus::Running && s.container.is_none() && !s.attempts.is_empty()
            })
            .cloned()
            .collect();
        for path in interrupted {
            let failure = Failure::engine(
                "interrupted",
                "Baton stopped while this attempt ran; it is run again with the same idempotency key",
                true,
            );
            let step = self.steps.get_mut(&path).expect("open step");
            let attempt = step.attempts.last_mut().expect("checked");
            attempt.finished_ms = Some(now_ms());
            attempt.failure = Some(failure.clone());
            let number = attempt.number;
            step.budget_start += 1;
            // Due now: the next `advance` starts it, unless the run is paused.
            step.status = StepStatus::Retrying;
            step.wake_at_ms = Some(now_ms());
            self.touch(&path);
            self.event(EventKind::AttemptFailed {
                path: path.clone(),
                attempt: number,
                failure,
            });
        }
    }

    fn absorb_inbox(&mut self) -> Result<(), String> {
        let messages = self
            .inner
            .store
            .inbox::<InboxMessage>(&self.run.id)
            .map_err(|e| e.to_string())?;
        for (seq, message) in messages {
            if !self.inbox_seen.insert(seq) {
                continue;
            }
            self.job.inbox_done.push(seq);
            self.handle(message);
        }
        Ok(())
    }

    fn refuse(&mut self, action: &str, actor: &str, reason: String) {
        self.event(EventKind::Refused {
            action: action.to_owned(),
            actor: actor.to_owned(),
            reason,
        });
    }

    fn handle(&mut self, message: InboxMessage) {
        let finished = self.run.status.is_finished();
        match message {
            InboxMessage::Event {
                path,
                name,
                key,
                payload,
                actor,
            } => {
                let waiting = self.steps.get(&path).is_some_and(|s| {
                    s.status == StepStatus::Waiting
                        && s.event
                            .as_ref()
                            .is_some_and(|e| e.name == name && e.key == key)
                });
                if !waiting || finished {
                    return self.refuse(
                        "event",
                        "external",
                        format!("step {path} no longer waits for event {name}"),
                    );
                }
                self.clear_timer(&path);
                self.steps.get_mut(&path).expect("checked").event = None;
                self.event(EventKind::EventReceived {
                    path: path.clone(),
                    name,
                    key,
                    actor,
                });
                self.resume_with(&path, payload, "event");
            }
            InboxMessage::Decision {
                path,
                person,
                decision,
            } => self.decide(path, person, decision, finished),
            InboxMessage::Claim { path, person } => self.claim(path, person, true, finished),
            InboxMessage::Unclaim { path, person } => self.claim(path, person, false, finished),
            InboxMessage::Cancel { actor, reason } => {
                if finished {
                    return self.refuse(
                        "cancel",
                        &actor,
                        format!("the run is already {}", self.run.status),
                    );
                }
                self.operator("cancel", &actor, None, reason.clone());
                self.close_open_steps();
                self.finish_run(
                    RunStatus::Cancelled,
                    None,
                    Some(RunFailure {
                        step: None,
                        code: "cancelled".into(),
                        message: reason.unwrap_or_else(|| format!("cancelled by {actor}")),
                        details: None,
                    }),
                );
            }
            InboxMessage::Pause { actor } => {
                if finished || self.run.status == RunStatus::Paused {
                    return self.refuse("pause", &actor, format!("the run is {}", self.run.status));
                }
                self.operator("pause", &actor, None, None);
                self.set_status(RunStatus::Paused);
            }
            InboxMessage::Resume { actor } => {
                if self.run.status != RunStatus::Paused {
                    return self.refuse(
                        "resume",
                        &actor,
                        format!("the run is {}, not paused", self.run.status),
                    );
                }
                self.operator("resume", &actor, None, None);
                self.set_status(RunStatus::Running);
            }
            InboxMessage::Retry { path, input, actor } => {
                let Some(step) = self.steps.get(&path) else {
                    return self.refuse("retry", &actor, format!("the run has no step {path}"));
                };
                let escalated = step.status == StepStatus::Escalated && !finished;
                let failed_run = self.run.status == RunStatus::Failed
                    && step.status == StepStatus::Failed
                    && self.run.failure.as_ref().and_then(|f| f.step.as_deref())
                        == Some(path.as_str())
                    && path_prefix(&path).is_empty();
                let (status, from) = (step.status, step.from.clone());
                if !escalated && !failed_run {
                    return self.refuse(
                        "retry",
                        &actor,
                        format!("{path} is {status:?}; only an escalated step, or the top-level step that failed the run, can be retried"),
                    );
                }
                self.operator(
                    "retry",
                    &actor,
                    Some(path.clone()),
                    input.as_ref().map(|_| "with edited input".to_owned()),
                );
                if failed_run {
                    self.run.failure = None;
                    self.run.finished_ms = None;
                    self.set_status(RunStatus::Running);
                }
                match input {
                    // New input is a new request: a new generation, a new idempotency key.
                    Some(input) => {
                        self.schedule(&path, from);
                        self.steps.get_mut(&path).expect("scheduled").input_override = Some(input);
                    }
                    None => {
                        let step = self.steps.get_mut(&path).expect("checked");
                        step.status = StepStatus::Scheduled;
                        step.failure = None;
                        step.finished_ms = None;
                        step.budget_start = step.attempts.len() as u32;
                        self.open.insert(path.clone());
                        self.touch(&path);
                    }
                }
            }
            InboxMessage::Resolve {
                path,
                output,
                actor,
            } => {
                let escalated = self
                    .steps
                    .get(&path)
                    .is_some_and(|s| s.status == StepStatus::Escalated);
                if !escalated || finished {
                    return self.refuse(
                        "resolve",
                        &actor,
                        format!("{path} is not in the exception queue"),
                    );
                }
                let skipped = output.is_none();
                let workflow = self.workflow.clone();
                let step = &workflow.steps[path_step(&path)];
                let target = match (&output, &step.next) {
                    (_, Next::To(t)) => Ok(t.clone()),
                    (Some(output), Next::Routes(_)) => route(step, output),
                    (None, Next::Routes(_)) => step.otherwise.clone().ok_or_else(|| {
                        Failure::engine("unrouted", "a step that routes by outcome cannot be skipped; supply an output with an `outcome`", false)
                    }),
                };
                let target = match target {
                    Ok(t) => t,
                    Err(f) => return self.refuse("resolve", &actor, f.message),
                };
                self.operator(
                    if skipped { "skip" } else { "supply_output" },
                    &actor,
                    Some(path.clone()),
                    None,
                );
                let s = self.steps.get_mut(&path).expect("checked");
                s.decided_by = Some(actor);
                s.failure = None;
                self.complete(&path, output.unwrap_or(Value::Null), target);
                if skipped {
                    self.steps.get_mut(&path).expect("completed").status = StepStatus::Skipped;
                }
            }
            InboxMessage::Restart { step, input, actor } => {
                let top_level = self
                    .workflow
                    .steps
                    .get(&step)
                    .is_some_and(|s| s.parent.is_none());
                if !top_level || self.run.status == RunStatus::Cancelled {
                    return self.refuse(
                        "restart",
                        &actor,
                        if top_level {
                            "a cancelled run cannot be restarted".to_owned()
                        } else {
                            format!("`{step}` is not a top-level step of {}", self.workflow.name)
                        },
                    );
                }
                self.operator(
                    "restart",
                    &actor,
                    Some(step.clone()),
                    input.as_ref().map(|_| "with replacement input".to_owned()),
                );
                self.close_open_steps();
                self.scopes.clear();
                self.run.failure = None;
                self.run.output = None;
                self.run.finished_ms = None;
                self.set_status(RunStatus::Running);
                self.schedule(&step, None);
                self.steps.get_mut(&step).expect("scheduled").input_override = input;
            }
        }
    }

    /// The task of the human step waiting at `path`.
    fn waiting_task(&mut self, path: &str, finished: bool) -> Result<&mut TaskState, TaskRefusal> {
        self.steps
            .get_mut(path)
            .filter(|s| s.status == StepStatus::Waiting && !finished)
            .and_then(|s| s.task.as_mut())
            .ok_or_else(|| TaskRefusal::NotATask(path.to_owned()))
    }

    /// A person claims the task at `path`, or with `claim == false` releases it.
    fn claim(&mut self, path: String, person: Person, claim: bool, finished: bool) {
        let done = self.waiting_task(&path, finished).and_then(|task| {
            if claim {
                task.claim(&person)
            } else {
                task.unclaim(&person)
            }
        });
        match done {
            Ok(()) => {
                self.touch(&path);
                let actor = person.actor;
                self.event(if claim {
                    EventKind::TaskClaimed { path, actor }
                } else {
                    EventKind::TaskUnclaimed { path, actor }
                });
            }
            Err(refusal) => self.refuse(
                if claim { "claim" } else { "unclaim" },
                &person.actor,
                refusal.to_string(),
            ),
        }
    }

    /// A person's decision: counted toward N-of-M, or routing the run on.
    fn decide(&mut self, path: String, person: Person, decision: Decision, finished: bool) {
        let workflow = self.workflow.clone();
        let outcomes = match self.steps.get(&path).map(|s| &workflow.steps[&s.id].kind) {
            Some(StepKind::Human(task)) => task.outcomes.as_slice(),
            _ => &[],
        };
        let tally = self.waiting_task(&path, finished).and_then(|task| {
            task.check_decision(&person, &decision, outcomes)?;
            Ok((task.tally(&person, &decision, outcomes), task.clone()))
        });
        let (tally, task) = match tally {
            Ok(t) => t,
            Err(refusal) => return self.refuse("decision", &person.actor, refusal.to_string()),
        };
        self.touch(&path);
        if let Tally::Pending(remaining) = tally {
            return self.event(EventKind::Approval {
                path,
                actor: person.actor,
                remaining,
                comment: decision.comment,
            });
        }
        let mut output = json!({
            "outcome": decision.outcome,
            "data": decision.data,
            "actor": person.actor,
            "comment": decision.comment,
        });
        if !task.votes.is_empty() {
            output["votes"] = json!(task.votes);
        }
        let mut corrected = false;
        if let Some(review) = &task.review {
            let reviewed = decision.output.clone().unwrap_or(review.output.clone());
            corrected = !super::task::same_json(&reviewed, &review.output);
            let correction = corrected.then(|| {
                encode(&CorrectionRecord {
                    input: review.input.clone(),
                    original: review.output.clone(),
                    corrected: reviewed.clone(),
                    actor: person.actor.clone(),
                    plugin_digest: review.plugin_digest.clone(),
                    created_at_ms: now_ms(),
                })
            });
            self.job.reviews.push(ReviewJob {
                plugin: review.plugin.clone(),
                action: review.action.clone(),
                correction,
            });
            output["output"] = reviewed;
        }
        self.event(EventKind::Decision {
            path: path.clone(),
            outcome: decision.outcome,
            actor: person.actor.clone(),
            comment: decision.comment,
            corrected,
        });
        self.clear_timer(&path);
        self.steps.get_mut(&path).expect("checked").decided_by = Some(person.actor);
        self.resume_with(&path, output, "decision");
    }

    /// Opens the people side of the human step at `path`: who may not decide it, when it
    /// is due, and the plugin output it reviews.
    fn open_task(&self, path: &str, task: &HumanTask, context: &Val) -> Result<TaskState, String> {
        let mut excluded = Vec::new();
        for rule in &task.not_by {
            match rule {
                NotBy::Requester => excluded.extend(
                    self.run
                        .started_by
                        .as_deref()
                        .map(|a| user_of(a).to_owned()),
                ),
                NotBy::Users(expr) => match to_json(&expr.eval(context)?)? {
                    Value::Null => {}
                    Value::String(user) => excluded.push(user),
                    Value::Array(users) => {
                        for user in users {
                            match user {
                                Value::String(user) => excluded.push(user),
                                other => {
                                    return Err(format!(
                                        "not_by `{}` gave {other}, not a user name",
                                        expr.source()
                                    ));
                                }
                            }
                        }
                    }
                    other => {
                        return Err(format!(
                            "not_by `{}` gave {other}, not a user name or a list of them",
                            expr.source()
                        ));
                    }
                },
            }
        }
        let review = match &task.review {
            None => None,
            Some(id) => Some(self.review_of(&format!("{}{id}", path_prefix(path)))?),
        };
        Ok(TaskState {
            title: task.title.clone(),
            description: task.description.clone(),
            assignees: task.assignees.clone(),
            excluded,
            approvals: task.approvals,
            due_ms: task.due.map(|d| now_ms() + d.as_millis() as u64),
            review,
            ..TaskState::default()
        })
    }

    /// The completed call or rule at `path`, as a reviewer sees it.
    fn review_of(&self, path: &str) -> Result<Review, String> {
        let record = self
            .steps
            .get(path)
            .filter(|r| r.status == StepStatus::Completed)
            .ok_or_else(|| {
                format!(
                    "the reviewed step {path} has not completed, so there is no output to review"
                )
            })?;
        let (StepKind::Call(action) | StepKind::Rule(action)) =
            &self.workflow.steps[&record.id].kind
        else {
            return Err(format!("the reviewed step {path} is not a call or rule"));
        };
        let plugin = action.plugin.split('@').next().unwrap_or(&action.plugin);
        Ok(Review {
            path: path.to_owned(),
            plugin: plugin.to_owned(),
            action: action.action.clone(),
            plugin_digest: self
                .run
                .plugins
                .get(&action.plugin)
                .map(|p| p.digest.clone())
                .unwrap_or_default(),
            input: record.input.clone().unwrap_or(Value::Null),
            output: record.output.clone().unwrap_or(Value::Null),
        })
    }

    fn operator(
        &mut self,
        action: &str,
        actor: &str,
        path: Option<String>,
        detail: Option<String>,
    ) {
        self.event(EventKind::Operator {
            action: action.to_owned(),
            actor: actor.to_owned(),
            path,
            detail,
        });
    }

    /// A parked step continues: its output is `output`, and it routes on it.
    fn resume_with(&mut self, path: &str, output: Value, by: &str) {
        self.event(EventKind::Resumed {
            path: path.to_owned(),
            by: by.to_owned(),
        });
        let workflow = self.workflow.clone();
        let step = &workflow.steps[path_step(path)];
        match route(step, &output) {
            Ok(target) => self.complete(path, output, target),
            Err(failure) => self.step_failed(path, failure),
        }
    }

    // ---- the interpreter ----

    fn set_status(&mut self, status: RunStatus) {
        if self.run.status != status {
            self.run.status = status;
            self.run_dirty = true;
        }
    }

    /// Starts what can start and fires due timers, until nothing more changes.
    fn advance(&mut self) {
        loop {
            if self.run.status.is_finished() || self.run.status == RunStatus::Paused {
                return;
            }
            let now = now_ms();
            let mut progressed = false;
            let open: Vec<String> = self.open.iter().cloned().collect();
            for path in open {
                if self.run.status.is_finished() {
                    return;
                }
                let Some(step) = self.steps.get(&path) else {
                    continue;
                };
                let due = step.wake_at_ms.is_some_and(|t| t <= now);
                match step.status {
                    StepStatus::Scheduled => {
                        self.start(&path);
                        progressed = true;
                    }
                    StepStatus::Retrying | StepStatus::Waiting if due => {
                        self.timer_fired(&path);
                        progressed = true;
                    }
                    _ => {}
                }
            }
            if !progressed {
                break;
            }
        }
        if !self.run.status.is_finished() && self.run.status != RunStatus::Paused {
            // Timers are the engine's own business: a run only waits when it needs
            // something from outside (a person, an event, an exception fixed).
            let busy = self.open.iter().any(|p| {
                let step = &self.steps[p];
                let external = step.status == StepStatus::Escalated
                    || (step.status == StepStatus::Waiting
                        && (step.event.is_some() || step.kind == "human"));
                step.container.is_none() && !external
            });
            self.set_status(if busy || self.open.is_empty() {
                RunStatus::Running
            } else {
                RunStatus::Waiting
            });
        }
    }

    /// Records a new execution of the step at `path`.
    fn schedule(&mut self, path: &str, from: Option<String>) {
        let id = path_step(path);
        let step = &self.workflow.steps[id];
        let generation = self.steps.get(path).map_or(0, |s| s.generation + 1);
        let record = StepRecord {
            id: id.to_owned(),
            kind: step.kind_name().to_owned(),
            generation,
            status: StepStatus::Scheduled,
            from,
            input: None,
            input_override: None,
            output: None,
            failure: None,
            attempts: Vec::new(),
            budget_start: 0,
            scheduled_ms: now_ms(),
            finished_ms: None,
            wake_at_ms: None,
            event: None,
            container: None,
            decided_by: None,
            plugin: None,
            task: None,
        };
        self.steps.insert(path.to_owned(), record);
        self.open.insert(path.to_owned());
        self.touch(path);
        self.event(EventKind::StepScheduled {
            path: path.to_owned(),
            generation,
        });
    }

    fn start(&mut self, path: &str) {
        let prefix = path_prefix(path).to_owned();
        let workflow = self.workflow.clone();
        let step = &workflow.steps[path_step(path)];
        // Calls and rules first: their input often needs no jq view of the run, which
        // every other kind of step is decided on.
        if let StepKind::Call(_) | StepKind::Rule(_) = &step.kind {
            let record = &self.steps[path];
            let input = match (&record.input_override, &step.input) {
                (Some(input), _) => Ok(input.clone()),
                (None, Some(template)) => self.eval_input(&prefix, template),
                (None, None) => Ok(self.run.input.clone()),
            };
            return match input {
                Ok(input) => {
                    self.steps.get_mut(path).expect("open").input = Some(input);
                    self.begin_attempt(path);
                }
                Err(e) => self.step_failed(
                    path,
                    mapping_failure(step, "input_mapping", format!("input: {e}")),
                ),
            };
        }
        let context = self.context(&prefix);
        let now = now_ms();
        match &step.kind {
            StepKind::Call(_) | StepKind::Rule(_) => unreachable!("started above"),
            StepKind::Branch(cases) => {
                let mut chosen = None;
                for (condition, target) in cases {
                    match condition.test(&context) {
                        Ok(true) => {
                            chosen = Some(target.clone());
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            return self.step_failed(path, mapping_failure(step, "condition", e));
                        }
                    }
                }
                let target = chosen
                    .or_else(|| step.otherwise.clone())
                    .unwrap_or(Target::End);
                let output = self.previous_output(path);
                self.complete(path, output, target);
            }
            StepKind::Parallel(branches) => {
                let record = self.steps.get_mut(path).expect("open");
                record.status = StepStatus::Running;
                record.container = Some(Container::Parallel {
                    pending: branches.iter().map(|(name, _)| name.clone()).collect(),
                    outputs: Default::default(),
                });
                self.touch(path);
                for (_, first) in branches {
                    self.schedule(&step_path(&prefix, first), Some(path.to_owned()));
                }
            }
            StepKind::ForEach { items, .. } => {
                let items = items.eval(&context).and_then(|v| to_json(&v));
                match items {
                    Ok(Value::Array(items)) => {
                        let count = items.len();
                        let record = self.steps.get_mut(path).expect("open");
                        record.status = StepStatus::Running;
                        record.container = Some(Container::ForEach {
                            outputs: vec![None; count],
                            items,
                            next: 0,
                            running: 0,
                        });
                        self.touch(path);
                        if count == 0 {
                            self.complete_container(path, Value::Array(vec![]));
                        } else {
                            self.start_iterations(path);
                        }
                    }
                    Ok(other) => self.step_failed(
                        path,
                        mapping_failure(
                            step,
                            "not_a_list",
                            format!(
                                "for_each needs a list, `{}` gave {}",
                                items_source(step),
                                kind_of(&other)
                            ),
                        ),
                    ),
                    Err(e) => self.step_failed(path, mapping_failure(step, "for_each", e)),
                }
            }
            StepKind::Wait(WaitKind::For(duration)) => {
                self.park_until(path, now + duration.as_millis() as u64);
            }
            StepKind::Wait(WaitKind::Until(expr)) => {
                match expr
                    .eval(&context)
                    .and_then(|v| to_json(&v))
                    .and_then(|v| parse_time(&v))
                {
                    Ok(at) => self.park_until(path, at),
                    Err(e) => self.step_failed(
                        path,
                        mapping_failure(step, "wait_until", format!("until: {e}")),
                    ),
                }
            }
            StepKind::Wait(WaitKind::Event { name, key, timeout }) => {
                let key = match key {
                    Some(expr) => expr
                        .eval(&context)
                        .and_then(|v| to_json(&v))
                        .and_then(|v| key_string(&v)),
                    None => self.run.key.clone().ok_or_else(|| {
                        "the run has no business key; give the wait a `key`".to_owned()
                    }),
                };
                let key = match key {
                    Ok(k) => k,
                    Err(e) => {
                        return self.step_failed(
                            path,
                            mapping_failure(step, "wait_key", format!("key: {e}")),
                        );
                    }
                };
                let record = self.steps.get_mut(path).expect("open");
                record.status = StepStatus::Waiting;
                record.event = Some(EventWait {
                    name: name.clone(),
                    key: key.clone(),
                });
                if let Some(timeout) = timeout {
                    let due = now + timeout.as_millis() as u64;
                    record.wake_at_ms = Some(due);
                    self.set_timer(path, due);
                }
                self.touch(path);
                self.job
                    .waits
                    .push((name.clone(), key.clone(), path.to_owned()));
                self.event(EventKind::Parked {
                    path: path.to_owned(),
                    on: format!("event {name} (key {key})"),
                });
            }
            StepKind::Human(task) => {
                let shown = match &step.input {
                    Some(template) => template.eval(&context).and_then(|v| to_json(&v)).map(Some),
                    None => Ok(None),
                };
                let opened =
                    shown.and_then(|shown| Ok((shown, self.open_task(path, task, &context)?)));
                let (shown, state) = match opened {
                    Ok(opened) => opened,
                    Err(e) => {
                        return self.step_failed(path, mapping_failure(step, "task_mapping", e));
                    }
                };
                if let Some(due) = state.due_ms {
                    self.set_timer(path, due);
                }
                let record = self.steps.get_mut(path).expect("open");
                record.status = StepStatus::Waiting;
                record.wake_at_ms = state.due_ms;
                record.input = shown;
                record.task = Some(state);
                self.touch(path);
                self.event(EventKind::Parked {
                    path: path.to_owned(),
                    on: "human task".into(),
                });
            }
            StepKind::End(template) => {
                let output = match template {
                    Some(t) => t.eval(&context).and_then(|v| to_json(&v)),
                    None => Ok(self.previous_output(path)),
                };
                match output {
                    Ok(output) => self.complete(path, output, Target::End),
                    Err(e) => self.step_failed(
                        path,
                        mapping_failure(step, "output_mapping", format!("end: {e}")),
                    ),
                }
            }
            StepKind::Fail { code, message } => {
                let message = match message {
                    Some(t) => match t.eval(&context).and_then(|v| to_json(&v)) {
                        Ok(Value::String(s)) => s,
                        Ok(other) => other.to_string(),
                        Err(e) => format!("(the message failed: {e})"),
                    },
                    None => format!("the workflow failed at step `{}`", step.id),
                };
                let failure = Failure::engine(code, message, false);
                let record = self.steps.get_mut(path).expect("open");
                record.status = StepStatus::Failed;
                record.failure = Some(failure.clone());
                record.finished_ms = Some(now);
                self.open.remove(path);
                self.touch(path);
                self.event(EventKind::StepFailed {
                    path: path.to_owned(),
                    failure: failure.clone(),
                });
                self.fail_run(path, &failure);
            }
        }
    }

    fn park_until(&mut self, path: &str, at: u64) {
        let record = self.steps.get_mut(path).expect("open");
        record.status = StepStatus::Waiting;
        record.wake_at_ms = Some(at);
        self.touch(path);
        self.set_timer(path, at);
        self.event(EventKind::Parked {
            path: path.to_owned(),
            on: format!("timer until {}", format_ms(at)),
        });
    }

    fn timer_fired(&mut self, path: &str) {
        self.clear_timer(path);
        let record = &self.steps[path];
        let workflow = self.workflow.clone();
        let step = &workflow.steps[&record.id];
        match (record.status, &step.kind) {
            (StepStatus::Retrying, _) => self.begin_attempt(path),
            (StepStatus::Waiting, StepKind::Wait(WaitKind::Event { name, .. })) => {
                if let Some(wait) = self.steps.get_mut(path).expect("open").event.take() {
                    self.cancel_wait(path, wait);
                }
                let failure = Failure::engine(
                    "wait_timeout",
                    format!("no event `{name}` arrived in time"),
                    false,
                );
                self.step_failed(path, failure);
            }
            (StepStatus::Waiting, StepKind::Wait(_)) => {
                self.resume_with(path, Value::Null, "timer")
            }
            (StepStatus::Waiting, StepKind::Human(human)) => {
                if let Some(task) = self.steps.get_mut(path).expect("open").task.as_mut() {
                    task.escalate(&human.escalate_to);
                }
                self.touch(path);
                self.event(EventKind::TaskEscalated {
                    path: path.to_owned(),
                    to: human.escalate_to.clone(),
                });
            }
            _ => {}
        }
    }

    fn begin_attempt(&mut self, path: &str) {
        let record = self.steps.get_mut(path).expect("open");
        let number = record.attempts.len() as u32 + 1;
        record.attempts.push(Attempt {
            number,
            started_ms: now_ms(),
            ..Attempt::default()
        });
        record.status = StepStatus::Running;
        self.touch(path);
        self.event(EventKind::AttemptStarted {
            path: path.to_owned(),
            attempt: number,
        });
        self.launches.push(path.to_owned());
    }

    /// Starts the plugin calls whose attempts were just committed.
    fn launch(&mut self) {
        for path in std::mem::take(&mut self.launches) {
            if let Some(call) = self.call(&path) {
                self.inflight.push(call);
            }
        }
    }

    /// Decides the rules and effect-free calls just started before anything is
    /// committed. Neither changes anything outside Baton (a rule is pure; a call with
    /// `effects: none` runs with the network closed), so its result can share the
    /// commit of the step that fed it: a crash before that commit runs both again, and
    /// nothing that depends on the result starts before it is committed. Repeats while
    /// results start more of them.
    async fn decide_effect_free(&mut self) {
        // Most passes start none: look before taking the list apart.
        while self.launches.iter().any(|path| self.is_effect_free(path)) {
            let (now, later): (Vec<String>, Vec<String>) = std::mem::take(&mut self.launches)
                .into_iter()
                .partition(|path| self.is_effect_free(path));
            self.launches = later;
            let results = now.iter().filter_map(|path| self.call(path));
            for done in futures_util::future::join_all(results).await {
                self.finish_call(done);
            }
            self.advance();
        }
    }

    /// Whether the step at `path` changes nothing outside Baton: a rule, or a call
    /// with `effects: none`.
    fn is_effect_free(&self, path: &str) -> bool {
        self.steps.get(path).is_some_and(|record| {
            let step = &self.workflow.steps[&record.id];
            matches!(step.kind, StepKind::Rule(_)) || step.effects == Effects::None
        })
    }

    /// The plugin call of the running attempt at `path`, if it is a call or rule step.
    fn call(&self, path: &str) -> Option<BoxFuture<'static, CallDone>> {
        let record = self.steps.get(path)?;
        if record.status != StepStatus::Running {
            return None;
        }
        let step = &self.workflow.steps[&record.id];
        let (StepKind::Call(action) | StepKind::Rule(action)) = &step.kind else {
            return None;
        };
        let path = path.to_owned();
        let attempt = record.attempts.len() as u32;
        let generation = record.generation;
        let pin = self.run.plugins.get(&action.plugin).cloned();
        let name = action
            .plugin
            .split_once('@')
            .map_or(action.plugin.as_str(), |(n, _)| n)
            .to_owned();
        let action = action.action.clone();
        // `to_string`, not `Display`: it writes straight into the buffer, without
        // going through a formatter.
        let input = record.input.as_ref().map_or_else(
            || "null".to_owned(),
            |input| serde_json::to_string(input).expect("JSON values serialize"),
        );
        let context = CallContext {
            run_id: self.run.id.clone(),
            step_id: path.clone(),
            attempt,
            idempotency_key: format!("{}/{path}/{generation}", self.run.id),
        };
        let timeout = step.timeout;
        let network = match step.effects {
            Effects::External => Network::Granted,
            Effects::None => Network::Closed,
        };
        let registry = self.inner.registry.clone();
        Some(Box::pin(async move {
            let result = match pin {
                None => Err(Failure::engine(
                    "plugin_unpinned",
                    format!("the run has no pinned version of `{name}`"),
                    false,
                )),
                Some(pin) => {
                    let pin = Pin {
                        name: &name,
                        version: &pin.version,
                        digest: &pin.digest,
                    };
                    let call = registry.call_pinned(pin, &action, &input, &context, network);
                    let call = async {
                        call.await
                            .map_err(|e| Failure::engine(e.code(), e.to_string(), false))
                    };
                    match timeout {
                        Some(limit) => {
                            tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                                Err(Failure::engine(
                                    "step_timeout",
                                    format!(
                                        "the step did not finish within its timeout of {}",
                                        humantime::format_duration(limit)
                                    ),
                                    true,
                                ))
                            })
                        }
                        None => call.await,
                    }
                }
            };
            if matches!(&result, Ok(report) if report.result.is_ok()) {
                super::fault::hold_after_call(&name, &action, &path).await;
            }
            CallDone {
                path,
                generation,
                attempt,
                result,
            }
        }))
    }

    fn finish_call(&mut self, done: CallDone) {
        let Some(record) = self.steps.get_mut(&done.path) else {
            return;
        };
        let current = record.status == StepStatus::Running
            && record.generation == done.generation
            && record.attempts.len() as u32 == done.attempt;
        if !current || self.run.status.is_finished() {
            return;
        }
        let attempt = record.attempts.last_mut().expect("running attempt");
        attempt.finished_ms = Some(now_ms());
        let metrics = &self.inner.metrics;
        let plugin = match &self.workflow.steps[&record.id].kind {
            StepKind::Call(action) | StepKind::Rule(action) => action.plugin.as_str(),
            _ => "",
        };
        let plugin = plugin.split('@').next().unwrap_or(plugin);
        match &done.result {
            Ok(report) => {
                metrics.plugin_call(plugin, report.duration);
                if let Err(failure) = &report.result {
                    metrics.plugin_failure(plugin, &failure.code);
                }
            }
            Err(failure) => metrics.plugin_failure(plugin, &failure.code),
        }
        let outcome = match done.result {
            Ok(report) => {
                attempt.duration_us = Some(report.duration.as_micros() as u64);
                attempt.logs = report.logs;
                attempt.stdout = report.stdout;
                attempt.stderr = report.stderr;
                attempt.denied = report.denied;
                record.plugin = Some(report.plugin);
                report.result
            }
            Err(failure) => Err(failure),
        };
        self.touch(&done.path);
        match outcome {
            Ok(output) => {
                let workflow = self.workflow.clone();
                let step = &workflow.steps[path_step(&done.path)];
                match route(step, &output) {
                    Ok(target) => self.complete(&done.path, output, target),
                    Err(failure) => {
                        self.steps.get_mut(&done.path).expect("open").output = Some(output);
                        self.step_failed(&done.path, failure)
                    }
                }
            }
            Err(failure) => self.attempt_failed(&done.path, failure),
        }
    }

    fn attempt_failed(&mut self, path: &str, failure: Failure) {
        let record = self.steps.get_mut(path).expect("open");
        let attempt = record.attempts.last_mut().expect("running attempt");
        attempt.failure = Some(failure.clone());
        let number = attempt.number;
        let used = number.saturating_sub(record.budget_start);
        self.event(EventKind::AttemptFailed {
            path: path.to_owned(),
            attempt: number,
            failure: failure.clone(),
        });
        let retry = &self.workflow.steps[path_step(path)].retry;
        if failure.retryable && used < retry.attempts {
            let random = getrandom::u64().unwrap_or(0);
            let at = now_ms() + retry.delay(used + 1, random).as_millis() as u64;
            let record = self.steps.get_mut(path).expect("open");
            record.status = StepStatus::Retrying;
            record.wake_at_ms = Some(at);
            self.set_timer(path, at);
            self.event(EventKind::RetryScheduled {
                path: path.to_owned(),
                attempt: number + 1,
                retry_at_ms: at,
            });
        } else {
            self.step_failed(path, failure);
        }
    }

    /// A step failed for good: its `on_error` decides what happens to the run.
    fn step_failed(&mut self, path: &str, failure: Failure) {
        let on_error = self.workflow.steps[path_step(path)].on_error.clone();
        let record = self.steps.get_mut(path).expect("open");
        record.failure = Some(failure.clone());
        record.finished_ms = Some(now_ms());
        self.touch(path);
        self.event(EventKind::StepFailed {
            path: path.to_owned(),
            failure: failure.clone(),
        });
        match on_error {
            OnError::Fail => {
                self.steps.get_mut(path).expect("open").status = StepStatus::Failed;
                self.open.remove(path);
                self.fail_run(path, &failure);
            }
            OnError::Escalate => {
                self.steps.get_mut(path).expect("open").status = StepStatus::Escalated;
                self.event(EventKind::Parked {
                    path: path.to_owned(),
                    on: "exception".into(),
                });
            }
            OnError::Goto(target) => {
                self.steps.get_mut(path).expect("open").status = StepStatus::Failed;
                self.open.remove(path);
                self.record_in_scope(path);
                self.go(path, target);
            }
        }
    }

    fn complete(&mut self, path: &str, output: Value, target: Target) {
        let record = self.steps.get_mut(path).expect("open");
        record.status = StepStatus::Completed;
        record.output = Some(output.clone());
        let now = now_ms();
        record.finished_ms = Some(now);
        let latency = std::time::Duration::from_millis(now.saturating_sub(record.scheduled_ms));
        self.inner.metrics.step_completed(&record.kind, latency);
        self.open.remove(path);
        self.touch(path);
        self.event(EventKind::StepCompleted {
            path: path.to_owned(),
            output,
        });
        self.record_in_scope(path);
        self.go(path, target);
    }

    fn go(&mut self, from: &str, target: Target) {
        match target {
            Target::Step(id) => {
                let path = step_path(path_prefix(from), &id);
                self.schedule(&path, Some(from.to_owned()));
            }
            Target::End => self.end_sequence(from),
        }
    }

    /// The sequence `last` is in has ended with it: the run, a branch or an iteration.
    fn end_sequence(&mut self, last: &str) {
        let output = self.steps[last].output.clone().unwrap_or(Value::Null);
        let prefix = path_prefix(last).to_owned();
        let parent = self.workflow.steps[path_step(last)].parent.clone();
        match parent {
            None => self.succeed_run(output),
            Some(parent) => match parent.branch {
                Some(branch) => {
                    let container = step_path(&prefix, &parent.container);
                    let record = self.steps.get_mut(&container).expect("open container");
                    let Some(Container::Parallel { pending, outputs }) = &mut record.container
                    else {
                        return;
                    };
                    pending.remove(&branch);
                    outputs.insert(branch, output);
                    let done = pending.is_empty().then(|| {
                        Value::Object(
                            outputs
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        )
                    });
                    self.touch(&container);
                    if let Some(all) = done {
                        self.complete_container(&container, all);
                    }
                }
                None => {
                    let Some((container, index)) = split_iteration(&prefix) else {
                        return;
                    };
                    let container = container.to_owned();
                    let record = self.steps.get_mut(&container).expect("open container");
                    let Some(Container::ForEach {
                        outputs, running, ..
                    }) = &mut record.container
                    else {
                        return;
                    };
                    outputs[index] = Some(output);
                    *running -= 1;
                    self.scopes.remove(&prefix);
                    self.touch(&container);
                    self.start_iterations(&container);
                }
            },
        }
    }

    /// Starts for-each iterations up to the concurrency limit; completes the for-each
    /// when every item is done.
    fn start_iterations(&mut self, container: &str) {
        let workflow = self.workflow.clone();
        let step = &workflow.steps[path_step(container)];
        let StepKind::ForEach {
            concurrency, first, ..
        } = &step.kind
        else {
            return;
        };
        let mut starts = Vec::new();
        let record = self.steps.get_mut(container).expect("open container");
        let Some(Container::ForEach {
            items,
            outputs,
            next,
            running,
        }) = &mut record.container
        else {
            return;
        };
        while *next < items.len() && (*running as u32) < *concurrency {
            starts.push(*next);
            *next += 1;
            *running += 1;
        }
        let finished = *next == items.len() && *running == 0;
        let all = finished.then(|| {
            Value::Array(
                outputs
                    .iter()
                    .map(|o| o.clone().unwrap_or(Value::Null))
                    .collect(),
            )
        });
        self.touch(container);
        for index in starts {
            let prefix = iteration_prefix(container, index);
            self.schedule(&step_path(&prefix, first), Some(container.to_owned()));
        }
        if let Some(all) = all {
            self.complete_container(container, all);
        }
    }

    fn complete_container(&mut self, path: &str, output: Value) {
        let target = match &self.workflow.steps[path_step(path)].next {
            Next::To(t) => t.clone(),
            Next::Routes(_) => Target::End,
        };
        self.complete(path, output, target);
    }

    fn succeed_run(&mut self, last_output: Value) {
        let workflow = self.workflow.clone();
        let output = match &workflow.output {
            Some(template) => {
                let context = self.context("");
                template.eval(&context).and_then(|v| to_json(&v))
            }
            None => Ok(last_output),
        };
        match output {
            Ok(output) => {
                self.close_open_steps();
                self.finish_run(RunStatus::Succeeded, Some(output), None);
            }
            Err(e) => {
                let failure = Failure::engine(
                    "output_mapping",
                    format!("the workflow's output: {e}"),
                    false,
                );
                self.close_open_steps();
                self.finish_run(
                    RunStatus::Failed,
                    None,
                    Some(RunFailure {
                        step: None,
                        code: failure.code,
                        message: failure.message,
                        details: None,
                    }),
                );
            }
        }
    }

    fn fail_run(&mut self, path: &str, failure: &Failure) {
        self.close_open_steps();
        self.finish_run(
            RunStatus::Failed,
            None,
            Some(RunFailure {
                step: Some(path.to_owned()),
                code: failure.code.clone(),
                message: failure.message.clone(),
                details: failure.details.clone(),
            }),
        );
    }

    /// Cancels every open step: aborts calls, clears timers and waits.
    fn close_open_steps(&mut self) {
        self.inflight.clear();
        self.launches.clear();
        let now = now_ms();
        for path in std::mem::take(&mut self.open) {
            self.clear_timer(&path);
            if let Some(wait) = self.steps.get_mut(&path).expect("open step").event.take() {
                self.cancel_wait(&path, wait);
            }
            let record = self.steps.get_mut(&path).expect("open step");
            record.status = StepStatus::Cancelled;
            record.finished_ms = Some(now);
            self.touch(&path);
        }
    }

    fn finish_run(
        &mut self,
        status: RunStatus,
        output: Option<Value>,
        failure: Option<RunFailure>,
    ) {
        self.run.output = output.clone();
        self.run.failure = failure.clone();
        self.run.finished_ms = Some(now_ms());
        self.run_dirty = true;
        self.set_status(status);
        self.event(EventKind::RunFinished {
            status: status.as_str().to_owned(),
            output,
            failure,
        });
    }

    // ---- expression contexts ----

    /// The output of the step that led to `path` (null if none).
    fn previous_output(&self, path: &str) -> Value {
        self.steps[path]
            .from
            .as_ref()
            .and_then(|from| self.steps.get(from))
            .and_then(|s| s.output.clone())
            .unwrap_or(Value::Null)
    }

    /// A call's or rule's input from its template: without jq when the template is
    /// plain paths into the run's input and earlier outputs (see [`Actor::resolve`]).
    fn eval_input(&mut self, prefix: &str, template: &Template) -> Result<Value, String> {
        if let Some(input) = template.eval_paths(&|names| self.resolve(prefix, names)) {
            return Ok(input);
        }
        let context = self.context(prefix);
        template.eval(&context).and_then(|v| to_json(&v))
    }

    /// What jq would give for the plain path `names` in the view of steps under
    /// `prefix` ([`Actor::context`]), read straight from the run: `.input…`, `.key`
    /// and `.steps.<id>.output…` at the top level. `None` for anything else, which
    /// is left to jq.
    fn resolve(&self, prefix: &str, names: &[String]) -> Option<Value> {
        if !prefix.is_empty() {
            return None;
        }
        match names {
            [first, rest @ ..] if first == "input" => walk_json(&self.run.input, rest),
            [first] if first == "key" => {
                Some(self.run.key.clone().map_or(Value::Null, Value::String))
            }
            [first, id, rest @ ..] if first == "steps" => {
                // Only finished steps are in the view; the rest read as null.
                let record = self.steps.get(id.as_str()).filter(|r| in_view(r));
                match (record, rest) {
                    (None, _) => Some(Value::Null),
                    (Some(record), [output, rest @ ..]) if output == "output" => {
                        walk_json(record.output.as_ref().unwrap_or(&Value::Null), rest)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The jq input for steps under `prefix`: `.input`, `.key`, `.run`, `.steps`, and
    /// inside a for-each, `.item` and `.index`.
    fn context(&mut self, prefix: &str) -> Val {
        if let Some(context) = self.scopes.get(prefix) {
            return context.clone();
        }
        let base = match split_iteration(prefix) {
            None => object([
                (string("input"), to_val(&self.run.input)),
                (
                    string("key"),
                    self.run.key.as_deref().map_or(Val::Null, string),
                ),
                (
                    string("run"),
                    to_val(
                        &json!({"id": self.run.id, "workflow": self.run.workflow, "version": self.run.version}),
                    ),
                ),
                (string("steps"), object([])),
            ]),
            Some((container, index)) => {
                let parent = self.context(path_prefix(container));
                let item = match self.steps.get(container).and_then(|s| s.container.as_ref()) {
                    Some(Container::ForEach { items, .. }) => {
                        items.get(index).map_or(Val::Null, to_val)
                    }
                    _ => Val::Null,
                };
                let with_item = with_field(&parent, "item", item);
                with_field(&with_item, "index", to_val(&json!(index)))
            }
        };
        let mut steps = field(&base, "steps");
        for (path, record) in &self.steps {
            if path_prefix(path) == prefix && in_view(record) {
                steps = with_field(&steps, &record.id, step_entry(record));
            }
        }
        let context = with_field(&base, "steps", steps);
        self.scopes.insert(prefix.to_owned(), context.clone());
        context
    }

    /// Makes a finished step's output (or failure) visible to later expressions.
    fn record_in_scope(&mut self, path: &str) {
        if let Some(context) = self.scopes.get_mut(path_prefix(path)) {
            let record = &self.steps[path];
            set_nested_field(context, "steps", &record.id, step_entry(record));
        }
    }
}

/// A step whose expression failed: not retryable, and the message names the step.
fn mapping_failure(step: &Step, code: &str, detail: String) -> Failure {
    Failure::engine(code, format!("step `{}`: {detail}", step.id), false)
}

/// Whether later expressions see the step: once it has an output or a failure.
fn in_view(record: &StepRecord) -> bool {
    record.output.is_some() || record.failure.is_some()
}

fn step_entry(record: &StepRecord) -> Val {
    let mut entry = serde_json::Map::new();
    entry.insert(
        "output".into(),
        record.output.clone().unwrap_or(Value::Null),
    );
    if let Some(f) = &record.failure {
        entry.insert(
            "failure".into(),
            json!({"code": f.code, "message": f.message, "details": f.details}),
        );
    }
    to_val(&Value::Object(entry))
}

/// Where a step goes after producing `output`: by its `outcome` for routing steps.
fn route(step: &Step, output: &Value) -> Result<Target, Failure> {
    match &step.next {
        Next::To(target) => Ok(target.clone()),
        Next::Routes(routes) => {
            let outcome = output.get("outcome").and_then(Value::as_str).unwrap_or("");
            routes
                .get(outcome)
                .or(step.otherwise.as_ref())
                .cloned()
                .ok_or_else(|| {
                    Failure::engine(
                        "unrouted_outcome",
                        format!(
                            "step `{}` has no route for outcome `{outcome}` (routes: {}); add it to `next` or give the step an `else`",
                            step.id,
                            routes.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        false,
                    )
                })
        }
    }
}

/// A business or event key from a jq result: strings as they are, numbers as written.
pub fn key_string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "a key must be a string or a number, not {}",
            kind_of(other)
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn items_source(step: &Step) -> &str {
    match &step.kind {
        StepKind::ForEach { items, .. } => items.source(),
        _ => "",
    }
}
