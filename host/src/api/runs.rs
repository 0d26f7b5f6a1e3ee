//! Runs: trigger (idempotent, optionally synchronous), get, list.

use super::auth::{Access, Caller};
use super::error::{self, ApiError};
use super::openapi::{Doc, Routes};
use super::{Params, Shared};
use crate::engine::StartRun;
use crate::engine::state::{InboxMessage, RunRecord, RunStatus, RunView};
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The longest a trigger may wait for its run.
const MAX_WAIT: Duration = Duration::from_secs(300);

pub fn routes(r: Routes) -> Routes {
    r.post(
        "/v1/workflows/{name}/runs",
        Doc::new("Start a run; the body is its input", Access::Trigger)
            .query::<TriggerParams>()
            .headers(&[("Idempotency-Key", "A key used before returns that run")])
            .json_body()
            .gives::<RunView>()
            .ok(&[200, 201, 202])
            .errors(&[400, 404, 409, 413, 422]),
        trigger,
    )
    .get(
        "/v1/runs",
        Doc::new("Runs, newest first", Access::Read)
            .query::<ListParams>()
            .gives::<Vec<RunRecord>>()
            .errors(&[400]),
        list,
    )
    .get(
        "/v1/runs/{id}",
        Doc::new("A run with every step", Access::Read)
            .gives::<RunView>()
            .errors(&[404]),
        show,
    )
    .post(
        "/v1/runs/{id}/{command}",
        Doc::new(
            "Steer a run: cancel, pause, resume, retry, restart",
            Access::Operate,
        )
        .one_of(
            "command",
            &["cancel", "pause", "resume", "retry", "restart"],
        )
        .takes::<CommandBody>()
        .gives::<RunView>()
        .ok(&[202])
        .errors(&[400, 404, 409, 413]),
        steer,
    )
    .post(
        "/v1/events/{name}/{key}",
        Doc::new(
            "Deliver an external event (the body is its payload)",
            Access::Trigger,
        )
        .json_body()
        .gives::<Delivered>()
        .errors(&[400, 413]),
        event,
    )
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerParams {
    /// Wait up to this long for the run to finish or park: `2s`, `500ms` (at most 5m).
    wait: Option<String>,
    /// The business key; by default the workflow's `key` expression computes it.
    key: Option<String>,
    /// A workflow version; the newest by default.
    version: Option<u32>,
}

/// `POST /v1/workflows/{name}/runs[?wait=5s][&key=K][&version=N]`: the body is the
/// run's input (JSON). With an `Idempotency-Key` header, a key used before returns the
/// run it started instead of a new one (200 rather than 201). With `wait`, the answer
/// comes when the run has finished or parked (200/201), or when the wait runs out (202).
async fn trigger(
    State(state): State<Shared>,
    caller: Caller,
    Path(workflow): Path<String>,
    Params(params): Params<TriggerParams>,
    headers: HeaderMap,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    caller.require(Access::Trigger)?;
    let body = error::body(body)?;
    start(&state, caller.actor(), workflow, params, &headers, &body).await
}

/// Starts a run from a trigger request (the bearer route and inbound webhooks): `body`
/// is the input, `headers` may hold an `Idempotency-Key`.
pub(super) async fn start(
    state: &Shared,
    actor: String,
    workflow: String,
    params: TriggerParams,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let input = if body.is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        error::json(body, "input")?
    };
    let wait = params
        .wait
        .as_deref()
        .map(|w| {
            let limit = humantime::parse_duration(w).map_err(|e| {
                ApiError::bad_request("wait", format!("`{w}` is not a duration: {e}"))
            })?;
            if limit > MAX_WAIT {
                return Err(ApiError::bad_request(
                    "wait",
                    format!("`{w}` is longer than the longest wait, 5m"),
                ));
            }
            Ok(limit)
        })
        .transpose()?;
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 256)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Idempotency-Key",
                        "the Idempotency-Key header must be 1 to 256 visible ASCII characters",
                    )
                })
        })
        .transpose()?;
    let request = StartRun {
        workflow,
        version: params.version,
        input,
        key: params.key,
        idempotency_key,
        actor: Some(actor),
        defer: false,
    };
    let (started, settled) = match wait {
        Some(limit) => state.engine.start_run_and_wait(request, limit).await?,
        None => (state.engine.start_run(request).await?, None),
    };
    let status = match (started.existing, wait, &settled) {
        (_, Some(_), None) => StatusCode::ACCEPTED,
        (true, ..) => StatusCode::OK,
        (false, ..) => StatusCode::CREATED,
    };
    let view = match settled {
        Some(view) => view,
        None => state.engine.run(&started.run_id)?,
    };
    Ok((status, Json(view)))
}

