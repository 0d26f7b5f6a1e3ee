//! Plugins: upload and install (signature checked), grant, list, show, remove.

use super::auth::{Access, Caller};
use super::error::{self, ApiError};
use super::openapi::{Doc, Routes};
use super::{Params, Shared};
use crate::registry::{
    GrantChange, InstallReport, InstallRequest, PluginRef, PluginView, RegistryError,
};
use crate::store::LimitSettings;
use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The header that carries a detached signature (the `.sig` file, base64).
const SIGNATURE_HEADER: &str = "baton-signature";

pub fn routes(r: Routes) -> Routes {
    r.get(
        "/v1/plugins",
        Doc::new("Every installed plugin version", Access::Read).gives::<Vec<PluginView>>(),
        list,
    )
    .post(
        "/v1/plugins",
        Doc::new(
            "Upload and install a component (.wasm body)",
            Access::Administer,
        )
        .query::<Limits>()
        .headers(&[("Baton-Signature", "The .sig file, base64")])
        .body("application/wasm")
        .gives::<InstallReport>()
        .ok(&[200, 201])
        .errors(&[400, 409, 413, 422]),
        install.layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
    )
    .get(
        "/v1/plugins/{plugin}",
        Doc::new("One plugin version (NAME or NAME@VERSION)", Access::Read)
            .gives::<PluginView>()
            .errors(&[400, 404]),
        show,
    )
    .delete(
        "/v1/plugins/{plugin}",
        Doc::new("Remove one version or all", Access::Administer)
            .gives::<RemovedPlugins>()
            .errors(&[400, 404]),
        remove,
    )
    .post(
        "/v1/plugins/{plugin}/grant",
        Doc::new("Change a plugin's grant", Access::Administer)
            .takes::<GrantBody>()
            .gives::<Vec<PluginView>>()
            .errors(&[400, 404, 413, 422]),
        grant,
    )
}

/// Limits an install sets for the plugin, in place of the defaults.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Limits {
    /// Memory cap per call, in MiB.
    memory_mb: Option<u64>,
    /// Time limit per call, in milliseconds.
    timeout_ms: Option<u64>,
    /// Fuel per rule call.
    fuel: Option<u64>,
}

/// The largest component `POST /v1/plugins` takes, whatever the general body limit:
/// JavaScript and Python components carry their interpreter (13 and 20 MB).
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// `POST /v1/plugins[?memory_mb=N][&timeout_ms=N][&fuel=N]`: the body is the component
/// (`.wasm`), the `Baton-Signature` header its `.sig` file in base64. 201 when newly
/// installed, 200 when these bytes already were.
async fn install(
    State(state): State<Shared>,
    caller: Caller,
    Params(limits): Params<Limits>,
    headers: HeaderMap,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<InstallReport>), ApiError> {
    caller.require(Access::Administer)?;
    let component = error::body(body)?.to_vec();
    if component.is_empty() {
        return Err(ApiError::bad_request(
            "body",
            "the body must be the plugin's component (.wasm)",
        ));
    }
    let signature = headers
        .get(SIGNATURE_HEADER)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .ok()
                })
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Baton-Signature",
                        "must be the signature file (FILE.wasm.sig) in base64",
                    )
                })
        })
        .transpose()?;
    let request = InstallRequest {
        component,
        signature,
        grant: GrantChange::default(),
        limits: LimitSettings {
            memory_mb: limits.memory_mb,
            timeout_ms: limits.timeout_ms,
            fuel: limits.fuel,
            ..Default::default()
        },
    };
    let report = state
        .engine
        .registry()
        .install(request)
        .await
        .map_err(registry_error)?;
    let record = &report.plugin.record;
    if !report.newly_installed {
        return Ok((StatusCode::OK, Json(report)));
    }
    state.record(
        &caller,
        "plugin_installed",
        &record.manifest.id(),
        Some(json!({"digest": record.digest})),
    )?;
    Ok((StatusCode::CREATED, Json(report)))
}

