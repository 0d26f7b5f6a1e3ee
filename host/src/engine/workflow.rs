//! Checking a definition and compiling it into the step graph the interpreter walks.
//!
//! Everything that can be known before a run starts is checked here, once, when the
//! definition is applied: step ids and targets, reachability, expression syntax, and
//! the plugins and actions it calls (against what is installed).

use super::definition::{self, Definition, NextDef, OnErrorDef, Problem, StepDef};
use super::duration::parse_duration;
use super::expr::{Expr, Template};
use crate::manifest::PluginKind;
use crate::registry::schema;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// What the workflow compiler needs to know about an installed action.
#[derive(Clone, Debug)]
pub struct ActionInfo {
    pub kind: PluginKind,
    pub input_schema: serde_json::Value,
    /// Rules: the outcomes they declare (empty: not declared).
    pub outcomes: Vec<String>,
}

/// Where the compiler looks up plugins and actions (the registry, in the engine).
pub trait Catalog {
    /// The action `action` of plugin `plugin` (`NAME` or `NAME@VERSION`), or why not.
    fn action(&self, plugin: &str, action: &str) -> Result<ActionInfo, String>;
}

/// A compiled, validated workflow version.
#[derive(Debug)]
pub struct Workflow {
    pub name: String,
    pub version: u32,
    pub key: Option<Expr>,
    pub input_schema: Option<jsonschema::Validator>,
    pub output: Option<Template>,
    /// The first step of the top-level sequence.
    pub first: String,
    pub steps: HashMap<String, Step>,
    /// Plugin references (`NAME` or `NAME@VERSION`) the steps call.
    pub plugins: BTreeSet<String>,
}

/// Where a step leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Step(String),
    /// The end of the sequence the step is in: the run, a parallel branch or a for-each
    /// iteration.
    End,
}

#[derive(Debug)]
pub enum Next {
    To(Target),
    /// Rules and human tasks: by outcome.
    Routes(BTreeMap<String, Target>),
}

/// A call of one action: `plugin[@version]/action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRef {
    /// `NAME` or `NAME@VERSION`.
    pub plugin: String,
    pub action: String,
}

#[derive(Debug)]
pub enum WaitKind {
    For(Duration),
    /// jq: an RFC 3339 time or unix milliseconds.
    Until(Expr),
    Event {
        name: String,
        /// jq; `None`: the run's business key.
        key: Option<Expr>,
        timeout: Option<Duration>,
    },
}

#[derive(Debug)]
pub struct HumanTask {
    pub title: String,
    pub description: Option<String>,
    pub assignees: Vec<String>,
    pub form: Option<serde_json::Value>,
    /// The first one is the approving outcome that `approvals` counts.
    pub outcomes: Vec<String>,
    pub approvals: u32,
    pub not_by: Vec<NotBy>,
    pub due: Option<Duration>,
    pub escalate_to: Vec<String>,
    /// The id of the call or rule step under review.
    pub review: Option<String>,
}

/// Someone who may not decide a task (segregation of duties).
#[derive(Debug)]
pub enum NotBy {
    /// Whoever started the run.
    Requester,
    /// jq giving a user name or a list of them.
    Users(Expr),
}

#[derive(Debug)]
pub enum StepKind {
    Call(ActionRef),
    Rule(ActionRef),
    Branch(Vec<(Expr, Target)>),
    /// Branch names with the first step of each.
    Parallel(Vec<(String, String)>),
    ForEach {
        items: Expr,
        concurrency: u32,
        first: String,
    },
    Wait(WaitKind),
    Human(HumanTask),
    End(Option<Template>),
    Fail {
        code: String,
        message: Option<Template>,
    },
}

/// Retry policy of a call or rule. Only retryable failures are retried.
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    /// Total attempts, the first included.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    pub jitter: bool,
}

impl Retry {
    const CALL_DEFAULT: Retry = Retry {
        attempts: 3,
        backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        multiplier: 2.0,
        jitter: true,
    };
    const ONCE: Retry = Retry {
        attempts: 1,
        ..Retry::CALL_DEFAULT
    };

