//! API tokens over HTTP (admin only): create, list, revoke.

use super::Shared;
use super::auth::{Access, Caller, Role, TokenError, TokenRecord};
use super::error::{self, ApiError};
use super::openapi::{Doc, Routes};
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/tokens",
        Doc::new("Every token's record, never a token", Access::Administer)
            .gives::<Vec<TokenRecord>>(),
        list,
    )
    .post(
        "/v1/tokens",
        Doc::new("Create a token: `{user, role}`", Access::Administer)
            .takes::<NewToken>()
            .gives::<CreatedToken>()
            .ok(&[201])
            .errors(&[400, 413]),
        create,
    )
    .delete(
        "/v1/tokens/{id}",
        Doc::new("Revoke a token", Access::Administer)
            .gives::<TokenRecord>()
            .errors(&[404, 409]),
        revoke,
    )
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// Who the token is for.
    user: String,
    /// admin, operator, viewer or trigger.
    role: String,
}

/// A new token: shown in this answer and nowhere else.
#[derive(Serialize, JsonSchema)]
struct CreatedToken {
    token: String,
    record: TokenRecord,
}

/// `POST /v1/tokens` `{"user": "erp", "role": "trigger"}`: the token is in the answer
/// and nowhere else.
async fn create(
    State(state): State<Shared>,
    caller: Caller,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.require(Access::Administer)?;
    let request: NewToken = error::json(&error::body(body)?, "body")?;
    let role: Role = request
        .role
        .parse()
        .map_err(|e: String| ApiError::bad_request("role", e))?;
    let (token, record) = state
        .tokens
        .create(&request.user, role)
        .map_err(token_error)?;
    state.record(
        &caller,
        "token_created",
        &record.id,
        Some(json!({"user": record.user, "role": record.role})),
    )?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, record })))
}

/// `GET /v1/tokens`: every token's record, never the token.
async fn list(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<Json<Vec<TokenRecord>>, ApiError> {
    caller.require(Access::Administer)?;
    Ok(Json(state.tokens.list().map_err(token_error)?))
}

/// `DELETE /v1/tokens/{id}`: revokes; the record stays, marked revoked.
async fn revoke(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenRecord>, ApiError> {
    caller.require(Access::Administer)?;
    let revoked = state.tokens.revoke(&id).map_err(token_error)?;
    state.record(&caller, "token_revoked", &id, None)?;
    Ok(Json(revoked))
}

fn token_error(e: TokenError) -> ApiError {
    let message = e.to_string();
    match e {
        TokenError::Unknown(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_token", message),
        TokenError::BadUser(_) => ApiError::bad_request("user", message),
        TokenError::LastAdmin => ApiError::new(StatusCode::CONFLICT, "last_admin", message),
        TokenError::Store(_) | TokenError::WriteFile { .. } => ApiError::internal(message),
    }
}
