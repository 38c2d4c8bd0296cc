//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong starting or driving the local cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; every problem is listed. Fix the configuration.
    #[error("invalid local cluster configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    /// Binding a listening socket failed (address in use, or 127.0.0.N not routable). Retrying
    /// with another port may help.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the state directory failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A persisted agent state file is not valid; delete it or fix it by hand.
    #[error("invalid state file {}: {message}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The cluster is shut down; nothing more can be done with it.
    #[error("the local cluster has shut down")]
    ShutDown,
    /// A fault-injection target does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
