//! The task inbox: human tasks a caller may act on; claim, unclaim, complete.

use super::auth::{Access, Caller};
use super::error::{self, ApiError};
use super::openapi::{Doc, Routes};
use super::{Params, Shared};
use crate::engine::state::{RunView, TaskView};
use crate::engine::task::{Decision, Person};
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/tasks",
        Doc::new("The human tasks the caller could decide now", Access::Read)
            .query::<ListParams>()
            .gives::<Vec<TaskView>>()
            .errors(&[400]),
        list,
    )
    .post(
        "/v1/tasks/{run}/{path}/{action}",
        Doc::new("Claim, unclaim or complete a task", Access::Read)
            .one_of("action", &["claim", "unclaim", "complete"])
            .takes::<Decision>()
            .gives::<RunView>()
            .ok(&[202])
            .errors(&[400, 404, 409, 413, 422]),
        act,
    )
}

impl Caller {
    /// The caller as someone acting on tasks.
    pub fn person(&self) -> Person {
        Person {
            actor: self.actor(),
            user: self.user.clone(),
            role: self.role.as_str().to_owned(),
        }
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Every waiting task, not only the caller's (operators and admins).
    #[serde(default)]
    all: bool,
}

/// `GET /v1/tasks[?all=true]`: the tasks the caller could decide now, oldest run first.
async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<Vec<TaskView>>, ApiError> {
    caller.require(Access::Read)?;
    let person = if params.all {
        caller.require(Access::Operate)?;
        None
    } else {
        Some(caller.person())
    };
    Ok(Json(state.engine.tasks(person.as_ref())?))
}

/// `POST /v1/tasks/{run}/{path}/{claim|unclaim|complete}`. `complete` takes
/// `{"outcome": …, "data": …, "comment": …, "output": …}` (`output`: a reviewed plugin
/// output as corrected). Who may act is the task's business (its assignees), not the
/// token's role alone. Answers 202 with the run.
async fn act(
    State(state): State<Shared>,
    caller: Caller,
    Path((run, path, action)): Path<(String, String, String)>,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    caller.require(Access::Read)?;
    let body = error::body(body)?;
    let person = caller.person();
    match action.as_str() {
        "claim" | "unclaim" => {
            state
                .engine
                .claim(&run, &path, person, action == "claim")
                .await?
        }
        "complete" => {
            let decision: Decision = error::json(&body, "body")?;
            state.engine.decide(&run, &path, person, decision).await?
        }
        other => {
            return Err(ApiError::not_found(format!(
                "no action `{other}` (claim, unclaim, complete)"
            )));
        }
    }
    Ok((StatusCode::ACCEPTED, Json(state.engine.run(&run)?)))
}
