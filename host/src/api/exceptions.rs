//! The exception queue: steps that failed for good with `on_error: escalate`, and what
//! a person does about them.

use super::Shared;
use super::auth::{Access, Caller};
use super::error::{self, ApiError};
use super::openapi::{Doc, Routes};
use crate::engine::state::{ExceptionView, InboxMessage, RunView};
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/exceptions",
        Doc::new("The exception queue", Access::Read).gives::<Vec<ExceptionView>>(),
        list,
    )
    .post(
        "/v1/exceptions/{run}/{path}/{action}",
        Doc::new(
            "Act on an exception: retry, resolve, skip, abort",
            Access::Operate,
        )
        .one_of("action", &["retry", "resolve", "skip", "abort"])
        .takes::<ActionBody>()
        .gives::<RunView>()
        .ok(&[202])
        .errors(&[400, 404, 409, 413]),
        act,
    )
}

/// `GET /v1/exceptions`: each with the failure's code, message and details, the
/// attempts, and the step's input.
async fn list(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<Json<Vec<ExceptionView>>, ApiError> {
    caller.require(Access::Read)?;
    Ok(Json(state.engine.exceptions()?))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// retry: edited input for the step.
    input: Option<Value>,
    /// resolve: the step's output, supplied by hand.
    output: Option<Value>,
    /// abort: why, for the log.
    reason: Option<String>,
}

/// `POST /v1/exceptions/{run}/{path}/{retry|resolve|skip|abort}`: retry (optionally
/// with `{"input": …}`), resolve with `{"output": …}`, skip (the step completes with
/// `null`), or abort the run (`{"reason": …}`). Answers 202 with the run.
async fn act(
    State(state): State<Shared>,
    caller: Caller,
    Path((run, path, action)): Path<(String, String, String)>,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    caller.require(Access::Operate)?;
    let body = error::body(body)?;
    let args: ActionBody = error::json_or_default(&body, "body")?;
    let escalated =
        state.engine.run(&run)?.steps.iter().any(|s| {
            s.path == path && s.record.status == crate::engine::state::StepStatus::Escalated
        });
    if !escalated {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_an_exception",
            format!("step {path} of run {run} is not in the exception queue"),
        ));
    }
    let actor = caller.actor();
    let message = match action.as_str() {
        "retry" => InboxMessage::Retry {
            path,
            input: args.input,
            actor,
        },
        "resolve" => InboxMessage::Resolve {
            path,
            output: Some(args.output.ok_or_else(|| {
                ApiError::bad_request("output", "resolve needs the step's `output` in the body")
            })?),
            actor,
        },
        "skip" => InboxMessage::Resolve {
            path,
            output: None,
            actor,
        },
        "abort" => InboxMessage::Cancel {
            actor,
            reason: args.reason,
        },
        other => {
            return Err(ApiError::not_found(format!(
                "no action `{other}` (retry, resolve, skip, abort)"
            )));
        }
    };
    state.engine.command(&run, message).await?;
    Ok((StatusCode::ACCEPTED, Json(state.engine.run(&run)?)))
}
