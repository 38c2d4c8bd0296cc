//! The `cassandra-mesos` command line: its clap tree and the pure pieces behind it.
//!
//! `cassandra-mesos scheduler` takes the shared scheduler flags plus
//! Cassandra's own (drain and stop timeouts, where the Cassandra tarball
//! comes from); `node …`, `plan …` and `endpoints` are the shared commands of
//! `framework-cli` with Cassandra's [`NodeArgs`]. This module parses and
//! maps; it does no I/O beyond finding and reading the local tarball.

pub use scheduler_app::tarball::ServiceArtifact;
use scheduler_app::tarball::{ArtifactFlags, ServiceTarball};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{Args, CommandFactory, Parser, Subcommand};
use framework_cli::{CliSpec, GlobalArgs, NodeCommand, NodeOptions, PlanCommand};
use scheduler_app::SchedulerArgs;
use serde_json::{Value, json};

use crate::{config::Settings, error::Error};

/// The binary's name.
pub const BIN: &str = "cassandra-mesos";

/// The shared CLI's view of this framework: `node`s, `CASSANDRA_MESOS_*` variables.
pub fn spec() -> CliSpec {
    CliSpec::new(BIN, "node")
}

/// The whole clap tree, with the framework's variables and noun applied.
pub fn command() -> clap::Command {
    spec().configure(Cli::command())
}

/// A parsed `cassandra-mesos` command line.
#[derive(Parser, Debug)]
#[command(
    name = "cassandra-mesos",
    version,
    about = "Cassandra nodes on Mesos: run the scheduler, manage nodes and plans",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Options of the commands that talk to a running scheduler.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Subcommand, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only complicate matching"
)]
pub enum Command {
    /// Run the scheduler (on a Mesos master, or on the embedded local cluster with --master local)
    Scheduler(Box<SchedulerCommand>),
    /// Manage the Cassandra nodes
    #[command(subcommand)]
    Node(NodeCommand<NodeArgs>),
    /// Follow and control deploys, rolling restarts, updates and replacements
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Show how clients reach the cluster (CQL contact points)
    Endpoints,
}

/// `cassandra-mesos scheduler`: the shared flags and Cassandra's own.
#[derive(Args, Debug)]
pub struct SchedulerCommand {
    /// The flags every framework's scheduler takes.
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    /// Cassandra's flags.
    #[command(flatten)]
    pub cassandra: CassandraArgs,
}

/// Cassandra's scheduler flags.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct CassandraArgs {
    /// How long `nodetool drain` may take before a node is sent the stop signal anyway (e.g. 2m)
    #[arg(long, default_value = "120s", value_name = "DURATION", value_parser = framework_cli::cli::parse_duration)]
    pub drain_timeout: Duration,
    /// How long a node gets to exit after the stop signal before it is killed
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = framework_cli::cli::parse_duration)]
    pub stop_grace: Duration,
    /// How long one health or safety check may wait for the nodes to answer CQL
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = framework_cli::cli::parse_duration)]
    pub check_timeout: Duration,
    /// The Cassandra distribution tarball this scheduler serves to agents. Default: the newest cassandra-*.tar.gz in the cache, as built by `packaging/service-tarball.sh cassandra`
    #[arg(
        long,
        value_name = "PATH",
        env = "CASSANDRA_TARBALL",
        conflicts_with = "cassandra_url"
    )]
    pub cassandra_tarball: Option<PathBuf>,
    /// Agents download Cassandra from this URL instead; needs --cassandra-sha256
    #[arg(long, value_name = "URL", requires = "cassandra_sha256")]
    pub cassandra_url: Option<String>,
    /// The sha256 of the file at --cassandra-url (64 hex digits)
    #[arg(long, value_name = "HEX", requires = "cassandra_url")]
    pub cassandra_sha256: Option<String>,
    /// The tarball's top directory (default: read from the tarball, or the URL's file name without .tgz/.tar.gz)
    #[arg(long, value_name = "DIR")]
    pub cassandra_dist_dir: Option<String>,
}

impl CassandraArgs {
    /// The framework settings the flags stand for, every problem at once.
    pub fn settings(&self) -> Result<Settings, Error> {
        let mut problems = Vec::new();
        let settings = Settings {
            drain_timeout: self.drain_timeout,
            stop_grace: self.stop_grace,
            check_timeout: self.check_timeout,
            distribution_dir: self.cassandra_dist_dir.clone(),
        };
        if let Err(Error::Settings(more)) = settings.validate() {
            problems.extend(more);
        }
        problems.extend(TARBALL.flag_problems(self.artifact_flags()));
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(Error::Settings(problems))
        }
    }

    /// The artifact flags as given.
    pub fn artifact_flags(&self) -> ArtifactFlags<'_> {
        ArtifactFlags {
            tarball: self.cassandra_tarball.as_deref(),
            url: self.cassandra_url.as_deref(),
            sha256: self.cassandra_sha256.as_deref(),
            dist_dir: self.cassandra_dist_dir.as_deref(),
        }
    }

    /// Where agents get Cassandra from: `--cassandra-url`, `--cassandra-tarball`, or
    /// the newest tarball under `cache` (the packaging cache directory).
    pub fn artifact(&self, cache: &Path) -> Result<ServiceArtifact, String> {
        TARBALL.artifact(self.artifact_flags(), Some(cache))
    }
}

