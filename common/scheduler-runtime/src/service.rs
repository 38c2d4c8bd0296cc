//! The one trait a data service implements; everything else is shared.
//!
//! A service defines its node configuration (defaults, validation, the
//! resources it asks for), the task it runs for a node (files, command,
//! readiness, stop policy), the checks around taking a node down, and its
//! endpoints. Configurations cross this boundary as JSON so that the REST API,
//! the store and the CLI stay service-agnostic.

use std::collections::BTreeMap;

use executor_protocol::TaskDocument;
use futures::future::BoxFuture;
use scheduler_core::{
    constraints::Host,
    node::{Node, NodeSpec, Placement},
    plan::CheckResult,
};
use serde::{Deserialize, Serialize};

/// A downloadable file the executor fetches for a service (e.g. the Kafka tarball).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// Where agents download it.
    pub url: String,
    /// Its SHA-256, checked by the executor before use.
    pub sha256: String,
}

/// What one node looks like to its peers and to the checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// Node ID.
    pub id: String,
    /// The service configuration in force.
    pub config: serde_json::Value,
    /// Where it lives, once placed.
    pub placement: Option<Placement>,
    /// Whether its task runs and is ready.
    pub running: bool,
    /// The host it lived on before its last replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<Host>,
}

impl NodeView {
    /// The view of a stored node.
    pub fn of(node: &Node) -> Self {
        NodeView {
            id: node.id.clone(),
            config: node.config.clone(),
            placement: node.placement.clone(),
            running: node
                .task
                .as_ref()
                .is_some_and(|t| t.phase == scheduler_core::node::TaskPhase::Running),
            moved_from: node.moved_from.clone(),
        }
    }

    /// `host:port` of the named port, once placed.
    pub fn endpoint(&self, port: &str) -> Option<String> {
        let placement = self.placement.as_ref()?;
        let number = placement.ports.get(port)?;
        Some(format!("{}:{number}", placement.host.hostname))
    }
}

/// Every node of the framework, as services see them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Nodes by ID (removed ones left out).
    pub nodes: BTreeMap<String, NodeView>,
    /// Framework-wide service settings (e.g. a Kafka cluster ID).
    pub settings: serde_json::Value,
}

/// Everything the service needs to describe one node's task.
#[derive(Clone, Debug)]
pub struct TaskContext<'a> {
    /// The node to launch.
    pub node: &'a NodeView,
    /// Its placement (always set at launch).
    pub placement: &'a Placement,
    /// The whole cluster, for peers, seeds and ensembles.
    pub cluster: &'a ClusterView,
    /// Service artifacts by name (for example `kafka`).
    pub artifacts: &'a BTreeMap<String, ArtifactRef>,
    /// Where the persistent volume is, relative to the sandbox.
    pub volume_path: &'a str,
}

/// A data service run by the shared scheduler.
pub trait Service: Send + Sync + 'static {
    /// The framework's name (`kafka`, `zookeeper`, `cassandra`).
    fn name(&self) -> &str;

    /// What one node is called (`broker`, `server`, `node`).
    fn noun(&self) -> &str;

    /// Fills defaults into a node configuration and validates it, returning
    /// every problem at once.
    fn configure(
        &self,
        id: &str,
        config: serde_json::Value,
        cluster: &ClusterView,
    ) -> Result<serde_json::Value, Vec<String>>;

    /// What a configured node asks of an agent.
    fn spec(&self, config: &serde_json::Value) -> Result<NodeSpec, String>;

    /// Rules a change of a node's configuration must pass (besides `configure`):
    /// every violated rule, by name and reason.
    fn check_change(&self, old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
        let _ = (old, new);
        Vec::new()
    }

    /// Whether a placed node may launch now; `Err` says what it waits for
    /// (e.g. a KRaft controller waits until every controller is placed). The
    /// node keeps its reservation and is asked again with the next offer; this
    /// is not counted as a failure.
    fn ready_to_launch(&self, node: &NodeView, cluster: &ClusterView) -> Result<(), String> {
        let _ = (node, cluster);
        Ok(())
    }

    /// The task document the executor runs for a node.
    fn task(&self, context: &TaskContext<'_>) -> Result<TaskDocument, String>;

    /// May `node` be taken down now without costing availability?
    fn check_safety(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult>;

    /// Is `node`, just restarted, back in full health (e.g. in every ISR)?
    fn check_health(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult>;

    /// The order a rolling restart takes `nodes` in (e.g. the controller last).
    fn restart_order(
        &self,
        nodes: Vec<String>,
        cluster: &ClusterView,
    ) -> BoxFuture<'static, Vec<String>> {
        let _ = cluster;
        Box::pin(async move { nodes })
    }

    /// Runs before `nodes` are removed, e.g. to take them out of a ZooKeeper
    /// ensemble by a reconfiguration first. `Err` refuses the removal with
    /// every reason, and the nodes stay as they are.
    fn prepare_remove(
        &self,
        nodes: Vec<String>,
        cluster: &ClusterView,
    ) -> BoxFuture<'static, Result<(), Vec<String>>> {
        let _ = (nodes, cluster);
        Box::pin(async { Ok(()) })
    }

    /// Connection details for clients (bootstrap servers, contact points, …).
    fn endpoints(&self, cluster: &ClusterView) -> serde_json::Value;
}
