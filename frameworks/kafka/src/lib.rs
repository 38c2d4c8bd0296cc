//! The Kafka framework: Kafka brokers run by the shared Mesos scheduler.
//!
//! It defines a broker's configuration (resources, JVM heap, the volume that
//! holds `log.dirs`, ports, placement constraints, rack, any
//! `server.properties` option, JVM and log4j settings), renders its files,
//! and answers the scheduler's questions around a restart with real cluster
//! state, read from every running broker: may this broker go down without a partition
//! falling below `min.insync.replicas`, is a restarted broker back in every
//! ISR, which broker is the active controller. Both KRaft (controllers
//! combined with the first brokers; the cluster ID created once, storage
//! formatted once on the volume) and ZooKeeper mode are supported.
//!
//! It does not talk to Mesos, persist anything or serve HTTP: the shared
//! runtime, store and API do that.
//!
//! Modules: [`config`] (settings, broker configuration, change rules),
//! [`render`] (pure `server.properties`/log4j rendering), [`safety`] (pure
//! verdicts over a cluster snapshot), [`admin`] (rdkafka: snapshots and topic
//! operations), [`protocol`] (Kafka requests addressed to one broker),
//! [`controller`] (finding the active controller),
//! [`service`] (the `Service` implementation), [`cli`] (the `kafka-mesos`
//! command line, parsed and mapped; the binary runs it), [`error`].

pub mod admin;
pub mod cli;
pub mod config;
pub mod controller;
pub mod error;
pub mod protocol;
pub mod render;
pub mod safety;
pub mod service;

pub use admin::{KafkaAdmin, TopicDescription, TopicSpec, TopicSummary, TopicUpdate};
pub use config::{BrokerConfig, LogLevel, Mode, ModeKind, SafetyLevel, Settings};
pub use error::{Error, Result};
pub use service::{KafkaService, bootstrap_servers};
