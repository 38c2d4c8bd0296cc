//! The service executor: a Mesos custom executor that runs one data service
//! (Kafka broker, Cassandra node, ZooKeeper server) per task.
//!
//! It speaks the v1 executor HTTP API to its agent, reads the task document
//! (`executor_protocol::TaskDocument`) from `TaskInfo.data`, downloads and
//! checks the service artifacts, unpacks them safely, writes the config
//! files, starts and watches the service, reports its state with reliable
//! status updates, and answers the scheduler's framework messages.
//!
//! It does not decide anything about placement or restarts: when the service
//! exits the task ends, and the scheduler decides what happens next.
//!
//! Modules: [`config`] (environment), [`agent`] (HTTP transport),
//! [`updates`] (reliable updates and calls, pure), [`executor`] (the loop),
//! [`task`] (one task's life), [`service`] (processes and probes),
//! [`artifact`] (download, verify, cache), [`unpack`] (safe extraction),
//! [`logs`] (rotating files and tails), [`error`].

pub mod agent;
pub mod artifact;
pub mod config;
pub mod error;
pub mod executor;
pub mod logs;
pub mod service;
pub mod task;
pub mod unpack;
pub mod updates;

pub use config::Config;
pub use error::Error;
pub use executor::{Executor, Exit};
