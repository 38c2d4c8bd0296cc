//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong while reading the docs, an app definition or the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written; retrying will not help until the path is fixed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An app definition is not what a Marathon app of this project must look like.
    #[error("{app}: {reason}")]
    App {
        /// The app definition's file or ID.
        app: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The OpenAPI document could not be obtained from the API.
    #[error("cannot read the OpenAPI document: {0}")]
    OpenApi(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