    /// The delay before attempt `next` (2, 3, ...): `backoff * multiplier^(next-2)`,
    /// capped, then with full jitter over its upper half when enabled.
    pub fn delay(&self, next: u32, random: u64) -> Duration {
        let exponent = next.saturating_sub(2).min(64) as i32;
        let base = self.backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let secs = if self.jitter {
            let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
            capped / 2.0 + capped / 2.0 * unit
        } else {
            capped
        };
        Duration::from_secs_f64(secs)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnError {
    Fail,
    Escalate,
    Goto(Target),
}

/// The container a step belongs to, when it is not top-level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    pub container: String,
    /// The parallel branch; `None` inside a for-each body.
    pub branch: Option<String>,
}

#[derive(Debug)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    pub input: Option<Template>,
    pub next: Next,
    /// Branch, rule or human: where to go when no case or route matches.
    pub otherwise: Option<Target>,
    pub retry: Retry,
    pub timeout: Option<Duration>,
    pub on_error: OnError,
    pub parent: Option<Parent>,
    /// What a call may do outside Baton; `External` for every other kind.
    pub effects: Effects,
}

/// What a call step may change outside Baton (`effects`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Effects {
    /// Other systems, perhaps: the attempt is committed before the call starts.
    #[default]
    External,
    /// Nothing: the call runs with the network closed and, like a rule, is decided
    /// before the commit of the step that fed it (a crash before that commit runs it
    /// again, and nothing outside saw the first run).
    None,
}

impl Step {
    /// The kind as a word, for records and messages.
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }
}

impl StepKind {
    /// The kind as a word.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Call(_) => "call",
            StepKind::Rule(_) => "rule",
            StepKind::Branch(_) => "branch",
            StepKind::Parallel(_) => "parallel",
            StepKind::ForEach { .. } => "for_each",
            StepKind::Wait(_) => "wait",
            StepKind::Human(_) => "human",
            StepKind::End(_) => "end",
            StepKind::Fail { .. } => "fail",
        }
    }
}

/// Why a definition was refused: every problem found, each located.
#[derive(Debug, thiserror::Error)]
#[error("{file}: the definition is invalid:\n{}", format_problems(.problems))]
pub struct InvalidDefinition {
    pub file: String,
    pub problems: Vec<Problem>,
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses, checks and compiles a definition. `file` names it in errors. Without a
/// catalog, plugin references are not checked (a version being loaded again was checked
/// when it was applied).
pub fn compile(
    file: &str,
    source: &str,
    format: definition::Format,
    version: u32,
    catalog: Option<&dyn Catalog>,
) -> Result<Workflow, InvalidDefinition> {
    let invalid = |problems: Vec<Problem>| InvalidDefinition {
        file: file.to_owned(),
        problems,
    };
    let definition = definition::parse(source, format).map_err(|p| invalid(vec![p]))?;
    let mut compiler = Compiler {
        source,
        catalog,
        problems: Vec::new(),
        steps: HashMap::new(),
        plugins: BTreeSet::new(),
    };
    let workflow = compiler.definition(definition, version);
    if compiler.problems.is_empty() {
        Ok(workflow.expect("no problems means a workflow"))
    } else {
        Err(invalid(compiler.problems))
    }
}

/// The name a workflow is applied under (checked before anything is stored).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

struct Compiler<'a> {
    source: &'a str,
    catalog: Option<&'a dyn Catalog>,
    problems: Vec<Problem>,
    steps: HashMap<String, Step>,
    plugins: BTreeSet<String>,
}

