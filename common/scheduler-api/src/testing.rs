//! A stand-in runtime for component tests of the API and of CLIs built on it
//! (feature `testing`).
//!
//! It answers [`Command`]s roughly as the real runtime does — adding nodes,
//! opening plans, refusing a second open plan, pausing and aborting — and
//! publishes a [`Snapshot`] after each change. With a tick it also moves the
//! open plan forward one phase per tick, placing and starting nodes on
//! made-up agents, and pauses the plan at a chosen node with a reason, the way
//! a step past its timeout does. It holds no Mesos logic.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use executor_protocol::{Outcome, Refusal, RefusalKind, Reply, Request};
use scheduler_core::{
    constraints::Host,
    node::{
        Goal, Millis, Node, NodeSpec, PendingChange, Placement, PortSpec, TaskPhase, TaskRecord,
    },
    plan::{Plan, PlanKind, PlanState, StepPhase, Strategy},
    resources::Scalars,
};
use scheduler_runtime::{Command, CommandError, ErrorKind, PlanAction, RuntimeHandle, Snapshot};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

/// How the stand-in behaves.
#[derive(Clone, Debug, Default)]
pub struct FakeOptions {
    /// Move the open plan forward one phase per tick; `None` leaves plans as created.
    pub tick: Option<Duration>,
    /// Pause the plan when its step for this node would bring it back up.
    pub fail_at: Option<String>,
}

struct Shared {
    snapshot: Snapshot,
    received: Vec<String>,
    options: FakeOptions,
    publish: watch::Sender<Arc<Snapshot>>,
}

impl Shared {
    fn publish(&self) {
        self.publish.send_replace(Arc::new(self.snapshot.clone()));
    }
}

/// A task playing the runtime's side of a [`RuntimeHandle`].
pub struct FakeRuntime {
    handle: RuntimeHandle,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A node placed on `hostname` (agent attribute `rack`), running generation 1.
pub fn running_node(id: &str, hostname: &str, rack: &str) -> Node {
    let mut node = Node::new(id, spec());
    place(&mut node, hostname, rack);
    node
}

fn spec() -> NodeSpec {
    NodeSpec {
        resources: Scalars::default(),
        ports: vec![PortSpec {
            name: "client".into(),
            fixed: None,
        }],
        constraints: vec![],
    }
}

fn place(node: &mut Node, hostname: &str, rack: &str) {
    let port = 9000 + node.id.parse::<u64>().unwrap_or(0);
    node.placement = Some(Placement {
        agent_id: format!("agent-{hostname}"),
        host: Host {
            hostname: hostname.into(),
            attributes: BTreeMap::from([("rack".to_string(), rack.to_string())]),
        },
        persistence_id: format!("volume-{}", node.id),
        ports: BTreeMap::from([("client".to_string(), port)]),
    });
    node.generation += 1;
    node.task = Some(TaskRecord {
        task_id: format!("fake-{}-g{}", node.id, node.generation),
        generation: node.generation,
        phase: TaskPhase::Running,
        last_state: Some("TASK_RUNNING".into()),
        message: None,
        launched_at: now_ms(),
    });
}

impl FakeRuntime {
    /// Starts the stand-in with a subscribed, empty snapshot.
    pub fn start(options: FakeOptions) -> FakeRuntime {
        let snapshot = Snapshot {
            subscribed: true,
            master: Some("http://127.0.0.1:5050/".into()),
            ..Default::default()
        };
        let (publish, watcher) = watch::channel(Arc::new(snapshot.clone()));
        let (commands_tx, mut commands) = mpsc::channel::<Command>(16);
        let tick = options.tick;
        let shared = Arc::new(Mutex::new(Shared {
            snapshot,
            received: Vec::new(),
            options,
            publish,
        }));
        let looped = shared.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tick.map(tokio::time::interval);
            loop {
                let next_tick = async {
                    match ticker.as_mut() {
                        Some(t) => {
                            t.tick().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(command) => {
                            let mut shared = lock(&looped);
                            handle(&mut shared, command);
                            shared.publish();
                        }
                        None => break,
                    },
                    () = next_tick => {
                        let mut shared = lock(&looped);
                        advance(&mut shared);
                        shared.publish();
                    }
                }
            }
        });
        FakeRuntime {
            handle: RuntimeHandle::from_parts(commands_tx, watcher),
            shared,
            task,
        }
    }

    /// The handle to give the API.
    pub fn handle(&self) -> RuntimeHandle {
        self.handle.clone()
    }

    /// Changes the snapshot (e.g. adds nodes, sets `fatal`) and publishes it.
    pub fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut shared = lock(&self.shared);
        change(&mut shared.snapshot);
        shared.publish();
    }

    /// A copy of the current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        lock(&self.shared).snapshot.clone()
    }

    /// The commands received so far, one line each (e.g. `restart 0,1`).
    pub fn received(&self) -> Vec<String> {
        lock(&self.shared).received.clone()
    }
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn refuse(kind: ErrorKind, message: impl Into<String>) -> CommandError {
    CommandError::new(kind, message)
}

