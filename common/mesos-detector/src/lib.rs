//! Master detection: finds the leading Mesos master for a scheduler's HTTP client.
//!
//! A [`MasterSpec`] is what an operator passes as `--master`: a fixed `http(s)://host:port`
//! (or bare `host:port`) or a `zk://[user:password@]hosts/path` ZooKeeper group. A
//! [`Detector`] turns it into a `tokio::sync::watch` channel holding the leader's base URL
//! (`http://ip:port/`), or `None` while no leader is known. For a ZooKeeper spec a
//! background task follows the masters' group the way Mesos' own detector does: the member
//! `<label>_<sequence>` with the smallest sequence leads, its data is a MasterInfo.
//!
//! It deliberately does not talk to the masters: it never follows 307 redirects, subscribes
//! or checks that the URL answers. It does not contend for leadership or write to ZooKeeper,
//! and it does not support the `file://` indirection of Mesos' `--master` flag.
//!
//! Modules: [`spec`] (parsing and printing specs), [`leader`] (pure election rules and
//! MasterInfo → URL), [`detector`] (the channel and its ZooKeeper task), [`error`].

pub mod detector;
pub mod error;
pub mod leader;
pub mod spec;

pub use detector::{Detector, DetectorOptions};
pub use error::Error;
pub use spec::{Credentials, HostPort, MasterSpec, ZkSpec};
