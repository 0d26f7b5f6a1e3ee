//! Inbound webhooks: another system starts runs of a workflow without a bearer token,
//! proving itself with an HMAC-SHA256 signature made with the workflow's shared secret.
//!
//! The sender signs `TIMESTAMP.BODY` (unix seconds, a dot, the raw body) and sends
//! `Baton-Timestamp: TIMESTAMP` and `Baton-Signature: sha256=HEX`. A timestamp more than
//! five minutes away from the server's clock is refused, so a captured request cannot be
//! replayed later; within that window an `Idempotency-Key` makes a retry safe.

use super::auth::{Access, Caller};
use super::error::{self, ApiError};
use super::openapi::{Doc, Routes};
use super::runs::{self, TriggerParams};
use super::{Params, Shared};
use crate::engine::state::RunView;
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::Mac;
use schemars::JsonSchema;
use serde::Serialize;

/// How far a signed timestamp may be from the server's clock.
const TOLERANCE_SECS: u64 = 300;

pub fn routes(r: Routes) -> Routes {
    r.post(
        "/v1/hooks/{workflow}",
        Doc::new(
            "Start a run from a signed webhook (no bearer token)",
            Access::Trigger,
        )
        .public()
        .query::<TriggerParams>()
        .headers(&[
            (
                "Baton-Timestamp",
                "Unix seconds, within five minutes of the server's clock",
            ),
            (
                "Baton-Signature",
                "`sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY`",
            ),
            ("Idempotency-Key", "A key used before returns that run"),
        ])
        .json_body()
        .gives::<RunView>()
        .ok(&[200, 201, 202])
        .errors(&[400, 401, 404, 409, 413, 422]),
        receive,
    )
    .post(
        "/v1/hooks/{workflow}/secret",
        Doc::new(
            "Create or rotate a workflow's webhook secret (shown once)",
            Access::Administer,
        )
        .gives::<HookSecret>()
        .ok(&[201])
        .errors(&[404]),
        rotate,
    )
    .delete(
        "/v1/hooks/{workflow}/secret",
        Doc::new("Turn a workflow's webhook off", Access::Administer)
            .gives::<HookRemoved>()
            .errors(&[404]),
        remove,
    )
}

/// A workflow's new webhook secret: shown in this answer and never again.
#[derive(Serialize, JsonSchema)]
struct HookSecret {
    workflow: String,
    secret: String,
    /// Where the sender posts.
    url: String,
}

/// The answer to turning a workflow's webhook off.
#[derive(Serialize, JsonSchema)]
struct HookRemoved {
    workflow: String,
    removed: bool,
}

/// `POST /v1/hooks/{workflow}/secret`: a new random secret; the old one stops working.
async fn rotate(
    State(state): State<Shared>,
    caller: Caller,
    Path(workflow): Path<String>,
) -> Result<(StatusCode, Json<HookSecret>), ApiError> {
    caller.require(Access::Administer)?;
    // The workflow must exist: a secret for a typo would sit unused.
    state.engine.workflow_versions(&workflow)?;
    let secret = crate::webhooks::new_secret();
    state.engine.store().set_hook_secret(&workflow, &secret)?;
    state.record(&caller, "hook_secret_set", &workflow, None)?;
    Ok((
        StatusCode::CREATED,
        Json(HookSecret {
            url: format!("/v1/hooks/{workflow}"),
            workflow,
            secret,
        }),
    ))
}

/// `DELETE /v1/hooks/{workflow}/secret`.
async fn remove(
    State(state): State<Shared>,
    caller: Caller,
    Path(workflow): Path<String>,
) -> Result<Json<HookRemoved>, ApiError> {
    caller.require(Access::Administer)?;
    if !state.engine.store().remove_hook_secret(&workflow)? {
        return Err(no_hook(&workflow));
    }
    state.record(&caller, "hook_secret_removed", &workflow, None)?;
    Ok(Json(HookRemoved {
        workflow,
        removed: true,
    }))
}

/// `POST /v1/hooks/{workflow}`: checks the signature, then starts the run as a trigger
/// does (actor `hook:WORKFLOW`).
async fn receive(
    State(state): State<Shared>,
    Path(workflow): Path<String>,
    Params(params): Params<TriggerParams>,
    headers: HeaderMap,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let body = error::body(body)?;
    let secret = state
        .engine
        .store()
        .hook_secret(&workflow)?
        .ok_or_else(|| no_hook(&workflow))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    verify(&secret, &headers, &body, now)?;
    let actor = format!("hook:{workflow}");
    runs::start(&state, actor, workflow, params, &headers, &body).await
}

fn no_hook(workflow: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_hook",
        format!(
            "workflow `{workflow}` has no inbound webhook; an admin creates its secret with POST /v1/hooks/{workflow}/secret"
        ),
    )
}

/// Checks `Baton-Timestamp` and `Baton-Signature` against `secret` and `body`.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: u64) -> Result<(), ApiError> {
    let refuse = |field: &str, message: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            message.to_owned(),
        )
        .field(field)
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header("baton-timestamp").ok_or_else(|| {
        refuse(
            "Baton-Timestamp",
            "the Baton-Timestamp header (unix seconds) is missing",
        )
    })?;
    let at: u64 = timestamp
        .parse()
        .map_err(|_| refuse("Baton-Timestamp", "Baton-Timestamp must be unix seconds"))?;
    if at.abs_diff(now) > TOLERANCE_SECS {
        return Err(refuse(
            "Baton-Timestamp",
            "Baton-Timestamp is more than five minutes from the server's clock (a replay, or a clock to fix)",
        ));
    }
    let signature = header("baton-signature")
        .and_then(|s| s.strip_prefix("sha256="))
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or_else(|| {
            refuse(
                "Baton-Signature",
                "the Baton-Signature header must be `sha256=` and a hex HMAC",
            )
        })?;
    let mut mac = crate::webhooks::mac(secret, timestamp);
    mac.update(body);
    // Constant time: the comparison leaks nothing about the expected signature.
    mac.verify_slice(&signature).map_err(|_| {
        refuse("Baton-Signature", "the signature does not match the body and timestamp (wrong secret, or an altered body)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::sign;

    fn headers(timestamp: u64, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("baton-timestamp", timestamp.to_string().parse().unwrap());
        h.insert("baton-signature", signature.parse().unwrap());
        h
    }

    #[test]
    fn signatures_bind_the_body_the_secret_and_the_time() {
        let body = br#"{"id":"A"}"#;
        let good = sign("s3cret", 1_000, body);
        assert!(verify("s3cret", &headers(1_000, &good), body, 1_100).is_ok());
        let code = |r: Result<(), ApiError>| r.unwrap_err().field;
        assert_eq!(
            code(verify("other", &headers(1_000, &good), body, 1_000)),
            Some("Baton-Signature".into())
        );
        assert_eq!(
            code(verify("s3cret", &headers(1_000, &good), b"{}", 1_000)),
            Some("Baton-Signature".into())
        );
        assert_eq!(
            code(verify("s3cret", &headers(1_000, &good), body, 1_000 + 301)),
            Some("Baton-Timestamp".into())
        );
        // The timestamp is signed too: moving it breaks the signature.
        assert!(verify("s3cret", &headers(1_001, &good), body, 1_001).is_err());
    }
}
