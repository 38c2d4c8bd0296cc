//! The JSON documents the API reads and writes, shared with the CLI so that
//! both sides always agree on them.
//!
//! Request bodies refuse unknown fields, so a misspelt field is an error
//! instead of a silently ignored setting.

use std::collections::BTreeMap;

use executor_protocol::{Health, LogStream};
use scheduler_core::{
    node::{Goal, Millis, Node, RelaunchPolicy, Stage, TaskPhase},
    plan::{Plan, PlanKind, PlanState, Step, Strategy},
};
use serde::{Deserialize, Serialize};

/// Every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One line: what went wrong.
    pub error: String,
    /// Every reason, and how to fix it.
    #[serde(default)]
    pub details: Vec<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// `POST /api/v1/nodes`: create nodes with one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddNodes {
    /// The new IDs as an ID expression, e.g. `0..2`.
    pub ids: String,
    /// The service configuration; omitted settings take the service's defaults.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

/// `PATCH /api/v1/nodes/{ids}`: change the configuration of nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateNodes {
    /// A JSON merge patch: objects merge, `null` removes a setting.
    pub config: serde_json::Value,
}

/// `POST /api/v1/nodes/{id}/admin/{name}`: run an allow-listed admin command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRequest {
    /// Extra arguments, accepted only when the command allows them.
    #[serde(default)]
    pub args: Vec<String>,
}

/// The answer to a command that the scheduler carries out in the background.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The nodes concerned.
    pub nodes: Vec<String>,
    /// The plan that carries it out, when there is one; follow it with `GET /api/v1/plans/{id}`.
    pub plan: Option<String>,
    /// What will happen, in words.
    pub message: String,
}

/// The framework's health as `/health` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Subscribed to a master.
    Ok,
    /// Not subscribed (yet, or again): the scheduler keeps trying. Healthy,
    /// so that Marathon does not kill a scheduler waiting for its master.
    Connecting,
    /// A fatal error, e.g. the master removed the framework: unhealthy (503).
    Failed,
}

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthBody {
    /// Overall verdict.
    pub status: HealthStatus,
    /// Whether a subscription is live.
    pub subscribed: bool,
    /// The master subscribed to.
    pub master: Option<String>,
    /// The framework ID, once the master assigned one.
    pub framework_id: Option<String>,
    /// Why the framework failed, when it did.
    pub reason: Option<String>,
}

/// The node's current task, as Mesos reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// Mesos task ID.
    pub task_id: String,
    /// Launch generation.
    pub generation: u64,
    /// Where the task stands.
    pub phase: TaskPhase,
    /// The last Mesos state, e.g. `TASK_RUNNING`.
    pub state: Option<String>,
    /// The last message from Mesos or the executor.
    pub message: Option<String>,
}

/// One node as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node ID.
    pub id: String,
    /// Lifecycle stage.
    pub stage: Stage,
    /// What the operator asked for.
    pub goal: Goal,
    /// The agent's hostname, once placed.
    pub host: Option<String>,
    /// The agent's ID, once placed.
    pub agent_id: Option<String>,
    /// The agent's attributes, once placed.
    pub attributes: BTreeMap<String, String>,
    /// Port numbers by name.
    pub ports: BTreeMap<String, u64>,
    /// `host:port` by port name.
    pub endpoints: BTreeMap<String, String>,
    /// The current (or last) task.
    pub task: Option<TaskStatus>,
    /// Why the node cannot progress, e.g. why no offer fits.
    pub waiting_reason: Option<String>,
    /// Task failures in a row.
    pub failures: u32,
    /// What the latest of those failures said.
    pub last_failure: Option<String>,
    /// Whether a configuration change waits for the node's next restart.
    pub update_pending: bool,
    /// Whether the node is being moved to a new agent.
    pub replacing: bool,
    /// The latest report of the node's executor.
    pub health: Option<Health>,
    /// The service configuration in force.
    pub config: serde_json::Value,
}

