//! The event loop: the single owner of the scheduler's state.
//!
//! Expected flow: subscribe (with the stored framework ID) → persist the ID →
//! reconcile → for each OFFERS event, `decide`, persist, then ACCEPT/DECLINE →
//! for each UPDATE, fold it in, persist, then ACKNOWLEDGE → plans advance as
//! checks come back. Commands from the REST API arrive on a channel; reads use
//! the published [`Snapshot`].
//!
//! Guarantee: nothing is sent that relies on state not yet persisted. Every
//! call produced while handling an input is queued, the state is saved, and
//! only then are the calls sent. A failed save stops the scheduler.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use executor_protocol::{Artifact, ExecutorBody, ExecutorMessage, SchedulerMessage, TaskDocument};
use mesos_client::{SchedulerEvent, calls};
use mesos_proto::{
    ContentType,
    v1::{
        self, AgentId, CommandInfo, ExecutorId, FrameworkId, FrameworkInfo, TaskId, command_info,
        environment,
        framework_info::{Capability, capability},
        scheduler::{Call, Event, event},
    },
};
use scheduler_core::{
    node::{Goal, Millis, Node, PendingChange, RelaunchPolicy, Stage, TaskPhase},
    offer::{Context, TaskTemplate, launch, task_info},
    plan::{self, CheckResult, Checks, Plan, PlanKind, PlanState, Strategy},
    planner::{self, Decision, Explanations, StatusOutcome},
    resources::{Reserver, Scalars},
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};
use url::Url;

use crate::{
    command::{Command, CommandError, ErrorKind, PlanAction, Snapshot},
    service::{ArtifactRef, ClusterView, NodeView, Service, TaskContext},
    state::{SchedulerState, StateSink},
};

/// How the scheduler registers and runs its nodes.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Framework name (also `FrameworkInfo.name` and the task ID prefix).
    pub framework_name: String,
    /// Unix user executors run as.
    pub user: String,
    /// Role reservations are made for.
    pub role: String,
    /// Principal of the framework, reservations and volumes.
    pub principal: String,
    /// Secret for HTTP basic authentication, if the master requires it.
    pub secret: Option<String>,
    /// How long the master keeps our tasks while we are away.
    pub failover_timeout: Duration,
    /// Shown in the Mesos UI.
    pub webui_url: Option<String>,
    /// Wire format towards the master.
    pub content_type: ContentType,
    /// Where agents fetch the executor binary.
    pub executor_url: String,
    /// Environment given to every executor.
    pub executor_env: BTreeMap<String, String>,
    /// Service artifacts by name.
    pub artifacts: BTreeMap<String, ArtifactRef>,
    /// A Java runtime tarball every task gets (for agents without Java):
    /// extracted into [`JAVA_RUNTIME_DIR`] and made the task's `JAVA_HOME`.
    pub java_runtime: Option<ArtifactRef>,
    /// cpus/mem each executor takes on top of its node.
    pub executor_overhead: Scalars,
    /// Relaunch backoff and limits.
    pub policy: RelaunchPolicy,
    /// How long one plan step may take before the plan pauses.
    pub step_timeout: Duration,
    /// Where the persistent volume appears in the sandbox.
    pub volume_path: String,
    /// How long to wait for an executor's answer.
    pub ask_timeout: Duration,
}

impl RuntimeConfig {
    /// Defaults for a framework called `name`, with role and principal equal to it.
    pub fn new(name: &str, executor_url: impl Into<String>) -> Self {
        RuntimeConfig {
            framework_name: name.into(),
            user: "root".into(),
            role: name.into(),
            principal: name.into(),
            secret: None,
            failover_timeout: Duration::from_secs(7 * 24 * 3600),
            webui_url: None,
            content_type: ContentType::Protobuf,
            executor_url: executor_url.into(),
            executor_env: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            java_runtime: None,
            executor_overhead: Scalars {
                cpus: scheduler_core::resources::Milli(100),
                mem: scheduler_core::resources::Milli(64_000),
                disk: scheduler_core::resources::Milli::ZERO,
            },
            policy: RelaunchPolicy::default(),
            step_timeout: Duration::from_secs(600),
            volume_path: "data".into(),
            ask_timeout: Duration::from_secs(10),
        }
    }

    fn framework_info(&self, id: Option<String>) -> FrameworkInfo {
        let capability = |t: capability::Type| Capability {
            r#type: Some(t as i32),
        };
        FrameworkInfo {
            user: self.user.clone(),
            name: self.framework_name.clone(),
            id: id.map(|value| FrameworkId { value }),
            failover_timeout: Some(self.failover_timeout.as_secs_f64()),
            checkpoint: Some(true),
            principal: Some(self.principal.clone()),
            webui_url: self.webui_url.clone(),
            roles: vec![self.role.clone()],
            capabilities: vec![
                capability(capability::Type::MultiRole),
                capability(capability::Type::ReservationRefinement),
                capability(capability::Type::PartitionAware),
            ],
            ..Default::default()
        }
    }

    fn planner(&self, instance: &str) -> planner::Config {
        planner::Config {
            context: Context {
                reserver: Reserver {
                    role: self.role.clone(),
                    principal: self.principal.clone(),
                    instance: instance.into(),
                },
                executor_overhead: self.executor_overhead,
                volume_path: self.volume_path.clone(),
            },
            framework: self.framework_name.clone(),
            policy: self.policy,
            decline_busy_seconds: 5.0,
            decline_idle_seconds: 3600.0,
        }
    }

