//! Human tasks, the people side: who may act on one, how decisions add up to a result
//! (N-of-M approval), claims, and what a reviewer's edit of a plugin's output records.
//!
//! The rules are pure functions of the task's persisted state, so the API checks a
//! request with the same code the run applies when the request reaches it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The role that may act on every task (segregation of duties still applies).
const SUPERVISOR_ROLE: &str = "admin";
/// The role that works tasks that name no assignees.
const DEFAULT_ROLE: &str = "operator";
/// How an assignee entry names a role rather than a user.
const ROLE_PREFIX: &str = "role:";

/// Someone acting on a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The identity recorded in the audit chain (`user:alice`).
    pub actor: String,
    /// The user name assignees and segregation of duties refer to.
    pub user: String,
    /// The role of the token they act with.
    pub role: String,
}

/// The state of a waiting human step that people act on, kept in its step record.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskState {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Users (`alice`) and roles (`role:approver`) who may act; escalation adds to it.
    #[serde(default)]
    pub assignees: Vec<String>,
    /// Users who may not decide it (segregation of duties), fixed when it opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// How many distinct people must choose the task's first outcome.
    pub approvals: u32,
    /// Approvals so far, when more than one is needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Vote>,
    /// The user working on it; nobody else may decide while it is claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// When it escalates (unix ms), if it has a due time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<u64>,
    /// Whether the due time passed and it escalated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escalated: bool,
    /// The plugin output under review, which the decision may correct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

/// One person's approval on an N-of-M task.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Vote {
    pub user: String,
    pub actor: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub at_ms: u64,
}

/// A plugin's output put before a reviewer.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Review {
    /// The path of the reviewed step.
    pub path: String,
    /// Plugin name and action that produced the output (the corrections ledger's key).
    pub plugin: String,
    pub action: String,
    /// The digest of the plugin version that produced it.
    pub plugin_digest: String,
    pub input: Value,
    pub output: Value,
}

/// What a person submits to decide a task.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decision {
    pub outcome: String,
    /// The form's data.
    #[serde(default)]
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// For a review: the reviewed output as corrected (absent: accepted as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// Why a person may not do what they asked on a task.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskRefusal {
    #[error("step {0} is not a waiting human task")]
    NotATask(String),
    #[error("user `{user}` is not among the assignees of this task ({assignees})")]
    NotAssignee { user: String, assignees: String },
    #[error(
        "segregation of duties: user `{0}` may not decide this task (they requested the run or are named by the task's not_by)"
    )]
    SegregationOfDuties(String),
    #[error("the task is claimed by `{0}`; they, or an admin, must unclaim it first")]
    ClaimedByOther(String),
    #[error("user `{0}` has already approved this task; another person must")]
    AlreadyVoted(String),
    #[error(
        "a task that needs {0} approvals cannot be claimed: each approver decides on their own"
    )]
    NotClaimable(u32),
    #[error("user `{0}` has not claimed this task")]
    NotClaimed(String),
    #[error("`{outcome}` is not an outcome of this task (outcomes: {})", .outcomes.join(", "))]
    InvalidOutcome {
        outcome: String,
        outcomes: Vec<String>,
    },
    #[error("the data does not match the task's form:\n  {}", .0.join("\n  "))]
    InvalidData(Vec<String>),
    #[error("`output` corrects a reviewed plugin output, and this task reviews none")]
    NothingToReview,
}

impl TaskRefusal {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TaskRefusal::NotATask(_) => "not_a_task",
            TaskRefusal::NotAssignee { .. } => "not_assignee",
            TaskRefusal::SegregationOfDuties(_) => "segregation_of_duties",
            TaskRefusal::ClaimedByOther(_) => "claimed_by_other",
            TaskRefusal::AlreadyVoted(_) => "already_voted",
            TaskRefusal::NotClaimable(_) => "not_claimable",
            TaskRefusal::NotClaimed(_) => "not_claimed",
            TaskRefusal::InvalidOutcome { .. } => "invalid_outcome",
            TaskRefusal::InvalidData(_) => "invalid_data",
            TaskRefusal::NothingToReview => "nothing_to_review",
        }
    }
}