/// `GET /v1/runs/{id}`: the run with every step.
async fn show(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    caller.require(Access::Read)?;
    Ok(Json(state.engine.run(&id)?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// running, waiting, paused, succeeded, failed or cancelled.
    status: Option<String>,
    /// Runs of this workflow.
    workflow: Option<String>,
    /// Runs with this business key.
    key: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<usize>,
}

/// `GET /v1/runs[?status=S][&workflow=W][&key=K][&limit=N]`: newest first.
async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<Vec<RunRecord>>, ApiError> {
    caller.require(Access::Read)?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            s.parse::<RunStatus>()
                .map_err(|e| ApiError::bad_request("status", e.to_string()))
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "limit",
            format!("limit must be 1 to 1000; got {limit}"),
        ));
    }
    Ok(Json(state.engine.runs(
        status,
        params.workflow.as_deref(),
        params.key.as_deref(),
        limit,
    )?))
}

/// The body of a command; which fields apply depends on the command.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    /// retry: the failed step's path; restart: the top-level step to continue from.
    step: Option<String>,
    /// retry, restart: replacement input for that step.
    input: Option<Value>,
    /// cancel: why, for the log.
    reason: Option<String>,
}

/// `POST /v1/runs/{id}/{cancel|pause|resume|retry|restart}`: the command is stored in
/// the run's inbox before the answer (202); the run acts on it at its next step, and
/// records one it can no longer act on as refused in its log.
async fn steer(
    State(state): State<Shared>,
    caller: Caller,
    Path((id, command)): Path<(String, String)>,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    caller.require(Access::Operate)?;
    let body = error::body(body)?;
    let args: CommandBody = error::json_or_default(&body, "body")?;
    let actor = caller.actor();
    let step = |what: &str| {
        args.step.clone().ok_or_else(|| {
            ApiError::bad_request("step", format!("{what} needs `step` in the body"))
        })
    };
    let message = match command.as_str() {
        "cancel" => InboxMessage::Cancel {
            actor,
            reason: args.reason.clone(),
        },
        "pause" => InboxMessage::Pause { actor },
        "resume" => InboxMessage::Resume { actor },
        "retry" => InboxMessage::Retry {
            path: step("retry")?,
            input: args.input.clone(),
            actor,
        },
        "restart" => InboxMessage::Restart {
            step: step("restart")?,
            input: args.input.clone(),
            actor,
        },
        other => {
            return Err(ApiError::not_found(format!(
                "no command `{other}` (cancel, pause, resume, retry, restart)"
            )));
        }
    };
    state.engine.command(&id, message).await?;
    Ok((StatusCode::ACCEPTED, Json(state.engine.run(&id)?)))
}

/// Where an external event went.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Delivered {
    /// The runs whose waiting steps it woke.
    delivered_to: Vec<String>,
    /// No step waited: it is kept for the first that will.
    buffered: bool,
}

/// `POST /v1/events/{name}/{key}`: the body (JSON, may be empty) is the event's
/// payload. It wakes every step waiting for `name` with business key `key`, or waits
/// for the first that will. Answers with the runs it reached.
async fn event(
    State(state): State<Shared>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<Json<Delivered>, ApiError> {
    caller.require(Access::Trigger)?;
    let body = error::body(body)?;
    let payload = if body.is_empty() {
        Value::Null
    } else {
        error::json(&body, "payload")?
    };
    let runs = state
        .engine
        .send_event(&name, &key, payload, &caller.actor())
        .await?;
    Ok(Json(Delivered {
        buffered: runs.is_empty(),
        delivered_to: runs,
    }))
}
