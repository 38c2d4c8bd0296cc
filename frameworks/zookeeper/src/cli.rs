//! The `zookeeper-mesos` command line: its clap tree and the pure pieces behind it.
//!
//! `zookeeper-mesos scheduler` takes the shared scheduler flags plus
//! ZooKeeper's own (dynamic reconfiguration, the super-user password, where
//! the ZooKeeper tarball comes from); `server …`, `plan …` and `endpoints`
//! are the shared commands of `framework-cli` with ZooKeeper's
//! [`ServerOptions`]. This module parses and maps; it does no I/O beyond
//! finding and reading the local tarball.

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

use crate::{
    config::{Settings, new_super_password},
    error::Error,
    service::SUPER_PASSWORD_KEY,
};

/// The binary's name.
pub const BIN: &str = "zookeeper-mesos";

/// The shared CLI's view of this framework: `server` nodes, `ZOOKEEPER_MESOS_*` variables.
pub fn spec() -> CliSpec {
    CliSpec::new(BIN, "server")
}

/// The whole clap tree, with the framework's variables and noun applied.
pub fn command() -> clap::Command {
    spec().configure(Cli::command())
}

/// A parsed `zookeeper-mesos` command line.
#[derive(Parser, Debug)]
#[command(
    name = "zookeeper-mesos",
    version,
    about = "A ZooKeeper ensemble on Mesos: run the scheduler, manage servers and plans",
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
// Parsed once per process; the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the scheduler (on a Mesos master, or on the embedded local cluster with --master local)
    Scheduler(Box<SchedulerCommand>),
    /// Manage the servers of the ensemble
    #[command(subcommand)]
    Server(NodeCommand<ServerOptions>),
    /// Follow and control deploys, rolling restarts, updates and replacements
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Show how clients reach the ensemble (the connect string)
    Endpoints,
}

/// `zookeeper-mesos scheduler`: the shared flags and ZooKeeper's own.
#[derive(Args, Debug)]
pub struct SchedulerCommand {
    /// The flags every framework's scheduler takes.
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    /// ZooKeeper's flags.
    #[command(flatten)]
    pub zookeeper: ZooKeeperArgs,
}

/// ZooKeeper's scheduler flags.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ZooKeeperArgs {
    /// Dynamic reconfiguration (ZooKeeper 3.5+): servers join and leave without restarting the others. With false, a rolling restart carries a new server list
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", env = "ZOOKEEPER_DYNAMIC_RECONFIG")]
    pub dynamic_reconfig: bool,
    /// Password of ZooKeeper's super user, which the scheduler reconfigures the ensemble with (default: generated once and kept in the scheduler's state)
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "ZOOKEEPER_SUPER_PASSWORD",
        hide_env_values = true
    )]
    pub super_password: Option<String>,
    /// How long a server gets to stop after SIGTERM (e.g. 30s)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = framework_cli::cli::parse_duration)]
    pub stop_grace: Duration,
    /// How long one check may wait for the servers
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = framework_cli::cli::parse_duration)]
    pub check_timeout: Duration,
    /// The ZooKeeper distribution tarball this scheduler serves to agents. Default: the newest zookeeper-*.tar.gz in the cache, as built by `packaging/service-tarball.sh zookeeper`
    #[arg(
        long,
        value_name = "PATH",
        env = "ZOOKEEPER_TARBALL",
        conflicts_with = "zookeeper_url"
    )]
    pub zookeeper_tarball: Option<PathBuf>,
    /// Agents download ZooKeeper from this URL instead (e.g. the official Apache binary release); needs --zookeeper-sha256
    #[arg(long, value_name = "URL", requires = "zookeeper_sha256")]
    pub zookeeper_url: Option<String>,
    /// The sha256 of the file at --zookeeper-url (64 hex digits)
    #[arg(long, value_name = "HEX", requires = "zookeeper_url")]
    pub zookeeper_sha256: Option<String>,
    /// The tarball's top directory (default: read from the tarball, or the URL's file name without .tgz/.tar.gz)
    #[arg(long, value_name = "DIR")]
    pub zookeeper_dist_dir: Option<String>,
}

