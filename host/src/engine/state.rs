//! What the engine persists about runs: plain records, stored as JSON by the store.

use super::task::{Decision, Person, TaskState};
use crate::runtime::{Failure, LogLine};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// An applied workflow version.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkflowRecord {
    pub name: String,
    pub version: u32,
    /// The file name it was applied from (for error messages).
    pub file: String,
    pub format: super::definition::Format,
    /// The definition exactly as applied.
    pub source: String,
    /// `sha256:<hex>` of `source`: applying identical text again adds no version.
    pub source_digest: String,
    pub applied_at_ms: u64,
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Some step is running, about to, or waiting for a timer (a retry, a `wait`).
    Running,
    /// Every open step waits for something from outside: an event, a person, or an
    /// exception to be fixed.
    Waiting,
    /// An operator paused it; running calls finish, nothing new starts.
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Paused,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Paused => "paused",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Succeeded and cancelled runs never change again. A failed run can still be
    /// retried by an operator.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a run status (one of: {})",
                    RunStatus::ALL.map(RunStatus::as_str).join(", ")
                )
            })
    }
}

/// The plugin version a run calls for one plugin reference, fixed when it starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PinnedPlugin {
    pub version: String,
    pub digest: String,
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunFailure {
    /// The step path that failed it, if a step did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// A run: which workflow version, its input and key, and where it stands. Step states
/// are separate records, so a step's transition does not rewrite the run.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunRecord {
    pub id: String,
    pub workflow: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub status: RunStatus,
    pub input: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<RunFailure>,
    /// Plugin reference as written in the definition → the version the run calls.
    pub plugins: BTreeMap<String, PinnedPlugin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
}

/// Where a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Scheduled,
    Running,
    /// Failed with a retryable failure; the next attempt waits for its timer.
    Retrying,
    /// A wait or a human task.
    Waiting,
    /// In the exception queue, waiting for a person.
    Escalated,
    Completed,
    /// Failed for good (the run failed, or `on_error: goto` took over).
    Failed,
    /// A person skipped it from the exception queue.
    Skipped,
    Cancelled,
}

impl StepStatus {
    /// Still open: the run is not done with it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            StepStatus::Scheduled
                | StepStatus::Running
                | StepStatus::Retrying
                | StepStatus::Waiting
                | StepStatus::Escalated
        )
    }
}

/// One attempt of a call or rule.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    pub number: u32,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// Time inside the plugin, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<String>,
}

/// An event a step waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventWait {
    pub name: String,
    pub key: String,
}

/// The progress of a step that runs other steps.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Container {
    ForEach {
        items: Vec<serde_json::Value>,
        /// Each finished iteration's output, in item order.
        outputs: Vec<Option<serde_json::Value>>,
        /// The next item to start.
        next: usize,
        running: usize,
    },
    Parallel {
        pending: BTreeSet<String>,
        outputs: BTreeMap<String, serde_json::Value>,
    },
}

/// One execution of a step in a run. A step reached again (a loop, a restart) gets a
/// new record with the next `generation`, and with it a new idempotency key.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepRecord {
    /// The step's id in the definition.
    pub id: String,
    pub kind: String,
    pub generation: u32,
    pub status: StepStatus,
    /// The path of the step that led here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// Input an operator supplied (retry with edited input, restart), used instead of
    /// the definition's mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_override: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// Attempts made before the current retry budget began (an operator's retry, or a
    /// restart after an interruption, starts a fresh budget).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub budget_start: u32,
    pub scheduled_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// A retry, wait or event timeout fires at this time (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventWait>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Who decided a human task or acted on an exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The plugin version a call or rule ran on (`name@version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// A human task's assignees, claim, approvals and due time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskState>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A queue of steps waiting for a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepQueue {
    /// A human task waiting for a decision: the inbox.
    Task,
    /// An escalated step: the exception queue.
    Exception,
}

impl StepQueue {
    /// Its name in the store's queue index.
    pub fn as_str(self) -> &'static str {
        match self {
            StepQueue::Task => "task",
            StepQueue::Exception => "exception",
        }
    }
}

impl StepRecord {
    /// The queue this step waits in, if it waits for a person.
    pub fn queue(&self) -> Option<StepQueue> {
        match self.status {
            StepStatus::Waiting if self.task.is_some() => Some(StepQueue::Task),
            StepStatus::Escalated => Some(StepQueue::Exception),
            _ => None,
        }
    }
}

