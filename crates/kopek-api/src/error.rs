//! Errors in Stripe's envelope: `{"error": {"type", "code", "message", "param"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kopek_app::AppError;
use serde_json::json;
use std::borrow::Cow;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub code: Option<Cow<'static, str>>,
    /// For a `card_error` declined by the issuer: why (`insufficient_funds`, …).
    pub decline_code: Option<String>,
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
            code: Some(code.into()),
            decline_code: None,
            message: message.into(),
            param: Some(param.into()),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            error_type: "invalid_request_error",
            code: Some("api_key_invalid".into()),
            decline_code: None,
            message: message.into(),
            param: None,
        }
    }

    pub fn not_found_route(path: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error_type: "invalid_request_error",
            code: None,
            decline_code: None,
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
            code: Some(code.into()),
            decline_code: None,
            message: message.into(),
            param: None,
        }
    }

    pub fn internal() -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "api_error",
            code: None,
            decline_code: None,
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
                code: Some("resource_missing".into()),
                decline_code: None,
                message: e.to_string(),
                param: param.map(str::to_owned),
            },
            AppError::Invalid { param, message } => ApiError {
                status: StatusCode::BAD_REQUEST,
                error_type: "invalid_request_error",
                code: Some("parameter_invalid".into()),
                decline_code: None,
                message,
                param,
            },
            AppError::Conflict { param, message } => ApiError {
                status: StatusCode::BAD_REQUEST,
                error_type: "invalid_request_error",
                code: Some("resource_in_use".into()),
                decline_code: None,
                message,
                param,
            },
            AppError::Card { decline, param } => ApiError {
                status: StatusCode::PAYMENT_REQUIRED,
                error_type: "card_error",
                code: Some(decline.code.into()),
                decline_code: decline.decline_code,
                message: decline.message,
                param,
            },
            AppError::GatewayUnavailable(detail) => {
                tracing::warn!(%detail, "the gateway did not answer");
                ApiError {
                    status: StatusCode::BAD_GATEWAY,
                    error_type: "api_error",
                    code: Some("gateway_unavailable".into()),
                    decline_code: None,
                    message: "The payment gateway did not answer; nothing was saved. \
                              Try again in a moment."
                        .into(),
                    param: None,
                }
            }
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl ApiError {
    /// Stripe's envelope: `{"error": {…}}`.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({
            "type": self.error_type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        });
        if let Some(decline_code) = &self.decline_code {
            error["decline_code"] = decline_code.clone().into();
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
