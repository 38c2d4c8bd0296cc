//! The master: frameworks and their subscriptions, agents, offers and the
//! allocator, ACCEPT operations, tasks and their status updates,
//! reconciliation. A pure state machine driven by [`crate::core::Core`].

// The deprecated `role` fields are the pre-refinement wire format, which
// frameworks without RESERVATION_REFINEMENT or MULTI_ROLE still speak.
#![allow(deprecated)]

mod accept;
pub mod state_json;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mesos_proto::v1::{
    self, AgentId, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, MasterInfo, OfferId,
    TaskId, TaskInfo, TaskState, TaskStatus,
    framework_info::capability::Type as Cap,
    scheduler::{Call, Event, call, event},
    task_status::{Reason, Source},
};

use crate::core::{Now, Out, Registration, StreamId, Timer, ToAgent, ToMaster};
use crate::resources::{self, Format, Resources};

/// The Mesos version we behave as.
pub const VERSION: &str = "1.11.0";

/// Master flags that matter to frameworks.
#[derive(Debug, Clone)]
pub struct MasterSettings {
    /// Interval of HEARTBEAT events (Mesos: 15 s, fixed).
    pub heartbeat_interval: Duration,
    /// Batch allocation interval (`--allocation_interval`, 1 s).
    pub allocation_interval: Duration,
    /// Rescind offers held longer than this (`--offer_timeout`, unset).
    pub offer_timeout: Option<Duration>,
    /// How long a disconnected agent may stay away before it is marked
    /// unreachable (`--agent_reregister_timeout`, 10 min).
    pub agent_removal_timeout: Duration,
    /// Role whitelist (`--roles`); `None` allows every role.
    pub roles: Option<Vec<String>>,
    /// The master's listening address.
    pub ip: String,
    /// The master's port.
    pub port: u16,
    /// The master's hostname.
    pub hostname: String,
}

/// A scheduler's subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Runtime stream.
    pub stream: StreamId,
    /// The `Mesos-Stream-Id` given to the scheduler.
    pub stream_uuid: String,
}

/// A framework as the master knows it.
#[derive(Debug, Clone)]
pub struct Framework {
    /// Framework ID.
    pub id: String,
    /// Its latest FrameworkInfo (with `id`).
    pub info: FrameworkInfo,
    /// Live subscription, if connected.
    pub subscription: Option<Subscription>,
    /// Known only from agents after a master failover; not yet re-subscribed.
    pub recovered: bool,
    /// Suppressed roles.
    pub suppressed: BTreeSet<String>,
    /// Decline filters.
    pub filters: Vec<Filter>,
    /// Tasks not yet removed (non-terminal, or terminal and unacknowledged).
    pub tasks: BTreeMap<String, Task>,
    /// Tasks on unreachable agents.
    pub unreachable_tasks: BTreeMap<String, Task>,
    /// Removed tasks, newest last.
    pub completed_tasks: Vec<Task>,
    /// Executors: (agent ID, executor ID) → info and charged resources.
    pub executors: BTreeMap<(String, String), (ExecutorInfo, Resources)>,
    /// Registration order, for fair allocation among equals.
    pub seq: u64,
    /// Seconds since the epoch.
    pub registered_time: f64,
    /// Seconds since the epoch of the last re-subscription.
    pub reregistered_time: Option<f64>,
    /// Seconds since the epoch of the last disconnection.
    pub unregistered_time: Option<f64>,
    /// Bumped on every disconnection, to void stale failover timers.
    pub generation: u64,
}

impl Framework {
    /// Whether the framework has a capability.
    pub fn has(&self, cap: Cap) -> bool {
        has_capability(&self.info, cap)
    }

    /// The framework's roles.
    pub fn roles(&self) -> Vec<String> {
        framework_roles(&self.info)
    }

    fn format(&self) -> Format {
        Format {
            multi_role: self.has(Cap::MultiRole),
            refinement: self.has(Cap::ReservationRefinement),
        }
    }

    fn connected(&self) -> bool {
        self.subscription.is_some()
    }
}

/// Whether `info` declares `cap`.
pub fn has_capability(info: &FrameworkInfo, cap: Cap) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(cap as i32))
}

/// The roles of a framework: `roles` for MULTI_ROLE, else `role` (default `*`).
pub fn framework_roles(info: &FrameworkInfo) -> Vec<String> {
    if has_capability(info, Cap::MultiRole) {
        info.roles.clone()
    } else {
        vec![info.role.clone().unwrap_or_else(|| "*".to_owned())]
    }
}

/// Resources a framework declined on an agent, not re-offered until `until`.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Agent ID.
    pub agent_id: String,
    /// Allocation role.
    pub role: String,
    /// The declined resources.
    pub resources: Resources,
    /// Expiry.
    pub until: std::time::Instant,
}

/// A task as the master tracks it.
#[derive(Debug, Clone)]
pub struct Task {
    /// The task (resources in the internal format).
    pub info: TaskInfo,
    /// Framework ID.
    pub framework_id: String,
    /// Agent ID.
    pub agent_id: String,
    /// Executor ID.
    pub executor_id: Option<String>,
    /// Allocation role.
    pub role: String,
    /// Latest state known from the agent.
    pub state: TaskState,
    /// State of the last update forwarded to the scheduler.
    pub status_update_state: Option<TaskState>,
    /// uuid of the last update forwarded to the scheduler.
    pub status_update_uuid: Option<Vec<u8>>,
    /// Every status seen, oldest first.
    pub statuses: Vec<TaskStatus>,
    /// When the agent was marked unreachable.
    pub unreachable_time: Option<f64>,
}

/// True for terminal task states (TASK_LOST included, as Mesos counts it).
pub fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskLost
            | TaskState::TaskError
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

/// An outstanding offer.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Offer ID.
    pub id: String,
    /// Framework ID.
    pub framework_id: String,
    /// Agent ID.
    pub agent_id: String,
    /// Allocation role.
    pub role: String,
    /// Offered resources (internal format).
    pub resources: Resources,
}

/// An agent as the master knows it.
#[derive(Debug, Clone)]
pub struct MasterAgent {
    /// Agent ID.
    pub id: String,
    /// Index in the core.
    pub index: usize,
    /// Hostname.
    pub hostname: String,
    /// `ip`, `port`.
    pub address: (String, u16),
    /// Attributes.
    pub attributes: Vec<v1::Attribute>,
    /// Total resources with reservations and volumes applied.
    pub total: Resources,
    /// Whether its connection is up.
    pub connected: bool,
    /// Seconds since the epoch.
    pub registered_time: f64,
    /// Seconds since the epoch of the last re-registration.
    pub reregistered_time: Option<f64>,
    /// Bumped on every disconnection.
    pub generation: u64,
}

