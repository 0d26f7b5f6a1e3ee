//! Runs: the live list with filters and counts, and one run's live timeline with the
//! commands an operator may give it.

use super::html::{self, action_form, badge, json_details, json_field, time};
use super::{Page, PageResult, Section};
use crate::api::Shared;
use crate::api::auth::Access;
use crate::api::error::ApiError;
use crate::engine::command_refusal;
use crate::engine::state::{Attempt, RunRecord, RunStatus, StepStatus, StepView};
use crate::url::segment;
use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The stream that tells live pages a run changed.
pub const LIVE: &str = "/v1/runs/changes";

/// Runs the list shows at most.
const LIST_LIMIT: usize = 200;

/// The list's filters, as the filter form sends them; an empty field means any.
#[derive(Deserialize, Default)]
pub struct Filters {
    /// A run status.
    #[serde(default)]
    status: String,
    /// A workflow name.
    #[serde(default)]
    workflow: String,
    /// A business key.
    #[serde(default)]
    key: String,
}

/// `GET /runs[?status=S][&workflow=W][&key=K]`: newest first, live.
pub async fn list(State(state): State<Shared>, page: Page, Query(f): Query<Filters>) -> PageResult {
    let status = Some(f.status.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<RunStatus>()
                .map_err(|e| ApiError::bad_request("status", e.to_string()))
        })
        .transpose()?;
    let workflow = Some(f.workflow.as_str()).filter(|s| !s.is_empty());
    let key = Some(f.key.trim()).filter(|s| !s.is_empty());
    let runs = state.engine.runs(status, workflow, key, LIST_LIMIT)?;
    let counts = state.engine.run_counts()?;
    let workflows = state.engine.workflows()?;
    let filtered = |status: &str| {
        format!(
            "/runs?status={status}&workflow={}&key={}",
            segment(&f.workflow),
            segment(&f.key)
        )
    };
    let body = html! {
        h1 { "Runs" }
        ul.counts aria-label="Runs by status" {
            @for (s, n) in &counts {
                li { a href=(filtered(s.as_str())) aria-current=[(status == Some(*s)).then_some("true")] {
                    span.count data-status=(s.as_str()) { (n) } " " (badge(s.as_str()))
                } }
            }
        }
        form.filters method="get" action="/runs" role="search" {
            div.field {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "any" }
                    @for s in RunStatus::ALL {
                        option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            div.field {
                label for="workflow" { "Workflow" }
                select #workflow name="workflow" {
                    option value="" { "any" }
                    @for w in &workflows {
                        option value=(w.name) selected[workflow == Some(w.name.as_str())] { (w.name) }
                    }
                }
            }
            div.field {
                label for="key" { "Business key" }
                input #key type="search" name="key" value=(f.key);
            }
            button type="submit" { "Filter" }
            a href="/runs" { "Clear" }
        }
        @if runs.is_empty() {
            p.empty { "No runs match." }
        } @else {
            table.runs {
                caption.muted { "Newest first; at most " (LIST_LIMIT) "." }
                thead { tr { th { "Run" } th { "Workflow" } th { "Business key" } th { "Status" } th { "Started by" } th { "Started" } th { "Took" } } }
                tbody {
                    @for run in &runs { (row(run)) }
                }
            }
        }
    };
    Ok(page.render("Runs", Section::Runs, Some(LIVE.into()), body))
}

fn row(run: &RunRecord) -> Markup {
    html! {
        tr data-run=(run.id) {
            td { a href={ "/runs/" (run.id) } { code { (run.id) } } }
            td { (run.workflow) " " span.muted { "v" (run.version) } }
            td { (run.key.as_deref().unwrap_or("")) }
            td { (badge(run.status.as_str())) }
            td { (run.started_by.as_deref().unwrap_or("")) }
            td { (time(run.created_ms)) }
            td { @if let Some(done) = run.finished_ms { (html::duration(Duration::from_millis(done.saturating_sub(run.created_ms)))) } }
        }
    }
}

