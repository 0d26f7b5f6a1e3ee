//! Workflow definitions as written (YAML or JSON), before validation.
//!
//! The syntax is documented field by field in `docs/workflows.md`; this module only parses
//! it. [`super::workflow`] checks it and compiles it.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A definition as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// jq: the run's business key, from `.input`.
    #[serde(default)]
    pub key: Option<String>,
    /// JSON Schema every run's input must satisfy.
    #[serde(default)]
    pub input_schema: Option<serde_json::Value>,
    /// Template: the run's output when it succeeds.
    #[serde(default)]
    pub output: Option<serde_json::Value>,
    pub steps: Vec<StepDef>,
}

/// One step as written. Exactly one of the kind fields (`call`, `rule`, `branch`,
/// `parallel`, `for_each`, `wait`, `human`, `end`, `fail`) is set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub id: String,

    pub call: Option<String>,
    pub rule: Option<String>,
    pub branch: Option<Vec<Case>>,
    pub parallel: Option<BTreeMap<String, Vec<StepDef>>>,
    pub for_each: Option<String>,
    pub wait: Option<WaitDef>,
    pub human: Option<HumanDef>,
    pub end: Option<serde_json::Value>,
    pub fail: Option<FailDef>,

    /// Template: the input of a `call` or `rule`.
    pub input: Option<serde_json::Value>,
    pub next: Option<NextDef>,
    #[serde(rename = "else")]
    pub otherwise: Option<String>,
    pub retry: Option<RetryDef>,
    pub timeout: Option<String>,
    pub on_error: Option<OnErrorDef>,
    /// `call`: `none` when the action changes nothing outside Baton (it then runs with
    /// the network closed and shares the commit of the step that fed it), or `external`
    /// (the default).
    pub effects: Option<String>,
    /// `for_each`: how many iterations run at once.
    pub concurrency: Option<u32>,
    /// `for_each`: the body run for every item.
    pub steps: Option<Vec<StepDef>>,
}

/// One case of a `branch`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(rename = "if")]
    pub condition: String,
    pub next: String,
}

/// Where to go after a step: one step, or a step per outcome.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum NextDef {
    Step(String),
    Routes(BTreeMap<String, String>),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    pub attempts: u32,
    #[serde(default)]
    pub backoff: Option<String>,
    #[serde(default)]
    pub max_backoff: Option<String>,
    #[serde(default)]
    pub multiplier: Option<f64>,
    #[serde(default)]
    pub jitter: Option<bool>,
}

/// `fail`, `escalate`, or `{goto: STEP}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OnErrorDef {
    Action(String),
    Goto { goto: String },
}

