//! The plain Rust types plugin functions work with.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::wit::types as wit;

/// Where a connector call comes from.
///
/// Every attempt of the same workflow step sees the same [`idempotency_key`](Self::idempotency_key):
/// forward it (for example as an `Idempotency-Key` header) so the far end performs the
/// side effect exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Call {
    /// The workflow run.
    pub run_id: String,
    /// The step within the run.
    pub step_id: String,
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub attempt: u32,
    /// Stable across every attempt of this step.
    pub idempotency_key: String,
}

impl From<wit::CallContext> for Call {
    fn from(ctx: wit::CallContext) -> Self {
        Call {
            run_id: ctx.run_id,
            step_id: ctx.step_id,
            attempt: ctx.attempt,
            idempotency_key: ctx.idempotency_key,
        }
    }
}

/// A typed failure: what went wrong and whether another attempt can help.
///
/// ```
/// use baton_sdk::Failure;
/// let f = Failure::new("erp_timeout", "the ERP did not answer within 10 s")
///     .retryable()
///     .with_details(serde_json::json!({ "po_number": "PO-1" }));
/// assert!(f.retryable);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Failure {
    /// Stable machine-readable code, e.g. `not_found`, `upstream_unavailable`.
    pub code: String,
    /// A sentence for the person who reads the run's timeline.
    pub message: String,
    /// Whether the engine should try again (ERP timeout: yes; unknown vendor: no).
    pub retryable: bool,
    /// Anything a person fixing the problem needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl Failure {
    /// A permanent (not retryable) failure without details.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
            retryable: false,
            details: None,
        }
    }

    /// Failure code `invalid_input`: the input does not make sense for this action.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Failure::new("invalid_input", message)
    }

    /// Mark the failure retryable: another attempt may succeed.
    pub fn retryable(self) -> Self {
        self.with_retryable(true)
    }

    /// Set whether the failure is retryable.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Attach details (any JSON) for the person fixing the problem.
    pub fn with_details(mut self, details: impl Into<Value>) -> Self {
        self.details = Some(details.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Failure {}

impl From<Failure> for wit::Failure {
    fn from(f: Failure) -> Self {
        wit::Failure {
            code: f.code,
            message: f.message,
            retryable: f.retryable,
            details: f.details.map(|d| d.to_string()),
        }
    }
}

/// A rule's verdict: an outcome label (one the rule declared) and the reasons, written
/// for the person who reads the run's timeline.
///
/// ```
/// use baton_sdk::Decision;
/// let d = Decision::new("review").because("The invoice total exceeds 10,000.00 EUR.");
/// assert_eq!(d.reasons.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// One of the rule's declared outcomes, e.g. `approve`.
    pub outcome: String,
    /// Why, one sentence each.
    pub reasons: Vec<String>,
}

impl Decision {
    /// A decision with no reasons yet.
    pub fn new(outcome: impl Into<String>) -> Self {
        Decision {
            outcome: outcome.into(),
            reasons: Vec::new(),
        }
    }

    /// A decision with the given reasons.
    pub fn with_reasons<R: Into<String>>(
        outcome: impl Into<String>,
        reasons: impl IntoIterator<Item = R>,
    ) -> Self {
        Decision {
            outcome: outcome.into(),
            reasons: reasons.into_iter().map(Into::into).collect(),
        }
    }

    /// Add a reason (builder style).
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reasons.push(reason.into());
        self
    }

    /// Add a reason.
    pub fn push_reason(&mut self, reason: impl Into<String>) {
        self.reasons.push(reason.into());
    }
}

impl From<Decision> for wit::Decision {
    fn from(d: Decision) -> Self {
        wit::Decision {
            outcome: d.outcome,
            reasons: d.reasons,
        }
    }
}
