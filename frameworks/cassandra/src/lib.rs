//! The Cassandra framework: Apache Cassandra nodes run by the shared Mesos
//! scheduler.
//!
//! It defines a node's configuration (resources, JVM heap, the volume that
//! holds data, commit log, hints and saved caches, the CQL, storage and JMX
//! ports, cluster name, `num_tokens`, seeds, the agent attributes that name
//! its data center and rack, any `cassandra.yaml` option and JVM flags),
//! renders its files, and answers the scheduler's questions around a restart
//! from the ring as the nodes report it over CQL: is a node Up/Normal, may
//! one go down (every other node is Up/Normal). A node stops with
//! `nodetool drain` first; a replaced node starts with
//! `cassandra.replace_address_first_boot` of its old address and takes over
//! its tokens.
//!
//! It does not talk to Mesos, persist anything or serve HTTP: the shared
//! runtime, store and API do that.
//!
//! Modules: [`config`] (settings, node configuration, change rules),
//! [`render`] (pure `cassandra.yaml`/rack/JVM/script rendering), [`ring`]
//! (gossip views over CQL and the pure Up/Normal verdicts), [`service`] (the
//! `Service` implementation), [`cli`] (the `cassandra-mesos` command line,
//! parsed and mapped; the binary runs it), [`error`].

pub mod cli;
pub mod config;
pub mod error;
pub mod render;
pub mod ring;
pub mod service;

pub use config::{NodeConfig, Settings};
pub use error::{Error, Result};
pub use service::CassandraService;
