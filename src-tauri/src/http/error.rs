//! One error type for the ingest router and how each case answers: the sender's mistakes get a
//! precise message and a 4xx; a store that cannot commit gets a 503 with `Retry-After`, so
//! platforms retry and nothing is lost. Bodies are JSON `{"error": kind, "message": text}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::signature::SignatureError;

/// Seconds a sender is asked to wait when the store cannot commit.
pub const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no such hook")]
    NotFound,
    #[error("the body is larger than this receiver accepts ({limit} bytes)")]
    TooLarge { limit: usize },
    #[error("{0}")]
    BadSignature(#[from] SignatureError),
    #[error("the body could not be read: {0}")]
    BadBody(String),
    #[error("the body did not arrive within {secs} seconds")]
    Timeout { secs: u64 },
    #[error("the delivery could not be stored right now ({0}); retry later")]
    Unavailable(String),
}

impl IngestError {
    fn status(&self) -> StatusCode {
        match self {
            IngestError::NotFound => StatusCode::NOT_FOUND,
            IngestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            IngestError::BadBody(_) => StatusCode::BAD_REQUEST,
            IngestError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            IngestError::NotFound => "not_found",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::BadSignature(_) => "bad_signature",
            IngestError::BadBody(_) => "bad_body",
            IngestError::Timeout { .. } => "timeout",
            IngestError::Unavailable(_) => "unavailable",
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.kind(), "message": self.to_string() }));
        let mut response = (self.status(), body).into_response();
        if matches!(self, IngestError::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

/// Errors of the dashboard API, answered as JSON `{kind, message}` so the UI can branch on
/// `kind` and show `message` as it is.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "this dashboard needs its access token: open the link Rollcall printed when it started"
    )]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("something went wrong inside Rollcall; the log has the details")]
    Internal,
    /// A platform subscription API call failed, or its precondition is missing.
    #[error("{message}")]
    Subscription {
        kind: &'static str,
        status: StatusCode,
        message: String,
    },
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Subscription { status, .. } => *status,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal => "internal",
            ApiError::Subscription { kind, .. } => kind,
        }
    }
}

/// The body of every dashboard API error.
#[derive(Debug, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ApiErrorBody {
    /// `not_found`, `bad_request`, `unauthorized`, `forbidden`, `unavailable` or `internal`;
    /// for platform subscriptions also `unsupported`, `no_credentials`, `bad_credentials`,
    /// `platform_refused`, `platform_unavailable`, `platform_unreachable`,
    /// `platform_unexpected` and `credentials_unavailable`.
    pub kind: &'static str,
    /// A sentence to show the organizer as it is.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ApiErrorBody {
            kind: self.kind(),
            message: self.to_string(),
        });
        (self.status(), body).into_response()
    }
}

impl From<crate::report::ReportError> for ApiError {
    fn from(error: crate::report::ReportError) -> Self {
        use crate::report::ReportError::*;
        match error {
            UnknownWebinar(_) | UnknownSession { .. } | UnknownPerson(_) => {
                ApiError::NotFound(error.to_string())
            }
            BadTimeZone(_) | BadParameter { .. } => ApiError::BadRequest(error.to_string()),
            Store(store) => store.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match error {
            StoreError::Invalid(message) => ApiError::BadRequest(message),
            error if error.is_transient() => ApiError::Unavailable(error.to_string()),
            error => {
                tracing::error!(error = %error, "dashboard request failed");
                ApiError::Internal
            }
        }
    }
}

impl From<crate::subscriptions::SubscriptionError> for ApiError {
    fn from(error: crate::subscriptions::SubscriptionError) -> Self {
        use crate::subscriptions::credentials::CredentialError;
        use crate::subscriptions::SubscriptionError::*;
        if let Store(store) = error {
            return store.into();
        }
        let status = match &error {
            Store(_) | UnknownSource(_) => StatusCode::NOT_FOUND,
            Unsupported { .. }
            | NoCredential { .. }
            | Rejected { .. }
            | Credentials(CredentialError::Empty | CredentialError::Malformed) => {
                StatusCode::BAD_REQUEST
            }
            Refused { .. } | PlatformDown { .. } | Unreachable { .. } | BadAnswer { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Credentials(_) => {
                tracing::error!(%error, "the credential store failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError::Subscription {
            kind: error.kind(),
            status,
            message: error.to_string(),
        }
    }
}