/// `GET /v1/plugins`: every installed version with its grants.
async fn list(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<Json<Vec<PluginView>>, ApiError> {
    caller.require(Access::Read)?;
    Ok(Json(
        state.engine.registry().list().map_err(registry_error)?,
    ))
}

/// `GET /v1/plugins/{NAME[@VERSION]}`: one version (the newest by default): manifest,
/// actions with their schemas, requested and granted capabilities.
async fn show(
    State(state): State<Shared>,
    caller: Caller,
    Path(plugin): Path<String>,
) -> Result<Json<PluginView>, ApiError> {
    caller.require(Access::Read)?;
    let target: PluginRef = plugin.parse().map_err(registry_error)?;
    Ok(Json(
        state
            .engine
            .registry()
            .show(&target)
            .map_err(registry_error)?,
    ))
}

/// The plugin versions a removal took away.
#[derive(Serialize, JsonSchema)]
struct RemovedPlugins {
    removed: Vec<RemovedPlugin>,
}

#[derive(Serialize, JsonSchema)]
struct RemovedPlugin {
    /// `NAME@VERSION`.
    plugin: String,
    digest: String,
}

/// `DELETE /v1/plugins/{NAME[@VERSION]}`: one version, or every version.
async fn remove(
    State(state): State<Shared>,
    caller: Caller,
    Path(plugin): Path<String>,
) -> Result<Json<RemovedPlugins>, ApiError> {
    caller.require(Access::Administer)?;
    let target: PluginRef = plugin.parse().map_err(registry_error)?;
    let removed = state
        .engine
        .registry()
        .remove(&target)
        .map_err(registry_error)?;
    let mut out = Vec::new();
    for record in removed {
        let id = record.manifest.id();
        state.record(
            &caller,
            "plugin_removed",
            &id,
            Some(json!({"digest": record.digest})),
        )?;
        out.push(RemovedPlugin {
            plugin: id,
            digest: record.digest,
        });
    }
    Ok(Json(RemovedPlugins { removed: out }))
}

/// What `POST /v1/plugins/{name}/grant` changes.
#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    /// Hosts the plugin may call (`api.example.com`, `*.example.com:8443`).
    #[serde(default)]
    add_hosts: Vec<String>,
    #[serde(default)]
    remove_hosts: Vec<String>,
    /// Secret name → value. Values are never shown again.
    #[serde(default)]
    set_secrets: BTreeMap<String, String>,
    #[serde(default)]
    remove_secrets: Vec<String>,
    #[serde(default)]
    set_config: BTreeMap<String, Value>,
    #[serde(default)]
    remove_config: Vec<String>,
}

/// `POST /v1/plugins/{name}/grant`: changes what every version of the plugin may
/// reach (hosts), hold (secrets) and read (config). Answers with each version's view.
async fn grant(
    State(state): State<Shared>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<Json<Vec<PluginView>>, ApiError> {
    caller.require(Access::Administer)?;
    let body: GrantBody = error::json(&error::body(body)?, "body")?;
    let change = GrantChange {
        add_hosts: body.add_hosts,
        remove_hosts: body.remove_hosts,
        set_secrets: body.set_secrets.into_iter().collect(),
        remove_secrets: body.remove_secrets,
        set_config: body.set_config.into_iter().collect(),
        remove_config: body.remove_config,
    };
    let views = state
        .engine
        .registry()
        .grant(&name, &change)
        .map_err(registry_error)?;
    state.record(&caller, "plugin_granted", &name, Some(change.summary()))?;
    Ok(Json(views))
}

pub(super) fn registry_error(e: RegistryError) -> ApiError {
    let status = match &e {
        RegistryError::UnknownPlugin { .. } | RegistryError::UnknownVersion { .. } => {
            StatusCode::NOT_FOUND
        }
        RegistryError::PublisherChanged { .. } => StatusCode::CONFLICT,
        RegistryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        RegistryError::InvalidReference(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.code(), e.to_string())
}
