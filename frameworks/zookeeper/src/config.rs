//! Framework settings and a server's configuration, with the rules a change
//! must pass.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// zoo.cfg keys the framework writes itself; an option may not set them.
pub const MANAGED_KEYS: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "dynamicConfigFile",
    "reconfigEnabled",
    "standaloneEnabled",
    "4lw.commands.whitelist",
    "admin.enableServer",
];

/// Framework-wide settings, from the scheduler's flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Dynamic reconfiguration (ZooKeeper 3.5+): servers join and leave
    /// without restarting the others. Off: a rolling restart carries a new
    /// server list.
    pub dynamic_reconfig: bool,
    /// The password of ZooKeeper's `super` user, which the scheduler uses for
    /// reconfigurations. `None`: generated once and kept in the state.
    pub super_password: Option<String>,
    /// How long one check may wait for a server.
    pub check_timeout: Duration,
    /// How long a server gets to stop after SIGTERM.
    pub stop_grace: Duration,
    /// The distribution's top directory inside the tarball (e.g. `zookeeper-3.9.5`).
    pub distribution_dir: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dynamic_reconfig: true,
            super_password: None,
            check_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_secs(30),
            distribution_dir: None,
        }
    }
}

impl Settings {
    /// Every problem with the settings at once.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if let Some(password) = &self.super_password
            && (password.len() < 8 || password.contains(':'))
        {
            problems.push(
                "--super-password must be at least 8 characters and contain no ':'".to_owned(),
            );
        }
        if self.check_timeout.is_zero() {
            problems.push("--check-timeout must be more than zero".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Settings(problems))
        }
    }
}

fn default_cpus() -> f64 {
    0.5
}
fn default_mem() -> u64 {
    512
}
fn default_heap() -> u64 {
    256
}
fn default_disk() -> u64 {
    1024
}

/// One server's configuration, as stored (defaults filled in).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// CPU shares.
    #[serde(default = "default_cpus")]
    pub cpus: f64,
    /// Memory in MB (heap plus the JVM's own).
    #[serde(default = "default_mem")]
    pub mem: u64,
    /// JVM heap in MB.
    #[serde(default = "default_heap")]
    pub heap: u64,
    /// Size of the persistent volume holding dataDir and dataLogDir, in MB.
    #[serde(default = "default_disk")]
    pub disk: u64,
    /// A fixed client port (default: any offered port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
    /// A fixed quorum (peer) port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_port: Option<u16>,
    /// A fixed leader-election port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_port: Option<u16>,
    /// Placement constraints, e.g. `hostname=unique`.
    #[serde(default)]
    pub constraints: String,
    /// zoo.cfg options (any but the managed ones).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Extra JVM flags.
    #[serde(default)]
    pub jvm_options: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            cpus: default_cpus(),
            mem: default_mem(),
            heap: default_heap(),
            disk: default_disk(),
            client_port: None,
            peer_port: None,
            election_port: None,
            constraints: String::new(),
            options: BTreeMap::new(),
            jvm_options: String::new(),
        }
    }
}

/// The `myid` of a server: its node ID, an integer from 0 to 255.
pub fn server_id(node: &str) -> Result<u8, String> {
    node.parse::<u8>().map_err(|_| {
        format!("server ID {node:?} must be an integer from 0 to 255: it becomes the server's myid")
    })
}