    fn executor_command(&self) -> CommandInfo {
        let binary = self
            .executor_url
            .rsplit('/')
            .next()
            .filter(|b| !b.is_empty())
            .unwrap_or("service-executor")
            .to_owned();
        CommandInfo {
            uris: vec![command_info::Uri {
                value: self.executor_url.clone(),
                executable: Some(true),
                extract: Some(false),
                cache: Some(false),
                output_file: Some(binary.clone()),
            }],
            environment: (!self.executor_env.is_empty()).then(|| v1::Environment {
                variables: self
                    .executor_env
                    .iter()
                    .map(|(name, value)| environment::Variable {
                        name: name.clone(),
                        value: Some(value.clone()),
                        r#type: Some(environment::variable::Type::Value as i32),
                    })
                    .collect(),
            }),
            value: Some(format!("./{binary}")),
            shell: Some(true),
            ..Default::default()
        }
    }
}

/// Why the runtime could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The scheduler HTTP client could not start.
    #[error("cannot start the Mesos client: {0}")]
    Client(#[from] mesos_client::Error),
    /// Saving the state failed; the scheduler stops rather than act on unsaved state.
    #[error("cannot save the scheduler state: {0}")]
    Save(String),
    /// The master ended our subscription for good.
    #[error("the Mesos master ended the subscription: {0}")]
    Subscription(String),
}

/// The API's way into the runtime.
#[derive(Clone, Debug)]
pub struct RuntimeHandle {
    commands: mpsc::Sender<Command>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
}

impl RuntimeHandle {
    /// A handle over given channels; for component tests of the API that play
    /// the runtime's side themselves.
    pub fn from_parts(
        commands: mpsc::Sender<Command>,
        snapshot: watch::Receiver<Arc<Snapshot>>,
    ) -> Self {
        RuntimeHandle { commands, snapshot }
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver of snapshots, to wait for changes.
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// Sends a command built around a reply channel and waits for the answer.
    pub async fn ask<T>(
        &self,
        build: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> Command,
    ) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        let stopped =
            || CommandError::new(ErrorKind::Unavailable, "the scheduler is shutting down");
        self.commands
            .send(build(reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Starts the runtime: the Mesos subscription and the loop that owns `state`.
///
/// Returns the handle for the API and a future that resolves when the runtime
/// stops (with the reason, if it failed).
pub fn start(
    service: Arc<dyn Service>,
    config: RuntimeConfig,
    state: SchedulerState,
    sink: Arc<dyn StateSink>,
    leader: watch::Receiver<Option<Url>>,
) -> Result<
    (
        RuntimeHandle,
        tokio::task::JoinHandle<Result<(), RuntimeError>>,
    ),
    RuntimeError,
> {
    let mut client_config =
        mesos_client::Config::new(config.framework_info(state.framework_id.clone()));
    client_config.content_type = config.content_type;
    client_config.credentials = config
        .secret
        .clone()
        .map(|secret| mesos_client::Credentials {
            principal: config.principal.clone(),
            secret,
        });
    let (client, events) = mesos_client::start(client_config, leader)?;
    let (commands_tx, commands) = mpsc::channel(64);
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
    let (checks_tx, checks_rx) = mpsc::channel(64);
    let planner = config.planner(&state.instance);
    let mut runtime = Runtime {
        service,
        config,
        planner,
        state: Arc::new(state),
        sink,
        client,
        outbox: Vec::new(),
        dirty: true,
        subscribed: None,
        wants_offers: None,
        explanations: Explanations::new(),
        checks: Checks::default(),
        checks_in_flight: BTreeSet::new(),
        checks_tx,
        health: BTreeMap::new(),
        asks: BTreeMap::new(),
        snapshot: snapshot_tx,
        counters: BTreeMap::new(),
        fatal: None,
        answers: Vec::new(),
        reconciliation: None,
        last_reconciliation_ms: None,
    };
    // The API may serve before the task first runs: it must show the loaded
    // state (plans, nodes), not an empty one.
    runtime.publish();
    let task = tokio::spawn(async move { runtime.run(events, commands, checks_rx).await });
    Ok((
        RuntimeHandle {
            commands: commands_tx,
            snapshot,
        },
        task,
    ))
}

#[derive(Debug)]
enum CheckKind {
    Safety,
    Health,
}

struct CheckDone {
    kind: CheckKind,
    node: String,
    result: CheckResult,
}

struct Runtime {
    service: Arc<dyn Service>,
    config: RuntimeConfig,
    planner: planner::Config,
    /// Shared with the published snapshot until the next change (changes go
    /// through `Arc::make_mut`), so the state is held once rather than twice.
    state: Arc<SchedulerState>,
    sink: Arc<dyn StateSink>,
    client: mesos_client::Handle,
    /// Calls waiting for the state they rely on to be saved.
    outbox: Vec<Call>,
    dirty: bool,
    subscribed: Option<Url>,
    wants_offers: Option<bool>,
    explanations: Explanations,
    checks: Checks,
    checks_in_flight: BTreeSet<(bool, String)>,
    checks_tx: mpsc::Sender<CheckDone>,
    health: BTreeMap<String, executor_protocol::Health>,
    asks: BTreeMap<
        String,
        (
            oneshot::Sender<Result<executor_protocol::Outcome, CommandError>>,
            Millis,
        ),
    >,
    snapshot: watch::Sender<Arc<Snapshot>>,
    counters: BTreeMap<&'static str, u64>,
    fatal: Option<String>,
    /// Command answers waiting for the state they describe to be saved.
    answers: Vec<Box<dyn FnOnce() + Send>>,
    /// Tasks asked about since the last subscription and not yet answered.
    reconciliation: Option<Reconciliation>,
    /// How long the last completed reconciliation took.
    last_reconciliation_ms: Option<u64>,
}

/// `current` shared as `previous` if unchanged: comparing copies nothing.
fn shared<T: Clone + PartialEq>(previous: &Arc<T>, current: &T) -> Arc<T> {
    if **previous == *current {
        previous.clone()
    } else {
        Arc::new(current.clone())
    }
}

/// Where a task's Java runtime is extracted, relative to its sandbox.
pub const JAVA_RUNTIME_DIR: &str = "jre";

/// First wait before asking again about tasks the master has not answered for.
const RECONCILE_RETRY_MS: Millis = 5_000;
/// Longest wait between such questions.
const RECONCILE_RETRY_MAX_MS: Millis = 60_000;

/// Explicit reconciliation in progress. The master answers best effort (an
/// agent may be re-registering), so unanswered tasks are asked about again
/// with a doubling wait until every one has an answer.
struct Reconciliation {
    pending: BTreeMap<String, Option<AgentId>>,
    started: Millis,
    retry_at: Millis,
    backoff: Millis,
}

impl Runtime {
    async fn run(
        &mut self,
        mut events: mpsc::Receiver<SchedulerEvent>,
        mut commands: mpsc::Receiver<Command>,
        mut checks: mpsc::Receiver<CheckDone>,
    ) -> Result<(), RuntimeError> {
        // Persist the instance ID (and anything else new) before the first call.
        self.flush().await?;
        let mut wake: Option<Millis> = None;
        self.publish();
        loop {
            let sleep = wake.map_or(Duration::from_secs(3600), |at| {
                Duration::from_millis(at.saturating_sub(now_ms()))
            });
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(event).await?,
                    None => return Ok(()),
                },
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => {
                        self.client.shutdown();
                        return Ok(());
                    }
                },
                Some(done) = checks.recv() => self.on_check(done),
                () = tokio::time::sleep(sleep) => {}
            }
            wake = self.tick(now_ms());
            self.flush().await?;
            // Answer commands only now: what they changed is saved and visible.
            self.publish();
            for answer in std::mem::take(&mut self.answers) {
                answer();
            }
        }
    }

    /// Queues a command's answer until its effects are saved and published.
    fn answer<T: Send + 'static>(
        &mut self,
        reply: oneshot::Sender<Result<T, CommandError>>,
        result: Result<T, CommandError>,
    ) {
        self.answers.push(Box::new(move || {
            let _ = reply.send(result);
        }));
    }

