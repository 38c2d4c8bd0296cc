//! The pure heart of the cluster: a master and its agents as state machines
//! that exchange messages in memory and emit [`Effect`]s for the runtime.
//!
//! Nothing here reads a clock, touches a socket or the disk: every input
//! carries [`Now`], and everything the outside world must do comes back as
//! data — events for subscription streams, processes to launch or kill,
//! files to write. Timers are data too: [`Core::next_wakeup`] says when to
//! call [`Core::tick`].

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mesos_proto::v1::{
    ExecutorInfo, FrameworkInfo, KillPolicy, Resource, TaskInfo, TaskState, TaskStatus, executor,
    scheduler,
};

use crate::agent::{Agent, AgentSetup};
use crate::master::{Master, MasterSettings};

/// Identifies one HTTP subscription stream (scheduler or executor) inside the runtime.
pub type StreamId = u64;

/// The current time, as a monotonic instant and as seconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For timers.
    pub mono: Instant,
    /// For timestamps in messages.
    pub wall: f64,
}

impl Now {
    /// The same moment plus `d`.
    pub fn plus(&self, d: Duration) -> Now {
        Now {
            mono: self.mono + d,
            wall: self.wall + d.as_secs_f64(),
        }
    }
}

/// What the runtime must do on behalf of the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send an event on a scheduler subscription stream.
    SchedulerEvent {
        /// The stream.
        stream: StreamId,
        /// The event.
        event: Box<scheduler::Event>,
    },
    /// End a scheduler subscription stream.
    CloseScheduler {
        /// The stream.
        stream: StreamId,
    },
    /// Send an event on an executor subscription stream.
    ExecutorEvent {
        /// The stream.
        stream: StreamId,
        /// The event.
        event: Box<executor::Event>,
    },
    /// End an executor subscription stream.
    CloseExecutor {
        /// The stream.
        stream: StreamId,
    },
    /// Fetch the executor's URIs into its sandbox and start it.
    Launch(Box<LaunchSpec>),
    /// Kill the container's whole process group (SIGKILL).
    Destroy {
        /// Agent index.
        agent: usize,
        /// Container ID.
        container: String,
    },
    /// Make a persistent volume visible in a sandbox (`sandbox/container_path` → `host_path`).
    AttachVolume {
        /// The executor's sandbox.
        sandbox: PathBuf,
        /// Relative path inside the sandbox.
        container_path: String,
        /// The volume's directory.
        host_path: PathBuf,
    },
    /// Create a volume's directory.
    CreateVolume {
        /// The directory.
        path: PathBuf,
    },
    /// Delete a destroyed volume's directory and data.
    DeleteVolume {
        /// The directory.
        path: PathBuf,
    },
    /// Persist an agent's ID and checkpointed resources (reservations and volumes).
    PersistAgent {
        /// Agent index.
        agent: usize,
        /// What to write.
        state: PersistedAgent,
    },
}

/// What survives a restart of the cluster for one agent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersistedAgent {
    /// The agent ID the master assigned.
    pub agent_id: Option<String>,
    /// Dynamic reservations and persistent volumes.
    pub checkpointed: Vec<Resource>,
}

/// Everything the containerizer needs to start one executor.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// Agent index.
    pub agent: usize,
    /// Container ID (a UUID).
    pub container: String,
    /// Framework ID.
    pub framework_id: String,
    /// The executor.
    pub executor: ExecutorInfo,
    /// Host path of the sandbox.
    pub sandbox: PathBuf,
    /// The agent's fetcher cache directory.
    pub cache_dir: PathBuf,
    /// The complete environment of the executor process.
    pub env: Vec<(String, String)>,
    /// Persistent volumes to link into the sandbox: (container_path, host_path).
    pub volumes: Vec<(String, PathBuf)>,
}

