//! The one error type of the executor.

use std::path::PathBuf;

/// Everything that can go wrong in the executor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The environment the agent gave us is incomplete or malformed; every
    /// problem is listed. Not retryable: the executor cannot start.
    #[error("invalid executor environment: {}", .0.join("; "))]
    Config(Vec<String>),
    /// The HTTP client could not be built (TLS setup). Not retryable.
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The HTTP exchange with the agent failed (refused, reset, timed out);
    /// retrying may help, e.g. while the agent restarts.
    #[error("HTTP request to the agent at {url} failed: {source}")]
    AgentTransport {
        /// The executor API URL.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The agent answered a call with an unexpected status. 503 (recovering)
    /// and 403 (not yet subscribed) are retryable; 400 means a bad call.
    #[error("the agent answered {status} to {call}: {message}")]
    AgentStatus {
        /// The call type.
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// The body, as text.
        message: String,
    },
    /// The agent's event stream was not valid RecordIO; the stream is dropped
    /// and re-subscribed.
    #[error("corrupt event stream from the agent: {0}")]
    Framing(#[from] mesos_recordio::Error),
    /// An event from the agent could not be decoded; the stream is dropped and
    /// re-subscribed.
    #[error("undecodable event from the agent: {0}")]
    Decode(#[from] mesos_proto::DecodeError),
    /// The task's `TaskInfo.data` is not a valid task document. Not retryable:
    /// the scheduler must send a valid one.
    #[error("the task document in TaskInfo.data is unusable: {0}")]
    TaskDocument(#[source] executor_protocol::Error),
    /// An artifact could not be downloaded (after retries).
    #[error("cannot download {url}: {reason}")]
    Download {
        /// The artifact URL.
        url: String,
        /// What went wrong on the last attempt.
        reason: String,
    },
    /// The downloaded bytes do not have the expected SHA-256. Not retryable:
    /// the artifact or the task document is wrong (or was tampered with).
    #[error(
        "checksum mismatch for {url}: expected sha256 {expected}, got {actual}; \
         nothing was run (fix the artifact or the sha256 in the task document)"
    )]
    ChecksumMismatch {
        /// The artifact URL.
        url: String,
        /// The sha256 from the task document.
        expected: String,
        /// The sha256 of what was downloaded.
        actual: String,
    },
    /// An archive entry would land outside its destination, or the archive is
    /// corrupt. Not retryable.
    #[error("refusing to unpack {archive}: {reason}")]
    UnsafeArchive {
        /// The archive's URL.
        archive: String,
        /// Which entry and why.
        reason: String,
    },
    /// The task names a Java runtime directory that holds none. Not
    /// retryable: the JRE tarball is not laid out as expected.
    #[error("no Java runtime in {}: {reason}", dir.display())]
    NoJavaRuntime {
        /// The directory the task document names.
        dir: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// A file operation failed.
    #[error("{what} ({}): {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The service process could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A signal could not be sent to a process group.
    #[error("cannot signal process group {pgid}: {source}")]
    Signal {
        /// The process group.
        pgid: i32,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was done to which path.
    pub fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}