    /// Saves the state if it changed, then sends the queued calls.
    async fn flush(&mut self) -> Result<(), RuntimeError> {
        if self.dirty {
            self.sink
                .save(&self.state)
                .await
                .map_err(RuntimeError::Save)?;
            self.dirty = false;
            *self.counters.entry("state_saves").or_default() += 1;
        }
        for call in std::mem::take(&mut self.outbox) {
            let kind = call.r#type().as_str_name();
            if let Err(error) = self.client.call(call).await {
                // Offers and kills are re-derived from state on the next
                // subscription, so a call lost to a reconnect is not lost work.
                warn!(call = kind, error = %error, "call not delivered");
                *self.counters.entry("calls_failed").or_default() += 1;
            } else {
                *self.counters.entry("calls_sent").or_default() += 1;
            }
        }
        Ok(())
    }

    fn publish(&mut self) {
        let previous = self.snapshot.borrow().clone();
        // A copy that ended up unchanged goes; the published one is kept.
        if !Arc::ptr_eq(&previous.state, &self.state) && *previous.state == *self.state {
            self.state = previous.state.clone();
        }
        let state = self.state.clone();
        let endpoints = if Arc::ptr_eq(&state, &previous.state) {
            previous.endpoints.clone()
        } else {
            Arc::new(self.service.endpoints(&self.cluster()))
        };
        let snapshot = Snapshot {
            state,
            subscribed: self.subscribed.is_some(),
            master: self.subscribed.as_ref().map(Url::to_string),
            fatal: self.fatal.clone(),
            explanations: shared(&previous.explanations, &self.explanations),
            health: shared(&previous.health, &self.health),
            endpoints,
            counters: self.counters.clone(),
            reconciling: self.reconciliation.as_ref().map_or(0, |r| r.pending.len()),
            last_reconciliation_ms: self.last_reconciliation_ms,
        };
        self.snapshot.send_replace(Arc::new(snapshot));
    }

    fn cluster(&self) -> ClusterView {
        ClusterView {
            nodes: self
                .state
                .nodes
                .values()
                .filter(|n| n.goal != Goal::Removed)
                .map(|n| (n.id.clone(), NodeView::of(n)))
                .collect(),
            settings: self.state.settings.clone(),
        }
    }

    async fn on_event(&mut self, event: SchedulerEvent) -> Result<(), RuntimeError> {
        match event {
            SchedulerEvent::Subscribed {
                framework_id,
                master,
                ..
            } => {
                info!(framework_id = %framework_id.value, master = %master, "subscribed");
                if self.state.framework_id.as_deref() != Some(framework_id.value.as_str()) {
                    Arc::make_mut(&mut self.state).framework_id = Some(framework_id.value.clone());
                    self.dirty = true;
                }
                self.subscribed = Some(master);
                // SUBSCRIBE reset suppression; re-assert it below.
                self.wants_offers = None;
                self.reconcile();
            }
            SchedulerEvent::Disconnected { reason } => {
                warn!(reason = %reason, "disconnected from the master");
                self.subscribed = None;
            }
            SchedulerEvent::Terminated { error } => {
                let message = error.map_or_else(|| "shut down".to_owned(), |e| e.to_string());
                error!(error = %message, "subscription ended for good");
                self.fatal = Some(message.clone());
                self.subscribed = None;
                self.publish();
                return Err(RuntimeError::Subscription(message));
            }
            SchedulerEvent::Event(event) => self.on_mesos_event(*event),
        }
        Ok(())
    }

