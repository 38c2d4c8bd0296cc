//! Plans: deploy, rolling restart, rolling configuration update and replace,
//! as data the scheduler persists and advances one step at a time.
//!
//! A step never takes its node down before the service's safety check says
//! it may, and the next step does not start before the node is back, ready
//! and healthy again (the service's post-restart check). A step past its
//! timeout pauses the plan with the reason; it never moves on to a second node.
//! Checks are I/O, so [`advance`] asks for them ([`Advance::check_safety`],
//! [`Advance::check_health`]) and reads their results from [`Checks`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::node::{Goal, Millis, Node, TaskPhase};

/// What a plan does to each of its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// Bring new nodes up.
    Deploy,
    /// Restart running nodes.
    Restart,
    /// Restart nodes so that their pending configuration takes effect.
    Update,
    /// Move nodes to new agents.
    Replace,
}

/// How many steps may be in progress at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// One step at a time, in order.
    Serial,
    /// Every step at once (only for deploys: nothing is taken down).
    Parallel,
}

/// Where a plan stands, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PlanState {
    /// Steps are being carried out.
    Active,
    /// Stopped on request or because a step timed out; `reason` says which.
    Paused {
        /// Why it is paused.
        reason: String,
    },
    /// Given up on request; no further step will start.
    Aborted,
    /// Every step is complete.
    Complete,
}

/// Where a step stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    /// Not started.
    Pending,
    /// Waiting for the service to say the node may go down.
    CheckingSafety,
    /// The node is being stopped, moved or started.
    Restarting,
    /// The node runs again; waiting for the service's post-restart check.
    CheckingHealth,
    /// Done.
    Complete,
}

/// One node's part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The node.
    pub node: String,
    /// Where it stands.
    pub phase: StepPhase,
    /// When the current phase began.
    pub since: Millis,
    /// The node's launch generation when the step took it down.
    pub generation_before: Option<u64>,
    /// What the step is waiting for, or why it stopped.
    pub message: Option<String>,
    /// The node's failures in a row when the step (or a resume) began to wait
    /// for it; only failures after that count against the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_before: Option<u32>,
}

/// A plan as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Unique, e.g. `restart-3`.
    pub id: String,
    /// What it does.
    pub kind: PlanKind,
    /// How steps proceed.
    pub strategy: Strategy,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Where it stands.
    pub state: PlanState,
    /// When it was created.
    pub created_at: Millis,
    /// How long one step may take before the plan pauses.
    pub step_timeout_ms: Millis,
}

/// The result of a service check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Whether it passed.
    pub ok: bool,
    /// What it found (shown on the step while it fails).
    pub message: String,
    /// When it ran.
    pub at: Millis,
}

/// The latest check results, by node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// May the node be taken down now?
    pub safety: BTreeMap<String, CheckResult>,
    /// Is the restarted node back in full health?
    pub health: BTreeMap<String, CheckResult>,
}

/// What [`advance`] asks the runtime to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advance {
    /// Run the safety check for these nodes.
    pub check_safety: Vec<String>,
    /// Run the post-restart health check for these nodes.
    pub check_health: Vec<String>,
    /// When to advance again even without new input.
    pub wake_at: Option<Millis>,
}

/// How often a failing check is retried: a restarted node usually passes
/// within a second or two, and every interval lost here is added to each step
/// of a rolling restart.
pub const CHECK_INTERVAL_MS: Millis = 250;

/// Failures in a row of a step's node after which the plan pauses without
/// waiting for the step timeout: one failure may be chance (a port still
/// held), three in a row are the new configuration or the host.
pub const STEP_FAILURE_LIMIT: u32 = 3;

