//! A node as the scheduler keeps it: what it asks for, where it lives, what
//! its task is doing, and the lifecycle that ties them together.
//!
//! `added → reserving → launching → running ⇄ restarting → stopped → removing → removed`,
//! with `failed` when relaunches are exhausted. The stage is derived from the
//! stored facts (goal, placement, task), never stored on its own, so it can
//! never disagree with them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    constraints::{Constraint, Host},
    resources::Scalars,
};

/// A point in time, in milliseconds since the Unix epoch (passed in, never read here).
pub type Millis = u64;

/// One port a node needs, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Name the service refers to it by (for example `client`).
    pub name: String,
    /// A fixed port number, or `None` for any offered port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<u64>,
}

/// What a node asks of an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Task cpus, mem and disk (the disk is the persistent volume's size).
    pub resources: Scalars,
    /// Ports, dynamic or fixed.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Placement constraints.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
}

/// Where a node lives. Written to the store before the ACCEPT that creates it,
/// so a scheduler restarted at any point finds what it asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The agent holding the reservation and volume.
    pub agent_id: String,
    /// The agent's host facts at placement time (for peers' constraints).
    pub host: Host,
    /// The persistent volume's ID.
    pub persistence_id: String,
    /// Port number by name.
    pub ports: BTreeMap<String, u64>,
}

/// The operator's intent for a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Keep it running (relaunch after failures).
    Running,
    /// Keep its reservation and data, but no task.
    Stopped,
    /// Give everything back: destroy the volume, unreserve.
    Removed,
}

/// What Mesos last told us about the node's task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskPhase {
    /// ACCEPT sent; no update yet.
    Launching,
    /// TASK_STARTING/STAGING: the executor is preparing the service.
    Starting,
    /// TASK_RUNNING and ready.
    Running,
    /// KILL sent; waiting for a terminal update.
    Killing,
    /// A terminal state arrived.
    Terminated,
    /// The agent is unreachable; the task may still run.
    Unreachable,
}

/// The node's current task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Task ID (also the executor ID); includes the generation.
    pub task_id: String,
    /// Counts launches of this node, so task IDs never repeat.
    pub generation: u64,
    /// Where it stands.
    pub phase: TaskPhase,
    /// The last Mesos state name, e.g. `TASK_FAILED`.
    pub last_state: Option<String>,
    /// The last message or reason from Mesos or the executor.
    pub message: Option<String>,
    /// When the launch was decided.
    pub launched_at: Millis,
}

/// Relaunch policy after task failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaunchPolicy {
    /// First delay after a failure.
    pub initial_delay_ms: Millis,
    /// Largest delay.
    pub max_delay_ms: Millis,
    /// Failures in a row after which the node is marked failed.
    pub max_failures: u32,
    /// How long a node whose agent is gone waits for it before it may be replaced.
    pub stickiness_ms: Millis,
}

impl Default for RelaunchPolicy {
    fn default() -> Self {
        Self {
            initial_delay_ms: 1_000,
            max_delay_ms: 60_000,
            max_failures: 10,
            stickiness_ms: 10 * 60_000,
        }
    }
}

impl RelaunchPolicy {
    /// The wait before relaunch number `failures` (1 = after the first failure).
    pub fn delay(&self, failures: u32) -> Millis {
        let doublings = failures.saturating_sub(1).min(32);
        self.initial_delay_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay_ms)
    }
}

/// Everything the scheduler stores about one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Stable ID (for Kafka the broker ID).
    pub id: String,
    /// What it asks for.
    pub spec: NodeSpec,
    /// What the operator wants.
    pub goal: Goal,
    /// Where it lives, once placed.
    pub placement: Option<Placement>,
    /// Its current (or last) task.
    pub task: Option<TaskRecord>,
    /// Launch generations used so far.
    pub generation: u64,
    /// Failures in a row since the last time it ran ready.
    pub failures: u32,
    /// What the latest of those failures said (kept while relaunches overwrite the task's message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Not relaunched before this time.
    pub backoff_until: Option<Millis>,
    /// Why it cannot progress (shown on its status), e.g. why no offer fits.
    pub waiting_reason: Option<String>,
    /// Set by `replace`: the old placement is given up and a new agent chosen.
    #[serde(default)]
    pub replacing: bool,
    /// When the agent was last seen unreachable.
    pub unreachable_since: Option<Millis>,
    /// Set by a plan step: kill the task and launch it again (not a failure).
    #[serde(default)]
    pub restart_requested: bool,
    /// Held back by a serial deploy plan until its turn.
    #[serde(default)]
    pub held: bool,
    /// The service's own configuration of the node (opaque here).
    #[serde(default)]
    pub config: serde_json::Value,
    /// Agents a replaced node must not go back to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub avoid_agents: Vec<String>,
    /// A configuration change waiting for its rolling-update step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingChange>,
    /// When a removed node gave its reservation back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Millis>,
    /// The host the node lived on before its last replace. Persisted, so a
    /// service whose peers know a node by its address (Cassandra's tokens)
    /// still knows what the node replaces after a scheduler restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<Host>,
}

/// A change of spec and service configuration applied at the node's next restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingChange {
    /// The new resources, ports and constraints.
    pub spec: NodeSpec,
    /// The new service configuration.
    pub config: serde_json::Value,
}

