//! Every error the API returns: an HTTP status and a JSON body with a stable code.
//!
//! ```json
//! {"error": {"code": "invalid_input", "message": "...", "field": "input.amount"}}
//! ```

use crate::engine::EngineError;
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable and machine-readable: clients branch on this, not on the message.
    pub code: &'static str,
    pub message: String,
    /// The request field it concerns (`input`, `Idempotency-Key`, `wait`), if one.
    pub field: Option<String>,
    /// Structured detail, such as every problem of a refused definition.
    pub details: Option<Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// A request that is malformed where `field` says.
    pub fn bad_request(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message).field(field)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                details: self.details.as_ref(),
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let message = e.to_string();
        match e {
            EngineError::InvalidDefinition(invalid) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_definition",
                message,
            )
            .details(serde_json::to_value(&invalid.problems).unwrap_or_default()),
            EngineError::UnknownWorkflow { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_workflow", message)
            }
            EngineError::UnknownVersion { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_version", message).field("version")
            }
            EngineError::InvalidInput { problems, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
                    .field("input")
                    .details(Value::from(problems))
            }
            EngineError::InvalidKey { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_key", message)
                    .field("input")
            }
            EngineError::PluginUnavailable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "plugin_unavailable", message)
            }
            EngineError::UnknownRun(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_run", message)
            }
            EngineError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            EngineError::Task(refusal) => {
                use crate::engine::task::TaskRefusal as R;
                let (status, field) = match &refusal {
                    R::NotAssignee { .. } | R::SegregationOfDuties(_) => {
                        (StatusCode::FORBIDDEN, None)
                    }
                    R::InvalidOutcome { .. } => (StatusCode::UNPROCESSABLE_ENTITY, Some("outcome")),
                    R::InvalidData(_) => (StatusCode::UNPROCESSABLE_ENTITY, Some("data")),
                    R::NothingToReview => (StatusCode::UNPROCESSABLE_ENTITY, Some("output")),
                    _ => (StatusCode::CONFLICT, None),
                };
                let error = ApiError::new(status, refusal.code(), message);
                match (field, refusal) {
                    (_, R::InvalidData(problems)) => {
                        error.field("data").details(Value::from(problems))
                    }
                    (Some(field), _) => error.field(field),
                    (None, _) => error,
                }
            }
            EngineError::WaitTimedOut(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "wait_timed_out", message)
            }
            EngineError::Store(_) => ApiError::internal(message),
            EngineError::Writer(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

/// The request body, or why it could not be read (413 when over the limit).
pub fn body(read: Result<bytes::Bytes, BytesRejection>) -> Result<bytes::Bytes, ApiError> {
    read.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "bad_body"
        };
        ApiError::new(status, code, rejection.body_text())
    })
}

/// The body parsed as JSON; the error names `what` and the line and column.
pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("{what} is not valid JSON: {e}"),
        )
        .field(what)
    })
}

/// [`json`], with an empty body meaning `T::default()`.
pub fn json_or_default<T: serde::de::DeserializeOwned + Default>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    if bytes.is_empty() {
        Ok(T::default())
    } else {
        json(bytes, what)
    }
}
