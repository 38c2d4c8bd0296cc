//! The one error type of this crate.

/// What can go wrong setting up the framework or asking the nodes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The framework settings are invalid; every problem is listed. Fix the
    /// flags and start again (retrying does not help).
    #[error("invalid Cassandra framework settings: {}", .0.join("; "))]
    Settings(Vec<String>),
    /// No CQL session could be opened to a node (down, starting, or not
    /// reachable). Retrying later may help.
    #[error("cannot open a CQL session to {address}: {source}")]
    Connect {
        /// The node's CQL address.
        address: String,
        /// The driver's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A CQL query failed or its answer could not be read. Retrying may help.
    #[error("CQL query on {address} failed: {source}")]
    Query {
        /// The node asked.
        address: String,
        /// The driver's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The node did not answer within the check timeout. Retrying may help.
    #[error("{address} did not answer CQL within {seconds} s")]
    Timeout {
        /// The node asked.
        address: String,
        /// The timeout.
        seconds: u64,
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
