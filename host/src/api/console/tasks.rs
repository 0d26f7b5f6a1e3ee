//! The task inbox: what waits for the signed-in person, with the forms to decide it.

use super::html::{self, action_form, badge, time};
use super::{Page, PageResult, Section};
use crate::api::Shared;
use crate::api::auth::Access;
use crate::engine::state::TaskView;
use crate::url::segment;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

/// The inbox's query.
#[derive(Deserialize, Default)]
pub struct InboxParams {
    /// `true`: every waiting task (operators and admins), not only the user's.
    #[serde(default)]
    all: bool,
}

/// `GET /tasks[?all=true]`: the tasks the user could decide now (or every waiting
/// one), oldest first; live.
pub async fn inbox(
    State(state): State<Shared>,
    page: Page,
    Query(params): Query<InboxParams>,
) -> PageResult {
    let all = params.all && page.may(Access::Operate);
    let person = page.signed.caller.person();
    let tasks = state.engine.tasks((!all).then_some(&person))?;
    let now = crate::engine::duration::now_ms();
    let body = html! {
        h1 { "Task inbox" }
        p.tabs {
            @if all {
                a href="/tasks" { "Mine" } " · " strong { "Everything waiting" }
            } @else {
                strong { "Mine" }
                @if page.may(Access::Operate) { " · " a href="/tasks?all=true" { "Everything waiting" } }
            }
        }
        @if tasks.is_empty() {
            p.empty { @if all { "Nothing is waiting for a person." } @else { "Nothing waits for you." } }
        }
        @for task in &tasks { (card(task, now)) }
    };
    Ok(page.render(
        "Tasks",
        Section::Tasks,
        Some(super::runs::LIVE.into()),
        body,
    ))
}

fn card(task: &TaskView, now: u64) -> Markup {
    let id = format!("task-{}-{}", task.run_id, segment(&task.path));
    let api = |action: &str| html::step_action("tasks", &task.run_id, &task.path, action);
    let t = &task.task;
    let overdue = t.escalated || t.due_ms.is_some_and(|due| due <= now);
    let review = t.review.as_ref();
    html! {
        article.task.card.overdue[overdue] #(id) aria-labelledby={ (id) "-title" } {
            h2 #{ (id) "-title" } { (t.title) }
            p.meta {
                (task.workflow) @if let Some(key) = &task.key { " · " strong { (key) } }
                " · run " a href={ "/runs/" (task.run_id) } { code { (task.run_id) } }
                " · step " code { (task.path) }
                " · opened " (time(task.opened_ms))
            }
            @if let Some(due) = t.due_ms {
                p.due { "Due " (time(due)) @if overdue { " " (badge("overdue")) } @if t.escalated { " " (badge("escalated")) } }
            }
            @if let Some(description) = &t.description { p { (description) } }
            p.muted {
                "Who may decide: " (if t.assignees.is_empty() { "operators".to_owned() } else { t.assignees.join(", ") })
                @if !t.excluded.is_empty() { " · not " (t.excluded.join(", ")) }
                @if t.approvals > 1 { " · needs " (t.approvals) " approvals, has " (t.votes.len()) }
                @if let Some(by) = &t.claimed_by { " · claimed by " strong { (by) } }
            }
            @if review.is_none() { @if let Some(input) = &task.input { (html::json_details("What to decide on", input)) } }
            div.claim {
                @if t.claimed_by.is_some() {
                    (action_form(&api("unclaim"), None, html! {}, html! { button type="submit" { "Unclaim" } }))
                } @else if t.approvals <= 1 {
                    (action_form(&api("claim"), None, html! {}, html! { button type="submit" { "Claim" } }))
                }
            }
            (action_form(&api("complete"), None, html! {
                @if let Some(review) = review {
                    h3 { "Review the output of " code { (review.plugin) "/" (review.action) } }
                    (html::json_details("Its input", &review.input))
                    (html::schema_fields(&format!("{id}-output"), "output", task.review_schema.as_ref(), Some(&review.output), Some(&review.output)))
                }
                @if let Some(form) = &task.form {
                    (html::schema_fields(&format!("{id}-data"), "data", Some(form), None, None))
                }
                label for={ (id) "-comment" } { "Comment" }
                textarea #{ (id) "-comment" } name="comment" rows="2" {}
            }, html! {
                @for (i, outcome) in task.outcomes.iter().enumerate() {
                    // Only the approving outcome needs the form filled in the browser;
                    // the API checks the rest.
                    button class=(if i == 0 { "primary" } else { "" }) type="submit" name="outcome" value=(outcome)
                        formnovalidate[i > 0] { (capitalise(outcome)) }
                }
            }))
        }
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
