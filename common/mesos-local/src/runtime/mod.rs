//! The I/O edge: one task owns the [`Core`] and turns HTTP requests, process
//! exits and timers into inputs, and [`Effect`]s into stream writes, process
//! launches and kills, and files.

pub mod containerizer;
pub mod fetcher;
pub mod http;
pub mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mesos_proto::ContentType;
use mesos_proto::v1::{executor, scheduler};
use tokio::sync::{mpsc, oneshot, watch};

use crate::core::{Core, Effect, Now, StreamId};
use crate::master::{CallError, CallOk, state_json};

/// The current time, read at the edge.
pub fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    }
}

/// A new stream's ID, Mesos stream UUID and event receiver.
pub type NewStream = (StreamId, String, mpsc::UnboundedReceiver<Bytes>);

/// Requests to the runtime task.
// Commands are moved once through the channel; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// A validated SUBSCRIBE.
    Subscribe {
        /// The payload.
        subscribe: scheduler::call::Subscribe,
        /// Negotiated event encoding.
        content_type: ContentType,
        /// The new stream.
        reply: oneshot::Sender<NewStream>,
    },
    /// A validated non-SUBSCRIBE scheduler call.
    SchedulerCall {
        /// The call.
        call: Box<scheduler::Call>,
        /// The `Mesos-Stream-Id` header.
        stream_uuid: Option<String>,
        /// The outcome.
        reply: oneshot::Sender<Result<CallOk, CallError>>,
    },
    /// A scheduler stream's body was dropped.
    SchedulerStreamClosed(StreamId),
    /// A validated executor call.
    ExecutorCall {
        /// Agent index.
        agent: usize,
        /// The call.
        call: Box<executor::Call>,
        /// Negotiated encoding for SUBSCRIBE.
        content_type: ContentType,
        /// The new stream for SUBSCRIBE, nothing for other calls.
        reply: oneshot::Sender<Result<Option<NewStream>, (u16, String)>>,
    },
    /// An executor stream's body was dropped.
    ExecutorStreamClosed {
        /// Agent index.
        agent: usize,
        /// The stream.
        stream: StreamId,
    },
    /// The containerizer started an executor.
    ContainerStarted {
        /// Agent index.
        agent: usize,
        /// Container ID.
        container: String,
        /// Process ID (also the process group ID).
        pid: u32,
    },
    /// Fetching or spawning failed.
    ContainerFailed {
        /// Agent index.
        agent: usize,
        /// Container ID.
        container: String,
        /// What went wrong.
        message: String,
    },
    /// The executor process ended.
    ContainerExited {
        /// Agent index.
        agent: usize,
        /// Container ID.
        container: String,
        /// Raw wait status.
        status: i32,
    },
    /// `/master/state` (or `/master/slaves` when `slaves`).
    State {
        /// Render `/master/slaves` instead.
        slaves: bool,
        /// The JSON.
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// A fault to inject or a query from the test API.
    Control(Control, oneshot::Sender<Result<ControlReply, String>>),
}

/// Test-API operations.
#[derive(Debug, Clone)]
pub enum Control {
    /// Close a framework's subscription stream.
    DropFrameworkStream(String),
    /// Elect a new master.
    FailOverMaster,
    /// Stop agent `n`.
    StopAgent(usize),
    /// Restart agent `n`.
    RestartAgent(usize),
    /// SIGKILL an executor's process group.
    KillExecutor {
        /// Framework ID.
        framework_id: String,
        /// Executor ID.
        executor_id: String,
    },
    /// Rescind an offer.
    RescindOffer(String),
    /// The ID of agent `n`.
    AgentId(usize),
    /// The master's ID.
    MasterId,
    /// Stop everything.
    Shutdown,
}

/// Replies of [`Control`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlReply {
    /// Done.
    Done,
    /// A value.
    Text(Option<String>),
}

struct Sink {
    tx: mpsc::UnboundedSender<Bytes>,
    content_type: ContentType,
}

/// A container's process as the runtime knows it, shared with its launch task.
#[derive(Debug, Default)]
pub struct Slot {
    /// Process (group) ID once spawned.
    pub pid: Option<u32>,
    /// Destroy was requested; a launch still fetching must not spawn.
    pub destroyed: bool,
    /// The process exited.
    pub exited: bool,
    /// The sandbox, once spawned (every process of the container carries it).
    pub sandbox: Option<std::path::PathBuf>,
}

/// Per-agent server control.
struct AgentServer {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
}