fn open_plan_conflict(shared: &Shared) -> Result<(), CommandError> {
    match shared.snapshot.state.open_plan() {
        Some(plan) => Err(refuse(
            ErrorKind::Conflict,
            format!(
                "plan {} is still open; wait for it to finish or abort it",
                plan.id
            ),
        )),
        None => Ok(()),
    }
}

fn existing(shared: &Shared, ids: &[String]) -> Result<(), CommandError> {
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| {
            shared
                .snapshot
                .state
                .nodes
                .get(*id)
                .is_none_or(|n| n.goal == Goal::Removed)
        })
        .map(|id| format!("node {id} does not exist"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CommandError {
            kind: ErrorKind::NotFound,
            messages: missing,
        })
    }
}

fn new_plan(shared: &mut Shared, kind: PlanKind, ids: Vec<String>) -> String {
    let state = Arc::make_mut(&mut shared.snapshot.state);
    state.plan_counter += 1;
    let name = match kind {
        PlanKind::Deploy => "deploy",
        PlanKind::Restart => "restart",
        PlanKind::Update => "update",
        PlanKind::Replace => "replace",
    };
    let id = format!("{name}-{}", state.plan_counter);
    state.plans.push(Plan::new(
        id.clone(),
        kind,
        Strategy::Serial,
        ids,
        now_ms(),
        60_000,
    ));
    id
}

fn handle(shared: &mut Shared, command: Command) {
    match command {
        Command::Add { ids, config, reply } => {
            shared
                .received
                .push(format!("add {} {config}", ids.join(",")));
            let result = if let Some(reasons) = config.get("reject").and_then(|r| r.as_array()) {
                Err(CommandError {
                    kind: ErrorKind::Invalid,
                    messages: reasons
                        .iter()
                        .map(|r| r.as_str().unwrap_or("rejected").to_owned())
                        .collect(),
                })
            } else if let Some(id) = ids
                .iter()
                .find(|id| shared.snapshot.state.nodes.contains_key(*id))
            {
                Err(refuse(
                    ErrorKind::Invalid,
                    format!("node {id} already exists (IDs are never reused, even after removal)"),
                ))
            } else {
                for id in &ids {
                    let mut node = Node::new(id.clone(), spec());
                    node.config = config.clone();
                    node.waiting_reason = Some("waiting for an offer".into());
                    Arc::make_mut(&mut shared.snapshot.state)
                        .nodes
                        .insert(id.clone(), node);
                }
                Ok(new_plan(shared, PlanKind::Deploy, ids))
            };
            let _ = reply.send(result);
        }
        Command::Update { ids, patch, reply } => {
            shared
                .received
                .push(format!("update {} {patch}", ids.join(",")));
            let result = existing(shared, &ids)
                .and_then(|()| open_plan_conflict(shared))
                .map(|()| {
                    for id in &ids {
                        if let Some(node) =
                            Arc::make_mut(&mut shared.snapshot.state).nodes.get_mut(id)
                        {
                            let mut config = node.config.clone();
                            scheduler_runtime::runtime::merge(&mut config, &patch);
                            node.pending = Some(PendingChange {
                                spec: node.spec.clone(),
                                config,
                            });
                        }
                    }
                    new_plan(shared, PlanKind::Update, ids.clone())
                });
            let _ = reply.send(result);
        }
        Command::Start { ids, reply } => {
            shared.received.push(format!("start {}", ids.join(",")));
            let result = existing(shared, &ids).map(|()| set_goal(shared, &ids, Goal::Running));
            let _ = reply.send(result);
        }
        Command::Stop { ids, reply } => {
            shared.received.push(format!("stop {}", ids.join(",")));
            let result = existing(shared, &ids).map(|()| set_goal(shared, &ids, Goal::Stopped));
            let _ = reply.send(result);
        }
        Command::Remove { ids, reply } => {
            shared.received.push(format!("remove {}", ids.join(",")));
            let result = existing(shared, &ids).map(|()| {
                set_goal(shared, &ids, Goal::Removed);
                for id in &ids {
                    if let Some(node) = Arc::make_mut(&mut shared.snapshot.state).nodes.get_mut(id)
                    {
                        node.placement = None;
                        node.task = None;
                    }
                }
            });
            let _ = reply.send(result);
        }
        Command::Restart { ids, reply } => {
            shared.received.push(format!("restart {}", ids.join(",")));
            let result = existing(shared, &ids)
                .and_then(|()| open_plan_conflict(shared))
                .map(|()| new_plan(shared, PlanKind::Restart, ids));
            let _ = reply.send(result);
        }
        Command::Replace { ids, reply } => {
            shared.received.push(format!("replace {}", ids.join(",")));
            let result = existing(shared, &ids)
                .and_then(|()| open_plan_conflict(shared))
                .map(|()| new_plan(shared, PlanKind::Replace, ids));
            let _ = reply.send(result);
        }
        Command::Plan { id, action, reply } => {
            shared.received.push(format!("plan {id} {action:?}"));
            let now = now_ms();
            let result = match Arc::make_mut(&mut shared.snapshot.state)
                .plans
                .iter_mut()
                .find(|p| p.id == id)
            {
                None => Err(refuse(
                    ErrorKind::NotFound,
                    format!("plan {id} does not exist"),
                )),
                Some(plan) if !plan.is_open() => Err(refuse(
                    ErrorKind::Conflict,
                    format!("plan {id} has already ended ({:?})", plan.state),
                )),
                Some(plan) => {
                    match action {
                        PlanAction::Pause => plan.pause("paused by the operator"),
                        PlanAction::Resume => plan.resume(now),
                        PlanAction::Abort => plan.abort(),
                    }
                    Ok(())
                }
            };
            let _ = reply.send(result);
        }
        Command::Ask { id, request, reply } => {
            shared.received.push(format!("ask {id}"));
            let running = shared
                .snapshot
                .state
                .nodes
                .get(&id)
                .is_some_and(Node::task_active);
            let result = if !running {
                Err(refuse(
                    ErrorKind::Conflict,
                    format!("node {id} has no running executor to ask"),
                ))
            } else {
                Ok(match request {
                    Request::LogTail { stream, lines, .. } => Outcome::Ok(Reply::LogTail {
                        stream,
                        lines: (1..=lines)
                            .map(|i| format!("{} line {i}", stream.file_name()))
                            .collect(),
                    }),
                    Request::Admin { name, args, .. } if name == "echo" => {
                        Outcome::Ok(Reply::Admin {
                            name,
                            exit_code: Some(0),
                            timed_out: false,
                            stdout: args.join(" "),
                            stderr: String::new(),
                        })
                    }
                    Request::Admin { name, .. } => Outcome::Error(Refusal {
                        kind: RefusalKind::NotAllowed,
                        message: format!("admin command {name} is not in the allow-list"),
                    }),
                    Request::Status {} => Outcome::Ok(Reply::Status { tasks: vec![] }),
                })
            };
            let _ = reply.send(result);
        }
    }
}