fn option_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl ServerConfig {
    /// Parses a stored or requested configuration; options given as numbers
    /// or booleans are kept as text.
    pub fn from_json(mut value: Value) -> Result<Self, String> {
        if let Some(options) = value.get_mut("options").and_then(Value::as_object_mut) {
            for (key, v) in options.iter_mut() {
                let text = option_text(v)
                    .ok_or_else(|| format!("option {key} must be a string, number or boolean"))?;
                *v = Value::String(text);
            }
        }
        serde_json::from_value(value).map_err(|e| format!("invalid server configuration: {e}"))
    }

    /// As stored.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Every problem with this configuration for server `id`.
    pub fn problems(&self, id: &str) -> Vec<String> {
        let mut p = Vec::new();
        if let Err(e) = server_id(id) {
            p.push(e);
        }
        if !(self.cpus.is_finite() && self.cpus > 0.0) {
            p.push(format!("cpus {} must be a positive number", self.cpus));
        }
        if self.heap < 32 {
            p.push(format!(
                "heap {} MB is too small (at least 32 MB)",
                self.heap
            ));
        }
        if self.heap * 4 > self.mem * 3 {
            p.push(format!(
                "heap-within-mem: heap {} MB must be at most 3/4 of mem {} MB (the JVM needs room beside its heap)",
                self.heap, self.mem
            ));
        }
        if self.disk == 0 {
            p.push("disk must be more than 0 MB: it holds the server's data".into());
        }
        let fixed: Vec<u16> = [self.client_port, self.peer_port, self.election_port]
            .into_iter()
            .flatten()
            .collect();
        for (i, port) in fixed.iter().enumerate() {
            if *port == 0 {
                p.push("a fixed port must not be 0; leave it out to take any offered port".into());
            } else if fixed[..i].contains(port) {
                p.push(format!(
                    "port {port} is given twice: client, peer and election ports must differ"
                ));
            }
        }
        for key in self.options.keys() {
            if MANAGED_KEYS.contains(&key.as_str()) || key.starts_with("server.") {
                p.push(format!(
                    "option {key} is managed by the framework and cannot be set"
                ));
            } else if key.trim().is_empty() || key.contains(['=', '\n']) {
                p.push(format!("option name {key:?} is not a zoo.cfg key"));
            }
        }
        for (key, value) in &self.options {
            if value.contains('\n') {
                p.push(format!("option {key}: a value cannot span lines"));
            }
        }
        if self.jvm_options.contains('\n') {
            p.push("jvm_options cannot span lines".into());
        }
        p
    }
}

/// Named rules a configuration change must pass.
pub fn change_problems(old: &ServerConfig, new: &ServerConfig) -> Vec<String> {
    let mut p = Vec::new();
    if (old.client_port, old.peer_port, old.election_port)
        != (new.client_port, new.peer_port, new.election_port)
    {
        p.push(
            "ports-fixed: ports are reserved with the server; replace the server to move it to other ports"
                .into(),
        );
    }
    p
}

/// A password for ZooKeeper's `super` user, made once per framework.
pub fn new_super_password() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> ServerConfig {
        ServerConfig::from_json(v).expect("valid")
    }

    #[test]
    fn defaults_fill_an_empty_configuration_and_pass() {
        let c = parse(json!({}));
        assert_eq!((c.mem, c.heap, c.disk), (512, 256, 1024));
        assert!(c.problems("3").is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let c = parse(
            json!({"mem": 256, "heap": 256, "client_port": 2181, "peer_port": 2181,
                             "options": {"dataDir": "/x", "server.1": "h:1:2", "tickTime": 2000}}),
        );
        let problems = c.problems("server-a");
        let text = problems.join("\n");
        for needle in [
            "integer from 0 to 255",
            "heap-within-mem",
            "port 2181 is given twice",
            "option dataDir is managed",
            "option server.1 is managed",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        assert_eq!(problems.len(), 5, "{text}");
        assert_eq!(c.options["tickTime"], "2000", "numbers are kept as text");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = ServerConfig::from_json(json!({"hepa": 1})).expect_err("typo");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn server_ids_are_myids() {
        assert_eq!(server_id("0"), Ok(0));
        assert_eq!(server_id("255"), Ok(255));
        assert!(server_id("256").is_err());
        assert!(server_id("-1").is_err());
    }

    #[test]
    fn ports_cannot_change_in_place_but_options_can() {
        let old = parse(json!({"client_port": 2181}));
        let new = parse(json!({"client_port": 2182}));
        let p = change_problems(&old, &new);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("ports-fixed:"), "{p:?}");
        let new =
            parse(json!({"client_port": 2181, "options": {"maxClientCnxns": "10"}, "heap": 300}));
        assert!(change_problems(&old, &new).is_empty());
    }

    #[test]
    fn settings_are_validated() {
        let mut s = Settings::default();
        assert!(s.validate().is_ok());
        s.super_password = Some("a:b".into());
        assert!(s.validate().is_err());
    }
}