/// The runtime task's state.
pub struct Runtime {
    core: Core,
    streams: HashMap<StreamId, Sink>,
    next_stream: StreamId,
    containers: HashMap<(usize, String), Arc<Mutex<Slot>>>,
    tx: mpsc::UnboundedSender<Command>,
    http: reqwest::Client,
    state_dir: PathBuf,
    agents: Vec<AgentServer>,
    master_stop: Option<watch::Sender<bool>>,
}

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    // Slots hold plain flags; a panic elsewhere cannot leave them inconsistent.
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Runtime {
    /// Wraps a core whose HTTP servers are already listening.
    pub(crate) fn new(
        core: Core,
        http: reqwest::Client,
        tx: mpsc::UnboundedSender<Command>,
        state_dir: PathBuf,
        agent_addrs: Vec<SocketAddr>,
        agent_stops: Vec<watch::Sender<bool>>,
        master_stop: watch::Sender<bool>,
    ) -> Runtime {
        Runtime {
            core,
            streams: HashMap::new(),
            next_stream: 1,
            containers: HashMap::new(),
            tx,
            http,
            state_dir,
            agents: agent_addrs
                .into_iter()
                .zip(agent_stops)
                .map(|(addr, stop)| AgentServer {
                    addr,
                    stop: Some(stop),
                })
                .collect(),
            master_stop: Some(master_stop),
        }
    }

    /// Runs until shut down; `initial` are the effects of building the core.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
        initial: Vec<Effect>,
    ) {
        self.dispatch(initial);
        loop {
            let wake = self.core.next_wakeup();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    if !self.handle(cmd).await {
                        break;
                    }
                }
                () = sleep => {
                    let effects = self.core.tick(now());
                    self.dispatch(effects);
                }
            }
        }
        self.stop_everything().await;
    }

    async fn stop_everything(&mut self) {
        self.streams.clear();
        if let Some(stop) = self.master_stop.take() {
            let _ = stop.send(true);
        }
        for agent in &mut self.agents {
            if let Some(stop) = agent.stop.take() {
                let _ = stop.send(true);
            }
        }
        let slots: Vec<Arc<Mutex<Slot>>> = self.containers.values().cloned().collect();
        for slot in &slots {
            let mut slot = lock(slot);
            slot.destroyed = true;
            containerizer::destroy(&slot);
        }
        // Give the waiters a moment to reap, so no zombie outlives the cluster.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while Instant::now() < deadline
            && slots.iter().any(|s| {
                let s = lock(s);
                s.pid.is_some() && !s.exited
            })
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tracing::info!("local cluster stopped");
    }

    fn open_stream(&mut self, content_type: ContentType) -> NewStream {
        let id = self.next_stream;
        self.next_stream += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        self.streams.insert(id, Sink { tx, content_type });
        (id, uuid::Uuid::new_v4().to_string(), rx)
    }

    async fn handle(&mut self, cmd: Command) -> bool {
        let t = now();
        match cmd {
            Command::Subscribe {
                subscribe,
                content_type,
                reply,
            } => {
                let (stream, uuid, rx) = self.open_stream(content_type);
                let stream_uuid = uuid.clone();
                let effects = self.core.run(t, |core, out| {
                    core.master
                        .subscribe(subscribe, stream, stream_uuid, t, out);
                });
                self.dispatch(effects);
                let _ = reply.send((stream, uuid, rx));
            }
            Command::SchedulerCall {
                call,
                stream_uuid,
                reply,
            } => {
                let mut result = Ok(CallOk::Accepted);
                let effects = self.core.run(t, |core, out| {
                    result = core.master.call(*call, stream_uuid.as_deref(), t, out);
                });
                self.dispatch(effects);
                let _ = reply.send(result);
            }
            Command::SchedulerStreamClosed(stream) => {
                self.streams.remove(&stream);
                let effects = self
                    .core
                    .run(t, |core, out| core.master.stream_closed(stream, t, out));
                self.dispatch(effects);
            }
            Command::ExecutorCall {
                agent,
                call,
                content_type,
                reply,
            } => {
                let result = self.executor_call(agent, *call, content_type, t);
                let _ = reply.send(result);
            }
            Command::ExecutorStreamClosed { agent, stream } => {
                self.streams.remove(&stream);
                let effects = self.core.run(t, |core, out| {
                    if let Some(a) = core.agents.get_mut(agent) {
                        a.executor_stream_closed(stream, t, out);
                    }
                });
                self.dispatch(effects);
            }
            Command::ContainerStarted {
                agent,
                container,
                pid,
            } => {
                if let Some(a) = self.core.agents.get_mut(agent) {
                    a.container_started(&container, pid);
                }
            }
            Command::ContainerFailed {
                agent,
                container,
                message,
            } => {
                tracing::warn!(agent, %container, %message, "container launch failed");
                let effects = self.core.run(t, |core, out| {
                    if let Some(a) = core.agents.get_mut(agent) {
                        a.container_failed(&container, &message, t, out);
                    }
                });
                self.dispatch(effects);
            }
            Command::ContainerExited {
                agent,
                container,
                status,
            } => {
                let effects = self.core.run(t, |core, out| {
                    if let Some(a) = core.agents.get_mut(agent) {
                        a.container_exited(&container, status, t, out);
                    }
                });
                self.dispatch(effects);
            }
            Command::State { slaves, reply } => {
                let value = if slaves {
                    state_json::render_slaves(&self.core.master)
                } else {
                    state_json::render(&self.core.master, t.wall)
                };
                let _ = reply.send(value);
            }
            Command::Control(Control::Shutdown, reply) => {
                let _ = reply.send(Ok(ControlReply::Done));
                return false;
            }
            Command::Control(control, reply) => {
                let result = self.control(control, t).await;
                let _ = reply.send(result);
            }
        }
        true
    }

    fn executor_call(
        &mut self,
        agent: usize,
        call: executor::Call,
        content_type: ContentType,
        t: Now,
    ) -> Result<Option<NewStream>, (u16, String)> {
        let framework_id = call.framework_id.value.clone();
        let executor_id = call.executor_id.value.clone();
        let kind = call
            .r#type
            .and_then(|k| executor::call::Type::try_from(k).ok())
            .unwrap_or(executor::call::Type::Unknown);
        let Some(a) = self.core.agents.get(agent) else {
            return Err((503, "Agent has not finished recovery".into()));
        };
        if !a.is_running() {
            return Err((503, "Agent has not finished recovery".into()));
        }
        a.check_executor(&framework_id, &executor_id)?;
        match kind {
            executor::call::Type::Subscribe => {
                let (stream, uuid, rx) = self.open_stream(content_type);
                let subscribe = call.subscribe.unwrap_or_default();
                let mut result = Ok(());
                let effects = self.core.run(t, |core, out| {
                    result = core.agents[agent].executor_subscribe(
                        &framework_id,
                        &executor_id,
                        subscribe,
                        stream,
                        t,
                        out,
                    );
                });
                self.dispatch(effects);
                match result {
                    Ok(()) => Ok(Some((stream, uuid, rx))),
                    Err(e) => {
                        self.streams.remove(&stream);
                        Err(e)
                    }
                }
            }
            executor::call::Type::Update => {
                let Some(update) = call.update else {
                    return Err((400, "Expecting 'update' to be present".into()));
                };
                let mut result = Ok(());
                let effects = self.core.run(t, |core, out| {
                    result = core.agents[agent].executor_update(
                        &framework_id,
                        &executor_id,
                        update.status,
                        t,
                        out,
                    );
                });
                self.dispatch(effects);
                result.map(|()| None)
            }
            executor::call::Type::Message => {
                let data = call.message.map(|m| m.data).unwrap_or_default();
                let mut result = Ok(());
                let effects = self.core.run(t, |core, out| {
                    result =
                        core.agents[agent].executor_message(&framework_id, &executor_id, data, out);
                });
                self.dispatch(effects);
                result.map(|()| None)
            }
            executor::call::Type::Heartbeat | executor::call::Type::Unknown => Ok(None),
        }
    }

    async fn control(&mut self, control: Control, t: Now) -> Result<ControlReply, String> {
        match control {
            Control::DropFrameworkStream(framework_id) => {
                let stream = self
                    .core
                    .master
                    .frameworks
                    .get(&framework_id)
                    .and_then(|f| f.subscription.as_ref())
                    .map(|s| s.stream)
                    .ok_or_else(|| {
                        format!("framework {framework_id} has no subscription stream")
                    })?;
                // Dropping the sender ends the body; its guard reports the disconnection.
                self.streams.remove(&stream);
                let effects = self
                    .core
                    .run(t, |core, out| core.master.stream_closed(stream, t, out));
                self.dispatch(effects);
                Ok(ControlReply::Done)
            }
            Control::FailOverMaster => {
                let effects = self
                    .core
                    .fail_over_master(uuid::Uuid::new_v4().to_string(), t);
                self.dispatch(effects);
                Ok(ControlReply::Done)
            }
            Control::StopAgent(n) => {
                let effects = self
                    .core
                    .stop_agent(n, t)
                    .ok_or_else(|| format!("there is no agent {n}"))?;
                self.dispatch(effects);
                if let Some(stop) = self.agents.get_mut(n).and_then(|a| a.stop.take()) {
                    let _ = stop.send(true);
                }
                Ok(ControlReply::Done)
            }
            Control::RestartAgent(n) => {
                let addr = self
                    .agents
                    .get(n)
                    .map(|a| a.addr)
                    .ok_or_else(|| format!("there is no agent {n}"))?;
                if self.agents[n].stop.is_none() {
                    let stop = http::serve_agent(addr, self.tx.clone(), n)
                        .await
                        .map_err(|e| e.to_string())?;
                    self.agents[n].stop = Some(stop);
                }
                let effects = self
                    .core
                    .restart_agent(n, t)
                    .ok_or_else(|| format!("there is no agent {n}"))?;
                self.dispatch(effects);
                Ok(ControlReply::Done)
            }
            Control::KillExecutor {
                framework_id,
                executor_id,
            } => {
                let found = self.core.agents.iter().enumerate().find_map(|(i, a)| {
                    a.executors()
                        .find(|(f, e, _)| *f == framework_id && *e == executor_id)
                        .map(|(_, _, ex)| (i, ex.container.clone()))
                });
                let (agent, container) = found.ok_or_else(|| {
                    format!("no executor {executor_id} of framework {framework_id}")
                })?;
                self.destroy(agent, &container);
                Ok(ControlReply::Done)
            }
            Control::RescindOffer(offer_id) => {
                let mut found = false;
                let effects = self.core.run(t, |core, out| {
                    found = core.master.rescind_offer(&offer_id, out)
                });
                self.dispatch(effects);
                if found {
                    Ok(ControlReply::Done)
                } else {
                    Err(format!("no outstanding offer {offer_id}"))
                }
            }
            Control::AgentId(n) => Ok(ControlReply::Text(
                self.core.agents.get(n).and_then(|a| a.agent_id()),
            )),
            Control::MasterId => Ok(ControlReply::Text(Some(self.core.master.id.clone()))),
            Control::Shutdown => Ok(ControlReply::Done),
        }
    }

    fn destroy(&mut self, agent: usize, container: &str) {
        if let Some(slot) = self.containers.get(&(agent, container.to_owned())) {
            let mut slot = lock(slot);
            slot.destroyed = true;
            containerizer::destroy(&slot);
        }
    }

    fn send_bytes(&mut self, stream: StreamId, encode: impl FnOnce(ContentType) -> Vec<u8>) {
        let Some(sink) = self.streams.get(&stream) else {
            return;
        };
        let payload = encode(sink.content_type);
        let record = mesos_recordio::encode(&payload);
        if sink.tx.send(record).is_err() {
            self.streams.remove(&stream);
        }
    }

    fn dispatch(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::SchedulerEvent { stream, event } => {
                    self.send_bytes(stream, |ct| mesos_proto::encode(&*event, ct));
                }
                Effect::ExecutorEvent { stream, event } => {
                    self.send_bytes(stream, |ct| mesos_proto::encode(&*event, ct));
                }
                Effect::CloseScheduler { stream } | Effect::CloseExecutor { stream } => {
                    self.streams.remove(&stream);
                }
                Effect::Launch(spec) => {
                    let slot = Arc::new(Mutex::new(Slot::default()));
                    self.containers
                        .insert((spec.agent, spec.container.clone()), slot.clone());
                    tokio::spawn(containerizer::launch(
                        *spec,
                        slot,
                        self.tx.clone(),
                        self.http.clone(),
                    ));
                }
                Effect::Destroy { agent, container } => self.destroy(agent, &container),
                Effect::AttachVolume {
                    sandbox,
                    container_path,
                    host_path,
                } => {
                    if let Err(e) =
                        containerizer::attach_volume(&sandbox, &container_path, &host_path)
                    {
                        tracing::warn!(sandbox = %sandbox.display(), %container_path, error = %e, "cannot attach volume");
                    }
                }
                Effect::CreateVolume { path } => {
                    if let Err(e) = std::fs::create_dir_all(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot create volume directory");
                    }
                }
                Effect::DeleteVolume { path } => {
                    if let Err(e) = std::fs::remove_dir_all(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot delete volume directory");
                    }
                }
                Effect::PersistAgent { agent, state } => {
                    let name = self
                        .core
                        .agents
                        .get(agent)
                        .map(|a| a.setup.name.clone())
                        .unwrap_or_default();
                    if let Err(e) = store::save(&self.state_dir, &name, &state) {
                        tracing::error!(agent = %name, error = %e, "cannot persist agent state");
                    }
                }
            }
        }
    }
}
