//! The `kafka-mesos` command line: its clap tree and the pure pieces behind it.
//!
//! `kafka-mesos scheduler` takes the shared scheduler flags plus Kafka's own
//! (mode, safety level, where the Kafka tarball comes from);
//! `broker …`, `plan …` and `endpoints` are the shared commands of
//! `framework-cli` with Kafka's [`BrokerOptions`]; `topic …` talks to the
//! brokers themselves through rdkafka. This module parses and maps; it does
//! no I/O beyond finding and reading the local Kafka tarball.

pub use scheduler_app::tarball::ServiceArtifact;
use scheduler_app::tarball::{ArtifactFlags, ServiceTarball};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use comfy_table::{Table, presets};
use framework_cli::{CliSpec, GlobalArgs, NodeCommand, NodeOptions, PlanCommand};
use scheduler_app::SchedulerArgs;
use serde_json::{Value, json};

use crate::{
    admin::{TopicDescription, TopicSpec, TopicSummary, TopicUpdate},
    config::{LogLevel, Mode, SafetyLevel, Settings},
    error::Error,
    safety::ClusterState,
};

/// The binary's name.
pub const BIN: &str = "kafka-mesos";

/// The shared CLI's view of this framework: `broker` nodes, `KAFKA_MESOS_*` variables.
pub fn spec() -> CliSpec {
    CliSpec::new(BIN, "broker")
}

/// The whole clap tree, with the framework's variables and noun applied.
pub fn command() -> clap::Command {
    spec().configure(Cli::command())
}

/// A parsed `kafka-mesos` command line.
#[derive(Parser, Debug)]
#[command(
    name = "kafka-mesos",
    version,
    about = "Kafka brokers on Mesos: run the scheduler, manage brokers, plans and topics",
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
pub enum Command {
    /// Run the scheduler (on a Mesos master, or on the embedded local cluster with --master local)
    Scheduler(Box<SchedulerCommand>),
    /// Manage the brokers
    #[command(subcommand)]
    Broker(NodeCommand<BrokerOptions>),
    /// Follow and control deploys, rolling restarts and updates
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Show how clients reach the cluster (bootstrap servers)
    Endpoints,
    /// Manage topics (through the brokers, with Kafka's admin API)
    #[command(subcommand)]
    Topic(TopicCommand),
}

/// `kafka-mesos scheduler`: the shared flags and Kafka's own.
#[derive(Args, Debug)]
pub struct SchedulerCommand {
    /// The flags every framework's scheduler takes.
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    /// Kafka's flags.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// How brokers keep their cluster metadata.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    /// KRaft: the first brokers form the controller quorum
    Kraft,
    /// ZooKeeper mode (Kafka 3.x); needs --zookeeper-connect
    Zookeeper,
}

/// Kafka's scheduler flags.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct KafkaArgs {
    /// How brokers keep their metadata
    #[arg(long, value_enum, default_value = "kraft", env = "KAFKA_MODE")]
    pub mode: ModeArg,
    /// ZooKeeper ensemble for --mode zookeeper: HOST:PORT[,HOST:PORT…][/CHROOT]
    #[arg(
        long,
        value_name = "CONNECT",
        env = "KAFKA_ZOOKEEPER_CONNECT",
        required_if_eq("mode", "zookeeper")
    )]
    pub zookeeper_connect: Option<String>,
    /// Size of the KRaft controller quorum: the first brokers added also act as controllers
    #[arg(long, default_value_t = 3)]
    pub controllers: usize,
    /// Check before a broker is taken down: none, ready (all brokers registered), min-isr (no partition falls below min.insync.replicas), isr (also: a restarted broker is back in every ISR before the next)
    #[arg(long, default_value = "isr", value_name = "LEVEL", value_parser = parse_safety)]
    pub safety: SafetyLevel,
    /// How long a broker gets for its controlled shutdown (e.g. 60s, 2m)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = framework_cli::cli::parse_duration)]
    pub stop_grace: Duration,
    /// How long one safety or readiness check may wait for the cluster
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = framework_cli::cli::parse_duration)]
    pub check_timeout: Duration,
    /// The Kafka distribution tarball this scheduler serves to agents. Default: the newest kafka-*.tar.gz in the cache, as built by `packaging/service-tarball.sh kafka`
    #[arg(
        long,
        value_name = "PATH",
        env = "KAFKA_TARBALL",
        conflicts_with = "kafka_url"
    )]
    pub kafka_tarball: Option<PathBuf>,
    /// Agents download Kafka from this URL instead (e.g. the official Apache download); needs --kafka-sha256
    #[arg(long, value_name = "URL", requires = "kafka_sha256")]
    pub kafka_url: Option<String>,
    /// The sha256 of the file at --kafka-url (64 hex digits)
    #[arg(long, value_name = "HEX", requires = "kafka_url")]
    pub kafka_sha256: Option<String>,
    /// The tarball's top directory (default: read from the tarball, or the URL's file name without .tgz/.tar.gz)
    #[arg(long, value_name = "DIR")]
    pub kafka_dist_dir: Option<String>,
}

