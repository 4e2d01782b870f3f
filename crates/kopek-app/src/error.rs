use std::fmt;

/// What went wrong inside a store: a bug or an outage, never the caller's fault, except
/// for a unique key the caller can change (reported as [`StoreError::Conflict`]).
#[derive(Clone, Debug)]
pub enum StoreError {
    /// A unique constraint refused the write; the string names the constraint.
    Conflict(String),
    /// A checked write (`update_*_unchanged`) found a row changed since it was read; the
    /// string names the write. The transaction is rolled back.
    Changed(String),
    /// The database is busy or unreachable, or a row could not be decoded.
    Internal(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict(what) => write!(f, "unique key violated: {what}"),
            StoreError::Changed(what) => write!(f, "rows changed since they were read: {what}"),
            StoreError::Internal(what) => write!(f, "store failure: {what}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The outcome of a use case that did not succeed.
///
/// The first variants are the caller's doing and carry the parameter to blame, so the API
/// can answer with a 4xx naming it; [`AppError::Internal`] is ours and is shown to the
/// caller only as an opaque 500.
#[derive(Debug)]
pub enum AppError {
    /// No such object in the caller's account and mode (another account's id included).
    NotFound {
        object: &'static str,
        id: String,
        param: Option<&'static str>,
    },
    /// The request is well-formed but not acceptable.
    Invalid {
        param: Option<String>,
        message: String,
    },
    /// The request conflicts with the object's state, e.g. deleting a product in use.
    Conflict {
        param: Option<String>,
        message: String,
    },
    /// The gateway declined the card (Stripe's 402 `card_error`).
    Card {
        decline: crate::ports::Decline,
        param: Option<String>,
    },
    /// The gateway gave no answer; nothing was saved, and trying again is safe.
    GatewayUnavailable(String),
    Internal(String),
}

impl AppError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Invalid {
            param: Some(param.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::NotFound { object, id, .. } => write!(f, "No such {object}: '{id}'"),
            AppError::Invalid { message, .. } | AppError::Conflict { message, .. } => {
                f.write_str(message)
            }
            AppError::Card { decline, .. } => f.write_str(&decline.message),
            AppError::GatewayUnavailable(what) => write!(f, "the gateway did not answer: {what}"),
            AppError::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}