/// What a decision did to a task.
#[derive(Debug, PartialEq, Eq)]
pub enum Tally {
    /// The task is decided with this outcome.
    Decided,
    /// An approval was counted; this many more are needed.
    Pending(u32),
}

impl TaskState {
    /// Whether `person` is someone this task is for (ignoring claims and votes).
    pub fn is_for(&self, person: &Person) -> bool {
        if person.role == SUPERVISOR_ROLE {
            return true;
        }
        if self.assignees.is_empty() {
            return person.role == DEFAULT_ROLE;
        }
        self.assignees
            .iter()
            .any(|a| match a.strip_prefix(ROLE_PREFIX) {
                Some(role) => role == person.role,
                None => *a == person.user,
            })
    }

    /// Whether `person` could decide the task now: the inbox shows them only these.
    pub fn actionable_by(&self, person: &Person) -> bool {
        self.may_decide(person).is_ok()
    }

    fn may_decide(&self, person: &Person) -> Result<(), TaskRefusal> {
        if !self.is_for(person) {
            return Err(TaskRefusal::NotAssignee {
                user: person.user.clone(),
                assignees: if self.assignees.is_empty() {
                    format!("none named, so {DEFAULT_ROLE}s and {SUPERVISOR_ROLE}s")
                } else {
                    self.assignees.join(", ")
                },
            });
        }
        if self.excluded.contains(&person.user) {
            return Err(TaskRefusal::SegregationOfDuties(person.user.clone()));
        }
        if let Some(holder) = &self.claimed_by
            && *holder != person.user
        {
            return Err(TaskRefusal::ClaimedByOther(holder.clone()));
        }
        if self.votes.iter().any(|v| v.user == person.user) {
            return Err(TaskRefusal::AlreadyVoted(person.user.clone()));
        }
        Ok(())
    }

    /// Checks a decision against the task without changing it.
    pub fn check_decision(
        &self,
        person: &Person,
        decision: &Decision,
        outcomes: &[String],
    ) -> Result<(), TaskRefusal> {
        self.may_decide(person)?;
        if !outcomes.contains(&decision.outcome) {
            return Err(TaskRefusal::InvalidOutcome {
                outcome: decision.outcome.clone(),
                outcomes: outcomes.to_vec(),
            });
        }
        if decision.output.is_some() && self.review.is_none() {
            return Err(TaskRefusal::NothingToReview);
        }
        Ok(())
    }

    /// Applies a checked decision: the first outcome needs `approvals` distinct people,
    /// any other outcome decides at once (one rejection is a veto).
    pub fn tally(&mut self, person: &Person, decision: &Decision, outcomes: &[String]) -> Tally {
        let approving = outcomes.first() == Some(&decision.outcome);
        if !approving || self.approvals <= 1 {
            return Tally::Decided;
        }
        self.votes.push(Vote {
            user: person.user.clone(),
            actor: person.actor.clone(),
            outcome: decision.outcome.clone(),
            data: decision.data.clone(),
            comment: decision.comment.clone(),
            at_ms: super::duration::now_ms(),
        });
        let have = self.votes.len() as u32;
        if have >= self.approvals {
            Tally::Decided
        } else {
            Tally::Pending(self.approvals - have)
        }
    }

    /// Claims the task for `person`.
    pub fn claim(&mut self, person: &Person) -> Result<(), TaskRefusal> {
        if self.approvals > 1 {
            return Err(TaskRefusal::NotClaimable(self.approvals));
        }
        self.may_decide(person)?;
        self.claimed_by = Some(person.user.clone());
        Ok(())
    }

    /// Releases the claim: its holder may, and so may a supervisor.
    pub fn unclaim(&mut self, person: &Person) -> Result<(), TaskRefusal> {
        match &self.claimed_by {
            Some(holder) if *holder == person.user || person.role == SUPERVISOR_ROLE => {
                self.claimed_by = None;
                Ok(())
            }
            _ => Err(TaskRefusal::NotClaimed(person.user.clone())),
        }
    }

    /// The due time passed: the escalation targets may act from now on.
    pub fn escalate(&mut self, to: &[String]) {
        self.escalated = true;
        for target in to {
            if !self.assignees.contains(target) {
                self.assignees.push(target.clone());
            }
        }
    }
}

