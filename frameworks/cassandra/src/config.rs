//! Framework settings and the typed configuration of one Cassandra node:
//! defaults, validation (every problem at once) and the named rules a change
//! must pass.

use std::{collections::BTreeMap, time::Duration};

use scheduler_core::constraints::parse_list;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// Framework-wide settings, given when the scheduler starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long `nodetool drain` may run before the stop signal is sent anyway.
    pub drain_timeout: Duration,
    /// How long a node gets to exit after the stop signal, before SIGKILL.
    pub stop_grace: Duration,
    /// How long one readiness or safety check may wait for the nodes.
    pub check_timeout: Duration,
    /// The top directory of the Cassandra tarball; by default the artifact's
    /// file name without `.tar.gz`/`.tgz` (`cassandra-5.0.9.tar.gz` → `cassandra-5.0.9`).
    pub distribution_dir: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            drain_timeout: Duration::from_secs(120),
            stop_grace: Duration::from_secs(60),
            check_timeout: Duration::from_secs(10),
            distribution_dir: None,
        }
    }
}

impl Settings {
    /// Checks the settings, reporting every problem at once.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.drain_timeout.is_zero() {
            problems.push("the drain timeout must be positive (nodetool drain flushes memtables before the stop)".into());
        }
        if self.stop_grace.is_zero() {
            problems.push("the stop grace period must be positive".into());
        }
        if self.check_timeout < Duration::from_millis(100) {
            problems.push("the check timeout must be at least 100 ms".into());
        }
        if let Some(dir) = &self.distribution_dir
            && (dir.is_empty() || dir.contains('/') || dir.starts_with('.'))
        {
            problems.push(format!(
                "the distribution directory {dir:?} must be a plain directory name such as cassandra-5.0.9"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Settings(problems))
        }
    }
}

/// The data center a node is in when its agent lacks the data center attribute.
pub const DEFAULT_DC: &str = "dc1";
/// The rack a node is in when its agent lacks the rack attribute.
pub const DEFAULT_RACK: &str = "rack1";

/// One node's configuration as stored by the scheduler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// CPU shares.
    pub cpus: f64,
    /// Memory in MB (heap plus the JVM's own memory and off-heap structures).
    pub mem: u64,
    /// JVM heap in MB (`-Xms`/`-Xmx`); at most 3/4 of `mem`.
    pub heap: u64,
    /// Size of the persistent volume (data, commit log, hints, saved caches), in MB.
    pub disk: u64,
    /// `cluster_name`; every node of the framework has the same one.
    pub cluster_name: String,
    /// `num_tokens`: virtual nodes of this node in the ring.
    pub num_tokens: u32,
    /// A fixed CQL (native transport) port, or none for any offered port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_port: Option<u16>,
    /// A fixed storage (inter-node) port, or none for any offered port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_port: Option<u16>,
    /// A fixed JMX port, or none for any offered port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jmx_port: Option<u16>,
    /// Placement constraints, e.g. `hostname=unique`.
    pub constraints: String,
    /// The agent attribute whose value is the node's data center.
    pub dc_attribute: String,
    /// The agent attribute whose value is the node's rack.
    pub rack_attribute: String,
    /// Seeds given explicitly (`host` or `host:port`); none for the first
    /// node of each rack.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<String>,
    /// Any other `cassandra.yaml` setting, as JSON (which YAML reads as is).
    pub options: BTreeMap<String, Value>,
    /// Extra JVM flags; the heap is set by `heap`.
    pub jvm_options: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            cpus: 1.0,
            mem: 4096,
            heap: 2048,
            disk: 10_000,
            cluster_name: "cassandra".into(),
            num_tokens: 16,
            native_port: None,
            storage_port: None,
            jmx_port: None,
            constraints: String::new(),
            dc_attribute: "dc".into(),
            rack_attribute: "rack".into(),
            seeds: Vec::new(),
            options: BTreeMap::new(),
            jvm_options: String::new(),
        }
    }
}

/// `cassandra.yaml` keys the scheduler renders itself; setting them as
/// options would break the node's identity, storage or networking.
pub const RESERVED_OPTIONS: &[&str] = &[
    "cluster_name",
    "num_tokens",
    "initial_token",
    "listen_address",
    "listen_interface",
    "broadcast_address",
    "rpc_address",
    "rpc_interface",
    "broadcast_rpc_address",
    "storage_port",
    "native_transport_port",
    "seed_provider",
    "endpoint_snitch",
    "data_file_directories",
    "commitlog_directory",
    "hints_directory",
    "saved_caches_directory",
    "cdc_raw_directory",
];