    fn reconcile(&mut self) {
        let now = now_ms();
        let pending: BTreeMap<String, Option<AgentId>> = self
            .state
            .nodes
            .values()
            .filter(|n| n.task_active())
            .filter_map(|n| {
                let task = n.task.as_ref()?;
                Some((
                    task.task_id.clone(),
                    n.placement.as_ref().map(|p| AgentId {
                        value: p.agent_id.clone(),
                    }),
                ))
            })
            .collect();
        info!(tasks = pending.len(), "reconciling");
        self.reconciliation = Some(Reconciliation {
            pending,
            started: now,
            retry_at: now,
            backoff: RECONCILE_RETRY_MS,
        });
        self.ask_reconciliation(now);
        // Implicit reconciliation also reveals tasks we no longer know.
        self.outbox.push(calls::reconcile(vec![]));
        self.note_reconciled(now);
    }

    /// Asks the master about the tasks it has not answered for yet.
    fn ask_reconciliation(&mut self, now: Millis) {
        let Some(r) = self.reconciliation.as_mut() else {
            return;
        };
        if r.pending.is_empty() || now < r.retry_at {
            return;
        }
        if r.retry_at > r.started {
            warn!(
                tasks = r.pending.len(),
                "the master has not answered for every task yet; asking again"
            );
        }
        let tasks = r
            .pending
            .iter()
            .map(|(task, agent)| {
                (
                    TaskId {
                        value: task.clone(),
                    },
                    agent.clone(),
                )
            })
            .collect();
        self.outbox.push(calls::reconcile(tasks));
        r.retry_at = now + r.backoff;
        r.backoff = (r.backoff * 2).min(RECONCILE_RETRY_MAX_MS);
    }

    /// Records that the master answered for `task_id` (any update counts).
    fn answered(&mut self, task_id: &str, now: Millis) {
        if let Some(r) = self.reconciliation.as_mut() {
            r.pending.remove(task_id);
        }
        self.note_reconciled(now);
    }

    /// Ends the reconciliation once every task has its answer.
    fn note_reconciled(&mut self, now: Millis) {
        let Some(r) = self.reconciliation.take_if(|r| r.pending.is_empty()) else {
            return;
        };
        let took = now.saturating_sub(r.started);
        info!(
            took_ms = took,
            "reconciled: the master answered for every task"
        );
        *self
            .counters
            .entry("reconciliations_completed")
            .or_default() += 1;
        self.last_reconciliation_ms = Some(took);
    }

