//! What schedulers and the service executor say to each other.
//!
//! * [`task`]: the versioned task document a scheduler puts in
//!   `TaskInfo.data` — artifacts, config files, command, environment,
//!   readiness check, stop policy, log limits, admin allow-list.
//! * [`message`]: the versioned framework messages — requests from the
//!   scheduler (status, log tail, admin command) and the executor's responses
//!   and periodic health reports.
//! * [`validate`]: the shared checks (relative paths, URLs, checksums, names).
//!
//! Everything here is plain data with serde and validation: no I/O, no
//! clocks, no Mesos types. Unknown fields and unknown versions are refused
//! with an error that names the problem; validation reports every problem at
//! once.

pub mod error;
pub mod message;
pub mod task;
pub mod validate;

pub use error::{Error, Problem};
pub use message::{
    CheckResult, ExecutorBody, ExecutorMessage, Health, LogStream, Outcome, Refusal, RefusalKind,
    Reply, Request, Response, SchedulerMessage, ServiceState,
};
pub use task::{
    AdminCommand, ArchiveKind, Artifact, Check, Command, ConfigFile, LogRotation, PreStop,
    Readiness, RestartPolicy, StopPolicy, StopSignal, TaskDocument, archive_kind,
};