impl ZooKeeperArgs {
    /// The framework settings the flags stand for, every problem at once.
    pub fn settings(&self) -> Result<Settings, Error> {
        let settings = Settings {
            dynamic_reconfig: self.dynamic_reconfig,
            super_password: self.super_password.clone(),
            check_timeout: self.check_timeout,
            stop_grace: self.stop_grace,
            distribution_dir: self.zookeeper_dist_dir.clone(),
        };
        let mut problems = match settings.validate() {
            Ok(()) => Vec::new(),
            Err(Error::Settings(p)) => p,
            Err(other) => vec![other.to_string()],
        };
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
            tarball: self.zookeeper_tarball.as_deref(),
            url: self.zookeeper_url.as_deref(),
            sha256: self.zookeeper_sha256.as_deref(),
            dist_dir: self.zookeeper_dist_dir.as_deref(),
        }
    }

    /// Where agents get ZooKeeper from: `--zookeeper-url`, `--zookeeper-tarball`, or
    /// the newest tarball under `cache` (the packaging cache directory).
    pub fn artifact(&self, cache: &Path) -> Result<ServiceArtifact, String> {
        TARBALL.artifact(self.artifact_flags(), Some(cache))
    }
}

/// The settings stored once, when the framework first starts: a generated
/// super-user password (used unless --super-password is given).
pub fn first_start_settings() -> Value {
    json!({ SUPER_PASSWORD_KEY: new_super_password() })
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "{text:?} is not KEY=VALUE; write e.g. --option maxClientCnxns=100"
        )),
    }
}

/// ZooKeeper's server options; only the ones given end up in the configuration.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct ServerOptions {
    /// CPU shares
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory in MB (heap plus the JVM's own)
    #[arg(long, value_name = "MB")]
    pub mem: Option<u64>,
    /// JVM heap in MB (at most 3/4 of --mem)
    #[arg(long, value_name = "MB")]
    pub heap: Option<u64>,
    /// Size of the persistent volume holding dataDir and dataLogDir, in MB
    #[arg(long, value_name = "MB")]
    pub disk: Option<u64>,
    /// A fixed client port (default: any offered port)
    #[arg(long)]
    pub client_port: Option<u16>,
    /// A fixed quorum (peer) port (default: any offered port)
    #[arg(long)]
    pub peer_port: Option<u16>,
    /// A fixed leader-election port (default: any offered port)
    #[arg(long)]
    pub election_port: Option<u16>,
    /// Placement constraints, e.g. hostname=unique
    #[arg(long, value_name = "CONSTRAINTS")]
    pub constraints: Option<String>,
    /// A zoo.cfg option (repeatable), e.g. --option tickTime=2000
    #[arg(long = "option", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub options: Vec<(String, String)>,
    /// Extra JVM flags; the heap is set with --heap
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub jvm_options: Option<String>,
}

impl NodeOptions for ServerOptions {
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
        put("client_port", self.client_port.map(|v| json!(v)));
        put("peer_port", self.peer_port.map(|v| json!(v)));
        put("election_port", self.election_port.map(|v| json!(v)));
        put("constraints", self.constraints.as_ref().map(|v| json!(v)));
        put("jvm_options", self.jvm_options.as_ref().map(|v| json!(v)));
        put(
            "options",
            (!self.options.is_empty()).then(|| {
                Value::Object(
                    self.options
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                )
            }),
        );
        Ok(Value::Object(config))
    }
}

/// This service's tarball naming and flags.
pub const TARBALL: ServiceTarball = ServiceTarball {
    name: "zookeeper",
    title: "ZooKeeper",
    example_dir: "apache-zookeeper-3.9.5-bin",
};

pub use scheduler_app::tarball::cache_dir;

/// The newest `zookeeper-*.tar.gz` in `dir`.
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
