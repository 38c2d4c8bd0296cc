//! Framework settings and the typed configuration of one broker: defaults,
//! validation (every problem at once) and the named rules a change must pass.

use std::{collections::BTreeMap, fmt, str::FromStr, time::Duration};

use base64::Engine as _;
use scheduler_core::constraints::parse_list;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

/// How the brokers keep their cluster metadata (framework-wide).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// KRaft: the first `controllers` brokers also act as the controller quorum.
    Kraft,
    /// ZooKeeper mode (Kafka 3.x) with this `zookeeper.connect` string.
    ZooKeeper {
        /// `host:port,host:port[/chroot]`.
        connect: String,
    },
}

impl Mode {
    /// The kind of mode, as recorded in each broker's configuration.
    pub fn kind(&self) -> ModeKind {
        match self {
            Mode::Kraft => ModeKind::Kraft,
            Mode::ZooKeeper { .. } => ModeKind::Zookeeper,
        }
    }
}

/// The mode a broker was created in; it never changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeKind {
    /// KRaft.
    Kraft,
    /// ZooKeeper.
    Zookeeper,
}

impl fmt::Display for ModeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModeKind::Kraft => "KRaft",
            ModeKind::Zookeeper => "ZooKeeper",
        })
    }
}

/// How careful the scheduler is before and after taking a broker down.
///
/// Levels are cumulative: each includes the checks of the ones before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SafetyLevel {
    /// No check: brokers are restarted as soon as the previous one runs.
    None,
    /// Every running broker is registered in the cluster metadata.
    Ready,
    /// Also: no partition would fall below its `min.insync.replicas`.
    MinIsr,
    /// Also: a restarted broker is back in the ISR of every partition it
    /// hosts before the next broker is touched.
    #[default]
    Isr,
}

impl FromStr for SafetyLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(SafetyLevel::None),
            "ready" => Ok(SafetyLevel::Ready),
            "min-isr" => Ok(SafetyLevel::MinIsr),
            "isr" => Ok(SafetyLevel::Isr),
            other => Err(format!(
                "unknown safety level {other:?}; use none, ready, min-isr or isr"
            )),
        }
    }
}

/// Framework-wide settings, given when the scheduler starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// KRaft or ZooKeeper mode.
    pub mode: Mode,
    /// Size of the KRaft controller quorum (the first brokers added become
    /// combined broker+controller nodes). Ignored in ZooKeeper mode.
    pub controllers: usize,
    /// Checks around taking a broker down.
    pub safety: SafetyLevel,
    /// How long a broker gets to shut down cleanly after SIGTERM.
    pub stop_grace: Duration,
    /// How long one check may wait for the cluster to answer.
    pub check_timeout: Duration,
    /// The top directory of the Kafka tarball; by default the artifact's file
    /// name without `.tar.gz`/`.tgz` (`kafka_2.13-3.9.2.tgz` → `kafka_2.13-3.9.2`).
    pub distribution_dir: Option<String>,
}

impl Settings {
    /// Defaults for `mode`: a quorum of 3, the `isr` safety level, 60 s to stop.
    pub fn new(mode: Mode) -> Self {
        Settings {
            mode,
            controllers: 3,
            safety: SafetyLevel::default(),
            stop_grace: Duration::from_secs(60),
            check_timeout: Duration::from_secs(10),
            distribution_dir: None,
        }
    }

    /// Checks the settings, reporting every problem at once.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if let Mode::ZooKeeper { connect } = &self.mode {
            if connect.trim().is_empty() || connect.contains(char::is_whitespace) {
                problems.push(format!(
                    "zookeeper connect string {connect:?} must be host:port[,host:port…][/chroot] without spaces"
                ));
            }
        } else if !(1..=9).contains(&self.controllers) {
            problems.push(format!(
                "the KRaft quorum size must be between 1 and 9 (an odd number such as 3), not {}",
                self.controllers
            ));
        }
        if self.stop_grace.is_zero() {
            problems.push("the stop grace period must be positive (Kafka needs time for a controlled shutdown)".into());
        }
        if self.check_timeout < Duration::from_millis(100) {
            problems.push("the check timeout must be at least 100 ms".into());
        }
        if let Some(dir) = &self.distribution_dir
            && (dir.is_empty() || dir.contains('/') || dir.starts_with('.'))
        {
            problems.push(format!(
                "the distribution directory {dir:?} must be a plain directory name such as kafka_2.13-3.9.2"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Settings(problems))
        }
    }
}

/// Kafka's log4j levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// TRACE.
    Trace,
    /// DEBUG.
    Debug,
    /// INFO.
    #[default]
    Info,
    /// WARN.
    Warn,
    /// ERROR.
    Error,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        })
    }
}

