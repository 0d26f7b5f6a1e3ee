//! Audit: who did what, by run or by actor, and a check of every hash chain.

use super::html::time;
use super::{Page, PageResult, Section};
use crate::api::Shared;
use crate::api::audit::{Filter, entries as matching};
use crate::engine::audit::verify;
use crate::url::segment;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

/// Entries the page shows at most.
const PAGE_LIMIT: usize = 500;
/// Fields every entry has, shown in their own columns or not at all.
const COLUMNS: [&str; 7] = ["run_id", "seq", "at_ms", "type", "actor", "prev", "hash"];

/// The search form's fields; an empty field means any.
#[derive(Deserialize, Default)]
pub struct AuditParams {
    /// A run id, or `system`.
    #[serde(default)]
    run: String,
    /// An actor (`user:alice`).
    #[serde(default)]
    actor: String,
    /// Set by the verify button.
    #[serde(default)]
    verify: bool,
}

/// `GET /audit[?run=ID][&actor=A][&verify=true]`.
pub async fn query(
    State(state): State<Shared>,
    page: Page,
    Query(params): Query<AuditParams>,
) -> PageResult {
    let run = Some(params.run.trim().to_owned()).filter(|s| !s.is_empty());
    let actor = Some(params.actor.trim().to_owned()).filter(|s| !s.is_empty());
    let found = if run.is_some() || actor.is_some() {
        Some(matching(&state, &Filter::by(run, actor, PAGE_LIMIT))?)
    } else {
        None
    };
    let report = params
        .verify
        .then(|| verify(state.engine.store()))
        .transpose()?;
    let body = html! {
        h1 { "Audit" }
        form.filters method="get" action="/audit" role="search" {
            div.field {
                label for="run" { "Run id (" code { "system" } " for admin actions)" }
                input #run type="search" name="run" value=(params.run);
            }
            div.field {
                label for="actor" { "Actor (" code { "user:alice" } ")" }
                input #actor type="search" name="actor" value=(params.actor);
            }
            button type="submit" { "Search" }
        }
        form.verify method="get" action="/audit" {
            input type="hidden" name="verify" value="true";
            button type="submit" #verify { "Verify every hash chain" }
        }
        @if let Some(report) = &report {
            @match &report.broken {
                None => div.ok #verify-result role="status" {
                    "Intact: " (report.runs) " runs and " (report.events) " events verified; every link matches."
                },
                Some(broken) => div.error #verify-result role="alert" {
                    "Broken: run " code { (broken.run) } " at event " (broken.seq) ": " (broken.problem)
                },
            }
        }
        @match &found {
            None => p.muted { "Search by run or actor to list entries." },
            Some(found) if found.is_empty() => p.empty { "No entries match." },
            Some(found) => (entries(found)),
        }
    };
    Ok(page.render("Audit", Section::Audit, None, body))
}

/// Audit entries as a table: when, which run, what, who, and the rest of each entry.
pub fn entries(entries: &[Value]) -> Markup {
    html! {
        table.audit {
            thead { tr { th { "When" } th { "Run" } th { "#" } th { "What" } th { "Who" } th { "Details" } } }
            tbody { @for e in entries {
                @let run = e["run_id"].as_str().unwrap_or_default();
                tr {
                    td { (time(e["at_ms"].as_u64().unwrap_or_default())) }
                    td { @if run == crate::engine::audit::SYSTEM_LOG { code { (run) } } @else { a href={ "/runs/" (segment(run)) } { code { (run) } } } }
                    td { (e["seq"]) }
                    td { (e["type"].as_str().unwrap_or_default()) }
                    td.actor { (e["actor"].as_str().unwrap_or_default()) }
                    td { code.compact { (rest(e)) } }
                }
            } }
        }
    }
}

/// An entry without the fields that have their own column.
fn rest(entry: &Value) -> String {
    let mut rest = entry.as_object().cloned().unwrap_or_default();
    rest.retain(|k, _| !COLUMNS.contains(&k.as_str()));
    Value::Object(rest).to_string()
}
