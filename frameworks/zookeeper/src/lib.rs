//! The ZooKeeper framework: a ZooKeeper ensemble run by the shared Mesos scheduler.
//!
//! Each server keeps a stable `myid` (its node ID), takes its client, peer
//! and election ports from offers (or fixed ones) and keeps dataDir and
//! dataLogDir on its persistent volume. `zoo.cfg` lists the placed servers;
//! with dynamic reconfiguration (ZooKeeper 3.5+, the default) a new server
//! starts with the current servers plus itself and is then added by a
//! reconfiguration, and a removed one is reconfigured out before it stops,
//! so the others never restart. Without it, a rolling restart carries a new
//! server list. A server is ready when it answers `ruok` and `srvr` says it
//! leads or follows; it is taken down only while the others keep a quorum,
//! and a rolling restart takes the leader last.
//!
//! It does not talk to Mesos, persist anything or serve HTTP: the shared
//! runtime, store and API do that.
//!
//! Modules: [`config`] (settings, server configuration, change rules),
//! [`render`] (pure `zoo.cfg`/dynamic configuration rendering),
//! [`ensemble`] (pure quorum, membership and restart-order decisions),
//! [`admin`] (four-letter words and reconfiguration over the network),
//! [`service`] (the `Service` implementation), [`cli`] (the
//! `zookeeper-mesos` command line), [`error`].

pub mod admin;
pub mod cli;
pub mod config;
pub mod ensemble;
pub mod error;
pub mod render;
pub mod service;

pub use config::{ServerConfig, Settings};
pub use error::{Error, Result};
pub use service::{ZooKeeperService, connect_string};
