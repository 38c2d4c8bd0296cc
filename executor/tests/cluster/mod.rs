//! A scheduler on the project's scheduler client that runs the real executor
//! on a Mesos master (the embedded local cluster or real Mesos): it takes
//! offers, launches tasks whose ExecutorInfo names the executor binary,
//! acknowledges every update and exchanges framework messages.

#![allow(dead_code)]

use std::time::Duration;

use anyhow::{Context, bail};
use executor_protocol::{ExecutorBody, ExecutorMessage, Outcome, SchedulerMessage, TaskDocument};
use mesos_client::{Config, SchedulerEvent, calls};
use mesos_proto::v1::{
    self, AgentId, CommandInfo, Environment, ExecutorId, ExecutorInfo, FrameworkInfo, Offer,
    Resource, TaskId, TaskInfo, TaskState, TaskStatus, command_info, environment,
    framework_info::{Capability, capability},
    offer,
    scheduler::Event,
    value,
};
use tokio::sync::{mpsc, watch};

/// How long any expected event may take.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The role the test framework runs in.
pub const ROLE: &str = "test";

/// A checkpointing framework with MULTI_ROLE, PARTITION_AWARE and TASK_KILLING_STATE.
pub fn framework(name: &str) -> FrameworkInfo {
    let cap = |t: capability::Type| Capability {
        r#type: Some(t as i32),
    };
    FrameworkInfo {
        user: "root".into(),
        name: name.into(),
        failover_timeout: Some(60.0),
        checkpoint: Some(true),
        principal: Some(name.into()),
        roles: vec![ROLE.into()],
        capabilities: vec![
            cap(capability::Type::MultiRole),
            cap(capability::Type::PartitionAware),
            cap(capability::Type::TaskKillingState),
        ],
        ..Default::default()
    }
}

/// A subscribed scheduler.
pub struct Scheduler {
    /// The client.
    pub handle: mesos_client::Handle,
    events: mpsc::Receiver<SchedulerEvent>,
    _leader: watch::Sender<Option<url::Url>>,
}

impl Scheduler {
    /// Subscribes `info` at `master` (`http://host:port/`).
    pub fn start(master: &str, info: FrameworkInfo) -> anyhow::Result<Scheduler> {
        let url = url::Url::parse(master)?;
        let (leader, leader_rx) = watch::channel(Some(url));
        let (handle, events) = mesos_client::start(Config::new(info), leader_rx)?;
        Ok(Scheduler {
            handle,
            events,
            _leader: leader,
        })
    }

    /// The next event `want` accepts; every update with a uuid is acknowledged.
    pub async fn next(
        &mut self,
        what: &str,
        want: impl Fn(&Event) -> bool,
    ) -> anyhow::Result<Event> {
        tokio::time::timeout(DEADLINE, async {
            loop {
                match self.events.recv().await.context("event channel closed")? {
                    SchedulerEvent::Event(event) => {
                        if let Some(update) = &event.update
                            && let Some(ack) = calls::acknowledge(&update.status)
                        {
                            self.handle.call(ack).await?;
                        }
                        if want(&event) {
                            return Ok(*event);
                        }
                        // An offer nobody waits for would hold its resources
                        // until it is rescinded: hand it back.
                        if let Some(offers) = &event.offers
                            && !offers.offers.is_empty()
                        {
                            let ids = offers.offers.iter().map(|o| o.id.clone()).collect();
                            self.handle.call(calls::decline(ids, Some(0.0))).await?;
                        }
                    }
                    SchedulerEvent::Terminated { error } => bail!("terminated: {error:?}"),
                    _ => {}
                }
            }
        })
        .await
        .with_context(|| format!("timed out waiting for {what}"))?
    }