/// A message for a run, stored durably before the run acts on it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboxMessage {
    /// An external event for the waiting step at `path`.
    Event {
        path: String,
        name: String,
        key: String,
        payload: serde_json::Value,
        /// Who sent it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
    },
    /// A person's decision on the human task at `path`.
    Decision {
        path: String,
        person: Person,
        #[serde(flatten)]
        decision: Decision,
    },
    /// A person takes the human task at `path` to work on it.
    Claim {
        path: String,
        person: Person,
    },
    /// A person gives the task at `path` back to its assignees.
    Unclaim {
        path: String,
        person: Person,
    },
    Cancel {
        actor: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Pause {
        actor: String,
    },
    Resume {
        actor: String,
    },
    /// Run a failed or escalated step again, optionally with new input.
    Retry {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<serde_json::Value>,
        actor: String,
    },
    /// Complete an escalated step without running it: with `output` when a person
    /// supplies one, with `null` when they skip it.
    Resolve {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<serde_json::Value>,
        actor: String,
    },
    /// Abandon everything open and continue from top-level step `step`.
    Restart {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<serde_json::Value>,
        actor: String,
    },
}

/// A run with its steps, as shown to people.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunView {
    #[serde(flatten)]
    pub run: RunRecord,
    /// Step executions by path, in the order they were scheduled.
    pub steps: Vec<StepView>,
}

impl RunView {
    /// The view of `run` with `steps` in the order they were scheduled.
    pub fn new(run: RunRecord, steps: impl IntoIterator<Item = (String, StepRecord)>) -> RunView {
        let mut steps: Vec<StepView> = steps
            .into_iter()
            .map(|(path, record)| StepView { path, record })
            .collect();
        steps.sort_by(|a, b| {
            (a.record.scheduled_ms, &a.path).cmp(&(b.record.scheduled_ms, &b.path))
        });
        RunView { run, steps }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepView {
    pub path: String,
    #[serde(flatten)]
    pub record: StepRecord,
}

/// The path of a step: its id, prefixed by the for-each iterations it runs in.
pub fn step_path(prefix: &str, id: &str) -> String {
    format!("{prefix}{id}")
}

/// The prefix of a path (`lines[3].` of `lines[3].check`; empty at the top level).
pub fn path_prefix(path: &str) -> &str {
    match path.rfind('.') {
        Some(i) => &path[..=i],
        None => "",
    }
}

/// The step id of a path.
pub fn path_step(path: &str) -> &str {
    &path[path_prefix(path).len()..]
}

/// The prefix of iteration `index` of the for-each at `container_path`.
pub fn iteration_prefix(container_path: &str, index: usize) -> String {
    format!("{container_path}[{index}].")
}

/// For an iteration prefix (`a[1].lines[3].`): the for-each's path (`a[1].lines`) and
/// the index (3). `None` for a prefix that does not end in an iteration.
pub fn split_iteration(prefix: &str) -> Option<(&str, usize)> {
    let inner = prefix.strip_suffix("].")?;
    let open = inner.rfind('[')?;
    Some((&inner[..open], inner[open + 1..].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(path_prefix("a[1].lines[3].check"), "a[1].lines[3].");
        assert_eq!(path_step("a[1].lines[3].check"), "check");
        assert_eq!(path_prefix("check"), "");
        assert_eq!(split_iteration("a[1].lines[3]."), Some(("a[1].lines", 3)));
        assert_eq!(split_iteration(""), None);
        assert_eq!(iteration_prefix("lines", 2), "lines[2].");
    }
}

/// A waiting human task, as its inbox shows it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct TaskView {
    pub run_id: String,
    pub workflow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub path: String,
    /// The decisions to choose from; the first is the approving one.
    pub outcomes: Vec<String>,
    /// JSON Schema of the data to fill in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<serde_json::Value>,
    /// For a review: the JSON Schema of the output under review (the action's, in the
    /// plugin version that produced it), to build the correction form from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_schema: Option<serde_json::Value>,
    /// What the task shows the person (the step's `input`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    pub opened_ms: u64,
    #[serde(flatten)]
    pub task: TaskState,
}

/// A step in the exception queue: it failed for good with `on_error: escalate`, and its
/// run waits for a person to retry it, supply its output, skip it, or abort the run.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ExceptionView {
    pub run_id: String,
    pub workflow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub path: String,
    #[serde(flatten)]
    pub step: StepRecord,
}
