//! Typed errors: [`BuildError`] for construction, [`RequestError`] for a request the
//! dashboard refuses or a store call that failed (rendered as HTML or JSON with its status).

use axum::http::StatusCode;
use keel_jobs::JobsError;

/// A [`DashboardBuilder`](crate::DashboardBuilder) was given settings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A required setting was not given.
    #[error("missing setting: {0}")]
    Missing(&'static str),
    /// The default page size must be between 1 and the maximum page size.
    #[error("page size {0} is outside 1..={max}", max = crate::query::MAX_LIMIT)]
    PageSize(usize),
    /// The operating system's random source failed (the CSRF secret needs it).
    #[error("cannot draw the CSRF secret")]
    Random(#[source] rand::rand_core::OsError),
}

/// Why a request was refused or failed. Its [`status`](RequestError::status) is the HTTP
/// status the dashboard answers with; its message is shown to the user (escaped).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Bad input: an id, state, limit or queue name that does not parse or is out of range.
    #[error("{0}")]
    BadRequest(String),
    /// No such job or page.
    #[error("{0}")]
    NotFound(String),
    /// A state-changing request without a valid CSRF token, from another origin, or with
    /// a Host header that is not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The action does not apply to the job as it is now (e.g. retrying a job that is not
    /// dead, deleting a running job).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("store error: {0}")]
    Store(#[source] JobsError),
}

impl RequestError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RequestError::NotFound(_) => StatusCode::NOT_FOUND,
            RequestError::Forbidden(_) => StatusCode::FORBIDDEN,
            RequestError::Conflict(_) => StatusCode::CONFLICT,
            RequestError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<JobsError> for RequestError {
    fn from(e: JobsError) -> Self {
        match e {
            JobsError::NotFound(id) => RequestError::NotFound(format!("job {id} not found")),
            JobsError::Running(_) | JobsError::NotDead(_) => RequestError::Conflict(e.to_string()),
            JobsError::InvalidArgument(msg) => RequestError::Conflict(msg.to_owned()),
            JobsError::Invalid(invalid) => RequestError::BadRequest(invalid.to_string()),
            other => RequestError::Store(other),
        }
    }
}
