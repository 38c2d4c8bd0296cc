//! The local cluster over real HTTP on loopback with real executor
//! processes: agents on their own addresses, the executor environment and
//! sandbox, volumes, status update retries, executor failures, fault
//! injection, restarts with the state directory.

mod common;

use std::time::Duration;

use anyhow::{Context, bail};
use common::*;
use mesos_local::{AgentConfig, ClusterConfig, LocalCluster};
use mesos_proto::ContentType;
use mesos_proto::v1::{
    self, AgentId, ExecutorId, Offer, TaskId, TaskState,
    scheduler::{Call, call},
    task_status::Reason,
};

const ROLE: &str = "svc";

fn fast(agents: usize) -> ClusterConfig {
    let mut config = ClusterConfig::with_agents(agents);
    config.first_agent_ip = test_support::ports::agent_block();
    config.allocation_interval = Duration::from_millis(100);
    config.heartbeat_interval = Duration::from_secs(1);
    config.executor_shutdown_grace_period = Duration::from_secs(1);
    config.executor_registration_timeout = Duration::from_secs(3);
    config.status_update_retry_interval = Duration::from_millis(300);
    config.agent_removal_timeout = Duration::from_secs(1);
    for (i, agent) in config.agents.iter_mut().enumerate() {
        *agent = AgentConfig {
            resources: "cpus:2;mem:1024;disk:1000;ports:[31000-31009]".into(),
            attributes: format!("rack:r{};zone:z1", i + 1),
            ..AgentConfig::default()
        };
    }
    config
}

fn on_agent(offers: &[Offer], agent: &AgentId) -> Vec<Offer> {
    offers
        .iter()
        .filter(|o| &o.agent_id == agent)
        .cloned()
        .collect()
}

