//! The executor under real Apache Mesos 1.11 (the rig beside the clone): its
//! binary fetched by Mesos' fetcher from a file:// URI and launched by Mesos'
//! containerizer, a task taken to TASK_RUNNING after a TCP readiness check, a
//! framework message answered, and KILL → TASK_KILLED. Skipped with a notice
//! when the rig is absent; a failure under `CI=true`.

mod common;

use std::time::Duration;

use anyhow::{Context, bail};
use common::{ArtifactServer, service_tarball, sha256};
use executor_protocol::{
    Artifact, Check, Command, ExecutorBody, ExecutorMessage, Outcome, Readiness, Reply, Request,
    SchedulerMessage, ServiceState, TaskDocument,
};
use mesos_client::{Config, SchedulerEvent, calls};
use mesos_proto::v1::{
    self, CommandInfo, Environment, ExecutorId, ExecutorInfo, FrameworkInfo, Offer, Resource,
    TaskId, TaskInfo, TaskState, TaskStatus, command_info, environment,
    framework_info::{Capability, capability},
    offer,
    scheduler::Event,
    value,
};
use test_support::rig::{MesosRig, RigOptions};
use tokio::sync::{mpsc, watch};

const DEADLINE: Duration = Duration::from_secs(60);
const ROLE: &str = "test";

fn framework() -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: "executor-test".into(),
        failover_timeout: Some(60.0),
        checkpoint: Some(true),
        principal: Some("executor-test".into()),
        roles: vec![ROLE.into()],
        capabilities: vec![Capability {
            r#type: Some(capability::Type::MultiRole as i32),
        }],
        ..Default::default()
    }
}

/// A copy of the offer's `name` resource with a scalar value of `amount`.
fn scalar(offer: &Offer, name: &str, amount: f64) -> anyhow::Result<Resource> {
    let mut r = offer
        .resources
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .with_context(|| format!("offer has no {name}"))?;
    r.scalar = Some(v1::value::Scalar { value: amount });
    Ok(r)
}

/// A copy of the offer's ports resource holding only its first port.
fn one_port(offer: &Offer) -> anyhow::Result<(Resource, u16)> {
    let mut r = offer
        .resources
        .iter()
        .find(|r| r.name == "ports")
        .cloned()
        .context("offer has no ports")?;
    let begin = r
        .ranges
        .as_ref()
        .and_then(|rs| rs.range.first())
        .map(|range| range.begin)
        .context("no port range")?;
    r.ranges = Some(v1::value::Ranges {
        range: vec![value::Range { begin, end: begin }],
    });
    Ok((r, u16::try_from(begin)?))
}

struct Scheduler {
    handle: mesos_client::Handle,
    events: mpsc::Receiver<SchedulerEvent>,
}

impl Scheduler {
    /// The next event `want` accepts; every update with a uuid is acknowledged.
    async fn next(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> anyhow::Result<Event> {
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
                    }
                    SchedulerEvent::Terminated { error } => bail!("terminated: {error:?}"),
                    _ => {}
                }
            }
        })
        .await
        .with_context(|| format!("timed out waiting for {what}"))?
    }

    async fn update(&mut self, task: &TaskId, state: TaskState) -> anyhow::Result<TaskStatus> {
        let what = format!("{} for {}", state.as_str_name(), task.value);
        let failed_early = |s: &TaskStatus| {
            s.state() != state
                && matches!(
                    s.state(),
                    TaskState::TaskFailed | TaskState::TaskError | TaskState::TaskLost
                )
        };
        let event = self
            .next(&what, |e| {
                e.update.as_ref().is_some_and(|u| {
                    &u.status.task_id == task
                        && (u.status.state() == state || failed_early(&u.status))
                })
            })
            .await?;
        let status = event.update.context("update")?.status;
        if status.state() != state {
            bail!(
                "expected {}, got {}: {}",
                state.as_str_name(),
                status.state().as_str_name(),
                status.message()
            );
        }
        Ok(status)
    }
}