/// One broker's configuration as stored by the scheduler.
///
/// Operators set the first group of fields; `mode`, `cluster_id` and
/// `controller` are filled in by the scheduler when the broker is added and
/// never change afterwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// CPU shares.
    pub cpus: f64,
    /// Memory in MB (heap plus the JVM's own memory).
    pub mem: u64,
    /// JVM heap in MB (`-Xms`/`-Xmx`); at most 3/4 of `mem`.
    pub heap: u64,
    /// Size of the persistent volume holding `log.dirs`, in MB.
    pub disk: u64,
    /// A fixed client port, or none for any offered port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A fixed KRaft controller port, or none for any offered port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller_port: Option<u16>,
    /// Placement constraints, e.g. `hostname=unique`.
    pub constraints: String,
    /// An agent attribute whose value becomes `broker.rack`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack_attribute: Option<String>,
    /// Any other `server.properties` settings.
    #[serde(deserialize_with = "scalar_map")]
    pub options: BTreeMap<String, String>,
    /// Extra JVM flags (`KAFKA_OPTS`); the heap is set by `heap`.
    pub jvm_options: String,
    /// The root log level.
    pub log_level: LogLevel,
    /// Extra `log4j.properties` lines, e.g. `log4j.logger.kafka.controller: DEBUG`.
    #[serde(deserialize_with = "scalar_map")]
    pub log4j_options: BTreeMap<String, String>,
    /// The mode the broker was created in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ModeKind>,
    /// The KRaft cluster ID its storage is formatted with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Whether the broker is also a KRaft controller (combined mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            cpus: 1.0,
            mem: 2048,
            heap: 1024,
            disk: 5000,
            port: None,
            controller_port: None,
            constraints: String::new(),
            rack_attribute: None,
            options: BTreeMap::new(),
            jvm_options: String::new(),
            log_level: LogLevel::Info,
            log4j_options: BTreeMap::new(),
            mode: None,
            cluster_id: None,
            controller: None,
        }
    }
}

/// Accepts strings, numbers and booleans as values (`"num.partitions": 3`).
fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => Ok((key, s)),
            serde_json::Value::Number(n) => Ok((key, n.to_string())),
            serde_json::Value::Bool(b) => Ok((key, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "option {key:?} must be a string, number or boolean, not {other}"
            ))),
        })
        .collect()
}

/// `server.properties` keys the scheduler renders itself; setting them as
/// options would break the broker's identity, storage or networking.
pub const RESERVED_OPTIONS: &[&str] = &[
    "broker.id",
    "node.id",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "log.dir",
    "log.dirs",
    "metadata.log.dir",
    "zookeeper.connect",
    "broker.rack",
];

/// Parses a broker ID: Kafka needs a non-negative 32-bit integer.
pub fn broker_id(id: &str) -> Result<i32, String> {
    id.parse::<i32>()
        .ok()
        .filter(|n| *n >= 0 && n.to_string() == id)
        .ok_or_else(|| {
            format!(
                "broker ID {id:?} must be a non-negative integer such as 0, 1 or 2 (it becomes broker.id/node.id)"
            )
        })
}

