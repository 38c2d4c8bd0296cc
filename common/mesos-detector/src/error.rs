//! The crate's one error type.

use mesos_proto::DecodeError;

/// What can go wrong while parsing a spec or detecting the leader.
///
/// Only [`Error::InvalidSpec`] and [`Error::Stopped`] reach callers of the public API; the
/// other variants describe failures the background task logs and retries by itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A master spec could not be parsed. Retrying will not help; fix the spec.
    #[error("invalid master spec `{spec}`: {problem}; {expected}")]
    InvalidSpec {
        /// The spec as given, with any password replaced by `****`.
        spec: String,
        /// What is wrong with it.
        problem: String,
        /// The accepted forms.
        expected: &'static str,
    },
    /// The leading group member's label names no MasterInfo format we know (`json.info`,
    /// `info`). Retrying helps only once another master leads.
    #[error(
        "group member `{member}` has label `{label}`, which carries no known MasterInfo format \
         (expected `json.info` or `info`)"
    )]
    UnknownLabel {
        /// The child znode's name.
        member: String,
        /// Its label (the part before the last `_`).
        label: String,
    },
    /// The leader's znode data is not a MasterInfo in the format its label promises.
    /// Retrying helps only once another master leads.
    #[error("cannot decode the MasterInfo in znode `{path}`: {source}")]
    MasterInfo {
        /// The znode that was read.
        path: String,
        /// What the decoder reported.
        #[source]
        source: DecodeError,
    },
    /// A MasterInfo decoded but holds no host and port a URL can be built from.
    /// Retrying helps only once another master leads.
    #[error("MasterInfo of master `{id}` has no usable address: {problem}")]
    NoAddress {
        /// The master's `id`.
        id: String,
        /// What is missing or invalid.
        problem: String,
    },
    /// A ZooKeeper request or connection failed. Connection losses and expired sessions are
    /// retried with backoff; `NoAuth` needs the right credentials in the spec.
    #[error("ZooKeeper {operation} `{target}` failed: {source}")]
    ZooKeeper {
        /// What was attempted: `connect`, `list children`, `read data`, `check`.
        operation: &'static str,
        /// The ensemble (for `connect`) or the znode path.
        target: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// The detector was stopped, so no leader will be reported any more.
    #[error("the master detector has stopped")]
    Stopped,
}