fn set_goal(shared: &mut Shared, ids: &[String], goal: Goal) {
    for id in ids {
        if let Some(node) = Arc::make_mut(&mut shared.snapshot.state).nodes.get_mut(id) {
            node.goal = goal;
        }
    }
}

/// One phase of the open plan's first unfinished step.
fn advance(shared: &mut Shared) {
    let now = now_ms();
    let fail_at = shared.options.fail_at.clone();
    let state = Arc::make_mut(&mut shared.snapshot.state);
    let Some(plan) = state
        .plans
        .iter_mut()
        .find(|p| p.state == PlanState::Active)
    else {
        return;
    };
    let Some(step) = plan
        .steps
        .iter_mut()
        .find(|s| s.phase != StepPhase::Complete)
    else {
        plan.state = PlanState::Complete;
        return;
    };
    let id = step.node.clone();
    let mut pause = None;
    match step.phase {
        StepPhase::Pending => {
            step.phase = StepPhase::Restarting;
            step.message = Some(format!("node {id} is going down"));
        }
        StepPhase::Restarting | StepPhase::CheckingSafety => {
            if fail_at.as_deref() == Some(id.as_str()) {
                step.message = Some("exit status 1: service failed to start".into());
                pause = Some(format!(
                    "node {id} did not become ready within 60 s: exit status 1: service failed to start"
                ));
            } else {
                step.phase = StepPhase::CheckingHealth;
                step.message = Some("waiting for the health check".into());
                if let Some(node) = state.nodes.get_mut(&id) {
                    let n = node.id.parse::<u64>().unwrap_or(0);
                    place(
                        node,
                        &format!("agent{n}.local"),
                        if n % 2 == 0 { "r1" } else { "r2" },
                    );
                    node.waiting_reason = None;
                    if let Some(change) = node.pending.take() {
                        node.config = change.config;
                    }
                }
            }
        }
        StepPhase::CheckingHealth => {
            step.phase = StepPhase::Complete;
            step.message = Some("healthy".into());
        }
        StepPhase::Complete => {}
    }
    step.since = now;
    if let Some(reason) = pause {
        plan.state = PlanState::Paused { reason };
    } else if plan.steps.iter().all(|s| s.phase == StepPhase::Complete) {
        plan.state = PlanState::Complete;
    }
}
