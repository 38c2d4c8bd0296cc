//! The one error type of this crate.

use rdkafka::error::KafkaError;

/// What can go wrong talking to Kafka or setting up the framework.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The framework settings are invalid; every problem is listed. Fix the
    /// flags and start again (retrying does not help).
    #[error("invalid Kafka framework settings: {}", .0.join("; "))]
    Settings(Vec<String>),
    /// No broker endpoint is known yet (no broker placed): nothing to ask.
    #[error("no broker is placed yet, so there is no bootstrap server to ask")]
    NoBrokers,
    /// The rdkafka client could not be created (for example a malformed
    /// bootstrap list). Retrying with the same input does not help.
    #[error("cannot create a Kafka client for {bootstrap}: {source}")]
    Client {
        /// The bootstrap servers given.
        bootstrap: String,
        /// rdkafka's reason.
        #[source]
        source: KafkaError,
    },
    /// The cluster did not answer a metadata request in time (brokers down or
    /// unreachable). Retrying later may help.
    #[error("cannot read the cluster metadata from {bootstrap}: {source}")]
    Metadata {
        /// The bootstrap servers asked.
        bootstrap: String,
        /// rdkafka's reason.
        #[source]
        source: KafkaError,
    },
    /// An admin request as a whole failed (timeout, no broker). Retrying may help.
    #[error("{operation} failed: {source}")]
    Admin {
        /// What was asked, e.g. `create topic events`.
        operation: String,
        /// rdkafka's reason.
        #[source]
        source: KafkaError,
    },
    /// The cluster refused an admin request for one resource (for example a
    /// topic that already exists, or an invalid setting); the text is Kafka's.
    #[error("{operation} refused by the cluster: {reason}")]
    Refused {
        /// What was asked.
        operation: String,
        /// Kafka's error code and message.
        reason: String,
    },
    /// The named topic does not exist.
    #[error("topic {0:?} does not exist (see `topic list`)")]
    TopicNotFound(String),
    /// A topic request is invalid; every problem is listed.
    #[error("invalid topic request: {}", .0.join("; "))]
    InvalidTopic(Vec<String>),
    /// A Kafka protocol exchange with a broker failed (connection, timeout or
    /// an unreadable answer). Retrying may help.
    #[error("Kafka protocol request {request} to {broker} failed: {reason}")]
    Protocol {
        /// The request, e.g. `DescribeQuorum`.
        request: &'static str,
        /// The broker asked.
        broker: String,
        /// What went wrong.
        reason: String,
    },
    /// A Kafka protocol request could not be encoded (a bug, not an input problem).
    #[error("cannot encode a Kafka protocol request: {0}")]
    Encode(String),
    /// A blocking rdkafka call could not be run to completion (the runtime is
    /// shutting down).
    #[error("a blocking Kafka client call was cancelled: {0}")]
    Cancelled(#[source] tokio::task::JoinError),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
