//! The one table of frameworks every check and generator walks.
//!
//! Adding a framework is one line here (and its crate as a dependency of this
//! one). A framework whose crate is not wired in yet has `cli: None`: its app
//! definition is still checked against the schema, its command is reported as
//! not checked, and the tests fail once its crate joins the workspace.

use std::path::{Path, PathBuf};

/// One framework of the suite.
#[derive(Clone, Copy, Debug)]
pub struct Framework {
    /// The service's name: `docs/<name>/`, `packaging/marathon/<name>.json`, the API's title.
    pub name: &'static str,
    /// The binary (scheduler and CLI in one).
    pub bin: &'static str,
    /// What one node is called in the CLI and the API's messages.
    pub noun: &'static str,
    /// The framework's real clap tree; `None` until its crate is a dependency here.
    pub cli: Option<fn() -> clap::Command>,
}

/// Every framework, wired or not.
pub const FRAMEWORKS: &[Framework] = &[
    Framework {
        name: "kafka",
        bin: kafka_mesos::cli::BIN,
        noun: "broker",
        cli: Some(kafka_mesos::cli::command),
    },
    Framework {
        name: "zookeeper",
        bin: zookeeper_mesos::cli::BIN,
        noun: "server",
        cli: Some(zookeeper_mesos::cli::command),
    },
    Framework {
        name: "cassandra",
        bin: cassandra_mesos::cli::BIN,
        noun: "node",
        cli: Some(cassandra_mesos::cli::command),
    },
];

impl Framework {
    /// The directory of its operator guide.
    pub fn guide_dir(&self, root: &Path) -> PathBuf {
        root.join("docs").join(self.name)
    }

    /// Its Marathon app definition.
    pub fn marathon_app(&self, root: &Path) -> PathBuf {
        root.join("packaging/marathon")
            .join(format!("{}.json", self.name))
    }

    /// Whether the root `Cargo.toml` lists `frameworks/<name>` as a member.
    pub fn in_workspace(&self, root: &Path) -> bool {
        let member = format!("\"frameworks/{}\"", self.name);
        std::fs::read_to_string(root.join("Cargo.toml"))
            .map(|manifest| manifest.lines().any(|l| l.trim().starts_with(&member)))
            .unwrap_or(false)
    }
}
