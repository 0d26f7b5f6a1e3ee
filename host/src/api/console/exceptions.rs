//! The exception queue: steps that failed for good and wait for a person to retry
//! them (perhaps with corrected input), supply their output, skip them or abort.

use super::html::{self, action_form, json_field, time};
use super::{Page, PageResult, Section};
use crate::api::Shared;
use crate::api::auth::Access;
use crate::engine::state::ExceptionView;
use crate::url::segment;
use axum::extract::State;
use maud::{Markup, html};

/// `GET /exceptions`: oldest run first; live.
pub async fn queue(State(state): State<Shared>, page: Page) -> PageResult {
    let exceptions = state.engine.exceptions()?;
    let refusal = page.refusal(Access::Operate);
    let body = html! {
        h1 { "Exception queue" }
        @if exceptions.is_empty() {
            p.empty { "No exceptions: every failure so far was retried or settled." }
        }
        @for exception in &exceptions { (card(exception, refusal.as_deref())) }
    };
    Ok(page.render(
        "Exceptions",
        Section::Exceptions,
        Some(super::runs::LIVE.into()),
        body,
    ))
}

fn card(e: &ExceptionView, refusal: Option<&str>) -> Markup {
    let id = format!("exception-{}-{}", e.run_id, segment(&e.path));
    let api = |action: &str| html::step_action("exceptions", &e.run_id, &e.path, action);
    let step = &e.step;
    let input = step.input_override.as_ref().or(step.input.as_ref());
    html! {
        article.exception.card #(id) aria-labelledby={ (id) "-title" } {
            h2 #{ (id) "-title" } {
                (e.workflow) @if let Some(key) = &e.key { " · " (key) } ": step " code { (e.path) }
            }
            p.meta {
                "run " a href={ "/runs/" (e.run_id) } { code { (e.run_id) } }
                @if let Some(plugin) = &step.plugin { " · " code { (plugin) } }
                " · " (step.attempts.len()) " attempt" @if step.attempts.len() != 1 { "s" }
                @if let Some(last) = step.attempts.last() { " · last " (time(last.started_ms)) }
            }
            @if let Some(failure) = &step.failure {
                div.error role="alert" {
                    p { strong.code { (failure.code) } ": " (failure.message) }
                    @if let Some(details) = &failure.details { (html::json_details("Details", details)) }
                }
            }
            @if step.attempts.len() > 1 {
                details {
                    summary { "Every attempt" }
                    ol { @for a in &step.attempts {
                        li { (time(a.started_ms)) ": " @match &a.failure { Some(f) => { (f.code) " — " (f.message) }, None => { "ok" } } }
                    } }
                }
            }
            div.command-grid {
                (action_form(&api("retry"), refusal, json_field(&format!("{id}-input"), "input", "Input (edit to correct it)", input),
                    html! { button.primary type="submit" { "Retry with this input" } }))
                (action_form(&api("resolve"), refusal, json_field(&format!("{id}-output"), "output", "Output to use instead", None),
                    html! { button type="submit" { "Supply output" } }))
                (action_form(&api("skip"), refusal, html! { p.muted { "The step completes with no output." } },
                    html! { button type="submit" { "Skip step" } }))
                (action_form(&api("abort"), refusal, html! {
                    label for={ (id) "-reason" } { "Reason" }
                    input #{ (id) "-reason" } type="text" name="reason";
                }, html! { button.danger type="submit" { "Abort run" } }))
            }
        }
    }
}
