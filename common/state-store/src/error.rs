//! The crate's one error type.

use std::path::PathBuf;

/// The error a schema migration returns: any error, or a plain message (`"...".into()`).
pub type MigrationError = Box<dyn std::error::Error + Send + Sync>;

/// Where to read about every error below; repeated in messages an operator must act on.
const DOCS: &str = "see docs/operations/state-storage.md";

/// What can go wrong while parsing a storage spec, reading or writing the state.
///
/// Errors about the stored document (everything from [`Error::Empty`] to
/// [`Error::InvalidState`], and [`Error::Chunks`]) mean the scheduler must not start: retrying
/// does not help, an operator has to restore or move the state. [`Error::is_retryable`] tells
/// the transient ones apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `--storage` value could not be parsed. Fix the flag.
    #[error("invalid storage spec `{spec}`: {problem}; {expected}")]
    InvalidSpec {
        /// The spec as given, with any password replaced by `****`.
        spec: String,
        /// What is wrong with it.
        problem: String,
        /// The accepted forms.
        expected: &'static str,
    },

    /// The stored document has no bytes at all (an empty file or znode). It is never taken
    /// for a fresh start; restore a backup, or remove it to start over.
    #[error(
        "the state at {location} is empty, so the scheduler cannot know what it manages; \
         restore a backup of it, or remove it to start from scratch (which forgets every node) \
         — {DOCS}"
    )]
    Empty {
        /// The file or znode.
        location: String,
    },

    /// The stored document is not JSON (a torn write by another tool, disk corruption, a
    /// wrong file). Restore a backup; the document is left untouched.
    #[error(
        "the state at {location} is not valid JSON ({source}); it is corrupt or not a state \
         document: restore a backup of it — {DOCS}"
    )]
    InvalidJson {
        /// The file or znode.
        location: String,
        /// Where parsing failed.
        #[source]
        source: serde_json::Error,
    },

    /// The document is JSON but not a state document of this project (no `format` field or
    /// another value). Point `--storage` elsewhere or restore a backup.
    #[error(
        "the document at {location} is not a scheduler state document (its `format` is {found}, \
         expected \"{expected}\"); check that --storage points at the right place, or restore a \
         backup — {DOCS}"
    )]
    UnknownFormat {
        /// The file or znode.
        location: String,
        /// The `format` found, quoted, or `missing`.
        found: String,
        /// The format this crate writes.
        expected: &'static str,
    },

    /// The envelope of a state document lacks a field or has one of the wrong type.
    /// Restore a backup.
    #[error(
        "the state document at {location} is damaged: {problem}; restore a backup of it — {DOCS}"
    )]
    Malformed {
        /// The file or znode.
        location: String,
        /// Which field is wrong and how.
        problem: String,
    },

    /// The document belongs to another framework (two frameworks pointed at the same storage).
    /// Give each framework its own `--storage`.
    #[error(
        "the state at {location} belongs to framework \"{found}\", not \"{expected}\"; give each \
         framework its own --storage location — {DOCS}"
    )]
    WrongFramework {
        /// The file or znode.
        location: String,
        /// The framework named in the document.
        found: String,
        /// The framework of this scheduler.
        expected: String,
    },

    /// The document was written by a newer scheduler whose schema this one does not know
    /// (a downgrade). Upgrade the scheduler again, or restore a backup made by this version.
    #[error(
        "the state at {location} was written by a newer version of the scheduler (state schema \
         {found}; this scheduler supports up to {supported}); upgrade the scheduler, or restore \
         a backup written by this version — {DOCS}"
    )]
    NewerVersion {
        /// The file or znode.
        location: String,
        /// The schema version in the document.
        found: u32,
        /// The newest schema version this scheduler reads.
        supported: u32,
    },

    /// The document has an older schema version and no migration leads from it to the
    /// current one. Upgrade through an intermediate scheduler release.
    #[error(
        "the state at {location} has state schema {found}, and this scheduler cannot upgrade \
         schema {missing} to {next}; upgrade through an intermediate scheduler release first — \
         {DOCS}"
    )]
    NoMigration {
        /// The file or znode.
        location: String,
        /// The schema version in the document.
        found: u32,
        /// The first version without a migration.
        missing: u32,
        /// `missing + 1`.
        next: u32,
    },

    /// A migration rejected the document. The document is left as it was.
    #[error(
        "upgrading the state at {location} from schema {from} to {to} failed: {source}; the \
         stored state was not changed — {DOCS}"
    )]
    MigrationFailed {
        /// The file or znode.
        location: String,
        /// The version the failed migration started from.
        from: u32,
        /// `from + 1`.
        to: u32,
        /// What the migration reported.
        #[source]
        source: MigrationError,
    },

    /// The envelope is fine but its `state` does not match this scheduler's state type at the
    /// document's schema version (a bug, or an edited file). Restore a backup.
    #[error(
        "the state at {location} (schema {version}) does not match what this scheduler expects: \
         {source}; restore a backup of it — {DOCS}"
    )]
    InvalidState {
        /// The file or znode.
        location: String,
        /// The schema version after migrations.
        version: u32,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },

    /// The state could not be serialized (a bug in the state type, e.g. a map with non-string
    /// keys). Nothing was written.
    #[error("cannot serialize the scheduler state: {source}")]
    Encode {
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },

    /// A save was attempted before a successful load. A programming error: load first.
    #[error(
        "refusing to write the state at {location} before it was read; the scheduler must load \
         its state before it saves it"
    )]
    NotLoaded {
        /// The file or znode.
        location: String,
    },

    /// A save after a failed load: a document that could not be read is never overwritten.
    /// Fix the load error (restore or move the document) and restart the scheduler.
    #[error(
        "refusing to write the state at {location}: reading it failed, and a state that could \
         not be read is never overwritten; fix the reported problem and restart the scheduler — \
         {DOCS}"
    )]
    LoadFailed {
        /// The file or znode.
        location: String,
    },

    /// A file-system operation failed. Retrying helps for transient conditions (disk full
    /// after cleanup); permission problems need an operator.
    #[error("cannot {operation} {path}: {source}")]
    Io {
        /// What was attempted: `read`, `create directory`, `write`, `sync`, `rename`, `lock`...
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Another process holds the state file's lock: a second scheduler of the same framework on
    /// this host. Stop it, or give this one another `--storage`.
    #[error(
        "the state file {path} is in use by another scheduler process on this host (lock file \
         {lock} is held); stop the other scheduler or use another --storage"
    )]
    Locked {
        /// The state file.
        path: PathBuf,
        /// The lock file beside it.
        lock: PathBuf,
    },

    /// A ZooKeeper request or connection failed. Connection losses, timeouts and expired
    /// sessions are worth retrying (the store reconnects); `NoAuth` and `AuthFailed` need the
    /// right credentials in `--storage`.
    #[error("ZooKeeper {operation} `{target}` failed: {source}")]
    ZooKeeper {
        /// What was attempted: `connect`, `read`, `create`, `commit`, ...
        operation: &'static str,
        /// The ensemble (for `connect`) or the znode path.
        target: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },

    /// The stored document changed since this scheduler read or last wrote it: another
    /// scheduler instance is writing the same state. Stop one of them; this one must restart
    /// and reload.
    #[error(
        "another scheduler instance is writing the state at {location} (it changed since this \
         scheduler read or last wrote it); make sure only one scheduler of this framework runs, \
         then restart it so that it reloads the state — {DOCS}"
    )]
    ConcurrentWriter {
        /// The znode.
        location: String,
    },

    /// A document stored in chunks is inconsistent: the manifest is unreadable or a chunk is
    /// missing or does not match. Restore a backup.
    #[error(
        "the chunked state at {location} is damaged: {problem}; restore a backup of it — {DOCS}"
    )]
    Chunks {
        /// The manifest znode.
        location: String,
        /// What does not match.
        problem: String,
    },

    /// A blocking file task could not complete (the runtime is shutting down).
    #[error("the file operation on {path} was cancelled: {source}")]
    Cancelled {
        /// The state file.
        path: PathBuf,
        /// Why the task did not finish.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// True when the same call may succeed later without anyone fixing anything: ZooKeeper
    /// connection problems and file-system errors other than missing permissions.
    pub fn is_retryable(&self) -> bool {
        use zookeeper_client::Error as Zk;
        match self {
            Error::ZooKeeper { source, .. } => matches!(
                source,
                Zk::ConnectionLoss
                    | Zk::Timeout
                    | Zk::SessionExpired
                    | Zk::NoHosts
                    | Zk::Throttled
                    | Zk::ClientClosed
                    | Zk::SessionMoved
                    | Zk::NotReadOnly
            ),
            Error::Io { source, .. } => source.kind() != std::io::ErrorKind::PermissionDenied,
            Error::Locked { .. } => true,
            _ => false,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
