//! Workflows: each one's versions, and a drawing of a version's step graph.

use super::html::{self, time};
use super::{Page, PageResult, Section};
use crate::api::Shared;
use crate::api::error::ApiError;
use crate::engine::definition;
use crate::url::segment;
use axum::extract::{Path, Query, State};
use maud::html;
use serde::Deserialize;

/// `GET /workflows`: the newest version of each.
pub async fn list(State(state): State<Shared>, page: Page) -> PageResult {
    let workflows = state.engine.workflows()?;
    let body = html! {
        h1 { "Workflows" }
        @if workflows.is_empty() {
            p.empty { "No workflows yet. An admin applies one with " code { "baton workflow apply FILE.yaml" } "." }
        } @else {
            table {
                thead { tr { th { "Workflow" } th { "Newest version" } th { "Applied" } th { "Description" } } }
                tbody { @for w in &workflows {
                    tr {
                        td { a href={ "/workflows/" (segment(&w.name)) } { (w.name) } }
                        td { "v" (w.version) }
                        td { (time(w.applied_at_ms)) }
                        td { (definition::parse(&w.source, w.format).ok().and_then(|d| d.description).unwrap_or_default()) }
                    }
                } }
            }
        }
    };
    Ok(page.render("Workflows", Section::Workflows, None, body))
}

/// Which version the page draws.
#[derive(Deserialize, Default)]
pub struct VersionParams {
    /// The version to draw; the newest by default.
    version: Option<u32>,
}

/// `GET /workflows/{name}[?version=N]`: every version, and one drawn.
pub async fn show(
    State(state): State<Shared>,
    page: Page,
    Path(name): Path<String>,
    Query(params): Query<VersionParams>,
) -> PageResult {
    let versions = state.engine.workflow_versions(&name)?;
    let shown = match params.version {
        Some(v) => versions.iter().find(|w| w.version == v).ok_or_else(|| {
            ApiError::not_found(format!("workflow {name} has no version {v}")).field("version")
        })?,
        None => versions.last().expect("a workflow has a version"),
    };
    let parsed = definition::parse(&shown.source, shown.format).map_err(|p| {
        ApiError::internal(format!("stored definition does not parse: {}", p.message))
    })?;
    let body = html! {
        h1 { (name) " " span.muted { "v" (shown.version) } }
        @if let Some(description) = &parsed.description { p { (description) } }
        nav aria-label="Versions" {
            ul.versions {
                @for w in versions.iter().rev() {
                    li {
                        a href={ "/workflows/" (segment(&name)) "?version=" (w.version) }
                          aria-current=[(w.version == shown.version).then_some("page")] { "v" (w.version) }
                        " " span.muted { (time(w.applied_at_ms)) " · " code { (w.file) } }
                    }
                }
            }
        }
        p { a href={ "/runs?workflow=" (segment(&name)) } { "Runs of this workflow" } }
        h2 { "Step graph" }
        figure.graph { (html::trusted(super::graph::draw(&parsed))) }
        details {
            summary { "Definition (" code { (shown.file) } ", " code title=(shown.source_digest) { (shown.source_digest.chars().take(19).collect::<String>()) "…" } ")" }
            pre.source { code { (shown.source) } }
        }
    };
    Ok(page.render(&name, Section::Workflows, None, body))
}
