//! What an agent does with its executors when it restarts, as Mesos 1.11's
//! agent does it. The test plays the executor itself over the v1 executor
//! API (the agent starts a `sleep` as its process), so it decides exactly
//! which tasks and updates the re-subscription carries.
//!
//! * Re-subscription: the unacknowledged updates reach the scheduler; a task
//!   still STAGING that the executor does not list is TASK_DROPPED
//!   (TASK_LOST without PARTITION_AWARE) with REASON_AGENT_RESTARTED.
//! * An executor that does not re-subscribe in time is killed: TASK_GONE
//!   (TASK_LOST) with REASON_EXECUTOR_REREGISTRATION_TIMEOUT.
//! * An executor that died while the agent was down: TASK_FAILED with
//!   REASON_EXECUTOR_TERMINATED once the agent is back.

mod common;

use std::time::Duration;

use anyhow::{Context, bail};
use common::*;
use futures::StreamExt as _;
use mesos_local::{AgentConfig, ClusterConfig, LocalCluster};
use mesos_proto::ContentType;
use mesos_proto::v1::{
    self, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, TaskId, TaskInfo, TaskState,
    TaskStatus,
    executor::{Call, Event, call, event},
    framework_info::capability,
    task_status::{Reason, Source},
};
use tokio::sync::mpsc;

const ROLE: &str = "svc";

fn config() -> ClusterConfig {
    let mut config = ClusterConfig::with_agents(1);
    config.first_agent_ip = test_support::ports::agent_block();
    config.allocation_interval = Duration::from_millis(100);
    config.executor_shutdown_grace_period = Duration::from_secs(1);
    config.executor_reregistration_timeout = Duration::from_secs(1);
    config.status_update_retry_interval = Duration::from_millis(300);
    config.agents[0] = AgentConfig {
        resources: "cpus:2;mem:1024;disk:1000;ports:[31000-31009]".into(),
        ..AgentConfig::default()
    };
    config
}