async fn run_on_real_mesos(rig: &MesosRig) -> anyhow::Result<()> {
    let artifacts = ArtifactServer::start().await?;
    let tarball = service_tarball()?;
    let url = artifacts.serve("/svc-rig.tgz", tarball.clone());
    let cache = tempfile::tempdir()?;

    let master = url::Url::parse(&format!("{}/", rig.endpoint()))?;
    let (_leader, leader_rx) = watch::channel(Some(master));
    let (handle, events) = mesos_client::start(Config::new(framework()), leader_rx)?;
    let mut scheduler = Scheduler { handle, events };

    let event = scheduler
        .next("OFFERS", |e| {
            e.offers.as_ref().is_some_and(|o| !o.offers.is_empty())
        })
        .await?;
    let offer = event
        .offers
        .and_then(|o| o.offers.into_iter().next())
        .context("an offer")?;
    let (ports, port) = one_port(&offer)?;

    let mut doc = TaskDocument::new(Command::Exec {
        program: "svc/bin/serve.sh".into(),
        args: vec![port.to_string()],
    });
    doc.artifacts.push(Artifact {
        url,
        sha256: sha256(&tarball),
        extract: true,
        destination: ".".into(),
    });
    doc.readiness = Some(Readiness {
        check: Check::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        interval_ms: 100,
        timeout_ms: 1000,
        initial_delay_ms: 0,
    });

    let binary = env!("CARGO_BIN_EXE_service-executor");
    let executor = ExecutorInfo {
        executor_id: ExecutorId {
            value: "svc-executor-1".into(),
        },
        name: Some("service-executor".into()),
        resources: vec![scalar(&offer, "cpus", 0.1)?, scalar(&offer, "mem", 32.0)?],
        command: Some(CommandInfo {
            uris: vec![command_info::Uri {
                value: format!("file://{binary}"),
                executable: Some(true),
                extract: Some(false),
                ..Default::default()
            }],
            value: Some("./service-executor".into()),
            shell: Some(true),
            environment: Some(Environment {
                variables: vec![environment::Variable {
                    name: "EXECUTOR_ARTIFACT_CACHE".into(),
                    value: Some(cache.path().display().to_string()),
                    r#type: Some(environment::variable::Type::Value as i32),
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let task_id = TaskId {
        value: "svc-1.g1".into(),
    };
    let task = TaskInfo {
        name: "svc-1".into(),
        task_id: task_id.clone(),
        agent_id: offer.agent_id.clone(),
        resources: vec![
            scalar(&offer, "cpus", 0.1)?,
            scalar(&offer, "mem", 32.0)?,
            ports,
        ],
        executor: Some(executor),
        data: Some(doc.to_json()?),
        ..Default::default()
    };
    let launch = offer::Operation {
        r#type: Some(offer::operation::Type::Launch as i32),
        launch: Some(offer::operation::Launch {
            task_infos: vec![task],
        }),
        ..Default::default()
    };
    scheduler
        .handle
        .call(calls::accept(vec![offer.id.clone()], vec![launch], None))
        .await?;

    scheduler.update(&task_id, TaskState::TaskStarting).await?;
    let running = scheduler.update(&task_id, TaskState::TaskRunning).await?;
    assert_eq!(running.healthy, Some(true));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());

    // A framework message through the master and agent, and its answer back.
    let request = SchedulerMessage::new("status-1", Request::Status {});
    scheduler
        .handle
        .call(calls::message(
            offer.agent_id.clone(),
            ExecutorId {
                value: "svc-executor-1".into(),
            },
            request.to_json()?,
        ))
        .await?;
    let event = scheduler
        .next("the executor's answer", |e| {
            e.message.as_ref().is_some_and(|m| {
                matches!(ExecutorMessage::from_json(&m.data).map(|x| x.message),
                    Ok(ExecutorBody::Response(r)) if r.request_id == "status-1")
            })
        })
        .await?;
    let reply = ExecutorMessage::from_json(&event.message.context("message")?.data)?;
    let ExecutorBody::Response(response) = reply.message else {
        bail!("not a response");
    };
    let Outcome::Ok(Reply::Status { tasks }) = response.result else {
        bail!("not a status reply: {:?}", response.result);
    };
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_id, task_id.value);
    assert_eq!(tasks[0].state, ServiceState::Running);

    scheduler
        .handle
        .call(calls::kill(
            task_id.clone(),
            Some(offer.agent_id.clone()),
            None,
        ))
        .await?;
    let killed = scheduler.update(&task_id, TaskState::TaskKilled).await?;
    assert!(killed.message().contains("SIGTERM"), "{}", killed.message());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // The executor exits once its last update is acknowledged.
    scheduler
        .next("the executor's exit", |e| e.failure.is_some())
        .await?;
    scheduler.handle.teardown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_under_real_mesos() -> anyhow::Result<()> {
    test_support::require_rig!(Ok(()));
    let rig = tokio::task::spawn_blocking(|| {
        MesosRig::start(
            RigOptions::default()
                .agents(1)
                .resources("cpus:4;mem:4096;disk:10000;ports:[31000-31099]"),
        )
    })
    .await??;
    run_on_real_mesos(&rig)
        .await
        .with_context(|| format!("rig log tail:\n{}", rig.log_tail(60)))
}
