//! The one error type of the API: every failure becomes a status code and a
//! JSON body `{"error": "...", "details": ["...", ...]}` that says what is
//! wrong and how to fix it.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use executor_protocol::{Refusal, RefusalKind};
use scheduler_runtime::{CommandError, ErrorKind};

use crate::model::ErrorBody;

/// Everything that can go wrong in the API and the artifact server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request body is not JSON or does not have the expected shape (400);
    /// retrying the same body never helps.
    #[error("the request body for {what} is invalid: {reason}")]
    BadBody {
        /// What the body was for (e.g. "adding brokers").
        what: String,
        /// The parser's complaint, with line and column.
        reason: String,
        /// What a valid body looks like.
        example: String,
    },
    /// A query parameter is unknown or malformed (400).
    #[error("invalid query: {reason}")]
    BadQuery {
        /// What is wrong.
        reason: String,
    },
    /// An ID expression did not parse (400).
    #[error("invalid ID expression `{expression}`: {reason}")]
    BadIds {
        /// The expression as given.
        expression: String,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// A request that is well-formed but makes no sense (400), e.g. an
    /// expression naming several nodes where one is expected.
    #[error("{message}")]
    Invalid {
        /// What is wrong and what to do instead.
        message: String,
    },
    /// Nodes or a plan do not exist (404).
    #[error("{}", .missing.join("; "))]
    NotFound {
        /// One sentence per missing thing.
        missing: Vec<String>,
        /// Where to look for what exists.
        hint: String,
    },
    /// No route matches the path (404) or the method (405).
    #[error("no route for {method} {path}")]
    NoRoute {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// Whether the path exists with other methods (405).
        wrong_method: bool,
    },
    /// A bearer token is required and was missing or wrong (401).
    #[error("{reason}")]
    Unauthorized {
        /// Missing or wrong.
        reason: String,
    },
    /// The runtime refused a command; the kind gives the status
    /// (invalid 400, not found 404, conflict 409, unavailable 503).
    #[error("{noun} request refused: {source}")]
    Refused {
        /// The service's noun, for the message.
        noun: String,
        /// The runtime's refusal with every reason.
        #[source]
        source: CommandError,
    },
    /// A node's executor refused or failed a request (400/403/409/502).
    #[error("the executor of {noun} {node} answered: {}", .refusal.message)]
    Executor {
        /// The service's noun.
        noun: String,
        /// The node asked.
        node: String,
        /// Its answer.
        refusal: Refusal,
    },
    /// An executor answered with a reply of the wrong type (502); a bug in
    /// the executor or a version mismatch.
    #[error("the executor of {noun} {node} gave an unexpected answer: {got}")]
    UnexpectedReply {
        /// The service's noun.
        noun: String,
        /// The node asked.
        node: String,
        /// What it answered.
        got: String,
    },
    /// An artifact file could not be read (at registration, or 500 when serving).
    #[error("artifact {name} ({path}): {source}")]
    Artifact {
        /// The artifact's name.
        name: String,
        /// Its file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An artifact name that could not be served safely (at registration).
    #[error("artifact name {name:?} is invalid: {reason}")]
    ArtifactName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The HTTP server failed (binding or accepting); not a request error.
    #[error("the API server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl ApiError {
    /// A node-not-found error for one or more IDs.
    pub fn nodes_not_found(noun: &str, ids: &[String]) -> ApiError {
        ApiError::NotFound {
            missing: ids
                .iter()
                .map(|id| format!("{noun} {id} does not exist"))
                .collect(),
            hint: format!("list the {noun}s with GET /api/v1/nodes"),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadBody { .. }
            | ApiError::BadQuery { .. }
            | ApiError::BadIds { .. }
            | ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::NoRoute {
                wrong_method: false,
                ..
            } => StatusCode::NOT_FOUND,
            ApiError::NoRoute { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Refused { source, .. } => match source.kind {
                ErrorKind::Invalid => StatusCode::BAD_REQUEST,
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::Conflict => StatusCode::CONFLICT,
                ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::Executor { refusal, .. } => match refusal.kind {
                RefusalKind::BadRequest => StatusCode::BAD_REQUEST,
                RefusalKind::NotAllowed => StatusCode::FORBIDDEN,
                RefusalKind::NoTask => StatusCode::CONFLICT,
                RefusalKind::Failed => StatusCode::BAD_GATEWAY,
            },
            ApiError::UnexpectedReply { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Artifact { .. } | ApiError::ArtifactName { .. } | ApiError::Serve(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The JSON body: a one-line summary and the details that explain it.
    pub fn body(&self) -> ErrorBody {
        let (error, details): (String, Vec<String>) = match self {
            ApiError::BadBody {
                what,
                reason,
                example,
            } => (
                format!("the request body for {what} is invalid"),
                vec![reason.clone(), format!("a valid body looks like {example}")],
            ),
            ApiError::BadQuery { reason } => ("invalid query parameters".into(), vec![reason.clone()]),
            ApiError::BadIds { expression, reason } => (
                format!("invalid ID expression `{expression}`"),
                vec![reason.clone()],
            ),
            ApiError::Invalid { message } => (message.clone(), vec![]),
            ApiError::NotFound { missing, hint } => {
                let mut details = missing.clone();
                details.push(hint.clone());
                (
                    missing.first().cloned().unwrap_or_else(|| "not found".into()),
                    details,
                )
            }
            ApiError::NoRoute {
                method,
                path,
                wrong_method,
            } => (
                if *wrong_method {
                    format!("{path} does not accept {method}")
                } else {
                    format!("no route for {method} {path}")
                },
                vec!["the routes are listed in GET /api/v1/openapi.json".into()],
            ),
            ApiError::Unauthorized { reason } => (
                reason.clone(),
                vec!["send the scheduler's API token as `Authorization: Bearer <token>` (CLI: --token)".into()],
            ),
            ApiError::Refused { noun, source } => (
                match source.kind {
                    ErrorKind::Invalid => format!("the {noun} request is invalid"),
                    ErrorKind::NotFound => source
                        .messages
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "not found".into()),
                    ErrorKind::Conflict => {
                        "the request conflicts with the scheduler's current state".into()
                    }
                    ErrorKind::Unavailable => "the scheduler cannot do this right now".into(),
                },
                source.messages.clone(),
            ),
            ApiError::Executor { .. } | ApiError::UnexpectedReply { .. } => {
                (self.to_string(), vec![])
            }
            ApiError::Artifact { name, .. } => (
                format!("artifact {name} cannot be read"),
                vec![self.to_string()],
            ),
            ApiError::ArtifactName { .. } | ApiError::Serve(_) => (self.to_string(), vec![]),
        };
        ErrorBody { error, details }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "API request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "API request refused");
        }
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