fn parse_safety(text: &str) -> Result<SafetyLevel, String> {
    text.parse()
}

impl KafkaArgs {
    /// The framework settings the flags stand for, every problem at once.
    pub fn settings(&self) -> Result<Settings, Error> {
        let mut problems = Vec::new();
        let mode = match (self.mode, &self.zookeeper_connect) {
            (ModeArg::Kraft, None) => Mode::Kraft,
            (ModeArg::Kraft, Some(_)) => {
                problems.push(
                    "--zookeeper-connect applies only with --mode zookeeper (KRaft needs no ZooKeeper)"
                        .to_owned(),
                );
                Mode::Kraft
            }
            (ModeArg::Zookeeper, Some(connect)) => Mode::ZooKeeper {
                connect: connect.clone(),
            },
            (ModeArg::Zookeeper, None) => {
                problems.push(
                    "--mode zookeeper needs --zookeeper-connect HOST:PORT[,…][/CHROOT]".to_owned(),
                );
                Mode::ZooKeeper {
                    connect: String::new(),
                }
            }
        };
        let mut settings = Settings::new(mode);
        settings.controllers = self.controllers;
        settings.safety = self.safety;
        settings.stop_grace = self.stop_grace;
        settings.check_timeout = self.check_timeout;
        settings.distribution_dir = self.kafka_dist_dir.clone();
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
            tarball: self.kafka_tarball.as_deref(),
            url: self.kafka_url.as_deref(),
            sha256: self.kafka_sha256.as_deref(),
            dist_dir: self.kafka_dist_dir.as_deref(),
        }
    }

    /// Where agents get Kafka from: `--kafka-url`, `--kafka-tarball`, or
    /// the newest tarball under `cache` (the packaging cache directory).
    pub fn artifact(&self, cache: &Path) -> Result<ServiceArtifact, String> {
        TARBALL.artifact(self.artifact_flags(), Some(cache))
    }
}

/// The settings stored once, when the framework first starts: a KRaft
/// cluster ID for all brokers to format their storage with.
pub fn first_start_settings(settings: &Settings) -> Option<Value> {
    match settings.mode {
        Mode::Kraft => Some(json!({ "cluster_id": crate::config::new_cluster_id() })),
        Mode::ZooKeeper { .. } => None,
    }
}

fn parse_log_level(text: &str) -> Result<LogLevel, String> {
    serde_json::from_value(Value::String(text.to_ascii_uppercase()))
        .map_err(|_| format!("unknown log level {text:?}; use TRACE, DEBUG, INFO, WARN or ERROR"))
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "{text:?} is not KEY=VALUE; write e.g. log.retention.hours=24"
        )),
    }
}