/// A new random KRaft cluster ID (a UUID in Kafka's URL-safe base64 form).
pub fn new_cluster_id() -> String {
    // One in 64 encodings starts with '-', which kafka-storage.sh reads as an
    // option; Kafka's own random UUIDs are drawn again in that case too.
    loop {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(uuid::Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Whether `id` is a cluster ID `kafka-storage.sh format` accepts.
pub fn cluster_id_problem(id: &str) -> Option<String> {
    // Kafka reads cluster IDs with Java's decoder, which ignores the unused
    // low bits of the last character; so does this one.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    if id.starts_with('-') {
        return Some(format!(
            "cluster_id {id:?} starts with '-', which kafka-storage.sh takes for an option; use another (kafka-storage.sh random-uuid never prints one)"
        ));
    }
    match lenient.decode(id) {
        Ok(bytes) if bytes.len() == 16 && id.len() == 22 => None,
        _ => Some(format!(
            "cluster_id {id:?} is not a Kafka cluster ID (22 characters of URL-safe base64, as printed by kafka-storage.sh random-uuid)"
        )),
    }
}

fn option_key_problem(key: &str) -> Option<String> {
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some(format!(
            "option key {key:?} may contain only letters, digits, '.', '_' and '-'"
        ))
    } else {
        None
    }
}

impl BrokerConfig {
    /// Parses a stored or requested configuration.
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        if !value.is_object() && !value.is_null() {
            return Err("a broker configuration is a JSON object".into());
        }
        let value = if value.is_null() {
            serde_json::json!({})
        } else {
            value
        };
        serde_json::from_value(value).map_err(|e| format!("invalid broker configuration: {e}"))
    }

    /// The configuration as stored.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Every problem with the operator's settings (not the scheduler-set ones).
    pub fn problems(&self, id: &str, mode: ModeKind) -> Vec<String> {
        let mut p = Vec::new();
        match broker_id(id) {
            Err(e) => p.push(e),
            Ok(n) if mode == ModeKind::Zookeeper => {
                let max = self
                    .options
                    .get("reserved.broker.max.id")
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(1000);
                if i64::from(n) > max {
                    p.push(format!(
                        "broker ID {n} is above reserved.broker.max.id ({max}); in ZooKeeper mode use IDs up to {max} or raise that option"
                    ));
                }
            }
            Ok(_) => {}
        }
        if !(self.cpus.is_finite() && self.cpus > 0.0) {
            p.push(format!("cpus must be a positive number, not {}", self.cpus));
        }
        if self.heap < 128 {
            p.push(format!("heap must be at least 128 MB, not {}", self.heap));
        }
        if self.heap.saturating_mul(4) > self.mem.saturating_mul(3) {
            p.push(format!(
                "heap ({} MB) must be at most 3/4 of mem ({} MB): the JVM needs memory beyond its heap; raise mem to at least {} MB or lower heap",
                self.heap,
                self.mem,
                self.heap.saturating_mul(4).div_ceil(3)
            ));
        }
        if self.disk < 100 {
            p.push(format!("disk must be at least 100 MB, not {}", self.disk));
        }
        if self.port == Some(0) || self.controller_port == Some(0) {
            p.push(
                "a fixed port must be between 1 and 65535 (leave it out for any offered port)"
                    .into(),
            );
        }
        if self.port.is_some() && self.port == self.controller_port {
            p.push("port and controller_port must differ".into());
        }
        if let Err(errors) = parse_list(&self.constraints) {
            p.extend(errors.into_iter().map(|e| e.to_string()));
        }
        if let Some(attribute) = &self.rack_attribute
            && (attribute.is_empty() || attribute.contains(char::is_whitespace))
        {
            p.push(format!(
                "rack_attribute {attribute:?} must be an agent attribute name such as rack"
            ));
        }
        for (key, value) in &self.options {
            if let Some(problem) = option_key_problem(key) {
                p.push(problem);
            } else if RESERVED_OPTIONS.contains(&key.as_str()) {
                p.push(format!(
                    "option {key} is set by the scheduler (from the broker ID, its placement and the framework mode) and cannot be given"
                ));
            }
            if value.contains(['\n', '\r']) {
                p.push(format!("option {key} must be a single line"));
            }
        }
        if let Some(level) = self.options.get("min.insync.replicas")
            && level.parse::<u32>().ok().filter(|n| *n >= 1).is_none()
        {
            p.push(format!(
                "option min.insync.replicas must be a positive integer, not {level:?}"
            ));
        }
        if self.jvm_options.contains(['\n', '\r']) {
            p.push("jvm_options must be a single line of JVM flags".into());
        }
        if self
            .jvm_options
            .split_whitespace()
            .any(|f| f.starts_with("-Xmx") || f.starts_with("-Xms"))
        {
            p.push("jvm_options must not set -Xmx/-Xms: use heap".into());
        }
        for (key, value) in &self.log4j_options {
            if !key.starts_with("log4j.") || option_key_problem(key).is_some() {
                p.push(format!(
                    "log4j option {key:?} must be a log4j.* key such as log4j.logger.kafka.controller"
                ));
            }
            if value.contains(['\n', '\r']) {
                p.push(format!("log4j option {key} must be a single line"));
            }
        }
        if mode == ModeKind::Zookeeper && (self.controller_port.is_some()) {
            p.push("controller_port applies only in KRaft mode".into());
        }
        if let Some(id) = &self.cluster_id
            && let Some(problem) = cluster_id_problem(id)
        {
            p.push(problem);
        }
        p
    }

    /// Whether this broker is part of the KRaft controller quorum.
    pub fn is_controller(&self) -> bool {
        self.mode == Some(ModeKind::Kraft) && self.controller == Some(true)
    }
}

