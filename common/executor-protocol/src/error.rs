//! The one error type of this crate.

use std::fmt;

/// One thing wrong with a document, named by where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the offending field, e.g. `artifacts[0].sha256`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a task document or a framework message was refused.
///
/// Every variant describes bad input: retrying with the same bytes never helps.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes exceed the size limit of their kind.
    #[error("{what} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Which kind of document.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not JSON, or the JSON has an unknown field, a missing
    /// field or a value of the wrong type.
    #[error("{what} is not valid: {source}")]
    Json {
        /// Which kind of document.
        what: &'static str,
        /// What the parser reported (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The document has no numeric `version` field.
    #[error("{what} has no \"version\" field: add \"version\": {supported}")]
    MissingVersion {
        /// Which kind of document.
        what: &'static str,
        /// The version this build understands.
        supported: u32,
    },
    /// The document is of a version this build does not understand.
    #[error(
        "{what} has version {found}, but this executor understands only version {supported}: \
         upgrade the executor or have the scheduler send version {supported}"
    )]
    UnsupportedVersion {
        /// Which kind of document.
        what: &'static str,
        /// The version found.
        found: u64,
        /// The version this build understands.
        supported: u32,
    },
    /// The document parsed but breaks one or more rules; all are listed.
    #[error("{what} is invalid: {}", join(.problems))]
    Invalid {
        /// Which kind of document.
        what: &'static str,
        /// Every problem found, not only the first.
        problems: Vec<Problem>,
    },
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