/// Messages from the master to an agent.
// Messages are built once and moved straight into the queue; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ToAgent {
    /// Registration accepted under this ID.
    Registered {
        /// The agent ID.
        agent_id: String,
    },
    /// Run a task (and its executor if not yet running).
    RunTask {
        /// The framework, for the executor's SUBSCRIBED event.
        framework: FrameworkInfo,
        /// The task, with `executor.framework_id` filled in.
        task: TaskInfo,
    },
    /// Kill a task.
    KillTask {
        /// Framework ID.
        framework_id: String,
        /// Task ID.
        task_id: String,
        /// Overrides the task's kill policy.
        kill_policy: Option<KillPolicy>,
    },
    /// Shut an executor down.
    ShutdownExecutor {
        /// Framework ID.
        framework_id: String,
        /// Executor ID.
        executor_id: String,
    },
    /// The framework is gone: shut down all its executors.
    ShutdownFramework {
        /// Framework ID.
        framework_id: String,
    },
    /// The scheduler acknowledged a status update.
    Acknowledge {
        /// Framework ID.
        framework_id: String,
        /// Task ID.
        task_id: String,
        /// The update's uuid.
        uuid: Vec<u8>,
    },
    /// Scheduler → executor data.
    FrameworkMessage {
        /// Framework ID.
        framework_id: String,
        /// Executor ID.
        executor_id: String,
        /// Payload.
        data: Vec<u8>,
    },
    /// The agent's reservations and volumes changed.
    CheckpointResources {
        /// The new complete set.
        checkpointed: Vec<Resource>,
    },
    /// A framework's info changed (re-subscription).
    UpdateFramework {
        /// The framework.
        framework: FrameworkInfo,
    },
}

/// Messages from an agent to the master.
// Messages are built once and moved straight into the queue; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ToMaster {
    /// (Re-)register; `agent_id` is set when the agent has one.
    Register(Box<Registration>),
    /// A status update to forward.
    StatusUpdate {
        /// The status, with uuid, agent and executor IDs.
        status: TaskStatus,
        /// The agent's latest known state of the task.
        latest_state: TaskState,
        /// Framework ID.
        framework_id: String,
    },
    /// An executor exited.
    ExitedExecutor {
        /// Framework ID.
        framework_id: String,
        /// Executor ID.
        executor_id: String,
        /// Raw wait status (-1 when unknown).
        status: i32,
    },
    /// Executor → scheduler data.
    ExecutorMessage {
        /// Framework ID.
        framework_id: String,
        /// Executor ID.
        executor_id: String,
        /// Payload.
        data: Vec<u8>,
    },
}

/// An agent's registration message.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The agent's ID when it has one.
    pub agent_id: Option<String>,
    /// Hostname.
    pub hostname: String,
    /// `ip:port` of its HTTP endpoint.
    pub address: (String, u16),
    /// Total resources, reservations and volumes applied.
    pub total: Vec<Resource>,
    /// Dynamic reservations and volumes.
    pub checkpointed: Vec<Resource>,
    /// Attributes.
    pub attributes: Vec<mesos_proto::v1::Attribute>,
    /// Frameworks with live executors (for re-registration).
    pub frameworks: Vec<FrameworkInfo>,
    /// Live executors: (framework ID, executor).
    pub executors: Vec<(String, ExecutorInfo)>,
    /// Live tasks: (framework ID, task, agent-side state, last status).
    pub tasks: Vec<RegisteredTask>,
}

/// A task as an agent reports it on re-registration.
#[derive(Debug, Clone)]
pub struct RegisteredTask {
    /// Framework ID.
    pub framework_id: String,
    /// The task.
    pub task: TaskInfo,
    /// Its latest state on the agent.
    pub state: TaskState,
}

