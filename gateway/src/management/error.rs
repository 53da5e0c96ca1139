//! Refusals as RabbitMQ's management API writes them: a status code and
//! `{"error": ..., "reason": ...}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use junction_core::CoreError;

/// A refused request.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    error: &'static str,
    reason: String,
}

impl ApiError {
    /// 400: the request is malformed (bad JSON, a field of the wrong type, a missing field).
    pub(crate) fn bad_request(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "bad_request",
            reason: reason.into(),
        }
    }

    /// 401: no credentials, wrong ones, or a user without a management tag.
    pub(crate) fn unauthorized(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error: "not_authorised",
            reason: reason.into(),
        }
    }

    /// 403: the user may log in but not do this.
    pub(crate) fn forbidden(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            error: "not_authorised",
            reason: reason.into(),
        }
    }

    /// The same refusal, its reason prefixed with where in the request it was found
    /// (`queues[3]: ...`).
    pub(crate) fn at(mut self, place: &str) -> Self {
        self.reason = format!("{place}: {}", self.reason);
        self
    }

    /// 503: the node cannot do this now.
    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "unavailable",
            reason: reason.into(),
        }
    }

    /// 404: no such object.
    pub(crate) fn not_found() -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: "Object Not Found",
            reason: "Not Found".into(),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let (status, error) = match &e {
            CoreError::NotFound(_) => (StatusCode::NOT_FOUND, "Object Not Found"),
            CoreError::AccessRefused(_) => (StatusCode::FORBIDDEN, "not_authorised"),
            CoreError::PreconditionFailed(_) | CoreError::ResourceLocked(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        };
        ApiError {
            status,
            error,
            reason: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.error, "reason": self.reason }));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""),
            );
        }
        response
    }
}

/// What an unknown path answers.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found()
}
