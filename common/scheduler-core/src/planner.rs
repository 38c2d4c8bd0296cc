//! The planner: from the nodes, the offers at hand and the time, decide what
//! to accept, decline and kill.
//!
//! [`decide`] mutates the nodes it is given (new placements, launched task
//! records, waiting reasons) and returns the calls to make. The runtime must
//! persist the mutated nodes *before* sending the calls, so that every ID a
//! call uses (reservation labels, volume ID, task ID) is known after a crash.
//! [`on_status`] folds a task status update into the nodes.

use std::collections::{BTreeMap, BTreeSet};

use mesos_proto::v1::{self, OfferId, TaskState, offer::Operation, task_status::Reason};
use serde::{Deserialize, Serialize};

use crate::{
    constraints::{Host, Peers},
    node::{Goal, Millis, Node, NodeSpec, RelaunchPolicy, Stage, TaskPhase, TaskRecord},
    offer::{Candidate, Context, LaunchResources, could_fit_new, fit_existing, fit_new, release},
    resources::{OfferView, Ranges, Scalars},
};

/// Agents remembered per node for `explain` (and offers explained per round).
const MAX_EXPLAINED_AGENTS: usize = 50;

/// Framework-wide settings of the planner.
#[derive(Clone, Debug)]
pub struct Config {
    /// Reservation identity and executor overhead.
    pub context: Context,
    /// Prefix of task IDs (the framework name).
    pub framework: String,
    /// Relaunch backoff and limits.
    pub policy: RelaunchPolicy,
    /// How long to refuse an offer we cannot use while work is pending.
    pub decline_busy_seconds: f64,
    /// How long to refuse an offer when there is nothing to do.
    pub decline_idle_seconds: f64,
}

/// A launch to add to an ACCEPT once the service has built the task.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    /// The node launched.
    pub node: String,
    /// The task ID (already stored on the node).
    pub task_id: String,
    /// Resources for executor and task.
    pub resources: LaunchResources,
}

/// One ACCEPT: operations in order, and the launches to append after them.
#[derive(Clone, Debug, PartialEq)]
pub struct Accept {
    /// The offer used.
    pub offer_id: OfferId,
    /// The agent it came from.
    pub agent_id: String,
    /// RESERVE/CREATE/DESTROY/UNRESERVE operations, in order.
    pub operations: Vec<Operation>,
    /// Launches; each LAUNCH goes after `operations`.
    pub launches: Vec<Launch>,
}

/// What the runtime should do next.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// Offers to accept.
    pub accepts: Vec<Accept>,
    /// Offers to decline, with the filter duration.
    pub declines: Vec<(OfferId, f64)>,
    /// Tasks to kill: (node, task ID, agent ID).
    pub kills: Vec<(String, String, String)>,
    /// Whether more offers are needed (REVIVE) or not (SUPPRESS).
    pub wants_offers: bool,
    /// When to call `decide` again even without new input (a backoff ends).
    pub wake_at: Option<Millis>,
}

/// One offer while a round is decided.
struct OfferWork<'a> {
    offer: &'a v1::Offer,
    view: OfferView,
    host: Host,
    operations: Vec<Operation>,
    launches: Vec<Launch>,
}

/// Why the last offers did not fit a node, per agent hostname.
pub type Explanations = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// How long offers stay wanted after a removed node's reservation was
/// released: its executor outlives its task by up to Mesos' executor shutdown
/// grace period (5 s by default), and only then is its share offered.
pub const EXECUTOR_RELEASE_MS: Millis = 15_000;

/// Whether `node` should be launched (again) as soon as an offer allows, at `now`.
pub fn needs_launch(node: &Node, policy: &RelaunchPolicy, now: Millis) -> bool {
    node.goal == Goal::Running
        && !node.held
        && !node.task_active()
        && node.stage(policy) != Stage::Failed
        && node.backoff_until.is_none_or(|t| t <= now)
}

fn persistence_id(config: &Config, node: &Node) -> String {
    format!(
        "{}-{}-v{}",
        config.context.reserver.instance,
        node.id,
        node.generation + 1
    )
}

/// Takes what a fit uses out of the offer view, so the next node sees the rest.
fn consume(view: &mut OfferView, used: &Scalars, ports: &Ranges, from_free: bool) {
    if from_free {
        view.free = Scalars {
            cpus: view.free.cpus - used.cpus,
            mem: view.free.mem - used.mem,
            disk: view.free.disk - used.disk,
        };
    }
    view.free_ports = view.free_ports.difference(ports);
}