/// Exactly one of `for` (a duration), `until` (jq: an RFC 3339 time or unix milliseconds)
/// or `event` (with an optional `key`, jq, defaulting to the run's business key).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitDef {
    #[serde(rename = "for")]
    pub duration: Option<String>,
    pub until: Option<String>,
    pub event: Option<String>,
    pub key: Option<String>,
    /// For `event`: give up after this long (the step fails with `wait_timeout`).
    pub timeout: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanDef {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub assignees: Vec<String>,
    /// JSON Schema of the data the person fills in.
    #[serde(default)]
    pub form: Option<serde_json::Value>,
    /// The decisions a person may take; default `[approved, rejected]`. The first is
    /// the approving one that `approvals` counts.
    #[serde(default)]
    pub outcomes: Option<Vec<String>>,
    /// N-of-M: how many distinct people must choose the first outcome (default 1).
    /// Any other outcome decides the task at once.
    #[serde(default)]
    pub approvals: Option<u32>,
    /// Segregation of duties: who may not decide. `requester` is whoever started the
    /// run; anything else is jq giving a user name (or a list of them).
    #[serde(default)]
    pub not_by: Vec<String>,
    /// How long the task may wait before it escalates (`4h`, `2d`).
    #[serde(default)]
    pub due: Option<String>,
    /// Users or `role:NAME`s who may act on the task once it is overdue.
    #[serde(default)]
    pub escalate_to: Vec<String>,
    /// The id of a call or rule step whose output the person reviews and may correct.
    #[serde(default)]
    pub review: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailDef {
    pub code: String,
    /// Template (usually a jq string) for the message.
    #[serde(default)]
    pub message: Option<serde_json::Value>,
}

/// The text format a definition is written in.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// JSON for `.json` files, YAML otherwise.
    pub fn from_file_name(name: &str) -> Format {
        if name.to_ascii_lowercase().ends_with(".json") {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// One thing wrong with a definition, located as precisely as the source allows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The step it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The field, as a path (`retry.attempts`, `input.document`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 1-based line in the file, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(step) = &self.step {
            write!(f, "step `{step}`: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Parses `source` as `format`. A syntax or shape error is one [`Problem`] with the
/// parser's line.
pub fn parse(source: &str, format: Format) -> Result<Definition, Problem> {
    match format {
        Format::Json => serde_json::from_str(source).map_err(|e| Problem {
            step: None,
            field: None,
            line: Some(e.line()),
            message: e.to_string(),
        }),
        Format::Yaml => serde_yaml_ng::from_str(source).map_err(|e| {
            let line = e.location().map(|l| l.line());
            // The message repeats the location; drop it since `line` carries it.
            let message = e.to_string();
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            Problem {
                step: None,
                field: None,
                line,
                message,
            }
        }),
    }
}

/// The line of `field` inside step `step` of a YAML or JSON source, found by looking for
/// the step's `id` and then the field's key below it. Best effort: `None` when unsure.
pub fn locate(source: &str, step: Option<&str>, field: Option<&str>) -> Option<usize> {
    let lines: Vec<&str> = source.lines().collect();
    let key_of = |line: &str| -> Option<(usize, String, String)> {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let trimmed = trimmed.strip_prefix("- ").unwrap_or(trimmed).trim_start();
        let trimmed = trimmed.trim_start_matches(['{', ',', ' ']);
        let (key, rest) = trimmed.split_once(':')?;
        let key = key.trim().trim_matches(['"', '\'']).to_owned();
        let value = rest
            .trim()
            .trim_end_matches([',', '}'])
            .trim()
            .trim_matches(['"', '\''])
            .to_owned();
        Some((indent, key, value))
    };
    let start = match step {
        Some(step) => lines
            .iter()
            .position(|l| key_of(l).is_some_and(|(_, k, v)| k == "id" && v == step))?,
        None => 0,
    };
    let Some(field) = field else {
        return Some(start + 1);
    };
    let first = field.split(['.', '[']).next().unwrap_or(field);
    for (i, line) in lines.iter().enumerate().skip(start) {
        if i > start && step.is_some() && key_of(line).is_some_and(|(_, k, _)| k == "id") {
            break;
        }
        if key_of(line).is_some_and(|(_, k, _)| k == first) {
            return Some(i + 1);
        }
    }
    Some(start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "name: demo\nsteps:\n  - id: a\n    call: echo/echo\n    input: { x: .input }\n  - id: b\n    call: echo/echo\n    next: c\n";

    #[test]
    fn yaml_syntax_errors_carry_the_line() {
        let err = parse("name: x\nsteps:\n  - id: a\n    call: [\n", Format::Yaml).unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
        let err = parse(
            "name: x\nsteps:\n  - id: a\n    cal: echo/echo\n",
            Format::Yaml,
        )
        .unwrap_err();
        assert_eq!(err.line, Some(4), "{err:?}");
        assert!(err.message.contains("unknown field `cal`"), "{err}");
    }

    #[test]
    fn locates_fields_inside_steps() {
        assert_eq!(locate(YAML, Some("b"), Some("next")), Some(8));
        assert_eq!(locate(YAML, Some("a"), Some("input.x")), Some(5));
        assert_eq!(locate(YAML, Some("a"), Some("next")), Some(3));
        assert_eq!(locate(YAML, None, Some("name")), Some(1));
    }
}