/// Timers the core asks to be woken for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// Send a HEARTBEAT on a framework's stream.
    Heartbeat {
        /// Framework ID.
        framework_id: String,
        /// The stream it was scheduled for.
        stream: StreamId,
    },
    /// Run the periodic batch allocation (every allocation interval).
    Allocate,
    /// Run an allocation triggered by an event (a revive, a new agent, …).
    AllocateNow,
    /// Rescind an offer that was held too long.
    OfferTimeout {
        /// Offer ID.
        offer_id: String,
    },
    /// Remove a disconnected framework.
    FailoverTimeout {
        /// Framework ID.
        framework_id: String,
        /// Disconnection it was scheduled for.
        generation: u64,
    },
    /// Mark a disconnected agent unreachable.
    AgentRemoval {
        /// Agent ID.
        agent_id: String,
        /// Disconnection it was scheduled for.
        generation: u64,
    },
    /// Re-send an unacknowledged status update.
    StatusRetry {
        /// Agent index.
        agent: usize,
        /// Framework ID.
        framework_id: String,
        /// Task ID.
        task_id: String,
        /// The update's uuid.
        uuid: Vec<u8>,
    },
    /// Kill an executor that did not subscribe in time.
    RegistrationTimeout {
        /// Agent index.
        agent: usize,
        /// Framework ID.
        framework_id: String,
        /// Executor ID.
        executor_id: String,
        /// Container ID.
        container: String,
    },
    /// Kill an executor whose shutdown grace period is over.
    ShutdownGrace {
        /// Agent index.
        agent: usize,
        /// Framework ID.
        framework_id: String,
        /// Executor ID.
        executor_id: String,
        /// Container ID.
        container: String,
    },
    /// Kill executors of checkpointing frameworks that did not re-subscribe after an agent restart.
    ReregistrationTimeout {
        /// Agent index.
        agent: usize,
    },
}

/// Collects what one input produced: effects, timers and internal messages.
#[derive(Debug, Default)]
pub struct Out {
    /// Effects for the runtime.
    pub effects: Vec<Effect>,
    pub(crate) timers: Vec<(Instant, Timer)>,
    pub(crate) to_agents: VecDeque<(usize, ToAgent)>,
    pub(crate) to_master: VecDeque<(usize, ToMaster)>,
}

impl Out {
    /// Queues an effect.
    pub fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// Schedules a timer.
    pub fn at(&mut self, when: Instant, timer: Timer) {
        self.timers.push((when, timer));
    }

    /// Sends a message to agent `index`.
    pub fn to_agent(&mut self, index: usize, msg: ToAgent) {
        self.to_agents.push_back((index, msg));
    }

    /// Sends a message from agent `index` to the master.
    pub fn to_master(&mut self, index: usize, msg: ToMaster) {
        self.to_master.push_back((index, msg));
    }

    /// Sends a scheduler event.
    pub fn scheduler_event(&mut self, stream: StreamId, event: scheduler::Event) {
        self.effects.push(Effect::SchedulerEvent {
            stream,
            event: Box::new(event),
        });
    }

    /// Sends an executor event.
    pub fn executor_event(&mut self, stream: StreamId, event: executor::Event) {
        self.effects.push(Effect::ExecutorEvent {
            stream,
            event: Box::new(event),
        });
    }
}

/// Cluster-wide settings of the core.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Master settings.
    pub master: MasterSettings,
    /// Agent setups, one per agent.
    pub agents: Vec<AgentSetup>,
}

/// The master, its agents and pending timers.
#[derive(Debug)]
pub struct Core {
    /// The master.
    pub master: Master,
    /// The agents, by index.
    pub agents: Vec<Agent>,
    timers: Vec<(Instant, u64, Timer)>,
    timer_seq: u64,
}

impl Core {
    /// Builds the cluster and registers every agent; `persisted` holds what
    /// a previous run left in the state directory, per agent.
    pub fn new(
        settings: Settings,
        master_id: String,
        persisted: Vec<PersistedAgent>,
        now: Now,
    ) -> (Core, Vec<Effect>) {
        let master = Master::new(settings.master.clone(), master_id, now);
        let agents = settings
            .agents
            .into_iter()
            .enumerate()
            .map(|(i, setup)| {
                let seed = persisted.get(i).cloned().unwrap_or_default();
                Agent::new(i, setup, seed)
            })
            .collect();
        let mut core = Core {
            master,
            agents,
            timers: Vec::new(),
            timer_seq: 0,
        };
        let effects = core.run(now, |core, out| {
            core.master.start_allocator(now, out);
            for agent in &mut core.agents {
                agent.start(now, out);
            }
        });
        (core, effects)
    }