/// `GET /runs/{id}`: the run, its steps with every attempt, who did what, and the
/// commands the user's role allows; live until the run finishes.
pub async fn show(State(state): State<Shared>, page: Page, Path(id): Path<String>) -> PageResult {
    let view = state.engine.run(&id)?;
    let log = state.engine.run_log(&id)?;
    let run = &view.run;
    let history: Vec<Value> = log
        .iter()
        .filter_map(|e| crate::engine::audit::entry(&id, e))
        .filter(|e| e.get("actor").is_some())
        .collect();
    let refusal = page.refusal(Access::Operate);
    let body = html! {
        h1 { "Run " code { (run.id) } " " (badge(run.status.as_str())) }
        dl.summary {
            dt { "Workflow" } dd { a href={ "/workflows/" (segment(&run.workflow)) "?version=" (run.version) } { (run.workflow) " v" (run.version) } }
            dt { "Business key" } dd { (run.key.as_deref().unwrap_or("—")) }
            dt { "Started by" } dd { (run.started_by.as_deref().unwrap_or("—")) }
            dt { "Started" } dd { (time(run.created_ms)) }
            @if let Some(done) = run.finished_ms {
                dt { "Finished" } dd { (time(done)) " after " (html::duration(Duration::from_millis(done.saturating_sub(run.created_ms)))) }
            }
        }
        @if let Some(failure) = &run.failure {
            div.error role="alert" {
                p { strong { (failure.code) } ": " (failure.message) }
                @if let Some(step) = &failure.step { p { "At step " code { (step) } } }
                @if let Some(details) = &failure.details { (html::json(details)) }
            }
        }
        (json_details("Input", &run.input))
        @if let Some(output) = &run.output {
            // What a finished run produced is what people come for: shown open.
            details open { summary { "Output" } (html::json(output)) }
        }
        @if run.status != RunStatus::Cancelled {
            section.commands aria-labelledby="commands-title" {
                h2 #commands-title { "Commands" }
                (commands(&view.run, &view.steps, refusal.as_deref()))
            }
        }
        h2 { "Timeline" }
        ol.timeline {
            @for step in &view.steps { (timeline_entry(run, step)) }
        }
        h2 { "Who did what" }
        @if history.is_empty() {
            p.empty { "Nobody has acted on this run yet." }
        } @else {
            (super::audit::entries(&history))
        }
    };
    let live = (!run.status.is_finished()).then(|| format!("{LIVE}?run={}", segment(&run.id)));
    Ok(page.render(&format!("Run {}", run.id), Section::Runs, live, body))
}

/// The forms for `POST /v1/runs/{id}/{command}` that fit the run's state.
fn commands(run: &RunRecord, steps: &[StepView], refusal: Option<&str>) -> Markup {
    let api = |command: &str| format!("POST /v1/runs/{}/{command}", segment(&run.id));
    let failed: Vec<&StepView> = steps
        .iter()
        .filter(|s| s.record.status == StepStatus::Failed)
        .collect();
    // Restart continues from a top-level step: paths without a container prefix.
    let top_level: Vec<&str> = steps
        .iter()
        .map(|s| s.path.as_str())
        .filter(|p| !p.contains(['.', '[']))
        .fold(Vec::new(), |mut seen, p| {
            if !seen.contains(&p) {
                seen.push(p);
            }
            seen
        });
    let takes = |command: &str| command_refusal(run.status, command).is_none();
    html! {
        div.command-grid {
            @if takes("resume") {
                (action_form(&api("resume"), refusal, html! {}, html! { button.primary type="submit" { "Resume" } }))
            }
            @if takes("pause") {
                (action_form(&api("pause"), refusal, html! {}, html! { button type="submit" { "Pause" } }))
            }
            @if takes("cancel") {
                (action_form(&api("cancel"), refusal, html! {
                    label for="cancel-reason" { "Reason" }
                    input #cancel-reason type="text" name="reason" placeholder="why, for the log";
                }, html! { button.danger type="submit" { "Cancel run" } }))
            }
            @if run.status == RunStatus::Failed && !failed.is_empty() {
                (action_form(&api("retry"), refusal, html! {
                    label for="retry-step" { "Failed step" }
                    select #retry-step name="step" {
                        @for s in &failed { option value=(s.path) { (s.path) } }
                    }
                    (json_field("retry-input", "input", "Input (empty: as before)", None))
                }, html! { button.primary type="submit" { "Retry step" } }))
            }
            @if takes("restart") && !top_level.is_empty() {
                (action_form(&api("restart"), refusal, html! {
                    label for="restart-step" { "Restart from step" }
                    select #restart-step name="step" {
                        @for p in &top_level { option value=(p) { (p) } }
                    }
                    (json_field("restart-input", "input", "Input for that step (empty: computed again)", None))
                }, html! { button type="submit" { "Restart" } }))
            }
        }
    }
}

