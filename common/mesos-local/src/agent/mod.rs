//! An agent: executors and their tasks, the executor API, the status update
//! manager (one update in flight per task, retried until acknowledged),
//! checkpointed reservations and volumes. A pure state machine driven by
//! [`crate::core::Core`]; processes are started and killed by the runtime
//! through [`Effect`]s.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mesos_proto::v1::{
    self, AgentId, AgentInfo, Attribute, ContainerId, ExecutorId, ExecutorInfo, FrameworkInfo,
    Resource, TaskId, TaskInfo, TaskState, TaskStatus,
    executor::{Event, call, event},
    framework_info::capability::Type as Cap,
    task_status::{Reason, Source},
};

use crate::core::{
    Effect, LaunchSpec, Now, Out, PersistedAgent, RegisteredTask, Registration, StreamId, Timer,
    ToAgent, ToMaster,
};
use crate::ids::format_duration;
use crate::master::{has_capability, is_terminal};
use crate::resources::{self, Resources};

/// Default PATH of executors, as the Mesos containerizer sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How one agent is set up.
#[derive(Debug, Clone)]
pub struct AgentSetup {
    /// Short name, e.g. `agent-1`; names its directory.
    pub name: String,
    /// Hostname in offers and AgentInfo.
    pub hostname: String,
    /// Listening IP (127.0.0.N).
    pub ip: String,
    /// Listening port.
    pub port: u16,
    /// Static resources.
    pub resources: Vec<Resource>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// The agent's work directory (sandboxes, volumes, fetcher cache).
    pub work_dir: PathBuf,
    /// `--executor_registration_timeout` (1 min).
    pub registration_timeout: Duration,
    /// `--executor_shutdown_grace_period` (5 s).
    pub shutdown_grace_period: Duration,
    /// `--executor_reregistration_timeout` (2 s).
    pub reregistration_timeout: Duration,
    /// `--recovery_timeout` (15 min).
    pub recovery_timeout: Duration,
    /// First status update retry (10 s); doubles up to `retry_max`.
    pub retry_min: Duration,
    /// Largest status update retry interval (10 min).
    pub retry_max: Duration,
    /// Seed for container IDs and status update uuids.
    pub seed: u64,
}

/// Lifecycle of an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorState {
    /// Launched, not yet subscribed.
    Registering,
    /// Subscribed (or waiting to re-subscribe after an agent restart).
    Running,
    /// SHUTDOWN sent; killed after the grace period.
    Terminating,
}

/// An executor on the agent.
#[derive(Debug, Clone)]
pub struct Executor {
    /// Its info.
    pub info: ExecutorInfo,
    /// Container ID.
    pub container: String,
    /// Lifecycle state.
    pub state: ExecutorState,
    /// Live subscription stream.
    pub stream: Option<StreamId>,
    /// Tasks waiting for the executor to subscribe.
    pub queued: Vec<TaskInfo>,
    /// Tasks delivered to the executor, with their latest state.
    pub launched: BTreeMap<String, (TaskInfo, TaskState)>,
    /// Sandbox directory.
    pub sandbox: PathBuf,
    /// How the executor's tasks end if it dies: (state, reason, message).
    pub pending_termination: Option<(TaskState, Reason, String)>,
    /// Process ID once started.
    pub pid: Option<u32>,
    /// Raw wait status of a process that ended while the agent was down;
    /// the agent reports it when it recovers.
    pub exited_while_down: Option<i32>,
}

#[derive(Debug, Clone)]
struct AgentFramework {
    info: FrameworkInfo,
    executors: BTreeMap<String, Executor>,
}

#[derive(Debug, Clone, Default)]
struct UpdateStream {
    pending: VecDeque<TaskStatus>,
    seen: BTreeSet<Vec<u8>>,
    backoff: Duration,
    latest: Option<TaskState>,
    /// When the head update is due again; a retry timer that fires earlier
    /// was superseded by a resend (framework re-subscribed, agent registered).
    retry_at: Option<Instant>,
}

/// Why an executor call was refused: HTTP status and message.
pub type ExecutorCallError = (u16, String);

/// Deterministic pseudo-random numbers (splitmix64), so the core stays pure.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uuid(&mut self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// One agent.
#[derive(Debug)]
pub struct Agent {
    index: usize,
    /// How it is set up.
    pub setup: AgentSetup,
    id: Option<String>,
    checkpointed: Resources,
    total: Resources,
    running: bool,
    registered: bool,
    frameworks: BTreeMap<String, AgentFramework>,
    streams: BTreeMap<(String, String), UpdateStream>,
    /// Containers recovered at the last restart, until the re-registration timeout.
    recovering: BTreeSet<String>,
    rng: Rng,
}