impl Plan {
    /// A new plan over `nodes`, in the given order.
    pub fn new(
        id: impl Into<String>,
        kind: PlanKind,
        strategy: Strategy,
        nodes: impl IntoIterator<Item = String>,
        now: Millis,
        step_timeout_ms: Millis,
    ) -> Self {
        Plan {
            id: id.into(),
            kind,
            strategy,
            steps: nodes
                .into_iter()
                .map(|node| Step {
                    node,
                    phase: StepPhase::Pending,
                    since: now,
                    generation_before: None,
                    message: None,
                    failures_before: None,
                })
                .collect(),
            state: PlanState::Active,
            created_at: now,
            step_timeout_ms,
        }
    }

    /// Whether the plan may still change nodes.
    pub fn is_open(&self) -> bool {
        matches!(self.state, PlanState::Active | PlanState::Paused { .. })
    }

    /// Completed steps and all steps.
    pub fn progress(&self) -> (usize, usize) {
        let done = self
            .steps
            .iter()
            .filter(|s| s.phase == StepPhase::Complete)
            .count();
        (done, self.steps.len())
    }

    /// Pauses the plan; steps in progress finish their current phase only.
    pub fn pause(&mut self, reason: impl Into<String>) {
        if self.state == PlanState::Active {
            self.state = PlanState::Paused {
                reason: reason.into(),
            };
        }
    }

    /// Resumes a paused plan; timed-out steps get a fresh timeout.
    pub fn resume(&mut self, now: Millis) {
        if matches!(self.state, PlanState::Paused { .. }) {
            self.state = PlanState::Active;
            for step in &mut self.steps {
                if step.phase != StepPhase::Complete && step.phase != StepPhase::Pending {
                    step.since = now;
                    step.failures_before = None;
                }
            }
        }
    }

    /// Aborts the plan: no further step starts.
    pub fn abort(&mut self) {
        if self.is_open() {
            self.state = PlanState::Aborted;
        }
    }
}

fn enter(step: &mut Step, phase: StepPhase, now: Millis, message: Option<String>) {
    step.phase = phase;
    step.since = now;
    step.message = message;
    step.failures_before = None;
}

/// Whether the node runs a task of a later generation than `before` and is ready.
fn back_up(node: &Node, before: Option<u64>) -> bool {
    let newer = before.is_none_or(|g| node.generation > g);
    newer
        && node
            .task
            .as_ref()
            .is_some_and(|t| t.phase == TaskPhase::Running)
        && !node.restart_requested
        && !node.replacing
}