impl MasterAgent {
    /// Dynamic reservations and persistent volumes.
    pub fn checkpointed(&self) -> Resources {
        self.total
            .filter(|r| resources::is_dynamically_reserved(r) || resources::is_persistent_volume(r))
    }

    /// `slave(1)@ip:port`.
    pub fn pid(&self) -> String {
        format!("slave(1)@{}:{}", self.address.0, self.address.1)
    }
}

/// Why a scheduler call was refused (the HTTP status follows from the variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// 400 with this message.
    BadRequest(String),
    /// 403 with this message.
    Forbidden(String),
    /// 409 with this message.
    Conflict(String),
    /// 501.
    NotImplemented,
}

/// A successful call: 202, or 200 for UPDATE_FRAMEWORK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOk {
    /// 202 Accepted.
    Accepted,
    /// 200 OK.
    Ok,
}

/// The master state machine.
#[derive(Debug)]
pub struct Master {
    settings: MasterSettings,
    /// The master's ID (a UUID), the prefix of every ID it assigns.
    pub id: String,
    /// MasterInfo as sent in SUBSCRIBED.
    pub info: MasterInfo,
    /// Seconds since the epoch.
    pub start_time: f64,
    next_framework: u64,
    next_offer: u64,
    next_agent: u64,
    /// Frameworks, by ID.
    pub frameworks: BTreeMap<String, Framework>,
    /// Removed frameworks.
    pub completed_frameworks: Vec<Framework>,
    /// Registered agents, by ID.
    pub agents: BTreeMap<String, MasterAgent>,
    /// Unreachable agents: ID → when marked.
    pub unreachable: BTreeMap<String, f64>,
    /// Outstanding offers, by ID.
    pub offers: BTreeMap<String, Offer>,
    /// A triggered allocation is pending (the periodic one always is).
    allocation_triggered: bool,
}