/// Whether a reviewed output is the original, comparing numbers by value: a form sends
/// `5200` back for an output's `5200.0`, and that is an acceptance, not a correction.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, a)| y.get(key).is_some_and(|b| same_json(a, b)))
        }
        _ => a == b,
    }
}

/// The user an actor identity names (`user:alice` → `alice`).
pub fn user_of(actor: &str) -> &str {
    actor.strip_prefix("user:").unwrap_or(actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(user: &str, role: &str) -> Person {
        Person {
            actor: format!("user:{user}"),
            user: user.into(),
            role: role.into(),
        }
    }

    fn decision(outcome: &str) -> Decision {
        Decision {
            outcome: outcome.into(),
            data: Value::Null,
            comment: None,
            output: None,
        }
    }

    fn outcomes() -> Vec<String> {
        vec!["approved".into(), "rejected".into()]
    }

    #[test]
    fn assignees_name_users_and_roles() {
        let task = TaskState {
            assignees: vec!["alice".into(), "role:viewer".into()],
            approvals: 1,
            ..TaskState::default()
        };
        assert!(task.is_for(&person("alice", "trigger")));
        assert!(task.is_for(&person("bob", "viewer")));
        assert!(!task.is_for(&person("carol", "operator")));
        assert!(task.is_for(&person("root", "admin")));
        let open = TaskState {
            approvals: 1,
            ..TaskState::default()
        };
        assert!(open.is_for(&person("carol", "operator")));
        assert!(!open.is_for(&person("dave", "viewer")));
    }

    #[test]
    fn segregation_of_duties_binds_admins_too() {
        let task = TaskState {
            excluded: vec!["root".into()],
            approvals: 1,
            ..TaskState::default()
        };
        assert_eq!(
            task.check_decision(&person("root", "admin"), &decision("approved"), &outcomes()),
            Err(TaskRefusal::SegregationOfDuties("root".into()))
        );
    }

    #[test]
    fn n_of_m_counts_distinct_approvers_and_a_rejection_vetoes() {
        let mut task = TaskState {
            approvals: 2,
            ..TaskState::default()
        };
        let (a, b) = (person("a", "operator"), person("b", "operator"));
        assert_eq!(
            task.tally(&a, &decision("approved"), &outcomes()),
            Tally::Pending(1)
        );
        assert_eq!(
            task.check_decision(&a, &decision("approved"), &outcomes()),
            Err(TaskRefusal::AlreadyVoted("a".into()))
        );
        assert_eq!(
            task.clone().tally(&b, &decision("rejected"), &outcomes()),
            Tally::Decided
        );
        assert_eq!(
            task.tally(&b, &decision("approved"), &outcomes()),
            Tally::Decided
        );
    }

    #[test]
    fn claims_block_others_until_released() {
        let mut task = TaskState {
            approvals: 1,
            ..TaskState::default()
        };
        let (a, b) = (person("a", "operator"), person("b", "operator"));
        task.claim(&a).unwrap();
        assert_eq!(
            task.check_decision(&b, &decision("approved"), &outcomes()),
            Err(TaskRefusal::ClaimedByOther("a".into()))
        );
        assert_eq!(task.unclaim(&b), Err(TaskRefusal::NotClaimed("b".into())));
        task.unclaim(&person("root", "admin")).unwrap();
        assert!(task.actionable_by(&b));
    }

    #[test]
    fn a_review_sent_back_with_the_same_numbers_is_no_correction() {
        let original = serde_json::json!({"total": 5200.0, "lines": [{"qty": 2.0}], "po": "PO-1"});
        let sent = serde_json::json!({"total": 5200, "lines": [{"qty": 2}], "po": "PO-1"});
        assert!(same_json(&sent, &original));
        let changed = serde_json::json!({"total": 5200, "lines": [{"qty": 2}], "po": "PO-2"});
        assert!(!same_json(&changed, &original));
        let emptied = serde_json::json!({"total": null, "lines": [{"qty": 2}], "po": "PO-1"});
        assert!(!same_json(&emptied, &original));
        assert!(!same_json(&serde_json::json!({"total": 5200.0}), &original));
    }
}