/// A `cassandra.yaml` option: `KEY=VALUE`, where a VALUE that reads as JSON
/// (a number, `true`, a list, …) is kept as such and anything else is a string.
fn parse_option(text: &str) -> Result<(String, Value), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            let value = serde_json::from_str(value.trim())
                .unwrap_or_else(|_| Value::String(value.to_owned()));
            Ok((key.trim().to_owned(), value))
        }
        _ => Err(format!(
            "{text:?} is not KEY=VALUE; write e.g. concurrent_writes=64 or compaction_throughput=64MiB/s"
        )),
    }
}

/// Cassandra's node options; only the ones given end up in the configuration.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct NodeArgs {
    /// CPU shares
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory in MB (heap plus the JVM's own and off-heap memory)
    #[arg(long, value_name = "MB")]
    pub mem: Option<u64>,
    /// JVM heap in MB (at most 3/4 of --mem)
    #[arg(long, value_name = "MB")]
    pub heap: Option<u64>,
    /// Size of the persistent volume (data, commit log, hints, saved caches), in MB
    #[arg(long, value_name = "MB")]
    pub disk: Option<u64>,
    /// The cluster name (fixed once the node exists; default: the cluster's, or "cassandra")
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// Virtual nodes (tokens) of the node (fixed once the node exists; default 16)
    #[arg(long, value_name = "N")]
    pub num_tokens: Option<u32>,
    /// A fixed CQL port (default: any offered port)
    #[arg(long)]
    pub native_port: Option<u16>,
    /// A fixed inter-node port (default: any offered port)
    #[arg(long)]
    pub storage_port: Option<u16>,
    /// A fixed JMX port (default: any offered port)
    #[arg(long)]
    pub jmx_port: Option<u16>,
    /// Placement constraints, e.g. hostname=unique or rack=groupBy:3
    #[arg(long, value_name = "CONSTRAINTS")]
    pub constraints: Option<String>,
    /// The agent attribute whose value is the node's data center (default dc)
    #[arg(long, value_name = "ATTRIBUTE")]
    pub dc_attribute: Option<String>,
    /// The agent attribute whose value is the node's rack (default rack)
    #[arg(long, value_name = "ATTRIBUTE")]
    pub rack_attribute: Option<String>,
    /// Seeds HOST[:PORT],… (default: the first node of each rack)
    #[arg(long, value_name = "SEEDS", value_delimiter = ',')]
    pub seeds: Vec<String>,
    /// A cassandra.yaml setting (repeatable), e.g. --option concurrent_writes=64
    #[arg(long = "option", value_name = "KEY=VALUE", value_parser = parse_option)]
    pub options: Vec<(String, Value)>,
    /// Extra JVM flags; the heap is set with --heap
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub jvm_options: Option<String>,
}

impl NodeOptions for NodeArgs {
    fn to_config(&self) -> Result<Value, String> {
        let mut config = serde_json::Map::new();
        if let Some(cpus) = self.cpus {
            if !(cpus.is_finite() && cpus > 0.0) {
                return Err(format!(
                    "--cpus {cpus} must be a positive number such as 0.5 or 2"
                ));
            }
            config.insert("cpus".into(), json!(cpus));
        }
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                config.insert(key.into(), value);
            }
        };
        put("mem", self.mem.map(|v| json!(v)));
        put("heap", self.heap.map(|v| json!(v)));
        put("disk", self.disk.map(|v| json!(v)));
        put("cluster_name", self.cluster_name.as_ref().map(|v| json!(v)));
        put("num_tokens", self.num_tokens.map(|v| json!(v)));
        put("native_port", self.native_port.map(|v| json!(v)));
        put("storage_port", self.storage_port.map(|v| json!(v)));
        put("jmx_port", self.jmx_port.map(|v| json!(v)));
        put("constraints", self.constraints.as_ref().map(|v| json!(v)));
        put("dc_attribute", self.dc_attribute.as_ref().map(|v| json!(v)));
        put(
            "rack_attribute",
            self.rack_attribute.as_ref().map(|v| json!(v)),
        );
        put("seeds", (!self.seeds.is_empty()).then(|| json!(self.seeds)));
        put("jvm_options", self.jvm_options.as_ref().map(|v| json!(v)));
        put(
            "options",
            (!self.options.is_empty())
                .then(|| Value::Object(self.options.iter().cloned().collect())),
        );
        Ok(Value::Object(config))
    }
}

/// The CQL contact points in the scheduler's `/endpoints` answer.
pub fn contact_points(endpoints: &Value) -> Result<Vec<String>, String> {
    match endpoints.get("contact_points").and_then(Value::as_str) {
        Some(points) if !points.trim().is_empty() => {
            Ok(points.split(',').map(str::to_owned).collect())
        }
        Some(_) => Err(format!(
            "no node is placed yet, so there are no contact points; add nodes with `{BIN} node add 0..2` and check `{BIN} node list`"
        )),
        None => Err(format!(
            "the scheduler's endpoints have no contact_points (is --api pointing at a Cassandra scheduler?): {endpoints}"
        )),
    }
}

/// This service's tarball naming and flags.
pub const TARBALL: ServiceTarball = ServiceTarball {
    name: "cassandra",
    title: "Cassandra",
    example_dir: "apache-cassandra-5.0.9",
};

pub use scheduler_app::tarball::cache_dir;

/// The newest `cassandra-*.tar.gz` in `dir`.
pub fn newest_tarball(dir: &Path) -> Result<PathBuf, String> {
    TARBALL.newest(dir)
}

/// The top directory of the distribution in a `.tar.gz`.
pub fn tarball_top_dir(path: &Path) -> Result<String, String> {
    TARBALL.top_dir(path)
}

/// The name the served tarball gets (its file name, `.tar.gz` or `.tgz`).
pub fn served_name(path: &Path) -> Result<String, String> {
    TARBALL.served_name(path)
}