fn ev(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn error_event(message: &str) -> Event {
    Event {
        error: Some(event::Error {
            message: message.to_owned(),
        }),
        ..ev(event::Type::Error)
    }
}

/// Packs an IPv4 address as MasterInfo.ip does (network byte order read as a
/// little-endian integer: 127.0.0.1 → 16777343).
fn packed_ip(ip: &str) -> u32 {
    ip.parse::<std::net::Ipv4Addr>()
        .map(|a| u32::from_le_bytes(a.octets()))
        .unwrap_or(0)
}

impl Master {
    /// A fresh master with no frameworks or agents.
    pub fn new(settings: MasterSettings, id: String, now: Now) -> Master {
        let info = MasterInfo {
            id: id.clone(),
            ip: packed_ip(&settings.ip),
            port: u32::from(settings.port),
            pid: Some(format!("master@{}:{}", settings.ip, settings.port)),
            hostname: Some(settings.hostname.clone()),
            version: Some(VERSION.to_owned()),
            address: Some(v1::Address {
                hostname: Some(settings.hostname.clone()),
                ip: Some(settings.ip.clone()),
                port: i32::from(settings.port),
            }),
            domain: None,
            capabilities: vec![v1::master_info::Capability {
                r#type: Some(v1::master_info::capability::Type::AgentUpdate as i32),
            }],
        };
        Master {
            settings,
            id,
            info,
            start_time: now.wall,
            next_framework: 0,
            next_offer: 0,
            next_agent: 0,
            frameworks: BTreeMap::new(),
            completed_frameworks: Vec::new(),
            agents: BTreeMap::new(),
            unreachable: BTreeMap::new(),
            offers: BTreeMap::new(),
            allocation_triggered: false,
        }
    }

    /// The master's settings.
    pub fn settings(&self) -> &MasterSettings {
        &self.settings
    }

    pub(crate) fn next_agent_number(&self) -> u64 {
        self.next_agent
    }

    pub(crate) fn set_next_agent_number(&mut self, n: u64) {
        self.next_agent = n;
    }

    /// Every live scheduler stream.
    pub fn all_streams(&self) -> Vec<StreamId> {
        self.frameworks
            .values()
            .filter_map(|f| f.subscription.as_ref().map(|s| s.stream))
            .collect()
    }

    /// The framework whose subscription uses `stream`.
    pub fn framework_of_stream(&self, stream: StreamId) -> Option<String> {
        self.frameworks
            .values()
            .find(|f| f.subscription.as_ref().is_some_and(|s| s.stream == stream))
            .map(|f| f.id.clone())
    }

    fn send(&self, framework_id: &str, event: Event, out: &mut Out) {
        if let Some(sub) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.subscription.as_ref())
        {
            out.scheduler_event(sub.stream, event);
        }
    }

    fn schedule_allocation(&mut self, now: Now, out: &mut Out) {
        // Mesos allocates on these events at once, besides its periodic
        // batch; events close together share one allocation.
        if !self.allocation_triggered {
            self.allocation_triggered = true;
            out.at(now.mono + Duration::from_millis(10), Timer::AllocateNow);
        }
    }

    // ------------------------------------------------------------ subscribe

    /// SUBSCRIBE on a new stream (the call was validated by the HTTP layer).
    /// Refusals are an ERROR event followed by the end of the stream.
    pub fn subscribe(
        &mut self,
        subscribe: call::Subscribe,
        stream: StreamId,
        stream_uuid: String,
        now: Now,
        out: &mut Out,
    ) {
        let mut info = subscribe.framework_info;
        let refuse = |message: String, out: &mut Out| {
            out.scheduler_event(stream, error_event(&message));
            out.effect(crate::core::Effect::CloseScheduler { stream });
        };
        if let Err(message) = self.validate_framework(&info) {
            return refuse(message, out);
        }
        let roles: BTreeSet<String> = framework_roles(&info).into_iter().collect();
        let suppressed: BTreeSet<String> = subscribe.suppressed_roles.into_iter().collect();
        let invalid: Vec<&String> = suppressed.difference(&roles).collect();
        if !invalid.is_empty() {
            return refuse(
                format!(
                    "Suppressed roles {{ {} }} are not contained in the set of roles",
                    invalid
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                out,
            );
        }
        let subscription = Subscription {
            stream,
            stream_uuid,
        };
        let id = match info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .filter(|v| !v.is_empty())
        {
            None => {
                let id = format!("{}-{:04}", self.id, self.next_framework);
                self.next_framework += 1;
                info.id = Some(FrameworkId { value: id.clone() });
                self.frameworks.insert(
                    id.clone(),
                    Framework {
                        id: id.clone(),
                        info,
                        subscription: Some(subscription),
                        recovered: false,
                        suppressed,
                        filters: Vec::new(),
                        tasks: BTreeMap::new(),
                        unreachable_tasks: BTreeMap::new(),
                        completed_tasks: Vec::new(),
                        executors: BTreeMap::new(),
                        seq: self.next_framework,
                        registered_time: now.wall,
                        reregistered_time: None,
                        unregistered_time: None,
                        generation: 0,
                    },
                );
                tracing::info!(framework_id = %id, "framework subscribed");
                id
            }
            Some(id) => {
                if !self.frameworks.contains_key(&id) {
                    // Unknown after a master failover: rebuild it from the call.
                    self.next_framework += 1;
                    self.frameworks.insert(
                        id.clone(),
                        Framework {
                            id: id.clone(),
                            info: info.clone(),
                            subscription: None,
                            recovered: true,
                            suppressed: BTreeSet::new(),
                            filters: Vec::new(),
                            tasks: BTreeMap::new(),
                            unreachable_tasks: BTreeMap::new(),
                            completed_tasks: Vec::new(),
                            executors: BTreeMap::new(),
                            seq: self.next_framework,
                            registered_time: now.wall,
                            reregistered_time: None,
                            unregistered_time: None,
                            generation: 0,
                        },
                    );
                }
                let Some(framework) = self.frameworks.get_mut(&id) else {
                    return;
                };
                // user and checkpoint are immutable: silently keep the old values.
                info.user = framework.info.user.clone();
                info.checkpoint = framework.info.checkpoint;
                if info.principal != framework.info.principal {
                    return refuse("Changing framework's principal is not allowed.".into(), out);
                }
                if let Some(old) = framework.subscription.take() {
                    out.scheduler_event(old.stream, error_event("Framework failed over"));
                    out.effect(crate::core::Effect::CloseScheduler { stream: old.stream });
                }
                framework.info = info.clone();
                framework.subscription = Some(subscription);
                framework.suppressed = suppressed;
                framework.generation += 1;
                if framework.recovered {
                    framework.recovered = false;
                } else {
                    framework.reregistered_time = Some(now.wall);
                }
                tracing::info!(framework_id = %id, "framework re-subscribed");
                // Outstanding offers die silently on re-subscription.
                self.offers.retain(|_, o| o.framework_id != id);
                for agent in self.agents.values().filter(|a| a.connected) {
                    out.to_agent(
                        agent.index,
                        ToAgent::UpdateFramework {
                            framework: info.clone(),
                        },
                    );
                }
                id
            }
        };
        let subscribed = Event {
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId { value: id.clone() },
                heartbeat_interval_seconds: Some(self.settings.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.info.clone()),
            }),
            ..ev(event::Type::Subscribed)
        };
        out.scheduler_event(stream, subscribed);
        out.scheduler_event(stream, ev(event::Type::Heartbeat));
        out.at(
            now.mono + self.settings.heartbeat_interval,
            Timer::Heartbeat {
                framework_id: id,
                stream,
            },
        );
        self.schedule_allocation(now, out);
    }

    fn validate_framework(&self, info: &FrameworkInfo) -> Result<(), String> {
        validate::framework_info(info)?;
        if let Some(whitelist) = &self.settings.roles {
            let invalid: Vec<String> = framework_roles(info)
                .into_iter()
                .filter(|r| r != "*" && !whitelist.contains(r))
                .collect();
            if !invalid.is_empty() {
                return Err(format!(
                    "Roles {{ {} }} are not present in the master's --roles",
                    invalid.join(", ")
                ));
            }
        }
        if let Some(id) = &info.id {
            if self.completed_frameworks.iter().any(|f| f.id == id.value) {
                return Err("Framework has been removed".into());
            }
        }
        Ok(())
    }

    /// The scheduler's stream ended (client went away or the connection broke).
    pub fn stream_closed(&mut self, stream: StreamId, now: Now, out: &mut Out) {
        let Some(id) = self.framework_of_stream(stream) else {
            return;
        };
        self.disconnect(&id, now, out);
    }

    /// Disconnects a framework: no offers, calls get 403, failover timer runs.
    pub fn disconnect(&mut self, framework_id: &str, now: Now, out: &mut Out) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if let Some(sub) = framework.subscription.take() {
            out.effect(crate::core::Effect::CloseScheduler { stream: sub.stream });
        }
        framework.generation += 1;
        framework.unregistered_time = Some(now.wall);
        let timeout = framework.info.failover_timeout.unwrap_or(0.0).max(0.0);
        let generation = framework.generation;
        tracing::info!(%framework_id, failover_timeout = timeout, "framework disconnected");
        self.offers.retain(|_, o| o.framework_id != framework_id);
        out.at(
            now.mono + Duration::from_secs_f64(timeout.min(1e9)),
            Timer::FailoverTimeout {
                framework_id: framework_id.to_owned(),
                generation,
            },
        );
    }

    /// Removes a framework: its tasks are killed and its ID can never subscribe again.
    pub fn remove_framework(&mut self, framework_id: &str, now: Now, out: &mut Out) {
        let Some(mut framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        tracing::info!(%framework_id, "removing framework");
        if let Some(sub) = framework.subscription.take() {
            out.effect(crate::core::Effect::CloseScheduler { stream: sub.stream });
        }
        self.offers.retain(|_, o| o.framework_id != framework_id);
        for agent in self.agents.values().filter(|a| a.connected) {
            out.to_agent(
                agent.index,
                ToAgent::ShutdownFramework {
                    framework_id: framework_id.to_owned(),
                },
            );
        }
        let tasks: Vec<Task> = std::mem::take(&mut framework.tasks).into_values().collect();
        for mut task in tasks {
            if !is_terminal(task.state) {
                task.state = TaskState::TaskKilled;
                task.statuses.push(master_status(
                    &task.info.task_id.value,
                    Some(&task.agent_id),
                    TaskState::TaskKilled,
                    "Framework removed",
                    Reason::FrameworkRemoved,
                    task.executor_id.as_deref(),
                    now,
                ));
            }
            framework.completed_tasks.push(task);
        }
        framework.executors.clear();
        framework.unregistered_time = Some(now.wall);
        self.completed_frameworks.push(framework);
    }

    // ------------------------------------------------------------ calls

    /// Every non-SUBSCRIBE call, after `validate::call` passed.
    pub fn call(
        &mut self,
        call: Call,
        stream_uuid: Option<&str>,
        now: Now,
        out: &mut Out,
    ) -> Result<CallOk, CallError> {
        let framework_id = call
            .framework_id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let Some(framework) = self.frameworks.get(&framework_id) else {
            return Err(CallError::BadRequest("Framework cannot be found".into()));
        };
        let Some(sub) = &framework.subscription else {
            return Err(CallError::Forbidden("Framework is not subscribed".into()));
        };
        let Some(given) = stream_uuid else {
            return Err(CallError::BadRequest(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into(),
            ));
        };
        if given != sub.stream_uuid {
            return Err(CallError::BadRequest(format!(
                "The stream ID '{given}' included in this request didn't match the stream ID \
                 currently associated with framework ID {framework_id}"
            )));
        }
        let kind = call
            .r#type
            .and_then(|t| call::Type::try_from(t).ok())
            .unwrap_or(call::Type::Unknown);
        match kind {
            call::Type::Teardown => self.remove_framework(&framework_id, now, out),
            call::Type::Accept => {
                if let Some(accept) = call.accept {
                    self.accept(&framework_id, accept, now, out);
                }
            }
            call::Type::Decline => {
                if let Some(decline) = call.decline {
                    self.decline(&framework_id, decline, now);
                }
            }
            call::Type::Revive => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                self.revive(&framework_id, roles, now, out);
            }
            call::Type::Suppress => {
                let roles = call.suppress.map(|r| r.roles).unwrap_or_default();
                self.suppress(&framework_id, roles);
            }
            call::Type::Kill => {
                if let Some(kill) = call.kill {
                    self.kill(&framework_id, kill, now, out);
                }
            }
            call::Type::Shutdown => {
                if let Some(shutdown) = call.shutdown {
                    if let Some(agent) = self.agents.get(&shutdown.agent_id.value) {
                        if agent.connected {
                            out.to_agent(
                                agent.index,
                                ToAgent::ShutdownExecutor {
                                    framework_id: framework_id.clone(),
                                    executor_id: shutdown.executor_id.value,
                                },
                            );
                        }
                    }
                }
            }
            call::Type::Acknowledge => {
                if let Some(ack) = call.acknowledge {
                    self.acknowledge(&framework_id, ack, out);
                }
            }
            call::Type::Reconcile => {
                let tasks = call.reconcile.map(|r| r.tasks).unwrap_or_default();
                self.reconcile(&framework_id, tasks, now, out);
            }
            call::Type::Message => {
                if let Some(message) = call.message {
                    if let Some(agent) = self.agents.get(&message.agent_id.value) {
                        if agent.connected {
                            out.to_agent(
                                agent.index,
                                ToAgent::FrameworkMessage {
                                    framework_id: framework_id.clone(),
                                    executor_id: message.executor_id.value,
                                    data: message.data,
                                },
                            );
                        }
                    }
                }
            }
            call::Type::Request
            | call::Type::AcceptInverseOffers
            | call::Type::DeclineInverseOffers
            | call::Type::AcknowledgeOperationStatus => {}
            call::Type::ReconcileOperations => {
                let operations = call
                    .reconcile_operations
                    .map(|r| r.operations)
                    .unwrap_or_default();
                for op in operations {
                    let status = v1::OperationStatus {
                        operation_id: Some(op.operation_id),
                        state: v1::OperationState::OperationUnknown as i32,
                        agent_id: op.agent_id,
                        ..Default::default()
                    };
                    let event = Event {
                        update_operation_status: Some(event::UpdateOperationStatus { status }),
                        ..ev(event::Type::UpdateOperationStatus)
                    };
                    self.send(&framework_id, event, out);
                }
            }
            call::Type::UpdateFramework => {
                if let Some(update) = call.update_framework {
                    return self.update_framework(&framework_id, update, out);
                }
            }
            call::Type::Subscribe => {}
            call::Type::Unknown => return Err(CallError::NotImplemented),
        }
        Ok(CallOk::Accepted)
    }

    fn update_framework(
        &mut self,
        framework_id: &str,
        update: call::UpdateFramework,
        out: &mut Out,
    ) -> Result<CallOk, CallError> {
        let mut info = update.framework_info;
        validate::framework_info(&info).map_err(CallError::BadRequest)?;
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Err(CallError::Conflict("Framework was removed".into()));
        };
        if info.principal != framework.info.principal {
            return Err(CallError::BadRequest(
                "Changing framework's principal is not allowed.".into(),
            ));
        }
        if info.user != framework.info.user {
            return Err(CallError::BadRequest(format!(
                "Updating 'FrameworkInfo.user' is unsupported; attempted to update from '{}' to '{}'",
                framework.info.user, info.user
            )));
        }
        if info.checkpoint.unwrap_or(false) != framework.info.checkpoint.unwrap_or(false) {
            return Err(CallError::BadRequest(
                "Updating 'FrameworkInfo.checkpoint' is unsupported".into(),
            ));
        }
        let roles: BTreeSet<String> = framework_roles(&info).into_iter().collect();
        let suppressed: BTreeSet<String> = update.suppressed_roles.into_iter().collect();
        if !suppressed.is_subset(&roles) {
            return Err(CallError::BadRequest(
                "Suppressed roles are not contained in the set of roles".into(),
            ));
        }
        info.id = Some(FrameworkId {
            value: framework_id.to_owned(),
        });
        let old_suppressed = std::mem::replace(&mut framework.suppressed, suppressed);
        for role in old_suppressed.difference(&framework.suppressed) {
            framework.filters.retain(|f| &f.role != role);
        }
        framework.info = info;
        let removed: Vec<String> = self
            .offers
            .values()
            .filter(|o| o.framework_id == framework_id && !roles.contains(&o.role))
            .map(|o| o.id.clone())
            .collect();
        for offer_id in removed {
            self.rescind_offer(&offer_id, out);
        }
        Ok(CallOk::Ok)
    }

    fn decline(&mut self, framework_id: &str, decline: call::Decline, now: Now) {
        for offer_id in decline.offer_ids {
            let Some(offer) = self.offers.get(&offer_id.value) else {
                continue;
            };
            if offer.framework_id != framework_id {
                continue;
            }
            if let Some(offer) = self.offers.remove(&offer_id.value) {
                self.add_filter(
                    framework_id,
                    &offer.agent_id,
                    &offer.role,
                    offer.resources,
                    decline.filters.as_ref(),
                    now,
                );
            }
        }
    }

    fn add_filter(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        resources: Resources,
        filters: Option<&v1::Filters>,
        now: Now,
    ) {
        let mut seconds = filters.and_then(|f| f.refuse_seconds).unwrap_or(5.0);
        if !seconds.is_finite() || seconds < 0.0 {
            seconds = 5.0;
        }
        seconds = seconds.min(365.0 * 24.0 * 3600.0);
        if seconds == 0.0 || resources.is_empty() {
            return;
        }
        // A filter lasts at least one allocation interval, as Mesos' allocator does.
        let duration = Duration::from_secs_f64(seconds).max(self.settings.allocation_interval);
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.filters.push(Filter {
                agent_id: agent_id.to_owned(),
                role: role.to_owned(),
                resources,
                until: now.mono + duration,
            });
        }
    }

    fn revive(&mut self, framework_id: &str, roles: Vec<String>, now: Now, out: &mut Out) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let roles = if roles.is_empty() {
                framework.roles()
            } else {
                roles
            };
            for role in &roles {
                framework.suppressed.remove(role);
            }
            framework.filters.retain(|f| !roles.contains(&f.role));
        }
        self.schedule_allocation(now, out);
    }

    fn suppress(&mut self, framework_id: &str, roles: Vec<String>) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let roles = if roles.is_empty() {
                framework.roles()
            } else {
                roles
            };
            framework.suppressed.extend(roles);
        }
    }

    fn kill(&mut self, framework_id: &str, kill: call::Kill, now: Now, out: &mut Out) {
        let task = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&kill.task_id.value));
        let Some(task) = task else {
            let reconcile = call::reconcile::Task {
                task_id: kill.task_id,
                agent_id: kill.agent_id,
            };
            return self.reconcile(framework_id, vec![reconcile], now, out);
        };
        if kill
            .agent_id
            .as_ref()
            .is_some_and(|a| a.value != task.agent_id)
        {
            return;
        }
        if let Some(agent) = self.agents.get(&task.agent_id).filter(|a| a.connected) {
            out.to_agent(
                agent.index,
                ToAgent::KillTask {
                    framework_id: framework_id.to_owned(),
                    task_id: kill.task_id.value,
                    kill_policy: kill.kill_policy,
                },
            );
        }
    }

    fn acknowledge(&mut self, framework_id: &str, ack: call::Acknowledge, out: &mut Out) {
        let Some(agent) = self.agents.get(&ack.agent_id.value) else {
            tracing::warn!(%framework_id, agent_id = %ack.agent_id.value, "acknowledgement for an unknown agent");
            return;
        };
        let index = agent.index;
        let connected = agent.connected;
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let remove = framework.tasks.get(&ack.task_id.value).is_some_and(|t| {
                t.status_update_uuid.as_deref() == Some(&ack.uuid[..])
                    && t.status_update_state.is_some_and(is_terminal)
            });
            if remove {
                if let Some(task) = framework.tasks.remove(&ack.task_id.value) {
                    framework.completed_tasks.push(task);
                }
            }
        }
        if connected {
            out.to_agent(
                index,
                ToAgent::Acknowledge {
                    framework_id: framework_id.to_owned(),
                    task_id: ack.task_id.value,
                    uuid: ack.uuid,
                },
            );
        }
    }

    /// Explicit (non-empty `tasks`) or implicit reconciliation.
    pub fn reconcile(
        &mut self,
        framework_id: &str,
        tasks: Vec<call::reconcile::Task>,
        now: Now,
        out: &mut Out,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = framework.has(Cap::PartitionAware);
        let map = |state: TaskState| {
            if partition_aware {
                state
            } else {
                TaskState::TaskLost
            }
        };
        let latest = |task: &Task| {
            let state = task.status_update_state.unwrap_or(task.state);
            master_status(
                &task.info.task_id.value,
                Some(&task.agent_id),
                state,
                "Reconciliation: Latest task state",
                Reason::Reconciliation,
                task.executor_id.as_deref(),
                now,
            )
        };
        let mut updates = Vec::new();
        if tasks.is_empty() {
            updates.extend(framework.tasks.values().map(latest));
        } else {
            for t in tasks {
                let agent_id = t.agent_id.as_ref().map(|a| a.value.clone());
                if let Some(task) = framework.tasks.get(&t.task_id.value) {
                    updates.push(latest(task));
                    continue;
                }
                let task_id = t.task_id.value.as_str();
                let status = match agent_id.as_deref() {
                    Some(agent) if self.agents.contains_key(agent) => master_status(
                        task_id,
                        Some(agent),
                        map(TaskState::TaskGone),
                        "Reconciliation: Task is unknown to the agent",
                        Reason::Reconciliation,
                        None,
                        now,
                    ),
                    Some(agent) if self.unreachable.contains_key(agent) => {
                        let mut status = master_status(
                            task_id,
                            Some(agent),
                            map(TaskState::TaskUnreachable),
                            "Reconciliation: Task is unreachable",
                            Reason::Reconciliation,
                            None,
                            now,
                        );
                        status.unreachable_time =
                            self.unreachable.get(agent).map(|t| v1::TimeInfo {
                                nanoseconds: (t * 1e9) as i64,
                            });
                        status
                    }
                    other => master_status(
                        task_id,
                        other,
                        map(TaskState::TaskUnknown),
                        "Reconciliation: Task is unknown",
                        Reason::Reconciliation,
                        None,
                        now,
                    ),
                };
                updates.push(status);
            }
        }
        for status in updates {
            self.send(framework_id, update_event(status), out);
        }
    }

    // ------------------------------------------------------------ agents

    /// A message from agent `index`.
    pub fn receive(&mut self, index: usize, msg: ToMaster, now: Now, out: &mut Out) {
        match msg {
            ToMaster::Register(registration) => self.register_agent(index, *registration, now, out),
            ToMaster::StatusUpdate {
                status,
                latest_state,
                framework_id,
            } => self.status_update(&framework_id, status, latest_state, out),
            ToMaster::ExitedExecutor {
                framework_id,
                executor_id,
                status,
            } => {
                let Some(agent_id) = self.agent_id_of(index) else {
                    return;
                };
                if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                    framework
                        .executors
                        .remove(&(agent_id.clone(), executor_id.clone()));
                }
                let event = Event {
                    failure: Some(event::Failure {
                        agent_id: Some(AgentId { value: agent_id }),
                        executor_id: Some(ExecutorId { value: executor_id }),
                        status: Some(status),
                    }),
                    ..ev(event::Type::Failure)
                };
                self.send(&framework_id, event, out);
            }
            ToMaster::ExecutorMessage {
                framework_id,
                executor_id,
                data,
            } => {
                let Some(agent_id) = self.agent_id_of(index) else {
                    return;
                };
                let event = Event {
                    message: Some(event::Message {
                        agent_id: AgentId { value: agent_id },
                        executor_id: ExecutorId { value: executor_id },
                        data,
                    }),
                    ..ev(event::Type::Message)
                };
                self.send(&framework_id, event, out);
            }
        }
    }

    fn agent_id_of(&self, index: usize) -> Option<String> {
        self.agents
            .values()
            .find(|a| a.index == index)
            .map(|a| a.id.clone())
    }

    fn register_agent(&mut self, index: usize, reg: Registration, now: Now, out: &mut Out) {
        let id = match reg.agent_id.clone() {
            Some(id) => id,
            None => {
                let id = format!("{}-S{}", self.id, self.next_agent);
                self.next_agent += 1;
                id
            }
        };
        let reregistered = self.agents.contains_key(&id) || self.unreachable.contains_key(&id);
        let was_unreachable = self.unreachable.remove(&id).is_some();
        let registered_time = self.agents.get(&id).map_or(now.wall, |a| a.registered_time);
        let generation = self.agents.get(&id).map_or(0, |a| a.generation + 1);
        self.agents.insert(
            id.clone(),
            MasterAgent {
                id: id.clone(),
                index,
                hostname: reg.hostname,
                address: reg.address,
                attributes: reg.attributes,
                total: Resources::from_list(&reg.total),
                connected: true,
                registered_time,
                reregistered_time: reregistered.then_some(now.wall),
                generation,
            },
        );
        tracing::info!(agent_id = %id, reregistered, "agent registered");
        // Frameworks the master does not know yet (after a failover) come back as recovered.
        for info in reg.frameworks {
            let Some(fid) = info.id.as_ref().map(|i| i.value.clone()) else {
                continue;
            };
            if self.frameworks.contains_key(&fid)
                || self.completed_frameworks.iter().any(|f| f.id == fid)
            {
                continue;
            }
            self.next_framework += 1;
            self.frameworks.insert(
                fid.clone(),
                Framework {
                    id: fid,
                    info,
                    subscription: None,
                    recovered: true,
                    suppressed: BTreeSet::new(),
                    filters: Vec::new(),
                    tasks: BTreeMap::new(),
                    unreachable_tasks: BTreeMap::new(),
                    completed_tasks: Vec::new(),
                    executors: BTreeMap::new(),
                    seq: self.next_framework,
                    registered_time: now.wall,
                    reregistered_time: None,
                    unregistered_time: None,
                    generation: 0,
                },
            );
        }
        for (fid, executor) in reg.executors {
            if let Some(framework) = self.frameworks.get_mut(&fid) {
                let resources = Resources::from_list(&executor.resources);
                framework.executors.insert(
                    (id.clone(), executor.executor_id.value.clone()),
                    (executor, resources),
                );
            }
        }
        for rt in reg.tasks {
            let Some(framework) = self.frameworks.get_mut(&rt.framework_id) else {
                continue;
            };
            let task_id = rt.task.task_id.value.clone();
            framework.unreachable_tasks.remove(&task_id);
            let known = framework.tasks.get(&task_id).cloned();
            let role = rt
                .task
                .resources
                .iter()
                .find_map(resources::reservation_role)
                .map(str::to_owned)
                .or_else(|| framework.roles().into_iter().next())
                .unwrap_or_else(|| "*".to_owned());
            let task = match known {
                Some(mut task) => {
                    task.state = rt.state;
                    task.agent_id = id.clone();
                    task
                }
                None => Task {
                    executor_id: rt
                        .task
                        .executor
                        .as_ref()
                        .map(|e| e.executor_id.value.clone()),
                    info: rt.task,
                    framework_id: rt.framework_id.clone(),
                    agent_id: id.clone(),
                    role,
                    state: rt.state,
                    status_update_state: None,
                    status_update_uuid: None,
                    statuses: Vec::new(),
                    unreachable_time: None,
                },
            };
            framework.tasks.insert(task_id, task);
        }
        if was_unreachable {
            // Non-partition-aware frameworks were told their tasks were LOST: Mesos shuts them down.
            for framework in self.frameworks.values() {
                if !framework.has(Cap::PartitionAware)
                    && framework.tasks.values().any(|t| t.agent_id == id)
                {
                    out.to_agent(
                        index,
                        ToAgent::ShutdownFramework {
                            framework_id: framework.id.clone(),
                        },
                    );
                }
            }
        }
        out.to_agent(index, ToAgent::Registered { agent_id: id });
        self.schedule_allocation(now, out);
    }

    /// The agent's connection broke (it stopped); offers on it are rescinded
    /// and it is marked unreachable unless it comes back in time.
    pub fn agent_disconnected(&mut self, agent_id: &str, now: Now, out: &mut Out) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        if !agent.connected {
            return;
        }
        agent.connected = false;
        agent.generation += 1;
        let generation = agent.generation;
        tracing::info!(%agent_id, "agent disconnected");
        let offers: Vec<String> = self
            .offers
            .values()
            .filter(|o| o.agent_id == agent_id)
            .map(|o| o.id.clone())
            .collect();
        for offer_id in offers {
            self.rescind_offer(&offer_id, out);
        }
        out.at(
            now.mono + self.settings.agent_removal_timeout,
            Timer::AgentRemoval {
                agent_id: agent_id.to_owned(),
                generation,
            },
        );
    }

    fn mark_unreachable(&mut self, agent_id: &str, now: Now, out: &mut Out) {
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        tracing::info!(%agent_id, "agent marked unreachable");
        self.unreachable.insert(agent_id.to_owned(), now.wall);
        let message = format!(
            "agent did not reregister within {} after disconnecting",
            crate::ids::format_duration(self.settings.agent_removal_timeout)
        );
        let unreachable_time = v1::TimeInfo {
            nanoseconds: (now.wall * 1e9) as i64,
        };
        let ids: Vec<String> = self.frameworks.keys().cloned().collect();
        for fid in ids {
            let Some(framework) = self.frameworks.get_mut(&fid) else {
                continue;
            };
            let partition_aware = framework.has(Cap::PartitionAware);
            let on_agent: Vec<String> = framework
                .tasks
                .values()
                .filter(|t| t.agent_id == agent_id)
                .map(|t| t.info.task_id.value.clone())
                .collect();
            let mut events = Vec::new();
            for task_id in on_agent {
                let Some(mut task) = framework.tasks.remove(&task_id) else {
                    continue;
                };
                let state = if partition_aware {
                    TaskState::TaskUnreachable
                } else {
                    TaskState::TaskLost
                };
                let mut status = master_status(
                    &task_id,
                    Some(agent_id),
                    state,
                    &message,
                    Reason::AgentRemoved,
                    task.executor_id.as_deref(),
                    now,
                );
                status.unreachable_time = Some(unreachable_time);
                task.state = state;
                task.status_update_state = Some(state);
                task.unreachable_time = Some(now.wall);
                task.statuses.push(status.clone());
                if is_terminal(state) {
                    framework.completed_tasks.push(task);
                } else {
                    framework.unreachable_tasks.insert(task_id, task);
                }
                events.push(update_event(status));
            }
            framework.executors.retain(|(a, _), _| a != agent_id);
            if let Some(sub) = &framework.subscription {
                for event in events {
                    out.scheduler_event(sub.stream, event);
                }
            }
        }
        let offers: Vec<String> = self
            .offers
            .values()
            .filter(|o| o.agent_id == agent_id)
            .map(|o| o.id.clone())
            .collect();
        for offer_id in offers {
            self.rescind_offer(&offer_id, out);
        }
        for framework in self.frameworks.values() {
            if let Some(sub) = &framework.subscription {
                out.scheduler_event(
                    sub.stream,
                    Event {
                        failure: Some(event::Failure {
                            agent_id: Some(AgentId {
                                value: agent_id.to_owned(),
                            }),
                            executor_id: None,
                            status: None,
                        }),
                        ..ev(event::Type::Failure)
                    },
                );
            }
        }
        let _ = agent;
    }

    fn status_update(
        &mut self,
        framework_id: &str,
        status: TaskStatus,
        latest_state: TaskState,
        out: &mut Out,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            tracing::warn!(%framework_id, "status update for an unknown framework dropped");
            return;
        };
        let connected = framework.connected();
        let task_id = status.task_id.value.clone();
        if let Some(task) = framework.tasks.get_mut(&task_id) {
            // As Mesos' updateTask: a terminal state is final, and a repeated
            // state replaces the last status instead of adding one.
            let was_terminal = is_terminal(task.state);
            if !was_terminal {
                task.state = latest_state;
            }
            if task
                .statuses
                .last()
                .is_some_and(|last| last.state == status.state)
            {
                task.statuses.pop();
            }
            task.statuses.push(TaskStatus {
                data: None,
                ..status.clone()
            });
            if connected {
                task.status_update_state = Some(status.state());
                task.status_update_uuid = status.uuid.clone();
            }
        }
        // Freed resources wait for the next batch allocation, as in Mesos
        // (recoverResources does not allocate).
        if connected {
            self.send(framework_id, update_event(status), out);
        } else {
            tracing::debug!(%framework_id, %task_id, "dropping update for a disconnected framework");
        }
    }

    /// Rescinds an offer (RESCIND event; the resources return without a filter).
    pub fn rescind_offer(&mut self, offer_id: &str, out: &mut Out) -> bool {
        let Some(offer) = self.offers.remove(offer_id) else {
            return false;
        };
        let event = Event {
            rescind: Some(event::Rescind {
                offer_id: OfferId {
                    value: offer.id.clone(),
                },
            }),
            ..ev(event::Type::Rescind)
        };
        self.send(&offer.framework_id, event, out);
        true
    }

    // ------------------------------------------------------------ timers

    /// Fires a master timer.
    pub fn fire(&mut self, timer: Timer, now: Now, out: &mut Out) {
        match timer {
            Timer::Heartbeat {
                framework_id,
                stream,
            } => {
                let live = self
                    .frameworks
                    .get(&framework_id)
                    .and_then(|f| f.subscription.as_ref())
                    .is_some_and(|s| s.stream == stream);
                if live {
                    out.scheduler_event(stream, ev(event::Type::Heartbeat));
                    out.at(
                        now.mono + self.settings.heartbeat_interval,
                        Timer::Heartbeat {
                            framework_id,
                            stream,
                        },
                    );
                }
            }
            Timer::Allocate => {
                out.at(
                    now.mono + self.settings.allocation_interval,
                    Timer::Allocate,
                );
                self.allocate(now, out);
            }
            Timer::AllocateNow => {
                self.allocation_triggered = false;
                self.allocate(now, out);
            }
            Timer::OfferTimeout { offer_id } => {
                self.rescind_offer(&offer_id, out);
            }
            Timer::FailoverTimeout {
                framework_id,
                generation,
            } => {
                let due = self
                    .frameworks
                    .get(&framework_id)
                    .is_some_and(|f| f.generation == generation && !f.connected());
                if due {
                    self.remove_framework(&framework_id, now, out);
                }
            }
            Timer::AgentRemoval {
                agent_id,
                generation,
            } => {
                let due = self
                    .agents
                    .get(&agent_id)
                    .is_some_and(|a| a.generation == generation && !a.connected);
                if due {
                    self.mark_unreachable(&agent_id, now, out);
                }
            }
            _ => {}
        }
    }

    /// Starts the periodic allocation timer.
    pub fn start_allocator(&mut self, now: Now, out: &mut Out) {
        out.at(
            now.mono + self.settings.allocation_interval,
            Timer::Allocate,
        );
    }

    // ------------------------------------------------------------ allocation

    /// Resources of `agent_id` used by tasks and executors.
    pub fn used_on(&self, agent_id: &str) -> Resources {
        let mut used = Resources::new();
        for framework in self.frameworks.values() {
            used.add_all(&self.used_by(framework, agent_id));
        }
        used
    }

    fn used_by(&self, framework: &Framework, agent_id: &str) -> Resources {
        let mut used = Resources::new();
        for r in used_resources(framework, |a| a == agent_id) {
            used.add(r);
        }
        used
    }

    /// Resources of `agent_id` in outstanding offers.
    pub fn offered_on(&self, agent_id: &str) -> Resources {
        let mut offered = Resources::new();
        for offer in self.offers.values().filter(|o| o.agent_id == agent_id) {
            offered.add_all(&offer.resources);
        }
        offered
    }

    /// The framework's dominant share: the largest fraction of the cluster's
    /// cpus, mem or disk its tasks and executors use or it is offered.
    fn share(&self, framework: &Framework) -> f64 {
        let total = dominant_sums(self.agents.values().flat_map(|a| a.total.iter()));
        let used = used_resources(framework, |a| self.agents.contains_key(a));
        let offered = self
            .offers
            .values()
            .filter(|o| o.framework_id == framework.id)
            .flat_map(|o| o.resources.iter());
        let mine = dominant_sums(used.chain(offered));
        total
            .iter()
            .zip(mine)
            .map(|(t, m)| if *t > 0.0 { m / t } else { 0.0 })
            .fold(0.0, f64::max)
    }

    fn allocate(&mut self, now: Now, out: &mut Out) {
        let mut candidates: Vec<(f64, u64, String, String)> = Vec::new();
        for framework in self.frameworks.values().filter(|f| f.connected()) {
            let share = self.share(framework);
            for role in framework.roles() {
                if !framework.suppressed.contains(&role) {
                    candidates.push((share, framework.seq, framework.id.clone(), role));
                }
            }
        }
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut made: BTreeMap<String, Vec<v1::Offer>> = BTreeMap::new();
        let agent_ids: Vec<String> = self
            .agents
            .values()
            .filter(|a| a.connected)
            .map(|a| a.id.clone())
            .collect();
        for agent_id in agent_ids {
            let Some(agent) = self.agents.get(&agent_id) else {
                continue;
            };
            let mut available = agent
                .total
                .minus(&self.used_on(&agent_id))
                .minus(&self.offered_on(&agent_id));
            for (_, _, framework_id, role) in &candidates {
                let Some(framework) = self.frameworks.get_mut(framework_id) else {
                    continue;
                };
                framework.filters.retain(|f| f.until > now.mono);
                let format = framework.format();
                let offerable = available.filter(|r| {
                    r.revocable.is_none()
                        && resources::allocatable_to(r, role)
                        && resources::for_framework(r, role, format).is_some()
                });
                if offerable.is_empty() || !min_allocatable(&offerable) {
                    continue;
                }
                let filtered = framework.filters.iter().any(|f| {
                    f.agent_id == agent_id && &f.role == role && f.resources.contains(&offerable)
                });
                if filtered {
                    continue;
                }
                available = available.minus(&offerable);
                let offer_id = format!("{}-O{}", self.id, self.next_offer);
                self.next_offer += 1;
                let offer = Offer {
                    id: offer_id.clone(),
                    framework_id: framework_id.clone(),
                    agent_id: agent_id.clone(),
                    role: role.clone(),
                    resources: offerable,
                };
                let wire = self.render_offer(&offer);
                made.entry(framework_id.clone()).or_default().push(wire);
                self.offers.insert(offer_id.clone(), offer);
                if let Some(timeout) = self.settings.offer_timeout {
                    out.at(now.mono + timeout, Timer::OfferTimeout { offer_id });
                }
            }
        }
        for (framework_id, offers) in made {
            tracing::debug!(%framework_id, offers = offers.len(), "sending offers");
            let event = Event {
                offers: Some(event::Offers { offers }),
                ..ev(event::Type::Offers)
            };
            self.send(&framework_id, event, out);
        }
    }

    fn render_offer(&self, offer: &Offer) -> v1::Offer {
        let framework = self.frameworks.get(&offer.framework_id);
        let format = framework.map_or(
            Format {
                multi_role: false,
                refinement: false,
            },
            Framework::format,
        );
        let agent = self.agents.get(&offer.agent_id);
        let executor_ids = framework
            .map(|f| {
                f.executors
                    .keys()
                    .filter(|(a, _)| a == &offer.agent_id)
                    .map(|(_, e)| ExecutorId { value: e.clone() })
                    .collect()
            })
            .unwrap_or_default();
        v1::Offer {
            id: OfferId {
                value: offer.id.clone(),
            },
            framework_id: FrameworkId {
                value: offer.framework_id.clone(),
            },
            agent_id: AgentId {
                value: offer.agent_id.clone(),
            },
            hostname: agent.map(|a| a.hostname.clone()).unwrap_or_default(),
            resources: offer
                .resources
                .iter()
                .filter_map(|r| resources::for_framework(r, &offer.role, format))
                .collect(),
            executor_ids,
            attributes: agent.map(|a| a.attributes.clone()).unwrap_or_default(),
            url: agent.map(|a| v1::Url {
                scheme: "http".into(),
                address: v1::Address {
                    hostname: Some(a.hostname.clone()),
                    ip: Some(a.address.0.clone()),
                    port: i32::from(a.address.1),
                },
                path: Some("/slave(1)".into()),
                query: Vec::new(),
                fragment: None,
            }),
            unavailability: None,
            allocation_info: format.multi_role.then(|| v1::resource::AllocationInfo {
                role: Some(offer.role.clone()),
            }),
            domain: None,
        }
    }
}

