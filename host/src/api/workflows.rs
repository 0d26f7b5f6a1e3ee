//! Workflow definitions: apply, list, show versions.

use super::auth::{Access, Caller};
use super::error::{self, ApiError};
use super::openapi::{Doc, Routes};
use super::{Params, Shared};
use crate::engine::Applied;
use crate::engine::state::WorkflowRecord;
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/workflows",
        Doc::new("The newest version of each workflow", Access::Read)
            .gives::<Vec<WorkflowRecord>>(),
        list,
    )
    .post(
        "/v1/workflows",
        Doc::new("Apply a definition (YAML or JSON body)", Access::Administer)
            .query::<ApplyParams>()
            .body("application/yaml")
            .gives::<Applied>()
            .ok(&[200, 201])
            .errors(&[400, 413, 422]),
        apply,
    )
    .get(
        "/v1/workflows/{name}",
        Doc::new("Every version of a workflow, oldest first", Access::Read)
            .gives::<Vec<WorkflowRecord>>()
            .errors(&[404]),
        versions,
    )
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApplyParams {
    /// The file name problems are reported under (`invoice.yaml`).
    file: Option<String>,
}

/// `POST /v1/workflows[?file=NAME]`: the body is the definition, YAML or JSON.
async fn apply(
    State(state): State<Shared>,
    caller: Caller,
    Params(params): Params<ApplyParams>,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Applied>), ApiError> {
    caller.require(Access::Administer)?;
    let body = error::body(body)?;
    let source = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("body", "the definition is not UTF-8 text"))?;
    let file = params.file.as_deref().unwrap_or("request body");
    let applied = state.engine.apply(file, source)?;
    let status = if applied.created {
        let target = format!("{}@{}", applied.name, applied.version);
        state.record(&caller, "workflow_applied", &target, None)?;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(applied)))
}

/// `GET /v1/workflows`: the newest version of each.
async fn list(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<Json<Vec<WorkflowRecord>>, ApiError> {
    caller.require(Access::Read)?;
    Ok(Json(state.engine.workflows()?))
}

/// `GET /v1/workflows/{name}`: every version, oldest first.
async fn versions(
    State(state): State<Shared>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<WorkflowRecord>>, ApiError> {
    caller.require(Access::Read)?;
    Ok(Json(state.engine.workflow_versions(&name)?))
}