    fn on_mesos_event(&mut self, event: Event) {
        let now = now_ms();
        match event.r#type() {
            event::Type::Offers => {
                let offers = event.offers.map(|o| o.offers).unwrap_or_default();
                *self.counters.entry("offers_received").or_default() += offers.len() as u64;
                let decision = planner::decide(
                    &mut Arc::make_mut(&mut self.state).nodes,
                    &offers,
                    now,
                    &self.planner,
                    &mut self.explanations,
                );
                self.apply(decision);
            }
            event::Type::Update => {
                let Some(status) = event.update.map(|u| u.status) else {
                    return;
                };
                self.answered(&status.task_id.value, now);
                let outcome = planner::on_status(
                    &mut Arc::make_mut(&mut self.state).nodes,
                    &status,
                    now,
                    &self.config.policy,
                );
                debug!(task_id = %status.task_id.value, state = status.state().as_str_name(), ?outcome, "status update");
                match outcome {
                    StatusOutcome::Applied { node, changed } => {
                        info!(node = %node, task_id = %status.task_id.value, state = status.state().as_str_name(),
                              message = status.message.as_deref().unwrap_or(""), "task status");
                        // Saving is an fsync: a reconciliation of hundreds of
                        // tasks must not write the state once per answer.
                        self.dirty |= changed;
                        if self.relaunch_due(&node, now) {
                            // Mesos offers freed resources at its next batch
                            // allocation (every second by default); a REVIVE
                            // has it allocate at once, which each step of a
                            // rolling restart would otherwise wait for.
                            self.outbox
                                .push(calls::revive(vec![self.config.role.clone()]));
                        }
                    }
                    StatusOutcome::Unknown => {
                        let terminal = matches!(
                            status.state(),
                            v1::TaskState::TaskFinished
                                | v1::TaskState::TaskFailed
                                | v1::TaskState::TaskKilled
                                | v1::TaskState::TaskError
                                | v1::TaskState::TaskLost
                                | v1::TaskState::TaskDropped
                                | v1::TaskState::TaskGone
                                | v1::TaskState::TaskGoneByOperator
                                | v1::TaskState::TaskUnknown
                        );
                        if !terminal {
                            warn!(task_id = %status.task_id.value, "killing a task no node owns");
                            self.outbox.push(calls::kill(
                                status.task_id.clone(),
                                status.agent_id.clone(),
                                None,
                            ));
                        }
                    }
                    StatusOutcome::Stale => {}
                }
                if let Some(ack) = calls::acknowledge(&status) {
                    self.outbox.push(ack);
                }
            }
            event::Type::Message => {
                if let Some(message) = event.message {
                    self.on_executor_message(&message.executor_id.value, &message.data);
                }
            }
            event::Type::Failure => {
                if let Some(failure) = event.failure {
                    warn!(agent_id = ?failure.agent_id.map(|a| a.value),
                          executor_id = ?failure.executor_id.map(|e| e.value),
                          status = ?failure.status, "executor or agent failure");
                }
            }
            event::Type::Rescind | event::Type::Heartbeat => {}
            other => debug!(event = other.as_str_name(), "ignored event"),
        }
    }

    /// Whether `node` just lost its task and may be launched again right away.
    fn relaunch_due(&self, node: &str, now: Millis) -> bool {
        // While suppressed, `apply` revives once the relaunch is decided.
        self.wants_offers == Some(true)
            && self
                .state
                .nodes
                .get(node)
                .is_some_and(|n| planner::needs_launch(n, &self.config.policy, now))
    }

    fn on_executor_message(&mut self, executor_id: &str, data: &[u8]) {
        let message = match ExecutorMessage::from_json(data) {
            Ok(message) => message,
            Err(error) => {
                warn!(executor_id, error = %error, "unreadable executor message");
                return;
            }
        };
        match message.message {
            ExecutorBody::Health(health) => {
                if let Some(node) = self.node_of_task(&health.task_id) {
                    self.health.insert(node, health);
                }
            }
            ExecutorBody::Response(response) => {
                if let Some((reply, _)) = self.asks.remove(&response.request_id) {
                    let _ = reply.send(Ok(response.result));
                }
            }
        }
    }

    fn node_of_task(&self, task_id: &str) -> Option<String> {
        self.state
            .nodes
            .values()
            .find(|n| n.task.as_ref().is_some_and(|t| t.task_id == task_id))
            .map(|n| n.id.clone())
    }

    /// Turns a planner decision into calls (queued until the state is saved).
    fn apply(&mut self, decision: Decision) {
        // Most decisions launch nothing; the view of every node is built only for launches.
        let cluster = if decision.accepts.iter().any(|a| !a.launches.is_empty()) {
            self.cluster()
        } else {
            ClusterView::default()
        };
        for accept in decision.accepts {
            let mut operations = accept.operations;
            let mut launched = Vec::new();
            for launch_plan in accept.launches {
                let waiting = self.state.nodes.get(&launch_plan.node).and_then(|node| {
                    self.service
                        .ready_to_launch(&NodeView::of(node), &cluster)
                        .err()
                });
                if let Some(reason) = waiting {
                    info!(node = %launch_plan.node, reason = %reason, "launch held back");
                    if let Some(node) = Arc::make_mut(&mut self.state)
                        .nodes
                        .get_mut(&launch_plan.node)
                    {
                        // Not launched: no task to wait for, and no failure.
                        node.task = None;
                        node.waiting_reason = Some(reason);
                    }
                    continue;
                }
                match self.task_for(&launch_plan, &accept.agent_id, &cluster) {
                    Ok(task) => launched.push(task),
                    Err(reason) => {
                        error!(node = %launch_plan.node, reason = %reason, "cannot build the task");
                        if let Some(node) = Arc::make_mut(&mut self.state)
                            .nodes
                            .get_mut(&launch_plan.node)
                        {
                            let why = format!("cannot build its task: {reason}");
                            node.waiting_reason = Some(why.clone());
                            node.last_failure = Some(why);
                            node.failures = node.failures.saturating_add(1);
                            // Back off as after a failed task, so a service that
                            // cannot describe the task yet is not asked every offer.
                            node.backoff_until =
                                Some(now_ms() + self.config.policy.delay(node.failures));
                            if let Some(task) = node.task.as_mut() {
                                task.phase = TaskPhase::Terminated;
                                task.message = Some(reason);
                            }
                        }
                    }
                }
            }
            if !launched.is_empty() {
                operations.push(launch(launched));
            }
            info!(offer_id = %accept.offer_id.value, agent_id = %accept.agent_id,
                  operations = operations.len(), "accepting offer");
            self.outbox.push(calls::accept(
                vec![accept.offer_id],
                operations,
                Some(v1::Filters {
                    refuse_seconds: Some(self.planner.decline_busy_seconds),
                }),
            ));
            self.dirty = true;
        }
        if !decision.declines.is_empty() {
            let seconds = decision.declines[0].1;
            let ids = decision.declines.into_iter().map(|(id, _)| id).collect();
            self.outbox.push(calls::decline(ids, Some(seconds)));
        }
        for (node, task_id, agent_id) in decision.kills {
            info!(node = %node, task_id = %task_id, "killing task");
            self.outbox.push(calls::kill(
                TaskId { value: task_id },
                Some(AgentId { value: agent_id }),
                None,
            ));
            self.dirty = true;
        }
        if self.subscribed.is_some() && self.wants_offers != Some(decision.wants_offers) {
            let role = vec![self.config.role.clone()];
            self.outbox.push(if decision.wants_offers {
                calls::revive(role.clone())
            } else {
                calls::suppress(role.clone())
            });
            self.client
                .set_suppressed_roles(if decision.wants_offers { vec![] } else { role });
            self.wants_offers = Some(decision.wants_offers);
        }
    }

    fn task_for(
        &self,
        launch_plan: &planner::Launch,
        agent_id: &str,
        cluster: &ClusterView,
    ) -> Result<v1::TaskInfo, String> {
        let node = self
            .state
            .nodes
            .get(&launch_plan.node)
            .ok_or_else(|| format!("node {} vanished", launch_plan.node))?;
        let placement = node
            .placement
            .as_ref()
            .ok_or_else(|| format!("node {} has no placement", node.id))?;
        let view = NodeView::of(node);
        let mut document: TaskDocument = self.service.task(&TaskContext {
            node: &view,
            placement,
            cluster,
            artifacts: &self.config.artifacts,
            volume_path: &self.config.volume_path,
        })?;
        if let Some(jre) = &self.config.java_runtime {
            document.artifacts.push(Artifact {
                url: jre.url.clone(),
                sha256: jre.sha256.clone(),
                extract: true,
                destination: JAVA_RUNTIME_DIR.into(),
            });
            document.java_home = Some(JAVA_RUNTIME_DIR.into());
        }
        let data = document.to_json().map_err(|e| e.to_string())?;
        let grace_ns = i64::try_from(document.stop.grace_period_ms)
            .unwrap_or(i64::MAX / 1_000_000)
            .saturating_mul(1_000_000);
        let template = TaskTemplate {
            task_id: launch_plan.task_id.clone(),
            name: format!("{}-{}", self.service.noun(), node.id),
            executor_command: self.config.executor_command(),
            data,
            labels: vec![("node".into(), node.id.clone())],
            kill_grace_ns: Some(grace_ns),
        };
        Ok(task_info(
            &template,
            agent_id,
            launch_plan.resources.clone(),
        ))
    }

    fn on_check(&mut self, done: CheckDone) {
        let key = (matches!(done.kind, CheckKind::Safety), done.node.clone());
        self.checks_in_flight.remove(&key);
        debug!(node = %done.node, kind = ?done.kind, ok = done.result.ok, message = %done.result.message, "check result");
        match done.kind {
            CheckKind::Safety => self.checks.safety.insert(done.node, done.result),
            CheckKind::Health => self.checks.health.insert(done.node, done.result),
        };
    }

    fn spawn_check(&mut self, kind: CheckKind, node: String, cluster: &ClusterView) {
        let key = (matches!(kind, CheckKind::Safety), node.clone());
        if !self.checks_in_flight.insert(key) {
            return;
        }
        let future = match kind {
            CheckKind::Safety => self.service.check_safety(&node, cluster),
            CheckKind::Health => self.service.check_health(&node, cluster),
        };
        let tx = self.checks_tx.clone();
        tokio::spawn(async move {
            let result = future.await;
            let _ = tx.send(CheckDone { kind, node, result }).await;
        });
    }

    /// Advances plans and derives kills and offer interest; returns when to wake.
    fn tick(&mut self, now: Millis) -> Option<Millis> {
        let mut wake: Option<Millis> = None;
        let mut want_safety = Vec::new();
        let mut want_health = Vec::new();
        let state = Arc::make_mut(&mut self.state);
        for plan in state
            .plans
            .iter_mut()
            .filter(|p| p.state == PlanState::Active)
        {
            let before = plan.clone();
            let asked = plan::advance(plan, &mut state.nodes, &self.checks, now);
            if *plan != before {
                self.dirty = true;
                if plan.state != before.state {
                    info!(plan = %plan.id, state = ?plan.state, "plan state changed");
                }
            }
            want_safety.extend(asked.check_safety);
            want_health.extend(asked.check_health);
            wake = min_time(wake, asked.wake_at);
        }
        if !want_safety.is_empty() || !want_health.is_empty() {
            let cluster = self.cluster();
            for node in want_safety {
                self.spawn_check(CheckKind::Safety, node, &cluster);
            }
            for node in want_health {
                self.spawn_check(CheckKind::Health, node, &cluster);
            }
        }
        // Kills and offer interest can change without an offer (a stop, a restart step).
        let decision = planner::decide(
            &mut Arc::make_mut(&mut self.state).nodes,
            &[],
            now,
            &self.planner,
            &mut self.explanations,
        );
        wake = min_time(wake, decision.wake_at);
        self.apply(decision);
        // Executor questions that were never answered.
        let expired: Vec<String> = self
            .asks
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((reply, _)) = self.asks.remove(&id) {
                let _ = reply.send(Err(CommandError::new(
                    ErrorKind::Unavailable,
                    "the executor did not answer in time (framework messages are best effort; try again)",
                )));
            }
        }
        let ask_deadline = self.asks.values().map(|(_, d)| *d).min();
        self.ask_reconciliation(now);
        let retry = self.reconciliation.as_ref().map(|r| r.retry_at);
        min_time(min_time(wake, ask_deadline), retry)
    }

    fn next_plan_id(&mut self, kind: PlanKind) -> String {
        Arc::make_mut(&mut self.state).plan_counter += 1;
        let prefix = match kind {
            PlanKind::Deploy => "deploy",
            PlanKind::Restart => "restart",
            PlanKind::Update => "update",
            PlanKind::Replace => "replace",
        };
        format!("{prefix}-{}", self.state.plan_counter)
    }

    fn lookup(&self, ids: &[String]) -> Result<(), CommandError> {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| {
                self.state
                    .nodes
                    .get(*id)
                    .is_none_or(|n| n.stage(&self.config.policy) == Stage::Removed)
            })
            .map(|id| format!("{} {id} does not exist", self.service.noun()))
            .collect();
        if ids.is_empty() {
            return Err(CommandError::new(
                ErrorKind::Invalid,
                format!("no {} IDs given", self.service.noun()),
            ));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(CommandError {
                kind: ErrorKind::NotFound,
                messages: missing,
            })
        }
    }

    fn no_open_plan(&self) -> Result<(), CommandError> {
        match self
            .state
            .plans
            .iter()
            .find(|p| p.is_open() && p.kind != PlanKind::Deploy)
        {
            Some(plan) => Err(CommandError::new(
                ErrorKind::Conflict,
                format!(
                    "plan {} is still {}; wait for it, or resume or abort it first",
                    plan.id,
                    if plan.state == PlanState::Active {
                        "running"
                    } else {
                        "paused"
                    }
                ),
            )),
            None => Ok(()),
        }
    }

    fn start_plan(&mut self, kind: PlanKind, strategy: Strategy, ids: Vec<String>) -> String {
        let id = self.next_plan_id(kind);
        let plan = Plan::new(
            id.clone(),
            kind,
            strategy,
            ids,
            now_ms(),
            self.config.step_timeout.as_millis() as Millis,
        );
        info!(plan = %id, kind = ?kind, steps = plan.steps.len(), "plan created");
        Arc::make_mut(&mut self.state).plans.push(plan);
        self.dirty = true;
        id
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Add { ids, config, reply } => {
                let result = self.add(ids, config);
                self.answer(reply, result);
            }
            Command::Update { ids, patch, reply } => {
                let result = self.update(ids, patch);
                self.answer(reply, result);
            }
            Command::Start { ids, reply } => {
                let result = self.lookup(&ids).map(|()| {
                    for id in &ids {
                        if let Some(node) = Arc::make_mut(&mut self.state).nodes.get_mut(id) {
                            node.goal = Goal::Running;
                            node.failures = 0;
                            node.last_failure = None;
                            node.backoff_until = None;
                        }
                    }
                    self.dirty = true;
                });
                self.answer(reply, result);
            }
            Command::Stop { ids, reply } => {
                let result = self.lookup(&ids).map(|()| {
                    for id in &ids {
                        if let Some(node) = Arc::make_mut(&mut self.state).nodes.get_mut(id) {
                            node.goal = Goal::Stopped;
                        }
                    }
                    self.dirty = true;
                });
                self.answer(reply, result);
            }
            Command::Restart { ids, reply } => {
                let result = match self.lookup(&ids).and_then(|()| self.no_open_plan()) {
                    Ok(()) => {
                        let ordered = self.service.restart_order(ids, &self.cluster()).await;
                        Ok(self.start_plan(PlanKind::Restart, Strategy::Serial, ordered))
                    }
                    Err(e) => Err(e),
                };
                self.answer(reply, result);
            }
            Command::Replace { ids, reply } => {
                let result = self
                    .lookup(&ids)
                    .and_then(|()| self.no_open_plan())
                    .map(|()| self.start_plan(PlanKind::Replace, Strategy::Serial, ids));
                self.answer(reply, result);
            }
            Command::Remove { ids, reply } => {
                let result = match self.lookup(&ids) {
                    Ok(()) => self
                        .service
                        .prepare_remove(ids.clone(), &self.cluster())
                        .await
                        .map_err(|messages| CommandError {
                            kind: ErrorKind::Conflict,
                            messages,
                        }),
                    Err(e) => Err(e),
                };
                let result = result.map(|()| {
                    for id in &ids {
                        if let Some(node) = Arc::make_mut(&mut self.state).nodes.get_mut(id) {
                            node.goal = Goal::Removed;
                        }
                    }
                    self.dirty = true;
                });
                self.answer(reply, result);
            }
            Command::Plan { id, action, reply } => {
                let now = now_ms();
                let result = match Arc::make_mut(&mut self.state)
                    .plans
                    .iter_mut()
                    .find(|p| p.id == id)
                {
                    None => Err(CommandError::new(
                        ErrorKind::NotFound,
                        format!("plan {id} does not exist"),
                    )),
                    Some(plan) if !plan.is_open() => Err(CommandError::new(
                        ErrorKind::Conflict,
                        format!("plan {id} has already ended ({:?})", plan.state),
                    )),
                    Some(plan) => {
                        match action {
                            PlanAction::Pause => plan.pause("paused by the operator"),
                            PlanAction::Resume => plan.resume(now),
                            PlanAction::Abort => plan.abort(),
                        }
                        self.dirty = true;
                        Ok(())
                    }
                };
                self.answer(reply, result);
            }
            Command::Ask { id, request, reply } => self.ask_executor(id, request, reply),
        }
    }

    fn add(&mut self, ids: Vec<String>, config: serde_json::Value) -> Result<String, CommandError> {
        if ids.is_empty() {
            return Err(CommandError::new(ErrorKind::Invalid, "no IDs given"));
        }
        let mut problems = Vec::new();
        let mut cluster = self.cluster();
        let mut added = Vec::new();
        for id in &ids {
            if let Some(problem) = scheduler_id_problem(id) {
                problems.push(format!("{} ID {id:?}: {problem}", self.service.noun()));
                continue;
            }
            if self.state.nodes.contains_key(id) {
                problems.push(format!(
                    "{} {id} already exists (IDs are never reused, even after removal)",
                    self.service.noun()
                ));
                continue;
            }
            match self.service.configure(id, config.clone(), &cluster) {
                Ok(configured) => match self.service.spec(&configured) {
                    Ok(spec) => {
                        let mut node = Node::new(id.clone(), spec);
                        node.config = configured;
                        cluster.nodes.insert(id.clone(), NodeView::of(&node));
                        added.push(node);
                    }
                    Err(problem) => {
                        problems.push(format!("{} {id}: {problem}", self.service.noun()))
                    }
                },
                Err(reasons) => problems.extend(
                    reasons
                        .into_iter()
                        .map(|r| format!("{} {id}: {r}", self.service.noun())),
                ),
            }
        }
        if !problems.is_empty() {
            return Err(CommandError {
                kind: ErrorKind::Invalid,
                messages: problems,
            });
        }
        for node in added {
            Arc::make_mut(&mut self.state)
                .nodes
                .insert(node.id.clone(), node);
        }
        Ok(self.start_plan(PlanKind::Deploy, Strategy::Parallel, ids))
    }

    fn update(
        &mut self,
        ids: Vec<String>,
        patch: serde_json::Value,
    ) -> Result<String, CommandError> {
        self.lookup(&ids)?;
        self.no_open_plan()?;
        if !patch.is_object() {
            return Err(CommandError::new(
                ErrorKind::Invalid,
                "an update is a JSON object of the settings to change",
            ));
        }
        let cluster = self.cluster();
        let mut problems = Vec::new();
        let mut changes = Vec::new();
        let mut withdrawn = Vec::new();
        for id in &ids {
            let Some(node) = self.state.nodes.get(id) else {
                continue;
            };
            let mut merged = node.config.clone();
            merge(&mut merged, &patch);
            let configured = match self.service.configure(id, merged, &cluster) {
                Ok(c) => c,
                Err(reasons) => {
                    problems.extend(
                        reasons
                            .into_iter()
                            .map(|r| format!("{} {id}: {r}", self.service.noun())),
                    );
                    continue;
                }
            };
            let spec = match self.service.spec(&configured) {
                Ok(spec) => spec,
                Err(problem) => {
                    problems.push(format!("{} {id}: {problem}", self.service.noun()));
                    continue;
                }
            };
            // Named rules every service shares.
            if node.placement.is_some() && spec.resources.disk != node.spec.resources.disk {
                problems.push(format!(
                    "{} {id}: volume-size-fixed: the disk size cannot change in place ({} → {} MB); replace the node instead",
                    self.service.noun(),
                    node.spec.resources.disk,
                    spec.resources.disk
                ));
            }
            problems.extend(
                self.service
                    .check_change(&node.config, &configured)
                    .into_iter()
                    .map(|r| format!("{} {id}: {r}", self.service.noun())),
            );
            if configured != node.config || spec != node.spec {
                changes.push((
                    id.clone(),
                    PendingChange {
                        spec,
                        config: configured,
                    },
                ));
            } else if node.pending.is_some() {
                // Back to what runs: a change still waiting (say, from an
                // aborted rollout) must not be applied by a later restart.
                withdrawn.push(id.clone());
            }
        }
        if !problems.is_empty() {
            return Err(CommandError {
                kind: ErrorKind::Invalid,
                messages: problems,
            });
        }
        if changes.is_empty() && withdrawn.is_empty() {
            return Err(CommandError::new(
                ErrorKind::Invalid,
                "the update changes nothing",
            ));
        }
        for id in &withdrawn {
            if let Some(node) = Arc::make_mut(&mut self.state).nodes.get_mut(id) {
                info!(node = %id, "pending change withdrawn: the update returns to the running configuration");
                node.pending = None;
            }
        }
        let changed: Vec<String> = changes.iter().map(|(id, _)| id.clone()).collect();
        for (id, change) in changes {
            if let Some(node) = Arc::make_mut(&mut self.state).nodes.get_mut(&id) {
                node.pending = Some(change);
            }
        }
        Ok(self.start_plan(PlanKind::Update, Strategy::Serial, changed))
    }

    fn ask_executor(
        &mut self,
        id: String,
        request: executor_protocol::Request,
        reply: oneshot::Sender<Result<executor_protocol::Outcome, CommandError>>,
    ) {
        let target = self.state.nodes.get(&id).and_then(|node| {
            let task = node.task.as_ref().filter(|_| node.task_active())?;
            let placement = node.placement.as_ref()?;
            Some((task.task_id.clone(), placement.agent_id.clone()))
        });
        let Some((task_id, agent_id)) = target else {
            let _ = reply.send(Err(CommandError::new(
                ErrorKind::Conflict,
                format!(
                    "{} {id} has no running executor to ask",
                    self.service.noun()
                ),
            )));
            return;
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let message = SchedulerMessage::new(request_id.clone(), request);
        let data = match message.to_json() {
            Ok(data) => data,
            Err(error) => {
                let _ = reply.send(Err(CommandError::new(
                    ErrorKind::Invalid,
                    error.to_string(),
                )));
                return;
            }
        };
        self.outbox.push(calls::message(
            AgentId { value: agent_id },
            ExecutorId { value: task_id },
            data,
        ));
        let deadline = now_ms() + self.config.ask_timeout.as_millis() as Millis;
        self.asks.insert(request_id, (reply, deadline));
    }
}

fn min_time(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Node IDs become parts of task, executor and volume IDs, which Mesos restricts.
fn scheduler_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() || id.len() > 64 {
        Some("must be 1 to 64 characters")
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Some("may contain only letters, digits, '-' and '_'")
    } else {
        None
    }
}

/// JSON merge patch: objects merge key by key, `null` deletes, anything else replaces.
pub fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(
                        target.entry(key.clone()).or_insert(serde_json::Value::Null),
                        value,
                    );
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}
