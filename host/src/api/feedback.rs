//! Feedback on plugin outputs: how often people accepted them unchanged, and the
//! corrections ledger as JSONL.

use super::auth::{Access, Caller};
use super::error::ApiError;
use super::openapi::{Doc, Routes};
use super::{Params, Shared};
use crate::store::ReviewCount;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/feedback",
        Doc::new(
            "Review counts and acceptance rate per plugin action",
            Access::Read,
        )
        .gives::<Vec<ReviewCount>>(),
        rates,
    )
    .get(
        "/v1/feedback/corrections",
        Doc::new("The corrections ledger as JSON Lines", Access::Read)
            .query::<CorrectionFilter>()
            .returns("application/x-ndjson")
            .errors(&[400]),
        corrections,
    )
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

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CorrectionFilter {
    /// Corrections of this plugin's outputs.
    plugin: Option<String>,
    /// Corrections of this action's outputs.
    action: Option<String>,
}

/// `GET /v1/feedback/corrections[?plugin=P][&action=A]`: one JSON correction per line
/// (input, original, corrected, actor, plugin digest), oldest first per action.
async fn corrections(
    State(state): State<Shared>,
    caller: Caller,
    Params(filter): Params<CorrectionFilter>,
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
