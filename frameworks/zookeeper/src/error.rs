//! The one error type of this crate.

/// What can go wrong setting up the framework or talking to the ensemble.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The framework settings are invalid; every problem is listed. Fix the
    /// flags and start again (retrying does not help).
    #[error("invalid ZooKeeper framework settings: {}", .0.join("; "))]
    Settings(Vec<String>),
    /// A four-letter word went unanswered (server down, not listening yet, or
    /// the word not in `4lw.commands.whitelist`). Retrying later may help.
    #[error("{word} to {server} failed: {source}")]
    FourLetterWord {
        /// The word, e.g. `srvr`.
        word: &'static str,
        /// `host:port` asked.
        server: String,
        /// The I/O failure (or a timeout).
        #[source]
        source: std::io::Error,
    },
    /// No session with the ensemble could be opened in time. Retrying later
    /// may help.
    #[error("cannot open a ZooKeeper session with {connect}: {source}")]
    Connect {
        /// The connect string.
        connect: String,
        /// The client's reason.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A request on an open session failed: reading the configuration or a
    /// reconfiguration (e.g. another reconfiguration in progress, no quorum
    /// for the new configuration, or not authorised). Retrying may help.
    #[error("{operation} failed: {source}")]
    Request {
        /// What was asked, e.g. `reconfig add server.3`.
        operation: String,
        /// The server's or client's reason.
        #[source]
        source: zookeeper_client::Error,
    },
    /// No server is placed yet, so there is nothing to ask.
    #[error("no ZooKeeper server is placed yet")]
    NoServers,
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