/// Resources of the framework's live tasks and its executors on agents for
/// which `on` holds.
fn used_resources<'a>(
    framework: &'a Framework,
    on: impl Fn(&str) -> bool + Copy + 'a,
) -> impl Iterator<Item = &'a v1::Resource> + 'a {
    let tasks = framework
        .tasks
        .values()
        .filter(move |t| on(&t.agent_id) && !is_terminal(t.state))
        .flat_map(|t| t.info.resources.iter());
    let executors = framework
        .executors
        .iter()
        .filter(move |((agent, _), _)| on(agent))
        .flat_map(|(_, (_, res))| res.iter());
    tasks.chain(executors)
}

/// Sums of the scalar cpus, mem and disk among `resources`.
fn dominant_sums<'a>(resources: impl Iterator<Item = &'a v1::Resource>) -> [f64; 3] {
    let mut sums = [0.0; 3];
    for r in resources {
        let at = ["cpus", "mem", "disk"].iter().position(|n| *n == r.name);
        if let (Some(at), Some(scalar)) = (at, &r.scalar) {
            sums[at] += scalar.value;
        }
    }
    sums
}

/// Mesos' default `--min_allocatable_resources=cpus:0.01|mem:32`.
fn min_allocatable(resources: &Resources) -> bool {
    resources.scalar("cpus") >= 0.01 || resources.scalar("mem") >= 32.0
}

/// An UPDATE event for `status`.
pub fn update_event(status: TaskStatus) -> Event {
    Event {
        update: Some(event::Update { status }),
        ..ev(event::Type::Update)
    }
}

/// A master-generated status (no uuid, `SOURCE_MASTER`).
pub fn master_status(
    task_id: &str,
    agent_id: Option<&str>,
    state: TaskState,
    message: &str,
    reason: Reason,
    executor_id: Option<&str>,
    now: Now,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.to_owned(),
        },
        state: state as i32,
        message: Some(message.to_owned()),
        agent_id: agent_id.map(|a| AgentId {
            value: a.to_owned(),
        }),
        timestamp: Some(now.wall),
        executor_id: executor_id.map(|e| ExecutorId {
            value: e.to_owned(),
        }),
        source: Some(Source::Master as i32),
        reason: Some(reason as i32),
        ..Default::default()
    }
}

/// The task as stored: the resources the master accounted for.
pub(crate) fn stored_task(task: &TaskInfo, resources: &Resources) -> TaskInfo {
    TaskInfo {
        resources: resources.to_vec(),
        ..task.clone()
    }
}