/// The named rules a change of a broker's configuration must pass.
pub fn change_problems(old: &BrokerConfig, new: &BrokerConfig) -> Vec<String> {
    let mut p = Vec::new();
    if old.mode.is_some() && old.mode != new.mode {
        p.push(format!(
            "mode-fixed: the broker was created in {} mode and cannot move to another mode",
            old.mode.map_or_else(|| "?".into(), |m| m.to_string())
        ));
    }
    if old.cluster_id.is_some() && old.cluster_id != new.cluster_id {
        p.push(
            "cluster-id-fixed: the KRaft cluster ID its storage was formatted with cannot change"
                .into(),
        );
    }
    if old.controller.is_some() && old.controller != new.controller {
        p.push("controller-role-fixed: a broker cannot join or leave the KRaft controller quorum by an update".into());
    }
    if old.port != new.port || old.controller_port != new.controller_port {
        p.push(
            "ports-fixed: ports are reserved with the broker; replace the broker to change them"
                .into(),
        );
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> BrokerConfig {
        BrokerConfig::from_json(v).expect("valid json")
    }

    #[test]
    fn defaults_fill_an_empty_configuration() {
        let c = parse(json!({}));
        assert_eq!((c.mem, c.heap, c.disk), (2048, 1024, 5000));
        assert!(c.problems("0", ModeKind::Kraft).is_empty());
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = BrokerConfig::from_json(json!({"heapp": 512})).expect_err("typo");
        assert!(err.contains("heapp"), "{err}");
    }

    #[test]
    fn options_accept_scalars() {
        let c =
            parse(json!({"options": {"num.partitions": 3, "auto.create.topics.enable": false}}));
        assert_eq!(c.options["num.partitions"], "3");
        assert_eq!(c.options["auto.create.topics.enable"], "false");
        assert!(BrokerConfig::from_json(json!({"options": {"a": [1]}})).is_err());
    }

    #[test]
    fn every_problem_is_reported() {
        let c = parse(json!({
            "cpus": 0, "mem": 512, "heap": 512, "disk": 10,
            "port": 9092, "controller_port": 9092,
            "constraints": "hostname=bogus",
            "options": {"listeners": "x", "bad key": "1", "min.insync.replicas": "0"},
            "jvm_options": "-Xmx1g",
            "log4j_options": {"rootLogger": "INFO"},
            "cluster_id": "nope"
        }));
        let problems = c.problems("x1", ModeKind::Kraft);
        for want in [
            "broker ID \"x1\"",
            "cpus",
            "heap (512 MB) must be at most 3/4 of mem",
            "disk",
            "must differ",
            "unknown operator",
            "option listeners is set by the scheduler",
            "\"bad key\"",
            "min.insync.replicas must be a positive integer",
            "-Xmx",
            "log4j option \"rootLogger\"",
            "cluster_id \"nope\"",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{want:?} missing from {problems:#?}"
            );
        }
    }

    #[test]
    fn broker_ids_are_integers() {
        assert_eq!(broker_id("0"), Ok(0));
        assert_eq!(broker_id("17"), Ok(17));
        for bad in ["-1", "01", "a", "", "3000000000"] {
            assert!(broker_id(bad).is_err(), "{bad}");
        }
        let c = parse(json!({}));
        assert!(c.problems("1001", ModeKind::Kraft).is_empty());
        assert!(!c.problems("1001", ModeKind::Zookeeper).is_empty());
        let raised = parse(json!({"options": {"reserved.broker.max.id": 5000}}));
        assert!(raised.problems("1001", ModeKind::Zookeeper).is_empty());
    }

    #[test]
    fn cluster_ids_round_trip() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert_eq!(cluster_id_problem(&id), None);
        assert!(cluster_id_problem("MkU3OEVBNTcwNTJENDM2Qk").is_none());
        assert!(cluster_id_problem("short").is_some());
        // Valid base64, but kafka-storage.sh would read it as an option.
        let problem = cluster_id_problem("-kU3OEVBNTcwNTJENDM2Qk");
        assert!(problem.is_some_and(|p| p.contains("starts with '-'")));
        assert!((0..2_000).all(|_| !new_cluster_id().starts_with('-')));
    }

    #[test]
    fn change_rules_are_named() {
        let old =
            parse(json!({"mode": "kraft", "cluster_id": new_cluster_id(), "controller": true}));
        let mut new = old.clone();
        new.options.insert("num.io.threads".into(), "16".into());
        new.heap = 512;
        assert!(change_problems(&old, &new).is_empty());
        new.mode = Some(ModeKind::Zookeeper);
        new.cluster_id = Some(new_cluster_id());
        new.controller = Some(false);
        new.port = Some(9092);
        let problems = change_problems(&old, &new).join("\n");
        for rule in [
            "mode-fixed",
            "cluster-id-fixed",
            "controller-role-fixed",
            "ports-fixed",
        ] {
            assert!(problems.contains(rule), "{rule} missing: {problems}");
        }
    }

    #[test]
    fn settings_are_validated() {
        assert!(Settings::new(Mode::Kraft).validate().is_ok());
        let mut s = Settings::new(Mode::ZooKeeper {
            connect: " ".into(),
        });
        s.stop_grace = Duration::ZERO;
        s.distribution_dir = Some("../x".into());
        let Err(Error::Settings(problems)) = s.validate() else {
            panic!("expected problems");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!("min-isr".parse(), Ok(SafetyLevel::MinIsr));
        assert!("strict".parse::<SafetyLevel>().is_err());
        assert!(SafetyLevel::Isr > SafetyLevel::MinIsr);
    }
}
