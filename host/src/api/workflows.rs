//! Workflow definitions: apply, list, show versions.

use super::Shared;
use super::auth::{Access, Caller};
use super::error::{self, ApiError};
use crate::engine::Applied;
use crate::engine::state::WorkflowRecord;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/workflows", get(list).post(apply))
        .route("/v1/workflows/{name}", get(versions))
}

#[derive(Deserialize)]
struct ApplyParams {
    /// The file name the definition is reported under (`invoice.yaml`).
    file: Option<String>,
}

/// `POST /v1/workflows[?file=NAME]`: the body is the definition, YAML or JSON.
async fn apply(
    State(state): State<Shared>,
    caller: Caller,
    Query(params): Query<ApplyParams>,
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
