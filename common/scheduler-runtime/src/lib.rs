//! The scheduler runtime shared by every data-service framework.
//!
//! It owns the scheduler's state and drives everything with I/O: the Mesos
//! subscription (through `mesos-client`), persistence before every call that
//! relies on it, executor health checks and framework messages, and the plans.
//! Decisions themselves come from the pure `scheduler-core`. A service plugs in
//! through the [`Service`] trait; the REST API talks to the runtime through
//! [`RuntimeHandle`] commands and reads published [`Snapshot`]s.
//!
//! Modules: [`service`] (the trait), [`state`] (what is persisted),
//! [`command`] (API ↔ runtime), [`runtime`] (the event loop).

pub mod command;
pub mod runtime;
pub mod service;
pub mod state;

pub use command::{Command, CommandError, ErrorKind, PlanAction, Snapshot};
pub use runtime::{JAVA_RUNTIME_DIR, RuntimeConfig, RuntimeError, RuntimeHandle, start};
pub use service::{ArtifactRef, ClusterView, NodeView, Service, TaskContext};
pub use state::{SchedulerState, StateSink};
