//! The crate's single error type.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong while preparing or running a test fixture.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Mesos rig scripts are not where we looked (see [`crate::rig::RigAvailability`]).
    #[error("real Mesos rig not found at {}", looked_at.display())]
    RigNotFound {
        /// The directory that should hold `start.sh` and `setup.sh`.
        looked_at: PathBuf,
    },

    /// The Cargo workspace root could not be found from `CARGO_MANIFEST_DIR`.
    #[error("cannot find the Cargo workspace root above {}", start.display())]
    WorkspaceRootNotFound {
        /// The directory the upward search began at.
        start: PathBuf,
    },

    /// An option passed to a fixture is malformed.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// A program could not be started at all (missing binary, permissions, ...).
    #[error("cannot run {program}")]
    Spawn {
        /// The program (and the most telling arguments) we tried to run.
        program: String,
        /// Why the OS refused.
        #[source]
        source: std::io::Error,
    },

    /// A helper program ran but exited unsuccessfully.
    #[error("{program} failed ({status}): {output}")]
    CommandFailed {
        /// The program that failed.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// The tail of its stdout/stderr, for the test log.
        output: String,
    },

    /// A helper program succeeded but did not print what we needed.
    #[error("unexpected output from {program}: {detail}; output was: {output}")]
    BadOutput {
        /// The program whose output we parsed.
        program: String,
        /// What was missing or malformed.
        detail: String,
        /// The output as received.
        output: String,
    },

    /// A filesystem or socket operation failed.
    #[error("{what}")]
    Io {
        /// What we were doing, including the path or address involved.
        what: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Sending a signal to a process or process group failed.
    #[error("cannot signal process {pid}")]
    Signal {
        /// The PID (or process-group id) we signalled.
        pid: i32,
        /// The OS error.
        #[source]
        source: rustix::io::Errno,
    },

    /// A server process we started exited before it became ready.
    #[error("{what} exited early ({status}); log tail: {log_tail}")]
    ExitedEarly {
        /// Which server.
        what: String,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its log.
        log_tail: String,
    },

    /// A server we started did not become ready before its deadline (it was killed).
    #[error("{what} not ready after {waited:?}; log tail: {log_tail}")]
    NotReady {
        /// Which server.
        what: String,
        /// How long we waited.
        waited: Duration,
        /// The last lines of its log.
        log_tail: String,
    },

    /// Something did not become ready before its deadline.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What we were waiting for.
        what: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an [`std::io::Error`] with a description of the operation.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// Wraps a spawn failure of `program`.
    pub(crate) fn spawn(program: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let program = program.into();
        move |source| Error::Spawn { program, source }
    }
}
