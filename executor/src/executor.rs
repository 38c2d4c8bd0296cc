//! The executor loop: one subscription to the agent, the task runners, the
//! unacknowledged updates, and the framework-message relay.
//!
//! Subscription lifecycle:
//! * Expected flow: SUBSCRIBE → SUBSCRIBED → LAUNCH → updates (each resent
//!   until ACKNOWLEDGED) → KILL or SHUTDOWN or the service's exit → terminal
//!   update acknowledged → the executor exits.
//! * Stream lost with checkpointing: re-SUBSCRIBE with backoff (each wait at
//!   most `MESOS_SUBSCRIPTION_BACKOFF_MAX`), carrying the unacknowledged tasks
//!   and updates; the service keeps running meanwhile. After
//!   `MESOS_RECOVERY_TIMEOUT` without the agent, stop the services and exit.
//! * Stream lost without checkpointing: the agent will not take us back, so
//!   stop the services and exit.
//! * SHUTDOWN or SIGTERM: stop every service within the shutdown grace period,
//!   report TASK_KILLED, wait for the acknowledgements while time remains, exit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use executor_protocol::{
    ExecutorMessage, Outcome, RefusalKind, Reply, Request, SchedulerMessage, ServiceState,
    TaskDocument,
};
use mesos_proto::v1::executor::{Event, event};
use mesos_proto::v1::framework_info::capability;
use mesos_proto::v1::{ExecutorId, FrameworkId, TaskId, TaskInfo, TaskState, task_status::Reason};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::agent::{Agent, EventStream};
use crate::artifact::{FetchPolicy, Fetcher, LazyClient};
use crate::config::Config;
use crate::error::Error;
use crate::service::{self, Environment};
use crate::task::{self, Output, TaskCommand, TaskContext};
use crate::updates::{Identity, StatusChange, Updates};

/// First pause before re-subscribing; doubles up to the configured maximum.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// How long the first subscription may take before we give up (the agent's
/// default registration timeout is one minute).
const FIRST_SUBSCRIBE_WINDOW: Duration = Duration::from_secs(60);
/// Kept from the shutdown grace period to report and exit before the agent kills us.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(500);

/// How the executor ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// All tasks ended and their updates were acknowledged.
    Done,
    /// SHUTDOWN (or SIGTERM) handled.
    Shutdown,
    /// The agent could not be reached in time; services were stopped.
    AgentLost(String),
}

struct TaskEntry {
    commands: mpsc::UnboundedSender<TaskCommand>,
    health: watch::Receiver<executor_protocol::Health>,
    document: Arc<TaskDocument>,
    done: bool,
    /// TASK_KILLING was reported.
    killing: bool,
}

/// The executor's state.
pub struct Executor {
    config: Config,
    agent: Agent,
    identity: Identity,
    fetcher: Fetcher,
    http: LazyClient,
    updates: Updates,
    tasks: HashMap<String, TaskEntry>,
    /// The most recently launched task, the default target of requests.
    latest: Option<String>,
    out_tx: mpsc::UnboundedSender<Output>,
    out_rx: mpsc::UnboundedReceiver<Output>,
    subscribed: bool,
    ever_subscribed: bool,
    /// The agent cannot be reached any more; nothing is reported.
    agent_gone: bool,
    /// The framework understands TASK_KILLING (its TASK_KILLING_STATE capability).
    task_killing: bool,
    /// Calls waiting for the sender (started on first use).
    outbox: Option<mpsc::UnboundedSender<mesos_proto::v1::executor::Call>>,
    stopping: Option<(Instant, Exit)>,
}

impl Executor {
    /// An executor for `config`.
    pub fn new(config: Config) -> Result<Executor, Error> {
        let agent = Agent::new(config.agent_url.clone(), config.auth_token.clone())?;
        let fetcher = Fetcher::new(config.artifact_cache.clone(), FetchPolicy::default());
        let http = LazyClient::new(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
        });
        let identity = Identity {
            framework_id: FrameworkId {
                value: config.framework_id.clone(),
            },
            executor_id: ExecutorId {
                value: config.executor_id.clone(),
            },
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        Ok(Executor {
            config,
            agent,
            identity,
            fetcher,
            http,
            updates: Updates::default(),
            tasks: HashMap::new(),
            latest: None,
            out_tx,
            out_rx,
            subscribed: false,
            ever_subscribed: false,
            agent_gone: false,
            task_killing: false,
            outbox: None,
            stopping: None,
        })
    }