impl Compiler<'_> {
    fn problem(&mut self, step: Option<&str>, field: Option<&str>, message: impl Into<String>) {
        self.problems.push(Problem {
            step: step.map(str::to_owned),
            field: field.map(str::to_owned),
            line: definition::locate(self.source, step, field),
            message: message.into(),
        });
    }

    fn definition(&mut self, def: Definition, version: u32) -> Option<Workflow> {
        if !valid_name(&def.name) {
            self.problem(
                None,
                Some("name"),
                format!(
                    "`{}` is not a valid workflow name: use 1-64 lowercase letters, digits, `-` or `_`",
                    def.name
                ),
            );
        }
        let key = def.key.as_deref().and_then(|k| self.expr(None, "key", k));
        let input_schema = def.input_schema.as_ref().and_then(|s| {
            schema::compile(s)
                .map_err(|e| self.problem(None, Some("input_schema"), e))
                .ok()
        });
        let output = def
            .output
            .as_ref()
            .and_then(|o| self.template(None, "output", o));
        if def.steps.is_empty() {
            self.problem(None, Some("steps"), "a workflow needs at least one step");
            return None;
        }
        let first = self.sequence(&def.steps, None);
        Some(Workflow {
            name: def.name,
            version,
            key,
            input_schema,
            output,
            first,
            steps: std::mem::take(&mut self.steps),
            plugins: std::mem::take(&mut self.plugins),
        })
    }

    /// Compiles a list of steps (the top level, a parallel branch or a for-each body);
    /// returns its first step's id.
    fn sequence(&mut self, defs: &[StepDef], parent: Option<Parent>) -> String {
        let ids: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
        for (i, def) in defs.iter().enumerate() {
            let following = match ids.get(i + 1) {
                Some(id) => Target::Step((*id).to_owned()),
                None => Target::End,
            };
            self.step(def, following, &ids, parent.clone());
        }
        self.check_reviews(defs, &ids);
        self.check_reachable(defs);
        defs[0].id.clone()
    }

    fn step(
        &mut self,
        def: &StepDef,
        following: Target,
        siblings: &[&str],
        parent: Option<Parent>,
    ) {
        let id = def.id.as_str();
        let sid = Some(id);
        if !valid_name(id) || id == "end" {
            self.problem(
                sid,
                Some("id"),
                format!("`{id}` is not a valid step id: use lowercase letters, digits, `-` or `_` (and not `end`)"),
            );
        }
        if self.steps.contains_key(id) {
            self.problem(sid, Some("id"), format!("step id `{id}` is used twice"));
        }
        let kinds: Vec<&str> = [
            ("call", def.call.is_some()),
            ("rule", def.rule.is_some()),
            ("branch", def.branch.is_some()),
            ("parallel", def.parallel.is_some()),
            ("for_each", def.for_each.is_some()),
            ("wait", def.wait.is_some()),
            ("human", def.human.is_some()),
            ("end", def.end.is_some()),
            ("fail", def.fail.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        let kind_name = match kinds.as_slice() {
            [one] => *one,
            [] => {
                self.problem(
                    sid,
                    None,
                    "the step has no kind: give it one of call, rule, branch, parallel, for_each, wait, human, end, fail",
                );
                return;
            }
            many => {
                self.problem(
                    sid,
                    Some(many[1]),
                    format!(
                        "a step has exactly one kind, this one has {}",
                        many.join(" and ")
                    ),
                );
                return;
            }
        };
        // Fields that only some kinds take.
        let allowed: &[&str] = match kind_name {
            "call" => &["input", "next", "retry", "timeout", "on_error", "effects"],
            "rule" => &["input", "next", "else", "retry", "timeout", "on_error"],
            "branch" => &["else"],
            "parallel" => &["next", "on_error"],
            "for_each" => &["next", "concurrency", "steps", "on_error"],
            "wait" => &["next", "on_error"],
            "human" => &["input", "next", "else"],
            _ => &[],
        };
        for (field, set) in [
            ("input", def.input.is_some()),
            ("next", def.next.is_some()),
            ("else", def.otherwise.is_some()),
            ("retry", def.retry.is_some()),
            ("timeout", def.timeout.is_some()),
            ("on_error", def.on_error.is_some()),
            ("effects", def.effects.is_some()),
            ("concurrency", def.concurrency.is_some()),
            ("steps", def.steps.is_some()),
        ] {
            if set && !allowed.contains(&field) {
                self.problem(
                    sid,
                    Some(field),
                    format!("a {kind_name} step does not take `{field}`"),
                );
            }
        }
        let target = |c: &mut Self, field: &str, to: &str| c.target(id, field, to, siblings);
        let input = def
            .input
            .as_ref()
            .and_then(|t| self.template(sid, "input", t));
        let mut otherwise = def
            .otherwise
            .as_deref()
            .and_then(|to| target(self, "else", to));
        let retry_default = match kind_name {
            "call" => Retry::CALL_DEFAULT,
            _ => Retry::ONCE,
        };
        let retry = match &def.retry {
            Some(r) => self.retry(id, r),
            None => retry_default,
        };
        let timeout = def
            .timeout
            .as_deref()
            .and_then(|t| self.duration(sid, "timeout", t));
        let effects = match def.effects.as_deref() {
            None | Some("external") => Effects::External,
            Some("none") => Effects::None,
            Some(other) => {
                self.problem(
                    sid,
                    Some("effects"),
                    format!("`{other}` is not a kind of effects: use none or external"),
                );
                Effects::External
            }
        };
        let on_error = match &def.on_error {
            None => OnError::Fail,
            Some(OnErrorDef::Action(a)) if a == "fail" => OnError::Fail,
            Some(OnErrorDef::Action(a)) if a == "escalate" => OnError::Escalate,
            Some(OnErrorDef::Action(a)) => {
                self.problem(
                    sid,
                    Some("on_error"),
                    format!("`{a}` is not an error action: use fail, escalate or {{goto: STEP}}"),
                );
                OnError::Fail
            }
            Some(OnErrorDef::Goto { goto }) => target(self, "on_error.goto", goto)
                .map(OnError::Goto)
                .unwrap_or(OnError::Fail),
        };
        let mut routes_allowed = false;
        let kind = match kind_name {
            "call" | "rule" => {
                let reference = def.call.as_deref().or(def.rule.as_deref()).unwrap_or("");
                let expected = if kind_name == "call" {
                    PluginKind::Connector
                } else {
                    PluginKind::Rule
                };
                let action = self.action(id, kind_name, reference, expected, input.as_ref());
                if kind_name == "rule" {
                    routes_allowed = true;
                    if let (Some((_, outcomes)), Some(NextDef::Routes(routes))) =
                        (&action, &def.next)
                    {
                        for outcome in routes.keys() {
                            if !outcomes.is_empty() && !outcomes.contains(outcome) {
                                self.problem(
                                    sid,
                                    Some(&format!("next.{outcome}")),
                                    format!(
                                        "the rule has no outcome `{outcome}` (it declares: {})",
                                        outcomes.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                }
                let action = action.map(|(a, _)| a).unwrap_or(ActionRef {
                    plugin: String::new(),
                    action: String::new(),
                });
                if kind_name == "call" {
                    StepKind::Call(action)
                } else {
                    StepKind::Rule(action)
                }
            }
            "branch" => {
                let cases = def.branch.as_deref().unwrap_or_default();
                if cases.is_empty() {
                    self.problem(sid, Some("branch"), "a branch needs at least one case");
                }
                let mut compiled = Vec::new();
                for (i, case) in cases.iter().enumerate() {
                    let condition = self.expr(sid, &format!("branch[{i}].if"), &case.condition);
                    let to = target(self, &format!("branch[{i}].next"), &case.next);
                    if let (Some(c), Some(t)) = (condition, to) {
                        compiled.push((c, t));
                    }
                }
                // No case matched and no `else`: carry on with the following step.
                otherwise.get_or_insert(following.clone());
                StepKind::Branch(compiled)
            }
            "parallel" => {
                let branches = def.parallel.as_ref().expect("kind checked");
                if branches.is_empty() {
                    self.problem(
                        sid,
                        Some("parallel"),
                        "a parallel step needs at least one branch",
                    );
                }
                let mut firsts = Vec::new();
                for (name, steps) in branches {
                    if steps.is_empty() {
                        self.problem(
                            sid,
                            Some(&format!("parallel.{name}")),
                            "a branch needs at least one step",
                        );
                        continue;
                    }
                    let first = self.sequence(
                        steps,
                        Some(Parent {
                            container: id.to_owned(),
                            branch: Some(name.clone()),
                        }),
                    );
                    firsts.push((name.clone(), first));
                }
                StepKind::Parallel(firsts)
            }
            "for_each" => {
                let items = self.expr(sid, "for_each", def.for_each.as_deref().unwrap_or(""));
                let concurrency = def.concurrency.unwrap_or(1);
                if concurrency == 0 {
                    self.problem(sid, Some("concurrency"), "concurrency must be at least 1");
                }
                let first = match def.steps.as_deref() {
                    Some(steps) if !steps.is_empty() => self.sequence(
                        steps,
                        Some(Parent {
                            container: id.to_owned(),
                            branch: None,
                        }),
                    ),
                    _ => {
                        self.problem(
                            sid,
                            Some("steps"),
                            "a for_each needs `steps`: the body run for every item",
                        );
                        String::new()
                    }
                };
                match items {
                    Some(items) => StepKind::ForEach {
                        items,
                        concurrency: concurrency.max(1),
                        first,
                    },
                    None => StepKind::End(None),
                }
            }
            "wait" => {
                let wait = def.wait.as_ref().expect("kind checked");
                let set = [
                    wait.duration.is_some(),
                    wait.until.is_some(),
                    wait.event.is_some(),
                ];
                if set.iter().filter(|s| **s).count() != 1 {
                    self.problem(
                        sid,
                        Some("wait"),
                        "a wait takes exactly one of `for` (a duration), `until` (a time) or `event` (a name)",
                    );
                }
                if wait.event.is_none() && (wait.key.is_some() || wait.timeout.is_some()) {
                    self.problem(sid, Some("wait"), "`key` and `timeout` go with `event`");
                }
                if let Some(d) = &wait.duration {
                    StepKind::Wait(WaitKind::For(
                        self.duration(sid, "wait.for", d).unwrap_or_default(),
                    ))
                } else if let Some(u) = &wait.until {
                    match self.expr(sid, "wait.until", u) {
                        Some(e) => StepKind::Wait(WaitKind::Until(e)),
                        None => StepKind::End(None),
                    }
                } else {
                    let name = wait.event.clone().unwrap_or_default();
                    if name.is_empty() {
                        self.problem(sid, Some("wait.event"), "the event name is empty");
                    }
                    StepKind::Wait(WaitKind::Event {
                        name,
                        key: wait
                            .key
                            .as_deref()
                            .and_then(|k| self.expr(sid, "wait.key", k)),
                        timeout: wait
                            .timeout
                            .as_deref()
                            .and_then(|t| self.duration(sid, "wait.timeout", t)),
                    })
                }
            }
            "human" => {
                let human = def.human.as_ref().expect("kind checked");
                let outcomes = human
                    .outcomes
                    .clone()
                    .unwrap_or_else(|| vec!["approved".into(), "rejected".into()]);
                if outcomes.is_empty() {
                    self.problem(
                        sid,
                        Some("human.outcomes"),
                        "a human task needs at least one outcome",
                    );
                }
                if let Some(form) = &human.form
                    && let Err(e) = schema::compile(form)
                {
                    self.problem(
                        sid,
                        Some("human.form"),
                        format!("not a valid JSON Schema: {e}"),
                    );
                }
                if let Some(NextDef::Routes(routes)) = &def.next {
                    for outcome in routes.keys() {
                        if !outcomes.contains(outcome) {
                            self.problem(
                                sid,
                                Some(&format!("next.{outcome}")),
                                format!(
                                    "`{outcome}` is not an outcome of this task (outcomes: {})",
                                    outcomes.join(", ")
                                ),
                            );
                        }
                    }
                }
                if human.approvals == Some(0) {
                    self.problem(sid, Some("human.approvals"), "approvals must be at least 1");
                }
                for (field, names) in [
                    ("human.assignees", &human.assignees),
                    ("human.escalate_to", &human.escalate_to),
                ] {
                    for name in names {
                        if name.trim().is_empty() || name == "role:" {
                            self.problem(
                                sid,
                                Some(field),
                                "an empty entry: name a user (`alice`) or a role (`role:operator`)",
                            );
                        }
                    }
                }
                if !human.escalate_to.is_empty() && human.due.is_none() {
                    self.problem(
                        sid,
                        Some("human.escalate_to"),
                        "escalation needs a `due` time to escalate after",
                    );
                }
                let not_by = human
                    .not_by
                    .iter()
                    .filter_map(|entry| match entry.trim() {
                        "requester" => Some(NotBy::Requester),
                        expr => self.expr(sid, "human.not_by", expr).map(NotBy::Users),
                    })
                    .collect();
                routes_allowed = true;
                StepKind::Human(HumanTask {
                    title: human.title.clone(),
                    description: human.description.clone(),
                    assignees: human.assignees.clone(),
                    form: human.form.clone(),
                    outcomes,
                    approvals: human.approvals.unwrap_or(1).max(1),
                    not_by,
                    due: human
                        .due
                        .as_deref()
                        .and_then(|d| self.duration(sid, "human.due", d)),
                    escalate_to: human.escalate_to.clone(),
                    review: human.review.clone(),
                })
            }
            "end" => match def.end.as_ref().expect("kind checked") {
                serde_json::Value::Bool(true) => StepKind::End(None),
                value => StepKind::End(self.template(sid, "end", value)),
            },
            "fail" => {
                let fail = def.fail.as_ref().expect("kind checked");
                if fail.code.is_empty() {
                    self.problem(sid, Some("fail.code"), "the failure code is empty");
                }
                StepKind::Fail {
                    code: fail.code.clone(),
                    message: fail
                        .message
                        .as_ref()
                        .and_then(|m| self.template(sid, "fail.message", m)),
                }
            }
            _ => unreachable!("every kind is handled"),
        };
        let next = match &def.next {
            None => Next::To(following),
            Some(NextDef::Step(to)) => Next::To(target(self, "next", to).unwrap_or(Target::End)),
            Some(NextDef::Routes(routes)) => {
                if !routes_allowed {
                    self.problem(
                        sid,
                        Some("next"),
                        format!("only rule and human steps route by outcome; a {kind_name} step takes `next: STEP`"),
                    );
                }
                let mut compiled = BTreeMap::new();
                for (outcome, to) in routes {
                    if let Some(t) = target(self, &format!("next.{outcome}"), to) {
                        compiled.insert(outcome.clone(), t);
                    }
                }
                Next::Routes(compiled)
            }
        };
        self.steps.insert(
            id.to_owned(),
            Step {
                id: id.to_owned(),
                kind,
                input,
                next,
                otherwise,
                retry,
                timeout,
                on_error,
                parent,
                effects,
            },
        );
    }

    fn target(&mut self, step: &str, field: &str, to: &str, siblings: &[&str]) -> Option<Target> {
        if to == "end" {
            return Some(Target::End);
        }
        if siblings.contains(&to) {
            return Some(Target::Step(to.to_owned()));
        }
        self.problem(
            Some(step),
            Some(field),
            format!(
                "unknown step `{to}`: a step can go to `end` or a step of its own list ({})",
                siblings.join(", ")
            ),
        );
        None
    }

    /// A review names a call or rule of its own list, whose output it puts before people.
    fn check_reviews(&mut self, defs: &[StepDef], siblings: &[&str]) {
        for def in defs {
            let Some(reviewed) = def.human.as_ref().and_then(|h| h.review.as_deref()) else {
                continue;
            };
            let problem = match self.steps.get(reviewed).map(|s| &s.kind) {
                _ if !siblings.contains(&reviewed) => format!(
                    "unknown step `{reviewed}`: a review names a call or rule of its own list ({})",
                    siblings.join(", ")
                ),
                Some(StepKind::Call(_) | StepKind::Rule(_)) => continue,
                Some(other) => format!(
                    "step `{reviewed}` is a {} step; only a call's or a rule's output can be reviewed",
                    other.name()
                ),
                None => continue,
            };
            self.problem(Some(&def.id), Some("human.review"), problem);
        }
    }

    fn check_reachable(&mut self, defs: &[StepDef]) {
        let mut seen = BTreeSet::new();
        let mut todo = vec![defs[0].id.clone()];
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(step) = self.steps.get(&id) else {
                continue;
            };
            let mut targets: Vec<&Target> = Vec::new();
            match &step.next {
                Next::To(t) => targets.push(t),
                Next::Routes(r) => targets.extend(r.values()),
            }
            targets.extend(step.otherwise.iter());
            if let StepKind::Branch(cases) = &step.kind {
                targets.extend(cases.iter().map(|(_, t)| t));
            }
            if let OnError::Goto(t) = &step.on_error {
                targets.push(t);
            }
            // Terminal kinds lead nowhere, whatever their `next` default says.
            if matches!(step.kind, StepKind::End(_) | StepKind::Fail { .. }) {
                targets.clear();
            }
            for t in targets {
                if let Target::Step(s) = t {
                    todo.push(s.clone());
                }
            }
        }
        for def in defs {
            if !seen.contains(&def.id) && self.steps.contains_key(&def.id) {
                self.problem(
                    Some(&def.id),
                    None,
                    "the step is unreachable: no step leads to it",
                );
            }
        }
    }

    fn action(
        &mut self,
        step: &str,
        field: &str,
        reference: &str,
        expected: PluginKind,
        input: Option<&Template>,
    ) -> Option<(ActionRef, Vec<String>)> {
        let Some((plugin, action)) = reference.rsplit_once('/') else {
            self.problem(
                Some(step),
                Some(field),
                format!("`{reference}` is not PLUGIN/ACTION (or PLUGIN@VERSION/ACTION)"),
            );
            return None;
        };
        let reference = ActionRef {
            plugin: plugin.to_owned(),
            action: action.to_owned(),
        };
        self.plugins.insert(plugin.to_owned());
        let Some(catalog) = self.catalog else {
            return Some((reference, vec![]));
        };
        let info = match catalog.action(plugin, action) {
            Ok(info) => info,
            Err(e) => {
                self.problem(Some(step), Some(field), e);
                return None;
            }
        };
        if info.kind != expected {
            let (want, field_hint) = match expected {
                PluginKind::Connector => ("connector", "rule"),
                PluginKind::Rule => ("rule", "call"),
            };
            self.problem(
                Some(step),
                Some(field),
                format!(
                    "`{plugin}` is a {} plugin, not a {want}: use `{field_hint}:`",
                    info.kind
                ),
            );
        }
        // An object template must supply every field the action requires.
        if let (Some(keys), Some(required)) = (
            input.and_then(Template::keys),
            info.input_schema.get("required").and_then(|r| r.as_array()),
        ) {
            for name in required.iter().filter_map(|r| r.as_str()) {
                if !keys.contains(&name) {
                    self.problem(
                        Some(step),
                        Some("input"),
                        format!("`{plugin}/{action}` requires input field `{name}`, which the input does not set"),
                    );
                }
            }
        }
        Some((reference, info.outcomes))
    }

    fn expr(&mut self, step: Option<&str>, field: &str, source: &str) -> Option<Expr> {
        Expr::compile(source)
            .map_err(|e| self.problem(step, Some(field), format!("jq: {e}")))
            .ok()
    }

    fn template(
        &mut self,
        step: Option<&str>,
        field: &str,
        value: &serde_json::Value,
    ) -> Option<Template> {
        Template::compile(value)
            .map_err(|(path, e)| {
                self.problem(step, Some(&format!("{field}{path}")), format!("jq: {e}"))
            })
            .ok()
    }

    fn duration(&mut self, step: Option<&str>, field: &str, text: &str) -> Option<Duration> {
        parse_duration(text)
            .map_err(|e| self.problem(step, Some(field), e))
            .ok()
    }

    fn retry(&mut self, step: &str, def: &definition::RetryDef) -> Retry {
        let s = Some(step);
        if def.attempts == 0 || def.attempts > 100 {
            self.problem(
                s,
                Some("retry.attempts"),
                "attempts must be between 1 and 100 (the first attempt counts)",
            );
        }
        let multiplier = def.multiplier.unwrap_or(2.0);
        if !(1.0..=10.0).contains(&multiplier) {
            self.problem(
                s,
                Some("retry.multiplier"),
                "the multiplier must be between 1 and 10",
            );
        }
        let backoff = def
            .backoff
            .as_deref()
            .and_then(|b| self.duration(s, "retry.backoff", b))
            .unwrap_or(Retry::CALL_DEFAULT.backoff);
        let max_backoff = def
            .max_backoff
            .as_deref()
            .and_then(|b| self.duration(s, "retry.max_backoff", b))
            .unwrap_or(Retry::CALL_DEFAULT.max_backoff.max(backoff));
        Retry {
            attempts: def.attempts.clamp(1, 100),
            backoff,
            max_backoff,
            multiplier: multiplier.clamp(1.0, 10.0),
            jitter: def.jitter.unwrap_or(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use definition::Format;

    struct Installed;
    impl Catalog for Installed {
        fn action(&self, plugin: &str, action: &str) -> Result<ActionInfo, String> {
            match (plugin, action) {
                ("echo", "echo") => Ok(ActionInfo {
                    kind: PluginKind::Connector,
                    input_schema: serde_json::json!({}),
                    outcomes: vec![],
                }),
                ("erp", "post") => Ok(ActionInfo {
                    kind: PluginKind::Connector,
                    input_schema: serde_json::json!({"required": ["amount"]}),
                    outcomes: vec![],
                }),
                ("rules", "match") => Ok(ActionInfo {
                    kind: PluginKind::Rule,
                    input_schema: serde_json::json!({}),
                    outcomes: vec!["approve".into(), "review".into()],
                }),
                _ => Err(format!("plugin `{plugin}` is not installed")),
            }
        }
    }

    fn problems(yaml: &str) -> Vec<Problem> {
        match compile("wf.yaml", yaml, Format::Yaml, 1, Some(&Installed)) {
            Ok(_) => vec![],
            Err(e) => e.problems,
        }
    }

    #[test]
    fn a_valid_definition_compiles() {
        let yaml = r#"
name: demo
key: .input.id
steps:
  - id: a
    call: echo/echo
    input: { x: .input.x }
  - id: check
    rule: rules/match
    next: { approve: done, review: ask }
  - id: ask
    human: { title: Check it }
    next: { approved: done, rejected: no }
  - id: no
    fail: { code: rejected }
  - id: done
    end: true
"#;
        assert_eq!(problems(yaml), vec![]);
    }

    #[test]
    fn problems_name_step_field_and_line() {
        let yaml = "name: demo\nsteps:\n  - id: a\n    call: echo/echo\n    next: nowhere\n  - id: b\n    call: nosuch/x\n  - id: c\n    call: echo/echo\n    input: { x: .input | ( }\n";
        let found = problems(yaml);
        let find = |step: &str| {
            found
                .iter()
                .find(|p| p.step.as_deref() == Some(step))
                .unwrap()
        };
        let a = find("a");
        assert_eq!((a.field.as_deref(), a.line), (Some("next"), Some(5)));
        assert!(a.message.contains("unknown step `nowhere`"), "{a}");
        let b = find("b");
        assert_eq!((b.field.as_deref(), b.line), (Some("call"), Some(7)));
        assert!(b.message.contains("not installed"), "{b}");
        let c = find("c");
        assert_eq!((c.field.as_deref(), c.line), (Some("input.x"), Some(10)));
        assert!(c.message.contains("jq"), "{c}");
        // b is unreachable from a (a goes to `nowhere`, which failed): reported too.
    }

    #[test]
    fn human_task_settings_are_checked() {
        let yaml = r#"
name: demo
steps:
  - id: a
    call: echo/echo
  - id: b
    human: { title: One, approvals: 0, escalate_to: [role:admin], not_by: [".input | ("], review: c }
  - id: c
    human: { title: Two, review: nowhere, due: soon }
  - id: d
    human: { title: Three, review: a, assignees: ["role:"] }
"#;
        let found: Vec<(Option<String>, Option<String>)> = problems(yaml)
            .into_iter()
            .map(|p| (p.step, p.field))
            .collect();
        let at = |step: &str, field: &str| (Some(step.to_owned()), Some(field.to_owned()));
        for expected in [
            at("b", "human.approvals"),
            at("b", "human.escalate_to"),
            at("b", "human.not_by"),
            at("b", "human.review"),
            at("c", "human.review"),
            at("c", "human.due"),
            at("d", "human.assignees"),
        ] {
            assert!(found.contains(&expected), "{expected:?} in {found:?}");
        }
        assert_eq!(found.len(), 7, "d's review of call `a` is fine: {found:?}");
    }

    #[test]
    fn unreachable_steps_and_kind_mismatches_are_refused() {
        let yaml = "name: demo\nsteps:\n  - id: a\n    call: echo/echo\n    next: end\n  - id: orphan\n    rule: echo/echo\n";
        let found = problems(yaml);
        assert!(
            found
                .iter()
                .any(|p| p.step.as_deref() == Some("orphan") && p.message.contains("unreachable")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.message.contains("use `call:`")),
            "{found:?}"
        );
    }

    #[test]
    fn required_input_fields_and_undeclared_outcomes_are_refused() {
        let yaml = "name: demo\nsteps:\n  - id: a\n    call: erp/post\n    input: { amt: 1 }\n  - id: r\n    rule: rules/match\n    next: { approv: end }\n";
        let found = problems(yaml);
        assert!(
            found
                .iter()
                .any(|p| p.message.contains("requires input field `amount`")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.field.as_deref() == Some("next.approv")),
            "{found:?}"
        );
    }

    #[test]
    fn retry_delays_grow_and_cap() {
        let r = Retry {
            jitter: false,
            ..Retry::CALL_DEFAULT
        };
        assert_eq!(r.delay(2, 0), Duration::from_secs(1));
        assert_eq!(r.delay(3, 0), Duration::from_secs(2));
        assert_eq!(r.delay(20, 0), Duration::from_secs(60));
        let j = Retry::CALL_DEFAULT.delay(3, u64::MAX);
        assert!(
            j > Duration::from_millis(1900) && j <= Duration::from_secs(2),
            "{j:?}"
        );
        assert_eq!(Retry::CALL_DEFAULT.delay(3, 0), Duration::from_secs(1));
    }
}