/// Kafka's broker options; only the ones given end up in the configuration.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct BrokerOptions {
    /// CPU shares
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory in MB (heap plus the JVM's own)
    #[arg(long, value_name = "MB")]
    pub mem: Option<u64>,
    /// JVM heap in MB (at most 3/4 of --mem)
    #[arg(long, value_name = "MB")]
    pub heap: Option<u64>,
    /// Size of the persistent volume holding log.dirs, in MB
    #[arg(long, value_name = "MB")]
    pub disk: Option<u64>,
    /// A fixed client port (default: any offered port)
    #[arg(long)]
    pub port: Option<u16>,
    /// A fixed KRaft controller port (default: any offered port)
    #[arg(long)]
    pub controller_port: Option<u16>,
    /// Placement constraints, e.g. hostname=unique or rack=groupBy:3
    #[arg(long, value_name = "CONSTRAINTS")]
    pub constraints: Option<String>,
    /// The agent attribute whose value becomes broker.rack
    #[arg(long, value_name = "ATTRIBUTE")]
    pub rack_attribute: Option<String>,
    /// A server.properties option (repeatable), e.g. --option min.insync.replicas=2
    #[arg(long = "option", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub options: Vec<(String, String)>,
    /// Extra JVM flags (KAFKA_OPTS); the heap is set with --heap
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub jvm_options: Option<String>,
    /// The root log level: TRACE, DEBUG, INFO, WARN or ERROR
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<LogLevel>,
    /// A log4j.properties line (repeatable), e.g. --log4j-option log4j.logger.kafka.controller=DEBUG
    #[arg(long = "log4j-option", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub log4j_options: Vec<(String, String)>,
}

impl NodeOptions for BrokerOptions {
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
        put("port", self.port.map(|v| json!(v)));
        put("controller_port", self.controller_port.map(|v| json!(v)));
        put("constraints", self.constraints.as_ref().map(|v| json!(v)));
        put(
            "rack_attribute",
            self.rack_attribute.as_ref().map(|v| json!(v)),
        );
        put("jvm_options", self.jvm_options.as_ref().map(|v| json!(v)));
        put("log_level", self.log_level.map(|v| json!(v)));
        let map = |pairs: &[(String, String)]| {
            (!pairs.is_empty()).then(|| {
                Value::Object(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                )
            })
        };
        put("options", map(&self.options));
        put("log4j_options", map(&self.log4j_options));
        Ok(Value::Object(config))
    }
}

/// Where the topic commands find the brokers.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct BootstrapArgs {
    /// Bootstrap servers HOST:PORT[,…] (default: the scheduler's endpoints)
    #[arg(long, value_name = "SERVERS", env = "KAFKA_BOOTSTRAP")]
    pub bootstrap: Option<String>,
    /// How long to wait for the brokers
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = framework_cli::cli::parse_duration)]
    pub kafka_timeout: Duration,
}

/// Topic commands.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum TopicCommand {
    /// List topics with their partitions, replication and health
    List {
        /// Include internal topics (__consumer_offsets, …)
        #[arg(long)]
        internal: bool,
        #[command(flatten)]
        target: BootstrapArgs,
    },
    /// Create a topic
    Add {
        /// Topic name
        name: String,
        /// Number of partitions
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// Replicas per partition
        #[arg(long, default_value_t = 3)]
        replication_factor: i32,
        /// A topic setting (repeatable), e.g. --config min.insync.replicas=2
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        target: BootstrapArgs,
    },
    /// Show a topic's partitions (leader, replicas, ISR) and settings
    Describe {
        /// Topic name
        name: String,
        #[command(flatten)]
        target: BootstrapArgs,
    },
    /// Raise the partition count or change settings of a topic
    Update {
        /// Topic name
        name: String,
        /// Raise the partition count to this (Kafka cannot lower it)
        #[arg(long)]
        partitions: Option<i32>,
        /// Set a topic setting (repeatable), e.g. --config retention.ms=3600000
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
        configs: Vec<(String, String)>,
        /// Reset a topic setting to the broker default (repeatable)
        #[arg(long = "reset", value_name = "KEY")]
        resets: Vec<String>,
        #[command(flatten)]
        target: BootstrapArgs,
    },
}

impl TopicCommand {
    /// Where this command finds the brokers.
    pub fn target(&self) -> &BootstrapArgs {
        match self {
            TopicCommand::List { target, .. }
            | TopicCommand::Add { target, .. }
            | TopicCommand::Describe { target, .. }
            | TopicCommand::Update { target, .. } => target,
        }
    }
}