    /// Runs until every task ended, SHUTDOWN, or the agent is gone for good.
    pub async fn run(mut self) -> Exit {
        let mut stream: Option<EventStream> = None;
        let mut backoff = BACKOFF_INITIAL;
        let mut next_attempt = Instant::now();
        let mut lost_since = Instant::now();
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();

        let exit = loop {
            if let Some(exit) = self.finished() {
                break exit;
            }
            let resend_at = self
                .subscribed
                .then(|| self.updates.next_due(self.config.update_retry_interval))
                .flatten()
                .map(Instant::from_std);
            let stop_deadline = self.stopping.as_ref().map(|(d, _)| *d);
            let reconnect = stream.is_none() && !self.agent_gone;
            let mut lost = false;
            tokio::select! {
                event = next_event(&mut stream), if stream.is_some() => match event {
                    Some(Ok(event)) => lost = !self.handle_event(event),
                    Some(Err(e)) => {
                        warn!(error = %e, "agent event stream failed");
                        lost = true;
                    }
                    None => {
                        warn!("agent closed the event stream");
                        lost = true;
                    }
                },
                () = tokio::time::sleep_until(next_attempt), if reconnect => {
                    let window = if self.ever_subscribed {
                        self.config.recovery_timeout
                    } else {
                        FIRST_SUBSCRIBE_WINDOW
                    };
                    if lost_since.elapsed() > window {
                        self.agent_lost(format!("no connection to the agent for {window:?}"));
                        continue;
                    }
                    let call = self.identity.subscribe(&self.updates);
                    match self.agent.subscribe(&call).await {
                        Ok(s) => {
                            info!(
                                url = %self.agent.url(),
                                unacknowledged_updates = self.updates.unacked().count(),
                                unacknowledged_tasks = self.updates.unacked_tasks().count(),
                                "subscribe accepted"
                            );
                            stream = Some(s);
                            backoff = BACKOFF_INITIAL;
                        }
                        Err(e) => {
                            warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "subscribe failed");
                            next_attempt = Instant::now() + backoff;
                            backoff = (backoff * 2).min(self.config.subscription_backoff_max);
                        }
                    }
                }
                Some(output) = self.out_rx.recv() => self.handle_output(output),
                () = tokio::time::sleep_until(resend_at.unwrap_or_else(Instant::now)), if resend_at.is_some() => {
                    self.send_due();
                }
                () = tokio::time::sleep_until(stop_deadline.unwrap_or_else(Instant::now)), if stop_deadline.is_some() => {
                    warn!("stop deadline reached; exiting");
                    if let Some((_, exit)) = self.stopping.take() {
                        break exit;
                    }
                }
                Some(()) = recv_signal(&mut sigterm) => {
                    info!("SIGTERM: stopping services");
                    self.stop_all(Some(self.config.shutdown_grace_period), Exit::Shutdown);
                }
            }
            if lost {
                stream = None;
                if std::mem::replace(&mut self.subscribed, false) {
                    lost_since = Instant::now();
                }
                if self.ever_subscribed && !self.config.checkpoint {
                    self.agent_lost(
                        "agent connection lost and the framework does not checkpoint".into(),
                    );
                } else {
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(self.config.subscription_backoff_max);
                }
            }
        };
        // Whatever still runs (a deadline passed) must not outlive us.
        for entry in self.tasks.values() {
            if let Some(pid) = entry.health.borrow().pid {
                service::kill_group(pid);
            }
        }
        exit
    }

    /// The agent is gone for good: stop the services, report to nobody.
    fn agent_lost(&mut self, why: String) {
        error!(reason = %why, "giving up on the agent; stopping services");
        self.agent_gone = true;
        self.updates = Updates::default();
        self.stop_all(
            Some(self.config.shutdown_grace_period),
            Exit::AgentLost(why),
        );
    }

    /// The exit, once there is nothing left to do.
    fn finished(&mut self) -> Option<Exit> {
        let live = self.tasks.values().any(|t| !t.done);
        if live || !self.updates.is_empty() {
            return None;
        }
        if let Some((_, exit)) = self.stopping.take() {
            return Some(exit);
        }
        (!self.tasks.is_empty()).then_some(Exit::Done)
    }

    /// Handles one event; returns false when the stream must be dropped.
    fn handle_event(&mut self, event: Event) -> bool {
        let kind = event
            .r#type
            .and_then(|t| event::Type::try_from(t).ok())
            .unwrap_or(event::Type::Unknown);
        debug!(event = kind.as_str_name(), "agent event");
        match kind {
            event::Type::Subscribed => {
                let agent = event
                    .subscribed
                    .as_ref()
                    .map(|s| s.agent_info.hostname.clone())
                    .unwrap_or_default();
                self.task_killing = event.subscribed.as_ref().is_some_and(|s| {
                    s.framework_info
                        .capabilities
                        .iter()
                        .any(|c| c.r#type == Some(capability::Type::TaskKillingState as i32))
                });
                info!(agent = %agent, task_killing = self.task_killing, "subscribed");
                self.subscribed = true;
                self.ever_subscribed = true;
                // The agent de-duplicates by uuid, so everything goes out again.
                self.updates.mark_unsent();
                self.send_due();
            }
            event::Type::Launch => {
                if let Some(launch) = event.launch {
                    self.launch(launch.task);
                }
            }
            event::Type::LaunchGroup => {
                if let Some(group) = event.launch_group {
                    for task in group.task_group.tasks {
                        self.launch(task);
                    }
                }
            }
            event::Type::Kill => {
                if let Some(kill) = event.kill {
                    let grace = kill
                        .kill_policy
                        .and_then(|p| p.grace_period)
                        .map(|d| duration_from_nanos(d.nanoseconds));
                    self.kill(&kill.task_id, grace, None);
                }
            }
            event::Type::Acknowledged => {
                if let Some(ack) = event.acknowledged {
                    let matched = self.updates.acknowledged(&ack.task_id, &ack.uuid);
                    debug!(task_id = %ack.task_id.value, matched, "update acknowledged");
                }
            }
            event::Type::Message => {
                if let Some(message) = event.message {
                    self.answer(&message.data);
                }
            }
            event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                warn!(%message, "ERROR event from the agent; re-subscribing");
                return false;
            }
            event::Type::Shutdown => {
                info!("SHUTDOWN: stopping services");
                self.stop_all(Some(self.config.shutdown_grace_period), Exit::Shutdown);
            }
            event::Type::Heartbeat | event::Type::Unknown => {}
        }
        true
    }

    fn launch(&mut self, task: TaskInfo) {
        let id = task.task_id.value.clone();
        if self.tasks.contains_key(&id) {
            warn!(task_id = %id, "LAUNCH of a known task ignored");
            return;
        }
        info!(task_id = %id, "launch");
        self.updates.launched(task.clone());
        let (health_tx, health_rx) = watch::channel(task::initial_health(&task.task_id));
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let document = match TaskDocument::from_json(task.data.as_deref().unwrap_or_default()) {
            Ok(doc) => Arc::new(doc),
            Err(e) => {
                let e = Error::TaskDocument(e);
                warn!(task_id = %id, error = %e, "invalid task");
                let mut change =
                    StatusChange::new(task.task_id.clone(), TaskState::TaskFailed, e.to_string());
                change.reason = Some(Reason::TaskInvalid);
                self.report(change);
                health_tx.send_modify(|h| {
                    h.state = ServiceState::Exited;
                    h.details = e.to_string();
                });
                self.tasks.insert(
                    id.clone(),
                    TaskEntry {
                        commands: cmd_tx,
                        health: health_rx,
                        document: Arc::new(TaskDocument::new(executor_protocol::Command::Shell(
                            "true".into(),
                        ))),
                        done: true,
                        killing: false,
                    },
                );
                return;
            }
        };
        let context = TaskContext {
            task_id: task.task_id.clone(),
            document: document.clone(),
            kill_policy_grace: task
                .kill_policy
                .as_ref()
                .and_then(|p| p.grace_period.as_ref())
                .map(|d| duration_from_nanos(d.nanoseconds)),
            sandbox: self.config.sandbox.clone(),
            fetcher: self.fetcher.clone(),
            http: self.http.clone(),
            out: self.out_tx.clone(),
            health: health_tx,
        };
        tokio::spawn(task::run(context, cmd_rx));
        self.tasks.insert(
            id.clone(),
            TaskEntry {
                commands: cmd_tx,
                health: health_rx,
                document,
                done: false,
                killing: false,
            },
        );
        self.latest = Some(id);
    }

    fn kill(&mut self, task_id: &TaskId, grace: Option<Duration>, budget: Option<Duration>) {
        let task_killing = self.task_killing;
        match self.tasks.get_mut(&task_id.value) {
            Some(entry) if !entry.done => {
                info!(task_id = %task_id.value, grace_ms = grace.map(|g| g.as_millis() as u64), "kill");
                let _ = entry.commands.send(TaskCommand::Kill { grace, budget });
                // As Mesos' own executors: say the kill began, once, to
                // frameworks that understand it.
                if task_killing && !std::mem::replace(&mut entry.killing, true) {
                    self.report(StatusChange::new(
                        task_id.clone(),
                        TaskState::TaskKilling,
                        "stopping the service",
                    ));
                }
            }
            Some(_) => debug!(task_id = %task_id.value, "KILL of an ended task ignored"),
            None => {
                // Unknown to us (e.g. killed before LAUNCH arrived): say so, so
                // that the scheduler is not left waiting.
                warn!(task_id = %task_id.value, "KILL of an unknown task");
                self.report(StatusChange::new(
                    task_id.clone(),
                    TaskState::TaskLost,
                    "the executor does not know this task",
                ));
            }
        }
    }

    fn stop_all(&mut self, shutdown_grace: Option<Duration>, exit: Exit) {
        if self.stopping.is_some() {
            return;
        }
        let budget = shutdown_grace.map(|g| g.saturating_sub(SHUTDOWN_MARGIN));
        let ids: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| !t.done)
            .map(|(id, _)| TaskId { value: id.clone() })
            .collect();
        for id in ids {
            self.kill(&id, budget, budget);
        }
        let deadline = Instant::now() + shutdown_grace.unwrap_or(Duration::from_secs(5));
        self.stopping = Some((deadline, exit));
    }

    fn handle_output(&mut self, output: Output) {
        match output {
            Output::Status(change) => self.report(change),
            Output::Message(message) => self.send_message(&message),
            Output::Done(task_id) => {
                if let Some(entry) = self.tasks.get_mut(&task_id.value) {
                    entry.done = true;
                }
            }
        }
    }

    fn report(&mut self, change: StatusChange) {
        info!(
            task_id = %change.task_id.value,
            state = change.state.as_str_name(),
            message = change.message.as_deref().unwrap_or(""),
            "status update"
        );
        if self.agent_gone {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.updates.add(self.identity.status(change, now));
        if self.subscribed {
            self.send_due();
        }
    }

    fn send_due(&mut self) {
        if !self.subscribed {
            return;
        }
        let due = self
            .updates
            .due(Instant::now().into_std(), self.config.update_retry_interval);
        for status in due {
            self.post(self.identity.update(status));
        }
    }

    /// Queues a call for the agent. One sender posts them one after the
    /// other, so that the agent sees a task's updates in the order they
    /// were made (TASK_KILLING before TASK_KILLED).
    fn post(&mut self, call: mesos_proto::v1::executor::Call) {
        let outbox = self.outbox.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<mesos_proto::v1::executor::Call>();
            let agent = self.agent.clone();
            tokio::spawn(async move {
                while let Some(call) = rx.recv().await {
                    if let Err(e) = agent.post(&call).await {
                        warn!(error = %e, "call not delivered; updates are resent, messages dropped");
                    }
                }
            });
            tx
        });
        let _ = outbox.send(call);
    }

    fn send_message(&mut self, message: &ExecutorMessage) {
        if !self.subscribed {
            debug!("not subscribed; framework message dropped");
            return;
        }
        let call = self.identity.message(message.to_json());
        self.post(call);
    }

    /// Answers one framework message from the scheduler.
    fn answer(&mut self, data: &[u8]) {
        let request = match SchedulerMessage::from_json(data) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "unreadable framework message");
                let id = SchedulerMessage::request_id_of(data).unwrap_or_default();
                self.send_message(&ExecutorMessage::refusal(
                    id,
                    RefusalKind::BadRequest,
                    e.to_string(),
                ));
                return;
            }
        };
        let id = request.request_id.clone();
        debug!(request_id = %id, "framework message");
        match request.request {
            Request::Status {} => {
                let mut tasks: Vec<_> = self
                    .tasks
                    .values()
                    .map(|t| {
                        let mut h = t.health.borrow().clone();
                        if let Some(pid) = h.pid {
                            h.rss_bytes = task::rss_bytes(pid);
                        }
                        h
                    })
                    .collect();
                tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
                self.send_message(&ExecutorMessage::response(
                    id,
                    Outcome::Ok(Reply::Status { tasks }),
                ));
            }
            Request::LogTail {
                stream,
                lines,
                task_id,
            } => {
                let Some(task) = self.target(task_id.as_deref()) else {
                    self.send_message(&ExecutorMessage::refusal(
                        id,
                        RefusalKind::NoTask,
                        "no such task on this executor",
                    ));
                    return;
                };
                let path = task::log_file(&self.config.sandbox, &task, stream);
                let reply = match crate::logs::tail(&path, lines as usize) {
                    Ok(lines) => {
                        ExecutorMessage::response(id, Outcome::Ok(Reply::LogTail { stream, lines }))
                    }
                    Err(e) => ExecutorMessage::refusal(id, RefusalKind::Failed, e.to_string()),
                };
                self.send_message(&reply);
            }
            Request::Admin {
                name,
                args,
                task_id,
            } => self.admin(id, name, args, task_id),
        }
    }

    /// The task a request is about: the named one, or the latest.
    fn target(&self, task_id: Option<&str>) -> Option<String> {
        match task_id {
            Some(id) => self.tasks.contains_key(id).then(|| id.to_owned()),
            None => self.latest.clone(),
        }
    }

    fn admin(&mut self, id: String, name: String, args: Vec<String>, task_id: Option<String>) {
        let Some(task) = self.target(task_id.as_deref()) else {
            self.send_message(&ExecutorMessage::refusal(
                id,
                RefusalKind::NoTask,
                "no such task on this executor",
            ));
            return;
        };
        let Some(entry) = self.tasks.get(&task) else {
            return;
        };
        let document = entry.document.clone();
        let Some(command) = document.admin_commands.get(&name) else {
            let known: Vec<&str> = document.admin_commands.keys().map(String::as_str).collect();
            self.send_message(&ExecutorMessage::refusal(
                id,
                RefusalKind::NotAllowed,
                format!(
                    "\"{name}\" is not an admin command of this task (allowed: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
            return;
        };
        if !args.is_empty() && !command.accepts_args {
            self.send_message(&ExecutorMessage::refusal(
                id,
                RefusalKind::NotAllowed,
                format!("admin command \"{name}\" takes no arguments"),
            ));
            return;
        }
        let mut argv = command.argv.clone();
        argv.extend(args);
        let (program, rest) = match argv.split_first() {
            Some((p, r)) => (p.clone(), r.to_vec()),
            None => return,
        };
        let timeout = Duration::from_millis(command.timeout_ms);
        let env: Environment = task::environment(&document, &self.config.sandbox);
        let out = self.out_tx.clone();
        info!(task_id = %task, admin = %name, "running admin command");
        tokio::spawn(async move {
            let command = executor_protocol::Command::Exec {
                program,
                args: rest,
            };
            let reply = match service::run_helper(&env, &command, timeout, true).await {
                Ok(o) => ExecutorMessage::response(
                    id,
                    Outcome::Ok(Reply::Admin {
                        name,
                        exit_code: o.exit_code,
                        timed_out: o.timed_out,
                        stdout: o.stdout,
                        stderr: o.stderr,
                    }),
                ),
                Err(e) => ExecutorMessage::refusal(id, RefusalKind::Failed, e.to_string()),
            };
            let _ = out.send(Output::Message(reply));
        });
    }
}

async fn next_event(stream: &mut Option<EventStream>) -> Option<Result<Event, Error>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn recv_signal(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

fn duration_from_nanos(nanos: i64) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}