fn ev(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

impl Agent {
    /// An agent, not yet started, with what it persisted last time.
    pub fn new(index: usize, setup: AgentSetup, seed: PersistedAgent) -> Agent {
        let mut agent = Agent {
            index,
            rng: Rng(setup.seed ^ (index as u64).wrapping_mul(0x1234_5678_9abc_def1)),
            id: seed.agent_id,
            checkpointed: Resources::from_list(&seed.checkpointed),
            total: Resources::new(),
            running: false,
            registered: false,
            frameworks: BTreeMap::new(),
            streams: BTreeMap::new(),
            recovering: BTreeSet::new(),
            setup,
        };
        agent.recompute_total();
        agent
    }

    fn recompute_total(&mut self) {
        let mut total = Resources::from_list(&self.setup.resources);
        let mut kept = Resources::new();
        for r in self.checkpointed.iter() {
            let base = resources::to_static(r);
            if total.contains_one(&base) {
                total.subtract_one(&base);
                total.add(r);
                kept.add(r);
            } else {
                tracing::warn!(agent = %self.setup.name, "checkpointed resource no longer fits the agent's resources; dropped");
            }
        }
        self.checkpointed = kept;
        self.total = total;
    }

    /// The agent ID, once registered.
    pub fn agent_id(&self) -> Option<String> {
        self.id.clone()
    }

    /// Whether the agent process is up.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// `slave(1)@ip:port`.
    pub fn pid(&self) -> String {
        format!("slave(1)@{}:{}", self.setup.ip, self.setup.port)
    }

    /// Where a persistent volume of `role` lives.
    pub fn volume_path(&self, role: &str, persistence_id: &str) -> PathBuf {
        self.setup
            .work_dir
            .join("volumes/roles")
            .join(role.replace('/', " "))
            .join(persistence_id)
    }

    fn volume_dir(&self, r: &Resource) -> Option<(String, PathBuf)> {
        let disk = r.disk.as_ref()?;
        let persistence = disk.persistence.as_ref()?;
        let volume = disk.volume.as_ref()?;
        let role = resources::reservation_role(r).unwrap_or("*");
        Some((
            volume.container_path.clone(),
            self.volume_path(role, &persistence.id),
        ))
    }

    fn agent_info(&self) -> AgentInfo {
        AgentInfo {
            hostname: self.setup.hostname.clone(),
            resources: self.total.to_vec(),
            attributes: self.setup.attributes.clone(),
            id: self.id.clone().map(|value| AgentId { value }),
            port: Some(i32::from(self.setup.port)),
            domain: None,
        }
    }

    /// Starts the agent process: it registers with the master.
    pub fn start(&mut self, _now: Now, out: &mut Out) {
        self.running = true;
        self.register(out);
    }

    fn register(&mut self, out: &mut Out) {
        let mut frameworks = Vec::new();
        let mut executors = Vec::new();
        let mut tasks = Vec::new();
        for (fid, framework) in &self.frameworks {
            frameworks.push(framework.info.clone());
            for executor in framework.executors.values() {
                executors.push((fid.clone(), executor.info.clone()));
                for (task, state) in executor.launched.values() {
                    tasks.push(RegisteredTask {
                        framework_id: fid.clone(),
                        task: task.clone(),
                        state: *state,
                    });
                }
                for task in &executor.queued {
                    tasks.push(RegisteredTask {
                        framework_id: fid.clone(),
                        task: task.clone(),
                        state: TaskState::TaskStaging,
                    });
                }
            }
        }
        out.to_master(
            self.index,
            ToMaster::Register(Box::new(Registration {
                agent_id: self.id.clone(),
                hostname: self.setup.hostname.clone(),
                address: (self.setup.ip.clone(), self.setup.port),
                total: self.total.to_vec(),
                checkpointed: self.checkpointed.to_vec(),
                attributes: self.setup.attributes.clone(),
                frameworks,
                executors,
                tasks,
            })),
        );
    }

    fn persist(&self, out: &mut Out) {
        out.effect(Effect::PersistAgent {
            agent: self.index,
            state: PersistedAgent {
                agent_id: self.id.clone(),
                checkpointed: self.checkpointed.to_vec(),
            },
        });
    }

    /// A message from the master; dropped while the agent is down.
    pub fn receive(&mut self, msg: ToAgent, now: Now, out: &mut Out) {
        if !self.running {
            return;
        }
        match msg {
            ToAgent::Registered { agent_id } => {
                let changed = self.id.as_deref() != Some(&agent_id);
                self.id = Some(agent_id);
                self.registered = true;
                if changed {
                    self.persist(out);
                }
                // Mesos' status update manager resumes every stream at its
                // shortest retry interval.
                let retry_min = self.setup.retry_min;
                for stream in self.streams.values_mut() {
                    stream.backoff = retry_min;
                }
                let keys: Vec<(String, String)> = self.streams.keys().cloned().collect();
                for (fid, tid) in keys {
                    self.forward(&fid, &tid, now, out);
                }
                // Executors that ended while the agent was down: their live
                // tasks fail with REASON_EXECUTOR_TERMINATED, as when Mesos'
                // recovery finds their containers gone. The master also gets
                // the exit (Mesos' master forgets such executors on
                // re-registration instead).
                let ended: Vec<(String, i32)> = self
                    .executors()
                    .filter_map(|(_, _, e)| e.exited_while_down.map(|s| (e.container.clone(), s)))
                    .collect();
                for (container, status) in ended {
                    self.container_exited(&container, status, now, out);
                }
            }
            ToAgent::RunTask { framework, task } => self.run_task(framework, task, now, out),
            ToAgent::KillTask {
                framework_id,
                task_id,
                kill_policy,
            } => self.kill_task(&framework_id, &task_id, kill_policy, now, out),
            ToAgent::ShutdownExecutor {
                framework_id,
                executor_id,
            } => self.shutdown_executor(&framework_id, &executor_id, now, out),
            ToAgent::ShutdownFramework { framework_id } => {
                let ids: Vec<String> = self
                    .frameworks
                    .get(&framework_id)
                    .map(|f| f.executors.keys().cloned().collect())
                    .unwrap_or_default();
                for executor_id in ids {
                    self.shutdown_executor(&framework_id, &executor_id, now, out);
                }
                // Updates of a removed framework will never be acknowledged.
                self.streams.retain(|(f, _), _| f != &framework_id);
            }
            ToAgent::Acknowledge {
                framework_id,
                task_id,
                uuid,
            } => self.acknowledge(&framework_id, &task_id, &uuid, now, out),
            ToAgent::FrameworkMessage {
                framework_id,
                executor_id,
                data,
            } => {
                let stream = self
                    .frameworks
                    .get(&framework_id)
                    .and_then(|f| f.executors.get(&executor_id))
                    .and_then(|e| e.stream);
                match stream {
                    Some(stream) => out.executor_event(
                        stream,
                        Event {
                            message: Some(event::Message { data }),
                            ..ev(event::Type::Message)
                        },
                    ),
                    None => {
                        tracing::warn!(%framework_id, %executor_id, "dropping framework message for an executor that is not subscribed")
                    }
                }
            }
            ToAgent::CheckpointResources { checkpointed } => {
                let new = Resources::from_list(&checkpointed);
                let volumes = |bag: &Resources| -> Vec<Resource> {
                    bag.iter()
                        .filter(|r| resources::is_persistent_volume(r))
                        .cloned()
                        .collect()
                };
                let old_volumes = volumes(&self.checkpointed);
                let new_volumes = volumes(&new);
                for v in new_volumes.iter().filter(|v| !old_volumes.contains(v)) {
                    if let Some((_, path)) = self.volume_dir(v) {
                        out.effect(Effect::CreateVolume { path });
                    }
                }
                for v in old_volumes.iter().filter(|v| !new_volumes.contains(v)) {
                    if let Some((_, path)) = self.volume_dir(v) {
                        out.effect(Effect::DeleteVolume { path });
                    }
                }
                self.checkpointed = new;
                self.recompute_total();
                self.persist(out);
            }
            ToAgent::UpdateFramework { framework } => {
                let Some(fid) = framework.id.as_ref().map(|i| i.value.clone()) else {
                    return;
                };
                let Some(f) = self.frameworks.get_mut(&fid) else {
                    return;
                };
                f.info = framework;
                // As Mesos' agent: a framework that (re)subscribed gets every
                // pending update at once (of every framework, as Mesos'
                // status update manager resumes all streams), not after a
                // retry interval that may have grown to minutes.
                let retry_min = self.setup.retry_min;
                let pending: Vec<(String, String)> = self
                    .streams
                    .iter_mut()
                    .filter(|(_, stream)| !stream.pending.is_empty())
                    .map(|(key, stream)| {
                        stream.backoff = retry_min;
                        key.clone()
                    })
                    .collect();
                for (fid, tid) in pending {
                    self.forward(&fid, &tid, now, out);
                }
            }
        }
    }

    fn sandbox(&self, framework_id: &str, executor_id: &str, container: &str) -> PathBuf {
        self.setup
            .work_dir
            .join("slaves")
            .join(self.id.clone().unwrap_or_default())
            .join("frameworks")
            .join(framework_id)
            .join("executors")
            .join(executor_id)
            .join("runs")
            .join(container)
    }

    fn environment(
        &self,
        framework: &FrameworkInfo,
        executor: &ExecutorInfo,
        sandbox: &str,
    ) -> Vec<(String, String)> {
        let checkpoint = framework.checkpoint.unwrap_or(false);
        let grace = executor
            .shutdown_grace_period
            .as_ref()
            .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
            .unwrap_or(self.setup.shutdown_grace_period);
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("LIBPROCESS_IP".into(), self.setup.ip.clone());
        env.insert("LIBPROCESS_PORT".into(), "0".into());
        env.insert(
            "MESOS_FRAMEWORK_ID".into(),
            executor
                .framework_id
                .as_ref()
                .map(|f| f.value.clone())
                .unwrap_or_default(),
        );
        env.insert(
            "MESOS_EXECUTOR_ID".into(),
            executor.executor_id.value.clone(),
        );
        env.insert("MESOS_DIRECTORY".into(), sandbox.to_owned());
        env.insert("MESOS_SANDBOX".into(), sandbox.to_owned());
        env.insert("MESOS_SLAVE_ID".into(), self.id.clone().unwrap_or_default());
        env.insert("MESOS_SLAVE_PID".into(), self.pid());
        env.insert(
            "MESOS_AGENT_ENDPOINT".into(),
            format!("{}:{}", self.setup.ip, self.setup.port),
        );
        env.insert(
            "MESOS_CHECKPOINT".into(),
            if checkpoint { "1" } else { "0" }.into(),
        );
        env.insert("MESOS_HTTP_COMMAND_EXECUTOR".into(), "0".into());
        env.insert(
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".into(),
            format_duration(grace),
        );
        if checkpoint {
            env.insert(
                "MESOS_RECOVERY_TIMEOUT".into(),
                format_duration(self.setup.recovery_timeout),
            );
            env.insert(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX".into(),
                format_duration(self.setup.reregistration_timeout),
            );
        }
        if let Some(vars) = executor
            .command
            .as_ref()
            .and_then(|c| c.environment.as_ref())
        {
            for var in &vars.variables {
                env.insert(var.name.clone(), var.value.clone().unwrap_or_default());
            }
        }
        env.entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.to_owned());
        env.into_iter().collect()
    }

    fn run_task(&mut self, framework: FrameworkInfo, task: TaskInfo, now: Now, out: &mut Out) {
        let Some(fid) = framework.id.as_ref().map(|i| i.value.clone()) else {
            return;
        };
        let task_id = task.task_id.value.clone();
        let entry = self
            .frameworks
            .entry(fid.clone())
            .or_insert_with(|| AgentFramework {
                info: framework.clone(),
                executors: BTreeMap::new(),
            });
        entry.info = framework.clone();
        let Some(executor_info) = task.executor.clone() else {
            let status = self.agent_status(
                &task_id,
                TaskState::TaskFailed,
                Reason::ContainerLaunchFailed,
                "The local cluster runs custom executors only: command tasks are not supported",
                None,
                now,
            );
            self.status_update(&fid, status, now, out);
            return;
        };
        let executor_id = executor_info.executor_id.value.clone();
        let task_volumes: Vec<(String, PathBuf)> = task
            .resources
            .iter()
            .filter_map(|r| self.volume_dir(r))
            .collect();
        let existing = self
            .frameworks
            .get(&fid)
            .and_then(|f| f.executors.get(&executor_id))
            .map(|e| (e.state, e.stream, e.sandbox.clone()));
        match existing {
            Some((ExecutorState::Terminating, _, _)) => {
                let state = if has_capability(&framework, Cap::PartitionAware) {
                    TaskState::TaskDropped
                } else {
                    TaskState::TaskLost
                };
                let status = self.agent_status(
                    &task_id,
                    state,
                    Reason::ExecutorTerminated,
                    "Executor terminating",
                    Some(&executor_id),
                    now,
                );
                self.status_update(&fid, status, now, out);
            }
            Some((ExecutorState::Registering, _, _)) | Some((ExecutorState::Running, None, _)) => {
                if let Some(e) = self.executor_mut(&fid, &executor_id) {
                    e.queued.push(task);
                }
            }
            Some((ExecutorState::Running, Some(stream), sandbox)) => {
                for (container_path, host_path) in task_volumes {
                    out.effect(Effect::AttachVolume {
                        sandbox: sandbox.clone(),
                        container_path,
                        host_path,
                    });
                }
                if let Some(e) = self.executor_mut(&fid, &executor_id) {
                    e.launched
                        .insert(task_id, (task.clone(), TaskState::TaskStaging));
                }
                out.executor_event(
                    stream,
                    Event {
                        launch: Some(event::Launch { task }),
                        ..ev(event::Type::Launch)
                    },
                );
            }
            None => {
                let container = self.rng.uuid().to_string();
                let sandbox = self.sandbox(&fid, &executor_id, &container);
                let env = self.environment(&framework, &executor_info, &sandbox.to_string_lossy());
                let mut volumes: Vec<(String, PathBuf)> = executor_info
                    .resources
                    .iter()
                    .filter_map(|r| self.volume_dir(r))
                    .collect();
                volumes.extend(task_volumes);
                tracing::info!(agent = %self.setup.name, framework_id = %fid, %executor_id, %container, "launching executor");
                out.effect(Effect::Launch(Box::new(LaunchSpec {
                    agent: self.index,
                    container: container.clone(),
                    framework_id: fid.clone(),
                    executor: executor_info.clone(),
                    sandbox: sandbox.clone(),
                    cache_dir: self.setup.work_dir.join("fetch"),
                    env,
                    volumes,
                })));
                out.at(
                    now.mono + self.setup.registration_timeout,
                    Timer::RegistrationTimeout {
                        agent: self.index,
                        framework_id: fid.clone(),
                        executor_id: executor_id.clone(),
                        container: container.clone(),
                    },
                );
                if let Some(f) = self.frameworks.get_mut(&fid) {
                    f.executors.insert(
                        executor_id,
                        Executor {
                            info: executor_info,
                            container,
                            state: ExecutorState::Registering,
                            stream: None,
                            queued: vec![task],
                            launched: BTreeMap::new(),
                            sandbox,
                            pending_termination: None,
                            pid: None,
                            exited_while_down: None,
                        },
                    );
                }
            }
        }
    }

    fn executor_mut(&mut self, framework_id: &str, executor_id: &str) -> Option<&mut Executor> {
        self.frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
    }

    fn executor_of_task(&self, framework_id: &str, task_id: &str) -> Option<String> {
        self.frameworks.get(framework_id).and_then(|f| {
            f.executors
                .iter()
                .find(|(_, e)| {
                    e.launched.contains_key(task_id)
                        || e.queued.iter().any(|t| t.task_id.value == task_id)
                })
                .map(|(id, _)| id.clone())
        })
    }

    fn kill_task(
        &mut self,
        framework_id: &str,
        task_id: &str,
        kill_policy: Option<v1::KillPolicy>,
        now: Now,
        out: &mut Out,
    ) {
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| has_capability(&f.info, Cap::PartitionAware));
        let Some(executor_id) = self.executor_of_task(framework_id, task_id) else {
            let state = if partition_aware {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            let status = self.agent_status(
                task_id,
                state,
                Reason::ExecutorTerminated,
                "Cannot find executor",
                None,
                now,
            );
            self.status_update(framework_id, status, now, out);
            return;
        };
        let Some(executor) = self.executor_mut(framework_id, &executor_id) else {
            return;
        };
        if let Some(pos) = executor
            .queued
            .iter()
            .position(|t| t.task_id.value == task_id)
        {
            executor.queued.remove(pos);
            let empty = executor.queued.is_empty() && executor.launched.is_empty();
            let status = self.agent_status(
                task_id,
                TaskState::TaskKilled,
                Reason::TaskKilledDuringLaunch,
                "Killed before delivery to the executor",
                Some(&executor_id),
                now,
            );
            self.status_update(framework_id, status, now, out);
            if empty {
                self.shutdown_executor(framework_id, &executor_id, now, out);
            }
            return;
        }
        if let Some(stream) = executor.stream {
            out.executor_event(
                stream,
                Event {
                    kill: Some(event::Kill {
                        task_id: TaskId {
                            value: task_id.to_owned(),
                        },
                        kill_policy,
                    }),
                    ..ev(event::Type::Kill)
                },
            );
        }
    }

    fn shutdown_executor(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        now: Now,
        out: &mut Out,
    ) {
        let index = self.index;
        let default_grace = self.setup.shutdown_grace_period;
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        if executor.state == ExecutorState::Terminating {
            return;
        }
        tracing::info!(%framework_id, %executor_id, "shutting down executor");
        executor.state = ExecutorState::Terminating;
        if let Some(stream) = executor.stream {
            out.executor_event(stream, ev(event::Type::Shutdown));
        }
        let grace = executor
            .info
            .shutdown_grace_period
            .as_ref()
            .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
            .unwrap_or(default_grace);
        out.at(
            now.mono + grace,
            Timer::ShutdownGrace {
                agent: index,
                framework_id: framework_id.to_owned(),
                executor_id: executor_id.to_owned(),
                container: executor.container.clone(),
            },
        );
    }

    /// The shutdown grace period ran out: kill the container.
    pub fn shutdown_grace_over(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        container: &str,
        out: &mut Out,
    ) {
        let agent = self.index;
        if let Some(e) = self.executor_mut(framework_id, executor_id) {
            if e.container == container {
                out.effect(Effect::Destroy {
                    agent,
                    container: container.to_owned(),
                });
            }
        }
    }

    /// The executor did not subscribe in time.
    pub fn registration_timeout(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        container: &str,
        out: &mut Out,
    ) {
        let agent = self.index;
        let timeout = self.setup.registration_timeout;
        if let Some(e) = self.executor_mut(framework_id, executor_id) {
            if e.container == container && e.state == ExecutorState::Registering {
                tracing::warn!(%framework_id, %executor_id, "executor did not subscribe in time");
                e.state = ExecutorState::Terminating;
                e.pending_termination = Some((
                    TaskState::TaskFailed,
                    Reason::ExecutorRegistrationTimeout,
                    format!(
                        "Executor did not register within {}",
                        format_duration(timeout)
                    ),
                ));
                out.effect(Effect::Destroy {
                    agent,
                    container: container.to_owned(),
                });
            }
        }
    }

    /// After a restart, executors that did not re-subscribe are killed.
    pub fn reregistration_timeout(&mut self, _now: Now, out: &mut Out) {
        let agent = self.index;
        let timeout = self.setup.reregistration_timeout;
        let recovering = std::mem::take(&mut self.recovering);
        for framework in self.frameworks.values_mut() {
            // Mesos: the tasks were started but are gone now; frameworks that
            // are not partition-aware get TASK_LOST instead of TASK_GONE.
            let state = if has_capability(&framework.info, Cap::PartitionAware) {
                TaskState::TaskGone
            } else {
                TaskState::TaskLost
            };
            for executor in framework.executors.values_mut() {
                // Executors launched since the restart have their own
                // registration timeout.
                if executor.stream.is_none()
                    && executor.state != ExecutorState::Terminating
                    && recovering.contains(&executor.container)
                {
                    executor.state = ExecutorState::Terminating;
                    executor.pending_termination = Some((
                        state,
                        Reason::ExecutorReregistrationTimeout,
                        format!(
                            "Executor did not reregister within {}",
                            format_duration(timeout)
                        ),
                    ));
                    out.effect(Effect::Destroy {
                        agent,
                        container: executor.container.clone(),
                    });
                }
            }
        }
    }

    fn agent_status(
        &mut self,
        task_id: &str,
        state: TaskState,
        reason: Reason,
        message: &str,
        executor_id: Option<&str>,
        now: Now,
    ) -> TaskStatus {
        TaskStatus {
            task_id: TaskId {
                value: task_id.to_owned(),
            },
            state: state as i32,
            message: Some(message.to_owned()),
            agent_id: self.id.clone().map(|value| AgentId { value }),
            timestamp: Some(now.wall),
            executor_id: executor_id.map(|e| ExecutorId {
                value: e.to_owned(),
            }),
            source: Some(Source::Agent as i32),
            reason: Some(reason as i32),
            uuid: Some(self.rng.uuid().as_bytes().to_vec()),
            ..Default::default()
        }
    }

    /// Files a status update in its task's stream; returns false for a duplicate uuid.
    fn status_update(
        &mut self,
        framework_id: &str,
        status: TaskStatus,
        now: Now,
        out: &mut Out,
    ) -> bool {
        let key = (framework_id.to_owned(), status.task_id.value.clone());
        let retry_min = self.setup.retry_min;
        let stream = self
            .streams
            .entry(key.clone())
            .or_insert_with(|| UpdateStream {
                backoff: retry_min,
                ..Default::default()
            });
        let uuid = status.uuid.clone().unwrap_or_default();
        if !stream.seen.insert(uuid) {
            return false;
        }
        stream.latest = Some(status.state());
        stream.pending.push_back(status);
        if stream.pending.len() == 1 {
            self.forward(&key.0, &key.1, now, out);
        }
        true
    }

    fn forward(&mut self, framework_id: &str, task_id: &str, now: Now, out: &mut Out) {
        if !self.running || !self.registered {
            return;
        }
        let key = (framework_id.to_owned(), task_id.to_owned());
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        let Some(front) = stream.pending.front() else {
            return;
        };
        stream.retry_at = Some(now.mono + stream.backoff);
        let latest = stream.latest.unwrap_or(front.state());
        out.to_master(
            self.index,
            ToMaster::StatusUpdate {
                status: front.clone(),
                latest_state: latest,
                framework_id: framework_id.to_owned(),
            },
        );
        out.at(
            now.mono + stream.backoff,
            Timer::StatusRetry {
                agent: self.index,
                framework_id: framework_id.to_owned(),
                task_id: task_id.to_owned(),
                uuid: front.uuid.clone().unwrap_or_default(),
            },
        );
    }

    /// Re-sends an update that is still unacknowledged.
    pub fn retry_update(
        &mut self,
        framework_id: &str,
        task_id: &str,
        uuid: &[u8],
        now: Now,
        out: &mut Out,
    ) {
        let key = (framework_id.to_owned(), task_id.to_owned());
        let retry_max = self.setup.retry_max;
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        if stream.pending.front().and_then(|s| s.uuid.as_deref()) != Some(uuid)
            || stream.retry_at.is_some_and(|due| now.mono < due)
        {
            return;
        }
        stream.backoff = (stream.backoff * 2).min(retry_max);
        tracing::debug!(%framework_id, %task_id, "retrying status update");
        self.forward(framework_id, task_id, now, out);
    }

    fn acknowledge(
        &mut self,
        framework_id: &str,
        task_id: &str,
        uuid: &[u8],
        now: Now,
        out: &mut Out,
    ) {
        let key = (framework_id.to_owned(), task_id.to_owned());
        let retry_min = self.setup.retry_min;
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        if stream.pending.front().and_then(|s| s.uuid.as_deref()) != Some(uuid) {
            tracing::debug!(%framework_id, %task_id, "ignoring unexpected acknowledgement");
            return;
        }
        stream.pending.pop_front();
        stream.backoff = retry_min;
        if !stream.pending.is_empty() {
            self.forward(framework_id, task_id, now, out);
            return;
        }
        if stream.latest.is_some_and(is_terminal) {
            self.streams.remove(&key);
            if let Some(f) = self.frameworks.get_mut(framework_id) {
                for e in f.executors.values_mut() {
                    if e.launched
                        .get(task_id)
                        .is_some_and(|(_, s)| is_terminal(*s))
                    {
                        e.launched.remove(task_id);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ executor API

    /// SUBSCRIBE from an executor on a new stream.
    pub fn executor_subscribe(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        subscribe: call::Subscribe,
        stream: StreamId,
        now: Now,
        out: &mut Out,
    ) -> Result<(), ExecutorCallError> {
        let agent_info = self.agent_info();
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Err((400, "Framework cannot be found".into()));
        };
        let framework_info = framework.info.clone();
        let partition_aware = has_capability(&framework_info, Cap::PartitionAware);
        let Some(executor) = framework.executors.get_mut(executor_id) else {
            return Err((400, "Executor cannot be found".into()));
        };
        if let Some(old) = executor.stream.replace(stream) {
            out.effect(Effect::CloseExecutor { stream: old });
        }
        tracing::info!(%framework_id, %executor_id, "executor subscribed");
        out.executor_event(
            stream,
            Event {
                subscribed: Some(event::Subscribed {
                    executor_info: executor.info.clone(),
                    framework_info,
                    agent_info,
                    container_id: Some(ContainerId {
                        value: executor.container.clone(),
                        parent: None,
                    }),
                }),
                ..ev(event::Type::Subscribed)
            },
        );
        if executor.state == ExecutorState::Terminating {
            out.executor_event(stream, ev(event::Type::Shutdown));
            return Ok(());
        }
        executor.state = ExecutorState::Running;
        let queued = std::mem::take(&mut executor.queued);
        let container = executor.container.clone();
        self.recovering.remove(&container);
        // As Mesos: first the updates the executor holds (the update manager
        // drops duplicates), then tasks delivered before and still STAGING
        // that the executor does not list: it never got them (the agent
        // restarted before delivering), so they are dropped.
        for update in subscribe.unacknowledged_updates {
            let _ = self.executor_update(framework_id, executor_id, update.status, now, out);
        }
        let known: BTreeSet<&str> = subscribe
            .unacknowledged_tasks
            .iter()
            .map(|t| t.task_id.value.as_str())
            .collect();
        let unknown: Vec<String> = self
            .executor_mut(framework_id, executor_id)
            .map(|e| {
                e.launched
                    .iter()
                    .filter(|(id, (_, state))| {
                        *state == TaskState::TaskStaging && !known.contains(id.as_str())
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        let dropped = if partition_aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        for task_id in unknown {
            tracing::info!(%framework_id, %executor_id, %task_id, "STAGING task unknown to the re-subscribing executor");
            if let Some(e) = self.executor_mut(framework_id, executor_id)
                && let Some((_, state)) = e.launched.get_mut(&task_id)
            {
                *state = dropped;
            }
            let status = self.agent_status(
                &task_id,
                dropped,
                Reason::AgentRestarted,
                "Task launched during agent restart",
                Some(executor_id),
                now,
            );
            self.status_update(framework_id, status, now, out);
        }
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return Ok(());
        };
        for task in queued {
            executor.launched.insert(
                task.task_id.value.clone(),
                (task.clone(), TaskState::TaskStaging),
            );
            out.executor_event(
                stream,
                Event {
                    launch: Some(event::Launch { task }),
                    ..ev(event::Type::Launch)
                },
            );
        }
        Ok(())
    }

    /// UPDATE from an executor (already validated as a call).
    pub fn executor_update(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        mut status: TaskStatus,
        now: Now,
        out: &mut Out,
    ) -> Result<(), ExecutorCallError> {
        let agent_id = self.id.clone();
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return Err((400, "Executor cannot be found".into()));
        };
        if executor.state == ExecutorState::Registering {
            return Err((403, "Executor is not subscribed".into()));
        }
        let stream = executor.stream;
        let task_id = status.task_id.value.clone();
        if let Some((_, state)) = executor.launched.get_mut(&task_id) {
            *state = status.state();
        }
        status.agent_id = agent_id.map(|value| AgentId { value });
        status.container_status = Some(v1::ContainerStatus {
            executor_pid: executor.pid,
            container_id: Some(ContainerId {
                value: executor.container.clone(),
                parent: None,
            }),
        });
        if status.timestamp.is_none() {
            status.timestamp = Some(now.wall);
        }
        let uuid = status.uuid.clone().unwrap_or_default();
        self.status_update(framework_id, status, now, out);
        // ACKNOWLEDGED means "checkpointed by the agent", duplicates included.
        if let Some(stream) = stream {
            out.executor_event(
                stream,
                Event {
                    acknowledged: Some(event::Acknowledged {
                        task_id: TaskId { value: task_id },
                        uuid,
                    }),
                    ..ev(event::Type::Acknowledged)
                },
            );
        }
        Ok(())
    }

    /// MESSAGE from an executor.
    pub fn executor_message(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        data: Vec<u8>,
        out: &mut Out,
    ) -> Result<(), ExecutorCallError> {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return Err((400, "Framework cannot be found".into()));
        };
        let Some(executor) = framework.executors.get(executor_id) else {
            return Err((400, "Executor cannot be found".into()));
        };
        if executor.state == ExecutorState::Registering {
            return Err((403, "Executor is not subscribed".into()));
        }
        out.to_master(
            self.index,
            ToMaster::ExecutorMessage {
                framework_id: framework_id.to_owned(),
                executor_id: executor_id.to_owned(),
                data,
            },
        );
        Ok(())
    }

    /// Checks the framework and executor of a call exist (HTTP 400 otherwise).
    pub fn check_executor(
        &self,
        framework_id: &str,
        executor_id: &str,
    ) -> Result<(), ExecutorCallError> {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return Err((400, "Framework cannot be found".into()));
        };
        if !framework.executors.contains_key(executor_id) {
            return Err((400, "Executor cannot be found".into()));
        }
        Ok(())
    }

    /// An executor's subscription stream ended.
    pub fn executor_stream_closed(&mut self, stream: StreamId, now: Now, out: &mut Out) {
        let mut found = None;
        for (fid, framework) in &mut self.frameworks {
            for (eid, executor) in &mut framework.executors {
                if executor.stream == Some(stream) {
                    executor.stream = None;
                    let checkpoint = framework.info.checkpoint.unwrap_or(false);
                    found = Some((fid.clone(), eid.clone(), checkpoint));
                }
            }
        }
        if let Some((fid, eid, checkpoint)) = found {
            if !checkpoint && self.running {
                tracing::info!(framework_id = %fid, executor_id = %eid, "executor closed its subscription; shutting it down");
                self.shutdown_executor(&fid, &eid, now, out);
            }
        }
    }

    /// The runtime started the executor's process.
    pub fn container_started(&mut self, container: &str, pid: u32) {
        for framework in self.frameworks.values_mut() {
            for executor in framework.executors.values_mut() {
                if executor.container == container {
                    executor.pid = Some(pid);
                }
            }
        }
    }

    /// Fetching or starting the executor failed.
    pub fn container_failed(&mut self, container: &str, message: &str, now: Now, out: &mut Out) {
        for framework in self.frameworks.values_mut() {
            for executor in framework.executors.values_mut() {
                if executor.container == container {
                    executor.pending_termination = Some((
                        TaskState::TaskFailed,
                        Reason::ContainerLaunchFailed,
                        format!("Failed to launch container: {message}"),
                    ));
                }
            }
        }
        self.container_exited(container, -1, now, out);
    }

    /// The executor's process ended (`status` is the raw wait status).
    pub fn container_exited(&mut self, container: &str, status: i32, now: Now, out: &mut Out) {
        let mut found = None;
        for (fid, framework) in &self.frameworks {
            for (eid, executor) in &framework.executors {
                if executor.container == container {
                    found = Some((fid.clone(), eid.clone()));
                }
            }
        }
        let Some((fid, eid)) = found else {
            return;
        };
        if !self.running {
            // The agent learns of it when it recovers, as Mesos' containerizer
            // recovery finds the container gone.
            if let Some(e) = self.executor_mut(&fid, &eid) {
                if let Some(stream) = e.stream.take() {
                    out.effect(Effect::CloseExecutor { stream });
                }
                e.exited_while_down = Some(status);
            }
            out.effect(Effect::Destroy {
                agent: self.index,
                container: container.to_owned(),
            });
            return;
        }
        let Some(executor) = self
            .frameworks
            .get_mut(&fid)
            .and_then(|f| f.executors.remove(&eid))
        else {
            return;
        };
        tracing::info!(framework_id = %fid, executor_id = %eid, status, "executor exited");
        // Leftover processes of the container go with it.
        out.effect(Effect::Destroy {
            agent: self.index,
            container: container.to_owned(),
        });
        if let Some(stream) = executor.stream {
            out.effect(Effect::CloseExecutor { stream });
        }
        let (state, reason, message) = executor.pending_termination.clone().unwrap_or((
            TaskState::TaskFailed,
            Reason::ExecutorTerminated,
            "Executor terminated".to_owned(),
        ));
        let mut doomed: Vec<String> = executor
            .launched
            .iter()
            .filter(|(_, (_, s))| !is_terminal(*s))
            .map(|(id, _)| id.clone())
            .collect();
        doomed.extend(executor.queued.iter().map(|t| t.task_id.value.clone()));
        for task_id in doomed {
            let status = self.agent_status(&task_id, state, reason, &message, Some(&eid), now);
            self.status_update(&fid, status, now, out);
        }
        out.to_master(
            self.index,
            ToMaster::ExitedExecutor {
                framework_id: fid,
                executor_id: eid,
                status,
            },
        );
    }

    /// The process of the agent goes away: executor streams break; executors
    /// of frameworks without checkpointing die with it.
    pub fn stop(&mut self, out: &mut Out) {
        tracing::info!(agent = %self.setup.name, "agent stopping");
        self.running = false;
        self.registered = false;
        let agent = self.index;
        for framework in self.frameworks.values_mut() {
            let checkpoint = framework.info.checkpoint.unwrap_or(false);
            for executor in framework.executors.values_mut() {
                if let Some(stream) = executor.stream.take() {
                    out.effect(Effect::CloseExecutor { stream });
                }
                if !checkpoint {
                    out.effect(Effect::Destroy {
                        agent,
                        container: executor.container.clone(),
                    });
                }
            }
            if !checkpoint {
                framework.executors.clear();
            }
        }
        let checkpointing: BTreeSet<String> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.info.checkpoint.unwrap_or(false))
            .map(|(id, _)| id.clone())
            .collect();
        self.streams.retain(|(f, _), _| checkpointing.contains(f));
        self.frameworks.retain(|_, f| !f.executors.is_empty());
    }

    /// The agent process starts again and recovers its checkpointed state.
    pub fn restart(&mut self, now: Now, out: &mut Out) {
        if self.running {
            return;
        }
        tracing::info!(agent = %self.setup.name, "agent restarting");
        self.running = true;
        self.recovering = self
            .executors()
            .filter(|(_, _, e)| e.exited_while_down.is_none())
            .map(|(_, _, e)| e.container.clone())
            .collect();
        if !self.recovering.is_empty() {
            out.at(
                now.mono + self.setup.reregistration_timeout,
                Timer::ReregistrationTimeout { agent: self.index },
            );
        }
        self.register(out);
    }

    /// A new master was elected: register with it.
    pub fn master_changed(&mut self, _now: Now, out: &mut Out) {
        if !self.running {
            return;
        }
        self.registered = false;
        self.register(out);
    }

    /// The executor subscribed on `stream`, for looking up the executor of a closing stream.
    pub fn executors(&self) -> impl Iterator<Item = (&str, &str, &Executor)> {
        self.frameworks.iter().flat_map(|(fid, f)| {
            f.executors
                .iter()
                .map(move |(eid, e)| (fid.as_str(), eid.as_str(), e))
        })
    }

    /// Checkpointed resources (reservations and volumes).
    pub fn checkpointed(&self) -> &Resources {
        &self.checkpointed
    }
}