/// Launches one task with the test executor on the first offer; returns (agent, RUNNING status).
async fn launch(
    s: &mut Sched,
    task_id: &str,
    data: &str,
) -> anyhow::Result<(AgentId, v1::TaskStatus)> {
    let offers = s.offers().await?;
    let offer = offers.first().context("an offer")?.clone();
    let rest: Vec<Offer> = offers[1..].to_vec();
    if !rest.is_empty() {
        s.decline(&rest, 0.0).await?;
    }
    let executor = test_executor(
        &format!("exec-{task_id}"),
        &s.fid(),
        vec![allocated(scalar("cpus", 0.1), ROLE)],
    );
    let t = task(
        task_id,
        &offer.agent_id,
        vec![
            allocated(scalar("cpus", 0.1), ROLE),
            allocated(scalar("mem", 32.0), ROLE),
        ],
        executor,
        data,
    );
    s.accept(std::slice::from_ref(&offer), vec![op_launch(vec![t])])
        .await?;
    let status = s.update(task_id).await?;
    Ok((offer.agent_id, status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_have_their_own_addresses_hostnames_and_attributes() -> anyhow::Result<()> {
    logs();
    let config = fast(3);
    let first = config.first_agent_ip.octets();
    let expected: Vec<String> = (0..3u8)
        .map(|i| format!("{}.{}.{}.{}", first[0], first[1], first[2], first[3] + i))
        .collect();
    let cluster = LocalCluster::start(config).await?;
    let hosts: Vec<String> = cluster
        .agents()
        .iter()
        .map(|a| a.hostname.clone())
        .collect();
    assert_eq!(hosts, expected, "agents take consecutive addresses");
    let mut s = Sched::subscribe(
        &cluster.master_url(),
        framework("hosts", ROLE, true),
        ContentType::Protobuf,
    )
    .await?;
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 3 {
        for o in s.offers().await? {
            let rack = o
                .attributes
                .iter()
                .find(|a| a.name == "rack")
                .and_then(|a| a.text.as_ref())
                .map(|t| t.value.clone());
            let url = o.url.as_ref().context("offer url")?;
            assert_eq!(url.address.ip.as_deref(), Some(o.hostname.as_str()));
            assert_eq!(url.path.as_deref(), Some("/slave(1)"));
            assert!(
                o.id.value.starts_with(&cluster.master_id().await?),
                "offer IDs carry the master ID"
            );
            seen.insert(o.hostname.clone(), rack);
        }
    }
    assert_eq!(seen.get(&expected[1]), Some(&Some("r2".to_owned())));
    let ids: Vec<String> = futures::future::try_join_all((0..3).map(|i| cluster.agent_id(i)))
        .await?
        .into_iter()
        .flatten()
        .collect();
    let master = cluster.master_id().await?;
    let mut suffixes: Vec<String> = ids
        .iter()
        .map(|id| id.trim_start_matches(&format!("{master}-")).to_owned())
        .collect();
    suffixes.sort();
    assert_eq!(suffixes, vec!["S0", "S1", "S2"]);
    assert!(s.framework_id.ends_with("-0000"));
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_gets_mesos_environment_sandbox_and_volume() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(fast(1)).await?;
    let mut s = Sched::subscribe(
        &cluster.master_url(),
        framework("env", ROLE, true),
        ContentType::Json,
    )
    .await?;
    let offers = s.offers().await?;
    let agent = offers[0].agent_id.clone();
    let r = |res: v1::Resource| allocated(reserved(res, ROLE, "env", None), ROLE);
    let vol = volume(r(scalar("disk", 10.0)), "data-vol", "env", "data");
    let executor = test_executor(
        "exec-env",
        &s.fid(),
        vec![allocated(scalar("cpus", 0.1), ROLE)],
    );
    let t = task(
        "t-env",
        &agent,
        vec![allocated(scalar("cpus", 0.1), ROLE), vol.clone()],
        executor,
        "write:data/hello.txt:hello",
    );
    s.accept(
        &offers,
        vec![
            op_reserve(vec![r(scalar("disk", 10.0))]),
            op_create(vec![vol.clone()]),
            op_launch(vec![t]),
        ],
    )
    .await?;
    let running = s.update("t-env").await?;
    assert_eq!(running.state(), TaskState::TaskRunning, "{running:?}");
    let state = cluster.state().await?;
    let executor_dir = cluster.agents()[0]
        .work_dir
        .join("slaves")
        .join(agent.value.as_str())
        .join("frameworks")
        .join(&s.framework_id)
        .join("executors/exec-env/runs");
    let run = std::fs::read_dir(&executor_dir)?
        .next()
        .context("a run directory")??
        .path();
    let env: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("env.json"))?)?;
    let address = cluster.agents()[0].address;
    assert_eq!(env["MESOS_SLAVE_PID"], format!("slave(1)@{address}"));
    assert_eq!(env["MESOS_AGENT_ENDPOINT"], address.to_string());
    assert_eq!(env["MESOS_FRAMEWORK_ID"], s.framework_id);
    assert_eq!(env["MESOS_EXECUTOR_ID"], "exec-env");
    assert_eq!(env["MESOS_SLAVE_ID"], agent.value);
    assert_eq!(env["MESOS_DIRECTORY"], run.display().to_string());
    assert_eq!(env["MESOS_SANDBOX"], run.display().to_string());
    assert_eq!(env["MESOS_CHECKPOINT"], "1");
    assert_eq!(env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"], "1secs");
    assert_eq!(env["MESOS_SUBSCRIPTION_BACKOFF_MAX"], "2secs");
    assert_eq!(env["MESOS_RECOVERY_TIMEOUT"], "15mins");
    assert!(env["PATH"].as_str().is_some_and(|p| p.contains("/usr/bin")));
    assert!(
        env.get("HOME").is_none(),
        "the agent's own environment is not inherited"
    );
    // The volume is a directory outside the sandbox, linked at its container path.
    let written = run.join("data/hello.txt");
    assert_eq!(std::fs::read_to_string(&written)?, "hello");
    assert!(
        std::fs::symlink_metadata(run.join("data"))?
            .file_type()
            .is_symlink()
    );
    let target = std::fs::read_link(run.join("data"))?;
    assert!(target.ends_with("volumes/roles/svc/data-vol"), "{target:?}");
    assert!(run.join("stdout").is_file() && run.join("stderr").is_file());
    assert!(std::fs::read_to_string(run.join("stderr"))?.contains("subscribing"));
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_updates_are_retried_and_the_next_waits() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(fast(1)).await?;
    let mut s = Sched::subscribe(
        &cluster.master_url(),
        framework("retry", ROLE, true),
        ContentType::Protobuf,
    )
    .await?;
    let (agent, running) = launch(&mut s, "t-retry", "").await?;
    // Not acknowledged: the same update (same uuid) comes again.
    let again = s.update("t-retry").await?;
    assert_eq!(again.uuid, running.uuid);
    assert_eq!(again.state(), TaskState::TaskRunning);
    // KILL: TASK_KILLED is held back until RUNNING is acknowledged.
    s.call_ok(Call {
        kill: Some(call::Kill {
            task_id: TaskId {
                value: "t-retry".into(),
            },
            agent_id: Some(agent),
            kill_policy: None,
        }),
        ..call_of(call::Type::Kill)
    })
    .await?;
    let next = s.update("t-retry").await?;
    assert_eq!(
        next.state(),
        TaskState::TaskRunning,
        "one update in flight per task"
    );
    s.ack(&next).await?;
    let killed = loop {
        let u = s.update("t-retry").await?;
        if u.state() != TaskState::TaskRunning {
            break u;
        }
    };
    assert_eq!(killed.state(), TaskState::TaskKilled);
    s.ack(&killed).await?;
    // Acknowledged terminal tasks move to completed_tasks.
    let mut done = false;
    for _ in 0..100 {
        let state = cluster.state().await?;
        if state["frameworks"][0]["completed_tasks"][0]["state"] == "TASK_KILLED" {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done, "task not completed in /master/state");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_exit_gives_failure_and_task_failed() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(fast(1)).await?;
    let mut s = Sched::subscribe(
        &cluster.master_url(),
        framework("crash", ROLE, true),
        ContentType::Json,
    )
    .await?;
    // The executor crashes on LAUNCH: FAILURE with its exit status, TASK_FAILED from the agent.
    let (agent, failed) = launch(&mut s, "t-crash", "crash").await?;
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(failed.reason(), Reason::ExecutorTerminated);
    assert_eq!(failed.source(), v1::task_status::Source::Agent);
    assert!(failed.uuid.is_some());
    s.ack(&failed).await?;
    let failure = s
        .expect("FAILURE", |e| e.failure.is_some())
        .await?
        .failure
        .context("failure")?;
    assert_eq!(failure.agent_id, Some(agent.clone()));
    assert_eq!(
        failure.executor_id.map(|e| e.value),
        Some("exec-t-crash".into())
    );
    assert_eq!(
        failure.status.map(|st| (st >> 8) & 0xff),
        Some(3),
        "raw wait status with exit code 3"
    );

    // Killing a healthy executor's process group: the same, from the outside.
    let (_, running) = launch(&mut s, "t-victim", "").await?;
    s.ack(&running).await?;
    cluster
        .kill_executor(&s.framework_id, "exec-t-victim")
        .await?;
    let failed = s.update("t-victim").await?;
    assert_eq!(
        (failed.state(), failed.reason()),
        (TaskState::TaskFailed, Reason::ExecutorTerminated)
    );
    let failure = s
        .expect("FAILURE", |e| e.failure.is_some())
        .await?
        .failure
        .context("failure")?;
    assert_eq!(
        failure.status.map(|st| st & 0x7f),
        Some(9),
        "killed by SIGKILL"
    );

    // A fetch failure: TASK_FAILED with REASON_CONTAINER_LAUNCH_FAILED.
    let offers = s.offers().await?;
    let mut executor = test_executor("exec-missing", &s.fid(), vec![]);
    if let Some(c) = executor.command.as_mut() {
        c.uris[0].value = "file:///no/such/executor".into();
    }
    let t = task(
        "t-missing",
        &offers[0].agent_id,
        vec![allocated(scalar("cpus", 0.1), ROLE)],
        executor,
        "",
    );
    s.accept(&offers[..1], vec![op_launch(vec![t])]).await?;
    let failed = s.update("t-missing").await?;
    assert_eq!(
        (failed.state(), failed.reason()),
        (TaskState::TaskFailed, Reason::ContainerLaunchFailed)
    );
    assert!(
        failed.message().contains("Failed to launch container"),
        "{:?}",
        failed.message
    );

    // An executor that never subscribes: registration timeout.
    let offers = s.offers().await?;
    let mut executor = test_executor("exec-silent", &s.fid(), vec![]);
    if let Some(c) = executor.command.as_mut() {
        c.uris.clear();
        c.value = Some("exec sleep 60".into());
    }
    let t = task(
        "t-silent",
        &offers[0].agent_id,
        vec![allocated(scalar("cpus", 0.1), ROLE)],
        executor,
        "",
    );
    s.accept(&offers[..1], vec![op_launch(vec![t])]).await?;
    let failed = s.update("t-silent").await?;
    assert_eq!(
        (failed.state(), failed.reason()),
        (TaskState::TaskFailed, Reason::ExecutorRegistrationTimeout)
    );
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_api_status_codes_and_paths() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(fast(1)).await?;
    let addr = cluster.agents()[0].address;
    let http = reqwest::Client::new();
    let post = |path: &str, ct: Option<&str>, body: &str| {
        let mut r = http
            .post(format!("http://{addr}{path}"))
            .body(body.to_owned());
        if let Some(ct) = ct {
            r = r.header("Content-Type", ct);
        }
        r.send()
    };
    let sub = r#"{"type":"SUBSCRIBE","framework_id":{"value":"f"},"executor_id":{"value":"e"},"subscribe":{}}"#;
    assert_eq!(post("/api/v1/executor", None, sub).await?.status(), 400);
    assert_eq!(
        post("/api/v1/executor", Some("text/plain"), sub)
            .await?
            .status(),
        415
    );
    for path in ["/api/v1/executor", "/slave(1)/api/v1/executor"] {
        let r = post(path, Some("application/json"), sub).await?;
        assert_eq!(r.status(), 400);
        assert_eq!(r.text().await?, "Framework cannot be found");
    }
    let bad_uuid = r#"{"type":"UPDATE","framework_id":{"value":"f"},"executor_id":{"value":"e"},
        "update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR","uuid":"AAAA"}}}"#;
    let r = post("/api/v1/executor", Some("application/json"), bad_uuid).await?;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await?
            .starts_with("Failed to validate Executor::Call")
    );
    let get = http
        .get(format!("http://{addr}/api/v1/executor"))
        .send()
        .await?;
    assert_eq!(get.status(), 405);
    // The master's scheduler endpoint answers GET with 405 and is also under /master/.
    let master = cluster.master_address();
    assert_eq!(
        http.get(format!("http://{master}/api/v1/scheduler"))
            .send()
            .await?
            .status(),
        405
    );
    let mut s = Sched::subscribe(
        &format!("http://{master}/master"),
        framework("paths", ROLE, true),
        ContentType::Json,
    )
    .await;
    // The client posts to {base}/api/v1/scheduler, i.e. /master/api/v1/scheduler here.
    assert!(
        s.as_mut().is_ok(),
        "subscribe under /master/: {:?}",
        s.as_ref().err()
    );
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_stream_and_master_failover_keep_the_framework() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(fast(1)).await?;
    let info = framework("failover", ROLE, true);
    let mut s = Sched::subscribe(&cluster.master_url(), info.clone(), ContentType::Json).await?;
    let (agent, running) = launch(&mut s, "t-keep", "").await?;
    s.ack(&running).await?;
    let fid = s.fid();

    // A dropped stream: calls on the old stream are refused with 403, the
    // framework re-subscribes with its ID and still has its task.
    cluster.drop_framework_stream(&s.framework_id).await?;
    while s.next_within(DEADLINE).await.is_some() {}
    let (code, body) = s.call(call_of(call::Type::Revive)).await?;
    assert_eq!((code, body.as_str()), (403, "Framework is not subscribed"));
    let mut again = info.clone();
    again.id = Some(fid.clone());
    let mut s2 = Sched::subscribe(&cluster.master_url(), again.clone(), ContentType::Json).await?;
    assert_eq!(s2.framework_id, fid.value);
    s2.call_ok(Call {
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..call_of(call::Type::Reconcile)
    })
    .await?;
    assert_eq!(s2.update("t-keep").await?.state(), TaskState::TaskRunning);

    // A second subscription replaces the first, which gets ERROR "Framework failed over".
    let mut s3 = Sched::subscribe(&cluster.master_url(), again.clone(), ContentType::Json).await?;
    let error = s2.expect("ERROR", |e| e.error.is_some()).await?;
    assert_eq!(
        error.error.map(|e| e.message),
        Some("Framework failed over".into())
    );

    // Master failover: the stream ends, a new master (new ID) knows the task from the agent.
    let old_master = cluster.master_id().await?;
    cluster.fail_over_master().await?;
    while s3.next_within(DEADLINE).await.is_some() {}
    assert_ne!(cluster.master_id().await?, old_master);
    let mut s4 = Sched::subscribe(&cluster.master_url(), again, ContentType::Json).await?;
    assert_eq!(s4.framework_id, fid.value);
    s4.call_ok(Call {
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..call_of(call::Type::Reconcile)
    })
    .await?;
    assert_eq!(s4.update("t-keep").await?.state(), TaskState::TaskRunning);
    // The executor still answers messages through the new master.
    s4.call_ok(Call {
        message: Some(call::Message {
            agent_id: agent.clone(),
            executor_id: ExecutorId {
                value: "exec-t-keep".into(),
            },
            data: b"hi".to_vec(),
        }),
        ..call_of(call::Type::Message)
    })
    .await?;
    let m = s4
        .expect("MESSAGE", |e| e.message.is_some())
        .await?
        .message
        .context("message")?;
    assert_eq!(m.data, b"echo:hi");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_agent_becomes_unreachable_and_comes_back() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(fast(1)).await?;
    let mut aware = Sched::subscribe(
        &cluster.master_url(),
        framework("aware", ROLE, true),
        ContentType::Json,
    )
    .await?;
    let (agent, running) = launch(&mut aware, "t-aware", "").await?;
    aware.ack(&running).await?;
    // Let the other framework have the agent's offers.
    aware
        .call_ok(Call {
            suppress: Some(call::Suppress { roles: vec![] }),
            ..call_of(call::Type::Suppress)
        })
        .await?;
    while let Some(e) = aware.next_within(Duration::from_millis(300)).await {
        if let Some(offers) = e.offers {
            aware.decline(&offers.offers, 0.0).await?;
        }
    }
    let mut legacy_info = framework("legacy", "other", false);
    legacy_info
        .capabilities
        .retain(|c| c.r#type != Some(v1::framework_info::capability::Type::PartitionAware as i32));
    let mut legacy =
        Sched::subscribe(&cluster.master_url(), legacy_info, ContentType::Json).await?;
    let offers = legacy.offers().await?;
    let executor = test_executor("exec-legacy", &legacy.fid(), vec![]);
    let t = task(
        "t-legacy",
        &agent,
        vec![allocated(scalar("cpus", 0.1), "other")],
        executor,
        "",
    );
    legacy
        .accept(&on_agent(&offers, &agent), vec![op_launch(vec![t])])
        .await?;
    let r = legacy.update("t-legacy").await?;
    legacy.ack(&r).await?;

    cluster.stop_agent(0).await?;
    let u = aware.update("t-aware").await?;
    assert_eq!(
        (u.state(), u.reason()),
        (TaskState::TaskUnreachable, Reason::AgentRemoved)
    );
    assert!(u.unreachable_time.is_some() && u.uuid.is_none());
    let u = legacy.update("t-legacy").await?;
    assert_eq!(
        (u.state(), u.reason()),
        (TaskState::TaskLost, Reason::AgentRemoved)
    );
    // Out of the way, so that the agent's resources go to the other framework.
    legacy.call_ok(call_of(call::Type::Teardown)).await?;
    let failure = aware
        .expect("FAILURE for the agent", |e| {
            e.failure.as_ref().is_some_and(|f| f.executor_id.is_none())
        })
        .await?;
    assert_eq!(
        failure.failure.and_then(|f| f.agent_id),
        Some(agent.clone())
    );
    aware
        .call_ok(Call {
            reconcile: Some(call::Reconcile {
                tasks: vec![call::reconcile::Task {
                    task_id: TaskId {
                        value: "other".into(),
                    },
                    agent_id: Some(agent.clone()),
                }],
            }),
            ..call_of(call::Type::Reconcile)
        })
        .await?;
    assert_eq!(
        aware.update("other").await?.state(),
        TaskState::TaskUnreachable
    );

    // The agent restarts with the same ID; the checkpointing executor re-subscribes.
    cluster.restart_agent(0).await?;
    aware
        .call_ok(Call {
            revive: Some(call::Revive { roles: vec![] }),
            ..call_of(call::Type::Revive)
        })
        .await?;
    assert_eq!(cluster.agent_id(0).await?, Some(agent.value.clone()));
    let (mut back, mut offered) = (false, false);
    for _ in 0..100 {
        if back && offered {
            break;
        }
        if !back {
            aware
                .call_ok(Call {
                    reconcile: Some(call::Reconcile { tasks: vec![] }),
                    ..call_of(call::Type::Reconcile)
                })
                .await?;
        }
        if let Some(e) = aware.next_within(Duration::from_millis(200)).await {
            if e.update.as_ref().is_some_and(|u| {
                u.status.task_id.value == "t-aware" && u.status.state() == TaskState::TaskRunning
            }) {
                back = true;
            }
            if let Some(offers) = e.offers {
                offered |= offers.offers.iter().any(|o| o.agent_id == agent);
                aware.decline(&offers.offers, 0.0).await?;
            }
        }
    }
    assert!(back, "task back to RUNNING after the agent re-registered");
    assert!(
        offered,
        "the agent is offered again: {}",
        cluster.state().await?
    );
    let state = cluster.state().await?;
    let slave = &state["slaves"][0];
    let cpus = |k: &str| slave[k]["cpus"].as_f64().unwrap_or(-1.0);
    assert!(
        cpus("used_resources") + cpus("offered_resources") <= cpus("resources") + 1e-9,
        "over-allocated: {slave}"
    );
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_time_out_and_can_be_rescinded() -> anyhow::Result<()> {
    logs();
    let mut config = fast(2);
    config.offer_timeout = Some(Duration::from_millis(500));
    let cluster = LocalCluster::start(config).await?;
    let mut s = Sched::subscribe(
        &cluster.master_url(),
        framework("rescind", ROLE, true),
        ContentType::Json,
    )
    .await?;
    let offers = s.offers().await?;
    let first = offers[0].id.clone();
    let e = s
        .expect("RESCIND after the offer timeout", |e| e.rescind.is_some())
        .await?;
    assert!(e.rescind.is_some());
    let offers = loop {
        let o = s.offers().await?;
        if !o.is_empty() {
            break o;
        }
    };
    assert_ne!(offers[0].id, first);
    cluster.rescind_offer(&offers[0].id.value).await?;
    let e = s
        .expect("RESCIND", |e| {
            e.rescind
                .as_ref()
                .is_some_and(|r| r.offer_id == offers[0].id)
        })
        .await?;
    assert!(e.rescind.is_some());
    assert!(cluster.rescind_offer("no-such-offer").await.is_err());
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_timeout_removes_the_framework() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(fast(1)).await?;
    let mut info = framework("gone", ROLE, true);
    info.failover_timeout = Some(0.5);
    let mut s = Sched::subscribe(&cluster.master_url(), info.clone(), ContentType::Json).await?;
    let (_, running) = launch(&mut s, "t-gone", "").await?;
    s.ack(&running).await?;
    let fid = s.fid();
    drop(s);
    let mut removed = false;
    for _ in 0..100 {
        let state = cluster.state().await?;
        if state["completed_frameworks"][0]["id"] == fid.value {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(removed, "framework not removed after its failover timeout");
    info.id = Some(fid);
    let refused = Sched::subscribe(&cluster.master_url(), info, ContentType::Json).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("Framework has been removed"), "{message}");
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_and_volumes_survive_a_cluster_restart() -> anyhow::Result<()> {
    logs();
    let dir = tempfile::tempdir()?;
    let mut config = fast(1);
    config.state_dir = Some(dir.path().to_path_buf());
    let cluster = LocalCluster::start(config.clone()).await?;
    let info = framework("persist", ROLE, true);
    let mut s = Sched::subscribe(&cluster.master_url(), info.clone(), ContentType::Json).await?;
    let offers = s.offers().await?;
    let agent = offers[0].agent_id.clone();
    let r =
        |res: v1::Resource| allocated(reserved(res, ROLE, "persist", Some(("node", "n1"))), ROLE);
    let vol = volume(r(scalar("disk", 50.0)), "vol-n1", "persist", "data");
    let executor = test_executor(
        "exec-n1",
        &s.fid(),
        vec![allocated(scalar("cpus", 0.1), ROLE)],
    );
    let t = task(
        "n1",
        &agent,
        vec![r(scalar("cpus", 0.5)), vol.clone()],
        executor,
        "write:data/marker:kept",
    );
    s.accept(
        &offers,
        vec![
            op_reserve(vec![r(scalar("cpus", 0.5)), r(scalar("disk", 50.0))]),
            op_create(vec![vol]),
            op_launch(vec![t]),
        ],
    )
    .await?;
    let running = s.update("n1").await?;
    assert_eq!(running.state(), TaskState::TaskRunning);
    s.ack(&running).await?;
    let fid = s.fid();
    drop(s);
    cluster.shutdown().await;

    let cluster = LocalCluster::start(config).await?;
    assert_eq!(
        cluster.agent_id(0).await?,
        Some(agent.value.clone()),
        "the agent keeps its ID"
    );
    let mut again = info;
    again.id = Some(fid.clone());
    let mut s = Sched::subscribe(&cluster.master_url(), again, ContentType::Json).await?;
    assert_eq!(s.framework_id, fid.value);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let offer = loop {
        if tokio::time::Instant::now() > deadline {
            bail!("no offer with the volume after the restart");
        }
        let offers = s.offers().await?;
        if let Some(o) = offers.iter().find(|o| {
            o.resources
                .iter()
                .any(|r| r.disk.as_ref().is_some_and(|d| d.persistence.is_some()))
        }) {
            break o.clone();
        }
        s.decline(&offers, 0.0).await?;
    };
    let shapes = shape(std::slice::from_ref(&offer));
    assert!(
        shapes
            .iter()
            .any(|l| l.starts_with("cpus=0.5") && l.contains("node=n1")),
        "{shapes:?}"
    );
    assert!(
        shapes.iter().any(|l| l.contains("volume=vol-n1:data")),
        "{shapes:?}"
    );
    // The data written before the restart is still on the volume.
    let marker = cluster.agents()[0]
        .work_dir
        .join("volumes/roles/svc/vol-n1/marker");
    assert_eq!(std::fs::read_to_string(marker)?, "kept");
    cluster.shutdown().await;
    Ok(())
}