fn scheduler_info(partition_aware: bool) -> v1::FrameworkInfo {
    let mut info = framework("recovery", ROLE, partition_aware);
    if !partition_aware {
        info.capabilities
            .retain(|c| c.r#type != Some(capability::Type::PartitionAware as i32));
    }
    info
}

/// An executor whose process only sleeps: the test speaks for it.
fn sleeping_executor(executor_id: &str, framework_id: &FrameworkId) -> ExecutorInfo {
    ExecutorInfo {
        executor_id: ExecutorId {
            value: executor_id.into(),
        },
        framework_id: Some(framework_id.clone()),
        command: Some(CommandInfo {
            value: Some("exec sleep 600".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Launches `tasks` on one executor with the first offer.
async fn launch(s: &mut Sched, executor_id: &str, tasks: &[&str]) -> anyhow::Result<()> {
    let offers = s.offers().await?;
    let offer = offers.first().context("an offer")?.clone();
    let executor = sleeping_executor(executor_id, &s.fid());
    let infos = tasks
        .iter()
        .map(|id| {
            task(
                id,
                &offer.agent_id,
                vec![allocated(scalar("cpus", 0.1), ROLE)],
                executor.clone(),
                "",
            )
        })
        .collect();
    s.accept(std::slice::from_ref(&offer), vec![op_launch(infos)])
        .await?;
    Ok(())
}

/// The test's side of one executor subscription.
struct FakeExecutor {
    http: reqwest::Client,
    url: String,
    framework_id: FrameworkId,
    executor_id: ExecutorId,
    events: mpsc::UnboundedReceiver<Event>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for FakeExecutor {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl FakeExecutor {
    /// SUBSCRIBE with `tasks` and `updates` as unacknowledged; waits for SUBSCRIBED.
    async fn subscribe(
        cluster: &LocalCluster,
        framework_id: &FrameworkId,
        executor_id: &str,
        tasks: Vec<TaskInfo>,
        updates: Vec<TaskStatus>,
    ) -> anyhow::Result<FakeExecutor> {
        let url = format!("http://{}/api/v1/executor", cluster.agents()[0].address);
        let http = reqwest::Client::builder().http1_only().build()?;
        let call = Call {
            framework_id: framework_id.clone(),
            executor_id: ExecutorId {
                value: executor_id.into(),
            },
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                unacknowledged_tasks: tasks,
                unacknowledged_updates: updates
                    .into_iter()
                    .map(|status| call::Update { status })
                    .collect(),
            }),
            ..Default::default()
        };
        let response = http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(mesos_proto::encode(&call, ContentType::Json))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::OK {
            bail!("SUBSCRIBE answered {}", response.status());
        }
        let (tx, mut events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut decoder = mesos_recordio::Decoder::new(mesos_recordio::DEFAULT_MAX_RECORD);
            while let Some(Ok(chunk)) = body.next().await {
                decoder.feed(&chunk);
                while let Ok(Some(record)) = decoder.next_record() {
                    if let Ok(event) = mesos_proto::decode::<Event>(&record, ContentType::Json)
                        && tx.send(event).is_err()
                    {
                        return;
                    }
                }
            }
        });
        let first = tokio::time::timeout(DEADLINE, events.recv())
            .await
            .context("no SUBSCRIBED")?
            .context("stream ended")?;
        if first.r#type != Some(event::Type::Subscribed as i32) {
            bail!("first executor event: {first:?}");
        }
        Ok(FakeExecutor {
            http,
            url,
            framework_id: framework_id.clone(),
            executor_id: ExecutorId {
                value: executor_id.into(),
            },
            events,
            reader,
        })
    }

    /// The next event `want` accepts.
    async fn expect(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> anyhow::Result<Event> {
        tokio::time::timeout(DEADLINE, async {
            loop {
                let e = self.events.recv().await.context("executor stream ended")?;
                if want(&e) {
                    return Ok(e);
                }
            }
        })
        .await
        .with_context(|| format!("timed out waiting for {what}"))?
    }

    /// The next LAUNCH's task.
    async fn launched(&mut self) -> anyhow::Result<TaskInfo> {
        let e = self
            .expect("LAUNCH", |e| e.r#type == Some(event::Type::Launch as i32))
            .await?;
        Ok(e.launch.context("payload")?.task)
    }

    fn status(&self, task_id: &str, state: TaskState) -> TaskStatus {
        executor_status(&self.executor_id.value, task_id, state)
    }

    async fn update(&self, status: TaskStatus) -> anyhow::Result<()> {
        let call = Call {
            framework_id: self.framework_id.clone(),
            executor_id: self.executor_id.clone(),
            r#type: Some(call::Type::Update as i32),
            update: Some(call::Update { status }),
            ..Default::default()
        };
        let response = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .body(mesos_proto::encode(&call, ContentType::Json))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            bail!("UPDATE answered {}", response.status());
        }
        Ok(())
    }
}

/// A fresh status update from executor `executor_id`.
fn executor_status(executor_id: &str, task_id: &str, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.into(),
        },
        state: state as i32,
        executor_id: Some(ExecutorId {
            value: executor_id.into(),
        }),
        source: Some(Source::Executor as i32),
        uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
        ..Default::default()
    }
}

/// The next update of `task`, acknowledged.
async fn acked_update(s: &mut Sched, task: &str) -> anyhow::Result<TaskStatus> {
    let status = s.update(task).await?;
    s.ack(&status).await?;
    Ok(status)
}

async fn resubscription_after_restart(partition_aware: bool) -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(config()).await?;
    let mut s = Sched::subscribe(
        &cluster.master_url(),
        scheduler_info(partition_aware),
        ContentType::Json,
    )
    .await?;
    launch(&mut s, "ex", &["known", "forgotten", "pending"]).await?;
    let mut executor =
        FakeExecutor::subscribe(&cluster, &s.fid(), "ex", Vec::new(), Vec::new()).await?;
    let mut delivered = Vec::new();
    for _ in 0..3 {
        delivered.push(executor.launched().await?);
    }
    executor
        .update(executor.status("known", TaskState::TaskRunning))
        .await?;
    assert_eq!(
        acked_update(&mut s, "known").await?.state(),
        TaskState::TaskRunning
    );

    cluster.stop_agent(0).await?;
    drop(executor);
    cluster.restart_agent(0).await?;

    // Back with an update the agent never saw, and knowing only "pending".
    let finished = executor_status("ex", "known", TaskState::TaskFinished);
    let pending = delivered
        .iter()
        .find(|t| t.task_id.value == "pending")
        .cloned()
        .context("pending delivered")?;
    let mut executor = FakeExecutor::subscribe(
        &cluster,
        &s.fid(),
        "ex",
        vec![pending],
        vec![finished.clone()],
    )
    .await?;
    let ack = executor
        .expect("ACKNOWLEDGED of the carried update", |e| {
            e.acknowledged
                .as_ref()
                .is_some_and(|a| Some(&a.uuid) == finished.uuid.as_ref())
        })
        .await?;
    assert_eq!(
        ack.acknowledged.map(|a| a.task_id.value),
        Some("known".into())
    );

    let known = acked_update(&mut s, "known").await?;
    assert_eq!(known.state(), TaskState::TaskFinished);
    assert_eq!(known.uuid, finished.uuid, "the executor's own update");

    let forgotten = acked_update(&mut s, "forgotten").await?;
    let dropped = if partition_aware {
        TaskState::TaskDropped
    } else {
        TaskState::TaskLost
    };
    assert_eq!(
        (forgotten.state(), forgotten.reason(), forgotten.source()),
        (dropped, Reason::AgentRestarted, Source::Agent)
    );
    assert_eq!(forgotten.message(), "Task launched during agent restart");

    // The task the executor listed is left alone: its next update is the executor's.
    executor
        .update(executor.status("pending", TaskState::TaskRunning))
        .await?;
    assert_eq!(
        acked_update(&mut s, "pending").await?.state(),
        TaskState::TaskRunning
    );
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscription_delivers_updates_and_drops_unknown_staging_tasks() -> anyhow::Result<()> {
    resubscription_after_restart(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscription_loses_unknown_staging_tasks_without_partition_awareness()
-> anyhow::Result<()> {
    resubscription_after_restart(false).await
}

async fn executors_that_do_not_come_back(partition_aware: bool) -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(config()).await?;
    let mut s = Sched::subscribe(
        &cluster.master_url(),
        scheduler_info(partition_aware),
        ContentType::Json,
    )
    .await?;
    let mut executors = Vec::new();
    for (executor_id, task_id) in [("silent", "t-silent"), ("dead", "t-dead")] {
        launch(&mut s, executor_id, &[task_id]).await?;
        let mut executor =
            FakeExecutor::subscribe(&cluster, &s.fid(), executor_id, Vec::new(), Vec::new())
                .await?;
        executor.launched().await?;
        executor
            .update(executor.status(task_id, TaskState::TaskRunning))
            .await?;
        assert_eq!(
            acked_update(&mut s, task_id).await?.state(),
            TaskState::TaskRunning
        );
        executors.push(executor);
    }

    cluster.stop_agent(0).await?;
    executors.clear();
    // One executor dies while its agent is down; the other lives on but
    // never subscribes again.
    cluster.kill_executor(&s.framework_id, "dead").await?;
    cluster.restart_agent(0).await?;

    let dead = acked_update(&mut s, "t-dead").await?;
    assert_eq!(
        (dead.state(), dead.reason(), dead.source()),
        (
            TaskState::TaskFailed,
            Reason::ExecutorTerminated,
            Source::Agent
        ),
        "{}",
        dead.message()
    );
    let silent = acked_update(&mut s, "t-silent").await?;
    let gone = if partition_aware {
        TaskState::TaskGone
    } else {
        TaskState::TaskLost
    };
    assert_eq!(
        (silent.state(), silent.reason(), silent.source()),
        (gone, Reason::ExecutorReregistrationTimeout, Source::Agent)
    );
    assert_eq!(silent.message(), "Executor did not reregister within 1secs");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_not_back_after_restart_are_gone_or_failed() -> anyhow::Result<()> {
    executors_that_do_not_come_back(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_not_back_after_restart_are_lost_without_partition_awareness()
-> anyhow::Result<()> {
    executors_that_do_not_come_back(false).await
}