    /// Applies one input and returns the effects; `input` gets the core and an output collector.
    pub fn run(&mut self, now: Now, input: impl FnOnce(&mut Core, &mut Out)) -> Vec<Effect> {
        let mut out = Out::default();
        input(self, &mut out);
        self.drain(now, &mut out);
        out.effects
    }

    /// Delivers internal messages until none are left, and files the timers.
    fn drain(&mut self, now: Now, out: &mut Out) {
        loop {
            for (when, timer) in out.timers.drain(..) {
                self.timer_seq += 1;
                self.timers.push((when, self.timer_seq, timer));
            }
            if let Some((index, msg)) = out.to_agents.pop_front() {
                if let Some(agent) = self.agents.get_mut(index) {
                    agent.receive(msg, now, out);
                }
                continue;
            }
            if let Some((index, msg)) = out.to_master.pop_front() {
                if self.agents.get(index).is_some_and(Agent::is_running) {
                    self.master.receive(index, msg, now, out);
                }
                continue;
            }
            break;
        }
    }

    /// When the earliest timer is due.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.timers.iter().map(|(when, _, _)| *when).min()
    }

    /// Fires every timer due at `now`.
    pub fn tick(&mut self, now: Now) -> Vec<Effect> {
        let mut due: Vec<(Instant, u64, Timer)> = Vec::new();
        let mut i = 0;
        while i < self.timers.len() {
            if self.timers[i].0 <= now.mono {
                due.push(self.timers.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|(when, seq, _)| (*when, *seq));
        self.run(now, |core, out| {
            for (_, _, timer) in due {
                core.fire(timer, now, out);
            }
        })
    }

    fn fire(&mut self, timer: Timer, now: Now, out: &mut Out) {
        match timer {
            Timer::StatusRetry {
                agent,
                framework_id,
                task_id,
                uuid,
            } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.retry_update(&framework_id, &task_id, &uuid, now, out);
                }
            }
            Timer::RegistrationTimeout {
                agent,
                framework_id,
                executor_id,
                container,
            } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.registration_timeout(&framework_id, &executor_id, &container, out);
                }
            }
            Timer::ShutdownGrace {
                agent,
                framework_id,
                executor_id,
                container,
            } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.shutdown_grace_over(&framework_id, &executor_id, &container, out);
                }
            }
            Timer::ReregistrationTimeout { agent } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.reregistration_timeout(now, out);
                }
            }
            other => self.master.fire(other, now, out),
        }
    }

    /// Fails the master over: a new master (new ID, no offers, every
    /// subscription closed) learns the cluster again from the agents.
    pub fn fail_over_master(&mut self, new_master_id: String, now: Now) -> Vec<Effect> {
        self.run(now, |core, out| {
            let streams = core.master.all_streams();
            for stream in streams {
                out.effect(Effect::CloseScheduler { stream });
            }
            let settings = core.master.settings().clone();
            let next_agent = core.master.next_agent_number();
            core.master = Master::new(settings, new_master_id, now);
            core.master.set_next_agent_number(next_agent);
            // Timers of the old master are void.
            core.timers.retain(|(_, _, t)| {
                matches!(
                    t,
                    Timer::StatusRetry { .. }
                        | Timer::RegistrationTimeout { .. }
                        | Timer::ShutdownGrace { .. }
                        | Timer::ReregistrationTimeout { .. }
                )
            });
            core.master.start_allocator(now, out);
            for agent in &mut core.agents {
                agent.master_changed(now, out);
            }
        })
    }

    /// Stops agent `index` (its process is gone); `None` when there is no such agent.
    pub fn stop_agent(&mut self, index: usize, now: Now) -> Option<Vec<Effect>> {
        self.agents.get(index)?;
        Some(self.run(now, |core, out| {
            if let Some(id) = core.agents[index].agent_id() {
                core.master.agent_disconnected(&id, now, out);
            }
            core.agents[index].stop(out);
        }))
    }

    /// Restarts agent `index`, which recovers and re-registers.
    pub fn restart_agent(&mut self, index: usize, now: Now) -> Option<Vec<Effect>> {
        self.agents.get(index)?;
        Some(self.run(now, |core, out| core.agents[index].restart(now, out)))
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