fn option_key_problem(key: &str) -> Option<String> {
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Some(format!(
            "option key {key:?} is not a cassandra.yaml setting name (lower case letters, digits and '_')"
        ))
    } else {
        None
    }
}

fn cluster_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        Some(format!(
            "cluster_name {name:?} must be 1 to 64 printable characters"
        ))
    } else {
        None
    }
}

fn seed_problem(seed: &str) -> Option<String> {
    let (host, port) = match seed.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (seed, None),
    };
    let bad_host = host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    let bad_port = port.is_some_and(|p| p.parse::<u16>().ok().filter(|p| *p > 0).is_none());
    (bad_host || bad_port)
        .then(|| format!("seed {seed:?} must be HOST or HOST:PORT, e.g. 10.0.0.5 or 10.0.0.5:7000"))
}

fn attribute_problem(field: &str, name: &str) -> Option<String> {
    (name.is_empty() || name.contains(char::is_whitespace))
        .then(|| format!("{field} {name:?} must be an agent attribute name such as rack"))
}

impl NodeConfig {
    /// Parses a stored or requested configuration.
    pub fn from_json(value: Value) -> Result<Self, String> {
        let value = match value {
            Value::Null => Value::Object(serde_json::Map::new()),
            Value::Object(_) => value,
            _ => return Err("a node configuration is a JSON object".into()),
        };
        serde_json::from_value(value).map_err(|e| format!("invalid node configuration: {e}"))
    }

    /// The configuration as stored.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Every problem with the configuration.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(self.cpus.is_finite() && self.cpus > 0.0) {
            p.push(format!("cpus must be a positive number, not {}", self.cpus));
        }
        if self.heap < 256 {
            p.push(format!("heap must be at least 256 MB, not {}", self.heap));
        }
        if self.heap.saturating_mul(4) > self.mem.saturating_mul(3) {
            p.push(format!(
                "heap ({} MB) must be at most 3/4 of mem ({} MB): Cassandra needs memory beyond its heap; raise mem to at least {} MB or lower heap",
                self.heap,
                self.mem,
                self.heap.saturating_mul(4).div_ceil(3)
            ));
        }
        if self.disk < 200 {
            p.push(format!("disk must be at least 200 MB, not {}", self.disk));
        }
        if let Some(problem) = cluster_name_problem(&self.cluster_name) {
            p.push(problem);
        }
        if !(1..=256).contains(&self.num_tokens) {
            p.push(format!(
                "num_tokens must be between 1 and 256 (16 is a good default), not {}",
                self.num_tokens
            ));
        }
        let fixed: Vec<u16> = [self.native_port, self.storage_port, self.jmx_port]
            .into_iter()
            .flatten()
            .collect();
        if fixed.contains(&0) {
            p.push(
                "a fixed port must be between 1 and 65535 (leave it out for any offered port)"
                    .into(),
            );
        }
        let mut distinct = fixed.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != fixed.len() {
            p.push("native_port, storage_port and jmx_port must differ".into());
        }
        if let Err(errors) = parse_list(&self.constraints) {
            p.extend(errors.into_iter().map(|e| e.to_string()));
        }
        p.extend(attribute_problem("dc_attribute", &self.dc_attribute));
        p.extend(attribute_problem("rack_attribute", &self.rack_attribute));
        p.extend(self.seeds.iter().filter_map(|s| seed_problem(s)));
        for key in self.options.keys() {
            if let Some(problem) = option_key_problem(key) {
                p.push(problem);
            } else if RESERVED_OPTIONS.contains(&key.as_str()) {
                p.push(format!(
                    "option {key} is set by the scheduler (from the node's settings and placement) and cannot be given as an option"
                ));
            }
        }
        if self.jvm_options.contains(['\n', '\r', '\'']) {
            p.push("jvm_options must be a single line of JVM flags without quotes".into());
        }
        for flag in self.jvm_options.split_whitespace() {
            if flag.starts_with("-Xmx") || flag.starts_with("-Xms") {
                p.push("jvm_options must not set -Xmx/-Xms: use heap".into());
            } else if flag.starts_with("-Dcom.sun.management.jmxremote") {
                p.push("jvm_options must not configure JMX: the scheduler binds it to the node's address and JMX port".into());
            } else if flag.starts_with("-Dcassandra.replace_address") {
                p.push("jvm_options must not set cassandra.replace_address*: use `node replace`, which sets it".into());
            }
        }
        p
    }
}