/// What `topic add` asks for.
pub fn topic_spec(
    name: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(String, String)],
) -> TopicSpec {
    TopicSpec {
        name: name.to_owned(),
        partitions,
        replication_factor,
        configs: configs.iter().cloned().collect(),
    }
}

/// What `topic update` asks for.
pub fn topic_update(
    partitions: Option<i32>,
    configs: &[(String, String)],
    resets: &[String],
) -> TopicUpdate {
    let mut changes: BTreeMap<String, Option<String>> = configs
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    for key in resets {
        changes.insert(key.clone(), None);
    }
    TopicUpdate {
        partitions,
        configs: changes,
    }
}

/// The bootstrap servers in the scheduler's `/endpoints` answer.
pub fn bootstrap_from_endpoints(endpoints: &Value) -> Result<String, String> {
    match endpoints.get("bootstrap_servers").and_then(Value::as_str) {
        Some(servers) if !servers.trim().is_empty() => Ok(servers.to_owned()),
        Some(_) => Err(format!(
            "no broker is running yet, so there are no bootstrap servers; add brokers with `{BIN} broker add 0..2` and check `{BIN} broker list`"
        )),
        None => Err(format!(
            "the scheduler's endpoints have no bootstrap_servers (is --api pointing at a Kafka scheduler?): {endpoints}"
        )),
    }
}

/// The brokers in the scheduler's `/endpoints` answer: `(id, host:port)`.
pub fn brokers_from_endpoints(endpoints: &Value) -> Vec<(String, String)> {
    endpoints
        .get("brokers")
        .and_then(Value::as_object)
        .map(|brokers| {
            brokers
                .iter()
                .filter_map(|(id, e)| Some((id.clone(), e.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(header.to_vec());
    table
}

fn render(mut table: Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
        .to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn ids(list: &[i32]) -> String {
    list.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `topic list` as a table.
pub fn topic_table(topics: &[TopicSummary]) -> String {
    if topics.is_empty() {
        return format!("no topics; create one with `{BIN} topic add NAME`");
    }
    let mut t = table(&[
        "TOPIC",
        "PARTITIONS",
        "REPLICATION",
        "UNDER-REPLICATED",
        "OFFLINE",
    ]);
    for topic in topics {
        t.add_row(vec![
            topic.name.clone(),
            topic.partitions.to_string(),
            topic.replication_factor.to_string(),
            topic.under_replicated.to_string(),
            topic.offline.to_string(),
        ]);
    }
    render(t)
}

/// `topic describe` as text.
pub fn topic_details(topic: &TopicDescription) -> String {
    let mut text = format!("topic {}\n", topic.name);
    if topic.configs.is_empty() {
        text.push_str("settings: broker defaults\n");
    } else {
        text.push_str("settings:\n");
        for (key, value) in &topic.configs {
            text.push_str(&format!("  {key}={value}\n"));
        }
    }
    let mut t = table(&["PARTITION", "LEADER", "REPLICAS", "ISR"]);
    for p in &topic.partitions {
        t.add_row(vec![
            p.id.to_string(),
            if p.leader < 0 {
                "none".into()
            } else {
                p.leader.to_string()
            },
            ids(&p.replicas),
            ids(&p.isr),
        ]);
    }
    text.push_str(&render(t));
    text
}

/// The line under `broker list`: the cluster's health as the brokers see it.
pub fn cluster_summary(state: &ClusterState, controller: Option<i32>) -> String {
    format!(
        "cluster: {} brokers registered, {} under-replicated and {} offline partitions, active controller {}",
        state.brokers.len(),
        state.under_replicated(),
        state.offline(),
        controller.map_or_else(|| "unknown".into(), |c| c.to_string())
    )
}

/// This service's tarball naming and flags.
pub const TARBALL: ServiceTarball = ServiceTarball {
    name: "kafka",
    title: "Kafka",
    example_dir: "kafka_2.13-3.9.2",
};

pub use scheduler_app::tarball::cache_dir;

/// The newest `kafka-*.tar.gz` in `dir`.
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
