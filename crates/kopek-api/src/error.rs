//! Errors in Stripe's envelope: `{"error": {"type", "code", "message", "param"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kopek_app::AppError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub fn invalid(
        param: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error_type: "invalid_request_error",
            code: Some(code),
            message: message.into(),
            param: Some(param.into()),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error_type: "invalid_request_error",
            code: Some("api_key_invalid"),
            message: message.into(),
            param: None,
        }
    }

    pub fn not_found_route(path: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error_type: "invalid_request_error",
            code: None,
            message: format!(
                "Unrecognized request URL ({path}). See the API reference at /v1/openapi.json."
            ),
            param: None,
        }
    }

    pub fn idempotency(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            error_type: "idempotency_error",
            code: Some(code),
            message: message.into(),
            param: None,
        }
    }

    pub fn internal() -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "api_error",
            code: None,
            message: "Something went wrong on kopek's side. The request changed nothing and can be retried.".into(),
            param: None,
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        match e {
            AppError::NotFound { param, .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                error_type: "invalid_request_error",
                code: Some("resource_missing"),
                message: e.to_string(),
                param: param.map(str::to_owned),
            },
            AppError::Invalid { param, message } => ApiError {
                status: StatusCode::BAD_REQUEST,
                error_type: "invalid_request_error",
                code: Some("parameter_invalid"),
                message,
                param,
            },
            AppError::Conflict { param, message } => ApiError {
                status: StatusCode::BAD_REQUEST,
                error_type: "invalid_request_error",
                code: Some("resource_in_use"),
                message,
                param,
            },
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "type": self.error_type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
            }
        });
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