/// Advances `plan` given the nodes and the latest check results.
///
/// Mutates nodes (restart requests, replace flags, deploy holds) and the
/// plan; returns the checks to run and when to come back.
pub fn advance(
    plan: &mut Plan,
    nodes: &mut BTreeMap<String, Node>,
    checks: &Checks,
    now: Millis,
) -> Advance {
    let mut out = Advance::default();
    if plan.state != PlanState::Active {
        return out;
    }
    let timeout = plan.step_timeout_ms;
    let mut in_progress = 0;
    for index in 0..plan.steps.len() {
        let serial_blocked = plan.strategy == Strategy::Serial && in_progress > 0;
        let kind = plan.kind;
        let step = &mut plan.steps[index];
        if step.phase == StepPhase::Complete {
            continue;
        }
        let Some(node) = nodes.get_mut(&step.node) else {
            // The node was removed meanwhile: nothing left to do for it.
            enter(step, StepPhase::Complete, now, Some("node removed".into()));
            continue;
        };
        if step.phase == StepPhase::Pending {
            if serial_blocked {
                if kind == PlanKind::Deploy {
                    node.held = true;
                }
                continue;
            }
            match kind {
                PlanKind::Deploy => {
                    node.held = false;
                    step.generation_before = None;
                    enter(step, StepPhase::Restarting, now, Some("starting".into()));
                    step.failures_before = Some(node.failures);
                }
                _ if node.goal != Goal::Running || !node.task_active() => {
                    // A node that is not running has nothing to take down: the
                    // change (or the move) applies when it next starts.
                    if kind == PlanKind::Replace {
                        node.replacing = true;
                    }
                    if kind == PlanKind::Update {
                        node.restart_requested = node.pending.is_some();
                    }
                    step.generation_before = Some(node.generation);
                    enter(
                        step,
                        StepPhase::Complete,
                        now,
                        Some("not running; applied at next start".into()),
                    );
                    continue;
                }
                _ => {
                    enter(
                        step,
                        StepPhase::CheckingSafety,
                        now,
                        Some("waiting for the safety check".into()),
                    );
                }
            }
        }
        in_progress += 1;
        let elapsed = now.saturating_sub(step.since);
        match step.phase {
            StepPhase::CheckingSafety => match checks.safety.get(&step.node) {
                Some(result) if result.at >= step.since && result.ok => {
                    step.generation_before = Some(node.generation);
                    match kind {
                        PlanKind::Replace => node.replacing = true,
                        _ => node.restart_requested = true,
                    }
                    enter(
                        step,
                        StepPhase::Restarting,
                        now,
                        Some(result.message.clone()),
                    );
                    step.failures_before = Some(node.failures);
                }
                other => {
                    if let Some(result) = other.filter(|r| r.at >= step.since) {
                        step.message = Some(format!("not safe to take down: {}", result.message));
                    }
                    if elapsed >= timeout {
                        let why = step
                            .message
                            .clone()
                            .unwrap_or_else(|| "no safety check result".into());
                        plan.state = PlanState::Paused {
                            reason: format!(
                                "node {} could not be taken down safely within {} s: {why}",
                                plan.steps[index].node,
                                timeout / 1000
                            ),
                        };
                        return out;
                    }
                    out.check_safety.push(step.node.clone());
                }
            },
            StepPhase::Restarting => {
                let failed = node
                    .failures
                    .saturating_sub(*step.failures_before.get_or_insert(node.failures));
                if back_up(node, step.generation_before) {
                    enter(
                        step,
                        StepPhase::CheckingHealth,
                        now,
                        Some("waiting for the health check".into()),
                    );
                    out.check_health.push(step.node.clone());
                } else if failed >= STEP_FAILURE_LIMIT || elapsed >= timeout {
                    let now_doing = node
                        .task
                        .as_ref()
                        .and_then(|t| t.message.clone().or(t.last_state.clone()))
                        .or(node.waiting_reason.clone())
                        .unwrap_or_else(|| "no task status".into());
                    let id = &plan.steps[index].node;
                    let reason = match &node.last_failure {
                        Some(failure) if failed >= STEP_FAILURE_LIMIT => format!(
                            "node {id} did not become ready: it failed {failed} times in a row, last with {failure}"
                        ),
                        Some(failure) if failed > 0 => format!(
                            "node {id} did not become ready within {} s: {now_doing}; it failed {failed} times, last with {failure}",
                            timeout / 1000
                        ),
                        _ => format!(
                            "node {id} did not become ready within {} s: {now_doing}",
                            timeout / 1000
                        ),
                    };
                    plan.state = PlanState::Paused { reason };
                    return out;
                }
            }
            StepPhase::CheckingHealth => match checks.health.get(&step.node) {
                Some(result) if result.at >= step.since && result.ok => {
                    enter(step, StepPhase::Complete, now, Some(result.message.clone()));
                    in_progress -= 1;
                }
                other => {
                    if let Some(result) = other.filter(|r| r.at >= step.since) {
                        step.message = Some(format!("not healthy yet: {}", result.message));
                    }
                    if elapsed >= timeout {
                        let why = step
                            .message
                            .clone()
                            .unwrap_or_else(|| "no health check result".into());
                        plan.state = PlanState::Paused {
                            reason: format!(
                                "node {} did not become healthy within {} s: {why}",
                                plan.steps[index].node,
                                timeout / 1000
                            ),
                        };
                        return out;
                    }
                    out.check_health.push(step.node.clone());
                }
            },
            StepPhase::Pending | StepPhase::Complete => {}
        }
    }
    if plan.steps.iter().all(|s| s.phase == StepPhase::Complete) {
        plan.state = PlanState::Complete;
    } else if !out.check_safety.is_empty() || !out.check_health.is_empty() {
        out.wake_at = Some(now + CHECK_INTERVAL_MS);
    } else {
        // Come back when the oldest running step would time out.
        out.wake_at = plan
            .steps
            .iter()
            .filter(|s| !matches!(s.phase, StepPhase::Pending | StepPhase::Complete))
            .map(|s| s.since + timeout)
            .min();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        node::{NodeSpec, Placement, TaskRecord},
        resources::Scalars,
    };

    const TIMEOUT: Millis = 60_000;

    fn running(id: &str) -> Node {
        let mut node = Node::new(
            id,
            NodeSpec {
                resources: Scalars::default(),
                ports: vec![],
                constraints: vec![],
            },
        );
        node.placement = Some(Placement {
            agent_id: format!("agent-{id}"),
            host: Default::default(),
            persistence_id: format!("v-{id}"),
            ports: Default::default(),
        });
        node.generation = 1;
        node.task = Some(TaskRecord {
            task_id: format!("t-{id}-1"),
            generation: 1,
            phase: TaskPhase::Running,
            last_state: Some("TASK_RUNNING".into()),
            message: None,
            launched_at: 0,
        });
        node
    }

    fn cluster() -> BTreeMap<String, Node> {
        ["0", "1", "2"]
            .iter()
            .map(|i| (i.to_string(), running(i)))
            .collect()
    }

    /// What the planner and Mesos do after a restart request: the task is
    /// killed and a new generation comes up running.
    fn restarted(node: &mut Node) {
        node.restart_requested = false;
        node.generation += 1;
        if let Some(task) = node.task.as_mut() {
            task.phase = TaskPhase::Running;
            task.generation = node.generation;
        }
    }

    fn ok(at: Millis) -> CheckResult {
        CheckResult {
            ok: true,
            message: "ok".into(),
            at,
        }
    }

    fn restart_plan(now: Millis) -> Plan {
        Plan::new(
            "restart-1",
            PlanKind::Restart,
            Strategy::Serial,
            ["0", "1", "2"].map(String::from),
            now,
            TIMEOUT,
        )
    }

    fn touched(nodes: &BTreeMap<String, Node>) -> Vec<&str> {
        nodes
            .values()
            .filter(|n| n.restart_requested)
            .map(|n| n.id.as_str())
            .collect()
    }

    #[test]
    fn a_rolling_restart_takes_one_node_at_a_time_after_each_check() {
        let mut nodes = cluster();
        let mut plan = restart_plan(0);
        let mut checks = Checks::default();
        let mut now = 0;
        for id in ["0", "1", "2"] {
            let asked = advance(&mut plan, &mut nodes, &checks, now);
            assert_eq!(
                asked.check_safety,
                vec![id.to_string()],
                "safety first for {id}"
            );
            assert!(touched(&nodes).is_empty(), "nothing down before the check");
            now += 100;
            checks.safety.insert(id.into(), ok(now));
            advance(&mut plan, &mut nodes, &checks, now);
            assert_eq!(touched(&nodes), vec![id], "only {id} goes down");
            // Still down: the next node must not start.
            let waiting = advance(&mut plan, &mut nodes, &checks, now + 10);
            assert!(waiting.check_safety.is_empty());
            restarted(nodes.get_mut(id).expect("node"));
            let asked = advance(&mut plan, &mut nodes, &checks, now + 20);
            assert_eq!(asked.check_health, vec![id.to_string()]);
            now += 100;
            checks.health.insert(id.into(), ok(now));
        }
        advance(&mut plan, &mut nodes, &checks, now);
        assert_eq!(plan.state, PlanState::Complete);
        assert_eq!(plan.progress(), (3, 3));
        assert!(nodes.values().all(|n| n.generation == 2));
    }

    #[test]
    fn an_unsafe_node_pauses_the_plan_without_touching_anything() {
        let mut nodes = cluster();
        let mut plan = restart_plan(0);
        let mut checks = Checks::default();
        checks.safety.insert(
            "0".into(),
            CheckResult {
                ok: false,
                message: "partition t-0 would fall below min.insync.replicas".into(),
                at: 10,
            },
        );
        advance(&mut plan, &mut nodes, &checks, 0);
        advance(&mut plan, &mut nodes, &checks, 20);
        assert!(
            plan.steps[0]
                .message
                .as_deref()
                .unwrap_or("")
                .contains("min.insync")
        );
        advance(&mut plan, &mut nodes, &checks, TIMEOUT + 1);
        match &plan.state {
            PlanState::Paused { reason } => {
                assert!(
                    reason.contains("node 0 could not be taken down safely"),
                    "{reason}"
                );
                assert!(reason.contains("min.insync"), "{reason}");
            }
            other => panic!("expected a pause, got {other:?}"),
        }
        assert!(touched(&nodes).is_empty());
    }

    #[test]
    fn a_node_that_never_comes_back_stops_the_plan_before_the_next() {
        let mut nodes = cluster();
        let mut plan = restart_plan(0);
        let mut checks = Checks::default();
        advance(&mut plan, &mut nodes, &checks, 0);
        checks.safety.insert("0".into(), ok(1));
        advance(&mut plan, &mut nodes, &checks, 1);
        // The relaunched task failed once and its next launch hangs; the
        // relaunch's own message replaces the failure's on the task.
        if let Some(node) = nodes.get_mut("0") {
            node.restart_requested = false;
            node.generation = 3;
            node.failures = 1;
            node.last_failure = Some("TASK_FAILED: exit status 1: broker failed to start".into());
            if let Some(task) = node.task.as_mut() {
                task.phase = TaskPhase::Starting;
                task.message = Some("waiting for readiness".into());
            }
        }
        advance(&mut plan, &mut nodes, &checks, 30_000);
        assert_eq!(plan.state, PlanState::Active);
        advance(&mut plan, &mut nodes, &checks, TIMEOUT + 2);
        let PlanState::Paused { reason } = &plan.state else {
            panic!("expected a pause, got {:?}", plan.state);
        };
        assert!(
            reason.contains("node 0 did not become ready within 60 s: waiting for readiness"),
            "{reason}"
        );
        assert!(
            reason.contains(
                "failed 1 times, last with TASK_FAILED: exit status 1: broker failed to start"
            ),
            "{reason}"
        );
        // Paused: even a later advance does not start node 1.
        checks.safety.insert("1".into(), ok(TIMEOUT + 3));
        advance(&mut plan, &mut nodes, &checks, TIMEOUT + 4);
        assert!(touched(&nodes).is_empty());
        assert_eq!(plan.steps[1].phase, StepPhase::Pending);
    }

    #[test]
    fn repeated_failures_pause_the_plan_before_the_timeout_and_count_again_after_resume() {
        let mut nodes = cluster();
        let mut plan = restart_plan(0);
        let mut checks = Checks::default();
        advance(&mut plan, &mut nodes, &checks, 0);
        checks.safety.insert("0".into(), ok(1));
        advance(&mut plan, &mut nodes, &checks, 1);
        let fail = |nodes: &mut BTreeMap<String, Node>, n: u32| {
            if let Some(node) = nodes.get_mut("0") {
                node.restart_requested = false;
                node.failures = n;
                node.last_failure = Some(format!("TASK_FAILED: Invalid value abc ({n})"));
            }
        };
        fail(&mut nodes, STEP_FAILURE_LIMIT - 1);
        advance(&mut plan, &mut nodes, &checks, 2_000);
        assert_eq!(plan.state, PlanState::Active, "not yet at the limit");
        fail(&mut nodes, STEP_FAILURE_LIMIT);
        advance(&mut plan, &mut nodes, &checks, 3_000);
        let PlanState::Paused { reason } = &plan.state else {
            panic!("expected a pause, got {:?}", plan.state);
        };
        assert_eq!(
            reason,
            &format!(
                "node 0 did not become ready: it failed {STEP_FAILURE_LIMIT} times in a row, \
                 last with TASK_FAILED: Invalid value abc ({STEP_FAILURE_LIMIT})"
            )
        );
        assert_eq!(plan.steps[1].phase, StepPhase::Pending);
        // After a resume only new failures count.
        plan.resume(4_000);
        advance(&mut plan, &mut nodes, &checks, 4_000);
        assert_eq!(plan.state, PlanState::Active);
        fail(&mut nodes, 2 * STEP_FAILURE_LIMIT - 1);
        advance(&mut plan, &mut nodes, &checks, 5_000);
        assert_eq!(plan.state, PlanState::Active);
        fail(&mut nodes, 2 * STEP_FAILURE_LIMIT);
        advance(&mut plan, &mut nodes, &checks, 6_000);
        assert!(matches!(plan.state, PlanState::Paused { .. }));
    }

    #[test]
    fn pause_resume_and_abort() {
        let mut nodes = cluster();
        let mut plan = restart_plan(0);
        plan.pause("operator asked");
        assert!(
            advance(&mut plan, &mut nodes, &Checks::default(), 0)
                .check_safety
                .is_empty()
        );
        plan.resume(5);
        assert_eq!(
            advance(&mut plan, &mut nodes, &Checks::default(), 5).check_safety,
            vec!["0".to_string()]
        );
        plan.abort();
        assert_eq!(plan.state, PlanState::Aborted);
        assert!(!plan.is_open());
        plan.resume(6);
        assert_eq!(
            plan.state,
            PlanState::Aborted,
            "an aborted plan stays aborted"
        );
    }

    #[test]
    fn a_serial_deploy_holds_later_nodes() {
        let mut nodes: BTreeMap<String, Node> = ["0", "1"]
            .iter()
            .map(|i| {
                let mut n = running(i);
                n.placement = None;
                n.task = None;
                n.generation = 0;
                (i.to_string(), n)
            })
            .collect();
        let mut plan = Plan::new(
            "deploy-1",
            PlanKind::Deploy,
            Strategy::Serial,
            ["0", "1"].map(String::from),
            0,
            TIMEOUT,
        );
        let mut checks = Checks::default();
        advance(&mut plan, &mut nodes, &checks, 0);
        assert!(!nodes["0"].held);
        assert!(nodes["1"].held, "node 1 waits for node 0");
        restarted(nodes.get_mut("0").expect("node"));
        nodes
            .get_mut("0")
            .and_then(|n| n.task.replace(running("0").task.expect("task")));
        advance(&mut plan, &mut nodes, &checks, 10);
        checks.health.insert("0".into(), ok(20));
        advance(&mut plan, &mut nodes, &checks, 20);
        assert!(!nodes["1"].held, "released once node 0 is healthy");
    }

    #[test]
    fn an_update_of_a_stopped_node_applies_at_next_start() {
        let mut nodes = cluster();
        if let Some(n) = nodes.get_mut("1") {
            n.goal = Goal::Stopped;
            if let Some(t) = n.task.as_mut() {
                t.phase = TaskPhase::Terminated;
            }
            n.pending = Some(crate::node::PendingChange {
                spec: n.spec.clone(),
                config: serde_json::json!({"x": 1}),
            });
        }
        let mut plan = Plan::new(
            "update-1",
            PlanKind::Update,
            Strategy::Serial,
            ["1".to_string()],
            0,
            TIMEOUT,
        );
        let asked = advance(&mut plan, &mut nodes, &Checks::default(), 0);
        assert!(asked.check_safety.is_empty(), "nothing to take down");
        assert!(
            nodes["1"].restart_requested,
            "the pending change is applied by the planner"
        );
        assert_eq!(plan.state, PlanState::Complete);
    }
}
