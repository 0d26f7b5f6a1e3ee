//! Feedback on plugin outputs: how often people accepted them unchanged, and the
//! corrections ledger as JSONL.

use super::Shared;
use super::auth::{Access, Caller};
use super::error::ApiError;
use crate::store::ReviewCount;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/feedback", get(rates))
        .route("/v1/feedback/corrections", get(corrections))
}

/// `GET /v1/feedback`: per plugin action, outputs reviewed, corrected, and the share
/// accepted unchanged.
async fn rates(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<Json<Vec<ReviewCount>>, ApiError> {
    caller.require(Access::Read)?;
    Ok(Json(state.engine.store().review_counts()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorrectionFilter {
    plugin: Option<String>,
    action: Option<String>,
}

/// `GET /v1/feedback/corrections[?plugin=P][&action=A]`: one JSON correction per line
/// (input, original, corrected, actor, plugin digest), oldest first per action.
async fn corrections(
    State(state): State<Shared>,
    caller: Caller,
    Query(filter): Query<CorrectionFilter>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Access::Read)?;
    let all = state
        .engine
        .store()
        .all_corrections(filter.plugin.as_deref(), filter.action.as_deref())?;
    let mut body = String::new();
    for correction in all {
        body.push_str(&serde_json::to_string(&correction).expect("plain data"));
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}