impl NodeStatus {
    /// The view of a stored node and its latest executor report.
    pub fn of(node: &Node, policy: &RelaunchPolicy, health: Option<&Health>) -> Self {
        let placement = node.placement.as_ref();
        let host = placement.map(|p| p.host.hostname.clone());
        NodeStatus {
            id: node.id.clone(),
            stage: node.stage(policy),
            goal: node.goal,
            agent_id: placement.map(|p| p.agent_id.clone()),
            attributes: placement
                .map(|p| p.host.attributes.clone())
                .unwrap_or_default(),
            ports: placement.map(|p| p.ports.clone()).unwrap_or_default(),
            endpoints: placement
                .map(|p| {
                    p.ports
                        .iter()
                        .map(|(name, port)| (name.clone(), format!("{}:{port}", p.host.hostname)))
                        .collect()
                })
                .unwrap_or_default(),
            host,
            task: node.task.as_ref().map(|t| TaskStatus {
                task_id: t.task_id.clone(),
                generation: t.generation,
                phase: t.phase,
                state: t.last_state.clone(),
                message: t.message.clone(),
            }),
            waiting_reason: node.waiting_reason.clone(),
            failures: node.failures,
            last_failure: node.last_failure.clone(),
            update_pending: node.pending.is_some(),
            replacing: node.replacing,
            health: health.cloned(),
            config: node.config.clone(),
        }
    }
}

/// `GET /api/v1/nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeList {
    /// The nodes, in natural ID order.
    pub nodes: Vec<NodeStatus>,
}

/// `GET /api/v1/nodes/{id}/explain`: why a node is not placed or not running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// Node ID.
    pub node: String,
    /// Lifecycle stage.
    pub stage: Stage,
    /// What it waits for, in one sentence.
    pub waiting_reason: Option<String>,
    /// Why the last offer of each agent (by hostname) did not fit.
    pub agents: BTreeMap<String, Vec<String>>,
}

/// `GET /api/v1/nodes/{id}/log`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLines {
    /// Node ID.
    pub node: String,
    /// The stream read.
    pub stream: LogStream,
    /// The lines, oldest first.
    pub lines: Vec<String>,
}

/// `POST /api/v1/nodes/{id}/admin/{name}`: what the command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResult {
    /// Node ID.
    pub node: String,
    /// The command's name.
    pub name: String,
    /// Exit code; absent when killed by a signal or the timeout.
    pub exit_code: Option<i32>,
    /// Whether it was killed for exceeding its timeout.
    pub timed_out: bool,
    /// Its standard output (the last 64 KiB).
    pub stdout: String,
    /// Its standard error (the last 64 KiB).
    pub stderr: String,
}

/// One plan as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    /// Plan ID, e.g. `restart-3`.
    pub id: String,
    /// What it does.
    pub kind: PlanKind,
    /// How its steps proceed.
    pub strategy: Strategy,
    /// Where it stands (`state`, and `reason` when paused).
    #[serde(flatten)]
    pub state: PlanState,
    /// Completed steps.
    pub done: usize,
    /// All steps.
    pub total: usize,
    /// When it was created (ms since the epoch).
    pub created_at: Millis,
    /// How long one step may take before the plan pauses.
    pub step_timeout_ms: Millis,
    /// Steps in order.
    pub steps: Vec<Step>,
}

impl PlanView {
    /// The view of a stored plan.
    pub fn of(plan: &Plan) -> Self {
        let (done, total) = plan.progress();
        PlanView {
            id: plan.id.clone(),
            kind: plan.kind,
            strategy: plan.strategy,
            state: plan.state.clone(),
            done,
            total,
            created_at: plan.created_at,
            step_timeout_ms: plan.step_timeout_ms,
            steps: plan.steps.clone(),
        }
    }

    /// Whether the plan can still change nodes (active or paused).
    pub fn is_open(&self) -> bool {
        matches!(self.state, PlanState::Active | PlanState::Paused { .. })
    }
}

/// `GET /api/v1/plans`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanList {
    /// Plans, oldest first.
    pub plans: Vec<PlanView>,
}

/// `GET /api/v1/state`: the runtime's snapshot, for debugging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateDump {
    /// The persisted state.
    pub state: scheduler_runtime::SchedulerState,
    /// Whether a subscription is live.
    pub subscribed: bool,
    /// The master subscribed to.
    pub master: Option<String>,
    /// The fatal error, if any.
    pub fatal: Option<String>,
    /// Decline reasons by node, then agent.
    pub explanations: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Executor reports by node.
    pub health: BTreeMap<String, Health>,
    /// Runtime counters.
    pub counters: BTreeMap<String, u64>,
}

/// Query of `GET /api/v1/nodes`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only these nodes (an ID expression).
    pub ids: Option<String>,
    /// Include removed nodes.
    #[serde(default)]
    pub removed: bool,
}

fn default_lines() -> u32 {
    100
}

fn default_stream() -> LogStream {
    LogStream::Stdout
}

/// Query of `GET /api/v1/nodes/{id}/log`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// `stdout` (default) or `stderr`.
    #[serde(default = "default_stream")]
    pub stream: LogStream,
    /// How many lines, 1 to 1000 (default 100).
    #[serde(default = "default_lines")]
    pub lines: u32,
}