/// The lifecycle stage, derived from the stored facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Known but not placed.
    Added,
    /// Placement decided, reservation not confirmed by a launch yet.
    Reserving,
    /// Reserved, waiting for its launch (backoff, or an offer from its agent).
    Reserved,
    /// Launch sent, task not yet running.
    Launching,
    /// Task running and ready.
    Running,
    /// Killed to be started again.
    Restarting,
    /// Stopped on purpose, data kept.
    Stopped,
    /// Giving back its reservation and volume.
    Removing,
    /// Gone for good.
    Removed,
    /// Relaunches exhausted; needs an operator.
    Failed,
}

impl Node {
    /// A new node that wants to run.
    pub fn new(id: impl Into<String>, spec: NodeSpec) -> Self {
        Node {
            id: id.into(),
            spec,
            goal: Goal::Running,
            placement: None,
            task: None,
            generation: 0,
            failures: 0,
            last_failure: None,
            backoff_until: None,
            waiting_reason: None,
            replacing: false,
            unreachable_since: None,
            restart_requested: false,
            held: false,
            config: serde_json::Value::Null,
            avoid_agents: Vec::new(),
            pending: None,
            released_at: None,
            moved_from: None,
        }
    }

    /// Whether the node's task may be running (a KILL would be needed to stop it).
    pub fn task_active(&self) -> bool {
        self.task
            .as_ref()
            .is_some_and(|t| t.phase != TaskPhase::Terminated)
    }

    /// The stage, derived from goal, placement and task.
    pub fn stage(&self, policy: &RelaunchPolicy) -> Stage {
        let phase = self.task.as_ref().map(|t| t.phase);
        match self.goal {
            Goal::Removed if self.placement.is_none() && !self.task_active() => Stage::Removed,
            Goal::Removed => Stage::Removing,
            Goal::Stopped if self.task_active() => Stage::Restarting,
            Goal::Running if self.restart_requested => Stage::Restarting,
            Goal::Stopped => Stage::Stopped,
            Goal::Running => {
                if self.failures >= policy.max_failures {
                    return Stage::Failed;
                }
                match (&self.placement, phase) {
                    (None, _) => Stage::Added,
                    (Some(_), Some(TaskPhase::Running)) => Stage::Running,
                    (Some(_), Some(TaskPhase::Launching | TaskPhase::Starting)) => {
                        if self.generation <= 1 {
                            Stage::Reserving
                        } else {
                            Stage::Launching
                        }
                    }
                    (Some(_), Some(TaskPhase::Killing)) => Stage::Restarting,
                    (Some(_), Some(TaskPhase::Unreachable)) => Stage::Launching,
                    (Some(_), Some(TaskPhase::Terminated) | None) => Stage::Reserved,
                }
            }
        }
    }

    /// The task ID of generation `generation`: unique and readable.
    pub fn task_id(framework: &str, node: &str, generation: u64) -> String {
        format!("{framework}-{node}-g{generation}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        Node::new(
            "0",
            NodeSpec {
                resources: Scalars::default(),
                ports: vec![],
                constraints: vec![],
            },
        )
    }

    #[test]
    fn relaunch_delay_doubles_to_the_cap() {
        let p = RelaunchPolicy {
            initial_delay_ms: 100,
            max_delay_ms: 1_000,
            ..Default::default()
        };
        let delays: Vec<_> = (1..=6).map(|f| p.delay(f)).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(p.delay(u32::MAX), 1_000);
    }

    #[test]
    fn stage_follows_the_facts() {
        let policy = RelaunchPolicy::default();
        let mut n = node();
        assert_eq!(n.stage(&policy), Stage::Added);
        n.placement = Some(Placement {
            agent_id: "a".into(),
            host: Host::default(),
            persistence_id: "v".into(),
            ports: BTreeMap::new(),
        });
        n.generation = 1;
        n.task = Some(TaskRecord {
            task_id: Node::task_id("fw", "0", 1),
            generation: 1,
            phase: TaskPhase::Launching,
            last_state: None,
            message: None,
            launched_at: 0,
        });
        assert_eq!(n.stage(&policy), Stage::Reserving);
        let set_phase = |n: &mut Node, p| n.task.as_mut().map(|t| t.phase = p);
        set_phase(&mut n, TaskPhase::Running);
        assert_eq!(n.stage(&policy), Stage::Running);
        n.goal = Goal::Stopped;
        assert_eq!(n.stage(&policy), Stage::Restarting);
        set_phase(&mut n, TaskPhase::Terminated);
        assert_eq!(n.stage(&policy), Stage::Stopped);
        n.goal = Goal::Running;
        assert_eq!(n.stage(&policy), Stage::Reserved);
        n.generation = 2;
        set_phase(&mut n, TaskPhase::Launching);
        assert_eq!(n.stage(&policy), Stage::Launching);
        n.failures = policy.max_failures;
        assert_eq!(n.stage(&policy), Stage::Failed);
        n.goal = Goal::Removed;
        assert_eq!(n.stage(&policy), Stage::Removing);
        set_phase(&mut n, TaskPhase::Terminated);
        n.placement = None;
        assert_eq!(n.stage(&policy), Stage::Removed);
    }
}