/// The named rules a change of a node's configuration must pass.
pub fn change_problems(old: &NodeConfig, new: &NodeConfig) -> Vec<String> {
    let mut p = Vec::new();
    if old.cluster_name != new.cluster_name {
        p.push(format!(
            "cluster-name-fixed: the node belongs to cluster {:?}; Cassandra refuses to start with another cluster_name",
            old.cluster_name
        ));
    }
    if old.num_tokens != new.num_tokens {
        p.push(format!(
            "num-tokens-fixed: the node owns {} tokens; num_tokens cannot change once it has joined the ring (replace or add nodes instead)",
            old.num_tokens
        ));
    }
    if old.native_port != new.native_port
        || old.storage_port != new.storage_port
        || old.jmx_port != new.jmx_port
    {
        p.push(
            "ports-fixed: ports are reserved with the node; replace the node to change them".into(),
        );
    }
    if old.dc_attribute != new.dc_attribute || old.rack_attribute != new.rack_attribute {
        p.push("topology-fixed: the data center and rack of a node cannot change (Cassandra refuses to start in another one); keep dc_attribute and rack_attribute".into());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> NodeConfig {
        NodeConfig::from_json(v).expect("valid json")
    }

    #[test]
    fn defaults_fill_an_empty_configuration() {
        let c = parse(json!({}));
        assert_eq!((c.mem, c.heap, c.num_tokens), (4096, 2048, 16));
        assert_eq!(
            (c.dc_attribute.as_str(), c.rack_attribute.as_str()),
            ("dc", "rack")
        );
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(parse(Value::Null), c);
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = NodeConfig::from_json(json!({"num_token": 4})).expect_err("typo");
        assert!(err.contains("num_token"), "{err}");
        assert!(NodeConfig::from_json(json!([1])).is_err());
    }

    #[test]
    fn every_problem_is_reported() {
        let c = parse(json!({
            "cpus": 0, "mem": 512, "heap": 512, "disk": 10,
            "cluster_name": " ", "num_tokens": 0,
            "native_port": 9042, "jmx_port": 9042,
            "constraints": "hostname=bogus",
            "rack_attribute": "my rack",
            "seeds": ["10.0.0.1:x"],
            "options": {"listen_address": "1.2.3.4", "Bad-Key": 1},
            "jvm_options": "-Xmx1g -Dcom.sun.management.jmxremote.port=1 -Dcassandra.replace_address_first_boot=1.2.3.4"
        }));
        let problems = c.problems();
        for want in [
            "cpus",
            "heap (512 MB) must be at most 3/4 of mem",
            "disk",
            "cluster_name",
            "num_tokens",
            "must differ",
            "unknown operator",
            "rack_attribute",
            "seed \"10.0.0.1:x\"",
            "option listen_address is set by the scheduler",
            "\"Bad-Key\"",
            "-Xmx",
            "configure JMX",
            "node replace",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{want:?} missing from {problems:#?}"
            );
        }
    }

    #[test]
    fn options_take_any_json_value() {
        let c = parse(json!({"options": {
            "concurrent_writes": 64,
            "auto_snapshot": false,
            "compaction_throughput": "64MiB/s"
        }}));
        assert!(c.problems().is_empty());
        assert_eq!(c.options["concurrent_writes"], json!(64));
    }

    #[test]
    fn change_rules_are_named() {
        let old = parse(json!({"cluster_name": "prod", "num_tokens": 8}));
        let mut new = old.clone();
        new.heap = 1024;
        new.options.insert("concurrent_reads".into(), json!(64));
        new.jvm_options = "-Dx=1".into();
        assert!(change_problems(&old, &new).is_empty());
        new.cluster_name = "other".into();
        new.num_tokens = 16;
        new.jmx_port = Some(7199);
        new.rack_attribute = "zone".into();
        let problems = change_problems(&old, &new).join("\n");
        for rule in [
            "cluster-name-fixed",
            "num-tokens-fixed",
            "ports-fixed",
            "topology-fixed",
        ] {
            assert!(problems.contains(rule), "{rule} missing: {problems}");
        }
    }

    #[test]
    fn settings_are_validated() {
        assert!(Settings::default().validate().is_ok());
        let s = Settings {
            drain_timeout: Duration::ZERO,
            stop_grace: Duration::ZERO,
            check_timeout: Duration::ZERO,
            distribution_dir: Some("../x".into()),
        };
        let Err(Error::Settings(problems)) = s.validate() else {
            panic!("expected problems");
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