/// Decides what to do with `offers` at time `now`; see the module docs.
pub fn decide(
    nodes: &mut BTreeMap<String, Node>,
    offers: &[v1::Offer],
    now: Millis,
    config: &Config,
    explanations: &mut Explanations,
) -> Decision {
    let policy = &config.policy;
    let mut decision = Decision::default();

    // Kills first: nodes whose task must stop.
    for node in nodes.values_mut() {
        let wants_stop = node.goal != Goal::Running || node.replacing || node.restart_requested;
        if let (true, Some(task), Some(placement)) =
            (wants_stop, node.task.as_mut(), node.placement.as_ref())
            && matches!(
                task.phase,
                TaskPhase::Launching
                    | TaskPhase::Starting
                    | TaskPhase::Running
                    | TaskPhase::Unreachable
            )
        {
            task.phase = TaskPhase::Killing;
            decision.kills.push((
                node.id.clone(),
                task.task_id.clone(),
                placement.agent_id.clone(),
            ));
        }
    }

    // A restart is done with once the old task is gone: the next launch
    // carries any pending change.
    for node in nodes.values_mut() {
        if node.restart_requested && !node.task_active() {
            node.restart_requested = false;
            if let Some(change) = node.pending.take() {
                node.spec = change.spec;
                node.config = change.config;
            }
        }
    }

    // A node whose agent is unreachable keeps its placement (its data is
    // there); past the stickiness period it says how to move it.
    for node in nodes.values_mut() {
        let Some(since) = node.unreachable_since else {
            continue;
        };
        let unreachable = node
            .task
            .as_ref()
            .is_some_and(|t| t.phase == TaskPhase::Unreachable);
        if !unreachable {
            continue;
        }
        let agent = node
            .placement
            .as_ref()
            .map_or("its agent", |p| p.host.hostname.as_str());
        let waited_s = now.saturating_sub(since) / 1000;
        node.waiting_reason = Some(if now.saturating_sub(since) >= policy.stickiness_ms {
            format!(
                "{agent} has been unreachable for {waited_s} s, longer than the stickiness period; \
                 its data is on that agent: wait for it, or replace the node to move it (data is lost)"
            )
        } else {
            format!("{agent} is unreachable ({waited_s} s); waiting for it to come back")
        });
    }

    // A replaced node gives up its placement once its task is gone; its old
    // reservation is then an orphan the ledger below releases.
    for node in nodes.values_mut() {
        if node.replacing && !node.task_active() {
            if let Some(old) = node.placement.take() {
                node.avoid_agents.push(old.agent_id);
                node.moved_from = Some(old.host);
            }
            node.replacing = false;
            node.failures = 0;
            node.last_failure = None;
            node.backoff_until = None;
        }
    }

    // Where placed nodes are, indexed by every field a constraint looks at.
    let mut peers = Peers::for_constraints(nodes.values().flat_map(|n| n.spec.constraints.iter()));
    for node in nodes.values().filter(|n| n.goal != Goal::Removed) {
        if let Some(placement) = &node.placement {
            peers.add(&node.id, &placement.host);
        }
    }
    let unplaced: Vec<String> = nodes
        .values()
        .filter(|n| n.placement.is_none() && needs_launch(n, policy, now))
        .map(|n| n.id.clone())
        .collect();
    let mut by_agent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in nodes.values() {
        if let Some(placement) = &node.placement {
            by_agent
                .entry(placement.agent_id.clone())
                .or_default()
                .push(node.id.clone());
        }
    }

    // Pass 1, per offer: the ledger, and relaunches of nodes placed there.
    let mut works: Vec<OfferWork<'_>> = Vec::with_capacity(offers.len());
    for offer in offers {
        let mut work = OfferWork {
            offer,
            view: OfferView::read(offer, &config.context.reserver),
            host: Host::of_offer(offer),
            operations: Vec::new(),
            launches: Vec::new(),
        };
        let agent = offer.agent_id.value.as_str();
        let view = &mut work.view;

        // Our reservations on this agent that no node should hold here.
        let owners: Vec<String> = view.reserved.keys().cloned().collect();
        for owner in owners {
            let keep = nodes.get(&owner).is_some_and(|n| {
                n.goal != Goal::Removed && n.placement.as_ref().is_some_and(|p| p.agent_id == agent)
            });
            let busy = nodes.get(&owner).is_some_and(Node::task_active);
            if !keep && !busy {
                work.operations.extend(release(view, &owner));
                view.reserved.remove(&owner);
            }
        }

        let here = by_agent.get(agent).cloned().unwrap_or_default();
        for id in &here {
            let Some(node) = nodes.get_mut(id) else {
                continue;
            };
            // A removed node whose reservation is released (or no longer
            // offered) is gone.
            if node.goal == Goal::Removed {
                if !node.task_active() && !view.reserved.contains_key(id) {
                    node.placement = None;
                    node.released_at = Some(now);
                }
                continue;
            }
            let Some(placement) = node.placement.clone().filter(|p| p.agent_id == agent) else {
                continue;
            };
            if !needs_launch(node, policy, now) {
                continue;
            }
            match fit_existing(&config.context, id, &node.spec, &placement, offer, view) {
                Ok(fit) => {
                    let wanted = node.spec.resources + config.context.executor_overhead;
                    let held = view.reserved.get(id);
                    let lacks = held.map_or(wanted, |h| h.scalars.shortfall(&wanted));
                    let held_ports = held.map(|h| h.ports.clone()).unwrap_or_default();
                    let placed_ports = Ranges::of_ports(placement.ports.values().copied());
                    consume(view, &lacks, &placed_ports.difference(&held_ports), true);
                    work.operations.extend(fit.prepare);
                    work.launches
                        .push(start_task(node, fit.launch, now, config));
                }
                Err(reasons) => {
                    node.waiting_reason = Some(format!(
                        "waiting for its reservation on {}: {}",
                        offer.hostname,
                        reasons.join("; ")
                    ));
                    explanations
                        .entry(id.clone())
                        .or_default()
                        .insert(offer.hostname.clone(), reasons);
                }
            }
        }
        works.push(work);
    }

    // Pass 2: place new nodes, offer by offer, in ID order, each seeing the
    // nodes placed before it. Only cheap checks here: placing hundreds of
    // nodes over thousands of offers must stay fast. Nodes with the same spec
    // share a class, so an offer that cannot take one is not asked about the
    // rest, and an offer that can take none of the classes is left at once.
    let mut classes: Vec<NodeSpec> = Vec::new();
    let mut pending_new: Vec<(String, usize)> = Vec::with_capacity(unplaced.len());
    for id in unplaced {
        let Some(node) = nodes.get(&id) else {
            continue;
        };
        let class = match classes.iter().position(|c| *c == node.spec) {
            Some(class) => class,
            None => {
                classes.push(node.spec.clone());
                classes.len() - 1
            }
        };
        pending_new.push((id, class));
    }
    for work in &mut works {
        if pending_new.is_empty() {
            break;
        }
        let mut hopeless = vec![false; classes.len()];
        let mut hopeless_count = 0;
        let mut placed_here = Vec::new();
        for (index, (id, class)) in pending_new.iter().enumerate() {
            if hopeless_count == classes.len() {
                break;
            }
            if hopeless[*class] {
                continue;
            }
            let Some(node) = nodes.get_mut(id) else {
                continue;
            };
            if node.avoid_agents.contains(&work.offer.agent_id.value) {
                continue;
            }
            if !could_fit_new(&config.context, &node.spec, &work.view, &work.host, &peers) {
                hopeless[*class] = true;
                hopeless_count += 1;
                continue;
            }
            let candidate = Candidate {
                offer: work.offer,
                view: &work.view,
                host: &work.host,
                peers: &peers,
            };
            let volume_id = persistence_id(config, node);
            if let Ok(fit) = fit_new(&config.context, id, &node.spec, &candidate, &volume_id) {
                let used = node.spec.resources + config.context.executor_overhead;
                let ports = Ranges::of_ports(fit.placement.ports.values().copied());
                consume(&mut work.view, &used, &ports, true);
                work.operations.extend(fit.prepare);
                explanations.remove(id);
                peers.add(id, &fit.placement.host);
                node.placement = Some(fit.placement);
                node.avoid_agents.clear();
                work.launches
                    .push(start_task(node, fit.launch, now, config));
                placed_here.push(index);
            }
        }
        for index in placed_here.into_iter().rev() {
            pending_new.remove(index);
        }
    }

    // Pass 3: say why the nodes left over did not fit, against a sample of
    // this round's offers (as they stand after the placements above).
    for (id, _) in &pending_new {
        let Some(node) = nodes.get_mut(id) else {
            continue;
        };
        let mut last = None;
        for work in works.iter().take(MAX_EXPLAINED_AGENTS) {
            let candidate = Candidate {
                offer: work.offer,
                view: &work.view,
                host: &work.host,
                peers: &peers,
            };
            if let Err(reasons) = fit_new(&config.context, id, &node.spec, &candidate, "") {
                let hostname = work.offer.hostname.clone();
                last = Some(format!("{hostname}: {}", reasons.join("; ")));
                let agents = explanations.entry(id.clone()).or_default();
                if agents.len() < MAX_EXPLAINED_AGENTS || agents.contains_key(&hostname) {
                    agents.insert(hostname, reasons);
                }
            }
        }
        if let Some(last) = last {
            node.waiting_reason = Some(format!(
                "no offer fits yet ({} offers this round; e.g. {last})",
                works.len()
            ));
        }
    }

    for work in works {
        if work.operations.is_empty() && work.launches.is_empty() {
            decision.declines.push((work.offer.id.clone(), 0.0));
        } else {
            decision.accepts.push(Accept {
                offer_id: work.offer.id.clone(),
                agent_id: work.offer.agent_id.value.clone(),
                operations: work.operations,
                launches: work.launches,
            });
        }
    }

    // Nodes in backoff count as pending: they will want an offer soon. So
    // does a node removed a moment ago: what its executor held is freed
    // after its task and may come in a later offer, to be released as an
    // orphan.
    let sweeping = |n: &Node| {
        n.goal == Goal::Removed
            && n.released_at
                .is_some_and(|t| now < t.saturating_add(EXECUTOR_RELEASE_MS))
    };
    let pending: BTreeSet<&str> = nodes
        .values()
        .filter(|n| {
            needs_launch(n, policy, u64::MAX)
                || (n.goal == Goal::Removed && n.placement.is_some())
                || sweeping(n)
        })
        .map(|n| n.id.as_str())
        .collect();
    decision.wants_offers = !pending.is_empty();
    let refuse = if decision.wants_offers {
        config.decline_busy_seconds
    } else {
        config.decline_idle_seconds
    };
    for (_, seconds) in &mut decision.declines {
        *seconds = refuse;
    }
    let backoffs = nodes
        .values()
        .filter(|n| n.goal == Goal::Running && !n.task_active())
        .filter_map(|n| n.backoff_until);
    let sweeps = nodes
        .values()
        .filter(|n| sweeping(n))
        .filter_map(|n| n.released_at.map(|t| t.saturating_add(EXECUTOR_RELEASE_MS)));
    decision.wake_at = backoffs.chain(sweeps).filter(|t| *t > now).min();
    decision
}