    /// The next offer with room for a few tasks and their executors (at
    /// least 1 cpu and 256 MB): resources of an executor that just ended may
    /// come back in a later offer than its tasks' resources.
    pub async fn offer(&mut self) -> anyhow::Result<Offer> {
        let roomy = |o: &Offer| {
            let amount = |name: &str| {
                o.resources
                    .iter()
                    .filter(|r| r.name == name)
                    .filter_map(|r| r.scalar.map(|s| s.value))
                    .sum::<f64>()
            };
            amount("cpus") >= 1.0 && amount("mem") >= 256.0
        };
        loop {
            let event = self
                .next("OFFERS", |e| {
                    e.offers.as_ref().is_some_and(|o| !o.offers.is_empty())
                })
                .await?;
            let offers = event.offers.map(|o| o.offers).unwrap_or_default();
            let (fit, small): (Vec<Offer>, Vec<Offer>) = offers.into_iter().partition(roomy);
            let ids = small.iter().chain(fit.iter().skip(1)).map(|o| o.id.clone());
            let ids: Vec<_> = ids.collect();
            if !ids.is_empty() {
                self.handle.call(calls::decline(ids, Some(0.0))).await?;
            }
            if let Some(offer) = fit.into_iter().next() {
                return Ok(offer);
            }
        }
    }

    /// The next update of `task`, which must be in `state` (a terminal
    /// failure while waiting for something else is an error).
    pub async fn update(&mut self, task: &str, state: TaskState) -> anyhow::Result<TaskStatus> {
        let what = format!("{} for {task}", state.as_str_name());
        let failed_early = |s: &TaskStatus| {
            s.state() != state
                && matches!(
                    s.state(),
                    TaskState::TaskFailed
                        | TaskState::TaskError
                        | TaskState::TaskLost
                        | TaskState::TaskGone
                        | TaskState::TaskDropped
                )
        };
        let event = self
            .next(&what, |e| {
                e.update.as_ref().is_some_and(|u| {
                    u.status.task_id.value == task
                        && (u.status.state() == state || failed_early(&u.status))
                })
            })
            .await?;
        let status = event.update.context("update")?.status;
        if status.state() != state {
            bail!(
                "expected {what}, got {}: {}",
                status.state().as_str_name(),
                status.message()
            );
        }
        Ok(status)
    }

    /// The next update of `task`, whatever its state.
    pub async fn any_update(&mut self, task: &str) -> anyhow::Result<TaskStatus> {
        let event = self
            .next(&format!("an update of {task}"), |e| {
                e.update
                    .as_ref()
                    .is_some_and(|u| u.status.task_id.value == task)
            })
            .await?;
        Ok(event.update.context("update")?.status)
    }

    /// LAUNCHes `tasks` on `offer`.
    pub async fn launch(&self, offer: &Offer, tasks: Vec<TaskInfo>) -> anyhow::Result<()> {
        let launch = offer::Operation {
            r#type: Some(offer::operation::Type::Launch as i32),
            launch: Some(offer::operation::Launch { task_infos: tasks }),
            ..Default::default()
        };
        self.handle
            .call(calls::accept(
                vec![offer.id.clone()],
                vec![launch],
                Some(v1::Filters {
                    refuse_seconds: Some(0.0),
                }),
            ))
            .await?;
        Ok(())
    }

    /// KILLs `task` on `agent`, with a kill policy grace period if given.
    pub async fn kill(
        &self,
        task: &str,
        agent: &AgentId,
        grace: Option<Duration>,
    ) -> anyhow::Result<()> {
        self.handle
            .call(calls::kill(
                TaskId { value: task.into() },
                Some(agent.clone()),
                grace,
            ))
            .await?;
        Ok(())
    }

