//! An embedded Mesos cluster: one master and N agents in one process,
//! speaking the real Mesos v1 HTTP APIs on loopback and behaving as Mesos
//! 1.11 does for what our frameworks use. For laptops (`mesos-local
//! --agents 3`) and for tests that need several hosts and fault injection.
//!
//! The master serves `POST /api/v1/scheduler` (protobuf and JSON) and
//! `GET /master/state`; every agent has its own `127.0.0.N` address and
//! serves `POST /api/v1/executor` (also as `/slave(1)/api/v1/executor`),
//! fetches executor URIs into per-executor sandboxes, runs custom executors
//! as real processes in their own process groups, and keeps reservations
//! and persistent volumes in a state directory across restarts.
//!
//! It does not isolate anything (no cgroups, no containers, no users), does
//! not run command tasks or task groups (no command or default executor),
//! has no authentication, no ZooKeeper, no operator API, no maintenance or
//! quota; `README.md` lists exactly what is missing.
//!
//! Modules: [`cluster`] (the public [`LocalCluster`] API), [`config`],
//! [`core`] (the pure state machines: [`master`], [`agent`]), [`resources`]
//! (resource arithmetic), [`ids`], [`runtime`] (HTTP, processes, files),
//! [`error`].

pub mod agent;
pub mod cluster;
pub mod config;
pub mod core;
pub mod error;
pub mod ids;
pub mod master;
pub mod resources;
pub mod runtime;

pub use cluster::{AgentHandle, LocalCluster};
pub use config::{AgentConfig, ClusterConfig, DEFAULT_FIRST_AGENT_IP, DEFAULT_RESOURCES};
pub use error::{Error, Result};