fn timeline_entry(run: &RunRecord, step: &StepView) -> Markup {
    let r = &step.record;
    let status = html::label(&r.status);
    let took = r
        .finished_ms
        .map(|done| html::duration(Duration::from_millis(done.saturating_sub(r.scheduled_ms))));
    html! {
        li class={ "step status-" (status) } id={ "step-" (segment(&step.path)) } {
            div.step-head {
                strong { (step.path) }
                " " span.muted { (r.kind) @if let Some(p) = &r.plugin { " " code { (p) } } }
                " " (badge(&status))
                @if let Some(took) = took { " " span.muted { (took) } }
                @if let Some(by) = &r.decided_by { " " span.actor { "decided by " (by) } }
            }
            @if let Some(task) = &r.task {
                p {
                    "Task: " (task.title)
                    @if let Some(by) = &task.claimed_by { " · claimed by " (by) }
                    @if let Some(due) = task.due_ms { " · due " (time(due)) }
                    @if r.status == StepStatus::Waiting { " · " a href="/tasks?all=true" { "open in the inbox" } }
                }
            }
            @if let Some(wait) = &r.event { p { "Waiting for event " code { (wait.name) } " with key " code { (wait.key) } } }
            @if let Some(at) = r.wake_at_ms { @if r.status.is_open() { p { "Wakes " (time(at)) } } }
            @if let Some(failure) = &r.failure {
                p.failure { strong { (failure.code) } ": " (failure.message) }
            }
            @if r.status == StepStatus::Escalated {
                p { a href={ "/exceptions#exception-" (segment(&run.id)) "-" (segment(&step.path)) } { "In the exception queue" } }
            }
            @if !r.attempts.is_empty() { (attempts(&r.attempts)) }
            @if let Some(input) = r.input_override.as_ref().or(r.input.as_ref()) { (json_details("Input", input)) }
            @if let Some(output) = &r.output { (json_details("Output", output)) }
        }
    }
}

fn attempts(attempts: &[Attempt]) -> Markup {
    html! {
        table.attempts {
            thead { tr { th { "Attempt" } th { "Started" } th { "Took" } th { "Result" } } }
            tbody {
                @for a in attempts {
                    tr {
                        td { (a.number) }
                        td { (time(a.started_ms)) }
                        td { @if let Some(us) = a.duration_us { (html::duration(Duration::from_micros(us))) } }
                        td {
                            @match (&a.failure, a.finished_ms) {
                                (Some(f), _) => { strong { (f.code) } ": " (f.message) @if f.retryable { " " span.muted { "(retryable)" } } }
                                (None, Some(_)) => { "ok" }
                                (None, None) => { "running" }
                            }
                            @if !a.denied.is_empty() { br; "denied: " (a.denied.join(", ")) }
                        }
                    }
                    @if !a.logs.is_empty() || !a.stdout.is_empty() || !a.stderr.is_empty() {
                        tr.logs { td colspan="4" {
                            details {
                                summary { "Logs (" (a.logs.len()) ")" }
                                pre.log { @for line in &a.logs { (html::label(&line.level)) " " (line.message) "\n" } }
                                @if !a.stdout.is_empty() { p { "stdout" } pre.log { (a.stdout) } }
                                @if !a.stderr.is_empty() { p { "stderr" } pre.log { (a.stderr) } }
                            }
                        } }
                    }
                }
            }
        }
    }
}