    /// Sends `request` to an executor and returns the outcome of its answer.
    pub async fn request(
        &mut self,
        agent: &AgentId,
        executor: &str,
        request: SchedulerMessage,
    ) -> anyhow::Result<Outcome> {
        let id = request.request_id.clone();
        self.handle
            .call(calls::message(
                agent.clone(),
                ExecutorId {
                    value: executor.into(),
                },
                request.to_json()?,
            ))
            .await?;
        let event = self
            .next(&format!("the answer to {id}"), |e| {
                e.message.as_ref().is_some_and(|m| {
                    matches!(ExecutorMessage::from_json(&m.data).map(|x| x.message),
                        Ok(ExecutorBody::Response(r)) if r.request_id == id)
                })
            })
            .await?;
        let reply = ExecutorMessage::from_json(&event.message.context("message")?.data)?;
        let ExecutorBody::Response(response) = reply.message else {
            bail!("not a response");
        };
        Ok(response.result)
    }
}

/// A copy of the offer's `name` resource with a scalar value of `amount`.
pub fn scalar(offer: &Offer, name: &str, amount: f64) -> anyhow::Result<Resource> {
    let mut r = offer
        .resources
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .with_context(|| format!("offer has no {name}"))?;
    r.scalar = Some(v1::value::Scalar { value: amount });
    Ok(r)
}

/// The offer's `n`-th port as a resource, and the port.
pub fn port(offer: &Offer, n: u64) -> anyhow::Result<(Resource, u16)> {
    let mut r = offer
        .resources
        .iter()
        .find(|r| r.name == "ports")
        .cloned()
        .context("offer has no ports")?;
    let range = r
        .ranges
        .as_ref()
        .and_then(|rs| rs.range.first())
        .copied()
        .context("no port range")?;
    let port = range.begin + n;
    if port > range.end {
        bail!("the offer's first range has fewer than {} ports", n + 1);
    }
    r.ranges = Some(v1::value::Ranges {
        range: vec![value::Range {
            begin: port,
            end: port,
        }],
    });
    Ok((r, u16::try_from(port)?))
}

/// How the agent gets the executor binary.
pub enum Binary<'a> {
    /// Started where it is (no copy into the sandbox).
    InPlace(&'a str),
    /// Fetched into the sandbox by the agent's fetcher from a `file://` URI.
    Fetched(&'a str),
}

/// An ExecutorInfo for the executor binary with small resources from `offer`.
pub fn executor_info(
    offer: &Offer,
    executor_id: &str,
    binary: Binary<'_>,
    env: &[(&str, &str)],
) -> anyhow::Result<ExecutorInfo> {
    let (uris, value, shell) = match binary {
        Binary::InPlace(path) => (Vec::new(), path.to_owned(), false),
        Binary::Fetched(path) => (
            vec![command_info::Uri {
                value: format!("file://{path}"),
                executable: Some(true),
                extract: Some(false),
                ..Default::default()
            }],
            "./service-executor".to_owned(),
            true,
        ),
    };
    Ok(ExecutorInfo {
        executor_id: ExecutorId {
            value: executor_id.into(),
        },
        name: Some("service-executor".into()),
        resources: vec![scalar(offer, "cpus", 0.1)?, scalar(offer, "mem", 32.0)?],
        command: Some(CommandInfo {
            uris,
            value: Some(value),
            shell: Some(shell),
            environment: Some(Environment {
                variables: env
                    .iter()
                    .map(|(k, v)| environment::Variable {
                        name: (*k).into(),
                        value: Some((*v).into()),
                        r#type: Some(environment::variable::Type::Value as i32),
                    })
                    .collect(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A task running `document` on `executor`, with small resources from
/// `offer` plus `extra` (ports).
pub fn task_info(
    offer: &Offer,
    task_id: &str,
    executor: ExecutorInfo,
    document: &TaskDocument,
    extra: Vec<Resource>,
) -> anyhow::Result<TaskInfo> {
    let mut resources = vec![scalar(offer, "cpus", 0.1)?, scalar(offer, "mem", 32.0)?];
    resources.extend(extra);
    Ok(TaskInfo {
        name: task_id.into(),
        task_id: TaskId {
            value: task_id.into(),
        },
        agent_id: offer.agent_id.clone(),
        resources,
        executor: Some(executor),
        data: Some(document.to_json()?),
        ..Default::default()
    })
}
