//! The HTTP API: axum routes over the engine and the registry, behind bearer tokens.
//!
//! Every route lives under `/v1` except `/healthz` and the web console's pages (see
//! [`console`]); every API error is JSON (see [`error::ApiError`]); every API request
//! but `/healthz` needs `Authorization: Bearer` or a console session.

mod audit;
pub mod auth;
pub mod console;
pub mod error;
mod exceptions;
mod feedback;
pub mod guard;
pub mod hooks;
pub mod listen;
mod metrics;
pub mod openapi;
mod plugins;
mod runs;
mod stream;
mod tasks;
mod tokens;
mod webhooks;
mod workflows;

use crate::engine::Engine;
use auth::{Access, Caller, Tokens};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use error::ApiError;
use openapi::{Doc, Routes};
use std::future::Future;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub tokens: Tokens,
    /// Turns true when the server stops; open event streams end then.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Signed-in console users.
    pub sessions: console::Sessions,
}

impl AppState {
    /// The state of a server on `engine` and `tokens` that stops when `closing` turns
    /// true, with no console session open yet.
    pub fn new(
        engine: Engine,
        tokens: Tokens,
        closing: tokio::sync::watch::Receiver<bool>,
    ) -> AppState {
        AppState {
            engine,
            tokens,
            closing,
            sessions: console::Sessions::default(),
        }
    }

    /// Records in the system audit log that the caller did `action` to `target`.
    fn record(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        detail: Option<serde_json::Value>,
    ) -> Result<(), ApiError> {
        crate::engine::audit::record(self.engine.store(), &caller.actor(), action, target, detail)
            .map_err(ApiError::from)
    }
}

/// Limits of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiLimits {
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// How many malformed requests one client address may send.
    pub bad_requests: guard::BadRequestBudget,
    /// How long headers may take and how many connections one address may hold.
    pub connections: listen::ConnectionLimits,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 8 << 20,
            bad_requests: guard::BadRequestBudget::default(),
            connections: listen::ConnectionLimits::default(),
        }
    }
}

/// Every route of the API, `/openapi.json` documenting them, and the web console.
pub fn router(state: AppState, limits: &ApiLimits) -> Router {
    let (routes, document) = routes().finish();
    // The same for every router this process builds.
    let _ = openapi::DOCUMENT.set(document);
    routes
        .merge(console::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            guard::Guard::new(limits.bad_requests),
            guard::limit,
        ))
        .with_state(Arc::new(state))
}

/// Every documented route.
pub fn routes() -> Routes {
    let modules: [fn(Routes) -> Routes; 12] = [
        workflows::routes,
        runs::routes,
        tokens::routes,
        exceptions::routes,
        tasks::routes,
        stream::routes,
        audit::routes,
        plugins::routes,
        metrics::routes,
        feedback::routes,
        hooks::routes,
        webhooks::routes,
    ];
    let base = Routes::new()
        .get(
            "/healthz",
            Doc::new("Whether the server is up", Access::Read)
                .public()
                .gives::<Health>(),
            healthz,
        )
        .get(
            "/openapi.json",
            Doc::new("This document", Access::Read).public(),
            || async { axum::Json(openapi::DOCUMENT.get().cloned().unwrap_or_default()) },
        );
    modules.into_iter().fold(base, |routes, add| add(routes))
}

/// Serves `router` on `listener` until `shutdown` resolves; then event streams end
/// (through `close`, the sender of [`AppState::closing`]) and requests in progress
/// finish before this returns. Runs in flight are not stopped: the engine's state is
/// committed per step, so whatever a stop interrupts is re-run on the next start.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: &ApiLimits,
    close: tokio::sync::watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listen::serve(listener, router, limits.connections, close, shutdown).await
}

/// The answer of `/healthz`.
#[derive(serde::Serialize, schemars::JsonSchema)]
struct Health {
    /// Always `ok`: the server answers.
    status: &'static str,
}

async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

async fn not_found(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    for_client(
        ApiError::not_found(format!("no route {}", uri.path())),
        &headers,
    )
}

async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    );
    for_client(error, &headers)
}

/// `error` as a page for a browser, as JSON for everyone else.
fn for_client(error: ApiError, headers: &axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    if console::wants_html(headers) {
        console::error_page(error)
    } else {
        error.into_response()
    }
}

type Shared = Arc<AppState>;

/// The query string parsed as `T`, like axum's `Query`, but refused as a JSON error
/// that names the parameter at fault.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Params<T>, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(Params)
            .map_err(|e| {
                // A missing parameter is the whole string's fault; its message names it.
                let field = match e.path().to_string() {
                    root if root == "." => "query".to_owned(),
                    parameter => parameter,
                };
                ApiError::bad_request(&field, format!("bad query string: {}", e.inner()))
            })
    }
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Caller, ApiError> {
        let Some(header) = parts.headers.get(header::AUTHORIZATION) else {
            // The console's script calls the API with its session cookie.
            return state
                .sessions
                .api_caller(&state.tokens, &parts.method, &parts.headers)?
                .ok_or_else(|| {
                    ApiError::unauthorized(if console::has_cookie(&parts.headers) {
                        "the console session has ended; sign in again"
                    } else {
                        "missing `Authorization: Bearer TOKEN` header"
                    })
                });
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")
                    .field("Authorization")
            })?;
        state
            .tokens
            .authenticate(token)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .ok_or_else(|| ApiError::unauthorized("the token is unknown or revoked"))
    }
}