/// Records a new task generation on `node` and returns its launch.
fn start_task(node: &mut Node, resources: LaunchResources, now: Millis, config: &Config) -> Launch {
    node.generation += 1;
    let task_id = Node::task_id(&config.framework, &node.id, node.generation);
    node.task = Some(TaskRecord {
        task_id: task_id.clone(),
        generation: node.generation,
        phase: TaskPhase::Launching,
        last_state: None,
        message: None,
        launched_at: now,
    });
    node.waiting_reason = None;
    Launch {
        node: node.id.clone(),
        task_id,
        resources,
    }
}

/// What a status update meant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusOutcome {
    /// It concerned a node's current task.
    Applied {
        /// The node.
        node: String,
        /// Whether the node changed: a reconciliation answer repeating
        /// what is known changes nothing, and needs nothing saved.
        changed: bool,
    },
    /// An old generation of a node, or a duplicate: nothing to do.
    Stale,
    /// A task no node knows: it should be killed.
    Unknown,
}

fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

/// Folds a status update into the nodes.
pub fn on_status(
    nodes: &mut BTreeMap<String, Node>,
    status: &v1::TaskStatus,
    now: Millis,
    policy: &RelaunchPolicy,
) -> StatusOutcome {
    let task_id = &status.task_id.value;
    let Some(node) = nodes
        .values_mut()
        .find(|n| n.task.as_ref().is_some_and(|t| &t.task_id == task_id))
    else {
        return StatusOutcome::Unknown;
    };
    let state = status.state();
    let before = node.clone();
    let Some(task) = node.task.as_mut() else {
        return StatusOutcome::Unknown;
    };
    if task.phase == TaskPhase::Terminated {
        return StatusOutcome::Stale;
    }
    let repeated = task.last_state.as_deref() == Some(state.as_str_name());
    task.last_state = Some(state.as_str_name().to_owned());
    // The master's answer to a reconciliation says only "latest state": the
    // message of the update that brought that state is the useful one.
    let reconciled = status.reason == Some(Reason::Reconciliation as i32);
    if !(repeated && reconciled) {
        let reason = status
            .reason
            .and_then(|r| Reason::try_from(r).ok())
            .map(|r| r.as_str_name().to_owned());
        task.message = match (status.message.as_deref(), reason) {
            (Some(m), Some(r)) if !m.is_empty() => Some(format!("{m} ({r})")),
            (Some(m), _) if !m.is_empty() => Some(m.to_owned()),
            (_, r) => r,
        };
    }
    match state {
        // Mesos states never go back from RUNNING to STARTING; a reconciliation
        // answer carrying an older update's state must not undo what we saw.
        TaskState::TaskStaging | TaskState::TaskStarting if task.phase == TaskPhase::Running => {}
        TaskState::TaskStaging | TaskState::TaskStarting => task.phase = TaskPhase::Starting,
        TaskState::TaskRunning => {
            task.phase = TaskPhase::Running;
            node.failures = 0;
            node.last_failure = None;
            node.backoff_until = None;
            node.unreachable_since = None;
            node.waiting_reason = None;
        }
        TaskState::TaskKilling => task.phase = TaskPhase::Killing,
        TaskState::TaskUnreachable | TaskState::TaskUnknown => {
            task.phase = TaskPhase::Unreachable;
            node.unreachable_since.get_or_insert(now);
        }
        terminal if is_terminal(terminal) => {
            let expected = task.phase == TaskPhase::Killing
                || node.goal != Goal::Running
                || node.restart_requested
                || node.replacing;
            // A launch on a rescinded or stale offer is not the node's fault.
            let invalid_offer = status.reason == Some(Reason::InvalidOffers as i32);
            task.phase = TaskPhase::Terminated;
            if !expected && !invalid_offer {
                node.failures = node.failures.saturating_add(1);
                node.backoff_until = Some(now + policy.delay(node.failures));
                node.last_failure = Some(match &task.message {
                    Some(message) => format!("{}: {message}", state.as_str_name()),
                    None => state.as_str_name().to_owned(),
                });
            }
        }
        _ => {}
    }
    StatusOutcome::Applied {
        node: node.id.clone(),
        changed: *node != before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        constraints::parse_list,
        node::{NodeSpec, PortSpec},
        resources::{Milli, Reserver, ports_resource, scalar_resource},
    };
    use mesos_proto::v1::{Resource, offer::operation, resource};

    const NOW: Millis = 1_000_000;

    fn config() -> Config {
        Config {
            context: Context {
                reserver: Reserver {
                    role: "kafka".into(),
                    principal: "kafka".into(),
                    instance: "i1".into(),
                },
                executor_overhead: Scalars {
                    cpus: Milli(100),
                    mem: Milli(32_000),
                    disk: Milli::ZERO,
                },
                volume_path: "data".into(),
            },
            framework: "kafka".into(),
            policy: RelaunchPolicy {
                initial_delay_ms: 1_000,
                max_delay_ms: 8_000,
                max_failures: 3,
                stickiness_ms: 60_000,
            },
            decline_busy_seconds: 5.0,
            decline_idle_seconds: 3600.0,
        }
    }

    fn nodes(count: usize, constraints: &str) -> BTreeMap<String, Node> {
        (0..count)
            .map(|i| {
                let spec = NodeSpec {
                    resources: Scalars {
                        cpus: Milli(1000),
                        mem: Milli(1_024_000),
                        disk: Milli(5_000_000),
                    },
                    ports: vec![PortSpec {
                        name: "client".into(),
                        fixed: None,
                    }],
                    constraints: parse_list(constraints).expect("valid"),
                };
                (i.to_string(), Node::new(i.to_string(), spec))
            })
            .collect()
    }

    /// An offer from `agent` with `cpus` free and `held` reserved resources.
    fn offer(agent: &str, cpus: f64, held: Vec<Resource>) -> v1::Offer {
        let role = Some("kafka");
        let mut resources = vec![
            scalar_resource("cpus", Milli::from_f64(cpus), None, role),
            scalar_resource("mem", Milli(32_000_000), None, role),
            scalar_resource("disk", Milli(100_000_000), None, role),
            ports_resource(&Ranges::new([(31000, 31099)]), None, role),
        ];
        resources.extend(held);
        v1::Offer {
            id: OfferId {
                value: format!("o-{agent}-{}", resources.len()),
            },
            framework_id: v1::FrameworkId { value: "fw".into() },
            agent_id: v1::AgentId {
                value: agent.into(),
            },
            hostname: format!("{agent}.example"),
            resources,
            allocation_info: Some(resource::AllocationInfo {
                role: Some("kafka".into()),
            }),
            ..Default::default()
        }
    }

    /// Node "0" placed on agent a1 (reserve, create and launch sent).
    fn one_node_placed_on_a1(config: &Config) -> BTreeMap<String, Node> {
        let mut nodes = nodes(1, "");
        decide(
            &mut nodes,
            &[offer("a1", 8.0, vec![])],
            NOW,
            config,
            &mut Explanations::new(),
        );
        nodes
    }

    fn launched(decision: &Decision) -> Vec<&str> {
        decision
            .accepts
            .iter()
            .flat_map(|a| a.launches.iter().map(|l| l.node.as_str()))
            .collect()
    }

    fn status(task_id: &str, state: TaskState, reason: Option<Reason>) -> v1::TaskStatus {
        v1::TaskStatus {
            task_id: v1::TaskId {
                value: task_id.into(),
            },
            state: state as i32,
            reason: reason.map(|r| r as i32),
            ..Default::default()
        }
    }

    fn task_id(nodes: &BTreeMap<String, Node>, id: &str) -> String {
        nodes[id]
            .task
            .as_ref()
            .map(|t| t.task_id.clone())
            .unwrap_or_default()
    }

    /// The resources a node holds on its agent after its first launch.
    fn held(decision: &Decision, node: &str) -> Vec<Resource> {
        let launch = decision
            .accepts
            .iter()
            .flat_map(|a| &a.launches)
            .find(|l| l.node == node)
            .expect("node was launched");
        let mut all = launch.resources.task.clone();
        all.extend(launch.resources.executor.clone());
        all
    }

    #[test]
    fn unique_hosts_spread_three_nodes_over_three_agents() {
        let config = config();
        let mut nodes = nodes(3, "hostname=unique");
        let offers = [
            offer("a1", 8.0, vec![]),
            offer("a2", 8.0, vec![]),
            offer("a3", 8.0, vec![]),
        ];
        let decision = decide(&mut nodes, &offers, NOW, &config, &mut Explanations::new());
        assert_eq!(launched(&decision), vec!["0", "1", "2"]);
        let agents: BTreeSet<_> = nodes
            .values()
            .filter_map(|n| n.placement.as_ref().map(|p| p.agent_id.clone()))
            .collect();
        assert_eq!(agents.len(), 3);
        for accept in &decision.accepts {
            let kinds: Vec<_> = accept.operations.iter().map(|o| o.r#type()).collect();
            assert_eq!(
                kinds,
                vec![operation::Type::Reserve, operation::Type::Create]
            );
        }
        assert!(
            nodes
                .values()
                .all(|n| n.stage(&config.policy) == Stage::Reserving)
        );
        assert!(!decision.wants_offers, "nothing left to place");
    }

    #[test]
    fn one_big_agent_takes_three_nodes_with_distinct_ports() {
        let mut nodes = nodes(3, "");
        let decision = decide(
            &mut nodes,
            &[offer("a1", 8.0, vec![])],
            NOW,
            &config(),
            &mut Explanations::new(),
        );
        assert_eq!(decision.accepts.len(), 1);
        assert_eq!(decision.accepts[0].launches.len(), 3);
        let ports: BTreeSet<u64> = nodes
            .values()
            .filter_map(|n| n.placement.as_ref().map(|p| p.ports["client"]))
            .collect();
        assert_eq!(ports, BTreeSet::from([31000, 31001, 31002]));
    }

    #[test]
    fn an_offer_too_small_for_one_spec_still_takes_another() {
        let mut nodes = nodes(4, "hostname=unique");
        // Nodes 0 and 2 need 4 cpus; 1 and 3 keep 1.
        for id in ["0", "2"] {
            if let Some(node) = nodes.get_mut(id) {
                node.spec.resources.cpus = Milli(4000);
            }
        }
        let offers = [
            offer("small1", 2.0, vec![]),
            offer("small2", 2.0, vec![]),
            offer("big1", 8.0, vec![]),
            offer("big2", 8.0, vec![]),
        ];
        decide(
            &mut nodes,
            &offers,
            NOW,
            &config(),
            &mut Explanations::new(),
        );
        let agent = |id: &str| {
            nodes[id]
                .placement
                .as_ref()
                .map(|p| p.agent_id.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            [agent("0"), agent("1"), agent("2"), agent("3")],
            ["big1", "small1", "big2", "small2"]
        );
    }

    #[test]
    fn a_node_that_cannot_be_placed_says_why() {
        let mut nodes = nodes(2, "hostname=unique");
        let mut explanations = Explanations::new();
        let decision = decide(
            &mut nodes,
            &[offer("a1", 8.0, vec![])],
            NOW,
            &config(),
            &mut explanations,
        );
        assert_eq!(launched(&decision), vec!["0"]);
        let reason = nodes["1"].waiting_reason.clone().unwrap_or_default();
        assert!(reason.contains("already has node 0"), "{reason}");
        assert!(explanations["1"]["a1.example"][0].contains("hostname=unique"));
        assert!(decision.wants_offers);
        // Too little cpu is explained the same way.
        let mut small = self::nodes(1, "");
        decide(
            &mut small,
            &[offer("a9", 0.5, vec![])],
            NOW,
            &config(),
            &mut explanations,
        );
        assert!(explanations["0"]["a9.example"][0].contains("more cpus"));
    }

    #[test]
    fn a_failed_task_relaunches_on_its_agent_after_a_doubling_backoff() {
        let config = config();
        let mut nodes = nodes(1, "");
        let first = decide(
            &mut nodes,
            &[offer("a1", 8.0, vec![])],
            NOW,
            &config,
            &mut Explanations::new(),
        );
        let held = held(&first, "0");
        let t1 = task_id(&nodes, "0");
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskRunning, None),
            NOW,
            &config.policy,
        );
        assert_eq!(nodes["0"].stage(&config.policy), Stage::Running);

        on_status(
            &mut nodes,
            &v1::TaskStatus {
                message: Some("exit status 1: bad option".into()),
                ..status(&t1, TaskState::TaskFailed, None)
            },
            NOW,
            &config.policy,
        );
        assert_eq!(nodes["0"].failures, 1);
        assert_eq!(
            nodes["0"].last_failure.as_deref(),
            Some("TASK_FAILED: exit status 1: bad option")
        );
        let again = offer("a1", 6.9, held.clone());
        let early = decide(
            &mut nodes,
            std::slice::from_ref(&again),
            NOW + 500,
            &config,
            &mut Explanations::new(),
        );
        assert!(early.accepts.is_empty(), "still backing off");
        assert_eq!(early.wake_at, Some(NOW + 1_000));
        assert_eq!(
            early.declines[0].1, 5.0,
            "short filter while work is pending"
        );

        let relaunch = decide(
            &mut nodes,
            &[again],
            NOW + 1_000,
            &config,
            &mut Explanations::new(),
        );
        assert_eq!(launched(&relaunch), vec!["0"]);
        assert!(
            relaunch.accepts[0].operations.is_empty(),
            "uses the reservation as is"
        );
        let t2 = task_id(&nodes, "0");
        assert_ne!(t1, t2);
        assert_eq!(nodes["0"].generation, 2);
        // Offers from other agents never take it.
        on_status(
            &mut nodes,
            &status(&t2, TaskState::TaskFailed, None),
            NOW + 1_000,
            &config.policy,
        );
        assert_eq!(nodes["0"].backoff_until, Some(NOW + 3_000), "doubled");
        let elsewhere = decide(
            &mut nodes,
            &[offer("a2", 8.0, vec![])],
            NOW + 5_000,
            &config,
            &mut Explanations::new(),
        );
        assert!(elsewhere.accepts.is_empty());
    }

    #[test]
    fn too_many_failures_mark_the_node_failed() {
        let config = config();
        let mut nodes = nodes(1, "");
        let first = decide(
            &mut nodes,
            &[offer("a1", 8.0, vec![])],
            NOW,
            &config,
            &mut Explanations::new(),
        );
        let held = held(&first, "0");
        let mut now = NOW;
        for _ in 0..config.policy.max_failures {
            let task = task_id(&nodes, "0");
            on_status(
                &mut nodes,
                &status(&task, TaskState::TaskFailed, None),
                now,
                &config.policy,
            );
            now += 60_000;
            decide(
                &mut nodes,
                &[offer("a1", 6.9, held.clone())],
                now,
                &config,
                &mut Explanations::new(),
            );
        }
        assert_eq!(nodes["0"].stage(&config.policy), Stage::Failed);
        let decision = decide(
            &mut nodes,
            &[offer("a1", 6.9, held)],
            now + 60_000,
            &config,
            &mut Explanations::new(),
        );
        assert!(decision.accepts.is_empty());
        assert_eq!(nodes["0"].failures, config.policy.max_failures);
    }

    #[test]
    fn stale_offers_and_old_generations_do_not_count_as_failures() {
        let config = config();
        let mut nodes = one_node_placed_on_a1(&config);
        let t1 = task_id(&nodes, "0");
        let dropped = status(&t1, TaskState::TaskDropped, Some(Reason::InvalidOffers));
        assert_eq!(
            on_status(&mut nodes, &dropped, NOW, &config.policy),
            StatusOutcome::Applied {
                node: "0".into(),
                changed: true
            }
        );
        assert_eq!(nodes["0"].failures, 0);
        assert_eq!(
            on_status(&mut nodes, &dropped, NOW, &config.policy),
            StatusOutcome::Stale
        );
        assert_eq!(
            on_status(
                &mut nodes,
                &status("nobody", TaskState::TaskRunning, None),
                NOW,
                &config.policy
            ),
            StatusOutcome::Unknown
        );
    }

    #[test]
    fn a_stale_starting_state_does_not_undo_running() {
        let config = config();
        let mut nodes = one_node_placed_on_a1(&config);
        let t1 = task_id(&nodes, "0");
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskRunning, None),
            NOW,
            &config.policy,
        );
        let stale = status(&t1, TaskState::TaskStarting, Some(Reason::Reconciliation));
        on_status(&mut nodes, &stale, NOW, &config.policy);
        assert_eq!(nodes["0"].stage(&config.policy), Stage::Running);
    }

    #[test]
    fn a_reconciliation_answer_repeating_the_known_state_changes_nothing() {
        let config = config();
        let mut nodes = one_node_placed_on_a1(&config);
        let t1 = task_id(&nodes, "0");
        let mut running = status(&t1, TaskState::TaskRunning, None);
        running.message = Some("service is ready".into());
        on_status(&mut nodes, &running, NOW, &config.policy);
        let mut answer = status(&t1, TaskState::TaskRunning, Some(Reason::Reconciliation));
        answer.message = Some("Reconciliation: Latest task state".into());
        assert_eq!(
            on_status(&mut nodes, &answer, NOW + 5, &config.policy),
            StatusOutcome::Applied {
                node: "0".into(),
                changed: false
            },
            "nothing to save"
        );
        let message = nodes["0"].task.as_ref().and_then(|t| t.message.clone());
        assert_eq!(message.as_deref(), Some("service is ready"));
    }

    #[test]
    fn removing_a_node_kills_then_destroys_and_unreserves() {
        let config = config();
        let mut nodes = nodes(1, "");
        let first = decide(
            &mut nodes,
            &[offer("a1", 8.0, vec![])],
            NOW,
            &config,
            &mut Explanations::new(),
        );
        let held = held(&first, "0");
        let t1 = task_id(&nodes, "0");
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskRunning, None),
            NOW,
            &config.policy,
        );

        if let Some(n) = nodes.get_mut("0") {
            n.goal = Goal::Removed;
        }
        let kill = decide(&mut nodes, &[], NOW, &config, &mut Explanations::new());
        assert_eq!(kill.kills, vec![("0".into(), t1.clone(), "a1".into())]);
        assert_eq!(nodes["0"].stage(&config.policy), Stage::Removing);
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskKilled, None),
            NOW,
            &config.policy,
        );
        assert_eq!(nodes["0"].failures, 0, "a requested kill is no failure");

        let cleanup = decide(
            &mut nodes,
            &[offer("a1", 6.9, held)],
            NOW,
            &config,
            &mut Explanations::new(),
        );
        let kinds: Vec<_> = cleanup.accepts[0]
            .operations
            .iter()
            .map(|o| o.r#type())
            .collect();
        assert_eq!(
            kinds,
            vec![operation::Type::Destroy, operation::Type::Unreserve]
        );
        assert_eq!(nodes["0"].stage(&config.policy), Stage::Removed);
        // What the executor held may still come in a later offer.
        assert!(cleanup.wants_offers);
        assert_eq!(cleanup.wake_at, Some(NOW + EXECUTOR_RELEASE_MS));
        let later = decide(
            &mut nodes,
            &[],
            NOW + EXECUTOR_RELEASE_MS,
            &config,
            &mut Explanations::new(),
        );
        assert!(!later.wants_offers, "nothing left to release");
    }

    #[test]
    fn orphaned_reservations_are_released_but_never_another_frameworks() {
        let config = config();
        let mine = config.context.reserver.reservation("ghost");
        let other = Reserver {
            instance: "someone-else".into(),
            ..config.context.reserver.clone()
        }
        .reservation("ghost");
        let held = vec![
            scalar_resource("cpus", Milli(500), Some(&mine), Some("kafka")),
            scalar_resource("cpus", Milli(500), Some(&other), Some("kafka")),
        ];
        let mut nodes = BTreeMap::new();
        let decision = decide(
            &mut nodes,
            &[offer("a1", 1.0, held)],
            NOW,
            &config,
            &mut Explanations::new(),
        );
        let ops = &decision.accepts[0].operations;
        assert_eq!(ops.len(), 1);
        let unreserved = &ops[0].unreserve.as_ref().expect("unreserve").resources;
        assert_eq!(unreserved.len(), 1);
        assert_eq!(
            config.context.reserver.owner_of(&unreserved[0]).as_deref(),
            Some("ghost")
        );
    }

    #[test]
    fn an_unreachable_agent_is_waited_for_then_explained() {
        let config = config();
        let mut nodes = one_node_placed_on_a1(&config);
        let t1 = task_id(&nodes, "0");
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskRunning, None),
            NOW,
            &config.policy,
        );
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskUnreachable, None),
            NOW,
            &config.policy,
        );
        let decision = decide(
            &mut nodes,
            &[],
            NOW + 1_000,
            &config,
            &mut Explanations::new(),
        );
        assert!(
            decision.kills.is_empty() && decision.accepts.is_empty(),
            "no relaunch elsewhere"
        );
        let reason = nodes["0"].waiting_reason.clone().unwrap_or_default();
        assert!(reason.contains("waiting for it to come back"), "{reason}");
        decide(
            &mut nodes,
            &[],
            NOW + config.policy.stickiness_ms,
            &config,
            &mut Explanations::new(),
        );
        let reason = nodes["0"].waiting_reason.clone().unwrap_or_default();
        assert!(reason.contains("replace the node"), "{reason}");
        // The agent comes back and the task is running again.
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskRunning, None),
            NOW + 70_000,
            &config.policy,
        );
        assert_eq!(nodes["0"].stage(&config.policy), Stage::Running);
        assert_eq!(nodes["0"].unreachable_since, None);
    }

    #[test]
    fn replace_moves_a_node_and_releases_its_old_agent() {
        let config = config();
        let mut nodes = nodes(1, "");
        let first = decide(
            &mut nodes,
            &[offer("a1", 8.0, vec![])],
            NOW,
            &config,
            &mut Explanations::new(),
        );
        let held = held(&first, "0");
        let t1 = task_id(&nodes, "0");
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskRunning, None),
            NOW,
            &config.policy,
        );

        if let Some(n) = nodes.get_mut("0") {
            n.replacing = true;
        }
        let kill = decide(&mut nodes, &[], NOW, &config, &mut Explanations::new());
        assert_eq!(kill.kills.len(), 1);
        on_status(
            &mut nodes,
            &status(&t1, TaskState::TaskKilled, None),
            NOW,
            &config.policy,
        );

        let offers = [offer("a1", 6.9, held), offer("a2", 8.0, vec![])];
        let moved = decide(&mut nodes, &offers, NOW, &config, &mut Explanations::new());
        let placement = nodes["0"].placement.clone().expect("placed again");
        // The old agent's reservation is released, and the node goes
        // elsewhere even though a1 still had room.
        let on_a1 = moved
            .accepts
            .iter()
            .find(|a| a.agent_id == "a1")
            .expect("a1 accept");
        assert_eq!(on_a1.operations[0].r#type(), operation::Type::Destroy);
        assert!(on_a1.launches.is_empty());
        assert_eq!(placement.agent_id, "a2");
        assert!(nodes["0"].avoid_agents.is_empty(), "forgotten once placed");
        assert_eq!(
            nodes["0"].moved_from.as_ref().map(|h| h.hostname.as_str()),
            Some("a1.example"),
            "where it lived is kept"
        );
        let stored: Node = serde_json::from_value(serde_json::to_value(&nodes["0"]).expect("json"))
            .expect("read back");
        assert_eq!(stored.moved_from, nodes["0"].moved_from, "and stored");
        assert_ne!(placement.persistence_id, "i1-0-v1", "a new volume");
        assert_eq!(nodes["0"].generation, 2);
    }
}
