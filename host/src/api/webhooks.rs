//! Outbound webhooks: where run-finished callbacks go, and how their deliveries fare.

use super::Shared;
use super::auth::{Access, Caller};
use super::error::{self, ApiError};
use super::openapi::{Doc, Routes};
use crate::webhooks::{Delivery, Webhook};
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/webhooks",
        Doc::new(
            "Outbound webhooks (secrets never shown)",
            Access::Administer,
        )
        .gives::<Vec<Webhook>>(),
        list,
    )
    .post(
        "/v1/webhooks",
        Doc::new(
            "Register a run-finished callback: `{url, workflow}`; the secret is shown once",
            Access::Administer,
        )
        .takes::<NewWebhook>()
        .gives::<CreatedWebhook>()
        .ok(&[201])
        .errors(&[400, 413]),
        create,
    )
    .delete(
        "/v1/webhooks/{id}",
        Doc::new("Remove a webhook", Access::Administer)
            .gives::<Removed>()
            .errors(&[404]),
        remove,
    )
    .get(
        "/v1/webhooks/deliveries",
        Doc::new(
            "Callbacks waiting to be delivered, and those that failed every attempt",
            Access::Administer,
        )
        .gives::<Deliveries>(),
        deliveries,
    )
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    /// Where to POST run-finished callbacks (http:// or https://).
    url: String,
    /// Only runs of this workflow.
    workflow: Option<String>,
}

/// A new webhook, and its signing secret: shown in this answer and never again.
#[derive(Serialize, JsonSchema)]
struct CreatedWebhook {
    webhook: Webhook,
    secret: String,
}

/// The answer to a removal.
#[derive(Serialize, JsonSchema)]
struct Removed {
    id: String,
    removed: bool,
}

async fn create(
    State(state): State<Shared>,
    caller: Caller,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    caller.require(Access::Administer)?;
    let request: NewWebhook = error::json(&error::body(body)?, "body")?;
    if !(request.url.starts_with("http://") || request.url.starts_with("https://")) {
        return Err(ApiError::bad_request(
            "url",
            "the url must start with http:// or https://",
        ));
    }
    let mut id = [0u8; 6];
    getrandom::fill(&mut id).map_err(|e| ApiError::internal(e.to_string()))?;
    let webhook = Webhook {
        id: hex::encode(id),
        url: request.url,
        workflow: request.workflow,
        secret: crate::webhooks::new_secret(),
        created_ms: crate::engine::duration::now_ms(),
        created_by: caller.actor(),
    };
    state
        .engine
        .store()
        .put_webhook(&webhook.id, &StoredWebhook(&webhook))?;
    state.record(
        &caller,
        "webhook_created",
        &webhook.id,
        Some(json!({"url": webhook.url, "workflow": webhook.workflow})),
    )?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            secret: webhook.secret.clone(),
            webhook,
        }),
    ))
}

/// A webhook as stored: with its secret, which the API never shows again.
struct StoredWebhook<'a>(&'a Webhook);

impl serde::Serialize for StoredWebhook<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(self.0).map_err(serde::ser::Error::custom)?;
        value["secret"] = self.0.secret.clone().into();
        value.serialize(s)
    }
}

async fn list(State(state): State<Shared>, caller: Caller) -> Result<Json<Vec<Webhook>>, ApiError> {
    caller.require(Access::Administer)?;
    Ok(Json(state.engine.store().webhooks()?))
}

async fn remove(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    caller.require(Access::Administer)?;
    if !state.engine.store().remove_webhook(&id)? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_webhook",
            format!("no webhook {id} (GET /v1/webhooks lists them)"),
        ));
    }
    state.record(&caller, "webhook_removed", &id, None)?;
    Ok(Json(Removed { id, removed: true }))
}

/// The outbox and the callbacks that failed every attempt.
#[derive(Serialize, JsonSchema)]
struct Deliveries {
    pending: Vec<Pending>,
    failed: Vec<Delivery>,
}

/// A callback waiting in the outbox.
#[derive(Serialize, JsonSchema)]
struct Pending {
    /// When the next attempt is due (unix ms).
    due_ms: u64,
    delivery: Delivery,
}

async fn deliveries(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<Json<Deliveries>, ApiError> {
    caller.require(Access::Administer)?;
    let store = state.engine.store();
    let pending = store
        .outbox::<Delivery>()?
        .into_iter()
        .map(|(due_ms, _, delivery)| Pending { due_ms, delivery })
        .collect();
    let failed = store.failed_deliveries()?;
    Ok(Json(Deliveries { pending, failed }))
}
